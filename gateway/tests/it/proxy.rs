//! Forwarding: keep-alive reuse across upstream closes, streamed bodies both
//! ways, and Kong's 502/504.

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

#[tokio::test]
async fn reuse_streaming_timeouts_and_refusals() {
    let program = mock_upstream::Program {
        close_every: Some(3.try_into().unwrap()),
        ..mock_upstream::Program::default()
    };
    let up = mock_upstream::spawn(mock_upstream::Config {
        program,
        ..mock_upstream::Config::default()
    })
    .await
    .unwrap();
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let yaml = format!(
        r#"
_format_version: "3.0"
services:
- name: up
  url: {up}
  read_timeout: 150
  routes: [{{ name: up, paths: ["/"] }}]
- name: dead
  url: http://{dead}
  connect_timeout: 500
  routes: [{{ name: dead, paths: ["/dead"] }}]
"#,
        up = up.base_url()
    );
    let gw = crate::support::spawn_yaml(&yaml).await;
    let c = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let get = |path: &str, headers: &[(&str, &str)], body: Bytes| {
        let mut req = http::Request::post(format!("{}{path}", gw.proxy_url()));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        c.request(req.body(Full::new(body)).unwrap())
    };
    // The upstream closes every third connection use: every request still succeeds.
    for _ in 0..10 {
        let r = get("/x", &[], Bytes::new()).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.into_body().collect().await.unwrap().to_bytes(), "ok");
    }
    assert!(
        up.stats().connections >= 4,
        "{} connections",
        up.stats().connections
    );
    // Large bodies stream both ways.
    let r = get("/big", &[("x-mock-size", "1MiB")], Bytes::new())
        .await
        .unwrap();
    assert_eq!(
        r.into_body().collect().await.unwrap().to_bytes().len(),
        1 << 20
    );
    let r = get("/echo", &[], Bytes::from(vec![7u8; 100_000]))
        .await
        .unwrap();
    let echo: serde_json::Value =
        serde_json::from_slice(&r.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(echo["body_length"], 100_000);
    // Kong's messages for a slow and a dead upstream.
    let r = get("/slow", &[("x-mock-latency", "400ms")], Bytes::new())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::GATEWAY_TIMEOUT);
    let body = r.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, r#"{"message":"The upstream server is timing out"}"#);
    let r = get("/dead", &[], Bytes::new()).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    let body = r.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        body,
        r#"{"message":"An invalid response was received from the upstream server"}"#
    );
    // After all that, the pool still serves.
    assert_eq!(
        get("/x", &[], Bytes::new()).await.unwrap().status(),
        StatusCode::OK
    );
}

/// `h2c://` (ours) and Kong's `protocol: grpc` reach the upstream over
/// HTTP/2 without TLS, multiplexed on one connection, bodies both ways.
#[tokio::test]
async fn h2c_upstreams() {
    let up = mock_upstream::spawn(mock_upstream::Config::default())
        .await
        .unwrap();
    let addr = up.addr();
    let yaml = format!(
        r#"
_format_version: "3.0"
services:
- name: h2
  url: h2c://{addr}
  routes: [{{ name: h2, paths: ["/h2"] }}]
- name: grpc
  protocol: grpc
  host: "{ip}"
  port: {port}
  routes: [{{ name: grpc, paths: ["/grpc"] }}]
"#,
        ip = addr.ip(),
        port = addr.port()
    );
    let gw = crate::support::spawn_yaml(&yaml).await;
    let c = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let prefix = if i % 2 == 0 { "/h2" } else { "/grpc" };
        let req = http::Request::post(format!("{}{prefix}/echo", gw.proxy_url()))
            .body(Full::new(Bytes::from(vec![1u8; 50_000])))
            .unwrap();
        tasks.push(tokio::spawn(c.request(req)));
    }
    for t in tasks {
        let r = t.await.unwrap().unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            r.version(),
            http::Version::HTTP_11,
            "to the client: HTTP/1.1"
        );
        let echo: serde_json::Value =
            serde_json::from_slice(&r.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(echo["version"], "HTTP/2.0");
        assert_eq!(echo["body_length"], 50_000);
        assert_eq!(echo["path"], "/echo");
        assert!(echo["headers"]["x-forwarded-for"].is_string(), "{echo}");
    }
    assert_eq!(up.stats().connections, 2, "one h2c connection per service");
    // A bad scheme names the field.
    let bad = "_format_version: \"3.0\"\nservices:\n- name: s\n  url: ftp://x\n";
    let e = gateway::config::Declarative::parse(bad, "b.yml")
        .unwrap()
        .compile()
        .unwrap_err()
        .to_string();
    assert!(e.contains("services[0]") && e.contains("protocol"), "{e}");
}

