//! etcd's fault-tolerance table, as a claim to check: N members have majority ⌊N/2⌋+1 and
//! tolerate ⌊(N−1)/2⌋ permanent failures. [`observe`] finds out what a live cluster
//! actually does; [`sweep`] fills the table cell by cell from observation, never from the
//! prediction.

use std::time::{Duration, Instant};

use bollard::Docker;
use etcd_client::{Client, GetOptions};
use futures_util::StreamExt;
use serde::Serialize;

use crate::chaos::fault::{FaultKind, Injector, Target};
use crate::cluster::{Cluster, ClusterSpec, Member};
use crate::error::Result;

pub fn majority(size: usize) -> usize {
    size / 2 + 1
}

pub fn tolerance(size: usize) -> usize {
    (size - 1) / 2
}

/// What the table predicts: writes succeed while the survivors still form a majority.
pub fn predicted_writable(size: usize, failed: usize) -> bool {
    failed <= size && size - failed >= majority(size)
}

/// How long to look, and how long one attempt may take. etcd's defaults are a 100 ms
/// heartbeat and a 1 s election timeout, randomised in [1 s, 2 s): after a leader is lost, a
/// cluster that still has quorum elects a new one within about 2 s plus a few round trips.
/// A 3 s window therefore sees every writable cluster become writable (even right after
/// losing its leader), while attempts of 500 ms keep each try short. A cluster without
/// quorum is watched for the whole window; that is the price of observing rather than
/// assuming.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ObserveOptions {
    #[serde(serialize_with = "ser_ms")]
    pub window: Duration,
    #[serde(serialize_with = "ser_ms")]
    pub attempt_timeout: Duration,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

impl Default for ObserveOptions {
    fn default() -> Self {
        ObserveOptions {
            window: Duration::from_millis(3000),
            attempt_timeout: Duration::from_millis(500),
        }
    }
}

/// One member's answers during an observation.
#[derive(Debug, Clone, Serialize)]
pub struct MemberProbe {
    pub member: String,
    /// It answered at least one request (success or etcd's own refusal) during the
    /// observation.
    pub answered: bool,
    pub linearizable_read: bool,
    pub serializable_read: bool,
    pub leader: Option<String>,
    /// Why it never answered, when it did not: the last transport error (connection
    /// refused, reset, timed out without ever answering).
    pub unreachable: Option<String>,
}

/// A harness write tried during an observation: its value, and the revision etcd
/// acknowledged it at (none when it was not acknowledged).
#[derive(Debug, Clone, Serialize)]
pub struct ProbeWrite {
    pub value: String,
    pub revision: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Observation {
    /// A linearizable write was acknowledged by some member within the window.
    pub writable: bool,
    /// Which member acknowledged it.
    pub acked_by: Option<String>,
    /// Time from the start of the observation to the first acknowledged write.
    pub first_write_ms: Option<u64>,
    /// Time until some member reported a leader.
    pub leader_seen_ms: Option<u64>,
    pub leader: Option<String>,
    pub members: Vec<MemberProbe>,
    pub elapsed_ms: u64,
    /// How many rounds of writes were tried (at least one).
    pub attempts: u32,
    /// Every write tried, for the ledger.
    #[serde(skip)]
    pub writes: Vec<ProbeWrite>,
}

impl Observation {
    /// Members that served a serializable (local) read.
    pub fn serializable_readers(&self) -> Vec<&str> {
        self.members
            .iter()
            .filter(|m| m.serializable_read)
            .map(|m| m.member.as_str())
            .collect()
    }

    /// Members that answered at all.
    pub fn answering(&self) -> usize {
        self.members.iter().filter(|m| m.answered).count()
    }

