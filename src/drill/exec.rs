//! The user's own commands, run on the host against the drill's cluster: `exec` steps and
//! backup commands. They get the environment etcdctl reads, and the image's etcdctl and
//! etcdutl first on `PATH`, so the seed's procedure runs as written.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::cluster::Cluster;
use crate::error::{Error, Result};

/// How long a command may run unless its step says otherwise.
pub(super) const DEFAULT_TIMEOUT_S: f64 = 120.0;
/// How much of a command's output a check keeps.
const TAIL_LINES: usize = 12;

/// What a command did.
pub(super) struct Ran {
    /// Its exit code; `None` when it was killed (timeout, signal).
    pub code: Option<i32>,
    pub timed_out: bool,
    /// The last lines of its stdout and stderr.
    pub tail: String,
    pub seconds: f64,
}

impl Ran {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// One line for a check: how it ended, and what it said last.
    pub fn detail(&self, timeout_s: f64) -> String {
        let ended = match (self.code, self.timed_out) {
            (_, true) => format!("killed after its {timeout_s} s timeout"),
            (Some(c), _) => format!("exit {c}"),
            (None, _) => "killed by a signal".into(),
        };
        let tail = self.tail.trim();
        if tail.is_empty() {
            format!("{ended} in {:.2}s", self.seconds)
        } else {
            format!(
                "{ended} in {:.2}s; output ends: {}",
                self.seconds,
                tail.replace('\n', " ⏎ ")
            )
        }
    }
}

/// Which endpoints `ETCDCTL_ENDPOINTS` lists.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Endpoints {
    /// Every member that answers (an `exec` step).
    All,
    /// One member: `etcdctl snapshot save` refuses several (a backup command).
    One,
}

/// The environment of a user's command: etcdctl's own variables for this cluster (a command
/// passing the same options as flags must unset them: etcdctl refuses both at once), the
/// same under `ETCD_DRILL_*` names for such commands, where snapshots go, and the image's
/// tools first on `PATH`.
pub(super) fn environment(
    cluster: &Cluster,
    tools: &Path,
    snapshot_dir: &Path,
    endpoints: Endpoints,
) -> Vec<(String, String)> {
    let mut urls: Vec<&str> = cluster
        .members
        .iter()
        .filter(|m| m.state.answers_clients())
        .map(|m| m.client_url.as_str())
        .collect();
    if endpoints == Endpoints::One {
        urls.truncate(1);
    }
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
    let mut env = vec![
        ("ETCDCTL_API".to_string(), "3".to_string()),
        ("ETCDCTL_ENDPOINTS".into(), urls.join(",")),
        (
            "ETCD_DRILL_ENDPOINT".into(),
            urls.first().copied().unwrap_or_default().into(),
        ),
        (
            "ETCD_DRILL_SNAPSHOT_DIR".into(),
            snapshot_dir.display().to_string(),
        ),
        ("ETCD_DRILL_CLUSTER".into(), cluster.name().to_string()),
        ("PATH".into(), format!("{}:{path}", tools.display())),
    ];
    if let Some(pki) = &cluster.pki {
        for (name, path) in [
            ("CACERT", pki.ca_path()),
            ("CERT", pki.client_cert_path()),
            ("KEY", pki.client_key_path()),
        ] {
            let path = path.display().to_string();
            env.push((format!("ETCDCTL_{name}"), path.clone()));
            env.push((format!("ETCD_DRILL_{name}"), path));
        }
    }
    env
}

/// Runs `command` with `sh -c` in its own process group; on timeout the whole group is
/// killed, so nothing it started outlives the step.
pub(super) async fn run(command: &str, env: &[(String, String)], timeout_s: f64) -> Result<Ran> {
    use std::os::unix::process::CommandExt as _;
    let t0 = Instant::now();
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let child = tokio::process::Command::from(cmd)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Error::Failed(format!("starting `sh -c {command}`: {e}")))?;
    let pgid = child.id();
    let out = child.wait_with_output();
    match tokio::time::timeout(Duration::from_secs_f64(timeout_s), out).await {
        Ok(out) => {
            let out = out.map_err(|e| Error::Failed(format!("running `{command}`: {e}")))?;
            Ok(Ran {
                code: out.status.code(),
                timed_out: false,
                tail: tail(&out.stdout, &out.stderr),
                seconds: t0.elapsed().as_secs_f64(),
            })
        }
        Err(_) => {
            // The command's own process group (process_group(0) above), and nothing else:
            // a pgid of 0 or 1 would mean ours or init's, so those are never signalled.
            if let Some(pgid) = pgid
                .and_then(|p| libc::pid_t::try_from(p).ok())
                .filter(|p| *p > 1)
            {
                // SAFETY: killpg only sends a signal; the group is the child's own.
                unsafe {
                    libc::killpg(pgid, libc::SIGKILL);
                }
            }
            Ok(Ran {
                code: None,
                timed_out: true,
                tail: String::new(),
                seconds: t0.elapsed().as_secs_f64(),
            })
        }
    }
}

fn tail(stdout: &[u8], stderr: &[u8]) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(stdout),
        String::from_utf8_lossy(stderr)
    );
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let from = lines.len().saturating_sub(TAIL_LINES);
    let joined = lines[from..].join("\n");
    match joined.char_indices().rev().nth(1999) {
        Some((i, _)) => joined[i..].to_string(),
        None => joined,
    }
}

/// A fresh directory for one backup command's snapshot, inside the cluster's run directory.
pub(super) fn snapshot_dir_for(cluster: &Cluster, step: usize) -> Result<PathBuf> {
    let dir = cluster
        .run_dir
        .join("snapshots")
        .join(format!("step-{step}"));
    std::fs::create_dir_all(&dir).map_err(Error::io("creating the snapshot directory", &dir))?;
    Ok(dir)
}
