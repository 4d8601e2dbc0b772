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
//!
//! Between two runs the rounds are not paired, and the interval is on the
//! shift between two independent sets of rounds:
//!
//! - with at least [`MANN_WHITNEY_MIN_N`] rounds on each side, the
//!   **Mann–Whitney** (two-sample Hodges–Lehmann) interval: order statistics
//!   of the differences of every candidate round with every base round,
//!   exact critical values (a normal approximation above 2,500 pairs), around
//!   their median. As with signed-rank, a stalled round moves one rank.
//! - below that, **Welch's t** (unequal variances).

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
    /// a Hodges–Lehmann estimate: the median of the Walsh averages
    /// (signed-rank), of the differences between the two sides' rounds
    /// (Mann–Whitney).
    pub mean: f64,
    /// Lower bound.
    pub lo: f64,
    /// Upper bound.
    pub hi: f64,
    /// The rounds it rests on.
    pub n: u32,
    pub method: Method,
}

/// The fewest rounds on each side at which the two-sample interval is the
/// Mann–Whitney one. At 4 against 4 it would reach 95 % only as the range of
/// the 16 differences, which one stalled round sets; at 5 against 5 it drops
/// the 2 smallest and 2 largest of 25 (96.8 %).
pub const MANN_WHITNEY_MIN_N: usize = 5;

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
    /// Welch's t on two independent sets of rounds (a change between runs,
    /// fewer than 5 rounds on a side).
    #[serde(rename = "welch")]
    Welch,
    /// The Mann–Whitney (two-sample Hodges–Lehmann) interval on two
    /// independent sets of rounds, 5 or more on each side.
    #[serde(rename = "mann-whitney")]
    MannWhitney,
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Method::T => "t",
            Method::SignedRank => "signed-rank",
            Method::TSignedRank => "t+signed-rank",
            Method::Welch => "welch",
            Method::MannWhitney => "mann-whitney",
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

/// The interval of the shift from `base` to `cand`, two independent sets
/// of rounds (two runs): Mann–Whitney with [`MANN_WHITNEY_MIN_N`] rounds or
/// more on each side, else Welch's t; `n` is the smaller set. None with
/// fewer than 2 rounds on either side or a non-finite value.
pub fn two_sample(base: &[f64], cand: &[f64]) -> Option<Interval> {
    let welch = welch(base, cand)?;
    let Some(r) = mann_whitney(base, cand) else {
        return Some(welch);
    };
    Some(Interval {
        mean: r.estimate,
        lo: r.lo,
        hi: r.hi,
        method: Method::MannWhitney,
        ..welch
    })
}

/// The Mann–Whitney interval of the shift from `base` to `cand` at
/// [`LEVEL`] or more, around the two-sample Hodges–Lehmann estimate (the
/// median of every `c − b`); None below [`MANN_WHITNEY_MIN_N`] rounds on a
/// side.
pub fn mann_whitney(base: &[f64], cand: &[f64]) -> Option<SignedRank> {
    let (m, n) = (base.len(), cand.len());
    if m.min(n) < MANN_WHITNEY_MIN_N {
        return None;
    }
    let mut diffs: Vec<f64> = cand
        .iter()
        .flat_map(|c| base.iter().map(move |b| c - b))
        .collect();
    diffs.sort_by(f64::total_cmp);
    let k = mann_whitney_critical(m, n, (1.0 - LEVEL) / 2.0)?;
    let len = diffs.len();
    Some(SignedRank {
        estimate: median_sorted(&diffs),
        lo: diffs[k],
        hi: diffs[len - 1 - k],
    })
}

/// The median of sorted values (not empty).
fn median_sorted(x: &[f64]) -> f64 {
    let m = x.len();
    if m % 2 == 1 {
        x[m / 2]
    } else {
        (x[m / 2 - 1] + x[m / 2]) / 2.0
    }
}

