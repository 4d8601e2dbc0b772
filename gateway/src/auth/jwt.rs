//! Kong's `jwt` plugin (3.9.3 semantics, `docs/gateway-semantics.md` §1):
//! token retrieval from query, cookies and headers; the check order and the
//! exact 401 bodies; the key claim from the payload, then the header; the
//! credential's algorithm and key; `claims_to_verify`; `maximum_expiration`.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use std::mem::MaybeUninit;

use super::jose::{self, decode_into, plain_str};
use super::json;
pub use super::jwt_conf::JwtConf;
use super::keys::Verifier;
use crate::consumer::Consumer;
use crate::reject::{JwtFault, Rejection};

/// Algorithms a credential may name (Kong 3.9), and whether we can verify them.
const ALGORITHMS: [&str; 13] = [
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256",
    "PS384", "PS512", "EdDSA",
];

/// A jwt credential with its verification key built once.
pub struct Credential {
    pub key: String,
    /// `X-Credential-Identifier`, built once.
    pub key_header: Option<http::HeaderValue>,
    pub algorithm: String,
    /// None when the key material is unusable (Kong: `Invalid key/secret`).
    verifier: Option<Verifier>,
    /// HS*: the verifier of the base64url-decoded secret, for `secret_is_base64` routes.
    verifier_b64: Option<Verifier>,
    pub consumer: Arc<Consumer>,
}

/// Credentials by key, looked up on every request. foldhash (randomly
/// seeded) instead of SipHash: ~15 ns less per lookup; keys come from the
/// config and the Admin API, so requests can only probe, not fill, the table.
/// Sharded, so that an Admin write copies 1/256 of it, not all of it.
pub type Credentials = crate::shards::ShardedMap<Arc<Credential>>;

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("Credential")
            .field("key", &self.key)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// What a jwt credential is made of, as written (in the declarative file's
/// `jwt_secrets` or an Admin API body): the verifier's own view of it, so
/// that it does not depend on the file format.
#[derive(Debug, Clone, Copy, Default)]
pub struct CredentialSpec<'a> {
    /// Kong generates one when absent.
    pub key: Option<&'a str>,
    /// `HS256` when absent.
    pub algorithm: Option<&'a str>,
    pub secret: Option<&'a str>,
    pub rsa_public_key: Option<&'a str>,
}

impl Credential {
    /// Checks `s` as Kong does; a refusal names the field and gives Kong's message.
    pub fn new(
        s: CredentialSpec<'_>,
        consumer: Arc<Consumer>,
    ) -> Result<Credential, (&'static str, String)> {
        let alg = s.algorithm.unwrap_or("HS256").to_owned();
        if !ALGORITHMS.contains(&alg.as_str()) {
            return Err((
                "algorithm",
                format!("expected one of: {}", ALGORITHMS.join(", ")),
            ));
        }
        let (verifier, verifier_b64) = if alg.starts_with("HS") {
            let secret = s.secret;
            (
                secret.and_then(|sec| Verifier::hmac(&alg, sec.as_bytes())),
                secret
                    .and_then(|sec| URL_SAFE_NO_PAD.decode(sec.trim_end_matches('=')).ok())
                    .and_then(|raw| Verifier::hmac(&alg, &raw)),
            )
        } else {
            match (s.rsa_public_key, alg.starts_with("ES")) {
                // Kong lets ES* credentials be created without a key; requests then fail.
                (None, true) => (None, None),
                (None, false) => return Err(("rsa_public_key", "required field missing".into())),
                (Some(pem), _) => (
                    Some(Verifier::public(&alg, pem).map_err(|e| {
                        // Kong's field message is exactly this; why goes to the log.
                        tracing::warn!(key = ?s.key, algorithm = %alg, reason = %e, "invalid key");
                        ("rsa_public_key", "invalid key".to_owned())
                    })?),
                    None,
                ),
            }
        };
        let key = s.key.map_or_else(random_string, str::to_owned);
        Ok(Credential {
            key: key.clone(),
            key_header: http::HeaderValue::from_str(&key).ok(),
            algorithm: alg,
            verifier,
            verifier_b64,
            consumer,
        })
    }
}

