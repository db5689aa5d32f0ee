//! The drill runner: a scenario's steps in order against real clusters, every expectation
//! and gate recorded, teardown whatever happens. A failed expectation is a result and the
//! drill goes on; an error (Docker, etcd refusing a step) stops the steps, and the run is
//! still torn down and reported.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bollard::Docker;

use crate::cluster::{Cluster, ClusterSpec, MemberState};
use crate::dataset::{self, AckLog, Dataset};
use crate::error::{Error, Result};
use crate::fault::{FaultKind, Injector, Target};
use crate::quorum::{self, ObserveOptions};
use crate::recovery;
use crate::report::*;
use crate::scenario::{Loaded, Scenario, Step};
use crate::snapshot::{self, RestoreOptions, SnapshotFile};
use crate::verify::{self, Expected};

#[derive(Debug, Clone)]
pub struct DrillOptions {
    pub seed: Option<u64>,
    pub repeat: Option<u32>,
    pub run_id: String,
    /// Show a spinner (terminals) instead of plain lines (CI).
    pub interactive: bool,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Runs a scenario `repeat` times; one report per run.
pub async fn run(docker: &Docker, loaded: &Loaded, opts: &DrillOptions) -> Vec<DrillReport> {
    let s = &loaded.scenario;
    let repeat = opts.repeat.unwrap_or(*s.repeat.get_ref()).max(1);
    let base_seed = opts.seed.or(s.seed).unwrap_or_else(Injector::random_seed);
    let mut out = vec![];
    for r in 1..=repeat {
        let seed = base_seed.wrapping_add(u64::from(r - 1));
        out.push(run_once(docker, loaded, seed, r, opts).await);
    }
    out
}

struct Snap {
    name: String,
    file: SnapshotFile,
    revision: i64,
    member: String,
    at_s: f64,
    cluster_id: u64,
}

struct Restored {
    revision: i64,
    old_cluster_id: u64,
    members: Vec<String>,
}

/// Writes every 50 ms through whichever members answer, remembering when writes were
/// acknowledged, to measure the longest stretch without one.
struct WriteMonitor {
    stop: Arc<std::sync::atomic::AtomicBool>,
    handle: tokio::task::JoinHandle<Duration>,
    endpoints: Arc<Mutex<Vec<String>>>,
}

impl WriteMonitor {
    fn start(cluster: &Cluster) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let endpoints = Arc::new(Mutex::new(answering(cluster)));
        let opts = cluster
            .connect_options()
            .with_timeout(Duration::from_millis(1000))
            .with_require_leader(true);
        let (s, e) = (stop.clone(), endpoints.clone());
        let handle = tokio::spawn(async move {
            let mut last_ack = Instant::now();
            let mut max_gap = Duration::ZERO;
            let mut i = 0usize;
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                let eps = e.lock().map(|g| g.clone()).unwrap_or_default();
                if !eps.is_empty() {
                    let url = eps[i % eps.len()].clone();
                    i += 1;
                    let ok = async {
                        let mut c = etcd_client::Client::connect([url], Some(opts.clone()))
                            .await
                            .ok()?;
                        c.put("/etcd-drill/writer", i.to_string(), None).await.ok()
                    }
                    .await
                    .is_some();
                    if ok {
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
        }
    }

    fn update(&self, cluster: &Cluster) {
        if let Ok(mut g) = self.endpoints.lock() {
            *g = answering(cluster);
        }
    }

    async fn finish(self) -> f64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle
            .await
            .map(|d| d.as_secs_f64())
            .unwrap_or(f64::INFINITY)
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
    acks: AckLog,
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
                self.acks.merge(log);
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
                let (_, status, _) = recovery::stage_snapshot(c, &file.path, false).await?;
                let cluster_id = recovery::cluster_id(c).await?;
                let name = name
                    .clone()
                    .unwrap_or_else(|| format!("snapshot-{}", self.snaps.len() + 1));
                let detail = format!(
                    "{} from {member}: revision {}, {} bytes",
                    file.file_name(),
                    status.revision,
                    file.size
                );
                let at_s = self.at();
                self.snaps.push(Snap {
                    name,
                    file,
                    revision: status.revision,
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
                let obs = quorum::observe(c, &format!("/etcd-drill/expect/{i}"), o).await;
                let readers: Vec<String> = obs
                    .serializable_readers()
                    .into_iter()
                    .map(String::from)
                    .collect();
                let answering = obs.members.iter().filter(|p| p.answered).count();
                self.probes.push(ProbeRecord {
                    at_s: self.at(),
                    step: i,
                    writable: obs.writable,
                    leader: obs.leader.clone(),
                    serializable_readers: readers.clone(),
                    first_write_ms: obs.first_write_ms,
                });
                if let Some(w) = writable {
                    let detail = match (w, obs.writable) {
                        (false, true) => format!(
                            "a write was acknowledged (by {}) although none should be",
                            obs.acked_by.clone().unwrap_or_default()
                        ),
                        _ => format!("writable: expected {w}, observed {}", obs.writable),
                    };
                    self.check(i, "writable", *w == obs.writable, detail);
                }
                if let Some(l) = leader {
                    self.check(
                        i,
                        "leader",
                        *l == obs.leader.is_some(),
                        format!(
                            "leader: expected {}, observed {:?}",
                            if *l { "one" } else { "none" },
                            obs.leader
                        ),
                    );
                }
                if let Some(n) = serializable_readers {
                    self.check(
                        i,
                        "serializable-readers",
                        *n == readers.len(),
                        format!("expected {n}, observed {} {readers:?}", readers.len()),
                    );
                }
                if let Some(n) = members_answering {
                    self.check(
                        i,
                        "members-answering",
                        *n == answering,
                        format!("expected {n}, observed {answering}"),
                    );
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
                if let Some(w) = self.writer.take() {
                    self.max_write_gap_s = Some(w.finish().await);
                }
                let snap = match snapshot {
                    Some(n) => self.snaps.iter().find(|s| &s.name == n),
                    None => self.snaps.last(),
                }
                .ok_or_else(|| Error::Failed("no snapshot to restore from".into()))?;
                let (path, revision, old_cluster_id) =
                    (snap.file.path.clone(), snap.revision, snap.cluster_id);
                // The disaster is declared: RTO runs from here.
                self.rto = Some((Instant::now(), vec![]));
                let c = self
                    .cluster
                    .as_mut()
                    .ok_or_else(|| Error::Failed("no cluster to restore".into()))?;
                for m in c.members.clone() {
                    if m.state == MemberState::Paused {
                        self.injector
                            .inject(c, FaultKind::Unpause, &Target::Member(m.index))
                            .await?;
                    }
                    if matches!(
                        m.state,
                        MemberState::Running | MemberState::Partitioned | MemberState::Paused
                    ) {
                        self.injector
                            .inject(c, FaultKind::Stop, &Target::Member(m.index))
                            .await?;
                    }
                }
                self.lap("stop-survivors");
                // The snapshot step read its revision already: check the file again (the
                // procedure re-checks the backup it restores from) and stage it.
                let (file, _) = recovery::check_snapshot(&path, false).await?;
                self.lap("snapshot-checked");
                let c = self.cluster.as_mut().expect("checked");
                let names = members
                    .clone()
                    .unwrap_or_else(|| c.members.iter().map(|m| m.name.clone()).collect());
                let opts = RestoreOptions {
                    skip_hash_check: false,
                    bump_revision: *bump_revision,
                };
                snapshot::check_restore_options(&c.image, &opts)?;
                let mut laps = vec![];
                let source = recovery::stage_source(c, &file.path).await?;
                recovery::restore_and_start(
                    c,
                    &source,
                    &file.file_name(),
                    &names,
                    &opts,
                    |p, at| laps.push((p.to_string(), at)),
                )
                .await?;
                for (phase, at) in laps {
                    self.lap_at(&phase, at);
                }
                let c = self.cluster.as_mut().expect("checked");
                recovery::first_write(c, Duration::from_secs(30)).await?;
                self.lap("first-write");
                let c = self.cluster.as_mut().expect("checked");
                c.wait_healthy(Duration::from_secs(30)).await?;
                let c = self.cluster.as_ref().expect("checked");
                let leader = c.leader().await.unwrap_or_default();
                self.restored = Some(Restored {
                    revision,
                    old_cluster_id,
                    members: names.clone(),
                });
                Ok(format!(
                    "{} members restored from {} (revision {revision}); leader {leader}",
                    names.len(),
                    file.file_name()
                ))
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
            Step::Verify {} => {
                let c = self
                    .cluster
                    .as_ref()
                    .ok_or_else(|| Error::Failed("no cluster to verify".into()))?;
                let (rev, old, members) = match &self.restored {
                    Some(r) => (r.revision, r.old_cluster_id, r.members.clone()),
                    // Nothing restored: every acknowledged write must be there; same cluster.
                    None => (
                        i64::MAX,
                        0,
                        c.members.iter().map(|m| m.name.clone()).collect(),
                    ),
                };
                let ds = self.dataset;
                let v = verify::verify(
                    c,
                    &Expected {
                        dataset: &ds,
                        acks: &self.acks,
                        snapshot_revision: rev,
                        old_cluster_id: old,
                        members,
                    },
                )
                .await;
                let passed = v.passed();
                for ch in &v.checks {
                    self.verified(i, ch);
                }
                if self.restored.is_some() {
                    self.rpo = Some(Rpo {
                        writes: v.rpo_writes,
                        revisions: v.rpo_revisions,
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
            Step::QuorumTable { sizes } => {
                let sizes = quorum::parse_sizes(sizes.as_deref().unwrap_or("1-9"))?;
                let o = quorum::SweepOptions {
                    version: self.s.cluster.version.get_ref().clone(),
                    seed: self.injector.seed,
                    run_id: self.opts.run_id.clone(),
                    observe: ObserveOptions::default(),
                    parallel: 5,
                };
                let t = quorum::sweep(self.docker, &sizes, &o).await?;
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
        acks: AckLog::default(),
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
        image: crate::image::tag_for(s.cluster.version.get_ref()),
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
        let result = r.step(i, step).await;
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
    if let Some(w) = r.writer.take() {
        r.max_write_gap_s = Some(w.finish().await);
    }
    r.finish_rto();
    if let Some(c) = r.cluster.take()
        && let Err(e) = c.destroy().await
    {
        error.get_or_insert_with(|| format!("teardown failed: {e}"));
    }
    progress.finish();

    let gates = evaluate_gates(s, r.rto_done.as_ref(), r.rpo.as_ref(), r.max_write_gap_s);
    let verdict =
        if error.is_none() && r.checks.iter().all(|c| c.passed) && gates.iter().all(|g| g.passed) {
            "pass"
        } else {
            "fail"
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
                file: x.file.file_name(),
                revision: x.revision,
                size: x.file.size,
                sha256: x.file.sha256.clone(),
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
        gate("max_rto_s".into(), *l.get_ref(), rto.map(|r| r.total_s));
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
