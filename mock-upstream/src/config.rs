//! The validated server configuration shared by the binary and embedders.

use std::net::SocketAddr;
use std::num::NonZeroU64;
use std::path::PathBuf;
use std::time::Duration;

use crate::spec::{ExtraHeader, Latency, Size, StatusMix};

/// What every response looks like unless a request's `X-Mock-*` headers say otherwise.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    /// Delay before the response head is sent, measured from request head received.
    pub latency: Latency,
    /// Response body size in bytes.
    pub size: Size,
    /// Response status codes with weights.
    pub status: StatusMix,
    /// Extra response headers.
    pub headers: Vec<ExtraHeader>,
    /// Answer `Connection: close` on every Nth request of an HTTP/1 connection.
    pub close_every: Option<NonZeroU64>,
}

impl Default for Program {
    fn default() -> Self {
        Self {
            latency: Latency::ZERO,
            size: Size(2),
            status: StatusMix::default(),
            headers: Vec::new(),
            close_every: None,
        }
    }
}

/// Periodic stalls: from `every` after start, every `every`, hold all
/// programmable responses for `hold`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StallSchedule {
    pub every: Duration,
    pub hold: Duration,
}

/// TLS for the listener. ALPN offers `h2` and `http/1.1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsConfig {
    /// A PEM certificate chain and a PEM private key (PKCS#8, PKCS#1 or SEC1).
    Files { cert: PathBuf, key: PathBuf },
    /// A fresh self-signed certificate for `localhost` and `127.0.0.1`.
    SelfSigned,
}

/// Serve an issuer's discovery and key-set documents from a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksConfig {
    /// Holds `jwks.json` and optionally `openid-configuration.json`; read on each request,
    /// so rewriting the files rotates keys.
    pub dir: PathBuf,
    /// The issuer URL; defaults to the server's own base URL.
    pub issuer: Option<String>,
}

/// Everything [`crate::spawn`] needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: SocketAddr,
    pub tls: Option<TlsConfig>,
    pub program: Program,
    pub stall: Option<StallSchedule>,
    pub jwks: Option<JwksConfig>,
    /// How long a graceful shutdown waits for in-flight requests.
    pub drain_timeout: Duration,
    /// A request head must arrive within this, else 408 and close (60 s, as nginx).
    pub header_timeout: Duration,
    /// An idle keep-alive connection closes after this (60 s, as Kong).
    pub keepalive_timeout: Duration,
    /// A request body that sends nothing for this long gets 408 and the
    /// connection closes (60 s, nginx's `client_body_timeout`).
    pub body_timeout: Duration,
    /// Open connections at most (default: what the open-file limit holds).
    pub max_connections: Option<usize>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: None,
            program: Program::default(),
            stall: None,
            jwks: None,
            drain_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(60),
            keepalive_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(60),
            max_connections: None,
        }
    }
}
