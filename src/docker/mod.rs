//! Docker plumbing shared by every module: connecting (with API version negotiation, since
//! the daemon here speaks 1.41 and bollard defaults to newer), the labels that make every
//! object findable for cleanup, label-based teardown, and one-shot helper containers.

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, ListNetworksOptionsBuilder,
    ListVolumesOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    WaitContainerOptionsBuilder,
};
use bollard::{API_DEFAULT_VERSION, Docker};
use futures_util::StreamExt;

use crate::error::{Error, Result};

/// Every container, network and volume etcd-drill creates carries this label (value "1").
pub const LABEL: &str = "etcd-drill";
pub const LABEL_CLUSTER: &str = "etcd-drill.cluster";
pub const LABEL_RUN: &str = "etcd-drill.run";
pub const LABEL_MEMBER: &str = "etcd-drill.member";

/// Connects to the daemon the docker CLI would use (`DOCKER_HOST`: `unix://` or plain
/// `tcp://`; else the local socket) and negotiates the API version down to what it speaks.
/// Anything else (TLS, ssh://, contexts) is refused rather than silently replaced by the
/// local daemon: `cleanup` must never run against a daemon the user did not mean.
pub async fn connect() -> Result<Docker> {
    let host = daemon_host(&DaemonEnv::from_process())?;
    let unavailable = |source| Error::DockerUnavailable {
        host: host.clone(),
        source,
    };
    let docker = if host.starts_with("tcp://") {
        Docker::connect_with_http(&host, CONNECT_TIMEOUT_S, API_DEFAULT_VERSION)
    } else {
        Docker::connect_with_unix(&host, CONNECT_TIMEOUT_S, API_DEFAULT_VERSION)
    }
    .map_err(unavailable)?;
    let docker = docker.negotiate_version().await.map_err(unavailable)?;
    docker.ping().await.map_err(unavailable)?;
    Ok(docker)
}

/// bollard's own default request timeout.
const CONNECT_TIMEOUT_S: u64 = 120;
const DEFAULT_SOCKET: &str = "unix:///var/run/docker.sock";
/// The docker CLI's port for `tcp://HOST` without one (plain, no TLS).
const DEFAULT_TCP_PORT: u16 = 2375;

/// What decides which daemon the docker CLI talks to.
#[derive(Debug, Default, Clone)]
pub struct DaemonEnv {
    pub docker_host: Option<String>,
    pub docker_context: Option<String>,
    pub tls_verify: Option<String>,
    /// `currentContext` of the docker CLI's config.json.
    pub config_context: Option<String>,
}

impl DaemonEnv {
    pub fn from_process() -> Self {
        let var = |k| std::env::var(k).ok().filter(|v: &String| !v.is_empty());
        DaemonEnv {
            docker_host: var("DOCKER_HOST"),
            docker_context: var("DOCKER_CONTEXT"),
            tls_verify: var("DOCKER_TLS_VERIFY"),
            config_context: config_context(),
        }
    }
}

