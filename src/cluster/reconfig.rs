//! Changing the member set: etcd's runtime reconfiguration for a lost member, and the
//! wholesale replacement a restore starts from.

use std::time::Duration;

use etcd_client::Client;
use tonic::Code;

use super::{Cluster, MemberState, member_name, ports};
use crate::error::{Error, Result};
use crate::poll::{self, Attempt};

impl Cluster {
    /// Replaces the member set: removes every member container and data volume still
    /// present, then describes `names` as the new members under a new cluster token.
    /// Creates nothing; a restore follows.
    pub async fn reset_members(&mut self, names: &[String], token: String) -> Result<()> {
        for n in names {
            if n.strip_prefix("etcd-")
                .and_then(|i| i.parse::<usize>().ok())
                .is_none_or(|i| i < 1)
            {
                return Err(Error::InvalidInput(format!(
                    "member name {n:?} must be etcd-<i> with i >= 1"
                )));
            }
        }
        futures_util::future::try_join_all(
            self.members.iter().map(|m| self.remove_member_and_data(m)),
        )
        .await?;
        let mut members = vec![];
        // A member keeps its host port through a restore; a name new to the cluster gets
        // one. (Its lock is released before the container exists: a concurrent run could
        // pick the same port in that moment, and would then fail to start, saying so.)
        let fresh = names.iter().filter(|n| self.member(n).is_none()).count();
        let mut picked = match fresh {
            0 => vec![],
            n => {
                let _lock = ports::lock().await?;
                // The removed members' ports are this cluster's still.
                let mut taken = ports::taken(&self.docker).await?;
                taken.extend(self.members.iter().map(|m| m.host_port));
                ports::pick(n, &taken)?
            }
        };
        for n in names {
            let mut m = self.new_member(n);
            let port = match self.member(n) {
                Some(old) => old.host_port,
                None => picked.pop().unwrap_or(0),
            };
            m.set_host_port(self.scheme(), port);
            if let Some(pki) = self.pki.as_mut()
                && pki.member_archive(n).is_err()
            {
                pki.add_member(n, &[n.clone(), m.container.clone()])?;
            }
            members.push(m);
        }
        self.members = members;
        self.token = token;
        self.spec.size = self.members.len();
        Ok(())
    }

    /// etcd's runtime reconfiguration for a permanently lost member while quorum holds:
    /// `member remove` it, `member add` a new one (`etcd-<next>`), start the new one on an
    /// empty volume with `--initial-cluster-state existing`, and wait until the cluster is
    /// healthy again. Returns the new member's name; callers check it caught up (HashKV).
    pub async fn replace_member(&mut self, lost: &str) -> Result<String> {
        let lost_id = self
            .member(lost)
            .ok_or_else(|| Error::InvalidInput(format!("no member named {lost}")))?
            .id;
        let healthy = self
            .members
            .iter()
            .find(|m| m.name != lost && m.state == MemberState::Running)
            .ok_or_else(|| {
                Error::Failed("no running member left to reconfigure the cluster through".into())
            })?
            .clone();
        // Losing the leader means an election first: reconfigure once there is a leader.
        self.wait_for_leader(self.spec.start_timeout).await?;
        let c = self.client(&healthy).await?;
        remove_member(&c, &healthy.name, lost, lost_id).await?;
        // The lost member's leftovers go now, so nothing of it can come back.
        let gone = self
            .members
            .iter()
            .position(|m| m.name == lost)
            .expect("checked above");
        let old = self.members.remove(gone);
        self.remove_member_and_data(&old).await?;

        let next = self
            .members
            .iter()
            .map(|m| m.index)
            .max()
            .unwrap_or(0)
            .max(old.index)
            + 1;
        let name = member_name(next);
        let mut new = self.new_member(&name);
        // Held until the new container's label records its port.
        let lock = ports::lock().await?;
        let port = ports::pick(1, &ports::taken(&self.docker).await?)?[0];
        new.set_host_port(self.scheme(), port);
        if let Some(pki) = self.pki.as_mut() {
            pki.add_member(&name, &[name.clone(), new.container.clone()])?;
        }
        add_member(&c, &healthy.name, &name, &new.peer_url).await?;
        self.members.push(new.clone());
        let initial = self.initial_cluster();
        self.create_member(&new, &initial, "existing").await?;
        drop(lock);
        self.start_member(&new).await?;
        self.spec.size = self.members.len();
        self.wait_healthy(self.spec.start_timeout).await?;
        Ok(name)
    }
}

