//! Request handling: routes, per-request programming through `X-Mock-*`
//! headers, delays, stalls and the `Server-Timing` header.

#![allow(
    clippy::disallowed_methods,
    reason = "the service time reported in Server-Timing is measured here"
)]

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::num::NonZeroU64;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use http_body::Body as _;
use http_body_util::BodyExt;
use serde::Serialize;

use crate::body::MockBody;
use crate::config::{JwksConfig, Program};
use crate::spec::{ExtraHeader, Latency, Size, SpecError, StatusMix, parse_duration};
use crate::stall::Stall;
use crate::stats::Stats;
use crate::timer;

/// Request header: latency spec for this request (`fixed:2ms`, `uniform:1ms..5ms`, …).
pub const H_LATENCY: &str = "x-mock-latency";
/// Request header: response body size (`0`, `1KiB`, `1MiB`).
pub const H_SIZE: &str = "x-mock-size";
/// Request header: response status with optional weights (`503`, `200:98,503:2`).
pub const H_STATUS: &str = "x-mock-status";
/// Request header, repeatable: an extra response header (`X-Foo: bar`).
pub const H_HEADER: &str = "x-mock-header";
/// Request header: `Connection: close` on every Nth request of this connection (`1`: this one).
pub const H_CLOSE_EVERY: &str = "x-mock-close-every";
/// The header a gateway sets to name the authenticated consumer (Kong's).
pub const H_CONSUMER: HeaderName = HeaderName::from_static("x-consumer-username");
const SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");

/// State shared by all connections of one server.
#[derive(Debug)]
pub struct Shared {
    pub program: Program,
    pub stats: Arc<Stats>,
    pub stall: Stall,
    pub jwks: Option<JwksConfig>,
    /// `http://ADDR` or `https://ADDR`.
    pub base_url: String,
    /// A request body that sends nothing for this long: 408, connection closed.
    pub body_timeout: Duration,
}

/// Per-connection state.
#[derive(Debug, Default)]
pub struct Conn {
    requests: AtomicU64,
}

type Resp = Response<MockBody>;

/// Answers one request. Never fails: bad input is a 400 naming the header.
pub async fn handle(
    req: Request<hyper::body::Incoming>,
    shared: Arc<Shared>,
    conn: Arc<Conn>,
) -> Result<Resp, std::convert::Infallible> {
    let received = Instant::now();
    let nth_on_conn = conn.requests.fetch_add(1, Relaxed) + 1;
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    let consumer = parts.headers.get(&H_CONSUMER).and_then(|v| v.to_str().ok());

    let t = shared.body_timeout;
    let routed = match (path, &parts.method) {
        ("/healthz", _) => drain(body, t)
            .await
            .map(|n| (text(StatusCode::OK, "ok"), n)),
        ("/stats", _) => drain(body, t)
            .await
            .map(|n| (json(StatusCode::OK, &shared.stats.snapshot()), n)),
        ("/_mock/stall", &Method::POST) => drain(body, t)
            .await
            .map(|n| (trigger_stall(&parts.uri, &shared.stall), n)),
        ("/_mock/stall", _) => drain(body, t)
            .await
            .map(|n| (text(StatusCode::METHOD_NOT_ALLOWED, "use POST\n"), n)),
        ("/.well-known/jwks.json", _) if shared.jwks.is_some() => match drain(body, t).await {
            Ok(n) => Ok((serve_jwks(&shared).await, n)),
            Err(e) => Err(e),
        },
        ("/.well-known/openid-configuration", _) if shared.jwks.is_some() => {
            match drain(body, t).await {
                Ok(n) => Ok((serve_discovery(&shared).await, n)),
                Err(e) => Err(e),
            }
        }
        _ => match Overrides::from_headers(&parts.headers) {
            Err(bad) => drain(body, t).await.map(|n| (bad.into_response(), n)),
            Ok(ov) => {
                let _in_flight = shared.stats.in_flight();
                match drain(body, t).await {
                    Ok(bytes_in) => {
                        let echo = (path == "/echo" || path.starts_with("/echo/"))
                            .then(|| EchoDoc::new(&parts, bytes_in));
                        let resp =
                            programmed(&shared, &ov, received, nth_on_conn, parts.version, echo)
                                .await;
                        Ok((resp, bytes_in))
                    }
                    Err(e) => Err(e),
                }
            }
        },
    };
    let (mut resp, bytes_in) = routed.unwrap_or_else(|BodyTimedOut(n)| {
        // nginx's client_body_timeout: 408, and the connection closes (the
        // rest of the body may still come; it must not be read as a request).
        let mut r = text(StatusCode::REQUEST_TIMEOUT, "request body timeout\n");
        r.headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        (r, n)
    });
    let bytes_out = resp.body().size_hint().exact().unwrap_or(0);
    shared
        .stats
        .record(resp.status().as_u16(), path, consumer, bytes_in, bytes_out);
    resp.headers_mut()
        .insert(SERVER_TIMING, server_timing(received.elapsed()));
    Ok(resp)
}

