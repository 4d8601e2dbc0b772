//! What `loadgen calibrate` measured about this machine as it was, and the
//! smallest added-latency difference it can resolve (part of `summary.json`
//! when `loadgen run` calibrates first, and `calibration.json` on its own).
//!
//! The resolution comes from an A/A test: the same builtin mock upstream
//! measured as two targets in interleaved rounds, exactly as a gateway is
//! measured against its baseline. Whatever one copy "adds" over the other
//! is the machine's noise, a variance component of every paired figure:
//! - the **floor** is its per-round standard deviation at each percentile,
//!   the root mean square of the A/A differences (their true mean is 0, so
//!   n rounds give n degrees of freedom);
//! - the **resolution** is t(0.975, n) times it: one more A/A round's
//!   difference falls within it 95 % of the time;
//! - an added figure's interval over the run's rounds takes the floor as
//!   the least per-round spread (`Summary::floor_intervals`): a few rounds
//!   that happen to agree do not make a narrower interval than the machine
//!   allows. A figure whose interval holds 0 is "within noise"; one without
//!   an interval (a single round) is within noise inside the resolution.
//!
//! The floor is not scaled up for a slower path. A percentile's noise has
//! a part that grows with the path's latency (sampling) and a part that
//! does not (the machine's stalls, which add the same to every path), and
//! one A/A at the mock's ~50 µs cannot tell them apart: scaling it in
//! proportion to a 1 ms gateway multiplied a p90 stall of 3 ms by twenty.
//! The level-dependent part comes from the run's own rounds instead, which
//! are measured at the path's level: the interval takes the larger of the
//! two spreads.

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
    /// The per-round noise between two identical paths: the root mean
    /// square of `rounds_diff` at each percentile (ns).
    #[serde(default)]
    pub floor: Resolution,
    /// The latency of the A/A paths themselves (copy A, ns): the level the
    /// floor was measured at (for the reader; see the module's note on why
    /// it is not scaled).
    #[serde(default)]
    pub level: Resolution,
    /// The smallest added-latency difference this machine resolves at the
    /// calibration's own level: t(0.975, rounds) × `floor` (ns).
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

impl Resolution {
    /// The floor and resolution of `rounds_diff`: the RMS at each
    /// percentile, and t(0.975, n) times it.
    pub fn of_rounds(rounds_diff: &[Resolution]) -> (Resolution, Resolution) {
        let rms = |f: fn(&Resolution) -> i64| {
            let n = rounds_diff.len().max(1) as f64;
            (rounds_diff
                .iter()
                .map(|d| (f(d) as f64).powi(2))
                .sum::<f64>()
                / n)
                .sqrt()
        };
        let t = crate::interval::t_quantile(rounds_diff.len() as f64);
        let floor = [rms(|d| d.p50), rms(|d| d.p90), rms(|d| d.p99)];
        let r = |v: [f64; 3]| Resolution {
            p50: v[0].round() as i64,
            p90: v[1].round() as i64,
            p99: v[2].round() as i64,
        };
        (r(floor), r(floor.map(|f| t * f)))
    }
}

impl Calibration {
    /// The machine's per-round noise (ns) at `percentile`. Percentiles
    /// beyond p99 take p99's (they are noisier still, never less). A
    /// calibration from before the floor was kept gives its resolution over t.
    pub fn noise_at(&self, percentile: &str) -> f64 {
        let p = if matches!(percentile, "p50" | "p90" | "p99") {
            percentile
        } else {
            "p99"
        };
        match self.floor.at(p).unwrap_or(0) {
            0 => {
                self.resolution.at(p).unwrap_or(0).unsigned_abs() as f64
                    / crate::interval::t_quantile(f64::from(self.rounds.max(1)))
            }
            f => f.unsigned_abs() as f64,
        }
    }

    /// The resolution at `percentile`: one more A/A round's difference
    /// falls within it 95 % of the time.
    pub fn resolution_at(&self, percentile: &str) -> f64 {
        crate::interval::t_quantile(f64::from(self.rounds.max(1))) * self.noise_at(percentile)
    }

    /// Whether an added-latency (or regression) figure at `percentile` is
    /// within this machine's noise: inside its `interval` where it has one
    /// (the interval holds 0), else inside the resolution.
    pub fn within_noise(
        &self,
        percentile: &str,
        added_ns: i64,
        interval: Option<&crate::interval::Interval>,
    ) -> bool {
        match interval {
            Some(i) => i.contains(0.0),
            None => added_ns.unsigned_abs() as f64 <= self.resolution_at(percentile),
        }
    }

    /// The printed form (terminal and `loadgen calibrate`).
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        let r = &self.resolution;
        let _ = writeln!(
            s,
            "Resolution: p50 {}, p90 {}, p99 {} on this machine now (one more A/A round's difference falls within these 95 % of the time; added intervals are at least this noisy per round)",
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
pub(crate) mod tests {
    use super::*;

    /// A calibration of `rounds` with this floor and resolution.
    pub(crate) fn calibration(
        floor: Resolution,
        resolution: Resolution,
        rounds: u32,
    ) -> Calibration {
        Calibration {
            duration_s: 1.0,
            rounds,
            round_s: 0.5,
            rate: 2000.0,
            timer_late: Percentiles::default(),
            schedule_lag: vec![],
            loopback: Percentiles::default(),
            delays: vec![],
            rounds_diff: vec![],
            floor,
            level: Resolution {
                p50: 50_000,
                p90: 80_000,
                p99: 200_000,
            },
            resolution,
        }
    }

    #[test]
    fn the_floor_is_the_rms_and_the_interval_decides_where_there_is_one() {
        let diffs = [
            Resolution {
                p50: 3_000,
                p90: -4_000,
                p99: 100_000,
            },
            Resolution {
                p50: -4_000,
                p90: 3_000,
                p99: -100_000,
            },
        ];
        let (floor, resolution) = Resolution::of_rounds(&diffs);
        // RMS of 3 and 4 µs is 3.54 µs (the mean is known to be 0); one
        // more round falls within t(0.975, 2) = 4.303 times it.
        assert_eq!((floor.p50, floor.p90, floor.p99), (3_536, 3_536, 100_000));
        assert_eq!((resolution.p50, resolution.p99), (15_212, 430_265));
        let c = calibration(floor, resolution, 2);
        assert_eq!(c.noise_at("p50"), 3_536.0);
        assert!(c.within_noise("p50", -15_000, None));
        assert!(!c.within_noise("p50", 16_000, None));
        assert_eq!(c.noise_at("p99.9"), 100_000.0, "beyond p99: p99's");
        // With an interval, the interval decides: 0 inside it is noise.
        let i = |lo, hi| crate::interval::Interval {
            mean: (lo + hi) / 2.0,
            lo,
            hi,
            n: 5,
            method: crate::interval::Method::T,
        };
        assert!(c.within_noise("p50", 500_000, Some(&i(-1_000.0, 900_000.0))));
        assert!(!c.within_noise("p50", 5_000, Some(&i(2_000.0, 8_000.0))));
        assert!(
            c.render_text()
                .starts_with("Resolution: p50 15us, p90 15us, p99 430us"),
            "{}",
            c.render_text()
        );
        // A calibration written before the floor was kept: its resolution
        // over t stands in for it.
        let old = calibration(Resolution::default(), resolution, 2);
        assert!((old.noise_at("p50") - 3_535.5).abs() < 1.0);
    }
}
