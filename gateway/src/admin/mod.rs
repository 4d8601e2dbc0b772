//! A Kong-compatible Admin API subset (JSON or form bodies): consumers, their
//! jwt credentials and ACL groups, with Kong's status codes and error bodies.
//! Every change builds a new snapshot that the very next proxied request sees
//! (so revoking is a DELETE) and is written atomically to a state file, which
//! is reloaded on restart. With an apply delay (`--admin-apply-delay`) the
//! proxy sees each change that much after the answer, as a Kong node sees
//! another's change only at its next `db_update_frequency` poll.

// Errors here *are* the HTTP responses (status + Kong's body), returned on the
// admin path only, where their size costs nothing measurable.
#![allow(clippy::result_large_err)]
#![allow(
    clippy::disallowed_methods,
    reason = "the apply delay: when a committed change is due at the proxy"
)]

mod entity;
mod reply;
mod top;

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{Map, Value, json};

use crate::clock::unix_now as now;
use crate::config::{AclSpec, ConsumerSpec, JwtSecretSpec, compile_consumers};
use crate::snapshot::{Live, Route, Snapshot};
use entity::{Change, SubEntity, crud};
use reply::{
    Resp, check_fields, id_or_new, list, new_id, not_found, parse_body, reply, reply_empty,
    schema_violation, string_field, tags, unique_violation,
};

/// The largest request body the Admin API reads (Kong's Admin API:
/// nginx's `client_max_body_size 10m`); more is 413.
pub const MAX_BODY: usize = 10 * 1024 * 1024;

