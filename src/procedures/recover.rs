//! The recovery procedures end to end: the restore drill (load → snapshot → disaster →
//! restore every member from the same snapshot under a new token → verify, with RTO split
//! into phases and RPO counted), restoring a cluster from a snapshot, and validating a
//! snapshot made anywhere by restoring it into a throwaway cluster.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use bollard::Docker;
use serde::Serialize;

use crate::backup::dataset::{self, AckLog, Dataset};
use crate::backup::ledger::{Cut, Ledger, Loss};
use crate::backup::snapshot::{
    self, Integrity, RestoreOptions, SnapshotFile, SnapshotSource, SnapshotStatus,
};
use crate::backup::verify::{self, Check, Expected, Verification};
use crate::chaos::fault::{FaultEvent, FaultKind, Injector, Target};
use crate::cluster::{Cluster, ClusterSpec, MemberState};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    pub name: String,
    pub seconds: f64,
}

/// Times consecutive phases against one clock.
struct Stopwatch {
    last: Instant,
    phases: Vec<Phase>,
}

impl Stopwatch {
    fn new() -> Self {
        Stopwatch {
            last: Instant::now(),
            phases: vec![],
        }
    }
    fn lap(&mut self, name: &str) {
        self.lap_at(name, Instant::now());
    }
    fn lap_at(&mut self, name: &str, now: Instant) {
        self.phases.push(Phase {
            name: name.to_string(),
            seconds: (now - self.last).as_secs_f64(),
        });
        self.last = now;
    }
    fn total(&self) -> f64 {
        self.phases.iter().map(|p| p.seconds).sum()
    }
}

/// How much of the cluster the disaster takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Disaster {
    /// A majority lost for good: quorum is gone.
    Quorum,
    /// Every member lost for good.
    All,
}

impl std::str::FromStr for Disaster {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "quorum" => Ok(Disaster::Quorum),
            "all" => Ok(Disaster::All),
            _ => Err(Error::InvalidInput(format!(
                "invalid disaster {s:?}: quorum or all"
            ))),
        }
    }
}

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
            version: crate::cluster::image::DEFAULT_VERSION.into(),
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
}

#[derive(Debug, Clone, Serialize)]
pub struct RestoreDrillReport {
    pub verdict: &'static str,
    pub size: usize,
    pub etcd_version: String,
    pub restored_with: String,
    pub seed: u64,
    pub tls: bool,
    pub keys_loaded: usize,
    pub keys_verified: usize,
    pub rpo_writes: usize,
    pub rpo_revisions: i64,
    /// Disaster declared → verified.
    /// How long inflicting the disaster took (not part of the RTO).
    pub disaster_s: f64,
    pub rto_s: f64,
    pub phases: Vec<Phase>,
    pub restore_per_member: Vec<Phase>,
    pub snapshot: SnapshotFile,
    pub snapshot_status: SnapshotStatus,
    pub snapshot_saved_from: String,
    pub disaster: Disaster,
    pub fault_events: Vec<FaultEvent>,
    pub checks: Vec<Check>,
    /// Why the recovery stopped before it was verified (the restore tool failed, the
    /// cluster never became healthy, no write succeeded): a failed drill, not bad input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RestoreDrillReport {
    pub fn passed(&self) -> bool {
        self.verdict == "pass"
    }
}

/// Refuses version pairs that cannot work before anything starts.
pub fn check_versions(from: &str, to: &str) -> Result<()> {
    use crate::cluster::image::Line;
    let (a, b) = (Line::parse(from)?, Line::parse(to)?);
    if a == Line::V3_5 && b == Line::V3_4 {
        return Err(Error::InvalidInput(format!(
            "a snapshot from etcd {from} cannot be restored by etcd {to}: etcd does not support downgrades; restore with 3.5"
        )));
    }
    Ok(())
}

