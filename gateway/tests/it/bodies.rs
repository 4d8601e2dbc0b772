//! A request body that stops arriving (nginx's `client_body_timeout`): the
//! gateway, its Admin API and the mock upstream each answer 408 and close,
//! the gateway counts it as the client's fault and releases the upstream
//! connection; an Admin API body declared over the cap is 413 at once.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `head` and part of a body, then nothing: what comes back until
/// the server closes (or 10 s), and how long it took.
async fn stall(addr: SocketAddr, head: &str) -> (String, Duration) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let t0 = Instant::now();
    s.write_all(head.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut got)).await;
    (String::from_utf8_lossy(&got).into_owned(), t0.elapsed())
}

/// Sends `head` and part of a body, then nothing: the status line, and how
/// long it took to come (the connection may stay open behind it).
async fn status_line(addr: SocketAddr, head: &str) -> (String, Duration) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let t0 = Instant::now();
    s.write_all(head.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.windows(2).any(|w| w == b"\r\n") {
        match tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await {
            Ok(Ok(n @ 1..)) => got.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), t0.elapsed())
}

const STALLED: &str = "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhello";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_request_body_is_408_and_closed_on_every_server() {
    let timeout = Duration::from_millis(500);
    // The mock on its own.
    let mock = mock_upstream::spawn(mock_upstream::Config {
        body_timeout: timeout,
        ..mock_upstream::Config::default()
    })
    .await
    .unwrap();
    let addr: SocketAddr = mock
        .base_url()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let (got, took) = stall(addr, STALLED).await;
    assert!(got.starts_with("HTTP/1.1 408 "), "{got}");
    assert!(took < Duration::from_secs(3), "{took:?}");

    // Our gateway (body timeout 500 ms) in front of a mock that would wait
    // 60 s for the body: the client's stall is the client's fault.
    let up = mock_upstream::spawn(mock_upstream::Config::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kong = format!(
        "_format_version: \"3.0\"\nservices:\n- name: up\n  url: {}\n  routes: [{{ name: up, paths: [\"/\"] }}]\n",
        up.base_url()
    );
    let gw = gateway::start(gateway::Options {
        config: gateway::config::Declarative::parse(&kong, "k.yml").unwrap(),
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: Some("127.0.0.1:0".parse().unwrap()),
        state_file: Some(dir.path().join("state.db")),
        tls: None,
        limits: conn_guard::Limits {
            body_timeout: timeout,
            ..gateway::limits()
        },
        admin_apply_delay: Duration::ZERO,
        core: gateway::Core::default(),
    })
    .await
    .unwrap();
    let (got, took) = stall(gw.proxy_addr(), STALLED).await;
    assert!(got.starts_with("HTTP/1.1 408 "), "{got}");
    assert!(got.contains("\"message\":\"Request timeout\""), "{got}");
    assert!(got.to_lowercase().contains("connection: close"), "{got}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    let m = gw.metrics_text();
    assert!(
        m.contains(
            "gateway_forward_failures_total{side=\"client\",reason=\"request body timeout\"} 1"
        ),
        "{m}"
    );
    assert!(
        m.contains("gateway_forward_failures_total{side=\"upstream\",reason=\"read timeout\"} 0"),
        "{m}"
    );
    // The upstream connection is released: the mock sees its request end.
    let deadline = Instant::now() + Duration::from_secs(3);
    while up.stats().in_flight != 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(up.stats().in_flight, 0, "the upstream request still open");

    // The Admin API: a stalled body is 408; a declared 11 MB is 413 at once.
    let admin = gw.admin_addr().unwrap();
    let (got, took) = stall(
        admin,
        "POST /consumers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user",
    )
    .await;
    assert!(got.starts_with("HTTP/1.1 408 "), "{got}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    let (got, took) = status_line(
        admin,
        "POST /consumers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 11000000\r\n\r\n{",
    )
    .await;
    assert!(got.starts_with("HTTP/1.1 413 "), "{got}");
    assert!(took < Duration::from_millis(400), "413 waited {took:?}");
}
