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
    let gw = gateway::spawn(
        gateway::config::Declarative::parse(&yaml, "p.yml")
            .unwrap()
            .compile()
            .unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
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
