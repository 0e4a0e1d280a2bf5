//! Charts as inline SVG, drawn with plotters' SVG backend: lines over time, box plots, bars with
//! intervals, and a campaign's slot strip. Each function returns one `<svg>` element as text;
//! text is left to the browser's fonts, so the SVG needs no font files.

use chrono::{DateTime, Utc};
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

/// Tableau 10: distinguishable, and legible in greyscale print by order.
const PALETTE: [RGBColor; 10] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0x76, 0xb7, 0xb2),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0xed, 0xc9, 0x48),
    RGBColor(0xb0, 0x7a, 0xa1),
    RGBColor(0xff, 0x9d, 0xa7),
    RGBColor(0x9c, 0x75, 0x5f),
    RGBColor(0xba, 0xb0, 0xac),
];

/// The colour of series `i`.
pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

const WIDTH: u32 = 760;
const FONT: &str = "sans-serif";

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type Result<T> = std::result::Result<T, String>;

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("chart: {e:?}")
}

fn svg(height: u32, draw: impl FnOnce(&Area<'_>) -> Result<()>) -> Result<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        draw(&root)?;
        root.present().map_err(err)?;
    }
    Ok(out)
}

/// One named line over time.
pub struct Line {
    pub name: String,
    pub points: Vec<(DateTime<Utc>, f64)>,
}

/// The series' names and marks, in a light box at `position`.
fn legend<'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, CT>,
    position: SeriesLabelPosition,
) -> Result<()> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(0xcc, 0xcc, 0xcc))
        .label_font((FONT, 12))
        .position(position)
        .draw()
        .map_err(err)
}

/// Lines over time, one colour per line, with a legend.
pub fn time_lines(title: &str, y_desc: &str, lines: &[Line], percent: bool) -> Result<String> {
    let all = lines.iter().flat_map(|l| l.points.iter());
    let (mut t0, mut t1, mut ymax) = (None::<DateTime<Utc>>, None::<DateTime<Utc>>, 0.0f64);
    for (t, y) in all {
        t0 = Some(t0.map_or(*t, |a| a.min(*t)));
        t1 = Some(t1.map_or(*t, |a| a.max(*t)));
        ymax = ymax.max(*y);
    }
    let (Some(t0), Some(mut t1)) = (t0, t1) else {
        return Err(format!("{title}: no points"));
    };
    if t1 <= t0 {
        t1 = t0 + chrono::Duration::hours(1);
    }
    // Percentages zoom to the band the data uses, in steps of 10 points (the axis says where
    // it starts); other values start at 0.
    let ymin_data = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(f64::INFINITY, f64::min);
    let (ymin, ymax) = if percent {
        (
            (((ymin_data - 5.0) / 10.0).floor() * 10.0).clamp(0.0, 90.0),
            (((ymax + 5.0) / 10.0).ceil() * 10.0).clamp(10.0, 100.0),
        )
    } else if ymax > 0.0 {
        (0.0, ymax * 1.1)
    } else {
        (0.0, 1.0)
    };
    let span_days = (t1 - t0).num_hours() > 48;
    svg(340, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 18))
            .margin(12)
            .margin_right(28)
            .x_label_area_size(34)
            .y_label_area_size(56)
            .build_cartesian_2d(t0..t1, ymin..ymax)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_labels(6)
            .y_labels(6)
            .x_label_formatter(&|t: &DateTime<Utc>| {
                if span_days {
                    t.format("%m-%d").to_string()
                } else {
                    t.format("%m-%d %H:%M").to_string()
                }
            })
            .y_desc(y_desc)
            .light_line_style(RGBColor(0xee, 0xee, 0xee))
            .label_style((FONT, 12))
            .draw()
            .map_err(err)?;
        for (i, l) in lines.iter().enumerate() {
            let c = color(i);
            chart
                .draw_series(LineSeries::new(l.points.iter().copied(), c.stroke_width(2)))
                .map_err(err)?
                .label(l.name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(3))
                });
            if l.points.len() <= 60 {
                chart
                    .draw_series(l.points.iter().map(|p| Circle::new(*p, 2, c.filled())))
                    .map_err(err)?;
            }
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
}

