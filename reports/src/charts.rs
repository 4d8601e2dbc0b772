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

mod capacity_chart;
mod event_chart;

use std::path::{Path, PathBuf};

use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;

use crate::summary::{Summary, Tick};

/// The font every chart uses, registered once as `sans-serif`.
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans-subset.ttf");
const SANS: &str = "sans-serif";

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The font is compiled in and checked by a test: it cannot be invalid.
        let _ = plotters::style::register_font(SANS, FontStyle::Normal, FONT);
    });
}

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

/// The distinct colours series take, in order.
const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

fn color(i: usize) -> RGBColor {
    COLORS[i % COLORS.len()]
}

pub const WIDTH: u32 = 1000;
pub const HEIGHT: u32 = 560;

/// The charts written, by base name (each as `.png` and `.svg`).
pub const CHARTS: [&str; 6] = [
    "spectrum",
    "latency-over-time",
    "rate-over-time",
    "added",
    "status",
    "breakdown",
];

type DrawResult = Result<(), String>;

/// A linear f64 axis with ticks exactly at `keys` (plotters' `WithKeyPoints`
/// cannot take a label formatter).
#[derive(Clone)]
struct Keyed {
    inner: plotters::coord::types::RangedCoordf64,
    keys: Vec<f64>,
}

fn keyed(range: std::ops::Range<f64>, keys: Vec<f64>) -> Keyed {
    Keyed {
        inner: range.into(),
        keys,
    }
}

impl Ranged for Keyed {
    type FormatOption = plotters::coord::ranged1d::DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: plotters::coord::ranged1d::KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.keys.clone()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }
}

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

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
            $draw(&root).map_err(fail)?;
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
            $draw(&root).map_err(fail)?;
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
        spectrum(root, &spectra)
    });
    let first = &runs[0].summary;
    both!(dir, "latency-over-time", size, |root: &DrawingArea<
        _,
        Shift,
    >| {
        latency_over_time(root, first)
    });
    both!(dir, "rate-over-time", size, |root: &DrawingArea<
        _,
        Shift,
    >| {
        rate_over_time(root, first)
    });
    both!(dir, "added", size, |root: &DrawingArea<_, Shift>| {
        added_bars(root, &added)
    });
    let rows = status.len().max(1) as u32;
    let status_size = (WIDTH, (160 + 34 * rows).max(HEIGHT));
    both!(dir, "status", status_size, |root: &DrawingArea<
        _,
        Shift,
    >| {
        status_bars(root, &status)
    });
    let rows = breakdown.len().max(1) as u32;
    let breakdown_size = (WIDTH, (200 + 40 * rows).max(HEIGHT));
    both!(dir, "breakdown", breakdown_size, |root: &DrawingArea<
        _,
        Shift,
    >| {
        breakdown_bars(root, &breakdown)
    });
    let mut written = CHARTS.to_vec();
    let shown = event_chart::shown(&first.events);
    if !shown.is_empty() {
        let size = (WIDTH, event_chart::PANEL * shown.len() as u32);
        both!(dir, "events", size, |root: &DrawingArea<_, Shift>| {
            event_chart::draw(root, &shown)
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
        capacity_chart::draw(root, c)
    });
    Ok(())
}

/// Draws the series labels in a framed box at `position`.
fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> DrawResult {
    chart
        .configure_series_labels()
        .label_font((SANS, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(position)
        .draw()
        .map_err(err)
}

/// A legend entry for a target drawn as several line segments.
fn line_entry<'a, DB: DrawingBackend + 'a, Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    name: &str,
    c: RGBColor,
    width: u32,
) -> DrawResult {
    chart
        .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
        .map_err(err)?
        .label(name)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(width)));
    Ok(())
}

/// x position of percentile `p` on the spectrum's axis.
fn spectrum_x(p: f64) -> f64 {
    (1.0 / (1.0 - p.min(0.999_999))).log10()
}

/// The label of a spectrum x position: the percentile it stands for.
fn spectrum_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 10f64.powf(-x));
    let s = format!("{p:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}%")
}

