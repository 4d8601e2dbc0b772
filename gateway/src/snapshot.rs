//! The runtime configuration: compiled routes with their plugins and
//! upstreams, credentials and consumers ([`Snapshot`]), and [`Live`], the
//! one owner of the current snapshot, which the proxy reads without locks
//! and the Admin API replaces.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::auth::acl::AclConf;
use crate::auth::jwt::{Credentials, JwtConf};
use crate::auth::oidc::Oidc;
use crate::consumer::Consumers;
use crate::metrics::{Metrics, RouteStats};
use crate::upstream::Client;

/// Where a service forwards to, with its own pooled keep-alive client.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub name: String,
    pub scheme: String,
    /// `host:port` for the connection.
    pub authority: String,
    /// The Host header when `preserve_host` is off (None: not a valid header value).
    pub host_header: Option<http::HeaderValue>,
    /// Path prefix, without a trailing slash (empty for `/`).
    pub path: String,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub client: Client,
}

/// One route, compiled.
#[derive(Debug)]
pub struct Route {
    pub name: String,
    pub paths: Vec<String>,
    pub methods: Vec<http::Method>,
    pub hosts: Vec<String>,
    pub strip_path: bool,
    pub preserve_host: bool,
    pub upstream: Arc<Upstream>,
    pub jwt: Option<Arc<JwtConf>>,
    pub acl: Option<Arc<AclConf>>,
    /// Our AWS-style OIDC/JWKS authorizer.
    pub oidc: Option<Arc<Oidc>>,
    /// Served at `/metrics`.
    pub stats: RouteStats,
}

/// Everything a request needs, swapped atomically on change.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Shared between snapshots: the Admin API changes consumers only.
    pub routes: Arc<Vec<Route>>,
    /// By credential `key`.
    pub credentials: Credentials,
    /// By id and by username.
    pub consumers: Consumers,
}

impl Snapshot {
    /// Picks the route: matching host, then the longest matching path prefix,
    /// then routes that constrain methods (Kong's traditional ordering, simplified).
    pub fn find_route(
        &self,
        method: &http::Method,
        host: Option<&str>,
        path: &str,
    ) -> Option<(&Route, usize)> {
        let host = host.map(|h| {
            h.rsplit_once(':').map_or(h, |(name, port)| {
                if port.bytes().all(|b| b.is_ascii_digit()) {
                    name
                } else {
                    h
                }
            })
        });
        let mut best: Option<(&Route, usize, (bool, usize, bool))> = None;
        for r in self.routes.iter() {
            if !r.methods.is_empty() && !r.methods.contains(method) {
                continue;
            }
            let host_match = if r.hosts.is_empty() {
                false
            } else if host.is_some_and(|h| r.hosts.iter().any(|x| x.eq_ignore_ascii_case(h))) {
                true
            } else {
                continue;
            };
            let prefix = if r.paths.is_empty() {
                Some(0)
            } else {
                r.paths
                    .iter()
                    .filter(|p| path.starts_with(p.as_str()))
                    .map(|p| p.len())
                    .max()
            };
            let Some(prefix) = prefix else { continue };
            let rank = (host_match, prefix, !r.methods.is_empty());
            if best.as_ref().is_none_or(|b| rank > b.2) {
                best = Some((r, prefix, rank));
            }
        }
        best.map(|(r, prefix, _)| (r, prefix))
    }
}

/// The snapshot in force and the gateway's counters: what the request path
/// reads, shared by the proxy and the Admin API.
#[derive(Debug)]
pub struct Live {
    snapshot: ArcSwap<Snapshot>,
    pub metrics: Metrics,
    /// The proxy's own port, for `X-Forwarded-Port` (as the header value, built once).
    pub port: http::HeaderValue,
    /// Whether the proxy terminates TLS, for `X-Forwarded-Proto`.
    pub https: bool,
    /// A client's request body that sends nothing for this long: 408.
    pub body_timeout: Duration,
    /// The longest header line; four times this for all of them: 431.
    pub max_header_line: usize,
}

impl Live {
    pub fn new(snapshot: Snapshot, port: u16, https: bool) -> Live {
        Live {
            snapshot: ArcSwap::from_pointee(snapshot),
            metrics: Metrics::default(),
            port: http::HeaderValue::from(port),
            https,
            body_timeout: Duration::from_secs(60),
            max_header_line: 8 << 10,
        }
    }

    /// The snapshot in force (cheap: an atomic load and a reference count).
    pub fn load(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// The `/metrics` text: the gateway's counters and each route's.
    pub fn metrics_text(&self) -> String {
        let snapshot = self.load();
        let routes = snapshot.routes.iter().map(|r| (r.name.as_str(), &r.stats));
        self.metrics.render(routes)
    }

    /// Replaces the snapshot; the next request sees the new one.
    pub fn replace(&self, snapshot: Snapshot) {
        self.snapshot.store(Arc::new(snapshot));
    }
}
