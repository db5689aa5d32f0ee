//! Report files rendered from one [`DrillReport`]: a Markdown summary for pull-request
//! comments, JUnit XML for CI, Prometheus text for node_exporter's textfile collector, a
//! self-contained HTML page with SVG charts, and a comparison of two runs.
//!
//! Every renderer is a pure function of the report: the same report gives the same bytes.

use std::fmt::Write as _;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use crate::model::report::{DrillReport, GateResult, Rto};

/// Gate on the whole RTO.
const GATE_RTO: &str = "max_rto_s";
/// Prefix of per-phase gates: `max_phase_s.<phase>`.
const GATE_PHASE_PREFIX: &str = "max_phase_s.";
/// Gate on acknowledged writes lost.
const GATE_RPO: &str = "max_rpo_writes";

// ---------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------

fn mark(passed: bool) -> &'static str {
    if passed { "✅" } else { "❌" }
}

fn verdict_word(r: &DrillReport) -> &'static str {
    if r.passed() { "PASS" } else { "FAIL" }
}

/// The first gate with this name.
fn gate<'a>(r: &'a DrillReport, name: &str) -> Option<&'a GateResult> {
    r.gates.iter().find(|g| g.name == name)
}

/// Seconds gates are `max_rto_s`, `max_write_gap_s`, `max_phase_s.<phase>`.
fn is_seconds_gate(name: &str) -> bool {
    name.ends_with("_s") || name.starts_with(GATE_PHASE_PREFIX)
}

/// A count without decimals when it is whole, else two decimals.
fn num(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn gate_value(name: &str, v: f64) -> String {
    if is_seconds_gate(name) {
        format!("{v:.2} s")
    } else {
        num(v)
    }
}

fn gate_actual(g: &GateResult) -> String {
    match g.actual {
        Some(a) => gate_value(&g.name, a),
        None => "not measured".to_string(),
    }
}

/// Phases with repeated names summed into one, in order of first appearance (series and
/// comparison rows must be unique per phase).
fn merged_phases(rto: &Rto) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = Vec::new();
    for p in &rto.phases {
        match out.iter_mut().find(|(n, _)| *n == p.name) {
            Some((_, s)) => *s += p.seconds,
            None => out.push((p.name.clone(), p.seconds)),
        }
    }
    out
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

/// Finite, else 0: keeps NaN and infinities away from chart coordinates.
fn fin(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

// ---------------------------------------------------------------------------------------
// Markdown
// ---------------------------------------------------------------------------------------

/// Text safe in Markdown, including table cells: punctuation that Markdown or HTML would
/// interpret is backslash-escaped and line breaks become spaces.
fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in one_line(s).chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '&' | '~' | '#'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A code span for a table cell: a fence longer than any backtick run inside, `|` escaped
/// (GFM tables need that even inside code spans).
fn md_code(s: &str) -> String {
    let s = one_line(s);
    let longest = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{}{pad}{fence}", s.replace('|', "\\|"))
}

/// The fault-tolerance table as a Markdown table, like `quorum::render_table`.
fn md_fault_table(rows: &[crate::model::report::TableRow]) -> String {
    let max_k = rows
        .iter()
        .flat_map(|r| std::iter::once(r.size).chain(r.cells.iter().map(|c| c.0)))
        .max()
        .unwrap_or(0);
    let mut out = String::from("| cluster size | MAJORITY | failure tolerance |");
    for k in 0..=max_k {
        let _ = write!(out, " k={k} |");
    }
    out.push_str("\n| ---: | ---: | ---: |");
    for _ in 0..=max_k {
        out.push_str(" :---: |");
    }
    out.push('\n');
    for row in rows {
        let _ = write!(
            out,
            "| {} | {} | {} |",
            row.size, row.majority, row.tolerance
        );
        for k in 0..=max_k {
            match row.cells.iter().find(|c| c.0 == k) {
                Some(&(_, predicted, observed)) => {
                    let flag = if predicted != observed { "✗" } else { "" };
                    let cell = if observed { "W" } else { "-" };
                    let _ = write!(out, " {flag}{cell} |");
                }
                None => out.push_str("  |"),
            }
        }
        out.push('\n');
    }
    out.push_str("\nW: writes acknowledged; -: no write acknowledged; ✗: observation disagrees with the table\n");
    out
}

/// A Markdown summary for a pull-request comment: verdict, error, RTO by phase and RPO
/// against their gates, every gate, failed checks, snapshots, steps, and the
/// fault-tolerance table when the run has one.
pub fn summary_md(r: &DrillReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## {} etcd-drill: {} — {}",
        mark(r.passed()),
        md(&r.scenario),
        verdict_word(r)
    );
    s.push('\n');
    if !r.description.trim().is_empty() {
        let _ = writeln!(s, "> {}\n", md(&r.description));
    }
    let _ = writeln!(
        s,
        "etcd {} · {} members · TLS {} · seed {} · repetition {} · started {} · ran {:.2} s · {}\n",
        md(&r.etcd_version),
        r.cluster_size,
        if r.tls { "on" } else { "off" },
        r.seed,
        r.repetition,
        utc(r.started_at_ms),
        run_seconds(r),
        md_code(&r.file),
    );

    if let Some(err) = &r.error {
        let longest = err.split(|c| c != '`').map(str::len).max().unwrap_or(0);
        let fence = "`".repeat((longest + 1).max(3));
        let _ = writeln!(
            s,
            "**Error:**\n\n{fence}text\n{}\n{fence}\n",
            err.trim_end()
        );
    }

    // RTO
    match &r.rto {
        Some(rto) => {
            let total_gate = gate(r, GATE_RTO)
                .map(|g| {
                    format!(
                        " (gate ≤ {} {})",
                        gate_value(&g.name, g.limit),
                        mark(g.passed)
                    )
                })
                .unwrap_or_default();
            let _ = writeln!(s, "### RTO: {:.2} s{total_gate}\n", rto.total_s);
            if !rto.phases.is_empty() {
                s.push_str("| phase | seconds | gate |\n| --- | ---: | --- |\n");
                for p in &rto.phases {
                    let g = gate(r, &format!("{GATE_PHASE_PREFIX}{}", p.name))
                        .map(|g| format!("≤ {:.2} {}", g.limit, mark(g.passed)))
                        .unwrap_or_default();
                    let _ = writeln!(s, "| {} | {:.2} | {g} |", md(&p.name), p.seconds);
                }
                let g = gate(r, GATE_RTO)
                    .map(|g| format!("≤ {:.2} {}", g.limit, mark(g.passed)))
                    .unwrap_or_default();
                let _ = writeln!(s, "| **total** | **{:.2}** | {g} |\n", rto.total_s);
            }
        }
        None => {
            let g = gate(r, GATE_RTO)
                .map(|g| {
                    format!(
                        " (gate ≤ {} {})",
                        gate_value(&g.name, g.limit),
                        mark(g.passed)
                    )
                })
                .unwrap_or_default();
            let _ = writeln!(s, "### RTO: not measured{g}\n");
        }
    }

    // RPO
    let rpo_gate = gate(r, GATE_RPO)
        .map(|g| format!(" — gate ≤ {} {}", num(g.limit), mark(g.passed)))
        .unwrap_or_default();
    match &r.rpo {
        Some(rpo) => {
            let _ = writeln!(
                s,
                "### RPO: {} acknowledged writes lost ({} dataset, {} harness; {} revisions){rpo_gate}\n",
                rpo.writes, rpo.dataset_writes, rpo.harness_writes, rpo.revisions
            );
        }
        None => {
            let _ = writeln!(s, "### RPO: not measured{rpo_gate}\n");
        }
    }

    // Gates
    if !r.gates.is_empty() {
        let failed = r.gates.iter().filter(|g| !g.passed).count();
        let _ = writeln!(
            s,
            "### Gates: {} passed, {failed} failed\n",
            r.gates.len() - failed
        );
        s.push_str("| gate | limit | actual | result |\n| --- | ---: | ---: | :---: |\n");
        for g in &r.gates {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                md_code(&g.name),
                gate_value(&g.name, g.limit),
                gate_actual(g),
                mark(g.passed)
            );
        }
        s.push('\n');
    }

    // Checks
    let failed: Vec<_> = r.checks.iter().filter(|c| !c.passed).collect();
    let passed = r.checks.len() - failed.len();
    if r.checks.is_empty() {
        s.push_str("### Checks: none recorded\n\n");
    } else if failed.is_empty() {
        let _ = writeln!(s, "### Checks: all {passed} passed ✅\n");
    } else {
        let _ = writeln!(
            s,
            "### Checks: {passed} passed, {} failed ❌\n",
            failed.len()
        );
        s.push_str("| step | check | detail |\n| ---: | --- | --- |\n");
        for c in &failed {
            let _ = writeln!(s, "| {} | {} | {} |", c.step, md(&c.name), md(&c.detail));
        }
        s.push('\n');
    }

    // Snapshots
    if !r.snapshots.is_empty() {
        s.push_str(
            "### Snapshots\n\n| name | revision | size | sha256 |\n| --- | ---: | ---: | --- |\n",
        );
        for snap in &r.snapshots {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                md(&snap.name),
                snap.revision,
                human_bytes(snap.size),
                md_code(sha_prefix(&snap.sha256))
            );
        }
        s.push('\n');
    }

    // Fault-tolerance table
    if let Some(rows) = &r.table {
        s.push_str("### Fault-tolerance table\n\n");
        s.push_str(&md_fault_table(rows));
        s.push('\n');
    }

    // Steps, collapsed.
    if !r.steps.is_empty() {
        let bad = r.steps.iter().filter(|st| !st.ok).count();
        let _ = writeln!(
            s,
            "<details><summary>{} step{}, {bad} failed</summary>\n\n| # | kind | step | start s | seconds | result |\n| ---: | --- | --- | ---: | ---: | :---: |",
            r.steps.len(),
            if r.steps.len() == 1 { "" } else { "s" }
        );
        for st in &r.steps {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.2} | {:.2} | {} |",
                st.index,
                md(&st.kind),
                md(&st.title),
                st.start_s,
                st.seconds,
                mark(st.ok)
            );
        }
        s.push_str("\n</details>\n");
    }
    s
}

