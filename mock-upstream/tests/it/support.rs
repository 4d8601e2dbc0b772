//! Test support: servers on 127.0.0.1:0 and a small hyper client over
//! HTTP/1.1, h2c and TLS.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use mock_upstream::{Config, Handle, Program};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;

pub async fn start(program: Program) -> Handle {
    start_with(Config {
        program,
        ..Config::default()
    })
    .await
}

pub async fn start_with(config: Config) -> Handle {
    mock_upstream::spawn(config).await.expect("server starts")
}

#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub elapsed: Duration,
}

impl Resp {
    /// The `dur` of `Server-Timing: upstream;dur=<ms>`, in milliseconds.
    pub fn upstream_ms(&self) -> f64 {
        let v = self.headers["server-timing"].to_str().unwrap();
        v.strip_prefix("upstream;dur=")
            .expect("upstream;dur=")
            .parse()
            .unwrap()
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

#[derive(Debug)]
pub enum Client {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

impl Client {
    pub async fn h1(addr: std::net::SocketAddr) -> Client {
        let io = TokioIo::new(TcpStream::connect(addr).await.unwrap());
        let (send, conn) = http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        Client::H1(send)
    }

    pub async fn h2c(addr: std::net::SocketAddr) -> Client {
        let io = TokioIo::new(TcpStream::connect(addr).await.unwrap());
        let (send, conn) = http2::handshake(TokioExecutor::new(), io).await.unwrap();
        tokio::spawn(conn);
        Client::H2(send)
    }

    /// Connects with TLS trusting `cert_pem`, offering `alpn`; returns the negotiated protocol too.
    pub async fn tls(
        addr: std::net::SocketAddr,
        cert_pem: &str,
        alpn: &[&str],
    ) -> (Client, Option<Vec<u8>>) {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap())
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        cfg.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        let tcp = TcpStream::connect(addr).await.unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        let negotiated = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        let io = TokioIo::new(tls);
        let client = if negotiated.as_deref() == Some(b"h2") {
            let (send, conn) = http2::handshake(TokioExecutor::new(), io).await.unwrap();
            tokio::spawn(conn);
            Client::H2(send)
        } else {
            let (send, conn) = http1::handshake(io).await.unwrap();
            tokio::spawn(conn);
            Client::H1(send)
        };
        (client, negotiated)
    }

    pub async fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> Resp {
        self.send(Method::GET, path, headers, Bytes::new()).await
    }

    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Resp {
        self.try_send(method, path, headers, body)
            .await
            .expect("request succeeds")
    }

    pub async fn try_send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Resp, hyper::Error> {
        let is_h2 = matches!(self, Client::H2(_));
        let uri = if is_h2 {
            format!("http://localhost{path}")
        } else {
            path.to_owned()
        };
        let mut req = Request::builder().method(method).uri(uri);
        if !is_h2 {
            req = req.header("host", "localhost");
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(body)).unwrap();
        let start = Instant::now();
        let resp = match self {
            Client::H1(s) => {
                s.ready().await?;
                s.send_request(req).await?
            }
            Client::H2(s) => {
                s.ready().await?;
                s.send_request(req).await?
            }
        };
        let (parts, body) = resp.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Resp {
            status: parts.status,
            version: parts.version,
            headers: parts.headers,
            body,
            elapsed: start.elapsed(),
        })
    }

    pub fn is_closed(&self) -> bool {
        match self {
            Client::H1(s) => s.is_closed(),
            Client::H2(s) => s.is_closed(),
        }
    }
}

/// Polls `cond` until it holds or `within` passes.
pub async fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cond()
}
