//! Talking to members (one client per member, so every answer is attributable) and
//! waiting until the cluster is as healthy as a step needs.

use std::collections::BTreeSet;
use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};

use super::{Cluster, Member, MemberState};
use crate::docker;
use crate::error::{Error, Result};
use crate::poll::{self, Attempt};

impl Cluster {
    pub fn connect_options(&self) -> ConnectOptions {
        let mut o = ConnectOptions::new()
            .with_connect_timeout(Duration::from_millis(500))
            .with_timeout(Duration::from_secs(3));
        if let Some(pki) = &self.pki {
            let (cert, key) = pki.client_pem();
            o = o.with_tls(
                TlsOptions::new()
                    .ca_certificate(Certificate::from_pem(pki.ca_pem()))
                    .identity(Identity::from_pem(cert, key)),
            );
        }
        o
    }

    /// A client bound to exactly one member (no load-balancing across endpoints), so every
    /// observation is attributable to that member.
    pub async fn client(&self, member: &Member) -> Result<Client> {
        Client::connect([member.client_url.as_str()], Some(self.connect_options()))
            .await
            .map_err(Error::etcd(&member.name, "connecting"))
    }

    /// As [`Cluster::client`], for requests whose work grows with the data (HashKV reads
    /// the whole keyspace: tens of seconds at a gigabyte), where the usual 3 s would turn
    /// a slow answer into a false failure.
    pub async fn patient_client(&self, member: &Member, timeout: Duration) -> Result<Client> {
        Client::connect(
            [member.client_url.as_str()],
            Some(self.connect_options().with_timeout(timeout)),
        )
        .await
        .map_err(Error::etcd(&member.name, "connecting"))
    }

    /// Polls until every member is healthy and all agree on one leader.
    pub async fn wait_healthy(&mut self, timeout: Duration) -> Result<()> {
        let all: Vec<usize> = (0..self.members.len()).collect();
        self.wait_agreeing(&all, timeout).await
    }

    /// Polls until the member answers a status request. A restarted container is "running"
    /// as soon as Docker has started its process, long before etcd listens: Docker's port
    /// proxy accepts the connection and then resets it. A step after a restart must not
    /// mistake that window for a fault.
    pub async fn wait_answering(&self, m: &Member, timeout: Duration) -> Result<()> {
        let opts = self
            .connect_options()
            .with_timeout(Duration::from_millis(500));
        self.poll_healthy(timeout, Duration::from_millis(25), || async {
            let e = match Client::connect([m.client_url.as_str()], Some(opts.clone())).await {
                Ok(mut c) => match c.status().await {
                    Ok(_) => return Attempt::Ready(()),
                    Err(e) => e,
                },
                Err(e) => e,
            };
            Attempt::NotYet(format!(
                "member {} does not answer at {}: {e}",
                m.name, m.client_url
            ))
        })
        .await
    }

    /// Polls until the cluster is as healthy as its members allow: every member that should
    /// answer clients does, and, when enough run to form a quorum, they all see one leader,
    /// list every member as started, and serve a linearizable read. With too few running for
    /// a quorum, answering is all that can be asked. What heal leaves behind.
    pub async fn wait_settled(&mut self, timeout: Duration) -> Result<()> {
        let running: Vec<usize> = (0..self.members.len())
            .filter(|&i| self.members[i].state == MemberState::Running)
            .collect();
        if settled_needs_leader(self.members.len(), running.len()) {
            return self.wait_agreeing(&running, timeout).await;
        }
        for m in self.members.iter().filter(|m| m.state.answers_clients()) {
            self.wait_answering(m, timeout).await?;
        }
        Ok(())
    }

    /// Polls until each member in `which` passes [`probe_member`] and all see one leader;
    /// records their IDs.
    async fn wait_agreeing(&mut self, which: &[usize], timeout: Duration) -> Result<()> {
        let expected = self.members.len();
        let seen = self
            .poll_healthy(timeout, Duration::from_millis(25), || async {
                let opts = self.connect_options();
                let probes = futures_util::future::join_all(which.iter().map(|&i| {
                    let m = &self.members[i];
                    probe_member(&m.name, &m.client_url, opts.clone(), expected)
                }))
                .await;
                let seen = match probes.into_iter().collect::<Result<Vec<_>, String>>() {
                    Ok(seen) => seen,
                    Err(e) => return Attempt::NotYet(e),
                };
                let leaders: BTreeSet<u64> = seen.iter().map(|(_, l)| *l).collect();
                if leaders.len() == 1 {
                    Attempt::Ready(seen)
                } else {
                    Attempt::NotYet(format!("members disagree on the leader: {leaders:?}"))
                }
            })
            .await?;
        for (&i, (id, _)) in which.iter().zip(seen) {
            self.members[i].id = id;
        }
        Ok(())
    }

