//! `loadgen calibrate`: what this machine, as it is now, can resolve. One
//! run of the builtin mock upstream on loopback, measured as two targets
//! (`a`, the baseline, and `b`, the same mock) in interleaved rounds, as a
//! gateway is measured against its baseline:
//! - `b − a` per round at p50/p90/p99 is pure noise: its root mean square
//!   is the machine's per-round floor, and t(0.975, rounds) times that the
//!   resolution (`reports::calibration`);
//! - request classes with known delays programmed into the mock (0, 200 µs,
//!   1 ms, 10 ms) are read back over the floor;
//! - a faster phase gives the generator's schedule lag at a second rate;
//! - the run's hiccup probe gives the timer's wake-up lateness.
//!
//! `loadgen run` runs a short calibration before its first phase (unless
//! `calibrate = false`) and keeps it in `summary.json`, where the terminal
//! summary, the report and `loadgen compare` mark figures within it.

use crate::measure::totals::ResultsError;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use reports::calibration::{Calibration, KnownDelay, RateLag, Resolution};
use reports::summary::{ClassResult, Summary};

use crate::scenario::Scenario;

/// The steady phase's rate, the faster phase's, and the rounds.
const RATE: u32 = 2000;
const FAST_RATE: u32 = 5000;
const ROUNDS: u32 = 4;
/// The delays read back, besides none.
const DELAYS: [(&str, u64); 3] = [("200us", 200_000), ("1ms", 1_000_000), ("10ms", 10_000_000)];
/// What `loadgen run` spends on its own calibration.
pub const SHORT: Duration = Duration::from_secs(3);

/// Why the calibration could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum CalibrateError {
    #[error("the calibration scenario: {0}")]
    Scenario(#[from] crate::scenario::ScenarioError),
    #[error(transparent)]
    Run(#[from] crate::engine::RunError),
    #[error(transparent)]
    Results(#[from] ResultsError),
    #[error("calibration: no {0} results")]
    Missing(String),
    #[error("calibration: no complete round")]
    NoRound,
}

/// The calibration scenario for about `total` of wall time.
fn scenario(total: Duration) -> Result<Scenario, CalibrateError> {
    // Per round and target: a warm-up, the steady phase, a fast phase a
    // fifth as long, and ~0.15 s to open connections.
    let per = total.as_secs_f64() / f64::from(2 * ROUNDS);
    let steady = ((per - 0.15) / 1.45).max(0.1);
    let ms = |s: f64| format!("{}ms", (s * 1e3).round() as u64);
    let mut text = format!(
        "name = \"calibrate\"\nseed = 1\nrounds = {ROUNDS}\ncalibrate = false\n\
         [[target]]\nname = \"a\"\nurl = \"builtin:upstream\"\nbaseline = true\nconnections = 16\n\
         [[target]]\nname = \"b\"\nurl = \"builtin:upstream\"\nconnections = 16\n\
         [[request]]\nname = \"d0\"\nweight = 7\npath = \"/calibrate/{{seq}}\"\nexpect = 200\n"
    );
    for (name, _) in DELAYS {
        text.push_str(&format!(
            "[[request]]\nname = \"d{name}\"\npath = \"/calibrate/{{seq}}\"\nexpect = 200\n\
             headers = {{ \"x-mock-latency\" = \"fixed:{name}\" }}\n"
        ));
    }
    text.push_str(&format!(
        "[[phase]]\nname = \"warmup\"\nduration = \"{}\"\nrate = 500\nrecord = false\n\
         [[phase]]\nname = \"steady\"\nduration = \"{}\"\nrate = {RATE}\n\
         [[phase]]\nname = \"fast\"\nduration = \"{}\"\nrate = {FAST_RATE}\n",
        ms(steady * 0.25),
        ms(steady),
        ms(steady * 0.2)
    ));
    Ok(Scenario::parse(&text, "calibrate.toml")?)
}

/// Runs the calibration (about `total` of wall time), writing the run's
/// own result files into `dir`.
pub fn run(
    total: Duration,
    dir: &Path,
    stop: &Arc<AtomicBool>,
) -> Result<Calibration, CalibrateError> {
    let s = scenario(total)?;
    std::fs::create_dir_all(dir).map_err(ResultsError::write(dir))?;
    let summary = crate::commands::capacity::run_quiet(&s, dir, stop)?;
    from_summary(&summary)
}

fn class<'a>(
    s: &'a Summary,
    target: &str,
    request: &str,
    phase: &str,
) -> Result<&'a ClassResult, CalibrateError> {
    s.targets
        .iter()
        .find(|t| t.name == target)
        .and_then(|t| {
            t.classes
                .iter()
                .find(|c| c.request == request && c.phase == phase)
        })
        .ok_or_else(|| CalibrateError::Missing(format!("{request}/{phase} for {target}")))
}

/// The calibration a run of [`scenario`] measured.
pub fn from_summary(s: &Summary) -> Result<Calibration, CalibrateError> {
    let (a, b) = (
        class(s, "a", "d0", "steady")?,
        class(s, "b", "d0", "steady")?,
    );
    let rounds_diff: Vec<Resolution> = a
        .rounds
        .iter()
        .zip(&b.rounds)
        .map(|(x, y)| Resolution {
            p50: y.p50 as i64 - x.p50 as i64,
            p90: y.p90 as i64 - x.p90 as i64,
            p99: y.p99 as i64 - x.p99 as i64,
        })
        .collect();
    if rounds_diff.is_empty() {
        return Err(CalibrateError::NoRound);
    }
    let (floor, resolution) = Resolution::of_rounds(&rounds_diff);
    let loopback_p50 = a.latency.p50 as i64;
    let delays = DELAYS
        .iter()
        .map(|(name, programmed)| {
            let c = class(s, "a", &format!("d{name}"), "steady")?;
            let read = c.latency.p50 as i64 - loopback_p50;
            Ok(KnownDelay {
                programmed_ns: *programmed,
                read_ns: read,
                server_timing_ns: c
                    .outside_upstream
                    .map(|o| c.service_time.p50.saturating_sub(o.p50)),
                error_ns: read - *programmed as i64,
            })
        })
        .collect::<Result<Vec<_>, CalibrateError>>()?;
    let lag = |phase: &str, rate: u32| -> Result<RateLag, CalibrateError> {
        Ok(RateLag {
            rate: f64::from(rate),
            lag: class(s, "a", "d0", phase)?.schedule_lag,
        })
    };
    let steady_s = s
        .targets
        .first()
        .and_then(|t| t.phases.iter().find(|p| p.phase == "steady"))
        .map_or(0.0, |p| p.end_s - p.start_s);
    Ok(Calibration {
        duration_s: s.duration_s,
        rounds: rounds_diff.len() as u32,
        round_s: steady_s,
        rate: f64::from(RATE),
        timer_late: s.health.hiccup,
        schedule_lag: vec![lag("steady", RATE)?, lag("fast", FAST_RATE)?],
        loopback: a.latency,
        delays,
        rounds_diff,
        floor,
        level: Resolution {
            p50: a.latency.p50 as i64,
            p90: a.latency.p90 as i64,
            p99: a.latency.p99 as i64,
        },
        resolution,
    })
}

/// Writes `calibration.json` into `dir`, atomically.
pub fn write(dir: &Path, c: &Calibration) -> Result<(), ResultsError> {
    let path = dir.join("calibration.json");
    let json = serde_json::to_vec_pretty(c).map_err(|source| ResultsError::Format {
        path: path.clone(),
        source,
    })?;
    reports::write_atomic(&path, &json).map_err(ResultsError::write(&path))
}
