//! The figures of one request class that compare and the exports read: each
//! with its unit, its direction and its per-round range.

use crate::percentiles::{PERCENTILES, Percentiles};
use crate::summary::ClassResult;

/// One metric of one class, with its per-round range.
pub(crate) struct Metric {
    pub(crate) name: String,
    pub(crate) value: f64,
    /// Smallest and largest per-round value, where rounds are known.
    pub(crate) rounds: Option<(f64, f64)>,
    pub(crate) unit: &'static str,
    pub(crate) bigger_is_better: bool,
}

impl Metric {
    pub(crate) fn noise(&self) -> f64 {
        self.rounds.map_or(0.0, |(lo, hi)| hi - lo)
    }
}

/// The metrics of one class (and its added latency, for a target's total).
pub(crate) fn metrics(c: &ClassResult, added: Option<&crate::summary::Added>) -> Vec<Metric> {
    let mut out = Vec::new();
    let ns = |name: String, value: f64, rounds| Metric {
        name,
        value,
        rounds,
        unit: "ns",
        bigger_is_better: false,
    };
    for q in PERCENTILES.iter().copied().chain(["max"]) {
        let pick = |p: &Percentiles| p.at(q).unwrap_or(0) as f64;
        let rounds = c.rounds.iter().filter(|r| r.count > 0).map(pick).fold(
            None,
            |acc: Option<(f64, f64)>, v| {
                Some(acc.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))))
            },
        );
        out.push(ns(format!("latency.{q}"), pick(&c.latency), rounds));
        out.push(ns(format!("service.{q}"), pick(&c.service_time), None));
    }
    if let Some(a) = added {
        for q in PERCENTILES {
            let pick = |p: &crate::summary::AddedPercentiles| p.at(q).unwrap_or(0) as f64;
            out.push(ns(
                format!("added.{q}"),
                pick(&a.total),
                Some((pick(&a.rounds_min), pick(&a.rounds_max))),
            ));
        }
    }
    out.push(Metric {
        name: "rps".into(),
        value: c.achieved_rps,
        rounds: None,
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
        unit: "%",
        bigger_is_better: false,
    });
    out
}
