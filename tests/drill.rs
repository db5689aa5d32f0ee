//! Scenario files run end to end through the binary, as `make drill` does.

mod common;

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_etcd-drill");

const SMALL: &str = r#"
name = "small-restore"
description = "one member, lost and restored"
seed = 11
[cluster]
size = 1
[dataset]
keys = 200
value_size = 64
[gates]
max_rto_s = GATE
max_rpo_writes = 100
[[steps]]
kind = "load"
[[steps]]
kind = "snapshot"
name = "s"
[[steps]]
kind = "load"
keys = 10
[[steps]]
kind = "fault"
fault = "permanent"
target = "member:1"
[[steps]]
kind = "restore"
snapshot = "s"
[[steps]]
kind = "verify"
"#;

fn run_drill(gate: &str) -> (i32, String, std::path::PathBuf, tempfile::TempDir) {
    run_src(&SMALL.replace("GATE", gate))
}

/// Runs `drill` on a scenario written from `src`; exit code, output, report dir.
fn run_src(src: &str) -> (i32, String, std::path::PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(&file, src).unwrap();
    let reports = dir.path().join("reports");
    let (code, text) = common::run_drill(&file, &reports);
    (code, text, reports, dir)
}

fn only_report_dir(reports: &std::path::Path) -> std::path::PathBuf {
    // Beside the run directory, `latest-<scenario>` points at it.
    let dirs: Vec<_> = std::fs::read_dir(reports)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            !p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("latest-")
        })
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

#[tokio::test]
async fn a_small_drill_passes_and_writes_every_report() {
    let (code, out, reports, _dir) = run_drill("120");
    assert_eq!(code, 0, "{out}");
    let d = only_report_dir(&reports);
    assert!(
        d.file_name()
            .unwrap()
            .to_string_lossy()
            .ends_with("Z-small-restore"),
        "{d:?}"
    );
    for f in [
        "report.json",
        "summary.md",
        "junit.xml",
        "report.html",
        "metrics.prom",
    ] {
        let p = d.join(f);
        assert!(
            p.exists() && std::fs::metadata(&p).unwrap().len() > 0,
            "{f} missing or empty"
        );
    }
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("report.json")).unwrap()).unwrap();
    assert_eq!(r["schema_version"], 1);
    assert_eq!(r["verdict"], "pass");
    assert_eq!(r["seed"], 11);
    assert_eq!(
        r["rpo"]["dataset_writes"], 10,
        "the 10 writes after the snapshot are lost"
    );
    // The harness's own writes after the snapshot are lost too, and counted in the total.
    let harness = r["rpo"]["harness_writes"].as_u64().unwrap();
    assert_eq!(r["rpo"]["writes"].as_u64().unwrap(), 10 + harness);
    assert!(r["rto"]["total_s"].as_f64().unwrap() > 0.0);
    assert_eq!(r["snapshots"].as_array().unwrap().len(), 1);
    // Each of the verifier's checks carries its own time.
    let checks = r["checks"].as_array().unwrap();
    for name in ["data", "hashkv", "membership", "new-write", "etcdctl-keys"] {
        let c = checks.iter().find(|c| c["name"] == name);
        let s = c.and_then(|c| c["seconds"].as_f64());
        assert!(s.is_some_and(|s| s > 0.0), "{name}: {checks:?}");
    }
    assert!(
        r["fault_events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["fault"] == "permanent")
    );
    let html = std::fs::read_to_string(d.join("report.html")).unwrap();
    assert!(html.contains("<svg"));

    // Comparing the run with itself: nothing got worse.
    let c = Command::new(BIN)
        .args([
            "report",
            "compare",
            d.to_str().unwrap(),
            d.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(
        c.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&c.stdout)
    );
}

#[tokio::test]
async fn an_impossibly_tight_gate_fails_the_drill_and_names_the_gate() {
    let (code, out, reports, _dir) = run_drill("0.001");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAILED gate max_rto_s: limit 0.001"), "{out}");
    let d = only_report_dir(&reports);
    let junit = std::fs::read_to_string(d.join("junit.xml")).unwrap();
    assert!(junit.contains("failures=\"1\""), "{junit}");
    let prom = std::fs::read_to_string(d.join("metrics.prom")).unwrap();
    assert!(
        prom.contains("etcd_drill_verdict{scenario=\"small-restore\"} 0"),
        "{prom}"
    );
}

#[test]
fn invalid_scenarios_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        SMALL.replace("GATE", "10").replace("size = 1", "size = 10"),
    )
    .unwrap();
    for cmd in ["validate", "drill"] {
        let out = Command::new(BIN)
            .args([cmd, file.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {err}");
        assert!(
            err.contains("bad.toml:6:8: cluster.size: 10 is out of range; allowed: 1 to 9"),
            "{cmd}: {err}"
        );
    }
}

#[test]
fn every_shipped_scenario_validates() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| p.display().to_string())
        .collect();
    assert!(files.len() >= 6, "{files:?}");
    let out = Command::new(BIN)
        .arg("validate")
        .args(&files)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_published_schema_matches_the_code() {
    let out = Command::new(BIN).arg("schema").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let published = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/schema.json"),
    )
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        published,
        "scenarios/schema.json is stale: regenerate with `etcd-drill schema > scenarios/schema.json`"
    );
}

