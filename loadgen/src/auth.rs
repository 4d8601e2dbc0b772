//! `[auth]`: the consumers a scenario signs tokens for, the claims, where the
//! token goes in the request, the token classes (valid and deliberately
//! invalid), and the token sources:
//! - `pool` (default): tokens signed before the run and re-signed in the
//!   background before they expire, so no signing happens on the send path;
//! - `per-request`: a fresh token (unique `jti`) for every request, signed by
//!   a thread per worker that runs ahead of the schedule through bounded
//!   queues. A worker that finds the queue empty waits; that wait is send lag,
//!   and it is counted (`signer_behind`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use hdrhistogram::Histogram;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::jwt::{self, Alg, Key};
use crate::scenario::Dur;

/// `[auth]` as written.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthSpec {
    /// `generic` (default), `kong`, `rust-gateway` or `aws-http-api`: sets defaults
    /// and what `loadgen provision` does.
    pub profile: Option<String>,
    /// `pool` (default) or `per-request`.
    pub source: Option<String>,
    /// Pool: tokens per consumer and class (default 2).
    pub pool_size: Option<usize>,
    /// Pool: re-sign a token this long before its `exp` (default: a quarter of `ttl`, at most 60s).
    pub refresh_margin: Option<Dur>,
    /// Where a consumer's key goes: `iss` (default; any claim name) or `kid` (the header).
    pub key_claim: Option<String>,
    /// `bearer` (default: `Authorization: Bearer`), `header:NAME` (`Bearer <token>`
    /// in NAME, as Kong's `header_names` expect), `cookie:NAME` or `query:NAME`.
    pub placement: Option<String>,
    /// The query parameter of the second token of class `duplicate` (default `jwt`, Kong's).
    pub duplicate_param: Option<String>,
    /// Header `typ` (default `JWT`; `""` leaves it out).
    pub typ: Option<String>,
    /// Token lifetime: `exp = now + ttl` (default 1h).
    pub ttl: Option<Dur>,
    /// `nbf = now − skew` (default 5s).
    pub skew: Option<Dur>,
    /// `iss` for every token (aws-http-api: the issuer URL; the key claim then must be `kid`).
    pub issuer: Option<String>,
    /// `sub` template (`{consumer}`, `{seq}`; default `{consumer}`).
    pub sub: Option<String>,
    /// `aud`: a string or a list.
    pub aud: Option<Aud>,
    /// `scope` (space-separated).
    pub scope: Option<String>,
    /// More claims; string values may use `{consumer}` and `{seq}`.
    #[serde(default)]
    pub claims: BTreeMap<String, serde_json::Value>,
    /// Size of tokens of class `oversized` (default 16KiB).
    pub oversize: Option<String>,
    #[serde(default, rename = "consumer")]
    pub consumer: Vec<ConsumerSpec>,
    #[serde(default, rename = "consumers")]
    pub generated: Vec<GeneratedSpec>,
}

/// `aud` as one string or several.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Aud {
    One(String),
    Many(Vec<String>),
}

/// One consumer (`[[auth.consumer]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsumerSpec {
    pub name: String,
    /// The key claim's value (default: the name).
    pub key: Option<String>,
    /// Default HS256.
    pub alg: Option<String>,
    /// HS*: the secret (its bytes are the HMAC key, as in Kong).
    pub secret: Option<String>,
    /// HS*: a file holding the secret (from `loadgen keys gen`; trailing newline ignored).
    pub secret_file: Option<PathBuf>,
    /// RS*/PS*/ES*/EdDSA: the private key PEM (relative to the scenario file).
    pub key_file: Option<PathBuf>,
    /// `kid` in the header (aws-http-api: the JWKS key id).
    pub kid: Option<String>,
    /// ACL groups (provisioned with the consumer).
    #[serde(default)]
    pub groups: Vec<String>,
}

/// Many consumers at once (`[[auth.consumers]]`): `{n}` in name, key,
/// secret and kid is the consumer's number, 1..=count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GeneratedSpec {
    pub count: usize,
    /// Default `consumer-{n}`.
    pub name: Option<String>,
    pub key: Option<String>,
    pub alg: Option<String>,
    pub secret: Option<String>,
    /// One key shared by all (RS*/PS*/ES*/EdDSA).
    pub key_file: Option<PathBuf>,
    pub kid: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// What a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TokenClass {
    Valid,
    Expired,
    NotYetValid,
    BadSignature,
    WrongKey,
    UnknownIssuer,
    AlgNone,
    AlgConfusion,
    Malformed,
    Missing,
    Duplicate,
    Oversized,
}