/// One named line over a numeric axis; `dashed` for a second figure of the same series.
pub struct XyLine {
    pub name: String,
    pub color: usize,
    pub dashed: bool,
    pub points: Vec<(f64, f64)>,
}

/// Lines over a numeric x axis (both axes from 0), points marked, with a legend.
pub fn xy_lines(title: &str, x_desc: &str, y_desc: &str, lines: &[XyLine]) -> Result<String> {
    let all = || lines.iter().flat_map(|l| l.points.iter());
    if all().next().is_none() {
        return Err(format!("{title}: no points"));
    }
    let xmax = all().map(|p| p.0).fold(0.0f64, f64::max).max(1e-9) * 1.05;
    let ymax = all().map(|p| p.1).fold(0.0f64, f64::max).max(1e-9) * 1.1;
    svg(340, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 18))
            .margin(12)
            .margin_right(28)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..xmax, 0.0..ymax)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_labels(8)
            .y_labels(6)
            .x_desc(x_desc)
            .y_desc(y_desc)
            .light_line_style(RGBColor(0xee, 0xee, 0xee))
            .label_style((FONT, 12))
            .draw()
            .map_err(err)?;
        for l in lines {
            let c = color(l.color);
            let style = c.stroke_width(2);
            let drawn = if l.dashed {
                chart.draw_series(DashedLineSeries::new(l.points.iter().copied(), 6, 4, style))
            } else {
                chart.draw_series(LineSeries::new(l.points.iter().copied(), style))
            };
            let dashed = l.dashed;
            drawn
                .map_err(err)?
                .label(l.name.as_str())
                .legend(move |(x, y)| {
                    let end = if dashed { x + 8 } else { x + 18 };
                    PathElement::new(vec![(x, y), (end, y)], c.stroke_width(3))
                });
            chart
                .draw_series(l.points.iter().map(|p| Circle::new(*p, 3, c.filled())))
                .map_err(err)?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft)
    })
}

/// One labelled point of a [`scatter`], with its horizontal interval.
pub struct ScatterPoint {
    pub label: String,
    pub x: f64,
    pub y: f64,
    /// The x value's interval, drawn as a whisker when given.
    pub x_ci: Option<(f64, f64)>,
    /// Drawn filled and joined by the front line.
    pub front: bool,
}

/// Labelled points over x (from 0) and y (0 to 1), one colour each; the points marked `front`
/// are joined left to right by a dashed line (a Pareto front).
pub fn scatter(title: &str, x_desc: &str, y_desc: &str, points: &[ScatterPoint]) -> Result<String> {
    if points.is_empty() {
        return Err(format!("{title}: no points"));
    }
    let xmax = points
        .iter()
        .map(|p| p.x_ci.map_or(p.x, |(_, hi)| hi.max(p.x)))
        .filter(|x| x.is_finite())
        .fold(0.0f64, f64::max)
        .max(1e-12)
        * 1.15;
    // Enough places that the ticks of a fraction of a cent differ: two significant digits.
    let decimals = (2 - xmax.log10().floor() as i32).clamp(0, 12) as usize;
    svg(360, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 18))
            .margin(12)
            .margin_right(28)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..xmax, 0.0..1.05)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_labels(6)
            .y_labels(6)
            .x_desc(x_desc)
            .y_desc(y_desc)
            .x_label_formatter(&|x| format!("{x:.decimals$}"))
            .light_line_style(RGBColor(0xee, 0xee, 0xee))
            .label_style((FONT, 12))
            .draw()
            .map_err(err)?;
        let mut front: Vec<(f64, f64)> = points
            .iter()
            .filter(|p| p.front)
            .map(|p| (p.x, p.y))
            .collect();
        front.sort_by(|a, b| a.0.total_cmp(&b.0));
        if front.len() > 1 {
            chart
                .draw_series(DashedLineSeries::new(
                    front,
                    6,
                    4,
                    RGBColor(0x88, 0x88, 0x88).stroke_width(1),
                ))
                .map_err(err)?;
        }
        for (i, p) in points.iter().enumerate() {
            let c = color(i);
            if let Some((lo, hi)) = p.x_ci {
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(lo, p.y), (hi, p.y)],
                        c.stroke_width(1),
                    )))
                    .map_err(err)?;
            }
            let style = if p.front {
                c.filled()
            } else {
                c.stroke_width(2)
            };
            chart
                .draw_series(std::iter::once(Circle::new((p.x, p.y), 5, style)))
                .map_err(err)?
                .label(p.label.as_str())
                .legend(move |(x, y)| Circle::new((x + 8, y), 4, c.filled()));
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)
    })
}

