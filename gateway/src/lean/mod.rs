//! The lean HTTP/1 proxy path: one task per client connection reads the
//! request head into a buffer it owns, parses it in place ([`head`]), runs
//! the plugins on byte ranges, writes the upstream head in one write and
//! relays the response from an upstream connection it holds ([`relay`]).
//! No `HeaderMap`, no boxed service future, no task hop to a client
//! connection task: what hyper's server and client cost per request here.
//!
//! It serves only what it is sure of: plain-HTTP HTTP/1.1 requests without
//! a body, in origin-form, on routes without `oidc` whose upstream is
//! HTTP/1.1 over TCP. The first request that is anything else — a body,
//! `Upgrade`, `Expect`, HTTP/1.0 or /2, a malformed or oversized head, a
//! route it cannot take — is handed, with every byte read so far, to hyper
//! ([`Rewind`]), which serves the connection from there to its end. TLS
//! connections are hyper's throughout.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::forward::Peer;
use crate::reject::Rejection;
use crate::snapshot::Live;

pub mod chunked;
pub mod differential;
pub mod head;
pub mod relay;
pub mod wire;

use head::{Head, Parsed};

/// What a connection's lean loop needs.
#[derive(Debug)]
pub struct Ctx {
    pub live: Arc<Live>,
    pub peer: Peer,
    pub conn: conn_guard::Conn,
    /// Flips when the server stops: an idle connection closes.
    pub stop: tokio::sync::watch::Receiver<bool>,
}

/// How the lean loop ended.
#[derive(Debug)]
pub enum End<I> {
    /// The connection is done (closed by either side, or by the server stopping).
    Done,
    /// hyper serves the rest: the stream with the bytes already read.
    Hyper(Rewind<I>),
}

/// A lean request's outcome for the loop.
enum Step {
    /// Answered; the connection stays open (or not).
    Served { keep: bool },
    /// hyper's: nothing was written.
    Defer,
}

/// Serves `io` on the lean path until it ends or hands over to hyper.
pub async fn serve<I>(mut io: I, ctx: &mut Ctx) -> io::Result<End<I>>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf: Vec<u8> = Vec::with_capacity(8 << 10);
    let (mut out, mut upbuf) = (Vec::with_capacity(4 << 10), Vec::with_capacity(16 << 10));
    let mut up: Option<relay::UpConn> = None;
    loop {
        let step = {
            let mut storage = [httparse::EMPTY_HEADER; head::MAX_HEADERS];
            match head::parse(&buf, &mut storage, ctx.live.max_header_line) {
                Parsed::Partial => None,
                Parsed::Defer => Some((0, Step::Defer)),
                Parsed::Lean(h) => {
                    let len = h.len;
                    let step = one(&h, ctx, (&mut io, &mut up), (&mut out, &mut upbuf)).await?;
                    Some((len, step))
                }
            }
        };
        match step {
            Some((_, Step::Defer)) => {
                ctx.live.metrics.handovers.fetch_add(1, Relaxed);
                return Ok(End::Hyper(Rewind::new(io, buf)));
            }
            Some((len, Step::Served { keep })) => {
                buf.drain(..len);
                if !keep {
                    let _ = io.shutdown().await;
                    return Ok(End::Done);
                }
                continue;
            }
            None => {}
        }
        if buf.capacity() - buf.len() < 2048 {
            buf.reserve(8 << 10);
        }
        let n = if buf.is_empty() {
            tokio::select! {
                r = io.read_buf(&mut buf) => r?,
                _ = ctx.stop.changed() => return Ok(End::Done),
            }
        } else {
            io.read_buf(&mut buf).await?
        };
        if n == 0 {
            return Ok(End::Done);
        }
    }
}

/// One lean request: route, plugins, then the exchange (or a refusal).
async fn one<I>(
    h: &Head<'_, '_>,
    ctx: &Ctx,
    (io, up): (&mut I, &mut Option<relay::UpConn>),
    (out, upbuf): (&mut Vec<u8>, &mut Vec<u8>),
) -> io::Result<Step>
where
    I: AsyncWrite + Unpin,
{
    let live = &*ctx.live;
    let snap = live.load();
    let Some((route, prefix)) = snap.find_route(&h.method, h.host, h.path) else {
        let _flight = ctx.conn.request();
        live.metrics.unmatched.status(404);
        live.metrics.lean_requests.fetch_add(1, Relaxed);
        wire::own(out, &Rejection::NoRoute, h.close);
        io.write_all(out).await?;
        return Ok(Step::Served { keep: !h.close });
    };
    let Some((authority, pool)) = route
        .upstream
        .client
        .lean()
        .filter(|_| route.oidc.is_none())
    else {
        return Ok(Step::Defer);
    };
    let _flight = ctx.conn.request();
    let (status, keep) = match crate::plugins::admit_now(route, &snap, (&h.method, h.query, h)) {
        Err(refused) => {
            if let Some(reason) = refused.reason() {
                live.metrics.auth_failure(reason);
            }
            let status = wire::own(out, &refused, h.close);
            io.write_all(out).await?;
            (status, !h.close)
        }
        Ok(admitted) => {
            let mut req = std::mem::take(out);
            wire::upstream_head(&mut req, h, (route, prefix), admitted, live, &ctx.peer);
            let ask = relay::Ask {
                route,
                authority,
                pool,
                idempotent: crate::upbody::idempotent(&h.method),
                head: h.method == http::Method::HEAD,
                close: h.close,
            };
            let r = relay::exchange(up, (&req, upbuf, out), ask, io, live).await;
            // The request head's buffer is kept for the next response.
            if out.capacity() < req.capacity() {
                *out = req;
            }
            r?
        }
    };
    route.stats.status(status);
    live.metrics.lean_requests.fetch_add(1, Relaxed);
    Ok(Step::Served { keep })
}

/// A stream with bytes already read from it put back in front: how the
/// lean loop hands a connection to hyper.
#[derive(Debug)]
pub struct Rewind<I> {
    prefix: Vec<u8>,
    at: usize,
    inner: I,
}

impl<I> Rewind<I> {
    pub fn new(inner: I, prefix: Vec<u8>) -> Rewind<I> {
        Rewind {
            prefix,
            at: 0,
            inner,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Rewind<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.at < this.prefix.len() {
            let n = buf.remaining().min(this.prefix.len() - this.at);
            buf.put_slice(&this.prefix[this.at..this.at + n]);
            this.at += n;
            if this.at == this.prefix.len() {
                this.prefix = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Rewind<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