fn no_data<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, title: &str) -> DrawResult {
    root.fill(&WHITE).map_err(err)?;
    root.draw(&Text::new(
        format!("{title}: no data"),
        (20, 20),
        (SANS, 20).into_font(),
    ))
    .map_err(err)?;
    Ok(())
}

fn spectrum<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    series: &[(String, Vec<(f64, f64)>)],
) -> DrawResult {
    let points: Vec<(String, Vec<(f64, f64)>)> = series
        .iter()
        .map(|(n, rows)| {
            let pts = rows
                .iter()
                .filter(|(_, p)| *p < 1.0)
                .map(|(v, p)| (spectrum_x(*p), *v))
                .collect();
            (n.clone(), pts)
        })
        .collect();
    let ymax = points
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, v)| *v))
        .fold(0.0f64, f64::max);
    if ymax <= 0.0 {
        return no_data(root, "Latency by percentile");
    }
    root.fill(&WHITE).map_err(err)?;
    let xmax = 4.3;
    let mut chart = ChartBuilder::on(root)
        .caption(
            "Latency by percentile (corrected for coordinated omission)",
            (SANS, 22),
        )
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(
            keyed(0f64..xmax, vec![2f64.log10(), 1.0, 2.0, 3.0, 4.0]),
            0f64..ymax * 1.08,
        )
        .map_err(err)?;
    chart
        .configure_mesh()
        .light_line_style(RGBColor(238, 238, 238))
        .x_desc("Percentile")
        .y_desc("Latency (ms)")
        .x_label_formatter(&|x| spectrum_label(*x))
        .label_style((SANS, 14))
        .axis_desc_style((SANS, 16))
        .draw()
        .map_err(err)?;
    for (i, (name, pts)) in points.iter().enumerate() {
        let c = color(i);
        chart
            .draw_series(LineSeries::new(
                pts.iter().copied().filter(|(x, _)| *x <= xmax),
                c.stroke_width(2),
            ))
            .map_err(err)?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    Ok(())
}

fn shade<DB: DrawingBackend, Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    summary: &Summary,
    (ylo, yhi): (f64, f64),
) -> DrawResult {
    for t in &summary.targets {
        for span in &t.phases {
            let (a, b) = (span.start_s, span.end_s);
            let fill = if span.recorded {
                RGBColor(120, 170, 220).mix(0.12)
            } else {
                RGBColor(150, 150, 150).mix(0.22)
            };
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(a, ylo), (b, yhi)],
                    fill.filled(),
                )))
                .map_err(err)?;
        }
    }
    Ok(())
}

