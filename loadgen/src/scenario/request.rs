//! `[[request]]`: the request mix, and the token class a request carries.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::value::BadValue;
use crate::template::Template;

/// One request class of the mix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    /// Names the class in results (and its `.hlog` tag): letters, digits, `-_.`.
    pub name: String,
    /// Relative share of the mix (default 1).
    pub weight: Option<u32>,
    /// Default GET.
    pub method: Option<String>,
    /// Path and query template: `{seq}`, `{rand:N}`, `{uuid}`.
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Inline body.
    pub body: Option<String>,
    /// Body read from a file (relative to the scenario file).
    pub body_file: Option<PathBuf>,
    /// Random body of this many bytes (`1KiB`), generated once from the seed;
    /// at most [`MAX_BODY`].
    pub body_size: Option<String>,
    /// Expected status (default: any 2xx; with `token`, the class's status: 200 for
    /// valid and oversized, 401 for the invalid classes).
    pub expect: Option<u16>,
    /// The JWT this request carries (needs `[auth]`).
    pub token: Option<TokenClass>,
    /// Sign for this `[auth]` consumer only (default: spread over all consumers).
    pub consumer: Option<String>,
}

/// A `body_size` in bytes, within [`MAX_BODY`].
pub fn body_len(s: &str) -> Result<u64, BadValue> {
    let n = s
        .parse::<mock_upstream::Size>()
        .map_err(|e| BadValue(e.to_string()))?
        .0;
    within_max_body(n).map_err(|e| BadValue(format!("{s:?} is {}", e.0)))
}

/// `n` bytes, if a request body may be that long (`body_size`, and a
/// `body_file`'s length).
pub fn within_max_body(n: u64) -> Result<u64, BadValue> {
    if n > MAX_BODY {
        return Err(BadValue(format!(
            "{n} bytes; a request body is at most 256 MiB ({MAX_BODY} bytes)"
        )));
    }
    Ok(n)
}

/// The largest request body loadgen sends (`body_size`, `body_file`):
/// 256 MiB. A body is held in memory once per request class and copied into
/// each request's write buffer, so a typo (`64GiB`) must be an error naming
/// the field, not an allocation that aborts the process; anything larger is
/// an upload benchmark, not a gateway's.
pub const MAX_BODY: u64 = 256 << 20;

/// What a request carries: a valid token, or one a gateway must refuse for a
/// known reason.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
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
}

impl FromStr for TokenClass {
    type Err = BadValue;
    fn from_str(s: &str) -> Result<TokenClass, BadValue> {
        CLASSES.into_iter().find(|c| c.name() == s).ok_or_else(|| {
            BadValue(format!(
                "unknown token class {s:?} (expected one of: {})",
                CLASSES.map(TokenClass::name).join(", ")
            ))
        })
    }
}

impl RequestSpec {
    /// Rules across this request's fields: `(key, message)`.
    pub(super) fn validate(&self) -> Result<(), (&'static str, String)> {
        if !super::value::valid_name(&self.name) {
            return Err((
                "name",
                "use letters, digits, '-', '_' or '.' (it becomes an .hlog tag)".into(),
            ));
        }
        if let Some(m) = &self.method {
            http::Method::from_bytes(m.as_bytes())
                .map_err(|_| ("method", format!("{m:?} is not an HTTP method")))?;
        }
        Template::parse(&self.path).map_err(|e| ("path", e.to_string()))?;
        if !self.path.starts_with('/') {
            return Err(("path", "must start with '/'".into()));
        }
        super::value::header_map(&self.headers).map_err(|e| ("headers", e.0))?;
        let bodies = [
            self.body.is_some(),
            self.body_file.is_some(),
            self.body_size.is_some(),
        ];
        if bodies.iter().filter(|b| **b).count() > 1 {
            return Err(("body", "give one of body, body_file, body_size".into()));
        }
        if let Some(s) = &self.body_size {
            body_len(s).map_err(|e| ("body_size", e.0))?;
        }
        if let Some(s) = self.expect
            && !(100..=599).contains(&s)
        {
            return Err(("expect", format!("{s} is not an HTTP status")));
        }
        Ok(())
    }
}
