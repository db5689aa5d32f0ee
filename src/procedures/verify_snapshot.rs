//! `verify-snapshot`: a snapshot made anywhere, restored through [`recover::restore`] into a
//! throwaway cluster and checked against itself.

use std::path::Path;
use std::time::Instant;

use bollard::Docker;

use super::recover::{self, RestorePlan};
use crate::backup::ledger::Ledger;
use crate::backup::record::record_checked;
use crate::backup::snapshot::{self, RestoreOptions};
use crate::backup::verify;
use crate::chaos::fault::Injector;
use crate::cluster::{Cluster, ClusterSpec, MemberState};
use crate::error::Result;
use crate::model::backup::SnapshotCheckReport;
use crate::model::report::{Check, Verdict};

/// Restores `path` into a throwaway cluster of `members` and checks it. The file is checked
/// before any container exists.
pub async fn verify_snapshot(
    docker: &Docker,
    path: &Path,
    members: usize,
    version: &str,
    skip_hash_check: bool,
    run_id: &str,
) -> Result<SnapshotCheckReport> {
    crate::cluster::validate_size(members)?;
    let (file, integrity) = snapshot::check_file(path, skip_hash_check)?;
    let mut spec = ClusterSpec::new(members);
    spec.version = version.to_string();
    spec.run_id = run_id.to_string();
    spec.name = format!("verify-{:06x}", rand::random::<u32>() & 0xff_ffff);
    let mut cluster = Cluster::create(docker, spec).await?;
    // Described, never started: there are no survivors to stop.
    for m in &mut cluster.members {
        m.state = MemberState::Gone;
    }
    let backup = record_checked(&cluster, file).await?;
    let t0 = Instant::now();
    let names: Vec<String> = cluster.members.iter().map(|m| m.name.clone()).collect();
    let options = RestoreOptions {
        skip_hash_check,
        bump_revision: None,
    };
    let plan = RestorePlan {
        members: &names,
        options: &options,
        first_write: false,
    };
    let mut injector = Injector::new(0);
    let mut ledger = Ledger::default();
    let restored = recover::restore(
        &mut cluster,
        &mut injector,
        &backup,
        &plan,
        &mut ledger,
        &mut |_, _| {},
    )
    .await?;
    let restore_s = t0.elapsed().as_secs_f64();

    let mut checks = vec![];
    // Nothing writes to the restored cluster, so the listing and HashKV (which reads every
    // member) can run at once.
    let ((readable, keys, revision), mut hashes) = tokio::join!(
        verify::check_keys_readable(&cluster, verify::KEYSPACE_PAGE_BYTES),
        verify::verify_hashkv(&cluster)
    );
    checks.push(readable);
    checks.push(revision_check(revision, backup.status.revision));
    checks.push(hashes.checks.remove(0));
    let report = SnapshotCheckReport {
        verdict: Verdict::from_evidence(false, checks.iter().map(|c| c.passed)),
        file: restored.file,
        integrity,
        status: backup.status,
        members,
        etcd_version: cluster.image.version.clone(),
        keys,
        restore_s,
        checks,
    };
    cluster.destroy().await?;
    Ok(report)
}

/// The restored cluster must be at the revision the snapshot says it holds: a comparison of
/// two numbers already read, so no time of its own. A revision of 0 was never read.
pub fn revision_check(restored: i64, snapshot: i64) -> Check {
    Check {
        seconds: Some(0.0),
        ..Check::new(
            "revision",
            restored == snapshot && restored > 0,
            format!("restored cluster is at revision {restored}; snapshot status says {snapshot}"),
        )
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_revision_check_fails_on_any_mismatch_or_an_unread_revision() {
        assert!(revision_check(1234, 1234).passed);
        assert!(!revision_check(1233, 1234).passed);
        assert!(!revision_check(1235, 1234).passed);
        assert!(!revision_check(0, 0).passed, "0 is a revision never read");
    }
}
