//! `cargo bench --bench workload -- [--runs N]`: the workload on real clusters, with the
//! release binary as a user runs it. Two drills: `rolling-faults-7` as shipped (its faults
//! with the workload running), and a 60 s drill on 3 members at the workload's default
//! target of 200 ops/s (8 clients, 10 keys, 2 watchers) with a kill and a partition in it.
//! For each: the rate achieved, the share of unknown outcomes, the history check's verdicts
//! and, timed again here on the drill's own `history.jsonl`, the checker's median wall
//! time. Writes reports/bench/workload.{json,md}. Target (issue 16): ≥ 200 ops/s achieved
//! in the 60 s drill.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use etcd_drill::model::history::{World, parse};
use etcd_drill::model::linearize::{Model, check};
use serde_json::json;

const SIXTY_SECONDS: &str = r#"
name = "workload-60s"
description = "60 s of the default workload on 3 members through a kill and a partition"
seed = 60
[cluster]
size = 3
[dataset]
keys = 100
value_size = 64
[workload]
clients = 8
keys = 10
rate = 200
watchers = 2
[[steps]]
kind = "load"
[[steps]]
kind = "wait"
seconds = 15
[[steps]]
kind = "fault"
fault = "kill"
target = "follower"
[[steps]]
kind = "wait"
seconds = 10
[[steps]]
kind = "heal"
[[steps]]
kind = "wait"
seconds = 10
[[steps]]
kind = "fault"
fault = "partition"
target = "follower"
[[steps]]
kind = "wait"
seconds = 10
[[steps]]
kind = "heal"
[[steps]]
kind = "wait"
seconds = 12
[[steps]]
kind = "verify"
"#;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One drill through the release binary; the run directory it reported into.
fn drill(scenario: &Path, reports: &Path) -> (PathBuf, i32, f64) {
    let t = Instant::now();
    let out = Command::new(root().join("target/release/etcd-drill"))
        .arg("drill")
        .arg(scenario)
        .arg("--report-dir")
        .arg(reports)
        .output()
        .expect("run etcd-drill (make build first)");
    // Both scenarios are named as their files are.
    let name = scenario.file_stem().unwrap().to_string_lossy().into_owned();
    let dir =
        std::fs::canonicalize(reports.join(format!("latest-{name}"))).expect("a run directory");
    (
        dir,
        out.status.code().unwrap_or(-1),
        t.elapsed().as_secs_f64(),
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(3);
    let tmp = tempfile::tempdir().unwrap();
    let sixty = tmp.path().join("workload-60s.toml");
    std::fs::write(&sixty, SIXTY_SECONDS).unwrap();
    let shipped = root().join("scenarios/rolling-faults-7.toml");
    let mut rows = vec![];
    let mut md = String::from(
        "# The workload on real clusters (release binary)\n\n| drill | exit | wall s | ops | unknown | ops/s achieved (target) | linearizable | watch / serializable | check median s |\n|---|---:|---:|---:|---:|---:|---|---|---:|\n",
    );
    for scenario in [&sixty, &shipped] {
        let (dir, code, wall) = drill(scenario, &tmp.path().join("reports"));
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap())
                .unwrap();
        let text = std::fs::read_to_string(dir.join("history.jsonl")).unwrap_or_default();
        let history = parse("history.jsonl", &text).expect("the drill's history parses");
        let mut times = vec![];
        let mut c = None;
        for _ in 0..runs {
            let t = Instant::now();
            c = Some(check(
                &history,
                Model::Etcd,
                World::Open,
                Duration::from_secs(300),
            ));
            times.push(t.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        let c = c.unwrap();
        let hc = &report["history_check"];
        let rate = hc["rate"].as_f64().unwrap_or(0.0);
        let target = 200.0;
        let guarantees = format!(
            "{} / {}",
            c.watch
                .as_ref()
                .map_or("-", |w| if w.passed() { "hold" } else { "BROKEN" }),
            c.reads
                .as_ref()
                .map_or("-", |r| if r.passed() { "hold" } else { "BROKEN" })
        );
        let name = report["scenario"].as_str().unwrap_or("?").to_string();
        md += &format!(
            "| {name} | {code} | {wall:.1} | {} | {} | {rate:.0} ({target:.0}) | {} | {guarantees} | {:.3} |\n",
            c.operations,
            c.unknown_outcomes,
            c.verdict.as_str(),
            times[times.len() / 2]
        );
        rows.push(json!({"scenario": name, "exit": code, "wall_s": wall, "operations": c.operations,
            "unknown_outcomes": c.unknown_outcomes, "rate": rate, "target_rate": target,
            "seconds": hc["seconds"], "verdict": c.verdict.as_str(), "check_median_s": times[times.len() / 2],
            "check_runs_s": times, "watch_passed": c.watch.as_ref().map(|w| w.passed()),
            "serializable_passed": c.reads.as_ref().map(|r| r.passed())}));
    }
    let dir = root().join("reports/bench");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("workload.json"),
        serde_json::to_string_pretty(&rows).unwrap() + "\n",
    )
    .unwrap();
    std::fs::write(dir.join("workload.md"), &md).unwrap();
    println!("{md}\nwritten: reports/bench/workload.json, reports/bench/workload.md");
}
