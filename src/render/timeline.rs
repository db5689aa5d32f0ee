//! The run's timeline, on the report's one time axis: steps, injected faults, the
//! harness's own actions, when the cluster took writes (each stretch without a write
//! labelled by what explains it), each member's lane (in service, out, leading) and the
//! RTO window — and its section of the HTML page with the legend.

use std::fmt::Write as _;

use super::charts::{LEFT, PLOT, WIDTH, injected, run_end, timeline_axis};
use super::html_escape as esc;
use super::svg::{
    self, Axis, BAD, FAULT, HARNESS, LEADER, NEUTRAL, OK, RTO, fin, lanes, rect, text,
};
use crate::model::fault::FaultKind;
use crate::model::report::{DrillReport, FaultEventRecord};
use crate::model::table::majority;
use crate::model::timeline::{self as story, Cause, LeaderSpan, MemberSpan, Outage};

const LABEL_LANES: usize = 3;
/// Markers closer than this (their width) are one mark with one label.
const MERGE_PX: f64 = 12.0;
const WRITES_Y: f64 = 238.0;
const MEMBERS_Y: f64 = 292.0;
const MEMBER_LANE: f64 = 18.0;

/// Faults of one kind whose markers would touch: one mark, one label.
pub(super) struct FaultGroup<'a> {
    pub at_s: f64,
    pub events: Vec<&'a FaultEventRecord>,
}

impl FaultGroup<'_> {
    /// `permanent etcd-3`, or for several `permanent ×2: etcd-2, etcd-3`.
    pub fn label(&self) -> String {
        let kind = self.events[0].fault.as_str();
        let names: Vec<&str> = self.events.iter().map(|f| f.member.as_str()).collect();
        match names.len() {
            1 => format!("{kind} {}", names[0]),
            n => format!("{kind} ×{n}: {}", names.join(", ")),
        }
    }

    /// Each event with its time and the member's role then, for the hover text.
    pub fn title(&self) -> String {
        let each: Vec<String> = self
            .events
            .iter()
            .map(|f| {
                format!(
                    "{:.2} s: {} {} (was {})",
                    fin(f.at_s),
                    f.fault.as_str(),
                    f.member,
                    f.role.as_str()
                )
            })
            .collect();
        each.join("; ")
    }
}

/// Groups events (in any order) by time: an event joins the latest group of the same
/// fault whose first marker lies within [`MERGE_PX`] of its own.
pub(super) fn group_faults<'a>(
    events: &[&'a FaultEventRecord],
    axis: &Axis,
) -> Vec<FaultGroup<'a>> {
    let mut sorted = events.to_vec();
    sorted.sort_by(|a, b| fin(a.at_s).total_cmp(&fin(b.at_s)));
    let mut out: Vec<FaultGroup<'a>> = vec![];
    for f in sorted {
        let near = out.iter_mut().rev().find(|g| {
            g.events[0].fault == f.fault && axis.px(f.at_s) - axis.px(g.at_s) <= MERGE_PX
        });
        match near {
            Some(g) => g.events.push(f),
            None => out.push(FaultGroup {
                at_s: fin(f.at_s),
                events: vec![f],
            }),
        }
    }
    out
}

/// Fault marks laid out for labelling: each group, its label, and its lane among `lanes`
/// (`None`: left to the mark's hover text), a label starting `dx` left of its mark.
pub(super) fn fault_labels<'a>(
    events: &[&'a FaultEventRecord],
    axis: &Axis,
    lanes_n: usize,
    dx: f64,
) -> Vec<(FaultGroup<'a>, String, Option<usize>)> {
    let groups = group_faults(events, axis);
    let labels: Vec<String> = groups.iter().map(FaultGroup::label).collect();
    let at: Vec<(f64, f64)> = groups
        .iter()
        .zip(&labels)
        .map(|(g, l)| (axis.px(g.at_s) - dx, svg::text_width(l)))
        .collect();
    let lane = lanes(&at, lanes_n);
    groups
        .into_iter()
        .zip(labels)
        .zip(lane)
        .map(|((g, l), n)| (g, l, n))
        .collect()
}

/// Whether the chart has member lanes: a table run is many clusters, not one.
fn has_members(r: &DrillReport) -> bool {
    r.table.is_none() && r.cluster_size > 0
}