fn latency_over_time<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    summary: &Summary,
) -> DrawResult {
    let ms = |ns: u64| ns as f64 / 1e6;
    let ticks = || {
        summary
            .targets
            .iter()
            .flat_map(|t| t.timeline.iter())
            .filter(|t| t.completed > 0)
    };
    let xmax = ticks().map(|t| t.t_s + 1.0).fold(0.0f64, f64::max);
    let ymax = ticks().map(|t| ms(t.max)).fold(0.0f64, f64::max);
    let ymin = ticks()
        .map(|t| ms(t.p50))
        .filter(|v| *v > 0.0)
        .fold(f64::INFINITY, f64::min);
    if xmax <= 0.0 || ymax <= 0.0 || !ymin.is_finite() {
        return no_data(root, "Latency over time");
    }
    root.fill(&WHITE).map_err(err)?;
    let (ylo, yhi) = ((ymin * 0.7).max(1e-3), ymax * 1.4);
    let mut chart = ChartBuilder::on(root)
        .caption(
            "Latency per second: p50 (thin), p99 (thick), max (dots); grey = warm-up, blue = recorded",
            (SANS, 18),
        )
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..xmax, (ylo..yhi).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .light_line_style(RGBColor(238, 238, 238))
        .x_desc("Time since the run started (s)")
        .y_desc("Corrected latency (ms, log)")
        .label_style((SANS, 14))
        .axis_desc_style((SANS, 16))
        .draw()
        .map_err(err)?;
    shade(&mut chart, summary, (ylo, yhi))?;
    for (i, t) in summary.targets.iter().enumerate() {
        let c = color(i);
        let pts: Vec<&Tick> = t.timeline.iter().filter(|x| x.completed > 0).collect();
        // One line per contiguous stretch, so rounds of other targets are not bridged.
        for seg in segments(&pts) {
            let mid = |x: &Tick| x.t_s + 0.5;
            chart
                .draw_series(LineSeries::new(
                    seg.iter().map(|x| (mid(x), ms(x.p50).max(ylo))),
                    c.stroke_width(1),
                ))
                .map_err(err)?;
            chart
                .draw_series(LineSeries::new(
                    seg.iter().map(|x| (mid(x), ms(x.p99).max(ylo))),
                    c.stroke_width(3),
                ))
                .map_err(err)?;
            chart
                .draw_series(
                    seg.iter()
                        .map(|x| Circle::new((mid(x), ms(x.max).max(ylo)), 3, c.filled())),
                )
                .map_err(err)?;
        }
        line_entry(&mut chart, &t.name, c, 3)?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    Ok(())
}

/// The seconds that lie wholly inside their phase: a rate over a partial
/// second (a phase boundary that falls inside it) would be a false dip.
fn full_seconds(t: &crate::summary::TargetResult) -> Vec<&Tick> {
    const EPS: f64 = 0.01;
    t.timeline
        .iter()
        .filter(|x| {
            t.phases.iter().any(|s| {
                s.round == x.round
                    && s.phase == x.phase
                    && x.t_s >= s.start_s - EPS
                    && x.t_s + 1.0 <= s.end_s + EPS
            })
        })
        .collect()
}

/// Splits ticks into runs of consecutive seconds of one phase of one round,
/// so that lines never bridge phases, rounds or other targets' turns.
fn segments<'a>(ticks: &[&'a Tick]) -> Vec<Vec<&'a Tick>> {
    let mut out: Vec<Vec<&Tick>> = Vec::new();
    for t in ticks {
        match out.last_mut() {
            Some(seg)
                if seg.last().is_some_and(|l| {
                    t.t_s - l.t_s <= 1.5 && l.phase == t.phase && l.round == t.round
                }) =>
            {
                seg.push(t)
            }
            _ => out.push(vec![t]),
        }
    }
    out
}

fn rate_over_time<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    summary: &Summary,
) -> DrawResult {
    let all = || summary.targets.iter().flat_map(|t| t.timeline.iter());
    let xmax = all().map(|t| t.t_s + 1.0).fold(0.0f64, f64::max);
    let ymax = all()
        .map(|t| t.scheduled.max(t.completed) as f64)
        .fold(0.0f64, f64::max);
    if xmax <= 0.0 || ymax <= 0.0 {
        return no_data(root, "Rate over time");
    }
    let fails = |t: &Tick| (t.errors + t.unexpected + t.dropped) as f64;
    let fmax = all().map(fails).fold(0.0f64, f64::max).max(1.0);
    root.fill(&WHITE).map_err(err)?;
    let (upper, lower) = root.split_vertically(HEIGHT * 62 / 100);
    let mut chart = ChartBuilder::on(&upper)
        .caption(
            "Requests per second: achieved (solid) vs scheduled (thin)",
            (SANS, 20),
        )
        .margin(16)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..xmax, 0f64..ymax * 1.12)
        .map_err(err)?;
    chart
        .configure_mesh()
        .light_line_style(RGBColor(238, 238, 238))
        .y_desc("req/s")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style((SANS, 14))
        .axis_desc_style((SANS, 16))
        .draw()
        .map_err(err)?;
    shade(&mut chart, summary, (0.0, ymax * 1.12))?;
    for (i, t) in summary.targets.iter().enumerate() {
        let c = color(i);
        let pts = full_seconds(t);
        for seg in segments(&pts) {
            chart
                .draw_series(LineSeries::new(
                    seg.iter().map(|x| (x.t_s + 0.5, x.scheduled as f64)),
                    c.mix(0.6).stroke_width(1),
                ))
                .map_err(err)?;
            chart
                .draw_series(LineSeries::new(
                    seg.iter().map(|x| (x.t_s + 0.5, x.completed as f64)),
                    c.stroke_width(2),
                ))
                .map_err(err)?;
        }
        line_entry(&mut chart, &t.name, c, 2)?;
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    let mut chart = ChartBuilder::on(&lower)
        .caption(
            "Failures per second (errors + unexpected statuses + drops)",
            (SANS, 16),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..xmax, 0f64..fmax * 1.2)
        .map_err(err)?;
    chart
        .configure_mesh()
        .light_line_style(RGBColor(238, 238, 238))
        .x_desc("Time since the run started (s)")
        .y_desc("failures/s")
        .label_style((SANS, 14))
        .axis_desc_style((SANS, 16))
        .draw()
        .map_err(err)?;
    for (i, t) in summary.targets.iter().enumerate() {
        let c = color(i);
        let pts: Vec<&Tick> = t.timeline.iter().collect();
        for seg in segments(&pts) {
            chart
                .draw_series(LineSeries::new(
                    seg.iter().map(|x| (x.t_s + 0.5, fails(x))),
                    c.stroke_width(2),
                ))
                .map_err(err)?;
        }
    }
    Ok(())
}