    /// The observation itself failed: a member the harness believes is up never answered.
    /// That is not evidence of unavailability — it is a fault of the observation (a stale
    /// port, a member not yet serving) and must be reported as one.
    pub fn error(&self) -> Option<String> {
        let bad: Vec<String> = self
            .members
            .iter()
            .filter(|m| !m.answered)
            .map(|m| {
                format!(
                    "{}: {}",
                    m.member,
                    m.unreachable.as_deref().unwrap_or("no answer")
                )
            })
            .collect();
        (!bad.is_empty()).then(|| {
            format!(
                "the observation could not reach members the harness believes are up, so it proves nothing about availability: {}",
                bad.join("; ")
            )
        })
    }
}

/// How one request to a member ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reply {
    Ok,
    /// etcd answered and refused (no leader, its own request timeout, …).
    Refused,
    /// The request was sent and nothing came back in time.
    TimedOut,
    /// The member could not be reached at all (connection refused or reset, no route).
    Unreachable,
}

/// Tells etcd's own refusals from failures to reach it. A gRPC status that etcd sent
/// arrives in the response trailers and carries no source error; one the client made up
/// from a transport failure (refused, reset, timed out) wraps that failure as its source.
pub fn classify(e: &etcd_client::Error) -> Reply {
    use std::error::Error as _;
    match e {
        etcd_client::Error::GRpcStatus(s) => match s.source() {
            None => Reply::Refused,
            Some(src) => {
                let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(src);
                while let Some(err) = cur {
                    if err.is::<tonic::TimeoutExpired>() {
                        return Reply::TimedOut;
                    }
                    cur = err.source();
                }
                Reply::Unreachable
            }
        },
        _ => Reply::Unreachable,
    }
}

/// What one member has shown so far in an observation.
#[derive(Debug, Default)]
struct Seen {
    answered: bool,
    unreachable: Option<String>,
}

impl Seen {
    fn note<T>(&mut self, r: &std::result::Result<T, etcd_client::Error>) {
        match r {
            Ok(_) => self.answered = true,
            Err(e) => match classify(e) {
                Reply::Ok | Reply::Refused => self.answered = true,
                Reply::TimedOut | Reply::Unreachable => self.unreachable = Some(e.to_string()),
            },
        }
    }
}

async fn member_client(
    cluster: &Cluster,
    m: &Member,
    timeout: Duration,
    require_leader: bool,
) -> std::result::Result<Client, etcd_client::Error> {
    let opts = cluster
        .connect_options()
        .with_timeout(timeout)
        .with_connect_timeout(timeout)
        .with_require_leader(require_leader);
    Client::connect([m.client_url.as_str()], Some(opts)).await
}

