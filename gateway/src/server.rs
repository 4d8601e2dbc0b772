//! The proxy listener: route matching, the jwt and acl plugins, header
//! rewriting, forwarding, and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::header;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::reject::Rejection;
use crate::snapshot::{Live, Snapshot};
use crate::upstream::{self, GwBody};

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
    #[error("the Admin state: {0}")]
    State(#[from] crate::admin::db::StateError),
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
    /// Where Admin API changes persist (an SQLite database, created with the
    /// config's consumers; a JSON state from an earlier version is
    /// migrated); loaded instead of the config's consumers when it exists.
    pub state_file: Option<std::path::PathBuf>,
    /// Terminate TLS on the proxy port: PEM certificate chain and key (ALPN h2, http/1.1).
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// Header-read and keep-alive timeouts, the connection cap ([`limits`]).
    pub limits: conn_guard::Limits,
    /// The Admin API acknowledges a change at once and the proxy sees it this
    /// much later (zero: the very next request). Simulates a gateway whose
    /// nodes learn of changes late, as Kong's `db_update_frequency` (5 s by
    /// default) does, so that a revocation's stale window can be measured
    /// against a known one.
    pub admin_apply_delay: Duration,
    /// What serves plain-HTTP HTTP/1.1 connections ([`Core`]).
    pub core: Core,
}

/// What serves plain-HTTP connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Core {
    /// The lean HTTP/1 path ([`crate::lean`]), handing hyper whatever it
    /// does not take (bodies, upgrades, HTTP/2, TLS…).
    #[default]
    Lean,
    /// hyper for everything.
    Hyper,
}

/// The gateway's connection limits by default: Kong's 60 s
/// `client_header_timeout` and `keepalive_timeout`, Kong's JSON error
/// template, and as many connections as the open-file limit holds at two
/// descriptors each (the client's and the upstream's).
pub fn limits() -> conn_guard::Limits {
    conn_guard::Limits {
        body: crate::reject::kong_template,
        ..conn_guard::Limits::defaults(2)
    }
}

/// Starts the proxy and, if asked, the Admin API.
pub async fn start(opts: Options) -> Result<Handle, ServeError> {
    use crate::admin::{Admin, db::Db};
    // The state is opened (and seeded, or migrated) only with an Admin API:
    // without one nothing can change.
    let (db, rows) = match (&opts.state_file, opts.admin_listen) {
        (Some(p), Some(_)) => {
            let (db, rows) = Db::open(p, || {
                crate::admin::store::normalize(opts.config.consumers.clone())
            })?;
            (Some(db), rows)
        }
        _ => {
            let rows = crate::admin::store::normalize(opts.config.consumers.clone());
            (None, (0..).zip(rows).collect())
        }
    };
    let (credentials, by_key) = crate::config::compile_consumers(rows.iter().map(|(_, c)| c))?;
    let snapshot = opts
        .config
        .compile_with(credentials.clone(), by_key.clone())?;
    let routes = snapshot.routes.clone();
    let tls = match &opts.tls {
        Some((cert, key)) => Some(tls_acceptor(cert, key)?),
        None => None,
    };
    let mut handle = serve(snapshot, opts.listen, (tls, opts.core), opts.limits).await?;
    if let Some(addr) = opts.admin_listen {
        let admin = Arc::new(Admin::new(
            rows,
            (credentials, by_key),
            routes,
            handle.live.clone(),
            db,
            (opts.admin_apply_delay, opts.limits.body_timeout),
        ));
        let listener = TcpListener::bind(addr)
            .await
            .and_then(|l| l.into_std())
            .map_err(|source| ServeError::Bind { addr, source })?;
        handle.admin_addr = Some(
            listener
                .local_addr()
                .map_err(|source| ServeError::Bind { addr, source })?,
        );
        handle.admin = Some(AdminThread::start(listener, admin, opts.limits)?);
    }
    Ok(handle)
}

