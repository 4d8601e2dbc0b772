//! Listener, TLS, connection serving (HTTP/1.1, h2c, TLS with ALPN) and
//! graceful shutdown.

#![allow(
    clippy::disallowed_methods,
    reason = "periodic stalls count from the server's start"
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

use crate::config::{Config, TlsConfig};
use crate::service::{self, Conn, Shared};
use crate::stall::Stall;
use crate::stats::{Stats, StatsSnapshot};

/// Request headers accepted: hyper's default of 100 (the gateway's limit)
/// plus room for what a gateway adds.
pub const MAX_HEADERS: usize = 128;

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read TLS {what} {path}")]
    TlsFile {
        what: &'static str,
        path: String,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("invalid TLS configuration")]
    Tls(#[from] rustls::Error),
    #[error("cannot generate a self-signed certificate")]
    SelfSigned(#[from] rcgen::Error),
}

/// A running server. Dropping it stops the server abruptly; call
/// [`Handle::shutdown`] for a graceful drain.
#[derive(Debug)]
pub struct Handle {
    addr: SocketAddr,
    base_url: String,
    stats: Arc<Stats>,
    cert_pem: Option<String>,
    serving: conn_guard::Serving,
}

impl Handle {
    /// The bound address (the real port when the config asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR` or `https://ADDR`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The counters served at `/stats`.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// The server certificate in PEM, when serving TLS (for clients to trust it).
    pub fn cert_pem(&self) -> Option<&str> {
        self.cert_pem.as_deref()
    }

    /// Stops accepting, lets in-flight requests finish (up to the configured
    /// drain timeout), then returns.
    pub async fn shutdown(mut self) {
        self.serving.shutdown().await;
    }
}

/// Binds `config.listen` and serves on the current tokio runtime.
pub async fn spawn(config: Config) -> Result<Handle, ServeError> {
    let (tls, cert_pem) = match &config.tls {
        None => (None, None),
        Some(t) => {
            let (acceptor, pem) = tls_acceptor(t)?;
            (Some(acceptor), pem)
        }
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: config.listen,
        source,
    })?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let base_url = format!("{scheme}://{addr}");
    let stats = Arc::new(Stats::default());
    let shared = Arc::new(Shared {
        program: config.program,
        stats: stats.clone(),
        stall: Stall::new(Instant::now(), config.stall),
        jwks: config.jwks,
        base_url: base_url.clone(),
        body_timeout: config.body_timeout,
    });
    let defaults = conn_guard::Limits::defaults(1);
    let limits = conn_guard::Limits {
        header_timeout: config.header_timeout,
        keepalive_timeout: config.keepalive_timeout,
        body_timeout: config.body_timeout,
        max_connections: config.max_connections.unwrap_or(defaults.max_connections),
        ..defaults
    };
    let serving = conn_guard::Serving::spawn(|stop| {
        accept_loop(listener, tls, shared, stop, (config.drain_timeout, limits))
    });
    Ok(Handle {
        addr,
        base_url,
        stats,
        cert_pem,
        serving,
    })
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    mut stop: oneshot::Receiver<()>,
    (drain_timeout, limits): (std::time::Duration, conn_guard::Limits),
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        // No hyper timer for HTTP/1: it would arm a header-read timeout on
        // every request (a timer-wheel insert each); conn-guard's watchdog
        // times heads and idle connections instead.
        .keep_alive(true)
        // More headers than a gateway in front accepts (hyper's 100) plus
        // what it adds (X-Forwarded-*, Via, X-Consumer-*, X-Request-Id …):
        // a request the gateway passes is never refused here.
        .max_headers(MAX_HEADERS)
        // Small responses: one write(2) of head and body beats writev(2).
        .writev(false);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(1024);
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let gate = conn_guard::Gate::new(limits.max_connections, "mock-upstream");
    loop {
        let place = tokio::select! {
            p = gate.admit() => p,
            _ = &mut stop => break,
        };
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(s) => s,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let (shared, builder, tls) = (shared.clone(), builder.clone(), tls.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            shared.stats.connection_opened();
            serve(stream, tls, shared.clone(), &builder, (watcher, limits)).await;
            shared.stats.connection_closed();
            drop(place);
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(drain_timeout) => {
            tracing::warn!(?drain_timeout, "drain timed out with requests still in flight");
        }
    }
}

async fn serve(
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    builder: &auto::Builder<TokioExecutor>,
    (watcher, limits): (hyper_util::server::graceful::Watcher, conn_guard::Limits),
) {
    let conn = Arc::new(Conn::default());
    let ctx = (shared, conn, builder, watcher, limits);
    let result = match tls {
        None => serve_guarded(stream, ctx).await,
        Some(acceptor) => match conn_guard::handshake(&limits, acceptor.accept(stream)).await {
            Some(s) => serve_guarded(s, ctx).await,
            None => return,
        },
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// Serves one accepted connection (TCP, or TLS after its handshake) with
/// its guard: header and idle timeouts, each request marked in service.
async fn serve_guarded<I>(
    io: I,
    (shared, conn, builder, watcher, limits): (
        Arc<Shared>,
        Arc<Conn>,
        &auto::Builder<TokioExecutor>,
        hyper_util::server::graceful::Watcher,
        conn_guard::Limits,
    ),
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (io, guard) = conn_guard::guard(io, limits);
    let svc = service_fn(move |req| {
        let flight = guard.request();
        let answer = service::handle(req, shared.clone(), conn.clone());
        async move {
            let r = answer.await;
            drop(flight);
            r
        }
    });
    watcher
        .watch(builder.serve_connection(TokioIo::new(io), svc))
        .await
}

fn tls_acceptor(t: &TlsConfig) -> Result<(TlsAcceptor, Option<String>), ServeError> {
    let (certs, key, pem): (
        Vec<CertificateDer<'static>>,
        PrivateKeyDer<'static>,
        Option<String>,
    ) = match t {
        TlsConfig::Files { cert, key } => {
            let file_err = |what, path: &std::path::Path| {
                let path = path.display().to_string();
                move |source| ServeError::TlsFile { what, path, source }
            };
            let certs = CertificateDer::pem_file_iter(cert)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(file_err("certificate", cert))?;
            let k = PrivateKeyDer::from_pem_file(key).map_err(file_err("key", key))?;
            (certs, k, None)
        }
        TlsConfig::SelfSigned => {
            let ck = rcgen::generate_simple_self_signed(vec![
                "localhost".to_owned(),
                "127.0.0.1".to_owned(),
            ])?;
            let pem = ck.cert.pem();
            let key = PrivateKeyDer::try_from(ck.signing_key.serialize_der())
                .map_err(|e| ServeError::Tls(rustls::Error::General(e.to_owned())))?;
            (vec![ck.cert.der().clone()], key, Some(pem))
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(cfg)), pem))
}
