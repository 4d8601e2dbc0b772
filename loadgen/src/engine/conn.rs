//! Client connections: HTTP/1.1 (keep-alive or one per request, on the lean
//! client of [`super::h1`]), HTTP/2 (hyper)
//! (prior knowledge or TLS ALPN, several streams per connection), TLS via
//! rustls, with connect timeouts and failures classified without strings.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

pub use super::endpoint::Endpoint;
use crate::measure::record::{ErrorClass, Opened};

pub type Body = Full<Bytes>;

/// A ready-to-use connection.
#[derive(Debug)]
pub enum Sender {
    H1(super::h1::Conn),
    H2(http2::SendRequest<Body>),
}

fn io_class(e: &std::io::Error) -> ErrorClass {
    use std::io::ErrorKind::*;
    match e.kind() {
        TimedOut => ErrorClass::Timeout,
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => ErrorClass::Reset,
        InvalidData if e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) => {
            ErrorClass::Tls
        }
        _ => ErrorClass::Connect,
    }
}

/// Classifies a hyper error with its predicates and source chain.
pub fn classify(e: &hyper::Error) -> ErrorClass {
    if e.is_timeout() {
        return ErrorClass::Timeout;
    }
    if e.is_parse() || e.is_parse_status() || e.is_user() {
        return ErrorClass::Protocol;
    }
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return match io_class(io) {
                ErrorClass::Connect => ErrorClass::Reset,
                c => c,
            };
        }
        if s.is::<rustls::Error>() {
            return ErrorClass::Tls;
        }
        src = s.source();
    }
    if e.is_canceled() || e.is_closed() || e.is_incomplete_message() {
        return ErrorClass::Reset;
    }
    ErrorClass::Protocol
}

/// Opens one connection (DNS when resolved per connection, TCP, TLS, HTTP
/// handshake) within the connect timeout; with what each step took.
pub async fn connect(ep: &Endpoint) -> Result<(Sender, Opened), ErrorClass> {
    match tokio::time::timeout(ep.connect_timeout, connect_inner(ep)).await {
        Ok(r) => r,
        Err(_) => Err(ErrorClass::Timeout),
    }
}

#[allow(
    clippy::disallowed_methods,
    reason = "measuring points of the timing breakdown: DNS, TCP connect and TLS handshake"
)]
async fn connect_inner(ep: &Endpoint) -> Result<(Sender, Opened), ErrorClass> {
    let began = std::time::Instant::now();
    let (addr, dns) = match &ep.resolve {
        None => (ep.addr, None),
        Some(host) => {
            let addr = tokio::net::lookup_host((host.as_str(), ep.addr.port()))
                .await
                .ok()
                .and_then(|mut a| a.next())
                .ok_or(ErrorClass::Connect)?;
            (addr, Some(began.elapsed()))
        }
    };
    let at = std::time::Instant::now();
    let tcp = TcpStream::connect(addr).await.map_err(|e| io_class(&e))?;
    let tcp_done = std::time::Instant::now();
    let mut opened = Opened {
        dns,
        connect: tcp_done - at,
        tls: None,
    };
    let _ = tcp.set_nodelay(true);
    let sender = match &ep.tls {
        None => handshake(TokioIo::new(tcp), ep.http2).await?,
        Some((connector, name)) => {
            let tls =
                connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| match io_class(&e) {
                        ErrorClass::Connect => ErrorClass::Tls,
                        c => c,
                    })?;
            opened.tls = Some(tcp_done.elapsed());
            let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
            handshake(TokioIo::new(tls), h2 || ep.http2).await?
        }
    };
    Ok((sender, opened))
}

async fn handshake<I>(io: TokioIo<I>, h2: bool) -> Result<Sender, ErrorClass>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    if !h2 {
        return Ok(Sender::H1(super::h1::Conn::new(Box::new(io.into_inner()))));
    }
    {
        let (send, conn) = http2::Builder::new(TokioExecutor::new())
            .handshake(io)
            .await
            .map_err(|e| classify(&e))?;
        tokio::task::spawn_local(async move {
            let _ = conn.await;
        });
        Ok(Sender::H2(send))
    }
}

