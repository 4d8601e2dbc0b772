//! Our `oidc` plugin, with AWS HTTP API JWT-authorizer semantics
//! (`docs/gateway-semantics.md` §4): the token from `Authorization` (bare or
//! `Bearer`), the key by `kid` from the issuer's JWKS (discovered, cached,
//! re-fetched at most every `refetch_interval` on an unknown kid), `iss`
//! exactly equal to the issuer, `aud` (or `client_id` without `aud`) among the
//! audiences, `exp`/`nbf`/`iat` against now, and `scope`/`scp` containing one
//! of the route's scopes. Failures are 401 `{"message":"Unauthorized"}`, a
//! missing scope 403 `{"message":"Forbidden"}`; chosen claims are forwarded
//! as headers.

#![allow(
    clippy::disallowed_methods,
    reason = "the key cache's age decides when to refetch the key set"
)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;

use crate::reject::Rejection;

/// The plugin's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConf {
    /// Must equal the token's `iss` exactly.
    pub issuer: String,
    /// The token's `aud` (or `client_id`) must be one of these.
    pub audiences: Vec<String>,
    /// When set, `scope`/`scp` must contain at least one (else 403).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The key set URL; default: discovered from `<issuer>/.well-known/openid-configuration`.
    pub jwks_uri: Option<String>,
    /// A key set file instead of a URL.
    pub jwks_file: Option<std::path::PathBuf>,
    /// Accepted algorithms (default RS256, RS384, RS512, as AWS HTTP APIs).
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// Seconds a fetched key set is trusted (default 3600).
    #[serde(default = "default_ttl")]
    pub cache_ttl: u64,
    /// Minimum seconds between fetches triggered by an unknown `kid` (default 10).
    #[serde(default = "default_refetch")]
    pub refetch_interval: u64,
    /// Claim name → request header sent upstream.
    #[serde(default)]
    pub claims_to_headers: BTreeMap<String, String>,
}

fn default_algorithms() -> Vec<String> {
    vec!["RS256".into(), "RS384".into(), "RS512".into()]
}
fn default_ttl() -> u64 {
    3600
}
fn default_refetch() -> u64 {
    10
}

/// A configured plugin with its key cache.
#[derive(Debug)]
pub struct Oidc {
    pub conf: OidcConf,
    cache: tokio::sync::Mutex<Cache>,
    client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Empty<Bytes>,
    >,
}

#[derive(Debug, Default)]
struct Cache {
    keys: HashMap<String, Arc<Key>>,
    fetched: Option<Instant>,
}