/// Kong's `random_string()`: 32 characters of `[A-Za-z0-9]`.
pub fn random_string() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A successful authentication: the credential, which holds its consumer
/// (one reference count, not two, per request).
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub credential: Arc<Credential>,
}

/// What the request carries, de-duplicated as Kong does: nothing, one
/// distinct token (however many times it appears), or several distinct ones.
/// Distinct tokens exist iff one differs from the first, so no list is kept.
/// A token is a string, or `None` for Kong's `true`: a query arg with no
/// value (`?jwt`), which `get_uri_args` gives as a boolean.
#[derive(Debug, PartialEq, Eq)]
enum Found<'a> {
    None,
    One(Option<std::borrow::Cow<'a, str>>),
    Many,
}

impl<'a> Found<'a> {
    fn add(&mut self, t: Option<std::borrow::Cow<'a, str>>) {
        if t.as_deref().is_some_and(str::is_empty) {
            return;
        }
        match self {
            Found::None => *self = Found::One(t),
            Found::One(first) if *first != t => *self = Found::Many,
            _ => {}
        }
    }
}

/// A request's headers as the plugin reads them: hyper's `HeaderMap`, or
/// the lean HTTP/1 path's parsed head (names compared case-insensitively).
pub trait HeaderSource {
    /// The first value of `name`.
    fn first(&self, name: &http::HeaderName) -> Option<&[u8]>;
    /// Every value of `name`, in order.
    fn each<'a>(&'a self, name: &http::HeaderName, f: &mut dyn FnMut(&'a [u8]));
}

impl HeaderSource for http::HeaderMap {
    fn first(&self, name: &http::HeaderName) -> Option<&[u8]> {
        self.get(name).map(http::HeaderValue::as_bytes)
    }