pub const CLASSES: [TokenClass; 12] = [
    TokenClass::Valid,
    TokenClass::Expired,
    TokenClass::NotYetValid,
    TokenClass::BadSignature,
    TokenClass::WrongKey,
    TokenClass::UnknownIssuer,
    TokenClass::AlgNone,
    TokenClass::AlgConfusion,
    TokenClass::Malformed,
    TokenClass::Missing,
    TokenClass::Duplicate,
    TokenClass::Oversized,
];

impl TokenClass {
    pub fn name(self) -> &'static str {
        match self {
            TokenClass::Valid => "valid",
            TokenClass::Expired => "expired",
            TokenClass::NotYetValid => "not-yet-valid",
            TokenClass::BadSignature => "bad-signature",
            TokenClass::WrongKey => "wrong-key",
            TokenClass::UnknownIssuer => "unknown-issuer",
            TokenClass::AlgNone => "alg-none",
            TokenClass::AlgConfusion => "alg-confusion",
            TokenClass::Malformed => "malformed",
            TokenClass::Missing => "missing",
            TokenClass::Duplicate => "duplicate",
            TokenClass::Oversized => "oversized",
        }
    }

    pub fn parse(s: &str) -> Result<TokenClass, String> {
        CLASSES.into_iter().find(|c| c.name() == s).ok_or_else(|| {
            format!(
                "unknown token class {s:?} (expected one of: {})",
                CLASSES.map(TokenClass::name).join(", ")
            )
        })
    }

    /// The status a gateway of `profile` answers (before any `expect`):
    /// 200 for a token it must accept, 401 for one it must refuse.
    pub fn expected(self, profile: Profile) -> u16 {
        match self {
            // A valid token that is merely large: accepted unless the gateway
            // caps header sizes (set `expect` on the request then).
            TokenClass::Valid | TokenClass::Oversized => 200,
            // AWS reads the Authorization header only: the second token, in
            // the query, goes unseen and the first is valid.
            TokenClass::Duplicate if profile == Profile::AwsHttpApi => 200,
            _ => 401,
        }
    }

    /// Whether tokens of this class need a signature (and so a key).
    fn signed(self) -> bool {
        !matches!(
            self,
            TokenClass::AlgNone | TokenClass::Malformed | TokenClass::Missing
        )
    }
}

/// Target profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Generic,
    Kong,
    RustGateway,
    AwsHttpApi,
}

impl Profile {
    pub fn parse(s: &str) -> Result<Profile, String> {
        Ok(match s {
            "generic" => Profile::Generic,
            "kong" => Profile::Kong,
            "rust-gateway" => Profile::RustGateway,
            "aws-http-api" => Profile::AwsHttpApi,
            _ => {
                return Err(format!(
                    "unknown profile {s:?} (expected generic, kong, rust-gateway or aws-http-api)"
                ));
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Profile::Generic => "generic",
            Profile::Kong => "kong",
            Profile::RustGateway => "rust-gateway",
            Profile::AwsHttpApi => "aws-http-api",
        }
    }
}

/// Where the token goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    Bearer,
    Header(http::HeaderName),
    Cookie(String),
    Query(String),
}

impl Placement {
    pub fn parse(s: &str) -> Result<Placement, String> {
        let bad = || format!("{s:?}: expected bearer, header:NAME, cookie:NAME or query:NAME");
        match s.split_once(':') {
            None if s == "bearer" => Ok(Placement::Bearer),
            Some(("header", n)) => http::HeaderName::from_bytes(n.as_bytes())
                .map(Placement::Header)
                .map_err(|_| bad()),
            Some(("cookie", n)) if !n.is_empty() => Ok(Placement::Cookie(n.to_owned())),
            Some(("query", n)) if !n.is_empty() => Ok(Placement::Query(n.to_owned())),
            _ => Err(bad()),
        }
    }
}

/// The token(s) one request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Carried {
    None,
    One(String),
    /// `duplicate`: the first where `placement` says, the second in the query.
    Two(String, String),
}

impl Carried {
    /// The first token, if any.
    pub fn first(&self) -> Option<&str> {
        match self {
            Carried::None => None,
            Carried::One(t) | Carried::Two(t, _) => Some(t),
        }
    }
}

/// Seconds since the Unix epoch; a seam for tests (paused time).
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> u64;
}

#[derive(Debug)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// A clock that moves only when told to.
#[derive(Debug, Default)]
pub struct ManualClock(pub AtomicU64);

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// One consumer, ready to sign for.
#[derive(Debug, Clone)]
pub struct Consumer {
    pub name: String,
    /// The key claim's value.
    pub key: String,
    pub alg: Alg,
    pub signing: Key,
    pub kid: Option<String>,
    /// HS*: the secret (for provisioning; never logged or written to results).
    pub secret: Option<String>,
    /// Asymmetric: the public key PEM (for provisioning and alg-confusion).
    pub public_pem: Option<String>,
    pub groups: Vec<String>,
}

