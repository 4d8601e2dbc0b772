//! Servers that cannot be starved: 1,000 slowloris connections (a request
//! head begun and never finished) against our gateway and against the mock
//! upstream, each with a 2 s header timeout, are answered 408 and closed
//! within 3 s, while a normal client's requests keep their latency; idle
//! keep-alive connections close after their timeout; the connection cap
//! holds new clients in the backlog.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SLOW: usize = 1000;

fn limits(header: Duration, idle: Duration, max: usize) -> conn_guard::Limits {
    conn_guard::Limits {
        header_timeout: header,
        keepalive_timeout: idle,
        max_connections: max,
        ..gateway::limits()
    }
}

/// Our gateway in front of `up` (one route, `/`, no plugins) with `limits`.
async fn in_front_of(up: &mock_upstream::Handle, limits: conn_guard::Limits) -> gateway::Handle {
    let yaml = format!(
        "_format_version: \"3.0\"\nservices:\n- name: up\n  url: {}\n  routes: [{{ name: up, paths: [\"/\"] }}]\n",
        up.base_url()
    );
    let snapshot = gateway::config::Declarative::parse(&yaml, "t.yml")
        .unwrap()
        .compile()
        .unwrap();
    gateway::spawn_with(snapshot, "127.0.0.1:0".parse().unwrap(), limits)
        .await
        .unwrap()
}

