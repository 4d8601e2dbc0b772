//! The command line: `run`, `validate`, `schema`. Exit codes are documented
//! in `--help` and in [`Exit`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::engine::{self, RunOptions};
use crate::scenario::{Dur, Rate, Scenario};

const EXIT_CODES: &str = "\
Exit codes:
  0    the run completed and every response matched its expectation
  1    the run could not be carried out (e.g. a target refused to start)
  2    usage error: bad flags or an invalid scenario file (the message names file, line and field)
  3    invalid run: the generator was the bottleneck, the rate was not achieved, or sends were dropped
  4    expectations failed: unexpected statuses or request errors
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
#[command(name = "loadgen", version, after_help = EXIT_CODES)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario and write results (summary.json, <target>.hlog, <target>.hgrm).
    Run(RunArgs),
    /// Check a scenario file and exit.
    Validate { file: PathBuf },
    /// Print the JSON Schema of scenario files.
    Schema,
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
}

#[derive(Debug, Subcommand)]
pub enum ProvisionCommand {
    /// Create (or update) consumers, jwt credentials and acl groups through
    /// Kong's Admin API (or jwt-gateway's); idempotent. --teardown removes them.
    Kong {
        /// The Admin API, e.g. http://127.0.0.1:8001
        #[arg(long)]
        admin: String,
        #[arg(long)]
        scenario: PathBuf,
        #[arg(long)]
        teardown: bool,
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
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Write secret (HS*) or private.pem, public.pem (SPKI) and jwks.json, plus
    /// openid-configuration.json with --issuer. Existing files are kept unless --force.
    Gen {
        /// HS256/384/512, RS256/384/512, PS256/384/512, ES256, ES384 or EdDSA.
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

A change is a regression only when it is worse than the threshold (percent of
the baseline value; for errors, percentage points of the error rate) AND
worse than the noise: the larger round-to-round spread of that metric in the
two runs. Without --max-regression the defaults are:
  latency.p50=10, latency.p99=25, added.p50=25, added.p99=50, rps=5, errors=0.1

Exit codes:
  0  no regression and no limit exceeded
  1  at least one regression or limit exceeded (named on stderr)
  2  usage or input error: bad flags, unreadable or mismatched results, or an
     invalid run (unless --allow-invalid)";

#[derive(Debug, clap::Args)]
#[command(after_help = COMPARE_HELP)]
pub struct CompareArgs {
    /// The baseline results directory (or its summary.json).
    pub base: PathBuf,
    /// The candidate results directory (or its summary.json).
    pub cand: PathBuf,
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

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    pub scenario: PathBuf,
    /// Results directory (default results/<scenario>-<UTC timestamp>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace a target's URL: NAME=URL (repeatable).
    #[arg(long = "target", value_name = "NAME=URL")]
    pub targets: Vec<String>,
    /// Constant arrival rate for every open-loop phase (requests per second).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Duration of every phase (e.g. 10s).
    #[arg(long, value_parser = mock_upstream::spec::parse_duration)]
    pub duration: Option<std::time::Duration>,
    /// Rounds (every phase once per target per round).
    #[arg(long)]
    pub rounds: Option<u32>,
    /// No live progress and no terminal summary.
    #[arg(long)]
    pub quiet: bool,
    /// Do not render charts and report.md/report.html at the end.
    #[arg(long)]
    pub no_report: bool,
}

/// Parses `args` and runs; `stop` is set by the caller's signal handler.
pub fn main_with(args: Args, stop: Arc<AtomicBool>) -> Exit {
    match args.command {
        Command::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&Scenario::json_schema()).unwrap_or_default()
            );
            Exit::Ok
        }
        Command::Validate { file } => match Scenario::load(&file).and_then(|s| {
            // [auth]: read the key files and check them against their algorithms.
            crate::engine::plan::Plan::new(
                &s,
                file.parent().unwrap_or(std::path::Path::new(".")),
                &file.display().to_string(),
            )?;
            Ok(s)
        }) {
            Ok(s) => {
                println!(
                    "{}: ok ({} targets, {} requests, {} phases)",
                    file.display(),
                    s.targets.len(),
                    s.requests.len(),
                    s.phases.len()
                );
                Exit::Ok
            }
            Err(e) => {
                eprintln!("loadgen: {e}");
                Exit::Usage
            }
        },
        Command::Report(r) => report(&r),
        Command::Provision(p) => match provision(p) {
            Ok(()) => Exit::Ok,
            Err(e) => {
                eprintln!("loadgen provision: {e:#}");
                Exit::Failure
            }
        },
        Command::Token {
            scenario,
            consumer,
            class,
        } => match token(&scenario, consumer.as_deref(), &class) {
            Ok(t) => {
                println!("{t}");
                Exit::Ok
            }
            Err(e) => {
                eprintln!("loadgen token: {e}");
                Exit::Usage
            }
        },
        Command::Keys(KeysCommand::Gen {
            alg,
            kid,
            bits,
            issuer,
            out,
            force,
        }) => {
            let generated = crate::jwt::Alg::parse(&alg)
                .map_err(|e| format!("--alg: {e}"))
                .and_then(|a| {
                    crate::jwt::keys_gen(a, kid.as_deref(), bits, issuer.as_deref(), &out, force)
                });
            match generated {
                Ok(g) => {
                    for f in g.files {
                        println!("{}", f.display());
                    }
                    Exit::Ok
                }
                Err(e) => {
                    eprintln!("loadgen keys gen: {e}");
                    Exit::Usage
                }
            }
        }
        Command::Compare(c) => compare(&c),
        Command::Run(run) => match load_for_run(&run) {
            Err(e) => {
                eprintln!("loadgen: {e:#}");
                Exit::Usage
            }
            Ok(scenario) => match execute(&run, &scenario, stop) {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("loadgen: {e:#}");
                    Exit::Failure
                }
            },
        },
    }
}

