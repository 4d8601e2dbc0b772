//! Comparing for CI: the same metrics of a baseline and a candidate, per
//! target (and per request class), judged by the interval the rounds put on
//! each change. The two sides are either two runs (target by target, the
//! Mann–Whitney interval on their rounds, Welch's t below 5 rounds a side)
//! or two targets of one run ([`compare_within`]: two
//! builds of one gateway whose rounds interleaved, so round k of each pairs
//! and the machine's drift cancels).
//!
//! Metrics (`latency` is corrected latency, `service` is service time):
//! - `latency.p50|p90|p99|p99.9|p99.99|max`, `service.p50|p90|p99|p99.9|p99.99|max`;
//! - `added.p50|p90|p99|p99.9|p99.99` for targets measured against a baseline;
//! - `rps`: achieved requests per second (bigger is better);
//! - `capacity`: a `loadgen capacity` run's rate at the SLO (bigger is
//!   better; its noise is the search's precision);
//! - `errors`: failed requests (errors + unexpected statuses + drops) as a
//!   percentage of scheduled ones.
//!
//! The rule. The allowed change is `threshold% × |base|` (for `errors`, the
//! threshold in percentage points). A metric with rounds on both sides
//! (`latency.*`, `added.*`) is a regression when the whole 95 % interval of
//! its change is worse than the allowed change, ok when the whole interval
//! is within it, and inconclusive when it straddles it. A metric without
//! rounds (`rps`, `errors`, `service.*`, `capacity`) is a regression when
//! its change is worse than the allowed change **and** than its noise: the
//! larger round-to-round spread of the two sides, floored, for latency
//! figures, by a run's calibrated resolution (the machine's own A/A
//! difference), and for `capacity` by the search's precision.

use std::collections::BTreeMap;

use crate::interval::{paired, two_sample};
use crate::metric::{Metric, metrics};
use crate::percentiles::PERCENTILES;
use crate::summary::{Added, AddedPercentiles, ClassResult, Summary, TargetResult};

/// A threshold or limit, optionally for one target: `[TARGET:]METRIC=VALUE`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub target: Option<String>,
    pub metric: String,
    pub value: f64,
}

/// The default regression thresholds when none are given.
pub const DEFAULT_THRESHOLDS: &str =
    "latency.p50=10, latency.p99=25, added.p50=25, added.p99=50, rps=5, errors=0.1";

/// A run's calibrated resolution for a latency metric (`latency.p90`,
/// `added.p50`, `service.p99.9` …; beyond p99, p99's), in ns; 0 without a
/// calibration or for other metrics.
fn resolution(s: &Summary, metric: &str) -> f64 {
    let Some(c) = &s.calibration else {
        return 0.0;
    };
    let Some((kind, p)) = metric.split_once('.') else {
        return 0.0;
    };
    if !matches!(kind, "latency" | "added" | "service") || p == "max" {
        return 0.0;
    }
    c.resolution_at(p)
}

fn rule_for<'a>(rules: &'a [Rule], target: &str, metric: &str) -> Option<&'a Rule> {
    // A target-specific rule wins over a general one.
    rules
        .iter()
        .rev()
        .find(|r| r.metric == metric && r.target.as_deref() == Some(target))
        .or_else(|| {
            rules
                .iter()
                .rev()
                .find(|r| r.metric == metric && r.target.is_none())
        })
}

/// A target's capacity in a `loadgen capacity` run: (req/s, the search's precision).
fn capacity_of(s: &Summary, target: &str) -> Option<(f64, f64)> {
    let c = s.capacity.as_ref()?;
    let t = c.targets.iter().find(|t| t.target == target)?;
    Some((t.capacity_rps?, c.precision))
}

/// Whether `name` is a metric this module knows.
pub fn known_metric(name: &str) -> bool {
    match name.split_once('.') {
        Some(("latency" | "service", q)) => PERCENTILES.contains(&q) || q == "max",
        Some(("added", q)) => PERCENTILES.contains(&q),
        None => name == "rps" || name == "errors" || name == "capacity",
        _ => false,
    }
}

/// Why two runs (or two targets) cannot be compared.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("target {0:?} is in the baseline run but not in the candidate")]
    MissingTarget(String),
    #[error("the run has no target {0:?} (it has {1})")]
    NoSuchTarget(String, String),
    #[error("compare a target with another, not with itself ({0:?})")]
    SameTarget(String),
}

/// Compares `cand` against `base`. Gates every target's total, and each
/// class too when `per_class`. Errors when the runs do not match.
pub fn compare(
    base: &Summary,
    cand: &Summary,
    thresholds: &[Rule],
    limits: &[Rule],
    per_class: bool,
) -> Result<Vec<Row>, CompareError> {
    let runs = Runs {
        base,
        cand,
        thresholds,
        limits,
        paired: false,
    };
    let mut rows = Vec::new();
    for bt in &base.targets {
        let ct: &TargetResult = cand
            .targets
            .iter()
            .find(|t| t.name == bt.name)
            .ok_or_else(|| CompareError::MissingTarget(bt.name.clone()))?;
        rows.extend(runs.target_rows(bt, ct, per_class));
    }
    Ok(rows)
}

