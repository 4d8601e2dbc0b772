//! `report.md` and `report.html` from one or more results directories: the
//! tables a PR comment or `$GITHUB_STEP_SUMMARY` needs, the charts beside
//! them, and in the HTML the charts inlined so that it makes no request.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use crate::charts::{self, ChartError, RunData};
use crate::summary::{Percentiles, Summary};
use crate::{fmt_ns, fmt_signed_ns};

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {message}")]
    Input { path: PathBuf, message: String },
    #[error(transparent)]
    Chart(#[from] ChartError),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Reads a results directory: `summary.json` and each target's `.hgrm`.
pub fn load(dir: &Path) -> Result<RunData, ReportError> {
    let path = dir.join("summary.json");
    let input = |message: String| ReportError::Input {
        path: path.clone(),
        message,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| input(e.to_string()))?;
    let summary: Summary = serde_json::from_str(&text).map_err(|e| input(e.to_string()))?;
    if summary.schema_version != crate::summary::SCHEMA_VERSION {
        return Err(input(format!(
            "schema_version {} (this build reads {})",
            summary.schema_version,
            crate::summary::SCHEMA_VERSION
        )));
    }
    let mut spectra = Vec::new();
    for t in &summary.targets {
        let hgrm = dir.join(format!("{}.hgrm", t.name));
        match std::fs::read_to_string(&hgrm) {
            Ok(text) => {
                let rows = crate::hgrm::read(&text).map_err(|e| ReportError::Input {
                    path: hgrm.clone(),
                    message: e.to_string(),
                })?;
                spectra.push((t.name.clone(), rows));
            }
            // A target that never ran has no file; the spectrum leaves it out.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(ReportError::Input {
                    path: hgrm,
                    message: e.to_string(),
                });
            }
        }
    }
    let label = dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    Ok(RunData {
        label,
        summary,
        spectra,
    })
}

/// The files a report consists of.
#[derive(Debug, Clone)]
pub struct Written {
    pub markdown: PathBuf,
    pub html: PathBuf,
    pub charts: Vec<PathBuf>,
}

/// Renders the charts, `report.md` and `report.html` for `runs` into `out`.
pub fn write(runs: &[RunData], out: &Path) -> Result<Written, ReportError> {
    if runs.is_empty() {
        return Err(ReportError::Input {
            path: out.to_path_buf(),
            message: "no results to report".into(),
        });
    }
    std::fs::create_dir_all(out).map_err(|source| ReportError::Write {
        path: out.to_path_buf(),
        source,
    })?;
    let names = charts::render(runs, out)?;
    let doc = document(runs);
    let markdown = out.join("report.md");
    crate::write_atomic(&markdown, to_markdown(&doc).as_bytes()).map_err(|source| {
        ReportError::Write {
            path: markdown.clone(),
            source,
        }
    })?;
    let html = out.join("report.html");
    let page = to_html(&doc, out).map_err(|source| ReportError::Write {
        path: html.clone(),
        source,
    })?;
    crate::write_atomic(&html, page.as_bytes()).map_err(|source| ReportError::Write {
        path: html.clone(),
        source,
    })?;
    let charts = names
        .iter()
        .flat_map(|n| [out.join(format!("{n}.png")), out.join(format!("{n}.svg"))])
        .collect();
    Ok(Written {
        markdown,
        html,
        charts,
    })
}

