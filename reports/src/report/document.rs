//! The report's content, section by section, as [`Block`]s.

use std::fmt::Write as _;

use super::blocks::Block;
use crate::charts::RunData;
use crate::percentiles::Percentiles;
use crate::{fmt_ns, fmt_signed_ns};

/// The runs a report covers.
struct Runs<'a> {
    all: &'a [RunData],
    /// Several runs overlaid: target names are prefixed with the run's label.
    several: bool,
}

impl Runs<'_> {
    fn name(&self, run: &RunData, t: &str) -> String {
        if self.several {
            format!("{}/{t}", run.label)
        } else {
            t.to_owned()
        }
    }
}

/// The report on `runs`: its sections in reading order.
pub(super) fn document(runs: &[RunData]) -> Vec<Block> {
    let runs = Runs {
        all: runs,
        several: runs.len() > 1,
    };
    let mut doc = Vec::new();
    for section in [header, added, latency, breakdown, over_time, statuses] {
        section(&runs, &mut doc);
    }
    doc
}

/// The title, and per run: where it ran, whether it is valid, the machine's noise.
fn header(runs: &Runs<'_>, doc: &mut Vec<Block>) {
    let title = if runs.several {
        format!(
            "gatebench report: {}",
            runs.all
                .iter()
                .map(|r| r.label.as_str())
                .collect::<Vec<_>>()
                .join(" vs ")
        )
    } else {
        format!("gatebench report: {}", runs.all[0].summary.scenario_name)
    };
    doc.push(Block::Heading(title));
    for run in runs.all {
        let s = &run.summary;
        let mut p = format!(
            "**{}**: {} on {} ({} CPUs, {}), {:.0} s",
            run.label,
            s.tool,
            s.environment.os,
            s.environment.cpus,
            s.environment.cpu_model.as_deref().unwrap_or("unknown CPU"),
            s.duration_s
        );
        if s.partial {
            p.push_str(", **PARTIAL (interrupted)**");
        }
        if s.valid {
            p.push_str(". Valid run.");
        } else {
            let _ = write!(
                p,
                ". **INVALID RUN**: {}. The numbers describe the run, not the targets.",
                s.invalid_reasons.join("; ")
            );
        }
        if !s.target_faults.is_empty() {
            let _ = write!(
                p,
                " **Target faults** (measured as they happened): {}.",
                s.target_faults.join("; ")
            );
        }
        for w in &s.warnings {
            let _ = write!(p, " Warning: {w}.");
        }
        let h = &s.health.hiccup;
        let _ = write!(
            p,
            " Machine noise: hiccup p99 {}, max {}; other processes used {:.0}% of a core.",
            fmt_ns(h.p99),
            fmt_ns(h.max),
            s.health.other_cpu_percent
        );
        doc.push(Block::Para(p));
    }
}

/// What each gateway adds over the baseline, with the machine's resolution.
fn added(runs: &Runs<'_>, doc: &mut Vec<Block>) {
    let mut added_rows = Vec::new();
    for run in runs.all {
        for t in &run.summary.targets {
            let Some(a) = &t.added else { continue };
            let mut row = vec![runs.name(run, &t.name), a.baseline.clone()];
            for (p, v) in [
                ("p50", a.total.p50),
                ("p90", a.total.p90),
                ("p99", a.total.p99),
                ("p99.9", a.total.p99_9),
            ] {
                let noise = run.summary.calibration.as_ref().is_some_and(|c| {
                    c.within_noise(p, v, a.interval.as_ref().and_then(|i| i.at(p)))
                });
                row.push(if noise {
                    format!("{} (within noise)", fmt_signed_ns(v))
                } else {
                    fmt_signed_ns(v)
                });
            }
            row.push(format!(
                "{} .. {}",
                fmt_signed_ns(a.rounds_min.p50),
                fmt_signed_ns(a.rounds_max.p50)
            ));
            row.push(a.interval.as_ref().map_or_else(
                || "– (one round)".into(),
                |i| format!("{} (n={})", crate::text::fmt_interval(&i.p50), i.p50.n),
            ));
            row.push(
                a.outside_upstream
                    .map_or_else(|| "–".into(), |o| fmt_ns(o.p50)),
            );
            row.push(if a.valid {
                "yes".into()
            } else {
                format!("**NO**: {}", a.invalid_reasons.join("; "))
            });
            added_rows.push(row);
        }
    }
    doc.push(Block::Heading("Added latency".into()));
    if added_rows.is_empty() {
        doc.push(Block::Para(
            "No gateway was measured against a baseline target (`baseline = true`).".into(),
        ));
    } else {
        doc.push(Block::Para(
            "Corrected latency of each gateway minus the baseline's at the same percentile, whole run; the p50 range is the smallest and largest per-round difference, and its 95 % confidence interval is that of the mean per-round difference, with the rounds it rests on (n). A row that is not valid is not a result.".into(),
        ));
        resolution_notes(runs, doc);
        doc.push(Block::Table(
            [
                "target",
                "over",
                "p50",
                "p90",
                "p99",
                "p99.9",
                "p50 over rounds",
                "p50 95 % CI",
                "outside upstream p50",
                "valid",
            ]
            .map(String::from)
            .to_vec(),
            added_rows,
        ));
        doc.push(Block::Image("added", "Added latency per gateway"));
    }
}