/// Milliseconds of each of `n` GETs on one keep-alive connection, 10 ms apart.
async fn latencies(addr: SocketAddr, path: &str, n: usize) -> Vec<f64> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let mut out = Vec::new();
    let mut buf = vec![0u8; 4096];
    for _ in 0..n {
        let t0 = Instant::now();
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut got = Vec::new();
        // The mock answers `ok` (2 bytes) with a content-length.
        while !(got.ends_with(b"\r\n\r\nok")) {
            let k = s.read(&mut buf).await.unwrap();
            assert!(k > 0, "closed: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..k]);
        }
        assert!(
            got.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&got)
        );
        out.push(t0.elapsed().as_secs_f64() * 1e3);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Opens `SLOW` connections that each send half a head; returns, per
/// connection, what it got back and how long after its open it was closed.
/// `begun` counts the connections whose half head is written.
async fn slowloris(addr: SocketAddr, begun: Arc<AtomicUsize>) -> Vec<(String, Duration)> {
    let mut tasks = Vec::new();
    for _ in 0..SLOW {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let begun = begun.clone();
        tasks.push(tokio::spawn(async move {
            let t0 = Instant::now();
            s.write_all(b"GET /echo HTTP/1.1\r\nHo").await.unwrap();
            begun.fetch_add(1, Ordering::Relaxed);
            let mut got = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut got)).await;
            (String::from_utf8_lossy(&got).into_owned(), t0.elapsed())
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// The slowloris run against `addr` while a normal client measures `path`.
async fn starve(addr: SocketAddr, path: &str, json: &str) {
    let before = median(latencies(addr, path, 50).await);
    let begun = Arc::new(AtomicUsize::new(0));
    let attack = tokio::spawn(slowloris(addr, begun.clone()));
    // Measured once every slow connection has sent its half head.
    let until = Instant::now() + Duration::from_secs(10);
    while begun.load(Ordering::Relaxed) < SLOW {
        assert!(
            Instant::now() < until,
            "the slow connections did not all open"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let during = median(latencies(addr, path, 100).await);
    let closed = attack.await.unwrap();
    let late: Vec<_> = closed
        .iter()
        .filter(|(got, took)| !got.starts_with("HTTP/1.1 408 ") || *took > Duration::from_secs(3))
        .collect();
    assert!(
        late.is_empty(),
        "{} of {SLOW}: e.g. {:?}",
        late.len(),
        late.first()
    );
    assert!(
        closed.iter().all(|(got, _)| got.contains(json)),
        "{:?}",
        closed[0]
    );
    // Normal traffic kept its latency (p50 within 1 ms of before).
    assert!(
        during < before + 1.0,
        "p50 {before:.3} ms before, {during:.3} ms during"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_is_answered_408_within_the_header_timeout_on_both_servers() {
    conn_guard::auto_max_connections(1);
    let up = mock_upstream::spawn(mock_upstream::Config {
        header_timeout: Duration::from_secs(2),
        ..mock_upstream::Config::default()
    })
    .await
    .unwrap();
    starve(up.addr(), "/x", "{\"message\":\"Request timeout\"}").await;

    let gw = in_front_of(
        &up,
        limits(Duration::from_secs(2), Duration::from_secs(60), 4096),
    )
    .await;
    // Kong's template: a message and a request id.
    starve(
        gw.proxy_addr(),
        "/x",
        "\"message\":\"Request timeout\",\n  \"request_id\":\"",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_close_and_the_cap_holds_new_ones_back() {
    let up = mock_upstream::spawn(mock_upstream::Config::default())
        .await
        .unwrap();
    let gw = in_front_of(
        &up,
        limits(Duration::from_secs(5), Duration::from_millis(500), 2),
    )
    .await;
    let addr = gw.proxy_addr();
    // Two connections take the two places; one request each, then idle.
    let mut a = TcpStream::connect(addr).await.unwrap();
    let mut b = TcpStream::connect(addr).await.unwrap();
    let t0 = Instant::now();
    for s in [&mut a, &mut b] {
        s.write_all(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
    }
    // A third connects (the kernel accepts it into the backlog) but is not
    // served while both places are taken.
    let third = tokio::spawn(async move {
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 12];
        c.read_exact(&mut buf).await.unwrap();
        (buf, Instant::now())
    });
    for s in [&mut a, &mut b] {
        let mut got = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut got)).await;
        let got = String::from_utf8_lossy(&got);
        assert!(
            got.starts_with("HTTP/1.1 200 OK") && got.ends_with("ok"),
            "{got}"
        );
    }
    let idle = t0.elapsed();
    assert!(
        idle >= Duration::from_millis(450) && idle < Duration::from_millis(1500),
        "idle connections closed after {idle:?} (timeout 500 ms)"
    );
    let (head, served) = third.await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    assert!(
        served.duration_since(t0) >= Duration::from_millis(450),
        "the third was served only once a place was free"
    );
}

/// One raw HTTP/1.1 exchange on a fresh connection: everything until close.
async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(request).await;
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut got)).await;
    String::from_utf8_lossy(&got).into_owned()
}

async fn metrics(admin: SocketAddr) -> String {
    raw(
        admin,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_faults_are_400_and_a_connect_timeout_is_504() {
    let up = mock_upstream::spawn(mock_upstream::Config::default())
        .await
        .unwrap();
    // An address whose handshake never completes: a listener with a backlog
    // of 0 whose queue two connections fill (further SYNs are dropped).
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let black = sock.local_addr().unwrap();
    let _listener = sock.listen(0).unwrap();
    let mut fillers = Vec::new();
    for _ in 0..3 {
        if let Ok(Ok(s)) =
            tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(black)).await
        {
            fillers.push(s);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let kong = format!(
        r#"
_format_version: "3.0"
services:
- name: up
  url: {up}
  routes: [{{ name: up, paths: ["/"] }}]
- name: black
  url: http://{black}
  connect_timeout: 300
  routes: [{{ name: black, paths: ["/black"] }}]
"#,
        up = up.base_url()
    );
    let gw = gateway::start(gateway::Options {
        config: gateway::config::Declarative::parse(&kong, "k.yml").unwrap(),
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: Some("127.0.0.1:0".parse().unwrap()),
        state_file: Some(dir.path().join("state.json")),
        tls: None,
        limits: gateway::limits(),
        admin_apply_delay: std::time::Duration::ZERO,
        core: gateway::Core::default(),
    })
    .await
    .unwrap();
    let (proxy, admin) = (gw.proxy_addr(), gw.admin_addr().unwrap());

    // A malformed chunked body is the client's fault: 400, counted as such.
    let got = raw(
        proxy,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    assert!(got.starts_with("HTTP/1.1 400 "), "{got}");
    assert!(got.contains("\"message\":\"Bad request\""), "{got}");
    let m = metrics(admin).await;
    assert!(
        m.contains(
            "gateway_forward_failures_total{side=\"client\",reason=\"malformed or incomplete request body\"} 1"
        ),
        "{m}"
    );
    assert!(!m.contains("status=\"502\""), "{m}");

    // No handshake within connect_timeout: Kong's 504.
    let t0 = Instant::now();
    let got = raw(
        proxy,
        b"GET /black HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(got.starts_with("HTTP/1.1 504 "), "{got}");
    assert!(got.contains("The upstream server is timing out"), "{got}");
    assert!(
        t0.elapsed() >= Duration::from_millis(280),
        "{:?}",
        t0.elapsed()
    );
    let m = metrics(admin).await;
    assert!(
        m.contains(
            "gateway_forward_failures_total{side=\"upstream\",reason=\"connect timeout\"} 1"
        ),
        "{m}"
    );

    // The gateway's own refusals carry Kong's template.
    for (request, head) in [
        (b"GARBAGE\r\n\r\n".to_vec(), "HTTP/1.1 400 Bad Request"),
        (
            format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000)).into_bytes(),
            "HTTP/1.1 414 URI Too Long",
        ),
        (
            format!("GET / HTTP/1.1\r\n{}\r\n", "X-a: b\r\n".repeat(120)).into_bytes(),
            "HTTP/1.1 431 Request Header Fields Too Large",
        ),
    ] {
        let got = raw(proxy, &request).await;
        assert!(got.starts_with(head), "{got}");
        assert!(got.contains("\"request_id\":\""), "{got}");
    }

    // Kong's large_client_header_buffers 4 8k: a header line over 8 KiB, or
    // all of them over 32 KiB, gets 431 with Kong's message and the
    // connection closes; 8 KiB and 4 x 7 KiB pass.
    let line = |n: usize| format!("X-big: {}\r\n", "v".repeat(n - "X-big: ".len()));
    for (headers, want) in [
        (line(8192), "HTTP/1.1 200 "),
        (line(8193), "HTTP/1.1 431 Request Header Fields Too Large"),
        (line(7000).repeat(4), "HTTP/1.1 200 "),
        (
            line(7000).repeat(5),
            "HTTP/1.1 431 Request Header Fields Too Large",
        ),
    ] {
        let got = raw(
            proxy,
            format!("GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n").as_bytes(),
        )
        .await;
        assert!(got.starts_with(want), "{} bytes: {got:.200}", headers.len());
        if want.contains("431") {
            assert!(got.contains("Request header or cookie too large"), "{got}");
            assert!(
                got.to_ascii_lowercase().contains("connection: close"),
                "{got}"
            );
        }
    }

    // As many headers as the gateway accepts (100) pass through it and the
    // upstream, with the X-Forwarded-* it adds.
    let many: String = (0..98).map(|i| format!("X-h{i}: v\r\n")).collect();
    let got = raw(
        proxy,
        format!("GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{many}\r\n").as_bytes(),
    )
    .await;
    assert!(got.starts_with("HTTP/1.1 200 "), "{got}");
    drop(fillers);
}