/// The whole request path with no socket at all: the client talks to the
/// gateway over a duplex stream, and the gateway dials its upstream in
/// memory (what `benches/gateway_inprocess` measures).
#[tokio::test]
async fn in_memory_without_network() {
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    let dial = gateway::upstream::Dial::Memory(std::sync::Arc::new(|| {
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(
            TokioIo::new(theirs),
            service_fn(|req: http::Request<hyper::body::Incoming>| async move {
                let who = req
                    .headers()
                    .get("x-consumer-username")
                    .cloned()
                    .unwrap_or(http::HeaderValue::from_static("-"));
                Ok::<_, std::convert::Infallible>(
                    http::Response::builder()
                        .header("x-saw", who)
                        .body(Full::new(Bytes::from_static(b"ok")))
                        .unwrap(),
                )
            }),
        ));
        ours
    }));
    let yaml = "_format_version: \"3.0\"\nservices:\n- name: up\n  url: http://unreachable.invalid:1\n  routes: [{ name: all, paths: [\"/\"], plugins: [{ name: jwt }] }]\nconsumers:\n- username: mem\n  jwt_secrets: [{ key: mem-key, secret: mem-secret }]\n";
    let mut decl = gateway::config::Declarative::parse(yaml, "mem.yml").unwrap();
    decl.dial = Some(dial);
    let gw = gateway::spawn(decl.compile().unwrap(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (client_end, gw_end) = tokio::io::duplex(64 * 1024);
    gw.serve_connection(gw_end, "10.0.0.1:5000".parse().unwrap());
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(client_end))
        .await
        .unwrap();
    tokio::spawn(conn);
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &serde_json::json!({"iss": "mem-key"}),
        &jsonwebtoken::EncodingKey::from_secret(b"mem-secret"),
    )
    .unwrap();
    for (auth, status, saw) in [
        (format!("Bearer {token}"), 200, Some("mem")),
        ("Bearer x.y.z".to_owned(), 401, None),
        (format!("Bearer {token}"), 200, Some("mem")),
    ] {
        send.ready().await.unwrap();
        let req = http::Request::get("/a")
            .header("host", "mem")
            .header("authorization", auth)
            .body(Full::new(Bytes::new()))
            .unwrap();
        let r = send.send_request(req).await.unwrap();
        assert_eq!(r.status(), status);
        assert_eq!(r.headers().get("x-saw").map(|v| v.to_str().unwrap()), saw);
        r.into_body().collect().await.unwrap();
    }
}

/// An HTTP/1.1 upstream that closes a keep-alive connection idle for 1 s
/// or more when the next request arrives on it, unanswered: the race a
/// real upstream's idle timeout makes (it closes just as the gateway sends),
/// made certain. Answers `ok` otherwise. Returns its base URL.
async fn lazily_closing_upstream() -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut buf, mut last) = (Vec::new(), std::time::Instant::now());
                loop {
                    let mut chunk = [0u8; 4096];
                    let Ok(n @ 1..) = s.read(&mut chunk).await else {
                        return;
                    };
                    buf.extend_from_slice(&chunk[..n]);
                    // Heads only (the test sends no bodies on reused connections it expects served).
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                        let body_len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if buf.len() < end + 4 + body_len {
                            break;
                        }
                        buf.drain(..end + 4 + body_len);
                        if last.elapsed() >= std::time::Duration::from_secs(1) {
                            return; // closed, unanswered
                        }
                        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if s.write_all(ok).await.is_err() {
                            return;
                        }
                        last = std::time::Instant::now();
                    }
                }
            });
        }
    });
    url
}

/// Bursts of 8 concurrent requests (`method`) with gaps swept across 0.9–1.1 s;
/// the failures, described.
async fn bursts(url: &str, method: &str) -> (usize, Vec<String>) {
    let c = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let (mut sent, mut failed) = (0, Vec::new());
    for gap_ms in [900, 1000, 1100] {
        let burst: Vec<_> = (0..8)
            .map(|i| {
                let body = if method == "POST" { "x" } else { "" };
                let req = http::Request::builder()
                    .method(method)
                    .uri(format!("{url}/b{i}"))
                    .body(Full::new(Bytes::from(body)))
                    .unwrap();
                tokio::spawn(c.request(req))
            })
            .collect();
        for r in burst {
            sent += 1;
            match r.await.unwrap() {
                Ok(r) if r.status() == StatusCode::OK => {}
                Ok(r) => failed.push(format!("gap {gap_ms} ms: {}", r.status())),
                Err(e) => failed.push(format!("gap {gap_ms} ms: {e}")),
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(gap_ms)).await;
    }
    (sent, failed)
}

/// An upstream closes idle keep-alive connections after 1 s (Node's default
/// is 5 s, nginx's 75 s) and requests come in bursts whose gaps sweep
/// across that second. An idempotent request that meets a connection being
/// closed is sent again on a fresh one (Kong's `retries`), so none fails; a
/// POST cannot be, unless the pool's idle timeout is set below the
/// upstream's, which retires the connection first.
#[tokio::test]
async fn an_upstream_closing_idle_connections_fails_no_request() {
    let up = lazily_closing_upstream().await;
    let service = |name: &str, extra: &str| {
        format!(
            "- name: {name}\n  url: {up}\n{extra}  routes: [{{ name: {name}, paths: [\"/{name}\"] }}]\n"
        )
    };
    let yaml = format!(
        "_format_version: \"3.0\"\nservices:\n{}{}{}",
        service("plain", ""),
        service("noretry", "  retries: 0\n"),
        service("short", "  keepalive_idle_timeout: 800\n"),
    );
    let gw = crate::support::spawn_yaml(&yaml).await;
    let base = gw.proxy_url();
    let (sent, failed) = bursts(&format!("{base}/plain"), "GET").await;
    assert!(
        failed.is_empty(),
        "{} of {sent} failed: {failed:?}",
        failed.len()
    );
    let (sent, failed) = bursts(&format!("{base}/short"), "POST").await;
    assert!(
        failed.is_empty(),
        "{} of {sent} failed: {failed:?}",
        failed.len()
    );
    // The race is real: without the retry, requests fail.
    let (_, failed) = bursts(&format!("{base}/noretry"), "GET").await;
    assert!(
        failed.iter().all(|f| f.ends_with("502 Bad Gateway")) && failed.len() >= 8,
        "{failed:?}"
    );
    let m = gw.metrics_text();
    let retries: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("gateway_upstream_retries_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(retries >= 8, "{m}");
}
