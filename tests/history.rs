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
