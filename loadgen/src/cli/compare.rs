//! `loadgen compare` (the CI gate: thresholds, limits, exit codes) and
//! `loadgen report` (charts and documents from result directories).

use std::path::PathBuf;

use anyhow::{Context as _, anyhow, bail};

use super::args::{CompareArgs, Exit, ReportArgs};

/// `[TARGET:]METRIC=VALUE`; `value` parses the right-hand side.
fn parse_rule(
    flag: &str,
    text: &str,
    value: impl Fn(&str, &str) -> anyhow::Result<f64>,
) -> anyhow::Result<reports::compare::Rule> {
    let (lhs, rhs) = text
        .split_once('=')
        .ok_or_else(|| anyhow!("{flag} {text:?}: expected [TARGET:]METRIC=VALUE"))?;
    let (target, metric) = match lhs.split_once(':') {
        Some((t, m)) => (Some(t.to_owned()), m),
        None => (None, lhs),
    };
    if !reports::compare::known_metric(metric) {
        bail!("{flag} {text:?}: unknown metric {metric:?} (see --help for the list)");
    }
    let value = value(metric, rhs).with_context(|| format!("{flag} {text:?}"))?;
    Ok(reports::compare::Rule {
        target,
        metric: metric.to_owned(),
        value,
    })
}

fn load_summary(path: &std::path::Path) -> anyhow::Result<reports::summary::Summary> {
    let file = if path.is_dir() {
        path.join("summary.json")
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file).with_context(|| file.display().to_string())?;
    let s: reports::summary::Summary =
        serde_json::from_str(&text).with_context(|| file.display().to_string())?;
    if s.schema_version != reports::summary::SCHEMA_VERSION {
        bail!(
            "{}: schema_version {} (this build reads {})",
            file.display(),
            s.schema_version,
            reports::summary::SCHEMA_VERSION
        );
    }
    Ok(s)
}

pub(super) fn compare(c: &CompareArgs) -> Exit {
    match compare_inner(c) {
        Ok(exit) => exit,
        Err(e) => {
            eprintln!("loadgen compare: {e:#}");
            Exit::Usage
        }
    }
}

fn compare_inner(c: &CompareArgs) -> anyhow::Result<Exit> {
    let (thresholds, limits) = rules(c)?;
    let base = load_summary(&c.base)?;
    let cand = match &c.cand {
        Some(p) => Some(load_summary(p)?),
        None => None,
    };
    for (what, s) in [("baseline", Some(&base)), ("candidate", cand.as_ref())] {
        if let Some(s) = s
            && !s.valid
            && !c.allow_invalid
        {
            bail!(
                "the {what} run is INVALID ({}); its numbers describe the run, not the targets. Re-run it, or pass --allow-invalid",
                s.invalid_reasons.join("; ")
            );
        }
    }
    let rows = match (&cand, &c.within) {
        (Some(cand), _) => {
            reports::compare::compare(&base, cand, &thresholds, &limits, c.per_class)?
        }
        (None, Some((b, t))) => {
            reports::compare::compare_within(&base, (b, t), &thresholds, &limits, c.per_class)?
        }
        (None, None) => bail!("give a candidate run, or --within BASE,CAND"),
    };
    print!("{}", reports::compare::render_text(&rows));
    // Two runs: the baseline target present in both is the control for the
    // machine's drift between them.
    let drift = cand
        .as_ref()
        .and_then(|cand| reports::compare::drift(&base, cand));
    if let Some(d) = &drift {
        println!("{}", d.describe());
        for r in d.rows_it_outweighs(&rows) {
            eprintln!(
                "loadgen compare: note: {} {} {}: the drift is as large as this change; judge by added.* or run both in one (--within)",
                r.target, r.class, r.metric
            );
        }
    }
    write_outputs(c, &rows, cand.as_ref().unwrap_or(&base), drift.as_ref())?;
    let per = if cand.is_some() { " per run" } else { "" };
    use reports::compare::Verdict;
    let fails_too = c.inconclusive == super::args::Inconclusive::Fail;
    let failed: Vec<&reports::compare::Row> = rows
        .iter()
        .filter(|r| r.verdict.failed() || (fails_too && r.verdict == Verdict::Inconclusive))
        .collect();
    for r in rows
        .iter()
        .filter(|r| r.verdict.failed() || r.verdict == Verdict::Inconclusive)
    {
        let what = match r.verdict {
            Verdict::OverLimit => "over limit".to_owned(),
            Verdict::Inconclusive => match r.rounds_needed {
                Some(n) => format!("inconclusive (about {n} rounds{per} would settle it)"),
                None => "inconclusive".to_owned(),
            },
            _ => "regression".to_owned(),
        };
        eprintln!(
            "loadgen compare: {what}: {} {} {} (base {}, candidate {})",
            r.target,
            r.class,
            r.metric,
            reports::compare::fmt_value(r.base, r.unit),
            reports::compare::fmt_value(r.cand, r.unit)
        );
    }
    Ok(if failed.is_empty() {
        Exit::Ok
    } else {
        Exit::Failure
    })
}

