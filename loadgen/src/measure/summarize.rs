//! Turns a run into `summary.json`, `<target>.hgrm` and a terminal summary,
//! and decides whether the run is valid.

use std::path::Path;
use std::time::Duration;

use reports::summary::{
    ClassResult, Environment, Health, Percentiles, SCHEMA_VERSION, Summary, TargetResult,
};

use crate::measure::record::{ClassStats, new_hist};
use crate::measure::totals::{ResultsError, RunData, TargetTotals};
use crate::scenario::Scenario;

/// Above this send-lag p90 the generator, not the target, set the pace.
pub const MAX_SEND_LAG_P90: Duration = Duration::from_millis(1);
/// Below this share of the scheduled rate a run did not achieve its target.
pub const MIN_RATE_SHARE: f64 = 0.99;

/// The scenario as JSON for `summary.json`, with `[auth]` secrets replaced
/// by `"<redacted>"` (key files are paths and stay).
pub fn redacted(scenario: &Scenario) -> serde_json::Value {
    let mut v = serde_json::to_value(scenario).unwrap_or_default();
    if let Some(auth) = v.get_mut("auth") {
        for list in ["consumer", "consumers"] {
            for c in auth
                .get_mut(list)
                .and_then(|l| l.as_array_mut())
                .into_iter()
                .flatten()
            {
                if let Some(s) = c.get_mut("secret").filter(|s| !s.is_null()) {
                    *s = "<redacted>".into();
                }
            }
        }
    }
    v
}

/// What the run's judgement collected, in the summary's lists.
#[derive(Default)]
struct Verdicts {
    /// The run is invalid (the generator, not the target, set the pace).
    invalid: Vec<String>,
    /// Target faults, measured as they happened.
    faults: Vec<String>,
    /// Reasons an added figure is not a result (a dirty baseline).
    spoils: Vec<String>,
    warnings: Vec<String>,
}

/// Builds the summary of a run of `scenario` (its name, and its
/// [`redacted`] JSON as recorded).
pub fn summarize((name, scenario): (&str, serde_json::Value), data: &RunData) -> Summary {
    let mut v = Verdicts::default();
    let mut targets: Vec<TargetResult> = data
        .targets
        .iter()
        .map(|t| target_result(data, t, &mut v))
        .collect();
    v.faults.extend(data.event_faults.iter().cloned());
    v.warnings
        .extend(data.events.iter().filter_map(event_warning));
    if data.partial {
        v.invalid.push(format!(
            "the run was interrupted after {:.1} s: results are partial (rates are over the \
             time each phase ran)",
            data.elapsed.as_secs_f64()
        ));
    }
    add_added(&mut targets, &v);
    if let Some(p) = data.precision.as_ref().filter(|p| !p.reached) {
        v.warnings.push(p.describe());
    }
    Summary {
        schema_version: SCHEMA_VERSION,
        tool: format!("gatebench-loadgen {}", env!("CARGO_PKG_VERSION")),
        scenario_name: name.to_owned(),
        scenario,
        environment: environment(),
        start_unix_s: data
            .start
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64(),
        duration_s: data.elapsed.as_secs_f64(),
        partial: data.partial,
        valid: v.invalid.is_empty(),
        invalid_reasons: v.invalid,
        target_faults: v.faults,
        warnings: v.warnings,
        health: Health {
            hiccup: Percentiles::of(&data.hiccup),
            other_cpu_percent: data.other_cpu_percent,
            loadgen_cpu_percent: data.own_cpu_percent,
        },
        targets,
        auth: data.auth.as_ref().map(|a| a.summary.clone()),
        // Only a run that is part of a distributed one says which shard it is.
        shard: (data.shard.count > 1 || data.shard.start_at_unix_s.is_some())
            .then(|| data.shard.clone()),
        shards: Vec::new(),
        events: data.events.clone(),
        calibration: None,
        capacity: None,
        precision: data.precision.clone(),
    }
}