type Plot<'a> = DrawingArea<SVGBackend<'a>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A chart of horizontal rows, one per label, over `0..xmax`; `draw_row(plot, i, y)` draws row
/// `i` around height `y`, and the label (with its n) goes left of the axis.
fn rows_chart(
    title: &str,
    x_desc: &str,
    xmax: f64,
    labels: &[String],
    row_height: u32,
    draw_row: impl Fn(&Plot<'_>, usize, f64) -> Result<()>,
) -> Result<String> {
    if labels.is_empty() {
        return Err(format!("{title}: no rows"));
    }
    let n = labels.len() as f64;
    // About 7 px a character at 12 px sans-serif, within reason.
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0) as i32;
    let label_width = (longest * 7 + 16).clamp(120, 340);
    svg(90 + row_height * labels.len() as u32, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 18))
            .margin(12)
            .margin_right(28)
            .x_label_area_size(34)
            .y_label_area_size(label_width)
            .build_cartesian_2d(0.0..xmax, -0.5..(n - 0.5))
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_desc(x_desc)
            .light_line_style(RGBColor(0xee, 0xee, 0xee))
            .label_style((FONT, 12))
            .draw()
            .map_err(err)?;
        for (i, label) in labels.iter().enumerate() {
            let y = n - 1.0 - i as f64;
            draw_row(chart.plotting_area(), i, y)?;
            let (px, py) = chart.backend_coord(&(0.0, y));
            root.draw(&Text::new(
                label.clone(),
                (px - label_width + 6, py - 6),
                (FONT, 12).into_font(),
            ))
            .map_err(err)?;
        }
        Ok(())
    })
}

/// A horizontal whisker from `lo` to `hi` at height `y`, with end ticks of half-height `tick`.
fn whisker(plot: &Plot<'_>, lo: f64, hi: f64, y: f64, tick: f64) -> Result<()> {
    plot.draw(&PathElement::new(
        vec![(lo, y), (hi, y)],
        BLACK.stroke_width(1),
    ))
    .map_err(err)?;
    for x in [lo, hi] {
        plot.draw(&PathElement::new(
            vec![(x, y - tick), (x, y + tick)],
            BLACK.stroke_width(1),
        ))
        .map_err(err)?;
    }
    Ok(())
}

/// The five numbers of one box: whiskers at p5 and p95, box from p25 to p75, line at p50.
pub struct BoxRow {
    pub name: String,
    pub p05: f64,
    pub p25: f64,
    pub p50: f64,
    pub p75: f64,
    pub p95: f64,
    pub n: u64,
}

/// Horizontal box plots, one row per target.
pub fn boxes(title: &str, x_desc: &str, rows: &[BoxRow]) -> Result<String> {
    let xmax = rows.iter().map(|r| r.p95).fold(0.0, f64::max).max(1e-3) * 1.08;
    let labels: Vec<String> = rows
        .iter()
        .map(|r| format!("{} (n={})", r.name, r.n))
        .collect();
    rows_chart(title, x_desc, xmax, &labels, 42, |plot, i, y| {
        let r = &rows[i];
        whisker(plot, r.p05, r.p95, y, 0.15)?;
        plot.draw(&Rectangle::new(
            [(r.p25, y - 0.3), (r.p75, y + 0.3)],
            color(i).mix(0.75).filled(),
        ))
        .map_err(err)?;
        plot.draw(&PathElement::new(
            vec![(r.p50, y - 0.3), (r.p50, y + 0.3)],
            BLACK.stroke_width(2),
        ))
        .map_err(err)
    })
}

