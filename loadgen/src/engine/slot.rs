//! One target in one round: its worker threads and events started at the
//! slot's time, their 1-second intervals merged as they arrive into the
//! totals, the timeline and the interval log.

use std::collections::BTreeMap;
use std::io::BufWriter;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use hdrhistogram::Histogram;
use reports::events::EventResult;
use reports::hlog::HlogWriter;

use super::conn::Endpoint;
use super::error::RunError;
use super::events;
use super::events::watch::{Seen, Watch};
use super::live::{Live, phase_now, progress_line};
use super::plan::Plan;
use super::worker::{self, Msg, WorkerCtx};
use crate::measure::record::{ClassStats, new_hist};
use crate::measure::totals::TargetTotals;
use crate::scenario::Target;
use crate::shard::Shard;

/// Time to open connections before a target's first phase.
pub(super) fn lead(connections: usize) -> Duration {
    Duration::from_millis(100 + 2 * connections as u64)
}

/// One target in one round.
pub(super) struct Slot<'a> {
    pub(super) plan: Arc<Plan>,
    pub(super) target: &'a Target,
    pub(super) endpoints: &'a [Endpoint],
    pub(super) workers: usize,
    pub(super) round: u32,
    pub(super) shard: Shard,
    pub(super) stop: Arc<AtomicBool>,
    /// The target's Admin API, for its events.
    pub(super) admin: Option<String>,
    /// Its tokens come from per-request signers (else the pool).
    pub(super) per_request: bool,
    pub(super) metrics: Option<&'a crate::metrics::Metrics>,
}

/// What one (round, target) run returns: when its first phase began (wall
/// clock), what its events measured, and events that failed.
pub(super) type Executed = (Option<SystemTime>, Vec<EventResult>, Vec<String>);

/// The interval log a slot writes into.
type Hlog = HlogWriter<BufWriter<std::fs::File>>;

