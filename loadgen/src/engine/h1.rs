//! A lean HTTP/1.1 client connection for the hot path: the request is
//! written straight from the worker's task into a reused buffer, and the
//! response head is parsed with `httparse` from a reused read buffer. No
//! per-request allocation and no hand-off to a separate connection task (as
//! hyper's client has), which is what lets one generator thread outrun wrk.
//! hyper stays in use for HTTP/2.
//!
//! Framing covered: `Content-Length`, `Transfer-Encoding: chunked` (with
//! trailers), close-delimited bodies, and bodiless responses (HEAD, 1xx, 204,
//! 304); `Connection: close` and HTTP/1.0 end keep-alive.

use std::io;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use super::endpoint::Endpoint;
use super::plan::{Plan, ReqPlan};
use crate::measure::record::{ErrorClass, upstream_time};
use crate::token::{Carried, Put};

/// Any byte stream (TCP or TLS).
pub trait Stream: AsyncRead + AsyncWrite + Unpin {}
impl<T: AsyncRead + AsyncWrite + Unpin> Stream for T {}

/// One keep-alive HTTP/1.1 connection.
pub struct Conn {
    io: Box<dyn Stream>,
    buf: Vec<u8>,
    /// Unconsumed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// The request being written.
    pub out: Vec<u8>,
    closed: bool,
    /// Of the last exchange: when the request was completely written, and
    /// when the first response byte arrived (the timing breakdown).
    pub written: Option<Instant>,
    pub first_byte: Option<Instant>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("h1::Conn")
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

/// What the response said (its body has been read and discarded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub upstream: Option<Duration>,
    /// Body bytes (decoded length for chunked bodies).
    pub body_bytes: u64,
}

const MAX_HEADERS: usize = 64;
const READ_CHUNK: usize = 16 * 1024;
/// A response head larger than this is a protocol error.
const MAX_HEAD: usize = 64 * 1024;

fn io_err(e: &io::Error) -> ErrorClass {
    use io::ErrorKind::*;
    match e.kind() {
        TimedOut => ErrorClass::Timeout,
        InvalidData if e.get_ref().is_some_and(|i| i.is::<rustls::Error>()) => ErrorClass::Tls,
        _ => ErrorClass::Reset,
    }
}

enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// True when the comma-separated header value lists `token` (case-insensitive).
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|b| *b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// Writes the HTTP/1.1 request of sequence number `seq` into `out`
/// (reused: no allocation once it has grown to size).
pub fn write_request(
    plan: &Plan,
    (round, phase, seq): (u32, usize, u64),
    r: &ReqPlan,
    endpoint: &Endpoint,
    carried: Option<&Carried>,
    out: &mut Vec<u8>,
) {
    use std::io::Write as _;
    out.clear();
    out.extend_from_slice(r.method.as_str().as_bytes());
    out.push(b' ');
    let path_start = out.len();
    r.path
        .render_bytes(seq, &mut plan.seq_rng(round, phase, seq), out);
    // The token: query parameters inside the request target, then header lines.
    let auth = carried.zip(plan.tokens.as_deref());
    if let Some((c, a)) = auth {
        a.place(c, &mut |at, parts| {
            if let Put::Query = at {
                let sep = if out[path_start..].contains(&b'?') {
                    b'&'
                } else {
                    b'?'
                };
                out.push(sep);
                parts
                    .iter()
                    .for_each(|p| out.extend_from_slice(p.as_bytes()));
            }
        });
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if let Some((c, a)) = auth {
        a.place(c, &mut |at, parts| {
            if let Put::Header(name) = at {
                out.extend_from_slice(name.as_str().as_bytes());
                out.extend_from_slice(b": ");
                parts
                    .iter()
                    .for_each(|p| out.extend_from_slice(p.as_bytes()));
                out.extend_from_slice(b"\r\n");
            }
        });
    }
    if !r.headers.contains_key(http::header::HOST) {
        out.extend_from_slice(b"host: ");
        out.extend_from_slice(endpoint.authority.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    for (k, v) in r.headers.iter().chain(&endpoint.headers) {
        out.extend_from_slice(k.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let needs_length = !r.body.is_empty()
        || matches!(
            r.method,
            http::Method::POST | http::Method::PUT | http::Method::PATCH
        );
    if needs_length && !r.headers.contains_key(http::header::CONTENT_LENGTH) {
        let _ = write!(out, "content-length: {}\r\n", r.body.len());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&r.body);
}

impl Conn {
    pub fn new(io: Box<dyn Stream>) -> Conn {
        Conn {
            io,
            buf: vec![0; READ_CHUNK],
            start: 0,
            end: 0,
            out: Vec::with_capacity(512),
            closed: false,
            written: None,
            first_byte: None,
        }
    }

    /// False once the server closed or asked to close.
    pub fn is_reusable(&self) -> bool {
        !self.closed
    }

    /// Whether the server has closed this idle connection (its keep-alive
    /// timeout: nginx 75 s, Kong and our servers 60 s) or written to it
    /// unasked: one non-blocking read, no waiting. A connection found so is
    /// dropped before a request is written into it, as HTTP clients' pools
    /// do, instead of costing that request a reset.
    pub fn closed_by_peer(&mut self) -> bool {
        if self.closed {
            return true;
        }
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut byte = [0u8; 1];
        let mut rb = tokio::io::ReadBuf::new(&mut byte);
        match std::pin::Pin::new(&mut self.io).poll_read(&mut cx, &mut rb) {
            std::task::Poll::Pending => false,
            // End of file, an error, or bytes nobody asked for.
            std::task::Poll::Ready(_) => {
                self.closed = true;
                true
            }
        }
    }

    /// Writes `self.out` (the whole request) and reads the response.
    /// `head_only`: the request was HEAD, so the response has no body.
    /// Notes when the request was written and when the first response byte
    /// came (`written`, `first_byte`).
    #[allow(
        clippy::disallowed_methods,
        reason = "measuring points of the timing breakdown: request written, first response byte"
    )]
    pub async fn exchange(&mut self, head_only: bool) -> Result<Response, ErrorClass> {
        self.written = None;
        self.first_byte = None;
        if let Err(e) = self.io.write_all(&self.out).await {
            self.closed = true;
            return Err(io_err(&e));
        }
        self.written = Some(Instant::now());
        // Nothing is left over from the last response on a reusable
        // connection, so the first read that returns is the first byte.
        if self.start == self.end
            && let Err(e) = self.fill().await
        {
            self.closed = true;
            return Err(e);
        }
        self.first_byte = Some(Instant::now());
        let result = self.read_response(head_only).await;
        if result.is_err() {
            self.closed = true;
        }
        result
    }

    async fn fill(&mut self) -> Result<usize, ErrorClass> {
        if self.start > 0 && self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.end + READ_CHUNK / 4 > self.buf.len() {
            // Compact, then grow if still short.
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.end + READ_CHUNK / 4 > self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
        }
        let n = self
            .io
            .read(&mut self.buf[self.end..])
            .await
            .map_err(|e| io_err(&e))?;
        self.end += n;
        Ok(n)
    }

    // long: the HTTP/1.1 response parser's state machine (head, framing, body) on the hot path
    async fn read_response(&mut self, head_only: bool) -> Result<Response, ErrorClass> {
        loop {
            let (status, framing, keep_alive, upstream, head_len) = loop {
                let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut resp = httparse::Response::new(&mut headers);
                match resp.parse(&self.buf[self.start..self.end]) {
                    Ok(httparse::Status::Complete(n)) => {
                        let status = resp.code.unwrap_or(0);
                        let http10 = resp.version == Some(0);
                        let mut framing = Framing::UntilClose;
                        let mut keep_alive = !http10;
                        let mut upstream = None;
                        let mut chunked = false;
                        for h in resp.headers.iter() {
                            // Dispatch on length first: most headers are skipped without a comparison.
                            let name = h.name.as_bytes();
                            match name.len() {
                                14 if name.eq_ignore_ascii_case(b"content-length") => {
                                    let len = std::str::from_utf8(h.value)
                                        .ok()
                                        .and_then(|v| v.trim().parse::<u64>().ok());
                                    framing = Framing::Length(len.ok_or(ErrorClass::Protocol)?);
                                }
                                17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                                    chunked = has_token(h.value, b"chunked");
                                }
                                10 if name.eq_ignore_ascii_case(b"connection") => {
                                    if has_token(h.value, b"close") {
                                        keep_alive = false;
                                    } else if has_token(h.value, b"keep-alive") {
                                        keep_alive = true;
                                    }
                                }
                                13 if name.eq_ignore_ascii_case(b"server-timing") => {
                                    upstream =
                                        std::str::from_utf8(h.value).ok().and_then(upstream_time);
                                }
                                _ => {}
                            }
                        }
                        if chunked {
                            framing = Framing::Chunked;
                        }
                        if head_only
                            || (100..200).contains(&status)
                            || status == 204
                            || status == 304
                        {
                            framing = Framing::None;
                        }
                        break (status, framing, keep_alive, upstream, n);
                    }
                    Ok(httparse::Status::Partial) => {
                        if self.end - self.start > MAX_HEAD {
                            return Err(ErrorClass::Protocol);
                        }
                        if self.fill().await? == 0 {
                            return Err(ErrorClass::Reset);
                        }
                    }
                    Err(_) => return Err(ErrorClass::Protocol),
                }
            };
            self.start += head_len;
            // An interim 1xx response (e.g. 103 Early Hints): the final one follows.
            if (100..200).contains(&status) && status != 101 {
                continue;
            }
            let body_bytes = match framing {
                Framing::None => 0,
                Framing::Length(n) => {
                    self.skip(n).await?;
                    n
                }
                Framing::Chunked => self.skip_chunked().await?,
                Framing::UntilClose => {
                    let mut n = (self.end - self.start) as u64;
                    self.start = self.end;
                    loop {
                        let got = self.fill().await?;
                        if got == 0 {
                            break;
                        }
                        n += got as u64;
                        self.start = self.end;
                    }
                    self.closed = true;
                    n
                }
            };
            if !keep_alive {
                self.closed = true;
            }
            return Ok(Response {
                status,
                upstream,
                body_bytes,
            });
        }
    }

    /// Discards `n` body bytes.
    async fn skip(&mut self, mut n: u64) -> Result<(), ErrorClass> {
        loop {
            let have = (self.end - self.start) as u64;
            if have >= n {
                self.start += n as usize;
                return Ok(());
            }
            n -= have;
            self.start = self.end;
            if self.fill().await? == 0 {
                return Err(ErrorClass::Body);
            }
        }
    }

    /// Reads one CRLF-terminated line, returning its length without the CRLF.
    async fn line(&mut self) -> Result<usize, ErrorClass> {
        loop {
            if let Some(i) = self.buf[self.start..self.end]
                .windows(2)
                .position(|w| w == b"\r\n")
            {
                return Ok(i);
            }
            if self.end - self.start > MAX_HEAD {
                return Err(ErrorClass::Protocol);
            }
            if self.fill().await? == 0 {
                return Err(ErrorClass::Body);
            }
        }
    }

    /// Discards a chunked body; returns its decoded length.
    async fn skip_chunked(&mut self) -> Result<u64, ErrorClass> {
        let mut total = 0;
        loop {
            let len = self.line().await?;
            let line = &self.buf[self.start..self.start + len];
            let hex = line.split(|b| *b == b';').next().unwrap_or(b"");
            let size = std::str::from_utf8(hex)
                .ok()
                .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
                .ok_or(ErrorClass::Body)?;
            self.start += len + 2;
            if size == 0 {
                // Trailers, then an empty line.
                loop {
                    let len = self.line().await?;
                    self.start += len + 2;
                    if len == 0 {
                        return Ok(total);
                    }
                }
            }
            self.skip(size + 2).await?;
            total += size;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A server that answers each request with the next canned response.
    async fn exchange_all(
        responses: Vec<&'static [u8]>,
        head_only: bool,
    ) -> Vec<Result<Response, ErrorClass>> {
        let (client, mut server) = tokio::io::duplex(1 << 16);
        let n = responses.len();
        let srv = tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            for r in responses {
                let _ = server.read(&mut buf).await;
                for piece in r.chunks(7) {
                    server.write_all(piece).await.unwrap();
                    tokio::task::yield_now().await;
                }
            }
            drop(server);
        });
        let mut c = Conn::new(Box::new(client));
        let mut out = Vec::new();
        for _ in 0..n {
            c.out.clear();
            c.out
                .extend_from_slice(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n");
            out.push(c.exchange(head_only).await);
        }
        srv.await.unwrap();
        out
    }

    #[tokio::test]
    async fn content_length_chunked_and_keep_alive() {
        let r = exchange_all(
            vec![
                b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nserver-timing: upstream;dur=1.500\r\n\r\nhello",
                b"HTTP/1.1 503 Nope\r\ntransfer-encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: 1\r\n\r\n",
                b"HTTP/1.1 204 No Content\r\n\r\n",
                b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n",
            ],
            false,
        )
        .await;
        let resp = |status, upstream, body_bytes| {
            Ok(Response {
                status,
                upstream,
                body_bytes,
            })
        };
        assert_eq!(r[0], resp(200, Some(Duration::from_micros(1500)), 5));
        assert_eq!(r[1], resp(503, None, 11));
        assert_eq!(r[2], resp(204, None, 0));
        assert_eq!(r[3], resp(201, None, 0));
    }

    #[tokio::test]
    async fn close_delimited_and_truncated_bodies() {
        let r = exchange_all(
            vec![b"HTTP/1.0 200 OK\r\n\r\nall of this until close"],
            false,
        )
        .await;
        assert_eq!(r[0].map(|r| (r.status, r.body_bytes)), Ok((200, 23)));
        let r = exchange_all(
            vec![b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\nshort"],
            false,
        )
        .await;
        assert_eq!(r[0], Err(ErrorClass::Body));
        let r = exchange_all(vec![b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"], true).await;
        assert_eq!(
            r[0].map(|r| r.status),
            Ok(200),
            "HEAD responses have no body"
        );
        let r = exchange_all(vec![b"garbage\r\n\r\n"], false).await;
        assert_eq!(r[0], Err(ErrorClass::Protocol));
        let r = exchange_all(vec![b"HTTP/1.1 200 OK\r\ncontent-le"], false).await;
        assert_eq!(r[0], Err(ErrorClass::Reset));
    }

    /// All of `bytes` from the server at once, then close; the client's answer.
    fn one_exchange(bytes: Vec<u8>) -> Result<Response, ErrorClass> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let (client, mut server) = tokio::io::duplex(1 << 20);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = server.read(&mut buf).await;
                let _ = server.write_all(&bytes).await;
                drop(server);
            });
            let mut c = Conn::new(Box::new(client));
            c.out
                .extend_from_slice(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n");
            tokio::time::timeout(Duration::from_secs(5), c.exchange(false))
                .await
                .expect("an answer, never a hang")
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, failure_persistence: None, ..Default::default() })]

        /// Any bytes from a server end in a response or an error, never a panic.
        #[test]
        fn any_bytes_from_the_server_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2000)) {
            let _ = one_exchange(bytes);
        }

        /// Any bytes after a well-formed head never panic either.
        #[test]
        fn any_body_after_a_head_never_panics(
            head in proptest::sample::select(vec![
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
                "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n",
                "HTTP/1.1 200 OK\r\ncontent-length: 18446744073709551615\r\n\r\n",
                "HTTP/1.0 200 OK\r\n\r\n",
            ]),
            body in "[0-9a-fA-F;\r\n =x-]{0,300}",
        ) {
            let _ = one_exchange([head.as_bytes(), body.as_bytes()].concat());
        }

        /// A response of N body bytes followed by more (a second response,
        /// or junk) is read as exactly N: never past the response it accepted.
        #[test]
        fn a_framed_body_is_read_exactly(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000),
            chunks in proptest::collection::vec(1usize..700, 1..8),
            chunked in proptest::prelude::any::<bool>(),
            extra in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..100),
        ) {
            let mut wire = Vec::new();
            if chunked {
                wire.extend_from_slice(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n");
                let mut rest = &body[..];
                let mut sizes = chunks.iter().cycle();
                while !rest.is_empty() {
                    let n = (*sizes.next().unwrap_or(&1)).min(rest.len());
                    wire.extend_from_slice(format!("{n:x}\r\n").as_bytes());
                    wire.extend_from_slice(&rest[..n]);
                    wire.extend_from_slice(b"\r\n");
                    rest = &rest[n..];
                }
                wire.extend_from_slice(b"0\r\n\r\n");
            } else {
                wire.extend_from_slice(format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len()).as_bytes());
                wire.extend_from_slice(&body);
            }
            wire.extend_from_slice(&extra);
            let r = one_exchange(wire);
            proptest::prop_assert_eq!(r.map(|r| r.body_bytes), Ok(body.len() as u64));
        }
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_while_idle_is_noticed_before_use() {
        let (client, server) = tokio::io::duplex(1024);
        let mut c = Conn::new(Box::new(client));
        assert!(!c.closed_by_peer(), "open and quiet");
        drop(server);
        assert!(c.closed_by_peer(), "the peer closed it");
        assert!(!c.is_reusable());
    }
}
