//! `verify-snapshot`: a user's backup — a file, the newest in a directory, or an object in
//! S3-compatible storage, compressed or not — fetched and checked before any container
//! exists, restored through [`recover::restore`] into a throwaway cluster, checked against
//! itself and against what the user expects of it.

use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use bollard::Docker;

use super::recover::{self, RestorePlan, Stopwatch};
use crate::backup::ledger::Ledger;
use crate::backup::record::record_checked;
use crate::backup::snapshot::RestoreOptions;
use crate::backup::source::{Fetched, fetch};
use crate::backup::verify::{self, presence};
use crate::chaos::fault::Injector;
use crate::cluster::{Cluster, ClusterSpec, MemberState};
use crate::error::Result;
use crate::model::backup::SnapshotCheckReport;
use crate::model::expect::{self, BackupFacts, Expectations, QuotaFrom, sized_quota};
use crate::model::report::{Check, RtoPhase, Verdict};
use crate::model::source::Source;

/// What to verify, where, and against what.
#[derive(Debug, Clone)]
pub struct VerifyRequest {
    pub source: Source,
    pub members: usize,
    pub version: String,
    pub skip_hash_check: bool,
    pub run_id: String,
    pub expect: Expectations,
    /// The user's `--quota-backend-bytes`; by default it is sized from the snapshot.
    pub quota_backend_bytes: Option<u64>,
}

impl VerifyRequest {
    /// A local file, checked against itself only.
    pub fn file(path: impl Into<PathBuf>, members: usize, version: &str, run_id: &str) -> Self {
        VerifyRequest {
            source: Source::Path(path.into()),
            members,
            version: version.into(),
            skip_hash_check: false,
            run_id: run_id.into(),
            expect: Expectations::default(),
            quota_backend_bytes: None,
        }
    }
}

/// A directory for what this run fetches, under the state root so `cleanup` finds it if
/// the run is killed (its `snapshots` entry makes it look like a run directory).
fn work_dir(run_id: &str) -> Result<tempfile::TempDir> {
    let root = crate::cluster::state_root();
    let dir = tempfile::Builder::new()
        .prefix(&format!("fetch-{run_id}"))
        .rand_bytes(0)
        .tempdir_in({
            std::fs::create_dir_all(&root)
                .map_err(crate::Error::io("creating the state directory", &root))?;
            &root
        })
        .map_err(crate::Error::io("creating a work directory", &root))?;
    let snaps = dir.path().join("snapshots");
    std::fs::create_dir_all(&snaps)
        .map_err(crate::Error::io("creating a work directory", &snaps))?;
    Ok(dir)
}

/// A backup fetched and checked on the host, ready to restore.
pub struct Prepared {
    /// Owns what was fetched; removed when dropped.
    _work: tempfile::TempDir,
    fetched: Fetched,
    file: crate::model::backup::SnapshotFile,
    integrity: crate::model::backup::Integrity,
}

/// Everything that needs no Docker: the request checked, the backup fetched (downloaded,
/// unpacked) and its file checked. A bad source or a bad file stops here, exit 2.
pub async fn prepare(req: &VerifyRequest) -> Result<Prepared> {
    crate::cluster::validate_size(req.members)?;
    crate::cluster::image::Line::parse(&req.version)?;
    let work = work_dir(&req.run_id)?;
    let mut fetched = fetch(&req.source, &work.path().join("snapshots")).await?;
    let (file, integrity) = fetched.check(req.skip_hash_check).await?;
    Ok(Prepared {
        _work: work,
        fetched,
        file,
        integrity,
    })
}

/// Fetches, restores and checks; the source and the file are checked before any container
/// exists.
pub async fn verify_snapshot(docker: &Docker, req: &VerifyRequest) -> Result<SnapshotCheckReport> {
    let prepared = prepare(req).await?;
    verify_prepared(docker, req, prepared).await
}

