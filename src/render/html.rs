//! The HTML report: one self-contained page, so that it can be attached to a CI run or
//! mailed and still open anywhere, offline.

use std::fmt::Write as _;

use plotters::style::RGBColor;

use super::charts::{BAD_COLOR, FAULT_COLOR, OK_COLOR, rto_svg, timeline_svg};
use super::{
    fault_table_max_k, gate, gate_actual, gate_value, human_bytes, limit_cell, phase_gate,
    run_seconds, sha_prefix, utc, verdict_word,
};
use crate::model::expect::BackupFacts;
use crate::model::report::{DrillReport, Gate, Rto, TableRow};

const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:1000px;padding:0 1rem;color:#24292f}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d0d7de;padding-bottom:.3rem}
.badge{display:inline-block;padding:.15rem .6rem;border-radius:.4rem;color:#fff;font-weight:700;margin-right:.5rem}
.badge.pass{background:#2DA44E}.badge.fail{background:#D73A49}
table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #d0d7de;padding:.25rem .6rem;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}th{background:#f6f8fa}
.ok{color:#1a7f37}.bad{color:#cf222e;font-weight:600}.cell{text-align:center}
pre{background:#fff8f8;border:1px solid #cf222e;padding:.75rem;white-space:pre-wrap}
code{font-family:ui-monospace,monospace}.note{color:#57606a;font-size:.9rem}
svg{max-width:100%;height:auto;display:block}
.legend span{margin-right:1.2rem}.sw{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:middle}
";

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn hex(c: RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
}

fn ok_cell(ok: bool) -> &'static str {
    if ok {
        "<td class=\"ok\">&#10003; ok</td>"
    } else {
        "<td class=\"bad\">&#10007; failed</td>"
    }
}

fn html_fault_table(rows: &[TableRow]) -> String {
    let max_k = fault_table_max_k(rows);
    let mut s = String::from(
        "<table><thead><tr><th>cluster size</th><th>MAJORITY</th><th>failure tolerance</th>",
    );
    for k in 0..=max_k {
        let _ = write!(s, "<th>k={k}</th>");
    }
    s.push_str("</tr></thead><tbody>\n");
    for row in rows {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td>",
            row.size, row.majority, row.tolerance
        );
        for k in 0..=max_k {
            match row.cells.iter().find(|c| c.0 == k) {
                Some(&(_, predicted, observed)) => {
                    let class = if predicted != observed {
                        "bad"
                    } else if observed {
                        "ok"
                    } else {
                        ""
                    };
                    let flag = if predicted != observed { "✗" } else { "" };
                    let _ = write!(
                        s,
                        "<td class=\"cell {class}\">{flag}{}</td>",
                        if observed { "W" } else { "-" }
                    );
                }
                None => s.push_str("<td></td>"),
            }
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody></table>\n<p class=\"note\">W: writes acknowledged; -: no write acknowledged; ✗: observation disagrees with the table</p>\n");
    s
}

/// One self-contained HTML page (inline CSS and SVG, no scripts, nothing fetched): the
/// verdict, the run's facts, gates, checks, snapshots, a timeline of steps, faults and
/// probes, the RTO by phase, and the fault-tolerance table when there is one.
pub fn report_html(r: &DrillReport) -> String {
    let mut h = String::new();
    head(&mut h, r);
    facts_section(&mut h, r);
    if let Some(b) = &r.backup {
        backup_section(&mut h, b);
    }
    gates_section(&mut h, r);
    timeline_section(&mut h, r);
    rto_section(&mut h, r);
    checks_section(&mut h, r);
    steps_section(&mut h, r);
    fault_events_section(&mut h, r);
    snapshots_section(&mut h, r);
    if let Some(rows) = &r.table {
        h.push_str("<h2>Fault-tolerance table</h2>\n");
        h.push_str(&html_fault_table(rows));
    }
    h.push_str("</body>\n</html>\n");
    h
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
fn facts(r: &DrillReport) -> [(&'static str, String); 12] {
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
    [
        ("verdict", format!("{} ({})", verdict_word(r), r.verdict)),
        ("scenario file", r.file.clone()),
        ("etcd", format!("{} (image {})", r.etcd_version, r.image)),
        (
            "cluster",
            format!(
                "{} members, TLS {}",
                r.cluster_size,
                if r.tls { "on" } else { "off" }
            ),
        ),
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
    ]
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

/// A chart that cannot be drawn is reported in its place: the rest of the page still
/// carries the run's facts.
fn timeline_section(h: &mut String, r: &DrillReport) {
    h.push_str("<h2>Timeline</h2>\n");
    match timeline_svg(r) {
        Ok(svg) => h.push_str(&svg),
        Err(e) => {
            let _ = writeln!(h, "<p class=\"bad\">timeline not drawn: {}</p>", esc(&e));
        }
    }
    let _ = writeln!(
        h,
        "<p class=\"legend note\"><span><i class=\"sw\" style=\"background:{ok}\"></i>step ok / probe writable</span><span><i class=\"sw\" style=\"background:{bad}\"></i>step failed / probe not writable</span><span><i class=\"sw\" style=\"background:{fault}\"></i>fault event</span></p>",
        ok = hex(OK_COLOR),
        bad = hex(BAD_COLOR),
        fault = hex(FAULT_COLOR)
    );
}

fn rto_section(h: &mut String, r: &DrillReport) {
    h.push_str("<h2>RTO by phase</h2>\n");
    match &r.rto {
        Some(rto) if !rto.phases.is_empty() => {
            match rto_svg(r, rto) {
                Ok(svg) => h.push_str(&svg),
                Err(e) => {
                    let _ = writeln!(h, "<p class=\"bad\">RTO chart not drawn: {}</p>", esc(&e));
                }
            }
            h.push_str("<p class=\"note\">Black ticks: gate limits (per phase, from the phase's start).</p>\n");
            rto_phase_table(h, r, rto);
        }
        Some(rto) => {
            let _ = writeln!(h, "<p>{:.2} s, no phases recorded.</p>", rto.total_s);
        }
        None => h.push_str("<p>not measured</p>\n"),
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
        assert!(html.contains(&format!("fill=\"{}\"", hex(BAD_COLOR))));
        assert!(html.contains(&format!("fill=\"{}\"", hex(OK_COLOR))));
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
        assert!(html.contains("<td class=\"cell bad\">✗W</td>"));
        assert!(html.contains("<th>k=5</th>"));
        assert!(external_refs(&html).is_empty());

        // Nothing recorded, NaN and negative times: still a page, no panic.
        let mut r = table_fixture();
        r.steps = vec![
            step(1, "wait", "wait", f64::NAN, f64::INFINITY, true, ""),
            step(2, "wait", "w", -1.0, -2.0, false, ""),
        ];
        r.probes = vec![probe(f64::NAN, 1, true, None)];
        r.rto = Some(Rto {
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
}
