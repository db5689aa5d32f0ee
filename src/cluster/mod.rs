//! Real etcd clusters of 1–9 members in Docker: one network per cluster, one container and
//! one named volume per member, every member's client port published on 127.0.0.1 so the
//! harness can talk to each member directly.

pub mod image;
pub mod tls;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, Mount, MountType, NetworkCreateRequest,
    NetworkingConfig, PortBinding, VolumeCreateRequest,
};
use bollard::query_parameters::{CreateContainerOptionsBuilder, StartContainerOptions};
use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};

use crate::docker::{self, LABEL_MEMBER, Selector};
use crate::error::{Error, Result};
use image::{BIN_DIR, EtcdImage};
use tls::{CONTAINER_PKI_DIR, Pki};

pub const MIN_SIZE: usize = 1;
pub const MAX_SIZE: usize = 9;
pub const CLIENT_PORT: u16 = 2379;
pub const PEER_PORT: u16 = 2380;
/// The member's volume is mounted here …
pub const VOLUME_MOUNT: &str = "/var/lib/etcd";
/// … and etcd's data dir is inside it, so it does not exist until etcd (or a restore)
/// creates it: 3.4's `etcdctl snapshot restore` refuses an existing data dir.
pub const DATA_DIR: &str = "/var/lib/etcd/data";
/// What etcd (3.4 and 3.5, zap logger) logs once its peer handler is attached.
const SERVING_PEERS: &str = "serving peer traffic";

/// Extra labels on the cluster network, so `cluster ls` can describe a cluster without any
/// state on disk.
const LABEL_SIZE: &str = "etcd-drill.size";
const LABEL_TLS: &str = "etcd-drill.tls";
const LABEL_IMAGE: &str = "etcd-drill.image";

/// How member containers are started. `make bench` times all three (reports/bench/cluster-start.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StartOrder {
    /// All `docker start` calls at once.
    Concurrent,
    /// One `docker start` after another, each awaited.
    Sequential,
    /// `etcd-1` first; once it serves peer traffic, all the others at once. A new member
    /// asks its peers (in sorted URL order) whether it is already bootstrapped and stops
    /// at the first answer, waiting up to 1 s on a peer that accepts connections but is
    /// not serving yet. With `etcd-1` serving, every other member gets its answer from the
    /// first peer it asks, so no one waits on anyone.
    FirstThenRest,
}

#[derive(Debug, Clone)]
pub struct ClusterSpec {
    pub name: String,
    pub size: usize,
    /// "3.5", "3.4", or a full version with a local image.
    pub version: String,
    pub tls: bool,
    pub run_id: String,
    pub start_timeout: Duration,
    pub start_order: StartOrder,
}

impl ClusterSpec {
    pub fn new(size: usize) -> Self {
        ClusterSpec {
            name: format!("drill-{:06x}", rand::random::<u32>() & 0xff_ffff),
            size,
            version: image::DEFAULT_VERSION.to_string(),
            tls: false,
            run_id: docker::new_run_id(),
            start_timeout: Duration::from_secs(60),
            start_order: StartOrder::FirstThenRest,
        }
    }

    /// Checks everything that can be checked without Docker, so bad input never creates
    /// anything.
    pub fn validate(&self) -> Result<()> {
        validate_size(self.size)?;
        validate_name(&self.name)?;
        image::Line::parse(&self.version)?;
        Ok(())
    }
}

pub fn validate_size(size: usize) -> Result<()> {
    if (MIN_SIZE..=MAX_SIZE).contains(&size) {
        Ok(())
    } else {
        Err(Error::InvalidSize { size })
    }
}

pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "invalid cluster name {name:?}: use 1-40 characters of a-z, 0-9 and '-', starting with a letter or digit"
        )))
    }
}

/// One etcd member: its identity inside the cluster and how the harness reaches it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Member {
    /// 1-based, matching the member name `etcd-<index>`.
    pub index: usize,
    /// etcd member name; also its DNS alias on the cluster network.
    pub name: String,
    pub container: String,
    pub volume: String,
    /// From the host: `http(s)://127.0.0.1:<published port>`; the port is Docker's choice,
    /// known once the container has started (see [`Cluster::refresh_ports`]).
    pub client_url: String,
    /// From the cluster network: `http(s)://etcd-<index>:2380`.
    pub peer_url: String,
    /// etcd's member ID, known once the cluster is healthy.
    pub id: u64,
    /// What the fault injector has done to it.
    pub state: MemberState,
}