/// Each run's calibrated resolution, against which figures are marked
/// "within noise".
fn resolution_notes(runs: &Runs<'_>, doc: &mut Vec<Block>) {
    for run in runs.all {
        if let Some(p) = &run.summary.precision {
            doc.push(Block::Para(format!(
                "{}{}.",
                if runs.several {
                    format!("{}: ", run.label)
                } else {
                    String::new()
                },
                p.describe()
            )));
        }
        if let Some(c) = &run.summary.calibration {
            let r = &c.resolution;
            doc.push(Block::Para(format!(
                "{}This machine's resolution when the run began (`loadgen calibrate`: one mock measured as two targets in {} interleaved rounds; t(0.975, rounds) times the root mean square of the differences between the copies): p50 {}, p90 {}, p99 {}. The same per-round noise is the least spread the added intervals are computed with; a figure whose interval holds 0 (or, without one, that is within the resolution) is marked \"within noise\": the machine could have produced it from nothing.",
                if runs.several { format!("{}: ", run.label) } else { String::new() },
                c.rounds,
                fmt_ns(r.p50.unsigned_abs()),
                fmt_ns(r.p90.unsigned_abs()),
                fmt_ns(r.p99.unsigned_abs())
            )));
        }
    }
}

/// Counts, rates and latency percentiles per target.
fn latency(runs: &Runs<'_>, doc: &mut Vec<Block>) {
    doc.push(Block::Heading("Latency by target".into()));
    let mut rows = Vec::new();
    for run in runs.all {
        for t in &run.summary.targets {
            let c = &t.total.counts;
            let mut row = vec![
                runs.name(run, &t.name),
                c.completed.to_string(),
                c.ok.to_string(),
                (c.unexpected + c.errors + c.dropped).to_string(),
                format!("{:.0}", t.total.achieved_rps),
                t.total
                    .target_rps
                    .map_or_else(|| "closed loop".into(), |r| format!("{r:.0}")),
            ];
            row.extend(pct_cells(&t.total.latency));
            row.push(fmt_ns(t.total.service_time.p50));
            row.push(fmt_ns(t.total.schedule_lag.p90));
            row.push(fmt_ns(t.total.connection_wait.p99));
            rows.push(row);
        }
    }
    doc.push(Block::Table(
        [
            "target",
            "completed",
            "ok",
            "failed",
            "req/s",
            "scheduled req/s",
            "p50",
            "p90",
            "p99",
            "p99.9",
            "max",
            "service time p50",
            "schedule lag p90",
            "connection wait p99",
        ]
        .map(String::from)
        .to_vec(),
        rows,
    ));
    doc.push(Block::Image("spectrum", "Latency by percentile"));
}

