//! A request head as the lean path reads it: parsed in place by `httparse`
//! (the parser hyper itself uses, with the same defaults), and the test of
//! whether the lean path may serve it. Anything it is not sure of — a body,
//! a hop-by-hop header other than `Connection: keep-alive|close`, HTTP/1.0,
//! a target that is not plain origin-form, a head near a limit — is
//! [`Parsed::Defer`]red to hyper, which then serves the connection to its
//! end. So a request either takes the path hyper would have taken, or one
//! whose every accepted input hyper accepts too (the differential test).

use crate::auth::jwt::{HeaderSource, header_str};

/// hyper's default header count.
pub const MAX_HEADERS: usize = 100;

/// Heads longer than this go to hyper (it holds ~400 KB and answers
/// 414/431 itself): the lean path's buffer stays small.
pub const MAX_HEAD: usize = 16 << 10;

/// One parsed request head, borrowed from the connection's buffer.
#[derive(Debug)]
pub struct Head<'h, 'b> {
    pub method: http::Method,
    /// The request target as sent (origin-form).
    pub target: &'b str,
    /// The target up to `?`.
    pub path: &'b str,
    pub query: Option<&'b str>,
    pub headers: &'h [httparse::Header<'b>],
    /// The head's length in the buffer, its final blank line included.
    pub len: usize,
    /// `Connection: close`.
    pub close: bool,
    /// The `Host` value, when it is visible ASCII (as `HeaderValue::to_str`).
    pub host: Option<&'b str>,
    /// Whether the client sent a `Host` at all.
    pub has_host: bool,
}

/// What the buffer holds.
#[derive(Debug)]
pub enum Parsed<'h, 'b> {
    /// The head is not complete yet.
    Partial,
    /// hyper serves this request and the rest of the connection.
    Defer,
    Lean(Head<'h, 'b>),
}

/// Request headers the lean path leaves to hyper: body framing, hop-by-hop
/// headers that change the exchange, and `close` (which `Connection: close`
/// names, so hyper's hop-by-hop strip would remove it).
const DEFERRED: [&str; 9] = [
    "transfer-encoding",
    "upgrade",
    "expect",
    "te",
    "trailer",
    "keep-alive",
    "proxy-connection",
    "http2-settings",
    "close",
];

/// Bytes of a target the lean path takes: RFC 3986's unreserved, reserved
/// (but `#`) and `%`. Anything else (quotes, braces, obs-text…) is hyper's.
fn target_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~:/?[]@!$&'()*+,;=%".contains(&b)
}

fn value_ok(v: &[u8]) -> bool {
    v.iter().all(|&b| (b >= 0x20 && b != 0x7f) || b == b'\t')
}

/// nginx's `large_client_header_buffers 4 LINE`, as both cores apply it:
/// one header line (name, `: `, value) over LINE, or all of them with their
/// CRLFs over 4 × LINE, is a 431. LINE 0: no cap.
pub(crate) struct HeaderBudget {
    line: usize,
    total: usize,
}

impl HeaderBudget {
    pub(crate) fn new(line: usize) -> HeaderBudget {
        HeaderBudget { line, total: 0 }
    }

    /// Counts one header; true once the head is over the cap.
    pub(crate) fn over(&mut self, name: usize, value: usize) -> bool {
        let len = name + 2 + value;
        self.total += len + 2;
        self.line != 0 && (len > self.line || self.total > 4 * self.line)
    }
}

/// Parses the head at the start of `buf`, with `storage` for its headers;
/// `max_line` is the 431 cap on one header line (0: none), which the
/// lean path leaves to hyper's path to answer.
pub fn parse<'h, 'b>(
    buf: &'b [u8],
    storage: &'h mut [httparse::Header<'b>; MAX_HEADERS],
    max_line: usize,
) -> Parsed<'h, 'b> {
    let mut req = httparse::Request::new(storage);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => return Parsed::Partial,
        _ => return Parsed::Defer,
    };
    let (Some(method), Some(target), Some(1)) = (req.method, req.path, req.version) else {
        return Parsed::Defer;
    };
    let Ok(method) = http::Method::from_bytes(method.as_bytes()) else {
        return Parsed::Defer;
    };
    if method == http::Method::CONNECT
        || !target.starts_with('/')
        || !target.bytes().all(target_byte)
    {
        return Parsed::Defer;
    }
    let headers: &'h [httparse::Header<'b>] = req.headers;
    let (mut close, mut host, mut has_host) = (false, None, false);
    let (mut seen_connection, mut seen_length) = (false, false);
    let mut budget = HeaderBudget::new(max_line);
    for h in headers {
        if budget.over(h.name.len(), h.value.len()) || !value_ok(h.value) {
            return Parsed::Defer;
        }
        let name = h.name;
        if DEFERRED.iter().any(|d| name.eq_ignore_ascii_case(d)) {
            return Parsed::Defer;
        }
        if name.eq_ignore_ascii_case("content-length") {
            if seen_length || h.value != b"0" {
                return Parsed::Defer;
            }
            seen_length = true;
        } else if name.eq_ignore_ascii_case("connection") {
            close = h.value.eq_ignore_ascii_case(b"close");
            if seen_connection || !(close || h.value.eq_ignore_ascii_case(b"keep-alive")) {
                return Parsed::Defer;
            }
            seen_connection = true;
        } else if name.eq_ignore_ascii_case("host") {
            if has_host {
                return Parsed::Defer;
            }
            has_host = true;
            host = header_str(h.value);
        }
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    Parsed::Lean(Head {
        method,
        target,
        path,
        query,
        headers,
        len,
        close,
        host,
        has_host,
    })
}

impl Head<'_, '_> {
    /// The first value of the header `name` (any case).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }
}

impl HeaderSource for Head<'_, '_> {
    fn first(&self, name: &http::HeaderName) -> Option<&[u8]> {
        self.get(name.as_str())
    }

    fn each<'a>(&'a self, name: &http::HeaderName, f: &mut dyn FnMut(&'a [u8])) {
        for h in self.headers {
            if h.name.eq_ignore_ascii_case(name.as_str()) {
                f(h.value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lean(raw: &str) -> bool {
        let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
        matches!(parse(raw.as_bytes(), &mut storage, 8192), Parsed::Lean(_))
    }

    #[test]
    fn the_plain_case_is_lean_and_everything_unusual_is_hyper_s() {
        assert!(lean("GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(lean(
            "GET / HTTP/1.1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        ));
        for deferred in [
            "GET / HTTP/1.0\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
            "POST / HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "GET / HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            "GET http://x/ HTTP/1.1\r\n\r\n",
            "GET /a#b HTTP/1.1\r\n\r\n",
            "GET /\"q\" HTTP/1.1\r\n\r\n",
            "CONNECT x:1 HTTP/1.1\r\n\r\n",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
        ] {
            assert!(!lean(deferred), "{deferred:?} should be hyper's");
        }
        let long = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(8190));
        assert!(!lean(&long), "a header line over the cap is hyper's 431");
    }

    #[test]
    fn a_partial_head_waits_and_an_endless_one_is_deferred() {
        let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\nHo", &mut storage, 8192),
            Parsed::Partial
        ));
        let endless = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(MAX_HEAD));
        assert!(matches!(
            parse(endless.as_bytes(), &mut storage, 0),
            Parsed::Defer
        ));
    }
}
