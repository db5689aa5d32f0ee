//! The `[workload]` of a drill: its clients start once the cluster is up and stop before
//! the first restore or verify (a restore rolls data back by design, which no
//! linearizable history contains); their history is then checked and becomes a check.

use std::time::Duration;

use super::runner::Runner;
use crate::chaos::workload::{self, Workload, WorkloadSpec};
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
            seed: self.seed,
            serializable_gets: w.self_test == Some(SelfTest::StaleReads),
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
        if let Some(c) = rate_check(rec.rate, rec.seconds, spec.min_rate) {
            self.check(i, c);
        }
        let history = rec.history;
        let checked = tokio::task::spawn_blocking(move || {
            let c = linearize::check(&history, Model::Etcd, CHECK_LIMIT);
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
            "{}: {} operations ({} of unknown outcome) on {} keys, {rate}, etcd model",
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
            detail.push_str(&format!(
                "; key {} stuck after {} operations at: {}",
                w.key,
                w.placed,
                stuck.join("; ")
            ));
        }
        if let Some(p) = c.revision_problems.first() {
            detail.push_str(&format!("; {p}"));
        }
        // Zero operations prove nothing: not a pass.
        let passed = c.verdict == Linearizability::Linearizable && c.operations > 0;
        self.check(i, Check::new("workload-history", passed, detail));
        self.found.history_check = Some(HistoryReport::new(c, &history, rec.rate, rec.seconds));
        self.found.history.extend(history);
    }
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
