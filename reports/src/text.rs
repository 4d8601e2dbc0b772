//! The terminal summary of a run: per target, corrected and uncorrected
//! percentiles side by side, the timing breakdown, what each gateway adds,
//! the machine's noise and the verdict.

use std::fmt::Write as _;

use crate::summary::{Added, ClassResult, Percentiles, Summary, TargetResult};
use crate::{fmt_ns, fmt_signed_ns};

/// The terminal summary: per target, corrected and uncorrected percentiles side by side.
pub fn render(summary: &Summary) -> String {
    let mut s = String::new();
    if let Some(a) = &summary.auth {
        let _ = writeln!(
            s,
            "Tokens: {} source, profile {}, {} consumers, classes {}; {} signed, signing p50 {} p99 {}",
            a.source,
            a.profile,
            a.consumers,
            a.classes.join(", "),
            a.tokens_signed,
            fmt_ns(a.signing.p50),
            fmt_ns(a.signing.p99)
        );
        if a.signer_behind > 0 {
            let _ = writeln!(
                s,
                "  WARNING: the per-request signer fell behind {} times; those sends waited (see send lag)",
                a.signer_behind
            );
        }
        if a.signed_on_send_path > 0 {
            let _ = writeln!(
                s,
                "  WARNING: {} pool tokens were re-signed on the send path (refresh was late)",
                a.signed_on_send_path
            );
        }
    }
    for t in &summary.targets {
        s.push_str(&target_text(summary, t));
        s.push('\n');
    }
    s.push_str(&crate::events::render_text(&summary.events));
    if !summary.events.is_empty() {
        s.push('\n');
    }
    if let Some(c) = &summary.calibration {
        s.push_str(&c.render_text());
    }
    // Not reached: said among the warnings below.
    if let Some(p) = summary.precision.as_ref().filter(|p| p.reached) {
        let _ = writeln!(s, "{}", p.describe());
    }
    let h = &summary.health;
    let _ = writeln!(
        s,
        "Machine: 1 ms sleeps woke late by p50 {} p99 {} max {}; other processes used {:.0}% of a core, loadgen {:.0}%",
        fmt_ns(h.hiccup.p50),
        fmt_ns(h.hiccup.p99),
        fmt_ns(h.hiccup.max),
        h.other_cpu_percent,
        h.loadgen_cpu_percent
    );
    for w in &summary.warnings {
        let _ = writeln!(s, "\nWARNING: {w}");
    }
    if !summary.target_faults.is_empty() {
        let _ = writeln!(
            s,
            "\nTARGET FAULTS (measured as they happened; the generator kept its schedule):"
        );
        for r in &summary.target_faults {
            let _ = writeln!(s, "  {r}");
        }
    }
    if !summary.valid {
        let _ = writeln!(
            s,
            "\n!!! INVALID RUN: these numbers describe the generator or the run, not the target:"
        );
        for r in &summary.invalid_reasons {
            let _ = writeln!(s, "!!!   {r}");
        }
    }
    s
}

/// One target's block.
fn target_text(summary: &Summary, t: &TargetResult) -> String {
    let mut s = String::new();
    let c = &t.total;
    let base = if t.baseline { ", baseline" } else { "" };
    let _ = writeln!(
        s,
        "Target {} ({}{base}, {}, {} connections)",
        t.name,
        t.urls.join(" "),
        t.http,
        t.connections
    );
    let rate = match c.target_rps {
        Some(want) => format!("{:.1} req/s of {want:.1} scheduled", c.achieved_rps),
        None => format!("{:.1} req/s (closed loop)", c.achieved_rps),
    };
    let _ = writeln!(s, "  {} requests, {rate}", c.counts.completed);
    s.push_str(&percentile_table(c));
    if let Some(o) = &c.outside_upstream {
        let _ = writeln!(
            s,
            "  outside upstream (service time − Server-Timing): p50 {}  p99 {}",
            fmt_ns(o.p50),
            fmt_ns(o.p99)
        );
    }
    if let Some(b) = &c.breakdown {
        s.push_str(&breakdown_text(b, t.added.as_ref()));
    }
    let k = &c.counts;
    let _ = writeln!(
        s,
        "  ok {}  unexpected status {}  errors {}  dropped {}  unfinished {}  late sends {}  waited for a connection {}",
        k.ok, k.unexpected, k.errors, k.dropped, k.unfinished, k.late, k.waited
    );
    if let Some(a) = &t.added {
        s.push_str(&added_line(summary, a));
    }
    if !c.errors.is_empty() {
        let list: Vec<String> = c.errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(s, "  errors by class: {}", list.join(", "));
    }
    s
}

