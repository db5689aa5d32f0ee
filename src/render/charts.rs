//! The SVG charts of the HTML report, drawn with plotters: a timeline of the run and the
//! RTO by phase.

use std::ops::Range;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{gate, phase_gate, run_seconds};
use crate::model::report::{DrillReport, Gate, Rto};

pub(super) const OK_COLOR: RGBColor = RGBColor(0x2D, 0xA4, 0x4E);
pub(super) const BAD_COLOR: RGBColor = RGBColor(0xD7, 0x3A, 0x49);
pub(super) const FAULT_COLOR: RGBColor = RGBColor(0x6F, 0x42, 0xC1);
const GRID_TEXT: RGBColor = RGBColor(0x24, 0x29, 0x2F);
const PHASE_COLORS: [RGBColor; 7] = [
    RGBColor(0x8C, 0x56, 0x4B),
    RGBColor(0x1F, 0x77, 0xB4),
    RGBColor(0xFF, 0x7F, 0x0E),
    RGBColor(0x2C, 0xA0, 0x2C),
    RGBColor(0x94, 0x67, 0xBD),
    RGBColor(0x17, 0xBE, 0xCF),
    RGBColor(0xBC, 0xBD, 0x22),
];

fn font(size: u32) -> TextStyle<'static> {
    TextStyle::from(("sans-serif", size).into_font()).color(&GRID_TEXT)
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;
type Root<'b> = DrawingArea<SVGBackend<'b>, Shift>;
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Finite, else 0: keeps NaN and infinities away from chart coordinates.
fn fin(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

/// A chart with a seconds axis below and no y axis: its rows are labelled by
/// [`row_label`] instead, with names a numeric axis cannot show.
fn seconds_chart<'a, 'b>(
    root: &'a Root<'b>,
    x: Range<f64>,
    y: Range<f64>,
    y_label_area: u32,
    x_desc: &str,
) -> Result<Chart<'a, 'b>, Box<dyn std::error::Error>> {
    let digits = if x.end - x.start > 20.0 { 0 } else { 1 };
    let mut chart = ChartBuilder::on(root)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(y_label_area)
        .build_cartesian_2d(x, y)?;
    let fmt = |v: &f64| format!("{v:.digits$}");
    chart
        .configure_mesh()
        .disable_y_mesh()
        .disable_y_axis()
        .x_desc(x_desc)
        .x_label_formatter(&fmt)
        .label_style(font(12))
        .axis_desc_style(font(12))
        .light_line_style(RGBColor(0xEE, 0xEE, 0xEE))
        .draw()?;
    Ok(chart)
}

/// A row's name left of the plot, at height `y`; `x0` is the left end of the x axis.
fn row_label(root: &Root, chart: &Chart, x0: f64, label: String, y: f64) -> DrawResult {
    let (_, py) = chart.backend_coord(&(x0, y));
    let (px, _) = chart.backend_coord(&(x0, 0.0));
    root.draw(&Text::new(
        label,
        (px - 8, py),
        font(13).pos(Pos::new(HPos::Right, VPos::Center)),
    ))?;
    Ok(())
}

/// The run on one time axis: steps as bars, fault events as markers, probes as dots.
pub(super) fn timeline_svg(r: &DrillReport) -> Result<String, String> {
    let x = timeline_range(r);
    let mut buf = String::new();
    draw_timeline(&mut buf, r, x).map_err(|e| e.to_string())?;
    Ok(buf)
}

/// Everything recorded fits, padded by 2 % either side; an empty run still gets 1 s.
fn timeline_range(r: &DrillReport) -> Range<f64> {
    let ends = r
        .steps
        .iter()
        .map(|s| fin(s.start_s) + fin(s.seconds).max(0.0))
        .chain(r.fault_events.iter().map(|f| fin(f.at_s)))
        .chain(r.probes.iter().map(|p| fin(p.at_s)))
        .chain(r.snapshots.iter().map(|s| fin(s.at_s)));
    let starts = r
        .steps
        .iter()
        .map(|s| fin(s.start_s))
        .chain(r.fault_events.iter().map(|f| fin(f.at_s)))
        .chain(r.probes.iter().map(|p| fin(p.at_s)));
    let x0 = starts.fold(0.0_f64, f64::min);
    let mut x1 = ends.fold(fin(run_seconds(r)).min(1e7), f64::max);
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let pad = (x1 - x0) * 0.02;
    (x0 - pad)..(x1 + pad)
}

fn draw_timeline(buf: &mut String, r: &DrillReport, x: Range<f64>) -> DrawResult {
    let (x0, x1) = (x.start, x.end);
    let root = SVGBackend::with_string(buf, (960, 280)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = seconds_chart(&root, x, 0f64..3f64, 70, "seconds since run start")?;
    for (label, y) in [("steps", 2.5), ("faults", 1.5), ("probes", 0.5)] {
        row_label(&root, &chart, x0, label.to_string(), y)?;
    }
    draw_fault_events(&mut chart, r)?;
    // Zero-length steps still get a sliver, so that none is invisible.
    draw_steps(&mut chart, r, (x1 - x0) * 0.002)?;
    chart.draw_series(r.probes.iter().map(|p| {
        let color = if p.writable { OK_COLOR } else { BAD_COLOR };
        Circle::new((fin(p.at_s), 0.5), 5, color.filled())
    }))?;
    root.present()?;
    Ok(())
}

/// A faint vertical rule across all rows and a marker per fault event, labels alternating
/// above and below the marker so that close events stay legible.
fn draw_fault_events(chart: &mut Chart, r: &DrillReport) -> DrawResult {
    for f in &r.fault_events {
        let x = fin(f.at_s);
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(x, 0.05), (x, 2.95)],
            FAULT_COLOR.mix(0.35).stroke_width(1),
        )))?;
    }
    chart.draw_series(
        r.fault_events
            .iter()
            .map(|f| TriangleMarker::new((fin(f.at_s), 1.5), 7, FAULT_COLOR.filled())),
    )?;
    chart.draw_series(r.fault_events.iter().enumerate().map(|(i, f)| {
        let y = if i % 2 == 0 { 1.85 } else { 1.15 };
        Text::new(
            format!("{} {}", f.fault, f.member),
            (fin(f.at_s), y),
            font(11).pos(Pos::new(HPos::Left, VPos::Center)),
        )
    }))?;
    Ok(())
}

