//! Running one command to completion: in a throwaway container ([`OneShot`]) or inside a
//! running one ([`exec`]), and reading what it printed and how it exited.

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    WaitContainerOptionsBuilder,
};
use futures_util::StreamExt;

use super::{ignore_missing, new_run_id};
use crate::error::{Error, Result};
use crate::poll::{self, Attempt};

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
    image: &'a str,
    entrypoint: &'a str,
    args: Vec<String>,
    labels: HashMap<String, String>,
    mounts: Vec<Mount>,
    network: Option<String>,
    extra_hosts: Vec<String>,
    upload: Option<(Vec<u8>, String)>,
    env: Vec<String>,
}

pub struct OneShotOutput {
    pub exit_code: i64,
    pub output: String,
}

impl<'a> OneShot<'a> {
    /// `entrypoint args…` in `image`, with no network, mounts or environment until the
    /// setters below add them. The labels are not optional: they are what lets `cleanup`
    /// find the container if this process dies before removing it.
    pub fn new(
        image: &'a str,
        entrypoint: &'a str,
        args: Vec<String>,
        labels: HashMap<String, String>,
    ) -> Self {
        OneShot {
            image,
            entrypoint,
            args,
            labels,
            mounts: vec![],
            network: None,
            extra_hosts: vec![],
            upload: None,
            env: vec![],
        }
    }

    /// Volumes and host directories ([`volume_mount`], [`bind_mount_ro`]).
    pub fn mounts(mut self, mounts: Vec<Mount>) -> Self {
        self.mounts = mounts;
        self
    }

    /// Joins this Docker network instead of none.
    pub fn network(mut self, network: impl Into<String>) -> Self {
        self.network = Some(network.into());
        self
    }

    /// name → address entries for /etc/hosts, so peer URLs resolve while members are down.
    pub fn extra_hosts(mut self, hosts: Vec<String>) -> Self {
        self.extra_hosts = hosts;
        self
    }

    /// Files to place into `dir` before the container starts (an archive from [`tar_of`]).
    pub fn upload(mut self, tar: Vec<u8>, dir: impl Into<String>) -> Self {
        self.upload = Some((tar, dir.into()));
        self
    }

    /// `KEY=value` entries.
    pub fn env(mut self, env: Vec<String>) -> Self {
        self.env = env;
        self
    }

    fn create_body(&self) -> ContainerCreateBody {
        ContainerCreateBody {
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
        }
    }

    pub async fn run(self, docker: &Docker) -> Result<OneShotOutput> {
        let name = format!("etcd-drill-oneshot-{}", new_run_id());
        let body = self.create_body();
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
    let every = std::time::Duration::from_millis(20);
    // The reason is `None` while the exec still runs, the error when Docker cannot say.
    let polled = poll::until(std::time::Duration::from_secs(2), every, || async {
        match docker.inspect_exec(id).await {
            Ok(r) => match finished_exit_code(r.running, r.exit_code) {
                Some(code) => Attempt::Ready(code),
                None => Attempt::NotYet(None),
            },
            Err(e) => Attempt::Fatal(Some(e)),
        }
    })
    .await;
    match polled {
        Ok(code) => Ok(Some(code)),
        Err(gave_up) => gave_up.reason.map_or(Ok(None), Err),
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