/// Verifies (algorithm, signing input, signature) with one JWK.
type VerifyFn = Box<dyn Fn(&'static str, &[u8], &[u8]) -> bool + Send + Sync>;

/// One JWK, ready to verify.
struct Key {
    alg: Option<String>,
    verify: VerifyFn,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// Who the token says the caller is: the headers to set upstream.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
}

fn unauthorized(description: &'static str) -> Rejection {
    Rejection::OidcInvalidToken { description }
}

fn b64(part: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()
}

impl Oidc {
    pub fn from_json(v: &serde_json::Value) -> Result<Oidc, (&'static str, String)> {
        let conf: OidcConf =
            serde_json::from_value(v.clone()).map_err(|e| ("config", e.to_string()))?;
        if conf.audiences.is_empty() {
            return Err((
                "config.audiences",
                "at least one audience is required".into(),
            ));
        }
        for a in &conf.algorithms {
            if !matches!(
                a.as_str(),
                "RS256"
                    | "RS384"
                    | "RS512"
                    | "PS256"
                    | "PS384"
                    | "PS512"
                    | "ES256"
                    | "ES384"
                    | "ES512"
                    | "EdDSA"
            ) {
                return Err(("config.algorithms", format!("{a:?} is not supported")));
            }
        }
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        Ok(Oidc {
            conf,
            cache: tokio::sync::Mutex::new(Cache::default()),
            client,
        })
    }

    /// Runs the authorizer for one request.
    pub async fn authorize(
        &self,
        headers: &http::HeaderMap,
        now: i64,
    ) -> Result<Identity, Rejection> {
        let raw = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::trim);
        let Some(raw) = raw.filter(|r| !r.is_empty()) else {
            return Err(unauthorized("the token is missing"));
        };
        let token = raw
            .strip_prefix("Bearer ")
            .or_else(|| raw.strip_prefix("bearer "))
            .unwrap_or(raw)
            .trim();
        let mut parts = token.split('.');
        let (Some(h64), Some(p64), Some(s64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(unauthorized("the token is malformed"));
        };
        let header: serde_json::Value = b64(h64)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| unauthorized("the token is malformed"))?;
        let claims: serde_json::Value = b64(p64)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| unauthorized("the token is malformed"))?;
        let sig = b64(s64).ok_or_else(|| unauthorized("the token is malformed"))?;
        let alg = header.get("alg").and_then(|a| a.as_str()).unwrap_or("");
        let Some(alg) = self.conf.algorithms.iter().find(|a| *a == alg) else {
            return Err(unauthorized("the token's algorithm is not allowed"));
        };
        let kid = header.get("kid").and_then(|k| k.as_str()).unwrap_or("");
        let key = self
            .key(kid)
            .await
            .ok_or_else(|| unauthorized("the token's kid is not in the issuer's key set"))?;
        if key.alg.as_deref().is_some_and(|a| a != alg) {
            return Err(unauthorized("the key's algorithm does not match"));
        }
        let alg_static: &'static str = match alg.as_str() {
            "RS256" => "RS256",
            "RS384" => "RS384",
            "RS512" => "RS512",
            "PS256" => "PS256",
            "PS384" => "PS384",
            "PS512" => "PS512",
            "ES256" => "ES256",
            "ES384" => "ES384",
            "ES512" => "ES512",
            _ => "EdDSA",
        };
        if !(key.verify)(
            alg_static,
            &token.as_bytes()[..h64.len() + 1 + p64.len()],
            &sig,
        ) {
            return Err(unauthorized("the token signature is invalid"));
        }
        self.check_claims(&claims, now)?;
        Ok(self.identity(&claims))
    }

    /// AWS's claim checks, in its order: issuer, audience (or
    /// `client_id`), `exp`, `nbf`, `iat`, then the scopes.
    fn check_claims(&self, claims: &serde_json::Value, now: i64) -> Result<(), Rejection> {
        if claims.get("iss").and_then(|v| v.as_str()) != Some(self.conf.issuer.as_str()) {
            return Err(unauthorized("the token does not have a valid issuer"));
        }
        let audiences: Vec<&str> = match claims.get("aud").or_else(|| claims.get("client_id")) {
            Some(serde_json::Value::String(s)) => vec![s.as_str()],
            Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_str()).collect(),
            _ => vec![],
        };
        if !audiences
            .iter()
            .any(|a| self.conf.audiences.iter().any(|c| c == a))
        {
            return Err(unauthorized("the token does not have a valid audience"));
        }
        let num = |k: &str| claims.get(k).and_then(serde_json::Value::as_f64);
        match num("exp") {
            Some(exp) if exp > now as f64 => {}
            _ => return Err(unauthorized("the token has expired")),
        }
        if num("nbf").is_some_and(|nbf| nbf > now as f64) {
            return Err(unauthorized("the token is not valid yet"));
        }
        if num("iat").is_some_and(|iat| iat > now as f64) {
            return Err(unauthorized("the token was issued in the future"));
        }
        if !self.conf.scopes.is_empty() {
            let granted: Vec<&str> = match claims.get("scope").or_else(|| claims.get("scp")) {
                Some(serde_json::Value::String(s)) => s.split_whitespace().collect(),
                Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_str()).collect(),
                _ => vec![],
            };
            if !granted
                .iter()
                .any(|g| self.conf.scopes.iter().any(|s| s == g))
            {
                return Err(Rejection::OidcInsufficientScope);
            }
        }
        Ok(())
    }

    /// The headers the configured claims become.
    fn identity(&self, claims: &serde_json::Value) -> Identity {
        let mut identity = Identity::default();
        for (claim, header) in &self.conf.claims_to_headers {
            let Some(v) = claims.get(claim) else { continue };
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if let (Ok(n), Ok(v)) = (
                http::HeaderName::from_bytes(header.as_bytes()),
                http::HeaderValue::from_str(&text),
            ) {
                identity.headers.push((n, v));
            }
        }
        identity
    }

    /// The key for `kid`, fetching the key set when stale or when the kid is
    /// unknown (at most once per `refetch_interval`).
    async fn key(&self, kid: &str) -> Option<Arc<Key>> {
        let mut cache = self.cache.lock().await;
        let ttl = Duration::from_secs(self.conf.cache_ttl);
        let stale = cache.fetched.is_none_or(|t| t.elapsed() > ttl);
        let may_refetch = cache
            .fetched
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(self.conf.refetch_interval));
        if stale || (!cache.keys.contains_key(kid) && may_refetch) {
            match self.fetch().await {
                Ok(keys) => {
                    cache.keys = keys;
                    cache.fetched = Some(Instant::now());
                }
                Err(e) => {
                    tracing::warn!(issuer = %self.conf.issuer, error = %e, "cannot fetch the key set");
                    // Keep the old keys; try again after the refetch interval.
                    cache.fetched = Some(Instant::now());
                }
            }
        }
        cache.keys.get(kid).cloned()
    }

    async fn fetch(&self) -> Result<HashMap<String, Arc<Key>>, JwksError> {
        let body = if let Some(f) = &self.conf.jwks_file {
            Bytes::from(std::fs::read(f).map_err(|e| JwksError::new(f.display(), e))?)
        } else {
            let uri = match &self.conf.jwks_uri {
                Some(u) => u.clone(),
                None => {
                    let url = format!(
                        "{}/.well-known/openid-configuration",
                        self.conf.issuer.trim_end_matches('/')
                    );
                    let doc: serde_json::Value = serde_json::from_slice(&self.get(&url).await?)
                        .map_err(|e| JwksError::new(&url, e))?;
                    doc.get("jwks_uri")
                        .and_then(|u| u.as_str())
                        .ok_or_else(|| JwksError::new(&url, "no jwks_uri"))?
                        .to_owned()
                }
            };
            self.get(&uri).await?
        };
        parse_jwks(&body)
    }

    async fn get(&self, url: &str) -> Result<Bytes, JwksError> {
        let uri: http::Uri = url.parse().map_err(|e| JwksError::new(url, e))?;
        let resp = tokio::time::timeout(Duration::from_secs(5), self.client.get(uri))
            .await
            .map_err(|_| JwksError::new(url, "timed out"))?
            .map_err(|e| JwksError::new(url, e))?;
        if !resp.status().is_success() {
            return Err(JwksError::new(url, format!("status {}", resp.status())));
        }
        resp.into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .map_err(|e| JwksError::new(url, e))
    }
}

