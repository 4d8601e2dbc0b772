//! The proxy listener: route matching, the jwt and acl plugins, header
//! rewriting, forwarding, and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::auth::Reject;
use crate::config::{Consumer, Route, Snapshot};
use crate::proxy::{self, GwBody};

const X_CONSUMER_ID: HeaderName = HeaderName::from_static("x-consumer-id");
const X_CONSUMER_CUSTOM_ID: HeaderName = HeaderName::from_static("x-consumer-custom-id");
const X_CONSUMER_USERNAME: HeaderName = HeaderName::from_static("x-consumer-username");
const X_CREDENTIAL_IDENTIFIER: HeaderName = HeaderName::from_static("x-credential-identifier");
const X_ANONYMOUS_CONSUMER: HeaderName = HeaderName::from_static("x-anonymous-consumer");
const X_CONSUMER_GROUPS: HeaderName = HeaderName::from_static("x-consumer-groups");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("TLS: {0}")]
    Tls(String),
}

fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<tokio_rustls::TlsAcceptor, ServeError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| ServeError::Tls(format!("{}: {e}", cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| ServeError::Tls(format!("{}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| ServeError::Tls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

/// Everything [`start`] needs.
#[derive(Debug, Clone)]
pub struct Options {
    pub config: crate::config::Declarative,
    pub listen: SocketAddr,
    /// The Admin API's address (keep it on loopback); None: no Admin API.
    pub admin_listen: Option<SocketAddr>,
    /// Where Admin API changes persist; loaded instead of the config's consumers when it exists.
    pub state_file: Option<std::path::PathBuf>,
    /// Terminate TLS on the proxy port: PEM certificate chain and key (ALPN h2, http/1.1).
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

/// Starts the proxy and, if asked, the Admin API.
pub async fn start(opts: Options) -> Result<Handle, ServeError> {
    let consumers = match &opts.state_file {
        Some(p) if p.exists() => crate::config::Declarative::load(p)?.consumers,
        _ => opts.config.consumers.clone(),
    };
    let consumers = crate::admin::Admin::normalize(consumers);
    let (credentials, by_key) = crate::config::compile_consumers(&consumers)?;
    let snapshot = opts.config.compile_with(credentials, by_key)?;
    let routes = snapshot.routes.clone();
    let tls = match &opts.tls {
        Some((cert, key)) => Some(tls_acceptor(cert, key)?),
        None => None,
    };
    let mut handle = serve(snapshot, opts.listen, tls).await?;
    if let Some(addr) = opts.admin_listen {
        let admin = Arc::new(crate::admin::Admin::new(
            consumers,
            routes,
            handle.state.clone(),
            opts.state_file.clone(),
        ));
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        handle.admin_addr = Some(
            listener
                .local_addr()
                .map_err(|source| ServeError::Bind { addr, source })?,
        );
        handle.admin_task = Some(tokio::spawn(admin_loop(listener, admin)));
    }
    Ok(handle)
}

async fn admin_loop(listener: TcpListener, admin: Arc<crate::admin::Admin>) {
    let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let (admin, builder) = (admin.clone(), builder.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let admin = admin.clone();
                async move { Ok::<_, std::convert::Infallible>(admin.handle(req).await) }
            });
            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

/// What the request path reads: the current snapshot, swapped atomically.
#[derive(Debug)]
pub struct State {
    pub snapshot: ArcSwap<Snapshot>,
    pub metrics: crate::metrics::Metrics,
    /// The proxy's own port, for `X-Forwarded-Port`.
    port: u16,
    /// Whether the proxy terminates TLS, for `X-Forwarded-Proto`.
    https: bool,
}

/// A running gateway; dropping it stops it abruptly, [`Handle::shutdown`] drains.
#[derive(Debug)]
pub struct Handle {
    proxy_addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    state: Arc<State>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    admin_task: Option<JoinHandle<()>>,
}

impl Handle {
    pub fn proxy_addr(&self) -> SocketAddr {
        self.proxy_addr
    }

    /// The Admin API's address, when started with one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// `http://ADDR` (or `https://`) of the proxy.
    pub fn proxy_url(&self) -> String {
        let scheme = if self.state.https { "https" } else { "http" };
        format!("{scheme}://{}", self.proxy_addr)
    }

    /// Serves one already-open connection from `peer` on any byte stream (a
    /// `tokio::io::duplex` half: requests through the gateway without network).
    pub fn serve_connection<I>(&self, io: I, peer: SocketAddr) -> JoinHandle<()>
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let svc = service(self.state.clone(), peer);
        tokio::spawn(async move {
            if let Err(e) = conn_builder().serve_connection(TokioIo::new(io), svc).await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        })
    }

    /// Replaces the configuration; the next request sees the new one.
    pub fn replace(&self, snapshot: Snapshot) {
        self.state.snapshot.store(Arc::new(snapshot));
    }

    /// Stops accepting, lets in-flight requests finish (up to 10 s), then returns.
    pub async fn shutdown(mut self) {
        if let Some(t) = self.admin_task.take() {
            t.abort();
        }
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        for t in [self.task.take(), self.admin_task.take()]
            .into_iter()
            .flatten()
        {
            t.abort();
        }
    }
}

/// Binds `listen` and serves `snapshot` (plain HTTP) on the current tokio runtime.
pub async fn spawn(snapshot: Snapshot, listen: SocketAddr) -> Result<Handle, ServeError> {
    serve(snapshot, listen, None).await
}

async fn serve(
    snapshot: Snapshot,
    listen: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> Result<Handle, ServeError> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: listen,
            source,
        })?;
    let proxy_addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: listen,
        source,
    })?;
    let state = Arc::new(State {
        snapshot: ArcSwap::from_pointee(snapshot),
        metrics: crate::metrics::Metrics::default(),
        port: proxy_addr.port(),
        https: tls.is_some(),
    });
    let (stop, stop_rx) = oneshot::channel();
    let task = tokio::spawn(accept_loop(listener, state.clone(), stop_rx, tls));
    Ok(Handle {
        proxy_addr,
        admin_addr: None,
        state,
        stop: Some(stop),
        task: Some(task),
        admin_task: None,
    })
}