// ---------------------------------------------------------------------------------------
// JUnit
// ---------------------------------------------------------------------------------------

/// JUnit XML: one suite named after the scenario, one test case per check
/// (`step<N> <check>`) and per gate (`gate <name>`), and a `run` case when the run stopped
/// with an error (an error) or its verdict is fail with no failed check or gate to show why
/// (a failure).
pub fn junit_xml(r: &DrillReport) -> Result<String, String> {
    let mut suite = TestSuite::new(r.scenario.as_str());
    suite.set_time(std::time::Duration::from_millis(
        r.finished_at_ms.saturating_sub(r.started_at_ms),
    ));
    for (k, v) in [
        ("verdict", r.verdict.clone()),
        ("seed", r.seed.to_string()),
        ("repetition", r.repetition.to_string()),
        ("etcd_version", r.etcd_version.clone()),
        ("cluster_size", r.cluster_size.to_string()),
        ("tls", r.tls.to_string()),
        ("file", r.file.clone()),
    ] {
        suite.add_property(Property::new(k, v));
    }

    for c in &r.checks {
        let status = if c.passed {
            TestCaseStatus::success()
        } else {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
            st.set_message(one_line(&c.detail))
                .set_type("check")
                .set_description(c.detail.as_str());
            st
        };
        let mut tc = TestCase::new(format!("step{} {}", c.step, c.name), status);
        tc.set_classname(r.scenario.as_str());
        if let Some(s) = c.seconds {
            tc.set_time(std::time::Duration::from_secs_f64(s.max(0.0)));
        }
        suite.add_test_case(tc);
    }

    for g in &r.gates {
        let status = if g.passed {
            TestCaseStatus::success()
        } else {
            let msg = format!(
                "limit {}, actual {}",
                gate_value(&g.name, g.limit),
                gate_actual(g)
            );
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
            st.set_message(msg).set_type("gate");
            st
        };
        let mut tc = TestCase::new(format!("gate {}", g.name), status);
        tc.set_classname(r.scenario.as_str());
        suite.add_test_case(tc);
    }

    let unexplained_fail =
        !r.passed() && r.checks.iter().all(|c| c.passed) && r.gates.iter().all(|g| g.passed);
    let run_status = match &r.error {
        Some(err) => {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Error);
            st.set_message(one_line(err))
                .set_type("error")
                .set_description(err.as_str());
            Some(st)
        }
        None if unexplained_fail => {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
            st.set_message(format!("verdict is {:?}", r.verdict))
                .set_type("verdict");
            Some(st)
        }
        None => None,
    };
    if let Some(st) = run_status {
        let mut tc = TestCase::new("run", st);
        tc.set_classname(r.scenario.as_str());
        suite.add_test_case(tc);
    }

    let mut report = Report::new("etcd-drill");
    report.add_test_suite(suite);
    report
        .to_string()
        .map_err(|e| format!("serializing JUnit XML: {e}"))
}

// ---------------------------------------------------------------------------------------
// Prometheus
// ---------------------------------------------------------------------------------------

/// A label value escaped for the text exposition format.
fn prom_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn prom_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

fn prom_family(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
}

/// Prometheus text exposition for node_exporter's textfile collector. RTO and RPO series
/// are left out when the run did not measure them.
pub fn metrics_prom(r: &DrillReport) -> String {
    let sc = prom_label(&r.scenario);
    let mut out = String::new();

    prom_family(
        &mut out,
        "etcd_drill_verdict",
        "1 if the scenario's last run passed, 0 if it failed.",
    );
    let _ = writeln!(
        out,
        "etcd_drill_verdict{{scenario=\"{sc}\"}} {}",
        u8::from(r.passed())
    );

    if let Some(rto) = &r.rto {
        prom_family(
            &mut out,
            "etcd_drill_rto_seconds",
            "Recovery time: from the disaster to a verified cluster.",
        );
        let _ = writeln!(
            out,
            "etcd_drill_rto_seconds{{scenario=\"{sc}\"}} {}",
            prom_value(rto.total_s)
        );
        let phases = merged_phases(rto);
        if !phases.is_empty() {
            prom_family(
                &mut out,
                "etcd_drill_rto_phase_seconds",
                "Recovery time spent in each phase.",
            );
            for (name, secs) in phases {
                let _ = writeln!(
                    out,
                    "etcd_drill_rto_phase_seconds{{scenario=\"{sc}\",phase=\"{}\"}} {}",
                    prom_label(&name),
                    prom_value(secs)
                );
            }
        }
    }

    if let Some(rpo) = &r.rpo {
        prom_family(
            &mut out,
            "etcd_drill_rpo_writes",
            "Acknowledged writes lost by the recovery.",
        );
        let _ = writeln!(
            out,
            "etcd_drill_rpo_writes{{scenario=\"{sc}\"}} {}",
            rpo.writes
        );
        prom_family(
            &mut out,
            "etcd_drill_rpo_revisions",
            "Revisions lost by the recovery.",
        );
        let _ = writeln!(
            out,
            "etcd_drill_rpo_revisions{{scenario=\"{sc}\"}} {}",
            rpo.revisions
        );
    }

    // One series per gate name (a duplicate series makes the collector drop the file).
    let mut gates: Vec<(&str, bool)> = Vec::new();
    for g in &r.gates {
        match gates.iter_mut().find(|(n, _)| *n == g.name) {
            Some((_, p)) => *p &= g.passed,
            None => gates.push((&g.name, g.passed)),
        }
    }
    if !gates.is_empty() {
        prom_family(
            &mut out,
            "etcd_drill_gate_passed",
            "1 if the gate held in the last run, 0 if not.",
        );
        for (name, passed) in gates {
            let _ = writeln!(
                out,
                "etcd_drill_gate_passed{{scenario=\"{sc}\",gate=\"{}\"}} {}",
                prom_label(name),
                u8::from(passed)
            );
        }
    }

    prom_family(
        &mut out,
        "etcd_drill_last_run_timestamp_seconds",
        "When the scenario's last run finished, in seconds since the Unix epoch.",
    );
    let _ = writeln!(
        out,
        "etcd_drill_last_run_timestamp_seconds{{scenario=\"{sc}\"}} {}.{:03}",
        r.finished_at_ms / 1000,
        r.finished_at_ms % 1000
    );
    out
}

