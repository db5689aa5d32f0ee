//! The HTML report: one self-contained page, so that it can be attached to a CI run or
//! mailed and still open anywhere, offline.

use std::fmt::Write as _;

use super::charts::rto_svg;
use super::html_escape as esc;
use super::timeline::timeline_section;
use super::{
    fault_table_max_k, gate, gate_actual, gate_value, human_bytes, phase_gate, run_seconds,
    sha_prefix, utc, verdict_word,
};
use crate::model::expect::BackupFacts;
use crate::model::report::{DrillReport, Gate, GateResult, Rto, TableRow};
use crate::model::scenario::StepKind;

const CSS: &str = "body{font-family:'DejaVu Sans',system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:1000px;padding:0 1rem;color:#24292f}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d0d7de;padding-bottom:.3rem}
.badge{display:inline-block;padding:.15rem .6rem;border-radius:.4rem;color:#fff;font-weight:700;margin-right:.5rem}
.badge.pass{background:#2DA44E}.badge.fail,.badge.error,.badge.interrupted{background:#D73A49}
table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #d0d7de;padding:.25rem .6rem;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}th{background:#f6f8fa}
.ok{color:#1a7f37}.bad{color:#cf222e;font-weight:600}
table.grid td.cell{text-align:center;font-weight:700;min-width:3.2rem}table.grid small{display:block;font-weight:400;font-size:.7rem}
.up{background:#dafbe1;color:#116329}.down{background:#eaeef2;color:#57606a}.disagree{background:#ffebe9;color:#cf222e;outline:2px solid #cf222e}.na{background:#fff}
pre{background:#fff8f8;border:1px solid #cf222e;padding:.75rem;white-space:pre-wrap}
code{font-family:'DejaVu Sans Mono',ui-monospace,monospace}.note{color:#57606a;font-size:.9rem}
svg{max-width:100%;height:auto;display:block}
.legend span{margin-right:1.2rem;white-space:nowrap}.sw{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:middle}
@media print{body{max-width:none;margin:0;padding:0}section{break-before:page}section.first{break-before:auto}
h2{break-after:avoid}tr,svg{break-inside:avoid}*{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
";

/// Runs `f` into a `<section>` (a printed page of its own), unless it wrote nothing.
fn section(h: &mut String, first: bool, f: impl FnOnce(&mut String)) {
    let mut body = String::new();
    f(&mut body);
    if !body.is_empty() {
        let class = if first { " class=\"first\"" } else { "" };
        let _ = writeln!(h, "<section{class}>\n{body}</section>");
    }
}

fn ok_cell(ok: bool) -> &'static str {
    if ok {
        "<td class=\"ok\">ok</td>"
    } else {
        "<td class=\"bad\">failed</td>"
    }
}

/// A gate's limit in a table cell, its outcome in words (no glyph needs an emoji font).
fn limit_cell(g: Option<&GateResult>) -> String {
    g.map(|g| {
        let outcome = if g.passed { "met" } else { "MISSED" };
        format!("≤ {:.2} s, {outcome}", g.limit)
    })
    .unwrap_or_default()
}

/// The fault-tolerance table as a grid: a row per cluster size, a column per number of
/// failed members; each cell what was observed, coloured by whether the table agrees.
fn html_fault_table(rows: &[TableRow]) -> String {
    let max_k = fault_table_max_k(rows);
    let mut s = String::from(
        "<table class=\"grid\"><thead><tr><th>size</th><th>majority</th><th>tolerates</th>",
    );
    for k in 0..=max_k {
        let _ = write!(s, "<th>{k} failed</th>");
    }
    s.push_str("</tr></thead><tbody>\n");
    for row in rows {
        let _ = write!(
            s,
            "<tr><th>{}</th><td class=\"num\">{}</td><td class=\"num\">{}</td>",
            row.size, row.majority, row.tolerance
        );
        for k in 0..=max_k {
            let Some(&(_, predicted, observed)) = row.cells.iter().find(|c| c.0 == k) else {
                s.push_str("<td class=\"na\"></td>");
                continue;
            };
            let word = |w: bool| if w { "writable" } else { "not writable" };
            let title = format!(
                "{} members, {k} failed: the table predicts {}, observed {}",
                row.size,
                word(predicted),
                word(observed)
            );
            let (class, extra) = match (predicted == observed, observed) {
                (true, true) => ("up", ""),
                (true, false) => ("down", ""),
                (false, _) => ("disagree", "<small>table: {}</small>"),
            };
            let extra = extra.replace("{}", if predicted { "W" } else { "-" });
            let _ = write!(
                s,
                "<td class=\"cell {class}\" title=\"{}\">{}{extra}</td>",
                esc(&title),
                if observed { "W" } else { "-" }
            );
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody></table>\n<p class=\"legend note\"><span><i class=\"sw up\"></i>W: writes acknowledged, as the table predicts</span><span><i class=\"sw down\"></i>-: no write acknowledged, as predicted</span><span><i class=\"sw disagree\"></i>observed differs from the table (the table's word below)</span></p>\n");
    s
}

/// One self-contained HTML page (inline CSS and SVG, no scripts, nothing fetched): the
/// verdict, the run's facts, the fault-tolerance grid when there is one, gates, a
/// timeline of the run, the RTO by phase, checks, steps, fault events and snapshots.
/// Each section prints on a page of its own.
pub fn report_html(r: &DrillReport) -> String {
    let mut h = String::new();
    head(&mut h, r);
    section(&mut h, true, |h| facts_section(h, r));
    if let Some(rows) = &r.table {
        section(&mut h, false, |h| {
            h.push_str("<h2>Fault-tolerance table</h2>\n");
            h.push_str(&html_fault_table(rows));
        });
    }
    if let Some(b) = &r.backup {
        section(&mut h, false, |h| backup_section(h, b));
    }
    section(&mut h, false, |h| gates_section(h, r));
    section(&mut h, false, |h| timeline_section(h, r));
    // A run that restores nothing has no RTO: a section saying so would only puzzle.
    if r.rto.is_some() || restores(r) {
        section(&mut h, false, |h| rto_section(h, r));
    }
    if let Some(hc) = &r.history_check {
        section(&mut h, false, |h| {
            super::history_chart::history_section(h, r, hc)
        });
    }
    section(&mut h, false, |h| checks_section(h, r));
    section(&mut h, false, |h| steps_section(h, r));
    section(&mut h, false, |h| fault_events_section(h, r));
    section(&mut h, false, |h| snapshots_section(h, r));
    h.push_str("</body>\n</html>\n");
    h
}

fn restores(r: &DrillReport) -> bool {
    r.steps.iter().any(|s| s.kind == StepKind::Restore)
}

/// A user's backup: source, what it holds, keys per prefix, what was passed over.
fn backup_section(h: &mut String, b: &BackupFacts) {
    h.push_str("<h2>Backup</h2>\n");
    if b.keys == 0 {
        h.push_str("<p class=\"bad\"><strong>0 keys: the snapshot is empty.</strong> It restores, but there is nothing in it.</p>\n");
    }
    let age = b
        .age_s
        .map(|a| format!("{:.1} h", a / 3600.0))
        .unwrap_or_else(|| "unknown".into());
    h.push_str("<table><tbody>\n");
    for (k, v) in [
        ("source", b.origin.source.clone()),
        ("object", b.origin.object.clone()),
        ("packed", b.origin.packing.as_str().to_string()),
        ("size", human_bytes(b.size)),
        ("sha256", b.sha256.clone()),
        ("revision", b.revision.to_string()),
        ("keys", b.keys.to_string()),
        ("age", age),
        ("quota", human_bytes(b.quota_backend_bytes)),
    ] {
        let _ = writeln!(h, "<tr><th>{k}</th><td>{}</td></tr>", esc(&v));
    }
    h.push_str("</tbody></table>\n");
    if !b.keys_per_prefix.is_empty() {
        h.push_str("<table><thead><tr><th>prefix</th><th>keys</th></tr></thead><tbody>\n");
        for (p, n) in &b.keys_per_prefix {
            let _ = writeln!(
                h,
                "<tr><td><code>{}</code></td><td class=\"num\">{n}</td></tr>",
                esc(p)
            );
        }
        h.push_str("</tbody></table>\n");
    }
    for k in &b.origin.skipped {
        let _ = writeln!(
            h,
            "<p>passed over <code>{}</code>: {}</p>",
            esc(&k.name),
            esc(&k.reason)
        );
    }
}

/// The document head, the verdict as a heading, the description and the error.
fn head(h: &mut String, r: &DrillReport) {
    let v = verdict_word(r);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{v} — etcd-drill {}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n",
        esc(&r.scenario)
    );
    let _ = writeln!(
        h,
        "<h1><span class=\"badge {}\">{v}</span>etcd-drill: {}</h1>",
        v.to_lowercase(),
        esc(&r.scenario)
    );
    if !r.description.trim().is_empty() {
        let _ = writeln!(h, "<p>{}</p>", esc(&r.description));
    }
    if let Some(err) = &r.error {
        let _ = writeln!(h, "<h2>Error</h2>\n<pre>{}</pre>", esc(err));
    }
}

fn facts_section(h: &mut String, r: &DrillReport) {
    h.push_str("<h2>Summary</h2>\n<table>\n");
    for (k, val) in facts(r) {
        let _ = writeln!(h, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(&val));
    }
    h.push_str("</table>\n");
}

/// The summary table's rows, unescaped.
fn facts(r: &DrillReport) -> Vec<(&'static str, String)> {
    let rto = match &r.rto {
        Some(rto) => format!("{:.2} s", rto.total_s),
        None => "not measured".into(),
    };
    let rpo = match &r.rpo {
        Some(rpo) => format!(
            "{} acknowledged writes lost ({} dataset, {} harness; {} revisions)",
            rpo.writes, rpo.dataset_writes, rpo.harness_writes, rpo.revisions
        ),
        None => "not measured".into(),
    };
    let checks_failed = r.checks.iter().filter(|c| !c.passed).count();
    let gates_failed = r.gates.iter().filter(|g| !g.passed).count();
    let cluster = match &r.table {
        Some(rows) => {
            let sizes: Vec<String> = rows.iter().map(|t| t.size.to_string()).collect();
            format!("a cluster per size: {}", sizes.join(", "))
        }
        None => format!(
            "{} members, TLS {}",
            r.cluster_size,
            if r.tls { "on" } else { "off" }
        ),
    };
    let mut facts = vec![
        ("verdict", format!("{} ({})", verdict_word(r), r.verdict)),
        ("scenario file", r.file.clone()),
        ("etcd", format!("{} (image {})", r.etcd_version, r.image)),
        ("cluster", cluster),
        (
            "seed / repetition",
            format!("{} / {}", r.seed, r.repetition),
        ),
        ("started", utc(r.started_at_ms)),
        ("finished", utc(r.finished_at_ms)),
        ("duration", format!("{:.2} s", run_seconds(r))),
        ("RTO", rto),
        ("RPO", rpo),
        (
            "checks",
            format!(
                "{} passed, {checks_failed} failed",
                r.checks.len() - checks_failed
            ),
        ),
        (
            "gates",
            format!(
                "{} passed, {gates_failed} failed",
                r.gates.len() - gates_failed
            ),
        ),
    ];
    if r.table.is_some() && r.rto.is_none() {
        facts.retain(|(k, _)| !matches!(*k, "RTO" | "RPO"));
    } else if !restores(r) && r.rto.is_none() {
        for (k, v) in &mut facts {
            if matches!(*k, "RTO" | "RPO") {
                *v = "none: the run restores nothing".into();
            }
        }
    }
    facts
}

fn gates_section(h: &mut String, r: &DrillReport) {
    if r.gates.is_empty() {
        return;
    }
    h.push_str("<h2>Gates</h2>\n<table><thead><tr><th>gate</th><th>limit</th><th>actual</th><th>result</th></tr></thead><tbody>\n");
    for g in &r.gates {
        let _ = writeln!(
            h,
            "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td>{}</tr>",
            esc(&g.name.name()),
            esc(&gate_value(g.name, g.limit)),
            esc(&gate_actual(g)),
            ok_cell(g.passed)
        );
    }
    h.push_str("</tbody></table>\n");
}

fn rto_section(h: &mut String, r: &DrillReport) {
    h.push_str("<h2>RTO by phase</h2>\n");
    match &r.rto {
        Some(rto) if !rto.phases.is_empty() => {
            h.push_str(&rto_svg(r, rto));
            h.push_str("<p class=\"note\">Dashed lines: gate limits (a phase's from its start) where they fall inside the chart.</p>\n");
            rto_phase_table(h, r, rto);
        }
        Some(rto) => {
            let _ = writeln!(h, "<p>{:.2} s, no phases recorded.</p>", rto.total_s);
        }
        None => h.push_str("<p>not measured: the run restored nothing</p>\n"),
    }
}

/// The chart's numbers as text, for reading exact values and for screen readers.
fn rto_phase_table(h: &mut String, r: &DrillReport, rto: &Rto) {
    h.push_str(
        "<table><thead><tr><th>phase</th><th>seconds</th><th>gate</th></tr></thead><tbody>\n",
    );
    for p in &rto.phases {
        let g = limit_cell(phase_gate(r, p.name.as_str()));
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"num\">{:.2}</td><td>{}</td></tr>",
            esc(p.name.as_str()),
            p.seconds,
            esc(&g)
        );
    }
    let g = limit_cell(gate(r, Gate::MaxRtoS));
    let _ = writeln!(
        h,
        "<tr><th>total</th><th class=\"num\">{:.2}</th><th>{}</th></tr>\n</tbody></table>",
        rto.total_s,
        esc(&g)
    );
}

fn checks_section(h: &mut String, r: &DrillReport) {
    if r.checks.is_empty() {
        return;
    }
    h.push_str("<h2>Checks</h2>\n<table><thead><tr><th>step</th><th>check</th><th>result</th><th>seconds</th><th>detail</th></tr></thead><tbody>\n");
    for c in &r.checks {
        let _ = writeln!(
            h,
            "<tr><td class=\"num\">{}</td><td>{}</td>{}<td class=\"num\">{}</td><td>{}</td></tr>",
            c.step,
            esc(&c.name),
            ok_cell(c.passed),
            c.seconds.map(|s| format!("{s:.2}")).unwrap_or_default(),
            esc(&c.detail)
        );
    }
    h.push_str("</tbody></table>\n");
}

fn steps_section(h: &mut String, r: &DrillReport) {
    if r.steps.is_empty() {
        return;
    }
    h.push_str("<h2>Steps</h2>\n<table><thead><tr><th>#</th><th>kind</th><th>step</th><th>start s</th><th>seconds</th><th>result</th><th>detail</th></tr></thead><tbody>\n");
    for st in &r.steps {
        let _ = writeln!(
            h,
            "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td class=\"num\">{:.2}</td><td class=\"num\">{:.2}</td>{}<td>{}</td></tr>",
            st.index,
            esc(st.kind.as_str()),
            esc(&st.title),
            st.start_s,
            st.seconds,
            ok_cell(st.ok),
            esc(&st.detail)
        );
    }
    h.push_str("</tbody></table>\n");
}

fn fault_events_section(h: &mut String, r: &DrillReport) {
    if r.fault_events.is_empty() {
        return;
    }
    h.push_str("<h2>Fault events</h2>\n<table><thead><tr><th>at s</th><th>fault</th><th>member</th><th>role</th></tr></thead><tbody>\n");
    for f in &r.fault_events {
        let _ = writeln!(
            h,
            "<tr><td class=\"num\">{:.2}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            f.at_s,
            esc(f.fault.as_str()),
            esc(&f.member),
            esc(f.role.as_str())
        );
    }
    h.push_str("</tbody></table>\n");
}

fn snapshots_section(h: &mut String, r: &DrillReport) {
    if r.snapshots.is_empty() {
        return;
    }
    h.push_str("<h2>Snapshots</h2>\n<table><thead><tr><th>name</th><th>file</th><th>revision</th><th>size</th><th>sha256</th><th>from</th></tr></thead><tbody>\n");
    for s in &r.snapshots {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td><td><code title=\"{}\">{}</code></td><td>{}</td></tr>",
            esc(&s.name),
            esc(&s.file),
            s.revision,
            esc(&human_bytes(s.size)),
            esc(&s.sha256),
            esc(sha_prefix(&s.sha256)),
            esc(&s.member)
        );
    }
    h.push_str("</tbody></table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::report::{PhaseRecord, RtoPhase};
    use crate::render::fixtures::{fixture, probe, step, table_fixture};
    use crate::render::svg::{BAD, OK};

    /// Every `http://` or `https://` in the page sits in an `xmlns="…"` attribute.
    fn external_refs(html: &str) -> Vec<usize> {
        let mut bad = vec![];
        for scheme in ["http://", "https://"] {
            for (i, _) in html.match_indices(scheme) {
                if !html[..i].ends_with("xmlns=\"") {
                    bad.push(i);
                }
            }
        }
        bad
    }

    #[test]
    fn report_html_is_self_contained() {
        let r = fixture();
        let html = report_html(&r);
        assert_eq!(html.matches("<svg").count(), 2, "timeline and RTO chart");
        assert_eq!(html.matches("</svg>").count(), 2);
        assert!(html.contains("restore-3-quorum-loss"));
        assert!(html.contains("<span class=\"badge fail\">FAIL</span>"));
        assert!(
            external_refs(&html).is_empty(),
            "{:?}",
            external_refs(&html)
        );
        assert!(!html.contains("<script"));
        assert!(!html.contains("<link"));
        assert!(!html.contains("src="));
        // Steps drawn in both colors, probes and fault labels present.
        assert!(html.contains(&format!("fill=\"{BAD}\"")));
        assert!(html.contains(&format!("fill=\"{OK}\"")));
        assert!(html.contains("permanent etcd-3"));
        assert!(html.contains("leader-elected"));
        // Text from the report is escaped.
        assert!(
            html.contains("revision 998 &lt; snapshot revision 1003 &amp; &quot;compacted&quot;")
        );
    }

    #[test]
    fn external_refs_finds_links() {
        assert_eq!(
            external_refs("<svg xmlns=\"http://www.w3.org/2000/svg\">").len(),
            0
        );
        assert_eq!(
            external_refs("<img src=\"https://example.com/x.png\">").len(),
            1
        );
    }

    #[test]
    fn report_html_escapes_hostile_text() {
        let mut r = fixture();
        r.scenario = "<script>alert(1)</script>".into();
        r.fault_events[0].member = "<b>m</b>".into();
        r.error = Some("see https://example.com & <img src=x>".into());
        let html = report_html(&r);
        assert!(!html.contains("<script>"));
        assert!(!html.contains("<b>m</b>"));
        assert!(!html.contains("<img"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        // The error's URL is text, not a reference, but the check still sees it.
        assert_eq!(external_refs(&html).len(), 1);
    }

    #[test]
    fn report_html_table_variant_and_degenerate_runs() {
        let html = report_html(&table_fixture());
        assert!(html.contains("quorum-table"));
        assert_eq!(html.matches("<svg").count(), 1, "timeline only, no RTO");
        assert!(
            html.contains("<td class=\"cell disagree\" title=\"3 members, 2 failed: the table predicts not writable, observed writable\">W<small>table: -</small></td>"),
            "{html}"
        );
        assert!(html.contains("<th>5 failed</th>"));
        // A table run is a grid of clusters, not one cluster with an RTO.
        assert!(html.contains("a cluster per size: 3, 5"), "{html}");
        assert!(!html.contains("RTO"), "{html}");
        assert!(external_refs(&html).is_empty());

        // Nothing recorded, NaN and negative times: still a page, no panic.
        let mut r = table_fixture();
        r.steps = vec![
            step(1, "wait", "wait", f64::NAN, f64::INFINITY, true, ""),
            step(2, "wait", "w", -1.0, -2.0, false, ""),
        ];
        r.probes = vec![probe(f64::NAN, 1, true, None)];
        r.rto = Some(Rto {
            start_s: None,
            total_s: f64::NAN,
            phases: vec![PhaseRecord {
                name: RtoPhase::Restore,
                seconds: -1.0,
            }],
        });
        r.finished_at_ms = 0;
        let html = report_html(&r);
        assert_eq!(html.matches("<svg").count(), 2, "{html}");
        let mut r = table_fixture();
        r.steps.clear();
        r.table = None;
        let html = report_html(&r);
        assert_eq!(html.matches("<svg").count(), 1);
    }

    #[test]
    fn a_history_violation_shows_its_window() {
        use crate::model::history::{World, parse};
        use crate::model::linearize::{HistoryReport, Model, check};
        let h = parse(
            "h",
            r#"{"client":1,"call":0,"return":10,"op":"put","key":"x","value":"1"}
{"client":1,"call":20,"return":30,"op":"put","key":"x","value":"2"}
{"client":2,"call":40,"return":50,"op":"get","key":"x","output":{"value":"1"}}"#,
        )
        .unwrap();
        let c = check(
            &h,
            Model::Kv,
            World::Open,
            std::time::Duration::from_secs(5),
        );
        let mut r = fixture();
        r.history_check = Some(HistoryReport::new(c, &h, 100.0, 3.0));
        let html = report_html(&r);
        assert!(html.contains("<h2>Client history</h2>"), "{html}");
        assert!(html.contains("<strong class=\"bad\">not-linearizable</strong>"));
        assert!(html.contains("next?</td><td class=\"num\">2</td><td><code>client 2 [40, 50] get x -&gt; &quot;1&quot;</code>"), "{html}");
        // No history in the report: no chart, rather than an empty one.
        assert!(!html.contains("operations per client over time"));
        r.history = h;
        let html = report_html(&r);
        assert!(html.contains("aria-label=\"operations per client over time\""));
        assert!(html.contains(">client 1</text>") && html.contains(">client 2</text>"));
        // Behind the lanes, the stretch without a write as the timeline tells it.
        assert!(
            html.contains("fill-opacity=\"0.18\"><title>4.90–8.55 s: quorum lost — expected"),
            "{html}"
        );
        // The window's operations outlined on their lanes, with their text on hover.
        assert!(
            html.contains("stroke-width=\"2\"><title>#2 client 2 [40, 50] get x"),
            "{html}"
        );
    }
}
