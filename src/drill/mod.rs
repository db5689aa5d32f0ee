//! The drill runner: a scenario's steps in order against real clusters, every expectation
//! and gate recorded, teardown whatever happens. A failed expectation is a result and the
//! drill goes on; an error (Docker, etcd refusing a step) stops the steps, and the run is
//! still torn down and reported.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bollard::Docker;

use crate::backup::dataset::{self, Dataset};
use crate::backup::ledger::{HARNESS_PREFIX, Ledger, Loss};
use crate::backup::snapshot::{self, RestoreOptions};
use crate::backup::verify::{self, Expected};
use crate::chaos::fault::{FaultKind, Injector, Target};
use crate::chaos::observe::{self, ObserveOptions};
use crate::cluster::{Cluster, ClusterSpec, MemberState};
use crate::error::{Error, Result};
use crate::model::report::*;
use crate::model::scenario::{Loaded, Scenario, Step};
use crate::procedures::recover::{self, Backup};

#[derive(Debug, Clone)]
pub struct DrillOptions {
    pub seed: Option<u64>,
    pub repeat: Option<u32>,
    pub run_id: String,
    /// Show a spinner (terminals) instead of plain lines (CI).
    pub interactive: bool,
    /// Cancelled on Ctrl-C/SIGTERM: the running step stops, the cluster is torn down and
    /// the run is reported as interrupted.
    pub cancel: tokio_util::sync::CancellationToken,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Runs a scenario `repeat` times; one report per run.
/// Runs a scenario `repeat` times; `done` gets each run's report as soon as the run ends
/// (so a long series leaves its reports behind even if it is stopped). Stops after an
/// interrupted run.
pub async fn run(
    docker: &Docker,
    loaded: &Loaded,
    opts: &DrillOptions,
    done: &mut dyn FnMut(&DrillReport, u32) -> Result<()>,
) -> Result<Vec<DrillReport>> {
    let s = &loaded.scenario;
    let repeat = opts.repeat.unwrap_or(*s.repeat.get_ref()).max(1);
    let base_seed = opts.seed.or(s.seed).unwrap_or_else(Injector::random_seed);
    let mut out = vec![];
    for r in 1..=repeat {
        let seed = base_seed.wrapping_add(u64::from(r - 1));
        let report = run_once(docker, loaded, seed, r, opts).await;
        done(&report, repeat)?;
        let interrupted = report.verdict == INTERRUPTED;
        out.push(report);
        if interrupted {
            break;
        }
    }
    Ok(out)
}

/// The verdict of a run stopped by Ctrl-C or SIGTERM.
pub const INTERRUPTED: &str = "interrupted";

struct Snap {
    name: String,
    /// The file as it was recorded when taken; the restore proves it is still those bytes.
    backup: Backup,
    member: String,
    at_s: f64,
    cluster_id: u64,
}

struct Restored {
    old_cluster_id: u64,
    members: Vec<String>,
    /// What the restore lost, and the revisions between the snapshot and the last write.
    loss: Loss,
    revisions: i64,
}

/// A write the background writer tried: its value and, when acknowledged, its revision.
type TriedWrite = (String, Option<i64>);

/// The background writer's key.
fn writer_key() -> String {
    format!("{HARNESS_PREFIX}writer")
}

/// Writes every 50 ms through whichever members answer, remembering when writes were
/// acknowledged, to measure the longest stretch without one.
struct WriteMonitor {
    stop: Arc<std::sync::atomic::AtomicBool>,
    handle: tokio::task::JoinHandle<Duration>,
    endpoints: Arc<Mutex<Vec<String>>>,
    /// Every write tried since the last drain: its value and, when acknowledged, revision.
    writes: Arc<Mutex<Vec<TriedWrite>>>,
}

impl WriteMonitor {
    fn start(cluster: &Cluster) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let endpoints = Arc::new(Mutex::new(answering(cluster)));
        let opts = cluster
            .connect_options()
            .with_timeout(Duration::from_millis(1000))
            .with_require_leader(true);
        let writes: Arc<Mutex<Vec<TriedWrite>>> = Arc::default();
        let (s, e, w) = (stop.clone(), endpoints.clone(), writes.clone());
        let handle = tokio::spawn(async move {
            let mut last_ack = Instant::now();
            let mut max_gap = Duration::ZERO;
            let mut i = 0usize;
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                let eps = e.lock().map(|g| g.clone()).unwrap_or_default();
                if !eps.is_empty() {
                    let url = eps[i % eps.len()].clone();
                    i += 1;
                    let value = i.to_string();
                    let revision = async {
                        let mut c = etcd_client::Client::connect([url], Some(opts.clone()))
                            .await
                            .ok()?;
                        let r = c.put(writer_key(), value.as_str(), None).await.ok()?;
                        r.header().map(|h| h.revision())
                    }
                    .await;
                    if let Ok(mut g) = w.lock() {
                        g.push((value, revision));
                    }
                    if revision.is_some() {
                        max_gap = max_gap.max(last_ack.elapsed());
                        last_ack = Instant::now();
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            max_gap.max(last_ack.elapsed())
        });
        WriteMonitor {
            stop,
            handle,
            endpoints,
            writes,
        }
    }

    fn update(&self, cluster: &Cluster) {
        if let Ok(mut g) = self.endpoints.lock() {
            *g = answering(cluster);
        }
    }

    /// Moves the writes tried so far into the ledger.
    fn drain_from(writes: &Mutex<Vec<TriedWrite>>, ledger: &mut Ledger) {
        let taken = writes.lock().map(|mut g| std::mem::take(&mut *g));
        for (value, revision) in taken.unwrap_or_default() {
            match revision {
                Some(r) => ledger.acknowledged(&writer_key(), &value, r),
                None => ledger.attempt(&writer_key(), &value),
            }
        }
    }

    async fn finish(self, ledger: &mut Ledger) -> f64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let writes = self.writes.clone();
        let gap = self
            .handle
            .await
            .map(|d| d.as_secs_f64())
            .unwrap_or(f64::INFINITY);
        WriteMonitor::drain_from(&writes, ledger);
        gap
    }
}

fn answering(cluster: &Cluster) -> Vec<String> {
    cluster
        .members
        .iter()
        .filter(|m| m.state == MemberState::Running)
        .map(|m| m.client_url.clone())
        .collect()
}

struct Runner<'a> {
    docker: &'a Docker,
    s: &'a Scenario,
    opts: &'a DrillOptions,
    t0: Instant,
    cluster: Option<Cluster>,
    injector: Injector,
    dataset: Dataset,
    /// Every acknowledged write, across restores: what must be in the cluster.
    ledger: Ledger,
    /// The cluster ID as started; a verify without a restore expects it unchanged.
    initial_cluster_id: u64,
    next_index: usize,
    snaps: Vec<Snap>,
    restored: Option<Restored>,
    rto: Option<(Instant, Vec<PhaseRecord>)>,
    rto_done: Option<Rto>,
    writer: Option<WriteMonitor>,
    max_write_gap_s: Option<f64>,
    checks: Vec<CheckRecord>,
    probes: Vec<ProbeRecord>,
    table: Option<Vec<TableRow>>,
    rpo: Option<Rpo>,
    image: String,
    etcd_version: String,
}

