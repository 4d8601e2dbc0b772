//! Forwarding to the upstream: a pooled keep-alive hyper client per service,
//! hop-by-hop headers removed, `X-Forwarded-*` set, bodies streamed both
//! ways, and Kong's 502/504 bodies when the upstream fails.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response};
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;

use crate::auth::Reject;

type Sender = http1::SendRequest<Incoming>;
type Idle = std::sync::Arc<std::sync::Mutex<Vec<Sender>>>;

/// Keep-alive HTTP/1.1 connections to one upstream: idle senders are taken
/// from a small stack and put back when the response body has been read to
/// its end (a body dropped half-read closes its connection). One uncontended
/// lock per request and no per-request task hop beyond hyper's own.
#[derive(Debug, Clone)]
pub struct Client {
    authority: String,
    connect_timeout: Duration,
    idle: Idle,
}

/// Most idle connections kept per upstream.
const MAX_IDLE: usize = 1024;

/// A pooled keep-alive client with a connect timeout.
pub fn client(authority: &str, connect_timeout: Duration) -> Client {
    Client {
        authority: authority.to_owned(),
        connect_timeout,
        idle: Idle::default(),
    }
}

/// Why forwarding failed.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("cannot connect to the upstream: {0}")]
    Connect(#[source] std::io::Error),
    #[error("upstream HTTP exchange failed: {0}")]
    Http(#[source] hyper::Error),
}

impl Client {
    async fn sender(&self) -> Result<Sender, Failure> {
        loop {
            let next = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let Some(mut s) = next else { break };
            if s.ready().await.is_ok() {
                return Ok(s);
            }
        }
        let stream = tokio::time::timeout(
            self.connect_timeout,
            tokio::net::TcpStream::connect(self.authority.as_str()),
        )
        .await
        .map_err(|_| Failure::Connect(std::io::ErrorKind::TimedOut.into()))?
        .map_err(Failure::Connect)?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(Failure::Http)?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }

    async fn request(&self, req: Request<Incoming>) -> Result<Response<GwBody>, Failure> {
        let mut sender = self.sender().await?;
        let resp = sender.send_request(req).await.map_err(Failure::Http)?;
        let (mut parts, body) = resp.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        let back = Some((sender, self.idle.clone()));
        Ok(Response::from_parts(parts, GwBody::Upstream { body, back }))
    }
}

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
fn release(back: &mut Option<(Sender, Idle)>) {
    if let Some((sender, idle)) = back.take() {
        let mut idle = idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(sender);
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

/// The response for a rejection.
pub fn rejection(r: Reject) -> Response<GwBody> {
    let mut resp = Response::new(GwBody::Own(Full::new(r.body)));
    *resp.status_mut() =
        http::StatusCode::from_u16(r.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    if let Some(w) = r
        .www_authenticate
        .and_then(|w| HeaderValue::from_str(&w).ok())
    {
        h.insert(header::WWW_AUTHENTICATE, w);
    }
    resp
}

const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removes hop-by-hop headers, including those named in `Connection`.
pub fn strip_hop_by_hop(h: &mut HeaderMap) {
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

/// Sends `req` upstream within `read_timeout`; maps failures to Kong's bodies.
pub async fn forward(
    client: &Client,
    req: Request<Incoming>,
    read_timeout: Duration,
) -> Response<GwBody> {
    match tokio::time::timeout(read_timeout, client.request(req)).await {
        Err(_) => rejection(Reject::message(504, "The upstream server is timing out")),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "upstream request failed");
            rejection(Reject::message(
                502,
                "An invalid response was received from the upstream server",
            ))
        }
        Ok(Ok(resp)) => resp,
    }
}
