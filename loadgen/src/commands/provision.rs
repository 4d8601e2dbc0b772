//! `loadgen provision`: makes a gateway know a scenario's consumers.
//! - `kong`: through Kong's Admin API (our gateway's Admin API speaks the
//!   same subset): `PUT /consumers/{username}`, `POST /consumers/{c}/jwt`
//!   (on 409, `PATCH /consumers/{c}/jwt/{key}`), `POST /consumers/{c}/acls`
//!   (409: the group is already there). Re-running updates in place.
//!   `--teardown` deletes the consumers, which removes their credentials.
//!   Consumers go `--concurrency` at a time (each one's calls in order), so
//!   100,000 partners take seconds to minutes, not an hour of round trips.
//! - `kong --out` and `rust-gateway`: write a Kong declarative config (Kong
//!   DB-less, `jwt-gateway`, `builtin:gateway`) with the consumers, a route
//!   and the jwt plugin set up for the scenario's placement and key claim.

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

/// How `kong` provisions: calls at once, and who hears of progress.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub teardown: bool,
    /// Consumers provisioned at once (each consumer's calls in order).
    pub concurrency: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            teardown: false,
            concurrency: 16,
        }
    }
}

fn fail(call: &str, status: u16, body: Value) -> AdminError {
    AdminError::Status {
        call: call.to_owned(),
        status,
        body,
    }
}

/// One consumer's calls, in order: PUT the consumer, POST its credential
/// (409: PATCH it), POST its groups (409: there already); or DELETE it.
async fn one(
    client: &HttpClient,
    admin: &str,
    c: &crate::token::Consumer,
    teardown: bool,
) -> Result<Vec<Call>, AdminError> {
    let mut calls = Vec::new();
    let mut call = |method: &str, path: &str, status: u16| {
        calls.push(Call {
            method: method.to_owned(),
            path: path.to_owned(),
            status,
        })
    };
    let user = seg(&c.name);
    let path = format!("/consumers/{user}");
    if teardown {
        let (status, body) = send(client, admin, "DELETE", &path, None).await?;
        call("DELETE", &path, status);
        if status != 204 && status != 404 {
            return Err(fail(&format!("DELETE {path}"), status, body));
        }
        return Ok(calls);
    }
    let named = json!({ "username": c.name });
    let (status, body) = send(client, admin, "PUT", &path, Some(&named)).await?;
    call("PUT", &path, status);
    if !(200..300).contains(&status) {
        return Err(fail(&format!("PUT {path}"), status, body));
    }
    let path = format!("/consumers/{user}/jwt");
    let cred = credential(c);
    let (status, body) = send(client, admin, "POST", &path, Some(&cred)).await?;
    call("POST", &path, status);
    if status == 409 {
        let path = format!("/consumers/{user}/jwt/{}", seg(&c.key));
        let (status, body) = send(client, admin, "PATCH", &path, Some(&cred)).await?;
        call("PATCH", &path, status);
        if !(200..300).contains(&status) {
            return Err(fail(&format!("PATCH {path}"), status, body));
        }
    } else if !(200..300).contains(&status) {
        return Err(fail(&format!("POST {path}"), status, body));
    }
    for g in &c.groups {
        let path = format!("/consumers/{user}/acls");
        let (status, body) =
            send(client, admin, "POST", &path, Some(&json!({ "group": g }))).await?;
        call("POST", &path, status);
        if status != 409 && !(200..300).contains(&status) {
            return Err(fail(&format!("POST {path}"), status, body));
        }
    }
    Ok(calls)
}

/// Provisions every consumer of `auth` through the Admin API at `admin`
/// (`http://host:port`), `concurrency` consumers at a time, or with
/// `teardown` removes them; `progress(done)` after each consumer. Stops at
/// the first answer that is neither success nor an expected 409/404 and
/// returns it, named (consumers already in flight finish first). The calls
/// made, consumer by consumer in the scenario's order.
pub async fn kong(
    tokens: &Tokens,
    admin: &str,
    opts: Options,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Vec<Call>, AdminError> {
    if !admin.starts_with("http://") {
        return Err(AdminError::AdminUrl(admin.to_owned()));
    }
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(opts.concurrency)
        .build_http();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let done = std::sync::atomic::AtomicUsize::new(0);
    let consumers = &tokens.consumers;
    // A fixed set of lanes, each taking the next consumer: bounded, in
    // order within a consumer, no task per consumer.
    let lane = || async {
        let mut mine: Vec<(usize, Vec<Call>)> = Vec::new();
        loop {
            use std::sync::atomic::Ordering::Relaxed;
            let i = next.fetch_add(1, Relaxed);
            if i >= consumers.len() || stop.load(Relaxed) {
                return Ok(mine);
            }
            match one(&client, admin, &consumers[i], opts.teardown).await {
                Ok(calls) => mine.push((i, calls)),
                Err(e) => {
                    stop.store(true, Relaxed);
                    return Err((i, e));
                }
            }
            progress(done.fetch_add(1, Relaxed) + 1);
        }
    };
    let lanes: Vec<_> = (0..opts.concurrency.clamp(1, consumers.len().max(1)))
        .map(|_| lane())
        .collect();
    let results = futures_util::future::join_all(lanes).await;
    let mut all: Vec<(usize, Vec<Call>)> = Vec::new();
    let mut first_error: Option<(usize, AdminError)> = None;
    for r in results {
        match r {
            Ok(mine) => all.extend(mine),
            Err((i, e)) => {
                if first_error.as_ref().is_none_or(|(j, _)| i < *j) {
                    first_error = Some((i, e));
                }
            }
        }
    }
    if let Some((_, e)) = first_error {
        return Err(e);
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().flat_map(|(_, calls)| calls).collect())
}

/// The consumers of `auth` as a Kong declarative file lists them: username,
/// the jwt credential, the ACL groups.
pub fn consumer_docs(auth: &Tokens) -> Vec<Value> {
    auth.consumers
        .iter()
        .map(|c| {
            let mut v = json!({ "username": c.name, "jwt_secrets": [credential(c)] });
            if !c.groups.is_empty() {
                v["acls"] = c.groups.iter().map(|g| json!({ "group": g })).collect();
            }
            v
        })
        .collect()
}

/// A Kong declarative config (JSON, which is YAML) for Kong DB-less or our
/// gateway: one service to `upstream` with a route on `/` whose jwt plugin
/// reads the token where the scenario puts it, verifies exp and nbf, and
/// knows every consumer; an acl plugin allowing `allow` groups when given.
pub fn declarative(auth: &Tokens, upstream: &str, allow: &[String]) -> Value {
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
    let consumers = consumer_docs(auth);
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
