//! `loadgen provision`: makes a gateway know a scenario's consumers.
//! - `kong`: through Kong's Admin API (our gateway's Admin API speaks the
//!   same subset): `PUT /consumers/{username}`, `POST /consumers/{c}/jwt`
//!   (on 409, `PATCH /consumers/{c}/jwt/{key}`), `POST /consumers/{c}/acls`
//!   (409: the group is already there). Re-running updates in place.
//!   `--teardown` deletes the consumers, which removes their credentials.
//! - `rust-gateway`: writes a Kong declarative config for `jwt-gateway` or
//!   `builtin:gateway` with the consumers, a route and the jwt plugin set up
//!   for the scenario's placement and key claim.

use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use crate::admin_api::{AdminError, HttpClient, credential, seg, send};
use crate::scenario::Placement;
use crate::token::Tokens;

/// One Admin API call as made, for the caller's log and the tests.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub status: u16,
}

/// Provisions every consumer of `auth` through the Admin API at `admin`
/// (`http://host:port`), or with `teardown` removes them. Fails on the
/// first answer that is neither success nor an expected 409/404, naming it.
pub async fn kong(tokens: &Tokens, admin: &str, teardown: bool) -> Result<Vec<Call>, AdminError> {
    if !admin.starts_with("http://") {
        return Err(AdminError::AdminUrl(admin.to_owned()));
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
    let fail = |call: &str, status: u16, body: Value| AdminError::Status {
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