/// Signing statistics, for the summary.
#[derive(Debug)]
pub struct SignStats {
    /// Time per signature, ns.
    pub signing: Histogram<u64>,
    pub signed: u64,
    /// Pool tokens signed on the send path because the refresh was late.
    pub on_send_path: u64,
    /// Per-request: times a worker found its signer's queue empty.
    pub behind: u64,
}

/// A pool entry's tokens, each with the time it must be replaced by.
type Pooled = Vec<(Arc<Carried>, u64)>;

/// Everything `[auth]` resolves to.
#[derive(Debug)]
pub struct Auth {
    pub profile: Profile,
    pub per_request: bool,
    pub placement: Placement,
    pub duplicate_param: String,
    key_in_kid: bool,
    key_claim: String,
    typ: Option<String>,
    ttl: u64,
    skew: u64,
    margin: u64,
    issuer: Option<String>,
    sub: String,
    aud: Option<Value>,
    scope: Option<String>,
    claims: BTreeMap<String, Value>,
    oversize: usize,
    pub consumers: Vec<Consumer>,
    /// For `wrong-key` (when used): per consumer, another key of the same algorithm.
    wrong: Vec<Key>,
    /// For `alg-confusion` (when used): per consumer, HMAC-SHA256 keyed with its public key PEM.
    confusion: Vec<Option<Key>>,
    /// The classes requests use, in a fixed order; a class's index is its slot.
    pub classes: Vec<TokenClass>,
    pool_size: usize,
    /// Per (consumer, class slot): tokens and their `exp`.
    /// Filled once by [`Auth::fill_pool`] (not by `loadgen validate`).
    pool: std::sync::OnceLock<Vec<ArcSwap<Pooled>>>,
    counter: AtomicU64,
    pub clock: Arc<dyn Clock>,
    pub stats: Mutex<SignStats>,
}

fn err(field: &str, msg: impl std::fmt::Display) -> String {
    format!("auth.{field}: {msg}")
}

fn fill(template: &str, n: usize) -> String {
    template.replace("{n}", &n.to_string())
}

