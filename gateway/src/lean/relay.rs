//! The lean path's upstream exchange, in the client connection's own task:
//! the request head in one write, the response head parsed with `httparse`
//! from a buffer the connection owns, and the body relayed as it came
//! (length, chunked or to the end of the connection). No task hop, no
//! channel, no `HeaderMap`. Failures get Kong's 502/504 as on hyper's path;
//! a bodyless idempotent request that finds its reused connection closed
//! before any response byte is sent once more on a fresh one.

#![allow(
    clippy::disallowed_methods,
    reason = "the upstream latency metric times the exchange, and the pool's idle timeout"
)]

use std::io;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::lean::chunked::Chunked;
use crate::lean::wire;
use crate::snapshot::{Live, Route};
use crate::upstream::{ForwardFailure, LeanPool, MAX_IDLE};

/// An upstream response head longer than this is refused (502).
const MAX_RESPONSE_HEAD: usize = 64 << 10;

/// The upstream connection a client connection holds.
#[derive(Debug)]
pub struct UpConn {
    stream: Option<TcpStream>,
    pool: LeanPool,
    /// Whether it may serve another request (its last response was read
    /// exactly to its end).
    reusable: bool,
    idle_since: Instant,
}

impl Drop for UpConn {
    // Back to its upstream's pool when it is clean; closed otherwise.
    fn drop(&mut self) {
        if let (true, Some(s)) = (self.reusable, self.stream.take()) {
            let mut idle = self.pool.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < MAX_IDLE {
                idle.push((s, self.idle_since));
            }
        }
    }
}

/// What the exchange needs to know of the request.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    pub route: &'a Route,
    pub authority: &'a str,
    pub pool: &'a LeanPool,
    /// Safe to send twice (and bodyless, as every lean request is).
    pub idempotent: bool,
    /// A `HEAD` request: the response has no body whatever it says.
    pub head: bool,
    /// The client asked to close after this response.
    pub close: bool,
}

/// How the upstream frames the response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    /// To the end of the connection.
    Close,
}

/// A failure before the response head arrived.
#[derive(Debug)]
enum Early {
    /// The connection failed before a single response byte (maybe stale).
    Closed(io::Error),
    /// Anything else: bad bytes, a cut head, a too-long head.
    Invalid,
}

async fn dial(authority: &str, timeout: Duration) -> Result<TcpStream, ForwardFailure> {
    crate::upstream::connect_tcp(authority, timeout)
        .await
        .map_err(|e| match e.kind() {
            io::ErrorKind::TimedOut => ForwardFailure::ConnectTimeout,
            _ => {
                tracing::debug!(error = %e, "cannot connect to the upstream");
                ForwardFailure::Upstream
            }
        })
}

/// Whether an idle connection is still open: the upstream closing it (or
/// sending unasked-for bytes) has made it readable. Costs a syscall only
/// then, from tokio's readiness, as hyper's pool learns it from its
/// connection task: so a request is not sent on a connection known closed.
fn alive(s: &TcpStream) -> bool {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    match s.poll_read_ready(&mut cx) {
        std::task::Poll::Pending => true,
        std::task::Poll::Ready(Err(_)) => false,
        std::task::Poll::Ready(Ok(())) => {
            matches!(s.try_read(&mut [0u8; 1]), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
        }
    }
}

/// The client's held connection when it is to this upstream, open and
/// fresh enough, else one from the pool (None: dial).
fn held(slot: &mut Option<UpConn>, ask: &Ask<'_>) -> Option<UpConn> {
    let idle_timeout = ask.route.upstream.client.pooling().idle_timeout;
    if let Some(c) = slot.take() {
        let open = c.stream.as_ref().is_some_and(alive);
        if open
            && std::sync::Arc::ptr_eq(&c.pool, ask.pool)
            && c.idle_since.elapsed() < idle_timeout
        {
            return Some(c);
        }
        // Another upstream's goes back to its pool (or closes, if stale).
        let mut c = c;
        c.reusable &= open && c.idle_since.elapsed() < idle_timeout;
    }
    let mut idle = ask.pool.lock().unwrap_or_else(|p| p.into_inner());
    while let Some((s, since)) = idle.pop() {
        if since.elapsed() < idle_timeout && alive(&s) {
            return Some(UpConn {
                stream: Some(s),
                pool: ask.pool.clone(),
                reusable: false,
                idle_since: since,
            });
        }
    }
    None
}

/// Writes `req` and reads until a final (non-1xx) response head is in
/// `buf`: its length.
async fn send(s: &mut TcpStream, req: &[u8], buf: &mut Vec<u8>) -> Result<usize, Early> {
    s.write_all(req).await.map_err(Early::Closed)?;
    buf.clear();
    loop {
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(8192);
        }
        let n = s.read_buf(buf).await.map_err(|e| {
            if buf.is_empty() {
                Early::Closed(e)
            } else {
                Early::Invalid
            }
        })?;
        if n == 0 {
            return Err(if buf.is_empty() {
                Early::Closed(io::ErrorKind::UnexpectedEof.into())
            } else {
                Early::Invalid
            });
        }
        loop {
            let mut storage = [httparse::EMPTY_HEADER; super::head::MAX_HEADERS];
            let mut resp = httparse::Response::new(&mut storage);
            match resp.parse(buf) {
                Ok(httparse::Status::Complete(len)) => match resp.code {
                    // Informational: skipped, as hyper's client does.
                    Some(c @ 100..=199) if c != 101 => {
                        buf.drain(..len);
                    }
                    Some(_) => return Ok(len),
                    None => return Err(Early::Invalid),
                },
                Ok(httparse::Status::Partial) if buf.len() < MAX_RESPONSE_HEAD => break,
                _ => return Err(Early::Invalid),
            }
            if buf.is_empty() {
                break;
            }
        }
    }
}

