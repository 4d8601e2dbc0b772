//! The live view of a run: what the progress line shows.

#![allow(
    clippy::disallowed_methods,
    reason = "the progress line and the live metrics' phase show where the run is now"
)]

use std::time::Instant;

use hdrhistogram::Histogram;

use super::plan::Plan;
use crate::measure::record::{ClassStats, new_hist};

/// What the progress line shows: everything so far, and the last second's completions.
pub(super) struct Live {
    counts: reports::summary::Counts,
    latency: Histogram<u64>,
    schedule_lag: Histogram<u64>,
    conn_wait: Histogram<u64>,
    pub(super) last_second: u64,
}

impl Live {
    pub(super) fn new() -> Live {
        Live {
            counts: reports::summary::Counts::default(),
            latency: new_hist(),
            schedule_lag: new_hist(),
            conn_wait: new_hist(),
            last_second: 0,
        }
    }

    pub(super) fn add(&mut self, s: &ClassStats) {
        self.counts += &s.counts;
        let _ = self.latency.add(&s.latency);
        let _ = self.schedule_lag.add(&s.schedule_lag);
        let _ = self.conn_wait.add(&s.conn_wait);
    }
}

/// The phase sending now in a (round, target) run that starts (or
/// started) at `start`: None while connecting and once draining.
pub(super) fn phase_now(plan: &Plan, start: Instant) -> Option<&str> {
    let now = Instant::now();
    if now < start {
        return None;
    }
    let elapsed = now.duration_since(start);
    plan.phases
        .iter()
        .find(|p| elapsed < p.offset + p.duration)
        .map(|p| p.name.as_str())
}

pub(super) fn progress_line(live: &Live, start: Instant, plan: &Plan) -> String {
    let elapsed = Instant::now().saturating_duration_since(start);
    let phase = phase_now(plan, start).unwrap_or(if elapsed.is_zero() {
        "connecting"
    } else {
        "draining"
    });
    let c = &live.counts;
    format!(
        "{phase} {:>5.1}s  {:>7} req/s  errors {}  unexpected {}  dropped {}  p99 {}  sched-lag p99 {}  conn-wait p99 {}",
        elapsed.as_secs_f64(),
        live.last_second,
        c.errors,
        c.unexpected,
        c.dropped,
        reports::fmt_ns(live.latency.value_at_quantile(0.99)),
        reports::fmt_ns(live.schedule_lag.value_at_quantile(0.99)),
        reports::fmt_ns(live.conn_wait.value_at_quantile(0.99)),
    )
}
