//! The restore drill end to end: load → snapshot → writes the backup will not have →
//! disaster → [`recover::restore`] every member from the same snapshot under a new token →
//! verify, with the RTO split into phases and the RPO counted.

use std::time::Instant;

use bollard::Docker;

use super::recover::{self, RestorePlan, Stopwatch, cluster_id};
use crate::backup::dataset::{self, AckLog, Dataset};
use crate::backup::ledger::Ledger;
use crate::backup::record::{Backup, record_backup};
use crate::backup::snapshot::{self, CATCH_UP, RestoreOptions};
use crate::backup::verify::{self, Expected, Verification};
use crate::chaos::fault::Injector;
use crate::cluster::image::{EtcdImage, Line};
use crate::cluster::{Cluster, ClusterSpec, MemberState};
use crate::error::{Error, Result};
use crate::model::backup::{Disaster, MemberTime, RestoreDrillReport, SnapshotFile};
use crate::model::fault::{FaultKind, Target};
use crate::model::report::{PhaseRecord, RtoPhase, Verdict};
use crate::model::table::majority;

#[derive(Debug, Clone)]
pub struct RestoreDrillOptions {
    pub size: usize,
    pub dataset: Dataset,
    pub version: String,
    /// The etcd version restored into (defaults to `version`): a 3.4 snapshot can be
    /// restored by 3.5, not the reverse.
    pub restore_version: Option<String>,
    pub tls: bool,
    pub seed: u64,
    /// Writes made after the snapshot: what the backup will lose.
    pub post_snapshot_writes: usize,
    pub disaster: Disaster,
    pub restore: RestoreOptions,
    /// Member names after the restore (default: the same names). The RKE procedure
    /// replaces an unresponsive node: `etcd-1, etcd-2, etcd-4`.
    pub restore_members: Option<Vec<String>>,
    pub run_id: String,
}

impl RestoreDrillOptions {
    pub fn new(size: usize, keys: usize, value_size: usize) -> Self {
        RestoreDrillOptions {
            size,
            dataset: Dataset {
                keys,
                value_size,
                seed: 1,
            },
            version: crate::model::etcd::DEFAULT_VERSION.into(),
            restore_version: None,
            tls: false,
            seed: 1,
            post_snapshot_writes: (keys / 100).max(10),
            disaster: Disaster::Quorum,
            restore: RestoreOptions::default(),
            restore_members: None,
            run_id: crate::docker::new_run_id(),
        }
    }

    fn restore_version(&self) -> &str {
        self.restore_version.as_deref().unwrap_or(&self.version)
    }
}

/// Refuses version pairs that cannot work before anything starts.
pub fn check_versions(from: &str, to: &str) -> Result<()> {
    let (a, b) = (Line::parse(from)?, Line::parse(to)?);
    if a == Line::V3_5 && b == Line::V3_4 {
        return Err(Error::InvalidInput(format!(
            "a snapshot from etcd {from} cannot be restored by etcd {to}: etcd does not support downgrades; restore with 3.5"
        )));
    }
    Ok(())
}

/// Everything checked before a container exists; returns the spec and the restore image.
async fn prepare(docker: &Docker, opts: &RestoreDrillOptions) -> Result<(ClusterSpec, EtcdImage)> {
    check_versions(&opts.version, opts.restore_version())?;
    let mut spec = ClusterSpec::new(opts.size);
    spec.version = opts.version.clone();
    spec.tls = opts.tls;
    spec.run_id = opts.run_id.clone();
    spec.validate()?;
    if let Some(names) = &opts.restore_members
        && (names.is_empty() || names.len() > crate::model::etcd::MAX_SIZE)
    {
        return Err(Error::InvalidSize { size: names.len() });
    }
    let restore_image = crate::cluster::image::resolve(docker, opts.restore_version()).await?;
    snapshot::check_restore_options(&restore_image, &opts.restore)?;
    Ok((spec, restore_image))
}

/// What the drill did before the disaster: the backup, every acknowledged write, and what
/// the cluster was.
struct BeforeDisaster {
    backup: Backup,
    saved_from: String,
    acks: AckLog,
    loaded: usize,
    old_cluster_id: u64,
}

/// Data through the leader, a snapshot from one healthy member (a follower when there is
/// one, like a backup job pointed at any endpoint), then writes the backup will not have.
async fn load_and_back_up(
    cluster: &Cluster,
    injector: &mut Injector,
    opts: &RestoreDrillOptions,
) -> Result<BeforeDisaster> {
    let leader = cluster
        .leader()
        .await
        .unwrap_or_else(|| cluster.members[0].name.clone());
    let lm = cluster.member(&leader).expect("leader is a member").clone();
    let client = cluster.client(&lm).await?;
    let ds = &opts.dataset;
    let mut acks = dataset::load(&client, &lm.name, ds, 0..ds.keys, 16).await?;
    let saved_from = match injector
        .resolve(cluster, &Target::Follower, FaultKind::Kill)
        .await
    {
        Ok(mut v) => v.remove(0),
        Err(_) => leader.clone(),
    };
    let sm = cluster.member(&saved_from).expect("resolved").clone();
    snapshot::caught_up(cluster, &sm, acks.max_revision(), CATCH_UP).await;
    let snap = snapshot::save(cluster, &sm, &cluster.run_dir.join("snapshots")).await?;
    let backup = record_backup(cluster, snap, false, 0).await?;
    let after = ds.keys..ds.keys + opts.post_snapshot_writes;
    acks.merge(dataset::load(&client, &lm.name, ds, after, 16).await?);
    Ok(BeforeDisaster {
        backup,
        saved_from,
        acks,
        loaded: ds.keys + opts.post_snapshot_writes,
        old_cluster_id: cluster_id(cluster).await?,
    })
}