/// HTTP/1.1 with keep-alive and h2c (prior knowledge) on one port.
fn conn_builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().keep_alive(true);
    builder.http2().max_concurrent_streams(1024);
    builder
}

/// The gateway as a hyper service for one connection from `peer`.
fn service(
    state: Arc<State>,
    peer: SocketAddr,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<GwBody>,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<Response<GwBody>, std::convert::Infallible>> + Send,
> + Clone {
    service_fn(move |req| {
        let state = state.clone();
        async move { Ok::<_, std::convert::Infallible>(handle(req, &state, peer).await) }
    })
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<State>,
    mut stop: oneshot::Receiver<()>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let builder = Arc::new(conn_builder());
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let (state, builder, tls) = (state.clone(), builder.clone(), tls.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let svc = service(state, peer);
            let result = match tls {
                None => {
                    watcher
                        .watch(builder.serve_connection(TokioIo::new(stream), svc))
                        .await
                }
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(s) => {
                        watcher
                            .watch(builder.serve_connection(TokioIo::new(s), svc))
                            .await
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "TLS handshake failed");
                        return;
                    }
                },
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(10)) => {}
    }
}

/// Picks the route: matching host, then the longest matching path prefix,
/// then routes that constrain methods (Kong's traditional ordering, simplified).
pub fn find_route<'a>(
    snap: &'a Snapshot,
    method: &Method,
    host: Option<&str>,
    path: &str,
) -> Option<(&'a Route, usize)> {
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
    for r in snap.routes.iter() {
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

/// Who the plugins authenticated.
struct Caller {
    consumer: Arc<Consumer>,
    /// The credential that authenticated it; None for the anonymous consumer.
    credential: Option<Arc<crate::auth::jwt::Credential>>,
}

async fn handle(req: Request<Incoming>, state: &State, peer: SocketAddr) -> Response<GwBody> {
    let snap = state.snapshot.load_full();
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or(req.uri().host());
    let Some((route, prefix)) = find_route(&snap, req.method(), host, req.uri().path()) else {
        state.metrics.unmatched.status(404);
        return proxy::rejection(Reject::message(404, "no Route matched with those values"));
    };
    let resp = through(req, state, &snap, route, prefix, peer).await;
    route.stats.status(resp.status().as_u16());
    resp
}

/// Counts a plugin's rejection by reason, then answers with it.
fn refuse(state: &State, reject: Reject) -> Response<GwBody> {
    state.metrics.auth_failure(reject.reason);
    proxy::rejection(reject)
}

/// The plugins and the forwarding of a matched request.
async fn through(
    req: Request<Incoming>,
    state: &State,
    snap: &Snapshot,
    route: &Route,
    prefix: usize,
    peer: SocketAddr,
) -> Response<GwBody> {
    let mut caller: Option<Caller> = None;
    if let Some(jwt) = &route.jwt {
        let skip = !jwt.run_on_preflight && req.method() == Method::OPTIONS;
        if !skip {
            let q = req.uri().query();
            match crate::auth::jwt::authenticate(jwt, snap, q, req.headers(), crate::unix_now) {
                Ok(a) => {
                    caller = Some(Caller {
                        consumer: a.consumer,
                        credential: Some(a.credential),
                    })
                }
                Err(reject) => match &jwt.anonymous {
                    None => return refuse(state, reject),
                    Some(anon) => match snap.consumers.get(anon) {
                        Some(c) => {
                            caller = Some(Caller {
                                consumer: c.clone(),
                                credential: None,
                            })
                        }
                        // Kong 3.9.3: authenticate(nil, nil) raises, so the generic 500.
                        None => {
                            return proxy::rejection(Reject::message(
                                500,
                                "An unexpected error occurred",
                            ));
                        }
                    },
                },
            }
        }
    }
    let mut identity = None;
    if let Some(oidc) = &route.oidc {
        match oidc.authorize(req.headers(), crate::unix_now()).await {
            Ok(id) => identity = Some(id),
            Err(reject) => return refuse(state, reject),
        }
    }
    let mut groups = None;
    if let Some(acl) = &route.acl {
        let credential = caller.as_ref().is_some_and(|c| c.credential.is_some());
        match acl.check(caller.as_ref().map(|c| &*c.consumer), credential) {
            Ok(g) => groups = g,
            Err(reject) => return refuse(state, reject),
        }
    }
    let upstream = route.upstream.clone();
    let (mut parts, body) = req.into_parts();
    // Path: strip the matched prefix (strip_path), then join under the service's path.
    let path = parts.uri.path();
    let rest = if route.strip_path {
        &path[prefix.min(path.len())..]
    } else {
        path
    };
    let mut target = String::with_capacity(upstream.path.len() + rest.len() + 16);
    target.push_str(&upstream.path);
    if !rest.is_empty() && !rest.starts_with('/') {
        target.push('/');
    }
    target.push_str(rest);
    if target.is_empty() {
        target.push('/');
    }
    if let Some(q) = parts.uri.query() {
        target.push('?');
        target.push_str(q);
    }
    let original_host = parts.headers.get(header::HOST).cloned();
    // Origin-form: the pooled HTTP/1.1 connection already points at the upstream.
    parts.uri = match http::Uri::try_from(target) {
        Ok(u) => u,
        Err(_) => return proxy::rejection(Reject::message(400, "Bad request")),
    };
    parts.version = http::Version::HTTP_11;
    let h = &mut parts.headers;
    proxy::strip_hop_by_hop(h);
    if (!route.preserve_host || !h.contains_key(header::HOST))
        && let Ok(v) = HeaderValue::from_str(&upstream.host_header)
    {
        h.insert(header::HOST, v);
    }
    let xff = match h.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {}", peer.ip()),
        None => peer.ip().to_string(),
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        h.insert(X_FORWARDED_FOR, v);
    }
    h.insert(
        X_FORWARDED_PROTO,
        HeaderValue::from_static(if state.https { "https" } else { "http" }),
    );
    if let Some(host) = original_host {
        h.insert(X_FORWARDED_HOST, host);
    }
    h.insert(X_FORWARDED_PORT, HeaderValue::from(state.port));
    if route.jwt.is_some() || route.acl.is_some() {
        for n in [
            &X_CONSUMER_ID,
            &X_CONSUMER_CUSTOM_ID,
            &X_CONSUMER_USERNAME,
            &X_CREDENTIAL_IDENTIFIER,
            &X_ANONYMOUS_CONSUMER,
            &X_CONSUMER_GROUPS,
        ] {
            h.remove(n);
        }
    }
    if let Some(c) = &caller {
        for (n, v) in &c.consumer.headers {
            h.insert(n.clone(), v.clone());
        }
        match c.credential.as_ref() {
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
    if let Some(g) = groups
        && let Ok(v) = HeaderValue::from_str(&g)
    {
        h.insert(X_CONSUMER_GROUPS, v);
    }
    for (n, v) in identity.into_iter().flat_map(|i| i.headers) {
        parts.headers.insert(n, v);
    }
    let sent = std::time::Instant::now();
    let resp = proxy::forward(
        &upstream.client,
        Request::from_parts(parts, body),
        upstream.read_timeout,
    )
    .await;
    route.stats.upstream(sent.elapsed());
    resp
}