/// `currentContext` from `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`).
fn config_context() -> Option<String> {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".docker")))?;
    let text = std::fs::read_to_string(dir.join("config.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("currentContext")?.as_str().map(str::to_string)
}

/// The daemon address to connect to, in the docker CLI's order: `DOCKER_HOST`, then a
/// context (`DOCKER_CONTEXT`, then config.json), then the local socket. Returns
/// `unix://PATH` or `tcp://HOST:PORT`; refuses what etcd-drill cannot honour.
pub fn daemon_host(env: &DaemonEnv) -> Result<String> {
    match env.docker_host.as_deref() {
        None => context_host(env),
        Some(h) if h.starts_with("unix://") => Ok(h.to_string()),
        Some(h) => tcp_host(h, env.tls_verify.is_some()),
    }
}

fn refuse(endpoint: String, reason: &str) -> Error {
    Error::DockerEndpoint {
        endpoint,
        reason: reason.to_string(),
    }
}

/// Without `DOCKER_HOST`: the local socket, unless a docker context other than `default`
/// is selected (its endpoint could be anywhere).
fn context_host(env: &DaemonEnv) -> Result<String> {
    let context = [&env.docker_context, &env.config_context]
        .into_iter()
        .flatten()
        .find(|c| !c.is_empty());
    match context {
        Some(c) if c != "default" => Err(refuse(
            format!("docker context {c}"),
            "etcd-drill does not read docker contexts",
        )),
        _ => Ok(DEFAULT_SOCKET.to_string()),
    }
}

/// `tcp://HOST[:PORT]`, `http://…` or, like the docker CLI, a bare `HOST:PORT`, as
/// `tcp://HOST:PORT` (port 2375 by default); TLS and other schemes are refused.
fn tcp_host(host: &str, tls_verify: bool) -> Result<String> {
    let bare = (!host.contains("://")).then_some(host);
    let Some(authority) = host
        .strip_prefix("tcp://")
        .or_else(|| host.strip_prefix("http://"))
        .or(bare)
    else {
        return Err(refuse(
            format!("DOCKER_HOST={host}"),
            "only unix:// and tcp:// are supported",
        ));
    };
    if tls_verify {
        return Err(refuse(
            format!("DOCKER_HOST={host} with DOCKER_TLS_VERIFY"),
            "etcd-drill speaks plain tcp:// only, not TLS",
        ));
    }
    let authority = authority.trim_end_matches('/');
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.contains(']'));
    Ok(if has_port {
        format!("tcp://{authority}")
    } else {
        format!("tcp://{authority}:{DEFAULT_TCP_PORT}")
    })
}

/// Whether the daemon sees this machine's files, so a host directory can be bind-mounted
/// instead of copied: it is reached through a local socket and reports this host's name.
/// A harness in a container talking to its host's socket fails the name test and copies.
/// `ETCD_DRILL_COPY_SNAPSHOTS=1` forces copying.
pub async fn shares_host_filesystem(docker: &Docker) -> bool {
    if std::env::var_os("ETCD_DRILL_COPY_SNAPSHOTS").is_some_and(|v| v != "0") {
        return false;
    }
    if std::env::var("DOCKER_HOST").is_ok_and(|h| !h.is_empty() && !h.starts_with("unix://")) {
        return false;
    }
    let ours = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    match docker.info().await {
        Ok(info) => info.name.is_some_and(|n| !n.is_empty() && n == ours.trim()),
        Err(_) => false,
    }
}

/// The identity of one process invocation; every object it creates is labelled with it, so
/// a Ctrl-C handler can remove exactly what this process made.
pub fn new_run_id() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!("{:x}{:04x}", ms, rand::random::<u16>())
}

pub fn labels(cluster: &str, run_id: &str, extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut l = HashMap::from([
        (LABEL.to_string(), "1".to_string()),
        (LABEL_CLUSTER.to_string(), cluster.to_string()),
        (LABEL_RUN.to_string(), run_id.to_string()),
    ]);
    for (k, v) in extra {
        l.insert(k.to_string(), v.to_string());
    }
    l
}

/// Label selectors in Docker's filter syntax, e.g. `etcd-drill.cluster=foo` or `etcd-drill`;
/// an object matches when it carries every one of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector(pub Vec<String>);

impl Selector {
    pub fn all() -> Self {
        Selector(vec![LABEL.to_string()])
    }
    /// Everything of a cluster, whichever run made it (`cluster down`, `cleanup --cluster`).
    pub fn cluster(name: &str) -> Self {
        Selector(vec![format!("{LABEL_CLUSTER}={name}")])
    }
    pub fn run(run_id: &str) -> Self {
        Selector(vec![format!("{LABEL_RUN}={run_id}")])
    }
    /// What one run made of one cluster: what a cluster handle may tear down, so a failed
    /// start never touches another run's cluster of the same name.
    pub fn cluster_run(name: &str, run_id: &str) -> Self {
        let mut s = Selector::cluster(name);
        s.0.extend(Selector::run(run_id).0);
        s
    }
    pub(crate) fn filters(&self) -> HashMap<String, Vec<String>> {
        HashMap::from([("label".to_string(), self.0.clone())])
    }
}

