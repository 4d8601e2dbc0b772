//! Pingora (pingora-proxy 0.9) as a plain proxy: `pingora-spike LISTEN UPSTREAM`,
//! the server's defaults (one worker thread), every request to UPSTREAM.
use async_trait::async_trait;
use pingora_core::server::Server;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_proxy::{ProxyHttp, Session};

pub struct Up(String);

#[async_trait]
impl ProxyHttp for Up {
    type CTX = ();
    fn new_ctx(&self) -> Self::CTX {}
    async fn upstream_peer(&self, _s: &mut Session, _c: &mut ()) -> pingora_core::Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.0.as_str(), false, String::new())))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut server = Server::new(None).unwrap();
    server.bootstrap();
    let mut svc = pingora_proxy::http_proxy_service(&server.configuration, Up(args[2].clone()));
    svc.add_tcp(&args[1]);
    server.add_service(svc);
    println!("listening");
    server.run_forever();
}
