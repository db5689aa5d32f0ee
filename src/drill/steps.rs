//! One function per step kind. Each returns the step's detail line when it ran (the
//! expectations inside may still have failed); an error stops the drill.

use std::time::Duration;

use super::exec;
use super::gates::{Expectation, judge_expectation};
use super::monitor::WriteMonitor;
use super::restore::expectations;
use super::runner::{Runner, Snap, need};
use crate::backup::dataset;
use crate::backup::ledger::HARNESS_PREFIX;
use crate::backup::record::{Backup, record_backup};
use crate::backup::snapshot;
use crate::backup::source::local_newest;
use crate::backup::verify::{self, Expected};
use crate::chaos::observe::{self, ObserveOptions};
use crate::cluster::tools::host_tools;
use crate::error::{Error, Result};
use crate::model::fault::{FaultKind, Target};
use crate::model::report::{
    Check, ProbeRecord, Rpo, RtoPhase, SnapshotLag, SnapshotRecord, TableRow, snapshot_lag,
};
use crate::model::scenario::Step;
use crate::model::table::parse_sizes;
use crate::procedures::quorum_table::{self, SweepOptions};
use crate::procedures::recover::cluster_id;

/// What a step's line says of a snapshot's lag (nothing when it caught up).
fn lag_words(lag: Option<SnapshotLag>) -> String {
    lag.map_or(String::new(), |l| {
        format!(
            "; {} revisions ({} dataset keys) behind the last acknowledged write",
            l.revisions, l.keys
        )
    })
}

/// The `member` of a snapshot the user's backup command wrote.
const COMMAND_MEMBER: &str = "backup command";

