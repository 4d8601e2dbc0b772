//! What gatebench's servers (the gateway and the mock upstream) share: the
//! serving task and its runtime ([`Serving`], [`runtime`]), and the
//! per-connection limits hyper does not have:
//!
//! - **header-read timeout** (`client_header_timeout`, nginx's and Kong's
//!   60 s): an HTTP/1 request head that has begun but not ended in time gets
//!   `408` with a JSON body, and the connection is closed; a connection that
//!   sent nothing at all is closed without a response, as nginx does;
//! - **keep-alive idle timeout** (`keepalive_timeout`, Kong's 60 s): a
//!   connection with no request in service and no traffic is closed;
//! - **the HTTP/1 parser's own refusals** (`400`, `414`, `431`, which hyper
//!   answers with an empty body) get the same JSON body as every other error;
//! - **a cap on open connections** ([`Gate`]): at the cap the accept loop
//!   waits, so new connections queue in the kernel's listen backlog, and a
//!   log line says so.
//!
//! How it works without a timer per request: [`Guarded`] wraps the byte
//! stream under hyper and counts reads and writes; the service marks each
//! request with [`Conn::request`]; a watchdog task per connection (started
//! by [`guard`]) looks at those counters a few times per timeout and,
//! when a limit is passed, flags the stream and wakes it. The stream then
//! writes the `408` (if due) and reports end-of-file to hyper, which closes
//! the connection. The hot path pays two relaxed atomic increments per read
//! or write.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

mod gate;
mod reply;
mod serve;

pub use gate::Gate;
pub use reply::{ErrorBody, json_message, kong_message, response};
pub use serve::{Serving, background_runtime, runtime};

/// The limits of one server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A request head must arrive within this (from its first byte, or from
    /// the connection's start for the first request). Default 60 s.
    pub header_timeout: Duration,
    /// A connection with nothing in service and no traffic for this long is
    /// closed. Default 60 s.
    pub keepalive_timeout: Duration,
    /// A request body that sends nothing for this long gets 408 and the
    /// connection closes (nginx's `client_body_timeout`: between two reads,
    /// not for the whole body). Default 60 s. Enforced by the service that
    /// reads the body; kept here with the other timeouts.
    pub body_timeout: Duration,
    /// Open connections at most (see [`Gate`]).
    pub max_connections: usize,
    /// The longest request header line (name, `: ` and value) in bytes, and
    /// four times that for all of a request's header lines: nginx's (and so
    /// Kong's) `large_client_header_buffers 4 8k`. Default 8 KiB. Enforced
    /// by the service, which sees the parsed head (hyper's own cap is on the
    /// whole head buffer, hundreds of KB); the mock upstream does not cap.
    pub max_header_line: usize,
    /// The JSON body of the server's own error responses.
    pub body: ErrorBody,
}

impl Limits {
    /// Kong's and nginx's timeouts; the connection cap from the open-file
    /// limit, each connection taking `fds_per_connection` descriptors (2 for
    /// a proxy: the client's and the upstream's).
    pub fn defaults(fds_per_connection: usize) -> Limits {
        Limits {
            header_timeout: Duration::from_secs(60),
            keepalive_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(60),
            max_connections: auto_max_connections(fds_per_connection),
            max_header_line: 8 << 10,
            body: json_message,
        }
    }
}

/// Descriptors kept for everything but connections (listeners, logs, state files).
const RESERVED_FILES: u64 = 256;

/// Raises the soft open-file limit to the hard one (as Go programs do at
/// start), so a default `ulimit -n` of 1024 does not cap connections
/// needlessly. Returns the limit now in force.
pub fn raise_open_files() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => {
            if setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
                hard
            } else {
                soft
            }
        }
        Ok((soft, _)) => soft,
        Err(_) => 1024,
    }
}

/// Raises the open-file limit ([`raise_open_files`]) and returns how many
/// connections fit: (limit − 256) / `fds_per_connection`, at least 64.
pub fn auto_max_connections(fds_per_connection: usize) -> usize {
    let limit = raise_open_files();
    let per = fds_per_connection.max(1) as u64;
    usize::try_from((limit.saturating_sub(RESERVED_FILES) / per).max(64)).unwrap_or(usize::MAX)
}

const NOTHING: u8 = 0;
const READ: u8 = 1;
const WRITE: u8 = 2;

/// Why the watchdog ended a connection.
const ALIVE: u8 = 0;
const IDLE: u8 = 1;
const SILENT: u8 = 2;
const LATE_HEAD: u8 = 3;