/// A report as blocks, rendered to Markdown or HTML.
enum Block {
    Heading(String),
    Para(String),
    Table(Vec<String>, Vec<Vec<String>>),
    Image(&'static str, &'static str),
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

fn document(runs: &[RunData]) -> Vec<Block> {
    let several = runs.len() > 1;
    let name = |run: &RunData, t: &str| {
        if several {
            format!("{}/{t}", run.label)
        } else {
            t.to_owned()
        }
    };
    let mut doc = Vec::new();
    let title = if several {
        format!(
            "gatebench report: {}",
            runs.iter()
                .map(|r| r.label.as_str())
                .collect::<Vec<_>>()
                .join(" vs ")
        )
    } else {
        format!("gatebench report: {}", runs[0].summary.scenario_name)
    };
    doc.push(Block::Heading(title));
    for run in runs {
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

    let mut added_rows = Vec::new();
    for run in runs {
        for t in &run.summary.targets {
            let Some(a) = &t.added else { continue };
            let mut row = vec![name(run, &t.name), a.baseline.clone()];
            for (p, v) in [
                ("p50", a.total.p50),
                ("p90", a.total.p90),
                ("p99", a.total.p99),
                ("p99.9", a.total.p99_9),
            ] {
                let noise = run
                    .summary
                    .calibration
                    .as_ref()
                    .is_some_and(|c| c.within_noise(p, v));
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
            "Corrected latency of each gateway minus the baseline's at the same percentile, whole run; the p50 range is the smallest and largest per-round difference. A row that is not valid is not a result.".into(),
        ));
        for run in runs {
            if let Some(c) = &run.summary.calibration {
                let r = &c.resolution;
                doc.push(Block::Para(format!(
                    "{}This machine's resolution when the run began (`loadgen calibrate`: one mock measured as two targets in {} interleaved rounds; the largest difference between the copies): p50 {}, p90 {}, p99 {}. A figure within it is marked \"within noise\": the machine could have produced it from nothing.",
                    if several { format!("{}: ", run.label) } else { String::new() },
                    c.rounds,
                    fmt_ns(r.p50.unsigned_abs()),
                    fmt_ns(r.p90.unsigned_abs()),
                    fmt_ns(r.p99.unsigned_abs())
                )));
            }
        }
        doc.push(Block::Table(
            [
                "target",
                "over",
                "p50",
                "p90",
                "p99",
                "p99.9",
                "p50 over rounds",
                "outside upstream p50",
                "valid",
            ]
            .map(String::from)
            .to_vec(),
            added_rows,
        ));
        doc.push(Block::Image("added", "Added latency per gateway"));
    }

    doc.push(Block::Heading("Latency by target".into()));
    let mut rows = Vec::new();
    for run in runs {
        for t in &run.summary.targets {
            let c = &t.total.counts;
            let mut row = vec![
                name(run, &t.name),
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

    doc.push(Block::Heading("Where the time goes".into()));
    doc.push(Block::Para(crate::summary::BREAKDOWN_NOTE.into()));
    let mut rows = Vec::new();
    for run in runs {
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
                name(run, &t.name),
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
    doc.push(Block::Heading("Over time".into()));
    if several {
        doc.push(Block::Para(format!(
            "The charts over time show the first run, {}.",
            runs[0].label
        )));
    }
    doc.push(Block::Image("latency-over-time", "Latency per second"));
    doc.push(Block::Image(
        "rate-over-time",
        "Rate and failures per second",
    ));

    for run in runs.iter().filter(|r| !r.summary.events.is_empty()) {
        doc.push(Block::Heading(if several {
            format!("Events: {}", run.label)
        } else {
            "Events".into()
        }));
        doc.push(Block::Para(crate::events::TABLE_NOTE.into()));
        let (headers, rows) = crate::events::table(&run.summary.events);
        doc.push(Block::Table(headers, rows));
    }
    if !runs[0].summary.events.is_empty() {
        doc.push(Block::Image(
            "events",
            "The affected consumer's responses around each event",
        ));
    }

    doc.push(Block::Heading("Statuses and errors".into()));
    let mut rows = Vec::new();
    for run in runs {
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
                    name(run, &t.name),
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
    doc
}

fn to_markdown(doc: &[Block]) -> String {
    let mut out = String::new();
    let mut first = true;
    for b in doc {
        match b {
            Block::Heading(h) => {
                let level = if first { "#" } else { "##" };
                first = false;
                let _ = writeln!(out, "{level} {h}\n");
            }
            Block::Para(p) => {
                let _ = writeln!(out, "{p}\n");
            }
            Block::Table(head, rows) => {
                let cell = |c: &String| c.replace('|', "\\|");
                let _ = writeln!(
                    out,
                    "| {} |",
                    head.iter().map(cell).collect::<Vec<_>>().join(" | ")
                );
                let _ = writeln!(out, "|{}", "---|".repeat(head.len()));
                for r in rows {
                    let _ = writeln!(
                        out,
                        "| {} |",
                        r.iter().map(cell).collect::<Vec<_>>().join(" | ")
                    );
                }
                out.push('\n');
            }
            Block::Image(name, alt) => {
                let _ = writeln!(out, "![{alt}]({name}.png)\n");
            }
        }
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Markdown's `**bold**` and `` `code` `` inside escaped HTML text.
fn inline(s: &str) -> String {
    let mut out = String::new();
    for (i, part) in escape(s).split("**").enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<strong>{part}</strong>");
        } else {
            out.push_str(part);
        }
    }
    let mut code = String::new();
    for (i, part) in out.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(code, "<code>{part}</code>");
        } else {
            code.push_str(part);
        }
    }
    code
}

fn to_html(doc: &[Block], dir: &Path) -> std::io::Result<String> {
    let title = doc
        .iter()
        .find_map(|b| match b {
            Block::Heading(h) => Some(h.as_str()),
            _ => None,
        })
        .unwrap_or("gatebench report");
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}}table{{border-collapse:collapse;margin:1em 0;font-size:14px}}th,td{{border:1px solid #ccc;padding:4px 8px;text-align:right}}th{{background:#f3f3f3}}td:first-child,th:first-child{{text-align:left}}img{{max-width:100%;border:1px solid #eee}}</style></head><body>\n",
        escape(title)
    );
    let mut first = true;
    for b in doc {
        match b {
            Block::Heading(h) => {
                let tag = if first { "h1" } else { "h2" };
                first = false;
                let _ = writeln!(out, "<{tag}>{}</{tag}>", inline(h));
            }
            Block::Para(p) => {
                let _ = writeln!(out, "<p>{}</p>", inline(p));
            }
            Block::Table(head, rows) => {
                out.push_str("<table><tr>");
                for h in head {
                    let _ = write!(out, "<th>{}</th>", inline(h));
                }
                out.push_str("</tr>\n");
                for r in rows {
                    out.push_str("<tr>");
                    for c in r {
                        let _ = write!(out, "<td>{}</td>", inline(c));
                    }
                    out.push_str("</tr>\n");
                }
                out.push_str("</table>\n");
            }
            Block::Image(name, alt) => {
                let png = std::fs::read(dir.join(format!("{name}.png")))?;
                let data = base64::engine::general_purpose::STANDARD.encode(png);
                let _ = writeln!(
                    out,
                    "<p><img alt=\"{}\" src=\"data:image/png;base64,{data}\"></p>",
                    escape(alt)
                );
            }
        }
    }
    out.push_str("</body></html>\n");
    Ok(out)
}
