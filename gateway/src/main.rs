//! `jwt-gateway`: parse flags, load the declarative config, serve until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;

/// A Kong-compatible JWT + ACL gateway (Kong 3.9.3 jwt and acl semantics).
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Exit codes: 0 stopped by a signal after draining, 1 could not start, 2 bad flags or config (names the entity and field)."
)]
struct Args {
    /// Kong declarative configuration (`_format_version: "3.0"`, YAML or JSON).
    #[arg(long)]
    config: PathBuf,
    /// Proxy address; the first stdout line is `proxy listening on http://ADDR`.
    #[arg(long, default_value = "127.0.0.1:8000")]
    listen: SocketAddr,
    /// Worker threads (default: one per CPU); 1 runs everything on one thread.
    #[arg(long)]
    workers: Option<std::num::NonZeroUsize>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let snapshot = match gateway::config::Declarative::load(&args.config).and_then(|d| d.compile())
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("jwt-gateway: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("jwt-gateway: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(snapshot, args.listen)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jwt-gateway: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(snapshot: gateway::config::Snapshot, listen: SocketAddr) -> anyhow::Result<()> {
    let gw = gateway::spawn(snapshot, listen).await?;
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        writeln!(out, "proxy listening on {}", gw.proxy_url())?;
        out.flush()?;
    }
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("cannot watch SIGINT")?,
        _ = term.recv() => {}
    }
    gw.shutdown().await;
    Ok(())
}