/// What a selector matches right now; used by `cleanup`, `cluster down` and leak assertions.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Objects {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
}

impl Objects {
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty() && self.networks.is_empty() && self.volumes.is_empty()
    }
    pub fn total(&self) -> usize {
        self.containers.len() + self.networks.len() + self.volumes.len()
    }
    /// Adds `other`'s names not already listed.
    pub fn merge(&mut self, other: Objects) {
        for (mine, theirs) in [
            (&mut self.containers, other.containers),
            (&mut self.networks, other.networks),
            (&mut self.volumes, other.volumes),
        ] {
            for n in theirs {
                if !mine.contains(&n) {
                    mine.push(n);
                }
            }
        }
    }
    /// "container a, b; network c" with at most 3 names per kind, for messages.
    pub fn describe(&self) -> String {
        let kind = |what: &str, names: &[String]| -> Option<String> {
            let (shown, more) = names.split_at(names.len().min(3));
            (!names.is_empty()).then(|| match more.len() {
                0 => format!("{what} {}", shown.join(", ")),
                n => format!("{what} {} and {n} more", shown.join(", ")),
            })
        };
        [
            kind("container", &self.containers),
            kind("network", &self.networks),
            kind("volume", &self.volumes),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("; ")
    }
}

/// The cluster names on every object labelled etcd-drill=1: clusters that still exist.
pub async fn cluster_names(docker: &Docker) -> Result<std::collections::BTreeSet<String>> {
    use bollard::query_parameters::ListContainersOptionsBuilder as C;
    let f = Selector::all().filters();
    let label = |l: Option<HashMap<String, String>>| l.and_then(|mut l| l.remove(LABEL_CLUSTER));
    let containers = docker
        .list_containers(Some(C::default().all(true).filters(&f).build()))
        .await
        .map_err(Error::docker("listing containers"))?;
    let networks = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::default().filters(&f).build(),
        ))
        .await
        .map_err(Error::docker("listing networks"))?;
    let volumes = docker
        .list_volumes(Some(
            ListVolumesOptionsBuilder::default().filters(&f).build(),
        ))
        .await
        .map_err(Error::docker("listing volumes"))?;
    let volumes = volumes.volumes.unwrap_or_default();
    Ok(containers
        .into_iter()
        .filter_map(|c| label(c.labels))
        .chain(networks.into_iter().filter_map(|n| label(n.labels)))
        .chain(volumes.into_iter().filter_map(|v| label(Some(v.labels))))
        .collect())
}

pub async fn list_objects(docker: &Docker, sel: &Selector) -> Result<Objects> {
    let f = sel.filters();
    Ok(Objects {
        containers: container_names(docker, &f).await?,
        networks: network_names(docker, &f).await?,
        volumes: volume_names(docker, &f).await?,
    })
}

type Filters = HashMap<String, Vec<String>>;

async fn container_names(docker: &Docker, f: &Filters) -> Result<Vec<String>> {
    let opts = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(f)
        .build();
    Ok(docker
        .list_containers(Some(opts))
        .await
        .map_err(Error::docker("listing containers"))?
        .into_iter()
        .filter_map(|c| {
            c.names
                .and_then(|n| n.first().map(|n| n.trim_start_matches('/').to_string()))
        })
        .collect())
}

async fn network_names(docker: &Docker, f: &Filters) -> Result<Vec<String>> {
    Ok(network_ids(docker, f)
        .await?
        .into_iter()
        .map(|(_, name)| name)
        .collect())
}

/// (ID, name) of each network matching the filters.
async fn network_ids(docker: &Docker, f: &Filters) -> Result<Vec<(String, String)>> {
    let opts = ListNetworksOptionsBuilder::default().filters(f).build();
    Ok(docker
        .list_networks(Some(opts))
        .await
        .map_err(Error::docker("listing networks"))?
        .into_iter()
        .filter_map(|n| Some((n.id?, n.name?)))
        .collect())
}