/// Bars colored by outcome, numbered when there is room; at least `min_w` seconds wide.
fn draw_steps(chart: &mut Chart, r: &DrillReport, min_w: f64) -> DrawResult {
    for st in &r.steps {
        let a = fin(st.start_s);
        let b = a + fin(st.seconds).max(min_w);
        let color = if st.ok { OK_COLOR } else { BAD_COLOR };
        // A white outline keeps back-to-back steps apart.
        chart.draw_series([
            Rectangle::new([(a, 2.15), (b, 2.85)], color.filled()),
            Rectangle::new([(a, 2.15), (b, 2.85)], WHITE.stroke_width(1)),
        ])?;
        let (pa, _) = chart.backend_coord(&(a, 2.5));
        let (pb, _) = chart.backend_coord(&(b, 2.5));
        if pb - pa >= 22 {
            chart.draw_series(std::iter::once(Text::new(
                format!("{}", st.index),
                ((a + b) / 2.0, 2.5),
                font(11)
                    .color(&WHITE)
                    .pos(Pos::new(HPos::Center, VPos::Center)),
            )))?;
        }
    }
    Ok(())
}

/// Phases with their seconds clamped to be drawable, the bar lengths' sum (or the recorded
/// total when larger), and the x axis's end.
struct RtoLayout<'a> {
    phases: Vec<(&'a str, f64)>,
    total: f64,
    x1: f64,
}

impl RtoLayout<'_> {
    /// Space between a bar's end and its label, in seconds: a fixed share of the axis, so
    /// that it looks the same at every scale.
    fn label_gap(&self) -> f64 {
        self.x1 * 0.004
    }
}

