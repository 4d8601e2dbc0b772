//! What every chart shares: the bundled font, the palette, the legend, the
//! empty-chart placeholder and the drawing error.

use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;

/// The font every chart uses, registered once as `sans-serif`.
pub(super) static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans-subset.ttf");
pub(super) const SANS: &str = "sans-serif";

pub(super) fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The font is compiled in and checked by a test: it cannot be invalid.
        let _ = plotters::style::register_font(SANS, FontStyle::Normal, FONT);
    });
}

/// The distinct colours series take, in order.
pub(super) const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

pub(super) fn color(i: usize) -> RGBColor {
    COLORS[i % COLORS.len()]
}

/// A chart's size in pixels (taller where rows need it).
pub const WIDTH: u32 = 1000;
pub const HEIGHT: u32 = 560;

/// A drawing failure. plotters' error type depends on the backend, so what
/// is kept of it is its message.
#[derive(Debug)]
pub(super) struct DrawError(pub(super) String);

pub(super) type DrawResult = Result<(), DrawError>;

/// A linear f64 axis with ticks exactly at `keys` (plotters' `WithKeyPoints`
/// cannot take a label formatter).
#[derive(Clone)]
pub(super) struct Keyed {
    inner: plotters::coord::types::RangedCoordf64,
    keys: Vec<f64>,
}

pub(super) fn keyed(range: std::ops::Range<f64>, keys: Vec<f64>) -> Keyed {
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

pub(super) fn err<E: std::fmt::Display>(e: E) -> DrawError {
    DrawError(e.to_string())
}

/// Draws the series labels in a framed box at `position`.
pub(super) fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
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
pub(super) fn line_entry<'a, DB: DrawingBackend + 'a, Y: Ranged<ValueType = f64>>(
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

pub(super) fn no_data<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
) -> DrawResult {
    root.fill(&WHITE).map_err(err)?;
    root.draw(&Text::new(
        format!("{title}: no data"),
        (20, 20),
        (SANS, 20).into_font(),
    ))
    .map_err(err)?;
    Ok(())
}