impl Auth {
    /// Resolves `[auth]`: reads key files (relative to `dir`), checks each
    /// consumer's key against its algorithm. Errors name the field.
    pub fn new(
        spec: &AuthSpec,
        classes: &[TokenClass],
        dir: &Path,
        clock: Arc<dyn Clock>,
    ) -> Result<Auth, String> {
        let profile = Profile::parse(spec.profile.as_deref().unwrap_or("generic"))
            .map_err(|e| err("profile", e))?;
        let per_request = match spec.source.as_deref().unwrap_or("pool") {
            "pool" => false,
            "per-request" => true,
            s => {
                return Err(err(
                    "source",
                    format!("{s:?}: expected pool or per-request"),
                ));
            }
        };
        let placement = Placement::parse(spec.placement.as_deref().unwrap_or("bearer"))
            .map_err(|e| err("placement", e))?;
        let key_claim = spec.key_claim.clone().unwrap_or_else(|| {
            if profile == Profile::AwsHttpApi {
                "kid".into()
            } else {
                "iss".into()
            }
        });
        if key_claim.is_empty() {
            return Err(err("key_claim", "must not be empty"));
        }
        if profile == Profile::AwsHttpApi && spec.issuer.is_none() {
            return Err(err(
                "issuer",
                "aws-http-api needs the issuer URL tokens carry as iss",
            ));
        }
        let ttl = spec.ttl.map_or(3600, |d| d.0.as_secs());
        if ttl < 2 {
            return Err(err("ttl", "must be at least 2s"));
        }
        let margin = spec
            .refresh_margin
            .map_or((ttl / 4).min(60), |d| d.0.as_secs());
        if margin >= ttl {
            return Err(err("refresh_margin", "must be shorter than ttl"));
        }
        let oversize = spec
            .oversize
            .as_deref()
            .unwrap_or("16KiB")
            .parse::<mock_upstream::Size>()
            .map_err(|e| err("oversize", e))?
            .0 as usize;
        let mut consumers = Vec::new();
        let read = |field: &str, p: &Path| -> Result<String, String> {
            let path = dir.join(p);
            std::fs::read_to_string(&path)
                .map_err(|e| err(field, format!("{}: {e}", path.display())))
        };
        let mut key_cache: BTreeMap<PathBuf, Key> = BTreeMap::new();
        for (i, c) in spec.consumer.iter().enumerate() {
            let field = format!("consumer[{i}]");
            let alg = Alg::parse(c.alg.as_deref().unwrap_or("HS256"))
                .map_err(|e| err(&format!("{field}.alg"), e))?;
            let (signing, secret) = if alg.is_hmac() {
                let secret = match (&c.secret, &c.secret_file) {
                    (Some(s), None) => s.clone(),
                    (None, Some(f)) => read(&format!("{field}.secret_file"), f)?
                        .trim_end_matches(['\n', '\r'])
                        .to_owned(),
                    _ => {
                        return Err(err(
                            &format!("{field}.secret"),
                            format!("{alg} needs secret or secret_file (one of them)"),
                        ));
                    }
                };
                let key = Key::hmac(alg, secret.as_bytes())
                    .map_err(|e| err(&format!("{field}.secret"), e))?;
                (key, Some(secret))
            } else {
                let Some(f) = &c.key_file else {
                    return Err(err(
                        &format!("{field}.key_file"),
                        format!("{alg} needs key_file (a private key PEM)"),
                    ));
                };
                let text = read(&format!("{field}.key_file"), f)?;
                let key = Key::from_pem(alg, &text).map_err(|e| {
                    err(
                        &format!("{field}.key_file"),
                        format!("{}: {e}", dir.join(f).display()),
                    )
                })?;
                (key, None)
            };
            consumers.push(Consumer {
                name: c.name.clone(),
                key: c.key.clone().unwrap_or_else(|| c.name.clone()),
                alg,
                public_pem: signing.public_pem(),
                signing,
                kid: c.kid.clone(),
                secret,
                groups: c.groups.clone(),
            });
        }
        for (i, g) in spec.generated.iter().enumerate() {
            let field = format!("consumers[{i}]");
            if g.count == 0 {
                return Err(err(&format!("{field}.count"), "must be at least 1"));
            }
            let alg = Alg::parse(g.alg.as_deref().unwrap_or("HS256"))
                .map_err(|e| err(&format!("{field}.alg"), e))?;
            let shared = if alg.is_hmac() {
                if g.secret.is_none() {
                    return Err(err(
                        &format!("{field}.secret"),
                        format!("{alg} needs a secret template such as \"secret-{{n}}\""),
                    ));
                }
                None
            } else {
                let Some(f) = &g.key_file else {
                    return Err(err(
                        &format!("{field}.key_file"),
                        format!("{alg} needs key_file"),
                    ));
                };
                let path = dir.join(f);
                let key = match key_cache.get(&path) {
                    Some(k) => k.clone(),
                    None => {
                        let text = read(&format!("{field}.key_file"), f)?;
                        let k = Key::from_pem(alg, &text).map_err(|e| {
                            err(
                                &format!("{field}.key_file"),
                                format!("{}: {e}", path.display()),
                            )
                        })?;
                        key_cache.insert(path, k.clone());
                        k
                    }
                };
                Some(key)
            };
            for n in 1..=g.count {
                let name = fill(g.name.as_deref().unwrap_or("consumer-{n}"), n);
                let (signing, secret) = match &shared {
                    Some(k) => (k.clone(), None),
                    None => {
                        let s = fill(g.secret.as_deref().unwrap_or_default(), n);
                        (
                            Key::hmac(alg, s.as_bytes())
                                .map_err(|e| err(&format!("{field}.secret"), e))?,
                            Some(s),
                        )
                    }
                };
                consumers.push(Consumer {
                    key: g
                        .key
                        .as_deref()
                        .map_or_else(|| name.clone(), |k| fill(k, n)),
                    name,
                    alg,
                    public_pem: signing.public_pem(),
                    signing,
                    kid: g.kid.as_deref().map(|k| fill(k, n)),
                    secret,
                    groups: g.groups.clone(),
                });
            }
        }
        if consumers.is_empty() {
            return Err(err(
                "consumer",
                "at least one [[auth.consumer]] or [[auth.consumers]] is needed",
            ));
        }
        for (i, c) in consumers.iter().enumerate() {
            if consumers[..i].iter().any(|o| o.key == c.key) {
                return Err(err(
                    "consumer",
                    format!("two consumers have the key {:?}", c.key),
                ));
            }
        }
        if profile == Profile::AwsHttpApi
            && let Some(c) = consumers
                .iter()
                .find(|c| c.kid.is_none() && key_claim != "kid")
        {
            return Err(err(
                "consumer",
                format!(
                    "{}: aws-http-api tokens need a kid (the JWKS key id)",
                    c.name
                ),
            ));
        }
        // Keys for the classes that need them, prepared only when used: a
        // fresh RSA key takes ~0.2 s, and thousands of generated consumers
        // may share one key file.
        let wrong = if classes.contains(&TokenClass::WrongKey) {
            wrong_keys(&consumers)?
        } else {
            Vec::new()
        };
        let confusion = if classes.contains(&TokenClass::AlgConfusion) {
            consumers.iter().map(confusion_key).collect()
        } else {
            Vec::new()
        };
        if classes.contains(&TokenClass::AlgConfusion)
            && let Some(c) = consumers.iter().find(|c| c.public_pem.is_none())
        {
            return Err(err(
                "consumer",
                format!(
                    "{}: token class alg-confusion needs consumers with a public key (RS*, PS*, ES*, EdDSA), not {}",
                    c.name, c.alg
                ),
            ));
        }
        let mut classes = classes.to_vec();
        classes.sort();
        classes.dedup();
        let aud = spec.aud.as_ref().map(|a| match a {
            Aud::One(s) => json!(s),
            Aud::Many(v) => json!(v),
        });
        let typ = match spec.typ.as_deref() {
            None => Some("JWT".to_owned()),
            Some("") => None,
            Some(t) => Some(t.to_owned()),
        };
        let auth = Auth {
            profile,
            per_request,
            placement,
            duplicate_param: spec.duplicate_param.clone().unwrap_or_else(|| "jwt".into()),
            key_in_kid: key_claim == "kid",
            key_claim,
            typ,
            ttl,
            skew: spec.skew.map_or(5, |d| d.0.as_secs()),
            margin,
            issuer: spec.issuer.clone(),
            sub: spec.sub.clone().unwrap_or_else(|| "{consumer}".into()),
            aud,
            scope: spec.scope.clone(),
            claims: spec.claims.clone(),
            oversize,
            consumers,
            wrong,
            confusion,
            classes,
            pool_size: spec.pool_size.unwrap_or(2).max(1),
            pool: std::sync::OnceLock::new(),
            counter: AtomicU64::new(0),
            clock,
            stats: Mutex::new(SignStats {
                signing: Histogram::new_with_bounds(1, 60_000_000_000, 3)
                    .map_err(|e| e.to_string())?,
                signed: 0,
                on_send_path: 0,
                behind: 0,
            }),
        };
        Ok(auth)
    }