/// A scenario's [auth], resolved (key files read) for every token class.
fn scenario_auth(
    file: &std::path::Path,
    classes: &[crate::auth::TokenClass],
) -> anyhow::Result<crate::auth::Auth> {
    let s = Scenario::load(file)?;
    let spec = s
        .auth
        .as_ref()
        .with_context(|| format!("{}: no [auth] section", file.display()))?;
    let dir = file.parent().unwrap_or(std::path::Path::new("."));
    crate::auth::Auth::new(spec, classes, dir, Arc::new(crate::auth::SystemClock))
        .map_err(anyhow::Error::msg)
}

fn provision(p: ProvisionCommand) -> anyhow::Result<()> {
    match p {
        ProvisionCommand::Kong {
            admin,
            scenario,
            teardown,
        } => {
            let auth = scenario_auth(&scenario, &[])?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let calls = rt
                .block_on(crate::provision::kong(&auth, &admin, teardown))
                .map_err(anyhow::Error::msg)?;
            for c in &calls {
                println!("{} {} -> {}", c.method, c.path, c.status);
            }
            println!(
                "{} {} consumers at {admin}",
                if teardown { "removed" } else { "provisioned" },
                auth.consumers.len()
            );
            Ok(())
        }
        ProvisionCommand::RustGateway {
            scenario,
            out,
            upstream,
            allow,
        } => {
            let auth = scenario_auth(&scenario, &[])?;
            let doc = crate::provision::rust_gateway(&auth, &upstream, &allow);
            reports::write_atomic(&out, format!("{doc:#}\n").as_bytes())
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!("{}", out.display());
            Ok(())
        }
    }
}

/// One token of `class` for `consumer` (default the first), as a request would carry it:
/// `duplicate` prints both tokens on one line, `missing` prints nothing.
fn token(file: &std::path::Path, consumer: Option<&str>, class: &str) -> anyhow::Result<String> {
    let class = crate::auth::TokenClass::parse(class).map_err(anyhow::Error::msg)?;
    let auth = scenario_auth(file, &[class])?;
    let ci = match consumer {
        None => 0,
        Some(name) => auth
            .consumers
            .iter()
            .position(|c| c.name == name)
            .with_context(|| format!("--consumer {name:?}: no such consumer in [auth]"))?,
    };
    let now = crate::auth::Clock::now(&crate::auth::SystemClock);
    Ok(match auth.mint(class, ci, now).0 {
        crate::auth::Carried::None => String::new(),
        crate::auth::Carried::One(t) => t,
        crate::auth::Carried::Two(a, b) => format!("{a} {b}"),
    })
}

/// `[TARGET:]METRIC=VALUE`; `value` parses the right-hand side.
fn parse_rule(
    flag: &str,
    text: &str,
    value: impl Fn(&str, &str) -> Result<f64, String>,
) -> Result<reports::compare::Rule, String> {
    let (lhs, rhs) = text
        .split_once('=')
        .ok_or_else(|| format!("{flag} {text:?}: expected [TARGET:]METRIC=VALUE"))?;
    let (target, metric) = match lhs.split_once(':') {
        Some((t, m)) => (Some(t.to_owned()), m),
        None => (None, lhs),
    };
    if !reports::compare::known_metric(metric) {
        return Err(format!(
            "{flag} {text:?}: unknown metric {metric:?} (see --help for the list)"
        ));
    }
    let value = value(metric, rhs).map_err(|e| format!("{flag} {text:?}: {e}"))?;
    Ok(reports::compare::Rule {
        target,
        metric: metric.to_owned(),
        value,
    })
}

