//! `cleanup` on a daemon shared with runs that are still going: a plain cleanup removes what a
//! killed run left and nothing of a live one; `--dry-run` removes nothing at all.
//!
//! Every child gets a state directory of its own (`ETCD_DRILL_STATE_DIR`), so the plain
//! cleanups here never look at other runs' state directories on this machine.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use etcd_drill::docker::owner::Owner;
use etcd_drill::docker::{self, LABEL_KEEP, LABEL_OWNER, Selector};

const BIN: &str = env!("CARGO_BIN_EXE_etcd-drill");

/// One TLS member (so the run has a state directory: its certificates), then a long wait:
/// a run that stays alive with its cluster up until it is told to stop.
const WAITING: &str = r#"
name = "cleanup-waits"
description = "a run that is alive while the test needs it"
seed = 1
[cluster]
size = 1
tls = true
[dataset]
keys = 10
value_size = 16
[[steps]]
kind = "load"
[[steps]]
kind = "wait"
seconds = 300
"#;

/// A `drill` child; dropping it kills it and removes its cluster, so a failing test leaks
/// nothing.
struct Run {
    child: Child,
    cluster: String,
    state: std::path::PathBuf,
}

impl Run {
    /// Starts a waiting drill and returns once it has created a container.
    async fn start(docker: &bollard::Docker, dir: &std::path::Path, tag: &str) -> Run {
        let file = dir.join(format!("{tag}.toml"));
        std::fs::write(&file, WAITING).unwrap();
        let state = dir.join("state");
        let child = Command::new(BIN)
            .args(["drill", file.to_str().unwrap(), "--report-dir"])
            .arg(dir.join(format!("reports-{tag}")))
            .env("ETCD_DRILL_STATE_DIR", &state)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Owned by a `Run` at once, so a failed wait below still kills it.
        let mut run = Run {
            child,
            cluster: String::new(),
            state,
        };
        let t0 = Instant::now();
        loop {
            if let Some(cluster) = cluster_of(docker, run.child.id()).await {
                run.cluster = cluster;
                return run;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "drill {tag} created no container"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn state_dir(&self) -> std::path::PathBuf {
        self.state.join(&self.cluster)
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.cluster.is_empty() {
            return;
        }
        let _ = Command::new(BIN)
            .args(["cleanup", "--cluster", &self.cluster])
            .env("ETCD_DRILL_STATE_DIR", &self.state)
            .output();
    }
}

/// The cluster of the first container whose owner label names process `pid`.
async fn cluster_of(docker: &bollard::Docker, pid: u32) -> Option<String> {
    docker::list_found(docker, &Selector::all())
        .await
        .unwrap()
        .into_iter()
        .filter(|f| f.kind == docker::Kind::Container)
        .find(|f| {
            f.labels
                .get(LABEL_OWNER)
                .and_then(|l| Owner::parse(l))
                .is_some_and(|o| o.pid == pid)
        })
        .and_then(|f| f.cluster().map(str::to_string))
}

fn cleanup(args: &[&str], state: &std::path::Path) -> String {
    let out = Command::new(BIN)
        .arg("cleanup")
        .args(args)
        .env("ETCD_DRILL_STATE_DIR", state)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "cleanup {args:?}: {stdout}{stderr}"
    );
    stdout
}

async fn objects(docker: &bollard::Docker, cluster: &str) -> docker::Objects {
    docker::list_objects(docker, &Selector::cluster(cluster))
        .await
        .unwrap()
}

/// Kills `run` with SIGKILL (no handler runs) and returns what it left.
async fn sigkill(docker: &bollard::Docker, run: &mut Run) -> docker::Objects {
    run.child.kill().unwrap();
    run.child.wait().unwrap();
    let left = objects(docker, &run.cluster).await;
    assert!(!left.is_empty(), "SIGKILL should leave objects behind");
    assert!(run.state_dir().is_dir(), "and the certificates");
    left
}

#[tokio::test]
async fn plain_cleanup_removes_a_killed_run_and_leaves_a_live_one_alone() {
    let docker = common::docker().await;
    let dir = tempfile::tempdir().unwrap();
    let mut live = Run::start(&docker, dir.path(), "live").await;
    let mut dead = Run::start(&docker, dir.path(), "dead").await;
    sigkill(&docker, &mut dead).await;
    let live_before = objects(&docker, &live.cluster).await;

    let out = cleanup(&[], &live.state);

    assert!(out.contains("of runs no longer alive"), "{out}");
    common::assert_no_leftovers(&docker, &dead.cluster).await;
    assert!(
        !dead.state_dir().exists(),
        "the dead run's state directory goes: {out}"
    );
    assert_eq!(objects(&docker, &live.cluster).await, live_before, "{out}");
    assert!(
        live.state_dir().is_dir(),
        "the live run's state directory stays"
    );
    assert!(
        out.lines().any(|l| l.starts_with("kept")
            && l.contains("of runs still alive")
            && l.contains(&live.cluster)),
        "{out}"
    );
    assert!(
        live.child.try_wait().unwrap().is_none(),
        "the live run still runs"
    );

    // The live run, asked to stop, tears down what it made.
    let pid = live.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(live.child.wait().unwrap().code(), Some(130));
    common::assert_no_leftovers(&docker, &live.cluster).await;
}

#[tokio::test]
async fn a_dry_run_lists_and_removes_nothing() {
    let docker = common::docker().await;
    let dir = tempfile::tempdir().unwrap();
    let mut dead = Run::start(&docker, dir.path(), "dead").await;
    let left = sigkill(&docker, &mut dead).await;
    let container = format!(
        "would remove container {}-etcd-1 (cluster {})",
        dead.cluster, dead.cluster
    );

    for args in [
        &["--dry-run"][..],
        &["--dry-run", "--all"],
        &["--dry-run", "--cluster", &dead.cluster],
    ] {
        let out = cleanup(args, &dead.state);
        assert!(out.contains(&container), "{args:?}: {out}");
        let dir_line = format!(
            "would remove state directory {}",
            dead.state_dir().display()
        );
        assert!(out.contains(&dir_line), "{args:?}: {out}");
        assert!(out.contains("dry run: nothing was removed"), "{out}");
        assert_eq!(
            objects(&docker, &dead.cluster).await,
            left,
            "{args:?} removed something"
        );
        assert!(
            dead.state_dir().is_dir(),
            "{args:?} removed the state directory"
        );
    }

    let out = cleanup(&["--cluster", &dead.cluster], &dead.state);
    assert!(
        out.contains(&format!("of cluster {}", dead.cluster)),
        "{out}"
    );
    common::assert_no_leftovers(&docker, &dead.cluster).await;
    assert!(!dead.state_dir().exists());
}

/// Runs `cluster down` when dropped, so a failing test leaves no `cluster up` cluster.
struct Down<'a>(&'a str, &'a [(&'a str, String)]);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        common::etcd_drill(&["cluster", "down", self.0], self.1);
    }
}

