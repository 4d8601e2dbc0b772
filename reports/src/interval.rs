//! Confidence intervals of a mean difference from a few paired rounds.
//!
//! A round is the unit of evidence: requests inside a round are correlated
//! (one stall of the machine moves hundreds of them), rounds are close to
//! independent, and interleaving puts every target into every round, so a
//! target's figure in round k and the baseline's in round k form a pair.
//! The interval is on the mean of the n per-round differences:
//!
//! - with fewer than 6 rounds, **Student t** (`mean ± t(0.975, n−1) · s /
//!   √n`), which holds for few rounds when the differences are near normal
//!   (below 6 no signed-rank interval reaches 95 %);
//! - from 6 rounds on, the **Wilcoxon signed-rank** interval (the
//!   Hodges–Lehmann one: order statistics of the Walsh averages, exact
//!   critical values) around the Hodges–Lehmann estimate, which needs only
//!   symmetry of the differences — and interleaving with the order balanced
//!   in both directions makes them symmetric when nothing changed. It is
//!   chosen over t (and over the union of the two, which was tried) because
//!   one stalled round — a 2-core runner that loses its CPU for a second —
//!   moves a mean and inflates a standard deviation without bound, and the
//!   t interval then straddles any effect; it moves a rank by one.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

/// The confidence every interval is computed at.
pub const LEVEL: f64 = 0.95;

/// The fewest rounds at which the signed-rank interval can reach [`LEVEL`]
/// (at 5 its widest, the range of the Walsh averages, covers 93.75 %).
pub const SIGNED_RANK_MIN_N: usize = 6;

/// A 95 % confidence interval of the mean per-round difference, in the
/// differences' unit (nanoseconds for latency).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Interval {
    /// The estimate: the mean of the per-round differences (t, Welch) or
    /// their Hodges–Lehmann estimate, the median of the Walsh averages
    /// (signed-rank).
    pub mean: f64,
    /// Lower bound.
    pub lo: f64,
    /// Upper bound.
    pub hi: f64,
    /// The rounds it rests on.
    pub n: u32,
    pub method: Method,
}

/// How an interval was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Method {
    /// Student t on the paired differences.
    #[serde(rename = "t")]
    T,
    /// The Wilcoxon signed-rank interval (6 rounds or more).
    #[serde(rename = "signed-rank")]
    SignedRank,
    /// The union of the t interval and the signed-rank one, as result files
    /// of earlier versions carry it.
    #[serde(rename = "t+signed-rank")]
    TSignedRank,
    /// Welch's t on two independent sets of rounds (a change between runs).
    #[serde(rename = "welch")]
    Welch,
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Method::T => "t",
            Method::SignedRank => "signed-rank",
            Method::TSignedRank => "t+signed-rank",
            Method::Welch => "welch",
        })
    }
}

impl Interval {
    /// Half the interval's width.
    pub fn half_width(&self) -> f64 {
        (self.hi - self.lo) / 2.0
    }

    /// Whether the interval holds `x`.
    pub fn contains(&self, x: f64) -> bool {
        self.lo <= x && x <= self.hi
    }

    /// About how many rounds in all would shrink the half-width to `target`,
    /// at this interval's spread (the half-width falls as 1/√n); None when it
    /// is already there or cannot be said (no spread, no target).
    pub fn rounds_for(&self, target: f64) -> Option<u32> {
        let h = self.half_width();
        if target.is_nan() || target <= 0.0 || h <= target || self.n < 2 {
            return None;
        }
        let n = f64::from(self.n) * (h / target).powi(2);
        Some(n.ceil().min(f64::from(u32::MAX)) as u32)
    }
}

/// A sample's size, mean and (n − 1) variance; None with fewer than 2
/// values or a non-finite one.
fn sample(x: &[f64]) -> Option<(f64, f64, f64)> {
    if x.len() < 2 || x.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    Some((n, mean, var))
}

/// The two-sided [`LEVEL`] quantile of Student's t with `df` degrees of
/// freedom (the normal's for an unusable `df`).
pub fn t_quantile(df: f64) -> f64 {
    StudentsT::new(0.0, 1.0, df)
        .map(|t| t.inverse_cdf(1.0 - (1.0 - LEVEL) / 2.0))
        .unwrap_or(1.959_963_984_540_054)
}

/// The interval of the mean of `diffs` (one per round); None with fewer
/// than 2 rounds or a non-finite value.
pub fn paired(diffs: &[f64]) -> Option<Interval> {
    paired_floored(diffs, 0.0)
}

