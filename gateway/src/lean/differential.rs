//! The two HTTP/1 cores side by side: the same request bytes go to a
//! gateway on each ([`Core::Lean`](crate::Core) and hyper), both in front
//! of one upstream that records what it receives. The integration test
//! (`tests/it/lean.rs`, generated requests) and the cargo-fuzz target
//! `lean_differential` (any bytes) drive it; each asserts the two answers
//! are equal.

#![allow(
    clippy::missing_panics_doc,
    reason = "a test harness: a setup that cannot bind loopback panics"
)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the upstream received, normalised: the request line, the headers
/// sorted by lowercase name (stable: repeated names keep their order),
/// `x-forwarded-port` (each gateway's own port) blanked, and the body.
pub type Seen = Arc<Mutex<Vec<String>>>;

fn normalise(head: &[u8], body: &[u8]) -> String {
    let mut storage = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut storage);
    let Ok(httparse::Status::Complete(_)) = req.parse(head) else {
        return format!("unparsable: {:?}", String::from_utf8_lossy(head));
    };
    let mut headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|h| {
            let name = h.name.to_ascii_lowercase();
            let value = if name == "x-forwarded-port" {
                "PORT".to_owned()
            } else {
                String::from_utf8_lossy(h.value).into_owned()
            };
            (name, value)
        })
        .collect();
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    format!(
        "{} {} HTTP/1.{}\n{headers:?}\n{:?}",
        req.method.unwrap_or(""),
        req.path.unwrap_or(""),
        req.version.unwrap_or(9),
        String::from_utf8_lossy(body)
    )
}

/// Reads one request (head, then a body by length or chunked) from `buf`
/// and `s`; None at the end of the connection.
async fn one_request(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        let mut storage = [httparse::EMPTY_HEADER; 128];
        let mut req = httparse::Request::new(&mut storage);
        if let Ok(httparse::Status::Complete(n)) = req.parse(buf) {
            let header = |name: &str| {
                req.headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(name))
                    .map(|h| String::from_utf8_lossy(h.value).to_ascii_lowercase())
            };
            let chunked = header("transfer-encoding").is_some_and(|v| v.contains("chunked"));
            let length: usize = header("content-length")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            let head = buf[..n].to_vec();
            let mut body_end = n + length;
            loop {
                if chunked {
                    if let Some(i) = buf[n..].windows(5).position(|w| w == b"0\r\n\r\n") {
                        body_end = n + i + 5;
                        break;
                    }
                } else if buf.len() >= body_end {
                    break;
                }
                if s.read_buf(buf).await.ok()? == 0 {
                    return None;
                }
            }
            let seen = normalise(&head, &buf[n..body_end]);
            buf.drain(..body_end);
            return Some(seen);
        }
        if s.read_buf(buf).await.ok()? == 0 {
            return None;
        }
    }
}

/// An upstream that records every request and answers `200 ok`.
pub async fn recorder() -> (std::net::SocketAddr, Seen) {
    let l = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a listener on loopback");
    let addr = l.local_addr().expect("its address");
    let seen = Seen::default();
    let keep = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let seen = keep.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                while let Some(r) = one_request(&mut s, &mut buf).await {
                    seen.lock().unwrap_or_else(|p| p.into_inner()).push(r);
                    let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-up: 1\r\n\r\nok";
                    if s.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// The answer's status (0: none within `patience`) from one fresh connection.
async fn status_of(addr: std::net::SocketAddr, raw: &[u8], patience: Duration) -> u16 {
    let Ok(mut s) = TcpStream::connect(addr).await else {
        return 0;
    };
    if s.write_all(raw).await.is_err() {
        return 0;
    }
    let mut got = Vec::new();
    let read = tokio::time::timeout(patience, async {
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            if s.read_buf(&mut got).await.unwrap_or(0) == 0 {
                break;
            }
        }
    });
    let _ = read.await;
    let line = String::from_utf8_lossy(&got);
    line.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// A gateway on each core (lean first), in front of one recording upstream.
#[derive(Debug)]
pub struct Pair {
    pub gateways: [crate::Handle; 2],
    pub seen: Seen,
    /// How long to wait for an answer before calling it none.
    pub patience: Duration,
}

impl Pair {
    /// Starts the recorder and both gateways on the config `yaml(upstream)`
    /// gives (a Kong declarative file whose services point at the recorder).
    pub async fn new(yaml: impl Fn(std::net::SocketAddr) -> String) -> Pair {
        let (up, seen) = recorder().await;
        let yaml = yaml(up);
        let mut gateways = Vec::new();
        for core in [crate::Core::Lean, crate::Core::Hyper] {
            let snap = crate::config::Declarative::parse(&yaml, "differential.yml")
                .expect("the differential config parses")
                .compile()
                .expect("the differential config compiles");
            let listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
            gateways.push(
                crate::spawn_core(snap, listen, crate::limits(), core)
                    .await
                    .expect("a gateway on loopback"),
            );
        }
        let Ok(gateways) = <[crate::Handle; 2]>::try_from(gateways) else {
            unreachable!("two cores, two gateways")
        };
        Pair {
            gateways,
            seen,
            patience: Duration::from_secs(1),
        }
    }

    /// (status, what the upstream got) from each core, lean first.
    pub async fn both(&self, raw: &[u8]) -> [(u16, Vec<String>); 2] {
        let mut out: [(u16, Vec<String>); 2] = Default::default();
        for (gw, slot) in self.gateways.iter().zip(out.iter_mut()) {
            self.seen.lock().unwrap_or_else(|p| p.into_inner()).clear();
            let status = status_of(gw.proxy_addr(), raw, self.patience).await;
            // The upstream has the request before the gateway answers.
            let seen = std::mem::take(&mut *self.seen.lock().unwrap_or_else(|p| p.into_inner()));
            *slot = (status, seen);
        }
        out
    }
}