/// The percentiles the added-latency chart shows.
const ADDED_AT: [&str; 4] = ["p50", "p90", "p99", "p99.9"];

fn added_bars<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    added: &[(String, crate::summary::Added)],
) -> DrawResult {
    if added.is_empty() {
        return no_data(
            root,
            "Added latency (needs a baseline target and a gateway)",
        );
    }
    let us = |ns: i64| ns as f64 / 1e3;
    root.fill(&WHITE).map_err(err)?;
    let baseline = &added[0].1.baseline;
    let body = root
        .titled(
            &format!(
                "Added latency over `{baseline}` (corrected, µs); whiskers: min–max over rounds"
            ),
            (SANS, 20),
        )
        .map_err(err)?;
    // A legend band at the bottom; one panel per percentile, each with its
    // own scale (p99.9 on a noisy machine would flatten p50 on a shared one).
    let (panels_area, legend_area) = body.split_vertically(body.dim_in_pixel().1 - 34);
    let panels = panels_area.split_evenly((1, ADDED_AT.len()));
    let n = added.len();
    let style = |i: usize, valid: bool| {
        let c = color(i + 1);
        if valid {
            c.filled()
        } else {
            c.mix(0.35).filled()
        }
    };
    for (k, (panel, q)) in panels.iter().zip(ADDED_AT).enumerate() {
        let value = |p: &crate::summary::AddedPercentiles| us(p.at(q).unwrap_or(0));
        let (mut lo, mut hi) = (0.0f64, 0.0f64);
        for (_, a) in added {
            for v in [value(&a.total), value(&a.rounds_min), value(&a.rounds_max)] {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
        let pad = (hi - lo).max(1.0) * 0.12;
        let mut chart = ChartBuilder::on(panel)
            .caption(q, (SANS, 16))
            .margin(8)
            .x_label_area_size(10)
            .y_label_area_size(if k == 0 { 60 } else { 50 })
            .build_cartesian_2d(0f64..n as f64, (lo - pad)..(hi + pad))
            .map_err(err)?;
        chart
            .configure_mesh()
            .light_line_style(RGBColor(238, 238, 238))
            .disable_x_mesh()
            .x_labels(0)
            .y_label_formatter(&|v| format!("{v:.0}"))
            .label_style((SANS, 12))
            .draw()
            .map_err(err)?;
        for (i, (_, a)) in added.iter().enumerate() {
            let x = i as f64;
            let v = value(&a.total);
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x + 0.12, 0.0), (x + 0.88, v)],
                    style(i, a.valid),
                )))
                .map_err(err)?;
            let (min, max) = (value(&a.rounds_min), value(&a.rounds_max));
            chart
                .draw_series([
                    PathElement::new(vec![(x + 0.5, min), (x + 0.5, max)], BLACK.stroke_width(1)),
                    PathElement::new(vec![(x + 0.4, min), (x + 0.6, min)], BLACK.stroke_width(1)),
                    PathElement::new(vec![(x + 0.4, max), (x + 0.6, max)], BLACK.stroke_width(1)),
                ])
                .map_err(err)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("{v:+.0}"),
                    (x + 0.1, v.max(0.0) + pad * 0.25),
                    (SANS, 11).into_font(),
                )))
                .map_err(err)?;
        }
    }
    // The legend band: one swatch and name per gateway.
    let width = legend_area.dim_in_pixel().0 as i32;
    let step = (width - 20) / n as i32;
    for (i, (name, a)) in added.iter().enumerate() {
        let x = 10 + step * i as i32;
        legend_area
            .draw(&Rectangle::new([(x, 10), (x + 14, 24)], style(i, a.valid)))
            .map_err(err)?;
        let label = if a.valid {
            name.clone()
        } else {
            format!("{name} (INVALID)")
        };
        legend_area
            .draw(&Text::new(label, (x + 18, 10), (SANS, 13).into_font()))
            .map_err(err)?;
    }
    Ok(())
}

