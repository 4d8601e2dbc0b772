//! The flags of every command, as clap sees them, and the exit statuses.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

const EXIT_CODES: &str = "\
Exit codes:
  0    the run completed and every response matched its expectation
  1    the run could not be carried out (e.g. a target refused to start)
  2    usage error: bad flags or an invalid scenario file (the message names file, line and field)
  3    invalid run: the generator itself was late (schedule-lag p90 > 1 ms); with target
       faults as well, both reasons are printed
  4    target faults: requests refused, reset or timed out, unexpected statuses, sends
       dropped or unfinished because every connection was busy (the run is valid)
  130  interrupted (Ctrl-C): partial results were written, marked \"partial\": true";

/// Exit statuses of `loadgen`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    Failure = 1,
    Usage = 2,
    Invalid = 3,
    Expectations = 4,
    Interrupted = 130,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// gatebench's load generator: open-loop (coordinated-omission-free) and
/// closed-loop HTTP load, HDR-recorded, for measuring what a gateway adds.
#[derive(Debug, Parser)]
#[command(
    name = "loadgen",
    version,
    after_help = EXIT_CODES,
    args_conflicts_with_subcommands = true,
    arg_required_else_help = true,
    override_usage = "loadgen <COMMAND>\n       loadgen [OPTIONS] URL"
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// `loadgen URL`: one URL, no scenario file.
    #[command(flatten)]
    pub url: super::run_args::UrlArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario and write results (summary.json, <target>.hlog, <target>.hgrm).
    Run(super::run_args::RunArgs),
    /// Check a scenario file and exit.
    Validate {
        file: PathBuf,
        /// Print the files the scenario reads instead (key and secret files,
        /// bodies, CA files, the builtin gateway's config), one per line, as
        /// written: what must travel with it to another machine.
        #[arg(long)]
        files: bool,
    },
    /// Print the JSON Schema of scenario files (or of summary.json).
    Schema {
        /// The schema of `summary.json` instead (as `docs/summary.schema.json`).
        #[arg(long)]
        summary: bool,
    },
    /// Make a gateway know a scenario's [auth] consumers.
    #[command(subcommand)]
    Provision(ProvisionCommand),
    /// Print one token of a scenario's [auth], for curl.
    Token {
        /// The scenario file.
        #[arg(long)]
        scenario: PathBuf,
        /// The consumer (default: the first).
        #[arg(long)]
        consumer: Option<String>,
        /// The token class (default valid).
        #[arg(long, default_value = "valid")]
        class: String,
    },
    /// Generate signing keys (or an HMAC secret), the public key, and JWKS/OIDC documents.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Compare a candidate run with a baseline run and gate on regressions
    /// (exit 0 ok, 1 regression or limit exceeded, 2 usage or input error).
    Compare(CompareArgs),
    /// Render charts, report.md and report.html from results directories
    /// (several: overlaid, to compare gateways or versions across runs).
    Report(ReportArgs),
    /// Merge the results of the shards of one run (`run --shard K/N`) into
    /// one results directory, exactly.
    Merge(MergeArgs),
    /// Find the highest arrival rate at which each target meets an SLO
    /// (exponential growth, then bisection, of short open-loop steps).
    #[command(after_help = CAPACITY_HELP)]
    Capacity(CapacityArgs),
    /// Write a starter for measuring one kind of gateway: a commented
    /// scenario, keys, the gateway's provisioning, and a stand-in so that it
    /// runs at once against the builtin targets.
    Init {
        /// The gateway to measure.
        #[arg(long, value_enum)]
        gateway: Kind,
        /// Where to write (default gatebench-<gateway>).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Overwrite an existing starter (its keys too).
        #[arg(long)]
        force: bool,
    },
    /// Measure what this machine, as it is now, can resolve: the timer's
    /// lateness, the generator's schedule lag, the loopback floor, known
    /// delays read back, and the run-to-run spread of one mock measured as
    /// two targets; prints and writes calibration.json.
    Calibrate(CalibrateArgs),
}