/// The response's framing, and whether the upstream keeps the connection.
fn framing(resp: &httparse::Response<'_, '_>, head_request: bool) -> Option<(Framing, bool)> {
    let code = resp.code?;
    let mut keep = resp.version == Some(1);
    let (mut length, mut chunked, mut coded) = (None, false, false);
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value).ok()?.trim();
            let n: u64 = v.parse().ok()?;
            if length.is_some_and(|l| l != n) {
                return None;
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            coded = true;
            chunked = std::str::from_utf8(h.value)
                .ok()?
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        } else if h.name.eq_ignore_ascii_case("connection") {
            let v = std::str::from_utf8(h.value).unwrap_or("");
            if v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")) {
                keep = false;
            }
        }
    }
    let framing = if code == 101 {
        return None;
    } else if head_request || code == 204 || code == 304 {
        Framing::Empty
    } else if coded {
        if chunked {
            Framing::Chunked
        } else {
            Framing::Close
        }
    } else {
        length.map_or(Framing::Close, Framing::Length)
    };
    Some((framing, keep && framing != Framing::Close))
}

/// Sends `req` (an upstream head) for `ask`, relays the response to
/// `client`, and returns its status and whether the client connection may
/// serve another request. A failure before the response becomes Kong's
/// answer; one after it began ends the client connection (Err).
pub async fn exchange<C: AsyncWrite + Unpin>(
    slot: &mut Option<UpConn>,
    (req, buf, out): (&[u8], &mut Vec<u8>, &mut Vec<u8>),
    ask: Ask<'_>,
    client: &mut C,
    live: &Live,
) -> io::Result<(u16, bool)> {
    let upstream = &ask.route.upstream;
    let retries = upstream.client.pooling().retries;
    let fail = |f: ForwardFailure, out: &mut Vec<u8>| {
        live.metrics.forward_failure(f);
        wire::own(out, &f.rejection(), ask.close)
    };
    let mut conn = held(slot, &ask);
    let sent = Instant::now();
    let attempt = async {
        let mut resent = false;
        loop {
            let reused = conn.is_some();
            let mut c = match conn.take() {
                Some(c) => c,
                None => UpConn {
                    stream: Some(dial(ask.authority, upstream.connect_timeout).await?),
                    pool: ask.pool.clone(),
                    reusable: false,
                    idle_since: Instant::now(),
                },
            };
            // Until this exchange ends clean, it goes nowhere but closed.
            c.reusable = false;
            let Some(s) = c.stream.as_mut() else {
                return Err(ForwardFailure::Upstream);
            };
            match send(s, req, buf).await {
                Ok(len) => return Ok((c, len, resent)),
                Err(Early::Closed(e)) if reused && retries > 0 && ask.idempotent && !resent => {
                    tracing::debug!(error = %e, "a reused upstream connection failed: resending on a fresh one");
                    resent = true;
                }
                Err(_) => return Err(ForwardFailure::Upstream),
            }
        }
    };
    let (mut c, len, resent) = match tokio::time::timeout(upstream.read_timeout, attempt).await {
        Ok(Ok(got)) => got,
        Ok(Err(f)) => {
            let status = fail(f, out);
            client.write_all(out).await?;
            return Ok((status, !ask.close));
        }
        Err(_) => {
            let status = fail(ForwardFailure::ReadTimeout, out);
            client.write_all(out).await?;
            return Ok((status, !ask.close));
        }
    };
    if resent {
        live.metrics.upstream_resend();
    }
    let mut storage = [httparse::EMPTY_HEADER; super::head::MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut storage);
    let parsed = resp.parse(&buf[..len]).ok().and_then(|_| {
        let (framing, keep) = framing(&resp, ask.head)?;
        Some((resp.code?, resp.reason.unwrap_or(""), framing, keep))
    });
    let Some((status, reason, framing, keep_upstream)) = parsed else {
        let status = fail(ForwardFailure::Upstream, out);
        client.write_all(out).await?;
        return Ok((status, !ask.close));
    };
    ask.route.stats.upstream(sent.elapsed());
    let keep_client = !ask.close && framing != Framing::Close;
    client_head(out, (status, reason, resp.headers), framing, keep_client);
    let clean = relay(framing, (&mut c, len), (buf, out), client).await?;
    c.reusable = keep_upstream && clean;
    c.idle_since = Instant::now();
    *slot = Some(c);
    Ok((status, keep_client))
}

