//! Forwarding to the upstream: a pooled keep-alive hyper client per service,
//! hop-by-hop headers removed, `X-Forwarded-*` set, bodies streamed both
//! ways, and Kong's 502/504 bodies when the upstream fails.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response};
use http_body::{Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::auth::Reject;

/// The upstream client type.
pub type Client = hyper_util::client::legacy::Client<HttpConnector, Incoming>;

/// A pooled keep-alive client with a connect timeout.
pub fn client(connect_timeout: Duration) -> Client {
    let mut c = HttpConnector::new();
    c.set_nodelay(true);
    c.set_connect_timeout(Some(connect_timeout));
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(1024)
        .build(c)
}

/// A response body: the gateway's own, or the upstream's streamed through.
#[derive(Debug)]
pub enum GwBody {
    Own(Full<Bytes>),
    Upstream(Incoming),
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
            GwBody::Upstream(b) => Pin::new(b).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            GwBody::Own(b) => b.is_end_stream(),
            GwBody::Upstream(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            GwBody::Own(b) => b.size_hint(),
            GwBody::Upstream(b) => b.size_hint(),
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
        Ok(Ok(resp)) => {
            let (mut parts, body) = resp.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, GwBody::Upstream(body))
        }
    }
}