/// The programmable route: delay, stall, status, size or echo body, headers, close.
async fn programmed(
    shared: &Shared,
    ov: &Overrides<'_>,
    received: Instant,
    nth_on_conn: u64,
    version: Version,
    echo: Option<EchoDoc>,
) -> Resp {
    let program = &shared.program;
    let latency = ov.latency.as_ref().unwrap_or(&program.latency);
    let (delay, status) = {
        let mut rng = rand::rng();
        let delay = (!latency.is_zero()).then(|| latency.sample(&mut rng));
        let status = ov
            .status
            .as_ref()
            .unwrap_or(&program.status)
            .sample(&mut rng);
        (delay, status)
    };
    if let Some(delay) = delay {
        timer::sleep_until(received + delay).await;
    }
    // Hold while a stall is on; a stall may be extended while we wait.
    while let Some(end) = shared.stall.hold_until(Instant::now()) {
        timer::sleep_until(end).await;
    }

    let mut resp = match echo {
        Some(doc) => json(status, &doc),
        None => {
            let size = ov.size.unwrap_or(program.size);
            let no_body = status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
            let mut r = Response::new(MockBody::filler(if no_body { 0 } else { size.0 }));
            *r.status_mut() = status;
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            r
        }
    };
    let headers = resp.headers_mut();
    for h in program.headers.iter().chain(ov.headers.iter()) {
        headers.append(h.name.clone(), h.value.clone());
    }
    let close_every = ov.close_every.or(program.close_every);
    let is_http1 = matches!(version, Version::HTTP_10 | Version::HTTP_11);
    if is_http1 && close_every.is_some_and(|n| nth_on_conn.is_multiple_of(n.get())) {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

/// Per-request overrides parsed from `X-Mock-*` headers (absent: use the defaults).
#[derive(Debug, Default)]
struct Overrides<'a> {
    latency: Option<Latency>,
    size: Option<Size>,
    status: Option<StatusMix>,
    headers: Cow<'a, [ExtraHeader]>,
    close_every: Option<NonZeroU64>,
}

impl Overrides<'_> {
    /// One pass over the request headers; requests without `X-Mock-*`
    /// headers (the common case under load) cost one prefix check per header.
    fn from_headers(h: &HeaderMap) -> Result<Self, BadHeader> {
        fn parse<T: std::str::FromStr<Err = SpecError>>(
            name: &'static str,
            v: &HeaderValue,
        ) -> Result<Option<T>, BadHeader> {
            let s = v
                .to_str()
                .map_err(|_| bad_header(name, "not visible ASCII"))?;
            s.parse()
                .map(Some)
                .map_err(|e: SpecError| bad_header(name, &e.to_string()))
        }
        let mut ov = Overrides::default();
        let mut extra = Vec::new();
        for (name, v) in h {
            let name = name.as_str();
            if !name.starts_with("x-mock-") {
                continue;
            }
            match name {
                H_LATENCY => ov.latency = parse(H_LATENCY, v)?,
                H_SIZE => ov.size = parse(H_SIZE, v)?,
                H_STATUS => ov.status = parse(H_STATUS, v)?,
                H_HEADER => extra.extend(parse::<ExtraHeader>(H_HEADER, v)?),
                H_CLOSE_EVERY => {
                    let n = v
                        .to_str()
                        .ok()
                        .and_then(|s| s.trim().parse::<NonZeroU64>().ok())
                        .ok_or_else(|| bad_header(H_CLOSE_EVERY, "expected a whole number >= 1"))?;
                    ov.close_every = Some(n);
                }
                _ => {}
            }
        }
        if !extra.is_empty() {
            ov.headers = Cow::Owned(extra);
        }
        Ok(ov)
    }
}

/// An `X-Mock-*` header that could not be parsed: answered with 400 naming it.
#[derive(Debug)]
struct BadHeader {
    name: &'static str,
    reason: String,
}

fn bad_header(name: &'static str, reason: &str) -> BadHeader {
    BadHeader {
        name,
        reason: reason.to_owned(),
    }
}

impl BadHeader {
    fn into_response(self) -> Resp {
        let BadHeader { name, reason } = self;
        text(
            StatusCode::BAD_REQUEST,
            format!("bad request header {name}: {reason}\n"),
        )
    }
}

/// A request body sent nothing for the body timeout (the bytes read so far).
struct BodyTimedOut(u64);

