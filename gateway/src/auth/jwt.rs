//! Kong's `jwt` plugin (3.9.3 semantics, `../shared/reference/gateway-semantics.md` §1):
//! token retrieval from query, cookies and headers; the check order and the
//! exact 401 bodies; the key claim from the payload, then the header; the
//! credential's algorithm and key; `claims_to_verify`; `maximum_expiration`.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use super::Reject;
use crate::config::{Consumer, JwtSecretSpec};

/// The plugin's configuration, with Kong's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JwtConf {
    pub uri_param_names: Vec<String>,
    pub cookie_names: Vec<String>,
    pub header_names: Vec<String>,
    pub key_claim_name: String,
    pub secret_is_base64: bool,
    pub claims_to_verify: Option<Vec<String>>,
    pub anonymous: Option<String>,
    pub run_on_preflight: bool,
    pub maximum_expiration: u64,
    pub realm: Option<String>,
}

impl Default for JwtConf {
    fn default() -> Self {
        Self {
            uri_param_names: vec!["jwt".into()],
            cookie_names: vec![],
            header_names: vec!["authorization".into()],
            key_claim_name: "iss".into(),
            secret_is_base64: false,
            claims_to_verify: None,
            anonymous: None,
            run_on_preflight: true,
            maximum_expiration: 0,
            realm: None,
        }
    }
}

impl JwtConf {
    /// From a plugin's `config` object; errors name the field.
    pub fn from_json(v: &serde_json::Value) -> Result<JwtConf, (&'static str, String)> {
        let conf: JwtConf = if v.is_null() {
            JwtConf::default()
        } else {
            serde_json::from_value(v.clone()).map_err(|e| ("config", e.to_string()))?
        };
        for c in conf.claims_to_verify.iter().flatten() {
            if c != "exp" && c != "nbf" {
                return Err((
                    "config.claims_to_verify",
                    format!("expected one of: exp, nbf (got {c:?})"),
                ));
            }
        }
        if conf.maximum_expiration > 31_536_000 {
            return Err((
                "config.maximum_expiration",
                "value should be between 0 and 31536000".into(),
            ));
        }
        if conf.maximum_expiration > 0
            && !conf.claims_to_verify.iter().flatten().any(|c| c == "exp")
        {
            return Err(("config.claims_to_verify", "expected to contain: exp".into()));
        }
        Ok(conf)
    }

    fn www_authenticate(&self, invalid_token: bool) -> String {
        match (&self.realm, invalid_token) {
            (None, false) => "Bearer".into(),
            (None, true) => "Bearer error=\"invalid_token\"".into(),
            (Some(r), false) => format!("Bearer realm=\"{r}\""),
            // Kong 3.8.0–3.9.3 separates with a space (master uses a comma).
            (Some(r), true) => format!("Bearer realm=\"{r}\" error=\"invalid_token\""),
        }
    }
}

/// Algorithms a credential may name (Kong 3.9), and whether we can verify them.
const ALGORITHMS: [&str; 13] = [
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256",
    "PS384", "PS512", "EdDSA",
];

fn algorithm(name: &str) -> Option<Algorithm> {
    Some(match name {
        "HS256" => Algorithm::HS256,
        "HS384" => Algorithm::HS384,
        "HS512" => Algorithm::HS512,
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "EdDSA" => Algorithm::EdDSA,
        _ => return None,
    })
}

/// A jwt credential with its decoding key built once.
pub struct Credential {
    pub key: String,
    pub algorithm: String,
    /// None when the key material is unusable (Kong: `Invalid key/secret`).
    decoding: Option<(Algorithm, DecodingKey)>,
    /// An HS secret as written, for `secret_is_base64` routes.
    secret: Option<String>,
    pub consumer: Arc<Consumer>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("Credential")
            .field("key", &self.key)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl Credential {
    pub fn new(
        s: &JwtSecretSpec,
        consumer: Arc<Consumer>,
    ) -> Result<Credential, (&'static str, String)> {
        let alg_name = s.algorithm.clone().unwrap_or_else(|| "HS256".into());
        if !ALGORITHMS.contains(&alg_name.as_str()) {
            return Err((
                "algorithm",
                format!("expected one of: {}", ALGORITHMS.join(", ")),
            ));
        }
        let alg = alg_name.as_str();
        let decoding = if alg.starts_with("HS") {
            s.secret
                .as_ref()
                .map(|sec| (algorithm_or(alg), DecodingKey::from_secret(sec.as_bytes())))
        } else {
            let pem = match &s.rsa_public_key {
                Some(p) => p,
                None if alg.starts_with("ES") => "",
                None => return Err(("rsa_public_key", "required field missing".into())),
            };
            let key = match alg {
                _ if pem.is_empty() => None,
                a if a.starts_with("RS") || a.starts_with("PS") => {
                    Some(DecodingKey::from_rsa_pem(pem.as_bytes()))
                }
                a if a.starts_with("ES") => Some(DecodingKey::from_ec_pem(pem.as_bytes())),
                _ => Some(DecodingKey::from_ed_pem(pem.as_bytes())),
            };
            match key {
                None => None,
                Some(Ok(k)) => algorithm(alg).map(|a| (a, k)),
                Some(Err(_)) => return Err(("rsa_public_key", "invalid key".into())),
            }
        };
        if alg == "ES512" {
            return Err((
                "algorithm",
                "ES512 is not supported by this gateway's verifier".into(),
            ));
        }
        Ok(Credential {
            key: s.key.clone().unwrap_or_else(random_string),
            algorithm: alg_name.clone(),
            decoding,
            secret: s.secret.clone(),
            consumer,
        })
    }
}

fn algorithm_or(alg: &str) -> Algorithm {
    algorithm(alg).unwrap_or(Algorithm::HS256)
}

/// Kong's `random_string()`: 32 characters of `[A-Za-z0-9]`.
pub fn random_string() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A successful authentication.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub consumer: Arc<Consumer>,
    pub credential: Arc<Credential>,
}

