//! `cargo bench --bench history -- [--runs 3]`: the linearizability checker on generated
//! histories of 8 clients and 10 keys — 10k, 100k and 1M operations, with and without
//! unknown outcomes — median wall time and peak RSS of this process. Writes
//! reports/bench/history-check.{json,md}. Targets (issue 16): 100k operations in ≤ 5 s,
//! ≤ 500 MB at 1M.
//!
//! A generated history is linearizable by construction: each operation takes effect at a
//! random instant inside its call–return interval, in that order, on a real register; an
//! unknown outcome hides the return (and a get's answer) but not the effect.

use std::time::{Duration, Instant};

use etcd_drill::model::history::{OpKind, Output, Record, World};
use etcd_drill::model::linearize::{Linearizability, Model, check};
use rand::{RngExt, SeedableRng};
use serde_json::json;

fn generate(ops: usize, unknown_share: f64, seed: u64) -> Vec<Record> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let clients = 8u64;
    let mut free_at = vec![0u64; clients as usize];
    // (effect time, record index) of every op, applied in effect order below.
    let mut h: Vec<Record> = vec![];
    let mut effects: Vec<(u64, usize)> = vec![];
    for i in 0..ops {
        let c = (i as u64) % clients;
        let call = free_at[c as usize] + rng.random_range(0..50);
        let ret = call + rng.random_range(100..2000);
        free_at[c as usize] = ret;
        let key = format!("k{}", rng.random_range(0..10));
        let kind = match rng.random_range(0..10) {
            0..=3 => OpKind::Get,
            4..=7 => OpKind::Put,
            _ => OpKind::Cas,
        };
        let unknown = kind != OpKind::Get && rng.random_bool(unknown_share);
        h.push(Record {
            client: c,
            call,
            ret: (!unknown).then_some(ret),
            op: kind,
            key,
            value: (kind != OpKind::Get).then(|| format!("v{i}")),
            expect: None,
            output: None,
            ..Default::default()
        });
        effects.push((rng.random_range(call..=ret), i));
    }
    effects.sort();
    let mut state: std::collections::HashMap<String, String> = Default::default();
    for (_, i) in effects {
        let r = &mut h[i];
        let now = state.get(&r.key).cloned();
        match r.op {
            OpKind::Get => {
                r.output = Some(Output {
                    value: now,
                    ..Default::default()
                });
            }
            OpKind::Put => {
                state.insert(r.key.clone(), r.value.clone().unwrap());
            }
            OpKind::Cas => {
                // Expect what is there half the time, so both outcomes occur.
                r.expect = if i % 2 == 0 {
                    now.clone()
                } else {
                    Some("stale".into())
                };
                let ok = r.expect == now;
                if ok {
                    state.insert(r.key.clone(), r.value.clone().unwrap());
                }
                if r.ret.is_some() {
                    r.output = Some(Output {
                        succeeded: Some(ok),
                        ..Default::default()
                    });
                }
            }
            OpKind::Delete | OpKind::Watch => {}
        }
    }
    h
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(3);
    let mut rows = vec![];
    for ops in [10_000, 100_000, 1_000_000] {
        for unknown in [0.0, 0.05] {
            let h = generate(ops, unknown, ops as u64);
            let mut times = vec![];
            let mut verdict = Linearizability::Unknown;
            for _ in 0..runs {
                let t = Instant::now();
                verdict = check(&h, Model::Kv, World::Open, Duration::from_secs(300)).verdict;
                times.push(t.elapsed().as_secs_f64());
            }
            times.sort_by(f64::total_cmp);
            let median = times[times.len() / 2];
            println!(
                "{ops} ops, {:.0} % unknown: {} in {median:.3} s median of {runs} (peak RSS so far {:.0} MB)",
                unknown * 100.0,
                verdict.as_str(),
                peak_rss_mb()
            );
            rows.push(
                json!({"operations": ops, "unknown_share": unknown, "verdict": verdict.as_str(),
                "median_s": median, "runs": times, "peak_rss_mb_so_far": peak_rss_mb()}),
            );
        }
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/bench");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("history-check.json"),
        serde_json::to_string_pretty(&rows).unwrap() + "\n",
    )
    .unwrap();
    let mut md = String::from(
        "# Linearizability checker (8 clients, 10 keys, kv model)\n\n| operations | unknown outcomes | verdict | median s | peak RSS MB (cumulative) |\n|---:|---:|---|---:|---:|\n",
    );
    for r in &rows {
        md += &format!(
            "| {} | {:.0} % | {} | {:.3} | {:.0} |\n",
            r["operations"],
            r["unknown_share"].as_f64().unwrap() * 100.0,
            r["verdict"].as_str().unwrap(),
            r["median_s"].as_f64().unwrap(),
            r["peak_rss_mb_so_far"].as_f64().unwrap()
        );
    }
    std::fs::write(dir.join("history-check.md"), md).unwrap();
}