async fn volume_names(docker: &Docker, f: &Filters) -> Result<Vec<String>> {
    let opts = ListVolumesOptionsBuilder::default().filters(f).build();
    Ok(docker
        .list_volumes(Some(opts))
        .await
        .map_err(Error::docker("listing volumes"))?
        .volumes
        .unwrap_or_default()
        .into_iter()
        .map(|v| v.name)
        .collect())
}

/// Which of `wanted`'s names exist in Docker now, whoever made them.
pub async fn taken_names(docker: &Docker, wanted: &Objects) -> Result<Objects> {
    // Docker's name filter matches substrings: keep exact matches only. An empty filter
    // would list everything, so a kind with no wanted names is not asked for.
    let f = |names: &[String]| HashMap::from([("name".to_string(), names.to_vec())]);
    let exact = |mut found: Vec<String>, names: &[String]| {
        found.retain(|n| names.contains(n));
        found
    };
    let mut taken = Objects::default();
    if !wanted.containers.is_empty() {
        let found = container_names(docker, &f(&wanted.containers)).await?;
        taken.containers = exact(found, &wanted.containers);
    }
    if !wanted.networks.is_empty() {
        let found = network_names(docker, &f(&wanted.networks)).await?;
        taken.networks = exact(found, &wanted.networks);
    }
    if !wanted.volumes.is_empty() {
        let found = volume_names(docker, &f(&wanted.volumes)).await?;
        taken.volumes = exact(found, &wanted.volumes);
    }
    Ok(taken)
}

/// Refuses a cluster name in use, touching nothing: any object labelled with it, or any
/// object (whoever made it) with a name in `wanted`, the names the new cluster would take.
pub async fn ensure_cluster_name_free(docker: &Docker, name: &str, wanted: &Objects) -> Result<()> {
    let mut found = list_objects(docker, &Selector::cluster(name)).await?;
    let ours = !found.is_empty();
    found.merge(taken_names(docker, wanted).await?);
    let (name, found) = (name.to_string(), found.describe());
    match (ours, found.is_empty()) {
        (true, _) => Err(Error::ClusterNameInUse { name, found }),
        (false, false) => Err(Error::ClusterNamesTaken { name, found }),
        (false, true) => Ok(()),
    }
}

/// Creates a network that must be the only one of its name. Docker before API 1.44 allows
/// duplicates (a second `X-net` beside a running cluster's): if another one exists after
/// creating, ours is removed again and the name refused.
pub async fn create_unique_network(
    docker: &Docker,
    cluster: &str,
    request: bollard::models::NetworkCreateRequest,
) -> Result<()> {
    let name = request.name.clone();
    let in_use = |found: String| Error::ClusterNameInUse {
        name: cluster.to_string(),
        found,
    };
    let id = match docker.create_network(request).await {
        Ok(r) => r.id,
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 409, ..
        }) => return Err(in_use(format!("network {name}"))),
        Err(e) => return Err(Error::docker(format!("creating network {name}"))(e)),
    };
    let wanted = Objects {
        networks: vec![name.clone()],
        ..Default::default()
    };
    if taken_names(docker, &wanted).await?.networks.len() <= 1 {
        return Ok(());
    }
    ignore_missing(docker.remove_network(&id).await).map_err(Error::docker(format!(
        "removing the duplicate network {name}"
    )))?;
    Err(in_use(format!(
        "network {name}, created by someone else meanwhile"
    )))
}

