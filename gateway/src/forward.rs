//! The proxy step of an admitted request: the path rewritten under the
//! service's (`strip_path`), `Host` (`preserve_host`), hop-by-hop headers
//! removed, `X-Forwarded-*` set, the caller's `X-Consumer-*`,
//! `X-Credential-Identifier`, `X-Anonymous-Consumer` and `X-Consumer-Groups`
//! (spoofed copies removed first), then sent through the service's pooled
//! client ([`crate::proxy`]).

#![allow(
    clippy::disallowed_methods,
    reason = "the upstream latency metric times the forward"
)]

use std::net::{IpAddr, SocketAddr};

use http::header::{self, HeaderName, HeaderValue};
use http::{Request, Response};
use hyper::body::Incoming;

use crate::plugins::Admitted;
use crate::reject::Rejection;
use crate::snapshot::{Live, Route};
use crate::upstream::{self, GwBody};

const X_CONSUMER_ID: HeaderName = HeaderName::from_static("x-consumer-id");
const X_CONSUMER_CUSTOM_ID: HeaderName = HeaderName::from_static("x-consumer-custom-id");
const X_CONSUMER_USERNAME: HeaderName = HeaderName::from_static("x-consumer-username");
const X_CREDENTIAL_IDENTIFIER: HeaderName = HeaderName::from_static("x-credential-identifier");
const X_ANONYMOUS_CONSUMER: HeaderName = HeaderName::from_static("x-anonymous-consumer");
const X_CONSUMER_GROUPS: HeaderName = HeaderName::from_static("x-consumer-groups");
/// Client headers the upstream never sees from the client on a route with
/// `jwt` or `acl`: the gateway's own say who the caller is (both cores).
pub(crate) const CALLER: [HeaderName; 6] = [
    X_CONSUMER_ID,
    X_CONSUMER_CUSTOM_ID,
    X_CONSUMER_USERNAME,
    X_CREDENTIAL_IDENTIFIER,
    X_ANONYMOUS_CONSUMER,
    X_CONSUMER_GROUPS,
];
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");

/// The client at the other end of a connection, with its address as an
/// `X-Forwarded-For` value built once per connection, not per request.
#[derive(Debug, Clone)]
pub struct Peer {
    pub ip: IpAddr,
    pub ip_header: HeaderValue,
}

impl Peer {
    pub fn new(addr: SocketAddr) -> Peer {
        let ip = addr.ip();
        Peer {
            ip,
            ip_header: HeaderValue::from_str(&ip.to_string())
                .unwrap_or(HeaderValue::from_static("unknown")),
        }
    }
}

/// The upstream request target: the matched prefix stripped (`strip_path`),
/// joined under the service's path, with the query.
fn target(route: &Route, prefix: usize, uri: &http::Uri) -> String {
    let mut target = Vec::with_capacity(route.upstream.path.len() + uri.path().len() + 16);
    push_target(&mut target, route, prefix, uri.path(), uri.query());
    // Built from the path and query's own `str`s and the service's path.
    String::from_utf8(target).unwrap_or_default()
}

/// [`target`] appended to `out` (the lean path writes it straight into the head).
pub fn push_target(
    out: &mut Vec<u8>,
    route: &Route,
    prefix: usize,
    path: &str,
    query: Option<&str>,
) {
    let start = out.len();
    let rest = if route.strip_path {
        path.get(prefix.min(path.len())..).unwrap_or("")
    } else {
        path
    };
    out.extend_from_slice(route.upstream.path.as_bytes());
    if !rest.is_empty() && !rest.starts_with('/') {
        out.push(b'/');
    }
    out.extend_from_slice(rest.as_bytes());
    if out.len() == start {
        out.push(b'/');
    }
    if let Some(q) = query {
        out.push(b'?');
        out.extend_from_slice(q.as_bytes());
    }
}

/// `Host` and `X-Forwarded-*`.
fn forwarded_headers(h: &mut http::HeaderMap, route: &Route, live: &Live, peer: &Peer) {
    let original_host = h.get(header::HOST).cloned();
    if (!route.preserve_host || !h.contains_key(header::HOST))
        && let Some(v) = &route.upstream.host_header
    {
        h.insert(header::HOST, v.clone());
    }
    match h.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(prev) => {
            if let Ok(v) = HeaderValue::from_str(&format!("{prev}, {}", peer.ip)) {
                h.insert(X_FORWARDED_FOR, v);
            }
        }
        None => {
            h.insert(X_FORWARDED_FOR, peer.ip_header.clone());
        }
    }
    h.insert(
        X_FORWARDED_PROTO,
        HeaderValue::from_static(if live.https { "https" } else { "http" }),
    );
    if let Some(host) = original_host {
        h.insert(X_FORWARDED_HOST, host);
    }
    h.insert(X_FORWARDED_PORT, live.port.clone());
}

/// Who the caller is, for the upstream; never what the client claimed.
fn caller_headers(h: &mut http::HeaderMap, route: &Route, admitted: Admitted) {
    if route.jwt.is_some() || route.acl.is_some() {
        for n in &CALLER {
            h.remove(n);
        }
    }
    if let Some(c) = &admitted.caller {
        for (n, v) in &c.consumer().headers {
            h.insert(n.clone(), v.clone());
        }
        match c.credential() {
            Some(cred) => {
                if let Some(v) = &cred.key_header {
                    h.insert(X_CREDENTIAL_IDENTIFIER, v.clone());
                }
            }
            None => {
                h.insert(X_ANONYMOUS_CONSUMER, HeaderValue::from_static("true"));
            }
        }
    }
    if let Some(g) = admitted.groups
        && let Ok(v) = HeaderValue::from_str(&g)
    {
        h.insert(X_CONSUMER_GROUPS, v);
    }
    for (n, v) in admitted.identity.into_iter().flat_map(|i| i.headers) {
        h.insert(n, v);
    }
}

/// Rewrites an admitted request for `route`'s upstream and forwards it.
pub async fn forward(
    req: Request<Incoming>,
    route: &Route,
    prefix: usize,
    admitted: Admitted,
    live: &Live,
    peer: &Peer,
) -> Response<GwBody> {
    let (mut parts, body) = req.into_parts();
    // Origin-form: the pooled HTTP/1.1 connection already points at the
    // upstream. An origin-form target that nothing rewrites is kept as it is.
    let unchanged = route.upstream.path.is_empty()
        && (!route.strip_path || prefix == 0)
        && parts.uri.scheme().is_none()
        && parts.uri.authority().is_none();
    if !unchanged {
        parts.uri = match http::Uri::try_from(target(route, prefix, &parts.uri)) {
            Ok(u) => u,
            Err(_) => return upstream::rejection(&Rejection::BadRequest),
        };
    }
    parts.version = http::Version::HTTP_11;
    let h = &mut parts.headers;
    upstream::strip_hop_by_hop(h);
    forwarded_headers(h, route, live, peer);
    caller_headers(h, route, admitted);
    let sent = std::time::Instant::now();
    let upstream = &route.upstream;
    let (resp, outcome) = upstream::forward(
        &upstream.client,
        Request::from_parts(parts, body),
        (upstream.read_timeout, live.body_timeout),
    )
    .await;
    if outcome.resent {
        live.metrics.upstream_resend();
    }
    match outcome.failure {
        Some(f) => live.metrics.forward_failure(f),
        None => route.stats.upstream(sent.elapsed()),
    }
    resp
}
