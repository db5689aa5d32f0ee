//! The state one run carries from step to step, and the bookkeeping every step shares.

use std::time::Instant;

use bollard::Docker;

use super::DrillOptions;
use super::monitor::WriteMonitor;
use crate::backup::dataset::Dataset;
use crate::backup::ledger::{Ledger, Loss};
use crate::backup::record::Backup;
use crate::chaos::fault::Injector;
use crate::chaos::workload::Workload;
use crate::cluster::{Cluster, ClusterSpec};
use crate::error::{Error, Result};
use crate::model::expect::{BackupFacts, Expectations};
use crate::model::history::OpKind;
use crate::model::history::Record;
use crate::model::linearize::HistoryReport;
use crate::model::report::{
    Check, CheckRecord, ProbeRecord, Rpo, Rto, RtoPhase, SnapshotRecord, TableRow,
};
use crate::model::report::{WriteWindow, ack_gaps, write_windows};
use crate::model::scenario::Scenario;
use crate::procedures::recover::{Stopwatch, cluster_id};

/// A snapshot a step took: as reported, and as recorded for the restore to check.
pub(super) struct Snap {
    pub record: SnapshotRecord,
    /// The file as it was recorded when taken; the restore proves it is still those bytes.
    pub backup: Backup,
    pub cluster_id: u64,
}

/// What the last restore did, for the verify step after it.
pub(super) struct Restored {
    pub old_cluster_id: u64,
    pub members: Vec<String>,
    /// What the restore lost, and the revisions between the snapshot and the last write.
    pub loss: Loss,
    pub revisions: i64,
    /// The snapshot's revision, the revision of the first write after the restore, and
    /// the bump it was restored with: what the workload's history is held to.
    pub snapshot_revision: i64,
    pub revision_after: i64,
    pub bumped: Option<u64>,
    /// A backup of the user's, whose content only it knows: checked against itself and
    /// against what the step expects of it, not against the ledger.
    pub foreign: Option<Foreign>,
}

pub(super) struct Foreign {
    pub facts: BackupFacts,
    pub expect: Expectations,
}

/// What a run measured and found, for its report.
#[derive(Default)]
pub(super) struct Findings {
    pub checks: Vec<CheckRecord>,
    pub probes: Vec<ProbeRecord>,
    pub table: Option<Vec<TableRow>>,
    pub rpo: Option<Rpo>,
    pub rto: Option<Rto>,
    pub max_write_gap_s: Option<f64>,
    pub write_windows: Vec<WriteWindow>,
    /// What the workload's clients saw, and its check.
    pub history: Vec<Record>,
    pub history_check: Option<HistoryReport>,
    /// The workload's history against the restore that followed it.
    pub across: Option<crate::model::across::AcrossRestore>,
    /// The last backup of the user's that a verify step checked.
    pub backup: Option<BackupFacts>,
}

pub(super) struct Runner<'a> {
    pub docker: &'a Docker,
    pub s: &'a Scenario,
    pub opts: &'a DrillOptions,
    pub t0: Instant,
    pub cluster: Option<Cluster>,
    pub injector: Injector,
    pub dataset: Dataset,
    /// Every acknowledged write, across restores: what must be in the cluster.
    pub ledger: Ledger,
    /// The cluster ID as started; a verify without a restore expects it unchanged.
    pub initial_cluster_id: u64,
    /// The next dataset index a load writes.
    pub next_index: usize,
    pub snaps: Vec<Snap>,
    pub restored: Option<Restored>,
    /// The RTO being timed, from the disaster declared until verified.
    pub rto: Option<Stopwatch>,
    pub writer: Option<WriteMonitor>,
    /// The `[workload]` clients while they run; `workload_done` once they have stopped
    /// (they run once per repetition, until the first restore or verify).
    pub workload: Option<Workload>,
    pub workload_done: bool,
    pub seed: u64,
    pub found: Findings,
    pub image: String,
    pub etcd_version: String,
}

impl<'a> Runner<'a> {
    pub fn new(docker: &'a Docker, s: &'a Scenario, opts: &'a DrillOptions, seed: u64) -> Self {
        Runner {
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
            writer: None,
            workload: None,
            workload_done: false,
            seed,
            found: Findings::default(),
            image: crate::cluster::image::tag_for(s.cluster.version.get_ref()),
            etcd_version: s.cluster.version.get_ref().clone(),
        }
    }

