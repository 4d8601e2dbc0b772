//! The traffic engine: builtin servers, endpoints, rounds × targets, worker
//! threads, and the collector that merges their 1-second intervals into
//! totals and interval logs.

mod builtin;
pub mod conn;
pub mod endpoint;
mod error;
pub mod events;
pub mod h1;
mod live;
pub mod plan;
mod slot;
pub mod timer;
pub mod worker;

use std::io::{BufWriter, IsTerminal as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime};

use reports::hlog::HlogWriter;

use crate::measure::record::ClassStats;
use crate::measure::totals::{HistConfig, RunData, TOTALS_VERSION, TargetTotals, added_per_round};
use crate::scenario::{Scenario, Target};
use crate::shard::Shard;
use builtin::{Builtins, endpoints};
use conn::Endpoint;
pub use error::RunError;
use error::io;
use plan::Plan;
use reports::events::EventResult;
use reports::precision::Precision;
use reports::summary::ShardInfo;
use slot::{Slot, lead};

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub out_dir: PathBuf,
    /// Live progress on a TTY.
    pub progress: bool,
    /// Set on Ctrl-C: stop sending, finish in-flight requests, write partial results.
    pub stop: Arc<AtomicBool>,
    /// This process's share of the schedule (`--shard`).
    pub shard: Shard,
    /// The common start of all shards (`--start-at`): every round and target
    /// then runs at a fixed offset from it, the same on every shard.
    pub start_at: Option<SystemTime>,
    /// Live metrics for `/metrics` (`--metrics-listen`).
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
}

/// Runs a scenario: every round, every target (rotated), every phase.
pub fn run(scenario: &Scenario, opts: &RunOptions) -> Result<RunData, RunError> {
    let plan = Arc::new(Plan::new(scenario)?);
    if !plan.events.events.is_empty() && opts.shard.n > 1 {
        return Err(RunError::EventsNeedOneProcess);
    }
    // Pool tokens are all signed before the first request (when a target uses them).
    let pooled = scenario.targets.iter().any(|t| !scenario.per_request(t));
    if let Some(a) = plan.tokens.as_ref().filter(|_| pooled) {
        a.fill_pool();
    }
    let builtins = Builtins::start(scenario, scenario.dir(), plan.tokens.as_deref())?;
    let endpoints: Vec<Vec<Endpoint>> = scenario
        .targets
        .iter()
        .map(|t| endpoints(t, &builtins, plan.connect_timeout))
        .collect::<Result<_, _>>()?;
    std::fs::create_dir_all(&opts.out_dir).map_err(io("cannot create", &opts.out_dir))?;
    if let Some(m) = &opts.metrics {
        announce(m, scenario, &plan);
    }
    conn_guard::raise_open_files();
    let (start, t0) = time_base(opts.start_at)?;
    let mut hlogs = open_hlogs(scenario, &opts.out_dir, start)?;
    let mut totals: Vec<TargetTotals> = scenario
        .targets
        .iter()
        .map(|t| target_totals(t, &builtins, &plan))
        .collect();
    let background = Background::start(&plan, pooled)?;
    let rounds = Rounds {
        scenario,
        opts,
        plan: &plan,
        builtins: &builtins,
        endpoints: &endpoints,
        t0,
    };
    let ran = rounds.run(&mut totals, &mut hlogs)?;
    if let Some(m) = &opts.metrics {
        m.finish();
    }
    let (hiccup, (other, own)) = background.finish();
    close_hlogs(hlogs, scenario, &opts.out_dir)?;
    drop(builtins);
    Ok(RunData {
        version: TOTALS_VERSION,
        hist: HistConfig::THIS,
        seed: plan.seed,
        layout: plan.layout(),
        schedule_share: 1.0 / f64::from(opts.shard.n.max(1)),
        targets: totals,
        start,
        elapsed: t0.elapsed(),
        partial: opts.stop.load(Ordering::Relaxed),
        hiccup,
        other_cpu_percent: other,
        own_cpu_percent: own,
        auth: plan
            .tokens
            .as_ref()
            .map(|t| crate::measure::totals::AuthTotals {
                summary: t.summary(),
                signing: t.signing(),
            }),
        shard: shard_info(scenario, opts, ran.skew),
        events: ran.events,
        event_faults: ran.event_faults,
        precision: ran.precision,
    })
}