/// One bar with its interval.
pub struct Bar {
    pub name: String,
    pub value: f64,
    pub lo: f64,
    pub hi: f64,
    pub n: u64,
}

/// Horizontal bars with 95% interval whiskers (none where `lo == hi`), one colour per bar.
pub fn bars(title: &str, x_desc: &str, rows: &[Bar], xmax: Option<f64>) -> Result<String> {
    let xmax = xmax.unwrap_or_else(|| {
        rows.iter()
            .map(|r| r.hi.max(r.value))
            .fold(0.0, f64::max)
            .max(1e-3)
            * 1.08
    });
    let labels: Vec<String> = rows
        .iter()
        .map(|r| format!("{} (n={})", r.name, r.n))
        .collect();
    rows_chart(title, x_desc, xmax, &labels, 34, |plot, i, y| {
        let r = &rows[i];
        plot.draw(&Rectangle::new(
            [(0.0, y - 0.32), (r.value, y + 0.32)],
            color(i).mix(0.85).filled(),
        ))
        .map_err(err)?;
        if r.hi > r.lo {
            whisker(plot, r.lo, r.hi, y, 0.12)?;
        }
        Ok(())
    })
}

/// A campaign's slots as a strip of cells: present, incomplete (shards missing) or missing.
pub fn slot_strip(
    title: &str,
    expected: u64,
    present: &dyn Fn(u64) -> bool,
    incomplete: &dyn Fn(u64) -> bool,
) -> Result<String> {
    let per_row = 56u64;
    let rows = expected.div_ceil(per_row).max(1);
    let cell = 12i32;
    svg(70 + rows as u32 * 14 + 24, |root| {
        root.draw(&Text::new(
            title.to_string(),
            (12, 10),
            (FONT, 18).into_font(),
        ))
        .map_err(err)?;
        for s in 0..expected {
            let (col, row) = ((s % per_row) as i32, (s / per_row) as i32);
            let (x, y) = (12 + col * (cell + 1), 40 + row * (cell + 2));
            let fill = if !present(s) {
                RGBColor(0xe1, 0x57, 0x59)
            } else if incomplete(s) {
                RGBColor(0xed, 0xc9, 0x48)
            } else {
                RGBColor(0x59, 0xa1, 0x4f)
            };
            root.draw(&Rectangle::new(
                [(x, y), (x + cell, y + cell)],
                fill.filled(),
            ))
            .map_err(err)?;
        }
        let y = 44 + rows as i32 * (cell + 2);
        for (i, (label, c)) in [
            ("present", RGBColor(0x59, 0xa1, 0x4f)),
            ("shards missing", RGBColor(0xed, 0xc9, 0x48)),
            ("missing", RGBColor(0xe1, 0x57, 0x59)),
        ]
        .into_iter()
        .enumerate()
        {
            let x = 12 + i as i32 * 150;
            root.draw(&Rectangle::new([(x, y), (x + cell, y + cell)], c.filled()))
                .map_err(err)?;
            root.draw(&Text::new(label, (x + cell + 6, y), (FONT, 12).into_font()))
                .map_err(err)?;
        }
        Ok(())
    })
}

/// One target on a radar: a value in [0, 1] per axis (`None`: not measured, drawn at 0 and
/// named in the caption by the caller).
pub struct RadarSeries {
    pub name: String,
    pub values: Vec<Option<f64>>,
}

