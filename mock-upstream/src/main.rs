//! `mock-upstream`: the command-line front of the library.

use std::net::SocketAddr;
use std::num::NonZeroU64;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use mock_upstream::spec::{parse_duration, parse_positive_duration};
use mock_upstream::{
    Config, ExtraHeader, JwksConfig, Latency, Program, Size, StallSchedule, StatusMix, TlsConfig,
};

const AFTER_HELP: &str = "\
Per-request overrides (request headers; a header overrides the flag):
  X-Mock-Latency: fixed:2ms | uniform:1ms..5ms | normal:5ms,1ms | lognormal:2ms,20ms
  X-Mock-Size: 0 | 512 | 1KiB | 1MiB
  X-Mock-Status: 503 | 200:98,503:2
  X-Mock-Header: X-Name: value          (repeatable)
  X-Mock-Close-Every: N                 (Connection: close on every Nth request of the connection)
An unparsable header gets 400 naming it.

Routes: /healthz, /stats (JSON), /echo (the request as JSON), POST /_mock/stall?for=500ms,
/.well-known/jwks.json and /.well-known/openid-configuration (with --jwks-dir); anything else
is the programmable response.

Exit codes: 0 stopped by SIGINT/SIGTERM after draining, 1 could not start (e.g. address in use),
2 bad command line (names the flag).";

/// A fast upstream with programmable latency, size and status that reports its
/// own service time in `Server-Timing: upstream;dur=<ms>`.
#[derive(Debug, Parser)]
#[command(version, after_help = AFTER_HELP)]
struct Args {
    /// Address to listen on; port 0 picks a free port. The first stdout line is
    /// `listening on http://ADDR` (or https).
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    /// Worker threads (default: one per CPU). 1 runs everything on one thread.
    #[arg(long)]
    workers: Option<std::num::NonZeroUsize>,
    /// Response delay distribution.
    #[arg(long, default_value = "0", value_parser = parse_spec::<Latency>)]
    latency: Latency,
    /// Response body size.
    #[arg(long, default_value = "2", value_parser = parse_spec::<Size>)]
    size: Size,
    /// Response status codes with weights.
    #[arg(long, default_value = "200", value_parser = parse_spec::<StatusMix>)]
    status: StatusMix,
    /// Extra response header `Name: value` (repeatable).
    #[arg(long = "header", value_parser = parse_spec::<ExtraHeader>)]
    headers: Vec<ExtraHeader>,
    /// Answer `Connection: close` on every Nth request of an HTTP/1 connection.
    #[arg(long)]
    close_every: Option<NonZeroU64>,
    /// Stall every D (first stall after D): hold all programmable responses for --stall-for.
    #[arg(long, value_parser = parse_positive_duration, requires = "stall_for")]
    stall_every: Option<Duration>,
    /// How long each periodic stall lasts.
    #[arg(long, value_parser = parse_duration, requires = "stall_every")]
    stall_for: Option<Duration>,
    /// Serve /.well-known/jwks.json (and openid-configuration) from this directory.
    #[arg(long)]
    jwks_dir: Option<PathBuf>,
    /// Issuer URL for the discovery document (default: this server's URL).
    #[arg(long, requires = "jwks_dir")]
    issuer: Option<String>,
    /// TLS certificate chain (PEM).
    #[arg(long, requires = "tls_key", conflicts_with = "tls_self_signed")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve TLS with a fresh self-signed certificate for localhost.
    #[arg(long)]
    tls_self_signed: bool,
    /// How long shutdown waits for in-flight requests.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    drain_timeout: Duration,
    /// A request head must arrive within this, or 408 and the connection closes.
    #[arg(long, default_value = "60s", value_parser = parse_positive_duration)]
    client_header_timeout: Duration,
    /// An idle keep-alive connection is closed after this.
    #[arg(long, default_value = "60s", value_parser = parse_positive_duration)]
    keepalive_timeout: Duration,
    /// A request body that sends nothing for this long gets 408 and the
    /// connection closes (nginx's `client_body_timeout`).
    #[arg(long, default_value = "60s", value_parser = parse_positive_duration)]
    client_body_timeout: Duration,
    /// Open connections at most (default: what the open-file limit holds,
    /// after raising the soft limit to the hard one).
    #[arg(long)]
    max_connections: Option<std::num::NonZeroUsize>,
}

fn parse_spec<T: std::str::FromStr<Err = mock_upstream::SpecError>>(
    s: &str,
) -> Result<T, mock_upstream::SpecError> {
    s.parse()
}

impl From<Args> for Config {
    fn from(a: Args) -> Self {
        let tls = match (a.tls_cert, a.tls_key, a.tls_self_signed) {
            (Some(cert), Some(key), _) => Some(TlsConfig::Files { cert, key }),
            (_, _, true) => Some(TlsConfig::SelfSigned),
            _ => None,
        };
        Config {
            listen: a.listen,
            tls,
            program: Program {
                latency: a.latency,
                size: a.size,
                status: a.status,
                headers: a.headers,
                close_every: a.close_every,
            },
            stall: a
                .stall_every
                .zip(a.stall_for)
                .map(|(every, hold)| StallSchedule { every, hold }),
            jwks: a.jwks_dir.map(|dir| JwksConfig {
                dir,
                issuer: a.issuer,
            }),
            drain_timeout: a.drain_timeout,
            header_timeout: a.client_header_timeout,
            keepalive_timeout: a.keepalive_timeout,
            body_timeout: a.client_body_timeout,
            max_connections: a.max_connections.map(|n| n.get()),
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let workers = args.workers;
    let runtime = conn_guard::runtime(workers);
    let result = runtime
        .context("cannot start the tokio runtime")
        .and_then(|rt| rt.block_on(run(args.into())));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mock-upstream: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    // Watch the signals before announcing the address, so that a supervisor
    // that signals right after reading it gets a graceful drain.
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let server = mock_upstream::spawn(config).await?;
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {}", server.base_url())?;
        out.flush()?;
    }
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    tracing::info!("draining in-flight requests");
    server.shutdown().await;
    Ok(())
}
