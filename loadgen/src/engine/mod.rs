//! The traffic engine: builtin servers, endpoints, rounds × targets, worker
//! threads, and the collector that merges their 1-second intervals into
//! totals and interval logs.

#![allow(
    clippy::disallowed_methods,
    reason = "the run's start, which every intended time is an offset from, and the progress line"
)]

mod builtin;
pub mod conn;
pub mod endpoint;
pub mod events;
pub mod h1;
mod live;
pub mod plan;
pub mod timer;
pub mod worker;

use std::collections::BTreeMap;
use std::io::{BufWriter, IsTerminal as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use hdrhistogram::Histogram;
use reports::hlog::HlogWriter;

use crate::measure::record::{ClassStats, new_hist};
use crate::measure::totals::{HistConfig, RunData, TOTALS_VERSION, TargetTotals};
use crate::scenario::{Scenario, Target};
use crate::shard::Shard;
use builtin::{Builtins, endpoints};
use conn::Endpoint;
use live::{Live, phase_now, progress_line};
use plan::Plan;
use reports::events::EventResult;
use worker::{Msg, WorkerCtx};

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

/// Time to open connections before a target's first phase.
fn lead(connections: usize) -> Duration {
    Duration::from_millis(100 + 2 * connections as u64)
}

/// Runs a scenario: every round, every target (rotated), every phase.
pub fn run(scenario: &Scenario, opts: &RunOptions) -> anyhow::Result<RunData> {
    let dir = scenario.dir();
    let plan = Arc::new(Plan::new(scenario)?);
    if !plan.events.events.is_empty() && opts.shard.n > 1 {
        anyhow::bail!(
            "[[event]]s need one process: with --shard each shard would carry them out, \
             and no shard sees all of the consumer's traffic"
        );
    }
    // Pool tokens are all signed before the first request (when a target uses them).
    let pooled = scenario.targets.iter().any(|t| !scenario.per_request(t));
    if let Some(a) = plan.tokens.as_ref().filter(|_| pooled) {
        a.fill_pool();
    }
    let builtins = Builtins::start(scenario, dir)?;
    let endpoints: Vec<Vec<Endpoint>> = scenario
        .targets
        .iter()
        .map(|t| endpoints(t, &builtins, plan.connect_timeout))
        .collect::<anyhow::Result<_>>()?;
    std::fs::create_dir_all(&opts.out_dir)
        .with_context(|| format!("cannot create {}", opts.out_dir.display()))?;

    let workers = scenario.workers.unwrap_or(1);
    let rounds = scenario.rounds();
    if let Some(m) = &opts.metrics {
        let targets: Vec<&str> = scenario.targets.iter().map(|t| t.name.as_str()).collect();
        let phases: Vec<(&str, bool)> = plan
            .phases
            .iter()
            .map(|p| (p.name.as_str(), p.record))
            .collect();
        let requests: Vec<&str> = plan.requests.iter().map(|r| r.name.as_str()).collect();
        m.plan(&targets, &phases, &requests, rounds);
    }
    conn_guard::raise_open_files();
    let (start, t0) = time_base(opts.start_at)?;
    let mut hlogs = Vec::new();
    for t in &scenario.targets {
        let tmp = opts.out_dir.join(format!(".{}.hlog.partial", t.name));
        let f = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        let tool = format!(
            "gatebench-loadgen {} (target {})",
            env!("CARGO_PKG_VERSION"),
            t.name
        );
        hlogs.push((HlogWriter::new(BufWriter::new(f), &tool, start)?, tmp));
    }
    let mut totals: Vec<TargetTotals> = scenario
        .targets
        .iter()
        .map(|t| TargetTotals {
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
        })
        .collect();

    // Pool tokens are re-signed in the background before they expire.
    let refresh_stop = Arc::new(AtomicBool::new(false));
    let refresher = plan
        .tokens
        .as_ref()
        .filter(|_| pooled)
        .map(|a| crate::token::refresher(a.clone(), refresh_stop.clone()));
    let hiccup =
        crate::measure::health::HiccupProbe::start().context("cannot start the hiccup probe")?;
    let cpu0 = crate::measure::health::CpuSample::now();
    let show = opts.progress && std::io::stderr().is_terminal();
    // On a common timeline every (round, target) slot starts at a fixed offset.
    let slot_len = plan.duration()
        + plan.grace
        + lead(
            scenario
                .targets
                .iter()
                .map(|t| t.connections.unwrap_or(16))
                .max()
                .unwrap_or(16),
        );
    let mut skew = None;
    let mut events = Vec::new();
    let mut event_faults = Vec::new();
    'rounds: for round in 0..rounds {
        let n = scenario.targets.len();
        for k in 0..n {
            if opts.stop.load(Ordering::Relaxed) {
                break 'rounds;
            }
            let ti = (k + round as usize) % n;
            let target = &scenario.targets[ti];
            let label = format!("round {}/{rounds} {}", round + 1, target.name);
            let slot = round as usize * n + k;
            let at = opts.start_at.map(|_| t0 + slot_len * slot as u32);
            let run = OneRun {
                plan: plan.clone(),
                target,
                endpoints: &endpoints[ti],
                workers,
                round,
                shard: opts.shard,
                stop: opts.stop.clone(),
                per_request: scenario.per_request(target),
                metrics: opts.metrics.as_deref(),
                admin: target
                    .admin
                    .clone()
                    .or_else(|| builtins.admin_url(&target.url_list())),
            };
            let (hlog, _) = &mut hlogs[ti];
            let (began, measured, faults) = run.execute(
                &mut totals[ti],
                hlog,
                (t0, at),
                show.then_some(label.as_str()),
            )?;
            events.extend(measured);
            event_faults.extend(faults);
            if slot == 0
                && let (Some(at), Some(began)) = (opts.start_at, began)
            {
                skew = Some(signed_ns(began, at));
                if skew.is_some_and(|s: i64| s.unsigned_abs() > 1_000_000) {
                    eprintln!(
                        "loadgen: warning: shard {} started {} after the common start (> 1 ms)",
                        opts.shard,
                        crate::measure::summarize::fmt_signed_ns(skew.unwrap_or(0))
                    );
                }
            }
        }
    }
    let hiccup = hiccup.finish();
    if let Some(m) = &opts.metrics {
        m.finish();
    }
    refresh_stop.store(true, Ordering::Relaxed);
    if let Some(r) = refresher {
        let _ = r.join();
    }
    let (other, own) = match (cpu0, crate::measure::health::CpuSample::now()) {
        (Some(a), Some(b)) => b.since(&a),
        _ => (0.0, 0.0),
    };
    for ((w, tmp), t) in hlogs.into_iter().zip(&scenario.targets) {
        let mut buf = w.into_inner();
        std::io::Write::flush(&mut buf)?;
        let f = buf.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        std::fs::rename(&tmp, opts.out_dir.join(format!("{}.hlog", t.name)))?;
    }
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
        shard: reports::summary::ShardInfo {
            index: opts.shard.k,
            count: opts.shard.n,
            start_at_unix_s: opts.start_at.map(crate::shard::unix_s),
            start_skew_ns: skew,
            clock: crate::shard::clock_source(),
            host: crate::shard::host(),
            scenario_hash: scenario.content_hash(),
        },
        events,
        event_faults,
    })
}