impl Slot<'_> {
    /// Runs the slot: starts its events and workers at `at` (a common
    /// timeline's slot start) or as soon as connections can open, and merges
    /// every worker's intervals into `totals` and `hlog`.
    pub(super) fn execute(
        &self,
        totals: &mut TargetTotals,
        hlog: &mut Hlog,
        (t0, at): (Instant, Option<Instant>),
        progress: Option<&str>,
    ) -> Result<Executed, RunError> {
        let start = self.start(at);
        let phases: Vec<(String, Duration, Duration)> = self
            .plan
            .phases
            .iter()
            .map(|p| (p.name.clone(), p.offset, p.duration))
            .collect();
        let events = self
            .plan
            .events
            .begin(events::Begin {
                target: &self.target.name,
                checks: self.target.takes_events(),
                start,
                tokens: self.plan.tokens.clone(),
                admin: self.admin.clone(),
                round: self.round,
                phases: &phases,
                stop: self.stop.clone(),
            })
            .map_err(|source| RunError::Io {
                what: "cannot start the event thread".into(),
                source,
            })?;
        let (tx, rx) = mpsc::channel();
        let threads = self
            .spawn_workers(start, events.as_ref().map(|e| e.watch.clone()), &tx)
            .map_err(|source| RunError::Io {
                what: "cannot start a worker thread".into(),
                source,
            })?;
        drop(tx);
        totals.rounds_run += 1;
        for r in &mut totals.rounds {
            r.push(new_hist());
        }
        let offset = start.saturating_duration_since(t0);
        let first_span = totals.phases.len();
        self.record_spans(totals, offset);
        let bar = progress.map(progress_bar);
        let collected = self.collect(&rx, (totals, hlog), (start, offset), bar.as_ref())?;
        for t in threads {
            let _ = t.join();
        }
        if self.stop.load(Ordering::Relaxed) {
            // Interrupted: the phases ran until now, and the later ones not at all.
            let now = t0.elapsed().as_secs_f64();
            for span in &mut totals.phases[first_span..] {
                span.end_s = span.end_s.min(now).max(span.start_s);
            }
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        let (measured, faults) = match events {
            Some(e) => e.finish(collected.seen, offset.as_secs_f64()),
            None => (Vec::new(), Vec::new()),
        };
        Ok((collected.began, measured, faults))
    }

    /// When phase 0 starts: after the workers had time to connect, and (on a
    /// common timeline) at the slot's fixed start unless the previous slot
    /// overran.
    #[allow(
        clippy::disallowed_methods,
        reason = "the slot's start, which every intended time of its phases is an offset from"
    )]
    fn start(&self, at: Option<Instant>) -> Instant {
        let connections = self.target.connections.unwrap_or(16);
        let Some(at) = at else {
            return Instant::now() + lead(connections);
        };
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

    /// Starts the worker threads, the target's connections shared among them.
    fn spawn_workers(
        &self,
        start: Instant,
        watch: Option<Arc<Watch>>,
        tx: &mpsc::Sender<Msg>,
    ) -> std::io::Result<Vec<JoinHandle<()>>> {
        let connections = self.target.connections.unwrap_or(16);
        let http2 = self.target.http2();
        let mut threads = Vec::new();
        for id in 0..self.workers {
            let share = connections / self.workers + usize::from(id < connections % self.workers);
            let plan = &self.plan;
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
                    let seed = [
                        plan.seed,
                        u64::from(self.round),
                        id as u64,
                        u64::from(self.shard.k),
                    ];
                    a.feed(crate::seed::mix(&seed), 256, &plan.token_sources)
                }),
            };
            threads.push(
                std::thread::Builder::new()
                    .name(format!("loadgen-{id}"))
                    .spawn(move || worker::run(ctx))?,
            );
        }
        Ok(threads)
    }

    /// This round's phases on the run's timeline.
    fn record_spans(&self, totals: &mut TargetTotals, offset: Duration) {
        for p in &self.plan.phases {
            totals.phases.push(reports::summary::Span {
                round: self.round,
                phase: p.name.clone(),
                recorded: p.record,
                start_s: (offset + p.offset).as_secs_f64(),
                end_s: (offset + p.offset + p.duration).as_secs_f64(),
            });
        }
    }

    /// Receives the workers' messages until all are done, merging each
    /// second once every worker has sent it.
    fn collect(
        &self,
        rx: &mpsc::Receiver<Msg>,
        (totals, hlog): (&mut TargetTotals, &mut Hlog),
        (start, offset): (Instant, Duration),
        bar: Option<&indicatif::ProgressBar>,
    ) -> Result<Collected, RunError> {
        let mut live = Live::new();
        let mut pending: BTreeMap<u32, (usize, Vec<ClassStats>)> = BTreeMap::new();
        let mut out = Collected {
            began: None,
            seen: Vec::new(),
        };
        let mut done = 0;
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
                        self.merge(totals, hlog, offset + secs(tick), &stats, &mut live)?;
                    }
                }
                Ok(Msg::Started(wall)) => {
                    out.began = Some(out.began.map_or(wall, |b| b.max(wall)));
                }
                Ok(Msg::Seen(s)) => out.seen.extend(s),
                Ok(Msg::Done) => done += 1,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if let Some(m) = self.metrics {
                m.at(
                    self.round + 1,
                    &self.target.name,
                    phase_now(&self.plan, start),
                );
            }
            if let Some(b) = bar {
                b.set_message(progress_line(&live, start, &self.plan));
                b.tick();
            }
        }
        for (tick, (_, stats)) in std::mem::take(&mut pending) {
            self.merge(totals, hlog, offset + secs(tick), &stats, &mut live)?;
        }
        Ok(out)
    }

    /// Adds one second (`at`, from the run's start) of every worker into the
    /// totals, the live view and metrics, the timeline and the interval log.
    fn merge(
        &self,
        totals: &mut TargetTotals,
        hlog: &mut Hlog,
        at: Duration,
        stats: &[ClassStats],
        live: &mut Live,
    ) -> Result<(), RunError> {
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
        self.timeline(totals, at, stats);
        write_intervals(hlog, plan, at, &per_request)
    }

    /// The timeline: this second, per phase that saw traffic (only what a
    /// tick shows: counts and corrected latency).
    fn timeline(&self, totals: &mut TargetTotals, at: Duration, stats: &[ClassStats]) {
        let nreq = self.plan.requests.len();
        for (p, phase) in self.plan.phases.iter().enumerate() {
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
    }
}

/// What the workers reported besides their intervals.
struct Collected {
    /// When the last worker's first phase began (wall clock).
    began: Option<SystemTime>,
    /// The watched consumer's responses, for the events.
    seen: Vec<Seen>,
}

fn secs(tick: u32) -> Duration {
    Duration::from_secs(u64::from(tick))
}

fn progress_bar(label: &str) -> indicatif::ProgressBar {
    let b = indicatif::ProgressBar::new_spinner();
    b.set_prefix(label.to_owned());
    b.set_style(
        indicatif::ProgressStyle::with_template("{prefix} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    b
}

/// One second of the interval log: all requests' corrected latency
/// untagged, then each request's latency, service time, schedule lag,
/// connection wait and breakdown phases under their tags.
fn write_intervals(
    hlog: &mut Hlog,
    plan: &Plan,
    at: Duration,
    per_request: &[Option<ClassStats>],
) -> Result<(), RunError> {
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
