//! Clusters that exist already: rebuilding the handle of one started earlier (by another
//! process), and listing them all, from Docker labels alone.

use bollard::Docker;
use bollard::query_parameters::{ListContainersOptionsBuilder, ListNetworksOptionsBuilder};

use super::spec::{CLIENT_PORT, LABEL_IMAGE, LABEL_SIZE, LABEL_TLS};
use super::tls::Pki;
use super::{Cluster, ClusterSpec, MemberState, image, ports, validate_name};
use crate::docker::{self, LABEL_MEMBER, Selector, netns};
use crate::error::{Error, Result};
use crate::model::etcd::member_index;

impl Cluster {
    /// Rebuilds the handle of a running cluster from Docker alone (labels, container states,
    /// partition rules) plus its certificates on disk, for commands run against a cluster
    /// started earlier (`cluster up`). The handle does not tear the cluster down when dropped.
    pub async fn attach(docker: &Docker, name: &str) -> Result<Cluster> {
        validate_name(name)?;
        let filters = Selector::cluster(name).filters();
        let net = docker
            .list_networks(Some(
                ListNetworksOptionsBuilder::default()
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(Error::docker("listing networks"))?
            .into_iter()
            .next()
            .ok_or_else(|| {
                Error::InvalidInput(format!(
                    "no cluster named {name}; `etcd-drill cluster ls` lists the running ones"
                ))
            })?;
        let labels = net.labels.unwrap_or_default();
        let tls = labels.get(LABEL_TLS).is_some_and(|t| t == "true");
        let tag = labels.get(LABEL_IMAGE).cloned().unwrap_or_default();
        let version = tag
            .rsplit(':')
            .next()
            .unwrap_or(image::DEFAULT_VERSION)
            .to_string();
        let image = image::resolve(docker, &version).await?;
        let containers = docker
            .list_containers(Some(
                ListContainersOptionsBuilder::default()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(Error::docker("listing containers"))?;
        let mut spec = ClusterSpec::new(0);
        spec.name = name.to_string();
        spec.version = version;
        spec.tls = tls;
        spec.run_id = labels.get(docker::LABEL_RUN).cloned().unwrap_or_default();
        // What a command against it creates (a fresh volume for `wipe-data`) is kept alike.
        spec.persistent = labels.get(docker::LABEL_KEEP).is_some_and(|k| k == "1");
        let network = net.name.unwrap_or_else(|| format!("{name}-net"));
        let mut cluster = Cluster::handle(docker, spec, image, network, String::new());
        for c in containers {
            let Some(member) = c.labels.as_ref().and_then(|l| l.get(LABEL_MEMBER)).cloned() else {
                continue;
            };
            let mut m = cluster.new_member(&member);
            m.state = match c.state.map(|s| s.to_string()).as_deref() {
                Some("running") => MemberState::Running,
                Some("paused") => MemberState::Paused,
                _ => MemberState::Down,
            };
            cluster.members.push(m);
        }
        cluster.members.sort_by_key(|m| m.index);
        cluster.spec.size = cluster.members.len();
        if tls {
            let names: Vec<String> = cluster.members.iter().map(|m| m.name.clone()).collect();
            cluster.pki = Some(Pki::load(&cluster.run_dir.join("pki"), &names)?);
        }
        cluster.read_ports().await?;
        cluster.read_partitions().await;
        Ok(cluster)
    }

    /// Partitions live in each member's network namespace, not in Docker: marks the
    /// running members whose namespace drops traffic as partitioned.
    async fn read_partitions(&mut self) {
        for i in 0..self.members.len() {
            if self.members[i].state != MemberState::Running {
                continue;
            }
            if let Ok((pid, _)) = self.member_net(&self.members[i]).await
                && netns::drops_traffic(pid).await
            {
                self.members[i].state = MemberState::Partitioned;
            }
        }
    }
}

/// A cluster as `cluster ls` sees it, read from Docker labels alone.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClusterRow {
    pub name: String,
    pub size: usize,
    pub running: usize,
    pub tls: bool,
    pub image: String,
    /// Each member's container as Docker has it: name, state, and the client URL it is
    /// reachable at from this host while it runs.
    pub members: Vec<MemberRow>,
}

/// One member as `cluster ls --json` lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MemberRow {
    pub name: String,
    /// Docker's word for the container: running, paused, exited, created, …
    pub state: String,
    pub client_url: Option<String>,
}

/// A member of `cluster` from a container summary, if the container is one.
fn member_row(
    c: &bollard::models::ContainerSummary,
    cluster: &str,
    scheme: &str,
) -> Option<MemberRow> {
    let labels = c.labels.as_ref()?;
    if labels.get(docker::LABEL_CLUSTER).map(String::as_str) != Some(cluster) {
        return None;
    }
    let name = labels.get(docker::LABEL_MEMBER)?.clone();
    // The fixed port its label records, else (an older container) what Docker publishes.
    let port = labels
        .get(ports::LABEL_CLIENT_PORT)
        .and_then(|l| ports::parse_ports(l).first().copied())
        .or_else(|| {
            c.ports
                .iter()
                .flatten()
                .find(|p| p.private_port == CLIENT_PORT && p.public_port.is_some())
                .and_then(|p| p.public_port)
        });
    Some(MemberRow {
        name,
        state: c.state.map(|s| s.to_string()).unwrap_or_default(),
        client_url: port.map(|p| format!("{scheme}://127.0.0.1:{p}")),
    })
}

/// Every network and container (running or not) labelled etcd-drill=1.
pub(super) async fn labelled(
    docker: &Docker,
) -> Result<(
    Vec<bollard::models::Network>,
    Vec<bollard::models::ContainerSummary>,
)> {
    let filters = Selector::all().filters();
    let nets = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await
        .map_err(Error::docker("listing networks"))?;
    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .map_err(Error::docker("listing containers"))?;
    Ok((nets, containers))
}

/// Every cluster Docker has a network of, with its members and how many of them run.
pub async fn list(docker: &Docker) -> Result<Vec<ClusterRow>> {
    let (nets, containers) = labelled(docker).await?;
    let mut rows: Vec<ClusterRow> = nets
        .into_iter()
        .filter_map(|n| {
            let l = n.labels?;
            let name = l.get(docker::LABEL_CLUSTER)?.clone();
            let tls = l.get(LABEL_TLS).map(|t| t == "true").unwrap_or(false);
            let scheme = if tls { "https" } else { "http" };
            let mut members: Vec<MemberRow> = containers
                .iter()
                .filter_map(|c| member_row(c, &name, scheme))
                .collect();
            members.sort_by_key(|m| member_index(&m.name));
            Some(ClusterRow {
                size: l.get(LABEL_SIZE).and_then(|s| s.parse().ok()).unwrap_or(0),
                running: members.iter().filter(|m| m.state == "running").count(),
                tls,
                image: l.get(LABEL_IMAGE).cloned().unwrap_or_default(),
                members,
                name,
            })
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}