fn load_summary(path: &std::path::Path) -> Result<reports::summary::Summary, String> {
    let file = if path.is_dir() {
        path.join("summary.json")
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    let s: reports::summary::Summary =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    if s.schema_version != reports::summary::SCHEMA_VERSION {
        return Err(format!(
            "{}: schema_version {} (this build reads {})",
            file.display(),
            s.schema_version,
            reports::summary::SCHEMA_VERSION
        ));
    }
    Ok(s)
}

fn compare(c: &CompareArgs) -> Exit {
    match compare_inner(c) {
        Ok(exit) => exit,
        Err(e) => {
            eprintln!("loadgen compare: {e}");
            Exit::Usage
        }
    }
}

fn compare_inner(c: &CompareArgs) -> Result<Exit, String> {
    let pct = |_: &str, v: &str| -> Result<f64, String> {
        let x: f64 = v
            .trim_end_matches('%')
            .parse()
            .map_err(|_| format!("{v:?} is not a number"))?;
        if x.is_finite() && x >= 0.0 {
            Ok(x)
        } else {
            Err(format!("{v:?} must be 0 or more"))
        }
    };
    let limit = |metric: &str, v: &str| -> Result<f64, String> {
        match metric {
            "rps" => Err("rps has no upper limit; use --max-regression rps=PCT".into()),
            "errors" => pct(metric, v),
            _ => {
                let negative = v.starts_with('-');
                let d = mock_upstream::spec::parse_duration(v.trim_start_matches('-'))?;
                let ns = d.as_nanos() as f64;
                Ok(if negative { -ns } else { ns })
            }
        }
    };
    let mut thresholds = c
        .max_regression
        .iter()
        .map(|t| parse_rule("--max-regression", t, pct))
        .collect::<Result<Vec<_>, _>>()?;
    if thresholds.is_empty() {
        thresholds = reports::compare::DEFAULT_THRESHOLDS
            .split(", ")
            .map(|t| parse_rule("default", t, pct))
            .collect::<Result<Vec<_>, _>>()?;
    }
    let limits = c
        .max
        .iter()
        .map(|t| parse_rule("--max", t, limit))
        .collect::<Result<Vec<_>, _>>()?;
    let base = load_summary(&c.base)?;
    let cand = load_summary(&c.cand)?;
    for (what, s) in [("baseline", &base), ("candidate", &cand)] {
        if !s.valid && !c.allow_invalid {
            return Err(format!(
                "the {what} run is INVALID ({}); its numbers describe the run, not the targets. Re-run it, or pass --allow-invalid",
                s.invalid_reasons.join("; ")
            ));
        }
    }
    let rows = reports::compare::compare(&base, &cand, &thresholds, &limits, c.per_class)?;
    print!("{}", reports::compare::render_text(&rows));
    let name = |p: &PathBuf| p.display().to_string();
    let write = |path: &PathBuf, text: String| -> Result<(), String> {
        reports::write_atomic(path, text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))
    };
    if let Some(p) = &c.markdown {
        write(
            p,
            reports::compare::render_markdown(&rows, &name(&c.base), &name(&c.cand)),
        )?;
    }
    if let Some(p) = &c.bmf {
        write(p, format!("{:#}\n", reports::compare::bmf(&cand)))?;
    }
    if let Some(p) = &c.github_benchmark {
        write(
            p,
            format!("{:#}\n", reports::compare::github_benchmark(&cand)),
        )?;
    }
    let failed: Vec<&reports::compare::Row> = rows.iter().filter(|r| r.verdict.failed()).collect();
    for r in &failed {
        eprintln!(
            "loadgen compare: {}: {} {} {} (base {}, candidate {})",
            if r.verdict == reports::compare::Verdict::OverLimit {
                "over limit"
            } else {
                "regression"
            },
            r.target,
            r.class,
            r.metric,
            reports::compare::fmt_value(r.base, r.unit),
            reports::compare::fmt_value(r.cand, r.unit)
        );
    }
    Ok(if failed.is_empty() {
        Exit::Ok
    } else {
        Exit::Failure
    })
}

