//! Every way the gateway refuses a request, declared once: each
//! [`Rejection`] knows its status, its exact body (Kong 3.9.3's bytes), its
//! `WWW-Authenticate` value and the [`Reason`] it is counted under at
//! `/metrics` (axum's `define_rejection!` is the model). Plugins return a
//! `Rejection`; only [`Rejection::response_parts`] turns it into bytes.

use std::borrow::Cow;

use bytes::Bytes;
use http::StatusCode;
use serde_json::{Map, Value, json};

/// Declares [`Reason`] with its metric labels; [`Reason::ALL`] is derived
/// from the same list, so a new reason is counted without a second edit.
macro_rules! reasons {
    ($($(#[$m:meta])* $variant:ident => $label:literal,)*) => {
        /// The label a refusal is counted under (`gateway_auth_failures_total{reason}`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Reason {
            $($(#[$m])* $variant,)*
        }

        impl Reason {
            /// Every reason, in the order `/metrics` lists them.
            pub const ALL: [Reason; [$(Reason::$variant),*].len()] = [$(Reason::$variant),*];

            /// The metric label: Kong's message (its stable prefix for
            /// messages that name the key claim).
            pub fn label(self) -> &'static str {
                match self {
                    $(Reason::$variant => $label,)*
                }
            }
        }
    };
}

reasons! {
    Unauthorized => "Unauthorized",
    MultipleTokens => "Multiple tokens provided",
    Unrecognizable => "Unrecognizable token",
    InvalidJson => "Bad token; invalid JSON",
    InvalidAlg => "Bad token; invalid alg",
    BadSignature => "Bad token; invalid signature",
    NoKeyClaim => "No mandatory key claim",
    InvalidKeyClaim => "Invalid key claim",
    NoCredentials => "No credentials found",
    InvalidAlgorithm => "Invalid algorithm",
    InvalidKey => "Invalid key/secret",
    InvalidSignature => "Invalid signature",
    Claims => "claims",
    MaxExpiration => "exceeds maximum allowed expiration",
    AclForbidden => "You cannot consume this service",
    Other => "other",
}

impl Reason {
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
    /// The client's request body sent nothing for the body timeout.
    ClientBodyTimeout,
    /// A header line, or all of them, longer than the server holds.
    HeaderTooLarge,
    /// The upstream did not answer within the read timeout.
    UpstreamTimeout,
    /// The upstream could not be reached or answered badly.
    UpstreamInvalid,
}

impl JwtFault {
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

    /// Kong's message: the reason's label, or, for the faults that name the
    /// key claim, the label's sentence with the claim in it.
    fn message(&self) -> Cow<'static, str> {
        match self {
            JwtFault::NoKeyClaim(k) => format!("No mandatory '{k}' in claims").into(),
            JwtFault::InvalidKeyClaim(k) => format!("Invalid '{k}' in claims").into(),
            JwtFault::NoCredentials(k) => format!("No credentials found for given '{k}'").into(),
            other => other.reason().label().into(),
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

/// Kong's JSON error template, for the answers the server gives on its own
/// (a late head's 408, an unparsable head's 400, 414, 431): the
/// [`conn_guard::ErrorBody`] of the gateway's connections.
pub fn kong_template(_status: u16, m: &str) -> Vec<u8> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{{\n  \"message\":\"{m}\",\n  \"request_id\":\"{id}\"\n}}").into_bytes()
}

/// A refusal's body, built only when it is sent.
enum Body<'a> {
    /// The jwt plugin's `{"message": …}`, compact.
    Message(Cow<'a, str>),
    /// `kong.response.error`'s template, pretty, with a `request_id`.
    Template(&'static str),
    /// A compact JSON object (the claims' messages).
    Object(Cow<'a, Map<String, Value>>),
}

/// The `WWW-Authenticate` a refusal carries.
enum Www<'a> {
    None,
    /// Kong's jwt plugin: the realm, and whether the token was invalid.
    Jwt(Option<&'a str>, bool),
    /// AWS's JWT authorizer.
    Aws(Cow<'a, str>),
}

/// Everything a refusal answers with, declared in one place per variant.
struct Declared<'a> {
    status: StatusCode,
    reason: Option<Reason>,
    body: Body<'a>,
    www: Www<'a>,
}

impl Rejection {
    /// Each refusal's status, metric reason (None for refusals that are not
    /// an authentication failure: routing, upstream, configuration), body and
    /// `WWW-Authenticate`, side by side.
    // long: the declaration table itself, one arm per refusal; splitting it would scatter what it gathers
    fn declared(&self) -> Declared<'_> {
        use Rejection::*;
        let d = |status, reason, body, www| Declared {
            status,
            reason,
            body,
            www,
        };
        let msg = |m: &'static str| Body::Message(m.into());
        match self {
            JwtMissing { realm } => d(
                StatusCode::UNAUTHORIZED,
                Some(Reason::Unauthorized),
                msg("Unauthorized"),
                Www::Jwt(realm.as_deref(), false),
            ),
            Jwt { fault, realm } => d(
                StatusCode::UNAUTHORIZED,
                Some(fault.reason()),
                Body::Message(fault.message()),
                Www::Jwt(realm.as_deref(), true),
            ),
            JwtClaims { errors, realm } => d(
                StatusCode::UNAUTHORIZED,
                Some(Reason::Claims),
                Body::Object(Cow::Borrowed(errors)),
                Www::Jwt(realm.as_deref(), true),
            ),
            JwtMaxExpiration { realm } => d(
                StatusCode::UNAUTHORIZED,
                Some(Reason::MaxExpiration),
                Body::Object(Cow::Owned(max_expiration())),
                Www::Jwt(realm.as_deref(), true),
            ),
            JwtSignatureLength => d(
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(Reason::Other),
                msg("An unexpected error occurred"),
                Www::None,
            ),
            AnonymousMissing => d(
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                msg("An unexpected error occurred"),
                Www::None,
            ),
            AclForbidden => d(
                StatusCode::FORBIDDEN,
                Some(Reason::AclForbidden),
                Body::Template(Reason::AclForbidden.label()),
                Www::None,
            ),
            AclUnauthorized => d(
                StatusCode::UNAUTHORIZED,
                Some(Reason::Unauthorized),
                Body::Template("Unauthorized"),
                Www::None,
            ),
            OidcInvalidToken { description } => d(
                StatusCode::UNAUTHORIZED,
                Some(Reason::Unauthorized),
                msg("Unauthorized"),
                Www::Aws(
                    format!(
                        "Bearer scope=\"\" error=\"invalid_token\" error_description=\"{description}\""
                    )
                    .into(),
                ),
            ),
            OidcInsufficientScope => d(
                StatusCode::FORBIDDEN,
                Some(Reason::Other),
                msg("Forbidden"),
                Www::Aws("Bearer scope=\"\" error=\"insufficient_scope\"".into()),
            ),
            NoRoute => d(
                StatusCode::NOT_FOUND,
                None,
                msg("no Route matched with those values"),
                Www::None,
            ),
            BadRequest => d(StatusCode::BAD_REQUEST, None, msg("Bad request"), Www::None),
            // nginx's own 408 through Kong's error template, as conn-guard's
            // for a late head.
            ClientBodyTimeout => d(
                StatusCode::REQUEST_TIMEOUT,
                None,
                Body::Template("Request timeout"),
                Www::None,
            ),
            // Kong answers 400 here (nginx's "Request Header Or Cookie Too
            // Large" page); 431 is the status HTTP has for it, with Kong's
            // message through its template, as conn-guard's own 431.
            HeaderTooLarge => d(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                None,
                Body::Template("Request header or cookie too large"),
                Www::None,
            ),
            UpstreamTimeout => d(
                StatusCode::GATEWAY_TIMEOUT,
                None,
                msg("The upstream server is timing out"),
                Www::None,
            ),
            UpstreamInvalid => d(
                StatusCode::BAD_GATEWAY,
                None,
                msg("An invalid response was received from the upstream server"),
                Www::None,
            ),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.declared().status
    }

    /// Status, exact body and `WWW-Authenticate`, from one declaration.
    pub fn response_parts(&self) -> (StatusCode, Bytes, Option<String>) {
        let d = self.declared();
        (d.status, d.body.bytes(), d.www.value())
    }

    /// What it is counted under at `/metrics`; None for refusals that are
    /// not an authentication failure (routing, upstream, configuration).
    pub fn reason(&self) -> Option<Reason> {
        self.declared().reason
    }

    /// The exact body.
    pub fn body(&self) -> Bytes {
        self.declared().body.bytes()
    }

    /// The `WWW-Authenticate` value, if the refusal has one.
    pub fn www_authenticate(&self) -> Option<String> {
        self.declared().www.value()
    }
}

impl Body<'_> {
    fn bytes(self) -> Bytes {
        match self {
            Body::Message(m) => compact(&json!({ "message": m })),
            Body::Template(m) => Bytes::from(kong_template(0, m)),
            Body::Object(o) => compact(&Value::Object(o.into_owned())),
        }
    }
}

impl Www<'_> {
    fn value(self) -> Option<String> {
        match self {
            Www::None => None,
            Www::Jwt(realm, invalid) => Some(jwt_www(realm, invalid)),
            Www::Aws(v) => Some(v.into_owned()),
        }
    }
}

/// `maximum_expiration`'s body.
fn max_expiration() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("exp".into(), Reason::MaxExpiration.label().into());
    m
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
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
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