/// Restores a prepared backup into a throwaway cluster and checks it.
pub async fn verify_prepared(
    docker: &Docker,
    req: &VerifyRequest,
    prepared: Prepared,
) -> Result<SnapshotCheckReport> {
    let Prepared {
        _work,
        fetched,
        file,
        integrity,
    } = prepared;
    let (quota, quota_from) = match req.quota_backend_bytes {
        Some(q) => (q, QuotaFrom::User),
        None => (sized_quota(file.size), QuotaFrom::Snapshot),
    };
    let mut spec = ClusterSpec::new(req.members);
    spec.version = req.version.clone();
    spec.run_id = req.run_id.clone();
    spec.name = format!("verify-{:06x}", rand::random::<u32>() & 0xff_ffff);
    spec.etcd_args = vec![format!("--quota-backend-bytes={quota}")];
    let mut cluster = Cluster::create(docker, spec).await?;
    // Described, never started: there are no survivors to stop.
    for m in &mut cluster.members {
        m.state = MemberState::Gone;
    }
    let backup = record_checked(&cluster, file).await?;
    let t0 = Instant::now();
    let names: Vec<String> = cluster.members.iter().map(|m| m.name.clone()).collect();
    let options = RestoreOptions {
        skip_hash_check: req.skip_hash_check,
        bump_revision: None,
    };
    let plan = RestorePlan {
        members: &names,
        options: &options,
        first_write: false,
    };
    let mut clock = Stopwatch::starting_at(t0);
    let mut ledger = Ledger::default();
    let mut injector = Injector::new(0);
    let restored = {
        let mut lap = |p, at| clock.lap_at(p, at);
        recover::restore(
            &mut cluster,
            &mut injector,
            &backup,
            &plan,
            &mut ledger,
            &mut lap,
        )
        .await?
    };
    let restore_s = t0.elapsed().as_secs_f64();
    let (mut checks, listing) = restored_checks(&cluster, backup.status.revision).await;
    let facts = BackupFacts {
        origin: fetched.origin.clone(),
        size: restored.file.size,
        sha256: restored.file.sha256.clone(),
        revision: backup.status.revision,
        keys: listing.keys,
        keys_per_prefix: listing.per_prefix,
        age_s: age_s(&fetched),
        quota_backend_bytes: quota,
        quota_from,
    };
    let found = presence(
        &cluster,
        &req.expect.require_prefix,
        &req.expect.require_key,
    )
    .await;
    checks.extend(expect::judge(&req.expect, &facts, &found));
    clock.lap(RtoPhase::Verified);
    let report = SnapshotCheckReport {
        verdict: Verdict::from_evidence(false, checks.iter().map(|c| c.passed)),
        file: restored.file,
        integrity,
        status: backup.status,
        members: req.members,
        etcd_version: cluster.image.version.clone(),
        image: cluster.image.tag.clone(),
        keys: facts.keys,
        restore_s,
        checks,
        phases: clock.phases,
        backup: facts,
    };
    cluster.destroy().await?;
    Ok(report)
}

/// How long ago the backup was taken.
fn age_s(f: &Fetched) -> Option<f64> {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()?
        .as_millis() as u64;
    f.origin
        .taken_at_ms
        .map(|t| now.saturating_sub(t) as f64 / 1000.0)
}

/// The checks of a restored snapshot whose content is not known: every key readable, the
/// snapshot's revision, identical members, and writable under the quota it runs with.
async fn restored_checks(cluster: &Cluster, revision: i64) -> (Vec<Check>, verify::Listing) {
    // The listing and HashKV (which reads every member) run at once; the write comes after
    // the revision was read, so it cannot move it.
    let (listing, mut hashes) = tokio::join!(
        verify::check_keys_readable(cluster, verify::KEYSPACE_PAGE_BYTES),
        verify::verify_hashkv(cluster)
    );
    let mut checks = vec![
        listing.check.clone(),
        revision_check(listing.revision, revision),
        hashes.checks.remove(0),
    ];
    checks.push(verify::check_writable(cluster).await);
    (checks, listing)
}

/// The restored cluster must be at the revision the snapshot says it holds: a comparison of
/// two numbers already read, so no time of its own. A revision of 0 was never read; etcd
/// counts from 1, so an empty snapshot (revision 0) restores at revision 1.
pub fn revision_check(restored: i64, snapshot: i64) -> Check {
    Check {
        seconds: Some(0.0),
        ..Check::new(
            "revision",
            restored == snapshot.max(1) && restored > 0,
            format!("restored cluster is at revision {restored}; snapshot status says {snapshot}"),
        )
    }
}

/// After a restore the harness wrote to (a drill's first write): at least the snapshot's
/// revision, never behind it. A revision of 0 was never read.
pub fn revision_at_least(restored: i64, snapshot: i64) -> Check {
    Check {
        seconds: Some(0.0),
        ..Check::new(
            "revision",
            restored >= snapshot.max(1),
            format!("restored cluster is at revision {restored}; the backup holds {snapshot}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restored_cluster_behind_its_backup_fails() {
        assert!(revision_at_least(1235, 1234).passed);
        assert!(revision_at_least(1234, 1234).passed);
        assert!(!revision_at_least(1233, 1234).passed, "behind the backup");
        assert!(
            !revision_at_least(0, 0).passed,
            "0 is a revision never read"
        );
    }

    #[test]
    fn the_revision_check_fails_on_any_mismatch_or_an_unread_revision() {
        assert!(revision_check(1234, 1234).passed);
        assert!(!revision_check(1233, 1234).passed);
        assert!(!revision_check(1235, 1234).passed);
        assert!(!revision_check(0, 0).passed, "0 is a revision never read");
        assert!(
            revision_check(1, 0).passed,
            "an empty snapshot restores at revision 1"
        );
        assert!(!revision_check(2, 0).passed);
    }
}
