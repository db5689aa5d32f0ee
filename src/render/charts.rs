//! The report's time axis, shared by the timeline (`timeline.rs`) and the history chart,
//! and the RTO by phase on it, zoomed to the RTO itself.

use super::svg::{self, Axis, INK, fin, rect, text};
use super::{gate, phase_gate, run_seconds};
use crate::model::report::{DrillReport, FaultEventRecord, Gate, Rto};
use crate::model::scenario::StepKind;

pub(super) const WIDTH: f64 = 960.0;
pub(super) const LEFT: f64 = 92.0;
pub(super) const PLOT: f64 = WIDTH - LEFT - 24.0;

pub(super) const PHASE_COLORS: [&str; 7] = [
    "#8C564B", "#1F77B4", "#FF7F0E", "#2CA02C", "#9467BD", "#17BECF", "#BCBD22",
];

/// When the last thing recorded happened (the run's end, or later if a record says so).
pub(super) fn run_end(r: &DrillReport) -> f64 {
    let ends = r
        .steps
        .iter()
        .map(|s| fin(s.start_s) + fin(s.seconds).max(0.0))
        .chain(r.fault_events.iter().map(|f| fin(f.at_s)))
        .chain(r.probes.iter().map(|p| fin(p.at_s)))
        .chain(r.write_windows.iter().map(|w| fin(w.to_s)));
    ends.fold(fin(run_seconds(r)).min(1e7), f64::max)
}

/// Everything recorded fits, padded by 2 % either side; an empty run still gets 1 s.
pub(super) fn timeline_axis(r: &DrillReport) -> Axis {
    let x1 = run_end(r);
    let pad = x1.max(1.0) * 0.02;
    Axis::new(-pad, x1 + pad, LEFT, PLOT)
}

/// Whether a fault event was the scenario's (during a fault or heal step) rather than
/// the harness's own doing (a restore stopping survivors, a member replaced). Events are
/// stamped by the wall clock when the fault took effect and steps by the run's monotonic
/// clock, so a step's span is widened by a quarter second to hold its own events.
pub(super) fn injected(r: &DrillReport, f: &FaultEventRecord) -> bool {
    if let Some(by) = f.by {
        return by == crate::model::fault::Actor::Scenario;
    }
    // Reports from before events said who made them: tell by the step around them.
    let at = fin(f.at_s);
    let during = |s: &&crate::model::report::StepRecord| {
        let start = fin(s.start_s);
        start - 0.05 <= at && at <= start + fin(s.seconds).max(0.0) + 0.25
    };
    let faulting =
        |s: &&crate::model::report::StepRecord| matches!(s.kind, StepKind::Fault | StepKind::Heal);
    r.steps.is_empty() || r.steps.iter().filter(faulting).any(|s| during(&s))
}