/// As [`paired`], with the per-round spread taken as at least `floor_sd`:
/// the machine's own per-round noise, measured apart (calibration), is a
/// variance component a few rounds that happen to agree cannot talk away.
/// The interval is at least the t interval of that spread on each side of
/// its estimate.
pub fn paired_floored(diffs: &[f64], floor_sd: f64) -> Option<Interval> {
    let (nf, mean, var) = sample(diffs)?;
    let t = t_quantile(nf - 1.0);
    let (centre, mut lo, mut hi, method) = match signed_rank(diffs) {
        Some(r) => (r.estimate, r.lo, r.hi, Method::SignedRank),
        None => {
            let half = t * (var / nf).sqrt();
            (mean, mean - half, mean + half, Method::T)
        }
    };
    let floor = t * floor_sd / nf.sqrt();
    lo = lo.min(centre - floor);
    hi = hi.max(centre + floor);
    Some(Interval {
        mean: centre,
        lo,
        hi,
        n: diffs.len() as u32,
        method,
    })
}

/// The interval of `mean(cand) − mean(base)` for two independent sets of
/// rounds (two runs), by Welch's t (unequal variances, Welch–Satterthwaite
/// degrees of freedom); `n` is the smaller set. None with fewer than 2
/// rounds on either side.
pub fn welch(base: &[f64], cand: &[f64]) -> Option<Interval> {
    let ((nb, mb, vb), (nc, mc, vc)) = (sample(base)?, sample(cand)?);
    let (qb, qc) = (vb / nb, vc / nc);
    let se2 = qb + qc;
    let mean = mc - mb;
    let half = if se2 > 0.0 {
        let df = se2 * se2 / (qb * qb / (nb - 1.0) + qc * qc / (nc - 1.0));
        t_quantile(df) * se2.sqrt()
    } else {
        0.0
    };
    Some(Interval {
        mean,
        lo: mean - half,
        hi: mean + half,
        n: nb.min(nc) as u32,
        method: Method::Welch,
    })
}

/// A signed-rank interval and the estimate at its centre.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignedRank {
    /// The Hodges–Lehmann estimate: the median of the Walsh averages.
    pub estimate: f64,
    pub lo: f64,
    pub hi: f64,
}

/// The Wilcoxon signed-rank (Hodges–Lehmann) interval of the centre of
/// `diffs` at [`LEVEL`] or more; None below [`SIGNED_RANK_MIN_N`] rounds.
pub fn signed_rank(diffs: &[f64]) -> Option<SignedRank> {
    let n = diffs.len();
    if n < SIGNED_RANK_MIN_N {
        return None;
    }
    let mut walsh = Vec::with_capacity(n * (n + 1) / 2);
    for i in 0..n {
        for j in i..n {
            walsh.push((diffs[i] + diffs[j]) / 2.0);
        }
    }
    walsh.sort_by(f64::total_cmp);
    let t = critical(n, (1.0 - LEVEL) / 2.0)?;
    let m = walsh.len();
    let estimate = if m % 2 == 1 {
        walsh[m / 2]
    } else {
        (walsh[m / 2 - 1] + walsh[m / 2]) / 2.0
    };
    Some(SignedRank {
        estimate,
        lo: walsh[t],
        hi: walsh[m - 1 - t],
    })
}