/// What runs beside the rounds: the pool's refresher (pool tokens are
/// re-signed before they expire), the hiccup probe and the CPU sample.
struct Background {
    refresh_stop: Arc<AtomicBool>,
    refresher: Option<std::thread::JoinHandle<()>>,
    hiccup: crate::measure::health::HiccupProbe,
    cpu0: Option<crate::measure::health::CpuSample>,
}

impl Background {
    fn start(plan: &Plan, pooled: bool) -> Result<Background, RunError> {
        let refresh_stop = Arc::new(AtomicBool::new(false));
        let refresher = plan
            .tokens
            .as_ref()
            .filter(|_| pooled)
            .map(|a| crate::token::refresher(a.clone(), refresh_stop.clone()));
        let hiccup =
            crate::measure::health::HiccupProbe::start().map_err(|source| RunError::Io {
                what: "cannot start the hiccup probe".into(),
                source,
            })?;
        Ok(Background {
            refresh_stop,
            refresher,
            hiccup,
            cpu0: crate::measure::health::CpuSample::now(),
        })
    }

    /// Stops them: the timer's lateness, and the CPU share (percent of a
    /// core) of other processes and of this one.
    fn finish(self) -> (hdrhistogram::Histogram<u64>, (f64, f64)) {
        let hiccup = self.hiccup.finish();
        self.refresh_stop.store(true, Ordering::Relaxed);
        if let Some(r) = self.refresher {
            let _ = r.join();
        }
        let cpu = match (self.cpu0, crate::measure::health::CpuSample::now()) {
            (Some(a), Some(b)) => b.since(&a),
            _ => (0.0, 0.0),
        };
        (hiccup, cpu)
    }
}

/// Tells the live metrics what the run will go through.
fn announce(m: &crate::metrics::Metrics, scenario: &Scenario, plan: &Plan) {
    let targets: Vec<&str> = scenario.targets.iter().map(|t| t.name.as_str()).collect();
    let phases: Vec<(&str, bool)> = plan
        .phases
        .iter()
        .map(|p| (p.name.as_str(), p.record))
        .collect();
    let requests: Vec<&str> = plan.requests.iter().map(|r| r.name.as_str()).collect();
    let rounds = scenario
        .precision
        .as_ref()
        .map_or(scenario.rounds(), |p| p.max_rounds());
    m.plan(&targets, &phases, &requests, rounds);
}

/// An interval log being written, and the temporary file it goes to.
type OpenHlog = (HlogWriter<BufWriter<std::fs::File>>, PathBuf);

/// Opens each target's interval log as a hidden partial file.
fn open_hlogs(
    scenario: &Scenario,
    out_dir: &std::path::Path,
    start: SystemTime,
) -> Result<Vec<OpenHlog>, RunError> {
    let mut hlogs = Vec::new();
    for t in &scenario.targets {
        let tmp = out_dir.join(format!(".{}.hlog.partial", t.name));
        let f = std::fs::File::create(&tmp).map_err(io("cannot create", &tmp))?;
        let tool = format!(
            "gatebench-loadgen {} (target {})",
            env!("CARGO_PKG_VERSION"),
            t.name
        );
        hlogs.push((HlogWriter::new(BufWriter::new(f), &tool, start)?, tmp));
    }
    Ok(hlogs)
}

/// Flushes each interval log to disk and renames it into place.
fn close_hlogs(
    hlogs: Vec<OpenHlog>,
    scenario: &Scenario,
    out_dir: &std::path::Path,
) -> Result<(), RunError> {
    for ((w, tmp), t) in hlogs.into_iter().zip(&scenario.targets) {
        let done = out_dir.join(format!("{}.hlog", t.name));
        let mut buf = w.into_inner();
        let written = std::io::Write::flush(&mut buf)
            .and_then(|()| buf.into_inner().map_err(|e| e.into_error()))
            .and_then(|f| f.sync_all())
            .and_then(|()| std::fs::rename(&tmp, &done));
        written.map_err(io("cannot write", &done))?;
    }
    Ok(())
}

/// A target's totals before anything is recorded.
fn target_totals(t: &Target, builtins: &Builtins, plan: &Plan) -> TargetTotals {
    TargetTotals {
        name: t.name.clone(),
        urls: t.url_list().iter().map(|u| builtins.resolve(u)).collect(),
        baseline: t.baseline,
        http2: t.http2(),
        connections: t.connections.unwrap_or(16),
        streams: if t.http2() {
            t.streams.unwrap_or(16)
        } else {
            1
        },
        classes: vec![ClassStats::default(); plan.classes()],
        rounds: vec![Vec::new(); plan.classes()],
        rounds_run: 0,
        timeline: Vec::new(),
        tick_latency: Vec::new(),
        phases: Vec::new(),
    }
}

