//! `loadgen capacity`: the highest arrival rate at which a target meets an
//! SLO. Each step is a short open-loop run of the scenario's requests at one
//! rate (a warm-up, then `step` recorded, in `rounds` rounds with the
//! baseline interleaved when a term is `added.*`). A step is decided by the
//! 95 % interval of each term over its rounds (`slo`): it passes when every
//! interval lies within its limit, fails when one lies beyond, and otherwise
//! runs again with twice the rounds, up to `max_rounds`; still undecided
//! there, it counts as not passing, marked inconclusive. The rate doubles from
//! `min` until a step fails, then bisects until the highest passing and the
//! lowest failing rate are within `precision`. A step whose run was invalid
//! (the generator was late) stops the search: the capacity found so far is
//! a lower bound, said as "generator limit at R", never the target's.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reports::capacity::{Capacity, CapacityStep, Decision, RULE, TargetCapacity};
use reports::summary::{Percentiles, Summary};

use super::slo;
use crate::engine::{self, RunOptions};
use crate::measure::totals::ResultsError;
use crate::scenario::{Dur, Phase, Rate, Scenario, Term, parse_percent};

/// Why a capacity search could not be set up, run or written.
#[derive(Debug, thiserror::Error)]
pub enum CapacityError {
    #[error("{0}: no SLO: give --slo 'added.p99<=2ms' (repeatable) or [capacity] slo = [...]")]
    NoSlo(String),
    /// A term or the precision in `[capacity]`.
    #[error(transparent)]
    Setting(#[from] crate::scenario::BadValue),
    #[error("--min must be above 0 and at most --max")]
    MinMax,
    #[error("--step must be above 0")]
    Step,
    #[error(
        "--max-rounds ({max}) must be at least --rounds ({rounds}) (or [capacity] max_rounds and rounds)"
    )]
    MaxRounds { rounds: u32, max: u32 },
    #[error("{0}: an added.* term needs a baseline target (baseline = true) to interleave")]
    NeedsBaseline(String),
    #[error("--target {target:?}: no such target in {file}")]
    NoSuchTarget { target: String, file: String },
    #[error("{0}: no target to search (every one is a baseline)")]
    NoTarget(String),
    #[error("no step ran to completion (see the steps)")]
    NoStep,
    /// A step's run.
    #[error(transparent)]
    Run(#[from] engine::RunError),
    #[error(transparent)]
    Results(#[from] ResultsError),
    #[error(transparent)]
    Chart(#[from] reports::charts::ChartError),
}

/// What the command line asks for (None: the scenario's `[capacity]`, else the default).
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub slo: Vec<Term>,
    pub targets: Vec<String>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub precision: Option<f64>,
    pub step: Option<Duration>,
    pub warmup: Option<Duration>,
    pub rounds: Option<u32>,
    pub max_rounds: Option<u32>,
    pub quiet: bool,
}

/// The search the flags and the scenario's `[capacity]` ask for (flags
/// win), with the defaults; errors name the missing or bad setting.
pub fn settings(s: &Scenario, flags: &Flags, out: PathBuf) -> Result<Search, CapacityError> {
    let spec = s.capacity.clone().unwrap_or_default();
    let slo = if flags.slo.is_empty() {
        spec.slo
            .iter()
            .map(|t| t.parse())
            .collect::<Result<Vec<Term>, _>>()?
    } else {
        flags.slo.clone()
    };
    if slo.is_empty() {
        return Err(CapacityError::NoSlo(s.source.file.clone()));
    }
    let precision = match (flags.precision, &spec.precision) {
        (Some(p), _) => p,
        (None, Some(p)) => parse_percent(p)?,
        (None, None) => 0.05,
    };
    let rounds = flags.rounds.or(spec.rounds).unwrap_or(3).max(1);
    let search = Search {
        slo,
        targets: flags.targets.clone(),
        min: flags.min.or(spec.min).unwrap_or(500.0),
        max: flags.max.or(spec.max).unwrap_or(200_000.0),
        precision,
        step: flags
            .step
            .or(spec.step.map(|d| d.0))
            .unwrap_or(Duration::from_secs(10)),
        warmup: flags
            .warmup
            .or(spec.warmup.map(|d| d.0))
            .unwrap_or(Duration::from_secs(2)),
        rounds,
        max_rounds: flags
            .max_rounds
            .or(spec.max_rounds)
            .unwrap_or(rounds.saturating_mul(4)),
        out,
        quiet: flags.quiet,
    };
    if !(search.min > 0.0 && search.min <= search.max) {
        return Err(CapacityError::MinMax);
    }
    if search.step.is_zero() {
        return Err(CapacityError::Step);
    }
    if search.max_rounds < search.rounds {
        return Err(CapacityError::MaxRounds {
            rounds: search.rounds,
            max: search.max_rounds,
        });
    }
    Ok(search)
}

impl Term {
    fn added(&self) -> bool {
        self.metric.starts_with("added.")
    }
}

/// How to search.
#[derive(Debug, Clone)]
pub struct Search {
    pub slo: Vec<Term>,
    /// Targets to search (default: every non-baseline one).
    pub targets: Vec<String>,
    pub min: f64,
    pub max: f64,
    /// Fraction, e.g. 0.05.
    pub precision: f64,
    pub step: Duration,
    pub warmup: Duration,
    /// Rounds a step starts with; an undecided one doubles them up to
    /// `max_rounds`.
    pub rounds: u32,
    pub max_rounds: u32,
    pub out: PathBuf,
    pub quiet: bool,
}

/// What the search found, and the summary of each target at its capacity.
#[derive(Debug)]
pub struct Found {
    pub capacity: Capacity,
    pub summary: Summary,
}

/// The scenario of one step: `target` (and `baseline`) at `rate`.
fn step_scenario(
    s: &Scenario,
    target: &str,
    baseline: Option<&str>,
    (rate, rounds): (f64, u32),
    search: &Search,
) -> Scenario {
    let mut v = s.clone();
    v.targets
        .retain(|t| t.name == target || Some(t.name.as_str()) == baseline);
    v.events.clear();
    v.rounds = Some(rounds);
    // A step runs its own rounds; a run's [precision] is not a step's.
    v.precision = None;
    let phase = |name: &str, d: Duration, record: bool| Phase {
        name: name.into(),
        duration: Dur(d),
        rate: Some(Rate::Constant(rate)),
        poisson: false,
        concurrency: None,
        think_time: None,
        record: Some(record),
    };
    v.phases = Vec::new();
    if !search.warmup.is_zero() {
        v.phases.push(phase("warmup", search.warmup, false));
    }
    v.phases.push(phase("step", search.step, true));
    v
}

/// Runs the search for every target; each step's results go under
/// `out/steps/`.
pub fn search(
    s: &Scenario,
    search: &Search,
    stop: &Arc<AtomicBool>,
) -> Result<Found, CapacityError> {
    let (targets, base) = searched(s, search)?;
    let mut out = Vec::new();
    let mut at_capacity: Vec<(Summary, String)> = Vec::new();
    let mut n = 0;
    for target in &targets {
        let one = OneSearch {
            s,
            search,
            target,
            base: base.as_deref(),
            stop,
        };
        let (found, ran) = one.run(&mut n)?;
        // The target as it ran at its capacity (or, with none, its last step).
        if let Some(b) = ran {
            at_capacity.push((b, target.clone()));
        }
        out.push(found);
    }
    let capacity = Capacity {
        slo: search.slo.iter().map(|t| t.text.clone()).collect(),
        rule: RULE.into(),
        precision: search.precision,
        step_s: search.step.as_secs_f64(),
        rounds: search.rounds,
        max_rounds: search.max_rounds,
        targets: out,
    };
    let summary = combined(&capacity, at_capacity)?;
    Ok(Found { capacity, summary })
}

/// The targets to search (`--target`, else every one that is not a
/// baseline), and the baseline interleaved with them when an `added.*`
/// term needs one.
fn searched(s: &Scenario, search: &Search) -> Result<(Vec<String>, Option<String>), CapacityError> {
    let wants_baseline = search.slo.iter().any(Term::added);
    let baseline = s
        .targets
        .iter()
        .find(|t| t.baseline)
        .map(|t| t.name.clone());
    if wants_baseline && baseline.is_none() {
        return Err(CapacityError::NeedsBaseline(s.source.file.clone()));
    }
    let targets: Vec<String> = if search.targets.is_empty() {
        s.targets
            .iter()
            .filter(|t| !t.baseline)
            .map(|t| t.name.clone())
            .collect()
    } else {
        for t in &search.targets {
            if !s.targets.iter().any(|x| &x.name == t) {
                return Err(CapacityError::NoSuchTarget {
                    target: t.clone(),
                    file: s.source.file.clone(),
                });
            }
        }
        search.targets.clone()
    };
    if targets.is_empty() {
        return Err(CapacityError::NoTarget(s.source.file.clone()));
    }
    Ok((targets, baseline.filter(|_| wants_baseline)))
}

/// The search for one target.
struct OneSearch<'a> {
    s: &'a Scenario,
    search: &'a Search,
    target: &'a str,
    base: Option<&'a str>,
    stop: &'a Arc<AtomicBool>,
}

