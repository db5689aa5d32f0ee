//! THE restore path. Every command and every drill step that restores a cluster from a
//! backup runs [`restore`], so each RTO phase means the same wherever it is reported.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::backup::ledger::{HARNESS_PREFIX, Ledger, Loss};
use crate::backup::record::Backup;
use crate::backup::snapshot::{self, RestoreOptions, SnapshotSource};
use crate::chaos::fault::Injector;
use crate::cluster::{Cluster, Member, MemberState};
use crate::error::{Error, Result};
use crate::model::backup::{MemberTime, SnapshotFile};
use crate::model::fault::{Actor, FaultKind, Target};
use crate::model::report::{PhaseRecord, RtoPhase};
use crate::poll::{self, Attempt};

/// Times consecutive RTO phases against one clock.
pub struct Stopwatch {
    pub started: Instant,
    last: Instant,
    pub phases: Vec<PhaseRecord>,
}

impl Stopwatch {
    pub fn starting_at(t0: Instant) -> Self {
        Stopwatch {
            started: t0,
            last: t0,
            phases: vec![],
        }
    }
    pub fn lap(&mut self, phase: RtoPhase) {
        self.lap_at(phase, Instant::now());
    }
    pub fn lap_at(&mut self, phase: RtoPhase, now: Instant) {
        self.phases.push(PhaseRecord {
            name: phase,
            seconds: (now - self.last).as_secs_f64(),
        });
        self.last = now;
    }
    pub fn total(&self) -> f64 {
        self.phases.iter().map(|p| p.seconds).sum()
    }
}

/// What to restore into: the member names afterwards, the restore tool's options, and
/// whether to prove the cluster writable (`verify-snapshot` does not write: it compares
/// the restored revision with the snapshot's).
pub struct RestorePlan<'a> {
    pub members: &'a [String],
    pub options: &'a RestoreOptions,
    pub first_write: bool,
}

/// What [`restore`] did.
pub struct RestoredCluster {
    pub per_member: Vec<MemberTime>,
    pub file: SnapshotFile,
    /// The acknowledged writes the restore lost.
    pub loss: Loss,
}

/// THE restore procedure, once the disaster is declared; the `restore-drill` and
/// `verify-snapshot` commands and a drill's `restore` step run it, so each phase means the
/// same in all three:
/// - `stop-survivors`: every member still up is stopped (paused ones unpaused first), as
///   the seed stops etcd on every node before restoring;
/// - `snapshot-checked`: meanwhile the backup is checked again — its sha256 trailer, and its
///   sha256 against the one recorded when it was taken — and nothing is torn down before it
///   passes (the phase ends when both are done);
/// - `restore`: every member's data restored from that one file under a new token;
/// - `started`: every member's container started;
/// - `leader-elected`: some member reports a leader;
/// - `first-write` (when the plan asks for it): a write is acknowledged, and every member
///   answers healthy; without it, every member answers healthy.
///
/// The ledger learns the restore (what it kept and lost) and the first write.
pub async fn restore(
    cluster: &mut Cluster,
    injector: &mut Injector,
    backup: &Backup,
    plan: &RestorePlan<'_>,
    ledger: &mut Ledger,
    lap: &mut dyn FnMut(RtoPhase, Instant),
) -> Result<RestoredCluster> {
    let restore = plan.options;
    snapshot::check_restore_options(&cluster.image, restore)?;
    let check = backup.check(restore.skip_hash_check);
    let (checked, stopped) = tokio::join!(check, stop_survivors(cluster, injector));
    let stopped = stopped?;
    let (file, _) = checked?;
    lap(RtoPhase::StopSurvivors, stopped);
    lap(RtoPhase::SnapshotChecked, Instant::now());
    let per_member = restore_and_start(
        cluster,
        &backup.source,
        &file.file_name(),
        plan.members,
        restore,
        &mut *lap,
    )
    .await?;
    let loss = ledger.restore(backup.cut);
    if plan.first_write {
        let (key, value, revision) = first_write(cluster, Duration::from_secs(30)).await?;
        ledger.acknowledged(&key, &value, revision);
    }
    cluster.wait_healthy(Duration::from_secs(60)).await?;
    if plan.first_write {
        lap(RtoPhase::FirstWrite, Instant::now());
    }
    Ok(RestoredCluster {
        per_member,
        file,
        loss,
    })
}