/// This shard's place in the run, for `summary.json`.
fn shard_info(scenario: &Scenario, opts: &RunOptions, skew: Option<i64>) -> ShardInfo {
    ShardInfo {
        index: opts.shard.k,
        count: opts.shard.n,
        start_at_unix_s: opts.start_at.map(crate::shard::unix_s),
        start_skew_ns: skew,
        clock: crate::shard::clock_source(),
        host: crate::shard::host(),
        scenario_hash: scenario.content_hash(),
    }
}

/// What the rounds gave besides the totals.
struct Ran {
    /// `[precision]`: what it asked for and what the rounds reached.
    precision: Option<Precision>,
    /// When this shard's first slot began, against the common start.
    skew: Option<i64>,
    events: Vec<EventResult>,
    event_faults: Vec<String>,
}

/// Everything the rounds share.
struct Rounds<'a> {
    scenario: &'a Scenario,
    opts: &'a RunOptions,
    plan: &'a Arc<Plan>,
    builtins: &'a Builtins,
    endpoints: &'a [Vec<Endpoint>],
    t0: Instant,
}

impl Rounds<'_> {
    /// Every round, every target in it (in [`slot_target`]'s order), until
    /// the end or Ctrl-C.
    fn run(&self, totals: &mut [TargetTotals], hlogs: &mut [OpenHlog]) -> Result<Ran, RunError> {
        let (scenario, opts) = (self.scenario, self.opts);
        let mut precision = asked_precision(scenario);
        // Without [precision] exactly `rounds`; with it, from its floor up
        // to its ceiling, until its intervals are narrow enough.
        let (floor, ceiling) = precision
            .as_ref()
            .map_or((scenario.rounds(), scenario.rounds()), |p| {
                (p.min_rounds, p.max_rounds)
            });
        let of = if floor == ceiling {
            ceiling.to_string()
        } else {
            format!("≤{ceiling}")
        };
        let show = opts.progress && std::io::stderr().is_terminal();
        // On a common timeline every (round, target) slot starts at a fixed offset.
        let widest = scenario
            .targets
            .iter()
            .map(|t| t.connections.unwrap_or(16))
            .max();
        let slot_len = self.plan.duration() + self.plan.grace + lead(widest.unwrap_or(16));
        let mut ran = Ran {
            skew: None,
            events: Vec::new(),
            event_faults: Vec::new(),
            precision: None,
        };
        let n = scenario.targets.len();
        for round in 0..ceiling {
            for k in 0..n {
                if opts.stop.load(Ordering::Relaxed) {
                    ran.precision = precision;
                    return Ok(ran);
                }
                let ti = slot_target(round, n, k);
                let target = &scenario.targets[ti];
                let label = format!("round {}/{of} {}", round + 1, target.name);
                let slot = round as usize * n + k;
                let at = opts.start_at.map(|_| self.t0 + slot_len * slot as u32);
                let (hlog, _) = &mut hlogs[ti];
                let (began, measured, faults) = self.slot(round, ti).execute(
                    &mut totals[ti],
                    hlog,
                    (self.t0, at),
                    show.then_some(label.as_str()),
                )?;
                ran.events.extend(measured);
                ran.event_faults.extend(faults);
                if slot == 0
                    && let (Some(at), Some(began)) = (opts.start_at, began)
                {
                    ran.skew = Some(self.skew(began, at));
                }
            }
            if let Some(p) = &mut precision {
                let done = round + 1;
                self.measure_precision(p, done, totals);
                if p.enough() {
                    break;
                }
            }
        }
        ran.precision = precision;
        Ok(ran)
    }

    /// After `done` rounds: the widest asked-for added interval, and whether
    /// it is narrow enough (with a progress line).
    fn measure_precision(&self, p: &mut Precision, done: u32, totals: &[TargetTotals]) {
        let layout = self.plan.layout();
        let added = added_per_round(&layout, totals);
        let figures = added.iter().flat_map(|(t, rounds)| {
            p.at.iter().map(move |at| {
                let diffs = rounds.iter().filter_map(|r| r.at(at)).map(|d| d as f64);
                (*t, at.as_str(), diffs.collect())
            })
        });
        let widest = reports::precision::widest(figures);
        p.record(done, widest);
        if self.opts.progress {
            eprintln!("loadgen: after round {done}: {}", p.describe_progress());
        }
    }

    /// Target `ti` in `round`.
    fn slot(&self, round: u32, ti: usize) -> Slot<'_> {
        let target = &self.scenario.targets[ti];
        Slot {
            plan: self.plan.clone(),
            target,
            endpoints: &self.endpoints[ti],
            workers: self.scenario.workers.unwrap_or(1),
            round,
            shard: self.opts.shard,
            stop: self.opts.stop.clone(),
            per_request: self.scenario.per_request(target),
            metrics: self.opts.metrics.as_deref(),
            admin: target
                .admin
                .clone()
                .or_else(|| self.builtins.admin_url(&target.url_list())),
        }
    }

    /// How far this shard's first slot began from the common start (ns),
    /// with a warning past 1 ms.
    fn skew(&self, began: SystemTime, at: SystemTime) -> i64 {
        let skew = signed_ns(began, at);
        if skew.unsigned_abs() > 1_000_000 {
            eprintln!(
                "loadgen: warning: shard {} started {} after the common start (> 1 ms)",
                self.opts.shard,
                crate::measure::summarize::fmt_signed_ns(skew)
            );
        }
        skew
    }
}

