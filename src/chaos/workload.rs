//! Concurrent clients that record what they saw: linearizable and serializable gets,
//! puts, deletes and compare-and-sets on a few shared keys, each client pinned to one
//! member, every operation stamped with call and return times on one monotonic clock; and
//! watchers of those keys (`watcher`). The history is what `model::linearize`,
//! `model::reads` and `model::watch` check; what happened to the keys is handed to the
//! ledger, so the final verification accounts for every acknowledged workload write.
//!
//! Any error is recorded as an unknown outcome (no return time): the request may or may
//! not have taken effect, which is all a client can know after a timeout or a lost
//! connection, and never accuses etcd of something it did not do.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use etcd_client::{Client, Compare, CompareOp, GetOptions, Txn, TxnOp};

use super::watcher::Watcher;
use rand::{RngExt, SeedableRng};

use crate::backup::ledger::{HARNESS_PREFIX, Ledger};
use crate::cluster::Cluster;
use crate::model::history::{OpKind, Output, Record};

/// How the clients run.
#[derive(Debug, Clone)]
pub struct WorkloadSpec {
    pub clients: usize,
    pub keys: usize,
    /// Target operations per second, all clients together.
    pub rate: f64,
    pub request_timeout: Duration,
    pub watchers: usize,
    pub seed: u64,
    /// Every read served by the member asked, without consensus, but recorded as
    /// linearizable (a self-test of the checker on a real cluster).
    pub stale_reads_self_test: bool,
}

/// The workload's key `i`, under the harness prefix the verifier accounts for.
pub fn workload_key(i: usize) -> String {
    format!("{}{i}", workload_prefix())
}

/// The prefix every workload key is under, which the watchers watch.
pub fn workload_prefix() -> String {
    format!("{HARNESS_PREFIX}workload/")
}

type Task = tokio::task::JoinHandle<Vec<Record>>;

pub struct Workload {
    stop: Arc<AtomicBool>,
    clients: Vec<Task>,
    stop_watching: Arc<AtomicBool>,
    watchers: Vec<Task>,
    started: Instant,
}

/// What the clients recorded, in call order, and the rate they achieved.
pub struct Recorded {
    pub history: Vec<Record>,
    pub seconds: f64,
    pub rate: f64,
}

impl Workload {
    /// Starts the clients; `t0` is the clock's zero (the run's start), in microseconds.
    pub fn start(cluster: &Cluster, spec: &WorkloadSpec, t0: Instant) -> Workload {
        let stop = Arc::new(AtomicBool::new(false));
        let urls: Vec<String> = cluster
            .members
            .iter()
            .map(|m| m.client_url.clone())
            .collect();
        let opts = cluster
            .connect_options()
            .with_timeout(spec.request_timeout)
            .with_connect_timeout(spec.request_timeout);
        // One pace for all clients: a slot every 1/rate s, taken by whichever client is
        // free. A client stuck on a faulted member (each attempt waiting out its timeout)
        // takes no slots meanwhile, so the others keep the rate up; a pinned share per
        // client would lose the stuck clients' share for as long as the fault lasts.
        let pacer = Arc::new(Pacer::new(spec.rate));
        let clients = (0..spec.clients)
            .map(|id| {
                let client = ClientLoop {
                    id: id as u64,
                    url: urls[id % urls.len().max(1)].clone(),
                    keys: spec.keys,
                    t0,
                    pacer: pacer.clone(),
                    backoff: spec.request_timeout,
                    rng: rand::rngs::StdRng::seed_from_u64(spec.seed ^ (id as u64) << 32),
                    last_seen: vec![None; spec.keys],
                    last_mod: vec![0; spec.keys],
                    seq: 0,
                    stale_reads: spec.stale_reads_self_test,
                };
                tokio::spawn(client.run(opts.clone(), stop.clone()))
            })
            .collect();
        let stop_watching = Arc::new(AtomicBool::new(false));
        // A watch is one long request: only connecting is timed. A killed member's
        // connection can hang rather than break (the host port's proxy keeps its side
        // open), so HTTP/2 pings find a dead stream and the watcher resumes elsewhere in
        // time.
        let watch_opts = cluster
            .connect_options()
            .with_connect_timeout(spec.request_timeout)
            .with_keep_alive(Duration::from_millis(500), Duration::from_millis(1000));
        let watchers = (0..spec.watchers)
            .map(|i| {
                let w = Watcher {
                    id: (spec.clients + i) as u64,
                    url: urls[(spec.clients + i) % urls.len().max(1)].clone(),
                    prefix: workload_prefix(),
                    t0,
                };
                tokio::spawn(w.run(watch_opts.clone(), stop_watching.clone()))
            })
            .collect();
        Workload {
            stop,
            clients,
            stop_watching,
            watchers,
            started: Instant::now(),
        }
    }