/// What each non-baseline target adds over the (first) baseline, with the
/// reasons (about this target, the baseline, or the run as a whole) that
/// make it no result.
fn add_added(targets: &mut [TargetResult], v: &Verdicts) {
    let names: Vec<String> = targets.iter().map(|t| t.name.clone()).collect();
    let Some(base) = targets.iter().find(|t| t.baseline).cloned() else {
        return;
    };
    for t in targets.iter_mut().filter(|t| !t.baseline) {
        let about = |r: &String, name: &str| r.starts_with(&format!("{name}:"));
        let reasons: Vec<String> = v
            .invalid
            .iter()
            .chain(&v.spoils)
            .filter(|r| {
                about(r, &t.name) || about(r, &base.name) || !names.iter().any(|n| about(r, n))
            })
            .cloned()
            .collect();
        t.added = Some(reports::summary::Added::of(t, &base, reasons));
    }
}

/// One target's result, its judgement added to `v`.
fn target_result(data: &RunData, t: &TargetTotals, v: &mut Verdicts) -> TargetResult {
    let (classes, total) = class_results(data, t);
    let j = judge(t, &total, (data.own_cpu_percent, data.other_cpu_percent));
    v.invalid.extend(j.generator);
    // A baseline that lost any request is not a clean reference.
    if t.baseline && total.counts.errors > 0 {
        v.spoils.push(format!(
            "{}: the baseline had {} errors",
            t.name, total.counts.errors
        ));
    }
    v.spoils.extend(j.spoils);
    v.faults.extend(j.faults);
    v.warnings.extend(j.warnings);
    TargetResult {
        name: t.name.clone(),
        urls: t.urls.clone(),
        baseline: t.baseline,
        http: if t.http2 {
            "h2".into()
        } else {
            "http/1.1".into()
        },
        connections: t.connections,
        classes,
        total,
        added: None,
        timeline: t.timeline.clone(),
        phases: t.phases.clone(),
    }
}

/// A target's recorded classes (request × phase), and its total over them.
fn class_results(data: &RunData, t: &TargetTotals) -> (Vec<ClassResult>, ClassResult) {
    let plan = &data.layout;
    let nreq = plan.requests.len();
    let rounds = f64::from(t.rounds_run.max(1));
    let mut classes = Vec::new();
    let mut total = ClassStats::default();
    let (mut total_seconds, mut planned_seconds, mut total_expected) = (0.0, 0.0, 0.0);
    let mut open = false;
    for (p, phase) in plan.phases.iter().enumerate().filter(|(_, p)| p.record) {
        let planned = phase.duration_s * rounds;
        // An interrupted run's rates are over the time its phases ran.
        let seconds = if data.partial {
            ran_seconds(t, &phase.name).unwrap_or(planned)
        } else {
            planned
        };
        total_seconds += seconds;
        planned_seconds += planned;
        let phase_rate = phase.expected.map(|all| {
            let expected = all * data.schedule_share;
            open = true;
            total_expected += expected * rounds;
            expected / phase.duration_s
        });
        for r in 0..nreq {
            let idx = p * nreq + r;
            let s = &t.classes[idx];
            if s.counts.scheduled == 0 && s.counts.completed == 0 {
                continue;
            }
            total.add(s);
            // A class's share of the phase's scheduled rate.
            let share = phase_rate.map(|rate| {
                let all: u64 = (0..nreq)
                    .map(|x| t.classes[p * nreq + x].counts.scheduled)
                    .sum();
                rate * s.counts.scheduled as f64 / all.max(1) as f64
            });
            let round_pcts = t.rounds[idx].iter().map(Percentiles::of).collect();
            let request = &plan.requests[r];
            let mut result = s.result(&request.name, &phase.name, seconds, share, round_pcts);
            result.token = request.token.clone();
            classes.push(result);
        }
    }
    let target_rps = open.then(|| total_expected / planned_seconds.max(1e-9));
    let round_pcts = t.round_totals(plan).iter().map(Percentiles::of).collect();
    let total = total.result("*", "*", total_seconds, target_rps, round_pcts);
    (classes, total)
}

