//! A Kong-compatible Admin API subset (JSON or form bodies): consumers, their
//! jwt credentials and ACL groups, with Kong's status codes and error bodies.
//! Every change builds a new snapshot that the very next proxied request sees
//! (so revoking is a DELETE) and is written atomically to a state file, which
//! is reloaded on restart.

// Errors here *are* the HTTP responses (status + Kong's body), returned on the
// admin path only, where their size costs nothing measurable.
#![allow(clippy::result_large_err)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{Map, Value, json};

use crate::config::{AclSpec, ConsumerSpec, JwtSecretSpec, Route, Snapshot, compile_consumers};
use crate::server::State;

/// The Admin API's state.
#[derive(Debug)]
pub struct Admin {
    consumers: Mutex<Vec<ConsumerSpec>>,
    routes: Arc<Vec<Route>>,
    proxy: Arc<State>,
    state_file: Option<PathBuf>,
}

type Resp = Response<Full<Bytes>>;

fn reply(status: StatusCode, body: Value) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(
        serde_json::to_vec(&body).unwrap_or_default(),
    )));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

fn not_found() -> Resp {
    reply(StatusCode::NOT_FOUND, json!({"message": "Not found"}))
}

fn schema_violation(fields: Value) -> Resp {
    let detail = fields
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    format!(
                        "{k}: {}",
                        v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default();
    reply(
        StatusCode::BAD_REQUEST,
        json!({"code": 2, "name": "schema violation", "message": format!("schema violation ({detail})"), "fields": fields}),
    )
}

fn unique_violation(field: &str, value: &str) -> Resp {
    reply(
        StatusCode::CONFLICT,
        json!({
            "code": 5,
            "name": "unique constraint violation",
            "message": format!("UNIQUE violation detected on '{{{field}=\"{value}\"}}'"),
            "fields": {field: value},
        }),
    )
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn consumer_json(c: &ConsumerSpec) -> Value {
    json!({"id": c.id, "username": c.username, "custom_id": c.custom_id, "created_at": c.created_at, "updated_at": c.created_at, "tags": if c.tags.is_empty() { Value::Null } else { json!(c.tags) }})
}

fn jwt_json(c: &ConsumerSpec, j: &JwtSecretSpec) -> Value {
    json!({"id": j.id, "key": j.key, "secret": j.secret, "algorithm": j.algorithm.as_deref().unwrap_or("HS256"), "rsa_public_key": j.rsa_public_key, "consumer": {"id": c.id}, "created_at": j.created_at, "tags": if j.tags.is_empty() { Value::Null } else { json!(j.tags) }})
}

fn acl_json(c: &ConsumerSpec, a: &AclSpec) -> Value {
    json!({"id": a.id, "group": a.group, "consumer": {"id": c.id}, "created_at": a.created_at, "tags": if a.tags.is_empty() { Value::Null } else { json!(a.tags) }})
}

/// A page of a list, as Kong pages: `size` (default 100, at most 1000) and an
/// opaque `offset` from the previous page's `offset`/`next`.
fn list(uri: &http::Uri, data: Vec<Value>) -> Resp {
    let mut size = 100usize;
    let mut start = 0usize;
    for pair in uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "size" => match v.parse::<usize>() {
                Ok(n) if (1..=1000).contains(&n) => size = n,
                _ => {
                    return reply(
                        StatusCode::BAD_REQUEST,
                        json!({"code": 2, "name": "invalid size", "message": "size must be an integer between 1 and 1000"}),
                    );
                }
            },
            "offset" => {
                let decoded = percent_encoding::percent_decode_str(v).decode_utf8_lossy();
                match URL_SAFE_NO_PAD
                    .decode(decoded.as_bytes())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .and_then(|t| t.strip_prefix("gw:").and_then(|n| n.parse().ok()))
                {
                    Some(n) => start = n,
                    None => {
                        return reply(
                            StatusCode::BAD_REQUEST,
                            json!({"code": 7, "name": "invalid offset", "message": "'offset' is not a valid offset: bad base64 encoding"}),
                        );
                    }
                }
            }
            _ => {}
        }
    }
    let end = start.saturating_add(size).min(data.len());
    let more = end < data.len();
    let page: Vec<Value> = data.into_iter().skip(start).take(size).collect();
    if !more {
        return reply(StatusCode::OK, json!({"data": page, "next": null}));
    }
    let offset = URL_SAFE_NO_PAD.encode(format!("gw:{end}"));
    let mut next = format!("{}?offset={offset}", uri.path());
    if size != 100 {
        next.push_str(&format!("&size={size}"));
    }
    reply(
        StatusCode::OK,
        json!({"data": page, "next": next, "offset": offset}),
    )
}