impl Runner<'_> {
    fn at(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    async fn cluster(&mut self) -> Result<&mut Cluster> {
        if self.cluster.is_none() {
            let mut spec = ClusterSpec::new(*self.s.cluster.size.get_ref());
            spec.version = self.s.cluster.version.get_ref().clone();
            spec.tls = self.s.cluster.tls;
            spec.run_id = self.opts.run_id.clone();
            spec.name = format!(
                "drill-{}-{:04x}",
                short(&self.s.name),
                rand::random::<u16>()
            );
            let c = Cluster::start(self.docker, spec).await?;
            self.initial_cluster_id = recover::cluster_id(&c).await?;
            self.image = c.image.tag.clone();
            self.etcd_version = c.image.version.clone();
            self.cluster = Some(c);
        }
        Ok(self.cluster.as_mut().expect("just created"))
    }

    fn lap(&mut self, phase: &str) {
        self.lap_at(phase, Instant::now());
    }

    fn lap_at(&mut self, phase: &str, now: Instant) {
        if let Some((last, phases)) = self.rto.as_mut() {
            phases.push(PhaseRecord {
                name: phase.to_string(),
                seconds: (now - *last).as_secs_f64(),
            });
            *last = now;
        }
    }

    fn finish_rto(&mut self) {
        if let Some((_, phases)) = self.rto.take() {
            let total_s = phases.iter().map(|p| p.seconds).sum();
            self.rto_done = Some(Rto { total_s, phases });
        }
    }

    fn check(&mut self, step: usize, name: &str, passed: bool, detail: String) {
        self.checks.push(CheckRecord {
            step,
            name: name.to_string(),
            passed,
            detail,
            seconds: None,
        });
    }

    /// A verifier's check, with the time it took.
    fn verified(&mut self, step: usize, ch: &verify::Check) {
        self.check(step, &ch.name, ch.passed, ch.detail.clone());
        if let Some(last) = self.checks.last_mut() {
            last.seconds = Some(ch.seconds);
        }
    }

    /// Runs one step; Ok(detail) when it ran (expectations inside may still have failed).
    async fn step(&mut self, i: usize, step: &Step) -> Result<String> {
        match step {
            Step::Load { keys } => {
                let n = keys.unwrap_or(self.dataset.keys);
                let (from, to) = (self.next_index, self.next_index + n);
                let c = self.cluster().await?;
                let leader = c
                    .leader()
                    .await
                    .ok_or_else(|| Error::Failed("no leader to load data through".into()))?;
                let m = c.member(&leader).expect("leader is a member").clone();
                let client = c.client(&m).await?;
                let ds = self.dataset;
                let log = dataset::load(&client, &m.name, &ds, from..to, 16).await?;
                let rev = log.max_revision();
                self.ledger.record_dataset(log);
                self.next_index = to;
                Ok(format!(
                    "{n} keys written through {leader}, up to revision {rev}"
                ))
            }
            Step::Snapshot { name, from } => {
                let target: Target = from.as_deref().unwrap_or("follower").parse()?;
                let c = self
                    .cluster
                    .as_ref()
                    .ok_or_else(|| Error::Failed("no cluster to snapshot".into()))?;
                let member = match self.injector.resolve(c, &target, FaultKind::Kill).await {
                    Ok(mut v) => v.remove(0),
                    Err(_) if from.is_none() => c
                        .leader()
                        .await
                        .ok_or_else(|| Error::Failed("no member to snapshot from".into()))?,
                    Err(e) => return Err(e),
                };
                let m = c.member(&member).expect("resolved").clone();
                let file = snapshot::save(c, &m, &c.run_dir.join("snapshots")).await?;
                // The sha256 recorded now is what the restore step checks the file against.
                let backup = recover::record_backup(c, file, false, self.ledger.era()).await?;
                let cluster_id = recover::cluster_id(c).await?;
                let name = name
                    .clone()
                    .unwrap_or_else(|| format!("snapshot-{}", self.snaps.len() + 1));
                let detail = format!(
                    "{} from {member}: revision {}, {} bytes",
                    backup.file.file_name(),
                    backup.status.revision,
                    backup.file.size
                );
                let at_s = self.at();
                self.snaps.push(Snap {
                    name,
                    backup,
                    member,
                    at_s,
                    cluster_id,
                });
                Ok(detail)
            }
            Step::Fault { fault, target } => {
                let target: Target = target.as_deref().unwrap_or("random").parse()?;
                self.cluster().await?;
                if self.writer.is_none() {
                    self.writer =
                        Some(WriteMonitor::start(self.cluster.as_ref().expect("started")));
                }
                let c = self.cluster.as_mut().expect("started");
                let hit = self.injector.inject(c, *fault, &target).await?;
                if let Some(w) = &self.writer {
                    w.update(c);
                }
                Ok(format!("{} on {}", step.title(), hit.join(", ")))
            }
            Step::Expect {
                writable,
                leader,
                serializable_readers,
                members_answering,
                window_ms,
            } => {
                let c = self
                    .cluster
                    .as_ref()
                    .ok_or_else(|| Error::Failed("no cluster to observe".into()))?;
                let mut o = ObserveOptions::default();
                if let Some(w) = window_ms {
                    o.window = Duration::from_millis(*w);
                }
                let key = format!("{HARNESS_PREFIX}expect/{i}");
                let obs = observe::observe(c, &key, o).await;
                for w in &obs.writes {
                    match w.revision {
                        Some(r) => self.ledger.acknowledged(&key, &w.value, r),
                        None => self.ledger.attempt(&key, &w.value),
                    }
                }
                if let Some(e) = obs.error() {
                    return Err(Error::Failed(e));
                }
                let readers: Vec<String> = obs
                    .serializable_readers()
                    .into_iter()
                    .map(String::from)
                    .collect();
                self.probes.push(ProbeRecord {
                    at_s: self.at(),
                    step: i,
                    writable: obs.writable,
                    leader: obs.leader.clone(),
                    serializable_readers: readers.clone(),
                    first_write_ms: obs.first_write_ms,
                });
                let want = Expectation {
                    writable: *writable,
                    leader: *leader,
                    serializable_readers: *serializable_readers,
                    members_answering: *members_answering,
                };
                for (name, passed, detail) in judge_expectation(&want, &obs) {
                    self.check(i, name, passed, detail);
                }
                Ok(format!(
                    "writable {}, leader {:?}, {} serializable readers",
                    obs.writable,
                    obs.leader,
                    readers.len()
                ))
            }
            Step::Heal {} => {
                let c = self
                    .cluster
                    .as_mut()
                    .ok_or_else(|| Error::Failed("no cluster to heal".into()))?;
                let mut healed = vec![];
                for m in c.members.clone() {
                    let fault = match m.state {
                        MemberState::Paused => FaultKind::Unpause,
                        MemberState::Partitioned => FaultKind::Heal,
                        MemberState::Down => FaultKind::Restart,
                        _ => continue,
                    };
                    self.injector
                        .inject(c, fault, &Target::Member(m.index))
                        .await?;
                    healed.push(m.name.clone());
                }
                // A step after heal must see a cluster that is healthy again, not one whose
                // restarted members are still replaying their logs.
                c.wait_settled(Duration::from_secs(60)).await?;
                if let Some(w) = &self.writer {
                    w.update(c);
                }
                Ok(format!(
                    "healed {}",
                    if healed.is_empty() {
                        "nothing".to_string()
                    } else {
                        healed.join(", ")
                    }
                ))
            }
            Step::Wait { seconds } => {
                tokio::time::sleep(Duration::from_secs_f64(*seconds)).await;
                Ok(format!("waited {seconds}s"))
            }
            Step::Restore {
                snapshot,
                members,
                bump_revision,
            } => {
                self.restore(snapshot.as_deref(), members.as_deref(), *bump_revision)
                    .await
            }
            Step::ReplaceMember { member } => {
                let c = self
                    .cluster
                    .as_mut()
                    .ok_or_else(|| Error::Failed("no cluster".into()))?;
                let new = c.replace_member(member).await?;
                let hk = verify::verify_hashkv(c).await;
                for ch in &hk.checks {
                    self.verified(i, ch);
                }
                Ok(format!("{member} replaced by {new}"))
            }
            Step::Verify {} => self.verify(i).await,
            Step::QuorumTable { sizes } => {
                let sizes = observe::parse_sizes(sizes.as_deref().unwrap_or("1-9"))?;
                let o = observe::SweepOptions {
                    version: self.s.cluster.version.get_ref().clone(),
                    seed: self.injector.seed,
                    run_id: self.opts.run_id.clone(),
                    observe: ObserveOptions::default(),
                    parallel: 5,
                };
                let t = observe::sweep(self.docker, &sizes, &o).await?;
                self.etcd_version = t.etcd_version.clone();
                let bad = t.disagreements().len();
                let cells: usize = t.sizes.iter().map(|s| s.cells.len()).sum();
                self.check(
                    i,
                    "fault-tolerance-table",
                    bad == 0,
                    format!("{cells} cells observed, {bad} disagree with the table"),
                );
                self.table = Some(
                    t.sizes
                        .iter()
                        .map(|s| TableRow {
                            size: s.size,
                            majority: s.majority,
                            tolerance: s.tolerance,
                            cells: s
                                .cells
                                .iter()
                                .map(|c| (c.failed, c.predicted_writable, c.observed_writable))
                                .collect(),
                        })
                        .collect(),
                );
                Ok(format!(
                    "{cells} cells, {bad} disagree, {:.1}s",
                    t.elapsed_s
                ))
            }
        }
    }
}