/// The run on one time axis, as an SVG element.
pub(super) fn timeline_svg(r: &DrillReport) -> String {
    let axis = timeline_axis(r);
    let end = run_end(r);
    let spans = story::member_spans(r, end);
    let members = if has_members(r) {
        story::members(r)
    } else {
        vec![]
    };
    let bottom = MEMBERS_Y + MEMBER_LANE * members.len() as f64 + 4.0;
    let mut out = String::new();
    svg::open(&mut out, WIDTH, bottom + 48.0, "timeline of the run");
    if let Some(rto) = &r.rto
        && let Some(start) = rto.start_s
    {
        rto_window(&mut out, &axis, start, fin(rto.total_s), bottom);
    }
    axis.draw(&mut out, 26.0, bottom, "seconds since the run started");
    for (label, y) in [
        ("steps", 48.0),
        ("faults", 96.0),
        ("harness", 168.0),
        ("writes", WRITES_Y + 8.0),
    ] {
        text(&mut out, LEFT - 10.0, y + 4.0, "end", "row", label);
    }
    steps_row(&mut out, r, &axis, 36.0);
    let (ours, harness): (Vec<_>, Vec<_>) = r.fault_events.iter().partition(|f| injected(r, f));
    events_row(&mut out, &axis, &ours, 90.0, FAULT);
    events_row(&mut out, &axis, &harness, 162.0, HARNESS);
    actions_row(&mut out, r, &axis, 150.0);
    writes_row(&mut out, r, &spans, &axis, WRITES_Y);
    let leaders = story::leader_spans(r, &spans, end);
    for (i, m) in members.iter().enumerate() {
        let y = MEMBERS_Y + MEMBER_LANE * i as f64;
        member_lane(&mut out, m, &spans, &leaders, &axis, y);
    }
    out.push_str("</svg>\n");
    out
}

