//! A whole request through the gateway, in-process, each beside the same
//! request straight to the upstream (the lower bound); the difference is the
//! gateway's per-request cost. One tokio runtime, one thread, kept-alive
//! connections, HS256 jwt plugin.
//! - `gateway_memory`: no network at all. The client talks to the gateway
//!   over a `tokio::io::duplex` stream (`Handle::serve_connection`) and the
//!   gateway dials its upstream in memory (`proxy::Dial::Memory`), where a
//!   minimal hyper service answers `200 ok`.
//! - `gateway_loopback`: the same over 127.0.0.1 TCP, with the mock upstream.

#![allow(
    clippy::disallowed_methods,
    reason = "the bench times its own requests"
)]

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
    handshake(tokio::net::TcpStream::connect(addr).await.unwrap()).await
}

async fn handshake<I>(io: I) -> http1::SendRequest<Empty<Bytes>>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (send, conn) = http1::handshake(TokioIo::new(io)).await.unwrap();
    tokio::spawn(conn);
    send
}

const BUF: usize = 64 * 1024;

/// A minimal upstream on the far end of a fresh duplex stream.
fn memory_upstream() -> tokio::io::DuplexStream {
    let (ours, theirs) = tokio::io::duplex(BUF);
    tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(
        TokioIo::new(theirs),
        hyper::service::service_fn(|_req| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(
                Bytes::from_static(b"ok"),
            )))
        }),
    ));
    ours
}

fn config(url: &str) -> gateway::config::Declarative {
    let yaml = format!(
        "_format_version: \"3.0\"\nservices:\n- name: up\n  url: {url}\n  routes: [{{ name: all, paths: [\"/\"], plugins: [{{ name: jwt }}] }}]\nconsumers:\n- username: bench\n  jwt_secrets: [{{ key: bench-key, secret: {SECRET} }}]\n"
    );
    gateway::config::Declarative::parse(&yaml, "bench.yml").unwrap()
}

/// Times `iters` sequential requests on one kept-alive connection.
fn run(
    rt: &tokio::runtime::Runtime,
    send: &mut http1::SendRequest<Empty<Bytes>>,
    auth: &str,
    iters: u64,
) -> std::time::Duration {
    rt.block_on(async {
        let start = std::time::Instant::now();
        for _ in 0..iters {
            black_box(one(send, auth).await);
        }
        start.elapsed()
    })
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
    let auth = format!("Bearer {}", token());

    let (mut direct, mut through, _gw) = rt.block_on(async {
        let mut decl = config("http://memory.invalid");
        decl.dial = Some(gateway::upstream::Dial::Memory(std::sync::Arc::new(
            memory_upstream,
        )));
        let gw = gateway::spawn(decl.compile().unwrap(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let (client_end, gw_end) = tokio::io::duplex(BUF);
        gw.serve_connection(gw_end, "127.0.0.1:40000".parse().unwrap());
        (
            handshake(memory_upstream()).await,
            handshake(client_end).await,
            gw,
        )
    });
    let mut g = c.benchmark_group("gateway_memory");
    g.bench_function("direct_to_upstream", |b| {
        b.iter_custom(|iters| run(&rt, &mut direct, &auth, iters))
    });
    g.bench_function("through_gateway_hs256", |b| {
        b.iter_custom(|iters| run(&rt, &mut through, &auth, iters))
    });
    g.finish();

    let (mut direct, mut through, _upstream, _gw) = rt.block_on(async {
        let upstream = mock_upstream::spawn(mock_upstream::Config::default())
            .await
            .unwrap();
        let snapshot = config(upstream.base_url()).compile().unwrap();
        let gw = gateway::spawn(snapshot, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        (
            client(upstream.addr()).await,
            client(gw.proxy_addr()).await,
            upstream,
            gw,
        )
    });
    let mut g = c.benchmark_group("gateway_loopback");
    g.bench_function("direct_to_upstream", |b| {
        b.iter_custom(|iters| run(&rt, &mut direct, &auth, iters))
    });
    g.bench_function("through_gateway_hs256", |b| {
        b.iter_custom(|iters| run(&rt, &mut through, &auth, iters))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
