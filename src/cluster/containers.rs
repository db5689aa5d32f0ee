//! Creating and starting a cluster's Docker objects: its network, each member's volume and
//! container (with etcd's command line and certificates), and removing a member's.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkCreateRequest, NetworkingConfig,
    PortBinding, VolumeCreateRequest,
};
use bollard::query_parameters::{CreateContainerOptionsBuilder, StartContainerOptions};

use super::image::{self, BIN_DIR};
use super::ports;
use super::spec::{LABEL_IMAGE, LABEL_SIZE, LABEL_TLS};
use super::tls::{CONTAINER_PKI_DIR, Pki};
use super::{
    CLIENT_PORT, Cluster, ClusterSpec, DATA_DIR, Member, MemberState, PEER_PORT, StartOrder,
    VOLUME_MOUNT, member_name,
};
use crate::docker::{self, LABEL_MEMBER};
use crate::error::{Error, Result};

/// What etcd (3.4 and 3.5, zap logger) logs once its peer handler is attached.
const SERVING_PEERS: &str = "serving peer traffic";

impl Cluster {
    /// Creates and starts a cluster, returning once it is healthy: the member list is
    /// complete, all members agree on one leader, and a linearizable read through each
    /// member succeeds.
    pub async fn start(docker: &Docker, spec: ClusterSpec) -> Result<Cluster> {
        let t0 = Instant::now();
        let mut cluster = Cluster::create(docker, spec).await?;
        tracing::debug!(elapsed = ?t0.elapsed(), "network created");
        cluster.create_and_start_members().await?;
        tracing::debug!(elapsed = ?t0.elapsed(), "members started");
        cluster.wait_healthy(cluster.spec.start_timeout).await?;
        tracing::debug!(elapsed = ?t0.elapsed(), "healthy");
        cluster.start_elapsed = t0.elapsed();
        Ok(cluster)
    }

    /// Validates the spec, resolves the image, refuses a name in use, creates the cluster's
    /// network and describes its members (names, certificates; client URLs once started)
    /// without creating them. The returned value owns what this run creates: dropping it
    /// tears down the objects labelled with the cluster name *and* this run, nothing else.
    pub async fn create(docker: &Docker, spec: ClusterSpec) -> Result<Cluster> {
        spec.validate()?;
        let image = image::for_spec(docker, &spec.version, spec.image.as_deref()).await?;
        let network = format!("{}-net", spec.name);
        let token = format!("{}-{:08x}", spec.name, rand::random::<u32>());
        // Owns nothing until its network is created.
        let mut cluster = Cluster::handle(docker, spec, image, network, token);
        for index in 1..=cluster.spec.size {
            let m = cluster.new_member(&member_name(index));
            cluster.members.push(m);
        }
        let wanted = docker::Objects {
            containers: cluster
                .members
                .iter()
                .map(|m| m.container.clone())
                .collect(),
            networks: vec![cluster.network.clone()],
            volumes: cluster.members.iter().map(|m| m.volume.clone()).collect(),
        };
        docker::ensure_cluster_name_free(docker, &cluster.spec.name, &wanted).await?;
        // Held until the network's label records the picked ports.
        let lock = ports::lock().await?;
        let picked = ports::pick(cluster.members.len(), &ports::taken(docker).await?)?;
        let scheme = cluster.scheme();
        for (m, p) in cluster.members.iter_mut().zip(picked) {
            m.set_host_port(scheme, p);
        }
        cluster.keep = false;
        // The network first: a run directory then never exists without a Docker object,
        // which `cleanup` would take for a killed run's leftover.
        cluster.create_network().await?;
        drop(lock);
        if cluster.spec.tls {
            let names: Vec<(String, Vec<String>)> = cluster
                .members
                .iter()
                .map(|m| (m.name.clone(), vec![m.name.clone(), m.container.clone()]))
                .collect();
            cluster.pki = Some(Pki::generate(&cluster.run_dir.join("pki"), &names)?);
        }
        Ok(cluster)
    }