/// Why a target's TLS client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(transparent)]
    Rustls(#[from] rustls::Error),
    #[error("CA file {}: {source}", path.display())]
    CaFile {
        path: std::path::PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
}

/// Builds the TLS connector of a target.
pub fn tls_connector(
    ca_file: Option<&std::path::Path>,
    insecure: bool,
    http2: bool,
) -> Result<tokio_rustls::TlsConnector, TlsError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let mut cfg = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        match ca_file {
            Some(path) => {
                let ca = |source| TlsError::CaFile {
                    path: path.to_owned(),
                    source,
                };
                for cert in CertificateDer::pem_file_iter(path).map_err(ca)? {
                    roots.add(cert.map_err(ca)?)?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    cfg.alpn_protocols = if http2 {
        vec![b"h2".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(tokio_rustls::TlsConnector::from(Arc::new(cfg)))
}

#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A request slot: one HTTP/1.1 connection, or one stream of a shared HTTP/2 connection.
#[derive(Debug)]
pub struct Slot {
    pub endpoint: Rc<Endpoint>,
    conn: SlotConn,
    /// False in new-connection mode: the connection is dropped after each request.
    keep_alive: bool,
    /// When the slot was last leased.
    leased: Option<std::time::Instant>,
}

/// A connection unused for longer than this is checked for a server-side
/// close before it is used again (one non-blocking read).
const IDLE_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Debug)]
enum SlotConn {
    H1(Option<super::h1::Conn>),
    H2(Rc<RefCell<Option<http2::SendRequest<Body>>>>),
}

/// A connection borrowed for one request.
#[derive(Debug)]
pub enum Lease {
    H1(super::h1::Conn),
    H2(http2::SendRequest<Body>),
}

impl Slot {
    pub fn h1(endpoint: Rc<Endpoint>, keep_alive: bool) -> Slot {
        Slot {
            endpoint,
            conn: SlotConn::H1(None),
            keep_alive,
            leased: None,
        }
    }

    /// `streams` slots sharing one HTTP/2 connection.
    pub fn h2_group(endpoint: Rc<Endpoint>, streams: usize) -> Vec<Slot> {
        let shared = Rc::new(RefCell::new(None));
        (0..streams)
            .map(|_| Slot {
                endpoint: endpoint.clone(),
                conn: SlotConn::H2(shared.clone()),
                keep_alive: true,
                leased: None,
            })
            .collect()
    }

    /// A live sender, connecting first when needed (then with what opening
    /// the connection took). `now` (the caller's clock reading): a
    /// keep-alive connection idle for over a second is checked first for a
    /// close by the server while it sat unused.
    pub async fn lease(
        &mut self,
        now: std::time::Instant,
    ) -> Result<(Lease, Option<Opened>), ErrorClass> {
        let idle = self
            .leased
            .replace(now)
            .is_some_and(|last| now.saturating_duration_since(last) > IDLE_CHECK);
        match &mut self.conn {
            SlotConn::H1(s) => {
                if let Some(mut conn) = s.take().filter(super::h1::Conn::is_reusable)
                    && !(idle && conn.closed_by_peer())
                {
                    return Ok((Lease::H1(conn), None));
                }
                let (sender, opened) = connect(&self.endpoint).await?;
                let lease = match sender {
                    Sender::H1(s) => Lease::H1(s),
                    Sender::H2(s) => Lease::H2(s),
                };
                Ok((lease, Some(opened)))
            }
            SlotConn::H2(shared) => {
                let live = shared.borrow().as_ref().filter(|s| !s.is_closed()).cloned();
                if let Some(s) = live {
                    return Ok((Lease::H2(s), None));
                }
                let s = match connect(&self.endpoint).await? {
                    (Sender::H2(s), opened) => (s, opened),
                    (Sender::H1(_), _) => return Err(ErrorClass::Protocol),
                };
                *shared.borrow_mut() = Some(s.0.clone());
                Ok((Lease::H2(s.0), Some(s.1)))
            }
        }
    }

    /// Returns an HTTP/1 sender after a request (kept only in keep-alive mode).
    pub fn give_back(&mut self, lease: Lease) {
        if let (SlotConn::H1(s), Lease::H1(conn)) = (&mut self.conn, lease)
            && self.keep_alive
            && conn.is_reusable()
        {
            *s = Some(conn);
        }
    }

    /// Connects ahead of the first request (best effort).
    pub async fn warm(&mut self, now: std::time::Instant) {
        if let Ok((l, _)) = self.lease(now).await {
            self.give_back(l);
        }
    }
}