/// What the stream, the service and the watchdog share.
#[derive(Debug, Default)]
struct State {
    /// Reads and writes that moved bytes.
    ops: AtomicU64,
    /// The last of them: [`NOTHING`], [`READ`] or [`WRITE`].
    last_op: AtomicU8,
    /// Requests the service has begun, ever, and has in hand now.
    begun: AtomicU64,
    in_flight: AtomicU32,
    /// The client spoke HTTP/2 (its preface): no heads to time, no 408.
    h2: AtomicBool,
    /// [`ALIVE`], or why the connection is to end.
    expired: AtomicU8,
    waker: atomic_waker::AtomicWaker,
    closed: AtomicBool,
}

/// Wraps `io` (a TCP or TLS stream) for hyper and starts its watchdog on
/// the current tokio runtime; the [`Conn`] goes to the service.
pub fn guard<T>(io: T, limits: Limits) -> (Guarded<T>, Conn) {
    let state = Arc::new(State::default());
    let conn = Conn { state, limits };
    tokio::spawn(conn.clone().watchdog());
    (
        Guarded {
            inner: io,
            state: conn.state.clone(),
            limits,
            pending: None,
            begun_seen: 0,
            head: [0; 24],
            head_len: 0,
        },
        conn,
    )
}

/// A TLS handshake (`accept`) within the header timeout: a client gets as
/// long for it as for a request head. None (logged at debug) when it fails
/// or times out.
pub async fn handshake<S>(
    limits: &Limits,
    accept: impl std::future::Future<Output = io::Result<S>>,
) -> Option<S> {
    match tokio::time::timeout(limits.header_timeout, accept).await {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!("TLS handshake timed out");
            None
        }
    }
}

/// The service's and the watchdog's handle on one connection.
#[derive(Debug, Clone)]
pub struct Conn {
    state: Arc<State>,
    limits: Limits,
}

