//! The Markdown summary, sized for a pull-request comment.

use std::fmt::Write as _;

use super::{
    fault_table_max_k, gate, gate_actual, gate_value, human_bytes, limit_cell, mark, num, one_line,
    phase_gate, run_seconds, sha_prefix, utc, verdict_word,
};
use crate::model::expect::{BackupFacts, QuotaFrom};
use crate::model::report::{DrillReport, Gate, Rto, TableRow};

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
fn md_fault_table(rows: &[TableRow]) -> String {
    let max_k = fault_table_max_k(rows);
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
    header(&mut s, r);
    if let Some(err) = &r.error {
        error_block(&mut s, err);
    }
    if let Some(b) = &r.backup {
        backup_section(&mut s, b);
    }
    rto_section(&mut s, r);
    rpo_section(&mut s, r);
    gates_section(&mut s, r);
    checks_section(&mut s, r);
    snapshots_section(&mut s, r);
    if let Some(rows) = &r.table {
        s.push_str("### Fault-tolerance table\n\n");
        s.push_str(&md_fault_table(rows));
        s.push('\n');
    }
    steps_section(&mut s, r);
    s
}

/// A user's backup: where it came from, what it holds, and what was passed over.
fn backup_section(s: &mut String, b: &BackupFacts) {
    s.push_str("### Backup\n\n");
    if b.keys == 0 {
        s.push_str(
            "**0 keys: the snapshot is empty.** It restores, but there is nothing in it.\n\n",
        );
    }
    let age = b
        .age_s
        .map(|a| format!("{:.1} h", a / 3600.0))
        .unwrap_or_else(|| "unknown".into());
    let quota = match b.quota_from {
        QuotaFrom::Snapshot => "sized from the snapshot",
        QuotaFrom::User => "--quota-backend-bytes",
    };
    s.push_str("| | |\n| --- | --- |\n");
    for (k, v) in [
        ("source", md_code(&b.origin.source)),
        ("object", md_code(&b.origin.object)),
        ("packed", b.origin.packing.as_str().to_string()),
        ("size", human_bytes(b.size)),
        ("sha256", md_code(&b.sha256)),
        ("revision", b.revision.to_string()),
        ("keys", b.keys.to_string()),
        ("age", age),
        (
            "quota",
            format!("{} ({quota})", human_bytes(b.quota_backend_bytes)),
        ),
    ] {
        let _ = writeln!(s, "| {k} | {v} |");
    }
    s.push('\n');
    if !b.keys_per_prefix.is_empty() {
        s.push_str("| prefix | keys |\n| --- | ---: |\n");
        for (p, n) in &b.keys_per_prefix {
            let _ = writeln!(s, "| {} | {n} |", md_code(p));
        }
        s.push('\n');
    }
    for k in &b.origin.skipped {
        let _ = writeln!(s, "- passed over {}: {}", md_code(&k.name), md(&k.reason));
    }
    if !b.origin.skipped.is_empty() {
        s.push('\n');
    }
}

/// Verdict, description and the run's facts on one line.
fn header(s: &mut String, r: &DrillReport) {
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
}

/// The error verbatim, in a fence no backtick run inside it can close.
fn error_block(s: &mut String, err: &str) {
    let longest = err.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat((longest + 1).max(3));
    let _ = writeln!(
        s,
        "**Error:**\n\n{fence}text\n{}\n{fence}\n",
        err.trim_end()
    );
}

fn rto_section(s: &mut String, r: &DrillReport) {
    let total_gate = gate(r, Gate::MaxRtoS)
        .map(|g| {
            format!(
                " (gate ≤ {} {})",
                gate_value(g.name, g.limit),
                mark(g.passed)
            )
        })
        .unwrap_or_default();
    match &r.rto {
        Some(rto) => {
            let _ = writeln!(s, "### RTO: {:.2} s{total_gate}\n", rto.total_s);
            if !rto.phases.is_empty() {
                rto_phase_table(s, r, rto);
            }
        }
        None => {
            let _ = writeln!(s, "### RTO: not measured{total_gate}\n");
        }
    }
}

/// Each phase beside its gate, so a slow phase shows against its own limit.
fn rto_phase_table(s: &mut String, r: &DrillReport, rto: &Rto) {
    s.push_str("| phase | seconds | gate |\n| --- | ---: | --- |\n");
    for p in &rto.phases {
        let g = limit_cell(phase_gate(r, p.name.as_str()));
        let _ = writeln!(s, "| {} | {:.2} | {g} |", md(p.name.as_str()), p.seconds);
    }
    let g = limit_cell(gate(r, Gate::MaxRtoS));
    let _ = writeln!(s, "| **total** | **{:.2}** | {g} |\n", rto.total_s);
}

fn rpo_section(s: &mut String, r: &DrillReport) {
    let rpo_gate = gate(r, Gate::MaxRpoWrites)
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
}

fn gates_section(s: &mut String, r: &DrillReport) {
    if r.gates.is_empty() {
        return;
    }
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
            md_code(&g.name.name()),
            gate_value(g.name, g.limit),
            gate_actual(g),
            mark(g.passed)
        );
    }
    s.push('\n');
}

/// Only the failed checks are listed: a comment is read for what went wrong.
fn checks_section(s: &mut String, r: &DrillReport) {
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
}

fn snapshots_section(s: &mut String, r: &DrillReport) {
    if r.snapshots.is_empty() {
        return;
    }
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

/// Collapsed: every step is there for the curious without burying the verdict.
fn steps_section(s: &mut String, r: &DrillReport) {
    if r.steps.is_empty() {
        return;
    }
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
            md(st.kind.as_str()),
            md(&st.title),
            st.start_s,
            st.seconds,
            mark(st.ok)
        );
    }
    s.push_str("\n</details>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::fixtures::{fixture, passing, table_fixture};

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
}