/// Why a search ended (`ended_by`) and what it says.
type Ended = (String, String);

impl OneSearch<'_> {
    /// Doubles the rate from `--min` until the SLO breaks, then bisects to
    /// the precision; `n` numbers the steps across targets. Returns what was
    /// found and the summary of the step at capacity (else the last one).
    fn run(&self, n: &mut usize) -> Result<(TargetCapacity, Option<Summary>), CapacityError> {
        let (target, search) = (self.target, self.search);
        let mut steps = Vec::new();
        let (mut lo, mut hi): (Option<f64>, Option<f64>) = (None, None);
        let mut best: Option<Summary> = None;
        let mut last: Option<Summary> = None;
        let mut rate = search.min;
        let mut hi_undecided = false;
        let (ended_by, note) = loop {
            if self.stop.load(Ordering::Relaxed) {
                break ("interrupted".to_owned(), "interrupted".to_owned());
            }
            let (summary, step) = self.step(n, rate)?;
            let (valid, passed) = (step.valid, step.passed);
            steps.push(step);
            // A step cut short, or one the generator could not keep, is no
            // verdict on the target; it is still the last step that ran, so
            // the results hold it (marked) when no step passed before it.
            if self.stop.load(Ordering::Relaxed) {
                last = Some(summary);
                break (
                    "interrupted".to_owned(),
                    format!("interrupted during the {rate:.0} req/s step: partial"),
                );
            }
            if !valid {
                last = Some(summary);
                break self.generator_limit(rate, lo);
            }
            if passed {
                lo = Some(rate);
                best = Some(summary);
            } else {
                hi = Some(rate);
                hi_undecided = steps.last().is_some_and(|s| s.inconclusive);
                last = Some(summary);
            }
            match next_rate(lo, (hi, hi_undecided), search) {
                Ok(next) => rate = next,
                Err(ended) => break ended,
            }
        };
        let mut found = TargetCapacity {
            target: target.to_owned(),
            baseline: self.base.map(str::to_owned),
            capacity_rps: lo,
            ended_by,
            note,
            knee_rps: None,
            steps,
        };
        found.knee_rps = found.knee();
        Ok((found, best.or(last)))
    }

    /// One rate: its rounds, doubled while a term is undecided, up to
    /// `max_rounds`. Each run is its own step directory; the step is the
    /// last run's.
    fn step(&self, n: &mut usize, rate: f64) -> Result<(Summary, CapacityStep), CapacityError> {
        let (target, search) = (self.target, self.search);
        let mut rounds = search.rounds;
        loop {
            *n += 1;
            let dir = format!("steps/{n:02}-{target}-{rate:.0}rps", n = *n);
            let v = step_scenario(self.s, target, self.base, (rate, rounds), search);
            let summary = run_quiet(&v, &search.out.join(&dir), self.stop)?;
            let last = rounds >= search.max_rounds || self.stop.load(Ordering::Relaxed);
            let step = judge(&summary, target, (rate, rounds), &search.slo, dir, last);
            if !search.quiet {
                eprintln!("{}", step_line(target, rate, &step));
            }
            let undecided = step.valid && !step.passed && step.broke.is_empty();
            if last || !undecided {
                return Ok((summary, step));
            }
            rounds = rounds.saturating_mul(2).min(search.max_rounds);
        }
    }

    fn generator_limit(&self, rate: f64, lo: Option<f64>) -> Ended {
        let below = lo.map_or("no rate passed before it".to_owned(), |l| {
            format!("at least {l:.0} req/s met the SLO")
        });
        (
            "generator".into(),
            format!(
                "generator limit at {rate:.0} req/s: the generator, not {}, was late \
                 ({below}); not the target's capacity. Use more workers or machines (--shard)",
                self.target
            ),
        )
    }
}

