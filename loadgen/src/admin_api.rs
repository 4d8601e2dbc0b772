//! The client side of a Kong-compatible Admin API (Kong's own, or our
//! gateway's, which speaks the same subset): the calls `loadgen provision`
//! makes to set consumers up and `[[event]]`s make to revoke and restore them.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use serde_json::{Value, json};

use crate::token::Consumer;

/// An Admin API call that failed; names the call.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("--admin {0:?}: expected http://host:port (the Admin API on loopback)")]
    AdminUrl(String),
    /// The call could not be made or got no answer.
    #[error("{call}: {reason}")]
    Request { call: String, reason: String },
    /// The Admin API answered with a status that is neither success nor expected.
    #[error("{call}: HTTP {status} {body}")]
    Status {
        call: String,
        status: u16,
        body: Value,
    },
}

pub type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

pub async fn send(
    client: &HttpClient,
    admin: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), AdminError> {
    let url = format!("{}{path}", admin.trim_end_matches('/'));
    let failed = |reason: String| AdminError::Request {
        call: format!("{method} {url}"),
        reason,
    };
    let mut req = http::Request::builder().method(method).uri(&url);
    let bytes = match body {
        Some(v) => {
            req = req.header("content-type", "application/json");
            Bytes::from(v.to_string())
        }
        None => Bytes::new(),
    };
    let req = req
        .body(Full::new(bytes))
        .map_err(|e| failed(e.to_string()))?;
    // One deadline for the whole exchange: an Admin API that sends its
    // head and then stalls in the body (a Content-Length it never fills)
    // must not hang the run.
    let exchange = async {
        let resp = client
            .request(req)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let status = resp.status().as_u16();
        let body = http_body_util::Limited::new(resp.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| failed(format!("HTTP {status}, reading the body: {e}")))?
            .to_bytes();
        Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    };
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| failed(format!("no complete answer within {TIMEOUT:?}")))?
}

/// How long one Admin API exchange, request and whole answer, may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The largest Admin API answer read (a page of Kong's list is well under).
const MAX_ANSWER: usize = 16 << 20;

pub fn seg(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The jwt credential body Kong takes for `c`.
pub fn credential(c: &Consumer) -> Value {
    let mut v = json!({ "key": c.key, "algorithm": c.alg.name() });
    if let Some(s) = &c.secret {
        v["secret"] = json!(s);
    }
    if let Some(p) = &c.public_pem {
        v["rsa_public_key"] = json!(p);
    }
    v
}
