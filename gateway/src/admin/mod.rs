//! A Kong-compatible Admin API subset (JSON or form bodies): consumers, their
//! jwt credentials and ACL groups, with Kong's status codes and error bodies.
//! Every change builds a new snapshot that the very next proxied request sees
//! (so revoking is a DELETE) and is stored durably ([`db`]) before the
//! answer; the store is reloaded on restart. A change costs what it touches:
//! the consumers it names are found by index ([`store`]), copied and
//! recompiled, and the snapshot's maps share everything else
//! ([`crate::shards`]). With an apply delay (`--admin-apply-delay`) the
//! proxy sees each change that much after the answer, as a Kong node sees
//! another's change only at its next `db_update_frequency` poll.

// Errors here *are* the HTTP responses (status + Kong's body), returned on the
// admin path only, where their size costs nothing measurable.
#![allow(clippy::result_large_err)]
#![allow(
    clippy::disallowed_methods,
    reason = "the apply delay: when a committed change is due at the proxy"
)]

pub mod db;
mod entity;
mod reply;
pub mod store;
mod top;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{Map, Value, json};

use crate::auth::jwt::Credentials;
use crate::clock::unix_now as now;
use crate::config::{AclSpec, ConsumerSpec, JwtSecretSpec, compile_consumer, remove_consumer};
use crate::consumer::Consumers;
use crate::snapshot::{Live, Route, Snapshot};
use db::Db;
use entity::{Change, SubEntity, crud};
use reply::{
    Resp, check_fields, id_or_new, list, not_found, parse_body, reply, reply_empty,
    schema_violation, string_field, tags, unique_violation,
};
use store::{Edits, Index, Seq, Store, Work};

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

/// What the Admin API changes, under one lock: the consumers, their
/// compiled form (the next snapshot's maps), and where they persist.
#[derive(Debug)]
pub(crate) struct State {
    store: Store,
    credentials: Credentials,
    consumers: Consumers,
    db: Option<Db>,
}

/// The Admin API's state.
#[derive(Debug)]
pub struct Admin {
    state: Mutex<State>,
    routes: Arc<Vec<Route>>,
    proxy: Arc<Live>,
    /// With an apply delay: committed snapshots, applied in order when due.
    delayed: Option<Mutex<std::sync::mpsc::Sender<(Instant, Snapshot)>>>,
    delay: Duration,
    /// A request body that sends nothing for this long: 408.
    body_timeout: Duration,
}

/// Why a request body could not be read.
enum BodyFault {
    TooLarge,
    TimedOut,
    Unreadable,
}

/// Reads a request body of at most `max` bytes, each read due within
/// `timeout` of the last (nginx's `client_body_timeout`).
async fn read_body(
    body: &mut hyper::body::Incoming,
    max: usize,
    timeout: Duration,
) -> Result<Bytes, BodyFault> {
    let mut buf = bytes::BytesMut::new();
    loop {
        match tokio::time::timeout(timeout, body.frame()).await {
            Err(_) => return Err(BodyFault::TimedOut),
            Ok(None) => return Ok(buf.freeze()),
            Ok(Some(Err(_))) => return Err(BodyFault::Unreadable),
            Ok(Some(Ok(f))) => {
                if let Some(d) = f.data_ref() {
                    if buf.len() + d.len() > max {
                        return Err(BodyFault::TooLarge);
                    }
                    buf.extend_from_slice(d);
                }
            }
        }
    }
}

/// Reads and discards what is left of a refused body in the background
/// (at most 64 MiB, 5 s without a byte ends it), so that a client still
/// writing it is not cut off with a reset before it reads the answer:
/// nginx's lingering close.
fn linger(mut body: hyper::body::Incoming) {
    tokio::spawn(async move {
        let mut left: usize = 64 << 20;
        while let Ok(Some(Ok(f))) = tokio::time::timeout(Duration::from_secs(5), body.frame()).await
        {
            left = left.saturating_sub(f.data_ref().map_or(0, |d| d.len()));
            if left == 0 {
                break;
            }
        }
    });
}

/// An answer after which the connection ends: the rest of the body may
/// still come and must not be read as a request.
fn closing(status: StatusCode, message: &str) -> Resp {
    let mut r = reply(status, json!({ "message": message }));
    r.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    r
}

