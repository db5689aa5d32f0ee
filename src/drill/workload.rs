//! The `[workload]` of a drill: its clients start once the cluster is up and stop before
//! the first restore or verify (a restore rolls data back by design, which no
//! linearizable history contains); their history is then checked and becomes a check.

use std::time::Duration;

use super::runner::Runner;
use crate::chaos::workload::{self, Workload, WorkloadSpec};
use etcd_client::{GetOptions, WatchOptions};

use crate::cluster::Cluster;
use crate::model::across::{self, AfterRestore, Found};
use crate::model::history::Record;
use crate::model::history::World;
use crate::model::linearize::{self, HistoryReport, Linearizability, Model};
use crate::model::report::Check;
use crate::model::scenario::{SelfTest, StepKind};

/// How long the history check may search before it says "unknown" (a failed check).
const CHECK_LIMIT: Duration = Duration::from_secs(60);

impl Runner<'_> {
    /// Starts the clients once the cluster exists, if the scenario has a workload.
    pub(super) fn start_workload(&mut self) {
        let (Some(w), Some(c)) = (&self.s.workload, &self.cluster) else {
            return;
        };
        if self.workload.is_some() || self.workload_done {
            return;
        }
        let spec = WorkloadSpec {
            clients: *w.clients.get_ref(),
            keys: *w.keys.get_ref(),
            rate: *w.rate.get_ref(),
            request_timeout: Duration::from_millis(w.request_timeout_ms),
            watchers: *w.watchers.get_ref(),
            seed: self.seed,
            stale_reads_self_test: w.self_test == Some(SelfTest::StaleReads),
        };
        self.workload = Some(Workload::start(c, &spec, self.t0));
    }

    /// Whether the workload must stop before a step of this kind.
    pub(super) fn stops_workload(kind: StepKind) -> bool {
        matches!(kind, StepKind::Restore | StepKind::Verify)
    }

    /// Stops the clients, accounts their writes in the ledger and records the history
    /// check (and the rate precondition) as checks of step `i`.
    pub(super) async fn stop_workload(&mut self, i: usize) {
        let Some(w) = self.workload.take() else {
            return;
        };
        self.workload_done = true;
        let Some(rec) = w.finish().await else {
            let why = "a workload client died: its history is incomplete and cannot be checked";
            self.check(i, Check::new("workload-history", false, why));
            return;
        };
        workload::account(&rec.history, &mut self.ledger);
        let spec = self.s.workload.as_ref().expect("a workload ran");
        let rate = format!("{:.0} ops/s over {:.1} s", rec.rate, rec.seconds);
        if let Some(c) = rate_check(rec.rate, rec.seconds, spec.min_rate()) {
            self.check(i, c);
        }
        let history = rec.history;
        let checked = tokio::task::spawn_blocking(move || {
            let c = linearize::check(&history, Model::Etcd, World::Open, CHECK_LIMIT);
            (c, history)
        })
        .await;
        let Ok((c, history)) = checked else {
            self.check(
                i,
                Check::new("workload-history", false, "the history check panicked"),
            );
            return;
        };
        let mut detail = format!(
            "{}: {} operations ({} of unknown outcome) on {} keys, {rate}, etcd model (open world: the harness's own writes to other keys are not in the history)",
            c.verdict.as_str(),
            c.operations,
            c.unknown_outcomes,
            c.keys
        );
        if let Some(w) = &c.window {
            let stuck: Vec<String> = w
                .stuck
                .iter()
                .map(|&j| crate::render::history_op_text(&history[j]))
                .collect();
            detail.push_str(&format!("; key {}: {}", w.key, stuck.join("; ")));
        }
        if let Some(p) = c.revision_problems.first() {
            detail.push_str(&format!("; {p}"));
        }
        if let Some(why) = &c.undecided {
            detail.push_str(&format!("; {why}"));
        }
        // Zero operations prove nothing: not a pass.
        let passed = c.verdict == Linearizability::Linearizable && c.operations > 0;
        self.check(i, Check::new("workload-history", passed, detail));
        let expect_reads = spec.self_test.is_none();
        let expect_watch = *spec.watchers.get_ref() > 0;
        for check in guarantee_checks(&c, expect_reads, expect_watch) {
            self.check(i, check);
        }
        self.found.history_check = Some(HistoryReport::new(c, &history, rec.rate, rec.seconds));
        self.found.history.extend(history);
    }
}