impl Runner<'_> {
    /// Stops the background writer, if it runs, keeping the longest gap seen so far.
    async fn stop_writer(&mut self) {
        if let Some(w) = self.writer.take() {
            let gap = w.finish(&mut self.ledger).await;
            self.max_write_gap_s = Some(self.max_write_gap_s.map_or(gap, |g| g.max(gap)));
        }
    }

    /// The drill's `restore` step: the disaster is declared (RTO runs from here) and the one
    /// restore procedure, [`recover::restore_from_backup`], runs on the snapshot as it was
    /// recorded when taken.
    async fn restore(
        &mut self,
        snapshot: Option<&str>,
        members: Option<&[String]>,
        bump_revision: Option<u64>,
    ) -> Result<String> {
        self.stop_writer().await;
        let snap = match snapshot {
            Some(n) => self.snaps.iter().find(|s| s.name == n),
            None => self.snaps.last(),
        }
        .ok_or_else(|| Error::Failed("no snapshot to restore from".into()))?;
        let (backup, old_cluster_id) = (snap.backup.clone(), snap.cluster_id);
        let c = self
            .cluster
            .as_mut()
            .ok_or_else(|| Error::Failed("no cluster to restore".into()))?;
        let names: Vec<String> = members
            .map(<[String]>::to_vec)
            .unwrap_or_else(|| c.members.iter().map(|m| m.name.clone()).collect());
        let opts = RestoreOptions {
            skip_hash_check: false,
            bump_revision,
        };
        let last_revision = self.ledger.last_revision();
        let t0 = Instant::now();
        let mut laps = vec![];
        let restored = recover::restore_from_backup(
            c,
            &mut self.injector,
            &backup,
            &names,
            &opts,
            &mut self.ledger,
            &mut |p, at| laps.push((p.to_string(), at)),
        )
        .await;
        // A restore that failed has no RTO: its gates stay unmeasured, so they fail.
        let restored = restored?;
        self.rto = Some((t0, vec![]));
        for (phase, at) in laps {
            self.lap_at(&phase, at);
        }
        let c = self.cluster.as_ref().expect("checked");
        let leader = c.leader().await.unwrap_or_default();
        self.restored = Some(Restored {
            old_cluster_id,
            members: names.clone(),
            loss: restored.loss,
            revisions: (last_revision - backup.status.revision).max(0),
        });
        Ok(format!(
            "{} members restored from {} (revision {}); leader {leader}",
            names.len(),
            restored.file.file_name(),
            backup.status.revision
        ))
    }

    /// The drill's `verify` step: everything the ledger says must be there is, and nothing
    /// else; after a restore, against the snapshot and what was written since.
    async fn verify(&mut self, i: usize) -> Result<String> {
        // The writer stops while the checks read: every value it wrote is then in the
        // ledger, so its key can be accounted for. A later fault step starts it again.
        self.stop_writer().await;
        let c = self
            .cluster
            .as_ref()
            .ok_or_else(|| Error::Failed("no cluster to verify".into()))?;
        let (old, members) = match &self.restored {
            Some(r) => (r.old_cluster_id, r.members.clone()),
            None => (
                self.initial_cluster_id,
                c.members.iter().map(|m| m.name.clone()).collect(),
            ),
        };
        let (acks, snapshot_revision) = self.ledger.expected_dataset();
        let harness = self.ledger.harness_view();
        let ds = self.dataset;
        let v = verify::verify(
            c,
            &Expected {
                dataset: &ds,
                acks: &acks,
                snapshot_revision,
                old_cluster_id: old,
                restored: self.restored.is_some(),
                members,
                harness: &harness,
            },
        )
        .await;
        let passed = v.passed();
        for ch in &v.checks {
            self.verified(i, ch);
        }
        if let Some(r) = &self.restored {
            self.rpo = Some(Rpo {
                writes: r.loss.total(),
                revisions: r.revisions,
                dataset_writes: r.loss.dataset_writes,
                harness_writes: r.loss.harness_writes,
            });
        }
        self.lap("verified");
        self.finish_rto();
        Ok(format!(
            "{} keys verified; {}",
            v.keys_verified,
            if passed {
                "all checks passed"
            } else {
                "checks FAILED"
            }
        ))
    }
}