/// Stops every member still up (unpausing paused ones first: a frozen process cannot be
/// stopped gracefully), all at once; returns when the last one stopped. Members never
/// started or lost for good have nothing to stop. These are the harness's actions.
async fn stop_survivors(cluster: &mut Cluster, injector: &mut Injector) -> Result<Instant> {
    let was = std::mem::replace(&mut injector.actor, Actor::Harness);
    let unpaused = unpause_all(cluster, injector).await;
    injector.actor = was;
    unpaused?;
    let up: Vec<String> = cluster
        .members
        .iter()
        .filter(|m| matches!(m.state, MemberState::Running | MemberState::Partitioned))
        .map(|m| m.name.clone())
        .collect();
    injector.stop_all(cluster, &up).await?;
    Ok(Instant::now())
}

async fn unpause_all(cluster: &mut Cluster, injector: &mut Injector) -> Result<()> {
    for m in cluster.members.clone() {
        if m.state == MemberState::Paused {
            injector
                .inject(cluster, FaultKind::Unpause, &Target::Member(m.index))
                .await?;
        }
    }
    Ok(())
}

/// The cluster ID, read from a member that answers: a restore must change it.
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

/// A deliberately broken restore, for tests and benchmarks: every member of `names`
/// restored from `file` at `source` or, for a member named in `per_member`, from that file
/// instead — how tests prove the verifier notices a member restored from another snapshot.
/// Members are created and restored concurrently under a new token; nothing is started.
pub async fn restore_mixed(
    cluster: &mut Cluster,
    source: &SnapshotSource,
    file: &str,
    per_member: &HashMap<String, String>,
    names: &[String],
    opts: &RestoreOptions,
) -> Result<Vec<MemberTime>> {
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
    m: &Member,
    initial: &str,
    source: &SnapshotSource,
    file: &str,
    opts: &RestoreOptions,
) -> Result<MemberTime> {
    c.create_member(m, initial, "new").await?;
    let secs = snapshot::restore_member(c, m, source, file, opts).await?;
    Ok(MemberTime {
        name: m.name.clone(),
        seconds: secs,
    })
}

/// Restores every member in `names` from `file` at `source`, starts them and waits for a
/// leader. Each member starts as soon as its own restore is done (restored members boot
/// from their WAL and wait for their peers, so the order does not matter). `lap` is told
/// when the restores, the starts and the election end. Nothing is written.
async fn restore_and_start(
    cluster: &mut Cluster,
    source: &SnapshotSource,
    file: &str,
    names: &[String],
    opts: &RestoreOptions,
    lap: &mut dyn FnMut(RtoPhase, Instant),
) -> Result<Vec<MemberTime>> {
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
    let last = |f: fn(&(MemberTime, Instant, Instant)) -> Instant| {
        done.iter().map(f).max().unwrap_or_else(Instant::now)
    };
    lap(RtoPhase::Restore, last(|d| d.1));
    lap(RtoPhase::Started, last(|d| d.2));
    cluster.wait_for_leader(Duration::from_secs(30)).await?;
    lap(RtoPhase::LeaderElected, Instant::now());
    Ok(done.into_iter().map(|d| d.0).collect())
}

/// Writes one harness key through the first member until etcd acknowledges it; returns the
/// key, value and revision (the ledger's to record).
async fn first_write(cluster: &Cluster, timeout: Duration) -> Result<(String, String, i64)> {
    let m = &cluster.members[0];
    let key = format!("{HARNESS_PREFIX}first-write");
    let value = format!("ok-{}", rand::random::<u32>());
    let attempt = || async {
        let mut c = match cluster.client(m).await {
            Ok(c) => c,
            Err(e) => return Attempt::NotYet(e.to_string()),
        };
        match c.put(key.as_str(), value.as_str(), None).await {
            Ok(r) => match r.header() {
                Some(h) => Attempt::Ready(h.revision()),
                None => Attempt::NotYet("the acknowledgement carried no header".into()),
            },
            Err(e) => Attempt::NotYet(e.to_string()),
        }
    };
    match poll::until(timeout, Duration::from_millis(20), attempt).await {
        Ok(revision) => Ok((key, value, revision)),
        Err(gave_up) => Err(Error::Failed(format!(
            "no write succeeded within {timeout:?} after the restore: {}",
            gave_up.reason
        ))),
    }
}
