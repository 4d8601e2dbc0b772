//! What `loadgen calibrate` measured about this machine as it was, and the
//! smallest added-latency difference it can resolve (part of `summary.json`
//! when `loadgen run` calibrates first, and `calibration.json` on its own).
//!
//! The resolution comes from an A/A test: the same builtin mock upstream
//! measured as two targets in interleaved rounds, exactly as a gateway is
//! measured against its baseline. Whatever one copy "adds" over the other
//! is the machine's noise; three times the largest such difference over the
//! rounds, at each percentile, is the resolution (the largest of 4 alone is
//! exceeded by a fifth round one time in five). An added-latency figure
//! within it is "within noise": this machine, now, could have produced it
//! from nothing.

use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::percentiles::Percentiles;
use crate::{fmt_ns, fmt_signed_ns};

/// One calibration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Calibration {
    /// Wall time the calibration took, seconds.
    pub duration_s: f64,
    /// Interleaved rounds of the A/A test.
    pub rounds: u32,
    /// The recorded length of each round's steady phase, seconds.
    pub round_s: f64,
    /// The steady phase's rate (req/s).
    pub rate: f64,
    /// How late a thread sleeping 1 ms woke up (ns).
    pub timer_late: Percentiles,
    /// The generator's schedule lag at each rate tried.
    pub schedule_lag: Vec<RateLag>,
    /// Corrected latency of the mock with no delay, straight over loopback:
    /// the floor under every figure here.
    pub loopback: Percentiles,
    /// Known delays programmed into the mock, read back as latency over the floor.
    pub delays: Vec<KnownDelay>,
    /// Per round: copy B's percentile minus copy A's (ns), which ought to be 0.
    pub rounds_diff: Vec<Resolution>,
    /// The smallest added-latency difference this machine resolves: three
    /// times the largest |B − A| over the rounds, at each percentile (ns).
    pub resolution: Resolution,
}

/// Schedule lag at one rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RateLag {
    pub rate: f64,
    pub lag: Percentiles,
}

/// A programmed delay and what was read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct KnownDelay {
    pub programmed_ns: u64,
    /// Median latency with the delay minus the floor's median.
    pub read_ns: i64,
    /// The mock's own Server-Timing for it (service time − time outside the
    /// upstream, at the median), when reported.
    pub server_timing_ns: Option<u64>,
    /// `read_ns − programmed_ns`.
    pub error_ns: i64,
}

/// Nanoseconds at p50, p90 and p99.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Resolution {
    pub p50: i64,
    pub p90: i64,
    pub p99: i64,
}

impl Resolution {
    /// The value at `p50`, `p90` or `p99`.
    pub fn at(&self, name: &str) -> Option<i64> {
        match name {
            "p50" => Some(self.p50),
            "p90" => Some(self.p90),
            "p99" => Some(self.p99),
            _ => None,
        }
    }
}

impl Calibration {
    /// Whether an added-latency (or regression) figure at `percentile` is
    /// within this machine's noise. Percentiles beyond p99 take p99's
    /// resolution (they are noisier still, never less).
    pub fn within_noise(&self, percentile: &str, added_ns: i64) -> bool {
        let r = self
            .resolution
            .at(percentile)
            .unwrap_or(self.resolution.p99);
        added_ns.abs() <= r
    }

    /// The printed form (terminal and `loadgen calibrate`).
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        let r = &self.resolution;
        let _ = writeln!(
            s,
            "Resolution: p50 {}, p90 {}, p99 {} on this machine now (added-latency figures within these are noise)",
            fmt_ns(r.p50.unsigned_abs()),
            fmt_ns(r.p90.unsigned_abs()),
            fmt_ns(r.p99.unsigned_abs())
        );
        let _ = writeln!(
            s,
            "  from {} interleaved rounds of {:.1} s at {:.0} req/s: one mock measured as two targets; B − A per round at p50: {}",
            self.rounds,
            self.round_s,
            self.rate,
            self.rounds_diff
                .iter()
                .map(|d| fmt_signed_ns(d.p50))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let t = &self.timer_late;
        let _ = writeln!(
            s,
            "  timer: 1 ms sleeps woke late by p50 {} p99 {} max {}",
            fmt_ns(t.p50),
            fmt_ns(t.p99),
            fmt_ns(t.max)
        );
        for l in &self.schedule_lag {
            let _ = writeln!(
                s,
                "  schedule lag at {:.0} req/s: p50 {} p90 {} p99 {}",
                l.rate,
                fmt_ns(l.lag.p50),
                fmt_ns(l.lag.p90),
                fmt_ns(l.lag.p99)
            );
        }
        let _ = writeln!(
            s,
            "  loopback floor (mock, no delay): p50 {} p90 {} p99 {}",
            fmt_ns(self.loopback.p50),
            fmt_ns(self.loopback.p90),
            fmt_ns(self.loopback.p99)
        );
        for d in &self.delays {
            let _ = writeln!(
                s,
                "  known delay {}: read back {} (error {}){}",
                fmt_ns(d.programmed_ns),
                fmt_signed_ns(d.read_ns),
                fmt_signed_ns(d.error_ns),
                d.server_timing_ns
                    .map(|n| format!(", the mock's Server-Timing {}", fmt_ns(n)))
                    .unwrap_or_default()
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_noise_compares_the_magnitude_at_the_percentile() {
        let c = Calibration {
            duration_s: 1.0,
            rounds: 4,
            round_s: 0.5,
            rate: 2000.0,
            timer_late: Percentiles::default(),
            schedule_lag: vec![],
            loopback: Percentiles::default(),
            delays: vec![],
            rounds_diff: vec![],
            resolution: Resolution {
                p50: 8_000,
                p90: 20_000,
                p99: 2_100_000,
            },
        };
        assert!(c.within_noise("p50", 0));
        assert!(c.within_noise("p50", -8_000));
        assert!(!c.within_noise("p50", 200_000));
        assert!(c.within_noise("p90", 15_000));
        assert!(!c.within_noise("p99", 3_000_000));
        assert!(
            c.within_noise("p99.9", 2_000_000),
            "beyond p99: p99's resolution"
        );
        assert!(
            c.render_text()
                .starts_with("Resolution: p50 8us, p90 20us, p99 2.10ms")
        );
    }
}