/// What an `expect` step asks of an observation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Expectation {
    pub writable: Option<bool>,
    pub leader: Option<bool>,
    pub serializable_readers: Option<usize>,
    pub members_answering: Option<usize>,
}

/// One check per expectation set: (name, passed, what was expected and observed). Counts
/// are of members that were probed and answered, never of members believed up.
pub fn judge_expectation(
    want: &Expectation,
    obs: &observe::Observation,
) -> Vec<(&'static str, bool, String)> {
    let mut out = vec![];
    if let Some(w) = want.writable {
        let detail = match (w, obs.writable) {
            (false, true) => format!(
                "a write was acknowledged (by {}) although none should be",
                obs.acked_by.as_deref().unwrap_or("?")
            ),
            _ => format!(
                "writable: expected {w}, observed {} ({} attempt(s))",
                obs.writable, obs.attempts
            ),
        };
        out.push(("writable", w == obs.writable, detail));
    }
    if let Some(l) = want.leader {
        let detail = format!(
            "leader: expected {}, observed {:?}",
            if l { "one" } else { "none" },
            obs.leader
        );
        out.push(("leader", l == obs.leader.is_some(), detail));
    }
    if let Some(n) = want.serializable_readers {
        let readers = obs.serializable_readers();
        let detail = format!("expected {n}, observed {} {readers:?}", readers.len());
        out.push(("serializable-readers", n == readers.len(), detail));
    }
    if let Some(n) = want.members_answering {
        let answering = obs.answering();
        let detail = format!("expected {n}, observed {answering}");
        out.push(("members-answering", n == answering, detail));
    }
    out
}

