//! The binary as users run it: exit codes, messages, and teardown on SIGKILL and Ctrl-C.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use etcd_drill::docker::{self, Selector};

const BIN: &str = env!("CARGO_BIN_EXE_etcd-drill");

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn out_of_range_size_exits_2_with_the_reason() {
    let (code, _, err) = run(&["cluster", "up", "--size", "10", "--name", "never-created"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("invalid cluster size 10: a cluster has 1 to 9 members"),
        "{err}"
    );
}

#[test]
fn no_docker_daemon_exits_2_and_says_how_to_fix_it() {
    let out = Command::new(BIN)
        .args(["cluster", "ls"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot reach the Docker daemon"), "{err}");
    assert!(err.contains("DOCKER_HOST"), "{err}");
}

/// A drill whose image is missing never began: exit 2 with the command that builds the
/// image, not a failed verdict with a report of a run that did not happen.
#[test]
fn a_drill_without_its_image_exits_2_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("noimage.toml");
    std::fs::write(
        &scenario,
        "name = \"noimage\"\n[cluster]\nsize = 1\nversion = \"3.4.0\"\n[[steps]]\nkind = \"load\"\n",
    )
    .unwrap();
    let reports = dir.path().join("reports");
    let (code, _, err) = run(&[
        "drill",
        scenario.to_str().unwrap(),
        "--report-dir",
        reports.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("build it with `etcd-drill image build --version 3.4`"),
        "{err}"
    );
    assert!(!reports.exists(), "no report for a run that never began");
}

#[tokio::test]
async fn cluster_up_json_then_down() {
    let docker = common::docker().await;
    let name = format!("t-cli-{:04x}", rand::random::<u16>());
    let (code, out, err) = run(&["cluster", "up", "--size", "3", "--name", &name, "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("--json prints one JSON object");
    assert_eq!(v["name"], name.as_str());
    assert_eq!(v["size"], 3);
    assert_eq!(v["tls"], false);
    let members = v["members"].as_array().unwrap();
    assert_eq!(members.len(), 3);
    for m in members {
        assert!(
            m["client_url"]
                .as_str()
                .unwrap()
                .starts_with("http://127.0.0.1:")
        );
    }
    let (code, ls, _) = run(&["cluster", "ls"]);
    assert_eq!(code, 0);
    assert!(ls.contains(&name), "{ls}");
    let (code, _, err) = run(&["cluster", "down", &name]);
    assert_eq!(code, 0, "{err}");
    common::assert_no_leftovers(&docker, &name).await;
    let (code, _, err) = run(&["cluster", "down", &name]);
    assert_eq!(code, 2, "downing a missing cluster is an input error");
    assert!(err.contains("no cluster named"), "{err}");
}

/// Spawns `cluster up` and returns once it has created at least one container.
async fn spawn_up_and_wait_for_a_container(
    docker: &bollard::Docker,
    name: &str,
) -> std::process::Child {
    let child = Command::new(BIN)
        .args(["cluster", "up", "--size", "3", "--name", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while docker::list_objects(docker, &Selector::cluster(name))
        .await
        .unwrap()
        .containers
        .is_empty()
    {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "cluster up created nothing"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child
}

#[tokio::test]
async fn cleanup_removes_what_a_sigkilled_process_left() {
    let docker = common::docker().await;
    let name = format!("t-kill-{:04x}", rand::random::<u16>());
    let mut child = spawn_up_and_wait_for_a_container(&docker, &name).await;
    child.kill().unwrap(); // SIGKILL: no handler runs
    child.wait().unwrap();
    let left = docker::list_objects(&docker, &Selector::cluster(&name))
        .await
        .unwrap();
    assert!(
        !left.is_empty(),
        "SIGKILL should leave objects for cleanup to find"
    );
    let (code, out, err) = run(&["cleanup", "--cluster", &name]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("removed"), "{out}");
    common::assert_no_leftovers(&docker, &name).await;
}

#[tokio::test]
async fn ctrl_c_tears_down_what_was_started() {
    let docker = common::docker().await;
    let name = format!("t-int-{:04x}", rand::random::<u16>());
    let mut child = spawn_up_and_wait_for_a_container(&docker, &name).await;
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    common::assert_no_leftovers(&docker, &name).await;
}

/// Faults from the command line against a cluster started by an earlier command: the
/// handle is rebuilt from Docker (including partitions, read back from the member's netns).
#[tokio::test]
async fn faults_from_the_cli_against_a_running_cluster() {
    let docker = common::docker().await;
    let name = format!("t-fcli-{:04x}", rand::random::<u16>());
    let (code, _, err) = run(&["cluster", "up", "--size", "3", "--name", &name]);
    assert_eq!(code, 0, "{err}");

    let (code, out, err) = run(&[
        "fault",
        "--cluster",
        &name,
        "kill",
        "--target",
        "follower",
        "--seed",
        "4",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let killed = v["events"][0]["member"].as_str().unwrap().to_string();
    assert_eq!(v["events"][0]["role"], "follower");
    let idx = killed.trim_start_matches("etcd-");
    let (code, _, err) = run(&[
        "fault",
        "--cluster",
        &name,
        "restart",
        "--target",
        &format!("member:{idx}"),
    ]);
    assert_eq!(code, 0, "{err}");

    // A partition made by one command is healed by another.
    let (code, _, err) = run(&[
        "fault",
        "--cluster",
        &name,
        "partition",
        "--target",
        "member:2",
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(&["fault", "--cluster", &name, "heal", "--target", "member:2"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("etcd-2"), "{out}");
    // Healing again is refused: nothing is partitioned any more.
    let (code, _, err) = run(&["fault", "--cluster", &name, "heal", "--target", "member:2"]);
    assert_eq!(code, 2, "{err}");

    let (code, _, err) = run(&["fault", "--cluster", "no-such-cluster", "kill"]);
    assert_eq!(code, 2);
    assert!(err.contains("no cluster named no-such-cluster"), "{err}");

    let (code, _, err) = run(&["cluster", "down", &name]);
    assert_eq!(code, 0, "{err}");
    common::assert_no_leftovers(&docker, &name).await;
}
