//! Docker plumbing shared by every module: connecting (with API version negotiation, since
//! the daemon here speaks 1.41 and bollard defaults to newer), the labels that make every
//! object findable for cleanup, label-based teardown, and one-shot helper containers.

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, ListNetworksOptionsBuilder,
    ListVolumesOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    WaitContainerOptionsBuilder,
};
use futures_util::StreamExt;

use crate::error::{Error, Result};

/// Every container, network and volume etcd-drill creates carries this label (value "1").
pub const LABEL: &str = "etcd-drill";
pub const LABEL_CLUSTER: &str = "etcd-drill.cluster";
pub const LABEL_RUN: &str = "etcd-drill.run";
pub const LABEL_MEMBER: &str = "etcd-drill.member";

/// Connects to the local daemon and negotiates the API version down to what it speaks.
pub async fn connect() -> Result<Docker> {
    let docker = Docker::connect_with_local_defaults()
        .map_err(|source| Error::DockerUnavailable { source })?;
    let docker = docker
        .negotiate_version()
        .await
        .map_err(|source| Error::DockerUnavailable { source })?;
    docker
        .ping()
        .await
        .map_err(|source| Error::DockerUnavailable { source })?;
    Ok(docker)
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

/// A label selector in Docker's filter syntax, e.g. `etcd-drill.cluster=foo` or `etcd-drill`.
#[derive(Debug, Clone)]
pub struct Selector(pub String);

impl Selector {
    pub fn all() -> Self {
        Selector(LABEL.to_string())
    }
    pub fn cluster(name: &str) -> Self {
        Selector(format!("{LABEL_CLUSTER}={name}"))
    }
    pub fn run(run_id: &str) -> Self {
        Selector(format!("{LABEL_RUN}={run_id}"))
    }
    pub(crate) fn filters(&self) -> HashMap<String, Vec<String>> {
        HashMap::from([("label".to_string(), vec![self.0.clone()])])
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
}

pub async fn list_objects(docker: &Docker, sel: &Selector) -> Result<Objects> {
    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&sel.filters())
                .build(),
        ))
        .await
        .map_err(Error::docker("listing containers"))?
        .into_iter()
        .filter_map(|c| {
            c.names
                .and_then(|n| n.first().map(|n| n.trim_start_matches('/').to_string()))
        })
        .collect();
    let networks = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::default()
                .filters(&sel.filters())
                .build(),
        ))
        .await
        .map_err(Error::docker("listing networks"))?
        .into_iter()
        .filter_map(|n| n.name)
        .collect();
    let volumes = docker
        .list_volumes(Some(
            ListVolumesOptionsBuilder::default()
                .filters(&sel.filters())
                .build(),
        ))
        .await
        .map_err(Error::docker("listing volumes"))?
        .volumes
        .unwrap_or_default()
        .into_iter()
        .map(|v| v.name)
        .collect();
    Ok(Objects {
        containers,
        networks,
        volumes,
    })
}

/// Removes everything the selector matches: containers first (they hold the volumes and
/// network endpoints), then volumes and networks. Missing objects are not an error, so
/// concurrent or repeated cleanups are safe.
pub async fn remove_objects(docker: &Docker, sel: &Selector) -> Result<Objects> {
    let found = list_objects(docker, sel).await?;
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
    for n in &found.networks {
        ignore_missing(docker.remove_network(n).await)
            .map_err(Error::docker(format!("removing network {n}")))?;
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
            let mut wait =
                docker.wait_container(&name, Some(WaitContainerOptionsBuilder::default().build()));
            let mut exit_code = 0;
            while let Some(r) = wait.next().await {
                match r {
                    Ok(w) => exit_code = w.status_code,
                    // bollard reports a non-zero exit as an error carrying the code.
                    Err(bollard::errors::Error::DockerContainerWaitError { code, .. }) => {
                        exit_code = code
                    }
                    Err(e) => {
                        return Err(Error::docker(format!(
                            "waiting for one-shot {}",
                            self.entrypoint
                        ))(e));
                    }
                }
            }
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
    let ctx = format!(
        "running {} in {container}",
        cmd.first().cloned().unwrap_or_default()
    );
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
    let exit_code = docker
        .inspect_exec(&created.id)
        .await
        .map_err(Error::docker(ctx))?
        .exit_code
        .unwrap_or(-1);
    Ok(ExecOutput {
        exit_code,
        stdout,
        stderr,
    })
}
