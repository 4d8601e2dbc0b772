//! Comparing for CI: the same metrics of a baseline and a candidate, per
//! target (and per request class), judged by the interval the rounds put on
//! each change. The two sides are either two runs (target by target, Welch's
//! t on their rounds) or two targets of one run ([`compare_within`]: two
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
use std::fmt::Write as _;

use crate::interval::{Interval, paired, welch};
use crate::metric::{Metric, metrics};
use crate::percentiles::PERCENTILES;
use crate::summary::{Added, AddedPercentiles, ClassResult, Summary, TargetResult};

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
    /// targets of one run, Welch's t for two runs.
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

    fn word(self) -> &'static str {
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
    fn rounds_needed(&self) -> Option<u32> {
        let (t, i) = (self.threshold?, self.change.as_ref()?);
        let (lo, hi) = self.worse_interval()?;
        let gap = ((lo + hi) / 2.0 - self.allowed(t)).abs();
        i.rounds_for(gap).map(|n| n.max(i.n + 1))
    }
}

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
    c.resolution
        .at(p)
        .unwrap_or(c.resolution.p99)
        .unsigned_abs() as f64
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
    let p50 = |t: &TargetResult| -> Vec<f64> {
        t.total
            .rounds
            .iter()
            .filter(|r| r.count > 0)
            .map(|r| r.p50 as f64)
            .collect()
    };
    Some(Drift {
        target: bt.name.clone(),
        change: welch(&p50(bt), &p50(ct))?,
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
                welch(&m.per_round, &cmetric.per_round)
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

impl Row {
    /// A row of (target, class, metric, unit) with `j`'s figures and verdict.
    fn judged((target, class, metric, unit): (&str, &str, &str, &'static str), j: Judged) -> Row {
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

/// A metric value in its unit (`1.23ms`, `2000`, `0.10%`).
pub fn fmt_value(v: f64, unit: &str) -> String {
    match unit {
        "ns" if v < 0.0 => format!("-{}", crate::fmt_ns(v.abs() as u64)),
        "ns" => crate::fmt_ns(v as u64),
        "%" => format!("{v:.2}%"),
        _ => format!("{v:.0}"),
    }
}

fn change(r: &Row) -> String {
    if r.base == 0.0 {
        return if r.cand == 0.0 {
            "0%".into()
        } else {
            "new".into()
        };
    }
    format!("{:+.1}%", 100.0 * (r.cand - r.base) / r.base.abs())
}

/// The rows worth showing: gated ones, and anything that failed.
pub fn shown(rows: &[Row]) -> impl Iterator<Item = &Row> {
    rows.iter().filter(|r| r.verdict != Verdict::Info)
}

/// A row's cells, in the column order of both tables.
fn cells(r: &Row) -> [String; 10] {
    [
        r.target.clone(),
        r.class.clone(),
        r.metric.clone(),
        fmt_value(r.base, r.unit),
        fmt_value(r.cand, r.unit),
        change(r),
        interval_cell(r),
        fmt_value(r.noise, r.unit),
        allowed(r),
        match (r.verdict, r.rounds_needed) {
            (Verdict::Inconclusive, Some(n)) => format!("inconclusive (~{n} rounds)"),
            (v, _) => v.word().to_owned(),
        },
    ]
}

/// The change's 95 % interval and the rounds it rests on, `–` without one.
fn interval_cell(r: &Row) -> String {
    match &r.change_interval {
        Some(i) => format!(
            "{}..{} (n={})",
            signed_value(i.lo, r.unit),
            signed_value(i.hi, r.unit),
            i.n
        ),
        None => "–".into(),
    }
}

fn signed_value(v: f64, unit: &str) -> String {
    let sign = if v < 0.0 { "-" } else { "+" };
    format!("{sign}{}", fmt_value(v.abs(), unit))
}

/// A plain-text table for the terminal.
pub fn render_text(rows: &[Row]) -> String {
    let line = |c: &[String; 10]| {
        format!(
            "{:<16} {:<22} {:<14} {:>10} {:>10} {:>9} {:>26} {:>10} {:>9}  {}\n",
            c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9]
        )
    };
    let head = [
        "target",
        "class",
        "metric",
        "base",
        "cand",
        "change",
        "change 95% CI (rounds)",
        "noise",
        "allowed",
        "verdict",
    ]
    .map(String::from);
    let mut out = line(&head);
    for r in shown(rows) {
        out.push_str(&line(&cells(r)));
    }
    out
}

fn allowed(r: &Row) -> String {
    match (r.threshold, r.limit) {
        (_, Some(l)) if r.verdict == Verdict::OverLimit => format!("≤{}", fmt_value(l, r.unit)),
        (Some(t), _) if r.metric == "errors" => format!("+{t}pp"),
        (Some(t), _) => format!("{t}%"),
        (None, Some(l)) => format!("≤{}", fmt_value(l, r.unit)),
        (None, None) => String::new(),
    }
}

/// A Markdown table for a PR comment or `$GITHUB_STEP_SUMMARY`.
pub fn render_markdown(rows: &[Row], base: &str, cand: &str) -> String {
    let failed: Vec<&Row> = rows.iter().filter(|r| r.verdict.failed()).collect();
    let mut out = format!("## gatebench: `{cand}` vs `{base}`\n\n");
    let unsettled = rows
        .iter()
        .filter(|r| r.verdict == Verdict::Inconclusive)
        .count();
    if failed.is_empty() {
        out.push_str("No regression beyond the thresholds and the noise across rounds.\n\n");
    } else {
        let _ = writeln!(
            out,
            "**{} regression(s)**: {}\n",
            failed.len(),
            failed
                .iter()
                .map(|r| format!("`{}` {} {}", r.target, r.class, r.metric))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if unsettled > 0 {
        let _ = writeln!(
            out,
            "{unsettled} figure(s) inconclusive: their 95 % interval straddles the allowed change; more rounds would settle them.\n"
        );
    }
    out.push_str("| target | class | metric | base | candidate | change | change 95% CI (rounds) | noise | allowed | verdict |\n|---|---|---|---|---|---|---|---|---|---|\n");
    for r in shown(rows) {
        let mut c = cells(r);
        if r.verdict.failed() {
            c[9] = format!("**{}**", c[9]);
        }
        let _ = writeln!(out, "| {} |", c.join(" | "));
    }
    out
}

#[cfg(test)]
mod tests;