/// Tokens found in the request, de-duplicated; usually one, so no allocation for the list.
fn retrieve<'a>(
    conf: &JwtConf,
    query: Option<&'a str>,
    headers: &'a http::HeaderMap,
) -> Vec<std::borrow::Cow<'a, str>> {
    let mut found: Vec<std::borrow::Cow<'a, str>> = Vec::new();
    let mut add = |t: std::borrow::Cow<'a, str>| {
        if !t.is_empty() && !found.contains(&t) {
            found.push(t);
        }
    };
    if let Some(q) = query {
        for pair in q.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if conf.uri_param_names.iter().any(|n| n == k) {
                add(percent_encoding::percent_decode_str(v).decode_utf8_lossy());
            }
        }
    }
    if !conf.cookie_names.is_empty() {
        for cookie_header in headers.get_all(http::header::COOKIE) {
            let Ok(s) = cookie_header.to_str() else {
                continue;
            };
            for c in s.split(';') {
                let (k, v) = c.trim().split_once('=').unwrap_or((c.trim(), ""));
                if conf.cookie_names.iter().any(|n| n == k) {
                    add(std::borrow::Cow::Borrowed(v));
                }
            }
        }
    }
    for name in &conf.header_names {
        // Only the first occurrence of a repeated header.
        let Some(v) = headers.get(name.as_str()).and_then(|v| v.to_str().ok()) else {
            continue;
        };
        if let Some(t) = bearer(v) {
            add(std::borrow::Cow::Borrowed(t));
        }
    }
    found
}

/// Kong's unanchored `\s*[Bb]earer\s+(.+)`: the first `Bearer`/`bearer`
/// followed by whitespace and at least one character; the rest of the value.
pub fn bearer(v: &str) -> Option<&str> {
    let bytes = v.as_bytes();
    let mut i = 0;
    while i + 6 <= bytes.len() {
        let word = &bytes[i..i + 6];
        if (word[0] == b'B' || word[0] == b'b') && &word[1..] == b"earer" {
            let rest = &v[i + 6..];
            let trimmed = rest.trim_start_matches([' ', '\t']);
            if trimmed.len() < rest.len() {
                if !trimmed.is_empty() {
                    return Some(trimmed);
                }
                // `\s+` gives back one blank so that `.+` can match it.
                if rest.len() >= 2 {
                    return Some(&rest[rest.len() - 1..]);
                }
            }
        }
        i += 1;
    }
    None
}

fn b64url(part: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()
}

fn reject(conf: &JwtConf, message: &str) -> Reject {
    Reject::jwt(
        401,
        serde_json::json!({ "message": message }),
        Some(conf.www_authenticate(true)),
    )
}

