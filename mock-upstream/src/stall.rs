//! Stall injection: while a stall is on, every programmable response is held
//! until it ends, so requests queue exactly as behind a stuck service.

#![allow(
    clippy::disallowed_methods,
    reason = "a stall's window is measured from now"
)]

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crate::config::StallSchedule;

/// Periodic stalls plus stalls triggered on demand.
#[derive(Debug)]
pub struct Stall {
    start: Instant,
    schedule: Option<StallSchedule>,
    /// End of the on-demand stall, in nanoseconds since `start` (0: none).
    on_demand_until: AtomicU64,
}

impl Stall {
    pub fn new(start: Instant, schedule: Option<StallSchedule>) -> Self {
        Self {
            start,
            schedule,
            on_demand_until: AtomicU64::new(0),
        }
    }

    /// Starts (or extends) a stall lasting `hold` from `now`; returns its end.
    pub fn trigger(&self, now: Instant, hold: Duration) -> Instant {
        let end = now.saturating_duration_since(self.start) + hold;
        let end_ns = u64::try_from(end.as_nanos()).unwrap_or(u64::MAX);
        let prev = self.on_demand_until.fetch_max(end_ns, Relaxed);
        self.start + Duration::from_nanos(prev.max(end_ns))
    }

    /// If a stall is on at `now`, when it ends.
    pub fn hold_until(&self, now: Instant) -> Option<Instant> {
        let t = now.saturating_duration_since(self.start);
        let periodic = self.schedule.and_then(|s| {
            let every = s.every.as_nanos();
            let t = t.as_nanos();
            let k = t / every;
            let phase = t % every;
            (k >= 1 && phase < s.hold.as_nanos()).then(|| {
                let end = k * every + s.hold.as_nanos();
                self.start + Duration::from_nanos(u64::try_from(end).unwrap_or(u64::MAX))
            })
        });
        let until = Duration::from_nanos(self.on_demand_until.load(Relaxed));
        let on_demand = (until > t).then(|| self.start + until);
        periodic.max(on_demand)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn periodic_windows() {
        let t0 = Instant::now();
        let s = Stall::new(
            t0,
            Some(StallSchedule {
                every: 100 * MS,
                hold: 20 * MS,
            }),
        );
        assert_eq!(
            s.hold_until(t0 + 5 * MS),
            None,
            "no stall in the first period"
        );
        assert_eq!(s.hold_until(t0 + 105 * MS), Some(t0 + 120 * MS));
        assert_eq!(s.hold_until(t0 + 120 * MS), None);
        assert_eq!(s.hold_until(t0 + 310 * MS), Some(t0 + 320 * MS));
    }

    #[test]
    fn on_demand_extends_never_shortens() {
        let t0 = Instant::now();
        let s = Stall::new(t0, None);
        assert_eq!(s.hold_until(t0), None);
        assert_eq!(s.trigger(t0 + 10 * MS, 50 * MS), t0 + 60 * MS);
        assert_eq!(s.trigger(t0 + 20 * MS, 10 * MS), t0 + 60 * MS);
        assert_eq!(s.hold_until(t0 + 30 * MS), Some(t0 + 60 * MS));
        assert_eq!(s.hold_until(t0 + 60 * MS), None);
    }
}