/// The Admin API on a thread and runtime of its own: its work (parsing a
/// large body, compiling the consumers, writing the state file) never
/// delays a proxied request's task.
#[derive(Debug)]
struct AdminThread {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AdminThread {
    fn start(
        listener: std::net::TcpListener,
        admin: Arc<crate::admin::Admin>,
        limits: conn_guard::Limits,
    ) -> Result<AdminThread, ServeError> {
        let addr = listener
            .local_addr()
            .unwrap_or(SocketAddr::from(([0; 4], 0)));
        let bind = |source| ServeError::Bind { addr, source };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(bind)?;
        let (stop, stop_rx) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("admin-api".into())
            .spawn(move || {
                rt.block_on(async move {
                    let Ok(listener) = TcpListener::from_std(listener) else {
                        tracing::error!("the Admin API cannot use its listener");
                        return;
                    };
                    tokio::select! {
                        () = admin_loop(listener, admin, limits) => {}
                        _ = stop_rx => {}
                    }
                });
            })
            .map_err(bind)?;
        Ok(AdminThread {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn admin_loop(
    listener: TcpListener,
    admin: Arc<crate::admin::Admin>,
    limits: conn_guard::Limits,
) {
    let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
    let gate = conn_guard::Gate::new(limits.max_connections, "admin");
    loop {
        let place = gate.admit().await;
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let (admin, builder) = (admin.clone(), builder.clone());
        tokio::spawn(async move {
            let (io, conn) = conn_guard::guard(stream, limits);
            let svc = service_fn(move |req| {
                let (admin, flight) = (admin.clone(), conn.request());
                async move {
                    let r = admin.handle(req).await;
                    drop(flight);
                    Ok::<_, std::convert::Infallible>(r)
                }
            });
            let _ = builder.serve_connection(TokioIo::new(io), svc).await;
            drop(place);
        });
    }
}

/// A running gateway; dropping it stops it abruptly, [`Handle::shutdown`] drains.
#[derive(Debug)]
pub struct Handle {
    proxy_addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    live: Arc<Live>,
    serving: conn_guard::Serving,
    admin: Option<AdminThread>,
}

impl Handle {
    pub fn proxy_addr(&self) -> SocketAddr {
        self.proxy_addr
    }

    /// The `/metrics` text (as the Admin API serves it).
    pub fn metrics_text(&self) -> String {
        self.live.metrics_text()
    }

    /// The Admin API's address, when started with one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// `http://ADDR` (or `https://`) of the proxy.
    pub fn proxy_url(&self) -> String {
        let scheme = if self.live.https { "https" } else { "http" };
        format!("{scheme}://{}", self.proxy_addr)
    }

    /// Serves one already-open connection from `peer` on any byte stream (a
    /// `tokio::io::duplex` half: requests through the gateway without network).
    pub fn serve_connection<I>(&self, io: I, peer: SocketAddr) -> JoinHandle<()>
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let svc = service(self.live.clone(), peer, None);
        tokio::spawn(async move {
            if let Err(e) = conn_builder().serve_connection(TokioIo::new(io), svc).await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        })
    }

    /// Replaces the configuration; the next request sees the new one.
    pub fn replace(&self, snapshot: Snapshot) {
        self.live.replace(snapshot);
    }

    /// Stops accepting, lets in-flight requests finish (up to 10 s), then returns.
    pub async fn shutdown(mut self) {
        if let Some(mut a) = self.admin.take() {
            a.stop();
        }
        self.serving.shutdown().await;
    }
}

impl Drop for Handle {
    // The proxy's task is aborted by `serving`'s own drop.
    fn drop(&mut self) {
        if let Some(mut a) = self.admin.take() {
            a.stop();
        }
    }
}

/// Binds `listen` and serves `snapshot` (plain HTTP) on the current tokio
/// runtime, with the default [`limits`].
pub async fn spawn(snapshot: Snapshot, listen: SocketAddr) -> Result<Handle, ServeError> {
    serve(snapshot, listen, (None, Core::default()), limits()).await
}

/// [`spawn`] with other connection limits.
pub async fn spawn_with(
    snapshot: Snapshot,
    listen: SocketAddr,
    limits: conn_guard::Limits,
) -> Result<Handle, ServeError> {
    serve(snapshot, listen, (None, Core::default()), limits).await
}

/// [`spawn_with`] on the given [`Core`] (hyper's, to compare the two).
pub async fn spawn_core(
    snapshot: Snapshot,
    listen: SocketAddr,
    limits: conn_guard::Limits,
    core: Core,
) -> Result<Handle, ServeError> {
    serve(snapshot, listen, (None, core), limits).await
}

async fn serve(
    snapshot: Snapshot,
    listen: SocketAddr,
    (tls, core): (Option<tokio_rustls::TlsAcceptor>, Core),
    limits: conn_guard::Limits,
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
    let mut live = Live::new(snapshot, proxy_addr.port(), tls.is_some());
    live.body_timeout = limits.body_timeout;
    live.max_header_line = limits.max_header_line;
    let live = Arc::new(live);
    let serving = conn_guard::Serving::spawn({
        let live = live.clone();
        |stop| accept_loop(listener, live, stop, (tls, core), limits)
    });
    Ok(Handle {
        proxy_addr,
        admin_addr: None,
        live,
        serving,
        admin: None,
    })
}

/// HTTP/1.1 with keep-alive and h2c (prior knowledge) on one port.
fn conn_builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().keep_alive(true);
    builder.http2().max_concurrent_streams(1024);
    builder
}

/// The gateway as a hyper service for one connection from `peer` (each
/// request marked in service on the connection's guard, if it has one).
fn service(
    live: Arc<Live>,
    peer: SocketAddr,
    conn: Option<conn_guard::Conn>,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<GwBody>,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<Response<GwBody>, std::convert::Infallible>> + Send,
> + Clone {
    let peer = crate::forward::Peer::new(peer);
    service_fn(move |req| {
        let (live, peer) = (live.clone(), peer.clone());
        let flight = conn.as_ref().map(conn_guard::Conn::request);
        async move {
            let r = handle(req, &live, &peer).await;
            drop(flight);
            Ok::<_, std::convert::Infallible>(r)
        }
    })
}

async fn accept_loop(
    listener: TcpListener,
    live: Arc<Live>,
    mut stop: oneshot::Receiver<()>,
    (tls, core): (Option<tokio_rustls::TlsAcceptor>, Core),
    limits: conn_guard::Limits,
) {
    let builder = Arc::new(conn_builder());
    let graceful = GracefulShutdown::new();
    // Lean connections hold a receiver: told to stop, the idle ones close,
    // and the drain waits until every receiver is gone.
    let (lean_stop, lean_rx) = tokio::sync::watch::channel(false);
    let gate = conn_guard::Gate::new(limits.max_connections, "proxy");
    loop {
        let place = tokio::select! {
            p = gate.admit() => p,
            _ = &mut stop => break,
        };
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
        let (live, builder, tls) = (live.clone(), builder.clone(), tls.clone());
        let watcher = graceful.watcher();
        let lean = (tls.is_none() && core == Core::Lean).then(|| lean_rx.clone());
        tokio::spawn(async move {
            let ctx = (live, peer, &*builder, watcher, limits);
            let result = match (tls, lean) {
                (None, Some(stop)) => serve_lean(stream, ctx, stop).await,
                (None, None) => serve_guarded(stream, ctx).await,
                (Some(acceptor), _) => {
                    match conn_guard::handshake(&limits, acceptor.accept(stream)).await {
                        Some(s) => serve_guarded(s, ctx).await,
                        None => return,
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(place);
        });
    }
    drop((listener, lean_rx));
    let _ = lean_stop.send(true);
    tokio::select! {
        _ = async { tokio::join!(graceful.shutdown(), lean_stop.closed()) } => {}
        _ = tokio::time::sleep(Duration::from_secs(10)) => {}
    }
}

/// What serving an accepted connection needs: the live config, the peer,
/// hyper's builder, the drain's watcher and the limits.
type ConnCtx<'a> = (
    Arc<Live>,
    SocketAddr,
    &'a auto::Builder<TokioExecutor>,
    hyper_util::server::graceful::Watcher,
    conn_guard::Limits,
);

/// How a connection ended.
type Served = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Serves one plain-HTTP connection on the lean path, and with hyper from
/// the first request the lean path leaves to it.
async fn serve_lean(
    stream: tokio::net::TcpStream,
    (live, peer, builder, watcher, limits): ConnCtx<'_>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Served {
    let (io, conn) = conn_guard::guard(stream, limits);
    let mut ctx = crate::lean::Ctx {
        live: live.clone(),
        peer: crate::forward::Peer::new(peer),
        conn: conn.clone(),
        stop,
    };
    let end = crate::lean::serve(io, &mut ctx).await?;
    drop(ctx);
    match end {
        crate::lean::End::Done => Ok(()),
        crate::lean::End::Hyper(io) => {
            let svc = service(live, peer, Some(conn));
            watcher
                .watch(builder.serve_connection(TokioIo::new(io), svc))
                .await
        }
    }
}

/// Serves one accepted connection (TCP, or TLS after its handshake) with
/// its guard: header and idle timeouts, each request marked in service.
async fn serve_guarded<I>(io: I, (live, peer, builder, watcher, limits): ConnCtx<'_>) -> Served
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (io, conn) = conn_guard::guard(io, limits);
    let svc = service(live, peer, Some(conn));
    watcher
        .watch(builder.serve_connection(TokioIo::new(io), svc))
        .await
}

/// Over the 431 cap of `line` bytes a header line
/// ([`crate::lean::head::HeaderBudget`]: nginx's `large_client_header_buffers 4 8k`).
fn headers_too_large(headers: &http::HeaderMap, line: usize) -> bool {
    let mut budget = crate::lean::head::HeaderBudget::new(line);
    headers
        .iter()
        .any(|(name, value)| budget.over(name.as_str().len(), value.len()))
}

/// One request: route, plugins, then forwarding; every answer counted by
/// route and status, every refusal by its reason.
async fn handle(
    req: Request<Incoming>,
    live: &Live,
    peer: &crate::forward::Peer,
) -> Response<GwBody> {
    if headers_too_large(req.headers(), live.max_header_line) {
        live.metrics.unmatched.status(431);
        let mut resp = upstream::rejection(&Rejection::HeaderTooLarge);
        // nginx closes the connection after its 400 for a head it cannot hold.
        resp.headers_mut()
            .insert(header::CONNECTION, http::HeaderValue::from_static("close"));
        return resp;
    }
    let snap = live.load();
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or(req.uri().host());
    let Some((route, prefix)) = snap.find_route(req.method(), host, req.uri().path()) else {
        live.metrics.unmatched.status(404);
        return upstream::rejection(&Rejection::NoRoute);
    };
    let (parts, body) = req.into_parts();
    let resp = match crate::plugins::admit(route, &snap, &parts).await {
        Ok(admitted) => {
            let req = Request::from_parts(parts, body);
            crate::forward::forward(req, route, prefix, admitted, live, peer).await
        }
        Err(refused) => {
            if let Some(reason) = refused.reason() {
                live.metrics.auth_failure(reason);
            }
            upstream::rejection(&refused)
        }
    };
    route.stats.status(resp.status().as_u16());
    resp
}
