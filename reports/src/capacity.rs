//! `loadgen capacity`: the highest arrival rate at which each target meets
//! an SLO, found by a search of short open-loop steps (`summary.json` →
//! `capacity`), and every step's figures (the latency-vs-rate curve).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::interval::Interval;
use crate::percentiles::Percentiles;

/// The search and its result per target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Capacity {
    /// The SLO terms, as given (`added.p99<=2ms`, `errors<=0.1%`).
    pub slo: Vec<String>,
    /// The rule a step passes by, in words.
    pub rule: String,
    /// The search stops when the highest passing and lowest failing rates
    /// are within this fraction of each other.
    pub precision: f64,
    /// Recorded seconds per step and round (after the warm-up).
    pub step_s: f64,
    /// Rounds a step starts with.
    pub rounds: u32,
    /// Rounds an undecided step may grow to (doubling from `rounds`).
    #[serde(default)]
    pub max_rounds: u32,
    pub targets: Vec<TargetCapacity>,
}

/// One target's search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TargetCapacity {
    pub target: String,
    /// The baseline each step interleaved (for `added.*` terms).
    pub baseline: Option<String>,
    /// The highest rate that met the SLO (None: not even the lowest tried).
    pub capacity_rps: Option<f64>,
    /// What ended the search: `precision` (bracketed), `max` (the highest
    /// rate allowed passed), `min` (the lowest failed), `generator` (the
    /// generator itself was the limit: then `capacity_rps` is a lower
    /// bound, not the target's capacity), `interrupted` (Ctrl-C; the step
    /// it cut short is kept, partial).
    pub ended_by: String,
    /// The same in words.
    pub note: String,
    /// The knee of the latency-vs-rate curve: the highest valid rate
    /// before latency p99 first more than doubles from one rate tried to
    /// the next higher one (None without one).
    #[serde(default)]
    pub knee_rps: Option<f64>,
    /// Every step, in the order run.
    pub steps: Vec<CapacityStep>,
}

/// One step of a search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CapacityStep {
    pub rate: f64,
    pub passed: bool,
    /// False when the generator was the limit (the run's verdict).
    pub valid: bool,
    pub achieved_rps: f64,
    /// The target's corrected latency over the step's rounds.
    pub latency: Percentiles,
    /// Added over the baseline at p50 and p99 (with a baseline), ns.
    pub added_p50: Option<i64>,
    pub added_p99: Option<i64>,
    /// Errors, unexpected statuses, drops and unfinished requests, % of scheduled.
    pub errors_percent: f64,
    /// The SLO terms the step broke, with the value (empty when it passed);
    /// in an inconclusive step, the terms still undecided.
    pub broke: Vec<String>,
    /// The rounds the step ran (it starts with the search's `rounds` and
    /// doubles while a term is undecided).
    #[serde(default)]
    pub rounds: u32,
    /// Still undecided at `max_rounds`: counted as not passing.
    #[serde(default)]
    pub inconclusive: bool,
    /// Each SLO term: its estimate, interval and decision.
    #[serde(default)]
    pub terms: Vec<StepTerm>,
    /// The step's results directory, relative to the capacity run's.
    pub dir: String,
}

/// One SLO term in one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StepTerm {
    /// As given, e.g. `added.p99<=2ms`.
    pub term: String,
    /// The estimate (ns; % for errors): the interval's centre, or the
    /// step's value when there is no interval.
    pub value: f64,
    /// The 95 % interval over the step's rounds (latency: of the per-round
    /// value; added: of the per-round difference); None for errors and
    /// for a step of one round.
    pub interval: Option<Interval>,
    pub decision: Decision,
}

/// How a term fared in a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Within its limit with confidence (the whole interval).
    Holds,
    /// Beyond its limit with confidence.
    Breaks,
    /// The interval straddles the limit: more rounds may settle it.
    Undecided,
}

impl Decision {
    /// A term with `limit` whose step measured `interval` (or, without one,
    /// the single `value`: errors over the whole step, a one-round step).
    pub fn of(limit: f64, interval: Option<&Interval>, value: f64) -> Decision {
        match interval {
            Some(i) if i.hi <= limit => Decision::Holds,
            Some(i) if i.lo > limit => Decision::Breaks,
            Some(_) => Decision::Undecided,
            None if value <= limit => Decision::Holds,
            None => Decision::Breaks,
        }
    }
}

