//! Every way the gateway refuses a request, declared once: each
//! [`Rejection`] knows its status, its exact body (Kong 3.9.3's bytes), its
//! `WWW-Authenticate` value and the [`Reason`] it is counted under at
//! `/metrics` (axum's `define_rejection!` is the model). Plugins return a
//! `Rejection`; only [`Rejection::response_parts`] turns it into bytes.

use bytes::Bytes;
use serde_json::{Map, Value, json};

/// The label a refusal is counted under (`gateway_auth_failures_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Unauthorized,
    MultipleTokens,
    Unrecognizable,
    InvalidJson,
    InvalidAlg,
    BadSignature,
    NoKeyClaim,
    InvalidKeyClaim,
    NoCredentials,
    InvalidAlgorithm,
    InvalidKey,
    InvalidSignature,
    Claims,
    MaxExpiration,
    AclForbidden,
    Other,
}

impl Reason {
    /// Every reason, in the order `/metrics` lists them.
    pub const ALL: [Reason; 16] = [
        Reason::Unauthorized,
        Reason::MultipleTokens,
        Reason::Unrecognizable,
        Reason::InvalidJson,
        Reason::InvalidAlg,
        Reason::BadSignature,
        Reason::NoKeyClaim,
        Reason::InvalidKeyClaim,
        Reason::NoCredentials,
        Reason::InvalidAlgorithm,
        Reason::InvalidKey,
        Reason::InvalidSignature,
        Reason::Claims,
        Reason::MaxExpiration,
        Reason::AclForbidden,
        Reason::Other,
    ];

    /// The metric label: Kong's message (its stable prefix for messages
    /// that name the key claim).
    pub fn label(self) -> &'static str {
        match self {
            Reason::Unauthorized => "Unauthorized",
            Reason::MultipleTokens => "Multiple tokens provided",
            Reason::Unrecognizable => "Unrecognizable token",
            Reason::InvalidJson => "Bad token; invalid JSON",
            Reason::InvalidAlg => "Bad token; invalid alg",
            Reason::BadSignature => "Bad token; invalid signature",
            Reason::NoKeyClaim => "No mandatory key claim",
            Reason::InvalidKeyClaim => "Invalid key claim",
            Reason::NoCredentials => "No credentials found",
            Reason::InvalidAlgorithm => "Invalid algorithm",
            Reason::InvalidKey => "Invalid key/secret",
            Reason::InvalidSignature => "Invalid signature",
            Reason::Claims => "claims",
            Reason::MaxExpiration => "exceeds maximum allowed expiration",
            Reason::AclForbidden => "You cannot consume this service",
            Reason::Other => "other",
        }
    }

    /// Position in [`Reason::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Why the jwt plugin refused a token it found (401, `error="invalid_token"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtFault {
    MultipleTokens,
    /// A non-string token: Kong's `?jwt` with no value (`true`).
    Unrecognizable,
    InvalidJson,
    InvalidAlg,
    BadSignature,
    /// The key claim's name.
    NoKeyClaim(String),
    InvalidKeyClaim(String),
    NoCredentials(String),
    InvalidAlgorithm,
    InvalidKey,
    InvalidSignature,
}