/// Parses a JSON or form-urlencoded body into an object (empty body: `{}`).
fn parse_body(content_type: Option<&str>, body: &[u8]) -> Result<Map<String, Value>, Resp> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let ct = content_type.unwrap_or("");
    if ct.starts_with("application/json") {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(reply(
                StatusCode::BAD_REQUEST,
                json!({"message": "Cannot parse JSON body"}),
            )),
        }
    } else if ct.starts_with("application/x-www-form-urlencoded") {
        let text = String::from_utf8_lossy(body);
        let mut m = Map::new();
        for pair in text.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            m.insert(decode(k), Value::String(decode(v)));
        }
        Ok(m)
    } else {
        Err(reply(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            json!({"message": "Unsupported Content-Type"}),
        ))
    }
}

/// Reads an optional string field; a non-string is a schema violation naming it.
fn string_field(body: &Map<String, Value>, name: &str) -> Result<Option<String>, Resp> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(schema_violation(json!({name: "expected a string"}))),
    }
}

fn tags(body: &Map<String, Value>) -> Vec<String> {
    body.get("tags")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

impl Admin {
    /// `consumers` as [`Admin::normalize`]d; `routes` and `proxy` are the running proxy's.
    pub fn new(
        consumers: Vec<ConsumerSpec>,
        routes: Arc<Vec<Route>>,
        proxy: Arc<State>,
        state_file: Option<PathBuf>,
    ) -> Admin {
        Admin {
            consumers: Mutex::new(consumers),
            routes,
            proxy,
            state_file,
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
            if let Err(e) = write_atomic(path, &bytes) {
                tracing::error!(path = %path.display(), error = %e, "cannot persist the admin state");
                return Err(reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"message": "An unexpected error occurred"}),
                ));
            }
        }
        self.proxy.snapshot.store(Arc::new(Snapshot {
            routes: self.routes.clone(),
            credentials,
            consumers,
        }));
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

    /// Answers one Admin API request.
    pub async fn handle(&self, req: Request<hyper::body::Incoming>) -> Resp {
        let (parts, body) = req.into_parts();
        let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
            return reply(
                StatusCode::BAD_REQUEST,
                json!({"message": "Cannot read body"}),
            );
        };
        let ct = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let body = match parse_body(ct, &body) {
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
                        self.commit(next, store)
                            .err()
                            .unwrap_or_else(|| reply_empty(StatusCode::NO_CONTENT))
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
                if *kind == "jwt" {
                    self.jwt(store, ci, (m, &parts.uri), rest.first().copied(), &body)
                } else {
                    self.acls(store, ci, (m, &parts.uri), rest.first().copied(), &body)
                }
            }
            ["jwts"] if m == Method::GET => list(
                &parts.uri,
                store
                    .iter()
                    .flat_map(|c| c.jwt_secrets.iter().map(move |j| jwt_json(c, j)))
                    .collect(),
            ),
            ["acls"] if m == Method::GET => list(
                &parts.uri,
                store
                    .iter()
                    .flat_map(|c| c.acls.iter().map(move |a| acl_json(c, a)))
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
                next.push(ConsumerSpec {
                    created_at: Some(now()),
                    username: None,
                    custom_id: None,
                    id: Some(new_id()),
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

    fn jwt(
        &self,
        store: &mut Vec<ConsumerSpec>,
        ci: usize,
        (m, uri): (&Method, &http::Uri),
        item: Option<&str>,
        body: &Map<String, Value>,
    ) -> Resp {
        let find = |store: &[ConsumerSpec], k: &str| {
            store[ci]
                .jwt_secrets
                .iter()
                .position(|j| j.id.as_deref() == Some(k) || j.key.as_deref() == Some(k))
        };
        match (m.as_str(), item) {
            ("GET", None) => list(
                uri,
                store[ci]
                    .jwt_secrets
                    .iter()
                    .map(|j| jwt_json(&store[ci], j))
                    .collect(),
            ),
            ("GET", Some(k)) => find(store, k).map_or_else(not_found, |j| {
                reply(
                    StatusCode::OK,
                    jwt_json(&store[ci], &store[ci].jwt_secrets[j]),
                )
            }),
            ("DELETE", Some(k)) => match find(store, k) {
                None => not_found(),
                Some(j) => {
                    let mut next = store.clone();
                    next[ci].jwt_secrets.remove(j);
                    self.commit(next, store)
                        .err()
                        .unwrap_or_else(|| reply_empty(StatusCode::NO_CONTENT))
                }
            },
            ("POST", None) | ("PATCH", Some(_)) | ("PUT", Some(_)) => {
                let existing = item.and_then(|k| find(store, k));
                if m == Method::PATCH && existing.is_none() {
                    return not_found();
                }
                let mut fields = Map::new();
                let mut get = |name: &str| match string_field(body, name) {
                    Ok(v) => v,
                    Err(_) => {
                        fields.insert(name.to_owned(), json!("expected a string"));
                        None
                    }
                };
                let (key, secret, algorithm, rsa) = (
                    get("key"),
                    get("secret"),
                    get("algorithm"),
                    get("rsa_public_key"),
                );
                if !fields.is_empty() {
                    return schema_violation(Value::Object(fields));
                }
                let mut next = store.clone();
                let list = &mut next[ci].jwt_secrets;
                let idx = match existing {
                    Some(j) => j,
                    None => {
                        list.push(JwtSecretSpec {
                            created_at: Some(now()),
                            key: item
                                .map(str::to_owned)
                                .or_else(|| Some(crate::auth::jwt::random_string())),
                            secret: Some(crate::auth::jwt::random_string()),
                            algorithm: Some("HS256".into()),
                            rsa_public_key: None,
                            id: Some(new_id()),
                            tags: Vec::new(),
                        });
                        list.len() - 1
                    }
                };
                let j = &mut list[idx];
                if key.is_some() {
                    j.key = key;
                }
                if secret.is_some() {
                    j.secret = secret;
                }
                if algorithm.is_some() {
                    j.algorithm = algorithm;
                }
                if rsa.is_some() {
                    j.rsa_public_key = rsa;
                }
                if body.contains_key("tags") {
                    j.tags = tags(body);
                }
                let me = j.clone();
                // The same validation as the config file, with Kong's field errors.
                let probe = std::sync::Arc::new(crate::config::Consumer::new(
                    String::new(),
                    None,
                    None,
                    vec![],
                ));
                if let Err((field, msg)) = crate::auth::jwt::Credential::new(&me, probe) {
                    return schema_violation(
                        json!({field: msg, "@entity": ["failed conditional validation given value of field 'algorithm'"]}),
                    );
                }
                let key = me.key.clone().unwrap_or_default();
                let duplicate = next
                    .iter()
                    .flat_map(|c| c.jwt_secrets.iter())
                    .filter(|j| j.key.as_deref() == Some(key.as_str()))
                    .count()
                    > 1;
                if duplicate {
                    return unique_violation("key", &key);
                }
                let body = jwt_json(&next[ci], &me);
                self.save(next, store, existing.is_none() && m != Method::PUT, body)
            }
            _ => not_found(),
        }
    }

    fn acls(
        &self,
        store: &mut Vec<ConsumerSpec>,
        ci: usize,
        (m, uri): (&Method, &http::Uri),
        item: Option<&str>,
        body: &Map<String, Value>,
    ) -> Resp {
        let find = |store: &[ConsumerSpec], k: &str| {
            store[ci]
                .acls
                .iter()
                .position(|a| a.id.as_deref() == Some(k) || a.group == k)
        };
        match (m.as_str(), item) {
            ("GET", None) => list(
                uri,
                store[ci]
                    .acls
                    .iter()
                    .map(|a| acl_json(&store[ci], a))
                    .collect(),
            ),
            ("GET", Some(k)) => find(store, k).map_or_else(not_found, |a| {
                reply(StatusCode::OK, acl_json(&store[ci], &store[ci].acls[a]))
            }),
            ("DELETE", Some(k)) => match find(store, k) {
                None => not_found(),
                Some(a) => {
                    let mut next = store.clone();
                    next[ci].acls.remove(a);
                    self.commit(next, store)
                        .err()
                        .unwrap_or_else(|| reply_empty(StatusCode::NO_CONTENT))
                }
            },
            ("POST", None) | ("PUT", Some(_)) | ("PATCH", Some(_)) => {
                let group = match string_field(body, "group") {
                    Ok(g) => g.or_else(|| {
                        if m == Method::PUT {
                            item.map(str::to_owned)
                        } else {
                            None
                        }
                    }),
                    Err(r) => return r,
                };
                let existing = item.and_then(|k| find(store, k));
                if m == Method::PATCH && existing.is_none() {
                    return not_found();
                }
                let mut next = store.clone();
                let acls = &mut next[ci].acls;
                let idx = match existing {
                    Some(a) => a,
                    None => {
                        let Some(g) = group.clone() else {
                            return schema_violation(json!({"group": "required field missing"}));
                        };
                        acls.push(AclSpec {
                            created_at: Some(now()),
                            group: g,
                            id: Some(new_id()),
                            tags: Vec::new(),
                        });
                        acls.len() - 1
                    }
                };
                if let Some(g) = group {
                    acls[idx].group = g;
                }
                if body.contains_key("tags") {
                    acls[idx].tags = tags(body);
                }
                let me = acls[idx].clone();
                if acls.iter().filter(|a| a.group == me.group).count() > 1 {
                    return unique_violation("group", &me.group);
                }
                let body = acl_json(&next[ci], &me);
                self.save(next, store, existing.is_none() && m != Method::PUT, body)
            }
            _ => not_found(),
        }
    }
}

fn reply_empty(status: StatusCode) -> Resp {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r
}

/// Temp file in the same directory, fsync, rename.
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("state")
    ));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