/// The x axis reaches every gate limit (a phase gate's counted from the phase's start),
/// with room right of the longest bar for its label.
fn rto_layout<'a>(r: &DrillReport, rto: &'a Rto) -> RtoLayout<'a> {
    let phases: Vec<(&str, f64)> = rto
        .phases
        .iter()
        .map(|p| (p.name.as_str(), fin(p.seconds).max(0.0)))
        .collect();
    let total: f64 = phases
        .iter()
        .map(|p| p.1)
        .sum::<f64>()
        .max(fin(rto.total_s));
    let mut limit_x = total;
    let mut start = 0.0;
    for (name, secs) in &phases {
        if let Some(g) = phase_gate(r, name) {
            limit_x = limit_x.max(start + fin(g.limit));
        }
        start += secs;
    }
    if let Some(g) = gate(r, Gate::MaxRtoS) {
        limit_x = limit_x.max(fin(g.limit));
    }
    let x1 = if limit_x > 0.0 { limit_x * 1.18 } else { 1.0 };
    RtoLayout { phases, total, x1 }
}

/// The RTO broken down: a total bar segmented by phase, then one bar per phase placed
/// where it ran, with a black tick at each phase gate's limit (from the phase's start).
pub(super) fn rto_svg(r: &DrillReport, rto: &Rto) -> Result<String, String> {
    let layout = rto_layout(r, rto);
    let mut buf = String::new();
    draw_rto(&mut buf, r, rto, &layout).map_err(|e| e.to_string())?;
    Ok(buf)
}

fn draw_rto(buf: &mut String, r: &DrillReport, rto: &Rto, layout: &RtoLayout) -> DrawResult {
    let rows = layout.phases.len() + 1;
    let height = (70 + 30 * rows) as u32;
    let root = SVGBackend::with_string(buf, (960, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = seconds_chart(
        &root,
        0f64..layout.x1,
        0f64..rows as f64,
        130,
        "seconds since the disaster",
    )?;
    let total_y = rows as f64 - 0.5;
    row_label(&root, &chart, 0.0, "total".to_string(), total_y)?;
    for (i, (name, _)) in layout.phases.iter().enumerate() {
        row_label(
            &root,
            &chart,
            0.0,
            name.to_string(),
            total_y - 1.0 - i as f64,
        )?;
    }
    draw_phase_bars(&mut chart, r, layout, total_y)?;
    chart.draw_series(std::iter::once(Text::new(
        format!("{:.2} s", fin(rto.total_s)),
        (layout.total + layout.label_gap(), total_y),
        font(12).pos(Pos::new(HPos::Left, VPos::Center)),
    )))?;
    if let Some(g) = gate(r, Gate::MaxRtoS) {
        chart.draw_series(std::iter::once(gate_tick(fin(g.limit), total_y)))?;
    }
    root.present()?;
    Ok(())
}

fn gate_tick(x: f64, y: f64) -> PathElement<(f64, f64)> {
    PathElement::new(vec![(x, y - 0.45), (x, y + 0.45)], BLACK.stroke_width(2))
}

/// Each phase twice: as its segment of the total bar and on its own row, in one colour.
fn draw_phase_bars(
    chart: &mut Chart,
    r: &DrillReport,
    layout: &RtoLayout,
    total_y: f64,
) -> DrawResult {
    let gap = layout.label_gap();
    let mut start = 0.0;
    for (i, (name, secs)) in layout.phases.iter().enumerate() {
        let color = PHASE_COLORS[i % PHASE_COLORS.len()];
        let end = start + secs;
        let y = total_y - 1.0 - i as f64;
        chart.draw_series([
            Rectangle::new(
                [(start, total_y - 0.32), (end, total_y + 0.32)],
                color.filled(),
            ),
            Rectangle::new([(start, y - 0.32), (end, y + 0.32)], color.filled()),
        ])?;
        chart.draw_series(std::iter::once(Text::new(
            format!("{secs:.2} s"),
            (end + gap, y),
            font(12).pos(Pos::new(HPos::Left, VPos::Center)),
        )))?;
        if let Some(g) = phase_gate(r, name) {
            chart.draw_series(std::iter::once(gate_tick(start + fin(g.limit), y)))?;
        }
        start = end;
    }
    Ok(())
}