/// The client's response head: the upstream's status line and headers but
/// the hop-by-hop ones, `Date` when it has none (as hyper adds), and the
/// framing and `Connection` of this hop.
fn client_head(
    out: &mut Vec<u8>,
    (status, reason, headers): (u16, &str, &[httparse::Header<'_>]),
    framing: Framing,
    keep_client: bool,
) {
    out.clear();
    wire::status_line(out, status, reason);
    let mut dated = false;
    // A body relayed chunked or to the close has no length to state: a
    // Content-Length beside Transfer-Encoding is dropped, as hyper's client
    // ignores it, so the client cannot read the body two ways.
    let no_length = matches!(framing, Framing::Chunked | Framing::Close);
    let named = wire::connection_named(headers);
    for h in headers {
        if wire::hop_by_hop(h.name, &named)
            || (no_length && h.name.eq_ignore_ascii_case("content-length"))
        {
            continue;
        }
        dated |= h.name.eq_ignore_ascii_case("date");
        out.extend_from_slice(h.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value);
        out.extend_from_slice(b"\r\n");
    }
    if !dated {
        wire::date(out);
    }
    if framing == Framing::Chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    if !keep_client {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes the head in `out` with the body after it: what `buf` holds past
/// the head (`len`), then what the upstream sends, to the framing's end.
/// Returns whether the upstream connection ended clean (nothing extra).
async fn relay<C: AsyncWrite + Unpin>(
    framing: Framing,
    (c, len): (&mut UpConn, usize),
    (buf, out): (&mut Vec<u8>, &mut Vec<u8>),
    client: &mut C,
) -> io::Result<bool> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "upstream response framing");
    let s = c.stream.as_mut().ok_or_else(bad)?;
    let mut chunked = Chunked::default();
    let mut left = match framing {
        Framing::Length(n) => n,
        _ => 0,
    };
    // Body bytes of this response in `piece`; Some(extra) once it has ended.
    let mut take = |piece: &[u8]| -> io::Result<(usize, Option<bool>)> {
        Ok(match framing {
            Framing::Empty => (0, Some(piece.is_empty())),
            Framing::Length(_) => {
                let n = piece.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                left -= n as u64;
                (n, (left == 0).then_some(n == piece.len()))
            }
            Framing::Chunked => match chunked.feed(piece).map_err(|_| bad())? {
                Some(n) => (n, Some(n == piece.len())),
                None => (piece.len(), None),
            },
            Framing::Close => (piece.len(), None),
        })
    };
    let (n, mut end) = take(&buf[len..])?;
    out.extend_from_slice(&buf[len..len + n]);
    client.write_all(out).await?;
    while end.is_none() {
        buf.clear();
        buf.reserve(16 << 10);
        if s.read_buf(buf).await? == 0 {
            if framing == Framing::Close {
                return Ok(false);
            }
            return Err(bad());
        }
        let (n, e) = take(buf)?;
        client.write_all(&buf[..n]).await?;
        end = e;
    }
    Ok(end == Some(true))
}