fn consumer_json(c: &ConsumerSpec) -> Value {
    json!({"id": c.id, "username": c.username, "custom_id": c.custom_id, "created_at": c.created_at, "updated_at": c.created_at, "tags": if c.tags.is_empty() { Value::Null } else { json!(c.tags) }})
}

impl Admin {
    /// `rows`: the consumers as [`store::normalize`]d, with their places;
    /// `credentials` and `consumers` their compiled form, as the proxy's
    /// snapshot holds it; `routes` and `proxy` are the running proxy's.
    pub fn new(
        rows: Vec<(Seq, ConsumerSpec)>,
        (credentials, consumers): (Credentials, Consumers),
        routes: Arc<Vec<Route>>,
        proxy: Arc<Live>,
        db: Option<Db>,
        (apply_delay, body_timeout): (Duration, Duration),
    ) -> Admin {
        let delayed = (!apply_delay.is_zero()).then(|| Mutex::new(delayed_applier(proxy.clone())));
        Admin {
            state: Mutex::new(State {
                store: Store::new(rows),
                credentials,
                consumers,
                db,
            }),
            routes,
            proxy,
            delayed,
            delay: apply_delay,
            body_timeout,
        }
    }

    /// How many consumers the Admin API holds.
    pub fn len(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .store
            .len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Recompiles the consumers `edits` touches over the current maps,
    /// stores the change, and hands the proxy its next snapshot; on a
    /// compile or storage error nothing changes.
    fn commit(&self, state: &mut State, edits: Edits) -> Result<(), Resp> {
        let (mut credentials, mut consumers) = (state.credentials.clone(), state.consumers.clone());
        // Every old entry out before any new one goes in: a change may move
        // a credential from one consumer to another.
        for seq in edits.keys() {
            if let Some(old) = state.store.get(*seq) {
                remove_consumer(old, &mut credentials, &mut consumers);
            }
        }
        for (seq, c) in &edits {
            if let Some(c) = c {
                compile_consumer(
                    c,
                    &format!("consumers[{seq}]"),
                    &mut credentials,
                    &mut consumers,
                )
                .map_err(|e| schema_violation(json!({"@entity": [e.to_string()]})))?;
            }
        }
        if let Some(db) = &mut state.db
            && let Err(e) = db.write(&edits)
        {
            tracing::error!(error = %e, "cannot persist the admin state");
            return Err(reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"message": "An unexpected error occurred"}),
            ));
        }
        state.store.apply(edits);
        state.credentials = credentials.clone();
        state.consumers = consumers.clone();
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
        Ok(())
    }

    /// Commits a create (201) or an update (200) and answers with the entity.
    fn save(&self, state: &mut State, edits: Edits, created: bool, body: Value) -> Resp {
        match self.commit(state, edits) {
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
    fn apply(&self, change: Change, state: &mut State) -> Resp {
        match change {
            Change::None(r) => r,
            Change::Delete(edits) => self.delete(state, edits),
            Change::Save {
                edits,
                created,
                body,
            } => self.save(state, edits, created, body),
        }
    }

    /// Commits a removal and answers 204.
    fn delete(&self, state: &mut State, edits: Edits) -> Resp {
        self.commit(state, edits)
            .err()
            .unwrap_or_else(|| reply_empty(StatusCode::NO_CONTENT))
    }

    /// Answers one Admin API request.
    // long: the Admin API's route table, one exhaustive match over method and path
    pub async fn handle(&self, req: Request<hyper::body::Incoming>) -> Resp {
        let (parts, mut body) = req.into_parts();
        // A declared length over the cap is refused before any of it is read.
        let declared = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > MAX_BODY as u64) {
            linger(body);
            return closing(StatusCode::PAYLOAD_TOO_LARGE, "Payload too large");
        }
        let body = match read_body(&mut body, MAX_BODY, self.body_timeout).await {
            Ok(b) => b,
            Err(BodyFault::TooLarge) => {
                linger(body);
                return closing(StatusCode::PAYLOAD_TOO_LARGE, "Payload too large");
            }
            Err(BodyFault::TimedOut) => {
                return closing(StatusCode::REQUEST_TIMEOUT, "Request timeout");
            }
            Err(BodyFault::Unreadable) => {
                return closing(StatusCode::BAD_REQUEST, "Cannot read body");
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
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let state = &mut *guard;
        let store = &state.store;
        match segs.as_slice() {
            [] => reply(
                StatusCode::OK,
                json!({"tagline": "Welcome to jwt-gateway", "version": env!("CARGO_PKG_VERSION")}),
            ),
            ["metrics"] if m == Method::GET => {
                let mut r = Response::new(Full::new(Bytes::from(self.proxy.metrics_text())));
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
                list(&parts.uri, store.iter().map(|(_, c)| c), consumer_json)
            }
            ["consumers"] if m == Method::POST => self.upsert_consumer(state, None, &body),
            ["consumers", c] => match (m.as_str(), store.find(c)) {
                ("GET", Some(i)) => store
                    .get(i)
                    .map_or_else(not_found, |c| reply(StatusCode::OK, consumer_json(c))),
                ("PATCH" | "PUT", Some(i)) => self.upsert_consumer(state, Some(i), &body),
                ("PUT", None) => {
                    let mut b = body.clone();
                    b.entry("username").or_insert(json!(c));
                    self.upsert_consumer(state, None, &b)
                }
                ("DELETE", Some(i)) => {
                    let mut work = Work::new(store);
                    work.remove(i);
                    let edits = work.edits;
                    self.delete(state, edits)
                }
                _ => not_found(),
            },
            ["consumers", c, kind @ ("jwt" | "acls"), rest @ ..] => {
                let Some(ci) = store.find(c) else {
                    return not_found();
                };
                let (request, item) = ((m, &parts.uri), rest.first().copied());
                let change = if *kind == "jwt" {
                    crud::<JwtSecretSpec>(Work::new(store), ci, request, item, &body)
                } else {
                    crud::<AclSpec>(Work::new(store), ci, request, item, &body)
                };
                self.apply(change, state)
            }
            ["jwts", rest @ ..] if !(m == Method::GET && rest.is_empty()) => {
                let (item, owner_path) = match rest {
                    [] => (None, false),
                    [k] => (Some(*k), false),
                    [k, "consumer"] => (Some(*k), true),
                    _ => return not_found(),
                };
                self.top_level::<JwtSecretSpec>(state, (m, &parts.uri), item, owner_path, &body)
            }
            ["acls", rest @ ..] if !(m == Method::GET && rest.is_empty()) => {
                let (item, owner_path) = match rest {
                    [] => (None, false),
                    [k] => (Some(*k), false),
                    [k, "consumer"] => (Some(*k), true),
                    _ => return not_found(),
                };
                self.top_level::<AclSpec>(state, (m, &parts.uri), item, owner_path, &body)
            }
            ["jwts"] if m == Method::GET => list(
                &parts.uri,
                store
                    .iter()
                    .flat_map(|(_, c)| c.jwt_secrets.iter().map(move |j| (j, c))),
                |(j, c)| j.json(c),
            ),
            ["acls"] if m == Method::GET => list(
                &parts.uri,
                store
                    .iter()
                    .flat_map(|(_, c)| c.acls.iter().map(move |a| (a, c))),
                |(a, c)| a.json(c),
            ),
            _ => not_found(),
        }
    }

    fn upsert_consumer(
        &self,
        state: &mut State,
        at: Option<Seq>,
        body: &Map<String, Value>,
    ) -> Resp {
        let (username, custom_id) = match (
            string_field(body, "username"),
            string_field(body, "custom_id"),
        ) {
            (Ok(u), Ok(c)) => (u, c),
            (Err(r), _) | (_, Err(r)) => return r,
        };
        let mut work = Work::new(&state.store);
        let seq = match at {
            Some(i) => i,
            None => {
                let id = id_or_new(body);
                if state.store.by_id(&id).is_some() {
                    return unique_violation("id", &id);
                }
                work.push(ConsumerSpec {
                    created_at: Some(now()),
                    username: None,
                    custom_id: None,
                    id: Some(id),
                    tags: Vec::new(),
                    jwt_secrets: Vec::new(),
                    acls: Vec::new(),
                })
            }
        };
        let Some(c) = work.get_mut(seq) else {
            return not_found();
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
        if let Some(u) = &me.username
            && work.taken(Index::Username, u, seq)
        {
            return unique_violation("username", u);
        }
        if let Some(id) = &me.custom_id
            && work.taken(Index::CustomId, id, seq)
        {
            return unique_violation("custom_id", id);
        }
        let edits = work.edits;
        self.save(state, edits, at.is_none(), consumer_json(&me))
    }
}