fn run_scenario(src: &str) -> (i32, String, serde_json::Value) {
    let (code, text, reports, _dir) = run_src(src);
    let d = only_report_dir(&reports);
    let r = serde_json::from_str(&std::fs::read_to_string(d.join("report.json")).unwrap()).unwrap();
    (code, text, r)
}

#[test]
fn a_drill_without_any_check_is_a_fail_not_a_pass() {
    let (code, out, r) = run_scenario(
        "name = \"nothing\"\n[cluster]\nsize = 1\n[[steps]]\nkind = \"wait\"\nseconds = 0.1\n",
    );
    assert_eq!(code, 1, "{out}");
    assert_eq!(r["verdict"], "fail");
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("a pass needs evidence"),
        "{r}"
    );
}

#[test]
fn a_step_that_errors_fails_the_drill_with_exit_1_and_a_report() {
    // A backup command that succeeds but writes no file: only the run can find that out
    // (`validate` now refuses what it can know, such as a follower of one member).
    let (code, out, r) = run_scenario(
        "name = \"no-file\"\n[cluster]\nsize = 1\n[[steps]]\nkind = \"load\"\nkeys = 10\n\
         [[steps]]\nkind = \"snapshot\"\ncommand = \"true\"\n\
         [[steps]]\nkind = \"expect\"\nwritable = true\n",
    );
    assert_eq!(code, 1, "{out}");
    assert_eq!(r["verdict"], "fail");
    assert!(r["error"].as_str().unwrap().contains("step 2"), "{r}");
    assert!(out.contains("stopped: step 2"), "{out}");
}

