//! The command line: `run`, `validate`, `schema`, `keys`, `token`,
//! `provision`, `report`, `compare`. Exit codes are documented in `--help`
//! and in [`Exit`].

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;

mod args;
mod compare;
pub mod init;
pub mod oneline;
mod provision;
mod run_args;

pub use args::{
    Args, CapacityArgs, Command, CompareArgs, Exit, KeysCommand, Kind, MergeArgs, ProvisionCommand,
    ReportArgs,
};
use compare::utc_stamp;
use provision::scenario_tokens;
pub use run_args::{RunArgs, RunOutput, UrlArgs};

use crate::engine::{self, RunOptions};
use crate::scenario::{Overrides, Scenario, TargetUrl, TokenClass};
use crate::token::{Carried, Clock as _, SystemClock};

/// Prints what a command produced, or its error under `what`, with `code`.
fn report_outcome<T: std::fmt::Display>(what: &str, result: anyhow::Result<T>, code: Exit) -> Exit {
    match result {
        Ok(out) => {
            let out = out.to_string();
            if !out.is_empty() {
                println!("{out}");
            }
            Exit::Ok
        }
        Err(e) => {
            eprintln!("{what}: {e:#}");
            code
        }
    }
}

/// Parses `args` and runs; `stop` is set by the caller's signal handler.
pub fn main_with(args: Args, stop: Arc<AtomicBool>) -> Exit {
    let Some(command) = args.command else {
        return url_run(&args.url, stop);
    };
    match command {
        Command::Schema { summary } => {
            let schema = if summary {
                reports::summary::json_schema()
            } else {
                Scenario::json_schema()
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&schema).unwrap_or_default()
            );
            Exit::Ok
        }
        Command::Validate { file, files } => {
            report_outcome("loadgen", validate(&file, files), Exit::Usage)
        }
        Command::Report(r) => compare::report(&r),
        Command::Capacity(c) => capacity(&c, stop),
        Command::Provision(p) => report_outcome(
            "loadgen provision",
            provision::provision(p).map(|()| ""),
            Exit::Failure,
        ),
        Command::Token {
            scenario,
            consumer,
            class,
        } => {
            // A `missing` token prints an empty line, as before.
            match token(&scenario, consumer.as_deref(), &class) {
                Ok(t) => {
                    println!("{t}");
                    Exit::Ok
                }
                Err(e) => {
                    eprintln!("loadgen token: {e:#}");
                    Exit::Usage
                }
            }
        }
        Command::Keys(KeysCommand::Gen {
            alg,
            kid,
            bits,
            issuer,
            out,
            force,
        }) => {
            let generated = keys_gen(&alg, (kid.as_deref(), bits, issuer.as_deref()), &out, force);
            report_outcome("loadgen keys gen", generated, Exit::Usage)
        }
        Command::Init {
            gateway,
            dir,
            force,
        } => init_command(gateway, dir, force),
        Command::Compare(c) => compare::compare(&c),
        Command::Merge(m) => merge(&m, &stop),
        Command::Calibrate(c) => calibrate(&c, &stop),
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

/// `loadgen init`: the starter's files, one per line, and the next step.
fn init_command(gateway: args::Kind, dir: Option<PathBuf>, force: bool) -> Exit {
    let dir = dir.unwrap_or_else(|| PathBuf::from(format!("gatebench-{}", gateway.name())));
    let written = init::init(gateway, &dir, force).map(|files| {
        let list: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        format!(
            "{}\nnext: loadgen run {}",
            list.join("\n"),
            dir.join("scenario.toml").display()
        )
    });
    report_outcome("loadgen init", written, Exit::Usage)
}

/// `loadgen URL`: the flags' scenario (saved first if asked), run as a file's.
fn url_run(a: &oneline::UrlArgs, stop: Arc<AtomicBool>) -> Exit {
    let file = oneline::scenario_file(a);
    let invocation = std::env::args()
        .map(|s| shell_quote(&s))
        .collect::<Vec<_>>()
        .join(" ");
    let built = (|| {
        let mut a = a.clone();
        if let Some(k) = &a.jwt_key {
            a.jwt_key = Some(oneline::key_for(&file, k)?);
        }
        let text = oneline::scenario_text(&a, &invocation)?;
        let scenario = Scenario::parse(&text, &file.display().to_string())?;
        if let Some(path) = &a.save_scenario {
            reports::write_atomic(path, text.as_bytes())
                .with_context(|| format!("--save-scenario {}", path.display()))?;
            eprintln!(
                "loadgen: wrote {} (run it with: loadgen run {0})",
                path.display()
            );
        }
        anyhow::Ok(scenario)
    })();
    let scenario = match built {
        Ok(s) => s,
        Err(e) => {
            eprintln!("loadgen: {e:#}");
            return Exit::Usage;
        }
    };
    let run = RunArgs {
        scenario: file,
        output: a.output.clone(),
        ..RunArgs::default()
    };
    match execute(&run, &scenario, stop) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("loadgen: {e:#}");
            Exit::Failure
        }
    }
}

