//! `make soak`: every shipped scenario (`scenarios/*.toml`) run `--runs N` times (default 5),
//! round robin, each run with its own seed, through the release binary as a user runs it.
//! Writes `reports/bench/soak.{json,md}`: runs, passes, and each failure with its failed
//! checks and gates. The shipped scenarios are all expected to pass, so every failure here
//! is a false alarm of the harness (or a real etcd bug worth reading), never noise to ignore.
//!
//! `cargo bench --bench soak -- [--runs N] [--only NAME]`

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::{Value, json};

/// The binary under soak: this build's, or `ETCD_DRILL_BIN` (a copy, so a long soak is not
/// changed under it by a rebuild).
fn bin() -> String {
    std::env::var("ETCD_DRILL_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_etcd-drill").into())
}

struct Run {
    scenario: String,
    seed: u64,
    exit: i32,
    seconds: f64,
    verdict: String,
    failed: Vec<String>,
}

fn scenarios(only: Option<&str>) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir("scenarios")
        .expect("run from the project root")
        .map(|e| e.expect("scenarios/").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter(|p| only.is_none_or(|o| p.file_stem().is_some_and(|s| s == o)))
        .collect();
    v.sort();
    v
}

/// The failed checks, gates and error of a report, one line each.
fn failures(report: &Value) -> Vec<String> {
    let mut out = vec![];
    for c in report["checks"].as_array().into_iter().flatten() {
        if c["passed"] == false {
            out.push(format!(
                "check {} (step {}): {}",
                c["name"], c["step"], c["detail"]
            ));
        }
    }
    for g in report["gates"].as_array().into_iter().flatten() {
        if g["passed"] == false {
            out.push(format!(
                "gate {}: limit {}, actual {}",
                g["name"], g["limit"], g["actual"]
            ));
        }
    }
    if let Some(e) = report["error"].as_str() {
        out.push(format!("error: {e}"));
    }
    out
}

fn run_one(file: &Path, seed: u64, reports: &Path) -> Run {
    let t0 = Instant::now();
    let out = Command::new(bin())
        .arg("drill")
        .arg(file)
        .args(["--seed", &seed.to_string(), "--report-dir"])
        .arg(reports)
        .output()
        .expect("running etcd-drill");
    let seconds = t0.elapsed().as_secs_f64();
    let name = file.file_stem().unwrap().to_string_lossy().into_owned();
    // The newest report directory of this scenario is this run's.
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(reports)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    dirs.retain(|d| d.join("report.json").exists());
    dirs.sort_by_key(|d| std::fs::metadata(d).and_then(|m| m.modified()).ok());
    let report: Value = dirs
        .last()
        .and_then(|d| std::fs::read_to_string(d.join("report.json")).ok())
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    let mut failed = failures(&report);
    let exit = out.status.code().unwrap_or(-1);
    if exit != 0 && failed.is_empty() {
        let text = String::from_utf8_lossy(&out.stderr);
        failed.push(format!(
            "exit {exit}: {}",
            text.lines().last().unwrap_or("")
        ));
    }
    Run {
        scenario: name,
        seed,
        exit,
        seconds,
        verdict: report["verdict"].as_str().unwrap_or("none").to_string(),
        failed,
    }
}

fn main() {
    let mut runs = 5usize;
    let mut only = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--bench" => {}
            "--runs" => runs = it.next().and_then(|v| v.parse().ok()).expect("--runs N"),
            "--only" => only = it.next(),
            other => panic!("unknown argument {other}; known: --runs N, --only NAME"),
        }
    }
    let files = scenarios(only.as_deref());
    assert!(!files.is_empty(), "no scenario matched");
    let tmp = tempfile::tempdir().expect("temp dir");
    let t0 = Instant::now();
    let mut results = vec![];
    // Round robin, so a slow drift of the machine spreads over every scenario.
    for r in 0..runs {
        for f in &files {
            let seed = 1000 + r as u64;
            let run = run_one(f, seed, tmp.path());
            eprintln!(
                "soak {}/{}: {} seed {} → {} ({:.1}s){}",
                results.len() + 1,
                runs * files.len(),
                run.scenario,
                seed,
                run.verdict,
                run.seconds,
                if run.failed.is_empty() {
                    String::new()
                } else {
                    format!(": {}", run.failed.join("; "))
                }
            );
            results.push(run);
        }
    }
    write(&results, runs, t0.elapsed().as_secs_f64());
}

fn write(results: &[Run], runs: usize, total_s: f64) {
    let passes = results
        .iter()
        .filter(|r| r.exit == 0 && r.verdict == "pass")
        .count();
    let fails: Vec<&Run> = results
        .iter()
        .filter(|r| r.exit != 0 || r.verdict != "pass")
        .collect();
    let j = json!({
        "runs_per_scenario": runs,
        "drills": results.len(),
        "passes": passes,
        "failures": fails.len(),
        "total_s": total_s,
        "runs": results.iter().map(|r| json!({
            "scenario": r.scenario, "seed": r.seed, "exit": r.exit, "verdict": r.verdict,
            "seconds": r.seconds, "failed": r.failed,
        })).collect::<Vec<_>>(),
    });
    std::fs::create_dir_all("reports/bench").expect("reports/bench");
    std::fs::write(
        "reports/bench/soak.json",
        serde_json::to_string_pretty(&j).unwrap() + "\n",
    )
    .expect("writing soak.json");
    let mut md = format!(
        "# Soak: every shipped scenario, {runs} runs each, round robin\n\n\
         {} drills, {passes} passed, {} failed, {:.0} s in all.\n\n\
         | scenario | runs | passes | median s |\n|---|---:|---:|---:|\n",
        results.len(),
        fails.len(),
        total_s
    );
    let mut names: Vec<&str> = results.iter().map(|r| r.scenario.as_str()).collect();
    names.dedup();
    names.sort();
    names.dedup();
    for n in names {
        let mine: Vec<&Run> = results.iter().filter(|r| r.scenario == n).collect();
        let mut secs: Vec<f64> = mine.iter().map(|r| r.seconds).collect();
        secs.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let p = mine
            .iter()
            .filter(|r| r.exit == 0 && r.verdict == "pass")
            .count();
        md.push_str(&format!(
            "| {n} | {} | {p} | {:.1} |\n",
            mine.len(),
            secs[secs.len() / 2]
        ));
    }
    if !fails.is_empty() {
        md.push_str("\n## Failures\n\n");
        for r in &fails {
            md.push_str(&format!(
                "- {} seed {} (exit {}, verdict {}): {}\n",
                r.scenario,
                r.seed,
                r.exit,
                r.verdict,
                r.failed.join("; ")
            ));
        }
    }
    std::fs::write("reports/bench/soak.md", md).expect("writing soak.md");
    println!(
        "soak: {} drills, {passes} passed, {} failed",
        results.len(),
        fails.len()
    );
}