/// Reads and discards a request body; returns its length in bytes, or
/// [`BodyTimedOut`] when `timeout` passes with nothing new (nginx's
/// `client_body_timeout`: between two reads, not for the whole body).
async fn drain(mut body: hyper::body::Incoming, timeout: Duration) -> Result<u64, BodyTimedOut> {
    let mut n = 0;
    loop {
        match tokio::time::timeout(timeout, body.frame()).await {
            Err(_) => return Err(BodyTimedOut(n)),
            Ok(None | Some(Err(_))) => return Ok(n),
            Ok(Some(Ok(f))) => n += f.data_ref().map_or(0, |d| d.len() as u64),
        }
    }
}

/// `upstream;dur=<ms with 3 decimals>`: microsecond precision.
pub fn server_timing(elapsed: Duration) -> HeaderValue {
    const PREFIX: &[u8] = b"upstream;dur=";
    let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    let mut buf = [0u8; 48];
    buf[..PREFIX.len()].copy_from_slice(PREFIX);
    // Digits of `us` right to left, with a '.' before the last three.
    let mut digits = [0u8; 24];
    let (mut n, mut i) = (us, digits.len());
    let mut written = 0;
    while written < 4 || n > 0 {
        if written == 3 {
            i -= 1;
            digits[i] = b'.';
        }
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        written += 1;
    }
    let len = PREFIX.len() + digits.len() - i;
    buf[PREFIX.len()..len].copy_from_slice(&digits[i..]);
    HeaderValue::from_bytes(&buf[..len]).unwrap_or_else(|_| HeaderValue::from_static("upstream"))
}

fn text(status: StatusCode, body: impl Into<MockBody>) -> Resp {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn json(status: StatusCode, value: &impl Serialize) -> Resp {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut r = Response::new(MockBody::from(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn trigger_stall(uri: &http::Uri, stall: &Stall) -> Resp {
    let hold = uri
        .query()
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|kv| kv.strip_prefix("for="))
        .map(parse_duration);
    match hold {
        Some(Ok(hold)) => {
            let now = Instant::now();
            let end = stall.trigger(now, hold);
            let doc = serde_json::json!({ "stalled_for_ms": end.duration_since(now).as_secs_f64() * 1e3 });
            json(StatusCode::OK, &doc)
        }
        Some(Err(e)) => text(
            StatusCode::BAD_REQUEST,
            format!("bad query parameter for: {e}\n"),
        ),
        None => text(
            StatusCode::BAD_REQUEST,
            "missing query parameter for (e.g. ?for=500ms)\n",
        ),
    }
}

async fn serve_jwks(shared: &Shared) -> Resp {
    let Some(jwks) = &shared.jwks else {
        return text(StatusCode::NOT_FOUND, "no jwks configured\n");
    };
    match tokio::fs::read(jwks.dir.join("jwks.json")).await {
        Ok(b) => with_type(Bytes::from(b), "application/json"),
        Err(e) => {
            tracing::warn!(dir = %jwks.dir.display(), error = %e, "cannot read jwks.json");
            text(StatusCode::NOT_FOUND, "jwks.json not found\n")
        }
    }
}

async fn serve_discovery(shared: &Shared) -> Resp {
    let Some(jwks) = &shared.jwks else {
        return text(StatusCode::NOT_FOUND, "no jwks configured\n");
    };
    if let Ok(b) = tokio::fs::read(jwks.dir.join("openid-configuration.json")).await {
        return with_type(Bytes::from(b), "application/json");
    }
    let issuer = jwks
        .issuer
        .as_deref()
        .unwrap_or(&shared.base_url)
        .trim_end_matches('/');
    let doc = serde_json::json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "PS256", "EdDSA"],
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
    });
    json(StatusCode::OK, &doc)
}

fn with_type(body: Bytes, content_type: &'static str) -> Resp {
    let mut r = Response::new(MockBody::from(body));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// The JSON document `/echo` answers with: the request as received.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct EchoDoc {
    pub method: String,
    pub version: String,
    pub path: String,
    pub query: Option<String>,
    /// Header names lower-cased; repeated headers joined with `, `.
    pub headers: BTreeMap<String, String>,
    pub body_length: u64,
}

impl EchoDoc {
    fn new(parts: &http::request::Parts, body_length: u64) -> Self {
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in &parts.headers {
            let v = String::from_utf8_lossy(value.as_bytes());
            headers
                .entry(name.as_str().to_owned())
                .and_modify(|s| {
                    s.push_str(", ");
                    s.push_str(&v);
                })
                .or_insert_with(|| v.into_owned());
        }
        Self {
            method: parts.method.to_string(),
            version: format!("{:?}", parts.version),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            headers,
            body_length,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_timing_has_microsecond_precision() {
        assert_eq!(
            server_timing(Duration::from_micros(1234)),
            "upstream;dur=1.234"
        );
        assert_eq!(
            server_timing(Duration::from_micros(5)),
            "upstream;dur=0.005"
        );
        assert_eq!(
            server_timing(Duration::from_millis(10)),
            "upstream;dur=10.000"
        );
    }
}