/// The phases of the median request per target.
fn breakdown(runs: &Runs<'_>, doc: &mut Vec<Block>) {
    doc.push(Block::Heading("Where the time goes".into()));
    doc.push(Block::Para(crate::summary::BREAKDOWN_NOTE.into()));
    let mut rows = Vec::new();
    for run in runs.all {
        for t in &run.summary.targets {
            let Some(b) = &t.total.breakdown else {
                continue;
            };
            let Some(at) = b.at("p50") else { continue };
            let added: std::collections::BTreeMap<&str, i64> = t
                .added
                .iter()
                .flat_map(|a| a.breakdown.iter().map(|p| (p.phase.as_str(), p.added_p50)))
                .collect();
            let mut row = vec![
                runs.name(run, &t.name),
                format!("{} / {}", b.opened, b.waiting.count),
            ];
            for (phase, median) in at.phases() {
                let mut cell = fmt_ns(median);
                if let Some(d) = added.get(phase) {
                    let _ = write!(cell, " ({})", fmt_signed_ns(*d));
                }
                row.push(cell);
            }
            row.push(fmt_ns(t.total.latency.p50));
            rows.push(row);
        }
    }
    if rows.is_empty() {
        doc.push(Block::Para("No request got a response.".into()));
    } else {
        let mut headers = vec!["target".to_owned(), "opened / responded".to_owned()];
        headers.extend(crate::summary::BREAKDOWN_PHASES.map(String::from));
        headers.push("latency p50".into());
        doc.push(Block::Table(headers, rows));
        doc.push(Block::Image(
            "breakdown",
            "The phases of the median request, per target",
        ));
    }
}

/// The charts over time, and the events' tables.
fn over_time(runs: &Runs<'_>, doc: &mut Vec<Block>) {
    doc.push(Block::Heading("Over time".into()));
    if runs.several {
        doc.push(Block::Para(format!(
            "The charts over time show the first run, {}.",
            runs.all[0].label
        )));
    }
    doc.push(Block::Image("latency-over-time", "Latency per second"));
    doc.push(Block::Image(
        "rate-over-time",
        "Rate and failures per second",
    ));

    for run in runs.all.iter().filter(|r| !r.summary.events.is_empty()) {
        doc.push(Block::Heading(if runs.several {
            format!("Events: {}", run.label)
        } else {
            "Events".into()
        }));
        doc.push(Block::Para(crate::events::TABLE_NOTE.into()));
        let (headers, rows) = crate::events::table(&run.summary.events);
        doc.push(Block::Table(headers, rows));
    }
    if !runs.all[0].summary.events.is_empty() {
        doc.push(Block::Image(
            "events",
            "The affected consumer's responses around each event",
        ));
    }
}

/// Statuses and failures per target and request class.
fn statuses(runs: &Runs<'_>, doc: &mut Vec<Block>) {
    doc.push(Block::Heading("Statuses and errors".into()));
    let mut rows = Vec::new();
    for run in runs.all {
        for t in &run.summary.targets {
            for c in &t.classes {
                let statuses = c
                    .status
                    .iter()
                    .map(|(s, n)| format!("{s}: {n}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let errors = c
                    .errors
                    .iter()
                    .map(|(s, n)| format!("{s}: {n}"))
                    .chain((c.counts.dropped > 0).then(|| format!("dropped: {}", c.counts.dropped)))
                    .collect::<Vec<_>>()
                    .join(", ");
                rows.push(vec![
                    runs.name(run, &t.name),
                    c.request.clone(),
                    c.phase.clone(),
                    c.counts.ok.to_string(),
                    c.counts.unexpected.to_string(),
                    statuses,
                    if errors.is_empty() {
                        "–".into()
                    } else {
                        errors
                    },
                ]);
            }
        }
    }
    doc.push(Block::Table(
        [
            "target",
            "request",
            "phase",
            "ok",
            "unexpected",
            "statuses",
            "failures",
        ]
        .map(String::from)
        .to_vec(),
        rows,
    ));
    doc.push(Block::Image("status", "Statuses and failures"));
}

fn pct_cells(p: &Percentiles) -> [String; 5] {
    [
        fmt_ns(p.p50),
        fmt_ns(p.p90),
        fmt_ns(p.p99),
        fmt_ns(p.p99_9),
        fmt_ns(p.max),
    ]
}
