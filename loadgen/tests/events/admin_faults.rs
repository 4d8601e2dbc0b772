//! `[[event]]`s against Admin APIs that misbehave: one that stalls in its
//! answer's body, one that applies a change and answers 500.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use clap::Parser as _;
use loadgen::cli::Exit;
use reports::summary::Summary;

use crate::serial;
use crate::support::{gateway_with_admin, mock};

/// A fake server on loopback: each connection's request is read whole, then
/// `answer` serves it (the request's bytes, the connection).
fn fake(answer: impl Fn(&[u8], &mut TcpStream) + Send + Sync + 'static) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let answer = Arc::new(answer);
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let answer = answer.clone();
            std::thread::spawn(move || {
                while let Some(req) = read_request(&mut s) {
                    answer(&req, &mut s);
                }
            });
        }
    });
    addr
}

/// One HTTP/1.1 request (head and Content-Length body); None at EOF.
fn read_request(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    buf.extend(body);
    Some(buf)
}

/// Our gateway with an Admin API, consumer `partner` (HS256), in front of
/// a mock upstream, on `rt`: (proxy URL, Admin address, the servers).
fn gateway(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
) -> (String, SocketAddr, (mock_upstream::Handle, gateway::Handle)) {
    rt.block_on(async {
        let up = mock(mock_upstream::Config::default()).await;
        let kong = format!(
            "_format_version: \"3.0\"\nservices:\n- name: up\n  url: {}\n  routes: [{{ name: all, paths: [\"/\"], plugins: [{{ name: jwt }}] }}]\nconsumers:\n- username: partner\n  jwt_secrets:\n  - {{ key: partner, algorithm: HS256, secret: partner-secret }}\n",
            up.base_url()
        );
        let gw = gateway_with_admin(&kong, dir).await;
        (gw.proxy_url(), gw.admin_addr().unwrap(), (up, gw))
    })
}

/// One round of 1 s at 100 req/s of partner's valid tokens to `proxy`, with
/// `event` (an `[[event]]` body) at 300 ms, the target's Admin API `admin`.
fn run(dir: &Path, proxy: &str, admin: &str, event: &str) -> (Exit, Summary, Duration) {
    let text = format!(
        r#"
name = "admin-faults"
seed = 3
[auth]
profile = "rust-gateway"
[[auth.consumer]]
name = "partner"
alg = "HS256"
secret = "partner-secret"
[[target]]
name = "gw"
url = "{proxy}"
admin = "{admin}"
connections = 4
[[request]]
name = "partner"
path = "/{{seq}}"
token = "valid"
[[phase]]
name = "steady"
duration = "1s"
rate = 100
[[event]]
phase = "steady"
at = "300ms"
{event}
"#
    );
    let file = dir.join("s.toml");
    std::fs::write(&file, text).unwrap();
    let out = dir.join("out");
    let began = Instant::now();
    let code = loadgen::cli::main_with(
        loadgen::cli::Args::parse_from([
            "loadgen",
            "run",
            "--no-calibrate",
            file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
            "--no-report",
        ]),
        Arc::new(AtomicBool::new(false)),
    );
    let took = began.elapsed();
    let s = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    (code, s, took)
}

/// An Admin API that sends its head (`200`, `Content-Length: 100`) and 5
/// bytes of body, then nothing: the event fails at the Admin timeout (10 s)
/// with exit 4, and the run ends.
#[test]
fn an_admin_answer_that_stalls_in_its_body_fails_the_event_at_the_timeout() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let stall = fake(|_, s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nhello");
        std::thread::sleep(Duration::from_secs(60));
    });
    let rt = crate::server_runtime();
    let (proxy, _, _servers) = gateway(&rt, dir.path());
    let (code, s, took) = run(
        dir.path(),
        &proxy,
        &format!("http://{stall}"),
        "action = \"admin\"\nmethod = \"GET\"\npath = \"/status\"\nexpect = 200\n",
    );
    let faults = s.target_faults.join("\n");
    assert!(
        code == Exit::Expectations || code == Exit::Invalid,
        "exit {code:?}: {faults}"
    );
    assert!(faults.contains("no complete answer within 10s"), "{faults}");
    assert!(took < Duration::from_secs(40), "{took:?}");
}

/// An Admin API that deletes the credential but answers 500 (a proxy in
/// front of our gateway's, rewriting the DELETE's status): the revoke
/// fails (exit 4), and its change is undone all the same, so the
/// credential is back after the run.
#[test]
fn a_revoke_answered_500_is_undone_as_if_applied() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let rt = crate::server_runtime();
    let (proxy, real, _servers) = gateway(&rt, dir.path());
    let lying = fake(move |req, s| {
        let mut up = TcpStream::connect(real).unwrap();
        // One exchange per connection upstream, so the answer ends at EOF.
        let head_end = req.windows(2).position(|w| w == b"\r\n").unwrap();
        let mut fwd = req[..head_end + 2].to_vec();
        fwd.extend_from_slice(b"connection: close\r\n");
        fwd.extend_from_slice(&req[head_end + 2..]);
        up.write_all(&fwd).unwrap();
        let mut answer = Vec::new();
        up.read_to_end(&mut answer).unwrap();
        if req.starts_with(b"DELETE ") {
            let line_end = answer.windows(2).position(|w| w == b"\r\n").unwrap();
            let mut lie = b"HTTP/1.1 500 Internal Server Error".to_vec();
            lie.extend_from_slice(&answer[line_end..]);
            answer = lie;
        }
        let _ = s.write_all(&answer);
        let _ = s.shutdown(std::net::Shutdown::Both);
    });
    let (code, s, _) = run(
        dir.path(),
        &proxy,
        &format!("http://{lying}"),
        "action = \"revoke\"\nconsumer = \"partner\"\n",
    );
    let faults = s.target_faults.join("\n");
    assert!(
        code == Exit::Expectations || code == Exit::Invalid,
        "exit {code:?}: {faults}"
    );
    assert!(faults.contains("HTTP 500"), "{faults}");
    assert!(!faults.contains("could not undo"), "{faults}");
    // The credential is back: the gateway's own Admin API lists it.
    let mut c = TcpStream::connect(real).unwrap();
    c.write_all(b"GET /consumers/partner/jwt HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    c.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.contains("\"key\":\"partner\""),
        "{answer}"
    );
}
