//! The flags of the commands that drive load: `loadgen run FILE` and
//! `loadgen URL`, and the output flags they share.

use std::path::PathBuf;

#[derive(Debug, Default, clap::Args)]
pub struct RunArgs {
    pub scenario: PathBuf,
    #[command(flatten)]
    pub output: RunOutput,
    /// Replace a target's URL: NAME=URL (repeatable).
    #[arg(long = "target", value_name = "NAME=URL")]
    pub targets: Vec<String>,
    /// Constant arrival rate for every open-loop phase (requests per second).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Duration of every phase (e.g. 10s).
    #[arg(long, value_parser = mock_upstream::spec::parse_duration)]
    pub duration: Option<std::time::Duration>,
    /// Rounds (every phase once per target per round); with --precision, the fewest.
    #[arg(long)]
    pub rounds: Option<u32>,
    /// Add rounds until every added figure's 95 % interval (added.p50, or
    /// `[precision] at`) is within ± this, e.g. 10us; progress shows the
    /// interval after each round.
    #[arg(long, value_name = "D", value_parser = mock_upstream::spec::parse_duration)]
    pub precision: Option<std::time::Duration>,
    /// With --precision: stop after this many rounds, precise or not (default 30).
    #[arg(long, value_name = "N")]
    pub max_rounds: Option<u32>,
    /// Run shard K of N: arrivals K, K+N, K+2N, … of the one schedule
    /// (auto/N: K from JOB_COMPLETION_INDEX, as a Kubernetes Indexed Job
    /// sets it). Connections are per shard. N > 1 needs --start-at.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<crate::shard::Shard>,
    /// Prepare, then start the schedule at this time (RFC 3339 UTC, e.g.
    /// 2026-12-01T15:00:00Z, or unix seconds); every round and target then
    /// runs at a fixed offset from it, the same on every shard.
    #[arg(long, value_name = "TIME", value_parser = crate::shard::parse_start_at)]
    pub start_at: Option<std::time::SystemTime>,
    /// Serve live metrics of the run on http://ADDR/metrics (OpenMetrics
    /// text for Prometheus), e.g. 0.0.0.0:9464; port 0 picks a free one.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Keep serving the final metrics this long after the run (longer than
    /// Prometheus's scrape interval, so its last scrape sees the end), e.g. 20s.
    #[arg(long, value_name = "DURATION", value_parser = mock_upstream::spec::parse_duration, requires = "metrics_listen")]
    pub metrics_linger: Option<std::time::Duration>,
}

/// Where a run writes and what it shows: `loadgen run`'s and `loadgen URL`'s.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RunOutput {
    /// Results directory (default results/<scenario name>-<UTC timestamp>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// No live progress and no terminal summary.
    #[arg(long)]
    pub quiet: bool,
    /// Skip measuring this machine's resolution before the first phase
    /// (as `calibrate = false` in the scenario does).
    #[arg(long)]
    pub no_calibrate: bool,
    /// Do not render charts and report.md/report.html at the end.
    #[arg(long)]
    pub no_report: bool,
}

/// The flags of `loadgen URL`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct UrlArgs {
    /// Load one URL without a scenario file (http:// or https://), open
    /// loop at --rate unless --concurrency is given.
    #[arg(value_name = "URL")]
    pub url: Option<String>,
    /// Arrival rate, requests per second (open loop; coordinated-omission-free) [default: 1000].
    #[arg(long, value_name = "RPS", conflicts_with = "concurrency")]
    pub rate: Option<f64>,
    /// Closed loop instead: this many requests in flight, each sent when the last returns.
    #[arg(long, value_name = "N")]
    pub concurrency: Option<u32>,
    /// How long to record, per round (e.g. 30s).
    #[arg(long, default_value = "10s", value_parser = mock_upstream::spec::parse_duration)]
    pub duration: std::time::Duration,
    /// An unrecorded warm-up at the same load before each round (0s: none).
    #[arg(long, default_value = "1s", value_parser = mock_upstream::spec::parse_duration)]
    pub warmup: std::time::Duration,
    /// Connections per target.
    #[arg(long, default_value_t = 16)]
    pub connections: u32,
    /// Rounds (each target once per round, order rotated); default 1, or 5 with --baseline.
    #[arg(long)]
    pub rounds: Option<u32>,
    /// The seed of the request sequence and schedule.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// A request header, "Name: value" (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// The request method.
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// The request body.
    #[arg(long)]
    pub body: Option<String>,
    /// The status every response must have (default: any 2xx).
    #[arg(long)]
    pub expect: Option<u16>,
    /// HTTP/2 (h2c prior knowledge, or ALPN over TLS) instead of HTTP/1.1.
    #[arg(long)]
    pub http2: bool,
    /// Accept any TLS certificate (https:// only).
    #[arg(long)]
    pub insecure: bool,
    /// Send this token as "Authorization: Bearer TOKEN" on every request.
    #[arg(long, value_name = "TOKEN", conflicts_with_all = ["jwt_secret", "jwt_key"])]
    pub bearer: Option<String>,
    /// Sign tokens with this HMAC secret (HS256 unless --alg).
    #[arg(long, value_name = "SECRET", conflicts_with = "jwt_key")]
    pub jwt_secret: Option<String>,
    /// Sign tokens with this PEM private key (needs --alg: RS256, ES256, EdDSA, …).
    #[arg(long, value_name = "PEM")]
    pub jwt_key: Option<PathBuf>,
    /// The signing algorithm.
    #[arg(long, value_name = "ALG")]
    pub alg: Option<String>,
    /// The consumer: the key claim's value (`iss` for Kong and ours, a
    /// `kid` for AWS), as the gateway's credential knows it.
    #[arg(long, default_value = "loadgen", value_name = "KEY")]
    pub consumer: String,
    /// The token profile: generic, kong, rust-gateway, aws-http-api or envoy.
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<String>,
    /// A claim to add, k=v (repeatable); v is JSON when it parses as JSON
    /// (numbers, true, ["a","b"]), else a string.
    #[arg(long = "claim", value_name = "K=V")]
    pub claims: Vec<String>,
    /// Also load this URL, the upstream without the gateway, as the
    /// baseline: each figure then has what the gateway adds over it.
    #[arg(long, value_name = "URL")]
    pub baseline: Option<String>,
    /// Write the equivalent scenario file before running.
    #[arg(long, value_name = "FILE")]
    pub save_scenario: Option<PathBuf>,
    #[command(flatten)]
    pub output: RunOutput,
}