/// Plain words about an event whose traffic cannot show what it measures,
/// or whose change never showed.
fn event_warning(e: &reports::events::EventResult) -> Option<String> {
    let who = format!(
        "{}: round {} event {} ({} {})",
        e.target,
        e.round + 1,
        e.event,
        e.action,
        e.consumer.as_deref().unwrap_or("")
    );
    if e.error.is_some() || e.consumer.is_none() {
        return None;
    }
    if e.after.sent == 0 {
        return Some(format!(
            "{who}: no valid-token request of that consumer was sent after it, so it measured \
             nothing; give the consumer traffic of its own ([[request]] with consumer = \"…\")"
        ));
    }
    if e.first_new_ns.is_none() {
        let what = match e.action.as_str() {
            "revoke" => {
                "every request after the Admin API's answer was still accepted: the \
                         revocation did not take effect within the phase"
            }
            "restore" => {
                "every request after the Admin API's answer was still refused: the \
                          credential did not come back within the phase"
            }
            _ => "no token signed with the new key was accepted within the phase",
        };
        return Some(format!("{who}: {what} ({} requests)", e.after.sent));
    }
    None
}

/// How long a phase of a target actually ran, over all rounds (an
/// interrupted run stops its spans at the interruption); None when the
/// spans are not recorded.
fn ran_seconds(t: &TargetTotals, phase: &str) -> Option<f64> {
    let spans: Vec<_> = t.phases.iter().filter(|s| s.phase == phase).collect();
    (!spans.is_empty()).then(|| spans.iter().map(|s| s.end_s - s.start_s).sum())
}

/// What one target's totals say about the run: the generator's own problems
/// (the run is INVALID, exit 3), the target's faults (measured correctly,
/// exit 4), faults that make the target's latency distribution incomplete
/// (so "added" is not a result), and advice.
#[derive(Debug, Default)]
struct Judged {
    generator: Vec<String>,
    faults: Vec<String>,
    spoils: Vec<String>,
    warnings: Vec<String>,
}

/// The share of requests a target may lose (failed, dropped, unfinished)
/// before its latency percentiles stop describing the schedule.
const MAX_LOST_SHARE: f64 = 1.0 - MIN_RATE_SHARE;

fn judge(t: &TargetTotals, total: &ClassResult, cpu: (f64, f64)) -> Judged {
    let name = &t.name;
    let mut j = Judged::default();
    let k = &total.counts;
    let lag = Duration::from_nanos(total.schedule_lag.p90);
    if lag > MAX_SEND_LAG_P90 {
        j.generator.push(format!(
            "{name}: schedule-lag p90 is {} (> {}): the generator was the bottleneck \
             (loadgen used {:.0}% of a core, other processes {:.0}%)",
            fmt_ns(total.schedule_lag.p90),
            fmt_ns(MAX_SEND_LAG_P90.as_nanos() as u64),
            cpu.0,
            cpu.1
        ));
    }
    if k.errors > 0 {
        let list: Vec<String> = total
            .errors
            .iter()
            .map(|(c, n)| format!("{c} {n}"))
            .collect();
        j.faults.push(format!(
            "{name}: {} requests failed without a response ({})",
            k.errors,
            list.join(", ")
        ));
    }
    if k.unexpected > 0 {
        let list: Vec<String> = total
            .status
            .iter()
            .map(|(s, n)| format!("{s} ×{n}"))
            .collect();
        j.faults.push(format!(
            "{name}: {} responses had an unexpected status (statuses: {})",
            k.unexpected,
            list.join(", ")
        ));
    }
    if k.dropped > 0 {
        j.faults.push(format!(
            "{name}: {} sends dropped: more than max_in_flight requests were waiting for a \
             connection (the latency percentiles do not include them)",
            k.dropped
        ));
    }
    if k.unfinished > 0 {
        j.faults.push(format!(
            "{name}: {} requests had no response when the grace period ended",
            k.unfinished
        ));
    }
    let lost = k.errors + k.dropped + k.unfinished;
    if lost as f64 > MAX_LOST_SHARE * k.scheduled.max(1) as f64 {
        j.spoils.push(format!(
            "{name}: {lost} of {} requests ({:.1}%) failed, were dropped or are unfinished",
            k.scheduled,
            100.0 * lost as f64 / k.scheduled.max(1) as f64
        ));
    }
    if let Some(w) = connection_advice(t, total) {
        j.warnings.push(w);
    }
    j
}