/// A refused request.
#[derive(Debug, Clone, PartialEq)]
pub enum Rejection {
    /// jwt: no token where the plugin looks (`WWW-Authenticate` without an error).
    JwtMissing { realm: Option<String> },
    /// jwt: a token that is refused before its claims are checked.
    Jwt {
        fault: JwtFault,
        realm: Option<String>,
    },
    /// jwt `claims_to_verify`: each failed claim with its message.
    JwtClaims {
        errors: Map<String, Value>,
        realm: Option<String>,
    },
    /// jwt `maximum_expiration`.
    JwtMaxExpiration { realm: Option<String> },
    /// jwt: an ES*/PS* signature of the wrong length, a Lua error in Kong (500).
    JwtSignatureLength,
    /// jwt: authentication failed and the anonymous consumer does not exist (500).
    AnonymousMissing,
    /// acl: an authenticated consumer outside the allowed groups.
    AclForbidden,
    /// acl: no authenticated consumer.
    AclUnauthorized,
    /// oidc (AWS HTTP API JWT authorizer): the token is not acceptable.
    OidcInvalidToken { description: &'static str },
    /// oidc: none of the required scopes.
    OidcInsufficientScope,
    /// No route matches.
    NoRoute,
    /// The request cannot be forwarded as written.
    BadRequest,
    /// The upstream did not answer within the read timeout.
    UpstreamTimeout,
    /// The upstream could not be reached or answered badly.
    UpstreamInvalid,
}

impl JwtFault {
    fn message(&self) -> String {
        match self {
            JwtFault::MultipleTokens => "Multiple tokens provided".into(),
            JwtFault::Unrecognizable => "Unrecognizable token".into(),
            JwtFault::InvalidJson => "Bad token; invalid JSON".into(),
            JwtFault::InvalidAlg => "Bad token; invalid alg".into(),
            JwtFault::BadSignature => "Bad token; invalid signature".into(),
            JwtFault::NoKeyClaim(k) => format!("No mandatory '{k}' in claims"),
            JwtFault::InvalidKeyClaim(k) => format!("Invalid '{k}' in claims"),
            JwtFault::NoCredentials(k) => format!("No credentials found for given '{k}'"),
            JwtFault::InvalidAlgorithm => "Invalid algorithm".into(),
            JwtFault::InvalidKey => "Invalid key/secret".into(),
            JwtFault::InvalidSignature => "Invalid signature".into(),
        }
    }

    fn reason(&self) -> Reason {
        match self {
            JwtFault::MultipleTokens => Reason::MultipleTokens,
            JwtFault::Unrecognizable => Reason::Unrecognizable,
            JwtFault::InvalidJson => Reason::InvalidJson,
            JwtFault::InvalidAlg => Reason::InvalidAlg,
            JwtFault::BadSignature => Reason::BadSignature,
            JwtFault::NoKeyClaim(_) => Reason::NoKeyClaim,
            JwtFault::InvalidKeyClaim(_) => Reason::InvalidKeyClaim,
            JwtFault::NoCredentials(_) => Reason::NoCredentials,
            JwtFault::InvalidAlgorithm => Reason::InvalidAlgorithm,
            JwtFault::InvalidKey => Reason::InvalidKey,
            JwtFault::InvalidSignature => Reason::InvalidSignature,
        }
    }
}

/// Kong's jwt `WWW-Authenticate`.
fn jwt_www(realm: Option<&str>, invalid_token: bool) -> String {
    match (realm, invalid_token) {
        (None, false) => "Bearer".into(),
        (None, true) => "Bearer error=\"invalid_token\"".into(),
        (Some(r), false) => format!("Bearer realm=\"{r}\""),
        // Kong 3.8.0–3.9.3 separates with a space (master uses a comma).
        (Some(r), true) => format!("Bearer realm=\"{r}\" error=\"invalid_token\""),
    }
}

/// The jwt plugin's exits and plain messages: compact cjson (`/` escaped as `\/`).
fn compact(body: &Value) -> Bytes {
    Bytes::from(
        serde_json::to_string(body)
            .unwrap_or_default()
            .replace('/', "\\/"),
    )
}

fn message(m: &str) -> Bytes {
    compact(&json!({ "message": m }))
}

/// `kong.response.error`: Kong's pretty JSON error template with a `request_id`.
fn template(m: &str) -> Bytes {
    Bytes::from(kong_template(0, m))
}

/// Kong's JSON error template, for the answers the server gives on its own
/// (a late head's 408, an unparsable head's 400, 414, 431): the
/// [`conn_guard::ErrorBody`] of the gateway's connections.
pub fn kong_template(_status: u16, m: &str) -> Vec<u8> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{{\n  \"message\":\"{m}\",\n  \"request_id\":\"{id}\"\n}}").into_bytes()
}

impl Rejection {
    pub fn status(&self) -> u16 {
        match self {
            Rejection::JwtMissing { .. }
            | Rejection::Jwt { .. }
            | Rejection::JwtClaims { .. }
            | Rejection::JwtMaxExpiration { .. }
            | Rejection::AclUnauthorized
            | Rejection::OidcInvalidToken { .. } => 401,
            Rejection::AclForbidden | Rejection::OidcInsufficientScope => 403,
            Rejection::NoRoute => 404,
            Rejection::BadRequest => 400,
            Rejection::JwtSignatureLength | Rejection::AnonymousMissing => 500,
            Rejection::UpstreamInvalid => 502,
            Rejection::UpstreamTimeout => 504,
        }
    }