/// Writes after a restore belong to the new cluster's history: expected present, and a
/// second restore from a snapshot of that history works.
#[test]
fn loads_after_a_restore_and_a_second_restore_are_judged_against_the_new_history() {
    let (code, out, r) = run_scenario(
        r#"
name = "two-restores"
seed = 3
[cluster]
size = 1
[dataset]
keys = 100
value_size = 64
[[steps]]
kind = "load"
[[steps]]
kind = "snapshot"
name = "first"
[[steps]]
kind = "load"
keys = 20
[[steps]]
kind = "restore"
snapshot = "first"
[[steps]]
kind = "verify"
[[steps]]
kind = "load"
keys = 30
[[steps]]
kind = "snapshot"
name = "second"
[[steps]]
kind = "load"
keys = 5
[[steps]]
kind = "restore"
snapshot = "second"
[[steps]]
kind = "verify"
"#,
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(r["verdict"], "pass");
    // The second restore lost only the 5 keys written after the second snapshot.
    assert_eq!(r["rpo"]["dataset_writes"], 5, "{}", r["rpo"]);
    let data: Vec<_> = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == "data")
        .map(|c| c["detail"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(data.len(), 2, "{data:?}");
    // Index 100..120 were lost by the first restore and written again by the 30-key load
    // (which continues from index 120): 100 + 30 keys, then the same after the second.
    assert!(data[1].starts_with("130 keys present"), "{data:?}");
}

/// The user's own commands: an `exec` step's exit code is a check (a failing one fails the
/// drill, a hung one is killed at its timeout), and it sees the cluster through etcdctl's
/// own environment and the image's etcdctl on PATH.
#[test]
fn exec_steps_are_checks_that_can_fail() {
    let (code, out, r) = run_scenario(
        r#"
name = "exec"
[cluster]
size = 1
[[steps]]
kind = "exec"
command = "etcdctl put /etcd-drill/exec ok && etcdctl get /etcd-drill/exec --print-value-only | grep -qx ok"
[[steps]]
kind = "exec"
command = "echo boom >&2; exit 3"
[[steps]]
kind = "exec"
command = "sleep 30"
timeout_s = 1
"#,
    );
    assert_eq!(code, 1, "{out}");
    assert_eq!(r["verdict"], "fail");
    let checks = r["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 3, "{r:#}");
    assert_eq!(checks[0]["passed"], true, "{r:#}");
    assert_eq!(checks[1]["passed"], false);
    let d1 = checks[1]["detail"].as_str().unwrap();
    assert!(d1.contains("exit 3") && d1.contains("boom"), "{d1}");
    assert_eq!(checks[2]["passed"], false);
    assert!(
        checks[2]["detail"]
            .as_str()
            .unwrap()
            .contains("killed after its 1 s timeout"),
        "{r:#}"
    );
    assert!(
        r["steps"][2]["seconds"].as_f64().unwrap() < 10.0,
        "killed, not waited for"
    );
}

#[test]
fn a_backup_command_that_fails_or_writes_nothing_stops_the_drill() {
    for (command, why) in [
        ("exit 4", "the backup command failed: exit 4"),
        ("true", "left no snapshot"),
    ] {
        let (code, out, r) = run_scenario(&format!(
            "name = \"badbackup\"\n[cluster]\nsize = 1\n[[steps]]\nkind = \"load\"\nkeys = 10\n\
             [[steps]]\nkind = \"snapshot\"\ncommand = \"{command}\"\n\
             [[steps]]\nkind = \"expect\"\nwritable = true\n"
        ));
        assert_eq!(code, 1, "{out}");
        assert_eq!(r["verdict"], "fail");
        assert!(
            r["error"].as_str().unwrap().contains(why),
            "{command}: {r:#}"
        );
    }
}

#[test]
fn etcd_flags_the_harness_owns_are_refused_and_yours_are_taken() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, args: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, format!("name = \"flags\"\n[cluster]\nsize = 1\netcd_args = [{args}]\n[[steps]]\nkind = \"load\"\n")).unwrap();
        p
    };
    let bad = write(
        "bad.toml",
        "\"--auto-compaction-retention=1\", \"--data-dir=/elsewhere\"",
    );
    let out = Command::new(BIN)
        .arg("validate")
        .arg(&bad)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bad.toml:4:") && err.contains("--data-dir is set by etcd-drill"),
        "{err}"
    );
    let good = write("good.toml", "\"--auto-compaction-retention=1\"");
    let out = Command::new(BIN)
        .arg("validate")
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Scripts find the newest run of a scenario at `latest-<scenario>`, and a periodic drill's
/// metrics land under a stable name for node_exporter.
#[test]
fn the_latest_run_is_pointed_at_and_metrics_go_where_node_exporter_reads() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.toml");
    std::fs::write(&file, "name = \"metrics\"\n[cluster]\nsize = 1\n[[steps]]\nkind = \"load\"\nkeys = 5\n[[steps]]\nkind = \"verify\"\n").unwrap();
    let reports = dir.path().join("reports");
    let textfile = dir.path().join("textfile");
    std::fs::create_dir_all(&textfile).unwrap();
    let template = textfile.join("etcd_drill_{scenario}.prom");
    let out = Command::new(BIN)
        .arg("drill")
        .arg(&file)
        .arg("--report-dir")
        .arg(&reports)
        .arg("--metrics-file")
        .arg(&template)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let latest = reports.join("latest-metrics");
    assert!(
        latest.join("report.json").is_file(),
        "latest-metrics points at the run"
    );
    let prom = std::fs::read_to_string(textfile.join("etcd_drill_metrics.prom")).unwrap();
    assert!(
        prom.contains("etcd_drill_verdict{scenario=\"metrics\"} 1"),
        "{prom}"
    );
    assert_eq!(
        std::fs::read_dir(&textfile).unwrap().count(),
        1,
        "no temporary file left"
    );
    // Two scenarios into one fixed name would overwrite each other: refused up front.
    let fixed = textfile.join("all.prom");
    let out = Command::new(BIN)
        .arg("drill")
        .args([&file, &file])
        .arg("--metrics-file")
        .arg(&fixed)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("put {scenario} in the name"));
}

