//! Docker plumbing shared by every module: connecting (with API version negotiation, since
//! the daemon here speaks 1.41 and bollard defaults to newer), the labels that make every
//! object findable for cleanup and label-based teardown ([`objects`]), one-shot helper
//! containers and execs ([`oneshot`]), iptables in a container's network namespace
//! ([`netns`]), whose run made an object and whether it is alive ([`owner`]), and what a
//! `cleanup` removes ([`sweep`]).

pub mod netns;
mod objects;
mod oneshot;
pub mod owner;
pub mod sweep;

use bollard::{API_DEFAULT_VERSION, Docker};

use crate::error::{Error, Result};

pub use objects::{
    Found, Kind, LABEL, LABEL_CLUSTER, LABEL_MEMBER, LABEL_RUN, Objects, Selector, cluster_names,
    create_unique_network, ensure_cluster_name_free, labels, list_found, list_objects,
    remove_found, remove_objects, taken_names,
};
pub(crate) use objects::{ignore_missing, is_not_found};
pub use oneshot::{
    ExecOutput, OneShot, OneShotOutput, bind_mount_ro, exec, finished_exit_code, tail_logs, tar_of,
    volume_mount, wait_exit_code, wait_for_log,
};
pub use owner::{LABEL_KEEP, LABEL_OWNER};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
