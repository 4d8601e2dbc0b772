//! The connection to the upstream: a pooled keep-alive hyper client per
//! service (HTTP/1.1, or one multiplexed h2c connection), dialled over TCP or
//! in memory; bodies streamed both ways; hop-by-hop headers removed from the
//! response; Kong's 502/504 when the upstream fails; and the response for a
//! [`Rejection`]. The request's rewrite (path, `Host`, `X-Forwarded-*`,
//! consumer headers) is [`crate::forward`]'s.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response};
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::reject::Rejection;
use crate::upbody::{BodyTimeout, UpBody, resendable};

type Sender = http1::SendRequest<UpBody>;
/// Idle connections with when each went idle, most recent last.
type Idle = std::sync::Arc<std::sync::Mutex<Vec<(Sender, Instant)>>>;
type H2Sender = http2::SendRequest<UpBody>;

/// How a client reaches its upstream.
#[derive(Clone)]
pub enum Dial {
    /// TCP to `host:port`.
    Tcp(String),
    /// In memory: each call returns the gateway's end of a fresh duplex
    /// stream whose other end is served by the caller (benches without network).
    Memory(std::sync::Arc<dyn Fn() -> tokio::io::DuplexStream + Send + Sync>),
}

impl std::fmt::Debug for Dial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dial::Tcp(a) => write!(f, "Dial::Tcp({a})"),
            Dial::Memory(_) => f.write_str("Dial::Memory"),
        }
    }
}

/// The upstream's HTTP version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1 on a pool of keep-alive connections.
    Http1,
    /// HTTP/2 without TLS (prior knowledge), all requests multiplexed on one connection.
    H2c,
}

/// Keep-alive connections to one upstream. HTTP/1.1: idle senders are taken
/// from a small stack and put back when the response body has been read to
/// its end (a body dropped half-read closes its connection); one uncontended
/// lock per request and no per-request task hop beyond hyper's own. h2c: one
/// shared connection, re-dialled when it closes.
///
/// An upstream closes keep-alive connections it finds idle (Node after 5 s,
/// nginx after 75 s); a request sent just as it does fails with no response.
/// Two defences, as Kong's nginx has: a connection idle for the pool's own
/// idle timeout is retired, not reused (set it below the upstream's and the
/// race cannot happen), and a request that fails on a reused connection
/// before any response is sent again on a fresh one, if it can be: hyper
/// hands it back unsent, or it is idempotent and bodyless so that its head
/// can be sent again (Kong's `retries`: 0 turns this off).
#[derive(Debug, Clone)]
pub struct Client {
    dial: Dial,
    protocol: Protocol,
    pooling: Pooling,
    idle: Idle,
    h2: std::sync::Arc<tokio::sync::Mutex<Option<H2Sender>>>,
    /// The lean HTTP/1 path's idle connections ([`crate::lean`]): a client
    /// connection holds one while it lives and puts it back at its end.
    lean: LeanPool,
}

/// Idle TCP connections of the lean path, with when each went idle.
pub type LeanPool = std::sync::Arc<std::sync::Mutex<Vec<(tokio::net::TcpStream, Instant)>>>;

/// A connection idle this long may be being closed by the upstream as we
/// send: only then is a copy of the request's head kept for a resend (a
/// connection reused within this is in the upstream's active use).
const RESEND_AFTER_IDLE: Duration = Duration::from_millis(100);

/// Most idle connections kept per upstream.
pub(crate) const MAX_IDLE: usize = 1024;

/// Why forwarding failed.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("cannot connect to the upstream: {0}")]
    Connect(#[source] std::io::Error),
    #[error("upstream HTTP exchange failed: {0}")]
    Http(#[source] hyper::Error),
}

/// Drives a client connection to its end.
fn drive<F: std::future::Future<Output = Result<(), hyper::Error>> + Send + 'static>(conn: F) {
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "upstream connection ended with an error");
        }
    });
}

/// How a client treats its connections.
#[derive(Debug, Clone, Copy)]
pub struct Pooling {
    pub connect_timeout: Duration,
    /// A connection idle this long is closed, not reused (Kong's
    /// `upstream_keepalive_idle_timeout`, 60 s).
    pub idle_timeout: Duration,
    /// 0: never resend (Kong's `retries`, 5; we resend at most once).
    pub retries: u32,
}

