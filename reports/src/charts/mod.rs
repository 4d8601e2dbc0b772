//! Charts of one or more runs, each written as PNG and SVG (plotters). Text
//! is drawn with a bundled font (DejaVu Sans, subset; `reports/assets/`), so
//! charts render the same on a machine with no system fonts.
//!
//! - `spectrum`: corrected latency by percentile, every target overlaid; the
//!   x axis is `log10(1/(1−p))`, labelled 50 % … 99.99 %.
//! - `latency-over-time`: p50, p99 and max per second per target, phases shaded.
//! - `rate-over-time`: achieved vs scheduled rate per second, and failures per second.
//! - `added`: what each gateway adds at p50/p90/p99/p99.9, whiskers at the
//!   round-to-round min and max.
//! - `status`: responses by status and failures by kind, per target and request class.
//! - `breakdown`: where the time goes, the median of each phase (schedule lag,
//!   connection wait, DNS, connect, TLS, sending, waiting, receiving) stacked
//!   per target, the median latency marked.
//! - `capacity` (`loadgen capacity`): latency against rate per target, the
//!   capacity marked.
//! - `events` (with `[[event]]`s): the affected consumer's responses per
//!   100 ms around each event of the first round.

mod bars;
mod capacity;
mod events;
mod spectrum;
mod style;
mod time;

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::summary::Summary;
use style::{DrawError, register_font};

/// Why a chart could not be drawn or written.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("drawing {chart}: {message}")]
    Draw { chart: String, message: String },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One run's data as the charts need it.
#[derive(Debug, Clone)]
pub struct RunData {
    /// Shown before target names when several runs are overlaid.
    pub label: String,
    pub summary: Summary,
    /// Per target (by name): the `.hgrm` rows as (milliseconds, percentile fraction).
    pub spectra: Vec<(String, Vec<(f64, f64)>)>,
}

pub use style::{HEIGHT, WIDTH};

/// The charts written, by base name (each as `.png` and `.svg`).
pub const CHARTS: [&str; 6] = [
    "spectrum",
    "latency-over-time",
    "rate-over-time",
    "added",
    "status",
    "breakdown",
];

/// Draws one chart on both backends and writes `<name>.png` and `<name>.svg`
/// into `dir` atomically.
macro_rules! both {
    ($dir:expr, $name:expr, $size:expr, $draw:expr) => {{
        let (dir, name, size): (&Path, &str, (u32, u32)) = ($dir, $name, $size);
        let fail = |message: String| ChartError::Draw {
            chart: name.to_owned(),
            message,
        };
        // PNG: drawn into a temporary file whose extension picks the encoder, then renamed.
        let png = dir.join(format!("{name}.png"));
        let tmp = dir.join(format!(".{name}.{}.tmp.png", std::process::id()));
        {
            let root = BitMapBackend::new(&tmp, size).into_drawing_area();
            $draw(&root).map_err(|e: DrawError| fail(e.0))?;
            root.present().map_err(|e| fail(e.to_string()))?;
        }
        std::fs::rename(&tmp, &png).map_err(|source| {
            let _ = std::fs::remove_file(&tmp);
            ChartError::Write {
                path: png.clone(),
                source,
            }
        })?;
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
            $draw(&root).map_err(|e: DrawError| fail(e.0))?;
            root.present().map_err(|e| fail(e.to_string()))?;
        }
        let path = dir.join(format!("{name}.svg"));
        crate::write_atomic(&path, svg.as_bytes())
            .map_err(|source| ChartError::Write { path, source })?;
    }};
}