/// Corrected and uncorrected percentiles side by side.
fn percentile_table(c: &ClassResult) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "  {:>9}  {:>10}  {:>12}  {:>10}  {:>10}",
        "", "latency", "service time", "sched lag", "conn wait"
    );
    let _ = writeln!(
        s,
        "  {:>9}  {:>10}  {:>12}  {:>10}  {:>10}",
        "", "(corrected)", "(uncorrected)", "(loadgen)", "(target)"
    );
    type Pick = fn(&Percentiles) -> u64;
    let rows: [(&str, Pick); 7] = [
        ("50.000%", |p| p.p50),
        ("75.000%", |p| p.p75),
        ("90.000%", |p| p.p90),
        ("99.000%", |p| p.p99),
        ("99.900%", |p| p.p99_9),
        ("99.990%", |p| p.p99_99),
        ("100.000%", |p| p.max),
    ];
    for (label, f) in rows {
        let _ = writeln!(
            s,
            "  {label:>9}  {:>10}  {:>12}  {:>10}  {:>10}",
            fmt_ns(f(&c.latency)),
            fmt_ns(f(&c.service_time)),
            fmt_ns(f(&c.schedule_lag)),
            fmt_ns(f(&c.connection_wait))
        );
    }
    s
}

/// What a gateway adds over its baseline; a figure this machine cannot
/// tell from 0 (calibration) is marked.
fn added_line(summary: &Summary, a: &Added) -> String {
    let mut s = String::new();
    let interval = |p: &str| a.interval.as_ref().and_then(|i| i.at(p));
    let signed = |p: &str, v: i64| match &summary.calibration {
        Some(c) if c.within_noise(p, v, interval(p)) => {
            format!("{} (within noise)", fmt_signed_ns(v))
        }
        _ => fmt_signed_ns(v),
    };
    let _ = writeln!(
        s,
        "  added over {} (corrected): p50 {}  p90 {}  p99 {}  p99.9 {}   (p50 per round {} .. {}){}",
        a.baseline,
        signed("p50", a.total.p50),
        signed("p90", a.total.p90),
        signed("p99", a.total.p99),
        signed("p99.9", a.total.p99_9),
        fmt_signed_ns(a.rounds_min.p50),
        fmt_signed_ns(a.rounds_max.p50),
        if a.valid { "" } else { "  INVALID" }
    );
    if let Some(i) = &a.interval {
        let _ = writeln!(
            s,
            "  95% CI of the mean per round (n={} rounds, {}): p50 {}  p90 {}  p99 {}  p99.9 {}",
            i.p50.n,
            i.p50.method,
            fmt_interval(&i.p50),
            fmt_interval(&i.p90),
            fmt_interval(&i.p99),
            fmt_interval(&i.p99_9),
        );
    }
    s
}

/// `+55us..+71us`: an interval of nanoseconds.
pub fn fmt_interval(i: &crate::interval::Interval) -> String {
    format!(
        "{}..{}",
        fmt_signed_ns(i.lo.round() as i64),
        fmt_signed_ns(i.hi.round() as i64)
    )
}

/// The compact timing-breakdown block of one target: each phase's p50 and
/// p90, and what it adds over the baseline's at p50.
fn breakdown_text(b: &crate::summary::Breakdown, added: Option<&crate::summary::Added>) -> String {
    let mut s = String::new();
    let phases = [
        ("dns", b.dns.as_ref()),
        ("connect", b.connect.as_ref()),
        ("tls", b.tls.as_ref()),
        ("sending", b.sending.as_ref()),
        ("waiting", Some(&b.waiting)),
        ("receiving", Some(&b.receiving)),
    ];
    let cells: Vec<String> = phases
        .iter()
        .filter_map(|(name, p)| p.map(|p| format!("{name} {} / {}", fmt_ns(p.p50), fmt_ns(p.p90))))
        .collect();
    let _ = writeln!(
        s,
        "  breakdown p50 / p90: {}   (opened a connection: {} of {})",
        cells.join("  "),
        b.opened,
        b.waiting.count
    );
    for at in &b.at {
        let parts: Vec<String> = at
            .phases()
            .iter()
            .filter(|(_, v)| *v > 0)
            .map(|(name, v)| format!("{name} {}", fmt_ns(*v)))
            .collect();
        let _ = writeln!(
            s,
            "  the {} requests ({}, {} of them): {}",
            at.percentile,
            fmt_ns(at.latency),
            at.requests,
            parts.join(" + ")
        );
    }
    if let Some(a) = added.filter(|a| !a.breakdown.is_empty()) {
        let cells: Vec<String> = a
            .breakdown
            .iter()
            .filter(|p| p.target_p50 > 0 || p.baseline_p50 > 0)
            .map(|p| format!("{} {}", p.phase, fmt_signed_ns(p.added_p50)))
            .collect();
        let _ = writeln!(
            s,
            "  added per phase over {}, at p50: {}",
            a.baseline,
            cells.join("  ")
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_wrk2() {
        assert_eq!(fmt_ns(123_000), "123us");
        assert_eq!(fmt_ns(849_000), "849us");
        assert_eq!(fmt_ns(850_000), "0.85ms");
        assert_eq!(fmt_ns(4_560_000), "4.56ms");
        assert_eq!(fmt_ns(1_200_000_000), "1.20s");
    }
}
