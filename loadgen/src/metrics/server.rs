//! The `/metrics` endpoint: hyper on a thread and runtime of its own, so a
//! scrape never runs on the workers' threads (encoding takes well under a
//! millisecond for a few dozen series, once per scrape interval).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

use super::state::{CONTENT_TYPE, Metrics};

/// The running endpoint; dropping it stops it.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// The metrics endpoint could not be started on `addr`.
#[derive(Debug, thiserror::Error)]
#[error("--metrics-listen {addr}: cannot listen: {source}")]
pub struct ListenError {
    pub addr: SocketAddr,
    #[source]
    pub source: std::io::Error,
}

impl Server {
    /// Listens on `addr` (port 0: any free port) and serves `metrics`.
    /// Fails with the address it could not listen on.
    pub fn start(addr: SocketAddr, metrics: Arc<Metrics>) -> Result<Server, ListenError> {
        Server::start_with(addr, metrics, limits())
    }

    /// [`Server::start`] with other connection limits (tests: short timeouts).
    pub(super) fn start_with(
        addr: SocketAddr,
        metrics: Arc<Metrics>,
        limits: conn_guard::Limits,
    ) -> Result<Server, ListenError> {
        let fail = |source| ListenError { addr, source };
        let listener = std::net::TcpListener::bind(addr).map_err(fail)?;
        listener.set_nonblocking(true).map_err(fail)?;
        let addr = listener.local_addr().map_err(fail)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(fail)?;
        let (tx, rx) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("loadgen-metrics".into())
            .spawn(move || rt.block_on(serve(listener, metrics, rx, limits)))
            .map_err(fail)?;
        Ok(Server {
            addr,
            stop: Some(tx),
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The endpoint's connection limits: the servers' header and keep-alive
/// timeouts (a slowloris client is closed, not kept until the run ends),
/// and few connections (a Prometheus or two scrape it).
pub(super) fn limits() -> conn_guard::Limits {
    conn_guard::Limits {
        max_connections: 64,
        ..conn_guard::Limits::defaults(1)
    }
}

async fn serve(
    listener: std::net::TcpListener,
    metrics: Arc<Metrics>,
    mut stop: oneshot::Receiver<()>,
    limits: conn_guard::Limits,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    let gate = conn_guard::Gate::new(limits.max_connections, "loadgen metrics");
    loop {
        let place = tokio::select! {
            p = gate.admit() => p,
            _ = &mut stop => break,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = &mut stop => break,
        };
        let Ok((io, _)) = accepted else { continue };
        let m = metrics.clone();
        tokio::spawn(async move {
            let (io, conn) = conn_guard::guard(io, limits);
            let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let flight = conn.request();
                let r = respond(&m, req.method(), req.uri().path());
                drop(flight);
                async move { Ok::<_, Infallible>(r) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(io), svc)
                .await;
            drop(place);
        });
    }
}

fn respond(m: &Arc<Metrics>, method: &Method, path: &str) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, content_type: &str, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(if method == Method::HEAD {
            String::new()
        } else {
            body
        })));
        *r.status_mut() = status;
        if let Ok(v) = content_type.parse() {
            r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
        }
        r
    };
    let text = "text/plain; charset=utf-8";
    match (method, path) {
        (&Method::GET | &Method::HEAD, "/metrics") => {
            reply(StatusCode::OK, CONTENT_TYPE, m.render())
        }
        (&Method::GET | &Method::HEAD, "/") => reply(
            StatusCode::OK,
            text,
            "gatebench loadgen: live metrics of this run at /metrics\n".into(),
        ),
        (&Method::GET | &Method::HEAD, _) => reply(
            StatusCode::NOT_FOUND,
            text,
            "not found: try /metrics\n".into(),
        ),
        _ => reply(
            StatusCode::METHOD_NOT_ALLOWED,
            text,
            "GET /metrics\n".into(),
        ),
    }
}