fn report(r: &ReportArgs) -> Exit {
    let mut runs = Vec::new();
    for d in &r.dirs {
        match reports::report::load(d) {
            Ok(run) => runs.push(run),
            Err(e) => {
                eprintln!("loadgen report: {e}");
                return Exit::Usage;
            }
        }
    }
    let out = r.out.clone().unwrap_or_else(|| match r.dirs.as_slice() {
        [one] => one.clone(),
        _ => PathBuf::from("results").join(format!(
            "report-{}",
            utc_stamp(std::time::SystemTime::now())
        )),
    });
    let first = &runs[0].summary;
    for (path, doc) in [
        (&r.bmf, r.bmf.as_ref().map(|_| reports::compare::bmf(first))),
        (
            &r.github_benchmark,
            r.github_benchmark
                .as_ref()
                .map(|_| reports::compare::github_benchmark(first)),
        ),
    ] {
        if let (Some(path), Some(doc)) = (path, doc)
            && let Err(e) = reports::write_atomic(path, format!("{doc:#}\n").as_bytes())
        {
            eprintln!("loadgen report: {}: {e}", path.display());
            return Exit::Failure;
        }
    }
    match reports::report::write(&runs, &out) {
        Ok(w) => {
            println!("{}", w.markdown.display());
            println!("{}", w.html.display());
            Exit::Ok
        }
        Err(e) => {
            eprintln!("loadgen report: {e}");
            Exit::Failure
        }
    }
}

fn load_for_run(run: &RunArgs) -> anyhow::Result<Scenario> {
    let file = run.scenario.display().to_string();
    let mut s = Scenario::load(&run.scenario)?;
    for t in &run.targets {
        let (name, url) = t
            .split_once('=')
            .with_context(|| format!("--target {t:?}: expected NAME=URL"))?;
        let target = s
            .targets
            .iter_mut()
            .find(|x| x.name == name)
            .with_context(|| format!("--target {t:?}: {file} has no target named {name:?}"))?;
        target.url = Some(url.to_owned());
        target.urls = None;
    }
    for p in &mut s.phases {
        if let Some(d) = run.duration {
            p.duration = Dur(d);
        }
        if let (Some(r), Some(_)) = (run.rate, &p.rate) {
            p.rate = Some(Rate::Constant(r));
        }
    }
    if let Some(r) = run.rounds {
        s.rounds = Some(r);
    }
    // Overrides are validated like the file itself.
    let text = toml::to_string(&s).context("cannot re-serialize the scenario")?;
    Ok(Scenario::parse(
        &text,
        &format!("{file} (with command-line overrides)"),
    )?)
}

fn execute(run: &RunArgs, scenario: &Scenario, stop: Arc<AtomicBool>) -> anyhow::Result<Exit> {
    let out_dir = run.out.clone().unwrap_or_else(|| {
        let stamp = utc_stamp(std::time::SystemTime::now());
        PathBuf::from("results").join(format!("{}-{stamp}", scenario.name))
    });
    let opts = RunOptions {
        out_dir: out_dir.clone(),
        progress: !run.quiet,
        stop: stop.clone(),
    };
    let data = engine::run(scenario, &run.scenario, &opts)?;
    let summary = crate::results::summarize(scenario, &data);
    crate::results::write(&out_dir, &summary, &data)?;
    if !run.quiet {
        print!("{}", crate::results::render(&summary));
    }
    if !run.no_report {
        // The results are written; a report that cannot be drawn is a warning.
        match reports::report::load(&out_dir).and_then(|r| reports::report::write(&[r], &out_dir)) {
            Ok(w) if !run.quiet => println!("Report: {}", w.html.display()),
            Ok(_) => {}
            Err(e) => eprintln!("loadgen: warning: no report: {e}"),
        }
    }
    if !run.quiet {
        println!("Results: {}", out_dir.display());
    }
    let failed = summary
        .targets
        .iter()
        .any(|t| t.total.counts.unexpected > 0 || t.total.counts.errors > 0);
    Ok(if stop.load(Ordering::Relaxed) {
        Exit::Interrupted
    } else if !summary.valid {
        Exit::Invalid
    } else if failed {
        Exit::Expectations
    } else {
        Exit::Ok
    })
}

/// `20261129T173408Z`.
fn utc_stamp(t: std::time::SystemTime) -> String {
    let u = reports::hlog::utc(t);
    format!(
        "{}{:02}{:02}T{:02}{:02}{:02}Z",
        u.year, u.month, u.day, u.hour, u.minute, u.second
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn stamps_are_sortable_utc() {
        assert_eq!(
            super::utc_stamp(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_796_491_635)),
            "20261205T172715Z"
        );
    }
}
