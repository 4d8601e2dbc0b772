//! `spectrum`: corrected latency by percentile, every target overlaid.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::style::{DrawResult, SANS, color, err, keyed, legend, no_data};

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

pub(super) fn spectrum<DB: DrawingBackend>(
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
}