    fn each<'a>(&'a self, name: &http::HeaderName, f: &mut dyn FnMut(&'a [u8])) {
        for v in self.get_all(name) {
            f(v.as_bytes());
        }
    }
}

/// `HeaderValue::to_str`'s test: visible ASCII and tab only.
pub fn header_str(v: &[u8]) -> Option<&str> {
    if v.iter().all(|&b| (b >= 32 && b != 127) || b == b'\t') {
        std::str::from_utf8(v).ok()
    } else {
        None
    }
}

/// Tokens from `uri_param_names`, `cookie_names` and `header_names`, in Kong's order.
fn retrieve<'a, H: HeaderSource + ?Sized>(
    conf: &JwtConf,
    query: Option<&'a str>,
    headers: &'a H,
) -> Found<'a> {
    let mut found = Found::None;
    if let Some(q) = query {
        for pair in q.split('&') {
            let (k, v) = match pair.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (pair, None),
            };
            if conf.uri_param_names.iter().any(|n| n == k) {
                found.add(v.map(|v| percent_encoding::percent_decode_str(v).decode_utf8_lossy()));
            }
        }
    }
    if !conf.cookie_names.is_empty() {
        headers.each(&http::header::COOKIE, &mut |cookie_header| {
            let Some(s) = header_str(cookie_header) else {
                return;
            };
            for c in s.split(';') {
                let (k, v) = c.trim().split_once('=').unwrap_or((c.trim(), ""));
                if conf.cookie_names.iter().any(|n| n == k) {
                    found.add(Some(std::borrow::Cow::Borrowed(v)));
                }
            }
        });
    }
    for name in &conf.parsed_header_names {
        // Only the first occurrence of a repeated header.
        // As bytes, the way Kong's regex sees them (UTF-8 checked, which is
        // vectorised; `to_str` checks each byte for visible ASCII).
        let Some(v) = headers
            .first(name)
            .and_then(|v| std::str::from_utf8(v).ok())
        else {
            continue;
        };
        if let Some(t) = bearer(v) {
            found.add(Some(std::borrow::Cow::Borrowed(t)));
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

fn reject(conf: &JwtConf, fault: JwtFault) -> Rejection {
    Rejection::Jwt {
        fault,
        realm: conf.realm.clone(),
    }
}

/// Runs the plugin's checks in Kong's order.
// long: Kong's checks in Kong's order on the hot path, each an early return with its refusal
pub fn authenticate(
    conf: &JwtConf,
    credentials: &Credentials,
    query: Option<&str>,
    headers: &(impl HeaderSource + ?Sized),
    now: impl FnOnce() -> i64,
) -> Result<Authenticated, Rejection> {
    let found = retrieve(conf, query, headers);
    let token = match &found {
        Found::None => {
            return Err(Rejection::JwtMissing {
                realm: conf.realm.clone(),
            });
        }
        Found::One(Some(one)) => one.as_ref(),
        Found::One(None) => return Err(reject(conf, JwtFault::Unrecognizable)),
        Found::Many => return Err(reject(conf, JwtFault::MultipleTokens)),
    };
    // Split on the first two dots; anything after goes into the signature.
    // The JOSE header, parsed once per thread per distinct header segment,
    // gives the first dot. (memchr on the bytes for the second: `splitn`
    // with a char pattern cost ~4 % of a verify in its generic searcher; a
    // dot is ASCII, so the cuts are on char boundaries.)
    let kcn = conf.key_claim_name.as_str();
    let bytes = token.as_bytes();
    let Some((d1, header)) = jose::header(token, kcn) else {
        return Err(reject(conf, JwtFault::InvalidJson));
    };
    let Some(d2) = memchr::memchr(b'.', &bytes[d1 + 1..]).map(|n| d1 + 1 + n) else {
        return Err(reject(conf, JwtFault::InvalidJson));
    };
    let (h64, p64, s64) = (&token[..d1], &token[d1 + 1..d2], &token[d2 + 1..]);
    // The claims into a stack buffer when they fit (they almost always do).
    let mut pbuf = [MaybeUninit::<u8>::uninit(); 512];
    let mut pvec = Vec::new();
    let claims_json = decode_into(p64, &mut pbuf, &mut pvec)
        .ok_or_else(|| reject(conf, JwtFault::InvalidJson))?;
    let [claim_key, exp, nbf] = json::pick(claims_json, [kcn, "exp", "nbf"])
        .ok_or_else(|| reject(conf, JwtFault::InvalidJson))?;
    let header_key = header.key.as_deref().map(str::as_bytes);
    let Some(alg) = header.alg else {
        return Err(reject(conf, JwtFault::InvalidAlg));
    };
    // Up to RSA-2048 on the stack; longer signatures spill to the heap.
    // The decoder refuses anything outside the alphabet, padding included,
    // except the trailing `=` that `decode_into` trims: refuse those here.
    let (mut sbuf, mut svec) = ([MaybeUninit::<u8>::uninit(); 258], Vec::new());
    let sig = if s64.is_empty() || s64.ends_with('=') {
        None
    } else {
        decode_into(s64, &mut sbuf, &mut svec)
    };
    let Some(sig) = sig else {
        return Err(reject(conf, JwtFault::BadSignature));
    };
    let Some(key_value) = present(claim_key).or(present(header_key)) else {
        return Err(reject(conf, JwtFault::NoKeyClaim(kcn.to_owned())));
    };
    let unescaped: String;
    let key = match plain_str(key_value) {
        Some(k) => k,
        None => {
            unescaped = serde_json::from_slice::<String>(key_value)
                .unwrap_or_else(|_| String::from_utf8_lossy(key_value).into_owned());
            unescaped.as_str()
        }
    };
    if key.is_empty() {
        return Err(reject(conf, JwtFault::InvalidKeyClaim(kcn.to_owned())));
    }
    let Some(credential) = credentials.get(key) else {
        return Err(reject(conf, JwtFault::NoCredentials(kcn.to_owned())));
    };
    if credential.algorithm != alg {
        return Err(reject(conf, JwtFault::InvalidAlgorithm));
    }
    let verifier = if conf.secret_is_base64 && alg.starts_with("HS") {
        &credential.verifier_b64
    } else {
        &credential.verifier
    };
    let Some(verifier) = verifier else {
        return Err(reject(conf, JwtFault::InvalidKey));
    };
    // Kong asserts the raw signature length for ES* (R||S) and PS* (2048-bit
    // RSA only); a failed assert is a Lua error, so HTTP 500, not 401.
    let expected_len = match alg {
        "ES256" => Some(64),
        "ES384" => Some(96),
        "ES512" => Some(132),
        "PS256" | "PS384" | "PS512" => Some(256),
        _ => None,
    };
    if expected_len.is_some_and(|n| n != sig.len()) {
        return Err(Rejection::JwtSignatureLength);
    }
    let message = &token.as_bytes()[..h64.len() + 1 + p64.len()];
    if !verifier.verify(message, sig) {
        return Err(reject(conf, JwtFault::InvalidSignature));
    }
    // The clock is read only when a check needs it.
    let now = if conf.claims_to_verify.is_some() || conf.maximum_expiration > 0.0 {
        now()
    } else {
        0
    };
    if let Some(list) = &conf.claims_to_verify {
        let mut errors = serde_json::Map::new();
        for claim in list {
            let raw = if claim == "exp" { exp } else { nbf };
            match raw.and_then(json::number) {
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
            return Err(Rejection::JwtClaims {
                errors,
                realm: conf.realm.clone(),
            });
        }
    }
    if conf.maximum_expiration > 0.0 {
        let exp = exp.and_then(json::number);
        if exp.is_none_or(|e| e - now as f64 > conf.maximum_expiration) {
            return Err(Rejection::JwtMaxExpiration {
                realm: conf.realm.clone(),
            });
        }
    }
    Ok(Authenticated {
        credential: credential.clone(),
    })
}

/// Kong's `claims[k] or header[k]`: nil and false count as absent.
fn present(v: Option<&[u8]>) -> Option<&[u8]> {
    v.filter(|r| *r != b"null" && *r != b"false")
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
    fn known_algorithm_is_exactly_the_list() {
        use super::jose::known_algorithm;
        for a in ALGORITHMS {
            assert_eq!(known_algorithm(a), Some(a));
        }
        assert_eq!(known_algorithm("none"), None);
        assert_eq!(known_algorithm("hs256"), None);
    }

    #[test]
    fn retrieve_deduplicates_like_kong() {
        let conf = JwtConf {
            cookie_names: vec!["jwt".into()],
            ..JwtConf::default()
        };
        let mut h = http::HeaderMap::new();
        assert_eq!(retrieve(&conf, None, &h), Found::None);
        h.insert(http::header::AUTHORIZATION, "Bearer a.b.c".parse().unwrap());
        assert_eq!(
            retrieve(&conf, Some("jwt=a.b.c&x=1"), &h),
            Found::One(Some("a.b.c".into()))
        );
        h.insert(http::header::COOKIE, "jwt=a.b.c".parse().unwrap());
        assert_eq!(
            retrieve(&conf, Some("jwt="), &h),
            Found::One(Some("a.b.c".into()))
        );
        assert_eq!(retrieve(&conf, Some("jwt=x.y.z"), &h), Found::Many);
        // `?jwt` with no value is Kong's `true`: a token of its own, not a string.
        let none = http::HeaderMap::new();
        assert_eq!(retrieve(&conf, Some("jwt"), &none), Found::One(None));
        assert_eq!(retrieve(&conf, Some("jwt&jwt"), &none), Found::One(None));
        assert_eq!(retrieve(&conf, Some("jwt"), &h), Found::Many);
    }
}