/// `cluster up` exits and leaves its cluster running: a plain cleanup keeps it (and what
/// later commands add to it) and says how to remove it.
#[tokio::test]
async fn plain_cleanup_keeps_a_cluster_up_cluster() {
    let docker = common::docker().await;
    let state = tempfile::tempdir().unwrap();
    let name = format!("t-keep-{:04x}", rand::random::<u16>());
    let env = [("ETCD_DRILL_STATE_DIR", state.path().display().to_string())];
    let _down = Down(&name, &env);
    let drill = |args: &[&str]| {
        let (code, out, err) = common::etcd_drill(args, &env);
        assert_eq!(code, 0, "{args:?}: {err}");
        out
    };
    drill(&["cluster", "up", "--size", "1", "--name", &name, "--tls"]);
    // Objects a later command makes (wipe-data's fresh container and volume) are kept alike.
    drill(&["fault", "--cluster", &name, "stop", "--target", "member:1"]);
    drill(&[
        "fault",
        "--cluster",
        &name,
        "wipe-data",
        "--target",
        "member:1",
    ]);
    let found = docker::list_found(&docker, &Selector::cluster(&name))
        .await
        .unwrap();
    assert_eq!(found.len(), 3, "{found:?}");
    for f in &found {
        let keep = f.labels.get(LABEL_KEEP).map(String::as_str);
        assert_eq!(keep, Some("1"), "{f:?}");
        assert!(f.labels.contains_key(LABEL_OWNER), "{f:?}");
    }
    let up = objects(&docker, &name).await;

    let out = cleanup(&[], state.path());

    assert_eq!(objects(&docker, &name).await, up, "{out}");
    assert!(state.path().join(&name).join("pki").is_dir(), "{out}");
    let kept = out
        .lines()
        .find(|l| l.contains("made by `cluster up`") && l.contains(&name));
    assert!(
        kept.is_some_and(|l| l.contains("cluster down NAME")),
        "{out}"
    );
    drill(&["cluster", "down", &name]);
    common::assert_no_leftovers(&docker, &name).await;
}