/// Everything the restore drill does, in order.
pub async fn restore_drill(
    docker: &Docker,
    opts: &RestoreDrillOptions,
) -> Result<RestoreDrillReport> {
    let (spec, restore_image) = prepare(docker, opts).await?;
    let mut cluster = Cluster::start(docker, spec).await?;
    let mut injector = Injector::new(opts.seed);
    let before = load_and_back_up(&cluster, &mut injector, opts).await?;
    let names = opts
        .restore_members
        .clone()
        .unwrap_or_else(|| cluster.members.iter().map(|m| m.name.clone()).collect());
    let etcd_version = cluster.image.version.clone();
    if opts.restore_version() != opts.version {
        // Restored members run the restore version; the rest of the drill uses it too.
        cluster.image = restore_image;
    }
    let recovery = Recovery {
        disaster: opts.disaster,
        members: names,
        restore: opts.restore.clone(),
        dataset: &opts.dataset,
        acks: &before.acks,
        old_cluster_id: before.old_cluster_id,
    };
    let recovered = recover(&mut cluster, &mut injector, &before.backup, &recovery).await;
    // From the disaster on, a failure is the drill's finding: reported, verdict fail.
    let (r, error) = match recovered {
        Ok(r) => (r, None),
        Err(e) => (Recovered::failed(&before.backup), Some(e.to_string())),
    };
    let report = RestoreDrillReport {
        verdict: Verdict::from_evidence(
            error.is_some(),
            r.verification.checks.iter().map(|c| c.passed),
        ),
        size: opts.size,
        etcd_version,
        restored_with: cluster.image.version.clone(),
        seed: opts.seed,
        tls: opts.tls,
        keys_loaded: before.loaded,
        keys_verified: r.verification.keys_verified,
        rpo_writes: r.rpo_writes,
        rpo_revisions: r.rpo_revisions,
        disaster_s: r.disaster_s,
        rto_s: r.rto_s,
        phases: r.phases,
        restore_per_member: r.restore_per_member,
        snapshot: SnapshotFile {
            member: Some(before.saved_from.clone()),
            ..r.file
        },
        snapshot_status: before.backup.status.clone(),
        snapshot_saved_from: before.saved_from,
        disaster: opts.disaster,
        fault_events: injector.events,
        checks: r.verification.checks,
        error,
    };
    cluster.destroy().await?;
    Ok(report)
}

/// What a recovery needs to know: how bad the disaster is, who the members are afterwards,
/// and what the restored data must be.
pub struct Recovery<'a> {
    pub disaster: Disaster,
    pub members: Vec<String>,
    pub restore: RestoreOptions,
    pub dataset: &'a Dataset,
    pub acks: &'a AckLog,
    pub old_cluster_id: u64,
}

pub struct Recovered {
    /// How long inflicting the disaster took (not part of the RTO).
    pub disaster_s: f64,
    pub rto_s: f64,
    pub phases: Vec<PhaseRecord>,
    pub restore_per_member: Vec<MemberTime>,
    pub file: SnapshotFile,
    pub verification: Verification,
    /// Acknowledged writes the restore lost, and the revisions between the snapshot and
    /// the last acknowledged write.
    pub rpo_writes: usize,
    pub rpo_revisions: i64,
}

/// From disaster to verified: members lost for good, then [`recover::restore`], then the
/// checks. The RTO runs from the disaster.
pub async fn recover(
    cluster: &mut Cluster,
    injector: &mut Injector,
    backup: &Backup,
    r: &Recovery<'_>,
) -> Result<Recovered> {
    let size = cluster
        .members
        .iter()
        .filter(|m| m.state != MemberState::Gone)
        .count();
    let t_disaster = Instant::now();
    let lose = match r.disaster {
        Disaster::Quorum => majority(size),
        Disaster::All => size,
    };
    injector
        .inject(cluster, FaultKind::Permanent, &Target::Count(lose))
        .await?;
    let disaster_s = t_disaster.elapsed().as_secs_f64();

    // What must be back: everything acknowledged up to the snapshot, and the harness's own
    // writes after the restore.
    let mut ledger = Ledger::default();
    ledger.record_dataset(r.acks.clone());
    let mut clock = Stopwatch::starting_at(Instant::now());
    let plan = RestorePlan {
        members: &r.members,
        options: &r.restore,
        first_write: true,
    };
    let mut lap = |p, at| clock.lap_at(p, at);
    let restored =
        recover::restore(cluster, injector, backup, &plan, &mut ledger, &mut lap).await?;
    let (acks, snapshot_revision) = ledger.expected_dataset();
    let harness = ledger.harness_view();
    let verification = verify::verify(
        cluster,
        &Expected {
            dataset: r.dataset,
            acks: &acks,
            snapshot_revision,
            old_cluster_id: r.old_cluster_id,
            restored: true,
            members: r.members.clone(),
            harness: &harness,
        },
    )
    .await;
    clock.lap(RtoPhase::Verified);
    Ok(Recovered {
        disaster_s,
        rto_s: clock.total(),
        phases: clock.phases,
        restore_per_member: restored.per_member,
        file: restored.file,
        verification,
        rpo_writes: restored.loss.total(),
        rpo_revisions: (r.acks.max_revision() - backup.status.revision).max(0),
    })
}

impl Recovered {
    /// A recovery that stopped on an error: nothing verified, nothing measured.
    fn failed(backup: &Backup) -> Self {
        Recovered {
            disaster_s: 0.0,
            rto_s: 0.0,
            phases: vec![],
            restore_per_member: vec![],
            file: backup.file.clone(),
            verification: Verification {
                checks: vec![],
                keys_verified: 0,
            },
            rpo_writes: 0,
            rpo_revisions: 0,
        }
    }
}