fn short(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(12)
        .collect::<String>()
        .to_lowercase()
}

async fn run_once(
    docker: &Docker,
    loaded: &Loaded,
    seed: u64,
    repetition: u32,
    opts: &DrillOptions,
) -> DrillReport {
    let s = &loaded.scenario;
    let started_at_ms = now_ms();
    let mut r = Runner {
        docker,
        s,
        opts,
        t0: Instant::now(),
        cluster: None,
        injector: Injector::new(seed),
        dataset: Dataset {
            keys: *s.dataset.keys.get_ref(),
            value_size: *s.dataset.value_size.get_ref(),
            seed,
        },
        ledger: Ledger::default(),
        initial_cluster_id: 0,
        next_index: 0,
        snaps: vec![],
        restored: None,
        rto: None,
        rto_done: None,
        writer: None,
        max_write_gap_s: None,
        checks: vec![],
        probes: vec![],
        table: None,
        rpo: None,
        image: crate::cluster::image::tag_for(s.cluster.version.get_ref()),
        etcd_version: s.cluster.version.get_ref().clone(),
    };
    let progress = Progress::new(&s.name, s.steps.len(), opts.interactive);
    let mut steps = vec![];
    let mut error = None;
    // Steps are numbered from 1 in reports and progress, as people count them.
    for (i, step) in (1..).zip(s.steps.iter()) {
        let step = step.get_ref();
        progress.step(i, &step.title());
        let start_s = r.at();
        let result = tokio::select! {
            biased;
            _ = opts.cancel.cancelled() => Err(Error::Failed("interrupted by a signal".into())),
            res = r.step(i, step) => res,
        };
        let seconds = r.at() - start_s;
        let failed_checks = r.checks.iter().any(|c| c.step == i && !c.passed);
        let (ok, detail) = match result {
            Ok(d) => (!failed_checks, d),
            Err(e) => (false, e.to_string()),
        };
        progress.done(i, &step.title(), ok, seconds, &detail);
        let stop = !ok && !failed_checks;
        steps.push(StepRecord {
            index: i,
            kind: step.kind().into(),
            title: step.title(),
            start_s,
            seconds,
            ok,
            detail: detail.clone(),
        });
        if stop {
            error = Some(format!("step {i} ({}) failed: {detail}", step.title()));
            break;
        }
    }
    r.stop_writer().await;
    r.finish_rto();
    if let Some(c) = r.cluster.take()
        && let Err(e) = c.destroy().await
    {
        error.get_or_insert_with(|| format!("teardown failed: {e}"));
    }
    progress.finish();

    let gates = evaluate_gates(s, r.rto_done.as_ref(), r.rpo.as_ref(), r.max_write_gap_s);
    if error.is_none() && r.checks.is_empty() && gates.is_empty() {
        error = Some("no check or gate was evaluated: a pass needs evidence".into());
    }
    let verdict = if opts.cancel.is_cancelled() {
        INTERRUPTED
    } else {
        verdict(error.is_some(), &r.checks, &gates)
    };
    let t0_ms = started_at_ms as f64;
    let fault_events = r
        .injector
        .events
        .iter()
        .map(|e| FaultEventRecord {
            at_s: ((e.at_ms as f64) - t0_ms).max(0.0) / 1000.0,
            member: e.member.clone(),
            fault: serde_json::to_value(e.fault)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
            role: serde_json::to_value(e.role)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
        })
        .collect();
    DrillReport {
        schema_version: REPORT_SCHEMA_VERSION,
        scenario: s.name.clone(),
        description: s.description.clone(),
        file: loaded.path.clone(),
        seed,
        repetition,
        etcd_version: r.etcd_version,
        image: r.image,
        cluster_size: *s.cluster.size.get_ref(),
        tls: s.cluster.tls,
        started_at_ms,
        finished_at_ms: now_ms(),
        steps,
        fault_events,
        probes: r.probes,
        snapshots: r
            .snaps
            .iter()
            .map(|x| SnapshotRecord {
                name: x.name.clone(),
                file: x.backup.file.file_name(),
                revision: x.backup.status.revision,
                size: x.backup.file.size,
                sha256: x.backup.file.sha256.clone(),
                member: x.member.clone(),
                at_s: x.at_s,
            })
            .collect(),
        rto: r.rto_done,
        rpo: r.rpo,
        checks: r.checks,
        gates,
        table: r.table,
        verdict: verdict.into(),
        error,
    }
}