/// Removes everything the selector matches: containers first (they hold the volumes and
/// network endpoints), then volumes and networks. Missing objects are not an error, so
/// concurrent or repeated cleanups are safe.
pub async fn remove_objects(docker: &Docker, sel: &Selector) -> Result<Objects> {
    let f = sel.filters();
    // Networks by ID: Docker allows two of one name, and refuses to remove either by name.
    let networks = network_ids(docker, &f).await?;
    let found = Objects {
        containers: container_names(docker, &f).await?,
        networks: networks.iter().map(|(_, name)| name.clone()).collect(),
        volumes: volume_names(docker, &f).await?,
    };
    let rm = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    futures_util::future::join_all(found.containers.iter().map(|c| {
        let rm = rm.clone();
        async move { ignore_missing(docker.remove_container(c, Some(rm)).await) }
    }))
    .await
    .into_iter()
    .collect::<Result<Vec<_>, _>>()
    .map_err(Error::docker("removing containers"))?;
    futures_util::future::join_all(found.volumes.iter().map(|v| async move {
        ignore_missing(
            docker
                .remove_volume(v, None::<bollard::query_parameters::RemoveVolumeOptions>)
                .await,
        )
    }))
    .await
    .into_iter()
    .collect::<Result<Vec<_>, _>>()
    .map_err(Error::docker("removing volumes"))?;
    for (id, name) in &networks {
        ignore_missing(docker.remove_network(id).await)
            .map_err(Error::docker(format!("removing network {name}")))?;
    }
    Ok(found)
}

pub(crate) fn ignore_missing(
    r: Result<(), bollard::errors::Error>,
) -> Result<(), bollard::errors::Error> {
    match r {
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(()),
        // "removal already in progress": another cleanup got there first.
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 409, ..
        }) => Ok(()),
        other => other,
    }
}

pub(crate) fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Last `n` lines of a container's combined output.
pub async fn tail_logs(docker: &Docker, container: &str, n: usize) -> String {
    let opts = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .tail(&n.to_string())
        .build();
    let mut out = String::new();
    let mut stream = docker.logs(container, Some(opts));
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => out.push_str(&String::from_utf8_lossy(&c.into_bytes())),
            Err(e) => {
                out.push_str(&format!("<logs unavailable: {e}>"));
                break;
            }
        }
    }
    out
}

/// Follows a container's output until a line contains `needle`; false on timeout or end.
pub async fn wait_for_log(
    docker: &Docker,
    container: &str,
    needle: &str,
    timeout: std::time::Duration,
) -> bool {
    let opts = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .follow(true)
        .build();
    let mut stream = docker.logs(container, Some(opts));
    let find = async {
        let mut carry = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            carry.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
            if carry.contains(needle) {
                return true;
            }
            // Keep only the unfinished last line; the needle never spans lines.
            if let Some(i) = carry.rfind('\n') {
                carry.drain(..=i);
            }
        }
        false
    };
    tokio::time::timeout(timeout, find).await.unwrap_or(false)
}

pub fn volume_mount(volume: &str, target: &str) -> Mount {
    Mount {
        typ: Some(MountType::VOLUME),
        source: Some(volume.to_string()),
        target: Some(target.to_string()),
        ..Default::default()
    }
}

/// A host directory, read-only. Only meaningful when the daemon shares this machine's
/// filesystem; callers check that it does (see `snapshot::SnapshotSource`).
pub fn bind_mount_ro(dir: &std::path::Path, target: &str) -> Mount {
    Mount {
        typ: Some(MountType::BIND),
        source: Some(dir.to_string_lossy().into_owned()),
        target: Some(target.to_string()),
        read_only: Some(true),
        ..Default::default()
    }
}

/// A container that runs one command to completion (image build check, snapshot restore,
/// etcdctl inside the cluster's network).
pub struct OneShot<'a> {
    pub image: &'a str,
    pub entrypoint: &'a str,
    pub args: Vec<String>,
    pub labels: HashMap<String, String>,
    /// Volumes and host directories ([`volume_mount`], [`bind_mount_ro`]).
    pub mounts: Vec<Mount>,
    pub network: Option<String>,
    /// name → address entries for /etc/hosts, so peer URLs resolve while members are down.
    pub extra_hosts: Vec<String>,
    /// Files to place into the container before it starts: (tar bytes, directory).
    pub upload: Option<(Vec<u8>, String)>,
    pub env: Vec<String>,
}

pub struct OneShotOutput {
    pub exit_code: i64,
    pub output: String,
}

