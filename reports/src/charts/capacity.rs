//! `capacity`: each target's latency p50 and p99 (and added p99 with a
//! baseline) against the step's rate, passing steps filled, failing ones
//! hollow, the capacity marked with a vertical line.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::style::{DrawResult, SANS, color, err, legend, no_data};
use crate::capacity::{Capacity, CapacityStep, TargetCapacity};
use plotters::coord::combinators::LogCoord;
use plotters::coord::types::RangedCoordf64;

pub(super) fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, c: &Capacity) -> DrawResult {
    let Some((xmax, ymin, ymax)) = bounds(c) else {
        return no_data(root, "Capacity");
    };
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!("Latency vs rate; capacity under {}", c.slo.join(", ")),
            (SANS, 18),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..xmax * 1.08, (ymin..ymax * 1.5).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .light_line_style(RGBColor(238, 238, 238))
        .x_desc("Arrival rate (req/s)")
        .y_desc("ms (log scale)")
        .y_label_formatter(&|v| {
            if *v >= 1.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.2}")
            }
        })
        .x_label_formatter(&|v| format!("{v:.0}"))
        .label_style((SANS, 14))
        .axis_desc_style((SANS, 16))
        .draw()
        .map_err(err)?;
    for (i, t) in c.targets.iter().enumerate() {
        target_series(&mut chart, color(i), t, (ymin, ymax))?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)
}

/// The axes' reach over the valid steps: the highest rate, and the lowest
/// and highest latency in ms; None when nothing valid was measured.
fn bounds(c: &Capacity) -> Option<(f64, f64, f64)> {
    let steps = || {
        c.targets
            .iter()
            .flat_map(|t| t.steps.iter().filter(|s| s.valid))
    };
    let xmax = steps().map(|s| s.rate).fold(0.0f64, f64::max);
    let ymax = steps()
        .map(|s| (s.latency.p99 as f64).max(s.added_p99.unwrap_or(0) as f64))
        .fold(0.0f64, f64::max)
        / 1e6;
    let ymin = steps()
        .flat_map(|s| {
            [
                s.latency.p50 as f64,
                s.added_p99.unwrap_or(i64::MAX).max(1) as f64,
            ]
        })
        .fold(f64::MAX, f64::min)
        / 1e6
        / 2.0;
    if xmax <= 0.0 || ymax <= 0.0 {
        return None;
    }
    Some((xmax, ymin.clamp(0.001, ymax / 2.0), ymax))
}

/// One target's p50, p99 and added p99 lines over its valid steps, and its
/// capacity as a vertical line.
fn target_series<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, LogCoord<f64>>>,
    col: RGBColor,
    t: &TargetCapacity,
    (ymin, ymax): (f64, f64),
) -> DrawResult {
    let mut steps: Vec<_> = t.steps.iter().filter(|s| s.valid).collect();
    steps.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    type Pick = fn(&CapacityStep) -> Option<f64>;
    let series: [(&str, Pick, u32); 3] = [
        ("p50", |s| Some(s.latency.p50 as f64 / 1e6), 1),
        ("p99", |s| Some(s.latency.p99 as f64 / 1e6), 2),
        // Not drawn where the gateway added nothing (a log scale has no 0).
        (
            "added p99",
            |s| s.added_p99.filter(|v| *v > 0).map(|v| v as f64 / 1e6),
            1,
        ),
    ];
    for (what, pick, width) in series {
        let pts: Vec<(f64, f64, bool)> = steps
            .iter()
            .filter_map(|s| pick(s).map(|y| (s.rate, y.max(ymin), s.passed)))
            .collect();
        if pts.is_empty() {
            continue;
        }
        let style = if what == "added p99" {
            col.mix(0.5).stroke_width(width)
        } else {
            col.stroke_width(width)
        };
        chart
            .draw_series(LineSeries::new(pts.iter().map(|p| (p.0, p.1)), style))
            .map_err(err)?
            .label(format!("{} {what}", t.target))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        chart
            .draw_series(pts.iter().map(|p| {
                let style = if p.2 {
                    col.filled()
                } else {
                    col.stroke_width(1)
                };
                Circle::new((p.0, p.1), 4, style)
            }))
            .map_err(err)?;
    }
    if let Some(cap) = t.capacity_rps {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(cap, ymin), (cap, ymax * 1.5)],
                col.mix(0.8).stroke_width(2),
            )))
            .map_err(err)?;
    }
    Ok(())
}