/// Pass only with evidence: no error, at least one check or gate, and all of them passed.
pub fn verdict(errored: bool, checks: &[CheckRecord], gates: &[GateResult]) -> &'static str {
    let evidence = !checks.is_empty() || !gates.is_empty();
    if !errored && evidence && checks.iter().all(|c| c.passed) && gates.iter().all(|g| g.passed) {
        "pass"
    } else {
        "fail"
    }
}

pub fn evaluate_gates(
    s: &Scenario,
    rto: Option<&Rto>,
    rpo: Option<&Rpo>,
    write_gap: Option<f64>,
) -> Vec<GateResult> {
    let mut g = vec![];
    let mut gate = |name: String, limit: f64, actual: Option<f64>| {
        g.push(GateResult {
            passed: actual.is_some_and(|a| a <= limit),
            name,
            limit,
            actual,
        });
    };
    if let Some(l) = &s.gates.max_rto_s {
        // An RTO is whole only once the restored cluster was verified; a part is no measure.
        let whole = rto.filter(|r| r.phases.iter().any(|p| p.name == "verified"));
        gate("max_rto_s".into(), *l.get_ref(), whole.map(|r| r.total_s));
    }
    for (phase, l) in &s.gates.max_phase_s {
        let actual = rto.and_then(|r| {
            r.phases
                .iter()
                .find(|p| &p.name == phase)
                .map(|p| p.seconds)
        });
        gate(format!("max_phase_s.{phase}"), *l.get_ref(), actual);
    }
    if let Some(l) = s.gates.max_rpo_writes {
        gate(
            "max_rpo_writes".into(),
            l as f64,
            rpo.map(|r| r.writes as f64),
        );
    }
    if let Some(l) = &s.gates.max_write_gap_s {
        gate("max_write_gap_s".into(), *l.get_ref(), write_gap);
    }
    g
}

