//! The binary: first stdout line, serving, signals and flag errors.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use http::StatusCode;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::support::Client;

const BIN: &str = env!("CARGO_BIN_EXE_mock-upstream");

#[tokio::test]
async fn prints_address_serves_and_drains_on_sigterm() {
    let mut child = Command::new(BIN)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "1",
            "--latency",
            "fixed:5ms",
            "--status",
            "202",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("first line: {line:?}"));
    let mut c = Client::h1(addr.parse().unwrap()).await;
    let r = c.get("/", &[]).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert!(r.upstream_ms() >= 5.0);

    let in_flight = tokio::spawn(async move { c.get("/", &[("x-mock-latency", "200ms")]).await });
    // SIGTERM once the slow request has reached the server (its /stats says so).
    let mut probe = Client::h1(addr.parse().unwrap()).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let stats: mock_upstream::StatsSnapshot =
            serde_json::from_slice(&probe.get("/stats", &[]).await.body).unwrap();
        if stats.in_flight == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the request never arrived"
        );
        tokio::task::yield_now().await;
    }
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    assert_eq!(in_flight.await.unwrap().status, StatusCode::ACCEPTED);
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    for (flag, value) in [
        ("--latency", "gauss:1ms"),
        ("--size", "lots"),
        ("--status", "200:x"),
        ("--header", "nocolon"),
        ("--stall-every", "0"),
        ("--listen", "nowhere"),
    ] {
        let mut args = vec![flag, value];
        if flag == "--stall-every" {
            args.extend(["--stall-for", "1ms"]);
        }
        let out = Command::new(BIN).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {stderr}");
        assert!(stderr.contains(flag), "{flag}: {stderr}");
    }
}

#[test]
fn address_in_use_exits_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(BIN)
        .args(["--listen", &addr])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&addr));
}
