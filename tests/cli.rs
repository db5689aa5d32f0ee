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
        err.contains(
            "for 3.4.0 exactly, build from your binaries (`etcd-drill image build --from-dir DIR`)"
        ),
        "{err}"
    );
    let left = std::fs::read_dir(&reports).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "no report for a run that never began");
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
    // `cluster ls --json` lists the members with the URLs `up` printed, and their state.
    let (code, ls, _) = run(&["cluster", "ls", "--json"]);
    assert_eq!(code, 0);
    let rows: serde_json::Value = serde_json::from_str(&ls).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name.as_str())
        .unwrap();
    assert_eq!(row["running"], 3, "{row:#}");
    for (listed, up) in row["members"].as_array().unwrap().iter().zip(members) {
        assert_eq!(listed["name"], up["name"], "{row:#}");
        assert_eq!(listed["client_url"], up["client_url"], "{row:#}");
        assert_eq!(listed["state"], "running");
    }
    // Endpoints are the cluster's for life: a stopped and restarted member keeps its
    // port, so the `--endpoints` a script took from `cluster up --json` still work.
    for fault in ["stop", "restart"] {
        let (code, _, err) = run(&["fault", "--cluster", &name, fault, "--target", "member:2"]);
        assert_eq!(code, 0, "{fault}: {err}");
    }
    let (_, ls, _) = run(&["cluster", "ls", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&ls).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name.as_str());
    let urls = |ms: &serde_json::Value| -> Vec<String> {
        let ms = ms.as_array().unwrap().iter();
        ms.map(|m| m["client_url"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(urls(&row.unwrap()["members"]), urls(&v["members"]));
    // Members advertise what the host reaches: etcdctl's `--cluster` discovery from the
    // host finds all three through one of them.
    let image = etcd_drill::cluster::image::resolve(&docker, "3.5")
        .await
        .unwrap();
    let tools = etcd_drill::cluster::tools::host_tools(
        &docker,
        &image,
        etcd_drill::docker::labels(&name, "t", &[]),
    )
    .await
    .unwrap();
    let health = std::process::Command::new(tools.join("etcdctl"))
        .args(["endpoint", "health", "--cluster", "--endpoints"])
        .arg(&urls(&v["members"])[0])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&health.stdout).to_string()
        + &String::from_utf8_lossy(&health.stderr);
    assert!(health.status.success(), "{said}");
    for url in urls(&v["members"]) {
        assert!(said.contains(&format!("{url} is healthy")), "{url}: {said}");
    }

    let (code, _, err) = run(&["cluster", "down", &name]);
    assert_eq!(code, 0, "{err}");
    common::assert_no_leftovers(&docker, &name).await;
    // Downing it again is a note, so CI teardown steps are idempotent; --strict refuses.
    let (code, out, err) = run(&["cluster", "down", &name]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("nothing to remove"), "{out}");
    let (code, _, err) = run(&["cluster", "down", &name, "--strict"]);
    assert_eq!(
        code, 2,
        "--strict: downing a missing cluster is an input error"
    );
    assert!(err.contains("no cluster named"), "{err}");
}

/// Spawns `cluster up` and returns once it has created at least one container.
async fn spawn_up_and_wait_for_a_container(
    docker: &bollard::Docker,
    name: &str,
) -> std::process::Child {
    let mut cmd = Command::new(BIN);
    cmd.args(["cluster", "up", "--size", "3", "--name", name]);
    spawn_until_a_container(docker, name, cmd).await
}

/// Spawns `cmd` (a `cluster up` of cluster `name`) and returns once it has created a container.
async fn spawn_until_a_container(
    docker: &bollard::Docker,
    name: &str,
    mut cmd: Command,
) -> std::process::Child {
    let child = cmd
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
    assert!(
        err.contains("cannot apply heal to etcd-2: it is running"),
        "{err}"
    );

    // `heal` with no target undoes every transient fault, as the scenario step does.
    for (fault, target) in [("pause", "member:1"), ("stop", "member:3")] {
        let (code, _, err) = run(&["fault", "--cluster", &name, fault, "--target", target]);
        assert_eq!(code, 0, "{err}");
    }
    let (code, out, err) = run(&["fault", "--cluster", &name, "heal"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("unpause etcd-1") && out.contains("restart etcd-3"),
        "{out}"
    );
    assert!(
        !out.contains("Some(") && !out.contains("Leader"),
        "no debug formatting: {out}"
    );
    let (code, out, err) = run(&["fault", "--cluster", &name, "heal"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("nothing to heal"), "{out}");

    let (code, _, err) = run(&["fault", "--cluster", "no-such-cluster", "kill"]);
    assert_eq!(code, 2);
    assert!(err.contains("no cluster named no-such-cluster"), "{err}");

    let (code, _, err) = run(&["cluster", "down", &name]);
    assert_eq!(code, 0, "{err}");
    common::assert_no_leftovers(&docker, &name).await;
}

fn run_env(args: &[&str], env: &[(&str, &str)], unset: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for k in unset {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A tcp:// DOCKER_HOST is the daemon used, not silently the local one: nothing listens on
/// port 1, so every command fails there (before, `cleanup` ran against the local daemon).
#[test]
fn a_tcp_docker_host_is_used_not_the_local_daemon() {
    let host = [("DOCKER_HOST", "tcp://127.0.0.1:1")];
    for args in [
        &["cluster", "ls"][..],
        &["cleanup", "--cluster", "t-tcp-none"],
    ] {
        let (code, out, err) = run_env(args, &host, &["DOCKER_TLS_VERIFY", "DOCKER_CONTEXT"]);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(
            err.contains("cannot reach the Docker daemon at tcp://127.0.0.1:1"),
            "{err}"
        );
        assert!(!out.contains("removed"), "{out}");
    }
}

/// What etcd-drill cannot honour is refused with exit 2 before any Docker call.
#[test]
fn unsupported_docker_endpoints_exit_2_with_the_remedy() {
    let config = tempfile::tempdir().unwrap();
    std::fs::write(
        config.path().join("config.json"),
        r#"{"currentContext": "desktop-linux"}"#,
    )
    .unwrap();
    let config = config.path().to_str().unwrap();
    let cases: [(&[(&str, &str)], &str); 4] = [
        (
            &[("DOCKER_HOST", "ssh://me@box")],
            "DOCKER_HOST=ssh://me@box",
        ),
        (
            &[
                ("DOCKER_HOST", "tcp://box:2376"),
                ("DOCKER_TLS_VERIFY", "1"),
            ],
            "not TLS",
        ),
        (&[("DOCKER_CONTEXT", "remote")], "docker context remote"),
        (&[("DOCKER_CONFIG", config)], "docker context desktop-linux"),
    ];
    for (env, says) in cases {
        let unset = ["DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CONTEXT"];
        let (code, _, err) = run_env(&["cleanup", "--cluster", "t-none"], env, &unset);
        assert_eq!(code, 2, "{env:?}: {err}");
        assert!(err.contains("cannot use the Docker endpoint"), "{err}");
        assert!(err.contains(says), "{err}");
        assert!(err.contains("Set DOCKER_HOST to unix://"), "{err}");
    }
}

/// A minimal report.json of `scenario` with the RTO phases and RPO given.
fn report_json(scenario: &str, phases: &[(&str, f64)], rpo: usize) -> serde_json::Value {
    let total: f64 = phases.iter().map(|p| p.1).sum();
    serde_json::json!({
        "schema_version": etcd_drill::model::report::REPORT_SCHEMA_VERSION,
        "scenario": scenario, "description": "", "file": "", "seed": 7, "repetition": 1,
        "etcd_version": "3.5.16", "image": "etcd-drill/etcd:3.5", "cluster_size": 3,
        "tls": false, "started_at_ms": 0, "finished_at_ms": 1,
        "steps": [], "fault_events": [], "probes": [], "snapshots": [],
        "rto": {"total_s": total, "phases": phases.iter()
            .map(|(n, s)| serde_json::json!({"name": n, "seconds": s})).collect::<Vec<_>>()},
        "rpo": {"writes": rpo, "revisions": rpo, "dataset_writes": rpo},
        "checks": [], "gates": [], "table": null, "verdict": "pass", "error": null,
    })
}

#[test]
fn report_compare_ignores_noise_flags_regressions_and_refuses_other_scenarios() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, v: serde_json::Value| {
        let p = dir.path().join(name);
        std::fs::write(&p, v.to_string()).unwrap();
        p.to_str().unwrap().to_string()
    };
    let old = write(
        "old.json",
        report_json("q5", &[("restore", 1.3), ("started", 0.1)], 0),
    );
    // The same scenario and seed again: +0.35 s (+350 %) and 0 → 128 writes.
    let noisy = write(
        "noisy.json",
        report_json("q5", &[("restore", 1.3), ("started", 0.45)], 128),
    );
    let slow = write(
        "slow.json",
        report_json("q5", &[("restore", 11.3), ("started", 0.1)], 0),
    );
    let other = write(
        "other.json",
        report_json("t9", &[("restore", 1.3), ("started", 0.1)], 0),
    );
    let cmp = |a: &str, b: &str, extra: &[&str]| {
        let mut args = vec!["report", "compare", a, b];
        args.extend_from_slice(extra);
        run(&args)
    };
    let (code, out, err) = cmp(&old, &noisy, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.ends_with("NEW is not worse than OLD\n"), "{out}");
    assert_eq!(cmp(&noisy, &old, &[]).0, 0, "nor the other way round");
    let (code, out, _) = cmp(&old, &noisy, &["--rpo-writes", "100"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("NEW is worse than OLD: rpo_dataset_writes"),
        "{out}"
    );
    let (code, out, _) = cmp(&old, &slow, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("NEW is worse than OLD: rto_s, phase restore"),
        "{out}"
    );
    let (code, out, err) = cmp(&old, &other, &[]);
    assert_eq!(code, 2, "{out}");
    assert!(
        err.contains("reports of different scenarios (q5 vs t9) are not comparable"),
        "{err}"
    );
    assert!(out.is_empty(), "{out}");
    assert_eq!(cmp(&old, &other, &["--force"]).0, 0);
    let (code, _, err) = cmp(&old, &noisy, &["--min-seconds=-1"]);
    assert_eq!(code, 2);
    assert!(err.contains("--min-seconds -1: use a number >= 0"), "{err}");
}

/// `cleanup --cluster X` removes X's state directory (certificates, snapshots) when X has
/// no Docker object left, and nothing else under the state root.
#[tokio::test]
async fn cleanup_removes_a_stale_state_directory_and_only_that() {
    let _docker = common::docker().await;
    let root = tempfile::tempdir().unwrap();
    let id = rand::random::<u16>();
    let (stale, other) = (format!("t-stale-{id:04x}"), format!("t-other-{id:04x}"));
    for d in [&stale, &other] {
        std::fs::create_dir_all(root.path().join(d).join("pki")).unwrap();
        std::fs::write(root.path().join(d).join("pki/ca.pem"), "x").unwrap();
    }
    let state = [("ETCD_DRILL_STATE_DIR", root.path().to_str().unwrap())];
    let (code, out, err) = run_env(&["cleanup", "--cluster", &stale], &state, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("and 1 state directory under"), "{out}");
    assert!(!root.path().join(&stale).exists(), "{out}");
    assert!(
        root.path().join(&other).exists(),
        "--cluster touches one cluster"
    );
}

/// Spawns a TLS `cluster up` with its state under `root`; returns once it has created a
/// container (its certificates exist by then).
async fn spawn_tls_up(
    docker: &bollard::Docker,
    name: &str,
    size: &str,
    root: &std::path::Path,
) -> std::process::Child {
    let mut cmd = Command::new(BIN);
    cmd.args(["cluster", "up", "--size", size, "--tls", "--name", name])
        .env("ETCD_DRILL_STATE_DIR", root);
    spawn_until_a_container(docker, name, cmd).await
}

/// A SIGKILLed TLS `cluster up` leaves its certificates; `cleanup --cluster` removes them
/// with the containers.
#[tokio::test]
async fn cleanup_removes_the_state_directory_a_sigkilled_run_left() {
    let docker = common::docker().await;
    let root = tempfile::tempdir().unwrap();
    let name = format!("t-killtls-{:04x}", rand::random::<u16>());
    let mut child = spawn_tls_up(&docker, &name, "1", root.path()).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(root.path().join(&name).join("pki").exists());
    let state = [("ETCD_DRILL_STATE_DIR", root.path().to_str().unwrap())];
    let (code, out, err) = run_env(&["cleanup", "--cluster", &name], &state, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("and 1 state directory"), "{out}");
    assert!(!root.path().join(&name).exists());
    common::assert_no_leftovers(&docker, &name).await;
}

/// `cluster up X` while X runs: refused up front (exit 2, naming `cluster down X`), and X
/// keeps its containers, volume, single network and certificates, and stays healthy.
#[tokio::test]
async fn cluster_up_on_a_name_in_use_is_refused_and_leaves_the_running_cluster_alone() {
    let docker = common::docker().await;
    let name = format!("t-conflict-{:04x}", rand::random::<u16>());
    let up = [
        "cluster", "up", "--size", "1", "--tls", "--name", &name, "--json",
    ];
    let (code, out, err) = run(&up);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ca = std::fs::read(v["cacert"].as_str().unwrap()).unwrap();
    let sorted = |mut o: docker::Objects| {
        for l in [&mut o.containers, &mut o.networks, &mut o.volumes] {
            l.sort();
        }
        o
    };
    let before = sorted(
        docker::list_objects(&docker, &Selector::cluster(&name))
            .await
            .unwrap(),
    );

    let (code, _, err) = run(&up);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("cluster name {name} is in use")),
        "{err}"
    );
    assert!(
        err.contains(&format!("`etcd-drill cluster down {name}`")),
        "{err}"
    );

    let after = sorted(
        docker::list_objects(&docker, &Selector::cluster(&name))
            .await
            .unwrap(),
    );
    assert_eq!(after, before, "the running cluster's objects were touched");
    let nets = docker::Objects {
        networks: vec![format!("{name}-net")],
        ..Default::default()
    };
    let nets = docker::taken_names(&docker, &nets).await.unwrap().networks;
    assert_eq!(nets.len(), 1, "a second {name}-net: {nets:?}");
    assert_eq!(std::fs::read(v["cacert"].as_str().unwrap()).unwrap(), ca);
    let mut c = etcd_drill::cluster::Cluster::attach(&docker, &name)
        .await
        .unwrap();
    c.wait_healthy(Duration::from_secs(20)).await.unwrap();
    drop(c);

    let (code, _, err) = run(&["cluster", "down", &name]);
    assert_eq!(code, 0, "{err}");
    common::assert_no_leftovers(&docker, &name).await;
}

/// Objects of the names a cluster would take, made by someone else (no labels), refuse the
/// name too, and are left as they were.
#[tokio::test]
async fn cluster_up_refuses_names_taken_by_foreign_objects() {
    use bollard::models::{NetworkCreateRequest, VolumeCreateRequest};
    let docker = common::docker().await;
    let name = format!("t-foreign-{:04x}", rand::random::<u16>());
    let (net, vol) = (format!("{name}-net"), format!("{name}-etcd-1-data"));
    docker
        .create_network(NetworkCreateRequest {
            name: net.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    docker
        .create_volume(VolumeCreateRequest {
            name: Some(vol.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let (code, _, err) = run(&["cluster", "up", "--size", "1", "--name", &name]);
    let wanted = docker::Objects {
        networks: vec![net.clone()],
        volumes: vec![vol.clone()],
        ..Default::default()
    };
    let still = docker::taken_names(&docker, &wanted).await.unwrap();
    let _ = docker.remove_network(&net).await;
    let _ = docker
        .remove_volume(&vol, None::<bollard::query_parameters::RemoveVolumeOptions>)
        .await;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!(
            "cluster name {name} would reuse Docker objects etcd-drill did not make (network {net}; volume {vol}); pick another --name"
        )),
        "{err}"
    );
    assert_eq!(still, wanted, "the foreign objects must stay");
    common::assert_no_leftovers(&docker, &name).await;
}

/// Two networks of one name (what the old `cluster up` conflict left; Docker before API
/// 1.44 allows it) are both removed: by ID, since Docker refuses a name that is ambiguous.
#[tokio::test]
async fn cleanup_removes_two_networks_of_one_name() {
    use bollard::models::NetworkCreateRequest;
    let docker = common::docker().await;
    let name = format!("t-dupnet-{:04x}", rand::random::<u16>());
    let labels = docker::labels(&name, "t-dupnet", &[]);
    for i in 0..2 {
        let created = docker
            .create_network(NetworkCreateRequest {
                name: format!("{name}-net"),
                labels: Some(labels.clone()),
                ..Default::default()
            })
            .await;
        if i == 1 && created.is_err() {
            // This daemon refuses duplicate names: the situation cannot arise here.
            eprintln!("daemon refuses duplicate network names: {created:?}");
            break;
        }
        created.unwrap();
    }
    let (code, out, err) = run(&["cleanup", "--cluster", &name]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("containers, 2 networks") || err.contains("refuses"),
        "{out}"
    );
    common::assert_no_leftovers(&docker, &name).await;
}

/// Ctrl-C removes the run's state directory with its Docker objects.
#[tokio::test]
async fn ctrl_c_removes_the_state_directory_too() {
    let docker = common::docker().await;
    let root = tempfile::tempdir().unwrap();
    let name = format!("t-inttls-{:04x}", rand::random::<u16>());
    let mut child = spawn_tls_up(&docker, &name, "3", root.path()).await;
    assert!(root.path().join(&name).join("pki").exists());
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(child.wait().unwrap().code(), Some(130));
    assert!(
        !root.path().join(&name).exists(),
        "state directory left behind"
    );
    common::assert_no_leftovers(&docker, &name).await;
}

/// `check-history` as a user runs it on a file: the verdict is the exit code.
#[test]
fn check_history_exit_codes_say_the_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, lines: &[String]| {
        let p = dir.path().join(name);
        std::fs::write(&p, lines.join("\n")).unwrap();
        p.display().to_string()
    };
    let put = |c: u64, r: u64, v: &str| {
        format!(r#"{{"client":1,"call":{c},"return":{r},"op":"put","key":"x","value":"{v}"}}"#)
    };
    let get = |c: u64, r: u64, v: &str| {
        format!(
            r#"{{"client":2,"call":{c},"return":{r},"op":"get","key":"x","output":{{"value":"{v}"}}}}"#
        )
    };
    let good = write("good.jsonl", &[put(0, 10, "1"), get(20, 30, "1")]);
    let (code, out, err) = run(&["check-history", &good]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("linearizable: 2 operations on 1 keys"),
        "{out}"
    );

    let stale = write(
        "stale.jsonl",
        &[put(0, 10, "1"), put(20, 30, "2"), get(40, 50, "1")],
    );
    let (code, out, _) = run(&["check-history", &stale]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("! #2 client 2 [40, 50] get x -> \"1\""),
        "{out}"
    );
    let (code, out, _) = run(&["check-history", &stale, "--json"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verdict"], "not-linearizable");
    assert_eq!(v["window"]["stuck"], serde_json::json!([2]));

    // Thirty concurrent writes and a read of a value none wrote: no verdict in 10 ms.
    // (Each write its own client: one client's operations never overlap.)
    let mut hard: Vec<String> = (0..30)
        .map(|i| {
            put(0, 1000, &i.to_string())
                .replace("\"client\":1,", &format!("\"client\":{},", 10 + i))
        })
        .collect();
    hard.push(get(0, 1000, "never written"));
    let hard = write("hard.jsonl", &hard);
    let (code, out, _) = run(&["check-history", &hard, "--timeout", "0.01"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.starts_with("unknown:"), "{out}");

    let bad = write(
        "bad.jsonl",
        &[put(0, 10, "1"), "{\"client\":1}".to_string()],
    );
    let (code, _, err) = run(&["check-history", &bad]);
    assert_eq!(code, 2);
    assert!(err.contains("bad.jsonl:2:"), "{err}");
    let (code, _, err) = run(&["check-history", &good, "--timeout", "0"]);
    assert_eq!(code, 2, "{err}");
}

/// `validate` checks every file it is given: the good one is said to be valid, each bad one's
/// error is printed at its field, and the command exits 2.
#[test]
fn validate_reports_every_bad_file_and_every_good_one() {
    let dir = tempfile::tempdir().unwrap();
    let steps = "[[steps]]\nkind = \"fault\"\nfault = \"permanent\"\ntarget = \"count:2\"\n[[steps]]\nkind = \"fault\"\nfault = \"permanent\"\n";
    let write = |name: &str, last: &str| {
        let p = dir.path().join(name);
        let src = format!("name = \"v\"\n[cluster]\nsize = 5\n{steps}{last}\n");
        std::fs::write(&p, src).unwrap();
        p.display().to_string()
    };
    let good = write("good.toml", "target = \"count:3\"");
    let bad1 = write("bad1.toml", "target = \"count:4\"");
    let bad2 = dir.path().join("bad2.toml");
    std::fs::write(
        &bad2,
        "name = \"v\"\n[cluster]\nsize = 3\n[[steps]]\nkind = \"expect\"\nwritable = \"no\"\n",
    )
    .unwrap();
    let bad2 = bad2.display().to_string();
    let (code, out, err) = run(&["validate", &good, &bad1, &bad2]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        out.contains(&format!("{good}: ok (2 steps, 5 members)")),
        "{out}"
    );
    assert!(
        err.contains(&format!(
            "{bad1}:11:10: step 2 (fault permanent).target: count:4 but at most 3 of the 5 members can be running or partitioned here; allowed: count:1 to count:3"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{bad2}:6:12: step 1 (expect).writable: invalid type: string \"no\", expected a boolean"
        )),
        "{err}"
    );
    assert!(err.contains("2 of 3 scenario files are invalid"), "{err}");
}

/// An interrupted run measured nothing: comparing it either way round is bad input (exit 2,
/// naming the file and what to compare instead), never a regression or a pass.
#[test]
fn report_compare_refuses_an_interrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let done = dir.path().join("done.json");
    std::fs::write(&done, report_json("q5", &[("restore", 1.3)], 0).to_string()).unwrap();
    let mut cut = report_json("q5", &[("restore", 0.2)], 0);
    cut["verdict"] = "interrupted".into();
    let cut_path = dir.path().join("cut.json");
    std::fs::write(&cut_path, cut.to_string()).unwrap();
    let (d, c) = (done.to_str().unwrap(), cut_path.to_str().unwrap());
    for (old, new, which) in [(d, c, "NEW"), (c, d, "OLD")] {
        let (code, out, err) = run(&["report", "compare", old, new]);
        assert_eq!(code, 2, "{out}{err}");
        assert!(
            err.contains(&format!("{which} {c} is an interrupted run")),
            "{err}"
        );
        assert!(err.contains("latest-q5"), "{err}");
        assert_eq!(err.lines().count(), 1, "one cause, one remedy: {err}");
    }
}

/// A drill's history carries revisions: `check-history` without `--model` checks it with
/// the etcd model (a register-only history stays on kv).
#[test]
fn check_history_picks_the_etcd_model_for_histories_with_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let with_revs = dir.path().join("etcd.jsonl");
    std::fs::write(
        &with_revs,
        concat!(
            r#"{"client": 0, "call": 1, "return": 2, "op": "put", "key": "x", "value": "a", "output": {"revision": 2}}"#,
            "\n",
            r#"{"client": 1, "call": 3, "return": 4, "op": "get", "key": "x", "output": {"value": "a", "revision": 2, "mod_revision": 2}}"#,
            "\n"
        ),
    )
    .unwrap();
    let plain = dir.path().join("kv.jsonl");
    std::fs::write(
        &plain,
        r#"{"client": 0, "call": 1, "return": 2, "op": "put", "key": "x", "value": "a"}"#,
    )
    .unwrap();
    let model = |p: &std::path::Path| {
        let (code, out, err) = run(&["check-history", p.to_str().unwrap(), "--json"]);
        assert_eq!(code, 0, "{out}{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["model"].as_str().unwrap_or_default().to_string()
    };
    assert_eq!(model(&with_revs), "etcd");
    assert_eq!(model(&plain), "kv");
}

/// The etcd model holds a history to its world: a revision none of its writes took fails a
/// closed history (the default) and is allowed in an open one (`--open-world`, or a header
/// line, as a drill writes); a returned operation without the revision the model needs is
/// refused at its line, before anything is checked.
#[test]
fn check_history_holds_a_closed_world_to_consecutive_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let put = |call: u64, rev: i64| {
        format!(
            r#"{{"client": 0, "call": {call}, "return": {}, "op": "put", "key": "x", "value": "v{rev}", "output": {{"revision": {rev}}}}}"#,
            call + 1
        )
    };
    let gap = [put(1, 2), put(3, 4)].join("\n");
    let file = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let closed = file("closed.jsonl", &gap);
    let (code, out, err) = run(&["check-history", &closed]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("revision 3 is taken by no write of the history"),
        "{out}"
    );
    assert!(out.contains("closed world"), "{out}");
    let (code, out, _) = run(&["check-history", &closed, "--open-world"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("open world"), "{out}");
    let open = file("open.jsonl", &format!("{{\"world\": \"open\"}}\n{gap}"));
    let (code, out, _) = run(&["check-history", &open]);
    assert_eq!(code, 0, "{out}");
    let unready = file(
        "unready.jsonl",
        &format!(
            "{}\n{}",
            put(1, 2),
            r#"{"client": 1, "call": 5, "return": 6, "op": "get", "key": "x", "output": {"value": "v2"}}"#
        ),
    );
    let (code, _, err) = run(&["check-history", &unready]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("unready.jsonl:2:") && err.contains("header revision"),
        "{err}"
    );
}

/// quorum-loss-5 as it passes, as report.json: two of five lost for good at once, then the
/// leader (quorum lost, as the table predicts), then the restore. With `lost` false the
/// third fault is left out, so the same stretch without a write has a majority up.
fn quorum_loss_json(lost: bool) -> serde_json::Value {
    let phases = [
        ("stop-survivors", 1.3),
        ("restore", 8.4),
        ("started", 2.4),
        ("first-write", 0.3),
        ("verified", 2.0),
    ];
    let mut r = report_json("quorum-loss-5", &phases, 0);
    let step = |i: usize, kind: &str, start_s: f64, seconds: f64| {
        serde_json::json!({"index": i, "kind": kind, "title": kind, "start_s": start_s,
            "seconds": seconds, "ok": true, "detail": ""})
    };
    let fault = |at_s: f64, member: &str, fault: &str, role: &str| serde_json::json!({"at_s": at_s, "member": member, "fault": fault, "role": role});
    let probe = |at_s: f64, step: usize, writable: bool, leader: Option<&str>| {
        serde_json::json!({"at_s": at_s, "step": step, "writable": writable, "leader": leader,
            "serializable_readers": [], "first_write_ms": null})
    };
    let mut faults = vec![
        fault(2.70, "etcd-2", "permanent", "follower"),
        fault(2.72, "etcd-4", "permanent", "follower"),
        fault(6.90, "etcd-1", "permanent", "leader"),
        fault(10.80, "etcd-3", "stop", "follower"),
        fault(10.80, "etcd-5", "stop", "follower"),
    ];
    if !lost {
        faults.remove(2);
    }
    r["cluster_size"] = 5.into();
    r["finished_at_ms"] = 26_800.into();
    r["rto"]["start_s"] = 10.7.into();
    r["steps"] = serde_json::json!([
        step(1, "load", 0.0, 2.0),
        step(2, "snapshot", 2.0, 0.6),
        step(3, "fault", 2.6, 1.2),
        step(4, "expect", 3.8, 3.0),
        step(5, "fault", 6.8, 0.9),
        step(6, "expect", 7.7, 3.0),
        step(7, "restore", 10.7, 14.4),
        step(8, "verify", 25.1, 1.5),
    ]);
    r["fault_events"] = faults.into();
    r["probes"] = serde_json::json!([
        probe(4.0, 4, true, Some("etcd-1")),
        probe(24.2, 7, true, Some("etcd-3")),
    ]);
    r["write_windows"] = serde_json::json!([
        {"from_s": 0.0, "to_s": 6.9, "writable": true},
        {"from_s": 6.9, "to_s": 10.7, "writable": false},
    ]);
    r["checks"] =
        serde_json::json!([{"step": 8, "name": "keys-present", "passed": true, "detail": ""}]);
    r
}

/// The picture as its reader sees it: on a PASS report, quorum lost as the table predicts
/// is drawn neutral and labelled so, not as a red failure; the same stretch without a
/// write while a majority is up is red.
#[test]
fn report_render_draws_an_expected_quorum_loss_neutral_and_an_unexplained_one_red() {
    // The writer's bands at fill-opacity 0.55 over white: neutral grey, and red.
    const NEUTRAL_BAND: [u8; 3] = [192, 197, 202];
    const RED_BAND: [u8; 3] = [233, 147, 155];
    let mut seen = vec![];
    for lost in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let json = quorum_loss_json(lost).to_string();
        std::fs::write(dir.path().join("report.json"), json).unwrap();
        let (code, out, err) = run(&["report", "render", dir.path().to_str().unwrap()]);
        assert_eq!(code, 0, "{out}{err}");
        let file = dir.path().join("report.html");
        let html = std::fs::read_to_string(&file).unwrap();
        let label = if lost {
            "quorum lost — expected: 2 of 5 up, majority 3"
        } else {
            "no write acknowledged — 3 of 5 up"
        };
        assert!(html.contains(&format!(">{label}</text>")), "{html}");
        // Two lost at once are one label; the leader is marked on its member's lane.
        assert!(
            html.contains(">permanent ×2: etcd-2, etcd-4</text>"),
            "{html}"
        );
        assert!(html.contains(">leader</text>"), "{html}");
        let png = common::browser::assert_report_renders(&file, common::browser::GREEN);
        let ink = common::browser::ink(&png, &[NEUTRAL_BAND, RED_BAND]);
        seen.push((ink.near[0], ink.near[1]));
    }
    let [(grey, red), (grey_after, red_after)] = seen[..] else {
        unreachable!()
    };
    // Anti-aliased text is grey too: the band shows as the difference between the pages.
    assert!(
        red < 50 && grey > grey_after + 1000,
        "quorum lost: {grey} grey (against {grey_after}), {red} red pixels"
    );
    assert!(red_after > 1000, "a majority up: {red_after} red pixels");
}