    /// What it is counted under at `/metrics`; None for refusals that are
    /// not an authentication failure (routing, upstream, configuration).
    pub fn reason(&self) -> Option<Reason> {
        Some(match self {
            Rejection::JwtMissing { .. } | Rejection::AclUnauthorized => Reason::Unauthorized,
            Rejection::OidcInvalidToken { .. } => Reason::Unauthorized,
            Rejection::Jwt { fault, .. } => fault.reason(),
            Rejection::JwtClaims { .. } => Reason::Claims,
            Rejection::JwtMaxExpiration { .. } => Reason::MaxExpiration,
            Rejection::AclForbidden => Reason::AclForbidden,
            Rejection::JwtSignatureLength | Rejection::OidcInsufficientScope => Reason::Other,
            Rejection::AnonymousMissing
            | Rejection::NoRoute
            | Rejection::BadRequest
            | Rejection::UpstreamTimeout
            | Rejection::UpstreamInvalid => return None,
        })
    }

    /// The exact body.
    pub fn body(&self) -> Bytes {
        match self {
            Rejection::JwtMissing { .. } | Rejection::OidcInvalidToken { .. } => {
                message("Unauthorized")
            }
            Rejection::Jwt { fault, .. } => message(&fault.message()),
            Rejection::JwtClaims { errors, .. } => compact(&Value::Object(errors.clone())),
            Rejection::JwtMaxExpiration { .. } => {
                compact(&json!({"exp": "exceeds maximum allowed expiration"}))
            }
            Rejection::AclForbidden => template("You cannot consume this service"),
            Rejection::AclUnauthorized => template("Unauthorized"),
            Rejection::OidcInsufficientScope => message("Forbidden"),
            Rejection::NoRoute => message("no Route matched with those values"),
            Rejection::BadRequest => message("Bad request"),
            Rejection::JwtSignatureLength | Rejection::AnonymousMissing => {
                message("An unexpected error occurred")
            }
            Rejection::UpstreamTimeout => message("The upstream server is timing out"),
            Rejection::UpstreamInvalid => {
                message("An invalid response was received from the upstream server")
            }
        }
    }

    /// The `WWW-Authenticate` value, if the refusal has one.
    pub fn www_authenticate(&self) -> Option<String> {
        match self {
            Rejection::JwtMissing { realm } => Some(jwt_www(realm.as_deref(), false)),
            Rejection::Jwt { realm, .. }
            | Rejection::JwtClaims { realm, .. }
            | Rejection::JwtMaxExpiration { realm } => Some(jwt_www(realm.as_deref(), true)),
            Rejection::OidcInvalidToken { description } => Some(format!(
                "Bearer scope=\"\" error=\"invalid_token\" error_description=\"{description}\""
            )),
            Rejection::OidcInsufficientScope => {
                Some("Bearer scope=\"\" error=\"insufficient_scope\"".into())
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_statuses_and_reasons_are_kongs() {
        let realm = Some("kong".to_owned());
        let r = Rejection::Jwt {
            fault: JwtFault::NoCredentials("iss".into()),
            realm: realm.clone(),
        };
        assert_eq!(r.status(), 401);
        assert_eq!(
            &r.body()[..],
            br#"{"message":"No credentials found for given 'iss'"}"#
        );
        assert_eq!(
            r.www_authenticate().as_deref(),
            Some("Bearer realm=\"kong\" error=\"invalid_token\"")
        );
        assert_eq!(r.reason(), Some(Reason::NoCredentials));
        let missing = Rejection::JwtMissing { realm: None };
        assert_eq!(missing.www_authenticate().as_deref(), Some("Bearer"));
        assert_eq!(&missing.body()[..], br#"{"message":"Unauthorized"}"#);
        let acl = String::from_utf8(Rejection::AclForbidden.body().to_vec()).unwrap();
        assert!(acl.starts_with(
            "{\n  \"message\":\"You cannot consume this service\",\n  \"request_id\":\""
        ));
        assert_eq!(Rejection::AnonymousMissing.reason(), None);
        assert_eq!(Rejection::JwtSignatureLength.reason(), Some(Reason::Other));
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }
}