/// `s` as a shell word, for the command line a saved scenario records.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@%+,".contains(&b))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// `loadgen keys gen`: the files written, one per line.
fn keys_gen(
    alg: &str,
    (kid, bits, issuer): (Option<&str>, usize, Option<&str>),
    out: &std::path::Path,
    force: bool,
) -> anyhow::Result<String> {
    // Ed448 is a curve of EdDSA, not an algorithm of its own: tokens say
    // "EdDSA" and the key tells the curve.
    let (a, ed448) = match alg {
        "Ed448" => (crate::token::jwt::Alg::EdDSA, true),
        _ => (crate::token::jwt::Alg::parse(alg).context("--alg")?, false),
    };
    let g = crate::token::keygen::keys_gen(a, ed448, kid, bits, issuer, out, force)?;
    Ok(g.files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join("\n"))
}

/// `loadgen calibrate`: this machine's resolution, printed and written.
fn calibrate(c: &args::CalibrateArgs, stop: &Arc<AtomicBool>) -> Exit {
    let out = c.out.clone().unwrap_or_else(|| {
        PathBuf::from("results").join(format!(
            "calibrate-{}",
            utc_stamp(std::time::SystemTime::now())
        ))
    });
    match crate::commands::calibrate::run(c.duration, &out, stop)
        .and_then(|cal| Ok(crate::commands::calibrate::write(&out, &cal).map(|()| cal)?))
    {
        Ok(cal) => {
            print!("{}", cal.render_text());
            println!("Results: {}", out.join("calibration.json").display());
            Exit::Ok
        }
        Err(e) => {
            eprintln!("loadgen calibrate: {e:#}");
            Exit::Failure
        }
    }
}

/// `loadgen validate`: the file parses, its rules hold, and what it refers
/// to (body files, `[auth]` key files, checked against their algorithms) loads.
fn validate(file: &std::path::Path, files: bool) -> anyhow::Result<String> {
    let s = Scenario::load(file)?;
    crate::engine::plan::Plan::check(&s)?;
    if files {
        let list: Vec<String> = s.files().iter().map(|f| f.display().to_string()).collect();
        return Ok(list.join("\n"));
    }
    Ok(format!(
        "{}: ok ({} targets, {} requests, {} phases)",
        file.display(),
        s.targets.len(),
        s.requests.len(),
        s.phases.len()
    ))
}

/// One token of `class` for `consumer` (default the first), as a request would carry it:
/// `duplicate` prints both tokens on one line, `missing` prints nothing.
fn token(file: &std::path::Path, consumer: Option<&str>, class: &str) -> anyhow::Result<String> {
    let class: TokenClass = class.parse().context("--class")?;
    let tokens = scenario_tokens(file, &[class])?;
    let ci = match consumer {
        None => 0,
        Some(name) => tokens
            .consumers
            .iter()
            .position(|c| c.name == name)
            .with_context(|| format!("--consumer {name:?}: no such consumer in [auth]"))?,
    };
    Ok(match tokens.mint(class, ci, SystemClock.now()).0 {
        Carried::None => String::new(),
        Carried::One(t) => t,
        Carried::Two(a, b) => format!("{a} {b}"),
    })
}

/// `NAME=URL` flags as target URL overrides.
fn target_urls(flags: &[String]) -> anyhow::Result<Vec<(String, TargetUrl)>> {
    flags
        .iter()
        .map(|t| {
            let (name, url) = t
                .split_once('=')
                .with_context(|| format!("{t:?}: expected NAME=URL"))?;
            let url: TargetUrl = url.parse().with_context(|| format!("{t:?}"))?;
            Ok((name.to_owned(), url))
        })
        .collect()
}