    /// Stops the clients and gathers their history. A client task that died loses its
    /// records, which `None` reports: a history with holes cannot be checked honestly.
    pub async fn finish(self) -> Option<Recorded> {
        self.stop.store(true, Ordering::Relaxed);
        let seconds = self.started.elapsed().as_secs_f64();
        let mut history = vec![];
        for c in self.clients {
            history.extend(c.await.ok()?);
        }
        // The watchers get a moment to receive the last writes' events.
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.stop_watching.store(true, Ordering::Relaxed);
        let done = history.iter().filter(|r| r.known()).count();
        for w in self.watchers {
            history.extend(w.await.ok()?);
        }
        history.sort_by_key(|r| (r.call, r.client));
        Some(Recorded {
            rate: done as f64 / seconds.max(1e-9),
            seconds,
            history,
        })
    }
}

/// What the workload wrote, for the ledger: acknowledged writes with their revision, and
/// writes of unknown outcome as attempts (they may be there or not).
pub fn account(history: &[Record], ledger: &mut Ledger) {
    for r in history {
        if r.op == OpKind::Delete {
            match r.committed() {
                Some((rev, _)) => ledger.deleted(&r.key, rev),
                None if !r.known() => ledger.attempt_delete(&r.key),
                None => {}
            }
            continue;
        }
        let (Some(value), writes) = (&r.value, r.op) else {
            continue;
        };
        let out = r.output.as_ref();
        match (writes, r.known(), out.and_then(|o| o.succeeded)) {
            (_, false, _) => ledger.attempt(&r.key, value),
            (OpKind::Put, true, _) | (OpKind::Cas, true, Some(true)) => {
                let rev = out.and_then(|o| o.revision).unwrap_or(0);
                ledger.acknowledged(&r.key, value, rev);
            }
            _ => {}
        }
    }
}

/// Slots at a fixed rate of operations that return, shared by the clients. A slot is never older than now: time no
/// client was free to use is not paid back in a burst.
struct Pacer {
    interval: Duration,
    next: tokio::sync::Mutex<tokio::time::Instant>,
}

impl Pacer {
    fn new(rate: f64) -> Pacer {
        Pacer {
            interval: Duration::from_secs_f64(1.0 / rate),
            next: tokio::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }

    async fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let slot = (*next).max(tokio::time::Instant::now());
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }

    /// Gives one slot back (an operation that did not return); never to before now.
    async fn refund(&self) {
        let mut next = self.next.lock().await;
        *next = (*next - self.interval).max(tokio::time::Instant::now());
    }
}

struct ClientLoop {
    id: u64,
    url: String,
    keys: usize,
    t0: Instant,
    pacer: Arc<Pacer>,
    /// The pause after an operation of unknown outcome (the request timeout).
    backoff: Duration,
    rng: rand::rngs::StdRng,
    /// The value this client last saw under each key: what its next cas expects.
    last_seen: Vec<Option<String>>,
    /// …and its mod revision (0: absent), what a cas on the revision expects.
    last_mod: Vec<i64>,
    seq: u64,
    stale_reads: bool,
}

impl ClientLoop {
    fn now(&self) -> u64 {
        self.t0.elapsed().as_micros() as u64
    }