/// A Hodges–Lehmann interval and the estimate at its centre (one sample:
/// signed-rank; two samples: Mann–Whitney).
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
    Some(SignedRank {
        estimate: median_sorted(&walsh),
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
    lower_tail(ways.iter().map(|w| w / total), alpha)
}

/// The largest `u` whose cumulative probability (`p` gives P(U = 0),
/// P(U = 1), …) is at most `alpha`; None when P(U = 0) is above it.
fn lower_tail(p: impl Iterator<Item = f64>, alpha: f64) -> Option<usize> {
    let mut below = 0.0;
    let mut t = None;
    for (u, p) in p.enumerate() {
        below += p;
        if below > alpha {
            break;
        }
        t = Some(u);
    }
    t
}

/// The Mann–Whitney critical value: the largest `k` with P(U ≤ k) ≤
/// `alpha`, U the count of (base, candidate) pairs in which the candidate
/// is smaller, `m` and `n` rounds, no shift. Exact up to 2,500 pairs (the
/// arrangements of the two sides counted by U, as probabilities so that
/// nothing overflows); above, the normal approximation with continuity
/// correction, which is within a rank of exact when both sides have 25
/// rounds or more, and a few ranks wider (never narrower) when one side has
/// only a handful. Dropping the `k` smallest
/// and `k` largest differences covers at least 1 − 2·alpha.
fn mann_whitney_critical(m: usize, n: usize, alpha: f64) -> Option<usize> {
    if m * n > 2500 {
        mann_whitney_normal(m, n, alpha)
    } else {
        mann_whitney_exact(m, n, alpha)
    }
}

/// [`mann_whitney_critical`] by the normal approximation.
fn mann_whitney_normal(m: usize, n: usize, alpha: f64) -> Option<usize> {
    use statrs::distribution::Normal;
    let pairs = (m * n) as f64;
    let sd = (pairs * (m + n + 1) as f64 / 12.0).sqrt();
    let z = Normal::new(0.0, 1.0).ok()?.inverse_cdf(alpha);
    let k = (pairs / 2.0 + z * sd - 0.5).floor();
    (k >= 0.0).then_some(k as usize)
}

/// [`mann_whitney_critical`] counted exactly.
fn mann_whitney_exact(m: usize, n: usize, alpha: f64) -> Option<usize> {
    let pairs = m * n;
    // p[i][j][u]: P(U = u) with i base and j candidate rounds. The largest
    // of the i + j values is a base round with probability i / (i + j) (it
    // is above all j candidates: U grows by j) or a candidate round.
    let width = pairs + 1;
    let mut prev: Vec<Vec<f64>> = vec![Vec::new(); n + 1];
    for i in 0..=m {
        let mut cur: Vec<Vec<f64>> = vec![Vec::new(); n + 1];
        for j in 0..=n {
            let mut row = vec![0f64; width];
            if i == 0 || j == 0 {
                row[0] = 1.0;
            } else {
                let (fi, fj) = (i as f64, j as f64);
                let (a, b) = (fi / (fi + fj), fj / (fi + fj));
                for (u, slot) in row.iter_mut().enumerate().take(i * j + 1) {
                    let from_base = if u >= j { prev[j][u - j] } else { 0.0 };
                    *slot = a * from_base + b * cur[j - 1][u];
                }
            }
            cur[j] = row;
        }
        prev = cur;
    }
    lower_tail(prev[n].iter().copied(), alpha)
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
    fn mann_whitney_critical_values_are_the_tables() {
        // Two-sided 5 %: the standard tables' critical values of U.
        for (m, n, k) in [
            (4, 4, 0),
            (5, 5, 2),
            (6, 6, 5),
            (7, 7, 8),
            (8, 8, 13),
            (10, 10, 23),
            (5, 10, 8),
            (20, 20, 127),
        ] {
            assert_eq!(mann_whitney_critical(m, n, 0.025), Some(k), "{m}×{n}");
            assert_eq!(mann_whitney_critical(n, m, 0.025), Some(k), "{n}×{m}");
        }
        assert_eq!(mann_whitney_critical(3, 3, 0.025), None);
        // The exact count and the normal approximation agree within a rank
        // where the one hands over to the other.
        for (m, n) in [(50, 50), (25, 100), (10, 250), (5, 500)] {
            let exact = mann_whitney_exact(m, n, 0.025).unwrap();
            let approx = mann_whitney_normal(m, n, 0.025).unwrap();
            // Never narrower than exact; a rank off when both sides are
            // large, a few (wider) when one side has few rounds.
            let off = if m.min(n) >= 25 { 1 } else { 5 };
            assert!(
                approx <= exact && exact - approx <= off,
                "{m}×{n}: {approx} vs {exact}"
            );
        }
    }

    #[test]
    fn mann_whitney_interval_drops_the_critical_differences() {
        // 25 differences c − b from 6 to 14 (counts 1 2 3 4 5 4 3 2 1): the
        // interval drops 2 at each end, the estimate is their median.
        let base = [1.0, 2.0, 3.0, 4.0, 5.0];
        let cand = [11.0, 12.0, 13.0, 14.0, 15.0];
        let r = mann_whitney(&base, &cand).unwrap();
        assert_eq!((r.lo, r.estimate, r.hi), (7.0, 10.0, 13.0));
        let i = two_sample(&base, &cand).unwrap();
        assert_eq!((i.lo, i.mean, i.hi, i.n), (7.0, 10.0, 13.0, 5));
        assert_eq!(i.method, Method::MannWhitney);
        // Below 5 rounds on a side: Welch.
        assert_eq!(two_sample(&base[..4], &cand).unwrap().method, Method::Welch);
        assert!(two_sample(&base[..1], &cand).is_none());
        assert!(two_sample(&base, &[1.0, f64::NAN, 2.0, 3.0, 4.0]).is_none());
    }

    /// Between runs: a stalled round on each side, and a +80 on every
    /// round. Welch's interval straddles 0; Mann–Whitney's does not.
    #[test]
    fn a_stalled_round_between_runs_does_not_hide_an_effect() {
        let base = [500.0, 510.0, 495.0, 505.0, 3500.0, 498.0];
        let cand = [580.0, 590.0, 575.0, 4100.0, 585.0, 578.0];
        assert!(welch(&base, &cand).unwrap().contains(0.0));
        let i = two_sample(&base, &cand).unwrap();
        assert!(i.lo > 50.0 && (75.0..95.0).contains(&i.mean), "{i:?}");
    }

    /// Two independent sets of rounds with normal noise: the two-sample
    /// interval holds the true shift about 95 % of the time or a little
    /// more (Welch at 3 a side, Mann–Whitney's discrete levels from 5).
    #[test]
    fn two_sample_coverage_is_at_least_the_level() {
        use rand::SeedableRng as _;
        use rand_distr::{Distribution as _, Normal};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(11);
        let noise = Normal::new(0.0, 30.0).unwrap();
        for (m, n) in [(3, 3), (5, 5), (6, 9), (15, 15)] {
            let trials = 3000;
            let mut held = 0;
            for _ in 0..trials {
                let b: Vec<f64> = (0..m).map(|_| 500.0 + noise.sample(&mut rng)).collect();
                let c: Vec<f64> = (0..n).map(|_| 550.0 + noise.sample(&mut rng)).collect();
                held += usize::from(two_sample(&b, &c).unwrap().contains(50.0));
            }
            let cover = held as f64 / trials as f64;
            assert!((0.935..0.99).contains(&cover), "{m}×{n}: {cover}");
        }
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