    /// Seconds since the run started.
    pub fn at(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    /// The scenario's cluster, started on first use.
    pub async fn cluster(&mut self) -> Result<&mut Cluster> {
        if self.cluster.is_none() {
            let mut spec = ClusterSpec::new(*self.s.cluster.size.get_ref());
            spec.version = self.s.cluster.version.get_ref().clone();
            spec.tls = self.s.cluster.tls;
            spec.run_id = self.opts.run_id.clone();
            spec.etcd_args = self.s.cluster.etcd_args.get_ref().clone();
            spec.image = self.s.cluster.image.clone();
            spec.name = format!(
                "drill-{}-{:04x}",
                short(&self.s.name),
                rand::random::<u16>()
            );
            let c = Cluster::start(self.docker, spec).await?;
            self.initial_cluster_id = cluster_id(&c).await?;
            self.image = c.image.tag.clone();
            self.etcd_version = c.image.version.clone();
            self.cluster = Some(c);
        }
        Ok(self.cluster.as_mut().expect("just created"))
    }

    /// The cluster a step needs to exist already (`what` it would be done to, for the error).
    pub fn started(&mut self, what: &str) -> Result<&mut Cluster> {
        need(&mut self.cluster, what)
    }

    pub fn lap(&mut self, phase: RtoPhase) {
        if let Some(rto) = self.rto.as_mut() {
            rto.lap(phase);
        }
    }

    /// Ends the RTO being timed, if any, and keeps it for the report.
    pub fn finish_rto(&mut self) {
        if let Some(clock) = self.rto.take() {
            self.found.rto = Some(Rto {
                total_s: clock.total(),
                start_s: Some(
                    clock
                        .started
                        .saturating_duration_since(self.t0)
                        .as_secs_f64(),
                ),
                phases: clock.phases,
            });
        }
    }

    pub fn check(&mut self, step: usize, check: Check) {
        self.found.checks.push(CheckRecord { step, check });
    }

    /// Stops the background writer, if it runs, keeping the longest stretch without an
    /// acknowledged write seen so far — counting the workload's writes too, so the writes
    /// lane never says "nothing acknowledged" while a client lane shows acknowledgements.
    pub async fn stop_writer(&mut self) {
        if let Some(w) = self.writer.take() {
            let Some(run) = w.finish(&mut self.ledger).await else {
                // The writer died: its gap is unknown, which the gate must not pass.
                self.found.max_write_gap_s = Some(f64::INFINITY);
                return;
            };
            let at = |i: Instant| i.saturating_duration_since(self.t0).as_secs_f64();
            let mut acks: Vec<f64> = run.acks.iter().map(|&i| at(i)).collect();
            // The workload has stopped by now (it stops before a restore or verify, and
            // at the end before the writer), so its history is complete.
            acks.extend(workload_acks(&self.found.history));
            let (from, to) = (at(run.started), at(run.ended));
            let (gap, gaps) = ack_gaps(from, to, &acks);
            let max = &mut self.found.max_write_gap_s;
            *max = Some(max.map_or(gap, |g| g.max(gap)));
            self.found
                .write_windows
                .extend(write_windows(from, to, &gaps));
        }
    }

    /// Tells the background writer which members answer now.
    pub fn update_writer(&self) {
        if let (Some(w), Some(c)) = (&self.writer, &self.cluster) {
            w.update(c);
        }
    }
}

/// The cluster a step needs to exist already; a free function so a step can borrow other
/// fields of the runner beside it.
pub(super) fn need<'c>(cluster: &'c mut Option<Cluster>, what: &str) -> Result<&'c mut Cluster> {
    cluster
        .as_mut()
        .ok_or_else(|| Error::Failed(format!("no cluster to {what}")))
}

/// A scenario name cut to fit a cluster name.
fn short(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(12)
        .collect::<String>()
        .to_lowercase()
}

/// When the workload's writes were acknowledged (seconds on the run's clock; the history
/// is in microseconds on it): puts, deletes and compare-and-sets that returned — a cas
/// whose compare failed went through consensus all the same.
pub(super) fn workload_acks(history: &[Record]) -> impl Iterator<Item = f64> + '_ {
    history
        .iter()
        .filter(|r| matches!(r.op, OpKind::Put | OpKind::Delete | OpKind::Cas))
        .filter_map(|r| r.ret.map(|t| t as f64 / 1e6))
}