/// Compares two targets of one run: `cand_target` against `base_target`
/// (e.g. two builds of one gateway). Their rounds interleaved, so round k of
/// one and round k of the other met the same machine: each change's
/// interval is on the per-round differences (paired), and drift between
/// rounds cancels. Rows are named after the candidate target, and rules
/// for it apply.
pub fn compare_within(
    run: &Summary,
    (base_target, cand_target): (&str, &str),
    thresholds: &[Rule],
    limits: &[Rule],
    per_class: bool,
) -> Result<Vec<Row>, CompareError> {
    if base_target == cand_target {
        return Err(CompareError::SameTarget(base_target.to_owned()));
    }
    let find = |name: &str| {
        run.targets.iter().find(|t| t.name == name).ok_or_else(|| {
            let names: Vec<&str> = run.targets.iter().map(|t| t.name.as_str()).collect();
            CompareError::NoSuchTarget(name.to_owned(), names.join(", "))
        })
    };
    let runs = Runs {
        base: run,
        cand: run,
        thresholds,
        limits,
        paired: true,
    };
    Ok(runs.target_rows(find(base_target)?, find(cand_target)?, per_class))
}

impl Runs<'_> {
    /// One target pair's rows: capacity, the total (always gated) and each
    /// class (gated when `per_class`).
    fn target_rows(&self, bt: &TargetResult, ct: &TargetResult, per_class: bool) -> Vec<Row> {
        let runs = self;
        let mut rows = Vec::new();
        rows.extend(runs.capacity_row(&bt.name, &ct.name));
        rows.extend(runs.class_rows((bt, ct), "*", (&bt.total, &ct.total), true));
        for bc in &bt.classes {
            if let Some(cc) = ct
                .classes
                .iter()
                .find(|c| c.request == bc.request && c.phase == bc.phase)
            {
                let class = format!("{}/{}", bc.request, bc.phase);
                rows.extend(runs.class_rows((bt, ct), &class, (bc, cc), per_class));
            }
        }
        rows
    }
}

/// Both runs and the rules they are judged by.
struct Runs<'a> {
    base: &'a Summary,
    cand: &'a Summary,
    thresholds: &'a [Rule],
    limits: &'a [Rule],
    /// Both sides are targets of one run, their rounds interleaved: round k
    /// pairs with round k.
    paired: bool,
}

impl Runs<'_> {
    /// The threshold and the limit on `metric` of `target`.
    fn rules(&self, target: &str, metric: &str) -> (Option<f64>, Option<f64>) {
        (
            rule_for(self.thresholds, target, metric).map(|r| r.value),
            rule_for(self.limits, target, metric).map(|r| r.value),
        )
    }

    /// `loadgen capacity`'s figure, when both sides have one.
    fn capacity_row(&self, base: &str, cand: &str) -> Option<Row> {
        let (b, c) = (capacity_of(self.base, base)?, capacity_of(self.cand, cand)?);
        let (threshold, limit) = self.rules(cand, "capacity");
        Some(Row::judged(
            (cand, "*", "capacity", "req/s"),
            Judged {
                base: b.0,
                cand: c.0,
                // The search's own resolution is its noise.
                noise: b.0 * b.1.max(c.1),
                bigger_is_better: true,
                threshold,
                threshold_is_absolute: false,
                limit,
                change: None,
            },
        ))
    }

    /// Every metric of one class (`*`: the target's total, with its added
    /// latency) in both runs; judged when `gated`.
    fn class_rows(
        &self,
        (bt, ct): (&TargetResult, &TargetResult),
        class: &str,
        (bc, cc): (&ClassResult, &ClassResult),
        gated: bool,
    ) -> Vec<Row> {
        // The total's added figures with their per-round differences; a
        // class has none.
        fn added<'t>(
            s: &Summary,
            t: &'t TargetResult,
            total: bool,
        ) -> Option<(&'t Added, Vec<AddedPercentiles>)> {
            t.added
                .as_ref()
                .filter(|_| total)
                .map(|a| (a, s.added_per_round(t)))
        }
        let total = class == "*";
        let (ba, ca) = (added(self.base, bt, total), added(self.cand, ct, total));
        fn pair<'a>(
            x: &'a Option<(&'a Added, Vec<AddedPercentiles>)>,
        ) -> Option<(&'a Added, &'a [AddedPercentiles])> {
            x.as_ref().map(|(a, r)| (*a, r.as_slice()))
        }
        let cm: BTreeMap<String, Metric> = metrics(cc, pair(&ca))
            .into_iter()
            .map(|m| (m.name.clone(), m))
            .collect();
        let mut rows = Vec::new();
        for m in metrics(bc, pair(&ba)) {
            let Some(cmetric) = cm.get(&m.name) else {
                continue;
            };
            // The machines' own resolution (calibration) is a floor under
            // the noise of latency figures.
            let noise = m
                .noise()
                .max(cmetric.noise())
                .max(resolution(self.base, &m.name))
                .max(resolution(self.cand, &m.name));
            let (threshold, limit) = if gated {
                self.rules(&ct.name, &m.name)
            } else {
                (None, None)
            };
            let change = if self.paired && m.per_round.len() == cmetric.per_round.len() {
                let diffs: Vec<f64> = (m.per_round.iter().zip(&cmetric.per_round))
                    .map(|(b, c)| c - b)
                    .collect();
                paired(&diffs)
            } else {
                two_sample(&m.per_round, &cmetric.per_round)
            };
            rows.push(Row::judged(
                (&ct.name, class, &m.name, m.unit),
                Judged {
                    base: m.value,
                    cand: cmetric.value,
                    noise,
                    bigger_is_better: m.bigger_is_better,
                    threshold,
                    threshold_is_absolute: m.name == "errors",
                    limit,
                    change,
                },
            ));
        }
        rows
    }
}

mod drift;
mod render;
mod verdict;

pub use drift::{Drift, drift};
pub use render::{fmt_value, render_markdown, render_text, shown};
pub use verdict::{Judged, Row, Verdict};

#[cfg(test)]
mod tests;