    /// The claim (or `kid`) that carries a consumer's key.
    pub fn key_claim_name(&self) -> &str {
        &self.key_claim
    }

    /// The class slot of `class` in [`Auth::classes`].
    pub fn slot(&self, class: TokenClass) -> Option<usize> {
        self.classes.iter().position(|c| *c == class)
    }

    fn render(&self, template: &str, consumer: &Consumer, seq: u64) -> String {
        template
            .replace("{consumer}", &consumer.name)
            .replace("{seq}", &seq.to_string())
    }

    /// Mints the token(s) of `class` for consumer `ci` at `now` (Unix seconds).
    /// Returns what the request carries and when it must be replaced
    /// (`now + ttl`, the `exp` of a valid token; the other classes keep their
    /// offsets from the signing time, so they stay what they are until then).
    pub fn mint(&self, class: TokenClass, ci: usize, now: u64) -> (Carried, u64) {
        let started = Instant::now();
        let seq = self.counter.fetch_add(1, Ordering::Relaxed);
        let c = &self.consumers[ci];
        let (mut iat, mut nbf, mut exp) = (now, now.saturating_sub(self.skew), now + self.ttl);
        match class {
            TokenClass::Expired => {
                iat = now.saturating_sub(2 * 3600);
                nbf = iat;
                exp = now.saturating_sub(3600);
            }
            TokenClass::NotYetValid => {
                // Still not valid when the pool re-signs it (after at most ttl).
                nbf = now + self.ttl + 3600;
                exp = nbf + 3600;
            }
            _ => {}
        }
        let mut claims = Map::new();
        if let Some(iss) = &self.issuer {
            claims.insert("iss".into(), iss.clone().into());
        }
        if !self.key_in_kid {
            let key = if class == TokenClass::UnknownIssuer {
                format!("unknown-{}", uuid::Uuid::new_v4().simple())
            } else {
                c.key.clone()
            };
            claims.insert(self.key_claim.clone(), key.into());
        } else if class == TokenClass::UnknownIssuer && self.issuer.is_some() {
            // aws-http-api: the issuer is what is unknown.
            claims.insert("iss".into(), "https://unknown-issuer.invalid".into());
        }
        claims.insert("sub".into(), self.render(&self.sub, c, seq).into());
        if let Some(aud) = &self.aud {
            claims.insert("aud".into(), aud.clone());
        }
        if let Some(scope) = &self.scope {
            claims.insert("scope".into(), scope.clone().into());
        }
        for (k, v) in &self.claims {
            let v = match v {
                Value::String(s) => Value::String(self.render(s, c, seq)),
                other => other.clone(),
            };
            claims.insert(k.clone(), v);
        }
        claims.insert("iat".into(), iat.into());
        claims.insert("nbf".into(), nbf.into());
        claims.insert("exp".into(), exp.into());
        claims.insert("jti".into(), uuid::Uuid::new_v4().to_string().into());
        if class == TokenClass::Oversized {
            let pad = (self.oversize * 3 / 4).saturating_sub(400);
            claims.insert("pad".into(), "x".repeat(pad).into());
        }
        let kid = if self.key_in_kid {
            if class == TokenClass::UnknownIssuer && self.issuer.is_none() {
                Some(format!("unknown-{}", uuid::Uuid::new_v4().simple()))
            } else {
                Some(c.kid.clone().unwrap_or_else(|| c.key.clone()))
            }
        } else {
            c.kid.clone()
        };
        let typ = self.typ.as_deref();
        let sign = |alg: &str, key: &Key, claims: &Map<String, Value>| {
            jwt::encode(&jwt::header(alg, typ, kid.as_deref()), claims, key)
        };
        let carried = match class {
            TokenClass::Missing => Carried::None,
            TokenClass::Malformed => Carried::One("eyJhbGciOiJIUzI1NiJ9.not-base64!.%%%".into()),
            TokenClass::AlgNone => {
                let input = jwt::signing_input(&jwt::header("none", typ, kid.as_deref()), &claims);
                Carried::One(format!("{input}."))
            }
            TokenClass::BadSignature => {
                let mut t = sign(c.alg.name(), &c.signing, &claims);
                // Flip one character in the middle of the signature (stays base64url).
                let dot = t.rfind('.').unwrap_or(0);
                let at = dot + 1 + (t.len() - dot - 1) / 2;
                let flipped = if &t[at..=at] == "A" { "B" } else { "A" };
                t.replace_range(at..=at, flipped);
                Carried::One(t)
            }
            TokenClass::WrongKey => match self.wrong.get(ci) {
                Some(k) => Carried::One(sign(c.alg.name(), k, &claims)),
                // Not prepared (the class was not given to `new`): any other
                // key will do, here a random HMAC secret under the same header.
                None => Carried::One(sign(c.alg.name(), &random_hmac(), &claims)),
            },
            TokenClass::AlgConfusion => {
                match self
                    .confusion
                    .get(ci)
                    .cloned()
                    .unwrap_or_else(|| confusion_key(c))
                {
                    Some(k) => Carried::One(sign("HS256", &k, &claims)),
                    // An HMAC consumer has no public key: `new` refuses that pairing.
                    None => Carried::One(sign(c.alg.name(), &random_hmac(), &claims)),
                }
            }
            TokenClass::Duplicate => {
                let a = sign(c.alg.name(), &c.signing, &claims);
                claims.insert("jti".into(), uuid::Uuid::new_v4().to_string().into());
                let b = sign(c.alg.name(), &c.signing, &claims);
                Carried::Two(a, b)
            }
            _ => Carried::One(sign(c.alg.name(), &c.signing, &claims)),
        };
        if class.signed() {
            let mut s = self.stats.lock().unwrap_or_else(|p| p.into_inner());
            let _ = s.signing.record(started.elapsed().as_nanos() as u64);
            s.signed += 1;
        }
        // Re-sign by the time a valid token minted now would expire.
        (carried, now + self.ttl)
    }

