//! Intended send times of an open-loop phase, computed from the schedule,
//! never from `now()` after a sleep.
//!
//! A rate over the phase is piecewise linear (constant, ramp, steps, spike).
//! The cumulative count `N(t) = ∫ r` is inverted exactly: request `k` is due
//! at `N⁻¹(u_k)`, with `u_k = k` for even spacing, or the arrival times of a
//! unit-rate Poisson process (seeded exponential gaps) for Poisson arrivals —
//! the time-rescaling construction, so a Poisson ramp is exact too.

use std::time::Duration;

use rand::Rng;
use rand_distr::{Distribution, Exp1};

use crate::scenario::{Ramp, Rate, Spike, Steps};

#[derive(Debug, Clone, Copy, PartialEq)]
struct Segment {
    /// Seconds from the phase start.
    start: f64,
    len: f64,
    from: f64,
    to: f64,
    /// Requests due before this segment: `N(start)`.
    before: f64,
}

impl Segment {
    fn count(&self) -> f64 {
        (self.from + self.to) * self.len / 2.0
    }

    /// Seconds into the segment at which `n` more requests have become due.
    fn invert(&self, n: f64) -> f64 {
        if n <= 0.0 {
            return 0.0;
        }
        let k = (self.to - self.from) / (2.0 * self.len);
        if k.abs() < 1e-12 {
            return n / self.from;
        }
        // k t² + from t − n = 0, in the cancellation-free form.
        let disc = (self.from * self.from + 4.0 * k * n).max(0.0);
        2.0 * n / (self.from + disc.sqrt())
    }
}

/// An arrival schedule for one phase.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    segments: Vec<Segment>,
    duration: f64,
}

impl Schedule {
    pub fn new(rate: &Rate, duration: Duration) -> Schedule {
        let d = duration.as_secs_f64();
        let pieces: Vec<(f64, f64, f64)> = match rate {
            Rate::Constant(r) => vec![(d, *r, *r)],
            Rate::Ramp(Ramp { from, to }) => vec![(d, *from, *to)],
            Rate::Steps(Steps { steps }) => {
                let len = d / steps.len() as f64;
                steps.iter().map(|r| (len, *r, *r)).collect()
            }
            Rate::Spike(Spike {
                base,
                peak,
                at,
                length,
            }) => {
                let (at, len) = (at.0.as_secs_f64(), length.0.as_secs_f64());
                vec![
                    (at, *base, *base),
                    (len, *peak, *peak),
                    (d - at - len, *base, *base),
                ]
            }
        };
        let mut segments = Vec::with_capacity(pieces.len());
        let (mut start, mut before) = (0.0, 0.0);
        for (len, from, to) in pieces.into_iter().filter(|p| p.0 > 0.0) {
            let s = Segment {
                start,
                len,
                from,
                to,
                before,
            };
            before += s.count();
            start += len;
            segments.push(s);
        }
        Schedule {
            segments,
            duration: d,
        }
    }

    /// Requests due over the whole phase, `N(duration)`.
    pub fn expected_count(&self) -> f64 {
        self.segments.last().map_or(0.0, |s| s.before + s.count())
    }

    /// The average rate over the phase.
    pub fn mean_rate(&self) -> f64 {
        self.expected_count() / self.duration
    }

    /// When `N(t)` reaches `u`, or `None` past the phase's end.
    pub fn time_of(&self, u: f64) -> Option<Duration> {
        let seg = self
            .segments
            .iter()
            .rev()
            .find(|s| s.before <= u && s.count() > 0.0)?;
        if u >= seg.before + seg.count() {
            return None;
        }
        let t = seg.start + seg.invert(u - seg.before);
        (t < self.duration).then(|| Duration::from_secs_f64(t.max(0.0)))
    }

    /// Send offsets from the phase start, in order.
    pub fn offsets<R: Rng>(&self, poisson: bool, rng: R) -> Offsets<'_, R> {
        Offsets {
            schedule: self,
            poisson,
            rng,
            k: 0,
            u: 0.0,
        }
    }
}

/// The iterator of [`Schedule::offsets`]: `(sequence number, offset)`.
#[derive(Debug)]
pub struct Offsets<'a, R> {
    schedule: &'a Schedule,
    poisson: bool,
    rng: R,
    k: u64,
    u: f64,
}

