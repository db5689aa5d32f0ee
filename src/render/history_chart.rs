//! The workload's history as a chart, on the run's time axis (so it lines up with the
//! timeline above it): one lane per client and watcher, the faults injected as lines
//! across all lanes, and, on a violation, the operations of its window outlined where they
//! ran. A drill records thousands of operations, so each lane is drawn in time bins —
//! green where operations returned, red where one's outcome is unknown (a timeout, a lost
//! connection: the faults' footprint), purple for watch events — each bin's counts in its
//! hover text. Above the chart, the section's text: the verdicts and, on a violation,
//! the window as a table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::charts::{injected, run_end, timeline_axis};
use super::html_escape as esc;
use super::svg::{self, Axis, BAD, FAULT, INK, OK, text};
use super::timeline::{fault_labels, outage_look};
use crate::model::history::{OpKind, Record};
use crate::model::linearize::{HistoryReport, Linearizability, Model};
use crate::model::report::DrillReport;
use crate::model::timeline as story;

const WIDTH: f64 = 960.0;
const LANE: f64 = 14.0;
/// Lanes for the faults' labels above the plot; a label with no room is left to hover.
const LABEL_LANES: usize = 3;
const LABEL_LANE: f64 = 13.0;
/// Bins across the plot: about 3.5 px each.
const BINS: usize = 240;

#[derive(Default, Clone, Copy)]
struct Bin {
    ok: usize,
    unknown: usize,
    events: usize,
}

/// The chart, or nothing when the run recorded no history.
pub(super) fn history_svg(r: &DrillReport, hr: &HistoryReport) -> String {
    if r.history.is_empty() {
        return String::new();
    }
    let axis = timeline_axis(r);
    let clients: Vec<u64> = {
        let mut c: Vec<u64> = r.history.iter().map(|h| h.client).collect();
        c.sort();
        c.dedup();
        c
    };
    let lane_of: BTreeMap<u64, usize> = clients.iter().enumerate().map(|(i, &c)| (c, i)).collect();
    let faults: Vec<_> = r.fault_events.iter().filter(|f| injected(r, f)).collect();
    let marks = fault_labels(&faults, &axis, LABEL_LANES, 2.0);
    let used = marks.iter().filter_map(|m| m.2).max().map_or(0, |l| l + 1);
    // The plot starts below the labels' lanes, so no label sits over an operation.
    let top = 18.0 + LABEL_LANE * used as f64;
    let bottom = top + LANE * clients.len() as f64 + 6.0;
    let mut out = String::new();
    svg::open(
        &mut out,
        WIDTH,
        bottom + 40.0,
        "operations per client over time",
    );
    axis.draw(&mut out, top - 6.0, bottom, "seconds since the run started");
    let watchers: Vec<u64> = clients
        .iter()
        .copied()
        .filter(|c| {
            r.history
                .iter()
                .any(|h| h.client == *c && h.op == OpKind::Watch)
        })
        .collect();
    for (&c, &lane) in &lane_of {
        let kind = if watchers.contains(&c) {
            "watcher"
        } else {
            "client"
        };
        let y = top + LANE * lane as f64;
        text(
            &mut out,
            axis.left - 8.0,
            y + 10.0,
            "end",
            "small",
            &format!("{kind} {c}"),
        );
    }
    outage_bands(&mut out, r, &axis, top - 6.0, bottom);
    bins(&mut out, &r.history, &lane_of, &axis, top);
    for (g, label, lane) in marks {
        let x = axis.px(g.at_s);
        let _ = writeln!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\" stroke=\"{FAULT}\" stroke-width=\"1.5\"><title>{}</title></line>",
            top - 4.0,
            super::html_escape(&g.title())
        );
        if let Some(lane) = lane {
            let y = 12.0 + LABEL_LANE * lane as f64;
            text(&mut out, x - 2.0, y, "start", "small", &label);
        }
    }
    for (i, op) in &hr.window_ops {
        window_mark(&mut out, *i, op, &lane_of, &axis, top);
    }
    out.push_str("</svg>\n");
    out
}

/// The stretches without an acknowledged write behind the lanes, shaded by their cause as
/// on the timeline: unknown outcomes inside a lost quorum are what the table predicts.
fn outage_bands(out: &mut String, r: &DrillReport, axis: &Axis, top: f64, bottom: f64) {
    let spans = story::member_spans(r, run_end(r));
    for o in story::outages(r, &spans) {
        let (fill, what) = outage_look(&o);
        let (a, b) = (axis.px(o.from_s), axis.px(o.to_s));
        let title = format!("{:.2}–{:.2} s: {what}", o.from_s, o.to_s);
        let _ = writeln!(
            out,
            "<rect x=\"{a:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{fill}\" fill-opacity=\"0.18\"><title>{}</title></rect>",
            (b - a).max(1.0),
            bottom - top,
            esc(&title)
        );
    }
}