    /// Pool: signs every consumer's tokens for every class (in parallel).
    pub fn fill_pool(&self) {
        let now = self.clock.now();
        let slots = self.consumers.len() * self.classes.len();
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(8);
        let chunk = slots.div_ceil(threads).max(1);
        let this = self;
        let pool: Vec<Pooled> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..slots)
                .step_by(chunk)
                .map(|start| {
                    s.spawn(move || {
                        (start..(start + chunk).min(slots))
                            .map(|i| this.mint_slot(i, now))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        });
        let _ = self
            .pool
            .set(pool.into_iter().map(ArcSwap::from_pointee).collect());
    }

    fn mint_slot(&self, i: usize, now: u64) -> Pooled {
        let (ci, slot) = (i / self.classes.len(), i % self.classes.len());
        (0..self.pool_size)
            .map(|_| {
                let (c, exp) = self.mint(self.classes[slot], ci, now);
                (Arc::new(c), exp)
            })
            .collect()
    }

    /// Whether a pool token to be replaced at `until` may be handed out at `now`.
    fn fresh(&self, until: u64, now: u64) -> bool {
        until > now + self.margin
    }

    /// Pool: re-signs the tokens within the refresh margin of expiry; returns how many.
    pub fn refresh(&self) -> usize {
        let now = self.clock.now();
        let mut n = 0;
        for (i, entry) in self.pool.get().into_iter().flatten().enumerate() {
            let current = entry.load();
            // Re-sign a little before the margin so the send path never has to.
            if current
                .iter()
                .all(|(_, until)| self.fresh(until.saturating_sub(2), now))
            {
                continue;
            }
            entry.store(Arc::new(self.mint_slot(i, now)));
            n += self.pool_size;
        }
        n
    }

    /// The consumer of request `seq`: fixed, or spread over all by the seed.
    pub fn consumer_of(&self, fixed: Option<usize>, seed: u64, seq: u64) -> usize {
        fixed.unwrap_or_else(|| {
            (crate::engine::worker::mix(&[seed, seq, 0xC0_5E]) % self.consumers.len() as u64)
                as usize
        })
    }

    /// Pool: the token for request `seq`. Never one within the refresh margin
    /// of its expiry: if the refresh fell behind, it is signed here (counted).
    pub fn pooled(&self, slot: usize, ci: usize, seq: u64) -> Arc<Carried> {
        let class = self.classes[slot];
        // Not filled (a caller skipped fill_pool): sign here, and count it.
        let entry = self
            .pool
            .get()
            .and_then(|p| p.get(ci * self.classes.len() + slot));
        let Some(entry) = entry else {
            let (c, _) = self.mint(class, ci, self.clock.now());
            self.stats
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .on_send_path += 1;
            return Arc::new(c);
        };
        let tokens = entry.load();
        let (t, exp) = &tokens[(seq % tokens.len() as u64) as usize];
        let now = self.clock.now();
        if self.fresh(*exp, now) {
            return t.clone();
        }
        let (c, _) = self.mint(class, ci, now);
        self.stats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .on_send_path += 1;
        Arc::new(c)
    }

    /// Per-request: a signer thread feeding one worker, one queue per class.
    pub fn feed(self: &Arc<Self>, seed: u64, capacity: usize) -> Feed {
        let mut senders = Vec::new();
        let mut receivers = Vec::new();
        for _ in &self.classes {
            let (tx, rx) = sync_channel::<Carried>(capacity.max(1));
            senders.push(tx);
            receivers.push(rx);
        }
        let auth = self.clone();
        let thread = std::thread::Builder::new()
            .name("loadgen-signer".into())
            .spawn(move || signer(auth, senders, seed))
            .ok();
        Feed {
            receivers,
            _thread: thread,
        }
    }

    /// Per-request: the next token of class `slot` from the worker's feed.
    /// Empty means the signer is behind: the caller waits, without blocking
    /// its event loop, and that wait shows as send lag.
    pub fn try_next(&self, feed: &Feed, slot: usize) -> Option<Carried> {
        feed.receivers[slot].try_recv().ok()
    }

    /// Counts one send that had to wait for its signer.
    pub fn note_behind(&self) {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).behind += 1;
    }