/// A member's condition as the harness left it. Only `Running` members are expected to
/// answer; `Partitioned` ones answer clients but cannot reach (some) peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MemberState {
    Running,
    Partitioned,
    Paused,
    /// SIGKILLed or SIGTERMed; container and data kept.
    Down,
    /// Container and data volume destroyed (permanent failure).
    Gone,
}

impl MemberState {
    /// Whether the member's process is up and reachable from the harness.
    pub fn answers_clients(self) -> bool {
        matches!(self, MemberState::Running | MemberState::Partitioned)
    }
}

pub fn member_name(index: usize) -> String {
    format!("etcd-{index}")
}

pub struct Cluster {
    docker: Docker,
    pub spec: ClusterSpec,
    pub image: EtcdImage,
    pub network: String,
    pub members: Vec<Member>,
    /// `--initial-cluster-token` the members were bootstrapped with.
    pub token: String,
    pub pki: Option<Pki>,
    pub run_dir: PathBuf,
    /// Time from the first Docker call to healthy.
    pub start_elapsed: Duration,
    keep: bool,
    torn_down: bool,
}

/// Where per-cluster files (certificates, snapshots) live: `$ETCD_DRILL_STATE_DIR/<cluster>`,
/// by default under the system temp dir.
pub fn run_dir(cluster: &str) -> PathBuf {
    state_root().join(cluster)
}