/// Each lane's operations counted into time bins, one rectangle per non-empty bin.
fn bins(
    out: &mut String,
    history: &[Record],
    lane_of: &BTreeMap<u64, usize>,
    axis: &Axis,
    top: f64,
) {
    let width = (axis.t1 - axis.t0) / BINS as f64;
    let mut grid = vec![vec![Bin::default(); BINS]; lane_of.len()];
    for h in history {
        let t = h.call as f64 / 1e6;
        let b = (((t - axis.t0) / width) as usize).min(BINS - 1);
        let cell = &mut grid[lane_of[&h.client]][b];
        match (h.op, h.known()) {
            (OpKind::Watch, _) => cell.events += h.output.as_ref().map_or(0, |o| o.events.len()),
            (_, true) => cell.ok += 1,
            (_, false) => cell.unknown += 1,
        }
    }
    for (lane, row) in grid.iter().enumerate() {
        let y = top + LANE * lane as f64 + 1.0;
        for (b, cell) in row.iter().enumerate() {
            let (fill, n) = match cell {
                c if c.unknown > 0 => (BAD, c.unknown + c.ok),
                c if c.events > 0 => (FAULT, c.events),
                c if c.ok > 0 => (OK, c.ok),
                _ => continue,
            };
            let from = axis.t0 + b as f64 * width;
            let title = format!(
                "{from:.1}–{:.1} s: {} returned, {} outcome unknown, {} watch events",
                from + width,
                cell.ok,
                cell.unknown,
                cell.events
            );
            let x = axis.px(from);
            let opacity = (0.35 + 0.15 * n as f64).min(1.0);
            let _ = writeln!(
                out,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{fill}\" fill-opacity=\"{opacity:.2}\"><title>{}</title></rect>",
                (axis.px(from + width) - x).max(1.0),
                LANE - 2.0,
                super::html_escape(&title)
            );
        }
    }
}

/// An operation of the violation window, outlined from its call to its return.
fn window_mark(
    out: &mut String,
    i: usize,
    op: &Record,
    lane_of: &BTreeMap<u64, usize>,
    axis: &Axis,
    top: f64,
) {
    let Some(&lane) = lane_of.get(&op.client) else {
        return;
    };
    let a = axis.px(op.call as f64 / 1e6);
    let b = op
        .ret
        .map_or(axis.left + axis.width, |r| axis.px(r as f64 / 1e6));
    let y = top + LANE * lane as f64;
    let title = format!("#{i} {}", super::history_op_text(op));
    let _ = writeln!(
        out,
        "<rect x=\"{a:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{LANE}\" fill=\"none\" stroke=\"{INK}\" stroke-width=\"2\"><title>{}</title></rect>",
        (b - a).max(3.0),
        super::html_escape(&title)
    );
}

/// The workload's history check; on a violation, the window where no order works.
pub(super) fn history_section(h: &mut String, r: &DrillReport, hr: &HistoryReport) {
    let c = &hr.check;
    let class = match c.verdict {
        Linearizability::Linearizable => "ok",
        _ => "bad",
    };
    let _ = writeln!(
        h,
        "<h2>Client history</h2>\n<p><strong class=\"{class}\">{}</strong>: {} operations on {} keys, {} of unknown outcome, {:.0} ops/s over {:.1} s; checked against the {} model. The history is <code>history.jsonl</code> beside this report (operation #i is its line i+1).</p>",
        c.verdict.as_str(),
        c.operations,
        c.keys,
        c.unknown_outcomes,
        hr.rate,
        hr.seconds,
        match c.model {
            Model::Kv => "key-value",
            Model::Etcd => "etcd (one state per revision)",
        }
    );
    if let Some(w) = &c.window {
        let _ = writeln!(
            h,
            "<p>Key <code>{}</code>: {} of its operations can be ordered; then none of the operations marked <strong>next?</strong> can go next. The last ones placed are shown before them.</p>",
            esc(&w.key),
            w.placed
        );
        h.push_str("<table><thead><tr><th></th><th>#</th><th>operation</th></tr></thead><tbody>\n");
        for (i, op) in &hr.window_ops {
            let stuck = w.stuck.contains(i);
            let _ = writeln!(
                h,
                "<tr><td class=\"{}\">{}</td><td class=\"num\">{i}</td><td><code>{}</code></td></tr>",
                if stuck { "bad" } else { "" },
                if stuck { "next?" } else { "placed" },
                esc(&super::history_op_text(op))
            );
        }
        h.push_str("</tbody></table>\n");
    }
    for p in &c.revision_problems {
        let _ = writeln!(h, "<p class=\"bad\">revision: {}</p>", esc(p));
    }
    guarantees(h, hr);
    h.push_str(&history_svg(r, hr));
}

/// Serializable reads, watches and the restore, each against its own guarantee.
fn guarantees(h: &mut String, hr: &HistoryReport) {
    let line = |h: &mut String, ok: bool, what: String, problems: &[String]| {
        let class = if ok { "ok" } else { "bad" };
        let _ = writeln!(
            h,
            "<p><strong class=\"{class}\">{}</strong> {}</p>",
            if ok { "hold" } else { "BROKEN" },
            esc(&what)
        );
        if !problems.is_empty() {
            h.push_str("<ul>\n");
            for p in problems.iter().take(5) {
                let _ = writeln!(h, "<li class=\"bad\">{}</li>", esc(p));
            }
            h.push_str("</ul>\n");
        }
    };
    if let Some(rc) = &hr.check.reads {
        let what = format!(
            "serializable reads: {} checked against the state at their revision, per client never going back",
            rc.reads
        );
        line(h, rc.passed(), what, &rc.problems);
    }
    if let Some(w) = &hr.check.watch {
        let what = format!(
            "watches: {} watchers, {} streams, {} events, in revision order, each once, none of {} acknowledged writes in range missing",
            w.watchers, w.streams, w.events, w.writes_covered
        );
        line(h, w.passed(), what, &w.problems);
    }
    if let Some(a) = &hr.across {
        let back = if a.went_back_by > 0 {
            format!(", {} back", a.went_back_by)
        } else {
            String::new()
        };
        let what = format!(
            "across the restore from revision {}: {} acknowledged writes at or below it kept, {} after it lost (RPO in operations); revision {} after against {} seen before{back}",
            a.snapshot_revision, a.kept_writes, a.lost_writes, a.revision_after, a.highest_seen
        );
        line(h, a.passed(), what, &a.problems);
    }
}
