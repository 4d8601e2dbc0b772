//! The guard under a real hyper HTTP/1 server, over an in-memory stream.

#![allow(
    clippy::disallowed_methods,
    reason = "tests time how soon a limit acted"
)]

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::*;

fn limits(header_ms: u64, idle_ms: u64) -> Limits {
    Limits {
        header_timeout: Duration::from_millis(header_ms),
        keepalive_timeout: Duration::from_millis(idle_ms),
        body_timeout: Duration::from_secs(60),
        max_connections: 16,
        max_header_line: 8 << 10,
        body: json_message,
    }
}

/// Serves one connection with hyper; the service answers `status` after `delay`.
fn serve(limits: Limits, status: u16, delay: Duration) -> DuplexStream {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let (io, conn) = guard(server, limits);
    tokio::spawn(async move {
        let svc = service_fn(move |_req| {
            let in_flight = conn.request();
            async move {
                tokio::time::sleep(delay).await;
                drop(in_flight);
                Ok::<_, Infallible>(
                    http::Response::builder()
                        .status(status)
                        .body(Full::new(Bytes::new()))
                        .unwrap(),
                )
            }
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(io), svc)
            .await;
    });
    client
}

/// Everything until the server closes, and how long that took.
async fn read_to_close(c: &mut DuplexStream) -> (String, Duration) {
    let t0 = Instant::now();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut out)).await;
    (String::from_utf8_lossy(&out).into_owned(), t0.elapsed())
}

#[tokio::test]
async fn a_head_that_does_not_arrive_in_time_gets_408_and_the_connection_ends() {
    let mut c = serve(limits(200, 5000), 200, Duration::ZERO);
    c.write_all(b"GET /echo HTTP/1.1\r\nHo").await.unwrap();
    let (got, took) = read_to_close(&mut c).await;
    assert!(got.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{got}");
    assert!(
        got.ends_with("\r\n\r\n{\"message\":\"Request timeout\"}"),
        "{got}"
    );
    assert!(got.contains("connection: close"), "{got}");
    assert!(
        took >= Duration::from_millis(150) && took < Duration::from_millis(600),
        "{took:?}"
    );
}

#[tokio::test]
async fn a_slowloris_trickle_does_not_reset_the_header_timer() {
    let mut c = serve(limits(300, 5000), 200, Duration::ZERO);
    let t0 = Instant::now();
    let writer = tokio::spawn(async move {
        for b in b"GET /echo HTTP/1.1\r\nHost: x\r\nX-a: b\r\n" {
            if c.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut out = Vec::new();
        let _ = c.read_to_end(&mut out).await;
        out
    });
    let got = String::from_utf8(writer.await.unwrap()).unwrap();
    assert!(got.starts_with("HTTP/1.1 408 "), "{got}");
    assert!(
        t0.elapsed() < Duration::from_millis(800),
        "{:?}",
        t0.elapsed()
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_without_a_response() {
    let mut c = serve(limits(5000, 200), 200, Duration::ZERO);
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (got, took) = read_to_close(&mut c).await;
    assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
    assert_eq!(got.matches("HTTP/1.1").count(), 1, "{got}");
    assert!(
        took >= Duration::from_millis(150) && took < Duration::from_millis(600),
        "{took:?}"
    );
}

#[tokio::test]
async fn a_connection_that_never_speaks_is_closed_at_the_header_timeout() {
    let mut c = serve(limits(200, 5000), 200, Duration::ZERO);
    let (got, took) = read_to_close(&mut c).await;
    assert_eq!(got, "", "nothing to answer");
    assert!(took < Duration::from_millis(600), "{took:?}");
}

#[tokio::test]
async fn a_request_in_service_is_never_cut_by_either_timeout() {
    let mut c = serve(limits(100, 100), 200, Duration::from_millis(500));
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (got, took) = read_to_close(&mut c).await;
    assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
    assert!(took >= Duration::from_millis(500), "{took:?}");
}

#[tokio::test]
async fn hypers_own_refusals_get_a_json_body() {
    for (request, status) in [
        (b"GARBAGE\r\n\r\n".to_vec(), "400 Bad Request"),
        (
            format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000)).into_bytes(),
            "414 URI Too Long",
        ),
        (
            format!("GET / HTTP/1.1\r\n{}\r\n", "X-a: b\r\n".repeat(120)).into_bytes(),
            "431 Request Header Fields Too Large",
        ),
    ] {
        let mut c = serve(limits(5000, 5000), 200, Duration::ZERO);
        let _ = c.write_all(&request).await;
        let (got, _) = read_to_close(&mut c).await;
        assert!(got.starts_with(&format!("HTTP/1.1 {status}\r\n")), "{got}");
        assert!(got.contains("content-type: application/json"), "{got}");
        assert!(got.ends_with("\"}"), "{got}");
    }
}

#[tokio::test]
async fn the_services_own_empty_400_is_left_alone() {
    let mut c = serve(limits(5000, 300), 400, Duration::ZERO);
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (got, _) = read_to_close(&mut c).await;
    assert!(
        got.starts_with("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n"),
        "{got}"
    );
}

#[tokio::test]
async fn the_gate_holds_the_next_connection_until_one_closes() {
    let gate = std::sync::Arc::new(Gate::new(2, "test"));
    let a = gate.admit().await;
    let _b = gate.admit().await;
    assert_eq!(gate.open(), 2);
    let g = gate.clone();
    let third = tokio::spawn(async move { g.admit().await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!third.is_finished(), "the third waits at the cap");
    drop(a);
    let _c = tokio::time::timeout(Duration::from_secs(1), third)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(gate.open(), 2);
}

#[tokio::test]
async fn an_http2_preface_that_goes_nowhere_is_closed_at_the_header_timeout() {
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    let (io, conn) = guard(server, limits(200, 5000));
    tokio::spawn(async move {
        let svc = service_fn(move |_req| {
            let _f = conn.request();
            async move { Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::new()))) }
        });
        let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .serve_connection(TokioIo::new(io), svc)
            .await;
    });
    // The preface, then a frame header announcing 16 KiB that never come.
    client.write_all(H2_PREFACE).await.unwrap();
    client
        .write_all(&[0, 0x40, 0, 4, 0, 0, 0, 0, 0])
        .await
        .unwrap();
    let (_, took) = read_to_close(&mut client).await;
    assert!(took < Duration::from_millis(700), "{took:?}");
}