/// The scenario with the command line's overrides applied to the typed
/// model (and validated again).
fn load_for_run(run: &RunArgs) -> anyhow::Result<Scenario> {
    let mut s = Scenario::load(&run.scenario)?;
    let mut overrides = Overrides {
        rate: run.rate,
        duration: run.duration,
        rounds: run.rounds,
        precision: run.precision,
        max_rounds: run.max_rounds,
        ..Overrides::default()
    };
    overrides.targets = target_urls(&run.targets)?;
    if let Some(shard) = run.shard
        && shard.n > 1
        && run.start_at.is_none()
    {
        anyhow::bail!(
            "--shard {shard} needs --start-at TIME: every shard must follow one timeline \
             (e.g. --start-at $(date -u -d '+30 sec' +%Y-%m-%dT%H:%M:%SZ))"
        );
    }
    if let Some(at) = run.start_at
        && at <= std::time::SystemTime::now()
    {
        anyhow::bail!(
            "--start-at {} is in the past",
            humantime::format_rfc3339(at)
        );
    }
    if run.targets.is_empty()
        && run.rate.is_none()
        && run.duration.is_none()
        && run.rounds.is_none()
        && run.precision.is_none()
        && run.max_rounds.is_none()
    {
        return precision_alone(s, run);
    }
    s.apply(&overrides)?;
    precision_alone(s, run)
}

/// A run that adds rounds until it is precise decides its length as it
/// goes; shards follow one timeline fixed in advance, so they cannot.
fn precision_alone(s: Scenario, run: &RunArgs) -> anyhow::Result<Scenario> {
    if s.precision.is_some() && run.shard.is_some_and(|sh| sh.n > 1) {
        anyhow::bail!(
            "--precision (or [precision]) cannot be used with --shard: shards follow a timeline fixed in advance; give --rounds instead"
        );
    }
    Ok(s)
}

fn execute(run: &RunArgs, scenario: &Scenario, stop: Arc<AtomicBool>) -> anyhow::Result<Exit> {
    let out_dir = run.output.out.clone().unwrap_or_else(|| {
        let stamp = utc_stamp(std::time::SystemTime::now());
        PathBuf::from("results").join(format!("{}-{stamp}", scenario.name))
    });
    let opts = RunOptions {
        out_dir: out_dir.clone(),
        progress: !run.output.quiet,
        stop: stop.clone(),
        shard: run.shard.unwrap_or_default(),
        start_at: run.start_at,
        metrics: run
            .metrics_listen
            .map(|_| crate::metrics::Metrics::new(run.shard.unwrap_or_default())),
    };
    // The endpoint is up before calibrating, so a scrape never fails.
    let server = match (run.metrics_listen, &opts.metrics) {
        (Some(addr), Some(m)) => {
            let s = crate::metrics::Server::start(addr, m.clone())?;
            eprintln!("loadgen: live metrics on http://{}/metrics", s.addr());
            Some(s)
        }
        _ => None,
    };
    // The machine's resolution first (not for a shard or a fixed start time).
    let calibration = if scenario.calibrate != Some(false)
        && !run.output.no_calibrate
        && opts.shard.n <= 1
        && opts.start_at.is_none()
    {
        if !run.output.quiet {
            eprintln!(
                "calibrating this machine for {:?} (calibrate = false skips it)",
                crate::commands::calibrate::SHORT
            );
        }
        match crate::commands::calibrate::run(
            crate::commands::calibrate::SHORT,
            &out_dir.join("calibration"),
            &stop,
        ) {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("loadgen: warning: no calibration: {e:#}");
                None
            }
        }
    } else {
        None
    };
    let data = engine::run(scenario, &opts)?;
    let mut summary = crate::measure::summarize::summarize(
        (
            &scenario.name,
            crate::measure::summarize::redacted(scenario),
        ),
        &data,
    );
    summary.calibration = calibration;
    summary.floor_intervals();
    crate::measure::summarize::write(&out_dir, &summary, &data)?;
    let exit = finish(
        &out_dir,
        &summary,
        (run.output.quiet, run.output.no_report),
        stop.load(Ordering::Relaxed),
    );
    if let (Some(_), Some(linger)) = (&server, run.metrics_linger) {
        // The final figures stay up for the last scrape (Ctrl-C ends it).
        let step = std::time::Duration::from_millis(50);
        for _ in 0..linger.as_millis().div_ceil(step.as_millis()) {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            std::thread::sleep(step);
        }
    }
    drop(server);
    Ok(exit)
}

