//! The Admin API's answers as Kong gives them: JSON bodies, schema and
//! unique-constraint violations, pages of lists; and request bodies read as
//! JSON or forms.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::{Map, Value, json};

pub(super) type Resp = Response<Full<Bytes>>;

pub(super) fn reply(status: StatusCode, body: Value) -> Resp {
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

pub(super) fn not_found() -> Resp {
    reply(StatusCode::NOT_FOUND, json!({"message": "Not found"}))
}

/// `name: message` for each field error, nested records as dotted paths
/// (Kong's `schema violation (consumer.id: required field missing)`).
fn flatten(prefix: &str, v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&path, v, out);
            }
        }
        // Entity checks read as they are: `schema violation (at least one of …)`.
        Value::Array(items) => {
            for item in items {
                match (prefix, item) {
                    ("@entity", Value::String(s)) => out.push(s.clone()),
                    _ => flatten(prefix, item, out),
                }
            }
        }
        Value::String(s) => out.push(format!("{prefix}: {s}")),
        other => out.push(format!("{prefix}: {other}")),
    }
}

pub(super) fn schema_violation(fields: Value) -> Resp {
    let mut parts = Vec::new();
    flatten("", &fields, &mut parts);
    let detail = parts.join("; ");
    reply(
        StatusCode::BAD_REQUEST,
        json!({"code": 2, "name": "schema violation", "message": format!("schema violation ({detail})"), "fields": fields}),
    )
}

pub(super) fn unique_violation(field: &str, value: &str) -> Resp {
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

pub(super) fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A page of a list, as Kong pages: `size` (default 100, at most 1000) and an
/// opaque `offset` from the previous page's `offset`/`next`.
/// `json` renders an item: only the page's items are rendered.
pub(super) fn list<T>(
    uri: &http::Uri,
    data: impl Iterator<Item = T>,
    json: impl Fn(T) -> Value,
) -> Resp {
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
    // One more than the page: whether there is a next page, without
    // building the rest of the list.
    let mut page: Vec<Value> = data
        .skip(start)
        .take(size.saturating_add(1))
        .map(json)
        .collect();
    let more = page.len() > size;
    page.truncate(size);
    let end = start.saturating_add(size);
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
/// As Kong's Admin API (`parse_params`): a POST, PUT or PATCH sent as
/// `application/json` must carry a JSON object, even an empty body is
/// `Cannot parse JSON body`; other methods' bodies are read only if present.
pub(super) fn parse_body(
    content_type: Option<&str>,
    body: &[u8],
    needs_body: bool,
) -> Result<Map<String, Value>, Resp> {
    let ct = content_type.unwrap_or("").to_ascii_lowercase();
    let json = ct.contains("application/json");
    if body.iter().all(u8::is_ascii_whitespace) && !(json && needs_body) {
        return Ok(Map::new());
    }
    if json {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(reply(
                StatusCode::BAD_REQUEST,
                json!({"message": "Cannot parse JSON body"}),
            )),
        }
    } else if ct.contains("application/x-www-form-urlencoded") {
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
pub(super) fn string_field(body: &Map<String, Value>, name: &str) -> Result<Option<String>, Resp> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(schema_violation(json!({name: "expected a string"}))),
    }
}

/// Tags an entity may carry: Kong's schema sets no count, so this bound is
/// ours (one write's memory stays small; 1,000 is far above any real use).
pub(super) const MAX_TAGS: usize = 1000;

/// The longest `username`, `custom_id` and tag, in characters: Kong's
/// schema (128).
pub(super) const MAX_NAME: usize = 128;

/// The longest of any other string field (keys, secrets, public keys), in
/// bytes: Kong's schema sets none, so this bound is ours. Every Admin write
/// copies and saves the whole state, so one 10 MB field made every later
/// write slow; 64 KiB is far above any real key (an RSA-16384 public key in
/// PEM is about 3 KB).
pub(super) const MAX_FIELD: usize = 64 * 1024;

/// What an entity's body may hold: `fields` (besides `id`, `tags`,
/// `created_at`, `updated_at` and `consumer`, which every entity has). An
/// unknown field, an `id` that is not a UUID, a string longer than
/// [`MAX_NAME`] or [`MAX_FIELD`], or a bad tag is Kong's schema violation
/// naming the field.
pub(super) fn check_fields(body: &Map<String, Value>, fields: &[&str]) -> Result<(), Resp> {
    const COMMON: [&str; 5] = ["id", "tags", "created_at", "updated_at", "consumer"];
    let mut bad = Map::new();
    for (k, v) in body {
        if !fields.contains(&k.as_str()) && !COMMON.contains(&k.as_str()) {
            bad.insert(k.clone(), json!("unknown field"));
            continue;
        }
        let Some(s) = v.as_str() else { continue };
        if matches!(k.as_str(), "username" | "custom_id") && s.chars().count() > MAX_NAME {
            bad.insert(
                k.clone(),
                json!(format!("length must be at most {MAX_NAME}")),
            );
        } else if s.len() > MAX_FIELD {
            bad.insert(
                k.clone(),
                json!(format!("length must be at most {MAX_FIELD} bytes")),
            );
        }
    }
    match body.get("id") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if uuid::Uuid::parse_str(s).is_ok() => {}
        Some(_) => {
            bad.insert("id".into(), json!("expected a valid UUID"));
        }
    }
    match body.get("tags") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) if a.len() > MAX_TAGS => {
            bad.insert("tags".into(), json!(format!("at most {MAX_TAGS} tags")));
        }
        Some(Value::Array(a)) => {
            // Kong's tag: a non-empty string of at most 128 characters,
            // without ',' or '/' (or control characters).
            let ok = |t: &Value| {
                t.as_str().is_some_and(|t| {
                    !t.is_empty()
                        && t.chars().count() <= MAX_NAME
                        && !t.chars().any(|c| c == ',' || c == '/' || c.is_control())
                })
            };
            if let Some(t) = a.iter().find(|t| !ok(t)) {
                bad.insert(
                    "tags".into(),
                    json!([format!(
                        "invalid tag {t}: expected printable ascii (except `,` and `/`) or valid utf-8 sequences"
                    )]),
                );
            }
        }
        Some(_) => {
            bad.insert("tags".into(), json!("expected a set"));
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(schema_violation(Value::Object(bad)))
    }
}

/// The body's `id` (checked by [`check_fields`]), or a new one.
pub(super) fn id_or_new(body: &Map<String, Value>) -> String {
    body.get("id")
        .and_then(Value::as_str)
        .map_or_else(new_id, str::to_owned)
}

pub(super) fn tags(body: &Map<String, Value>) -> Vec<String> {
    body.get("tags")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn reply_empty(status: StatusCode) -> Resp {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r
}