/// A thread that applies committed snapshots to the proxy when they are due,
/// in the order they were committed; it ends when the Admin API is dropped.
fn delayed_applier(proxy: Arc<Live>) -> std::sync::mpsc::Sender<(Instant, Snapshot)> {
    let (tx, rx) = std::sync::mpsc::channel::<(Instant, Snapshot)>();
    let spawned = std::thread::Builder::new()
        .name("admin-apply".into())
        .spawn(move || {
            for (due, snapshot) in rx {
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
                proxy.replace(snapshot);
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the delayed applier: changes apply at once");
    }
    tx
}

/// The Admin API's state.
#[derive(Debug)]
pub struct Admin {
    consumers: Mutex<Vec<ConsumerSpec>>,
    routes: Arc<Vec<Route>>,
    proxy: Arc<Live>,
    state_file: Option<PathBuf>,
    /// With an apply delay: committed snapshots, applied in order when due.
    delayed: Option<Mutex<std::sync::mpsc::Sender<(Instant, Snapshot)>>>,
    delay: Duration,
}

fn consumer_json(c: &ConsumerSpec) -> Value {
    json!({"id": c.id, "username": c.username, "custom_id": c.custom_id, "created_at": c.created_at, "updated_at": c.created_at, "tags": if c.tags.is_empty() { Value::Null } else { json!(c.tags) }})
}

impl Admin {
    /// `consumers` as [`Admin::normalize`]d; `routes` and `proxy` are the running proxy's.
    pub fn new(
        consumers: Vec<ConsumerSpec>,
        routes: Arc<Vec<Route>>,
        proxy: Arc<Live>,
        state_file: Option<PathBuf>,
        apply_delay: Duration,
    ) -> Admin {
        let delayed = (!apply_delay.is_zero()).then(|| Mutex::new(delayed_applier(proxy.clone())));
        Admin {
            consumers: Mutex::new(consumers),
            routes,
            proxy,
            state_file,
            delayed,
            delay: apply_delay,
        }
    }

    /// Fills in ids and timestamps (as Kong does on insert), so they stay stable.
    pub fn normalize(mut consumers: Vec<ConsumerSpec>) -> Vec<ConsumerSpec> {
        let t = now();
        for c in &mut consumers {
            c.id.get_or_insert_with(new_id);
            c.created_at.get_or_insert(t);
            for j in &mut c.jwt_secrets {
                j.id.get_or_insert_with(new_id);
                j.created_at.get_or_insert(t);
            }
            for a in &mut c.acls {
                a.id.get_or_insert_with(new_id);
                a.created_at.get_or_insert(t);
            }
        }
        consumers
    }

    /// The consumers with their ids, for the first snapshot.
    pub fn consumers(&self) -> Vec<ConsumerSpec> {
        self.consumers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Rebuilds the proxy's snapshot and persists; on a compile error nothing changes.
    fn commit(&self, next: Vec<ConsumerSpec>, store: &mut Vec<ConsumerSpec>) -> Result<(), Resp> {
        let (credentials, consumers) = compile_consumers(&next)
            .map_err(|e| schema_violation(json!({"@entity": [e.to_string()]})))?;
        if let Some(path) = &self.state_file {
            let doc = json!({"_format_version": "3.0", "consumers": next});
            let bytes = serde_json::to_vec_pretty(&doc).unwrap_or_default();
            let written = atomic_write_file::AtomicWriteFile::open(path)
                .and_then(|mut f| f.write_all(&bytes).and_then(|()| f.commit()));
            if let Err(e) = written {
                tracing::error!(path = %path.display(), error = %e, "cannot persist the admin state");
                return Err(reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"message": "An unexpected error occurred"}),
                ));
            }
        }
        let snapshot = Snapshot {
            routes: self.routes.clone(),
            credentials,
            consumers,
        };
        match &self.delayed {
            Some(tx) => {
                let due = Instant::now() + self.delay;
                let tx = tx.lock().unwrap_or_else(|p| p.into_inner());
                if let Err(e) = tx.send((due, snapshot)) {
                    // The applier thread is gone: apply now rather than never.
                    self.proxy.replace(e.0.1);
                }
            }
            None => self.proxy.replace(snapshot),
        }
        *store = next;
        Ok(())
    }

    /// Commits a create (201) or an update (200) and answers with the entity.
    fn save(
        &self,
        next: Vec<ConsumerSpec>,
        store: &mut Vec<ConsumerSpec>,
        created: bool,
        body: Value,
    ) -> Resp {
        match self.commit(next, store) {
            Ok(()) => reply(
                if created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                },
                body,
            ),
            Err(r) => r,
        }
    }

    /// Carries out what a sub-entity request asked for.
    fn apply(&self, change: Change, store: &mut Vec<ConsumerSpec>) -> Resp {
        match change {
            Change::None(r) => r,
            Change::Delete(next) => self.delete(next, store),
            Change::Save {
                next,
                created,
                body,
            } => self.save(next, store, created, body),
        }
    }

    /// Commits a removal and answers 204.
    fn delete(&self, next: Vec<ConsumerSpec>, store: &mut Vec<ConsumerSpec>) -> Resp {
        self.commit(next, store)
            .err()
            .unwrap_or_else(|| reply_empty(StatusCode::NO_CONTENT))
    }

    /// Answers one Admin API request.
    // long: the Admin API's route table, one exhaustive match over method and path
    pub async fn handle(&self, req: Request<hyper::body::Incoming>) -> Resp {
        let (parts, body) = req.into_parts();
        let body = match http_body_util::Limited::new(body, MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return reply(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    json!({"message": "Payload too large"}),
                );
            }
            Err(_) => {
                return reply(
                    StatusCode::BAD_REQUEST,
                    json!({"message": "Cannot read body"}),
                );
            }
        };
        let ct = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let needs_body = matches!(parts.method.as_str(), "POST" | "PUT" | "PATCH");
        let body = match parse_body(ct, &body, needs_body) {
            Ok(b) => b,
            Err(r) => return r,
        };
        let segs: Vec<String> = parts
            .uri
            .path()
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect();
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        let m = &parts.method;
        let mut body = body;
        if let Some(id) = body.remove("consumer.id") {
            // A form's `consumer.id=…` is the JSON body's `{"consumer":{"id":…}}`.
            body.insert("consumer".into(), json!({ "id": id }));
        }
        if matches!(m.as_str(), "POST" | "PUT" | "PATCH") {
            let fields: &[&str] = match segs.as_slice() {
                ["consumers", ..] if segs.len() <= 2 => &["username", "custom_id"],
                [_, _, "jwt", ..] | ["jwts", ..] => {
                    &["key", "secret", "algorithm", "rsa_public_key"]
                }
                [_, _, "acls", ..] | ["acls", ..] => &["group"],
                _ => &[],
            };
            if let Err(r) = check_fields(&body, fields) {
                return r;
            }
        }
        let mut guard = self.consumers.lock().unwrap_or_else(|p| p.into_inner());
        let store = &mut *guard;
        match segs.as_slice() {
            [] => reply(
                StatusCode::OK,
                json!({"tagline": "Welcome to jwt-gateway", "version": env!("CARGO_PKG_VERSION")}),
            ),
            ["metrics"] if m == Method::GET => {
                let routes = self.routes.iter().map(|r| (r.name.as_str(), &r.stats));
                let mut r =
                    Response::new(Full::new(Bytes::from(self.proxy.metrics.render(routes))));
                r.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("text/plain; version=0.0.4"),
                );
                r
            }
            // The page exists; only reading it does (Kong answers 405 so).
            ["metrics"] => reply(
                StatusCode::METHOD_NOT_ALLOWED,
                json!({"message": "Method not allowed"}),
            ),
            ["consumers"] if m == Method::GET => {
                list(&parts.uri, store.iter().map(consumer_json).collect())
            }
            ["consumers"] if m == Method::POST => self.upsert_consumer(store, None, &body),
            ["consumers", c] => {
                let idx = store
                    .iter()
                    .position(|x| x.id.as_deref() == Some(*c) || x.username.as_deref() == Some(*c));
                match (m.as_str(), idx) {
                    ("GET", Some(i)) => reply(StatusCode::OK, consumer_json(&store[i])),
                    ("PATCH", Some(i)) => self.upsert_consumer(store, Some(i), &body),
                    ("PUT", Some(i)) => self.upsert_consumer(store, Some(i), &body),
                    ("PUT", None) => {
                        let mut b = body.clone();
                        b.entry("username").or_insert(json!(c));
                        self.upsert_consumer(store, None, &b)
                    }
                    ("DELETE", Some(i)) => {
                        let mut next = store.clone();
                        next.remove(i);
                        self.delete(next, store)
                    }
                    _ => not_found(),
                }
            }
            ["consumers", c, kind @ ("jwt" | "acls"), rest @ ..] => {
                let Some(ci) = store
                    .iter()
                    .position(|x| x.id.as_deref() == Some(*c) || x.username.as_deref() == Some(*c))
                else {
                    return not_found();
                };
                let (request, item) = ((m, &parts.uri), rest.first().copied());
                let change = if *kind == "jwt" {
                    crud::<JwtSecretSpec>(store, ci, request, item, &body)
                } else {
                    crud::<AclSpec>(store, ci, request, item, &body)
                };
                self.apply(change, store)
            }
            ["jwts", rest @ ..] if !(m == Method::GET && rest.is_empty()) => {
                let (item, owner_path) = match rest {
                    [] => (None, false),
                    [k] => (Some(*k), false),
                    [k, "consumer"] => (Some(*k), true),
                    _ => return not_found(),
                };
                self.top_level::<JwtSecretSpec>(store, (m, &parts.uri), item, owner_path, &body)
            }
            ["acls", rest @ ..] if !(m == Method::GET && rest.is_empty()) => {
                let (item, owner_path) = match rest {
                    [] => (None, false),
                    [k] => (Some(*k), false),
                    [k, "consumer"] => (Some(*k), true),
                    _ => return not_found(),
                };
                self.top_level::<AclSpec>(store, (m, &parts.uri), item, owner_path, &body)
            }
            ["jwts"] if m == Method::GET => list(
                &parts.uri,
                store
                    .iter()
                    .flat_map(|c| c.jwt_secrets.iter().map(move |j| j.json(c)))
                    .collect(),
            ),
            ["acls"] if m == Method::GET => list(
                &parts.uri,
                store
                    .iter()
                    .flat_map(|c| c.acls.iter().map(move |a| a.json(c)))
                    .collect(),
            ),
            _ => not_found(),
        }
    }

    fn upsert_consumer(
        &self,
        store: &mut Vec<ConsumerSpec>,
        at: Option<usize>,
        body: &Map<String, Value>,
    ) -> Resp {
        let (username, custom_id) = match (
            string_field(body, "username"),
            string_field(body, "custom_id"),
        ) {
            (Ok(u), Ok(c)) => (u, c),
            (Err(r), _) | (_, Err(r)) => return r,
        };
        let mut next = store.clone();
        let c = match at {
            Some(i) => &mut next[i],
            None => {
                let id = id_or_new(body);
                if store.iter().any(|c| c.id.as_deref() == Some(id.as_str())) {
                    return unique_violation("id", &id);
                }
                next.push(ConsumerSpec {
                    created_at: Some(now()),
                    username: None,
                    custom_id: None,
                    id: Some(id),
                    tags: Vec::new(),
                    jwt_secrets: Vec::new(),
                    acls: Vec::new(),
                });
                let last = next.len() - 1;
                &mut next[last]
            }
        };
        if username.is_some() {
            c.username = username;
        }
        if custom_id.is_some() {
            c.custom_id = custom_id;
        }
        if body.contains_key("tags") {
            c.tags = tags(body);
        }
        if c.username.as_deref().unwrap_or("").is_empty()
            && c.custom_id.as_deref().unwrap_or("").is_empty()
        {
            return schema_violation(
                json!({"@entity": ["at least one of these fields must be non-empty: 'custom_id', 'username'"]}),
            );
        }
        let me = c.clone();
        let index = at.unwrap_or(next.len() - 1);
        for (i, o) in next.iter().enumerate().filter(|(i, _)| *i != index) {
            if me.username.is_some() && o.username == me.username {
                return unique_violation("username", me.username.as_deref().unwrap_or(""));
            }
            if me.custom_id.is_some() && o.custom_id == me.custom_id {
                let _ = i;
                return unique_violation("custom_id", me.custom_id.as_deref().unwrap_or(""));
            }
        }
        self.save(next, store, at.is_none(), consumer_json(&me))
    }
}
