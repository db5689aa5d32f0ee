//! Client histories recorded by a drill's workload, checked end to end on a real cluster:
//! the checker must flag what it exists to flag, not only pass what it is shown.

mod common;

/// A partitioned member serves serializable reads from its own, stale state. Recorded as
/// if they were linearizable (the workload's self-test), the history must be refused,
/// and the run must fail on that check alone.
#[test]
fn serializable_reads_from_a_partitioned_member_checked_as_linearizable_are_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stale-reads.toml");
    std::fs::write(
        &file,
        r#"
name = "stale-reads"
seed = 11
[cluster]
size = 3
[dataset]
keys = 50
value_size = 64
[workload]
clients = 6
keys = 1
rate = 150
self_test = "stale-reads"
[[steps]]
kind = "load"
[[steps]]
kind = "fault"
fault = "partition"
target = "member:3"
[[steps]]
kind = "wait"
seconds = 3
[[steps]]
kind = "heal"
[[steps]]
kind = "verify"
"#,
    )
    .unwrap();
    let reports = dir.path().join("reports");
    let (code, text) = common::run_drill(&file, &reports);
    assert_eq!(code, 1, "the self-test must fail the run:\n{text}");
    let run = reports.join("latest-stale-reads");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).unwrap()).unwrap();
    let checks = report["checks"].as_array().unwrap();
    let history = checks
        .iter()
        .find(|c| c["name"] == "workload-history")
        .expect("the history was checked");
    assert_eq!(history["passed"], false, "{history}");
    assert!(
        history["detail"]
            .as_str()
            .unwrap()
            .starts_with("not-linearizable"),
        "{history}"
    );
    // Everything else held: the failure is the history's, not an accident of the run.
    let others_failed: Vec<&serde_json::Value> = checks
        .iter()
        .filter(|c| c["name"] != "workload-history" && c["passed"] == false)
        .collect();
    assert!(others_failed.is_empty(), "{others_failed:?}");
    // The history is beside the reports, and the CLI checker agrees.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_etcd-drill"))
        .args(["check-history", "--model", "kv"])
        .arg(run.join("history.jsonl"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A watcher whose member is killed mid-stream must resume after the last event it got
/// and lose nothing: the watch check covers the resumed stream too, and a run where the
/// watcher never resumed proves nothing about resumption, so the test asserts it did.
#[test]
fn a_watcher_whose_member_is_killed_resumes_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("watch-resume.toml");
    // 2 clients on members 1 and 2; the one watcher (id 2) on member 3, which is killed.
    std::fs::write(
        &file,
        r#"
name = "watch-resume"
seed = 12
[cluster]
size = 3
[dataset]
keys = 10
value_size = 16
[workload]
clients = 2
keys = 5
rate = 100
watchers = 1
[[steps]]
kind = "load"
[[steps]]
kind = "wait"
seconds = 2
[[steps]]
kind = "fault"
fault = "kill"
target = "member:3"
[[steps]]
kind = "wait"
seconds = 2
[[steps]]
kind = "heal"
[[steps]]
kind = "wait"
seconds = 3
[[steps]]
kind = "verify"
"#,
    )
    .unwrap();
    let reports = dir.path().join("reports");
    let (code, text) = common::run_drill(&file, &reports);
    assert_eq!(code, 0, "{text}");
    let run = reports.join("latest-watch-resume");
    let history = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
    let starts: std::collections::BTreeSet<i64> = history
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["op"] == "watch")
        .filter_map(|r| r["start_revision"].as_i64())
        .collect();
    assert!(starts.len() >= 2, "the watcher never resumed: {starts:?}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).unwrap()).unwrap();
    let watch = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "workload-watch")
        .expect("the watches were checked")
        .clone();
    assert_eq!(watch["passed"], true, "{watch}");
}
