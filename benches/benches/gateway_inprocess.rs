//! A whole request through the gateway, in-process: the client, the gateway
//! (HS256 jwt plugin) and the mock upstream share one tokio runtime and talk
//! over loopback on kept-alive connections. Next to it, the same request
//! straight to the mock upstream (the lower bound). The difference is the
//! gateway's per-request cost with both hops included; loopback is the only
//! "network" (the issue asks for none: hyper's connections need a socket or
//! a duplex stream, and the upstream pool dials TCP).

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;

const SECRET: &str = "bench-secret";

fn token() -> String {
    let claims = serde_json::json!({"iss": "bench-key", "sub": "bench"});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

async fn client(addr: std::net::SocketAddr) -> http1::SendRequest<Empty<Bytes>> {
    let io = TokioIo::new(tokio::net::TcpStream::connect(addr).await.unwrap());
    let (send, conn) = http1::handshake(io).await.unwrap();
    tokio::spawn(conn);
    send
}

async fn one(send: &mut http1::SendRequest<Empty<Bytes>>, auth: &str) -> usize {
    send.ready().await.unwrap();
    let req = http::Request::get("/orders/1")
        .header("host", "bench")
        .header("authorization", auth)
        .body(Empty::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.into_body().collect().await.unwrap().to_bytes().len()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (upstream, gw) = rt.block_on(async {
        let upstream = mock_upstream::spawn(mock_upstream::Config::default()).await.unwrap();
        let yaml = format!(
            "_format_version: \"3.0\"\nservices:\n- name: up\n  url: {}\n  routes: [{{ name: all, paths: [\"/\"], plugins: [{{ name: jwt }}] }}]\nconsumers:\n- username: bench\n  jwt_secrets: [{{ key: bench-key, secret: {SECRET} }}]\n",
            upstream.base_url()
        );
        let snapshot = gateway::config::Declarative::parse(&yaml, "bench.yml").unwrap().compile().unwrap();
        let gw = gateway::spawn(snapshot, "127.0.0.1:0".parse().unwrap()).await.unwrap();
        (upstream, gw)
    });
    let auth = format!("Bearer {}", token());
    let mut direct = rt.block_on(client(upstream.addr()));
    let mut through = rt.block_on(client(gw.proxy_addr()));
    let mut g = c.benchmark_group("gateway_inprocess");
    for (name, send) in [
        ("direct_to_upstream", &mut direct),
        ("through_gateway_hs256", &mut through),
    ] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = std::time::Instant::now();
                    for _ in 0..iters {
                        black_box(one(send, &auth).await);
                    }
                    start.elapsed()
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