/// The rule `loadgen capacity` applies, stated once.
pub const RULE: &str = "a step passes when the run is valid and each latency or added term holds \
     with 95 % confidence over the step's rounds (its interval within the limit; added: the \
     target's percentile minus the baseline's in the same round) and the error term holds over \
     the whole step; it fails when a term breaks with confidence or errors exceed their limit; \
     a step still undecided gets more rounds (doubling up to max rounds), and counts as not \
     passing, marked inconclusive, when they do not settle it";

impl CapacityStep {
    /// The step's verdict in a fixed width: `pass`, `FAIL`, `INCONCL`
    /// (undecided at the most rounds), `GENERATOR` (the run was invalid).
    pub fn verdict(&self) -> &'static str {
        if !self.valid {
            "GENERATOR"
        } else if self.passed {
            "pass     "
        } else if self.inconclusive {
            "INCONCL  "
        } else {
            "FAIL     "
        }
    }
}

impl TargetCapacity {
    /// The knee: the last step before latency p99 first more than doubles
    /// from one passing rate to the next higher one (None without one).
    pub fn knee(&self) -> Option<f64> {
        let mut steps: Vec<&CapacityStep> = self.steps.iter().filter(|s| s.valid).collect();
        steps.sort_by(|a, b| a.rate.total_cmp(&b.rate));
        steps
            .windows(2)
            .find(|w| w[1].latency.p99 > 2 * w[0].latency.p99.max(1))
            .map(|w| w[0].rate)
    }
}

/// The terminal's capacity table.
pub fn render_text(c: &Capacity) -> String {
    let mut s = format!(
        "Capacity under {} ({} rounds, up to {}, × {:.0} s per step; {})\n",
        c.slo.join(", "),
        c.rounds,
        c.max_rounds.max(c.rounds),
        c.step_s,
        RULE
    );
    for t in &c.targets {
        s.push_str(&format!(
            "  {}{}: {}\n",
            t.target,
            t.baseline
                .as_deref()
                .map_or(String::new(), |b| format!(" (over {b})")),
            t.note
        ));
        if let Some(k) = t.knee_rps {
            s.push_str(&format!(
                "    knee: p99 more than doubled above {k:.0} req/s\n"
            ));
        }
        for st in &t.steps {
            let added = match (st.added_p50, st.added_p99) {
                (Some(a), Some(b)) => format!(
                    "  added p50 {} p99 {}",
                    crate::fmt_signed_ns(a),
                    crate::fmt_signed_ns(b)
                ),
                _ => String::new(),
            };
            s.push_str(&format!(
                "    {:>9.0} req/s  {}  n={:<2}  achieved {:.0}  p50 {} p99 {}{added}  errors {:.2}%{}\n",
                st.rate,
                st.verdict(),
                st.rounds,
                st.achieved_rps,
                crate::fmt_ns(st.latency.p50),
                crate::fmt_ns(st.latency.p99),
                st.errors_percent,
                match (st.broke.is_empty(), st.inconclusive) {
                    (true, _) => String::new(),
                    (false, true) => format!("  undecided: {}", st.broke.join(", ")),
                    (false, false) => format!("  broke: {}", st.broke.join(", ")),
                }
            ));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interval::Method;

    fn i(lo: f64, hi: f64) -> Interval {
        Interval {
            mean: (lo + hi) / 2.0,
            lo,
            hi,
            n: 3,
            method: Method::T,
        }
    }

    #[test]
    fn a_term_is_decided_only_when_its_interval_is_on_one_side() {
        assert_eq!(
            Decision::of(10.0, Some(&i(2.0, 10.0)), 6.0),
            Decision::Holds
        );
        assert_eq!(
            Decision::of(10.0, Some(&i(10.5, 12.0)), 11.0),
            Decision::Breaks
        );
        assert_eq!(
            Decision::of(10.0, Some(&i(8.0, 12.0)), 9.0),
            Decision::Undecided
        );
        // Without an interval the value decides (errors, one round).
        assert_eq!(Decision::of(10.0, None, 10.0), Decision::Holds);
        assert_eq!(Decision::of(10.0, None, 10.1), Decision::Breaks);
    }
}