/// The run's start on the wall clock and on the monotonic clock: now, or
/// the common start of all shards (which must still be ahead).
fn time_base(start_at: Option<SystemTime>) -> anyhow::Result<(SystemTime, Instant)> {
    let (wall, now) = (SystemTime::now(), Instant::now());
    let Some(at) = start_at else {
        return Ok((wall, now));
    };
    match at.duration_since(wall) {
        Ok(ahead) => Ok((at, now + ahead)),
        Err(e) => anyhow::bail!(
            "--start-at {}: that was {:.3} s ago when this shard was ready; choose a later start \
             (every shard prepares first: connections, tokens)",
            humantime::format_rfc3339_millis(at),
            e.duration().as_secs_f64()
        ),
    }
}

/// `a − b` in nanoseconds, signed.
fn signed_ns(a: SystemTime, b: SystemTime) -> i64 {
    match a.duration_since(b) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
    }
}

/// One target in one round.
struct OneRun<'a> {
    plan: Arc<Plan>,
    target: &'a Target,
    endpoints: &'a [Endpoint],
    workers: usize,
    round: u32,
    shard: Shard,
    stop: Arc<AtomicBool>,
    /// The target's Admin API, for its events.
    admin: Option<String>,
    /// Its tokens come from per-request signers (else the pool).
    per_request: bool,
    metrics: Option<&'a crate::metrics::Metrics>,
}

/// What one (round, target) run returns: when its first phase began (wall
/// clock), what its events measured, and events that failed.
type Executed = (Option<SystemTime>, Vec<EventResult>, Vec<String>);