/// When requests waited for a free connection (more than 1 % of them, over
/// 1 ms): how much the connection budget carries at the measured service
/// time (Little's law), and what to do.
fn connection_advice(t: &TargetTotals, total: &ClassResult) -> Option<String> {
    let k = &total.counts;
    if k.waited == 0 || (k.waited as f64) < 0.01 * k.sent as f64 {
        return None;
    }
    let name = &t.name;
    let head = format!(
        "{name}: {} of {} requests waited over 1 ms for a free connection \
         (connection-wait p99 {}, max {}); the latency includes the wait, as it should",
        k.waited,
        k.sent,
        fmt_ns(total.connection_wait.p99),
        fmt_ns(total.connection_wait.max)
    );
    let slots = t.connections * t.streams;
    let mean_s = total.service_time.mean / 1e9;
    let carried = (mean_s > 0.0).then(|| slots as f64 / mean_s);
    let what = if t.http2 {
        format!("{} connections × {} streams", t.connections, t.streams)
    } else {
        format!("{} connections", t.connections)
    };
    Some(match (carried, total.target_rps) {
        (Some(carried), Some(want)) if carried < want => format!(
            "{head}. {what} carried at most {carried:.0} req/s at this latency (mean service \
             time {}), the schedule asks for {want:.0}: raise `connections`{}",
            fmt_ns(total.service_time.mean as u64),
            if t.http2 {
                " or `streams`"
            } else {
                ", or use `http = \"2\"`"
            }
        ),
        _ => format!(
            "{head}. {what} carry the scheduled rate at the mean service time ({}); \
             the waits came from responses that were slow at times (service time max {})",
            fmt_ns(total.service_time.mean as u64),
            fmt_ns(total.service_time.max)
        ),
    })
}

fn environment() -> Environment {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    Environment {
        loadgen_version: env!("CARGO_PKG_VERSION").into(),
        os: std::env::consts::OS.into(),
        arch: std::env::consts::ARCH.into(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        kernel: read("/proc/sys/kernel/osrelease").map(|s| s.trim().to_owned()),
        cpu_model: read("/proc/cpuinfo").and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        }),
    }
}

/// Writes `totals.json`, `<target>.hgrm` and then `summary.json` (the
/// `.hlog` files are written during the run).
pub fn write(dir: &Path, summary: &Summary, data: &RunData) -> Result<(), ResultsError> {
    data.save(dir)?;
    for t in &data.targets {
        let mut all = new_hist();
        for (idx, c) in t.classes.iter().enumerate() {
            if data.layout.recorded(idx) {
                let _ = all.add(&c.latency);
            }
        }
        let path = dir.join(format!("{}.hgrm", t.name));
        let mut out = Vec::new();
        reports::hgrm::write(&all, 1e6, &mut out)
            .and_then(|()| reports::write_atomic(&path, &out))
            .map_err(ResultsError::write(&path))?;
    }
    let path = dir.join("summary.json");
    let json = serde_json::to_vec_pretty(summary).map_err(|source| ResultsError::Format {
        path: path.clone(),
        source,
    })?;
    reports::write_atomic(&path, &json).map_err(ResultsError::write(&path))?;
    Ok(())
}

pub use reports::{fmt_ns, fmt_signed_ns};