/// `member remove`, retried for 20 s: right after an election a request can time out
/// though it applied, and the retry of a remove that applied is refused as "member not
/// found", which is the success it stands for.
async fn remove_member(c: &Client, via: &str, lost: &str, id: u64) -> Result<()> {
    // A clone per attempt: the client is a handle on one shared connection.
    let removed = poll::until(Duration::from_secs(20), Duration::from_millis(200), || {
        let mut c = c.clone();
        async move {
            match c.member_remove(id).await {
                Ok(_) => Attempt::Ready(()),
                // NotFound is the only code etcd's MemberRemove uses for "member not found"
                // (an unknown ID, or one already removed); no other failure of it maps there.
                Err(e) if grpc_code(&e) == Some(Code::NotFound) => Attempt::Ready(()),
                Err(e) => {
                    tracing::debug!(%e, "member remove not applied yet; retrying");
                    Attempt::NotYet(e)
                }
            }
        }
    })
    .await;
    removed.map_err(|g| Error::etcd(via, format!("removing member {lost}"))(g.reason))
}

/// `member add`, retried for 30 s while etcd calls the cluster unhealthy: it refuses a new
/// voting member until every voting member has been connected for 5 s (the strict
/// reconfiguration check). Any other refusal is final.
async fn add_member(c: &Client, via: &str, name: &str, peer_url: &str) -> Result<()> {
    let added = poll::until(Duration::from_secs(30), Duration::from_millis(250), || {
        let mut c = c.clone();
        async move {
            match c.member_add([peer_url], None).await {
                Ok(_) => Attempt::Ready(()),
                Err(e) if is_unhealthy_cluster(&e) => Attempt::NotYet(e),
                Err(e) => Attempt::Fatal(e),
            }
        }
    })
    .await;
    added.map_err(|g| Error::etcd(via, format!("adding member {name}"))(g.reason))
}

fn grpc_code(e: &etcd_client::Error) -> Option<Code> {
    match e {
        etcd_client::Error::GRpcStatus(s) => Some(s.code()),
        _ => None,
    }
}

/// etcd's "unhealthy cluster" refusal. Its code, Unavailable, alone is ambiguous: etcd
/// also uses it for "no leader", "leader changed", "timed out" and a stopping server, and
/// the client for failed connections, none of which the strict reconfiguration check's
/// wait is for. So the message decides too.
fn is_unhealthy_cluster(e: &etcd_client::Error) -> bool {
    matches!(e, etcd_client::Error::GRpcStatus(s)
        if s.code() == Code::Unavailable && s.message().contains("unhealthy cluster"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_refusals_are_told_by_their_grpc_status() {
        let status = |s: tonic::Status| etcd_client::Error::GRpcStatus(s);
        let not_found = status(tonic::Status::not_found("etcdserver: member not found"));
        assert_eq!(grpc_code(&not_found), Some(Code::NotFound));
        assert!(is_unhealthy_cluster(&status(tonic::Status::unavailable(
            "etcdserver: unhealthy cluster"
        ))));
        for other in [
            tonic::Status::unavailable("etcdserver: no leader"),
            tonic::Status::unavailable("etcdserver: leader changed"),
            tonic::Status::failed_precondition("etcdserver: unhealthy cluster"),
        ] {
            assert!(!is_unhealthy_cluster(&status(other)));
        }
        assert_eq!(
            grpc_code(&etcd_client::Error::InvalidArgs("x".into())),
            None
        );
    }
}