/// The progress line of one step.
fn step_line(target: &str, rate: f64, step: &CapacityStep) -> String {
    format!(
        "capacity {target}: {rate:.0} req/s, {} rounds: {} (p99 {}{})",
        step.rounds,
        if !step.valid {
            "GENERATOR LIMIT"
        } else if step.passed {
            "pass"
        } else if step.inconclusive {
            "inconclusive, counted as not passing"
        } else if step.broke.is_empty() {
            "undecided, more rounds"
        } else {
            "fail"
        },
        reports::fmt_ns(step.latency.p99),
        match (step.broke.is_empty(), step.inconclusive) {
            (true, _) => String::new(),
            (false, true) => format!("; undecided {}", step.broke.join(", ")),
            (false, false) => format!("; broke {}", step.broke.join(", ")),
        }
    )
}

/// The next rate to try, from the highest that passed and the lowest that
/// did not (`undecided`: it was inconclusive rather than failed); or why
/// the search is over.
fn next_rate(
    lo: Option<f64>,
    (hi, undecided): (Option<f64>, bool),
    search: &Search,
) -> Result<f64, Ended> {
    let broke = if undecided {
        "could not be shown to meet"
    } else {
        "broke"
    };
    match (lo, hi) {
        (None, Some(_)) => Err((
            "min".into(),
            format!("even {:.0} req/s (--min) {broke} the SLO", search.min),
        )),
        (Some(l), None) if l >= search.max => Err((
            "max".into(),
            format!("{l:.0} req/s (--max) met the SLO: the capacity is at least that"),
        )),
        (Some(l), None) => Ok((l * 2.0).min(search.max)),
        (Some(l), Some(h)) if (h - l) / l <= search.precision => Err((
            "precision".into(),
            format!(
                "{l:.0} req/s (the next rate tried, {h:.0}, {broke} it; within {:.0}%)",
                search.precision * 100.0
            ),
        )),
        (Some(l), Some(h)) => Ok(((l + h) / 2.0).round()),
        // A valid step passes or fails, so one of the two is known.
        (None, None) => Ok(search.min),
    }
}