    /// Polls `attempt` until it is ready; if it never is, the cluster is
    /// [`Error::Unhealthy`] with the last attempt's reason and every member's last logs.
    async fn poll_healthy<T, Fut>(
        &self,
        timeout: Duration,
        every: Duration,
        attempt: impl FnMut() -> Fut,
    ) -> Result<T>
    where
        Fut: Future<Output = Attempt<T, String>>,
    {
        match poll::until(timeout, every, attempt).await {
            Ok(v) => Ok(v),
            Err(gave_up) => Err(Error::Unhealthy {
                cluster: self.spec.name.clone(),
                waited_s: gave_up.waited.as_secs_f64(),
                reason: gave_up.reason,
                logs: self.member_logs(15).await,
            }),
        }
    }

    pub async fn member_logs(&self, lines: usize) -> String {
        let mut out = String::new();
        for m in &self.members {
            out.push_str(&format!(
                "[{}]\n{}\n",
                m.name,
                docker::tail_logs(&self.docker, &m.container, lines).await
            ));
        }
        out
    }

    /// The member's process ID on the host and its address on the cluster network, for
    /// network faults applied from the host.
    pub async fn member_net(&self, m: &Member) -> Result<(i64, std::net::Ipv4Addr)> {
        let info = self
            .docker
            .inspect_container(
                &m.container,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .map_err(Error::docker(format!("inspecting member {}", m.name)))?;
        let pid = info.state.and_then(|s| s.pid).filter(|p| *p > 0);
        let ip = info
            .network_settings
            .and_then(|n| n.networks)
            .and_then(|n| n.get(&self.network).and_then(|e| e.ip_address.clone()))
            .and_then(|ip| ip.parse().ok());
        match (pid, ip) {
            (Some(pid), Some(ip)) => Ok((pid, ip)),
            _ => Err(Error::Failed(format!(
                "member {} is not running, so it has no network to cut",
                m.name
            ))),
        }
    }

    /// The name of the member the reachable members say is leader, if any. Member IDs come
    /// from each member's own status, so this works before the cluster has recorded them
    /// (right after a restore).
    pub async fn leader(&self) -> Option<String> {
        let seen = futures_util::future::join_all(self.members.iter().map(|m| async move {
            if !m.state.answers_clients() {
                return None;
            }
            let mut c = self.client(m).await.ok()?;
            let st = tokio::time::timeout(Duration::from_millis(500), c.status())
                .await
                .ok()?
                .ok()?;
            let own = st.header().map(|h| h.member_id()).unwrap_or(0);
            Some((m.name.clone(), own, st.leader()))
        }))
        .await;
        let seen: Vec<(String, u64, u64)> = seen.into_iter().flatten().collect();
        let leader = seen.iter().map(|(_, _, l)| *l).find(|l| *l != 0)?;
        seen.iter()
            .find(|(_, own, _)| *own == leader)
            .map(|(n, _, _)| n.clone())
            .or_else(|| {
                self.members
                    .iter()
                    .find(|m| m.id == leader)
                    .map(|m| m.name.clone())
            })
    }

    /// Polls until some member reports a leader.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<String> {
        self.poll_healthy(timeout, Duration::from_millis(20), || async {
            match self.leader().await {
                Some(l) => Attempt::Ready(l),
                None => Attempt::NotYet("no member reports a leader".to_string()),
            }
        })
        .await
    }
}

/// One health probe of one member: (its ID, the leader it sees), or why it is not healthy:
/// the member list must have `expected_size` started members, a leader must be known, and
/// a linearizable read must succeed.
pub async fn probe_member(
    name: &str,
    url: &str,
    opts: ConnectOptions,
    expected_size: usize,
) -> std::result::Result<(u64, u64), String> {
    let mut c = Client::connect([url], Some(opts))
        .await
        .map_err(|e| format!("{name}: connect: {e}"))?;
    let list = c
        .member_list()
        .await
        .map_err(|e| format!("{name}: member list: {e}"))?;
    let started = list
        .members()
        .iter()
        .filter(|x| !x.name().is_empty() && !x.client_urls().is_empty())
        .count();
    if list.members().len() != expected_size || started != expected_size {
        return Err(format!(
            "{name}: member list has {} members ({started} started), want {expected_size}",
            list.members().len()
        ));
    }
    let status = c
        .status()
        .await
        .map_err(|e| format!("{name}: status: {e}"))?;
    let id = status.header().map(|h| h.member_id()).unwrap_or(0);
    if status.leader() == 0 {
        return Err(format!("{name}: no leader"));
    }
    // A linearizable read goes through the leader's read index: proof of a working quorum.
    c.get("etcd-drill/health", None)
        .await
        .map_err(|e| format!("{name}: linearizable read: {e}"))?;
    Ok((id, status.leader()))
}

/// Whether a settled cluster must have a leader: when its running members are a majority
/// of all it has (lost ones still count in etcd's member list).
pub fn settled_needs_leader(members: usize, running: usize) -> bool {
    running > 0 && running > members / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_settled_cluster_needs_a_leader_exactly_when_a_majority_runs() {
        for (members, running, want) in [
            (1, 1, true),
            (1, 0, false),
            (3, 2, true),
            (3, 1, false),
            (4, 2, false),
            (4, 3, true),
            (7, 4, true),
            (7, 3, false),
        ] {
            assert_eq!(
                settled_needs_leader(members, running),
                want,
                "{running} of {members}"
            );
        }
    }
}
