//! Where a target is and how to reach it, resolved once before the run.

use std::net::SocketAddr;
use std::time::Duration;

use rustls::pki_types::ServerName;

/// Where and how to connect.
#[derive(Clone)]
pub struct Endpoint {
    pub addr: SocketAddr,
    /// The host name to resolve again on every new connection
    /// (`resolve = "per-connection"`); `None`: `addr`, resolved once.
    pub resolve: Option<String>,
    /// `host:port` for the Host header / :authority.
    pub authority: String,
    pub scheme: &'static str,
    pub tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    pub http2: bool,
    pub connect_timeout: Duration,
    /// The target's own header lines, after each request's.
    pub headers: http::HeaderMap,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("addr", &self.addr)
            .field("http2", &self.http2)
            .finish_non_exhaustive()
    }
}