/// One target's phases at the median, and its median latency.
type BreakdownRow = (String, [(&'static str, u64); 8], u64);

fn breakdown_bars<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    rows: &[BreakdownRow],
) -> DrawResult {
    if rows.is_empty() {
        return no_data(root, "Where the time goes");
    }
    let ms = |ns: u64| ns as f64 / 1e6;
    let xmax = rows
        .iter()
        .map(|(_, parts, p50)| ms(parts.iter().map(|(_, v)| v).sum::<u64>().max(*p50)))
        .fold(0f64, f64::max)
        .max(1e-3);
    root.fill(&WHITE).map_err(err)?;
    let n = rows.len();
    let label_width = rows
        .iter()
        .map(|(l, ..)| l.len() as u32 * 8)
        .max()
        .unwrap_or(100)
        .clamp(120, 420);
    let mut chart = ChartBuilder::on(root)
        .caption(
            "Where the time goes: the phases of the median request (bars), p50 latency (black mark)",
            (SANS, 20),
        )
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(label_width)
        .build_cartesian_2d(
            0f64..xmax * 1.45,
            keyed(0f64..n as f64, (0..n).map(|i| i as f64 + 0.5).collect()),
        )
        .map_err(err)?;
    chart
        .configure_mesh()
        .light_line_style(RGBColor(238, 238, 238))
        .x_desc("Milliseconds")
        .y_label_formatter(&|y| {
            rows.get(*y as usize)
                .map(|(l, ..)| l.clone())
                .unwrap_or_default()
        })
        .disable_y_mesh()
        .label_style((SANS, 13))
        .axis_desc_style((SANS, 16))
        .draw()
        .map_err(err)?;
    for k in 0..crate::summary::BREAKDOWN_PHASES.len() {
        let c = color(k);
        let bars: Vec<Rectangle<(f64, f64)>> = rows
            .iter()
            .enumerate()
            .filter(|(_, (_, parts, _))| parts[k].1 > 0)
            .map(|(i, (_, parts, _))| {
                let before: u64 = parts[..k].iter().map(|(_, v)| v).sum();
                let y = i as f64;
                Rectangle::new(
                    [(ms(before), y + 0.2), (ms(before + parts[k].1), y + 0.8)],
                    c.filled(),
                )
            })
            .collect();
        chart
            .draw_series(bars)
            .map_err(err)?
            .label(crate::summary::BREAKDOWN_PHASES[k])
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
    }
    let marks: Vec<Rectangle<(f64, f64)>> = rows
        .iter()
        .enumerate()
        .map(|(i, (_, _, p50))| {
            let (x, y) = (ms(*p50), i as f64);
            Rectangle::new([(x, y + 0.1), (x + xmax * 0.004, y + 0.9)], BLACK.filled())
        })
        .collect();
    chart.draw_series(marks).map_err(err)?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(200, 200, 200))
        .label_font((SANS, 13))
        .draw()
        .map_err(err)?;
    Ok(())
}

fn status_bars<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    rows: &[(String, crate::summary::ClassResult)],
) -> DrawResult {
    if rows.is_empty() {
        return no_data(root, "Statuses and errors");
    }
    // Categories: each status seen, then each error kind, then drops.
    let mut cats: Vec<String> = Vec::new();
    for (_, c) in rows {
        for s in c.status.keys() {
            let k = s.to_string();
            if !cats.contains(&k) {
                cats.push(k);
            }
        }
    }
    cats.sort();
    for (_, c) in rows {
        for e in c.errors.keys() {
            let k = format!("error: {e}");
            if !cats.contains(&k) {
                cats.push(k);
            }
        }
    }
    if rows.iter().any(|(_, c)| c.counts.dropped > 0) {
        cats.push("dropped".into());
    }
    let count = |c: &crate::summary::ClassResult, cat: &str| -> u64 {
        if let Some(e) = cat.strip_prefix("error: ") {
            c.errors.get(e).copied().unwrap_or(0)
        } else if cat == "dropped" {
            c.counts.dropped
        } else {
            cat.parse::<u16>()
                .ok()
                .and_then(|s| c.status.get(&s).copied())
                .unwrap_or(0)
        }
    };
    let xmax = rows
        .iter()
        .map(|(_, c)| cats.iter().map(|k| count(c, k)).sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    root.fill(&WHITE).map_err(err)?;
    let n = rows.len();
    let label_width = rows
        .iter()
        .map(|(l, _)| l.len() as u32 * 8)
        .max()
        .unwrap_or(100)
        .clamp(120, 420);
    let mut chart = ChartBuilder::on(root)
        .caption(
            "Responses by status, and failures, per target and class",
            (SANS, 20),
        )
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(label_width)
        .build_cartesian_2d(
            0f64..xmax * 1.3,
            keyed(0f64..n as f64, (0..n).map(|i| i as f64 + 0.5).collect()),
        )
        .map_err(err)?;
    chart
        .configure_mesh()
        .light_line_style(RGBColor(238, 238, 238))
        .x_desc("Requests")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|y| {
            rows.get(*y as usize)
                .map(|(l, _)| l.clone())
                .unwrap_or_default()
        })
        .disable_y_mesh()
        .label_style((SANS, 13))
        .axis_desc_style((SANS, 16))
        .draw()
        .map_err(err)?;
    for (k, cat) in cats.iter().enumerate() {
        // Status families keep their colours; failures take the rest in turn.
        let c = match cat.as_bytes().first() {
            Some(b'2') => RGBColor(44, 160, 44),
            Some(b'3') => RGBColor(31, 119, 180),
            Some(b'4') => RGBColor(255, 127, 14),
            Some(b'5') => RGBColor(214, 39, 40),
            _ => color(4 + k % 4),
        };
        let bars: Vec<Rectangle<(f64, f64)>> = rows
            .iter()
            .enumerate()
            .filter(|(_, (_, r))| count(r, cat) > 0)
            .map(|(i, (_, r))| {
                let before: u64 = cats[..k].iter().map(|x| count(r, x)).sum();
                let y = i as f64;
                Rectangle::new(
                    [
                        (before as f64, y + 0.15),
                        ((before + count(r, cat)) as f64, y + 0.85),
                    ],
                    c.filled(),
                )
            })
            .collect();
        chart
            .draw_series(bars)
            .map_err(err)?
            .label(cat.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], c.filled()));
    }
    legend(&mut chart, SeriesLabelPosition::MiddleRight)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spectrum_axis_labels() {
        assert_eq!(spectrum_label(2f64.log10()), "50%");
        assert_eq!(spectrum_label(1.0), "90%");
        assert_eq!(spectrum_label(3.0), "99.9%");
        assert_eq!(spectrum_label(4.0), "99.99%");
        assert!((spectrum_x(0.99) - 2.0).abs() < 1e-9);
    }

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