impl Default for Pooling {
    fn default() -> Self {
        Pooling {
            connect_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            retries: 5,
        }
    }
}

impl Client {
    pub fn new(dial: Dial, protocol: Protocol, pooling: Pooling) -> Client {
        Client {
            dial,
            protocol,
            pooling,
            idle: Idle::default(),
            h2: Default::default(),
            lean: LeanPool::default(),
        }
    }

    /// How it treats its connections.
    pub fn pooling(&self) -> Pooling {
        self.pooling
    }

    /// `host:port` and the lean path's pool, when the lean path can reach
    /// this upstream (HTTP/1.1 over TCP; h2c and in-memory dials are hyper's).
    pub fn lean(&self) -> Option<(&str, &LeanPool)> {
        match (&self.dial, self.protocol) {
            (Dial::Tcp(a), Protocol::Http1) => Some((a, &self.lean)),
            _ => None,
        }
    }

    /// The same upstream reached another way (fresh, empty pools).
    pub fn with_dial(&self, dial: Dial) -> Client {
        Client::new(dial, self.protocol, self.pooling)
    }

    /// A new connection's byte stream.
    async fn dial(&self) -> Result<TokioIo<Box<dyn Io>>, Failure> {
        let io: Box<dyn Io> = match &self.dial {
            Dial::Tcp(authority) => Box::new(
                connect_tcp(authority, self.pooling.connect_timeout)
                    .await
                    .map_err(Failure::Connect)?,
            ),
            Dial::Memory(f) => Box::new(f()),
        };
        Ok(TokioIo::new(io))
    }

    /// A pooled connection with how long it was idle, or a new one (None).
    async fn sender(&self) -> Result<(Sender, Option<Duration>), Failure> {
        loop {
            let next = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let Some((mut s, since)) = next else { break };
            let idle = since.elapsed();
            // Past the idle timeout: dropped, which closes it.
            if idle < self.pooling.idle_timeout && s.ready().await.is_ok() {
                return Ok((s, Some(idle)));
            }
        }
        Ok((self.connect().await?, None))
    }

    async fn connect(&self) -> Result<Sender, Failure> {
        let (sender, conn) = http1::handshake(self.dial().await?)
            .await
            .map_err(Failure::Http)?;
        drive(conn);
        Ok(sender)
    }

    /// Sends on a pooled connection; on a failure there before any
    /// response, once more on a fresh one when the request can be resent
    /// (see [`Client`]). Returns the response, its connection, and whether
    /// it was resent.
    async fn send_h1(
        &self,
        req: Request<UpBody>,
    ) -> Result<(Response<Incoming>, Sender, bool), Failure> {
        let (mut sender, idle) = self.sender().await?;
        let may_resend = self.pooling.retries > 0 && idle.is_some();
        let copy = if may_resend && idle >= Some(RESEND_AFTER_IDLE) {
            resendable(&req)
        } else {
            None
        };
        match sender.try_send_request(req).await {
            Ok(resp) => Ok((resp, sender, false)),
            Err(mut e) => {
                // A user error is the client's body failing: not the connection's fault.
                let again = (may_resend && !e.error().is_user())
                    .then(|| e.take_message().or(copy))
                    .flatten();
                let Some(req) = again else {
                    return Err(Failure::Http(e.into_error()));
                };
                tracing::debug!(error = %e.error(), "a reused upstream connection failed: resending on a fresh one");
                let mut fresh = self.connect().await?;
                let resp = fresh.send_request(req).await.map_err(Failure::Http)?;
                Ok((resp, fresh, true))
            }
        }
    }

    /// The shared h2c connection, dialled when there is none or it closed.
    async fn h2_sender(&self) -> Result<H2Sender, Failure> {
        let mut slot = self.h2.lock().await;
        if let Some(s) = slot.as_ref().filter(|s| !s.is_closed()) {
            return Ok(s.clone());
        }
        let (sender, conn) = http2::handshake(TokioExecutor::new(), self.dial().await?)
            .await
            .map_err(Failure::Http)?;
        drive(conn);
        *slot = Some(sender.clone());
        Ok(sender)
    }

