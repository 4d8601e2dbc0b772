//! `[auth]` as written: consumers, claims, where the token goes and which
//! source signs it. `crate::token` turns it into signed tokens.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::dur::Dur;
use super::value::BadValue;
use crate::token::jwt::Alg;

/// `[auth]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthSpec {
    /// Sets defaults and what `loadgen provision` does (default `generic`).
    pub profile: Option<Profile>,
    /// `pool` (default) or `per-request`.
    pub source: Option<TokenSource>,
    /// Pool: tokens per consumer and class (default 2).
    pub pool_size: Option<usize>,
    /// Pool: re-sign a token this long before its `exp` (default: a quarter of `ttl`, at most 60s).
    pub refresh_margin: Option<Dur>,
    /// Where a consumer's key goes: `iss` (default; any claim name) or `kid` (the header).
    pub key_claim: Option<String>,
    /// `bearer` (default: `Authorization: Bearer`), `header:NAME` (`Bearer <token>`
    /// in NAME, as Kong's `header_names` expect), `cookie:NAME` or `query:NAME`.
    pub placement: Option<Placement>,
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
    /// How requests that pin no consumer spread over the consumers:
    /// `uniform` (default), `zipf:S` (the consumer of rank k, in the order
    /// listed, gets a share ∝ 1/k^S; S in (0, 10]) or `hot:P%:Q%` (the first
    /// P % of consumers get Q % of requests, uniformly within each part).
    /// Seeded: the same consumer per request on every target and shard.
    pub popularity: Option<Popularity>,
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
    pub alg: Option<Alg>,
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
    pub alg: Option<Alg>,
    pub secret: Option<String>,
    /// One key shared by all (RS*/PS*/ES*/EdDSA).
    pub key_file: Option<PathBuf>,
    pub kid: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// What kind of gateway the tokens are for: it decides the expected status
/// of some classes and what `loadgen provision` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    #[default]
    Generic,
    Kong,
    RustGateway,
    AwsHttpApi,
    /// Envoy's jwt_authn as `loadgen provision envoy` sets it up.
    Envoy,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::Generic => "generic",
            Profile::Kong => "kong",
            Profile::RustGateway => "rust-gateway",
            Profile::AwsHttpApi => "aws-http-api",
            Profile::Envoy => "envoy",
        }
    }
}

/// When tokens are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TokenSource {
    /// Before the run, re-signed in the background before they expire.
    #[default]
    Pool,
    /// A fresh token for every request, signed ahead of the schedule.
    PerRequest,
}

impl TokenSource {
    pub fn name(self) -> &'static str {
        match self {
            TokenSource::Pool => "pool",
            TokenSource::PerRequest => "per-request",
        }
    }
}

/// How unpinned requests spread over the consumers (`[auth] popularity`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Popularity {
    #[default]
    Uniform,
    /// The consumer of rank k (1-based, in the order listed) with weight 1/k^s.
    Zipf(f64),
    /// The first `share` of consumers (a fraction) get `traffic` of the requests.
    Hot { share: f64, traffic: f64 },
}

impl FromStr for Popularity {
    type Err = BadValue;
    fn from_str(s: &str) -> Result<Popularity, BadValue> {
        let bad = |why: &str| {
            BadValue(format!(
                "{s:?}: {why}expected uniform, zipf:S (0 < S <= 10) or hot:P%:Q% (0 < P < 100, 0 <= Q <= 100)"
            ))
        };
        let percent = |v: &str| {
            v.strip_suffix('%')
                .and_then(|n| n.parse::<f64>().ok())
                .filter(|n| n.is_finite())
        };
        match s.split(':').collect::<Vec<_>>().as_slice() {
            ["uniform"] => Ok(Popularity::Uniform),
            ["zipf", e] => match e.parse::<f64>() {
                Ok(e) if e > 0.0 && e <= 10.0 => Ok(Popularity::Zipf(e)),
                _ => Err(bad("the exponent is out of range; ")),
            },
            ["hot", p, q] => match (percent(p), percent(q)) {
                (Some(p), Some(q)) if p > 0.0 && p < 100.0 && (0.0..=100.0).contains(&q) => {
                    Ok(Popularity::Hot {
                        share: p / 100.0,
                        traffic: q / 100.0,
                    })
                }
                _ => Err(bad("the percentages are out of range; ")),
            },
            _ => Err(bad("")),
        }
    }
}

impl fmt::Display for Popularity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Popularity::Uniform => f.write_str("uniform"),
            Popularity::Zipf(e) => write!(f, "zipf:{e}"),
            Popularity::Hot { share, traffic } => {
                write!(f, "hot:{}%:{}%", share * 100.0, traffic * 100.0)
            }
        }
    }
}

super::value::string_serde!(
    Popularity,
    "Popularity",
    "`uniform`, `zipf:S` or `hot:P%:Q%`",
    "^(uniform|zipf:[0-9.]+|hot:[0-9.]+%:[0-9.]+%)$"
);

/// Where the token goes in the request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Placement {
    /// `Authorization: Bearer <token>`.
    #[default]
    Bearer,
    /// `NAME: Bearer <token>`.
    Header(http::HeaderName),
    /// `Cookie: NAME=<token>`.
    Cookie(String),
    /// `?NAME=<token>`.
    Query(String),
}

impl FromStr for Placement {
    type Err = BadValue;
    fn from_str(s: &str) -> Result<Placement, BadValue> {
        let bad = || {
            BadValue(format!(
                "{s:?}: expected bearer, header:NAME, cookie:NAME or query:NAME"
            ))
        };
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

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Placement::Bearer => f.write_str("bearer"),
            Placement::Header(n) => write!(f, "header:{n}"),
            Placement::Cookie(n) => write!(f, "cookie:{n}"),
            Placement::Query(n) => write!(f, "query:{n}"),
        }
    }
}

super::value::string_serde!(
    Placement,
    "Placement",
    "`bearer`, `header:NAME`, `cookie:NAME` or `query:NAME`",
    "^(bearer|header:.+|cookie:.+|query:.+)$"
);
