//! The same spike proxy on tokio's current-thread runtime (epoll):
//! `tokio-proxy LISTEN UPSTREAM`.
use runtime_spike::{request_head, response_head};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn fill(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    if buf.capacity() - buf.len() < 4096 {
        buf.reserve(16 << 10);
    }
    s.read_buf(buf).await
}

async fn conn(mut c: TcpStream, up: String) -> std::io::Result<()> {
    c.set_nodelay(true)?;
    let mut u = TcpStream::connect(up.as_str()).await?;
    u.set_nodelay(true)?;
    let (mut buf, mut ubuf) = (Vec::with_capacity(8 << 10), Vec::with_capacity(16 << 10));
    loop {
        buf.clear();
        while request_head(&buf).is_none() {
            if fill(&mut c, &mut buf).await? == 0 {
                return Ok(());
            }
        }
        u.write_all(&buf).await?;
        ubuf.clear();
        let total = loop {
            if let Some((h, n)) = response_head(&ubuf) {
                break h + n;
            }
            if fill(&mut u, &mut ubuf).await? == 0 {
                return Ok(());
            }
        };
        while ubuf.len() < total {
            if fill(&mut u, &mut ubuf).await? == 0 {
                return Ok(());
            }
        }
        c.write_all(&ubuf).await?;
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let l = TcpListener::bind(args[1].as_str()).await.expect("listen");
    println!("listening");
    loop {
        let Ok((c, _)) = l.accept().await else { continue };
        tokio::spawn(conn(c, args[2].clone()));
    }
}
