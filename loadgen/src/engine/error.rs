//! Why a run could not be carried out.

use std::path::PathBuf;

/// Why a run could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The scenario could not be made ready to run (its tokens, its events).
    #[error(transparent)]
    Scenario(#[from] crate::scenario::ScenarioError),
    #[error(
        "[[event]]s need one process: with --shard each shard would carry them out, \
         and no shard sees all of the consumer's traffic"
    )]
    EventsNeedOneProcess,
    /// A file, thread or runtime the run needs.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "--start-at {at}: that was {ago_s:.3} s ago when this shard was ready; choose a later \
         start (every shard prepares first: connections, tokens)"
    )]
    StartAtPassed { at: String, ago_s: f64 },
    /// A target's URL or TLS settings.
    #[error("target {target}: {problem}")]
    Target { target: String, problem: String },
    /// The `[upstream]` program of the builtin upstream.
    #[error("[upstream]: {0}")]
    UpstreamProgram(#[from] mock_upstream::SpecError),
    #[error("cannot start the builtin upstream: {0}")]
    BuiltinUpstream(#[source] mock_upstream::ServeError),
    #[error("builtin:gateway needs a [gateway] section with config = \"kong.yml\"")]
    NoGatewaySection,
    #[error("{}: {source}", path.display())]
    GatewayConfig {
        path: PathBuf,
        #[source]
        source: gateway::config::ConfigError,
    },
    #[error("cannot start the builtin gateway: {0}")]
    BuiltinGateway(#[source] gateway::ServeError),
    #[error("the interval log: {0}")]
    Hlog(#[from] reports::hlog::HlogError),
    /// The run's result files.
    #[error(transparent)]
    Results(#[from] crate::measure::totals::ResultsError),
}

/// An I/O failure on `path`, described as `what` (e.g. "cannot create").
pub(super) fn io(what: &str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> RunError {
    let what = format!("{what} {}", path.display());
    move |source| RunError::Io { what, source }
}
