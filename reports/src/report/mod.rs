//! `report.md` and `report.html` from one or more results directories: the
//! tables a PR comment or `$GITHUB_STEP_SUMMARY` needs, the charts beside
//! them, and in the HTML the charts inlined so that it makes no request.

use std::path::{Path, PathBuf};

mod blocks;
mod document;

use blocks::{to_html, to_markdown};
use document::document;

use crate::charts::{self, ChartError, RunData};
use crate::summary::Summary;

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
    let text = crate::read_input_text(&path).map_err(|e| input(e.to_string()))?;
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
        match crate::read_input_text(&hgrm) {
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