/// The RTO by phase on the run's time axis, zoomed to the RTO: a total bar segmented by
/// phase, then each phase on its own row where it ran. Gate limits are lines where they
/// fall inside the chart, and a note where they lie beyond it (the axis is never
/// stretched to a gate, which would shrink the RTO to a sliver).
pub(super) fn rto_svg(r: &DrillReport, rto: &Rto) -> String {
    let start = rto.start_s.map_or(0.0, fin);
    let phases: Vec<(&str, f64)> = rto
        .phases
        .iter()
        .map(|p| (p.name.as_str(), fin(p.seconds).max(0.0)))
        .collect();
    let total = phases
        .iter()
        .map(|p| p.1)
        .sum::<f64>()
        .max(fin(rto.total_s));
    // Room right of the longest bar for its label.
    let axis = Axis::new(
        start,
        start + total.max(0.01) * 1.12,
        130.0,
        WIDTH - 130.0 - 24.0,
    );
    let rows = phases.len() + 1;
    let bottom = 16.0 + 30.0 * rows as f64;
    let mut out = String::new();
    let mut notes = vec![];
    let title = match rto.start_s {
        Some(_) => "seconds since the run started",
        None => "seconds since the disaster",
    };
    axis.draw(&mut out, 8.0, bottom, title);
    text(&mut out, 120.0, 34.0, "end", "row", "total");
    let mut at = start;
    for (i, (name, secs)) in phases.iter().enumerate() {
        let color = PHASE_COLORS[i % PHASE_COLORS.len()];
        let (a, b) = (axis.px(at), axis.px(at + secs));
        let y = 16.0 + 30.0 * (i + 1) as f64;
        let title = format!("{name}: {secs:.2} s, from {at:.2} s");
        rect(&mut out, a, 18.0, (b - a).max(1.0), 22.0, color, &title);
        rect(&mut out, a, y + 2.0, (b - a).max(1.0), 22.0, color, &title);
        text(&mut out, 120.0, y + 18.0, "end", "small", name);
        text(
            &mut out,
            b + 4.0,
            y + 17.0,
            "start",
            "small",
            &format!("{secs:.2} s"),
        );
        if let Some(g) = phase_gate(r, name) {
            let what = format!("{name} gate");
            notes.extend(gate_mark(
                &mut out,
                &axis,
                at,
                fin(g.limit),
                y..y + 26.0,
                &what,
            ));
        }
        at += secs;
    }
    let end = axis.px(start + total);
    text(
        &mut out,
        end + 4.0,
        34.0,
        "start",
        "small",
        &format!("{total:.2} s"),
    );
    if let Some(g) = gate(r, Gate::MaxRtoS) {
        notes.extend(gate_mark(
            &mut out,
            &axis,
            start,
            fin(g.limit),
            12.0..bottom,
            "RTO gate",
        ));
    }
    for (i, note) in notes.iter().enumerate() {
        let y = bottom + 52.0 + 16.0 * i as f64;
        text(&mut out, axis.left, y, "start", "small", note);
    }
    let mut svg = String::new();
    let height = bottom + 44.0 + 16.0 * notes.len() as f64;
    svg::open(&mut svg, WIDTH, height, "RTO by phase");
    svg.push_str(&out);
    svg.push_str("</svg>\n");
    svg
}

/// A gate's limit (counted from `from`) as a dashed line over `rows`, or, beyond the
/// chart, the note saying where it is.
fn gate_mark(
    out: &mut String,
    axis: &Axis,
    from: f64,
    limit: f64,
    rows: std::ops::Range<f64>,
    what: &str,
) -> Option<String> {
    let at = from + limit;
    if !axis.contains(at) {
        return Some(format!("{what}: {limit:.2} s, beyond the chart's end"));
    }
    let x = axis.px(at);
    let _ = std::fmt::Write::write_fmt(
        out,
        format_args!(
            "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"{INK}\" stroke-width=\"2\" stroke-dasharray=\"4 3\"><title>{what}: {limit:.2} s</title></line>\n",
            rows.start, rows.end
        ),
    );
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::fixtures::fixture;
    use crate::render::timeline::timeline_svg;

    #[test]
    fn faults_the_scenario_injected_are_told_from_the_harness_own_actions() {
        let r = fixture();
        let who: Vec<bool> = r.fault_events.iter().map(|f| injected(&r, f)).collect();
        // Two permanent faults in step 4; the survivor stopped by the restore in step 6.
        assert_eq!(who, vec![true, true, false]);
    }

    /// The fixture's times are fixed, so the charts need no redaction.
    #[test]
    fn charts_snapshot() {
        let r = fixture();
        insta::assert_snapshot!("timeline", timeline_svg(&r));
        insta::assert_snapshot!("rto", rto_svg(&r, r.rto.as_ref().unwrap()));
    }

    #[test]
    fn the_rto_chart_is_scaled_to_the_rto_not_to_its_gate() {
        let mut r = fixture();
        let rto = r.rto.clone().unwrap();
        for g in &mut r.gates {
            if g.name == Gate::MaxRtoS {
                g.limit = 600.0;
            }
        }
        let svg = rto_svg(&r, &rto);
        assert!(
            svg.contains("RTO gate: 600.00 s, beyond the chart&#39;s end"),
            "{svg}"
        );
        // The axis ends just past the RTO (start 8.55 s + 14.37 s), not at the gate.
        assert!(
            svg.contains(">20</text>") && !svg.contains(">100</text>"),
            "{svg}"
        );
        for g in &mut r.gates {
            if g.name == Gate::MaxRtoS {
                g.limit = 10.0;
            }
        }
        let svg = rto_svg(&r, &rto);
        assert!(svg.contains("<title>RTO gate: 10.00 s</title>"), "{svg}");
    }
}
