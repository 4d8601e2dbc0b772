//! The spike proxy on monoio (io_uring, thread per core), one thread:
//! `monoio-proxy LISTEN UPSTREAM`. Keep-alive both sides, one upstream
//! connection per client connection, Content-Length responses only.
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::{TcpListener, TcpStream};
use runtime_spike::{request_head, response_head};

async fn fill(s: &mut TcpStream, buf: Vec<u8>) -> (std::io::Result<usize>, Vec<u8>) {
    let mut buf = buf;
    if buf.capacity() - buf.len() < 4096 {
        buf.reserve(16 << 10);
    }
    let (len, cap) = (buf.len(), buf.capacity());
    let (res, slice) = s.read(buf.slice_mut(len..cap)).await;
    (res, slice.into_inner())
}

async fn conn(mut c: TcpStream, up: String) -> std::io::Result<()> {
    c.set_nodelay(true)?;
    let mut u = TcpStream::connect(up.as_str()).await?;
    u.set_nodelay(true)?;
    let (mut buf, mut ubuf) = (Vec::with_capacity(8 << 10), Vec::with_capacity(16 << 10));
    loop {
        buf.clear();
        while request_head(&buf).is_none() {
            let (res, b) = fill(&mut c, buf).await;
            buf = b;
            if res? == 0 {
                return Ok(());
            }
        }
        let (res, b) = u.write_all(buf).await;
        buf = b;
        res?;
        ubuf.clear();
        let total = loop {
            if let Some((h, n)) = response_head(&ubuf) {
                break h + n;
            }
            let (res, b) = fill(&mut u, ubuf).await;
            ubuf = b;
            if res? == 0 {
                return Ok(());
            }
        };
        while ubuf.len() < total {
            let (res, b) = fill(&mut u, ubuf).await;
            ubuf = b;
            if res? == 0 {
                return Ok(());
            }
        }
        let (res, b) = c.write_all(ubuf).await;
        ubuf = b;
        res?;
    }
}

#[monoio::main(driver = "io_uring", entries = 1024, timer_enabled = false)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let l = TcpListener::bind(args[1].as_str()).expect("listen");
    println!("listening");
    loop {
        let Ok((c, _)) = l.accept().await else { continue };
        monoio::spawn(conn(c, args[2].clone()));
    }
}
