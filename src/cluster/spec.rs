//! What a cluster is before anything exists in Docker: its spec, its members and their
//! states, the ports and paths every member shares, and the checks on user input.

use std::time::Duration;

use super::image;
use crate::docker;
use crate::error::{Error, Result};

pub use crate::model::etcd::{MAX_SIZE, MIN_SIZE};
pub use crate::model::fault::MemberState;
pub const CLIENT_PORT: u16 = 2379;
pub const PEER_PORT: u16 = 2380;
/// The member's volume is mounted here …
pub const VOLUME_MOUNT: &str = "/var/lib/etcd";
/// … and etcd's data dir is inside it, so it does not exist until etcd (or a restore)
/// creates it: 3.4's `etcdctl snapshot restore` refuses an existing data dir.
pub const DATA_DIR: &str = "/var/lib/etcd/data";

/// Extra labels on the cluster network, so `cluster ls` can describe a cluster without any
/// state on disk.
pub(super) const LABEL_SIZE: &str = "etcd-drill.size";
pub(super) const LABEL_TLS: &str = "etcd-drill.tls";
pub(super) const LABEL_IMAGE: &str = "etcd-drill.image";

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
    /// Meant to outlive the process that starts it (`cluster up`): its objects carry
    /// `etcd-drill.keep=1`, so a plain `cleanup` keeps them although their maker has exited.
    pub persistent: bool,
    pub start_timeout: Duration,
    pub start_order: StartOrder,
    /// The user's own etcd flags (`--quota-backend-bytes=…`), after the harness's; checked
    /// by [`crate::model::etcd::check_etcd_args`].
    pub etcd_args: Vec<String>,
    /// The user's own local etcd image, instead of etcd-drill's for `version`.
    pub image: Option<String>,
}

impl ClusterSpec {
    pub fn new(size: usize) -> Self {
        ClusterSpec {
            name: format!("drill-{:06x}", rand::random::<u32>() & 0xff_ffff),
            size,
            version: image::DEFAULT_VERSION.to_string(),
            tls: false,
            run_id: docker::new_run_id(),
            persistent: false,
            start_timeout: Duration::from_secs(60),
            start_order: StartOrder::FirstThenRest,
            etcd_args: vec![],
            image: None,
        }
    }

    /// Checks everything that can be checked without Docker, so bad input never creates
    /// anything.
    pub fn validate(&self) -> Result<()> {
        validate_size(self.size)?;
        validate_name(&self.name)?;
        image::Line::parse(&self.version)?;
        crate::model::etcd::check_etcd_args(&self.etcd_args)?;
        Ok(())
    }
}

pub fn validate_size(size: usize) -> Result<()> {
    Ok(crate::model::etcd::validate_size(size)?)
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
    /// From the host: `http(s)://127.0.0.1:<host_port>`, also what the member advertises, so
    /// `etcdctl endpoint health --cluster` works from the host.
    pub client_url: String,
    /// Its client port on 127.0.0.1, picked once (see `cluster/ports.rs`) and kept across
    /// restarts and re-creations; 0 until picked.
    pub host_port: u16,
    /// From the cluster network: `http(s)://etcd-<index>:2380`.
    pub peer_url: String,
    /// etcd's member ID, known once the cluster is healthy.
    pub id: u64,
    /// What the fault injector has done to it.
    pub state: MemberState,
}

impl Member {
    /// Gives the member its host port (and so its client URL) for the cluster's life.
    pub fn set_host_port(&mut self, scheme: &str, port: u16) {
        self.host_port = port;
        self.client_url = format!("{scheme}://127.0.0.1:{port}");
    }
}

pub fn member_name(index: usize) -> String {
    format!("etcd-{index}")
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
    fn names_are_docker_safe() {
        validate_name("drill-abc").unwrap();
        assert!(validate_name("Bad_Name").is_err());
        assert!(validate_name("").is_err());
        assert!(validate_name("-x").is_err());
    }
}