/// A request in service; dropping it (response returned, or the request
/// abandoned) ends it.
#[derive(Debug)]
pub struct InFlight(Arc<State>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

impl Conn {
    /// Marks a request in service until the returned guard drops.
    pub fn request(&self) -> InFlight {
        self.state.begun.fetch_add(1, Relaxed);
        self.state.in_flight.fetch_add(1, Relaxed);
        InFlight(self.state.clone())
    }

    /// Watches the connection until it closes or a limit ends it ([`guard`]
    /// starts it). Checks
    /// four times per the shorter timeout (at most once a second), so a
    /// limit acts within a quarter of it (a second at most) after it passes.
    pub async fn watchdog(self) {
        let l = &self.limits;
        let tick = (l.header_timeout.min(l.keepalive_timeout) / 4)
            .clamp(Duration::from_millis(5), Duration::from_secs(1));
        let s = &self.state;
        let mut seen_ops = u64::MAX;
        // When the current quiet stretch, or the current head, began.
        let mut quiet_since = tokio::time::Instant::now();
        let mut head_since: Option<tokio::time::Instant> = None;
        loop {
            tokio::time::sleep(tick).await;
            if s.closed.load(Relaxed) {
                return;
            }
            let now = tokio::time::Instant::now();
            let ops = s.ops.load(Relaxed);
            if s.in_flight.load(Relaxed) > 0 {
                (seen_ops, quiet_since, head_since) = (ops, now, None);
                continue;
            }
            let h2 = s.h2.load(Relaxed);
            let why = match s.last_op.load(Relaxed) {
                // HTTP/2 that never got as far as a request (a preface and
                // then nothing, or a frame never finished): timed from the
                // accept like a first head, closed without a response.
                _ if h2 && s.begun.load(Relaxed) == 0 => {
                    (now - quiet_since >= l.header_timeout).then_some(SILENT)
                }
                // A head has begun (bytes came in that nothing answered yet).
                READ if !h2 => {
                    let since = *head_since.get_or_insert(now - tick);
                    (now - since >= l.header_timeout).then_some(LATE_HEAD)
                }
                // Not a byte yet: nginx times the first head from the accept.
                NOTHING if !h2 => (now - quiet_since >= l.header_timeout).then_some(SILENT),
                _ => {
                    head_since = None;
                    if ops != seen_ops {
                        (seen_ops, quiet_since) = (ops, now);
                    }
                    (now - quiet_since >= l.keepalive_timeout).then_some(IDLE)
                }
            };
            if let Some(why) = why {
                s.expired.store(why, Relaxed);
                s.waker.wake();
                return;
            }
        }
    }
}

/// The stream under hyper: counts traffic, ends the connection when the
/// watchdog says so, and puts a JSON body on hyper's own error responses.
#[derive(Debug)]
pub struct Guarded<T> {
    inner: T,
    state: Arc<State>,
    limits: Limits,
    /// Bytes of our own to write before anything else: the 408, or an error
    /// response that replaced hyper's.
    pending: Option<(Vec<u8>, usize)>,
    /// `begun` when the last response started: a response with no request
    /// begun since is hyper's answer to a head it could not parse.
    begun_seen: u64,
    /// The first bytes the client sent (to spot the HTTP/2 preface).
    head: [u8; 24],
    head_len: usize,
}

impl<T> Drop for Guarded<T> {
    fn drop(&mut self) {
        self.state.closed.store(true, Relaxed);
    }
}

const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

impl<T: AsyncWrite + Unpin> Guarded<T> {
    /// Writes what is pending; Ready(Ok) once it is all out.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, at)) = &mut self.pending {
            if *at == bytes.len() {
                self.pending = None;
                break;
            }
            match Pin::new(&mut self.inner).poll_write(cx, &bytes[*at..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *at += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    /// hyper's automatic response to an unparsable head (the service never
    /// saw it) is replaced by the same status with a JSON body.
    fn replacement(&mut self, buf: &[u8]) -> Option<Vec<u8>> {
        let s = &self.state;
        let fresh = s.begun.load(Relaxed) != self.begun_seen;
        if fresh || s.h2.load(Relaxed) || s.last_op.load(Relaxed) != READ {
            return None;
        }
        let status = reply::automatic_status(buf)?;
        Some(response(status, self.limits.body))
    }

    fn note_write(&mut self) {
        let s = &self.state;
        s.ops.fetch_add(1, Relaxed);
        s.last_op.store(WRITE, Relaxed);
        self.begun_seen = s.begun.load(Relaxed);
    }

    /// The watchdog's verdict, if it has one: queues the 408 when due.
    fn expired(&mut self) -> bool {
        match self.state.expired.load(Relaxed) {
            ALIVE => false,
            LATE_HEAD => {
                if self.pending.is_none() {
                    self.pending = Some((response(408, self.limits.body), 0));
                    // Written once; the flag stays for the next polls.
                    self.state.expired.store(SILENT, Relaxed);
                }
                true
            }
            _ => true,
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for Guarded<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.expired() {
            // End of file for hyper, after our 408 (if any) is out.
            return match this.drain(cx) {
                Poll::Ready(_) => Poll::Ready(Ok(())),
                Poll::Pending => Poll::Pending,
            };
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        match &r {
            Poll::Ready(Ok(())) if buf.filled().len() > before => {
                let s = &this.state;
                s.ops.fetch_add(1, Relaxed);
                s.last_op.store(READ, Relaxed);
                if this.head_len < H2_PREFACE.len() {
                    let got = &buf.filled()[before..];
                    let n = got.len().min(H2_PREFACE.len() - this.head_len);
                    this.head[this.head_len..this.head_len + n].copy_from_slice(&got[..n]);
                    this.head_len += n;
                    if this.head_len == H2_PREFACE.len() && &this.head == H2_PREFACE {
                        s.h2.store(true, Relaxed);
                    }
                }
            }
            Poll::Pending => {
                this.state.waker.register(cx.waker());
                // The watchdog may have spoken between the read and the register.
                if this.state.expired.load(Relaxed) != ALIVE {
                    cx.waker().wake_by_ref();
                }
            }
            _ => {}
        }
        r
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Guarded<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.state.expired.load(Relaxed) == IDLE {
            // A response the client stopped reading for a whole idle timeout.
            return Poll::Ready(Err(io::ErrorKind::TimedOut.into()));
        }
        if this.pending.is_some() {
            match this.drain(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        if let Some(ours) = this.replacement(buf) {
            this.pending = Some((ours, 0));
            this.note_write();
            if let Poll::Ready(Err(e)) = this.drain(cx) {
                return Poll::Ready(Err(e));
            }
            // hyper's bytes are taken; ours go out in their place.
            return Poll::Ready(Ok(buf.len()));
        }
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        match &r {
            Poll::Ready(Ok(n)) if *n > 0 => this.note_write(),
            Poll::Pending => this.state.waker.register(cx.waker()),
            _ => {}
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // A response hyper wrote on its own is one small head: check the
        // first slice (the pending path flattens, rarely taken).
        let first = bufs.iter().find(|b| !b.is_empty());
        if this.pending.is_some() || first.is_some_and(|b| this.replacement(b).is_some()) {
            let Some(b) = first else {
                return Poll::Ready(Ok(0));
            };
            return Pin::new(this).poll_write(cx, b);
        }
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        match &r {
            Poll::Ready(Ok(n)) if *n > 0 => this.note_write(),
            Poll::Pending => this.state.waker.register(cx.waker()),
            _ => {}
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pending.is_some() {
            return this.drain(cx);
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pending.is_some() {
            match this.drain(cx) {
                Poll::Ready(Ok(())) => {}
                other => return other,
            }
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