/// `[cluster] image`: your own local etcd image runs the drill (never pulled, never
/// retagged); one that is not there is bad input before anything starts.
#[test]
fn a_users_own_image_runs_the_drill_and_a_missing_one_is_refused() {
    let src = |image: &str| {
        format!(
            "name = \"ownimage\"\n[cluster]\nsize = 1\nimage = \"{image}\"\n\
             [[steps]]\nkind = \"load\"\nkeys = 20\n[[steps]]\nkind = \"verify\"\n"
        )
    };
    let (code, out, r) = run_scenario(&src("etcd-drill/etcd:3.5.16"));
    assert_eq!(code, 0, "{out}");
    assert_eq!(r["image"], "etcd-drill/etcd:3.5.16");
    assert_eq!(r["etcd_version"], "3.5.16");
    let (code, out, _, _) = run_src(&src("registry.example/etcd:never-built"));
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("is not present locally (this harness never pulls)"),
        "{out}"
    );
}

/// A story of one clock: three members load data, a snapshot is taken from a follower, two
/// are lost for good at once (quorum gone), then the restore. Every fault is stamped when its
/// SIGKILL returned — both before either container is deleted — and carries its step and
/// who made it; the deletions are harness actions of their own; the snapshot held what was
/// acknowledged before it (no lag, dataset RPO 0); the writes lane has a writable stretch
/// before the losses and the unwritable one starts only after the second loss.
#[test]
fn faults_are_stamped_when_they_take_effect_and_the_snapshot_holds_what_was_acknowledged() {
    let (code, out, r) = run_scenario(
        "name = \"one-clock\"\n[cluster]\nsize = 3\n[dataset]\nkeys = 2000\nvalue_size = 128\n\
         [gates]\nmax_snapshot_lag = 0\n\
         [[steps]]\nkind = \"load\"\n[[steps]]\nkind = \"snapshot\"\n\
         [[steps]]\nkind = \"fault\"\nfault = \"permanent\"\ntarget = \"count:2\"\n\
         [[steps]]\nkind = \"expect\"\nwritable = false\n\
         [[steps]]\nkind = \"restore\"\n[[steps]]\nkind = \"verify\"\n",
    );
    assert_eq!(code, 0, "{out}");
    let faults: Vec<&serde_json::Value> = r["fault_events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["fault"] == "permanent")
        .collect();
    assert_eq!(faults.len(), 2, "{r}");
    let actions = r["actions"].as_array().expect("harness actions recorded");
    assert_eq!(actions.len(), 2, "{r}");
    let first_removal = actions
        .iter()
        .map(|a| a["at_s"].as_f64().unwrap())
        .fold(f64::MAX, f64::min);
    for f in &faults {
        assert_eq!(f["step"], 3, "{f}");
        assert_eq!(f["by"], "scenario", "{f}");
        assert!(
            f["at_s"].as_f64().unwrap() <= first_removal,
            "killed after a removal: {r}"
        );
    }
    for a in actions {
        assert_eq!(a["action"], "remove-container-and-volume", "{a}");
        assert_eq!(a["step"], 3, "{a}");
    }
    // The restore's own stops are the harness's, not the scenario's.
    assert!(
        r["fault_events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["fault"] == "stop")
            .all(|e| e["by"] == "harness"),
        "{r}"
    );
    let snap = &r["snapshots"][0];
    assert!(snap.get("lag").is_none_or(|l| l.is_null()), "{snap}");
    assert_eq!(r["rpo"]["dataset_writes"], 0, "{r}");
    let lost_at = faults
        .iter()
        .map(|f| f["at_s"].as_f64().unwrap())
        .fold(0.0, f64::max);
    let windows = r["write_windows"].as_array().unwrap();
    let unwritable = windows
        .iter()
        .find(|w| w["writable"] == false)
        .expect("an outage");
    assert!(
        unwritable["from_s"].as_f64().unwrap() >= lost_at - 0.6,
        "the writes lane went dark before the second loss: {windows:?} (lost at {lost_at})"
    );
}

/// A cancelled run is no verdict: a completed run, then the same scenario stopped by
/// SIGTERM mid-step. Exit 130; its report says interrupted; its metrics carry no verdict
/// series (the failing-drill alert must not fire) and its junit one error and no gate
/// cases; `latest-<scenario>` still names the completed run; `report compare` refuses it.
#[test]
fn an_interrupted_run_is_its_own_outcome_not_a_failed_drill() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let done = dir.path().join("done.toml");
    let steps = "[[steps]]\nkind = \"load\"\nkeys = 20\n[[steps]]\nkind = \"verify\"\n";
    let head = "name = \"cut\"\n[cluster]\nsize = 1\n[gates]\nmax_rto_s = 60\n";
    std::fs::write(&done, format!("{head}{steps}")).unwrap();
    let (code, out) = common::run_drill(&done, &reports);
    assert_eq!(
        code, 1,
        "no restore, so the RTO gate cannot be measured: {out}"
    );
    let first = std::fs::read_link(reports.join("latest-cut")).unwrap();

    let long = dir.path().join("long.toml");
    let wait = "[[steps]]\nkind = \"load\"\nkeys = 20\n[[steps]]\nkind = \"wait\"\nseconds = 120\n";
    std::fs::write(&long, format!("{head}{wait}[[steps]]\nkind = \"verify\"\n")).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_etcd-drill"))
        .arg("drill")
        .arg(&long)
        .arg("--report-dir")
        .arg(&reports)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Until the long run's cluster is up and its wait has begun.
    std::thread::sleep(std::time::Duration::from_secs(12));
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(child.wait().unwrap().code(), Some(130));

    assert_eq!(
        std::fs::read_link(reports.join("latest-cut")).unwrap(),
        first
    );
    let cut = std::fs::read_dir(&reports)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir() && !p.is_symlink() && p.file_name() != first.file_name())
        .expect("the interrupted run's report directory");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cut.join("report.json")).unwrap()).unwrap();
    assert_eq!(r["verdict"], "interrupted", "{r}");
    let prom = std::fs::read_to_string(cut.join("metrics.prom")).unwrap();
    assert!(
        prom.contains("etcd_drill_interrupted{scenario=\"cut\"} 1"),
        "{prom}"
    );
    assert!(!prom.contains("etcd_drill_verdict"), "{prom}");
    let junit = std::fs::read_to_string(cut.join("junit.xml")).unwrap();
    assert!(junit.contains("type=\"interrupted\""), "{junit}");
    assert!(!junit.contains("gate max_rto_s"), "{junit}");
    let (code, _, err) = common::etcd_drill(
        &[
            "report",
            "compare",
            reports.join(&first).to_str().unwrap(),
            cut.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is an interrupted run"), "{err}");
}
