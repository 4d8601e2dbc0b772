//! `loadgen provision`: makes a gateway know a scenario's consumers.
//! - `kong`: through Kong's Admin API (our gateway's Admin API speaks the
//!   same subset): `PUT /consumers/{username}`, `POST /consumers/{c}/jwt`
//!   (on 409, `PATCH /consumers/{c}/jwt/{key}`), `POST /consumers/{c}/acls`
//!   (409: the group is already there). Re-running updates in place.
//!   `--teardown` deletes the consumers, which removes their credentials.
//! - `rust-gateway`: writes a Kong declarative config for `jwt-gateway` or
//!   `builtin:gateway` with the consumers, a route and the jwt plugin set up
//!   for the scenario's placement and key claim.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use crate::scenario::Placement;
use crate::token::{Consumer, Tokens};

/// A provisioning call that failed; names the call.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
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

/// One Admin API call as made, for the caller's log and the tests.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub status: u16,
}

pub(crate) type HttpClient =
    Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

pub(crate) async fn send(
    client: &HttpClient,
    admin: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), ProvisionError> {
    let url = format!("{}{path}", admin.trim_end_matches('/'));
    let failed = |reason: String| ProvisionError::Request {
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
    let resp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .map_err(|_| failed("no answer within 10 s".into()))?
        .map_err(|e| failed(e.to_string()))?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

pub(crate) fn seg(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The jwt credential body Kong takes for `c`.
pub(crate) fn credential(c: &Consumer) -> Value {
    let mut v = json!({ "key": c.key, "algorithm": c.alg.name() });
    if let Some(s) = &c.secret {
        v["secret"] = json!(s);
    }
    if let Some(p) = &c.public_pem {
        v["rsa_public_key"] = json!(p);
    }
    v
}

/// Provisions every consumer of `auth` through the Admin API at `admin`
/// (`http://host:port`), or with `teardown` removes them. Fails on the
/// first answer that is neither success nor an expected 409/404, naming it.
pub async fn kong(
    tokens: &Tokens,
    admin: &str,
    teardown: bool,
) -> Result<Vec<Call>, ProvisionError> {
    if !admin.starts_with("http://") {
        return Err(ProvisionError::AdminUrl(admin.to_owned()));
    }
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let mut calls = Vec::new();
    let mut call = |method: &str, path: String, status: u16| {
        calls.push(Call {
            method: method.to_owned(),
            path,
            status,
        })
    };
    let fail = |call: &str, status: u16, body: Value| ProvisionError::Status {
        call: call.to_owned(),
        status,
        body,
    };
    for c in &tokens.consumers {
        let user = seg(&c.name);
        if teardown {
            let path = format!("/consumers/{user}");
            let (status, body) = send(&client, admin, "DELETE", &path, None).await?;
            call("DELETE", path.clone(), status);
            if status != 204 && status != 404 {
                return Err(fail(&format!("DELETE {path}"), status, body));
            }
            continue;
        }
        let path = format!("/consumers/{user}");
        let (status, body) = send(
            &client,
            admin,
            "PUT",
            &path,
            Some(&json!({ "username": c.name })),
        )
        .await?;
        call("PUT", path.clone(), status);
        if !(200..300).contains(&status) {
            return Err(fail(&format!("PUT {path}"), status, body));
        }
        let path = format!("/consumers/{user}/jwt");
        let cred = credential(c);
        let (status, body) = send(&client, admin, "POST", &path, Some(&cred)).await?;
        call("POST", path.clone(), status);
        if status == 409 {
            let path = format!("/consumers/{user}/jwt/{}", seg(&c.key));
            let (status, body) = send(&client, admin, "PATCH", &path, Some(&cred)).await?;
            call("PATCH", path.clone(), status);
            if !(200..300).contains(&status) {
                return Err(fail(&format!("PATCH {path}"), status, body));
            }
        } else if !(200..300).contains(&status) {
            return Err(fail(&format!("POST {path}"), status, body));
        }
        for g in &c.groups {
            let path = format!("/consumers/{user}/acls");
            let (status, body) =
                send(&client, admin, "POST", &path, Some(&json!({ "group": g }))).await?;
            call("POST", path.clone(), status);
            if status != 409 && !(200..300).contains(&status) {
                return Err(fail(&format!("POST {path}"), status, body));
            }
        }
    }
    Ok(calls)
}

/// A Kong declarative config (JSON, which is YAML) for our gateway: one
/// service to `upstream` with a route on `/` whose jwt plugin reads the
/// token where the scenario puts it, verifies exp and nbf, and knows every
/// consumer; an acl plugin allowing `allow` groups when given.
pub fn rust_gateway(auth: &Tokens, upstream: &str, allow: &[String]) -> Value {
    let mut conf = json!({
        "key_claim_name": auth.key_claim_name(),
        "claims_to_verify": ["exp", "nbf"],
        "uri_param_names": [auth.duplicate_param],
    });
    match &auth.placement {
        Placement::Bearer => {}
        Placement::Header(n) => conf["header_names"] = json!([n.as_str()]),
        Placement::Cookie(n) => conf["cookie_names"] = json!([n]),
        Placement::Query(n) => {
            conf["uri_param_names"] = json!([n, auth.duplicate_param]);
        }
    }
    let mut plugins = vec![json!({ "name": "jwt", "config": conf })];
    if !allow.is_empty() {
        plugins.push(json!({ "name": "acl", "config": { "allow": allow } }));
    }
    let consumers: Vec<Value> = auth
        .consumers
        .iter()
        .map(|c| {
            let mut v = json!({ "username": c.name, "jwt_secrets": [credential(c)] });
            if !c.groups.is_empty() {
                v["acls"] = c.groups.iter().map(|g| json!({ "group": g })).collect();
            }
            v
        })
        .collect();
    json!({
        "_format_version": "3.0",
        "services": [{
            "name": "upstream",
            "url": upstream,
            "routes": [{ "name": "all", "paths": ["/"], "plugins": plugins }],
        }],
        "consumers": consumers,
    })
}
