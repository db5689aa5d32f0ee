//! Observing availability: [`observe`] finds out what a live cluster actually does (is a
//! write acknowledged, who leads, who serves reads), telling etcd's own refusals from
//! members that cannot be reached.

use std::time::{Duration, Instant};

use etcd_client::{Client, GetOptions};
use serde::Serialize;

use crate::cluster::{Cluster, Member};
use crate::model::observation::{MemberProbe, Observation, ProbeWrite};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