/// Progress on a terminal (indicatif spinner) or plain lines for CI logs.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    scenario: String,
    total: usize,
}

impl Progress {
    fn new(scenario: &str, total: usize, interactive: bool) -> Self {
        let bar = interactive.then(|| {
            let b = indicatif::ProgressBar::new(total as u64);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {prefix} {pos}/{len} {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            b.set_prefix(scenario.to_string());
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        Progress {
            bar,
            scenario: scenario.into(),
            total,
        }
    }
    fn step(&self, i: usize, title: &str) {
        match &self.bar {
            Some(b) => {
                b.set_position(i.saturating_sub(1) as u64);
                b.set_message(title.to_string());
            }
            None => eprintln!("[{}] step {i}/{}: {title}", self.scenario, self.total),
        }
    }
    fn done(&self, i: usize, title: &str, ok: bool, secs: f64, detail: &str) {
        let line = format!(
            "[{}] step {}/{} {} {title} ({secs:.2}s): {detail}",
            self.scenario,
            i,
            self.total,
            if ok { "ok" } else { "FAILED" }
        );
        match &self.bar {
            Some(b) => b.println(line),
            None => eprintln!("{line}"),
        }
    }
    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// `reports/<UTC timestamp>-<scenario>[-rN]/` with every report file.
pub fn write_reports(dir: &Path, r: &DrillReport, repeat: u32) -> Result<PathBuf> {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let ts = time::OffsetDateTime::from_unix_timestamp((r.started_at_ms / 1000) as i64)
        .ok()
        .and_then(|t| t.format(fmt).ok())
        .unwrap_or_else(|| r.started_at_ms.to_string());
    let suffix = if repeat > 1 {
        format!("-r{}", r.repetition)
    } else {
        String::new()
    };
    let out = dir.join(format!("{ts}-{}{suffix}", r.scenario));
    std::fs::create_dir_all(&out).map_err(Error::io("creating the report directory", &out))?;
    let write = |name: &str, body: String| -> Result<()> {
        let p = out.join(name);
        std::fs::write(&p, body).map_err(Error::io("writing a report", &p))
    };
    write(
        "report.json",
        serde_json::to_string_pretty(r).expect("report serializes") + "\n",
    )?;
    write("summary.md", crate::render::summary_md(r))?;
    write(
        "junit.xml",
        crate::render::junit_xml(r)
            .map_err(|e| Error::Failed(format!("rendering junit.xml: {e}")))?,
    )?;
    write("report.html", crate::render::report_html(r))?;
    write("metrics.prom", crate::render::metrics_prom(r))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::observe::{MemberProbe, Observation};

    fn obs(writable: bool, leader: bool, readers: usize, answering: usize) -> Observation {
        Observation {
            writable,
            acked_by: writable.then(|| "etcd-1".into()),
            first_write_ms: writable.then_some(20),
            leader_seen_ms: None,
            leader: leader.then(|| "etcd-1".into()),
            members: (0..answering)
                .map(|i| MemberProbe {
                    member: format!("etcd-{}", i + 1),
                    answered: true,
                    linearizable_read: writable,
                    serializable_read: i < readers,
                    leader: None,
                    unreachable: None,
                })
                .collect(),
            elapsed_ms: 100,
            attempts: 1,
            writes: vec![],
        }
    }

    #[test]
    fn each_expectation_passes_when_it_holds_and_fails_when_it_does_not() {
        let o = obs(true, true, 3, 3);
        let cases = [
            (
                Expectation {
                    writable: Some(true),
                    ..Default::default()
                },
                true,
            ),
            (
                Expectation {
                    writable: Some(false),
                    ..Default::default()
                },
                false,
            ),
            (
                Expectation {
                    leader: Some(true),
                    ..Default::default()
                },
                true,
            ),
            (
                Expectation {
                    leader: Some(false),
                    ..Default::default()
                },
                false,
            ),
            (
                Expectation {
                    serializable_readers: Some(3),
                    ..Default::default()
                },
                true,
            ),
            (
                Expectation {
                    serializable_readers: Some(2),
                    ..Default::default()
                },
                false,
            ),
            (
                Expectation {
                    members_answering: Some(3),
                    ..Default::default()
                },
                true,
            ),
            (
                Expectation {
                    members_answering: Some(4),
                    ..Default::default()
                },
                false,
            ),
        ];
        for (want, pass) in cases {
            let got = judge_expectation(&want, &o);
            assert_eq!(got.len(), 1, "{want:?}");
            assert_eq!(got[0].1, pass, "{want:?}: {}", got[0].2);
        }
        // And the other way round: a cluster without quorum.
        let down = obs(false, false, 1, 2);
        let want = Expectation {
            writable: Some(false),
            leader: Some(false),
            serializable_readers: Some(1),
            members_answering: Some(2),
        };
        assert!(judge_expectation(&want, &down).iter().all(|c| c.1));
        let wrong = Expectation {
            writable: Some(true),
            leader: Some(true),
            serializable_readers: Some(2),
            members_answering: Some(3),
        };
        assert!(judge_expectation(&wrong, &down).iter().all(|c| !c.1));
    }

    #[test]
    fn an_rto_that_never_reached_verified_fails_its_gate() {
        let s = crate::model::scenario::parse(
            "t.toml",
            "name = \"t\"\n[cluster]\nsize = 1\n[gates]\nmax_rto_s = 60\n[[steps]]\nkind = \"wait\"\nseconds = 0\n",
        )
        .unwrap();
        let phase = |name: &str| PhaseRecord {
            name: name.into(),
            seconds: 1.0,
        };
        let partial = Rto {
            total_s: 2.0,
            phases: vec![phase("stop-survivors"), phase("restore")],
        };
        let g = evaluate_gates(&s, Some(&partial), None, None);
        assert!(!g[0].passed && g[0].actual.is_none(), "{g:?}");
        let whole = Rto {
            total_s: 3.0,
            phases: vec![phase("stop-survivors"), phase("restore"), phase("verified")],
        };
        let g = evaluate_gates(&s, Some(&whole), None, None);
        assert!(g[0].passed && g[0].actual == Some(3.0), "{g:?}");
        assert!(!evaluate_gates(&s, None, None, None)[0].passed);
    }

    #[test]
    fn no_evidence_is_no_pass() {
        assert_eq!(verdict(false, &[], &[]), "fail");
        let ok = CheckRecord {
            step: 1,
            name: "writable".into(),
            passed: true,
            detail: String::new(),
            seconds: None,
        };
        assert_eq!(verdict(false, std::slice::from_ref(&ok), &[]), "pass");
        assert_eq!(verdict(true, std::slice::from_ref(&ok), &[]), "fail");
        let bad = CheckRecord {
            passed: false,
            ..ok.clone()
        };
        assert_eq!(verdict(false, &[ok, bad], &[]), "fail");
    }
}
