//! The comparison as tables: plain text for the terminal, Markdown for a
//! pull request or `$GITHUB_STEP_SUMMARY`.

use std::fmt::Write as _;

use super::verdict::{Row, Verdict};

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

pub(super) fn signed_value(v: f64, unit: &str) -> String {
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