impl OneRun<'_> {
    fn execute(
        &self,
        totals: &mut TargetTotals,
        hlog: &mut HlogWriter<BufWriter<std::fs::File>>,
        (t0, at): (Instant, Option<Instant>),
        progress: Option<&str>,
    ) -> anyhow::Result<Executed> {
        let plan = &self.plan;
        let http2 = self.target.http2();
        let connections = self.target.connections.unwrap_or(16);
        // Let the workers connect before phase 0 starts (on a common
        // timeline, the slot's start is fixed; preparing is done by then
        // unless the previous slot overran).
        let start = match at {
            Some(at) => {
                let ready = Instant::now() + lead(connections) / 2;
                if at < ready {
                    eprintln!(
                        "loadgen: warning: round {} target {} starts {} behind the common timeline",
                        self.round + 1,
                        self.target.name,
                        reports::fmt_ns(ready.duration_since(at).as_nanos() as u64)
                    );
                }
                at.max(ready)
            }
            None => Instant::now() + lead(connections),
        };
        let mut began: Option<SystemTime> = None;
        let phases: Vec<(String, Duration, Duration)> = plan
            .phases
            .iter()
            .map(|p| (p.name.clone(), p.offset, p.duration))
            .collect();
        let events = plan.events.begin(events::Begin {
            target: &self.target.name,
            checks: self.target.takes_events(),
            start,
            tokens: plan.tokens.clone(),
            admin: self.admin.clone(),
            round: self.round,
            phases: &phases,
            stop: self.stop.clone(),
        })?;
        let watch = events.as_ref().map(|e| e.watch.clone());
        let mut seen = Vec::new();
        let (tx, rx) = mpsc::channel();
        let mut threads = Vec::new();
        for id in 0..self.workers {
            let share = connections / self.workers + usize::from(id < connections % self.workers);
            let ctx = WorkerCtx {
                id,
                workers: self.workers,
                endpoints: self.endpoints.to_vec(),
                http2,
                keep_alive: self.target.keep_alive(),
                connections: share.max(1),
                streams: if http2 {
                    self.target.streams.unwrap_or(16)
                } else {
                    1
                },
                plan: plan.clone(),
                round: self.round,
                shard: self.shard,
                start,
                stop: self.stop.clone(),
                tx: tx.clone(),
                checks_tokens: self.target.auth != Some(false),
                watch: watch.clone(),
                feed: plan.tokens.as_ref().filter(|_| self.per_request).map(|a| {
                    a.feed(
                        crate::seed::mix(&[
                            plan.seed,
                            u64::from(self.round),
                            id as u64,
                            u64::from(self.shard.k),
                        ]),
                        256,
                    )
                }),
            };
            threads.push(
                std::thread::Builder::new()
                    .name(format!("loadgen-{id}"))
                    .spawn(move || worker::run(ctx))?,
            );
        }
        drop(tx);
        totals.rounds_run += 1;
        for r in &mut totals.rounds {
            r.push(new_hist());
        }
        let bar = progress.map(|label| {
            let b = indicatif::ProgressBar::new_spinner();
            b.set_prefix(label.to_owned());
            b.set_style(
                indicatif::ProgressStyle::with_template("{prefix} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            b
        });
        let mut live = Live::new();
        let mut pending: BTreeMap<u32, (usize, Vec<ClassStats>)> = BTreeMap::new();
        let mut done = 0;
        let offset = start.saturating_duration_since(t0);
        let first_span = totals.phases.len();
        for p in &plan.phases {
            totals.phases.push(reports::summary::Span {
                round: self.round,
                phase: p.name.clone(),
                recorded: p.record,
                start_s: (offset + p.offset).as_secs_f64(),
                end_s: (offset + p.offset + p.duration).as_secs_f64(),
            });
        }
        while done < self.workers {
            match rx.recv_timeout(Duration::from_millis(250)) {
                Ok(Msg::Interval { tick, stats }) => {
                    let entry = pending.entry(tick).or_insert_with(|| (0, Vec::new()));
                    entry.0 += 1;
                    if entry.1.is_empty() {
                        entry.1 = stats;
                    } else {
                        for (a, b) in entry.1.iter_mut().zip(&stats) {
                            a.add(b);
                        }
                    }
                    if entry.0 == self.workers
                        && let Some((_, stats)) = pending.remove(&tick)
                    {
                        self.merge(totals, hlog, offset, tick, &stats, &mut live)?;
                    }
                }
                Ok(Msg::Started(wall)) => began = Some(began.map_or(wall, |b| b.max(wall))),
                Ok(Msg::Seen(s)) => seen.extend(s),
                Ok(Msg::Done) => done += 1,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if let Some(m) = self.metrics {
                m.at(self.round + 1, &self.target.name, phase_now(plan, start));
            }
            if let Some(b) = &bar {
                b.set_message(progress_line(&live, start, plan));
                b.tick();
            }
        }
        for (tick, (_, stats)) in std::mem::take(&mut pending) {
            self.merge(totals, hlog, offset, tick, &stats, &mut live)?;
        }
        for t in threads {
            let _ = t.join();
        }
        if self.stop.load(Ordering::Relaxed) {
            // Interrupted: the phases ran until now, and the later ones not at all.
            let now = t0.elapsed().as_secs_f64();
            let spans = &mut totals.phases[first_span..];
            for span in spans.iter_mut() {
                span.end_s = span.end_s.min(now).max(span.start_s);
            }
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        let (measured, faults) = match events {
            Some(e) => e.finish(seen, offset.as_secs_f64()),
            None => (Vec::new(), Vec::new()),
        };
        Ok((began, measured, faults))
    }

    /// Adds one tick of every worker into the totals and the interval log.
    fn merge(
        &self,
        totals: &mut TargetTotals,
        hlog: &mut HlogWriter<BufWriter<std::fs::File>>,
        offset: Duration,
        tick: u32,
        stats: &[ClassStats],
        live: &mut Live,
    ) -> anyhow::Result<()> {
        let plan = &self.plan;
        let nreq = plan.requests.len();
        // Per request, over this tick's recorded phases: for the interval log.
        let mut per_request: Vec<Option<ClassStats>> = vec![None; nreq];
        live.last_second = stats.iter().map(|s| s.counts.completed).sum();
        for (idx, s) in stats.iter().enumerate() {
            if s.counts == reports::summary::Counts::default() && s.latency.is_empty() {
                continue;
            }
            live.add(s);
            let phase = &plan.phases[idx / nreq];
            if let Some(m) = self.metrics {
                let request = &plan.requests[idx % nreq].name;
                m.add(&self.target.name, request, (&phase.name, phase.record), s);
            }
            if !phase.record {
                continue;
            }
            totals.classes[idx].add(s);
            if let Some(last) = totals.rounds[idx].last_mut() {
                let _ = last.add(&s.latency);
            }
            per_request[idx % nreq]
                .get_or_insert_with(ClassStats::default)
                .add(s);
        }
        let at = offset + Duration::from_secs(u64::from(tick));
        // The timeline: this second, per phase that saw traffic.
        for (p, phase) in plan.phases.iter().enumerate() {
            // Only what a tick shows: counts and corrected latency.
            let mut counts = reports::summary::Counts::default();
            let mut latency = new_hist();
            for s in &stats[p * nreq..(p + 1) * nreq] {
                counts += &s.counts;
                let _ = latency.add(&s.latency);
            }
            let c = &counts;
            if c.scheduled + c.completed + c.errors + c.dropped == 0 {
                continue;
            }
            let pct = |q: f64| {
                if latency.is_empty() {
                    0
                } else {
                    latency.value_at_quantile(q)
                }
            };
            totals.tick_latency.push(latency.clone());
            totals.timeline.push(reports::summary::Tick {
                t_s: at.as_secs_f64(),
                round: self.round,
                phase: phase.name.clone(),
                recorded: phase.record,
                counts: c.into(),
                p50: pct(0.5),
                p99: pct(0.99),
                max: if latency.is_empty() { 0 } else { latency.max() },
            });
        }
        // The headline, untagged (what HdrHistogram's own tools read by
        // default): the corrected latency of all this target's requests.
        let mut all: Option<Histogram<u64>> = None;
        for c in per_request.iter().flatten() {
            let _ = all.get_or_insert_with(new_hist).add(&c.latency);
        }
        if let Some(all) = all.filter(|h| !h.is_empty()) {
            hlog.interval(None, at, Duration::from_secs(1), &all)?;
        }
        for (r, c) in per_request.iter().enumerate() {
            let Some(c) = c.as_ref().filter(|c| !c.latency.is_empty()) else {
                continue;
            };
            let name = &plan.requests[r].name;
            hlog.interval(Some(name), at, Duration::from_secs(1), &c.latency)?;
            let tagged = [
                ("service", &c.service),
                ("schedule_lag", &c.schedule_lag),
                ("connection_wait", &c.conn_wait),
            ]
            .into_iter()
            .chain(c.breakdown.phases());
            for (suffix, h) in tagged.filter(|(_, h)| !h.is_empty()) {
                let tag = format!("{name}.{suffix}");
                hlog.interval(Some(&tag), at, Duration::from_secs(1), h)?;
            }
        }
        Ok(())
    }
}
