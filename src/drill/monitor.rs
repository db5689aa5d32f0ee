//! The background writer: while faults are injected it writes a harness key every 50 ms
//! through a member that answers, and hands every write it tried to the ledger; its
//! acknowledgements, with the workload's, measure the longest stretch without a write.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::backup::ledger::{HARNESS_PREFIX, Ledger};
use crate::cluster::{Cluster, MemberState};

/// A write the background writer tried: its value and, when acknowledged, its revision.
type TriedWrite = (String, Option<i64>);

/// The background writer's key.
fn writer_key() -> String {
    format!("{HARNESS_PREFIX}writer")
}

/// What the writer saw: when it ran, and when each of its writes was acknowledged.
pub(super) struct WriterRun {
    pub started: Instant,
    pub ended: Instant,
    pub acks: Vec<Instant>,
}

/// How long one write may take before the writer moves on to the next member: well above
/// a healthy round trip, well below the gaps it exists to measure.
const REQUEST_DEADLINE: Duration = Duration::from_millis(500);

/// Writes every 50 ms through a member that answers, remembering when writes were
/// acknowledged, to measure the longest stretch without one.
pub(super) struct WriteMonitor {
    stop: Arc<std::sync::atomic::AtomicBool>,
    handle: tokio::task::JoinHandle<WriterRun>,
    endpoints: Arc<Mutex<Vec<String>>>,
    /// Every write tried since the last drain: its value and, when acknowledged, revision.
    writes: Arc<Mutex<Vec<TriedWrite>>>,
}

/// The writer's connections, one per member kept for the run, and the member it writes
/// through: it stays on a member while that one acknowledges and moves to the next the
/// moment one does not, so a dead member costs one deadline, not one per round.
struct Writer {
    opts: etcd_client::ConnectOptions,
    clients: HashMap<String, etcd_client::Client>,
    at: usize,
}

impl Writer {
    async fn put(&mut self, eps: &[String], value: &str) -> Option<i64> {
        let url = eps[self.at % eps.len()].clone();
        let client = match self.clients.get(&url) {
            Some(c) => c.clone(),
            None => {
                let c = etcd_client::Client::connect([url.as_str()], Some(self.opts.clone()));
                let c = tokio::time::timeout(REQUEST_DEADLINE, c).await.ok()?.ok()?;
                self.clients.insert(url.clone(), c.clone());
                c
            }
        };
        let mut c = client;
        let put = c.put(writer_key(), value, None);
        match tokio::time::timeout(REQUEST_DEADLINE, put).await {
            Ok(Ok(r)) => r.header().map(|h| h.revision()),
            _ => {
                // A fresh connection next time: this one may be to a process now gone.
                self.clients.remove(&url);
                self.at += 1;
                None
            }
        }
    }
}

impl WriteMonitor {
    pub(super) fn start(cluster: &Cluster) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let endpoints = Arc::new(Mutex::new(answering(cluster)));
        let opts = cluster
            .connect_options()
            .with_timeout(REQUEST_DEADLINE)
            .with_connect_timeout(REQUEST_DEADLINE)
            .with_require_leader(true);
        let writes: Arc<Mutex<Vec<TriedWrite>>> = Arc::default();
        let (s, e, w) = (stop.clone(), endpoints.clone(), writes.clone());
        let handle = tokio::spawn(async move {
            let started = Instant::now();
            let mut acks = vec![];
            let mut writer = Writer {
                opts,
                clients: HashMap::new(),
                at: 0,
            };
            let mut i = 0usize;
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                let eps = e.lock().map(|g| g.clone()).unwrap_or_default();
                if !eps.is_empty() {
                    i += 1;
                    let value = i.to_string();
                    let revision = writer.put(&eps, &value).await;
                    if let Ok(mut g) = w.lock() {
                        g.push((value, revision));
                    }
                    if revision.is_some() {
                        acks.push(Instant::now());
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            WriterRun {
                started,
                ended: Instant::now(),
                acks,
            }
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

    /// The highest revision the writer has had acknowledged so far.
    pub(super) fn last_acknowledged(&self) -> i64 {
        let writes = self.writes.lock();
        writes
            .map(|g| g.iter().filter_map(|w| w.1).max().unwrap_or(0))
            .unwrap_or(0)
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
