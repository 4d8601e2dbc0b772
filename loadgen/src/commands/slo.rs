//! How one capacity step meets one SLO term: the term's estimate over the
//! step's rounds, its 95 % interval (rounds are the unit, as everywhere in
//! gatebench), and whether the term holds, breaks or is still undecided.

use reports::capacity::{Decision, StepTerm};
use reports::interval::{self, Interval};
use reports::summary::TargetResult;

use crate::scenario::Term;

/// `term` in the step whose target result is `t`.
pub fn judge(term: &Term, t: &TargetResult) -> StepTerm {
    let (value, interval) = estimate(term, t);
    let decision = match value {
        Some(v) => Decision::of(term.limit, interval.as_ref(), v),
        None => Decision::Breaks,
    };
    StepTerm {
        term: term.text.clone(),
        value: value.unwrap_or(f64::NAN),
        interval,
        decision,
    }
}

/// The term with its value as the step's line shows it:
/// `latency.p99<=60ms (12.1ms, 95 % CI 10.2ms..14.0ms, n=3)`.
pub fn shown(term: &StepTerm) -> String {
    let added = term.term.starts_with("added.");
    let fmt = |ns: f64| {
        if added {
            reports::fmt_signed_ns(ns.round() as i64)
        } else {
            reports::fmt_ns(ns.max(0.0).round() as u64)
        }
    };
    match (&term.interval, term.term.starts_with("errors")) {
        _ if term.value.is_nan() => format!("{} (no value)", term.term),
        (_, true) => format!("{} ({:.3}%)", term.term, term.value),
        (Some(i), _) => format!(
            "{} ({}, 95 % CI {}..{}, n={})",
            term.term,
            fmt(i.mean),
            fmt(i.lo),
            fmt(i.hi),
            i.n
        ),
        (None, _) => format!("{} ({}, one round)", term.term, fmt(term.value)),
    }
}

/// The estimate and, with 2 rounds or more, its interval. Latency: the
/// interval of the mean per-round percentile. Added: the paired interval of
/// the per-round differences the summary carries. Errors: the step's
/// percentage (a count over the whole step, no interval).
fn estimate(term: &Term, t: &TargetResult) -> (Option<f64>, Option<Interval>) {
    let q = term.metric.split_once('.').map(|(_, q)| q);
    match (term.metric.split('.').next(), q) {
        (Some("latency"), Some(q)) => {
            let per_round: Vec<f64> = t
                .total
                .rounds
                .iter()
                .filter(|r| r.count > 0)
                .filter_map(|r| r.at(q))
                .map(|v| v as f64)
                .collect();
            match interval::paired(&per_round) {
                Some(i) => (Some(i.mean), Some(i)),
                None => (t.total.latency.at(q).map(|v| v as f64), None),
            }
        }
        (Some("added"), Some(q)) => {
            let Some(a) = t.added.as_ref() else {
                return (None, None);
            };
            match a.interval.as_ref().and_then(|i| i.at(q)) {
                Some(i) => (Some(i.mean), Some(*i)),
                None => (a.total.at(q).map(|v| v as f64), None),
            }
        }
        _ => (Some(errors_percent(t)), None),
    }
}

/// Errors, unexpected statuses, drops and unfinished requests, % of scheduled.
pub fn errors_percent(t: &TargetResult) -> f64 {
    let k = &t.total.counts;
    let failed = (k.errors + k.unexpected + k.dropped + k.unfinished) as f64;
    100.0 * failed / k.scheduled.max(1) as f64
}