/// The table's critical value: the largest `t` with P(T ≤ t) ≤ `alpha`, T
/// the signed-rank statistic of `n` rounds under no shift (exact: subsets of
/// the ranks counted by their sum); None when even T = 0 is likelier. The
/// interval that drops the `t` smallest and `t` largest Walsh averages then
/// covers at least 1 − 2·alpha.
fn critical(n: usize, alpha: f64) -> Option<usize> {
    let max = n * (n + 1) / 2;
    // ways[s]: subsets of the ranks 1..=n summing to s.
    let mut ways = vec![0f64; max + 1];
    ways[0] = 1.0;
    for r in 1..=n {
        for s in (r..=max).rev() {
            ways[s] += ways[s - r];
        }
    }
    let total = 2f64.powi(n as i32);
    let mut below = 0.0;
    let mut t = None;
    for (s, w) in ways.iter().enumerate() {
        below += w / total;
        if below > alpha {
            break;
        }
        t = Some(s);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_interval_matches_the_textbook() {
        // n = 5, mean 10, s = 1.5811 (1..5 shifted): t(0.975, 4) = 2.7764.
        let d = [8.0, 9.0, 10.0, 11.0, 12.0];
        let i = paired(&d).unwrap();
        assert_eq!(i.n, 5);
        assert_eq!(i.method, Method::T);
        let half = 2.776_445 * (2.5f64 / 5.0).sqrt();
        assert!((i.mean - 10.0).abs() < 1e-12);
        assert!((i.lo - (10.0 - half)).abs() < 1e-4, "{i:?}");
        assert!((i.hi - (10.0 + half)).abs() < 1e-4, "{i:?}");
        assert!(paired(&[1.0]).is_none());
        assert!(paired(&[1.0, f64::NAN]).is_none());
    }

    #[test]
    fn signed_rank_critical_values_are_the_tables() {
        // Two-sided 5 %: the standard tables' critical values of T.
        for (n, t) in [(6, 0), (7, 2), (8, 3), (10, 8), (15, 25), (20, 52)] {
            assert_eq!(critical(n, 0.025), Some(t), "n = {n}");
        }
        assert_eq!(critical(5, 0.025), None);
        // At n = 6 the interval is the Walsh averages' whole range.
        let d = [1.0, 2.0, 3.0, 4.0, 5.0, 100.0];
        let r = signed_rank(&d).unwrap();
        assert_eq!((r.lo, r.hi), (1.0, 100.0));
        // 21 Walsh averages: the 11th, (3 + 4) / 2.
        assert_eq!(r.estimate, 3.5);
        assert!(signed_rank(&[1.0; 5]).is_none());
    }

    /// Over many simulated sets of rounds with normal noise, the interval
    /// holds the true mean about 95 % of the time (t below 6 rounds, the
    /// signed-rank interval, which covers at least 95 %, from 6 on).
    #[test]
    fn coverage_is_at_least_the_level() {
        use rand::{Rng as _, SeedableRng as _};
        use rand_distr::{Distribution as _, Normal};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        let noise = Normal::new(0.0, 30.0).unwrap();
        for n in [3, 5, 8, 20] {
            let trials = 4000;
            let mut held = 0;
            for _ in 0..trials {
                let d: Vec<f64> = (0..n).map(|_| 60.0 + noise.sample(&mut rng)).collect();
                held += usize::from(paired(&d).unwrap().contains(60.0));
            }
            let cover = held as f64 / trials as f64;
            assert!((0.935..0.995).contains(&cover), "n = {n}: {cover}");
            let _ = rng.random::<u8>();
        }
    }

    /// One stalled round among eight: the t interval would straddle 0
    /// (mean 447, s 1032); the signed-rank one still tells the +80 apart.
    #[test]
    fn one_stalled_round_does_not_hide_an_effect() {
        let d = [80.0, 85.0, 75.0, 90.0, 78.0, 82.0, 84.0, 3000.0];
        let i = paired(&d).unwrap();
        assert_eq!(i.method, Method::SignedRank);
        assert!(i.lo > 70.0 && i.hi < 1600.0, "{i:?}");
        assert!((80.0..90.0).contains(&i.mean), "{i:?}");
        let (_, m, v) = sample(&d).unwrap();
        assert!(m - t_quantile(7.0) * (v / 8.0).sqrt() < 0.0);
        // The floor still widens it: at least t · floor / √n each side.
        let f = paired_floored(&d, 100.0).unwrap();
        assert!(f.lo <= f.mean - t_quantile(7.0) * 100.0 / 8f64.sqrt() + 1e-9);
    }

    #[test]
    fn welch_matches_the_textbook_and_shrinks_with_rounds() {
        // Equal variances and sizes: df = 2n − 2, the pooled t interval.
        let base = [10.0, 12.0, 14.0];
        let cand = [20.0, 22.0, 24.0];
        let i = welch(&base, &cand).unwrap();
        assert_eq!((i.mean, i.n, i.method), (10.0, 3, Method::Welch));
        // se = sqrt(4/3 + 4/3), t(0.975, 4) = 2.7764.
        let half = 2.776_445 * (8.0f64 / 3.0).sqrt();
        assert!((i.half_width() - half).abs() < 1e-4, "{i:?}");
        assert!(welch(&[1.0], &cand).is_none());
        let same = welch(&base, &base).unwrap();
        assert!(same.contains(0.0));
        let flat = welch(&[5.0, 5.0], &[7.0, 7.0]).unwrap();
        assert_eq!((flat.lo, flat.hi), (2.0, 2.0));
    }

    #[test]
    fn rounds_for_a_precision_scale_as_one_over_root_n() {
        let i = Interval {
            mean: 0.0,
            lo: -20.0,
            hi: 20.0,
            n: 5,
            method: Method::T,
        };
        assert_eq!(i.rounds_for(10.0), Some(20));
        assert_eq!(i.rounds_for(30.0), None);
    }
}
