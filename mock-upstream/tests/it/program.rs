//! Response programming, overrides, routes, stats and bad input.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use mock_upstream::{Config, EchoDoc, Program, StallSchedule, StatsSnapshot};

use crate::support::{Client, start, start_with};

#[tokio::test]
async fn default_response_carries_server_timing() {
    let server = start(Program::default()).await;
    let mut c = Client::h1(server.addr()).await;
    let r = c.get("/", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text(), "ok");
    assert_eq!(r.headers["content-length"], "2");
    let dur = r.upstream_ms();
    assert!((0.0..50.0).contains(&dur), "dur {dur}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn programmed_delay_is_honoured_and_reported() {
    let program = Program {
        latency: "fixed:15ms".parse().unwrap(),
        ..Program::default()
    };
    let server = start(program).await;
    let mut c = Client::h1(server.addr()).await;
    let r = c.get("/", &[]).await;
    assert!(
        r.elapsed >= Duration::from_millis(15),
        "elapsed {:?}",
        r.elapsed
    );
    assert!(r.upstream_ms() >= 15.0, "dur {}", r.upstream_ms());
    // Server-Timing never exceeds what the client saw.
    assert!(r.upstream_ms() <= r.elapsed.as_secs_f64() * 1e3);

    // A header overrides the default, both ways.
    let fast = c.get("/", &[("x-mock-latency", "0")]).await;
    assert!(fast.upstream_ms() < 10.0, "dur {}", fast.upstream_ms());
    let slow = c
        .get("/", &[("x-mock-latency", "uniform:30ms..31ms")])
        .await;
    assert!(slow.upstream_ms() >= 30.0, "dur {}", slow.upstream_ms());
}

#[tokio::test]
async fn sizes_status_and_headers() {
    let program = Program {
        size: "1KiB".parse().unwrap(),
        status: "201".parse().unwrap(),
        headers: vec!["X-Shard: 7".parse().unwrap()],
        ..Program::default()
    };
    let server = start(program).await;
    let mut c = Client::h1(server.addr()).await;

    let r = c.get("/", &[]).await;
    assert_eq!((r.status, r.body.len()), (StatusCode::CREATED, 1024));
    assert_eq!(r.headers["x-shard"], "7");

    let big = c.get("/", &[("x-mock-size", "1MiB")]).await;
    assert_eq!(big.body.len(), 1 << 20);
    assert_eq!(
        big.headers["content-length"],
        (1u32 << 20).to_string().as_str()
    );
    assert_eq!(c.get("/", &[("x-mock-size", "0")]).await.body.len(), 0);

    let r = c
        .get(
            "/",
            &[
                ("x-mock-status", "503"),
                ("x-mock-header", "Retry-After: 3"),
                ("x-mock-header", "X-A: b"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        (
            &r.headers["retry-after"],
            &r.headers["x-a"],
            &r.headers["x-shard"]
        ),
        (
            &"3".parse().unwrap(),
            &"b".parse().unwrap(),
            &"7".parse().unwrap()
        )
    );

    let no_content = c.get("/", &[("x-mock-status", "204")]).await;
    assert_eq!(
        (no_content.status, no_content.body.len()),
        (StatusCode::NO_CONTENT, 0)
    );
}

#[tokio::test]
async fn weighted_statuses_follow_their_weights() {
    let server = start(Program::default()).await;
    let mut c = Client::h1(server.addr()).await;
    let mut errors = 0;
    for _ in 0..400 {
        if c.get("/", &[("x-mock-status", "200:75,503:25")])
            .await
            .status
            == StatusCode::SERVICE_UNAVAILABLE
        {
            errors += 1;
        }
    }
    // Binomial(400, 0.25): mean 100, sd 8.7; 60..140 is beyond 4.5 sd.
    assert!((60..140).contains(&errors), "503s: {errors}");
}

#[tokio::test]
async fn connection_close_every_n_requests() {
    let program = Program {
        close_every: Some(3.try_into().unwrap()),
        ..Program::default()
    };
    let server = start(program).await;
    let mut c = Client::h1(server.addr()).await;
    for i in 1..=3 {
        let r = c.get("/", &[]).await;
        assert_eq!(r.headers.get("connection").is_some(), i == 3, "request {i}");
    }
    assert!(crate::support::eventually(Duration::from_secs(2), || c.is_closed()).await);
    assert_eq!(server.stats().connections, 1);

    // Per request: close after this one.
    let mut c = Client::h1(server.addr()).await;
    let r = c.get("/", &[("x-mock-close-every", "1")]).await;
    assert_eq!(r.headers["connection"], "close");
}

#[tokio::test]
async fn bad_specs_get_400_naming_the_header() {
    let server = start(Program::default()).await;
    let mut c = Client::h1(server.addr()).await;
    for (name, value) in [
        ("x-mock-latency", "gauss:1ms"),
        ("x-mock-latency", "fixed:5"),
        ("x-mock-size", "huge"),
        ("x-mock-status", "700"),
        ("x-mock-header", "no colon"),
        ("x-mock-close-every", "0"),
    ] {
        let r = c.get("/", &[(name, value)]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name}: {value}");
        assert!(r.text().contains(name), "{name}: {}", r.text());
        assert!(r.headers.contains_key("server-timing"));
    }
    // The connection survives bad input.
    assert_eq!(c.get("/", &[]).await.status, StatusCode::OK);
}

#[tokio::test]
async fn echo_shows_the_request_as_received() {
    let server = start(Program::default()).await;
    let mut c = Client::h1(server.addr()).await;
    let r = c
        .send(
            Method::POST,
            "/echo?x=1&y=2",
            &[
                ("x-consumer-id", "c-42"),
                ("authorization", "Bearer abc"),
                ("x-multi", "a"),
                ("x-multi", "b"),
            ],
            Bytes::from_static(b"hello"),
        )
        .await;
    assert_eq!(r.headers["content-type"], "application/json");
    let doc: EchoDoc = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        (doc.method.as_str(), doc.path.as_str(), doc.query.as_deref()),
        ("POST", "/echo", Some("x=1&y=2"))
    );
    assert_eq!(doc.headers["x-consumer-id"], "c-42");
    assert_eq!(doc.headers["authorization"], "Bearer abc");
    assert_eq!(doc.headers["x-multi"], "a, b");
    assert_eq!(doc.body_length, 5);
    assert_eq!(doc.version, "HTTP/1.1");
    let nested: EchoDoc = serde_json::from_slice(&c.get("/echo/a/b", &[]).await.body).unwrap();
    assert_eq!(nested.path, "/echo/a/b");
    // Programming applies to /echo too.
    assert_eq!(
        c.get("/echo", &[("x-mock-status", "418")]).await.status,
        StatusCode::IM_A_TEAPOT
    );
}

#[tokio::test]
async fn stats_count_requests() {
    let server = start(Program::default()).await;
    let mut c = Client::h1(server.addr()).await;
    for _ in 0..3 {
        c.get("/orders/1", &[("x-consumer-username", "web-app")])
            .await;
    }
    c.get(
        "/orders/2",
        &[("x-mock-status", "503"), ("x-mock-size", "10")],
    )
    .await;
    c.send(Method::PUT, "/up", &[], Bytes::from_static(b"12345678"))
        .await;
    let r = c.get("/stats", &[]).await;
    let s: StatsSnapshot = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        s.requests, 5,
        "the /stats request itself is counted after it answers"
    );
    assert_eq!(s.by_status[&200], 4);
    assert_eq!(s.by_status[&503], 1);
    assert_eq!(s.by_path["/orders/1"], 3);
    assert_eq!(s.by_consumer["web-app"], 3);
    assert_eq!(s.bytes_in, 8);
    assert_eq!(s.bytes_out, 3 * 2 + 10 + 2);
    assert_eq!((s.open_connections, s.connections), (1, 1));
    assert_eq!(server.stats().requests, 6);
    assert_eq!(c.get("/healthz", &[]).await.text(), "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_demand_stall_holds_responses() {
    let server = start(Program::default()).await;
    let mut control = Client::h1(server.addr()).await;
    let r = control
        .send(Method::POST, "/_mock/stall?for=300ms", &[], Bytes::new())
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let mut c = Client::h1(server.addr()).await;
    let held = c.get("/", &[]).await;
    assert!(
        held.elapsed >= Duration::from_millis(250),
        "held {:?}",
        held.elapsed
    );
    assert!(held.upstream_ms() >= 250.0, "dur {}", held.upstream_ms());
    // After the stall, responses are fast again.
    assert!(c.get("/", &[]).await.upstream_ms() < 50.0);

    for bad in ["/_mock/stall", "/_mock/stall?for=soon"] {
        let r = control.send(Method::POST, bad, &[], Bytes::new()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    assert_eq!(
        control.get("/_mock/stall?for=1s", &[]).await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_stalls_queue_requests() {
    let stall = StallSchedule {
        every: Duration::from_millis(150),
        hold: Duration::from_millis(100),
    };
    let server = start_with(Config {
        stall: Some(stall),
        ..Config::default()
    })
    .await;
    let mut c = Client::h1(server.addr()).await;
    let (mut fastest, mut slowest) = (f64::MAX, 0f64);
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_millis(400) {
        let d = c.get("/", &[]).await.upstream_ms();
        fastest = fastest.min(d);
        slowest = slowest.max(d);
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    assert!(fastest < 10.0, "fastest {fastest}");
    // Some request arrived early in a 100 ms stall and waited most of it.
    assert!((60.0..=150.0).contains(&slowest), "slowest {slowest}");
}

#[tokio::test]
async fn jwks_and_discovery_from_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let jwks = r#"{"keys":[{"kty":"oct","kid":"k1"}]}"#;
    std::fs::write(dir.path().join("jwks.json"), jwks).unwrap();
    let config = Config {
        jwks: Some(mock_upstream::JwksConfig {
            dir: dir.path().into(),
            issuer: Some("https://issuer.test".into()),
        }),
        ..Config::default()
    };
    let server = start_with(config).await;
    let mut c = Client::h1(server.addr()).await;
    let r = c.get("/.well-known/jwks.json", &[]).await;
    assert_eq!((r.status, r.text()), (StatusCode::OK, jwks));
    let d: serde_json::Value =
        serde_json::from_slice(&c.get("/.well-known/openid-configuration", &[]).await.body)
            .unwrap();
    assert_eq!(d["issuer"], "https://issuer.test");
    assert_eq!(d["jwks_uri"], "https://issuer.test/.well-known/jwks.json");

    // Files are read per request: rewriting them rotates keys; a written discovery document wins.
    std::fs::write(dir.path().join("jwks.json"), r#"{"keys":[]}"#).unwrap();
    std::fs::write(
        dir.path().join("openid-configuration.json"),
        r#"{"issuer":"x"}"#,
    )
    .unwrap();
    assert_eq!(
        c.get("/.well-known/jwks.json", &[]).await.text(),
        r#"{"keys":[]}"#
    );
    assert_eq!(
        c.get("/.well-known/openid-configuration", &[]).await.text(),
        r#"{"issuer":"x"}"#
    );
}