/// Everything the restore drill does, in order.
pub async fn restore_drill(
    docker: &Docker,
    opts: &RestoreDrillOptions,
) -> Result<RestoreDrillReport> {
    let restore_version = opts
        .restore_version
        .clone()
        .unwrap_or_else(|| opts.version.clone());
    check_versions(&opts.version, &restore_version)?;
    let mut spec = ClusterSpec::new(opts.size);
    spec.version = opts.version.clone();
    spec.tls = opts.tls;
    spec.run_id = opts.run_id.clone();
    spec.validate()?;
    if let Some(names) = &opts.restore_members
        && (names.is_empty() || names.len() > crate::cluster::MAX_SIZE)
    {
        return Err(Error::InvalidSize { size: names.len() });
    }
    let restore_image = crate::cluster::image::resolve(docker, &restore_version).await?;
    snapshot::check_restore_options(&restore_image, &opts.restore)?;
    let mut cluster = Cluster::start(docker, spec).await?;
    let mut injector = Injector::new(opts.seed);

    // 1. Data, through the leader, every acknowledged write recorded.
    let leader = cluster
        .leader()
        .await
        .unwrap_or_else(|| cluster.members[0].name.clone());
    let lm = cluster.member(&leader).expect("leader is a member").clone();
    let client = cluster.client(&lm).await?;
    let mut acks =
        dataset::load(&client, &lm.name, &opts.dataset, 0..opts.dataset.keys, 16).await?;

    // 2. Snapshot from one healthy member (a follower when there is one, like a backup job
    //    pointed at any endpoint), streamed to the cluster's run directory.
    let source = match injector
        .resolve(&cluster, &Target::Follower, FaultKind::Kill)
        .await
    {
        Ok(mut v) => v.remove(0),
        Err(_) => leader.clone(),
    };
    let sm = cluster.member(&source).expect("resolved").clone();
    let snap = snapshot::save(&cluster, &sm, &cluster.run_dir.join("snapshots")).await?;
    let backup = record_backup(&cluster, snap, false, 0).await?;

    // 3. Writes the backup will not have.
    let post = dataset::load(
        &client,
        &lm.name,
        &opts.dataset,
        opts.dataset.keys..opts.dataset.keys + opts.post_snapshot_writes,
        16,
    )
    .await?;
    acks.merge(post);
    let loaded = opts.dataset.keys + opts.post_snapshot_writes;
    let old_cluster_id = cluster_id(&cluster).await?;

    let names = opts
        .restore_members
        .clone()
        .unwrap_or_else(|| cluster.members.iter().map(|m| m.name.clone()).collect());
    let etcd_version = cluster.image.version.clone();
    if restore_version != opts.version {
        // Restored members run the restore version; the rest of the drill uses it too.
        cluster.image = restore_image;
    }
    let recovered = recover(
        &mut cluster,
        &mut injector,
        &backup,
        &Recovery {
            disaster: opts.disaster,
            members: names,
            restore: opts.restore.clone(),
            dataset: &opts.dataset,
            acks: &acks,
            old_cluster_id,
        },
    )
    .await;
    // From the disaster on, a failure is the drill's finding: reported, verdict fail.
    let (r, error) = match recovered {
        Ok(r) => (r, None),
        Err(e) => (Recovered::failed(&backup), Some(e.to_string())),
    };
    let report = RestoreDrillReport {
        verdict: if error.is_none() && r.verification.passed() {
            "pass"
        } else {
            "fail"
        },
        size: opts.size,
        etcd_version,
        restored_with: cluster.image.version.clone(),
        seed: opts.seed,
        tls: opts.tls,
        keys_loaded: loaded,
        keys_verified: r.verification.keys_verified,
        rpo_writes: r.verification.rpo_writes,
        rpo_revisions: r.verification.rpo_revisions,
        disaster_s: r.disaster_s,
        rto_s: r.rto_s,
        phases: r.phases,
        restore_per_member: r.restore_per_member,
        snapshot: SnapshotFile {
            member: Some(source.clone()),
            ..r.file
        },
        snapshot_status: r.status,
        snapshot_saved_from: source,
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
    pub phases: Vec<Phase>,
    pub restore_per_member: Vec<Phase>,
    pub file: SnapshotFile,
    pub status: SnapshotStatus,
    pub verification: Verification,
    pub loss: Loss,
}

/// From disaster to verified: members lost for good, then [`restore_from_backup`], then
/// the checks. RTO runs from the disaster.
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
        Disaster::Quorum => crate::chaos::observe::majority(size),
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
    let mut clock = Stopwatch::new();
    let restored = restore_from_backup(
        cluster,
        injector,
        backup,
        &r.members,
        &r.restore,
        &mut ledger,
        &mut |p, at| clock.lap_at(p, at),
    )
    .await?;
    let (acks, snapshot_revision) = ledger.expected_dataset();
    let harness = ledger.harness_view();
    let mut verification = verify::verify(
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
    verification.rpo_writes = restored.loss.total();
    verification.rpo_revisions = (r.acks.max_revision() - backup.status.revision).max(0);
    clock.lap("verified");
    Ok(Recovered {
        disaster_s,
        rto_s: clock.total(),
        phases: clock.phases,
        restore_per_member: restored.per_member,
        file: restored.file,
        status: backup.status.clone(),
        verification,
        loss: restored.loss,
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
            status: backup.status.clone(),
            verification: Verification {
                checks: vec![],
                keys_verified: 0,
                rpo_writes: 0,
                rpo_revisions: 0,
                seconds: 0.0,
            },
            loss: Loss::default(),
        }
    }
}

/// What [`restore_from_backup`] did.
pub struct RestoredCluster {
    pub per_member: Vec<Phase>,
    pub file: SnapshotFile,
    /// The acknowledged writes the restore lost.
    pub loss: Loss,
}

/// THE restore procedure, once the disaster is declared; both the `restore-drill` command
/// and a drill's `restore` step run it, so each phase means the same in both:
/// - `stop-survivors`: every member still up is stopped (paused ones unpaused first), as
///   the seed stops etcd on every node before restoring;
/// - `snapshot-checked`: meanwhile the backup is checked again — its sha256 trailer, and its
///   sha256 against the one recorded when it was taken — and nothing is torn down before it
///   passes (the phase ends when both are done);
/// - `restore`: every member's data restored from that one file under a new token;
/// - `started`: every member's container started;
/// - `leader-elected`: some member reports a leader;
/// - `first-write`: a write is acknowledged, and every member answers healthy.
///
/// The ledger learns the restore (what it kept and lost) and the first write.
pub async fn restore_from_backup(
    cluster: &mut Cluster,
    injector: &mut Injector,
    backup: &Backup,
    members: &[String],
    restore: &RestoreOptions,
    ledger: &mut Ledger,
    lap: &mut dyn FnMut(&str, Instant),
) -> Result<RestoredCluster> {
    snapshot::check_restore_options(&cluster.image, restore)?;
    let check = backup.check(restore.skip_hash_check);
    let (checked, stopped) = tokio::join!(check, stop_survivors(cluster, injector));
    let stopped = stopped?;
    let (file, _) = checked?;
    lap("stop-survivors", stopped);
    lap("snapshot-checked", Instant::now());
    let per_member = restore_and_start(
        cluster,
        &backup.source,
        &file.file_name(),
        members,
        restore,
        &mut *lap,
    )
    .await?;
    let loss = ledger.restore(backup.cut);
    let (key, value, revision) = first_write(cluster, Duration::from_secs(30)).await?;
    ledger.acknowledged(&key, &value, revision);
    cluster.wait_healthy(Duration::from_secs(30)).await?;
    lap("first-write", Instant::now());
    Ok(RestoredCluster {
        per_member,
        file,
        loss,
    })
}

/// Stops every member still up (unpausing paused ones first: a frozen process cannot be
/// stopped gracefully); returns when the last one stopped.
async fn stop_survivors(cluster: &mut Cluster, injector: &mut Injector) -> Result<Instant> {
    for m in cluster.members.clone() {
        if m.state == MemberState::Paused {
            injector
                .inject(cluster, FaultKind::Unpause, &Target::Member(m.index))
                .await?;
        }
        if matches!(
            m.state,
            MemberState::Running | MemberState::Partitioned | MemberState::Paused
        ) {
            injector
                .inject(cluster, FaultKind::Stop, &Target::Member(m.index))
                .await?;
        }
    }
    Ok(Instant::now())
}

pub async fn cluster_id(cluster: &Cluster) -> Result<u64> {
    let m = cluster
        .members
        .iter()
        .find(|m| m.state.answers_clients())
        .ok_or_else(|| Error::Failed("no member answers".into()))?;
    let mut c = cluster.client(m).await?;
    let r = c
        .member_list()
        .await
        .map_err(Error::etcd(&m.name, "reading the cluster ID"))?;
    Ok(r.header().map(|h| h.cluster_id()).unwrap_or(0))
}

/// A backup as the job that took it recorded it: the file (with its sha256), where tool
/// containers find it, and what `snapshot status` said of it. Recording happens when the
/// backup is taken, so a recovery only has to prove the file is still the same bytes.
#[derive(Debug, Clone)]
pub struct Backup {
    pub file: SnapshotFile,
    pub status: SnapshotStatus,
    pub source: SnapshotSource,
    /// Which history the snapshot was cut from, at its revision.
    pub cut: Cut,
}

impl Backup {
    /// The file's sha256 trailer checked again, and its sha256 compared with the recorded
    /// one: a backup that changed since it was taken is refused.
    pub async fn check(&self, skip_hash_check: bool) -> Result<(SnapshotFile, Integrity)> {
        let (file, integrity) = check_snapshot(&self.file.path, skip_hash_check).await?;
        if file.sha256 != self.file.sha256 {
            return Err(Error::BadSnapshot {
                path: file.path.clone(),
                reason: format!(
                    "its sha256 is {} but was {} when the backup was taken: it changed since",
                    file.sha256, self.file.sha256
                ),
            });
        }
        Ok((file, integrity))
    }
}

/// Records a freshly taken (or given) snapshot as a backup: checked, staged, and read by
/// the image's own `snapshot status`.
pub async fn record_backup(
    cluster: &Cluster,
    file: SnapshotFile,
    skip_hash_check: bool,
    era: usize,
) -> Result<Backup> {
    let (checked, status, source) = stage_snapshot(cluster, &file.path, skip_hash_check).await?;
    Ok(Backup {
        file: SnapshotFile {
            member: file.member,
            ..checked
        },
        cut: Cut {
            era,
            revision: status.revision,
        },
        status,
        source,
    })
}

/// Checks the file on the host: its sha256 trailer (or, with `skip_hash_check`, that it
/// is there). Reads only the file; nothing is torn down before this passes.
pub async fn check_snapshot(
    path: &Path,
    skip_hash_check: bool,
) -> Result<(SnapshotFile, Integrity)> {
    let owned = path.to_path_buf();
    tokio::task::spawn_blocking(move || snapshot::check_file(&owned, skip_hash_check))
        .await
        .map_err(|e| Error::Failed(format!("checking the snapshot: {e}")))?
}

fn snapshot_volume_name(cluster: &Cluster) -> String {
    format!("{}-snapshots", cluster.name())
}

/// Makes a snapshot file visible to the cluster's tool containers.
pub async fn stage_source(cluster: &Cluster, path: &Path) -> Result<SnapshotSource> {
    SnapshotSource::stage(
        cluster.docker(),
        &cluster.image,
        cluster.labels(&[]),
        &snapshot_volume_name(cluster),
        path,
    )
    .await
}

/// Checks the file on the host, makes it visible to tool containers, and reads its
/// revision and key count with the image's own `snapshot status` (which reads the bolt file
/// itself, so it also refuses a "snapshot" that is not a database even when
/// --skip-hash-check let it through the trailer check).
pub async fn stage_snapshot(
    cluster: &Cluster,
    path: &Path,
    skip_hash_check: bool,
) -> Result<(SnapshotFile, SnapshotStatus, SnapshotSource)> {
    let (file, _) = check_snapshot(path, skip_hash_check).await?;
    let source = stage_source(cluster, path).await?;
    let name = file.file_name();
    let status = |source: SnapshotSource| {
        let name = name.clone();
        async move {
            let s = snapshot::status(
                cluster.docker(),
                &cluster.image,
                &source,
                &name,
                cluster.labels(&[]),
            )
            .await?;
            Ok::<_, Error>((s, source))
        }
    };
    let (status, source) = match status(source.clone()).await {
        Err(_) if matches!(source, SnapshotSource::HostDir(_)) => {
            // A daemon that cannot see this machine's directory after all: copy the file.
            let copied = SnapshotSource::copy(
                cluster.docker(),
                &cluster.image,
                cluster.labels(&[]),
                &snapshot_volume_name(cluster),
                path,
            )
            .await?;
            status(copied).await?
        }
        other => other?,
    };
    Ok((file, status, source))
}

/// Replaces every member with `names`, each restored from `file` at `source` (or, for a
/// member named in `per_member`, from that file instead — how tests prove the verifier
/// notices a member restored from another snapshot), under a new cluster token. Members
/// are created and restored concurrently; nothing is started.
pub async fn restore_cluster(
    cluster: &mut Cluster,
    source: &SnapshotSource,
    file: &str,
    per_member: &HashMap<String, String>,
    names: &[String],
    opts: &RestoreOptions,
) -> Result<Vec<Phase>> {
    let initial = reset_for_restore(cluster, names).await?;
    let c: &Cluster = cluster;
    futures_util::future::try_join_all(c.members.iter().map(|m| {
        let f = per_member.get(&m.name).map_or(file, String::as_str);
        create_and_restore(c, m, &initial, source, f, opts)
    }))
    .await
}

/// Replaces the members with `names` under a new cluster token; returns the
/// `--initial-cluster` they are restored with.
async fn reset_for_restore(cluster: &mut Cluster, names: &[String]) -> Result<String> {
    let token = format!("{}-restored-{:08x}", cluster.name(), rand::random::<u32>());
    cluster.reset_members(names, token).await?;
    Ok(cluster.initial_cluster())
}

/// Creates member `m` on its fresh volume and restores `file` into it; the phase is the
/// restore tool's own time.
async fn create_and_restore(
    c: &Cluster,
    m: &crate::cluster::Member,
    initial: &str,
    source: &SnapshotSource,
    file: &str,
    opts: &RestoreOptions,
) -> Result<Phase> {
    c.create_member(m, initial, "new").await?;
    let secs = snapshot::restore_member(c, m, source, file, opts).await?;
    Ok(Phase {
        name: m.name.clone(),
        seconds: secs,
    })
}

/// Restores every member in `names` from `file` at `source`, starts them and waits for a
/// leader. Each member starts as soon as its own restore is done (restored members boot
/// from their WAL and wait for their peers, so the order does not matter). `lap` is told
/// when the restores, the starts and the election end. Nothing is written:
/// `verify-snapshot` compares the revision with the snapshot's afterwards.
pub async fn restore_and_start(
    cluster: &mut Cluster,
    source: &SnapshotSource,
    file: &str,
    names: &[String],
    opts: &RestoreOptions,
    mut lap: impl FnMut(&str, Instant),
) -> Result<Vec<Phase>> {
    let initial = reset_for_restore(cluster, names).await?;
    let c: &Cluster = cluster;
    let initial = initial.as_str();
    let done = futures_util::future::try_join_all(c.members.iter().map(|m| async move {
        let phase = create_and_restore(c, m, initial, source, file, opts).await?;
        let restored = Instant::now();
        c.start_member(m).await?;
        Ok::<_, Error>((phase, restored, Instant::now()))
    }))
    .await?;
    let last = |f: fn(&(Phase, Instant, Instant)) -> Instant| {
        done.iter().map(f).max().unwrap_or_else(Instant::now)
    };
    lap("restore", last(|d| d.1));
    lap("started", last(|d| d.2));
    cluster.refresh_ports().await?;
    cluster.wait_for_leader(Duration::from_secs(30)).await?;
    lap("leader-elected", Instant::now());
    Ok(done.into_iter().map(|d| d.0).collect())
}

/// Writes one harness key through the first member until etcd acknowledges it; returns the
/// key, value and revision (the ledger's to record).
pub async fn first_write(cluster: &Cluster, timeout: Duration) -> Result<(String, String, i64)> {
    let t0 = Instant::now();
    let m = &cluster.members[0];
    let key = format!("{}first-write", crate::backup::ledger::HARNESS_PREFIX);
    let value = format!("ok-{}", rand::random::<u32>());
    let mut last = String::new();
    while t0.elapsed() < timeout {
        match cluster.client(m).await {
            Ok(mut c) => match c.put(key.as_str(), value.as_str(), None).await {
                Ok(r) => match r.header() {
                    Some(h) => return Ok((key, value, h.revision())),
                    None => last = "the acknowledgement carried no header".into(),
                },
                Err(e) => last = e.to_string(),
            },
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(Error::Failed(format!(
        "no write succeeded within {timeout:?} after the restore: {last}"
    )))
}

#[derive(Debug, Clone, Serialize)]
pub struct SnapshotCheckReport {
    pub verdict: &'static str,
    pub file: SnapshotFile,
    pub integrity: Integrity,
    pub status: SnapshotStatus,
    pub members: usize,
    pub etcd_version: String,
    pub keys: usize,
    pub restore_s: f64,
    pub checks: Vec<Check>,
}

/// `verify-snapshot`: a snapshot made anywhere, restored into a throwaway cluster of
/// `members` and checked. The file is checked before any container exists.
pub async fn verify_snapshot(
    docker: &Docker,
    path: &Path,
    members: usize,
    version: &str,
    skip_hash_check: bool,
    run_id: &str,
) -> Result<SnapshotCheckReport> {
    crate::cluster::validate_size(members)?;
    let (_, integrity) = snapshot::check_file(path, skip_hash_check)?;
    let mut spec = ClusterSpec::new(members);
    spec.version = version.to_string();
    spec.run_id = run_id.to_string();
    spec.name = format!("verify-{:06x}", rand::random::<u32>() & 0xff_ffff);
    let mut cluster = Cluster::create(docker, spec).await?;
    let (file, status, source) = stage_snapshot(&cluster, path, skip_hash_check).await?;
    let t0 = Instant::now();
    let names: Vec<String> = cluster.members.iter().map(|m| m.name.clone()).collect();
    let opts = RestoreOptions {
        skip_hash_check,
        bump_revision: None,
    };
    restore_and_start(
        &mut cluster,
        &source,
        &file.file_name(),
        &names,
        &opts,
        |_, _| {},
    )
    .await?;
    cluster.wait_healthy(Duration::from_secs(60)).await?;
    let restore_s = t0.elapsed().as_secs_f64();

    let mut checks = vec![];
    // Nothing writes to the restored cluster, so the listing and HashKV (which reads every
    // member) can run at once.
    let ((readable, keys, revision), mut hashes) = tokio::join!(
        verify::check_keys_readable(&cluster, verify::KEYSPACE_PAGE_BYTES),
        verify::verify_hashkv(&cluster)
    );
    checks.push(readable);
    checks.push(revision_check(revision, status.revision));
    checks.push(hashes.checks.remove(0));
    let passed = checks.iter().all(|c| c.passed);
    let report = SnapshotCheckReport {
        verdict: if passed { "pass" } else { "fail" },
        file,
        integrity,
        status,
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
        name: "revision".into(),
        passed: restored == snapshot && restored > 0,
        detail: format!(
            "restored cluster is at revision {restored}; snapshot status says {snapshot}"
        ),
        seconds: 0.0,
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

    /// A file shaped like a snapshot: pages plus a sha256 trailer over them.
    fn fake_snapshot(dir: &Path, fill: u8) -> std::path::PathBuf {
        use sha2::Digest;
        let body = vec![fill; 4096];
        let mut bytes = body.clone();
        bytes.extend_from_slice(&sha2::Sha256::digest(&body));
        let path = dir.join("20181215_145639_snapshot.db");
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[tokio::test]
    async fn a_backup_that_changed_since_it_was_taken_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = fake_snapshot(dir.path(), 1);
        let (file, _) = snapshot::check_file(&path, false).unwrap();
        let backup = Backup {
            file,
            status: SnapshotStatus {
                hash: 0,
                revision: 1,
                total_key: 0,
                total_size: 4096,
            },
            source: SnapshotSource::HostDir(dir.path().to_path_buf()),
            cut: Cut {
                era: 0,
                revision: 1,
            },
        };
        backup.check(false).await.expect("the same bytes pass");

        // Replaced by another valid snapshot: its own trailer is fine, but it is not the
        // backup that was recorded.
        fake_snapshot(dir.path(), 2);
        let err = backup.check(false).await.unwrap_err().to_string();
        assert!(err.contains("changed since"), "{err}");
    }
}
