//! `jwt-gateway`: parse flags, load the declarative config, serve the proxy
//! and the Admin API until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;

/// mimalloc: the proxy allocates per request (header maps, hyper's client
/// futures); measured against glibc malloc in docs/BENCHMARKS.md.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Admin API address (Kong-compatible subset); keep it on loopback. The
    /// second stdout line is `admin listening on http://ADDR`.
    #[arg(long, default_value = "127.0.0.1:8001")]
    admin_listen: SocketAddr,
    /// Where Admin API changes persist: an SQLite database, created with the
    /// config's consumers and loaded instead of them when it exists (default:
    /// beside the config, `<config>.state.db`; a JSON state file from an
    /// earlier version, given here or found at `<config>.state.json`, is
    /// migrated into it).
    #[arg(long)]
    state: Option<PathBuf>,
    /// Terminate TLS on the proxy port with this PEM certificate chain (ALPN h2, http/1.1).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Worker threads (default: one per CPU); 1 runs everything on one thread.
    #[arg(long)]
    workers: Option<std::num::NonZeroUsize>,
    /// A request head must arrive within this, or the client gets 408 and the
    /// connection closes (nginx's and Kong's `client_header_timeout`).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    client_header_timeout: std::time::Duration,
    /// An idle keep-alive connection is closed after this (Kong's `keepalive_timeout`).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    keepalive_timeout: std::time::Duration,
    /// A request body that sends nothing for this long gets 408 and the
    /// connection closes; its upstream connection is released (Kong's
    /// `client_body_timeout`; the Admin API too).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    client_body_timeout: std::time::Duration,
    /// The longest request header line in bytes (name, `: `, value), and
    /// four times that for all of them; longer gets 431 and the connection
    /// closes (Kong's `large_client_header_buffers 4 8k`; 0: no cap).
    #[arg(long, default_value_t = 8192)]
    max_header_line: usize,
    /// Open client connections at most, per listener (default: what the
    /// open-file limit holds at two descriptors each, after raising the soft
    /// limit to the hard one); at the cap new connections wait in the backlog.
    #[arg(long)]
    max_connections: Option<std::num::NonZeroUsize>,
    /// The Admin API answers a change at once and the proxy applies it this
    /// much later: a known stale window, as a Kong node polling for changes
    /// every `db_update_frequency` has (for measuring revocation; default 0).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    admin_apply_delay: std::time::Duration,
    /// What serves plain-HTTP HTTP/1.1: `lean`, our own path (hyper takes
    /// over a connection at its first request with a body, an upgrade,
    /// HTTP/2 or anything unusual), or `hyper` for everything.
    #[arg(long, value_enum, default_value_t = gateway::Core::Lean)]
    core: gateway::Core,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let config = match gateway::config::Declarative::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("jwt-gateway: {e}");
            return ExitCode::from(2);
        }
    };
    // Check the whole file up front: a bad config exits 2, naming the entity and field.
    if let Err(e) = config.compile() {
        eprintln!("jwt-gateway: {}: {e}", args.config.display());
        return ExitCode::from(2);
    }
    let beside = |suffix: &str| {
        let mut name = args.config.file_name().unwrap_or_default().to_os_string();
        name.push(suffix);
        args.config.with_file_name(name)
    };
    let state = match &args.state {
        Some(s) => s.clone(),
        None => {
            let (db, legacy) = (beside(".state.db"), beside(".state.json"));
            if !db.exists()
                && legacy.exists()
                && let Err(e) = gateway::admin::db::migrate(&legacy, &db)
            {
                eprintln!("jwt-gateway: {e}");
                return ExitCode::from(1);
            }
            db
        }
    };
    let opts = gateway::Options {
        config,
        listen: args.listen,
        admin_listen: Some(args.admin_listen),
        state_file: Some(state),
        tls: args.tls_cert.clone().zip(args.tls_key.clone()),
        limits: {
            let mut l = gateway::limits();
            l.header_timeout = args.client_header_timeout;
            l.keepalive_timeout = args.keepalive_timeout;
            l.body_timeout = args.client_body_timeout;
            l.max_header_line = args.max_header_line;
            if let Some(n) = args.max_connections {
                l.max_connections = n.get();
            }
            l
        },
        admin_apply_delay: args.admin_apply_delay,
        core: args.core,
    };
    let rt = conn_guard::runtime(args.workers);
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("jwt-gateway: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jwt-gateway: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(opts: gateway::Options) -> anyhow::Result<()> {
    // Watch the signals before announcing the addresses, so that a supervisor
    // that signals right after reading them gets a graceful stop.
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let gw = gateway::start(opts).await?;
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        writeln!(out, "proxy listening on {}", gw.proxy_url())?;
        if let Some(a) = gw.admin_addr() {
            writeln!(out, "admin listening on http://{a}")?;
        }
        out.flush()?;
    }
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    gw.shutdown().await;
    Ok(())
}
