//! SVG charts for experiment results: a [`LineChart`] (several series against one x axis, e.g.
//! a latency CDF, or a figure per churn rate in a sweep) and a [`BarChart`] (e.g. a hop
//! distribution), laid out side by side in a [`Figure`].
//!
//! Drawn with `plotters`' SVG backend only: text goes into the file as SVG `<text>` elements
//! and the viewer picks the font, so no font files or system libraries are needed to build or
//! run this. Enabled by the crate feature `plot` (on by default, through `cli`).
//!
//! ```
//! use pastry::plot::{BarChart, Figure, LineChart, Panel, Series};
//!
//! let hops = BarChart {
//!     title: "hops".into(),
//!     x_label: "hops".into(),
//!     y_label: "fraction of lookups".into(),
//!     bars: vec![(1.0, 0.2), (2.0, 0.5), (3.0, 0.3)],
//!     markers: vec![(2.49, "log16 N".into())],
//! };
//! let cdf = LineChart {
//!     title: "latency".into(),
//!     x_label: "ms".into(),
//!     y_label: "fraction".into(),
//!     series: vec![Series { label: "CDF".into(), points: vec![(0.0, 0.0), (1.0, 1.0)] }],
//! };
//! let fig = Figure { width: 1000, height: 400, panels: vec![Panel::Bars(hops), Panel::Lines(cdf)] };
//! let svg = fig.to_svg().unwrap();
//! assert!(svg.starts_with("<svg") && svg.contains("log16 N"));
//! ```

use core::fmt;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

/// Why a figure could not be drawn or saved.
#[derive(Debug)]
pub struct PlotError(String);

impl fmt::Display for PlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PlotError {}

fn err(e: impl fmt::Display) -> PlotError {
    PlotError(e.to_string())
}

/// One named line of a [`LineChart`]: `(x, y)` points in drawing order.
#[derive(Clone, Debug, Default)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// The points; non-finite ones are skipped.
    pub points: Vec<(f64, f64)>,
}

/// Several series against one x axis, with a legend. Axis ranges cover every finite point.
#[derive(Clone, Debug, Default)]
pub struct LineChart {
    /// Caption above the chart.
    pub title: String,
    /// Text under the x axis.
    pub x_label: String,
    /// Text beside the y axis.
    pub y_label: String,
    /// The lines, each in its own colour.
    pub series: Vec<Series>,
}

/// Bars at numeric x positions (width 0.8 each), with optional labelled vertical markers
/// (e.g. a predicted mean) on the same axis.
#[derive(Clone, Debug, Default)]
pub struct BarChart {
    /// Caption above the chart.
    pub title: String,
    /// Text under the x axis.
    pub x_label: String,
    /// Text beside the y axis.
    pub y_label: String,
    /// `(x, height)` of each bar.
    pub bars: Vec<(f64, f64)>,
    /// `(x, label)` of each vertical marker line.
    pub markers: Vec<(f64, String)>,
}

/// One chart of a [`Figure`].
#[derive(Clone, Debug)]
pub enum Panel {
    /// A [`LineChart`].
    Lines(LineChart),
    /// A [`BarChart`].
    Bars(BarChart),
}

/// Charts side by side, left to right, in one SVG image.
#[derive(Clone, Debug)]
pub struct Figure {
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// The charts; each gets an equal share of the width.
    pub panels: Vec<Panel>,
}

/// Line colours, in order (Tableau 10).
const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

impl Figure {
    /// The figure as SVG text.
    ///
    /// # Errors
    /// When plotters fails to lay out a chart.
    pub fn to_svg(&self) -> Result<String, PlotError> {
        let mut svg = String::new();
        {
            let root =
                SVGBackend::with_string(&mut svg, (self.width, self.height)).into_drawing_area();
            root.fill(&WHITE).map_err(err)?;
            let areas = root.split_evenly((1, self.panels.len().max(1)));
            for (panel, area) in self.panels.iter().zip(&areas) {
                match panel {
                    Panel::Lines(c) => draw_lines(area, c)?,
                    Panel::Bars(c) => draw_bars(area, c)?,
                }
            }
            root.present().map_err(err)?;
        }
        Ok(svg)
    }

    /// Writes the figure to `path` as an SVG file.
    ///
    /// # Errors
    /// When the chart cannot be drawn or the file cannot be written.
    pub fn save_svg(&self, path: &Path) -> Result<(), PlotError> {
        let svg = self.to_svg()?;
        std::fs::write(path, svg).map_err(|e| PlotError(format!("{}: {e}", path.display())))
    }
}

