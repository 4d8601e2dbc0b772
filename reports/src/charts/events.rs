//! `events`: for each `[[event]]` of the first round (per target), the
//! affected consumer's valid-token responses per 100 ms by the time their
//! request was sent, accepted / refused / other, with the moment the change
//! took effect marked.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::style::{DrawResult, SANS, err, legend, no_data};
use crate::events::EventResult;

/// At most this many panels (events of the first round).
pub(super) const PANELS: usize = 4;

/// Height of one panel.
pub(super) const PANEL: u32 = 300;

/// The events drawn: round 1's (or the first round that has any).
pub(super) fn shown(events: &[EventResult]) -> Vec<&EventResult> {
    let first = events.iter().map(|e| e.round).min().unwrap_or(0);
    events
        .iter()
        .filter(|e| e.round == first && !e.buckets.is_empty())
        .take(PANELS)
        .collect()
}

pub(super) fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    events: &[&EventResult],
) -> DrawResult {
    if events.is_empty() {
        return no_data(root, "Events");
    }
    root.fill(&WHITE).map_err(err)?;
    let panels = root.split_evenly((events.len(), 1));
    for (area, e) in panels.iter().zip(events) {
        panel(area, e)?;
    }
    Ok(())
}

fn panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, e: &EventResult) -> DrawResult {
    let xmin = e.buckets.first().map_or(-1000, |b| b.t_ms) as f64;
    let xmax = e.buckets.last().map_or(1000, |b| b.t_ms + 100) as f64;
    let ymax = e
        .buckets
        .iter()
        .map(|b| b.accepted.max(b.refused).max(b.other))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let title = format!(
        "round {} {}: {}  ({})",
        e.round + 1,
        e.target,
        e.label(),
        e.figures_text()
            .split("  ")
            .filter(|p| !p.starts_with("after:"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut chart = ChartBuilder::on(area)
        .caption(title, (SANS, 15))
        .margin(12)
        .x_label_area_size(34)
        .y_label_area_size(60)
        .build_cartesian_2d(xmin..xmax, 0f64..ymax * 1.15)
        .map_err(err)?;
    chart
        .configure_mesh()
        .light_line_style(RGBColor(238, 238, 238))
        .x_desc("ms since the change took effect (by send time)")
        .y_desc("per 100 ms")
        .label_style((SANS, 12))
        .axis_desc_style((SANS, 13))
        .draw()
        .map_err(err)?;
    type Pick = fn(&crate::events::EventBucket) -> u64;
    let series: [(&str, RGBColor, Pick); 3] = [
        ("accepted (2xx)", RGBColor(44, 160, 44), |b| b.accepted),
        ("refused (401/403)", RGBColor(214, 39, 40), |b| b.refused),
        ("other / no answer", RGBColor(127, 127, 127), |b| b.other),
    ];
    for (name, c, pick) in series {
        chart
            .draw_series(LineSeries::new(
                e.buckets
                    .iter()
                    .map(|b| (b.t_ms as f64 + 50.0, pick(b) as f64)),
                c.stroke_width(2),
            ))
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(0.0, 0.0), (0.0, ymax * 1.15)],
            BLACK.stroke_width(1),
        )))
        .map_err(err)?;
    legend(&mut chart, SeriesLabelPosition::UpperRight)
}