impl Runner<'_> {
    /// Runs step `i` (numbered from 1).
    pub(super) async fn step(&mut self, i: usize, step: &Step) -> Result<String> {
        match step {
            Step::Load { keys } => self.load(keys.unwrap_or(self.dataset.keys)).await,
            Step::Snapshot {
                name,
                command: Some(command),
                timeout_s,
                ..
            } => {
                let t = timeout_s.unwrap_or(exec::DEFAULT_TIMEOUT_S);
                self.snapshot_by_command(i, name.clone(), command, t).await
            }
            Step::Snapshot { name, from, .. } => self.snapshot(name.clone(), from.as_deref()).await,
            Step::Exec { command, timeout_s } => {
                let t = timeout_s.unwrap_or(exec::DEFAULT_TIMEOUT_S);
                self.exec(i, command, t).await
            }
            Step::Fault { fault, target } => {
                let target: Target = target.as_deref().unwrap_or("random").parse()?;
                let hit = self.fault(*fault, &target).await?;
                Ok(format!("{} on {}", step.title(), hit.join(", ")))
            }
            Step::Expect {
                writable,
                leader,
                serializable_readers,
                members_answering,
                window_ms,
            } => {
                let want = Expectation {
                    writable: *writable,
                    leader: *leader,
                    serializable_readers: *serializable_readers,
                    members_answering: *members_answering,
                };
                self.expect(i, &want, *window_ms).await
            }
            Step::Heal {} => self.heal().await,
            Step::Wait { seconds } => {
                tokio::time::sleep(Duration::from_secs_f64(*seconds)).await;
                Ok(format!("waited {seconds}s"))
            }
            Step::Restore {
                source: Some(src),
                members,
                bump_revision,
                backup,
                ..
            } => {
                let expect = backup
                    .as_ref()
                    .map(expectations)
                    .transpose()?
                    .unwrap_or_default();
                self.restore_source(i, src, expect, members.as_deref(), *bump_revision)
                    .await
            }
            Step::Restore {
                snapshot,
                members,
                bump_revision,
                ..
            } => {
                self.restore(snapshot.as_deref(), members.as_deref(), *bump_revision)
                    .await
            }
            Step::ReplaceMember { member } => self.replace_member(i, member).await,
            Step::Verify {} => self.verify(i).await,
            Step::QuorumTable { sizes } => self.quorum_table(i, sizes.as_deref()).await,
        }
    }

    async fn load(&mut self, n: usize) -> Result<String> {
        let (from, to) = (self.next_index, self.next_index + n);
        let ds = self.dataset;
        let c = self.cluster().await?;
        let leader = c
            .leader()
            .await
            .ok_or_else(|| Error::Failed("no leader to load data through".into()))?;
        let m = c.member(&leader).expect("leader is a member").clone();
        let client = c.client(&m).await?;
        let log = dataset::load(&client, &m.name, &ds, from..to, 16).await?;
        let rev = log.max_revision();
        self.ledger.record_dataset(log);
        self.next_index = to;
        Ok(format!(
            "{n} keys written through {leader}, up to revision {rev}"
        ))
    }

    async fn snapshot(&mut self, name: Option<String>, from: Option<&str>) -> Result<String> {
        let target: Target = from.unwrap_or("follower").parse()?;
        let acked = self.acknowledged_so_far();
        let c = &*need(&mut self.cluster, "snapshot")?;
        let member = match self.injector.resolve(c, &target, FaultKind::Kill).await {
            Ok(mut v) => v.remove(0),
            Err(_) if from.is_none() => c
                .leader()
                .await
                .ok_or_else(|| Error::Failed("no member to snapshot from".into()))?,
            Err(e) => return Err(e),
        };
        let m = c.member(&member).expect("resolved").clone();
        let applied = snapshot::caught_up(c, &m, acked, snapshot::CATCH_UP).await;
        let file = snapshot::save(c, &m, &c.run_dir.join("snapshots")).await?;
        // The sha256 recorded now is what the restore step checks the file against.
        let backup = record_backup(c, file, false, self.ledger.era()).await?;
        let cluster_id = cluster_id(c).await?;
        let name = name.unwrap_or_else(|| format!("snapshot-{}", self.snaps.len() + 1));
        let lag = snapshot_lag(acked, backup.status.revision, || {
            self.ledger.dataset_after(backup.status.revision)
        });
        let behind = match lag {
            Some(_) => format!(
                "{} after {:.0} s of waiting (applied {})",
                lag_words(lag),
                snapshot::CATCH_UP.as_secs_f64(),
                applied.map_or("unknown".into(), |r| r.to_string())
            ),
            None => String::new(),
        };
        let detail = format!(
            "{} from {member}: revision {}, {} bytes{behind}",
            backup.file.file_name(),
            backup.status.revision,
            backup.file.size
        );
        self.keep_snapshot(name, member, backup, cluster_id, lag);
        Ok(detail)
    }

    /// What a snapshot must hold: the last revision acknowledged before the step began (the
    /// writer's writes are not in the ledger until it stops).
    fn acknowledged_so_far(&self) -> i64 {
        let writer = self.writer.as_ref().map_or(0, |w| w.last_acknowledged());
        self.ledger.last_revision().max(writer)
    }

    /// A snapshot taken, as the report lists it and as the restore will check it.
    fn keep_snapshot(
        &mut self,
        name: String,
        member: String,
        backup: Backup,
        cluster_id: u64,
        lag: Option<SnapshotLag>,
    ) {
        let record = SnapshotRecord {
            name,
            file: backup.file.file_name(),
            revision: backup.status.revision,
            size: backup.file.size,
            sha256: backup.file.sha256.clone(),
            member,
            at_s: self.at(),
            lag,
        };
        self.snaps.push(Snap {
            record,
            backup,
            cluster_id,
        });
    }

    /// The user's backup command, then the file it wrote, recorded as a snapshot like any.
    async fn snapshot_by_command(
        &mut self,
        i: usize,
        name: Option<String>,
        command: &str,
        timeout_s: f64,
    ) -> Result<String> {
        let acked = self.acknowledged_so_far();
        let c = &*need(&mut self.cluster, "snapshot")?;
        // The command is given one endpoint, the first member that answers: it must have
        // applied what was acknowledged, or the user's backup misses it by our doing (a
        // run saw the file 128 dataset keys short of a load through another member).
        if let Some(m) = c.members.iter().find(|m| m.state.answers_clients()) {
            snapshot::caught_up(c, m, acked, snapshot::CATCH_UP).await;
        }
        let dir = exec::snapshot_dir_for(c, i)?;
        let tools = host_tools(c.docker(), &c.image, c.labels(&[])).await?;
        let env = exec::environment(c, &tools, &dir, exec::Endpoints::One);
        let ran = exec::run(command, &env, timeout_s).await?;
        if !ran.ok() {
            return Err(Error::Failed(format!(
                "the backup command failed: {}",
                ran.detail(timeout_s)
            )));
        }
        let (path, _) = local_newest(&dir, &dir.display().to_string()).map_err(|e| {
            Error::Failed(format!(
                "the backup command succeeded but left no snapshot in $ETCD_DRILL_SNAPSHOT_DIR ({}): {e}",
                dir.display()
            ))
        })?;
        let (file, _) = crate::backup::record::check_snapshot(&path, false).await?;
        let backup = record_backup(c, file, false, self.ledger.era()).await?;
        let cluster_id = cluster_id(c).await?;
        let name = name.unwrap_or_else(|| format!("snapshot-{}", self.snaps.len() + 1));
        let lag = snapshot_lag(acked, backup.status.revision, || {
            self.ledger.dataset_after(backup.status.revision)
        });
        let behind = lag_words(lag);
        let detail = format!(
            "{} written by the backup command in {:.2}s: revision {}, {} bytes{behind}",
            backup.file.file_name(),
            ran.seconds,
            backup.status.revision,
            backup.file.size
        );
        self.keep_snapshot(name, COMMAND_MEMBER.into(), backup, cluster_id, lag);
        Ok(detail)
    }

    /// A command of the user's, on the host, against this cluster: its exit code is a check.
    async fn exec(&mut self, i: usize, command: &str, timeout_s: f64) -> Result<String> {
        let c = self.cluster().await?;
        let dir = c.run_dir.join("snapshots");
        std::fs::create_dir_all(&dir)
            .map_err(Error::io("creating the snapshot directory", &dir))?;
        let tools = host_tools(c.docker(), &c.image, c.labels(&[])).await?;
        let env = exec::environment(c, &tools, &dir, exec::Endpoints::All);
        let ran = exec::run(command, &env, timeout_s).await?;
        let detail = ran.detail(timeout_s);
        let mut check = Check::new("exec", ran.ok(), detail.clone());
        check.seconds = Some(ran.seconds);
        self.check(i, check);
        Ok(detail)
    }

    /// Injects a fault; the background writer starts with the first one, to measure the
    /// longest stretch without an acknowledged write while faults are in play.
    async fn fault(&mut self, fault: FaultKind, target: &Target) -> Result<Vec<String>> {
        self.cluster().await?;
        if self.writer.is_none() {
            self.writer = Some(WriteMonitor::start(self.started("fault")?));
        }
        let c = self.cluster.as_mut().expect("started");
        let hit = self.injector.inject(c, fault, target).await?;
        self.update_writer();
        Ok(hit)
    }

    async fn expect(
        &mut self,
        i: usize,
        want: &Expectation,
        window_ms: Option<u64>,
    ) -> Result<String> {
        let mut o = ObserveOptions::default();
        if let Some(w) = window_ms {
            o.window = Duration::from_millis(w);
        }
        let key = format!("{HARNESS_PREFIX}expect/{i}");
        let obs = observe::observe(self.started("observe")?, &key, o).await;
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
        self.found.probes.push(ProbeRecord {
            at_s: self.at(),
            step: i,
            writable: obs.writable,
            leader: obs.leader.clone(),
            serializable_readers: readers.clone(),
            first_write_ms: obs.first_write_ms,
        });
        for (name, passed, detail) in judge_expectation(want, &obs) {
            self.check(i, Check::new(name, passed, detail));
        }
        Ok(format!(
            "writable {}, leader {}, {} serializable readers",
            obs.writable,
            obs.leader.as_deref().unwrap_or("none"),
            readers.len()
        ))
    }

    /// Undoes every transient fault: unpause, heal partitions, restart what is down.
    async fn heal(&mut self) -> Result<String> {
        let c = need(&mut self.cluster, "heal")?;
        let healed = self.injector.heal_all(c).await?;
        // A step after heal must see a cluster that is healthy again, not one whose
        // restarted members are still replaying their logs.
        let c = self.cluster.as_mut().expect("started");
        c.wait_settled(Duration::from_secs(60)).await?;
        self.update_writer();
        Ok(format!(
            "healed {}",
            if healed.is_empty() {
                "nothing".to_string()
            } else {
                healed.join(", ")
            }
        ))
    }

    /// etcd's runtime reconfiguration, then HashKV to show the new member caught up.
    async fn replace_member(&mut self, i: usize, member: &str) -> Result<String> {
        let c = self.started("reconfigure")?;
        let new = c.replace_member(member).await?;
        let hk = verify::verify_hashkv(c).await;
        for ch in hk.checks {
            self.check(i, ch);
        }
        Ok(format!("{member} replaced by {new}"))
    }

    /// Everything the ledger says must be there is, and nothing else; after a restore,
    /// against the snapshot and what was written since.
    async fn verify(&mut self, i: usize) -> Result<String> {
        // The writer stops while the checks read: every value it wrote is then in the
        // ledger, so its key can be accounted for. A later fault step starts it again.
        self.stop_writer().await;
        if self.restored.as_ref().is_some_and(|r| r.foreign.is_some()) {
            return self.verify_foreign(i).await;
        }
        let c = need(&mut self.cluster, "verify")?;
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
        let c = self.cluster.as_ref().expect("started");
        let expected = Expected {
            dataset: &ds,
            acks: &acks,
            snapshot_revision,
            old_cluster_id: old,
            restored: self.restored.is_some(),
            members,
            harness: &harness,
        };
        let v = verify::verify(c, &expected).await;
        let passed = v.passed();
        for ch in v.checks {
            self.check(i, ch);
        }
        if let Some(r) = &self.restored {
            self.found.rpo = Some(Rpo {
                writes: r.loss.total(),
                revisions: r.revisions,
                dataset_writes: r.loss.dataset_writes,
                harness_writes: r.loss.harness_writes,
            });
        }
        self.lap(RtoPhase::Verified);
        self.finish_rto();
        // Outside the RTO: what the restore did to what the workload's clients were told.
        let passed = self.check_across_restore(i).await && passed;
        let outcome = if passed {
            "all checks passed"
        } else {
            "checks FAILED"
        };
        Ok(format!("{} keys verified; {outcome}", v.keys_verified))
    }

    /// The fault-tolerance table, in clusters of its own.
    async fn quorum_table(&mut self, i: usize, sizes: Option<&str>) -> Result<String> {
        let sizes = parse_sizes(sizes.unwrap_or("1-9"))?;
        let o = SweepOptions {
            version: self.s.cluster.version.get_ref().clone(),
            seed: self.injector.seed,
            run_id: self.opts.run_id.clone(),
            observe: ObserveOptions::default(),
            parallel: 5,
        };
        let t = quorum_table::sweep(self.docker, &sizes, &o).await?;
        self.etcd_version = t.etcd_version.clone();
        let bad = t.disagreements().len();
        let cells: usize = t.sizes.iter().map(|s| s.cells.len()).sum();
        let detail = format!("{cells} cells observed, {bad} disagree with the table");
        self.check(i, Check::new("fault-tolerance-table", bad == 0, detail));
        let rows = t.sizes.iter().map(|s| TableRow {
            size: s.size,
            majority: s.majority,
            tolerance: s.tolerance,
            cells: s
                .cells
                .iter()
                .map(|c| (c.failed, c.predicted_writable, c.observed_writable))
                .collect(),
        });
        self.found.table = Some(rows.collect());
        Ok(format!(
            "{cells} cells, {bad} disagree, {:.1}s",
            t.elapsed_s
        ))
    }
}