// ---------------------------------------------------------------------------------------
// HTML
// ---------------------------------------------------------------------------------------

const OK_COLOR: RGBColor = RGBColor(0x2D, 0xA4, 0x4E);
const BAD_COLOR: RGBColor = RGBColor(0xD7, 0x3A, 0x49);
const FAULT_COLOR: RGBColor = RGBColor(0x6F, 0x42, 0xC1);
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

fn font(size: u32) -> TextStyle<'static> {
    TextStyle::from(("sans-serif", size).into_font()).color(&GRID_TEXT)
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// The run on one time axis: steps as bars, fault events as markers, probes as dots.
fn timeline_svg(r: &DrillReport) -> Result<String, String> {
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
    let (x0, x1) = (x0 - pad, x1 + pad);
    let min_w = (x1 - x0) * 0.002;
    let label_digits = if x1 - x0 > 20.0 { 0 } else { 1 };

    let mut buf = String::new();
    let drawn: DrawResult = (|| {
        let root = SVGBackend::with_string(&mut buf, (960, 280)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, 0f64..3f64)?;
        let fmt = |v: &f64| format!("{v:.label_digits$}");
        chart
            .configure_mesh()
            .disable_y_mesh()
            .disable_y_axis()
            .x_desc("seconds since run start")
            .x_label_formatter(&fmt)
            .label_style(font(12))
            .axis_desc_style(font(12))
            .light_line_style(RGBColor(0xEE, 0xEE, 0xEE))
            .draw()?;

        // Row labels, left of the plot.
        for (label, y) in [("steps", 2.5), ("faults", 1.5), ("probes", 0.5)] {
            let (_, py) = chart.backend_coord(&(x0, y));
            let (px, _) = chart.backend_coord(&(x0, 0.0));
            root.draw(&Text::new(
                label.to_string(),
                (px - 8, py),
                font(13).pos(Pos::new(HPos::Right, VPos::Center)),
            ))?;
        }

        // Fault events: a faint vertical rule across all rows and a marker.
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

        // Steps: bars colored by outcome, numbered when there is room.
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

        // Probes: green when writable, red when not.
        chart.draw_series(r.probes.iter().map(|p| {
            let color = if p.writable { OK_COLOR } else { BAD_COLOR };
            Circle::new((fin(p.at_s), 0.5), 5, color.filled())
        }))?;

        root.present()?;
        Ok(())
    })();
    drawn.map_err(|e| e.to_string())?;
    Ok(buf)
}

/// The RTO broken down: a total bar segmented by phase, then one bar per phase placed
/// where it ran, with a black tick at each phase gate's limit (from the phase's start).
fn rto_svg(r: &DrillReport, rto: &Rto) -> Result<String, String> {
    let phases: Vec<(&str, f64)> = rto
        .phases
        .iter()
        .map(|p| (p.name.as_str(), fin(p.seconds).max(0.0)))
        .collect();
    let n = phases.len();
    let total: f64 = phases
        .iter()
        .map(|p| p.1)
        .sum::<f64>()
        .max(fin(rto.total_s));
    let mut limit_x = total;
    let mut start = 0.0;
    for (name, secs) in &phases {
        if let Some(g) = gate(r, &format!("{GATE_PHASE_PREFIX}{name}")) {
            limit_x = limit_x.max(start + fin(g.limit));
        }
        start += secs;
    }
    if let Some(g) = gate(r, GATE_RTO) {
        limit_x = limit_x.max(fin(g.limit));
    }
    let x1 = if limit_x > 0.0 { limit_x * 1.18 } else { 1.0 };
    let rows = n + 1;
    let height = (70 + 30 * rows) as u32;

    let mut buf = String::new();
    let drawn: DrawResult = (|| {
        let root = SVGBackend::with_string(&mut buf, (960, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(130)
            .build_cartesian_2d(0f64..x1, 0f64..rows as f64)?;
        let digits = if x1 > 20.0 { 0 } else { 1 };
        let fmt = |v: &f64| format!("{v:.digits$}");
        chart
            .configure_mesh()
            .disable_y_mesh()
            .disable_y_axis()
            .x_desc("seconds since the disaster")
            .x_label_formatter(&fmt)
            .label_style(font(12))
            .axis_desc_style(font(12))
            .light_line_style(RGBColor(0xEE, 0xEE, 0xEE))
            .draw()?;

        let (left_px, _) = chart.backend_coord(&(0.0, 0.0));
        let row_label = |label: String, y: f64| -> Result<(), Box<dyn std::error::Error>> {
            let (_, py) = chart.backend_coord(&(0.0, y));
            root.draw(&Text::new(
                label,
                (left_px - 8, py),
                font(13).pos(Pos::new(HPos::Right, VPos::Center)),
            ))?;
            Ok(())
        };
        let total_y = rows as f64 - 0.5;
        row_label("total".to_string(), total_y)?;
        for (i, (name, _)) in phases.iter().enumerate() {
            row_label(name.to_string(), total_y - 1.0 - i as f64)?;
        }

        let tick = |x: f64, y: f64| {
            PathElement::new(vec![(x, y - 0.45), (x, y + 0.45)], BLACK.stroke_width(2))
        };
        let gap = x1 * 0.004;
        let mut start = 0.0;
        for (i, (name, secs)) in phases.iter().enumerate() {
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
            if let Some(g) = gate(r, &format!("{GATE_PHASE_PREFIX}{name}")) {
                chart.draw_series(std::iter::once(tick(start + fin(g.limit), y)))?;
            }
            start = end;
        }
        chart.draw_series(std::iter::once(Text::new(
            format!("{:.2} s", fin(rto.total_s)),
            (total + gap, total_y),
            font(12).pos(Pos::new(HPos::Left, VPos::Center)),
        )))?;
        if let Some(g) = gate(r, GATE_RTO) {
            chart.draw_series(std::iter::once(tick(fin(g.limit), total_y)))?;
        }
        root.present()?;
        Ok(())
    })();
    drawn.map_err(|e| e.to_string())?;
    Ok(buf)
}

fn html_fault_table(rows: &[crate::model::report::TableRow]) -> String {
    let max_k = rows
        .iter()
        .flat_map(|r| std::iter::once(r.size).chain(r.cells.iter().map(|c| c.0)))
        .max()
        .unwrap_or(0);
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

fn ok_cell(ok: bool) -> &'static str {
    if ok {
        "<td class=\"ok\">&#10003; ok</td>"
    } else {
        "<td class=\"bad\">&#10007; failed</td>"
    }
}

/// One self-contained HTML page (inline CSS and SVG, no scripts, nothing fetched): the
/// verdict, the run's facts, gates, checks, snapshots, a timeline of steps, faults and
/// probes, the RTO by phase, and the fault-tolerance table when there is one.
pub fn report_html(r: &DrillReport) -> String {
    let v = verdict_word(r);
    let mut h = String::new();
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

    // Facts.
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
    h.push_str("<h2>Summary</h2>\n<table>\n");
    for (k, val) in [
        ("verdict", format!("{v} ({})", r.verdict)),
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
    ] {
        let _ = writeln!(h, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(&val));
    }
    h.push_str("</table>\n");

    // Gates.
    if !r.gates.is_empty() {
        h.push_str("<h2>Gates</h2>\n<table><thead><tr><th>gate</th><th>limit</th><th>actual</th><th>result</th></tr></thead><tbody>\n");
        for g in &r.gates {
            let _ = writeln!(
                h,
                "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td>{}</tr>",
                esc(&g.name),
                esc(&gate_value(&g.name, g.limit)),
                esc(&gate_actual(g)),
                ok_cell(g.passed)
            );
        }
        h.push_str("</tbody></table>\n");
    }

    // Timeline.
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

    // RTO.
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
            h.push_str("<table><thead><tr><th>phase</th><th>seconds</th><th>gate</th></tr></thead><tbody>\n");
            for p in &rto.phases {
                let g = gate(r, &format!("{GATE_PHASE_PREFIX}{}", p.name))
                    .map(|g| format!("≤ {:.2} {}", g.limit, mark(g.passed)))
                    .unwrap_or_default();
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td class=\"num\">{:.2}</td><td>{}</td></tr>",
                    esc(&p.name),
                    p.seconds,
                    esc(&g)
                );
            }
            let g = gate(r, GATE_RTO)
                .map(|g| format!("≤ {:.2} {}", g.limit, mark(g.passed)))
                .unwrap_or_default();
            let _ = writeln!(
                h,
                "<tr><th>total</th><th class=\"num\">{:.2}</th><th>{}</th></tr>\n</tbody></table>",
                rto.total_s,
                esc(&g)
            );
        }
        Some(rto) => {
            let _ = writeln!(h, "<p>{:.2} s, no phases recorded.</p>", rto.total_s);
        }
        None => h.push_str("<p>not measured</p>\n"),
    }

    // Checks.
    if !r.checks.is_empty() {
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

    // Steps.
    if !r.steps.is_empty() {
        h.push_str("<h2>Steps</h2>\n<table><thead><tr><th>#</th><th>kind</th><th>step</th><th>start s</th><th>seconds</th><th>result</th><th>detail</th></tr></thead><tbody>\n");
        for st in &r.steps {
            let _ = writeln!(
                h,
                "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td class=\"num\">{:.2}</td><td class=\"num\">{:.2}</td>{}<td>{}</td></tr>",
                st.index,
                esc(&st.kind),
                esc(&st.title),
                st.start_s,
                st.seconds,
                ok_cell(st.ok),
                esc(&st.detail)
            );
        }
        h.push_str("</tbody></table>\n");
    }

    // Fault events.
    if !r.fault_events.is_empty() {
        h.push_str("<h2>Fault events</h2>\n<table><thead><tr><th>at s</th><th>fault</th><th>member</th><th>role</th></tr></thead><tbody>\n");
        for f in &r.fault_events {
            let _ = writeln!(
                h,
                "<tr><td class=\"num\">{:.2}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                f.at_s,
                esc(&f.fault),
                esc(&f.member),
                esc(&f.role)
            );
        }
        h.push_str("</tbody></table>\n");
    }

    // Snapshots.
    if !r.snapshots.is_empty() {
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

    if let Some(rows) = &r.table {
        h.push_str("<h2>Fault-tolerance table</h2>\n");
        h.push_str(&html_fault_table(rows));
    }

    h.push_str("</body>\n</html>\n");
    h
}

// ---------------------------------------------------------------------------------------
// Comparison
// ---------------------------------------------------------------------------------------

/// When NEW counts as worse than OLD. A time or the RPO regresses only when it grew by more
/// than the tolerance relatively *and* by more than its absolute floor: two runs of one
/// scenario on one machine differ by fractions of a second and by a few hundred lost
/// writes (0 → 128 is "+inf %"), and neither is a regression.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct CompareOptions {
    /// Allowed relative increase, e.g. 0.2 for 20 %.
    pub tolerance: f64,
    /// Seconds a time may grow by, whatever the ratio.
    pub min_seconds: f64,
    /// Acknowledged writes the RPO may grow by, whatever the ratio.
    pub rpo_writes: f64,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            tolerance: 0.2,
            min_seconds: 0.5,
            rpo_writes: 200.0,
        }
    }
}