/// Writes every chart for `runs` into `dir`; returns the base names written.
/// Over-time charts need a single run's timeline: with several runs they
/// show the first.
pub fn render(runs: &[RunData], dir: &Path) -> Result<Vec<&'static str>, ChartError> {
    register_font();
    let several = runs.len() > 1;
    let name = |run: &RunData, target: &str| {
        if several {
            format!("{}/{target}", run.label)
        } else {
            target.to_owned()
        }
    };
    let mut spectra = Vec::new();
    let mut added = Vec::new();
    let mut status = Vec::new();
    let mut breakdown = Vec::new();
    for run in runs {
        for (t, rows) in &run.spectra {
            spectra.push((name(run, t), rows.clone()));
        }
        for t in &run.summary.targets {
            if let Some(a) = &t.added {
                added.push((name(run, &t.name), a.clone()));
            }
            if let Some(at) = t.total.breakdown.as_ref().and_then(|b| b.at("p50")) {
                breakdown.push((name(run, &t.name), at.phases(), t.total.latency.p50));
            }
            for c in &t.classes {
                status.push((
                    format!("{} {}/{}", name(run, &t.name), c.request, c.phase),
                    c.clone(),
                ));
            }
        }
    }
    let size = (WIDTH, HEIGHT);
    both!(dir, "spectrum", size, |root: &DrawingArea<_, Shift>| {
        spectrum::spectrum(root, &spectra)
    });
    let first = &runs[0].summary;
    both!(dir, "latency-over-time", size, |root: &DrawingArea<
        _,
        Shift,
    >| {
        time::latency_over_time(root, first)
    });
    both!(dir, "rate-over-time", size, |root: &DrawingArea<
        _,
        Shift,
    >| {
        time::rate_over_time(root, first)
    });
    both!(dir, "added", size, |root: &DrawingArea<_, Shift>| {
        bars::added_bars(root, &added)
    });
    let rows = status.len().max(1) as u32;
    let status_size = (WIDTH, (160 + 34 * rows).max(HEIGHT));
    both!(dir, "status", status_size, |root: &DrawingArea<
        _,
        Shift,
    >| {
        bars::status_bars(root, &status)
    });
    let rows = breakdown.len().max(1) as u32;
    let breakdown_size = (WIDTH, (200 + 40 * rows).max(HEIGHT));
    both!(dir, "breakdown", breakdown_size, |root: &DrawingArea<
        _,
        Shift,
    >| {
        bars::breakdown_bars(root, &breakdown)
    });
    let mut written = CHARTS.to_vec();
    let shown = events::shown(&first.events);
    if !shown.is_empty() {
        let size = (WIDTH, events::PANEL * shown.len() as u32);
        both!(dir, "events", size, |root: &DrawingArea<_, Shift>| {
            events::draw(root, &shown)
        });
        written.push("events");
    }
    Ok(written)
}

/// Writes `capacity.png` and `capacity.svg` (`loadgen capacity`) into `dir`.
pub fn capacity(c: &crate::capacity::Capacity, dir: &Path) -> Result<(), ChartError> {
    register_font();
    both!(dir, "capacity", (WIDTH, HEIGHT), |root: &DrawingArea<
        _,
        Shift,
    >| {
        capacity::draw(root, c)
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::style::{SANS, register_font};
    use plotters::prelude::*;

    /// Text is drawn with the bundled font: a label rendered into a blank
    /// bitmap leaves dark pixels, and more text leaves more of them.
    #[test]
    fn labels_render_without_system_fonts() {
        register_font();
        let dark = |text: &str| {
            let mut buf = vec![255u8; 300 * 60 * 3];
            {
                let root = BitMapBackend::with_buffer(&mut buf, (300, 60)).into_drawing_area();
                root.draw(&Text::new(text, (5, 10), (SANS, 24).into_font()))
                    .unwrap();
                root.present().unwrap();
            }
            buf.chunks(3).filter(|p| p.iter().all(|c| *c < 128)).count()
        };
        assert_eq!(dark(""), 0);
        let short = dark("99%");
        let long = dark("99.99% latency");
        assert!(short > 20, "{short} dark pixels");
        assert!(long > short * 2, "{long} vs {short}");
    }
}