impl OneShot<'_> {
    pub fn with_env(mut self, env: Vec<String>) -> Self {
        self.env = env;
        self
    }

    pub async fn run(self, docker: &Docker) -> Result<OneShotOutput> {
        let name = format!("etcd-drill-oneshot-{}", new_run_id());
        let body = ContainerCreateBody {
            image: Some(self.image.to_string()),
            entrypoint: Some(vec![self.entrypoint.to_string()]),
            cmd: Some(self.args.clone()),
            env: (!self.env.is_empty()).then(|| self.env.clone()),
            labels: Some(self.labels.clone()),
            host_config: Some(HostConfig {
                mounts: Some(self.mounts.clone()),
                network_mode: Some(self.network.clone().unwrap_or_else(|| "none".into())),
                extra_hosts: (!self.extra_hosts.is_empty()).then(|| self.extra_hosts.clone()),
                ..Default::default()
            }),
            ..Default::default()
        };
        docker
            .create_container(
                Some(CreateContainerOptionsBuilder::default().name(&name).build()),
                body,
            )
            .await
            .map_err(Error::docker(format!(
                "creating one-shot container for {}",
                self.entrypoint
            )))?;
        // From here on the container exists: remove it whatever happens.
        let result = async {
            if let Some((tar, dir)) = &self.upload {
                let opts = bollard::query_parameters::UploadToContainerOptionsBuilder::default()
                    .path(dir)
                    .build();
                docker
                    .upload_to_container(&name, Some(opts), bollard::body_full(tar.clone().into()))
                    .await
                    .map_err(Error::docker(format!("copying files into {name}")))?;
            }
            docker
                .start_container(
                    &name,
                    None::<bollard::query_parameters::StartContainerOptions>,
                )
                .await
                .map_err(Error::docker(format!(
                    "starting one-shot {}",
                    self.entrypoint
                )))?;
            let wait =
                docker.wait_container(&name, Some(WaitContainerOptionsBuilder::default().build()));
            let what = format!("one-shot {}", self.entrypoint);
            let exit_code = wait_exit_code(wait)
                .await
                .map_err(Error::docker(format!("waiting for {what}")))?
                .ok_or_else(|| Error::ExitCodeUnknown {
                    what,
                    container: name.clone(),
                })?;
            let output = tail_logs(docker, &name, 200).await;
            Ok(OneShotOutput { exit_code, output })
        }
        .await;
        let rm = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(false)
            .build();
        let _ = ignore_missing(docker.remove_container(&name, Some(rm)).await);
        result
    }
}

/// The exit code a container wait stream reports, `None` when it reports none (the stream
/// ended early, or Docker answered with an error instead of a code): never taken as 0.
pub async fn wait_exit_code<S>(mut wait: S) -> Result<Option<i64>, bollard::errors::Error>
where
    S: futures_util::Stream<
            Item = Result<bollard::models::ContainerWaitResponse, bollard::errors::Error>,
        > + Unpin,
{
    let mut exit_code = None;
    while let Some(r) = wait.next().await {
        exit_code = match r {
            Ok(w) if wait_failed(&w) => None,
            Ok(w) => Some(w.status_code),
            // bollard reports a non-zero exit as an error carrying the code.
            Err(bollard::errors::Error::DockerContainerWaitError { code, .. }) => Some(code),
            Err(e) => return Err(e),
        };
    }
    Ok(exit_code)
}

/// A wait response carrying Docker's error message instead of a trustworthy code.
fn wait_failed(w: &bollard::models::ContainerWaitResponse) -> bool {
    w.error
        .as_ref()
        .and_then(|e| e.message.as_deref())
        .is_some_and(|m| !m.is_empty())
}

/// Builds an in-memory tar archive from (path inside archive, bytes, mode) entries.
pub fn tar_of(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data, mode) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(*mode);
        h.set_mtime(0);
        h.set_cksum();
        b.append_data(&mut h, path, *data)
            .expect("writing to a Vec cannot fail");
    }
    b.into_inner().expect("writing to a Vec cannot fail")
}