    async fn create_network(&self) -> Result<()> {
        let size = self.spec.size.to_string();
        let tls = self.spec.tls.to_string();
        let host_ports: Vec<u16> = self.members.iter().map(|m| m.host_port).collect();
        let host_ports = ports::join_ports(&host_ports);
        let labels = self.labels(&[
            (LABEL_SIZE, &size),
            (LABEL_TLS, &tls),
            (LABEL_IMAGE, &self.image.tag),
            (ports::LABEL_CLIENT_PORTS, &host_ports),
        ]);
        let request = NetworkCreateRequest {
            name: self.network.clone(),
            driver: Some("bridge".into()),
            labels: Some(labels),
            ..Default::default()
        };
        docker::create_unique_network(&self.docker, &self.spec.name, request).await
    }

    /// etcd's command line for a member, shaped like the seed's systemd units.
    pub fn member_args(&self, m: &Member, initial_cluster: &str, state: &str) -> Vec<String> {
        let s = self.scheme();
        let mut a: Vec<String> = [
            ("--name", m.name.clone()),
            ("--data-dir", DATA_DIR.to_string()),
            (
                "--listen-client-urls",
                format!("{s}://0.0.0.0:{CLIENT_PORT}"),
            ),
            // What the host reaches (its published port), so `etcdctl endpoint health
            // --cluster` from the host works; the harness never discovers endpoints
            // through the member list from inside the network.
            ("--advertise-client-urls", m.client_url.clone()),
            ("--listen-peer-urls", format!("{s}://0.0.0.0:{PEER_PORT}")),
            ("--initial-advertise-peer-urls", m.peer_url.clone()),
            ("--initial-cluster", initial_cluster.to_string()),
            ("--initial-cluster-token", self.token.clone()),
            ("--initial-cluster-state", state.to_string()),
            ("--logger", "zap".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
        if self.spec.tls {
            let d = CONTAINER_PKI_DIR;
            a.extend([
                format!("--cert-file={d}/server.pem"),
                format!("--key-file={d}/server-key.pem"),
                format!("--trusted-ca-file={d}/ca.pem"),
                "--client-cert-auth".to_string(),
                format!("--peer-cert-file={d}/peer.pem"),
                format!("--peer-key-file={d}/peer-key.pem"),
                format!("--peer-trusted-ca-file={d}/ca.pem"),
                "--peer-client-cert-auth".to_string(),
            ]);
        }
        a.extend(self.spec.etcd_args.iter().cloned());
        a
    }

    /// Creates the member's volume (if missing) and container, and copies its certificates
    /// in. Does not start it.
    pub async fn create_member(
        &self,
        m: &Member,
        initial_cluster: &str,
        state: &str,
    ) -> Result<()> {
        let port = m.host_port.to_string();
        let labels = self.labels(&[(LABEL_MEMBER, &m.name), (ports::LABEL_CLIENT_PORT, &port)]);
        self.docker
            .create_volume(VolumeCreateRequest {
                name: Some(m.volume.clone()),
                labels: Some(labels.clone()),
                ..Default::default()
            })
            .await
            .map_err(Error::docker(format!(
                "creating volume {} for member {}",
                m.volume, m.name
            )))?;
        let body = self.member_container(m, initial_cluster, state, labels);
        self.docker
            .create_container(
                Some(
                    CreateContainerOptionsBuilder::default()
                        .name(&m.container)
                        .build(),
                ),
                body,
            )
            .await
            .map_err(Error::docker(format!(
                "creating container for member {}",
                m.name
            )))?;
        match &self.pki {
            Some(pki) => self.copy_certificates(pki, m).await,
            None => Ok(()),
        }
    }

    /// The member's container: etcd on its volume, on the cluster network under its member
    /// name, its client port published on loopback at the member's own host port.
    fn member_container(
        &self,
        m: &Member,
        initial_cluster: &str,
        state: &str,
        labels: HashMap<String, String>,
    ) -> ContainerCreateBody {
        let port_key = format!("{CLIENT_PORT}/tcp");
        ContainerCreateBody {
            image: Some(self.image.tag.clone()),
            entrypoint: Some(vec![format!("{BIN_DIR}/etcd")]),
            cmd: Some(self.member_args(m, initial_cluster, state)),
            hostname: Some(m.name.clone()),
            labels: Some(labels),
            exposed_ports: Some(vec![port_key.clone()]),
            host_config: Some(HostConfig {
                mounts: Some(vec![docker::volume_mount(&m.volume, VOLUME_MOUNT)]),
                port_bindings: Some(HashMap::from([(
                    port_key,
                    Some(vec![PortBinding {
                        host_ip: Some("127.0.0.1".into()),
                        host_port: Some(m.host_port.to_string()),
                    }]),
                )])),
                network_mode: Some(self.network.clone()),
                // Docker's DNS answers member names itself and forwards every other name
                // to the host's resolvers. A member lost for good is such a name, and its
                // peers ask for it again and again: forwarded off this machine, each lookup
                // hung for seconds and the survivors stopped answering clients (writes
                // through two of three survivors of a 5-member cluster timed out for 5 s+,
                // while a `kill` that keeps the name left them writable). A resolver on the
                // container's own loopback refuses at once, and no query leaves the host.
                dns: Some(vec!["127.0.0.1".into()]),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    self.network.clone(),
                    EndpointSettings {
                        aliases: Some(vec![m.name.clone()]),
                        ..Default::default()
                    },
                )])),
            }),
            ..Default::default()
        }
    }

    async fn copy_certificates(&self, pki: &Pki, m: &Member) -> Result<()> {
        let opts = bollard::query_parameters::UploadToContainerOptionsBuilder::default()
            .path("/")
            .build();
        // Docker needs the target directory to exist, so the archive carries it.
        let archive = prefix_archive(
            &pki.member_archive(&m.name)?,
            CONTAINER_PKI_DIR.trim_start_matches('/'),
        );
        self.docker
            .upload_to_container(&m.container, Some(opts), bollard::body_full(archive.into()))
            .await
            .map_err(Error::docker(format!(
                "copying certificates into member {}",
                m.name
            )))
    }

    pub(super) async fn create_and_start_members(&self) -> Result<()> {
        let initial = self.initial_cluster();
        let create_all = |ms: std::ops::Range<usize>| {
            futures_util::future::try_join_all(
                self.members[ms]
                    .iter()
                    .map(|m| self.create_member(m, &initial, "new")),
            )
        };
        let start_all = |ms: std::ops::Range<usize>| {
            futures_util::future::try_join_all(
                self.members[ms].iter().map(|m| self.start_member(m)),
            )
        };
        let all = 0..self.members.len();
        match self.spec.start_order {
            StartOrder::Concurrent => {
                create_all(all.clone()).await?;
                start_all(all).await?;
            }
            StartOrder::Sequential => {
                create_all(all).await?;
                for m in &self.members {
                    self.start_member(m).await?;
                }
            }
            StartOrder::FirstThenRest => {
                let first = &self.members[0];
                let rest = 1..self.members.len();
                let t = Instant::now();
                self.create_member(first, &initial, "new").await?;
                self.start_member(first).await?;
                tracing::debug!(elapsed = ?t.elapsed(), "first member started");
                if !rest.is_empty() {
                    // The others are created while the first boots. The wait is only an
                    // optimisation: if the line never shows, starting the rest is still
                    // correct.
                    let serving = docker::wait_for_log(
                        &self.docker,
                        &first.container,
                        SERVING_PEERS,
                        Duration::from_secs(5),
                    );
                    let (created, seen) = tokio::join!(create_all(rest.clone()), serving);
                    created?;
                    tracing::debug!(seen, elapsed = ?t.elapsed(), "first member serving peers");
                    start_all(rest).await?;
                }
            }
        }
        Ok(())
    }

    /// The seed's `rm -rf /var/lib/etcd` on a stopped member. The image has no shell, and the
    /// data dir is the member's volume, so the volume is replaced by an empty one; the
    /// container is recreated with the same configuration, and stays stopped.
    pub async fn wipe_data(&self, m: &Member) -> Result<()> {
        self.remove_member_and_data(m).await?;
        self.create_member(m, &self.initial_cluster(), "new").await
    }

    /// Removes a member's container (killing it if it runs) and its data volume. Missing
    /// objects are fine: the member may already be gone.
    pub async fn remove_member_and_data(&self, m: &Member) -> Result<()> {
        let rm = bollard::query_parameters::RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        docker::ignore_missing(self.docker.remove_container(&m.container, Some(rm)).await)
            .map_err(Error::docker(format!("removing member {}", m.name)))?;
        docker::ignore_missing(
            self.docker
                .remove_volume(
                    &m.volume,
                    None::<bollard::query_parameters::RemoveVolumeOptions>,
                )
                .await,
        )
        .map_err(Error::docker(format!(
            "deleting the data volume of member {}",
            m.name
        )))
    }

    pub(super) fn new_member(&self, name: &str) -> Member {
        let index = name.trim_start_matches("etcd-").parse().unwrap_or(0);
        let s = self.scheme();
        Member {
            index,
            name: name.to_string(),
            container: format!("{}-{name}", self.spec.name),
            volume: format!("{}-{name}-data", self.spec.name),
            client_url: String::new(),
            host_port: 0,
            peer_url: format!("{s}://{name}:{PEER_PORT}"),
            id: 0,
            state: MemberState::Running,
        }
    }

    /// Reads each member's host port back from Docker (`attach`): the fixed binding of
    /// its container, running or not, else (a container made before ports were fixed) the
    /// port Docker published for a running one.
    pub(super) async fn read_ports(&mut self) -> Result<()> {
        let key = format!("{CLIENT_PORT}/tcp");
        let docker = self.docker.clone();
        let ports = futures_util::future::join_all(self.members.iter().map(|m| {
            let (docker, key) = (docker.clone(), key.clone());
            async move {
                let info = docker
                    .inspect_container(
                        &m.container,
                        None::<bollard::query_parameters::InspectContainerOptions>,
                    )
                    .await
                    .map_err(Error::docker(format!("inspecting member {}", m.name)))?;
                let first_port = |b: Option<Vec<PortBinding>>| {
                    b.into_iter()
                        .flatten()
                        .find_map(|b| b.host_port?.parse::<u16>().ok())
                };
                let fixed = info
                    .host_config
                    .and_then(|h| h.port_bindings)
                    .and_then(|mut p| p.remove(&key).flatten());
                let published = info
                    .network_settings
                    .and_then(|n| n.ports)
                    .and_then(|mut p| p.remove(&key).flatten());
                Ok::<_, Error>(first_port(fixed).or_else(|| first_port(published)))
            }
        }))
        .await;
        let scheme = self.scheme();
        for (m, p) in self.members.iter_mut().zip(ports) {
            if let Some(p) = p? {
                m.set_host_port(scheme, p);
            }
        }
        Ok(())
    }

    /// Starts all members at once (restored members have a WAL, so they skip the bootstrap
    /// check that makes simultaneous fresh starts slow).
    pub async fn start_all(&mut self) -> Result<()> {
        futures_util::future::try_join_all(self.members.iter().map(|m| self.start_member(m)))
            .await?;
        Ok(())
    }

    /// Starts one created member's container, on its own host port.
    pub async fn start_member(&self, m: &Member) -> Result<()> {
        let r = self
            .docker
            .start_container(&m.container, None::<StartContainerOptions>)
            .await;
        match r {
            Err(e) if port_in_use(&e.to_string()) => Err(Error::Failed(format!(
                "member {}'s client port 127.0.0.1:{} is held by another process; stop it, \
                 or recreate the cluster (`cluster down`, `cluster up`) to get new ports",
                m.name, m.host_port
            ))),
            r => r.map_err(Error::docker(format!("starting member {}", m.name))),
        }
    }
}

/// Docker's words when a published port cannot be bound (docker-proxy or the allocator).
fn port_in_use(msg: &str) -> bool {
    msg.contains("port is already allocated") || msg.contains("address already in use")
}

/// Re-roots every entry of a tar archive under `prefix/`, creating the directory entry.
fn prefix_archive(archive: &[u8], prefix: &str) -> Vec<u8> {
    let mut out = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    dir.set_cksum();
    out.append_data(&mut dir, format!("{prefix}/"), std::io::empty())
        .expect("in-memory tar");
    let mut a = tar::Archive::new(archive);
    for e in a.entries().expect("in-memory tar") {
        let mut e = e.expect("in-memory tar");
        let path = format!("{prefix}/{}", e.path().expect("in-memory tar").display());
        let mut h = e.header().clone();
        out.append_data(&mut h, path, &mut e)
            .expect("in-memory tar");
    }
    out.into_inner().expect("in-memory tar")
}