/// A key set that could not be had: where, and why (logged; the old keys stay).
#[derive(Debug, thiserror::Error)]
#[error("{place}: {reason}")]
pub struct JwksError {
    /// The URL or file.
    place: String,
    reason: String,
}

impl JwksError {
    fn new(place: impl std::fmt::Display, reason: impl std::fmt::Display) -> JwksError {
        JwksError {
            place: place.to_string(),
            reason: reason.to_string(),
        }
    }
}

/// Parses a JWK Set: RSA (`n`, `e`), EC P-256/P-384/P-521 (`x`, `y`) and OKP
/// Ed25519/Ed448 (`x`) keys; other keys are skipped.
fn parse_jwks(body: &[u8]) -> Result<HashMap<String, Arc<Key>>, JwksError> {
    let doc: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| JwksError::new("key set", e))?;
    let keys = doc
        .get("keys")
        .and_then(|k| k.as_array())
        .ok_or_else(|| JwksError::new("key set", "no \"keys\" array"))?;
    let mut out = HashMap::new();
    for k in keys {
        let s = |name: &str| k.get(name).and_then(|v| v.as_str());
        let kid = s("kid").unwrap_or("").to_owned();
        let alg = s("alg").map(str::to_owned);
        if let Some(verify) = jwk_verifier(k) {
            out.insert(kid, Arc::new(Key { alg, verify }));
        }
    }
    Ok(out)
}

/// One JWK's verifier, taking the token's `alg`; None for a key type, curve
/// or member this plugin does not verify with.
fn jwk_verifier(k: &serde_json::Value) -> Option<VerifyFn> {
    use super::keys::Verifier;
    let s = |name: &str| k.get(name).and_then(|v| v.as_str());
    let bytes = |name: &str| s(name).and_then(b64);
    // The uncompressed EC point 04 || x || y.
    let point = || {
        let (x, y) = (bytes("x")?, bytes("y")?);
        let mut point = vec![4u8];
        point.extend_from_slice(&x);
        point.extend_from_slice(&y);
        Some(point)
    };
    // Every key but RSA verifies one algorithm, as the credential's
    // verifier does: the JWK's curve names it.
    let (want, verifier) = match (s("kty"), s("crv")) {
        (Some("RSA"), _) => {
            let (n, e) = (bytes("n")?, bytes("e")?);
            let components = RsaPublicKeyComponents { n, e };
            return Some(Box::new(move |alg, msg, sig| {
                let Some(params) = super::keys::rsa_params(alg) else {
                    return false;
                };
                components.verify(params, msg, sig).is_ok()
            }));
        }
        (Some("EC"), Some("P-256")) => (
            "ES256",
            Verifier::Public(UnparsedPublicKey::new(
                &signature::ECDSA_P256_SHA256_FIXED,
                point()?,
            )),
        ),
        (Some("EC"), Some("P-384")) => (
            "ES384",
            Verifier::Public(UnparsedPublicKey::new(
                &signature::ECDSA_P384_SHA384_FIXED,
                point()?,
            )),
        ),
        (Some("EC"), Some("P-521")) => (
            "ES512",
            Verifier::P521(Box::new(
                p521::ecdsa::VerifyingKey::from_sec1_bytes(&point()?).ok()?,
            )),
        ),
        (Some("OKP"), Some("Ed448")) => {
            let x = bytes("x")?;
            let raw: &[u8; 57] = x.as_slice().try_into().ok()?;
            (
                "EdDSA",
                Verifier::Ed448(Box::new(
                    ed448_goldilocks_plus::VerifyingKey::from_bytes(raw).ok()?,
                )),
            )
        }
        (Some("OKP"), Some("Ed25519")) => (
            "EdDSA",
            Verifier::Public(UnparsedPublicKey::new(&signature::ED25519, bytes("x")?)),
        ),
        _ => return None,
    };
    Some(Box::new(move |alg, msg, sig| {
        alg == want && verifier.verify(msg, sig)
    }))
}