/// Output of a command run inside a running container.
pub struct ExecOutput {
    pub exit_code: i64,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a command inside a running container (e.g. etcdctl in a member, as an operator would).
pub async fn exec(
    docker: &Docker,
    container: &str,
    cmd: Vec<String>,
    env: Vec<String>,
) -> Result<ExecOutput> {
    use bollard::exec::StartExecResults;
    use bollard::models::ExecConfig;
    let program = cmd.first().cloned().unwrap_or_default();
    let ctx = format!("running {program} in {container}");
    let created = docker
        .create_exec(
            container,
            ExecConfig {
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                cmd: Some(cmd),
                env: Some(env),
                ..Default::default()
            },
        )
        .await
        .map_err(Error::docker(ctx.clone()))?;
    let (mut stdout, mut stderr) = (String::new(), String::new());
    if let StartExecResults::Attached { mut output, .. } = docker
        .start_exec(&created.id, None)
        .await
        .map_err(Error::docker(ctx.clone()))?
    {
        while let Some(chunk) = output.next().await {
            match chunk.map_err(Error::docker(ctx.clone()))? {
                bollard::container::LogOutput::StdOut { message } => {
                    stdout.push_str(&String::from_utf8_lossy(&message))
                }
                bollard::container::LogOutput::StdErr { message } => {
                    stderr.push_str(&String::from_utf8_lossy(&message))
                }
                _ => {}
            }
        }
    }
    let exit_code = exec_exit_code(docker, &created.id)
        .await
        .map_err(Error::docker(ctx))?
        .ok_or_else(|| Error::ExitCodeUnknown {
            what: program,
            container: container.to_string(),
        })?;
    Ok(ExecOutput {
        exit_code,
        stdout,
        stderr,
    })
}

/// The exit code of a finished exec. Docker may still report it running for a moment after
/// its output stream closed, so it is asked again for up to 2 s; `None` if no code came.
async fn exec_exit_code(docker: &Docker, id: &str) -> Result<Option<i64>, bollard::errors::Error> {
    let t0 = std::time::Instant::now();
    loop {
        let r = docker.inspect_exec(id).await?;
        if let Some(code) = finished_exit_code(r.running, r.exit_code) {
            return Ok(Some(code));
        }
        if t0.elapsed() >= std::time::Duration::from_secs(2) {
            return Ok(None);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// An exec's exit code once it has stopped running; `None` while it runs or without one.
pub fn finished_exit_code(running: Option<bool>, exit_code: Option<i64>) -> Option<i64> {
    if running == Some(true) {
        return None;
    }
    exit_code
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerWaitExitError, ContainerWaitResponse};

    fn env(host: Option<&str>) -> DaemonEnv {
        DaemonEnv {
            docker_host: host.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn docker_host_is_honoured_like_the_docker_cli() {
        let host = |h| daemon_host(&env(h)).unwrap();
        assert_eq!(host(None), "unix:///var/run/docker.sock");
        assert_eq!(
            host(Some("unix:///run/user/1000/docker.sock")),
            "unix:///run/user/1000/docker.sock"
        );
        assert_eq!(host(Some("tcp://10.0.0.5:2375")), "tcp://10.0.0.5:2375");
        assert_eq!(host(Some("tcp://builder")), "tcp://builder:2375");
        assert_eq!(host(Some("tcp://[::1]")), "tcp://[::1]:2375");
        assert_eq!(host(Some("tcp://[::1]:4243/")), "tcp://[::1]:4243");
        assert_eq!(host(Some("http://127.0.0.1:2375")), "tcp://127.0.0.1:2375");
        assert_eq!(host(Some("box:4243")), "tcp://box:4243");
        // DOCKER_HOST wins over a context, as in the docker CLI.
        let mut e = env(Some("tcp://h:1"));
        e.docker_context = Some("remote".into());
        assert_eq!(daemon_host(&e).unwrap(), "tcp://h:1");
    }

    #[test]
    fn what_cannot_be_honoured_is_refused_not_replaced_by_the_local_daemon() {
        for h in [
            "ssh://me@box",
            "https://box:2376",
            "npipe:////./pipe/docker",
            "fd://",
        ] {
            let err = daemon_host(&env(Some(h))).unwrap_err();
            assert!(matches!(err, Error::DockerEndpoint { .. }), "{h}: {err:?}");
            assert!(
                err.to_string().contains(&format!("DOCKER_HOST={h}")),
                "{err}"
            );
            assert!(err.to_string().contains("Set DOCKER_HOST to"), "{err}");
        }
        let mut e = env(Some("tcp://box:2376"));
        e.tls_verify = Some("1".into());
        assert!(daemon_host(&e).unwrap_err().to_string().contains("not TLS"));
        for (var, config) in [(Some("remote"), None), (None, Some("desktop-linux"))] {
            let e = DaemonEnv {
                docker_context: var.map(str::to_string),
                config_context: config.map(str::to_string),
                ..Default::default()
            };
            let err = daemon_host(&e).unwrap_err().to_string();
            assert!(err.contains("docker context"), "{err}");
        }
        let e = DaemonEnv {
            config_context: Some("default".into()),
            ..Default::default()
        };
        assert_eq!(daemon_host(&e).unwrap(), DEFAULT_SOCKET);
    }

    #[test]
    fn a_cluster_run_selector_requires_both_labels() {
        let f = Selector::cluster_run("x", "r1").filters();
        assert_eq!(
            f["label"],
            vec![
                "etcd-drill.cluster=x".to_string(),
                "etcd-drill.run=r1".to_string()
            ]
        );
        assert_eq!(Selector::cluster("x").filters()["label"].len(), 1);
    }

    #[test]
    fn objects_merge_and_describe() {
        let mut a = Objects {
            containers: vec!["c1".into()],
            ..Default::default()
        };
        a.merge(Objects {
            containers: vec!["c1".into(), "c2".into(), "c3".into(), "c4".into()],
            networks: vec!["n".into()],
            volumes: vec![],
        });
        assert_eq!(a.containers, ["c1", "c2", "c3", "c4"]);
        assert_eq!(a.describe(), "container c1, c2, c3 and 1 more; network n");
        assert_eq!(Objects::default().describe(), "");
    }

    fn wait_ok(
        code: i64,
        error: Option<&str>,
    ) -> Result<ContainerWaitResponse, bollard::errors::Error> {
        Ok(ContainerWaitResponse {
            status_code: code,
            error: error.map(|m| ContainerWaitExitError {
                message: Some(m.into()),
            }),
        })
    }

    async fn code_of(
        items: Vec<Result<ContainerWaitResponse, bollard::errors::Error>>,
    ) -> Option<i64> {
        wait_exit_code(futures_util::stream::iter(items))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_wait_without_an_exit_code_is_not_success() {
        assert_eq!(
            code_of(vec![]).await,
            None,
            "an empty wait stream is no exit code"
        );
        assert_eq!(
            code_of(vec![wait_ok(0, Some("container removed"))]).await,
            None
        );
        assert_eq!(code_of(vec![wait_ok(0, None)]).await, Some(0));
        assert_eq!(code_of(vec![wait_ok(0, Some(""))]).await, Some(0));
        let failed = Err(bollard::errors::Error::DockerContainerWaitError {
            error: String::new(),
            code: 3,
        });
        assert_eq!(code_of(vec![failed]).await, Some(3));
    }

    #[test]
    fn an_exec_exit_code_counts_only_once_it_stopped() {
        assert_eq!(finished_exit_code(Some(false), Some(0)), Some(0));
        assert_eq!(finished_exit_code(None, Some(2)), Some(2));
        assert_eq!(finished_exit_code(Some(true), Some(0)), None);
        assert_eq!(finished_exit_code(Some(false), None), None);
    }

    #[test]
    fn an_unknown_exit_code_says_what_and_where() {
        let e = Error::ExitCodeUnknown {
            what: "one-shot /usr/local/bin/etcdutl".into(),
            container: "etcd-drill-oneshot-1".into(),
        };
        assert!(e.to_string().starts_with(
            "the exit code of one-shot /usr/local/bin/etcdutl in container etcd-drill-oneshot-1 could not be read"
        ));
    }
}
