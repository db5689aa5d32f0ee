//! Every shipped scenario, run end to end through the binary as a user runs it, must pass.
//! A scenario that fails on a good run is a false alarm the harness ships; last round one
//! failed every time and nothing noticed. `make soak` runs them many times over.

mod common;

use std::path::Path;

/// The scenarios this file tests; a new file in scenarios/ must be added here.
const SHIPPED: [&str; 7] = [
    "fault-tolerance-table",
    "quorum-loss-5",
    "rolling-faults-7",
    "seed-etcdctl-tls-backup-command",
    "seed-etcdctl-tls-restore",
    "seed-rke-replace-node",
    "total-loss-9",
];

/// Runs `name` twice with one seed: both runs pass, and `report compare` calls neither
/// worse than the other, either way round — a red build on an identical rerun is a false
/// alarm a reviewer cannot explain.
fn drill_passes(name: &str) {
    let seed = "4242";
    let (a, b) = (run_once(name, seed), run_once(name, seed));
    for (old, new) in [(&a, &b), (&b, &a)] {
        let (code, out, err) = common::etcd_drill(
            &[
                "report",
                "compare",
                old.1.to_str().unwrap(),
                new.1.to_str().unwrap(),
            ],
            &[],
        );
        assert_eq!(
            code, 0,
            "{name}: an identical rerun compared worse:\n{out}{err}"
        );
    }
    // Same scenario, same seed: the same dataset RPO.
    let dataset_rpo = |r: &serde_json::Value| r["rpo"]["dataset_writes"].clone();
    let (ra, rb) = (report(&a.1), report(&b.1));
    assert_eq!(
        dataset_rpo(&ra),
        dataset_rpo(&rb),
        "{name}: the dataset RPO moved"
    );
}

fn report(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap()
}

/// One passing run of `name` with `seed`; its reports' root (kept) and run directory.
fn run_once(name: &str, seed: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.toml"));
    let reports = tempfile::tempdir().unwrap();
    let (code, text) = common::run_drill_with(&file, reports.path(), &["--seed", seed]);
    if code != 0 {
        // Kept for whoever reads the failure: the report, and the history it judged.
        let keep = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scenario-failures");
        let _ = std::fs::create_dir_all(&keep);
        let _ = std::process::Command::new("cp")
            .arg("-r")
            .arg(reports.path())
            .arg(keep.join(format!("{name}-{}", std::process::id())))
            .status();
    }
    assert_eq!(
        code, 0,
        "{name} did not pass (reports kept under target/tmp/scenario-failures):\n{text}"
    );
    assert!(text.contains(&format!("{name}: PASS")), "{text}");
    let dir = std::fs::read_dir(reports.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            !p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("latest-")
        })
        .expect("a report directory");
    let report = report(&dir);
    assert_eq!(report["verdict"], "pass");
    let checks = report["checks"].as_array().unwrap();
    assert!(
        !checks.is_empty(),
        "a pass needs evidence: {name} has no checks"
    );
    // A scenario with a workload has its history checked every way, and drawn.
    let toml = std::fs::read_to_string(&file).unwrap();
    if toml.contains("\n[workload]") {
        let mut want = vec![
            "workload-history",
            "workload-serializable-reads",
            "workload-watch",
        ];
        if toml.contains("kind = \"restore\"") {
            want.push("workload-across-restore");
        }
        for w in want {
            let c = checks.iter().find(|c| c["name"] == w);
            assert!(c.is_some_and(|c| c["passed"] == true), "{name}: {w}: {c:?}");
        }
        let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
        assert!(html.contains("operations per client over time"), "{name}");
    }
    // What a reader opens: the report, rendered by a real browser, is not blank.
    common::browser::assert_report_renders(&dir.join("report.html"), common::browser::GREEN);
    (reports, dir)
}

#[test]
fn the_screenshot_check_catches_a_blank_or_unstyled_page() {
    let dir = tempfile::tempdir().unwrap();
    let blank = dir.path().join("blank.html");
    std::fs::write(&blank, "<!DOCTYPE html><html><body></body></html>").unwrap();
    let unstyled = dir.path().join("unstyled.html");
    std::fs::write(
        &unstyled,
        "<html><body><h1>PASS</h1><p>etcd-drill</p></body></html>",
    )
    .unwrap();
    for page in [blank, unstyled] {
        let caught = std::panic::catch_unwind(|| {
            common::browser::assert_report_renders(&page, common::browser::GREEN)
        });
        assert!(caught.is_err(), "{} passed the check", page.display());
    }
}

macro_rules! shipped {
    ($($test:ident => $name:literal),* $(,)?) => {$(
        #[test]
        fn $test() {
            drill_passes($name);
        }
    )*};
}

shipped! {
    scenario_fault_tolerance_table_passes => "fault-tolerance-table",
    scenario_quorum_loss_5_passes => "quorum-loss-5",
    scenario_rolling_faults_7_passes => "rolling-faults-7",
    scenario_seed_etcdctl_tls_backup_command_passes => "seed-etcdctl-tls-backup-command",
    scenario_seed_etcdctl_tls_restore_passes => "seed-etcdctl-tls-restore",
    scenario_seed_rke_replace_node_passes => "seed-rke-replace-node",
    scenario_total_loss_9_passes => "total-loss-9",
}

#[test]
fn every_shipped_scenario_has_its_test() {
    let mut files: Vec<String> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
    files.sort();
    assert_eq!(
        files, SHIPPED,
        "scenarios/ and the tests in tests/scenarios.rs differ"
    );
}