/// The directory holding every cluster's run directory.
pub fn state_root() -> PathBuf {
    std::env::var_os("ETCD_DRILL_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("etcd-drill"))
}

/// What a run directory may hold; a directory holding anything else is not ours.
const RUN_DIR_ENTRIES: [&str; 2] = ["pki", "snapshots"];

/// Removes the run directories under `root` of clusters not in `live` (all of them, or
/// only `only`), and returns how many. Only real directories named like a cluster and
/// holding nothing but `pki` and `snapshots` are touched: `root` may be a directory the
/// user shares with other things (`ETCD_DRILL_STATE_DIR`).
pub fn remove_stale_run_dirs(
    root: &std::path::Path,
    live: &std::collections::BTreeSet<String>,
    only: Option<&str>,
) -> Result<usize> {
    let entries = match std::fs::read_dir(root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        r => r.map_err(Error::io("listing the state directory", root))?,
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if only.is_some_and(|o| o != name) || live.contains(&name) || validate_name(&name).is_err()
        {
            continue;
        }
        let dir = root.join(&name);
        if is_run_dir(&dir) {
            std::fs::remove_dir_all(&dir)
                .map_err(Error::io("removing a stale run directory", &dir))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// A real directory (not a link), not empty, whose entries are all directories in
/// [`RUN_DIR_ENTRIES`].
fn is_run_dir(dir: &std::path::Path) -> bool {
    let real_dir = |p: &std::path::Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let entries: Vec<_> = entries.collect();
    real_dir(dir)
        && !entries.is_empty()
        && entries.iter().all(|e| {
            e.as_ref().is_ok_and(|e| {
                RUN_DIR_ENTRIES.contains(&e.file_name().to_string_lossy().as_ref())
                    && real_dir(&e.path())
            })
        })
}

#[cfg(test)]
mod run_dir_tests {
    use super::*;

    fn mkdirs(root: &std::path::Path, dirs: &[&str]) {
        for d in dirs {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
    }

    #[test]
    fn stale_run_dirs_go_and_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("state");
        mkdirs(
            &root,
            &["dead-1/pki", "dead-2/snapshots", "dead-3/pki", "live/pki"],
        );
        std::fs::write(root.join("dead-3/pki/ca.pem"), "x").unwrap();
        // Not ours: a name no cluster can have, unknown content, empty, a file, a link.
        mkdirs(&root, &["Not_Ours/pki", "src/pki", "src/lib", "empty"]);
        std::fs::write(root.join("notes"), "keep").unwrap();
        let outside = tmp.path().join("outside");
        mkdirs(&outside, &["pki"]);
        std::os::unix::fs::symlink(&outside, root.join("linked")).unwrap();
        let live = std::collections::BTreeSet::from(["live".to_string()]);

        assert_eq!(
            remove_stale_run_dirs(&root, &live, Some("dead-1")).unwrap(),
            1
        );
        assert!(!root.join("dead-1").exists());
        assert!(
            root.join("dead-2").exists(),
            "--cluster dead-1 touches only dead-1"
        );
        assert_eq!(remove_stale_run_dirs(&root, &live, None).unwrap(), 2);
        for kept in ["live", "Not_Ours", "src", "empty", "notes", "linked"] {
            assert!(root.join(kept).exists(), "{kept} must stay");
        }
        assert!(outside.join("pki").exists());
        assert_eq!(remove_stale_run_dirs(&root, &live, None).unwrap(), 0);
        let missing = tmp.path().join("never-created");
        assert_eq!(remove_stale_run_dirs(&missing, &live, None).unwrap(), 0);
    }
}

impl Cluster {
    /// Creates and starts a cluster, returning once it is healthy: the member list is
    /// complete, all members agree on one leader, and a linearizable read through each
    /// member succeeds.
    pub async fn start(docker: &Docker, spec: ClusterSpec) -> Result<Cluster> {
        let t0 = Instant::now();
        let mut cluster = Cluster::create(docker, spec).await?;
        tracing::debug!(elapsed = ?t0.elapsed(), "network created");
        cluster.create_and_start_members().await?;
        cluster.refresh_ports().await?;
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
        let image = image::resolve(docker, &spec.version).await?;
        let mut cluster = Cluster {
            docker: docker.clone(),
            network: format!("{}-net", spec.name),
            token: format!("{}-{:08x}", spec.name, rand::random::<u32>()),
            image,
            members: vec![],
            pki: None,
            run_dir: run_dir(&spec.name),
            spec,
            start_elapsed: Duration::ZERO,
            // Owns nothing until its network is created.
            keep: true,
            torn_down: false,
        };
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
        cluster.keep = false;
        // The network first: a run directory then never exists without a Docker object,
        // which `cleanup` would take for a killed run's leftover.
        cluster.create_network().await?;
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

    /// Rebuilds the handle of a running cluster from Docker alone (labels, container states,
    /// partition rules) plus its certificates on disk, for commands run against a cluster
    /// started earlier (`cluster up`). The handle does not tear the cluster down when dropped.
    pub async fn attach(docker: &Docker, name: &str) -> Result<Cluster> {
        use bollard::query_parameters::{ListContainersOptionsBuilder, ListNetworksOptionsBuilder};
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
        let mut cluster = Cluster {
            docker: docker.clone(),
            network: net.name.unwrap_or_else(|| format!("{name}-net")),
            token: String::new(),
            image,
            members: vec![],
            pki: None,
            run_dir: run_dir(name),
            spec,
            start_elapsed: Duration::ZERO,
            keep: true,
            torn_down: false,
        };
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
        cluster.refresh_ports().await?;
        // Partitions live in each member's network namespace: read them back.
        for i in 0..cluster.members.len() {
            if cluster.members[i].state != MemberState::Running {
                continue;
            }
            if let Ok((pid, _)) = cluster.member_net(&cluster.members[i]).await {
                let out = std::process::Command::new("nsenter")
                    .args(["-t", &pid.to_string(), "-n", "iptables", "-S", "ETCD_DRILL"])
                    .output();
                if out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("-j DROP")) {
                    cluster.members[i].state = MemberState::Partitioned;
                }
            }
        }
        Ok(cluster)
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn scheme(&self) -> &'static str {
        if self.spec.tls { "https" } else { "http" }
    }

    /// `etcd-1=http://etcd-1:2380,etcd-2=...` for the current member set.
    pub fn initial_cluster(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn labels(&self, extra: &[(&str, &str)]) -> HashMap<String, String> {
        docker::labels(&self.spec.name, &self.spec.run_id, extra)
    }

    async fn create_network(&self) -> Result<()> {
        let size = self.spec.size.to_string();
        let tls = self.spec.tls.to_string();
        let labels = self.labels(&[
            (LABEL_SIZE, &size),
            (LABEL_TLS, &tls),
            (LABEL_IMAGE, &self.image.tag),
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
            (
                "--advertise-client-urls",
                format!("{s}://{}:{CLIENT_PORT}", m.name),
            ),
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
        let labels = self.labels(&[(LABEL_MEMBER, &m.name)]);
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
        let port_key = format!("{CLIENT_PORT}/tcp");
        let body = ContainerCreateBody {
            image: Some(self.image.tag.clone()),
            entrypoint: Some(vec![format!("{BIN_DIR}/etcd")]),
            cmd: Some(self.member_args(m, initial_cluster, state)),
            hostname: Some(m.name.clone()),
            labels: Some(labels),
            exposed_ports: Some(vec![port_key.clone()]),
            host_config: Some(HostConfig {
                mounts: Some(vec![Mount {
                    typ: Some(MountType::VOLUME),
                    source: Some(m.volume.clone()),
                    target: Some(VOLUME_MOUNT.into()),
                    ..Default::default()
                }]),
                port_bindings: Some(HashMap::from([(
                    port_key,
                    // Docker picks the port: its allocator is race-free across concurrent
                    // clusters, unlike choosing one here. Read back after every start.
                    Some(vec![PortBinding {
                        host_ip: Some("127.0.0.1".into()),
                        host_port: Some(String::new()),
                    }]),
                )])),
                network_mode: Some(self.network.clone()),
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
        };
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
        if let Some(pki) = &self.pki {
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
                )))?;
        }
        Ok(())
    }

    async fn create_and_start_members(&self) -> Result<()> {
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

    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
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
        let t0 = Instant::now();
        let opts = self
            .connect_options()
            .with_timeout(Duration::from_millis(500));
        loop {
            let last = match Client::connect([m.client_url.as_str()], Some(opts.clone())).await {
                Ok(mut c) => match c.status().await {
                    Ok(_) => return Ok(()),
                    Err(e) => e.to_string(),
                },
                Err(e) => e.to_string(),
            };
            if t0.elapsed() >= timeout {
                return Err(Error::Unhealthy {
                    cluster: self.spec.name.clone(),
                    waited_s: t0.elapsed().as_secs_f64(),
                    reason: format!(
                        "member {} does not answer at {}: {last}",
                        m.name, m.client_url
                    ),
                    logs: self.member_logs(15).await,
                });
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
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
        let t0 = Instant::now();
        let expected = self.members.len();
        let mut last;
        loop {
            let opts = self.connect_options();
            let results = futures_util::future::join_all(which.iter().map(|&i| {
                let m = &self.members[i];
                probe_member(&m.name, &m.client_url, opts.clone(), expected)
            }))
            .await;
            match results
                .into_iter()
                .collect::<std::result::Result<Vec<_>, _>>()
            {
                Ok(ok) => {
                    let leaders: std::collections::BTreeSet<u64> =
                        ok.iter().map(|(_, l)| *l).collect();
                    if leaders.len() == 1 {
                        for (&i, (id, _)) in which.iter().zip(ok) {
                            self.members[i].id = id;
                        }
                        return Ok(());
                    }
                    last = format!("members disagree on the leader: {leaders:?}");
                }
                Err(e) => last = e,
            }
            if t0.elapsed() >= timeout {
                return Err(Error::Unhealthy {
                    cluster: self.spec.name.clone(),
                    waited_s: t0.elapsed().as_secs_f64(),
                    reason: last,
                    logs: self.member_logs(15).await,
                });
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
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
        for n in names {
            let m = self.new_member(n);
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

    fn new_member(&self, name: &str) -> Member {
        let index = name.trim_start_matches("etcd-").parse().unwrap_or(0);
        let s = self.scheme();
        Member {
            index,
            name: name.to_string(),
            container: format!("{}-{name}", self.spec.name),
            volume: format!("{}-{name}-data", self.spec.name),
            client_url: String::new(),
            peer_url: format!("{s}://{name}:{PEER_PORT}"),
            id: 0,
            state: MemberState::Running,
        }
    }

    /// Reads each running member's published client port back from Docker.
    pub async fn refresh_ports(&mut self) -> Result<()> {
        let key = format!("{CLIENT_PORT}/tcp");
        let scheme = self.scheme();
        let docker = self.docker.clone();
        let ports = futures_util::future::join_all(self.members.iter().map(|m| {
            let docker = docker.clone();
            let key = key.clone();
            async move {
                if !m.state.answers_clients() {
                    return Ok(None);
                }
                let info = docker
                    .inspect_container(
                        &m.container,
                        None::<bollard::query_parameters::InspectContainerOptions>,
                    )
                    .await
                    .map_err(Error::docker(format!("inspecting member {}", m.name)))?;
                let port = info
                    .network_settings
                    .and_then(|n| n.ports)
                    .and_then(|p| p.get(&key).cloned().flatten())
                    .and_then(|b| b.into_iter().find_map(|b| b.host_port))
                    .and_then(|p| p.parse::<u16>().ok());
                match port {
                    Some(p) => Ok(Some(p)),
                    None => Err(Error::Failed(format!(
                        "member {} has no published client port",
                        m.name
                    ))),
                }
            }
        }))
        .await;
        for (m, p) in self.members.iter_mut().zip(ports) {
            if let Some(p) = p? {
                m.client_url = format!("{scheme}://127.0.0.1:{p}");
            }
        }
        Ok(())
    }

    /// Starts all members at once (restored members have a WAL, so they skip the bootstrap
    /// check that makes simultaneous fresh starts slow).
    pub async fn start_all(&mut self) -> Result<()> {
        futures_util::future::try_join_all(self.members.iter().map(|m| self.start_member(m)))
            .await?;
        self.refresh_ports().await
    }

    /// Starts one created member's container. Its client port is known only after
    /// [`Cluster::refresh_ports`].
    pub async fn start_member(&self, m: &Member) -> Result<()> {
        self.docker
            .start_container(&m.container, None::<StartContainerOptions>)
            .await
            .map_err(Error::docker(format!("starting member {}", m.name)))
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
        let t0 = Instant::now();
        loop {
            if let Some(l) = self.leader().await {
                return Ok(l);
            }
            if t0.elapsed() > timeout {
                return Err(Error::Unhealthy {
                    cluster: self.spec.name.clone(),
                    waited_s: t0.elapsed().as_secs_f64(),
                    reason: "no member reports a leader".into(),
                    logs: self.member_logs(15).await,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
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
        // Losing the leader means an election first; reconfigure once there is a leader, and
        // retry what times out (a retried remove that already applied says "not found").
        self.wait_for_leader(self.spec.start_timeout).await?;
        let mut c = self.client(&healthy).await?;
        let t0 = Instant::now();
        loop {
            match c.member_remove(lost_id).await {
                Ok(_) => break,
                Err(e) if e.to_string().contains("member not found") => break,
                Err(e) if t0.elapsed() < Duration::from_secs(20) => {
                    tracing::debug!(%e, "member remove not applied yet; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => {
                    return Err(Error::etcd(
                        &healthy.name,
                        format!("removing member {lost}"),
                    )(e));
                }
            }
        }
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
        let new = self.new_member(&name);
        if let Some(pki) = self.pki.as_mut() {
            pki.add_member(&name, &[name.clone(), new.container.clone()])?;
        }
        // etcd refuses to add a voting member until every voting member has been connected
        // for 5 s (strict reconfig check, "unhealthy cluster"): wait that out.
        let t0 = Instant::now();
        loop {
            match c.member_add([new.peer_url.as_str()], None).await {
                Ok(_) => break,
                Err(e)
                    if t0.elapsed() < Duration::from_secs(30)
                        && e.to_string().contains("unhealthy cluster") =>
                {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => {
                    return Err(Error::etcd(&healthy.name, format!("adding member {name}"))(
                        e,
                    ));
                }
            }
        }
        self.members.push(new.clone());
        let initial = self.initial_cluster();
        self.create_member(&new, &initial, "existing").await?;
        self.docker
            .start_container(&new.container, None::<StartContainerOptions>)
            .await
            .map_err(Error::docker(format!("starting new member {name}")))?;
        self.refresh_ports().await?;
        self.spec.size = self.members.len();
        self.wait_healthy(self.spec.start_timeout).await?;
        Ok(name)
    }

    /// Leaves the cluster running when this value is dropped (`cluster up`).
    pub fn keep(mut self) -> Self {
        self.keep = true;
        self
    }

    /// Removes the containers, volumes and network this run created for the cluster, and
    /// its run directory once nothing of the cluster is left (see [`destroy_own`]).
    pub async fn destroy(mut self) -> Result<()> {
        self.torn_down = true;
        destroy_own(&self.docker, &self.spec.name, &self.spec.run_id).await
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

/// Tears down a cluster by name, whichever run made it: only for an explicit request
/// (`cluster down`, `cleanup --cluster`), never for a handle's rollback.
pub async fn destroy_by_name(docker: &Docker, name: &str) -> Result<()> {
    docker::remove_objects(docker, &Selector::cluster(name)).await?;
    remove_run_dir(name)
}

/// Tears down what run `run_id` created of cluster `name` and nothing else: a failed
/// `cluster up X` must not touch a running X of another run. The run directory, shared by
/// name, goes only once no object of the cluster is left.
pub async fn destroy_own(docker: &Docker, name: &str, run_id: &str) -> Result<()> {
    docker::remove_objects(docker, &Selector::cluster_run(name, run_id)).await?;
    if docker::list_objects(docker, &Selector::cluster(name))
        .await?
        .is_empty()
    {
        remove_run_dir(name)?;
    }
    Ok(())
}

fn remove_run_dir(name: &str) -> Result<()> {
    let dir = run_dir(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .map_err(Error::io("removing the cluster's run directory", &dir))?;
    }
    Ok(())
}

impl Drop for Cluster {
    /// Tests and failed starts drop clusters without an explicit `destroy`; a panic unwinding
    /// through a test drops them too. Async work cannot run in `drop`, so a short-lived thread
    /// with its own runtime does the teardown and is joined.
    fn drop(&mut self) {
        if self.keep || self.torn_down {
            return;
        }
        let (name, run_id) = (self.spec.name.clone(), self.spec.run_id.clone());
        let docker = self.docker.clone();
        let handle = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            match rt {
                Ok(rt) => rt
                    .block_on(destroy_own(&docker, &name, &run_id))
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            }
        });
        if let Ok(Err(e)) = handle.join() {
            eprintln!(
                "etcd-drill: tearing down cluster {0} failed: {e}; run `etcd-drill cleanup --cluster {0}`",
                self.spec.name
            );
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_outside_one_to_nine_are_refused() {
        for bad in [0, 10, 100] {
            let err = validate_size(bad).unwrap_err().to_string();
            assert!(
                err.contains(&format!("invalid cluster size {bad}")),
                "{err}"
            );
        }
        for good in 1..=9 {
            validate_size(good).unwrap();
        }
    }

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

    #[test]
    fn names_are_docker_safe() {
        validate_name("drill-abc").unwrap();
        assert!(validate_name("Bad_Name").is_err());
        assert!(validate_name("").is_err());
        assert!(validate_name("-x").is_err());
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
}

pub async fn list(docker: &Docker) -> Result<Vec<ClusterRow>> {
    use bollard::query_parameters::{ListContainersOptionsBuilder, ListNetworksOptionsBuilder};
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
                .filters(&filters)
                .build(),
        ))
        .await
        .map_err(Error::docker("listing containers"))?;
    let mut rows: Vec<ClusterRow> = nets
        .into_iter()
        .filter_map(|n| {
            let l = n.labels?;
            let name = l.get(docker::LABEL_CLUSTER)?.clone();
            let running = containers
                .iter()
                .filter(|c| {
                    c.labels
                        .as_ref()
                        .and_then(|cl| cl.get(docker::LABEL_CLUSTER))
                        == Some(&name)
                })
                .count();
            Some(ClusterRow {
                size: l.get(LABEL_SIZE).and_then(|s| s.parse().ok()).unwrap_or(0),
                tls: l.get(LABEL_TLS).map(|t| t == "true").unwrap_or(false),
                image: l.get(LABEL_IMAGE).cloned().unwrap_or_default(),
                running,
                name,
            })
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}