    async fn run(
        mut self,
        opts: etcd_client::ConnectOptions,
        stop: Arc<AtomicBool>,
    ) -> Vec<Record> {
        let mut out = vec![];
        let mut client: Option<Client> = None;
        while !stop.load(Ordering::Relaxed) {
            if client.is_none() {
                // Not connected, nothing sent: no operation to record, and no slot taken.
                client = Client::connect([self.url.as_str()], Some(opts.clone()))
                    .await
                    .ok();
                if client.is_none() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            }
            self.pacer.wait().await;
            if let Some(c) = client.as_mut() {
                let r = self.one(c).await;
                // A member that refuses or times out is given a moment before the next
                // try: retrying at once would spend the shared slots on errors a healthy
                // member's client could have used.
                let failed = !r.known();
                out.push(r);
                if failed {
                    // The rate is of operations that return: a failed one gives its slot
                    // back to whichever client can use it.
                    self.pacer.refund().await;
                    tokio::time::sleep(self.backoff).await;
                }
            }
        }
        out
    }

    /// One operation: 30 % linearizable get, 10 % serializable get, 25 % put, 10 %
    /// delete, 15 % cas on the value last seen, 10 % cas on its mod revision.
    async fn one(&mut self, c: &mut Client) -> Record {
        let k = self.rng.random_range(0..self.keys);
        let key = workload_key(k);
        let roll = self.rng.random_range(0..20);
        self.seq += 1;
        let value = format!("c{}-{}", self.id, self.seq);
        let mut r = Record {
            client: self.id,
            call: self.now(),
            op: OpKind::Get,
            key: key.clone(),
            ..Default::default()
        };
        let output = match roll {
            0..=7 => {
                let serializable = roll >= 6 || self.stale_reads;
                // The self-test records its stale reads as linearizable ones.
                r.serializable = serializable && !self.stale_reads;
                let opts = serializable.then(|| GetOptions::new().with_serializable());
                c.get(key.as_str(), opts).await.ok().map(|g| {
                    let kv = g.kvs().first();
                    let v = kv.map(|kv| String::from_utf8_lossy(kv.value()).into_owned());
                    let mod_revision = kv.map(|kv| kv.mod_revision());
                    self.last_seen[k] = v.clone();
                    self.last_mod[k] = mod_revision.unwrap_or(0);
                    Output {
                        value: v,
                        mod_revision,
                        revision: g.header().map(|h| h.revision()),
                        ..Default::default()
                    }
                })
            }
            8..=12 => {
                r.op = OpKind::Put;
                r.value = Some(value.clone());
                c.put(key.as_str(), value.as_str(), None)
                    .await
                    .ok()
                    .map(|p| Output {
                        revision: p.header().map(|h| h.revision()),
                        ..Default::default()
                    })
            }
            13..=14 => {
                r.op = OpKind::Delete;
                c.delete(key.as_str(), None).await.ok().map(|d| {
                    self.last_seen[k] = None;
                    self.last_mod[k] = 0;
                    Output {
                        deleted: Some(d.deleted()),
                        revision: d.header().map(|h| h.revision()),
                        ..Default::default()
                    }
                })
            }
            _ => {
                r.op = OpKind::Cas;
                r.value = Some(value.clone());
                // Half on the value, half on the mod revision as Kubernetes does (a
                // revision of 0 is an absent key: etcd compares its mod revision as 0).
                let when = if roll >= 18 {
                    r.expect_revision = Some(self.last_mod[k]);
                    Compare::mod_revision(key.as_str(), CompareOp::Equal, self.last_mod[k])
                } else {
                    r.expect = self.last_seen[k].clone();
                    match &r.expect {
                        Some(v) => Compare::value(key.as_str(), CompareOp::Equal, v.as_str()),
                        None => Compare::version(key.as_str(), CompareOp::Equal, 0),
                    }
                };
                let txn = Txn::new().when([when]).and_then([TxnOp::put(
                    key.as_str(),
                    value.as_str(),
                    None,
                )]);
                c.txn(txn).await.ok().map(|t| Output {
                    succeeded: Some(t.succeeded()),
                    revision: t.header().map(|h| h.revision()),
                    ..Default::default()
                })
            }
        };
        if let Some(o) = output {
            r.ret = Some(self.now());
            if o.succeeded == Some(true) {
                self.last_seen[k] = r.value.clone();
                self.last_mod[k] = o.revision.unwrap_or(0);
            }
            r.output = Some(o);
        }
        r
    }
}
