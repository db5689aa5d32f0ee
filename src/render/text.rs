//! The comparison of two runs as plain text, for a terminal or a CI log.

use std::fmt::Write as _;

use super::num;
use crate::model::backup::{RestoreDrillReport, SnapshotCheckReport};
use crate::model::compare::{CompareRow, Comparison};
use crate::model::expect::QuotaFrom;
use crate::model::history::Record;
use crate::model::linearize::{HistoryCheck, Model};
use crate::model::source::Packing;
use crate::model::table::SizeResult;

/// One comparison cell: a row's value as shown.
fn compare_value(row: &CompareRow, v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if row.what == "verdict" => (if v >= 1.0 { "pass" } else { "fail" }).into(),
        Some(v) if row.counts_writes() => num(v),
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
    let delta = if row.counts_writes() {
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
    if c.old_runs > 1 {
        let _ = writeln!(
            out,
            "old: the median of {} runs; each threshold widened by their spread (max - min)",
            c.old_runs
        );
    }
    let _ = writeln!(
        out,
        "worse: a time up > {:.0}% and > {:.2} s (the RTO: × √phases), the dataset RPO up > {:.0}% and > {} keys (rpo_writes, with the harness's and workload's, is not judged), a measurement gone, or pass -> fail",
        o.tolerance * 100.0,
        o.min_seconds,
        o.tolerance * 100.0,
        num(o.rpo_writes)
    );
    if c.worse {
        let _ = writeln!(out, "NEW is worse than OLD: {}", c.worse_rows().join(", "));
    } else {
        out.push_str("NEW is not worse than OLD\n");
    }
    out
}

/// The restore drill's human summary: verdict, RPO, RTO by phase, and each check.
pub fn restore_drill_text(r: &RestoreDrillReport) -> String {
    let mut s = format!(
        "restore drill: {} — {} members, etcd {} (restored with {}), {} keys loaded, seed {}\n",
        r.verdict.as_str().to_uppercase(),
        r.size,
        r.etcd_version,
        r.restored_with,
        r.keys_loaded,
        r.seed
    );
    s.push_str(&format!(
        "snapshot {} ({} bytes, revision {}, sha256 {}…) saved from {}\n",
        r.snapshot.file_name(),
        r.snapshot.size,
        r.snapshot_status.revision,
        &r.snapshot.sha256[..12.min(r.snapshot.sha256.len())],
        r.snapshot_saved_from
    ));
    s.push_str(&format!(
        "RPO: {} acknowledged writes lost ({} revisions)\n",
        r.rpo_writes, r.rpo_revisions
    ));
    s.push_str(&format!("RTO: {:.2}s\n", r.rto_s));
    for p in &r.phases {
        s.push_str(&format!("  {:<18} {:>7.2}s\n", p.name, p.seconds));
    }
    for p in &r.restore_per_member {
        s.push_str(&format!("    restore {:<8} {:>7.2}s\n", p.name, p.seconds));
    }
    for c in &r.checks {
        s.push_str(&format!(
            "[{}] {}: {}\n",
            if c.passed { "ok" } else { "FAIL" },
            c.name,
            c.detail
        ));
    }
    if let Some(e) = &r.error {
        s.push_str(&format!("[FAIL] recovery stopped: {e}\n"));
    }
    s
}

/// The seed's table (cluster size, MAJORITY, failure tolerance) extended with one column
/// per number of failed members: `W` observed writable, `-` observed not writable, and `✗`
/// in front of any cell where observation disagrees with the table.
pub fn render_table(sizes: &[SizeResult]) -> String {
    let max_n = sizes.iter().map(|s| s.size).max().unwrap_or(0);
    let mut out = String::from("| cluster size | MAJORITY | failure tolerance |");
    for k in 0..=max_n {
        out.push_str(&format!(" k={k} |"));
    }
    out.push_str("\n| --- | --- | --- |");
    for _ in 0..=max_n {
        out.push_str(" --- |");
    }
    out.push('\n');
    for s in sizes {
        out.push_str(&format!(
            "| {} | {} | {} |",
            s.size, s.majority, s.tolerance
        ));
        for k in 0..=max_n {
            match s.cells.iter().find(|c| c.failed == k) {
                Some(c) => {
                    let mark = if c.observed_writable { "W" } else { "-" };
                    let flag = if c.agrees() { "" } else { "✗" };
                    out.push_str(&format!(" {flag}{mark} |"));
                }
                None => out.push_str("  |"),
            }
        }
        out.push('\n');
    }
    out.push_str("\nW: writes acknowledged; -: no write acknowledged; ✗: observation disagrees with the table\n");
    out
}

/// verify-snapshot's human summary: the verdict and what was verified, an empty snapshot
/// said in so many words, where the backup came from, and each check.
pub fn snapshot_check_text(r: &SnapshotCheckReport) -> String {
    let b = &r.backup;
    let mut s = format!(
        "{}: {} — {} ({} bytes, revision {}, {} keys); restored into {} members (etcd {}) in {:.2}s\n",
        b.origin.source,
        r.verdict.as_str().to_uppercase(),
        b.origin.object,
        r.file.size,
        r.status.revision,
        r.keys,
        r.members,
        r.etcd_version,
        r.restore_s
    );
    if r.keys == 0 {
        s.push_str("  0 keys: the snapshot is EMPTY — it restores, but there is nothing in it\n");
    }
    if b.origin.packing != Packing::Plain {
        let _ = writeln!(
            s,
            "  unpacked from {} ({} bytes stored)",
            b.origin.packing.as_str(),
            b.origin.stored_bytes
        );
    }
    if let Some(age) = b.age_s {
        let _ = writeln!(s, "  taken {} ago", crate::model::expect::human(age));
    }
    let from = match b.quota_from {
        QuotaFrom::Snapshot => "sized from the snapshot",
        QuotaFrom::User => "--quota-backend-bytes",
    };
    let _ = writeln!(s, "  quota: {} bytes ({from})", b.quota_backend_bytes);
    for k in &b.origin.skipped {
        let _ = writeln!(s, "  passed over {}: {}", k.name, k.reason);
    }
    for c in &r.checks {
        let mark = if c.passed { "ok" } else { "FAIL" };
        let _ = writeln!(s, "  [{mark}] {}: {}", c.name, c.detail);
    }
    s
}

/// A history check for the terminal: the verdict, what was checked, and on a violation
/// the window where no order works.
pub fn history_check_text(c: &HistoryCheck, history: &[Record]) -> String {
    let mut out = format!(
        "{}: {} operations on {} keys ({} with unknown outcome), {} model\n",
        c.verdict.as_str(),
        c.operations,
        c.keys,
        c.unknown_outcomes,
        match c.model {
            Model::Kv => "kv",
            Model::Etcd => "etcd",
        }
    );
    if let Some(w) = &c.window {
        let (stuck, before) = match c.model {
            Model::Kv => (
                format!(
                    "key {:?}: {} of its operations can be ordered, then none of these can go next:",
                    w.key, w.placed
                ),
                "after these, the last placed (in order):",
            ),
            Model::Etcd => (
                format!("key {:?}: no order of the history explains this:", w.key),
                "after these, its key's last before it in revision order:",
            ),
        };
        let _ = writeln!(out, "{stuck}");
        for &i in &w.stuck {
            let _ = writeln!(out, "  ! #{i} {}", history_op_text(&history[i]));
        }
        if !w.before.is_empty() {
            let _ = writeln!(out, "{before}");
            for &i in &w.before {
                let _ = writeln!(out, "    #{i} {}", history_op_text(&history[i]));
            }
        }
    }
    if let Some((placed, searched)) = c.resolved_unknowns {
        let world = match c.world {
            Some(crate::model::history::World::Open) => {
                "open world: revisions may be taken by writes the history does not hold (a weaker check)".to_string()
            }
            Some(crate::model::history::World::Closed { from_revision }) => {
                format!("closed world: every revision after {from_revision} is one of its writes")
            }
            None => "world not said".into(),
        };
        let _ = writeln!(
            out,
            "{world}; writes of unknown outcome: {placed} placed by what reads and watches showed, {searched} left to the search"
        );
    }
    if let Some(why) = &c.undecided {
        let _ = writeln!(out, "undecided: {why}");
    }
    for p in &c.revision_problems {
        let _ = writeln!(out, "revision: {p}");
    }
    if let Some(r) = &c.reads {
        let verdict = if r.problems.is_empty() {
            "hold"
        } else {
            "BROKEN"
        };
        let _ = writeln!(
            out,
            "serializable reads: {} checked, guarantee {verdict}",
            r.reads
        );
        for p in &r.problems {
            let _ = writeln!(out, "  ! {p}");
        }
    }
    if let Some(w) = &c.watch {
        let verdict = if w.problems.is_empty() {
            "hold"
        } else {
            "BROKEN"
        };
        let _ = writeln!(
            out,
            "watches: {} watchers, {} streams, {} events, {} writes in range; guarantees {verdict}",
            w.watchers, w.streams, w.events, w.writes_covered
        );
        for p in &w.problems {
            let _ = writeln!(out, "  ! {p}");
        }
    }
    if !c.undecided_keys.is_empty() {
        let _ = writeln!(
            out,
            "undecided in time: keys {}; a longer --timeout may decide them",
            c.undecided_keys.join(", ")
        );
    }
    out
}

/// One operation as a line: who, when, what, and what it got.
pub fn history_op_text(r: &Record) -> String {
    let ret = r.ret.map_or("?".to_string(), |t| t.to_string());
    let mut s = format!(
        "client {} [{}, {ret}] {}{} {}",
        r.client,
        r.call,
        r.op.as_str(),
        if r.serializable {
            " (serializable)"
        } else {
            ""
        },
        r.key
    );
    match (&r.expect, r.expect_revision, r.op) {
        (_, Some(0), _) => s.push_str(" if absent (mod_revision = 0)"),
        (_, Some(m), _) => {
            let _ = write!(s, " if mod_revision = {m}");
        }
        (Some(e), _, _) => {
            let _ = write!(s, " if {e:?}");
        }
        (None, _, crate::model::history::OpKind::Cas) => s.push_str(" if absent"),
        _ => {}
    }
    if let Some(v) = &r.value {
        let _ = write!(s, " = {v:?}");
    }
    match (&r.output, r.ret) {
        (_, None) => s.push_str(" -> outcome unknown"),
        (Some(o), _) => {
            if r.op == crate::model::history::OpKind::Get {
                let v = o
                    .value
                    .as_deref()
                    .map_or("absent".to_string(), |v| format!("{v:?}"));
                let _ = write!(s, " -> {v}");
                if let Some(m) = o.mod_revision {
                    let _ = write!(s, " (mod {m})");
                }
            }
            if let Some(ok) = o.succeeded {
                s.push_str(if ok { " -> succeeded" } else { " -> failed" });
            }
            if let Some(d) = o.deleted {
                let _ = write!(s, " -> {d} deleted");
            }
            if !o.events.is_empty() {
                let _ = write!(s, " -> {} events", o.events.len());
            }
            if let Some(rev) = o.revision {
                let _ = write!(s, " @rev {rev}");
            }
        }
        (None, _) => s.push_str(" -> ok"),
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::backup::{Disaster, MemberTime, SnapshotFile, SnapshotStatus};
    use crate::model::compare::{CompareOptions, compare};
    use crate::model::report::{PhaseRecord, RtoPhase};

    /// The RTO block is a table: every figure ends in one column, phases and members alike
    /// (a phase's name ignored its width before, so the column wandered).
    #[test]
    fn restore_drill_rto_figures_line_up() {
        let r = RestoreDrillReport {
            verdict: crate::model::report::Verdict::Pass,
            size: 3,
            etcd_version: "3.5.16".into(),
            restored_with: "3.5.16".into(),
            seed: 1,
            tls: false,
            keys_loaded: 10,
            keys_verified: 10,
            rpo_writes: 0,
            rpo_revisions: 0,
            disaster_s: 0.1,
            rto_s: 3.0,
            phases: RtoPhase::ALL
                .iter()
                .map(|&name| PhaseRecord {
                    name,
                    seconds: 12.345,
                })
                .collect(),
            restore_per_member: ["etcd-1", "etcd-2"]
                .iter()
                .map(|n| MemberTime {
                    name: n.to_string(),
                    seconds: 0.5,
                })
                .collect(),
            snapshot: SnapshotFile {
                path: "s.db".into(),
                size: 1,
                sha256: "ab".repeat(32),
                member: None,
            },
            snapshot_status: SnapshotStatus {
                hash: 0,
                revision: 5,
                total_key: 10,
                total_size: 1,
            },
            snapshot_saved_from: "etcd-2".into(),
            disaster: Disaster::Quorum,
            fault_events: vec![],
            checks: vec![],
            error: None,
        };
        let text = restore_drill_text(&r);
        let ends: Vec<usize> = text
            .lines()
            .filter(|l| l.starts_with("  ") && l.ends_with('s'))
            .map(|l| l.len())
            .collect();
        assert_eq!(ends.len(), RtoPhase::ALL.len() + 2, "{text}");
        assert!(ends.iter().all(|&e| e == ends[0]), "{text}");
    }
    use crate::render::fixtures::{drop_phase, fixture, opts, passing, set_phase, set_rpo};

    #[test]
    fn comparison_text_snapshot_mixed() {
        // A phase only NEW has (OLD never reached it) and one only OLD has.
        let mut old = passing();
        drop_phase(&mut old, "first-write");
        let mut new = fixture();
        drop_phase(&mut new, "verified");
        set_phase(&mut new, "first-write", 0.7);
        set_rpo(&mut new, 0);
        let text = comparison_text(&compare(&old, &new, &opts(0.1, 0.5, 100.0)));
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
