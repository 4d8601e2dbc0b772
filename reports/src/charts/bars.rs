//! `added`, `breakdown` and `status`: bar charts per target.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::style::{DrawError, DrawResult, Keyed, SANS, color, err, keyed, legend, no_data};
use crate::summary::{Added, AddedPercentiles, ClassResult};
use plotters::coord::types::RangedCoordf64;

/// The percentiles the added-latency chart shows.
const ADDED_AT: [&str; 4] = ["p50", "p90", "p99", "p99.9"];

pub(super) fn added_bars<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    added: &[(String, Added)],
) -> DrawResult {
    if added.is_empty() {
        return no_data(
            root,
            "Added latency (needs a baseline target and a gateway)",
        );
    }
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
    for (k, (panel, q)) in panels.iter().zip(ADDED_AT).enumerate() {
        added_panel(panel, k, q, added)?;
    }
    added_legend(&legend_area, added)
}

/// A gateway's bar: its colour, faded when its figure is not valid.
fn added_style(i: usize, valid: bool) -> ShapeStyle {
    let c = color(i + 1);
    if valid {
        c.filled()
    } else {
        c.mix(0.35).filled()
    }
}

/// Percentile `q`'s panel (the `k`th): a bar per gateway, whiskers at the
/// round-to-round min and max, on the panel's own scale.
fn added_panel<DB: DrawingBackend>(
    panel: &DrawingArea<DB, Shift>,
    k: usize,
    q: &str,
    added: &[(String, Added)],
) -> DrawResult {
    let us = |ns: i64| ns as f64 / 1e3;
    let n = added.len();
    let value = |p: &AddedPercentiles| us(p.at(q).unwrap_or(0));
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
                added_style(i, a.valid),
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
    Ok(())
}

/// The legend band: one swatch and name per gateway.
fn added_legend<DB: DrawingBackend>(
    legend_area: &DrawingArea<DB, Shift>,
    added: &[(String, Added)],
) -> DrawResult {
    let n = added.len();
    let width = legend_area.dim_in_pixel().0 as i32;
    let step = (width - 20) / n as i32;
    for (i, (name, a)) in added.iter().enumerate() {
        let x = 10 + step * i as i32;
        legend_area
            .draw(&Rectangle::new(
                [(x, 10), (x + 14, 24)],
                added_style(i, a.valid),
            ))
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
pub(super) type BreakdownRow = (String, [(&'static str, u64); 8], u64);

pub(super) fn breakdown_bars<DB: DrawingBackend>(
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
    let labels: Vec<&str> = rows.iter().map(|(l, ..)| l.as_str()).collect();
    let mut chart = rows_chart(
        root,
        "Where the time goes: the phases of the median request (bars), p50 latency (black mark)",
        &labels,
        (xmax * 1.45, "Milliseconds"),
        None,
    )?;
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

pub(super) fn status_bars<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    rows: &[(String, ClassResult)],
) -> DrawResult {
    if rows.is_empty() {
        return no_data(root, "Statuses and errors");
    }
    let cats = status_categories(rows);
    let count = status_count;
    let xmax = rows
        .iter()
        .map(|(_, c)| cats.iter().map(|k| count(c, k)).sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let labels: Vec<&str> = rows.iter().map(|(l, _)| l.as_str()).collect();
    let mut chart = rows_chart(
        root,
        "Responses by status, and failures, per target and class",
        &labels,
        (xmax * 1.3, "Requests"),
        Some(&|v| format!("{v:.0}")),
    )?;
    for (k, cat) in cats.iter().enumerate() {
        let c = status_color(cat, k);
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

/// The status chart's categories: each status seen, then each error kind,
/// then drops.
fn status_categories(rows: &[(String, ClassResult)]) -> Vec<String> {
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
    cats
}

/// How many of a class's requests fall in category `cat`.
fn status_count(c: &ClassResult, cat: &str) -> u64 {
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
}

/// Status families keep their colours; failures take the rest in turn.
fn status_color(cat: &str, k: usize) -> RGBColor {
    match cat.as_bytes().first() {
        Some(b'2') => RGBColor(44, 160, 44),
        Some(b'3') => RGBColor(31, 119, 180),
        Some(b'4') => RGBColor(255, 127, 14),
        Some(b'5') => RGBColor(214, 39, 40),
        _ => color(4 + k % 4),
    }
}

/// A horizontal bar chart's frame: one row per label (top to bottom), x
/// from 0 to `xmax` described as `x_desc`.
fn rows_chart<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    caption: &str,
    labels: &[&str],
    (xmax, x_desc): (f64, &str),
    x_format: Option<&dyn Fn(&f64) -> String>,
) -> Result<ChartContext<'a, DB, Cartesian2d<RangedCoordf64, Keyed>>, DrawError> {
    root.fill(&WHITE).map_err(err)?;
    let n = labels.len();
    let label_width = labels
        .iter()
        .map(|l| l.len() as u32 * 8)
        .max()
        .unwrap_or(100)
        .clamp(120, 420);
    let mut chart = ChartBuilder::on(root)
        .caption(caption, (SANS, 20))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(label_width)
        .build_cartesian_2d(
            0f64..xmax,
            keyed(0f64..n as f64, (0..n).map(|i| i as f64 + 0.5).collect()),
        )
        .map_err(err)?;
    let y_format = |y: &f64| {
        labels
            .get(*y as usize)
            .map(|l| l.to_string())
            .unwrap_or_default()
    };
    let mut mesh = chart.configure_mesh();
    mesh.light_line_style(RGBColor(238, 238, 238))
        .x_desc(x_desc)
        .y_label_formatter(&y_format)
        .disable_y_mesh()
        .label_style((SANS, 13))
        .axis_desc_style((SANS, 16));
    if let Some(f) = x_format {
        mesh.x_label_formatter(f);
    }
    mesh.draw().map_err(err)?;
    Ok(chart)
}