/// The target that runs `k`-th of `n` in `round`: the order rotated every
/// two rounds and reversed in the odd ones. Every two rounds then run each
/// pair of targets once in each order, so a drift within rounds (the later
/// slot slower, say) cancels from their paired differences; a plain rotation
/// runs neighbours in the same order in n−1 rounds of n, which biases an
/// A/B of base and candidate run after the baseline. For 3 targets six
/// rounds run every permutation.
fn slot_target(round: u32, n: usize, k: usize) -> usize {
    let k = if round % 2 == 1 { n - 1 - k } else { k };
    (k + (round / 2) as usize) % n
}

/// What `[precision]` asks of the rounds, before any ran.
fn asked_precision(scenario: &Scenario) -> Option<Precision> {
    scenario.precision.as_ref().map(|p| Precision {
        half_width_ns: p.half_width.0.as_nanos() as u64,
        at: p.at(),
        min_rounds: scenario.rounds().max(reports::precision::MIN_ROUNDS),
        max_rounds: p.max_rounds(),
        rounds: 0,
        reached: false,
        widest: None,
    })
}

/// The run's start on the wall clock and on the monotonic clock: now, or
/// the common start of all shards (which must still be ahead).
#[allow(
    clippy::disallowed_methods,
    reason = "the run's start, which every intended time is an offset from"
)]
fn time_base(start_at: Option<SystemTime>) -> Result<(SystemTime, Instant), RunError> {
    let (wall, now) = (SystemTime::now(), Instant::now());
    let Some(at) = start_at else {
        return Ok((wall, now));
    };
    match at.duration_since(wall) {
        Ok(ahead) => Ok((at, now + ahead)),
        Err(e) => Err(RunError::StartAtPassed {
            at: humantime::format_rfc3339_millis(at).to_string(),
            ago_s: e.duration().as_secs_f64(),
        }),
    }
}

/// `a − b` in nanoseconds, signed.
fn signed_ns(a: SystemTime, b: SystemTime) -> i64 {
    match a.duration_since(b) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::slot_target;

    fn order(round: u32, n: usize) -> Vec<usize> {
        (0..n).map(|k| slot_target(round, n, k)).collect()
    }

    #[test]
    fn every_two_rounds_run_each_pair_of_targets_once_in_each_order() {
        for n in 1..=7 {
            for pair in 0..4u32 {
                let (a, b) = (order(2 * pair, n), order(2 * pair + 1, n));
                for o in [&a, &b] {
                    let mut sorted = o.clone();
                    sorted.sort_unstable();
                    assert_eq!(sorted, (0..n).collect::<Vec<_>>(), "{o:?}");
                }
                let before = |o: &[usize], x, y| {
                    o.iter().position(|&t| t == x) < o.iter().position(|&t| t == y)
                };
                for x in 0..n {
                    for y in (x + 1)..n {
                        assert_ne!(before(&a, x, y), before(&b, x, y), "n={n} {a:?} {b:?}");
                    }
                }
            }
        }
        // Three targets (baseline, base, candidate): six rounds run all six orders.
        let mut seen: Vec<_> = (0..6).map(|r| order(r, 3)).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 6);
        // Each target leads equally often.
        let leads: Vec<_> = (0..6).map(|r| order(r, 3)[0]).collect();
        assert!((0..3).all(|t| leads.iter().filter(|&&l| l == t).count() == 2));
    }
}
