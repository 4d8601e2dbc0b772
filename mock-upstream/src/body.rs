//! Response bodies without per-request allocation: slices of one static
//! buffer, streamed in 64 KiB chunks when larger.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// Size of each streamed chunk.
pub const CHUNK: usize = 64 * 1024;

/// `okokok…`: the filler of programmed bodies (a 2-byte body reads `ok`).
static FILLER: [u8; CHUNK] = {
    let mut buf = [b'o'; CHUNK];
    let mut i = 1;
    while i < CHUNK {
        buf[i] = b'k';
        i += 2;
    }
    buf
};

/// A response body: a buffer, or `len` filler bytes streamed in chunks.
#[derive(Debug)]
pub enum MockBody {
    Bytes(Option<Bytes>),
    Filler { remaining: u64 },
}

impl MockBody {
    pub fn empty() -> Self {
        MockBody::Bytes(None)
    }

    pub fn filler(len: u64) -> Self {
        if len as usize <= CHUNK {
            MockBody::Bytes(Some(Bytes::from_static(&FILLER[..len as usize])))
        } else {
            MockBody::Filler { remaining: len }
        }
    }
}

impl From<Bytes> for MockBody {
    fn from(b: Bytes) -> Self {
        MockBody::Bytes(Some(b))
    }
}

impl From<String> for MockBody {
    fn from(s: String) -> Self {
        MockBody::Bytes(Some(Bytes::from(s)))
    }
}

impl From<&'static str> for MockBody {
    fn from(s: &'static str) -> Self {
        MockBody::Bytes(Some(Bytes::from_static(s.as_bytes())))
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        Poll::Ready(match this {
            MockBody::Bytes(b) => b
                .take()
                .filter(|b| !b.is_empty())
                .map(|b| Ok(Frame::data(b))),
            MockBody::Filler { remaining: 0 } => None,
            MockBody::Filler { remaining } => {
                let n = (*remaining).min(CHUNK as u64);
                *remaining -= n;
                Some(Ok(Frame::data(Bytes::from_static(&FILLER[..n as usize]))))
            }
        })
    }

    fn is_end_stream(&self) -> bool {
        match self {
            MockBody::Bytes(b) => b.as_ref().is_none_or(Bytes::is_empty),
            MockBody::Filler { remaining } => *remaining == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(match self {
            MockBody::Bytes(b) => b.as_ref().map_or(0, |b| b.len() as u64),
            MockBody::Filler { remaining } => *remaining,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn filler_streams_exact_length_in_chunks() {
        let len = 3 * CHUNK as u64 + 5;
        let mut body = MockBody::filler(len);
        assert_eq!(body.size_hint().exact(), Some(len));
        let mut total = 0;
        let mut frames = 0;
        while let Some(f) = body.frame().await {
            total += f.unwrap().into_data().unwrap().len() as u64;
            frames += 1;
        }
        assert_eq!((total, frames), (len, 4));
        let small = MockBody::filler(2).collect().await.unwrap().to_bytes();
        assert_eq!(&small[..], b"ok");
    }
}
