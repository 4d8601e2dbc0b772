//! HTTP/2 prior knowledge, TLS with ALPN, and graceful shutdown.

use std::time::Duration;

use http::{StatusCode, Version};
use mock_upstream::{Config, EchoDoc, Program, TlsConfig};

use crate::support::{Client, start, start_with};

#[tokio::test]
async fn h2c_prior_knowledge() {
    let server = start(Program::default()).await;
    let mut c = Client::h2c(server.addr()).await;
    let r = c.get("/", &[("x-mock-size", "100")]).await;
    assert_eq!(
        (r.status, r.version, r.body.len()),
        (StatusCode::OK, Version::HTTP_2, 100)
    );
    assert!(r.headers.contains_key("server-timing"));
    let echo: EchoDoc = serde_json::from_slice(&c.get("/echo", &[]).await.body).unwrap();
    assert_eq!(echo.version, "HTTP/2.0");
    // Close-every is an HTTP/1 notion: HTTP/2 responses never carry Connection.
    assert!(
        !c.get("/", &[("x-mock-close-every", "1")])
            .await
            .headers
            .contains_key("connection")
    );
}

#[tokio::test]
async fn h2_streams_run_concurrently_on_one_connection() {
    let server = start(Program::default()).await;
    let c = Client::h2c(server.addr()).await;
    let Client::H2(send) = c else { unreachable!() };
    let start = std::time::Instant::now();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let mut c = Client::H2(send.clone());
            tokio::spawn(async move { c.get("/", &[("x-mock-latency", "100ms")]).await.status })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    // Twenty 100 ms requests in well under 20 × 100 ms.
    assert!(
        start.elapsed() < Duration::from_millis(1000),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(server.stats().connections, 1);
}

#[tokio::test]
async fn tls_with_alpn_h2_and_http11() {
    let server = start_with(Config {
        tls: Some(TlsConfig::SelfSigned),
        ..Config::default()
    })
    .await;
    assert!(server.base_url().starts_with("https://127.0.0.1:"));
    let pem = server.cert_pem().unwrap().to_owned();

    let (mut c, alpn) = Client::tls(server.addr(), &pem, &["h2", "http/1.1"]).await;
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    let r = c.get("/", &[]).await;
    assert_eq!((r.status, r.version), (StatusCode::OK, Version::HTTP_2));

    let (mut c, alpn) = Client::tls(server.addr(), &pem, &["http/1.1"]).await;
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
    let r = c.get("/", &[]).await;
    assert_eq!(
        (r.status, r.version, r.text()),
        (StatusCode::OK, Version::HTTP_11, "ok")
    );
}

#[tokio::test]
async fn tls_from_pem_files() {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let config = Config {
        tls: Some(TlsConfig::Files {
            cert: cert.clone(),
            key,
        }),
        ..Config::default()
    };
    let server = start_with(config).await;
    let (mut c, _) = Client::tls(server.addr(), &ck.cert.pem(), &["http/1.1"]).await;
    assert_eq!(c.get("/", &[]).await.status, StatusCode::OK);

    // A missing key file is an error naming it, not a panic.
    let bad = Config {
        tls: Some(TlsConfig::Files {
            cert,
            key: dir.path().join("missing.pem"),
        }),
        ..Config::default()
    };
    let err = mock_upstream::spawn(bad).await.unwrap_err().to_string();
    assert!(err.contains("missing.pem"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_drains_in_flight_requests() {
    let server = start(Program::default()).await;
    let addr = server.addr();
    let mut slow = Client::h1(addr).await;
    let mut h2 = Client::h2c(addr).await;
    let in_flight =
        tokio::spawn(async move { slow.get("/", &[("x-mock-latency", "300ms")]).await });
    let in_flight_h2 =
        tokio::spawn(async move { h2.get("/", &[("x-mock-latency", "300ms")]).await });
    // Both requests have reached the server.
    assert!(
        crate::support::eventually(Duration::from_secs(2), || server.stats().in_flight == 2).await
    );
    let started = std::time::Instant::now();
    server.shutdown().await;
    let r = in_flight.await.unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.upstream_ms() >= 300.0);
    assert_eq!(in_flight_h2.await.unwrap().status, StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(5));
    // No longer accepting.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn bind_failure_names_the_address() {
    let first = start(Program::default()).await;
    let err = mock_upstream::spawn(Config {
        listen: first.addr(),
        ..Config::default()
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains(&first.addr().to_string()), "{err}");
}
