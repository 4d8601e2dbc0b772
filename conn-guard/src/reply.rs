//! The servers' own error responses: Kong's messages, a JSON body, and
//! spotting hyper's automatic (empty) responses to heads it cannot parse.

/// Makes the JSON body of an error response from its status and message.
pub type ErrorBody = fn(u16, &str) -> Vec<u8>;

/// `{"message":"…"}`.
pub fn json_message(_status: u16, message: &str) -> Vec<u8> {
    format!("{{\"message\":\"{message}\"}}").into_bytes()
}

/// Kong's message for a status it answers itself (kong/error_handlers.lua),
/// and the reason phrase of the status line.
pub fn kong_message(status: u16) -> (&'static str, &'static str) {
    match status {
        400 => ("Bad Request", "Bad request"),
        408 => ("Request Timeout", "Request timeout"),
        411 => ("Length Required", "Length required"),
        413 => ("Payload Too Large", "Payload too large"),
        414 => ("URI Too Long", "URI too long"),
        431 => (
            "Request Header Fields Too Large",
            "Request header or cookie too large",
        ),
        502 => (
            "Bad Gateway",
            "An invalid response was received from the upstream server",
        ),
        503 => (
            "Service Unavailable",
            "The upstream server is currently unavailable",
        ),
        504 => ("Gateway Timeout", "The upstream server is timing out"),
        _ => ("Error", "An unexpected error occurred"),
    }
}

/// A whole HTTP/1.1 error response that closes the connection.
pub fn response(status: u16, body: ErrorBody) -> Vec<u8> {
    let (reason, message) = kong_message(status);
    let body = body(status, message);
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json; charset=utf-8\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    out
}

/// The status of hyper's automatic response to a head it could not parse:
/// `HTTP/1.1 400 Bad Request` (or 414, 431) whose head holds nothing but
/// `connection: close`, `content-length: 0` and `date` (hyper 1's encoding).
pub fn automatic_status(buf: &[u8]) -> Option<u16> {
    const LINES: [(&[u8], u16); 3] = [
        (b"HTTP/1.1 400 Bad Request\r\n", 400),
        (b"HTTP/1.1 414 URI Too Long\r\n", 414),
        (b"HTTP/1.1 431 Request Header Fields Too Large\r\n", 431),
    ];
    let (line, status) = LINES.iter().find(|(l, _)| buf.starts_with(l))?;
    let rest = &buf[line.len()..];
    let end = rest.windows(4).position(|w| w == b"\r\n\r\n")?;
    let mut empty_body = false;
    for h in rest[..end].split(|b| *b == b'\n') {
        let h = h.strip_suffix(b"\r").unwrap_or(h);
        match h {
            b"content-length: 0" => empty_body = true,
            b"connection: close" => {}
            _ if h.starts_with(b"date: ") => {}
            _ => return None,
        }
    }
    empty_body.then_some(*status)
}

#[cfg(test)]
mod tests {
    use super::automatic_status;

    #[test]
    fn only_hypers_bare_refusals_are_recognised() {
        let hyper = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: Wed, 02 Dec 2026 10:00:00 GMT\r\n\r\n";
        assert_eq!(automatic_status(hyper), Some(400));
        let with_type =
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(automatic_status(with_type), None);
        let with_body = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 5\r\n\r\nhello";
        assert_eq!(automatic_status(with_body), None);
        assert_eq!(
            automatic_status(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"),
            None
        );
    }
}
