//! `loadgen`: parse, install the Ctrl-C handler, run, map to an exit code.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;
use loadgen::cli::{Args, main_with};

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    // SIGINT/SIGTERM: stop sending, let in-flight requests finish, write partial results.
    let _ = std::thread::Builder::new().name("signals".into()).spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        rt.block_on(async {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut term) = signal(SignalKind::terminate()) else { return };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            eprintln!("\nloadgen: stopping: finishing in-flight requests, then writing partial results");
            flag.store(true, Ordering::Relaxed);
        });
    });
    main_with(args, stop).into()
}