/// `lo..hi` widened to a non-empty range, with a margin above.
fn span(lo: f64, hi: f64, floor_zero: bool) -> (f64, f64) {
    let (lo, hi) = if lo.is_finite() && hi.is_finite() {
        (lo, hi)
    } else {
        (0.0, 1.0)
    };
    let lo = if floor_zero { lo.min(0.0) } else { lo };
    let hi = if hi > lo { hi } else { lo + 1.0 };
    (lo, hi + (hi - lo) * 0.05)
}

fn finite(points: &[(f64, f64)]) -> impl Iterator<Item = (f64, f64)> + '_ {
    points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
}

/// Draws `c` into `area`.
fn draw_lines(area: &Area<'_>, c: &LineChart) -> Result<(), PlotError> {
    let all = || c.series.iter().flat_map(|s| finite(&s.points));
    let (x0, x1) = span(
        all().map(|p| p.0).fold(f64::INFINITY, f64::min),
        all().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max),
        false,
    );
    let (y0, y1) = span(
        all().map(|p| p.1).fold(f64::INFINITY, f64::min),
        all().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max),
        true,
    );
    let mut chart = ChartBuilder::on(area)
        .caption(&c.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(&c.x_label)
        .y_desc(&c.y_label)
        .draw()
        .map_err(err)?;
    for (i, s) in c.series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(finite(&s.points), color.stroke_width(2)))
            .map_err(err)?
            .label(s.label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    if !c.series.is_empty() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
    }
    Ok(())
}

/// Draws `c` into `area`.
fn draw_bars(area: &Area<'_>, c: &BarChart) -> Result<(), PlotError> {
    let xs = c
        .bars
        .iter()
        .map(|b| b.0)
        .chain(c.markers.iter().map(|m| m.0))
        .filter(|x| x.is_finite());
    let (lo, hi) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    });
    let (x0, x1) = if lo.is_finite() {
        (lo - 0.6, hi + 0.6)
    } else {
        (0.0, 1.0)
    };
    let top = finite(&c.bars).map(|b| b.1).fold(0.0, f64::max);
    let (y0, y1) = span(0.0, top, true);
    let mut chart = ChartBuilder::on(area)
        .caption(&c.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc(&c.x_label)
        .y_desc(&c.y_label)
        .draw()
        .map_err(err)?;
    let fill = COLORS[0].filled();
    chart
        .draw_series(
            finite(&c.bars).map(|(x, h)| Rectangle::new([(x - 0.4, 0.0), (x + 0.4, h)], fill)),
        )
        .map_err(err)?;
    for (i, (x, label)) in c.markers.iter().enumerate() {
        let color = COLORS[(i + 3) % COLORS.len()];
        if !x.is_finite() {
            continue;
        }
        chart
            .draw_series(LineSeries::new([(*x, y0), (*x, y1)], color.stroke_width(2)))
            .map_err(err)?
            .label(format!("{label} = {x:.2}"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    if !c.markers.is_empty() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_non_finite_data_still_draw() {
        let fig = Figure {
            width: 600,
            height: 300,
            panels: vec![
                Panel::Bars(BarChart::default()),
                Panel::Lines(LineChart {
                    series: vec![Series {
                        label: "nan".into(),
                        points: vec![(f64::NAN, 1.0), (0.0, f64::INFINITY)],
                    }],
                    ..LineChart::default()
                }),
            ],
        };
        let svg = fig.to_svg().unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn series_and_markers_are_drawn() {
        let fig = Figure {
            width: 800,
            height: 300,
            panels: vec![
                Panel::Bars(BarChart {
                    title: "hops".into(),
                    bars: vec![(1.0, 3.0), (2.0, 5.0)],
                    markers: vec![(1.5, "log16 N".into())],
                    ..BarChart::default()
                }),
                Panel::Lines(LineChart {
                    title: "sweep".into(),
                    series: vec![
                        Series {
                            label: "first".into(),
                            points: vec![(0.0, 0.0), (1.0, 2.0)],
                        },
                        Series {
                            label: "second".into(),
                            points: vec![(0.0, 1.0), (1.0, 1.0)],
                        },
                    ],
                    ..LineChart::default()
                }),
            ],
        };
        let svg = fig.to_svg().unwrap();
        for text in ["hops", "sweep", "first", "second", "log16 N = 1.50"] {
            assert!(svg.contains(text), "{text}");
        }
        assert!(svg.matches("<rect").count() >= 3);
    }
}