/// `--max-regression` (else the defaults) and `--max`, parsed.
fn rules(
    c: &CompareArgs,
) -> anyhow::Result<(Vec<reports::compare::Rule>, Vec<reports::compare::Rule>)> {
    let pct = |_: &str, v: &str| -> anyhow::Result<f64> {
        let x: f64 = v
            .trim_end_matches('%')
            .parse()
            .map_err(|_| anyhow!("{v:?} is not a number"))?;
        if x.is_finite() && x >= 0.0 {
            Ok(x)
        } else {
            bail!("{v:?} must be 0 or more")
        }
    };
    let limit = |metric: &str, v: &str| -> anyhow::Result<f64> {
        match metric {
            "rps" => bail!("rps has no upper limit; use --max-regression rps=PCT"),
            "errors" => pct(metric, v),
            _ => {
                let negative = v.starts_with('-');
                let d = mock_upstream::spec::parse_duration(v.trim_start_matches('-'))?;
                let ns = d.as_nanos() as f64;
                Ok(if negative { -ns } else { ns })
            }
        }
    };
    let mut thresholds = c
        .max_regression
        .iter()
        .map(|t| parse_rule("--max-regression", t, pct))
        .collect::<Result<Vec<_>, _>>()?;
    if thresholds.is_empty() {
        thresholds = reports::compare::DEFAULT_THRESHOLDS
            .split(", ")
            .map(|t| parse_rule("default", t, pct))
            .collect::<Result<Vec<_>, _>>()?;
    }
    let limits = c
        .max
        .iter()
        .map(|t| parse_rule("--max", t, limit))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((thresholds, limits))
}

/// The `--markdown`, `--bmf` and `--github-benchmark` files.
fn write_outputs(
    c: &CompareArgs,
    rows: &[reports::compare::Row],
    cand: &reports::summary::Summary,
    drift: Option<&reports::compare::Drift>,
) -> anyhow::Result<()> {
    let name = |p: &PathBuf| p.display().to_string();
    let write = |path: &PathBuf, text: String| -> anyhow::Result<()> {
        reports::write_atomic(path, text.as_bytes()).with_context(|| path.display().to_string())
    };
    if let Some(p) = &c.markdown {
        let (base, cand) = match (&c.cand, &c.within) {
            (Some(cand), _) => (name(&c.base), name(cand)),
            (None, Some((b, t))) => {
                let run = name(&c.base);
                (format!("{run}: {b}"), format!("{run}: {t}"))
            }
            (None, None) => (name(&c.base), String::new()),
        };
        let mut md = reports::compare::render_markdown(rows, &base, &cand);
        if let Some(d) = drift {
            md.push_str(&format!("\n{}\n", d.describe()));
        }
        write(p, md)?;
    }
    if let Some(p) = &c.bmf {
        write(p, format!("{:#}\n", reports::export::bmf(cand)))?;
    }
    if let Some(p) = &c.github_benchmark {
        write(
            p,
            format!("{:#}\n", reports::export::github_benchmark(cand)),
        )?;
    }
    Ok(())
}

pub(super) fn report(r: &ReportArgs) -> Exit {
    let mut runs = Vec::new();
    for d in &r.dirs {
        match reports::report::load(d) {
            Ok(run) => runs.push(run),
            Err(e) => {
                eprintln!("loadgen report: {e}");
                return Exit::Usage;
            }
        }
    }
    let out = r.out.clone().unwrap_or_else(|| match r.dirs.as_slice() {
        [one] => one.clone(),
        _ => PathBuf::from("results").join(format!(
            "report-{}",
            utc_stamp(std::time::SystemTime::now())
        )),
    });
    let first = &runs[0].summary;
    for (path, doc) in [
        (&r.bmf, r.bmf.as_ref().map(|_| reports::export::bmf(first))),
        (
            &r.github_benchmark,
            r.github_benchmark
                .as_ref()
                .map(|_| reports::export::github_benchmark(first)),
        ),
    ] {
        if let (Some(path), Some(doc)) = (path, doc)
            && let Err(e) = reports::write_atomic(path, format!("{doc:#}\n").as_bytes())
        {
            eprintln!("loadgen report: {}: {e}", path.display());
            return Exit::Failure;
        }
    }
    match reports::report::write(&runs, &out) {
        Ok(w) => {
            println!("{}", w.markdown.display());
            println!("{}", w.html.display());
            Exit::Ok
        }
        Err(e) => {
            eprintln!("loadgen report: {e}");
            Exit::Failure
        }
    }
}

/// `20261129T173408Z`.
pub(super) fn utc_stamp(t: std::time::SystemTime) -> String {
    let u = reports::hlog::utc(t);
    format!(
        "{}{:02}{:02}T{:02}{:02}{:02}Z",
        u.year, u.month, u.day, u.hour, u.minute, u.second
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn stamps_are_sortable_utc() {
        assert_eq!(
            super::utc_stamp(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_796_491_635)),
            "20261205T172715Z"
        );
    }
}
