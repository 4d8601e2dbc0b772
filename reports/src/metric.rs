//! The figures of one request class that compare and the exports read: each
//! with its unit, its direction and its per-round range.

use crate::percentiles::{PERCENTILES, Percentiles};
use crate::summary::{Added, AddedPercentiles, ClassResult};

/// One metric of one class, with its per-round range.
pub(crate) struct Metric {
    pub(crate) name: String,
    pub(crate) value: f64,
    /// Smallest and largest per-round value, where rounds are known.
    pub(crate) rounds: Option<(f64, f64)>,
    /// Each round's value, where rounds are known (the evidence a change
    /// between runs is judged by).
    pub(crate) per_round: Vec<f64>,
    pub(crate) unit: &'static str,
    pub(crate) bigger_is_better: bool,
}

impl Metric {
    pub(crate) fn noise(&self) -> f64 {
        self.rounds.map_or(0.0, |(lo, hi)| hi - lo)
    }
}

/// The metrics of one class (and, for a target's total, its added latency
/// with its per-round differences, empty where they are not known).
pub(crate) fn metrics(
    c: &ClassResult,
    added: Option<(&Added, &[AddedPercentiles])>,
) -> Vec<Metric> {
    let mut out = Vec::new();
    let ns = |name: String, value: f64, rounds, per_round| Metric {
        name,
        value,
        rounds,
        per_round,
        unit: "ns",
        bigger_is_better: false,
    };
    for q in PERCENTILES.iter().copied().chain(["max"]) {
        let pick = |p: &Percentiles| p.at(q).unwrap_or(0) as f64;
        let per_round: Vec<f64> = c.rounds.iter().filter(|r| r.count > 0).map(pick).collect();
        let rounds = range(&per_round);
        out.push(ns(
            format!("latency.{q}"),
            pick(&c.latency),
            rounds,
            per_round,
        ));
        out.push(ns(
            format!("service.{q}"),
            pick(&c.service_time),
            None,
            Vec::new(),
        ));
    }
    if let Some((a, per_round)) = added {
        for q in PERCENTILES {
            let pick = |p: &AddedPercentiles| p.at(q).unwrap_or(0) as f64;
            out.push(ns(
                format!("added.{q}"),
                pick(&a.total),
                Some((pick(&a.rounds_min), pick(&a.rounds_max))),
                per_round.iter().map(pick).collect(),
            ));
        }
    }
    out.push(Metric {
        name: "rps".into(),
        value: c.achieved_rps,
        rounds: None,
        per_round: Vec::new(),
        unit: "req/s",
        bigger_is_better: true,
    });
    let k = &c.counts;
    let failed = (k.errors + k.unexpected + k.dropped) as f64;
    let attempted = k.scheduled.max(k.completed + k.errors + k.dropped).max(1) as f64;
    out.push(Metric {
        name: "errors".into(),
        value: 100.0 * failed / attempted,
        rounds: None,
        per_round: Vec::new(),
        unit: "%",
        bigger_is_better: false,
    });
    out
}

/// The smallest and largest of `v`; None when empty.
fn range(v: &[f64]) -> Option<(f64, f64)> {
    v.iter().fold(None, |acc: Option<(f64, f64)>, &x| {
        Some(acc.map_or((x, x), |(lo, hi)| (lo.min(x), hi.max(x))))
    })
}
