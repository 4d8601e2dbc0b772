//! One compared figure and its verdict: the rule that judges a change by
//! its interval (or, without rounds, by the threshold and the noise).

use crate::interval::Interval;

/// One metric of one target (and class) in both runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub target: String,
    /// `*` for the target's total, else `request/phase`.
    pub class: String,
    /// e.g. `latency.p99`.
    pub metric: String,
    pub base: f64,
    pub cand: f64,
    /// Round-to-round spread, same unit.
    pub noise: f64,
    /// `ns`, `req/s` or `%`.
    pub unit: &'static str,
    pub bigger_is_better: bool,
    /// The regression threshold (percent) that applied, if any.
    pub threshold: Option<f64>,
    /// The absolute limit on the candidate that applied, if any.
    pub limit: Option<f64>,
    /// The 95 % confidence interval of `cand − base` from the rounds, where
    /// both sides have at least 2: paired per-round differences for two
    /// targets of one run, Mann–Whitney (Welch below 5 rounds a side) for
    /// two runs.
    pub change_interval: Option<Interval>,
    /// For an inconclusive verdict: about how many rounds per run would
    /// likely settle it, at the spread seen.
    pub rounds_needed: Option<u32>,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not gated.
    Info,
    Ok,
    /// Worse than the threshold but within the noise across rounds (a
    /// metric without rounds to put an interval on).
    WithinNoise,
    /// The change's interval straddles the allowed change: more rounds
    /// would tell (see `rounds_needed`).
    Inconclusive,
    Regression,
    /// Over an absolute `--max` limit.
    OverLimit,
}

impl Verdict {
    pub fn failed(self) -> bool {
        matches!(self, Verdict::Regression | Verdict::OverLimit)
    }

    pub(super) fn word(self) -> &'static str {
        match self {
            Verdict::Info => "",
            Verdict::Ok => "ok",
            Verdict::WithinNoise => "within noise",
            Verdict::Inconclusive => "inconclusive",
            Verdict::Regression => "REGRESSION",
            Verdict::OverLimit => "OVER LIMIT",
        }
    }
}

/// One metric's numbers and the rules that apply to it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judged {
    pub base: f64,
    pub cand: f64,
    /// The larger round-to-round spread of the two runs.
    pub noise: f64,
    pub bigger_is_better: bool,
    /// The regression threshold: percent of `base`, or (when absolute) in
    /// the metric's own unit (the error rate's percentage points).
    pub threshold: Option<f64>,
    pub threshold_is_absolute: bool,
    /// An absolute upper limit on the candidate.
    pub limit: Option<f64>,
    /// The interval of `cand − base`, where rounds give one.
    pub change: Option<Interval>,
}

impl Verdict {
    /// The gate: over a limit fails. With an interval on the change: a
    /// regression when all of it is worse than the threshold allows, ok when
    /// all of it is within, inconclusive when it straddles. Without one: a
    /// change worse than the threshold fails only if it is also worse than
    /// the noise. No rule, no verdict.
    pub fn of(j: Judged) -> Verdict {
        let worse = if j.bigger_is_better {
            j.base - j.cand
        } else {
            j.cand - j.base
        };
        if j.limit.is_some_and(|l| j.cand > l) {
            return Verdict::OverLimit;
        }
        let Some(t) = j.threshold else {
            return if j.limit.is_some() {
                Verdict::Ok
            } else {
                Verdict::Info
            };
        };
        let allowed = j.allowed(t);
        if let Some(i) = j.worse_interval() {
            return if i.0 > allowed {
                Verdict::Regression
            } else if i.1 <= allowed {
                Verdict::Ok
            } else {
                Verdict::Inconclusive
            };
        }
        if worse <= allowed {
            Verdict::Ok
        } else if worse <= j.noise {
            Verdict::WithinNoise
        } else {
            Verdict::Regression
        }
    }
}

impl Judged {
    /// The change threshold `t` allows, in the metric's unit.
    fn allowed(&self, t: f64) -> f64 {
        if self.threshold_is_absolute {
            t
        } else {
            t / 100.0 * self.base.abs()
        }
    }

    /// The change's interval in the direction that is worse (lo, hi).
    fn worse_interval(&self) -> Option<(f64, f64)> {
        let i = self.change.as_ref()?;
        Some(if self.bigger_is_better {
            (-i.hi, -i.lo)
        } else {
            (i.lo, i.hi)
        })
    }

    /// For an inconclusive change: about how many rounds per run would make
    /// the interval clear the allowed change, at the spread seen.
    pub(super) fn rounds_needed(&self) -> Option<u32> {
        let (t, i) = (self.threshold?, self.change.as_ref()?);
        let (lo, hi) = self.worse_interval()?;
        let gap = ((lo + hi) / 2.0 - self.allowed(t)).abs();
        i.rounds_for(gap).map(|n| n.max(i.n + 1))
    }
}

impl Row {
    /// A row of (target, class, metric, unit) with `j`'s figures and verdict.
    pub(super) fn judged(
        (target, class, metric, unit): (&str, &str, &str, &'static str),
        j: Judged,
    ) -> Row {
        Row {
            target: target.to_owned(),
            class: class.to_owned(),
            metric: metric.to_owned(),
            base: j.base,
            cand: j.cand,
            noise: j.noise,
            unit,
            bigger_is_better: j.bigger_is_better,
            threshold: j.threshold,
            limit: j.limit,
            change_interval: j.change,
            rounds_needed: j.rounds_needed(),
            verdict: Verdict::of(j),
        }
    }
}
