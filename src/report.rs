//! Rendering results for people and machines.

use crate::recovery::RestoreDrillReport;

/// The restore drill's human summary: verdict, RPO, RTO by phase, and each check.
pub fn restore_drill_text(r: &RestoreDrillReport) -> String {
    let mut s = format!(
        "restore drill: {} — {} members, etcd {} (restored with {}), {} keys loaded, seed {}\n",
        r.verdict.to_uppercase(),
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
        s.push_str(&format!("    restore {:<9} {:>7.2}s\n", p.name, p.seconds));
    }
    for c in &r.checks {
        s.push_str(&format!(
            "[{}] {}: {}\n",
            if c.passed { "ok" } else { "FAIL" },
            c.name,
            c.detail
        ));
    }
    s
}