    /// Summary figures.
    pub fn summary(&self) -> reports::summary::AuthSummary {
        let s = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        reports::summary::AuthSummary {
            profile: self.profile.name().into(),
            source: if self.per_request {
                "per-request"
            } else {
                "pool"
            }
            .into(),
            consumers: self.consumers.len(),
            classes: self.classes.iter().map(|c| c.name().to_owned()).collect(),
            signing: reports::summary::Percentiles::of(&s.signing),
            tokens_signed: s.signed,
            signed_on_send_path: s.on_send_path,
            signer_behind: s.behind,
        }
    }
}

impl Auth {
    /// Puts `carried` where `placement` says, as three parts to concatenate
    /// (no allocation: the HTTP/1 writer copies them straight into its
    /// buffer): a header's value, or a query parameter `name=token`. The
    /// second token of `duplicate` goes into the query as `duplicate_param`.
    pub fn place<'a>(&'a self, carried: &'a Carried, put: &mut dyn FnMut(Put<'a>, [&'a str; 3])) {
        let (first, second) = match carried {
            Carried::None => return,
            Carried::One(t) => (t.as_str(), None),
            Carried::Two(a, b) => (a.as_str(), Some(b.as_str())),
        };
        match &self.placement {
            Placement::Bearer => put(
                Put::Header(&http::header::AUTHORIZATION),
                ["Bearer ", first, ""],
            ),
            // Kong's header_names match `Bearer <token>` in any configured header.
            Placement::Header(n) => put(Put::Header(n), ["Bearer ", first, ""]),
            Placement::Cookie(n) => put(Put::Header(&http::header::COOKIE), [n, "=", first]),
            Placement::Query(n) => put(Put::Query, [n, "=", first]),
        }
        if let Some(b) = second {
            put(Put::Query, [&self.duplicate_param, "=", b]);
        }
    }
}

