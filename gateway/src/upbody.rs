//! What the gateway sends upstream as a request body ([`UpBody`]): the
//! client's, streamed, with nginx's `client_body_timeout` between reads
//! when it has one; or nothing, for a bodyless idempotent request sent again
//! on a fresh connection ([`resendable`]).

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body::{Body as _, Frame, SizeHint};
use hyper::body::Incoming;

/// Methods whose request may be sent twice (RFC 9110 §9.2.2).
pub fn idempotent(m: &http::Method) -> bool {
    use http::Method as M;
    [M::GET, M::HEAD, M::OPTIONS, M::TRACE, M::PUT, M::DELETE].contains(m)
}

/// The client's request body sent nothing for the body timeout.
#[derive(Debug, thiserror::Error)]
#[error("the client's request body sent nothing for {0:?}")]
pub struct BodyTimeout(Duration);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body sent upstream: the client's, streamed (with a deadline for
/// each read when it has one), or none (a resent head).
#[derive(Debug)]
pub enum UpBody {
    Client(Incoming),
    /// nginx's `client_body_timeout`: the next frame due within `timeout`
    /// of the last; one timer per request that has a body.
    Timed {
        body: Incoming,
        timeout: Duration,
        due: Pin<Box<tokio::time::Sleep>>,
    },
    Empty,
}

impl UpBody {
    /// The client's body, timed when there is one to read.
    pub fn of(body: Incoming, timeout: Duration) -> UpBody {
        if body.is_end_stream() {
            UpBody::Client(body)
        } else {
            UpBody::Timed {
                body,
                timeout,
                due: Box::pin(tokio::time::sleep(timeout)),
            }
        }
    }
}

impl http_body::Body for UpBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            UpBody::Client(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
            UpBody::Timed { body, timeout, due } => match Pin::new(body).poll_frame(cx) {
                Poll::Ready(Some(Ok(f))) => {
                    due.as_mut().reset(tokio::time::Instant::now() + *timeout);
                    Poll::Ready(Some(Ok(f)))
                }
                Poll::Ready(other) => Poll::Ready(other.map(|r| r.map_err(Into::into))),
                Poll::Pending => match due.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout(*timeout))))),
                    Poll::Pending => Poll::Pending,
                },
            },
            UpBody::Empty => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpBody::Client(b) | UpBody::Timed { body: b, .. } => b.is_end_stream(),
            UpBody::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpBody::Client(b) | UpBody::Timed { body: b, .. } => b.size_hint(),
            UpBody::Empty => SizeHint::with_exact(0),
        }
    }
}

/// A copy of a bodyless idempotent request's head, to send it again.
pub fn resendable(req: &Request<UpBody>) -> Option<Request<UpBody>> {
    if !idempotent(req.method()) || !req.body().is_end_stream() {
        return None;
    }
    let mut copy = Request::new(UpBody::Empty);
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    Some(copy)
}