impl Runner<'_> {
    /// After a restore from a snapshot of this run, the workload's history is held to
    /// it (`model::across`): the state at the snapshot back, later writes lost, and the
    /// revision against the highest one clients saw. Once per run; `true` when there is
    /// nothing to check or it passed.
    pub(super) async fn check_across_restore(&mut self, i: usize) -> bool {
        let Some(r) = self.restored.as_ref().filter(|r| r.foreign.is_none()) else {
            return true;
        };
        if self.found.history.is_empty() || self.found.across.is_some() {
            return true;
        }
        let (snapshot_revision, revision, bumped) =
            (r.snapshot_revision, r.revision_after, r.bumped);
        let c = self.cluster.as_ref().expect("restored");
        let observed = observe_restored(
            c,
            self.found.history.iter().filter_map(seen_revision).max(),
            bumped,
        )
        .await;
        let (found, old_watch_compacted) = match observed {
            Ok(o) => o,
            Err(e) => {
                let why = format!("reading the workload's keys after the restore failed: {e}");
                self.check(i, Check::new("workload-across-restore", false, why));
                return false;
            }
        };
        let after = AfterRestore {
            snapshot_revision,
            found,
            revision,
            bumped,
            old_watch_compacted,
        };
        let a = across::check(&self.found.history, &after);
        let mut detail = format!(
            "{} acknowledged workload writes at or below the snapshot's revision {snapshot_revision} kept, {} after it lost (the RPO in operations); revision {} after the restore against {} seen before",
            a.kept_writes, a.lost_writes, a.revision_after, a.highest_seen
        );
        if a.went_back_by > 0 {
            detail.push_str(&format!(
                ": it went back by {} (a Kubernetes watch cache breaks on that; restore with bump_revision)",
                a.went_back_by
            ));
        }
        if let Some(p) = a.problems.first() {
            detail = format!("{} problems; first: {p}; {detail}", a.problems.len());
        }
        let passed = a.passed();
        self.check(i, Check::new("workload-across-restore", passed, detail));
        if let Some(h) = self.found.history_check.as_mut() {
            h.across = Some(a.clone());
        }
        self.found.across = Some(a);
        passed
    }
}

fn seen_revision(r: &Record) -> Option<i64> {
    r.output.as_ref()?.revision
}

/// The workload's keys as the restored cluster has them, and, after a bump, whether a
/// watch from the highest revision clients saw is refused as compacted.
async fn observe_restored(
    c: &Cluster,
    highest_seen: Option<i64>,
    bumped: Option<u64>,
) -> std::result::Result<(Vec<Found>, Option<bool>), String> {
    let member = c.members.first().ok_or("the cluster has no members")?;
    let mut client = c.client(member).await.map_err(|e| e.to_string())?;
    let prefix = workload::workload_prefix();
    let got = client
        .get(prefix.as_str(), Some(GetOptions::new().with_prefix()))
        .await
        .map_err(|e| e.to_string())?;
    let found = got
        .kvs()
        .iter()
        .map(|kv| Found {
            key: String::from_utf8_lossy(kv.key()).into_owned(),
            value: String::from_utf8_lossy(kv.value()).into_owned(),
            mod_revision: kv.mod_revision(),
        })
        .collect();
    let (Some(_), Some(from)) = (bumped, highest_seen) else {
        return Ok((found, None));
    };
    let opts = WatchOptions::new().with_prefix().with_start_revision(from);
    let mut stream = client
        .watch(prefix.as_str(), Some(opts))
        .await
        .map_err(|e| e.to_string())?;
    // etcd answers a compacted start at once; anything else within 3 s is a "no".
    let compacted = tokio::time::timeout(Duration::from_secs(3), async {
        while let Ok(Some(resp)) = stream.message().await {
            if resp.compact_revision() > 0 {
                return true;
            }
            if !resp.events().is_empty() {
                return false;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    Ok((found, Some(compacted)))
}

/// Serializable reads and watches, each against its own guarantee; a workload that has
/// them and produced no evidence of either fails that check.
fn guarantee_checks(c: &linearize::HistoryCheck, reads: bool, watch: bool) -> Vec<Check> {
    let mut out = vec![];
    if reads && c.reads.is_none() {
        let why = "no serializable read returned: their guarantee went unchecked";
        out.push(Check::new("workload-serializable-reads", false, why));
    }
    if watch && c.watch.is_none() {
        let why = "the watchers received no event: watch guarantees went unchecked";
        out.push(Check::new("workload-watch", false, why));
    }
    if let Some(r) = &c.reads {
        let detail = match r.problems.first() {
            None => format!(
                "{} serializable reads, each a committed state no older than its member showed its client",
                r.reads
            ),
            Some(p) => format!(
                "{} of {} serializable reads break their guarantee; first: {p}",
                r.problems.len(),
                r.reads
            ),
        };
        out.push(Check::new(
            "workload-serializable-reads",
            r.passed(),
            detail,
        ));
    }
    if let Some(w) = &c.watch {
        let detail = match w.problems.first() {
            None => format!(
                "{} watchers, {} streams, {} events: in order, each once, none missing of {} acknowledged writes in range",
                w.watchers, w.streams, w.events, w.writes_covered
            ),
            Some(p) => format!("{} watch problems; first: {p}", w.problems.len()),
        };
        out.push(Check::new("workload-watch", w.passed(), detail));
    }
    out
}

/// The workload's own precondition: below `min_rate` (when set) its history proves too
/// little to pass, as etcd's robustness tests refuse runs under their qps floor.
fn rate_check(achieved: f64, seconds: f64, min_rate: f64) -> Option<Check> {
    (min_rate > 0.0).then(|| {
        let detail = format!(
            "achieved {achieved:.0} ops/s over {seconds:.1} s, at least {min_rate:.0} required"
        );
        Check::new("workload-rate", achieved >= min_rate, detail)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workload_below_its_floor_fails_its_precondition() {
        assert!(rate_check(116.0, 16.8, 50.0).unwrap().passed);
        let slow = rate_check(40.0, 16.8, 50.0).unwrap();
        assert!(!slow.passed, "{}", slow.detail);
        assert_eq!(
            slow.detail,
            "achieved 40 ops/s over 16.8 s, at least 50 required"
        );
        assert!(
            rate_check(1.0, 1.0, 0.0).is_none(),
            "no floor set, no check"
        );
    }
}