#[derive(Debug, clap::Args)]
pub struct CalibrateArgs {
    /// About how long to measure.
    #[arg(long, default_value = "10s", value_parser = mock_upstream::spec::parse_duration)]
    pub duration: std::time::Duration,
    /// Results directory (default results/calibrate-<UTC time>): calibration.json and the run's files.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

const CAPACITY_HELP: &str = "\
Each step runs the scenario's requests at one constant rate: --warmup (not
recorded), then --step recorded, in --rounds rounds; with an added.* term
the scenario's baseline target runs interleaved in the same step, order
rotated per round, as `run` does. A step passes when the run is valid and,
in every round, each latency or added term holds (added: the target's
percentile minus the baseline's in the same round), and the error term
holds over the whole step. The rate doubles from --min until a step fails,
then bisects until the highest passing and lowest failing rates are within
--precision. A step whose run is invalid (the generator was late) stops the
search: \"generator limit at R\" is printed, never a capacity.

Writes OUT/summary.json (each target as it ran at its capacity, and a
`capacity` section that `loadgen compare` gates on as the metric
`capacity`, bigger is better), OUT/capacity.png and .svg, and every step's
results under OUT/steps/.

Exit codes:
  0  every search ended (bracketed to the precision, at --max, or failing at --min)
  1  the search could not run (a step failed to start, results unwritable)
  2  bad flags, scenario or SLO
  3  a search ended at the generator's limit
  130 interrupted (the steps run so far are written)";

#[derive(Debug, clap::Args)]
pub struct CapacityArgs {
    pub scenario: PathBuf,
    /// An SLO term, METRIC<=VALUE (repeatable): latency.p50|p90|p99|p99.9|p99.99|max,
    /// added.p50|p90|p99|p99.9|p99.99 (needs a baseline target), errors (a percentage).
    /// E.g. --slo 'added.p99<=2ms' --slo 'errors<=0.1%'.
    /// Default: the scenario's `[capacity] slo`.
    #[arg(long = "slo", value_name = "EXPR")]
    pub slo: Vec<crate::scenario::Term>,
    /// Search this target (repeatable; default every non-baseline target).
    #[arg(long = "target", value_name = "NAME")]
    pub targets: Vec<String>,
    /// Replace a target's URL: NAME=URL (repeatable), as `run --target`.
    #[arg(long = "url", value_name = "NAME=URL")]
    pub urls: Vec<String>,
    /// The first rate tried, req/s (default: `[capacity] min`, else 500).
    #[arg(long)]
    pub min: Option<f64>,
    /// The highest rate tried, req/s (default: `[capacity] max`, else 200000).
    #[arg(long)]
    pub max: Option<f64>,
    /// Stop when the highest passing and lowest failing rates are within
    /// this (default: `[capacity] precision`, else 5%).
    #[arg(long, value_parser = crate::scenario::parse_percent)]
    pub precision: Option<f64>,
    /// Recorded time per step and round (default: `[capacity] step`, else 10s).
    #[arg(long, value_parser = mock_upstream::spec::parse_duration)]
    pub step: Option<std::time::Duration>,
    /// Warm-up before each step's recorded part (default: `[capacity] warmup`, else 2s).
    #[arg(long, value_parser = mock_upstream::spec::parse_duration)]
    pub warmup: Option<std::time::Duration>,
    /// Rounds a step starts with, targets interleaved, order balanced
    /// (default: `[capacity] rounds`, else 3). Each SLO term is judged on its
    /// 95 % interval over them.
    #[arg(long)]
    pub rounds: Option<u32>,
    /// A step whose interval straddles a limit runs again with twice the
    /// rounds, up to this (default: `[capacity] max_rounds`, else 4 × --rounds).
    #[arg(long)]
    pub max_rounds: Option<u32>,
    /// Results directory (default results/<scenario>-capacity-<UTC timestamp>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Only the final table.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum ProvisionCommand {
    /// Create (or update) consumers, jwt credentials and acl groups through
    /// Kong's Admin API (or jwt-gateway's); idempotent. --teardown removes them.
    /// With --out instead of --admin: write a DB-less Kong declarative config
    /// (KONG_DECLARATIVE_CONFIG) with the consumers and a jwt-protected route
    /// to --upstream.
    Kong {
        /// The Admin API, e.g. http://127.0.0.1:8001
        #[arg(long, required_unless_present = "out", conflicts_with = "out")]
        admin: Option<String>,
        #[arg(long)]
        scenario: PathBuf,
        #[arg(long, conflicts_with = "out")]
        teardown: bool,
        /// Write a declarative config here instead of calling an Admin API.
        #[arg(long, requires = "upstream")]
        out: Option<PathBuf>,
        /// With --out: the service URL, as Kong reaches it (http://upstream:8081).
        #[arg(long, requires = "out")]
        upstream: Option<String>,
        /// With --out: add an acl plugin allowing these groups (repeatable).
        #[arg(long = "allow", value_name = "GROUP", requires = "out")]
        allow: Vec<String>,
        /// Consumers provisioned at once (each one's calls in order).
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
        concurrency: u16,
        /// Print every Admin API call (default: a count per call and status).
        #[arg(long)]
        verbose: bool,
    },
    /// Write a Kong declarative config for jwt-gateway / builtin:gateway with
    /// the scenario's consumers and a jwt-protected route to the upstream.
    RustGateway {
        #[arg(long)]
        scenario: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// The service URL (default builtin:upstream).
        #[arg(long, default_value = "builtin:upstream")]
        upstream: String,
        /// Add an acl plugin allowing these groups (repeatable).
        #[arg(long = "allow", value_name = "GROUP")]
        allow: Vec<String>,
    },
    /// Write an Envoy bootstrap (DIR/envoy.yaml) whose jwt_authn filter knows
    /// the scenario's consumers, and their keys as DIR/jwks.json. Run it with
    /// `envoy -c DIR/envoy.yaml --concurrency 1 --disable-hot-restart`.
    Envoy {
        #[arg(long)]
        scenario: PathBuf,
        /// The directory to write (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// The upstream's origin, http://host:port (or https://).
        #[arg(long)]
        upstream: String,
        /// Where the JWT listener binds.
        #[arg(long, default_value = "127.0.0.1:10000")]
        listen: String,
        /// Also a plain-proxy listener (no auth) here, to measure Envoy without jwt_authn.
        #[arg(long, value_name = "HOST:PORT")]
        noauth_listen: Option<String>,
        /// Envoy's admin interface (/stats, /ready) here.
        #[arg(long, value_name = "HOST:PORT")]
        admin: Option<String>,
        /// Only consumers in these groups pass, as Kong's acl plugin (RBAC; 403 otherwise; repeatable).
        #[arg(long = "allow", value_name = "GROUP")]
        allow: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Write secret (HS*) or private.pem, public.pem (SPKI) and jwks.json, plus
    /// openid-configuration.json with --issuer. Existing files are kept unless --force.
    Gen {
        /// HS256/384/512, RS256/384/512, PS256/384/512, ES256, ES384, ES512,
        /// EdDSA (Ed25519) or Ed448 (EdDSA over Ed448).
        #[arg(long)]
        alg: String,
        /// The key id in jwks.json (and in tokens' headers).
        #[arg(long)]
        kid: Option<String>,
        /// RSA modulus size: 2048, 3072 or 4096.
        #[arg(long, default_value_t = 2048)]
        bits: usize,
        /// Issuer URL for openid-configuration.json (jwks_uri = <issuer>/.well-known/jwks.json).
        #[arg(long)]
        issuer: Option<String>,
        #[arg(long)]
        out: PathBuf,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
}

const COMPARE_HELP: &str = "\
Metrics: latency.p50|p90|p99|p99.9|p99.99|max (corrected), service.<same>,
added.p50|p90|p99|p99.9|p99.99 (gateway minus baseline target), rps, errors.
A metric may be prefixed with TARGET: to apply to one target only.

Two runs (BASE CAND) are compared target by target; with --within
BASE,CAND, two targets of one run are (two builds of one gateway, say, whose
rounds interleaved: the better design, as drift between runs cancels).

The allowed change is the threshold: percent of the baseline value (for
errors, percentage points of the error rate). Where both sides have at least
2 rounds of a metric (latency.*, added.*), the change gets a 95 % confidence
interval from the rounds (rounds are the unit, requests within a round are
not independent: between runs the Mann-Whitney interval of the shift, Welch's
t below 5 rounds a side; within one, the paired per-round differences), and
the verdict is:
  regression    the whole interval is worse than the allowed change
  ok            the whole interval is within it
  inconclusive  it straddles the allowed change; the table says about how
                many rounds per run would settle it
Without rounds (rps, errors, service.*), a change is a regression only when
it is worse than the threshold AND the noise (the larger round-to-round
spread; the calibrated resolution where a run has one).
Without --max-regression the defaults are:
  latency.p50=10, latency.p99=25, added.p50=25, added.p99=50, rps=5, errors=0.1

Exit codes:
  0  no regression and no limit exceeded (inconclusive figures pass, unless
     --inconclusive fail)
  1  at least one regression or limit exceeded (named on stderr), or an
     inconclusive figure with --inconclusive fail
  2  usage or input error: bad flags, unreadable or mismatched results, or an
     invalid run (unless --allow-invalid)";

/// `BASE,CAND`: two target names.
fn parse_pair(s: &str) -> Result<(String, String), crate::scenario::BadValue> {
    match s.split_once(',') {
        Some((b, c)) if !b.is_empty() && !c.is_empty() && !c.contains(',') => {
            Ok((b.to_owned(), c.to_owned()))
        }
        _ => Err(crate::scenario::BadValue(format!(
            "{s:?}: expected two target names, BASE,CAND"
        ))),
    }
}

/// What `--inconclusive` makes of a figure whose interval straddles the allowed change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Inconclusive {
    /// Exit 1, as for a regression.
    Fail,
    /// Exit 0, the figure named on stderr.
    Pass,
}

#[derive(Debug, clap::Args)]
#[command(after_help = COMPARE_HELP)]
pub struct CompareArgs {
    /// The baseline results directory (or its summary.json); with
    /// --within, the one run whose two targets are compared.
    pub base: PathBuf,
    /// The candidate results directory (or its summary.json).
    #[arg(required_unless_present = "within", conflicts_with = "within")]
    pub cand: Option<PathBuf>,
    /// Compare two targets of one run instead: BASE,CAND (e.g. two builds of
    /// one gateway). Their rounds interleaved, so each change's interval is
    /// on the per-round differences and the machine's drift cancels.
    #[arg(long, value_name = "BASE,CAND", value_parser = parse_pair)]
    pub within: Option<(String, String)>,
    /// Allowed regression in percent: [TARGET:]METRIC=PCT (repeatable).
    #[arg(long = "max-regression", value_name = "METRIC=PCT")]
    pub max_regression: Vec<String>,
    /// Absolute limit on the candidate: [TARGET:]METRIC=VALUE, e.g. latency.p99=5ms, errors=0 (repeatable).
    #[arg(long = "max", value_name = "METRIC=VALUE")]
    pub max: Vec<String>,
    /// Gate every request class too, not only each target's total.
    #[arg(long)]
    pub per_class: bool,
    /// Compare even when a run is marked invalid.
    #[arg(long)]
    pub allow_invalid: bool,
    /// What an inconclusive figure (its interval straddles the allowed change) does to the exit code.
    #[arg(long, value_enum, default_value = "pass")]
    pub inconclusive: Inconclusive,
    /// Write the candidate's metrics in Bencher Metric Format.
    #[arg(long, value_name = "FILE")]
    pub bmf: Option<PathBuf>,
    /// Write the candidate's totals as github-action-benchmark customSmallerIsBetter.
    #[arg(long = "github-benchmark", value_name = "FILE")]
    pub github_benchmark: Option<PathBuf>,
    /// Write the comparison as a Markdown table.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Results directories written by `loadgen run`.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Where to write (default: the directory itself for one; results/report-<UTC> for several).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also write the (first) run's metrics in Bencher Metric Format.
    #[arg(long, value_name = "FILE")]
    pub bmf: Option<PathBuf>,
    /// Also write the (first) run's totals as github-action-benchmark customSmallerIsBetter.
    #[arg(long = "github-benchmark", value_name = "FILE")]
    pub github_benchmark: Option<PathBuf>,
}

const MERGE_HELP: &str = "\
Every input must be a shard of the same run: the same scenario (content
hash), seed, shard count, histogram configuration and start time, and every
shard 0..N present once. Histograms are added exactly, interval logs on the
common time base; the result is an ordinary results directory for `loadgen
report` and `loadgen compare`.

Exit codes:
  0  merged; the merged run is valid and every response matched
  1  the merged results could not be written
  2  the inputs do not belong together, a shard is missing or repeated
     (see --allow-missing), or an input cannot be read
  3  merged, but the merged run is invalid (reasons printed)
  4  merged, but expectations failed (unexpected statuses or errors)";

#[derive(Debug, clap::Args)]
#[command(after_help = MERGE_HELP)]
pub struct MergeArgs {
    /// The shards' results directories.
    #[arg(required = true)]
    pub dirs: Vec<std::path::PathBuf>,
    /// Where to write (default results/<scenario>-merged-<UTC timestamp>).
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    /// Merge the shards that are there; the result is marked partial.
    #[arg(long)]
    pub allow_missing: bool,
    /// No terminal summary.
    #[arg(long)]
    pub quiet: bool,
    /// Do not render charts and report.md/report.html.
    #[arg(long)]
    pub no_report: bool,
}

/// The gateways a starter is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Kong,
    Aws,
    Envoy,
    Rust,
    Haproxy,
    Nginx,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Kong => "kong",
            Kind::Aws => "aws",
            Kind::Envoy => "envoy",
            Kind::Rust => "rust",
            Kind::Haproxy => "haproxy",
            Kind::Nginx => "nginx",
        }
    }
}