/// The disaster-to-verified span, shaded behind every row, with its marker and label.
fn rto_window(out: &mut String, axis: &Axis, start: f64, total: f64, bottom: f64) {
    let (a, b) = (axis.px(start), axis.px(start + total));
    let title = format!("RTO: disaster declared at {start:.2} s, verified {total:.2} s later");
    let _ = writeln!(
        out,
        "<rect x=\"{a:.1}\" y=\"20\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{RTO}\" fill-opacity=\"0.08\"><title>{}</title></rect>\
         <line x1=\"{a:.1}\" y1=\"16\" x2=\"{a:.1}\" y2=\"{bottom:.1}\" stroke=\"{RTO}\" stroke-width=\"2\" stroke-dasharray=\"5 3\"/>",
        (b - a).max(1.0),
        bottom - 20.0,
        esc(&title)
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

/// Fault events as markers, simultaneous ones of a kind as one, with labels in lanes
/// below them; a label with no room is left to the marker's hover text.
fn events_row(out: &mut String, axis: &Axis, events: &[&FaultEventRecord], y: f64, color: &str) {
    for (g, label, lane) in fault_labels(events, axis, LABEL_LANES, 4.0) {
        let x = axis.px(g.at_s);
        let _ = writeln!(
            out,
            "<path d=\"M{x:.1} {:.1} l6 10 h-12 z\" fill=\"{color}\"><title>{}</title></path>",
            y - 2.0,
            esc(&g.title())
        );
        if let Some(lane) = lane {
            let ly = y + 22.0 + 15.0 * lane as f64;
            text(out, x - 4.0, ly, "start", "small", &label);
        }
    }
}

/// The harness's actions that are no fault (a lost member's container and volume deleted
/// after its SIGKILL) as thin bars above the harness row, for as long as each took: the
/// fault is stamped at the kill, the clean-up is shown apart from it.
fn actions_row(out: &mut String, r: &DrillReport, axis: &Axis, y: f64) {
    for a in &r.actions {
        let x = axis.px(fin(a.at_s));
        let w = (axis.px(fin(a.at_s) + fin(a.seconds).max(0.0)) - x).max(2.0);
        let step = a.step.map(|s| format!(", step {s}")).unwrap_or_default();
        let title = format!(
            "{} of {} at {:.2} s, {:.2} s{step}",
            "container and volume deleted",
            a.member,
            fin(a.at_s),
            fin(a.seconds)
        );
        rect(out, x, y, w, 4.0, HARNESS, &title);
    }
}

/// What a stretch without a write is drawn in and called: neutral where the table
/// predicts it, the restore's colour for the restore, red only for what failed.
pub(super) fn outage_look(o: &Outage) -> (&'static str, String) {
    match o.cause {
        Cause::QuorumLost { up, size } => (
            NEUTRAL,
            format!(
                "quorum lost — expected: {up} of {size} up, majority {}",
                majority(size.max(1))
            ),
        ),
        Cause::Restore => (
            RTO,
            "the restore — stopped by the harness until its first write".into(),
        ),
        Cause::Unexplained { up, size } => {
            (BAD, format!("no write acknowledged — {up} of {size} up"))
        }
    }
}

/// When the cluster took writes: the background writer's windows as bands (green where
/// writes were acknowledged, the others coloured and labelled by their cause), and each
/// availability probe as a dot.
fn writes_row(out: &mut String, r: &DrillReport, spans: &[MemberSpan], axis: &Axis, y: f64) {
    let band = |out: &mut String, from: f64, to: f64, fill: &str, what: &str| {
        let (a, b) = (axis.px(from), axis.px(to));
        let title = format!("{:.2}–{:.2} s: {what}", fin(from), fin(to));
        let _ = writeln!(
            out,
            "<rect x=\"{a:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"16\" fill=\"{fill}\" fill-opacity=\"0.55\"><title>{}</title></rect>",
            (b - a).max(1.0),
            esc(&title)
        );
    };
    for w in r.write_windows.iter().filter(|w| w.writable) {
        band(out, w.from_s, w.to_s, OK, "writes acknowledged");
    }
    let outages = story::outages(r, spans);
    let looks: Vec<(&str, String)> = outages.iter().map(outage_look).collect();
    let at: Vec<(f64, f64)> = outages
        .iter()
        .zip(&looks)
        .map(|(o, l)| (axis.px(o.from_s), svg::text_width(&l.1)))
        .collect();
    for ((o, (fill, what)), lane) in outages.iter().zip(&looks).zip(lanes(&at, 2)) {
        band(out, o.from_s, o.to_s, fill, what);
        if let Some(lane) = lane {
            let ly = y + 29.0 + 13.0 * lane as f64;
            let class = if o.cause.expected() {
                "small"
            } else {
                "small bad"
            };
            text(out, axis.px(o.from_s), ly, "start", class, what);
        }
    }
    for p in &r.probes {
        probe_dot(out, r, spans, axis, p, y + 8.0);
    }
}

/// An availability probe as a dot: green writable, red not writable where nothing
/// explains it, neutral where the table or the restore does.
fn probe_dot(
    out: &mut String,
    r: &DrillReport,
    spans: &[MemberSpan],
    axis: &Axis,
    p: &crate::model::report::ProbeRecord,
    cy: f64,
) {
    let x = axis.px(p.at_s);
    let (fill, what) = match (p.writable, story::cause_at(r, spans, fin(p.at_s))) {
        (true, _) => (OK, "writable"),
        (false, Cause::QuorumLost { .. }) => (NEUTRAL, "not writable, as the table predicts"),
        (false, Cause::Restore) => (RTO, "not writable, during the restore"),
        (false, Cause::Unexplained { .. }) => (BAD, "not writable"),
    };
    let leader = p.leader.as_deref().unwrap_or("none");
    let title = format!(
        "probe at {:.2} s (step {}): {what}, leader {leader}",
        fin(p.at_s),
        p.step
    );
    let _ = writeln!(
        out,
        "<circle cx=\"{x:.1}\" cy=\"{cy:.1}\" r=\"5\" fill=\"{fill}\" stroke=\"#fff\"><title>{}</title></circle>",
        esc(&title)
    );
}

/// One member's lane: a thin bar where it was in service, a dashed line where it was out
/// (named by the fault where there is room), and a thick bar marked "leader" where it led.
fn member_lane(
    out: &mut String,
    member: &str,
    spans: &[MemberSpan],
    leaders: &[LeaderSpan],
    axis: &Axis,
    y: f64,
) {
    text(out, LEFT - 10.0, y + 12.0, "end", "small", member);
    for s in spans.iter().filter(|s| s.member == member) {
        let (a, b) = (axis.px(s.from_s), axis.px(s.to_s));
        match s.out {
            None => {
                let title = format!("{member} in service {:.2}–{:.2} s", s.from_s, s.to_s);
                let _ = writeln!(
                    out,
                    "<rect x=\"{a:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"6\" fill=\"{OK}\" fill-opacity=\"0.35\"><title>{}</title></rect>",
                    y + 6.0,
                    (b - a).max(1.0),
                    esc(&title)
                );
            }
            Some(k) => out_of_service(out, member, s, k, (a, b), y),
        }
    }
    for l in leaders.iter().filter(|l| l.member == member) {
        let (a, b) = (axis.px(l.from_s), axis.px(l.to_s));
        let w = (b - a).max(3.0);
        let title = format!(
            "{member} led from {:.2} s to {:.2} s (as the probes and faults saw it)",
            l.from_s, l.to_s
        );
        rect(out, a, y + 2.0, w, 14.0, LEADER, &title);
        if let Some(label) = ["leader", "L"]
            .into_iter()
            .find(|l| svg::text_width(l) + 6.0 <= w)
        {
            text(out, a + w / 2.0, y + 13.0, "middle", "in", label);
        } else {
            // Too short a reign for a label inside: the mark goes before it, where the
            // member was still in service (after it, an out-of-service label may stand).
            text(out, a - 2.0, y + 13.0, "end", "small", "L");
        }
    }
}

/// A member out of service: named by its fault where there is room, then a dashed line.
fn out_of_service(
    out: &mut String,
    member: &str,
    s: &MemberSpan,
    k: FaultKind,
    (a, b): (f64, f64),
    y: f64,
) {
    let title = format!(
        "{member} out of service ({}) {:.2}–{:.2} s",
        k.as_str(),
        s.from_s,
        s.to_s
    );
    let word = k.as_str();
    let room = svg::text_width(word) + 8.0 <= b - a;
    let mut x = a;
    if room {
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"small\"><title>{}</title>{}</text>",
            a + 4.0,
            y + 13.0,
            esc(&title),
            esc(word)
        );
        x = a + svg::text_width(word) + 8.0;
    }
    let _ = writeln!(
        out,
        "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{b:.1}\" y2=\"{:.1}\" stroke=\"{HARNESS}\" stroke-width=\"2\" stroke-dasharray=\"3 3\"><title>{}</title></line>",
        y + 9.0,
        y + 9.0,
        esc(&title)
    );
}

/// The timeline's section of the page: the chart and a legend of only what it shows.
pub(super) fn timeline_section(h: &mut String, r: &DrillReport) {
    h.push_str("<h2>Timeline</h2>\n");
    h.push_str(&timeline_svg(r));
    let sw = |color: &str, what: &str| {
        format!("<span><i class=\"sw\" style=\"background:{color}\"></i>{what}</span>")
    };
    let (injected, harness): (Vec<_>, Vec<_>) = r.fault_events.iter().partition(|f| injected(r, f));
    let spans = story::member_spans(r, run_end(r));
    let causes: Vec<Cause> = story::outages(r, &spans).iter().map(|o| o.cause).collect();
    let any = |f: fn(&Cause) -> bool| causes.iter().any(f);
    let members = has_members(r);
    let shown = [
        (true, sw(OK, "step ok / writes acknowledged")),
        (
            true,
            sw(BAD, "step failed / no write acknowledged, unexplained"),
        ),
        (
            any(|c| matches!(c, Cause::QuorumLost { .. })),
            sw(
                NEUTRAL,
                "no write: quorum lost, as the fault-tolerance table predicts",
            ),
        ),
        (
            any(|c| matches!(c, Cause::Restore)),
            sw(RTO, "no write: the restore"),
        ),
        (!injected.is_empty(), sw(FAULT, "injected fault")),
        (
            !harness.is_empty(),
            sw(HARNESS, "the harness's own action (restore, replace)"),
        ),
        (members, sw(LEADER, "member leading")),
        (
            r.rto.as_ref().is_some_and(|t| t.start_s.is_some()),
            sw(RTO, "disaster declared to verified (RTO)"),
        ),
    ];
    let legend: String = shown.into_iter().filter(|s| s.0).map(|s| s.1).collect();
    let members_note = if members {
        " Each member's lane: a thin bar in service, dashed out of service."
    } else {
        ""
    };
    let _ = writeln!(
        h,
        "<p class=\"legend note\">{legend}</p>\n<p class=\"note\">Hover over a mark for its details.{members_note}</p>"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::fixtures::{fixture, passing, quorum_loss_5, word};

    fn event(at_s: f64, member: &str, fault: &str) -> FaultEventRecord {
        FaultEventRecord {
            at_s,
            member: member.into(),
            fault: word(fault),
            role: word("follower"),
            step: None,
            by: None,
        }
    }

    #[test]
    fn a_lost_members_removal_is_drawn_apart_from_its_kill() {
        let mut r = fixture();
        r.actions.push(crate::model::report::ActionRecord {
            at_s: 4.25,
            seconds: 0.06,
            member: "etcd-2".into(),
            action: crate::model::fault::HarnessAction::RemoveContainerAndVolume,
            step: Some(3),
        });
        let svg = timeline_svg(&r);
        assert!(
            svg.contains("container and volume deleted of etcd-2 at 4.25 s, 0.06 s, step 3"),
            "{svg}"
        );
        assert!(!timeline_svg(&fixture()).contains("container and volume deleted"));
    }

    #[test]
    fn simultaneous_faults_of_a_kind_are_one_label() {
        let axis = Axis::new(0.0, 100.0, 0.0, 1000.0);
        let e = [
            event(4.9, "etcd-3", "permanent"),
            event(4.2, "etcd-2", "permanent"),
            event(4.2, "etcd-4", "kill"),
            event(30.0, "etcd-1", "permanent"),
        ];
        let refs: Vec<&FaultEventRecord> = e.iter().collect();
        let labels: Vec<String> = group_faults(&refs, &axis)
            .iter()
            .map(FaultGroup::label)
            .collect();
        // 4.2 and 4.9 s are 7 px apart: one mark, the kill between them its own.
        assert_eq!(
            labels,
            vec![
                "permanent ×2: etcd-2, etcd-3",
                "kill etcd-4",
                "permanent etcd-1"
            ]
        );
        let e = [
            event(4.2, "etcd-2", "permanent"),
            event(4.9, "etcd-3", "permanent"),
        ];
        let refs: Vec<&FaultEventRecord> = e.iter().collect();
        let g = group_faults(&refs, &axis);
        assert_eq!(g[0].label(), "permanent ×2: etcd-2, etcd-3");
        assert_eq!(
            g[0].title(),
            "4.20 s: permanent etcd-2 (was follower); 4.90 s: permanent etcd-3 (was follower)"
        );
    }

    #[test]
    fn quorum_lost_as_expected_is_labelled_and_not_red() {
        let svg = timeline_svg(&passing());
        // The fixture loses 2 of 3 for good at 4.2 and 4.9 s; the writer stops at 4.9 s.
        assert!(
            svg.contains(&format!("fill=\"{NEUTRAL}\" fill-opacity=\"0.55\"><title>4.90–8.55 s: quorum lost — expected: 1 of 3 up, majority 2</title>")),
            "{svg}"
        );
        assert!(svg.contains(">quorum lost — expected: 1 of 3 up, majority 2</text>"));
        assert!(!svg.contains("no write acknowledged —"), "{svg}");
        // A stretch without a write while a majority is up is the failure, in red.
        let mut r = passing();
        r.fault_events.truncate(1);
        let svg = timeline_svg(&r);
        assert!(
            svg.contains(&format!("fill=\"{BAD}\" fill-opacity=\"0.55\"><title>4.90–8.55 s: no write acknowledged — 2 of 3 up</title>")),
            "{svg}"
        );
    }

    #[test]
    fn quorum_loss_5_tells_its_story() {
        let svg = timeline_svg(&quorum_loss_5());
        // Two lost at once read as one label, not one over the other.
        assert!(
            svg.contains(">permanent ×2: etcd-2, etcd-4</text>"),
            "{svg}"
        );
        assert!(svg.contains(">stop ×2: etcd-3, etcd-5</text>"), "{svg}");
        // Told by its own stretch: 2 of 5 up, though the restore later stops the rest.
        assert!(svg.contains(">quorum lost — expected: 2 of 5 up, majority 3</text>"));
        assert!(
            svg.contains("<title>etcd-1 led from 4.00 s to 6.90 s"),
            "{svg}"
        );
        assert!(
            svg.contains("<title>etcd-3 led from 24.20 s to 26.80 s"),
            "{svg}"
        );
        assert!(
            !svg.contains(&format!("fill=\"{BAD}\"")),
            "nothing failed: {svg}"
        );
    }

    #[test]
    fn each_member_has_a_lane_and_the_leader_is_marked_on_it() {
        let svg = timeline_svg(&fixture());
        for m in ["etcd-1", "etcd-2", "etcd-3"] {
            assert!(svg.contains(&format!(">{m}</text>")), "{m}");
        }
        assert!(
            svg.contains("<title>etcd-3 led from 0.50 s to 4.90 s"),
            "{svg}"
        );
        assert!(svg.contains("<title>etcd-1 led from 21.00 s to"), "{svg}");
        assert!(svg.contains(">leader</text>"));
        assert!(
            svg.contains("<title>etcd-2 out of service (permanent) 4.20–20.63 s</title>"),
            "{svg}"
        );
        // A table run is many clusters: no member lanes.
        let svg = timeline_svg(&crate::render::fixtures::table_fixture());
        assert!(!svg.contains(">etcd-1</text>"));
    }
}
