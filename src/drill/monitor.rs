//! The background writer: while faults are injected it writes a harness key every 50 ms
//! through whichever members answer, to measure the longest stretch without an
//! acknowledged write, and hands every write it tried to the ledger.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::backup::ledger::{HARNESS_PREFIX, Ledger};
use crate::cluster::{Cluster, MemberState};
use crate::model::report::UNWRITABLE_AFTER_S;

/// A write the background writer tried: its value and, when acknowledged, its revision.
type TriedWrite = (String, Option<i64>);

/// The background writer's key.
fn writer_key() -> String {
    format!("{HARNESS_PREFIX}writer")
}

/// What the writer saw: when it ran, and each stretch without an acknowledged write that
/// was long enough to count as an outage.
pub(super) struct WriterRun {
    pub started: Instant,
    pub ended: Instant,
    pub max_gap: Duration,
    pub gaps: Vec<(Instant, Instant)>,
}

impl WriterRun {
    fn gap(&mut self, from: Instant, to: Instant) {
        let d = to - from;
        self.max_gap = self.max_gap.max(d);
        if d.as_secs_f64() >= UNWRITABLE_AFTER_S {
            self.gaps.push((from, to));
        }
    }
}

/// Writes every 50 ms through whichever members answer, remembering when writes were
/// acknowledged, to measure the longest stretch without one.
pub(super) struct WriteMonitor {
    stop: Arc<std::sync::atomic::AtomicBool>,
    handle: tokio::task::JoinHandle<WriterRun>,
    endpoints: Arc<Mutex<Vec<String>>>,
    /// Every write tried since the last drain: its value and, when acknowledged, revision.
    writes: Arc<Mutex<Vec<TriedWrite>>>,
}

impl WriteMonitor {
    pub(super) fn start(cluster: &Cluster) -> Self {
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
            let mut run = WriterRun {
                started: last_ack,
                ended: last_ack,
                max_gap: Duration::ZERO,
                gaps: vec![],
            };
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
                        let now = Instant::now();
                        run.gap(last_ack, now);
                        last_ack = now;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            run.ended = Instant::now();
            run.gap(last_ack, run.ended);
            run
        });
        WriteMonitor {
            stop,
            handle,
            endpoints,
            writes,
        }
    }

    pub(super) fn update(&self, cluster: &Cluster) {
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

    /// Stops the writer; `None` if its task died (then nothing it measured holds).
    pub(super) async fn finish(self, ledger: &mut Ledger) -> Option<WriterRun> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let writes = self.writes.clone();
        let run = self.handle.await.ok();
        WriteMonitor::drain_from(&writes, ledger);
        run
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
