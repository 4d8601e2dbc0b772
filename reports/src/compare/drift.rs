//! Two runs made one after the other meet two states of the machine: the
//! baseline (direct) target present in both measures how far it moved.

use super::render::signed_value;
use super::verdict::{Row, Verdict};
use crate::interval::{Interval, two_sample};
use crate::summary::{Summary, TargetResult};

/// How far the machine moved between two runs, as the baseline (direct)
/// target present in both shows it: the change of its `latency.p50`.
#[derive(Debug, Clone, PartialEq)]
pub struct Drift {
    pub target: String,
    pub change: Interval,
}

/// The drift between two runs, where both have the same baseline target
/// with at least 2 rounds. `latency.*` changes of the other targets include
/// it; `added.*` changes do not (each run subtracts its own baseline).
pub fn drift(base: &Summary, cand: &Summary) -> Option<Drift> {
    let bt = base.targets.iter().find(|t| t.baseline)?;
    let ct = cand
        .targets
        .iter()
        .find(|t| t.baseline && t.name == bt.name)?;
    // The per-round latency.p50 that compare itself judges by.
    let p50 = |t: &TargetResult| -> Vec<f64> {
        crate::metric::metrics(&t.total, None)
            .into_iter()
            .find(|m| m.name == "latency.p50")
            .map(|m| m.per_round)
            .unwrap_or_default()
    };
    Some(Drift {
        target: bt.name.clone(),
        change: two_sample(&p50(bt), &p50(ct))?,
    })
}

impl Drift {
    /// Whether the machine moved significantly (the interval excludes 0).
    pub fn significant(&self) -> bool {
        !self.change.contains(0.0)
    }

    /// The rows whose change the drift could explain: a gated `latency.*`
    /// row of another target whose change is no larger than a significant
    /// drift.
    pub fn rows_it_outweighs<'r>(&self, rows: &'r [Row]) -> Vec<&'r Row> {
        if !self.significant() {
            return Vec::new();
        }
        rows.iter()
            .filter(|r| {
                r.target != self.target
                    && r.metric.starts_with("latency.")
                    && r.verdict != Verdict::Info
                    && r.change_interval
                        .is_some_and(|c| c.mean.abs() <= self.change.mean.abs())
            })
            .collect()
    }

    /// One line for the terminal and the Markdown.
    pub fn describe(&self) -> String {
        let c = &self.change;
        format!(
            "drift: the baseline target `{}` moved latency.p50 by {} between the runs (95 % CI {}..{}, n={} rounds){}",
            self.target,
            signed_value(c.mean, "ns"),
            signed_value(c.lo, "ns"),
            signed_value(c.hi, "ns"),
            c.n,
            if self.significant() {
                ": the machine changed; latency.* changes include that, added.* ones subtract it"
            } else {
                ": within noise"
            }
        )
    }
}