/// `loadgen capacity`: the search, its table, its files, its exit code.
fn capacity(c: &CapacityArgs, stop: Arc<AtomicBool>) -> Exit {
    let load = || -> anyhow::Result<Scenario> {
        let mut s = Scenario::load(&c.scenario)?;
        if !c.urls.is_empty() {
            s.apply(&Overrides {
                targets: target_urls(&c.urls)?,
                ..Overrides::default()
            })?;
        }
        Ok(s)
    };
    let s = match load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("loadgen capacity: {e:#}");
            return Exit::Usage;
        }
    };
    let out = c.out.clone().unwrap_or_else(|| {
        let stamp = utc_stamp(std::time::SystemTime::now());
        PathBuf::from("results").join(format!("{}-capacity-{stamp}", s.name))
    });
    let flags = crate::commands::capacity::Flags {
        slo: c.slo.clone(),
        targets: c.targets.clone(),
        min: c.min,
        max: c.max,
        precision: c.precision,
        step: c.step,
        warmup: c.warmup,
        rounds: c.rounds,
        max_rounds: c.max_rounds,
        quiet: c.quiet,
    };
    let search = match crate::commands::capacity::settings(&s, &flags, out.clone()) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("loadgen capacity: {e:#}");
            return Exit::Usage;
        }
    };
    let found = match crate::commands::capacity::search(&s, &search, &stop)
        .and_then(|f| crate::commands::capacity::write(&out, &f).map(|()| f))
    {
        Ok(f) => f,
        Err(e) => {
            eprintln!("loadgen capacity: {e:#}");
            return Exit::Failure;
        }
    };
    print!("{}", reports::capacity::render_text(&found.capacity));
    println!("Results: {}", out.display());
    if stop.load(Ordering::Relaxed) {
        Exit::Interrupted
    } else if found
        .capacity
        .targets
        .iter()
        .any(|t| t.ended_by == "generator")
    {
        Exit::Invalid
    } else {
        Exit::Ok
    }
}

/// `loadgen merge`: input problems exit 2; then as `run` would for the merged run.
fn merge(m: &MergeArgs, stop: &AtomicBool) -> Exit {
    use crate::commands::merge::{MergeError, read};
    let (inputs, missing) = match read(&m.dirs, (m.allow_missing, m.out.as_deref()), stop) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("loadgen merge: {e}");
            return match e {
                MergeError::Interrupted => Exit::Interrupted,
                _ => Exit::Usage,
            };
        }
    };
    let out = m.out.clone().unwrap_or_else(|| {
        let stamp = utc_stamp(std::time::SystemTime::now());
        let name = inputs.first().map_or("run", |i| i.scenario_name());
        PathBuf::from("results").join(format!("{name}-merged-{stamp}"))
    });
    match crate::commands::merge::write(&inputs, &missing, &out) {
        Ok(merged) => finish(&out, &merged.summary, (m.quiet, m.no_report), false),
        Err(e) => {
            eprintln!("loadgen merge: {e:#}");
            Exit::Failure
        }
    }
}

/// After the results are written: the terminal summary, the report, and
/// the exit status the run's verdict gives.
fn finish(
    out_dir: &std::path::Path,
    summary: &reports::summary::Summary,
    (quiet, no_report): (bool, bool),
    interrupted: bool,
) -> Exit {
    if !quiet {
        print!("{}", reports::text::render(summary));
    }
    if !no_report {
        // The results are written; a report that cannot be drawn is a warning.
        match reports::report::load(out_dir).and_then(|r| reports::report::write(&[r], out_dir)) {
            Ok(w) if !quiet => println!("Report: {}", w.html.display()),
            Ok(_) => {}
            Err(e) => eprintln!("loadgen: warning: no report: {e}"),
        }
    }
    if !quiet {
        println!("Results: {}", out_dir.display());
    }
    verdict(summary, interrupted)
}

/// The exit status of a run's verdict (the decision table in docs/scenario.md).
pub fn verdict(summary: &reports::summary::Summary, interrupted: bool) -> Exit {
    if interrupted {
        Exit::Interrupted
    } else if !summary.valid {
        Exit::Invalid
    } else if !summary.target_faults.is_empty() {
        Exit::Expectations
    } else {
        Exit::Ok
    }
}