/// Where [`Auth::place`] puts a token.
#[derive(Debug, Clone, Copy)]
pub enum Put<'a> {
    Header(&'a http::HeaderName),
    Query,
}

/// An HMAC key nobody holds.
fn random_hmac() -> Key {
    // A non-empty secret always makes a key.
    Key::hmac(Alg::HS256, jwt::random_secret().as_bytes()).expect("non-empty secret")
}

/// `alg-confusion`: HMAC-SHA256 keyed with the consumer's public key PEM.
fn confusion_key(c: &Consumer) -> Option<Key> {
    c.public_pem
        .as_deref()
        .and_then(|p| Key::hmac(Alg::HS256, p.as_bytes()).ok())
}

/// `wrong-key`: per consumer, a key of its algorithm that is not its own:
/// the first other distinct key among the consumers (by secret or public
/// key), else one fresh key per algorithm. One pass, so thousands of
/// consumers sharing a key file cost no more than a few.
fn wrong_keys(consumers: &[Consumer]) -> Result<Vec<Key>, String> {
    let id = |c: &Consumer| {
        c.secret
            .clone()
            .or_else(|| c.public_pem.clone())
            .unwrap_or_default()
    };
    // Per algorithm, its first two distinct keys (two suffice: one is not yours).
    let mut firsts: Vec<(Alg, Vec<(String, Key)>)> = Vec::new();
    for c in consumers {
        let i = match firsts.iter().position(|(a, _)| *a == c.alg) {
            Some(i) => i,
            None => {
                firsts.push((c.alg, Vec::new()));
                firsts.len() - 1
            }
        };
        let keys = &mut firsts[i].1;
        let me = id(c);
        if keys.len() < 2 && keys.iter().all(|(k, _)| *k != me) {
            keys.push((me, c.signing.clone()));
        }
    }
    let mut fresh: Vec<(Alg, Key)> = Vec::new();
    consumers
        .iter()
        .map(|c| {
            let me = id(c);
            let other = firsts
                .iter()
                .find(|(a, _)| *a == c.alg)
                .and_then(|(_, keys)| keys.iter().find(|(k, _)| *k != me));
            if let Some((_, k)) = other {
                return Ok(k.clone());
            }
            if let Some((_, k)) = fresh.iter().find(|(a, _)| *a == c.alg) {
                return Ok(k.clone());
            }
            let k = if c.alg.is_hmac() {
                Key::hmac(c.alg, jwt::random_secret().as_bytes())?
            } else {
                Key::from_pem(c.alg, &jwt::generate_private_pem(c.alg, 2048)?)?
            };
            fresh.push((c.alg, k.clone()));
            Ok(k)
        })
        .collect()
}

/// A worker's per-request token queues.
#[derive(Debug)]
pub struct Feed {
    receivers: Vec<Receiver<Carried>>,
    _thread: Option<std::thread::JoinHandle<()>>,
}

/// Keeps every queue full; consumers picked by a seeded sequence per class.
fn signer(auth: Arc<Auth>, senders: Vec<SyncSender<Carried>>, seed: u64) {
    let mut pending: Vec<Option<Carried>> = vec![None; senders.len()];
    let mut n = vec![0u64; senders.len()];
    let mut open = senders.len();
    while open > 0 {
        let mut progressed = false;
        open = 0;
        for (slot, tx) in senders.iter().enumerate() {
            let item = pending[slot].take().unwrap_or_else(|| {
                let ci = auth.consumer_of(None, seed ^ slot as u64, n[slot]);
                n[slot] += 1;
                auth.mint(auth.classes[slot], ci, auth.clock.now()).0
            });
            match tx.try_send(item) {
                Ok(()) => {
                    progressed = true;
                    open += 1;
                }
                Err(TrySendError::Full(item)) => {
                    pending[slot] = Some(item);
                    open += 1;
                }
                Err(TrySendError::Disconnected(_)) => {}
            }
        }
        if !progressed {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

/// Pool: re-signs tokens in the background until `stop` is set.
pub fn refresher(
    auth: Arc<Auth>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            auth.refresh();
            std::thread::sleep(Duration::from_millis(250));
        }
    })
}

/// Consumer records for provisioning, as JSON (secrets included: this goes
/// to the gateway's Admin API or config, never to results).
pub fn consumer_json(c: &Consumer) -> Value {
    json!({
        "username": c.name,
        "key": c.key,
        "algorithm": c.alg.name(),
        "secret": c.secret,
        "rsa_public_key": c.public_pem,
        "groups": c.groups,
    })
}