impl<R: Rng> Iterator for Offsets<'_, R> {
    type Item = (u64, Duration);

    fn next(&mut self) -> Option<(u64, Duration)> {
        let u = if self.poisson {
            let gap: f64 = Exp1.sample(&mut self.rng);
            // The first arrival also waits one gap, as a Poisson process does.
            self.u += gap;
            self.u
        } else {
            self.k as f64
        };
        let t = self.schedule.time_of(u)?;
        let k = self.k;
        self.k += 1;
        Some((k, t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Dur;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn constant_rate_is_evenly_spaced() {
        let s = Schedule::new(&Rate::Constant(1000.0), secs(2.0));
        let v: Vec<_> = s.offsets(false, SmallRng::seed_from_u64(1)).collect();
        assert_eq!(v.len(), 2000);
        assert_eq!(v[0], (0, Duration::ZERO));
        assert_eq!(v[1].1, Duration::from_millis(1));
        assert_eq!(v[1999].1, Duration::from_millis(1999));
    }

    #[test]
    fn ramp_follows_the_exact_integral() {
        // 0 → 1000 rps over 10 s: N(t) = 50 t², 5000 requests in all.
        let s = Schedule::new(
            &Rate::Ramp(Ramp {
                from: 0.0,
                to: 1000.0,
            }),
            secs(10.0),
        );
        assert_eq!(s.expected_count(), 5000.0);
        let v: Vec<_> = s.offsets(false, SmallRng::seed_from_u64(1)).collect();
        assert_eq!(v.len(), 5000);
        // Request 1250 is due when 50 t² = 1250: t = 5 s.
        assert!((v[1250].1.as_secs_f64() - 5.0).abs() < 1e-9);
        // Counts in the first and second halves: 1250 and 3750.
        assert_eq!(v.iter().filter(|(_, t)| *t < secs(5.0)).count(), 1250);
        let down = Schedule::new(
            &Rate::Ramp(Ramp {
                from: 1000.0,
                to: 0.0,
            }),
            secs(10.0),
        );
        let w: Vec<_> = down.offsets(false, SmallRng::seed_from_u64(1)).collect();
        assert_eq!(w.iter().filter(|(_, t)| *t < secs(5.0)).count(), 3750);
    }

    #[test]
    fn steps_and_spikes_are_piecewise() {
        let s = Schedule::new(
            &Rate::Steps(Steps {
                steps: vec![100.0, 300.0],
            }),
            secs(2.0),
        );
        let v: Vec<_> = s.offsets(false, SmallRng::seed_from_u64(1)).collect();
        assert_eq!(v.len(), 400);
        assert_eq!(v.iter().filter(|(_, t)| *t < secs(1.0)).count(), 100);
        let spike = Rate::Spike(Spike {
            base: 100.0,
            peak: 1000.0,
            at: Dur(secs(1.0)),
            length: Dur(secs(0.5)),
        });
        let s = Schedule::new(&spike, secs(3.0));
        let v: Vec<_> = s.offsets(false, SmallRng::seed_from_u64(1)).collect();
        assert_eq!(v.len(), 100 + 500 + 150);
        assert_eq!(
            v.iter()
                .filter(|(_, t)| *t >= secs(1.0) && *t < secs(1.5))
                .count(),
            500
        );
    }

    #[test]
    fn poisson_has_the_right_mean_and_spread() {
        let s = Schedule::new(&Rate::Constant(1000.0), secs(100.0));
        let v: Vec<_> = s.offsets(true, SmallRng::seed_from_u64(7)).collect();
        // Poisson(100000): sd 316, so ±1% is beyond 3 sd.
        assert!((99_000..101_000).contains(&v.len()), "{}", v.len());
        let gaps: Vec<f64> = v
            .windows(2)
            .map(|w| (w[1].1 - w[0].1).as_secs_f64())
            .collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
        assert!((mean - 0.001).abs() < 0.00002, "mean gap {mean}");
        // Exponential gaps: standard deviation equals the mean.
        assert!(
            (var.sqrt() / mean - 1.0).abs() < 0.02,
            "cv {}",
            var.sqrt() / mean
        );
        // Seeded: the same seed gives the same arrivals.
        let again: Vec<_> = s
            .offsets(true, SmallRng::seed_from_u64(7))
            .take(10)
            .collect();
        assert_eq!(&v[..10], &again[..]);
    }
}
