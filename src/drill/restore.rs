//! The drill's restore step — from a snapshot it took, or from a backup of the user's — and
//! the verify step after a user's backup, which only that backup can be checked against.

use std::time::{Instant, SystemTime};

use super::runner::{Foreign, Restored, Runner, need};
use crate::backup::ledger::HARNESS_PREFIX;
use crate::backup::record::record_backup;
use crate::backup::snapshot::RestoreOptions;
use crate::backup::source::fetch;
use crate::backup::verify;
use crate::error::{Error, Result};
use crate::model::expect::{
    self, BackupFacts, Expectations, QuotaFrom, parse_duration, sized_quota,
};
use crate::model::report::RtoPhase;
use crate::model::scenario::BackupExpect;
use crate::model::source::Source;
use crate::procedures::recover::{self, RestorePlan, Stopwatch, cluster_id};
use crate::procedures::verify_snapshot::revision_at_least;

/// A scenario's `backup = { … }` as the judge takes it.
pub(super) fn expectations(b: &BackupExpect) -> Result<Expectations> {
    Ok(Expectations {
        min_keys: b.min_keys,
        require_prefix: b.require_prefix.clone(),
        require_key: b.require_key.clone(),
        max_age_s: b.max_age.as_deref().map(parse_duration).transpose()?,
        previous_revision: None,
    })
}

const QUOTA_FLAG: &str = "--quota-backend-bytes=";