    /// The response, and whether the request had to be resent.
    async fn request(
        &self,
        req: Request<Incoming>,
        body_timeout: Duration,
    ) -> Result<(Response<GwBody>, bool), Failure> {
        let mut req = req.map(|b| UpBody::of(b, body_timeout));
        let (resp, back, resent) = match self.protocol {
            Protocol::Http1 => {
                let (resp, sender, resent) = self.send_h1(req).await?;
                (resp, Some((sender, self.idle.clone())), resent)
            }
            Protocol::H2c => {
                let mut sender = self.h2_sender().await?;
                // HTTP/2 carries the authority in the request line, not a Host header.
                let host = req.headers_mut().remove(header::HOST);
                let authority = host.as_ref().and_then(|h| h.to_str().ok()).unwrap_or("");
                let mut uri = req.uri().clone().into_parts();
                uri.scheme = Some(http::uri::Scheme::HTTP);
                uri.authority = authority.parse().ok();
                *req.uri_mut() = http::Uri::from_parts(uri).map_err(|e| {
                    Failure::Connect(std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
                })?;
                *req.version_mut() = http::Version::HTTP_2;
                sender.ready().await.map_err(Failure::Http)?;
                let resp = sender.send_request(req).await.map_err(Failure::Http)?;
                (resp, None, false)
            }
        };
        let (mut parts, body) = resp.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        parts.version = http::Version::HTTP_11;
        Ok((
            Response::from_parts(parts, GwBody::Upstream { body, back }),
            resent,
        ))
    }
}

/// A connection's byte stream (TCP or in-memory).
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> Io for T {}

/// A response body: the gateway's own, or the upstream's streamed through
/// (its connection goes back to the pool at the end of the body).
pub enum GwBody {
    Own(Full<Bytes>),
    Upstream {
        body: Incoming,
        back: Option<(Sender, Idle)>,
    },
}

impl std::fmt::Debug for GwBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GwBody::Own(_) => "GwBody::Own",
            GwBody::Upstream { .. } => "GwBody::Upstream",
        })
    }
}

/// Returns a finished exchange's connection to its pool.
#[allow(
    clippy::disallowed_methods,
    reason = "when a connection went idle, for the pool's idle timeout"
)]
fn release(back: &mut Option<(Sender, Idle)>) {
    if let Some((sender, idle)) = back.take() {
        let mut idle = idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push((sender, Instant::now()));
        }
    }
}

impl Drop for GwBody {
    fn drop(&mut self) {
        // A body dropped before its end leaves the connection mid-response: close it.
        if let GwBody::Upstream { body, back } = self
            && body.is_end_stream()
        {
            release(back);
        }
    }
}

impl http_body::Body for GwBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            GwBody::Own(b) => Pin::new(b).poll_frame(cx).map_err(|never| match never {}),
            GwBody::Upstream { body, back } => {
                let frame = Pin::new(&mut *body).poll_frame(cx);
                // hyper stops polling once `is_end_stream` says so: give the
                // connection back as soon as the body is complete.
                if matches!(frame, Poll::Ready(None)) || body.is_end_stream() {
                    release(back);
                }
                frame
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            GwBody::Own(b) => b.is_end_stream(),
            GwBody::Upstream { body, .. } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            GwBody::Own(b) => b.size_hint(),
            GwBody::Upstream { body, .. } => body.size_hint(),
        }
    }
}

/// The response for a rejection: its status, exact body and `WWW-Authenticate`.
pub fn rejection(r: &Rejection) -> Response<GwBody> {
    let (status, body, www) = r.response_parts();
    let mut resp = Response::new(GwBody::Own(Full::new(body)));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    if let Some(w) = www.and_then(|w| HeaderValue::from_str(&w).ok()) {
        h.insert(header::WWW_AUTHENTICATE, w);
    }
    resp
}

/// A TCP connection to `authority` within `timeout` (past it, an error of
/// kind `TimedOut`: a 504, as any connect that timed out), with Nagle off so
/// that a request head goes out at once. Both cores dial with it.
pub(crate) async fn connect_tcp(
    authority: &str,
    timeout: Duration,
) -> std::io::Result<tokio::net::TcpStream> {
    let stream = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(authority))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// The hop-by-hop headers neither core forwards: `Connection` and the ones