/// A capability radar: one axis per capability, one polygon per target.
pub fn radar(title: &str, axes: &[String], series: &[RadarSeries]) -> Result<String> {
    if axes.len() < 3 || series.is_empty() {
        return Err(format!("{title}: a radar needs three axes and a series"));
    }
    let (cx, cy, radius) = (WIDTH as f64 / 2.0 - 90.0, 250.0, 170.0);
    let n = axes.len();
    let at = |i: usize, v: f64| -> (i32, i32) {
        let angle = std::f64::consts::TAU * i as f64 / n as f64 - std::f64::consts::FRAC_PI_2;
        (
            (cx + radius * v * angle.cos()).round() as i32,
            (cy + radius * v * angle.sin()).round() as i32,
        )
    };
    svg(500, |root| {
        root.draw(&Text::new(
            title.to_string(),
            (12, 10),
            (FONT, 18).into_font(),
        ))
        .map_err(err)?;
        let grid = RGBColor(0xd9, 0xdd, 0xe3);
        for ring in [0.25, 0.5, 0.75, 1.0] {
            let mut pts: Vec<_> = (0..n).map(|i| at(i, ring)).collect();
            pts.push(pts[0]);
            root.draw(&PathElement::new(pts, grid.stroke_width(1)))
                .map_err(err)?;
        }
        for (i, label) in axes.iter().enumerate() {
            root.draw(&PathElement::new(
                vec![at(i, 0.0), at(i, 1.0)],
                grid.stroke_width(1),
            ))
            .map_err(err)?;
            let (x, y) = at(i, 1.08);
            // Labels sit outside the rim: left of it on the left, right of it on the right.
            let width = label.chars().count() as i32 * 7;
            let x = if f64::from(x) > cx + 10.0 {
                x + 4
            } else if f64::from(x) < cx - 10.0 {
                x - width - 4
            } else {
                x - width / 2
            };
            root.draw(&Text::new(
                label.clone(),
                (x, y - 6),
                (FONT, 12).into_font(),
            ))
            .map_err(err)?;
        }
        for (k, s) in series.iter().enumerate() {
            let c = color(k);
            let mut pts: Vec<_> = s
                .values
                .iter()
                .enumerate()
                .map(|(i, v)| at(i, v.unwrap_or(0.0).clamp(0.0, 1.0)))
                .collect();
            root.draw(&Polygon::new(pts.clone(), c.mix(0.15).filled()))
                .map_err(err)?;
            pts.push(pts[0]);
            root.draw(&PathElement::new(pts, c.stroke_width(2)))
                .map_err(err)?;
            let (lx, ly) = (WIDTH as i32 - 170, 50 + 20 * k as i32);
            root.draw(&Rectangle::new([(lx, ly), (lx + 12, ly + 12)], c.filled()))
                .map_err(err)?;
            root.draw(&Text::new(
                s.name.clone(),
                (lx + 18, ly),
                (FONT, 12).into_font(),
            ))
            .map_err(err)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_chart_is_one_svg_with_a_path_per_series_and_a_legend() {
        let t0 = DateTime::from_timestamp(1_764_000_000, 0).unwrap();
        let line = |name: &str, k: f64| Line {
            name: name.into(),
            points: (0..5)
                .map(|i| (t0 + chrono::Duration::hours(i), k + i as f64))
                .collect(),
        };
        let s = time_lines("Latency", "s", &[line("a", 1.0), line("b", 2.0)], false).unwrap();
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        // Each series draws its line and its legend mark in its own colour.
        for c in ["#4E79A7", "#F28E2B"] {
            let marks = format!("<polyline fill=\"none\" opacity=\"1\" stroke=\"{c}\"");
            assert_eq!(s.matches(&marks).count(), 2, "{c}");
        }
        assert!(s.contains(">\na\n</text>") && s.contains(">\nb\n</text>"));
    }

    #[test]
    fn an_empty_chart_is_an_error_not_a_blank_picture() {
        assert!(time_lines("x", "s", &[], false).is_err());
        assert!(boxes("x", "s", &[]).is_err());
    }
}