/// Runs the plugin's checks in Kong's order.
pub fn authenticate(
    conf: &JwtConf,
    snapshot: &crate::config::Snapshot,
    query: Option<&str>,
    headers: &http::HeaderMap,
    now: i64,
) -> Result<Authenticated, Reject> {
    let tokens = retrieve(conf, query, headers);
    let token = match tokens.as_slice() {
        [] => {
            return Err(Reject::jwt(
                401,
                serde_json::json!({"message": "Unauthorized"}),
                Some(conf.www_authenticate(false)),
            ));
        }
        [one] => one.as_ref(),
        _ => return Err(reject(conf, "Multiple tokens provided")),
    };
    // Split on the first two dots; anything after goes into the signature.
    let mut parts = token.splitn(3, '.');
    let (Some(h64), Some(p64), Some(s64)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(reject(conf, "Bad token; invalid JSON"));
    };
    let header: serde_json::Value = b64url(h64)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(serde_json::Value::is_object)
        .ok_or_else(|| reject(conf, "Bad token; invalid JSON"))?;
    let claims: serde_json::Value = b64url(p64)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(serde_json::Value::is_object)
        .ok_or_else(|| reject(conf, "Bad token; invalid JSON"))?;
    let alg = header
        .get("alg")
        .and_then(|a| a.as_str())
        .filter(|a| ALGORITHMS.contains(a));
    let Some(alg) = alg else {
        return Err(reject(conf, "Bad token; invalid alg"));
    };
    if s64.is_empty()
        || !s64
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        || b64url(s64).is_none()
    {
        return Err(reject(conf, "Bad token; invalid signature"));
    }
    let kcn = conf.key_claim_name.as_str();
    let key_value = claims
        .get(kcn)
        .filter(|v| !v.is_null() && **v != false)
        .or_else(|| header.get(kcn).filter(|v| !v.is_null() && **v != false));
    let Some(key_value) = key_value else {
        return Err(reject(conf, &format!("No mandatory '{kcn}' in claims")));
    };
    let key_string;
    let key = match key_value {
        serde_json::Value::String(s) => s.as_str(),
        other => {
            key_string = other.to_string();
            key_string.as_str()
        }
    };
    if key.is_empty() {
        return Err(reject(conf, &format!("Invalid '{kcn}' in claims")));
    }
    let Some(credential) = snapshot.credentials.get(key) else {
        return Err(reject(
            conf,
            &format!("No credentials found for given '{kcn}'"),
        ));
    };
    if credential.algorithm != alg {
        return Err(reject(conf, "Invalid algorithm"));
    }
    let decoding = if conf.secret_is_base64 && alg.starts_with("HS") {
        credential
            .secret
            .as_deref()
            .and_then(|s| URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok())
            .map(|raw| (algorithm_or(alg), DecodingKey::from_secret(&raw)))
    } else {
        credential.decoding.clone()
    };
    let Some((algorithm, key)) = decoding else {
        return Err(reject(conf, "Invalid key/secret"));
    };
    let message_len = h64.len() + 1 + p64.len();
    let verified =
        jsonwebtoken::crypto::verify(s64, &token.as_bytes()[..message_len], &key, algorithm)
            .unwrap_or(false);
    if !verified {
        return Err(reject(conf, "Invalid signature"));
    }
    if let Some(list) = &conf.claims_to_verify {
        let mut errors = serde_json::Map::new();
        for claim in list {
            let v = claims.get(claim.as_str());
            match v.and_then(serde_json::Value::as_f64) {
                None => {
                    errors.insert(claim.clone(), "must be a number".into());
                }
                Some(t) if claim == "exp" && t <= now as f64 => {
                    errors.insert(claim.clone(), "token expired".into());
                }
                Some(t) if claim == "nbf" && t > now as f64 => {
                    errors.insert(claim.clone(), "token not valid yet".into());
                }
                Some(_) => {}
            }
        }
        if !errors.is_empty() {
            return Err(Reject::jwt(
                401,
                serde_json::Value::Object(errors),
                Some(conf.www_authenticate(true)),
            ));
        }
    }
    if conf.maximum_expiration > 0 {
        let exp = claims.get("exp").and_then(serde_json::Value::as_f64);
        if exp.is_none_or(|e| e - now as f64 > conf.maximum_expiration as f64) {
            return Err(Reject::jwt(
                401,
                serde_json::json!({"exp": "exceeds maximum allowed expiration"}),
                Some(conf.www_authenticate(true)),
            ));
        }
    }
    Ok(Authenticated {
        consumer: credential.consumer.clone(),
        credential: credential.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_follows_kongs_unanchored_regex() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer   abc"), Some("abc"));
        assert_eq!(bearer("  Bearer abc def"), Some("abc def"));
        assert_eq!(bearer("xBearer abc"), Some("abc"));
        assert_eq!(bearer("BEARER abc"), None);
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearerabc"), None);
        assert_eq!(bearer("Bearer"), None);
    }

    #[test]
    fn config_defaults_and_checks() {
        let c = JwtConf::from_json(&serde_json::Value::Null).unwrap();
        assert_eq!(c.header_names, ["authorization"]);
        assert_eq!(c.key_claim_name, "iss");
        assert!(c.run_on_preflight);
        let e = JwtConf::from_json(&serde_json::json!({"maximum_expiration": 60})).unwrap_err();
        assert_eq!(
            e,
            ("config.claims_to_verify", "expected to contain: exp".into())
        );
        assert!(
            JwtConf::from_json(&serde_json::json!({"bogus": 1}))
                .unwrap_err()
                .1
                .contains("bogus")
        );
        assert!(JwtConf::from_json(&serde_json::json!({"claims_to_verify": ["iat"]})).is_err());
    }
}
