//! The report's two charts, on one time axis (seconds since the run started): the run's
//! timeline (steps, injected faults, the harness's own actions, when the cluster took
//! writes, and the RTO window), and the RTO by phase, zoomed to the RTO itself.

use super::svg::{self, Axis, BAD, FAULT, HARNESS, INK, OK, RTO, fin, lanes, rect, text};
use super::{gate, phase_gate, run_seconds};
use crate::model::report::{DrillReport, FaultEventRecord, Gate, Rto};
use crate::model::scenario::StepKind;

const WIDTH: f64 = 960.0;
const LEFT: f64 = 92.0;
const PLOT: f64 = WIDTH - LEFT - 24.0;
const LABEL_LANES: usize = 3;

pub(super) const PHASE_COLORS: [&str; 7] = [
    "#8C564B", "#1F77B4", "#FF7F0E", "#2CA02C", "#9467BD", "#17BECF", "#BCBD22",
];

/// Everything recorded fits, padded by 2 % either side; an empty run still gets 1 s.
pub(super) fn timeline_axis(r: &DrillReport) -> Axis {
    let ends = r
        .steps
        .iter()
        .map(|s| fin(s.start_s) + fin(s.seconds).max(0.0))
        .chain(r.fault_events.iter().map(|f| fin(f.at_s)))
        .chain(r.probes.iter().map(|p| fin(p.at_s)))
        .chain(r.write_windows.iter().map(|w| fin(w.to_s)));
    let x1 = ends.fold(fin(run_seconds(r)).min(1e7), f64::max);
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

/// The run on one time axis, as an SVG element.
pub(super) fn timeline_svg(r: &DrillReport) -> String {
    let axis = timeline_axis(r);
    let mut out = String::new();
    svg::open(&mut out, WIDTH, 330.0, "timeline of the run");
    if let Some(rto) = &r.rto
        && let Some(start) = rto.start_s
    {
        rto_window(&mut out, &axis, start, fin(rto.total_s));
    }
    axis.draw(&mut out, 26.0, 282.0, "seconds since the run started");
    for (label, y) in [
        ("steps", 48.0),
        ("faults", 96.0),
        ("harness", 168.0),
        ("writes", 246.0),
    ] {
        text(&mut out, LEFT - 10.0, y + 4.0, "end", "row", label);
    }
    steps_row(&mut out, r, &axis, 36.0);
    let (ours, harness): (Vec<_>, Vec<_>) = r.fault_events.iter().partition(|f| injected(r, f));
    events_row(&mut out, &axis, &ours, 90.0, FAULT);
    events_row(&mut out, &axis, &harness, 162.0, HARNESS);
    writes_row(&mut out, r, &axis, 238.0);
    out.push_str("</svg>\n");
    out
}

/// The disaster-to-verified span, shaded behind every row, with its marker and label.
fn rto_window(out: &mut String, axis: &Axis, start: f64, total: f64) {
    let (a, b) = (axis.px(start), axis.px(start + total));
    let title = format!("RTO: disaster declared at {start:.2} s, verified {total:.2} s later");
    let _ = std::fmt::Write::write_fmt(
        out,
        format_args!(
            "<rect x=\"{a:.1}\" y=\"20\" width=\"{:.1}\" height=\"262\" fill=\"{RTO}\" fill-opacity=\"0.08\"><title>{}</title></rect>\
             <line x1=\"{a:.1}\" y1=\"16\" x2=\"{a:.1}\" y2=\"282\" stroke=\"{RTO}\" stroke-width=\"2\" stroke-dasharray=\"5 3\"/>\n",
            (b - a).max(1.0),
            super::html_escape(&title)
        ),
    );
    let label = format!("disaster declared · RTO {total:.2} s");
    let anchor = if a > LEFT + PLOT * 0.7 {
        "end"
    } else {
        "start"
    };
    let x = if anchor == "end" { a - 4.0 } else { a + 4.0 };
    text(out, x, 14.0, anchor, "small", &label);
}

/// Steps as bars coloured by outcome, labelled by number and kind where they fit.
fn steps_row(out: &mut String, r: &DrillReport, axis: &Axis, y: f64) {
    for st in &r.steps {
        let a = axis.px(fin(st.start_s));
        let w = (axis.px(fin(st.start_s) + fin(st.seconds).max(0.0)) - a).max(3.0);
        let fill = if st.ok { OK } else { BAD };
        let outcome = if st.ok { "ok" } else { "failed" };
        let title = format!(
            "step {} · {} · {outcome} · {:.2} s from {:.2} s{}{}",
            st.index,
            st.title,
            fin(st.seconds),
            fin(st.start_s),
            if st.detail.is_empty() { "" } else { " — " },
            st.detail
        );
        rect(out, a, y, w - 1.0, 24.0, fill, &title);
        let long = format!("{} {}", st.index, st.kind.as_str());
        let short = st.index.to_string();
        if let Some(label) = [long, short]
            .into_iter()
            .find(|l| svg::text_width(l) + 6.0 <= w)
        {
            text(out, a + w / 2.0, y + 16.0, "middle", "in", &label);
        }
    }
}

/// Fault events as markers with labels in lanes below them; a label with no room is left
/// to the marker's hover text.
fn events_row(out: &mut String, axis: &Axis, events: &[&FaultEventRecord], y: f64, color: &str) {
    let labels: Vec<String> = events
        .iter()
        .map(|f| format!("{} {}", f.fault.as_str(), f.member))
        .collect();
    let spans: Vec<(f64, f64)> = events
        .iter()
        .zip(&labels)
        .map(|(f, l)| (axis.px(f.at_s) - 4.0, svg::text_width(l)))
        .collect();
    for ((f, label), lane) in events.iter().zip(&labels).zip(lanes(&spans, LABEL_LANES)) {
        let x = axis.px(f.at_s);
        let title = format!(
            "{:.2} s: {} {} (was {})",
            fin(f.at_s),
            f.fault.as_str(),
            f.member,
            f.role.as_str()
        );
        let _ = std::fmt::Write::write_fmt(
            out,
            format_args!(
                "<path d=\"M{x:.1} {:.1} l6 10 h-12 z\" fill=\"{color}\"><title>{}</title></path>\n",
                y - 2.0,
                super::html_escape(&title)
            ),
        );
        if let Some(lane) = lane {
            let ly = y + 22.0 + 15.0 * lane as f64;
            text(out, x - 4.0, ly, "start", "small", label);
        }
    }
}

/// When the cluster took writes: the background writer's windows as green and red bands,
/// and each availability probe as a dot.
fn writes_row(out: &mut String, r: &DrillReport, axis: &Axis, y: f64) {
    for w in &r.write_windows {
        let (a, b) = (axis.px(w.from_s), axis.px(w.to_s));
        let (fill, what) = if w.writable {
            (OK, "writes acknowledged")
        } else {
            (BAD, "no write acknowledged")
        };
        let title = format!("{:.2}–{:.2} s: {what}", fin(w.from_s), fin(w.to_s));
        let _ = std::fmt::Write::write_fmt(
            out,
            format_args!(
                "<rect x=\"{a:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"16\" fill=\"{fill}\" fill-opacity=\"0.55\"><title>{}</title></rect>\n",
                (b - a).max(1.0),
                super::html_escape(&title)
            ),
        );
    }
    for p in &r.probes {
        let x = axis.px(p.at_s);
        let (fill, what) = if p.writable {
            (OK, "writable")
        } else {
            (BAD, "not writable")
        };
        let leader = p.leader.as_deref().unwrap_or("none");
        let title = format!(
            "probe at {:.2} s (step {}): {what}, leader {leader}",
            fin(p.at_s),
            p.step
        );
        let _ = std::fmt::Write::write_fmt(
            out,
            format_args!(
                "<circle cx=\"{x:.1}\" cy=\"{:.1}\" r=\"5\" fill=\"{fill}\" stroke=\"#fff\"><title>{}</title></circle>\n",
                y + 8.0,
                super::html_escape(&title)
            ),
        );
    }
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
