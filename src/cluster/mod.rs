//! Real etcd clusters of 1–9 members in Docker: one network per cluster, one container and
//! one named volume per member, every member's client port published on 127.0.0.1 so the
//! harness can talk to each member directly.
//!
//! The files: `spec` what a cluster and its members are, `containers` creating and
//! starting them, `health` talking to members and waiting for health, `reconfig` changing
//! the member set, `attach` rebuilding a handle from Docker, `ports` the members' host
//! ports, `state` the run directories on disk; [`image`] and [`tls`] the etcd image and certificates.

mod attach;
mod containers;
mod health;
pub mod image;
mod ports;
mod reconfig;
mod spec;
mod state;
pub mod tls;
pub mod tools;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use bollard::Docker;

use crate::docker::{self, Selector};
use crate::error::Result;
use image::EtcdImage;
use tls::Pki;

pub use attach::{ClusterRow, MemberRow, list};
pub use health::{probe_member, settled_needs_leader};
pub use spec::{
    CLIENT_PORT, ClusterSpec, DATA_DIR, MAX_SIZE, MIN_SIZE, Member, MemberState, PEER_PORT,
    StartOrder, VOLUME_MOUNT, member_name, validate_name, validate_size,
};
use state::remove_run_dir;
pub use state::{remove_stale_run_dirs, run_dir, stale_run_dirs, state_root};

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

impl Cluster {
    /// A handle on `spec`'s cluster with no members yet. It owns nothing (`keep`) until
    /// its creator says it does, so an early error never tears down a cluster it did not make.
    fn handle(
        docker: &Docker,
        spec: ClusterSpec,
        image: EtcdImage,
        network: String,
        token: String,
    ) -> Cluster {
        Cluster {
            docker: docker.clone(),
            network,
            token,
            image,
            members: vec![],
            pki: None,
            run_dir: run_dir(&spec.name),
            spec,
            start_elapsed: Duration::ZERO,
            keep: true,
            torn_down: false,
        }
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

    /// The labels of everything made for this cluster, `etcd-drill.keep=1` included when
    /// the cluster is meant to outlive this process.
    pub fn labels(&self, extra: &[(&str, &str)]) -> HashMap<String, String> {
        let mut l = docker::labels(&self.spec.name, &self.spec.run_id, extra);
        if self.spec.persistent {
            l.insert(docker::LABEL_KEEP.to_string(), "1".to_string());
        }
        l
    }

    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
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