/// One run written like `loadgen run` (no progress, no report) into `dir`,
/// with its summary: a capacity step, or a calibration.
pub(crate) fn run_quiet(
    v: &Scenario,
    dir: &Path,
    stop: &Arc<AtomicBool>,
) -> Result<Summary, engine::RunError> {
    let opts = RunOptions {
        out_dir: dir.to_owned(),
        progress: false,
        stop: stop.clone(),
        shard: crate::shard::Shard::default(),
        start_at: None,
        metrics: None,
    };
    let data = engine::run(v, &opts)?;
    let summary = crate::measure::summarize::summarize(
        (&v.name, crate::measure::summarize::redacted(v)),
        &data,
    );
    crate::measure::summarize::write(dir, &summary, &data)?;
    Ok(summary)
}

/// Whether a step met every term, by the stated rule. `last`: no more
/// rounds will be run, so a step still undecided is inconclusive; before
/// that, an undecided step has no broken term and is not passed.
fn judge(
    s: &Summary,
    target: &str,
    (rate, rounds): (f64, u32),
    slo: &[Term],
    dir: String,
    last: bool,
) -> CapacityStep {
    let t = s.targets.iter().find(|t| t.name == target);
    let valid = s.valid;
    let terms: Vec<_> = t.map_or(Vec::new(), |t| {
        slo.iter().map(|term| slo::judge(term, t)).collect()
    });
    let with = |d: Decision| {
        terms
            .iter()
            .filter(|x| x.decision == d)
            .map(slo::shown)
            .collect::<Vec<_>>()
    };
    let mut broke = with(Decision::Breaks);
    let undecided = with(Decision::Undecided);
    let inconclusive = valid && broke.is_empty() && !undecided.is_empty() && last;
    if inconclusive {
        broke = undecided.clone();
    }
    let zero = Percentiles::default();
    CapacityStep {
        rate,
        passed: valid && t.is_some() && broke.is_empty() && undecided.is_empty(),
        valid,
        achieved_rps: t.map_or(0.0, |t| t.total.achieved_rps),
        latency: t.map_or(zero, |t| t.total.latency),
        added_p50: t.and_then(|t| t.added.as_ref()).map(|a| a.total.p50),
        added_p99: t.and_then(|t| t.added.as_ref()).map(|a| a.total.p99),
        errors_percent: t.map_or(0.0, slo::errors_percent),
        broke: if t.is_none() {
            vec![format!("{target}: no result")]
        } else {
            broke
        },
        dir,
        rounds,
        inconclusive,
        terms,
    }
}

/// One summary for the capacity run: each searched target as it ran at its
/// capacity (or, where no rate passed, at its last step; the baseline from
/// the first), and the `capacity` section.
fn combined(capacity: &Capacity, at: Vec<(Summary, String)>) -> Result<Summary, CapacityError> {
    let mut iter = at.into_iter();
    let Some((mut first, name)) = iter.next() else {
        return Err(CapacityError::NoStep);
    };
    // Keep the first's baseline (if any) and its target; add the others' targets.
    first.targets.retain(|t| t.baseline || t.name == name);
    for (s, name) in iter {
        first
            .targets
            .extend(s.targets.into_iter().filter(|t| t.name == name));
        first.target_faults.extend(s.target_faults);
        first.warnings.extend(s.warnings);
        first.valid &= s.valid;
        first.invalid_reasons.extend(s.invalid_reasons);
    }
    first.capacity = Some(capacity.clone());
    Ok(first)
}

/// Writes `summary.json` (with `capacity`) and `capacity.png`/`.svg` into `out`.
pub fn write(out: &Path, found: &Found) -> Result<(), CapacityError> {
    std::fs::create_dir_all(out).map_err(ResultsError::write(out))?;
    let path = out.join("summary.json");
    let json =
        serde_json::to_vec_pretty(&found.summary).map_err(|source| ResultsError::Format {
            path: path.clone(),
            source,
        })?;
    reports::write_atomic(&path, &json).map_err(ResultsError::write(&path))?;
    reports::charts::capacity(&found.capacity, out)?;
    Ok(())
}
