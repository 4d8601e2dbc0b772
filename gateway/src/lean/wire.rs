//! The bytes the lean path writes: the upstream request head (the same
//! rewrite as [`crate::forward`], on byte ranges instead of a `HeaderMap`),
//! the client's response head, and the gateway's own answers.

use std::cell::RefCell;

use crate::auth::jwt::header_str;
use crate::forward::Peer;
use crate::lean::head::Head;
use crate::plugins::Admitted;
use crate::reject::Rejection;
use crate::snapshot::{Live, Route};

fn header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The upstream request head for an admitted lean request: the target
/// under the service's path, the client's headers but `Connection`, `Host`
/// when replaced, `X-Forwarded-*` and the caller headers, then those set
/// by the gateway — what [`crate::forward::forward`] sends, header order
/// aside.
pub fn upstream_head(
    out: &mut Vec<u8>,
    head: &Head<'_, '_>,
    (route, prefix): (&Route, usize),
    admitted: Admitted,
    live: &Live,
    peer: &Peer,
) {
    out.clear();
    out.extend_from_slice(head.method.as_str().as_bytes());
    out.push(b' ');
    if route.upstream.path.is_empty() && (!route.strip_path || prefix == 0) {
        out.extend_from_slice(head.target.as_bytes());
    } else {
        crate::forward::push_target(out, route, prefix, head.path, head.query);
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let set_host = (!route.preserve_host || !head.has_host) && route.upstream.host_header.is_some();
    let caller = route.jwt.is_some() || route.acl.is_some();
    let original_host = head.get("host");
    let prev_xff = head.get("x-forwarded-for");
    for h in head.headers {
        let n = h.name;
        let dropped = n.eq_ignore_ascii_case("connection")
            || (set_host && n.eq_ignore_ascii_case("host"))
            || n.eq_ignore_ascii_case("x-forwarded-for")
            || n.eq_ignore_ascii_case("x-forwarded-proto")
            || n.eq_ignore_ascii_case("x-forwarded-port")
            || (original_host.is_some() && n.eq_ignore_ascii_case("x-forwarded-host"))
            || (caller
                && crate::forward::CALLER
                    .iter()
                    .any(|c| n.eq_ignore_ascii_case(c.as_str())));
        if !dropped {
            header(out, n.as_bytes(), h.value);
        }
    }
    if set_host && let Some(v) = &route.upstream.host_header {
        header(out, b"host", v.as_bytes());
    }
    // Only the first X-Forwarded-For is extended, as the HeaderMap path's `get`.
    match prev_xff.and_then(header_str) {
        Some(prev) => {
            out.extend_from_slice(b"x-forwarded-for: ");
            out.extend_from_slice(prev.as_bytes());
            out.extend_from_slice(b", ");
            out.extend_from_slice(peer.ip_header.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        None => header(out, b"x-forwarded-for", peer.ip_header.as_bytes()),
    }
    let proto: &[u8] = if live.https { b"https" } else { b"http" };
    header(out, b"x-forwarded-proto", proto);
    if let Some(host) = original_host {
        header(out, b"x-forwarded-host", host);
    }
    header(out, b"x-forwarded-port", live.port.as_bytes());
    if let Some(c) = &admitted.caller {
        for (n, v) in &c.consumer().headers {
            header(out, n.as_str().as_bytes(), v.as_bytes());
        }
        match c.credential() {
            Some(cred) => {
                if let Some(v) = &cred.key_header {
                    header(out, b"x-credential-identifier", v.as_bytes());
                }
            }
            None => header(out, b"x-anonymous-consumer", b"true"),
        }
    }
    if let Some(g) = admitted.groups
        && let Ok(v) = http::HeaderValue::from_str(&g)
    {
        header(out, b"x-consumer-groups", v.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

thread_local! {
    /// The `Date` value and the second it is for: formatted once a second per thread.
    static DATE: RefCell<(u64, [u8; 29])> = const { RefCell::new((u64::MAX, [0; 29])) };
}

/// `date: <IMF-fixdate>\r\n`, as hyper adds to every response without one.
pub fn date(out: &mut Vec<u8>) {
    let now = std::time::SystemTime::now();
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with_borrow_mut(|(at, text)| {
        if *at != secs {
            let s = httpdate::fmt_http_date(now);
            if s.len() == text.len() {
                text.copy_from_slice(s.as_bytes());
                *at = secs;
            }
        }
        header(out, b"date", &text[..]);
    });
}

/// The status line: the upstream's own reason phrase, as hyper keeps it.
pub fn status_line(out: &mut Vec<u8>, code: u16, reason: &str) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(itoa3(code).as_slice());
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn itoa3(code: u16) -> [u8; 3] {
    let c = code.min(999);
    [
        b'0' + (c / 100) as u8,
        b'0' + (c / 10 % 10) as u8,
        b'0' + (c % 10) as u8,
    ]
}

/// The gateway's own answer (a refusal, or a failed forward): Kong's
/// status, exact body and `WWW-Authenticate`, as [`crate::upstream::rejection`].
pub fn own(out: &mut Vec<u8>, r: &Rejection, close: bool) -> u16 {
    let (status, body, www) = r.response_parts();
    out.clear();
    status_line(
        out,
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
    );
    header(out, b"content-type", b"application/json; charset=utf-8");
    if let Some(w) = www.and_then(|w| http::HeaderValue::from_str(&w).ok()) {
        header(out, b"www-authenticate", w.as_bytes());
    }
    header(out, b"content-length", body.len().to_string().as_bytes());
    if close {
        header(out, b"connection", b"close");
    }
    date(out);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&body);
    status.as_u16()
}

/// The names a response's `Connection` headers list, found once per
/// response (usually none, and then nothing is allocated).
pub fn connection_named<'a>(headers: &[httparse::Header<'a>]) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("connection"))
        .filter_map(|h| header_str(h.value))
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect()
}

/// Whether a response header is hop-by-hop, or named by its `Connection`
/// (`named`, from [`connection_named`]).
pub fn hop_by_hop(name: &str, named: &[&str]) -> bool {
    // The one list hyper's path strips too.
    crate::upstream::HOP_BY_HOP
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h.as_str()))
        || named.iter().any(|t| t.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    #[test]
    fn status_codes_are_three_digits() {
        assert_eq!(&super::itoa3(200), b"200");
        assert_eq!(&super::itoa3(504), b"504");
        assert_eq!(&super::itoa3(101), b"101");
    }
}