impl Runner<'_> {
    /// The disaster is declared (the RTO runs from here) and the one restore procedure,
    /// [`recover::restore`], runs on the snapshot as it was recorded when taken.
    pub(super) async fn restore(
        &mut self,
        snapshot: Option<&str>,
        members: Option<&[String]>,
        bump_revision: Option<u64>,
    ) -> Result<String> {
        self.stop_writer().await;
        let snap = match snapshot {
            Some(n) => self.snaps.iter().find(|s| s.record.name == n),
            None => self.snaps.last(),
        }
        .ok_or_else(|| Error::Failed("no snapshot to restore from".into()))?;
        let (backup, old_cluster_id) = (snap.backup.clone(), snap.cluster_id);
        self.run_restore(backup, old_cluster_id, members, bump_revision, None)
            .await
    }

    /// A backup of the user's: fetched and checked first (a bad source stops the drill
    /// before anything is torn down), then restored through the same procedure. The restored
    /// members run with a quota sized from it unless `etcd_args` sets one.
    pub(super) async fn restore_source(
        &mut self,
        i: usize,
        source: &str,
        expect: Expectations,
        members: Option<&[String]>,
        bump_revision: Option<u64>,
    ) -> Result<String> {
        self.stop_writer().await;
        let src = Source::parse(source)?;
        let c = self.cluster().await?;
        let dir = c.run_dir.join("snapshots").join(format!("source-{i}"));
        std::fs::create_dir_all(&dir)
            .map_err(Error::io("creating the snapshot directory", &dir))?;
        let mut fetched = fetch(&src, &dir).await?;
        let (file, _) = fetched.check(false).await?;
        let mut backup = record_backup(c, file, false, 0).await?;
        backup.cut = self.ledger.foreign_cut();
        let c = self.cluster.as_mut().expect("started");
        let old_cluster_id = cluster_id(c).await?;
        let user_quota = c
            .spec
            .etcd_args
            .iter()
            .find_map(|a| a.strip_prefix(QUOTA_FLAG))
            .and_then(|q| q.parse().ok());
        let (quota, quota_from) = match user_quota {
            Some(q) => (q, QuotaFrom::User),
            None => {
                let q = sized_quota(backup.file.size);
                c.spec.etcd_args.push(format!("{QUOTA_FLAG}{q}"));
                (q, QuotaFrom::Snapshot)
            }
        };
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let facts = BackupFacts {
            age_s: fetched
                .origin
                .taken_at_ms
                .map(|t| now.saturating_sub(t) as f64 / 1000.0),
            origin: fetched.origin,
            size: backup.file.size,
            sha256: backup.file.sha256.clone(),
            revision: backup.status.revision,
            keys: 0,
            keys_per_prefix: Default::default(),
            quota_backend_bytes: quota,
            quota_from,
        };
        let foreign = Foreign { facts, expect };
        self.run_restore(
            backup,
            old_cluster_id,
            members,
            bump_revision,
            Some(foreign),
        )
        .await
    }

    async fn run_restore(
        &mut self,
        backup: crate::backup::record::Backup,
        old_cluster_id: u64,
        members: Option<&[String]>,
        bump_revision: Option<u64>,
        foreign: Option<Foreign>,
    ) -> Result<String> {
        let c = need(&mut self.cluster, "restore")?;
        let names: Vec<String> = members
            .map(<[String]>::to_vec)
            .unwrap_or_else(|| c.members.iter().map(|m| m.name.clone()).collect());
        let options = RestoreOptions {
            skip_hash_check: false,
            bump_revision,
        };
        let plan = RestorePlan {
            members: &names,
            options: &options,
            first_write: true,
        };
        let last_revision = self.ledger.last_revision();
        let mut clock = Stopwatch::starting_at(Instant::now());
        let mut lap = |p, at| clock.lap_at(p, at);
        let restored = recover::restore(
            c,
            &mut self.injector,
            &backup,
            &plan,
            &mut self.ledger,
            &mut lap,
        )
        .await;
        // A restore that failed has no RTO: its gates stay unmeasured, so they fail.
        let restored = restored?;
        self.rto = Some(clock);
        let leader = c.leader().await.unwrap_or_default();
        self.restored = Some(Restored {
            old_cluster_id,
            members: names.clone(),
            loss: restored.loss,
            revisions: (last_revision - backup.status.revision).max(0),
            snapshot_revision: backup.status.revision,
            revision_after: self.ledger.last_revision(),
            bumped: bump_revision,
            foreign,
        });
        Ok(format!(
            "{} members restored from {} (revision {}); leader {leader}",
            names.len(),
            restored.file.file_name(),
            backup.status.revision
        ))
    }

    /// After a user's backup was restored: every key readable, at least the backup's
    /// revision, identical members, writable under the quota, and what the step expects of
    /// the backup. The facts go into the report.
    pub(super) async fn verify_foreign(&mut self, i: usize) -> Result<String> {
        let c = need(&mut self.cluster, "verify")?;
        let (listing, mut hashes) = tokio::join!(
            verify::check_keys_readable(c, verify::KEYSPACE_PAGE_BYTES),
            verify::verify_hashkv(c)
        );
        let writable = verify::check_writable(c).await;
        let foreign = self
            .restored
            .as_mut()
            .and_then(|r| r.foreign.as_mut())
            .expect("a foreign restore");
        // The listing also sees the harness's own first write after the restore: the
        // backup's keys are the rest.
        let mut per_prefix = listing.per_prefix.clone();
        let ours = per_prefix.remove(HARNESS_PREFIX).unwrap_or(0);
        foreign.facts.keys = listing.keys.saturating_sub(ours);
        foreign.facts.keys_per_prefix = per_prefix;
        let want = foreign.facts.revision;
        let revision = revision_at_least(listing.revision, want);
        let found = verify::presence(
            c,
            &foreign.expect.require_prefix,
            &foreign.expect.require_key,
        )
        .await;
        let mut checks = vec![
            listing.check.clone(),
            revision,
            hashes.checks.remove(0),
            writable,
        ];
        checks.extend(expect::judge(&foreign.expect, &foreign.facts, &found));
        let facts = foreign.facts.clone();
        let failed = checks.iter().filter(|c| !c.passed).count();
        for ch in checks {
            self.check(i, ch);
        }
        let keys = facts.keys;
        self.found.backup = Some(facts);
        self.lap(RtoPhase::Verified);
        self.finish_rto();
        Ok(format!(
            "{keys} keys in your backup; {failed} checks failed"
        ))
    }
}
