//! What both spike proxies share: where a head ends and how long the body is.

/// The request head's length, once complete.
pub fn request_head(buf: &[u8]) -> Option<usize> {
    let mut h = [httparse::EMPTY_HEADER; 64];
    match httparse::Request::new(&mut h).parse(buf) {
        Ok(httparse::Status::Complete(n)) => Some(n),
        _ => None,
    }
}

/// The response head's length and its Content-Length, once the head is complete.
pub fn response_head(buf: &[u8]) -> Option<(usize, usize)> {
    let mut h = [httparse::EMPTY_HEADER; 64];
    let mut r = httparse::Response::new(&mut h);
    match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => {
            let len = r
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
                .unwrap_or(0);
            Some((n, len))
        }
        _ => None,
    }
}
