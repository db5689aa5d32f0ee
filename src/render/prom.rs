//! Prometheus text exposition, for node_exporter's textfile collector.

use std::fmt::Write as _;

use crate::model::compare::merged_phases;
use crate::model::expect::BackupFacts;
use crate::model::report::{DrillReport, Gate, GateResult, Rpo, Rto, RtoPhase, Verdict};

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
        "etcd_drill_interrupted",
        "1 if the scenario's last run was interrupted (Ctrl-C, SIGTERM) before it finished: it has no verdict.",
    );
    let _ = writeln!(
        out,
        "etcd_drill_interrupted{{scenario=\"{sc}\"}} {}",
        u8::from(r.verdict == Verdict::Interrupted)
    );
    if r.verdict == Verdict::Interrupted {
        // A cancelled run proves nothing either way: no verdict series, so an alert on
        // `etcd_drill_verdict == 0` does not fire, and no last-run timestamp, so an alert
        // on no completed run in 26 h still can.
        return out;
    }
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
        rto_series(&mut out, &sc, rto);
    }
    if let Some(rpo) = &r.rpo {
        rpo_series(&mut out, &sc, rpo);
    }
    gate_series(&mut out, &sc, &r.gates);
    if let Some(b) = &r.backup {
        backup_series(&mut out, &sc, r, b);
    }

    prom_family(
        &mut out,
        "etcd_drill_last_run_timestamp_seconds",
        "When the scenario's last completed run finished, in seconds since the Unix epoch.",
    );
    let _ = writeln!(
        out,
        "etcd_drill_last_run_timestamp_seconds{{scenario=\"{sc}\"}} {}.{:03}",
        r.finished_at_ms / 1000,
        r.finished_at_ms % 1000
    );
    out
}

/// A verified backup's figures, labelled with its source, so "no backup verified in 26 h"
/// is one alert rule: `time() - etcd_drill_backup_verified_timestamp_seconds > 26 * 3600`.
fn backup_series(out: &mut String, sc: &str, r: &DrillReport, b: &BackupFacts) {
    let labels = format!(
        "scenario=\"{sc}\",source=\"{}\"",
        prom_label(&b.origin.source)
    );
    let restore_s = r.rto.as_ref().map(|rto| {
        rto.phases
            .iter()
            .filter(|p| p.name != RtoPhase::Verified)
            .map(|p| p.seconds)
            .sum::<f64>()
    });
    let verified_at = r.passed().then(|| r.finished_at_ms as f64 / 1000.0);
    let series: [(&str, &str, Option<f64>); 7] = [
        (
            "etcd_drill_backup_verified",
            "1 if the backup restored and every check and expectation held, 0 if not.",
            Some(f64::from(u8::from(r.passed()))),
        ),
        (
            "etcd_drill_backup_verified_timestamp_seconds",
            "When a backup from this source last verified, in seconds since the Unix epoch.",
            verified_at,
        ),
        (
            "etcd_drill_backup_revision",
            "The etcd revision the backup holds.",
            Some(b.revision as f64),
        ),
        (
            "etcd_drill_backup_keys",
            "Keys in the backup.",
            Some(b.keys as f64),
        ),
        (
            "etcd_drill_backup_size_bytes",
            "Size of the snapshot (unpacked).",
            Some(b.size as f64),
        ),
        (
            "etcd_drill_backup_age_seconds",
            "Age of the backup when it was verified, from when it was taken.",
            b.age_s,
        ),
        (
            "etcd_drill_backup_restore_seconds",
            "Time to restore the backup into a cluster that elected a leader.",
            restore_s,
        ),
    ];
    for (name, help, v) in series {
        let Some(v) = v else { continue };
        prom_family(out, name, help);
        let _ = writeln!(out, "{name}{{{labels}}} {}", prom_value(v));
    }
}

/// `sc` is the scenario, already escaped as a label value.
fn rto_series(out: &mut String, sc: &str, rto: &Rto) {
    prom_family(
        out,
        "etcd_drill_rto_seconds",
        "Recovery time: from the disaster to a verified cluster.",
    );
    let _ = writeln!(
        out,
        "etcd_drill_rto_seconds{{scenario=\"{sc}\"}} {}",
        prom_value(rto.total_s)
    );
    let phases = merged_phases(rto);
    if phases.is_empty() {
        return;
    }
    prom_family(
        out,
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

fn rpo_series(out: &mut String, sc: &str, rpo: &Rpo) {
    prom_family(
        out,
        "etcd_drill_rpo_writes",
        "Acknowledged writes lost by the recovery.",
    );
    let _ = writeln!(
        out,
        "etcd_drill_rpo_writes{{scenario=\"{sc}\"}} {}",
        rpo.writes
    );
    prom_family(
        out,
        "etcd_drill_rpo_revisions",
        "Revisions lost by the recovery.",
    );
    let _ = writeln!(
        out,
        "etcd_drill_rpo_revisions{{scenario=\"{sc}\"}} {}",
        rpo.revisions
    );
}

fn gate_series(out: &mut String, sc: &str, gates: &[GateResult]) {
    // One series per gate name (a duplicate series makes the collector drop the file).
    let mut merged: Vec<(Gate, bool)> = Vec::new();
    for g in gates {
        match merged.iter_mut().find(|(n, _)| *n == g.name) {
            Some((_, p)) => *p &= g.passed,
            None => merged.push((g.name, g.passed)),
        }
    }
    if merged.is_empty() {
        return;
    }
    prom_family(
        out,
        "etcd_drill_gate_passed",
        "1 if the gate held in the last run, 0 if not.",
    );
    for (name, passed) in merged {
        let _ = writeln!(
            out,
            "etcd_drill_gate_passed{{scenario=\"{sc}\",gate=\"{}\"}} {}",
            prom_label(&name.name()),
            u8::from(passed)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::fixtures::{fixture, passing, table_fixture};

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
        // interrupted + verdict + rto + 7 phases + 2 rpo + 5 gates + timestamp
        assert_eq!(samples, 18, "{text}");
        assert!(text.contains("etcd_drill_interrupted{scenario=\"restore-3-quorum-loss\"} 0\n"));
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

    /// A cancelled run must not look like a failed drill to the alert in docs/ci.md
    /// (`etcd_drill_verdict == 0`), nor like a completed run to a staleness alert.
    #[test]
    fn an_interrupted_run_has_no_verdict_series_only_its_interruption() {
        let mut r = fixture();
        r.verdict = Verdict::Interrupted;
        let text = metrics_prom(&r);
        assert!(
            text.contains("etcd_drill_interrupted{scenario=\"restore-3-quorum-loss\"} 1\n"),
            "{text}"
        );
        for absent in [
            "etcd_drill_verdict",
            "etcd_drill_last_run_timestamp_seconds",
            "etcd_drill_gate_passed",
        ] {
            assert!(!text.contains(absent), "{absent} in {text}");
        }
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(prom_line_ok(line), "{line:?}");
        }
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
}
