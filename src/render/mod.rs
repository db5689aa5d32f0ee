//! Report files rendered from one [`DrillReport`]: a Markdown summary for pull-request
//! comments, JUnit XML for CI, Prometheus text for node_exporter's textfile collector, a
//! self-contained HTML page with SVG charts, and a comparison of two runs.
//!
//! Every renderer is a pure function of the report: the same report gives the same bytes.
//! One file per format; the helpers here are the ones several formats share, so that a
//! gate or a size reads the same in every file.

mod charts;
mod history_chart;
mod html;
mod junit;
mod markdown;
mod prom;
mod svg;
mod text;
mod timeline;

pub use html::report_html;
pub use junit::junit_xml;
pub use markdown::summary_md;
pub use prom::metrics_prom;
pub use text::{
    comparison_text, history_check_text, history_op_text, render_table, restore_drill_text,
    snapshot_check_text,
};

use crate::model::report::{DrillReport, Gate, GateResult, RtoPhase, TableRow};

/// Text made safe for HTML and SVG, attribute values included.
fn html_escape(s: &str) -> String {
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

fn mark(passed: bool) -> &'static str {
    if passed { "✅" } else { "❌" }
}

fn verdict_word(r: &DrillReport) -> &'static str {
    if r.passed() { "PASS" } else { "FAIL" }
}

/// The first gate of this kind.
fn gate(r: &DrillReport, name: Gate) -> Option<&GateResult> {
    r.gates.iter().find(|g| g.name == name)
}

/// The gate on one RTO phase (phases are named as in the report).
fn phase_gate<'a>(r: &'a DrillReport, phase: &str) -> Option<&'a GateResult> {
    RtoPhase::parse(phase).and_then(|p| gate(r, Gate::MaxPhaseS(p)))
}

/// The gate cell beside a phase or the RTO total: its limit and whether it held, empty
/// when nothing gates that row.
fn limit_cell(g: Option<&GateResult>) -> String {
    g.map(|g| format!("≤ {:.2} {}", g.limit, mark(g.passed)))
        .unwrap_or_default()
}

/// A count without decimals when it is whole, else two decimals.
fn num(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn gate_value(name: Gate, v: f64) -> String {
    if name.is_seconds() {
        format!("{v:.2} s")
    } else {
        num(v)
    }
}

fn gate_actual(g: &GateResult) -> String {
    match g.actual {
        Some(a) => gate_value(g.name, a),
        None => "not measured".to_string(),
    }
}

/// The last `k` column of the fault-tolerance table: rows of different sizes share one
/// header, so it runs to the largest size or observed `k` of any row.
fn fault_table_max_k(rows: &[TableRow]) -> usize {
    rows.iter()
        .flat_map(|r| std::iter::once(r.size).chain(r.cells.iter().map(|c| c.0)))
        .max()
        .unwrap_or(0)
}

fn utc(ms: u64) -> String {
    let fmt =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| format!("{ms} ms after the Unix epoch"))
}

fn run_seconds(r: &DrillReport) -> f64 {
    r.finished_at_ms.saturating_sub(r.started_at_ms) as f64 / 1000.0
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut unit = "B";
    for u in UNITS {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.2} {unit}")
}

fn sha_prefix(s: &str) -> &str {
    match s.char_indices().nth(12) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn one_line(s: &str) -> String {
    s.split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
pub(crate) mod fixtures;
