//! `latency-over-time` and `rate-over-time`: per second per target, phases shaded.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::style::{DrawResult, HEIGHT, SANS, color, err, legend, line_entry, no_data};
use crate::summary::{Summary, Tick};

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

pub(super) fn latency_over_time<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    summary: &Summary,
) -> DrawResult {
    let ms = |ns: u64| ns as f64 / 1e6;
    let ticks = || {
        summary
            .targets
            .iter()
            .flat_map(|t| t.timeline.iter())
            .filter(|t| t.counts.completed > 0)
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
        let pts: Vec<&Tick> = t
            .timeline
            .iter()
            .filter(|x| x.counts.completed > 0)
            .collect();
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

pub(super) fn rate_over_time<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    summary: &Summary,
) -> DrawResult {
    let all = || summary.targets.iter().flat_map(|t| t.timeline.iter());
    let xmax = all().map(|t| t.t_s + 1.0).fold(0.0f64, f64::max);
    let ymax = all()
        .map(|t| t.counts.scheduled.max(t.counts.completed) as f64)
        .fold(0.0f64, f64::max);
    if xmax <= 0.0 || ymax <= 0.0 {
        return no_data(root, "Rate over time");
    }
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
                    seg.iter().map(|x| (x.t_s + 0.5, x.counts.scheduled as f64)),
                    c.mix(0.6).stroke_width(1),
                ))
                .map_err(err)?;
            chart
                .draw_series(LineSeries::new(
                    seg.iter().map(|x| (x.t_s + 0.5, x.counts.completed as f64)),
                    c.stroke_width(2),
                ))
                .map_err(err)?;
        }
        line_entry(&mut chart, &t.name, c, 2)?;
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    failures_per_second(&lower, summary, xmax)
}

/// A second's failures: errors, unexpected statuses and drops.
fn fails(t: &Tick) -> f64 {
    (t.counts.errors + t.counts.unexpected + t.counts.dropped) as f64
}

/// The lower panel of `rate-over-time`: failures per second per target.
fn failures_per_second<DB: DrawingBackend>(
    lower: &DrawingArea<DB, Shift>,
    summary: &Summary,
    xmax: f64,
) -> DrawResult {
    let fmax = summary
        .targets
        .iter()
        .flat_map(|t| t.timeline.iter())
        .map(fails)
        .fold(0.0f64, f64::max)
        .max(1.0);
    let mut chart = ChartBuilder::on(lower)
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
