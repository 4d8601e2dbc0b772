//! The lean HTTP/1 path against hyper's, differentially: the same request
//! bytes go to a gateway on each core, in front of one upstream that
//! records what it receives. Both must give the same answer (status, or no
//! response) and forward the same request upstream (its line, headers as a
//! set of lowercase names with their values in order, and body).

use std::time::Duration;

use gateway::lean::differential::Pair;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SECRET: &str = "lean-differential-secret-0123456789";

fn config(up: std::net::SocketAddr) -> String {
    format!(
        r#"
_format_version: "3.0"
services:
- name: up
  url: http://{up}
  routes:
  - {{ name: open, paths: ["/open"], strip_path: false }}
  - name: jwt
    paths: ["/jwt"]
    plugins: [{{ name: jwt }}]
  - name: strip
    paths: ["/strip"]
    strip_path: true
    preserve_host: true
    plugins: [{{ name: jwt }}, {{ name: acl, config: {{ allow: [gold] }} }}]
consumers:
- id: 6d3a1c7e-0000-4000-8000-000000000001
  username: web
  custom_id: web-1
  jwt_secrets: [{{ key: web-key, algorithm: HS256, secret: {SECRET} }}]
  acls: [{{ group: gold }}]
"#
    )
}

fn token(iss: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({ "iss": iss, "exp": crate::support::now() + 3600 }),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

/// A request built from parts that each path treats differently: mostly
/// shapes the lean path takes (so that its forwarding is compared), with
/// one odd part in about every other request (so that its hand-over is).
fn request() -> impl Strategy<Value = Vec<u8>> {
    let method = prop_oneof![
        6 => prop::sample::select(vec!["GET", "HEAD", "DELETE", "OPTIONS", "POST", "PUT", "TRACE"]),
        1 => prop::sample::select(vec!["get", "FOO", "CONNECT", "G(T", "PATCH"]),
    ];
    let target = prop_oneof![
        6 => prop::sample::select(vec![
            "/open", "/open/a", "/open?x=1&y", "/jwt/a", "/jwt?jwt=VALID", "/strip/b?c=d",
            "/strip", "/none", "//open", "/open/%7e", "/open/a%zz", "/open/;p=1", "/open/..",
            "/open/a:b@c!$&'()*+,=", "/open?", "/open/[x]",
        ]),
        1 => prop::sample::select(vec![
            "/open#frag", "/open/\"q\"", "/open/{x}", "*", "http://h/open", "/open/a b",
            "/open/\u{e9}", "/open/<x>", "/open/a|b", "/open/a^b", "/open/`",
        ]),
    ];
    let version = prop_oneof![
        8 => Just("HTTP/1.1"),
        1 => prop::sample::select(vec!["HTTP/1.0", "HTTP/2.0", "http/1.1", "HTTP/1.2"]),
    ];
    let header = prop_oneof![
        12 => prop::sample::select(vec![
            "Host: example.test",
            "host: other.test:8080",
            "Host: bad\u{80}host",
            "Content-Length: 0",
            "Connection: close",
            "Connection: Keep-Alive",
            "Authorization: Bearer VALID",
            "authorization: bearer   VALID",
            "Authorization: Bearer OTHER",
            "Authorization: Basic abc",
            "Cookie: jwt=VALID",
            "X-Forwarded-For: 10.0.0.1",
            "X-Forwarded-For: 10.0.0.2",
            "X-Forwarded-Host: evil.test",
            "X-Forwarded-Proto: https",
            "X-Forwarded-Port: 1",
            "X-Consumer-ID: spoofed",
            "x-consumer-groups: admin",
            "X-Anonymous-Consumer: true",
            "X-Credential-Identifier: someone",
            "X-Odd: caf\u{e9}",
            "X-Tab: a\tb",
            "X-Empty:",
            "X-Dup: 1",
            "X-Dup: 2",
            "x-drop: gone",
            "Accept: */*",
        ]),
        1 => prop::sample::select(vec![
            "Content-Length: 00",
            "Content-Length:  0 ",
            "Content-Length: 3",
            "Transfer-Encoding: chunked",
            "Connection: upgrade",
            "Connection: close, x-drop",
            "Upgrade: websocket",
            "Expect: 100-continue",
            "Keep-Alive: timeout=5",
            "TE: trailers",
            "X-Space : x",
            "Bad Name: x",
            " X-Lead: x",
            "X-Fold: a\r\n b",
            "X-Ctl: a\u{1}b",
            "X-Del: a\u{7f}b",
        ]),
    ];
    let eol = prop_oneof![6 => Just("\r\n"), 1 => Just("\n")];
    let body = prop_oneof![6 => Just(""), 1 => prop::sample::select(vec!["abc", "0\r\n\r\n"])];
    (
        method,
        target,
        version,
        prop::collection::vec(header, 0..6),
        eol,
        body,
    )
        .prop_map(|(m, t, v, hs, eol, body)| {
            let valid = token("web-key");
            let other = token("nobody");
            let mut raw = format!("{m} {t} {v}{eol}");
            for h in hs {
                raw.push_str(&h.replace("VALID", &valid).replace("OTHER", &other));
                raw.push_str(eol);
            }
            raw.push_str(eol);
            raw.push_str(body);
            raw.into_bytes()
        })
}

/// Requests the generator reaches only by luck, always checked.
fn fixed() -> Vec<String> {
    let valid = token("web-key");
    vec![
        "GET /open HTTP/1.1\r\nHost: a\r\n\r\n".into(),
        format!(
            "GET /jwt/x?q=1 HTTP/1.1\r\nAuthorization: Bearer {valid}\r\nX-Consumer-ID: spoof\r\n\r\n"
        ),
        format!(
            "GET /strip/x HTTP/1.1\r\nHost: kept.test\r\nAuthorization: Bearer {valid}\r\n\r\n"
        ),
        format!("GET /jwt HTTP/1.1\r\nCookie: a=b\r\n\r\n"),
        "POST /open HTTP/1.1\r\nContent-Length: 0\r\n\r\n".into(),
        "POST /open HTTP/1.1\r\n\r\n".into(),
        "HEAD /open HTTP/1.1\r\n\r\n".into(),
        "GET /open HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2\r\n\r\n".into(),
        "GET /open HTTP/1.1\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            .into(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lean_path_answers_and_forwards_as_hyper_does() {
    let pair = Pair::new(config).await;
    let mut cases: Vec<Vec<u8>> = fixed().into_iter().map(String::into_bytes).collect();
    let mut runner = proptest::test_runner::TestRunner::new_with_rng(
        proptest::test_runner::Config::default(),
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    let strategy = request();
    let n: usize = std::env::var("LEAN_DIFF_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    for _ in 0..n {
        cases.push(strategy.new_tree(&mut runner).unwrap().current());
    }
    let mut answered = 0;
    for raw in &cases {
        let [lean, hyper] = pair.both(raw).await;
        assert_eq!(
            lean,
            hyper,
            "lean (left) and hyper (right) differ on {:?}",
            String::from_utf8_lossy(raw)
        );
        answered += usize::from(lean.0 == 200);
    }
    // The comparison means something only if many requests got through,
    // and many of them on the lean path.
    let lean = counter(&pair.gateways[0], "gateway_lean_requests_total");
    eprintln!(
        "{} requests: {answered} answered 200, {lean} on the lean path",
        cases.len()
    );
    assert!(
        answered >= cases.len() / 10,
        "{answered} of {} answered 200",
        cases.len()
    );
    assert!(
        lean >= cases.len() / 10,
        "the lean path took {lean} of {}",
        cases.len()
    );
    assert_eq!(counter(&pair.gateways[1], "gateway_lean_requests_total"), 0);
}

fn counter(gw: &gateway::Handle, name: &str) -> usize {
    let text = gw.metrics_text();
    let line = text.lines().find(|l| l.starts_with(&format!("{name} ")));
    line.and_then(|l| l.split(' ').nth(1)?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_pipelining_and_a_handover_to_hyper_on_one_connection() {
    let pair = Pair::new(config).await;
    let gw = &pair.gateways[0];
    let mut s = TcpStream::connect(gw.proxy_addr()).await.unwrap();
    // Two lean requests pipelined, then one with a body (hyper's from here),
    // then a lean-shaped one that hyper now serves.
    let raw = b"GET /open/1 HTTP/1.1\r\nHost: a\r\n\r\nGET /open/2 HTTP/1.1\r\nHost: a\r\n\r\n\
POST /open/3 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc\
GET /open/4 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    s.write_all(raw).await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&got);
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 4, "{text}");
    let seen = pair.seen.lock().unwrap().clone();
    let lines: Vec<&str> = seen.iter().map(|s| s.lines().next().unwrap()).collect();
    assert_eq!(
        lines,
        [
            "GET /open/1 HTTP/1.1",
            "GET /open/2 HTTP/1.1",
            "POST /open/3 HTTP/1.1",
            "GET /open/4 HTTP/1.1"
        ]
    );
    assert!(seen[2].ends_with("\"abc\""), "{}", seen[2]);
    assert_eq!(counter(gw, "gateway_lean_requests_total"), 2);
    assert_eq!(counter(gw, "gateway_lean_handovers_total"), 1);
}

/// An upstream that answers each request with the raw response its path
/// names, and closes after `/close`.
async fn scripted() -> std::net::SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let mut storage = [httparse::EMPTY_HEADER; 64];
                    let mut req = httparse::Request::new(&mut storage);
                    let (n, path) = match req.parse(&buf) {
                        Ok(httparse::Status::Complete(n)) => (n, req.path.unwrap_or("").to_owned()),
                        _ => {
                            if s.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                                return;
                            }
                            continue;
                        }
                    };
                    buf.drain(..n);
                    let reply: &[u8] = match path.as_str() {
                        "/chunked" => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 99\r\nTrailer: x-t\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nx-t: 1\r\n\r\n",
                        "/close" => b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbye",
                        "/early" => b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                        "/nobody" => b"HTTP/1.1 204 No Content\r\nX-Up: 1\r\n\r\n",
                        "/badlength" => b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
                        "/reason" => b"HTTP/1.1 299 Very Fine\r\nContent-Length: 0\r\nDate: Mon, 07 Dec 2026 00:00:00 GMT\r\n\r\n",
                        _ => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                    };
                    if s.write_all(reply).await.is_err() || path == "/close" {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// Sends `raw` on `s` and reads one response: its head and its body,
/// decoded by the framing the client sees.
async fn exchange(s: &mut TcpStream, raw: &str, buf: &mut Vec<u8>) -> (String, Vec<u8>) {
    s.write_all(raw.as_bytes()).await.unwrap();
    let head_len = loop {
        let mut storage = [httparse::EMPTY_HEADER; 64];
        if let Ok(httparse::Status::Complete(n)) = httparse::Response::new(&mut storage).parse(buf)
        {
            break n;
        }
        assert!(
            s.read_buf(buf).await.unwrap() > 0,
            "closed before a head: {buf:?}"
        );
    };
    let head = String::from_utf8_lossy(&buf[..head_len]).into_owned();
    buf.drain(..head_len);
    let lower = head.to_ascii_lowercase();
    let mut body = Vec::new();
    if head.starts_with("HTTP/1.1 204") || raw.starts_with("HEAD") {
        // No body, whatever the head says.
    } else if lower.contains("transfer-encoding: chunked") {
        loop {
            while !buf.windows(2).any(|w| w == b"\r\n") {
                assert!(
                    s.read_buf(buf).await.unwrap() > 0,
                    "closed in a chunk size: {head}"
                );
            }
            let line_end = buf.windows(2).position(|w| w == b"\r\n").unwrap();
            let line = String::from_utf8_lossy(&buf[..line_end]).into_owned();
            let size = usize::from_str_radix(line.split(';').next().unwrap().trim(), 16).unwrap();
            buf.drain(..line_end + 2);
            if size == 0 {
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && !buf.starts_with(b"\r\n") {
                    assert!(
                        s.read_buf(buf).await.unwrap() > 0,
                        "closed in trailers: {head}"
                    );
                }
                let end = if buf.starts_with(b"\r\n") {
                    2
                } else {
                    buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4
                };
                buf.drain(..end);
                break;
            }
            while buf.len() < size + 2 {
                assert!(
                    s.read_buf(buf).await.unwrap() > 0,
                    "closed in a chunk: {head}"
                );
            }
            body.extend_from_slice(&buf[..size]);
            buf.drain(..size + 2);
        }
    } else if let Some(l) = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
    {
        let n: usize = l.trim().parse().unwrap();
        while buf.len() < n {
            assert!(
                s.read_buf(buf).await.unwrap() > 0,
                "closed in the body: {head}"
            );
        }
        body = buf.drain(..n).collect();
    } else {
        s.read_to_end(buf).await.unwrap();
        body = std::mem::take(buf);
    }
    (head, body)
}

#[tokio::test]
async fn upstream_framings_are_relayed_exactly_on_a_kept_alive_connection() {
    let up = scripted().await;
    let yaml = format!(
        "_format_version: \"3.0\"\nservices:\n- name: up\n  url: http://{up}\n  routes:\n  \
         - {{ name: all, paths: [\"/\"], strip_path: false }}\n"
    );
    let snap = gateway::config::Declarative::parse(&yaml, "l.yml")
        .unwrap()
        .compile()
        .unwrap();
    let gw = gateway::spawn_core(
        snap,
        "127.0.0.1:0".parse().unwrap(),
        gateway::limits(),
        gateway::Core::Lean,
    )
    .await
    .unwrap();
    let mut s = TcpStream::connect(gw.proxy_addr()).await.unwrap();
    let mut buf = Vec::new();
    let get = |p: &str| format!("GET {p} HTTP/1.1\r\nHost: a\r\n\r\n");
    let (head, body) = exchange(&mut s, &get("/chunked"), &mut buf).await;
    assert_eq!(body, b"hello world", "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(
        !lower.contains("content-length"),
        "a length beside chunked is dropped: {head}"
    );
    assert!(!lower.contains("trailer:"), "hop-by-hop: {head}");
    assert!(lower.contains("\r\ndate: "), "a Date is added: {head}");
    let (head, body) = exchange(&mut s, &get("/early"), &mut buf).await;
    assert!(
        head.starts_with("HTTP/1.1 200 OK\r\n"),
        "1xx skipped: {head}"
    );
    assert_eq!(body, b"ok");
    let (head, body) = exchange(&mut s, &get("/nobody"), &mut buf).await;
    assert!(
        head.starts_with("HTTP/1.1 204 No Content\r\n") && head.contains("X-Up: 1"),
        "{head}"
    );
    assert!(body.is_empty());
    let (head, _) = exchange(&mut s, &get("/reason"), &mut buf).await;
    assert!(head.starts_with("HTTP/1.1 299 Very Fine\r\n"), "{head}");
    assert_eq!(
        head.matches("Date:").count() + head.matches("date:").count(),
        1,
        "{head}"
    );
    let (head, body) = exchange(
        &mut s,
        "HEAD /chunked HTTP/1.1\r\nHost: a\r\n\r\n",
        &mut buf,
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(body.is_empty());
    let (head, _) = exchange(&mut s, &get("/badlength"), &mut buf).await;
    assert!(
        head.starts_with("HTTP/1.1 502"),
        "a length that is no number is the upstream's fault: {head}"
    );
    let (head, body) = exchange(&mut s, &get("/plain"), &mut buf).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, b"ok");
    // To the close: relayed, then this connection closes too.
    let (head, body) = exchange(&mut s, &get("/close"), &mut buf).await;
    assert!(
        head.to_ascii_lowercase().contains("connection: close"),
        "{head}"
    );
    assert_eq!(body, b"bye");
    assert_eq!(counter(&gw, "gateway_lean_handovers_total"), 0);
}