impl CompareOptions {
    /// Negative or non-finite values count as 0.
    fn sanitized(self) -> Self {
        let clamp = |v: f64| if v.is_finite() && v > 0.0 { v } else { 0.0 };
        CompareOptions {
            tolerance: clamp(self.tolerance),
            min_seconds: clamp(self.min_seconds),
            rpo_writes: clamp(self.rpo_writes),
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Comparison {
    pub rows: Vec<CompareRow>,
    /// NEW is worse than OLD on at least one row.
    pub worse: bool,
    /// The thresholds the rows were judged by.
    pub options: CompareOptions,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CompareRow {
    /// `rto_s`, `phase <name>`, `rpo_writes` or `verdict`.
    pub what: String,
    pub old: Option<f64>,
    pub new: Option<f64>,
    pub worse: bool,
}

/// A time or count that is worse when it grows beyond `old × (1 + tolerance)` and by more
/// than `floor`, or is missing in NEW while OLD had it.
fn grew(old: Option<f64>, new: Option<f64>, tolerance: f64, floor: f64) -> bool {
    match (old, new) {
        (Some(_), None) => true,
        (Some(o), Some(n)) => n > o * (1.0 + tolerance) && n - o > floor,
        _ => false,
    }
}

/// Refuses to compare runs of different scenarios (their phases and RPO mean different
/// things) unless `force`.
pub fn ensure_comparable(old: &DrillReport, new: &DrillReport, force: bool) -> crate::Result<()> {
    if force || old.scenario == new.scenario {
        return Ok(());
    }
    Err(crate::Error::ReportsNotComparable {
        old: old.scenario.clone(),
        new: new.scenario.clone(),
    })
}

/// The rows for the RTO and each phase (in OLD's order, then NEW's new ones).
fn time_rows(old: &DrillReport, new: &DrillReport, o: &CompareOptions) -> Vec<CompareRow> {
    let row = |what: String, old: Option<f64>, new: Option<f64>| CompareRow {
        worse: grew(old, new, o.tolerance, o.min_seconds),
        what,
        old,
        new,
    };
    let total = |r: &DrillReport| r.rto.as_ref().map(|r| r.total_s);
    let mut rows = vec![row("rto_s".into(), total(old), total(new))];
    let old_phases = old.rto.as_ref().map(merged_phases).unwrap_or_default();
    let new_phases = new.rto.as_ref().map(merged_phases).unwrap_or_default();
    let mut names: Vec<&str> = old_phases.iter().map(|p| p.0.as_str()).collect();
    for (name, _) in &new_phases {
        if !names.contains(&name.as_str()) {
            names.push(name);
        }
    }
    let find = |ps: &[(String, f64)], name: &str| ps.iter().find(|p| p.0 == name).map(|p| p.1);
    for name in names {
        let (a, b) = (find(&old_phases, name), find(&new_phases, name));
        rows.push(row(format!("phase {name}"), a, b));
    }
    rows
}

/// Compares two runs. NEW is worse when a time or the RPO grew beyond both thresholds of
/// `options`, an RTO, phase or RPO measured in OLD is missing in NEW, or the verdict went
/// from pass to fail (always flagged).
pub fn compare(old: &DrillReport, new: &DrillReport, options: &CompareOptions) -> Comparison {
    let o = options.sanitized();
    let mut rows = time_rows(old, new, &o);
    let rpo = |r: &DrillReport| r.rpo.as_ref().map(|r| r.writes as f64);
    rows.push(CompareRow {
        what: "rpo_writes".into(),
        old: rpo(old),
        new: rpo(new),
        worse: grew(rpo(old), rpo(new), o.tolerance, o.rpo_writes),
    });
    let verdict = |r: &DrillReport| if r.passed() { 1.0 } else { 0.0 };
    rows.push(CompareRow {
        what: "verdict".into(),
        old: Some(verdict(old)),
        new: Some(verdict(new)),
        worse: old.passed() && !new.passed(),
    });
    let worse = rows.iter().any(|r| r.worse);
    Comparison {
        rows,
        worse,
        options: o,
    }
}

/// One comparison cell: a row's value as shown.
fn compare_value(row: &CompareRow, v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if row.what == "verdict" => (if v >= 1.0 { "pass" } else { "fail" }).into(),
        Some(v) if row.what == "rpo_writes" => num(v),
        Some(v) => format!("{v:.2}"),
    }
}

/// A row's absolute change (what the floors judge) and relative change (the tolerance).
fn compare_changes(row: &CompareRow) -> [String; 2] {
    let (o, n) = match (row.old, row.new) {
        (Some(_), None) => return ["-".into(), "missing".into()],
        (None, Some(_)) => return ["-".into(), "new".into()],
        (None, None) => return ["-".into(), "-".into()],
        (Some(o), Some(n)) => (o, n),
    };
    if row.what == "verdict" {
        return ["-".into(), (if o == n { "same" } else { "changed" }).into()];
    }
    let delta = if row.what == "rpo_writes" {
        format!("{:+}", (n - o) as i64)
    } else {
        format!("{:+.2}", n - o)
    };
    let pct = match o {
        _ if o == n => "0.0%".into(),
        0.0 => (if n > 0.0 { "+inf%" } else { "-inf%" }).into(),
        _ => format!("{:+.1}%", (n - o) / o.abs() * 100.0),
    };
    [delta, pct]
}

/// An aligned table of OLD, NEW and the change (absolute and relative), WORSE beside each
/// regression, the thresholds, and a last line saying whether NEW is worse.
pub fn comparison_text(c: &Comparison) -> String {
    let cells: Vec<[String; 5]> = c
        .rows
        .iter()
        .map(|row| {
            let [delta, pct] = compare_changes(row);
            [
                row.what.clone(),
                compare_value(row, row.old),
                compare_value(row, row.new),
                delta,
                pct,
            ]
        })
        .collect();
    let header = ["what", "old", "new", "delta", "change"].map(String::from);
    let mut widths = [0usize; 5];
    for row in std::iter::once(&header).chain(cells.iter()) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String; 5], flag: &str| -> String {
        let mut l = format!("{:<w$}", cells[0], w = widths[0]);
        for (cell, w) in cells[1..].iter().zip(&widths[1..]) {
            let _ = write!(l, "  {cell:>w$}", w = *w);
        }
        if !flag.is_empty() {
            let _ = write!(l, "  {flag}");
        }
        l.push('\n');
        l
    };
    let mut out = line(&header, "");
    for (row, cells) in c.rows.iter().zip(&cells) {
        out.push_str(&line(cells, if row.worse { "WORSE" } else { "" }));
    }
    let o = &c.options;
    let _ = writeln!(
        out,
        "worse: a time up > {:.0}% and > {:.2} s, the RPO up > {:.0}% and > {} writes, a measurement gone, or pass -> fail",
        o.tolerance * 100.0,
        o.min_seconds,
        o.tolerance * 100.0,
        num(o.rpo_writes)
    );
    let worse: Vec<&str> = c
        .rows
        .iter()
        .filter(|r| r.worse)
        .map(|r| r.what.as_str())
        .collect();
    if c.worse {
        let _ = writeln!(out, "NEW is worse than OLD: {}", worse.join(", "));
    } else {
        out.push_str("NEW is not worse than OLD\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::report::{
        CheckRecord, FaultEventRecord, PhaseRecord, ProbeRecord, Rpo, SnapshotRecord, StepRecord,
        TableRow,
    };

    fn step(
        index: usize,
        kind: &str,
        title: &str,
        start_s: f64,
        seconds: f64,
        ok: bool,
        detail: &str,
    ) -> StepRecord {
        StepRecord {
            index,
            kind: kind.into(),
            title: title.into(),
            start_s,
            seconds,
            ok,
            detail: detail.into(),
        }
    }

    fn probe(at_s: f64, step: usize, writable: bool, leader: Option<&str>) -> ProbeRecord {
        ProbeRecord {
            at_s,
            step,
            writable,
            leader: leader.map(Into::into),
            serializable_readers: vec!["etcd-1".into()],
            first_write_ms: writable.then_some(140),
        }
    }

    fn check(step: usize, name: &str, passed: bool, detail: &str) -> CheckRecord {
        CheckRecord {
            step,
            name: name.into(),
            passed,
            detail: detail.into(),
            seconds: None,
        }
    }

    fn gate(name: &str, limit: f64, actual: Option<f64>, passed: bool) -> GateResult {
        GateResult {
            name: name.into(),
            limit,
            actual,
            passed,
        }
    }

    /// A 3-member restore: data loaded, snapshot taken, more data loaded, quorum lost for
    /// good, restored from the snapshot, verified. One check and two gates fail.
    fn fixture() -> DrillReport {
        let phases = [
            ("disaster", 1.32),
            ("snapshot-checked", 0.41),
            ("restore", 8.40),
            ("started", 1.95),
            ("leader-elected", 1.12),
            ("first-write", 0.14),
            ("verified", 1.03),
        ];
        DrillReport {
            schema_version: crate::model::report::REPORT_SCHEMA_VERSION,
            scenario: "restore-3-quorum-loss".into(),
            description: "Lose 2 of 3 members for good, restore from the last snapshot".into(),
            file: "scenarios/restore-3-quorum-loss.toml".into(),
            seed: 42,
            repetition: 1,
            etcd_version: "v3.5.17".into(),
            image: "etcd-drill/etcd:v3.5.17".into(),
            cluster_size: 3,
            tls: false,
            started_at_ms: 1_718_000_000_000,
            finished_at_ms: 1_718_000_025_320,
            steps: vec![
                step(
                    1,
                    "load",
                    "load 1000 keys",
                    0.0,
                    2.10,
                    true,
                    "1000 keys, 1000 acknowledged",
                ),
                step(
                    2,
                    "snapshot",
                    "snapshot before",
                    2.10,
                    0.85,
                    true,
                    "revision 1003",
                ),
                step(
                    3,
                    "load",
                    "load 200 keys",
                    2.95,
                    1.20,
                    true,
                    "200 keys after the snapshot",
                ),
                step(
                    4,
                    "fault",
                    "fault permanent count:2",
                    4.15,
                    1.40,
                    true,
                    "etcd-2, etcd-3 lost",
                ),
                step(
                    5,
                    "expect",
                    "expect not writable",
                    5.55,
                    3.00,
                    true,
                    "no write acknowledged",
                ),
                step(
                    6,
                    "restore",
                    "restore from before",
                    8.55,
                    14.37,
                    true,
                    "3 members restored",
                ),
                step(
                    7,
                    "verify",
                    "verify",
                    22.92,
                    1.80,
                    false,
                    "1 of 4 checks failed",
                ),
                step(
                    8,
                    "expect",
                    "expect writable",
                    24.72,
                    0.60,
                    true,
                    "write acknowledged",
                ),
            ],
            fault_events: vec![
                FaultEventRecord {
                    at_s: 4.20,
                    member: "etcd-2".into(),
                    fault: "permanent".into(),
                    role: "follower".into(),
                },
                FaultEventRecord {
                    at_s: 4.90,
                    member: "etcd-3".into(),
                    fault: "permanent".into(),
                    role: "leader".into(),
                },
            ],
            probes: vec![
                probe(0.50, 1, true, Some("etcd-3")),
                probe(5.60, 5, false, None),
                probe(7.50, 5, false, None),
                probe(21.00, 6, true, Some("etcd-1")),
                probe(24.80, 8, true, Some("etcd-1")),
            ],
            snapshots: vec![SnapshotRecord {
                name: "before".into(),
                file: "snapshots/before.db".into(),
                revision: 1003,
                size: 2_125_856,
                sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
                member: "etcd-1".into(),
                at_s: 2.50,
            }],
            rto: Some(Rto {
                total_s: 14.37,
                phases: phases
                    .iter()
                    .map(|(n, s)| PhaseRecord {
                        name: (*n).into(),
                        seconds: *s,
                    })
                    .collect(),
            }),
            rpo: Some(Rpo {
                writes: 200,
                revisions: 200,
                dataset_writes: 200,
                harness_writes: 0,
            }),
            checks: vec![
                check(5, "not-writable", true, "no write acknowledged within 3s"),
                check(
                    7,
                    "keys-present",
                    true,
                    "1000/1000 keys from the snapshot present",
                ),
                check(7, "cluster-id-changed", true, "new cluster id"),
                check(
                    7,
                    "revision>=snapshot",
                    false,
                    "revision 998 < snapshot revision 1003 & \"compacted\"",
                ),
                check(7, "members", true, "3 members: etcd-1, etcd-2, etcd-3"),
                check(8, "writable", true, "write acknowledged in 140 ms"),
            ],
            gates: vec![
                gate("max_rto_s", 30.0, Some(14.37), true),
                gate("max_phase_s.restore", 5.0, Some(8.40), false),
                gate("max_phase_s.leader-elected", 3.0, Some(1.12), true),
                gate("max_rpo_writes", 250.0, Some(200.0), true),
                gate("max_write_gap_s", 5.0, None, false),
            ],
            table: None,
            verdict: "fail".into(),
            error: None,
        }
    }

    /// The fault-tolerance table for 3 and 5 members; one cell disagrees with the table.
    fn table_fixture() -> DrillReport {
        let cells = |n: usize, disagree: Option<usize>| -> Vec<(usize, bool, bool)> {
            (0..=n)
                .map(|k| {
                    // Survivors against the majority ⌊N/2⌋+1, as the table states it.
                    #[allow(clippy::int_plus_one)]
                    let predicted = n - k >= n / 2 + 1;
                    (
                        k,
                        predicted,
                        if Some(k) == disagree {
                            !predicted
                        } else {
                            predicted
                        },
                    )
                })
                .collect()
        };
        DrillReport {
            scenario: "quorum-table".into(),
            description: "The seed's fault-tolerance table, checked by observation".into(),
            file: "scenarios/quorum-table.toml".into(),
            steps: vec![step(
                1,
                "quorum-table",
                "quorum-table sizes:[3,5]",
                0.0,
                61.4,
                false,
                "1 cell disagrees",
            )],
            fault_events: vec![],
            probes: vec![],
            snapshots: vec![],
            rto: None,
            rpo: None,
            checks: vec![check(
                1,
                "table-agrees",
                false,
                "size 3, k=2: observed writable, predicted not",
            )],
            gates: vec![],
            table: Some(vec![
                TableRow {
                    size: 3,
                    majority: 2,
                    tolerance: 1,
                    cells: cells(3, Some(2)),
                },
                TableRow {
                    size: 5,
                    majority: 3,
                    tolerance: 2,
                    cells: cells(5, None),
                },
            ]),
            finished_at_ms: 1_718_000_061_400,
            ..fixture()
        }
    }

    fn passing() -> DrillReport {
        let mut r = fixture();
        r.verdict = "pass".into();
        for c in &mut r.checks {
            c.passed = true;
        }
        for st in &mut r.steps {
            st.ok = true;
        }
        r.gates.retain(|g| g.passed);
        r
    }

    fn scale_rto(r: &mut DrillReport, f: f64) {
        let rto = r.rto.as_mut().unwrap();
        rto.total_s *= f;
        for p in &mut rto.phases {
            p.seconds *= f;
        }
    }

    #[test]
    fn summary_md_snapshot() {
        let md = summary_md(&fixture());
        // The gate limits sit beside their phases and total.
        assert!(md.contains("| restore | 8.40 | ≤ 5.00 ❌ |"), "{md}");
        assert!(md.contains("| leader-elected | 1.12 | ≤ 3.00 ✅ |"), "{md}");
        assert!(
            md.contains("| **total** | **14.37** | ≤ 30.00 ✅ |"),
            "{md}"
        );
        assert!(
            md.contains("| `max_write_gap_s` | 5.00 s | not measured | ❌ |"),
            "{md}"
        );
        assert!(
            md.starts_with("## ❌ etcd-drill: restore-3-quorum-loss — FAIL\n"),
            "{md}"
        );
        insta::assert_snapshot!("summary_md", md);
    }

    #[test]
    fn summary_md_passing_run_says_pass() {
        let md = summary_md(&passing());
        assert!(
            md.starts_with("## ✅ etcd-drill: restore-3-quorum-loss — PASS\n"),
            "{md}"
        );
        assert!(md.contains("### Checks: all 6 passed ✅"), "{md}");
        assert!(!md.contains('❌'), "{md}");
    }

    #[test]
    fn summary_md_table_snapshot() {
        let md = summary_md(&table_fixture());
        assert!(
            md.contains("| 3 | 2 | 1 | W | W | ✗W | - |  |  |\n"),
            "{md}"
        );
        assert!(md.contains("### RTO: not measured"), "{md}");
        insta::assert_snapshot!("summary_md_table", md);
    }

    #[test]
    fn summary_md_error_is_fenced_beyond_its_backticks() {
        let mut r = fixture();
        r.error = Some("step 6: ```boom```\nsecond line".into());
        let md = summary_md(&r);
        assert!(
            md.contains("**Error:**\n\n````text\nstep 6: ```boom```\nsecond line\n````\n"),
            "{md}"
        );
    }

    #[test]
    fn markdown_text_is_escaped() {
        let mut r = fixture();
        r.checks[3].detail = "a | b <img src=x>\nnext".into();
        let md = summary_md(&r);
        assert!(
            md.contains("| 7 | revision\\>=snapshot | a \\| b \\<img src=x\\> next |"),
            "{md}"
        );
    }

    /// Checks one line against `^[a-z_]+(\{[^}]*\})? [0-9.eE+-]+$`.
    fn prom_line_ok(line: &str) -> bool {
        let name_end = line
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(line.len());
        if name_end == 0 {
            return false;
        }
        let mut rest = &line[name_end..];
        if let Some(labels) = rest.strip_prefix('{') {
            let Some(close) = labels.find('}') else {
                return false;
            };
            rest = &labels[close + 1..];
        }
        let Some(value) = rest.strip_prefix(' ') else {
            return false;
        };
        !value.is_empty()
            && value
                .chars()
                .all(|c| c.is_ascii_digit() || ".eE+-".contains(c))
    }

    #[test]
    fn prom_line_checker_rejects_bad_lines() {
        assert!(prom_line_ok("etcd_drill_verdict{scenario=\"x\"} 1"));
        assert!(prom_line_ok("etcd_drill_rto_seconds 1.5e3"));
        for bad in [
            "",
            "Etcd 1",
            "etcd_drill_verdict{scenario=\"x\"}  1",
            "etcd{a=\"b\" 1",
            "etcd 1 2",
            "etcd NaN",
            "etcd{a=\"}\"} 1",
        ] {
            assert!(!prom_line_ok(bad), "{bad:?}");
        }
    }

    #[test]
    fn metrics_prom_snapshot_and_syntax() {
        let text = metrics_prom(&fixture());
        let mut samples = 0;
        for line in text.lines() {
            if line.starts_with('#') {
                assert!(
                    line.starts_with("# HELP etcd_drill_")
                        || line.starts_with("# TYPE etcd_drill_"),
                    "{line}"
                );
                continue;
            }
            assert!(prom_line_ok(line), "bad sample line: {line:?}");
            samples += 1;
        }
        // verdict + rto + 7 phases + 2 rpo + 5 gates + timestamp
        assert_eq!(samples, 17, "{text}");
        assert!(text.contains("etcd_drill_verdict{scenario=\"restore-3-quorum-loss\"} 0\n"));
        assert!(text.contains("etcd_drill_last_run_timestamp_seconds{scenario=\"restore-3-quorum-loss\"} 1718000025.320\n"));
        for family in [
            "verdict",
            "rto_seconds",
            "rto_phase_seconds",
            "rpo_writes",
            "rpo_revisions",
            "gate_passed",
            "last_run_timestamp_seconds",
        ] {
            assert_eq!(
                text.matches(&format!("# TYPE etcd_drill_{family} gauge\n"))
                    .count(),
                1,
                "{family}"
            );
        }
        insta::assert_snapshot!("metrics_prom", text);
    }

    #[test]
    fn metrics_prom_omits_unmeasured_and_escapes_labels() {
        let mut r = table_fixture();
        r.scenario = "odd \"name\"\\with\nnewline".into();
        let text = metrics_prom(&r);
        assert!(!text.contains("etcd_drill_rto"), "{text}");
        assert!(!text.contains("etcd_drill_rpo"), "{text}");
        assert!(!text.contains("etcd_drill_gate_passed"), "{text}");
        assert!(
            text.contains(
                "etcd_drill_verdict{scenario=\"odd \\\"name\\\"\\\\with\\nnewline\"} 0\n"
            ),
            "{text}"
        );
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(prom_line_ok(line), "{line:?}");
        }
    }

    #[test]
    fn metrics_prom_passing_run_has_verdict_one() {
        let text = metrics_prom(&passing());
        assert!(
            text.contains("etcd_drill_verdict{scenario=\"restore-3-quorum-loss\"} 1\n"),
            "{text}"
        );
        assert!(!text.contains(
            "etcd_drill_gate_passed{scenario=\"restore-3-quorum-loss\",gate=\"max_write_gap_s\"}"
        ));
    }

    fn junit_counts(xml: &str) -> (usize, usize, usize, Vec<String>) {
        let report = Report::deserialize_from_str(xml)
            .unwrap_or_else(|e| panic!("not well-formed JUnit: {e}\n{xml}"));
        assert_eq!(report.test_suites.len(), 1);
        let suite = &report.test_suites[0];
        let (mut failures, mut errors) = (0, 0);
        for tc in &suite.test_cases {
            if let TestCaseStatus::NonSuccess { kind, .. } = &tc.status {
                match kind {
                    NonSuccessKind::Failure => failures += 1,
                    NonSuccessKind::Error => errors += 1,
                }
            }
        }
        assert_eq!(
            (suite.tests, suite.failures, suite.errors),
            (suite.test_cases.len(), failures, errors)
        );
        (
            suite.test_cases.len(),
            failures,
            errors,
            suite
                .test_cases
                .iter()
                .map(|t| t.name.to_string())
                .collect(),
        )
    }

    #[test]
    fn a_timed_check_carries_its_seconds_into_junit_and_json() {
        let mut r = fixture();
        r.checks[0].seconds = Some(1.25);
        let name = format!("step{} {}", r.checks[0].step, r.checks[0].name);
        let report = Report::deserialize_from_str(&junit_xml(&r).unwrap()).unwrap();
        let times: Vec<_> = report.test_suites[0]
            .test_cases
            .iter()
            .filter(|t| t.name.as_str().starts_with("step"))
            .map(|t| (t.name.to_string(), t.time))
            .collect();
        for (n, t) in &times {
            let want = (n == &name).then(|| std::time::Duration::from_millis(1250));
            assert_eq!(*t, want, "{n}: {times:?}");
        }
        // Untimed expectations stay out of report.json rather than claiming 0 s.
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["checks"][0]["seconds"], 1.25);
        assert!(json["checks"][1].get("seconds").is_none(), "{json}");
    }

    #[test]
    fn junit_parses_back_with_one_case_per_check_and_gate() {
        let xml = junit_xml(&fixture()).unwrap();
        let report = Report::deserialize_from_str(&xml).unwrap();
        assert_eq!(report.test_suites[0].name.as_str(), "restore-3-quorum-loss");
        let (tests, failures, errors, names) = junit_counts(&xml);
        assert_eq!((tests, failures, errors), (11, 3, 0), "{xml}");
        assert!(
            names.contains(&"step7 revision>=snapshot".to_string()),
            "{names:?}"
        );
        assert!(
            names.contains(&"gate max_write_gap_s".to_string()),
            "{names:?}"
        );
        assert!(!names.contains(&"run".to_string()), "{names:?}");

        // The failure carries the detail, escaped in the XML and intact once parsed.
        let tc = report.test_suites[0]
            .test_cases
            .iter()
            .find(|t| t.name.as_str() == "step7 revision>=snapshot")
            .unwrap();
        match &tc.status {
            TestCaseStatus::NonSuccess { message, .. } => assert_eq!(
                message.as_deref(),
                Some("revision 998 < snapshot revision 1003 & \"compacted\"")
            ),
            other => panic!("{other:?}"),
        }
        let tc = report.test_suites[0]
            .test_cases
            .iter()
            .find(|t| t.name.as_str() == "gate max_write_gap_s")
            .unwrap();
        match &tc.status {
            TestCaseStatus::NonSuccess { message, .. } => {
                assert_eq!(
                    message.as_deref(),
                    Some("limit 5.00 s, actual not measured")
                )
            }
            other => panic!("{other:?}"),
        }

        // The parser does reject broken XML.
        assert!(Report::deserialize_from_str(&xml.replacen("</testcase>", "", 1)).is_err());
    }

    #[test]
    fn junit_run_case_for_error_and_unexplained_fail() {
        let mut r = fixture();
        r.error = Some("restore: no leader within 30s\ncontainer etcd-2 exited (code 1)".into());
        let (tests, failures, errors, names) = junit_counts(&junit_xml(&r).unwrap());
        assert_eq!((tests, failures, errors), (12, 3, 1));
        assert_eq!(names.last().map(String::as_str), Some("run"));

        let (tests, failures, errors, _) = junit_counts(&junit_xml(&passing()).unwrap());
        assert_eq!((tests, failures, errors), (9, 0, 0));

        let mut r = passing();
        r.verdict = "fail".into();
        let (tests, failures, errors, names) = junit_counts(&junit_xml(&r).unwrap());
        assert_eq!((tests, failures, errors), (10, 1, 0));
        assert_eq!(names.last().map(String::as_str), Some("run"));
    }

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
                name: "x".into(),
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

    fn opts(tolerance: f64, min_seconds: f64, rpo_writes: f64) -> CompareOptions {
        CompareOptions {
            tolerance,
            min_seconds,
            rpo_writes,
        }
    }

    fn row<'a>(c: &'a Comparison, what: &str) -> &'a CompareRow {
        c.rows.iter().find(|r| r.what == what).unwrap()
    }

    fn set_phase(r: &mut DrillReport, name: &str, seconds: f64) {
        let rto = r.rto.as_mut().unwrap();
        let p = rto.phases.iter_mut().find(|p| p.name == name).unwrap();
        rto.total_s += seconds - p.seconds;
        p.seconds = seconds;
    }

    fn set_rpo(r: &mut DrillReport, writes: usize) {
        r.rpo = Some(Rpo {
            writes,
            revisions: writes as i64,
            dataset_writes: writes,
            harness_writes: 0,
        });
    }

    #[test]
    fn compare_self_is_not_worse() {
        let c = compare(&fixture(), &fixture(), &opts(0.0, 0.0, 0.0));
        assert!(!c.worse, "{}", comparison_text(&c));
        assert!(c.rows.iter().all(|r| !r.worse));
        // rto_s, 7 phases, rpo_writes, verdict
        assert_eq!(c.rows.len(), 10);
    }

    #[test]
    fn compare_defaults_are_the_documented_ones() {
        assert_eq!(CompareOptions::default(), opts(0.2, 0.5, 200.0));
    }

    /// Two runs of one scenario and seed on one machine: sub-second phases that moved by a
    /// few hundred percent, and 0 → 128 lost writes. Not a regression, either way round.
    #[test]
    fn compare_same_ish_runs_are_not_flagged_in_either_direction() {
        let mut old = fixture();
        set_rpo(&mut old, 0);
        let mut new = old.clone();
        set_phase(&mut new, "first-write", 0.49); // 0.14 → 0.49: +250 %
        set_phase(&mut new, "snapshot-checked", 0.1);
        set_phase(&mut new, "leader-elected", 1.55); // +0.43 s
        set_phase(&mut new, "started", 1.8);
        set_rpo(&mut new, 128); // "+inf %"
        for (a, b) in [(&old, &new), (&new, &old)] {
            let c = compare(a, b, &CompareOptions::default());
            assert!(!c.worse, "{}", comparison_text(&c));
        }
        // The same pair without the absolute floors is what cried wolf.
        let c = compare(&old, &new, &opts(0.2, 0.0, 0.0));
        assert!(row(&c, "phase first-write").worse);
        assert!(row(&c, "rpo_writes").worse);
    }

    #[test]
    fn compare_rto_up_by_ten_seconds_is_flagged() {
        let mut new = fixture();
        set_phase(&mut new, "restore", 18.40); // 8.40 → 18.40: the RTO up by 10 s
        let c = compare(&fixture(), &new, &CompareOptions::default());
        assert!(c.worse);
        let flagged: Vec<&str> = c
            .rows
            .iter()
            .filter(|r| r.worse)
            .map(|r| r.what.as_str())
            .collect();
        assert_eq!(flagged, ["rto_s", "phase restore"]);
        let rto = row(&c, "rto_s").new.unwrap();
        assert!((rto - 24.37).abs() < 1e-9, "{rto}");
    }

    #[test]
    fn compare_doubled_rto_is_worse() {
        let mut new = fixture();
        scale_rto(&mut new, 2.0);
        let c = compare(&fixture(), &new, &opts(0.1, 0.5, 100.0));
        assert!(c.worse);
        let r = row(&c, "rto_s");
        assert!(r.worse);
        assert_eq!((r.old, r.new), (Some(14.37), Some(28.74)));
        // Doubling 0.14 s or 0.41 s stays under the 0.5 s floor: not flagged.
        assert!(!row(&c, "phase first-write").worse);
        assert!(!row(&c, "phase snapshot-checked").worse);
        assert!(row(&c, "phase verified").worse, "1.03 → 2.06 s");
        insta::assert_snapshot!("comparison_rto_doubled", comparison_text(&c));
    }

    #[test]
    fn compare_min_seconds_is_the_time_floor() {
        let mut new = fixture();
        set_phase(&mut new, "verified", 1.63); // +0.60 s, +58 %
        assert!(compare(&fixture(), &new, &opts(0.2, 0.5, 100.0)).worse);
        assert!(!compare(&fixture(), &new, &opts(0.2, 0.7, 100.0)).worse);
        // Both thresholds must be exceeded: +0.6 s on 8.4 s is 7 %.
        let mut new = fixture();
        set_phase(&mut new, "restore", 9.0);
        assert!(!compare(&fixture(), &new, &opts(0.2, 0.5, 100.0)).worse);
    }

    #[test]
    fn compare_pass_to_fail_is_worse_and_fail_to_pass_is_not() {
        // Always flagged, whatever the thresholds.
        let c = compare(&passing(), &fixture(), &opts(10.0, 1e9, 1e9));
        assert!(c.worse);
        assert!(row(&c, "verdict").worse);
        assert_eq!(c.rows.iter().filter(|r| r.worse).count(), 1);
        let c = compare(&fixture(), &passing(), &opts(0.1, 0.5, 100.0));
        assert!(!c.worse);
    }

    #[test]
    fn compare_missing_phase_is_worse() {
        let o = opts(0.1, 0.5, 100.0);
        let mut new = fixture();
        new.rto
            .as_mut()
            .unwrap()
            .phases
            .retain(|p| p.name != "verified");
        let c = compare(&fixture(), &new, &o);
        assert!(c.worse);
        let r = row(&c, "phase verified");
        assert!(r.worse);
        assert_eq!((r.old, r.new), (Some(1.03), None));
        // A phase only NEW has is not a regression.
        let c = compare(&new, &fixture(), &o);
        assert!(!c.worse);
        // RTO gone entirely is.
        let mut gone = fixture();
        gone.rto = None;
        assert!(compare(&fixture(), &gone, &o).worse);
    }

    #[test]
    fn compare_within_tolerance_is_not_worse() {
        let mut new = fixture();
        scale_rto(&mut new, 1.05);
        assert!(!compare(&fixture(), &new, &opts(0.1, 0.0, 0.0)).worse);
        // Same change with no tolerance and no floor is worse (restore grows 0.42 s)...
        let c = compare(&fixture(), &new, &opts(0.0, 0.0, 0.0));
        assert!(c.worse);
        // ...and with a floor above the largest growth (the RTO's 0.72 s) it is not.
        assert!(!compare(&fixture(), &new, &opts(0.0, 0.8, 0.0)).worse);
        // Negative and non-finite thresholds count as 0.
        let c2 = compare(&fixture(), &new, &opts(-1.0, f64::NAN, f64::INFINITY));
        assert_eq!(c2.rows, c.rows);
    }

    #[test]
    fn compare_rpo_up_by_128_is_flagged_only_above_the_threshold() {
        let mut old = fixture();
        set_rpo(&mut old, 0);
        let mut new = fixture();
        set_rpo(&mut new, 128);
        let c = compare(&old, &new, &opts(0.2, 0.5, 200.0));
        assert!(!c.worse, "{}", comparison_text(&c));
        let c = compare(&old, &new, &opts(0.2, 0.5, 100.0));
        assert!(c.worse);
        assert!(row(&c, "rpo_writes").worse);
        // The relative tolerance applies too: 1000 → 1128 is +12.8 %.
        set_rpo(&mut old, 1000);
        set_rpo(&mut new, 1128);
        assert!(!compare(&old, &new, &opts(0.2, 0.5, 100.0)).worse);
        // An RPO measured in OLD and missing in NEW is worse.
        new.rpo = None;
        assert!(row(&compare(&old, &new, &opts(0.2, 0.5, 100.0)), "rpo_writes").worse);
    }

    #[test]
    fn compare_refuses_different_scenarios_unless_forced() {
        let mut other = fixture();
        other.scenario = "total-loss-9".into();
        let err = ensure_comparable(&fixture(), &other, false).unwrap_err();
        assert!(
            matches!(err, crate::Error::ReportsNotComparable { .. }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "reports of different scenarios (restore-3-quorum-loss vs total-loss-9) are not comparable; compare runs of one scenario, or pass --force"
        );
        ensure_comparable(&fixture(), &other, true).unwrap();
        ensure_comparable(&fixture(), &fixture(), false).unwrap();
    }

    #[test]
    fn comparison_text_snapshot_mixed() {
        let mut new = fixture();
        new.rto
            .as_mut()
            .unwrap()
            .phases
            .retain(|p| p.name != "verified");
        new.rto.as_mut().unwrap().phases.push(PhaseRecord {
            name: "defragmented".into(),
            seconds: 0.7,
        });
        set_rpo(&mut new, 0);
        let text = comparison_text(&compare(&passing(), &new, &opts(0.1, 0.5, 100.0)));
        assert!(
            text.ends_with("NEW is worse than OLD: phase verified, verdict\n"),
            "{text}"
        );
        insta::assert_snapshot!("comparison_mixed", text);
        let text = comparison_text(&compare(&fixture(), &fixture(), &opts(0.1, 0.5, 100.0)));
        assert!(text.ends_with("NEW is not worse than OLD\n"), "{text}");
        assert!(!text.contains("WORSE"));
    }

    #[test]
    fn comparison_text_snapshot_same_ish() {
        let mut old = fixture();
        set_rpo(&mut old, 0);
        let mut new = old.clone();
        set_phase(&mut new, "first-write", 0.49);
        set_rpo(&mut new, 128);
        let text = comparison_text(&compare(&old, &new, &CompareOptions::default()));
        insta::assert_snapshot!("comparison_same_ish", text);
    }
}