/// commonly sent hop-by-hop (RFC 9110 §7.6.1), `Proxy-Connection` included.
pub(crate) const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removes hop-by-hop headers, including those named in `Connection`. One
/// pass over the names first: most messages carry none, and a look-up per
/// hop-by-hop name (seven hashes) cost more than the pass.
pub fn strip_hop_by_hop(h: &mut HeaderMap) {
    if !h.keys().any(|k| HOP_BY_HOP.contains(k)) {
        return;
    }
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for n in HOP_BY_HOP.iter().chain(named.iter()) {
        h.remove(n);
    }
}

/// Why a forward failed, as `/metrics` counts it: the client's fault or the
/// upstream's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardFailure {
    /// The client's request body was malformed (a bad chunk) or cut short: 400.
    ClientBody,
    /// The client's request body sent nothing for the body timeout: 408.
    ClientBodyTimeout,
    /// No TCP connection within the service's `connect_timeout`: 504.
    ConnectTimeout,
    /// No response head within the service's `read_timeout`: 504.
    ReadTimeout,
    /// Refused, reset, or not HTTP: 502.
    Upstream,
}

impl ForwardFailure {
    pub const ALL: [ForwardFailure; 5] = [
        ForwardFailure::ClientBody,
        ForwardFailure::ClientBodyTimeout,
        ForwardFailure::ConnectTimeout,
        ForwardFailure::ReadTimeout,
        ForwardFailure::Upstream,
    ];

    /// `(side, reason)` labels.
    pub fn labels(self) -> (&'static str, &'static str) {
        match self {
            ForwardFailure::ClientBody => ("client", "malformed or incomplete request body"),
            ForwardFailure::ClientBodyTimeout => ("client", "request body timeout"),
            ForwardFailure::ConnectTimeout => ("upstream", "connect timeout"),
            ForwardFailure::ReadTimeout => ("upstream", "read timeout"),
            ForwardFailure::Upstream => ("upstream", "invalid response or connection failure"),
        }
    }

    /// Whether the client is at fault.
    fn side_is_client(self) -> bool {
        self.labels().0 == "client"
    }

    /// What the client is answered (Kong's status and body).
    pub fn rejection(self) -> Rejection {
        match self {
            ForwardFailure::ClientBody => Rejection::BadRequest,
            ForwardFailure::ClientBodyTimeout => Rejection::ClientBodyTimeout,
            ForwardFailure::ConnectTimeout | ForwardFailure::ReadTimeout => {
                Rejection::UpstreamTimeout
            }
            ForwardFailure::Upstream => Rejection::UpstreamInvalid,
        }
    }

    fn of(f: &Failure) -> ForwardFailure {
        match f {
            Failure::Connect(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                ForwardFailure::ConnectTimeout
            }
            // hyper's client reports the request body's own error as a
            // "user" error whose cause is the body's error: our timeout, or
            // the server side's error reading the client's body.
            Failure::Http(e) if e.is_user() => match std::error::Error::source(e) {
                Some(s) if s.is::<BodyTimeout>() => ForwardFailure::ClientBodyTimeout,
                Some(s) if s.is::<hyper::Error>() => ForwardFailure::ClientBody,
                _ => ForwardFailure::Upstream,
            },
            _ => ForwardFailure::Upstream,
        }
    }
}

/// What became of a forward, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    pub failure: Option<ForwardFailure>,
    /// Resent on a fresh connection after a reused one failed.
    pub resent: bool,
}

/// Sends `req` upstream within `read_timeout`; a failure becomes Kong's
/// status and body, and is returned to be counted.
pub async fn forward(
    client: &Client,
    req: Request<Incoming>,
    (read_timeout, body_timeout): (Duration, Duration),
) -> (Response<GwBody>, Outcome) {
    let failure = match tokio::time::timeout(read_timeout, client.request(req, body_timeout)).await
    {
        Ok(Ok((resp, resent))) => {
            return (
                resp,
                Outcome {
                    failure: None,
                    resent,
                },
            );
        }
        Err(_) => ForwardFailure::ReadTimeout,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "upstream request failed");
            ForwardFailure::of(&e)
        }
    };
    let mut resp = rejection(&failure.rejection());
    if failure.side_is_client() {
        // The rest of a bad or stalled body may still come: it must not be
        // read as the next request, so the connection ends here (as nginx).
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    (
        resp,
        Outcome {
            failure: Some(failure),
            resent: false,
        },
    )
}