/// Observes availability through every member that should answer: tries a linearizable
/// write (with `require_leader`, so a leaderless member says so at once) through each, at
/// least once and until one is acknowledged or the window closes; then probes linearizable
/// and serializable reads and the leader each member sees. Members that never answer are
/// reported by [`Observation::error`], not counted as unavailable.
pub async fn observe(cluster: &Cluster, key: &str, opts: ObserveOptions) -> Observation {
    let t0 = Instant::now();
    let live: Vec<&Member> = cluster
        .members
        .iter()
        .filter(|m| m.state.answers_clients())
        .collect();
    let mut seen: Vec<Seen> = live.iter().map(|_| Seen::default()).collect();
    let mut clients: Vec<Option<Client>> = live.iter().map(|_| None).collect();
    let (mut acked_by, mut first_write_ms, mut leader_seen_ms) = (None, None, None);
    let mut writes = vec![];
    let mut attempts = 0u32;
    while !live.is_empty() {
        attempts += 1;
        let value = format!("attempt-{attempts}");
        let tries = live.iter().zip(clients.iter_mut()).map(|(m, slot)| {
            let value = value.clone();
            async move {
                if slot.is_none() {
                    match member_client(cluster, m, opts.attempt_timeout, true).await {
                        Ok(c) => *slot = Some(c),
                        Err(e) => return (Err(e), None),
                    }
                }
                let c = slot.as_mut().expect("connected above");
                let wrote = c.put(key, value, None).await;
                // The status round trip tells leader election apart from write success.
                let leader = c.status().await.ok().map(|s| s.leader());
                (wrote.map(|r| r.header().map(|h| h.revision())), leader)
            }
        });
        let results = futures_util::future::join_all(tries).await;
        for (i, (wrote, leader)) in results.into_iter().enumerate() {
            seen[i].note(&wrote);
            if leader.is_some() {
                seen[i].answered = true;
            }
            if leader_seen_ms.is_none() && leader.is_some_and(|l| l != 0) {
                leader_seen_ms = Some(t0.elapsed().as_millis() as u64);
            }
            let revision = wrote.ok().flatten();
            writes.push(ProbeWrite {
                value: value.clone(),
                revision,
            });
            if revision.is_some() && acked_by.is_none() {
                acked_by = Some(live[i].name.clone());
                first_write_ms = Some(t0.elapsed().as_millis() as u64);
            }
        }
        if acked_by.is_some() || t0.elapsed() >= opts.window {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let members = futures_util::future::join_all(
        live.iter()
            .zip(seen)
            .map(|(m, s)| probe_reads(cluster, m, key, opts, s)),
    )
    .await;
    let leader_id = members.iter().find_map(|p| p.leader.clone());
    if leader_seen_ms.is_none() && leader_id.is_some() {
        leader_seen_ms = Some(t0.elapsed().as_millis() as u64);
    }
    Observation {
        writable: acked_by.is_some(),
        acked_by,
        first_write_ms,
        leader_seen_ms,
        leader: leader_id,
        members,
        elapsed_ms: t0.elapsed().as_millis() as u64,
        attempts,
        writes,
    }
}

async fn probe_reads(
    cluster: &Cluster,
    m: &Member,
    key: &str,
    opts: ObserveOptions,
    mut seen: Seen,
) -> MemberProbe {
    let mut probe = MemberProbe {
        member: m.name.clone(),
        answered: false,
        linearizable_read: false,
        serializable_read: false,
        leader: None,
        unreachable: None,
    };
    match member_client(cluster, m, opts.attempt_timeout, false).await {
        Err(e) => seen.note::<()>(&Err(e)),
        Ok(mut c) => {
            let st = c.status().await;
            seen.note(&st);
            if let Ok(st) = st {
                probe.leader = cluster
                    .members
                    .iter()
                    .find(|x| x.id == st.leader() && st.leader() != 0)
                    .map(|x| x.name.clone());
            }
            // A leaderless member refuses a require-leader read at once instead of timing
            // out; a member that has a leader still goes through the read index.
            let linearizable = async {
                let mut c = member_client(cluster, m, opts.attempt_timeout, true).await?;
                c.get(key, None).await
            };
            let serializable = c.get(key, Some(GetOptions::new().with_serializable()));
            let (lin, ser) = tokio::join!(linearizable, serializable);
            seen.note(&lin);
            seen.note(&ser);
            probe.linearizable_read = lin.is_ok();
            probe.serializable_read = ser.is_ok();
        }
    }
    probe.answered = seen.answered;
    if !seen.answered {
        probe.unreachable = seen.unreachable.or_else(|| Some("no answer".into()));
    }
    probe
}

#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    pub failed: usize,
    pub predicted_writable: bool,
    pub observed_writable: bool,
    /// Which members were permanently failed to reach this cell.
    pub failed_members: Vec<String>,
    pub observation: Observation,
}

impl Cell {
    pub fn agrees(&self) -> bool {
        self.predicted_writable == self.observed_writable
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SizeResult {
    pub size: usize,
    pub majority: usize,
    pub tolerance: usize,
    pub cells: Vec<Cell>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableResult {
    pub seed: u64,
    pub etcd_version: String,
    pub sizes: Vec<SizeResult>,
    pub elapsed_s: f64,
}

impl TableResult {
    /// Cells where what happened is not what the table says; a write acknowledged without
    /// quorum is one of these.
    pub fn disagreements(&self) -> Vec<(usize, &Cell)> {
        self.sizes
            .iter()
            .flat_map(|s| {
                s.cells
                    .iter()
                    .filter(|c| !c.agrees())
                    .map(move |c| (s.size, c))
            })
            .collect()
    }

    /// The `--json` shape: sizes with majority, tolerance and per-cell prediction vs observation.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "seed": self.seed,
            "etcd_version": self.etcd_version,
            "sizes": self.sizes.iter().map(|s| serde_json::json!({
                "size": s.size,
                "majority": s.majority,
                "tolerance": s.tolerance,
                "cells": s.cells.iter().map(|c| serde_json::json!({
                    "failed": c.failed,
                    "predicted_writable": c.predicted_writable,
                    "observed_writable": c.observed_writable,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "elapsed_s": self.elapsed_s,
        })
    }
}

/// The seed's table (cluster size, MAJORITY, failure tolerance) extended with one column
/// per number of failed members: `W` observed writable, `-` observed not writable, and `✗`
/// in front of any cell where observation disagrees with the table.
pub fn render_table(sizes: &[SizeResult]) -> String {
    let max_n = sizes.iter().map(|s| s.size).max().unwrap_or(0);
    let mut out = String::from("| cluster size | MAJORITY | failure tolerance |");
    for k in 0..=max_n {
        out.push_str(&format!(" k={k} |"));
    }
    out.push_str("\n| --- | --- | --- |");
    for _ in 0..=max_n {
        out.push_str(" --- |");
    }
    out.push('\n');
    for s in sizes {
        out.push_str(&format!(
            "| {} | {} | {} |",
            s.size, s.majority, s.tolerance
        ));
        for k in 0..=max_n {
            match s.cells.iter().find(|c| c.failed == k) {
                Some(c) => {
                    let mark = if c.observed_writable { "W" } else { "-" };
                    let flag = if c.agrees() { "" } else { "✗" };
                    out.push_str(&format!(" {flag}{mark} |"));
                }
                None => out.push_str("  |"),
            }
        }
        out.push('\n');
    }
    out.push_str("\nW: writes acknowledged; -: no write acknowledged; ✗: observation disagrees with the table\n");
    out
}

#[derive(Debug, Clone)]
pub struct SweepOptions {
    pub version: String,
    pub seed: u64,
    pub run_id: String,
    pub observe: ObserveOptions,
    /// How many clusters run at once (on 2 cores 5 measured fastest: 44.7 s vs 64.1 s at 3
    /// and 48.7 s at 9).
    pub parallel: usize,
}

/// Fills the table for one size: one cluster, members failed permanently one at a time,
/// availability observed after each (k = 0..=N). Followers are failed first while a leader
/// exists, so writable cells are not slowed by elections; which member is lost does not
/// change what the table claims.
pub async fn sweep_size(docker: &Docker, size: usize, opts: &SweepOptions) -> Result<SizeResult> {
    let mut spec = ClusterSpec::new(size);
    spec.version = opts.version.clone();
    spec.run_id = opts.run_id.clone();
    spec.name = format!("quorum-{size}-{:06x}", rand::random::<u32>() & 0xff_ffff);
    let mut cluster = Cluster::start(docker, spec).await?;
    let mut injector = Injector::new(opts.seed.wrapping_add(size as u64));
    let mut cells = vec![];
    let mut failed_members: Vec<String> = vec![];
    for k in 0..=size {
        if k > 0 {
            let victims = match injector
                .inject(&mut cluster, FaultKind::Permanent, &Target::Follower)
                .await
            {
                Ok(v) => v,
                Err(_) => {
                    injector
                        .inject(&mut cluster, FaultKind::Permanent, &Target::Random)
                        .await?
                }
            };
            failed_members.extend(victims);
        }
        let observation =
            observe(&cluster, &format!("/etcd-drill/quorum/k{k}"), opts.observe).await;
        if let Some(e) = observation.error() {
            return Err(crate::Error::Failed(format!(
                "size {size}, {k} failed: {e}"
            )));
        }
        cells.push(Cell {
            failed: k,
            predicted_writable: predicted_writable(size, k),
            observed_writable: observation.writable,
            failed_members: failed_members.clone(),
            observation,
        });
    }
    cluster.destroy().await?;
    Ok(SizeResult {
        size,
        majority: majority(size),
        tolerance: tolerance(size),
        cells,
    })
}

/// The whole table: every size in `sizes`, every k, a few clusters at a time.
pub async fn sweep(docker: &Docker, sizes: &[usize], opts: &SweepOptions) -> Result<TableResult> {
    for &s in sizes {
        crate::cluster::validate_size(s)?;
    }
    let image = crate::cluster::image::resolve(docker, &opts.version).await?;
    let t0 = Instant::now();
    // Largest first, so the longest job does not start last.
    let mut order = sizes.to_vec();
    order.sort_unstable_by(|a, b| b.cmp(a));
    let mut results: Vec<SizeResult> =
        futures_util::stream::iter(order.into_iter().map(|n| sweep_size(docker, n, opts)))
            .buffer_unordered(opts.parallel.max(1))
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_>>()?;
    results.sort_by_key(|r| r.size);
    Ok(TableResult {
        seed: opts.seed,
        etcd_version: image.version,
        sizes: results,
        elapsed_s: t0.elapsed().as_secs_f64(),
    })
}

/// Parses `1-9`, `3`, or `1,3,5`.
pub fn parse_sizes(s: &str) -> Result<Vec<usize>> {
    let bad = || {
        crate::Error::InvalidInput(format!(
            "invalid --sizes {s:?}: use a range like 1-9 or a list like 1,3,5"
        ))
    };
    let mut out = vec![];
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (
                    a.trim().parse().map_err(|_| bad())?,
                    b.trim().parse().map_err(|_| bad())?,
                );
                if a > b {
                    return Err(bad());
                }
                out.extend(a..=b);
            }
            None => out.push(part.trim().parse().map_err(|_| bad())?),
        }
    }
    for &n in &out {
        crate::cluster::validate_size(n)?;
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_matches_the_seed() {
        // cluster size, MAJORITY, failure tolerance — from the seed document.
        let seed = [
            (1, 1, 0),
            (2, 2, 0),
            (3, 2, 1),
            (4, 3, 1),
            (5, 3, 2),
            (6, 4, 2),
            (7, 4, 3),
            (8, 5, 3),
            (9, 5, 4),
        ];
        for (n, m, t) in seed {
            assert_eq!((majority(n), tolerance(n)), (m, t), "size {n}");
            for k in 0..=n {
                assert_eq!(predicted_writable(n, k), k <= t, "size {n}, {k} failed");
            }
        }
    }

    fn probe(name: &str, answered: bool) -> MemberProbe {
        MemberProbe {
            member: name.into(),
            answered,
            linearizable_read: false,
            serializable_read: answered,
            leader: None,
            unreachable: (!answered).then(|| "transport error: connection reset".into()),
        }
    }

    fn observation(members: Vec<MemberProbe>) -> Observation {
        Observation {
            writable: false,
            acked_by: None,
            first_write_ms: None,
            leader_seen_ms: None,
            leader: None,
            members,
            elapsed_ms: 3000,
            attempts: 5,
            writes: vec![],
        }
    }

    #[test]
    fn a_member_that_never_answered_makes_the_observation_an_error_not_a_finding() {
        let good = observation(vec![probe("etcd-1", true), probe("etcd-2", true)]);
        assert_eq!(good.error(), None);
        assert_eq!(good.answering(), 2);
        let bad = observation(vec![probe("etcd-1", true), probe("etcd-2", false)]);
        let e = bad.error().expect("an unreachable member is an error");
        assert!(
            e.contains("etcd-2: transport error: connection reset"),
            "{e}"
        );
        assert_eq!(bad.answering(), 1);
        assert_eq!(bad.serializable_readers(), vec!["etcd-1"]);
    }

    #[test]
    fn etcds_own_refusals_are_answers_and_transport_failures_are_not() {
        let refused =
            etcd_client::Error::GRpcStatus(tonic::Status::unavailable("etcdserver: no leader"));
        assert_eq!(classify(&refused), Reply::Refused);
        let reset = etcd_client::Error::GRpcStatus(tonic::Status::from_error(Box::new(
            std::io::Error::from(std::io::ErrorKind::ConnectionReset),
        )));
        assert_eq!(classify(&reset), Reply::Unreachable);
        let timeout = etcd_client::Error::GRpcStatus(tonic::Status::from_error(Box::new(
            tonic::TimeoutExpired(()),
        )));
        assert_eq!(classify(&timeout), Reply::TimedOut);
        let mut s = Seen::default();
        s.note::<()>(&Err(reset));
        assert!(!s.answered && s.unreachable.is_some());
        s.note::<()>(&Err(refused));
        assert!(s.answered, "a refusal from etcd is an answer");
    }

    #[test]
    fn sizes_parse_and_are_range_checked() {
        assert_eq!(parse_sizes("1-9").unwrap(), (1..=9).collect::<Vec<_>>());
        assert_eq!(parse_sizes("5,3,3").unwrap(), vec![3, 5]);
        assert!(
            parse_sizes("0-3")
                .unwrap_err()
                .to_string()
                .contains("invalid cluster size 0")
        );
        assert!(parse_sizes("x").is_err());
    }
}

#[cfg(test)]
mod checker_bites {
    use super::*;

    fn cell(size: usize, failed: usize, observed_writable: bool) -> Cell {
        Cell {
            failed,
            predicted_writable: predicted_writable(size, failed),
            observed_writable,
            failed_members: (1..=failed).map(|i| format!("etcd-{i}")).collect(),
            observation: Observation {
                writable: observed_writable,
                acked_by: observed_writable.then(|| "etcd-3".to_string()),
                first_write_ms: None,
                leader_seen_ms: None,
                leader: None,
                members: vec![],
                elapsed_ms: 0,
                attempts: 1,
                writes: vec![],
            },
        }
    }

    fn table(cells: Vec<Cell>) -> TableResult {
        TableResult {
            seed: 0,
            etcd_version: "3.5.16".into(),
            sizes: vec![SizeResult {
                size: 3,
                majority: 2,
                tolerance: 1,
                cells,
            }],
            elapsed_s: 0.0,
        }
    }

    #[test]
    fn an_acknowledged_write_without_quorum_is_a_disagreement() {
        let t = table(vec![
            cell(3, 0, true),
            cell(3, 1, true),
            cell(3, 2, true),
            cell(3, 3, false),
        ]);
        let bad = t.disagreements();
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].1.failed, 2);
        insta::assert_snapshot!(render_table(&t.sizes));
    }

    #[test]
    fn a_lost_write_while_quorum_held_is_a_disagreement() {
        let t = table(vec![
            cell(3, 0, true),
            cell(3, 1, false),
            cell(3, 2, false),
            cell(3, 3, false),
        ]);
        assert_eq!(t.disagreements().len(), 1);
        assert_eq!(
            t.to_json()["sizes"][0]["cells"][1]["observed_writable"],
            false
        );
    }

    #[test]
    fn an_agreeing_table_has_no_disagreement() {
        let t = table(vec![
            cell(3, 0, true),
            cell(3, 1, true),
            cell(3, 2, false),
            cell(3, 3, false),
        ]);
        assert!(t.disagreements().is_empty());
    }
}
