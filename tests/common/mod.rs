//! Shared helpers for the Docker-backed tests. These tests need a Docker daemon and the
//! locally built image (`make image`); without them they fail loudly, never pass silently.
#![allow(dead_code)]

use bollard::Docker;
use etcd_drill::cluster::{Cluster, ClusterSpec};
use etcd_drill::docker::{self, Selector};

pub async fn docker() -> Docker {
    match docker::connect().await {
        Ok(d) => d,
        Err(e) => panic!("these tests need a reachable Docker daemon: {e}"),
    }
}

/// A spec whose name says which test made it, so a leak points at its test.
pub fn spec(test: &str, size: usize) -> ClusterSpec {
    let mut s = ClusterSpec::new(size);
    s.name = format!("t-{test}-{:04x}", rand::random::<u16>());
    s
}

pub async fn start(docker: &Docker, spec: ClusterSpec) -> Cluster {
    match Cluster::start(docker, spec).await {
        Ok(c) => c,
        Err(e) => panic!("cluster did not start: {e}"),
    }
}

/// Asserts that nothing labelled with this cluster's name is left in Docker.
pub async fn assert_no_leftovers(docker: &Docker, cluster: &str) {
    let left = docker::list_objects(docker, &Selector::cluster(cluster))
        .await
        .unwrap();
    assert!(
        left.is_empty(),
        "cluster {cluster} left objects behind: {left:?}"
    );
}

/// `etcd-drill drill FILE --report-dir REPORTS` through the binary, as a user runs it:
/// the exit code and everything it printed.
pub fn run_drill(file: &std::path::Path, reports: &std::path::Path) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_etcd-drill"))
        .arg("drill")
        .arg(file)
        .arg("--report-dir")
        .arg(reports)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}
