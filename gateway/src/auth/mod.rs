//! The plugins of the request path and every rejection they produce, with
//! its status, exact body and headers, in one place.

pub mod acl;
pub mod json;
pub mod jwt;
pub mod keys;
pub mod oidc;

use bytes::Bytes;

/// A refused request: status, body and `WWW-Authenticate`, plus the reason
/// it is counted under at `/metrics` (decided where the rejection is made).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub status: u16,
    pub body: Bytes,
    pub www_authenticate: Option<String>,
    /// Index into [`crate::metrics::REASONS`].
    pub reason: usize,
}

impl Reject {
    /// The jwt plugin's exits: compact cjson bytes (`/` escaped as `\/`).
    pub fn jwt(status: u16, body: serde_json::Value, www_authenticate: Option<String>) -> Reject {
        let reason = crate::metrics::reason_of(body.get("message").and_then(|m| m.as_str()));
        let compact = serde_json::to_string(&body)
            .unwrap_or_default()
            .replace('/', "\\/");
        Reject {
            status,
            body: Bytes::from(compact),
            www_authenticate,
            reason,
        }
    }

    /// `kong.response.error`: Kong's pretty JSON error template with a `request_id`.
    pub fn template(status: u16, message: &str) -> Reject {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let body = format!("{{\n  \"message\":\"{message}\",\n  \"request_id\":\"{id}\"\n}}");
        Reject {
            status,
            body: Bytes::from(body),
            www_authenticate: None,
            reason: crate::metrics::reason_of(Some(message)),
        }
    }

    /// A plain `{"message":…}` exit (router and proxy errors).
    pub fn message(status: u16, message: &str) -> Reject {
        Reject::jwt(status, serde_json::json!({ "message": message }), None)
    }
}
