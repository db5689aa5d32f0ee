//! `cargo bench --bench history -- [--runs 3]`: `etcd-drill check-history` itself — the
//! CLI's own parse path and the etcd model — on generated etcd histories: 8 clients on 10
//! keys at 10k, 100k and 1M operations with 5 % of writes of unknown outcome, and one hot
//! key with 16 clients and 40 % unknown. Each figure is the median wall time and the peak
//! RSS of the checking process (its own rusage), beside the kv model on the same file as
//! the baseline of the same invocation. Writes reports/bench/history-check.{json,md}.
//! Targets (issue 22): 1M operations in ≤ 5 s and ≤ 500 MB; the hot key never above 1 GB.
//!
//! A generated history is an etcd execution: each operation takes effect at a random
//! instant inside its call–return interval, in that order, on one global state with
//! revisions; a write of unknown outcome hides its return and may or may not have taken
//! effect; a serializable read answers from a random committed revision not behind what
//! its client saw; a cas compares the value or the mod revision its client last read.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use etcd_drill::model::history::{OpKind, Output, Record, World};
use rand::{RngExt, SeedableRng};
use serde_json::json;

struct Shape {
    name: &'static str,
    ops: usize,
    clients: u64,
    keys: usize,
    unknown: f64,
    /// Reads that show what they read (gets); without them unknown writes stay unplaced.
    reads: bool,
    /// Other clients write other keys between (a drill's harness does): an open world.
    open: bool,
}

fn generate(s: &Shape, seed: u64) -> Vec<Record> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut free_at = vec![0u64; s.clients as usize];
    let mut h: Vec<Record> = vec![];
    let mut effects: Vec<(u64, usize)> = vec![];
    for i in 0..s.ops {
        let c = (i as u64) % s.clients;
        let call = free_at[c as usize] + rng.random_range(1..50);
        let ret = call + rng.random_range(100..2000);
        let roll = rng.random_range(0..10);
        let kind = match roll {
            0..=3 if s.reads => OpKind::Get,
            0..=4 => OpKind::Put,
            5 => OpKind::Delete,
            _ => OpKind::Cas,
        };
        let unknown = kind != OpKind::Get && rng.random_bool(s.unknown);
        free_at[c as usize] = if unknown { call } else { ret };
        h.push(Record {
            client: c,
            call,
            ret: (!unknown).then_some(ret),
            op: kind,
            key: format!("k{}", rng.random_range(0..s.keys)),
            value: matches!(kind, OpKind::Put | OpKind::Cas).then(|| format!("v{i}")),
            serializable: kind == OpKind::Get && roll == 3,
            ..Default::default()
        });
        effects.push((rng.random_range(call..=ret), i));
    }
    effects.sort();
    // One global state: revision, and per key (value, mod revision); per client what it
    // last read of each key, and the highest revision it was shown.
    let mut rev = 1i64;
    let mut state: HashMap<String, (String, i64)> = HashMap::new();
    type Written = (i64, String, Option<(String, i64)>);
    let mut history_of: Vec<Written> = vec![];
    let mut seen: HashMap<(u64, String), Option<(String, i64)>> = HashMap::new();
    let mut shown: HashMap<u64, i64> = HashMap::new();
    for (_, i) in effects {
        let r = &mut h[i];
        let now = state.get(&r.key).cloned();
        let applied = r.ret.is_some() || rng.random_bool(0.5);
        let mine = seen.get(&(r.client, r.key.clone())).cloned().flatten();
        let write = match r.op {
            OpKind::Get => false,
            OpKind::Put => true,
            OpKind::Delete => now.is_some(),
            _ => {
                if i % 2 == 0 {
                    r.expect_revision = Some(mine.as_ref().map_or(0, |m| m.1));
                    r.expect_revision == Some(now.as_ref().map_or(0, |n| n.1))
                } else {
                    r.expect = mine.map(|m| m.0);
                    r.expect == now.as_ref().map(|n| n.0.clone())
                }
            }
        };
        if write && applied {
            if s.open {
                rev += rng.random_range(0..3);
            }
            rev += 1;
            match r.op {
                OpKind::Delete => state.remove(&r.key),
                _ => state.insert(r.key.clone(), (r.value.clone().unwrap(), rev)),
            };
            history_of.push((rev, r.key.clone(), state.get(&r.key).cloned()));
        }
        if r.ret.is_none() {
            continue;
        }
        let floor = shown.get(&r.client).copied().unwrap_or(1);
        let (at, now) = if r.serializable {
            // A member behind: the state at a revision between what the client saw and now.
            let at = rng.random_range(floor.min(rev)..=rev);
            let then = history_of
                .iter()
                .rev()
                .find(|w| w.0 <= at && w.1 == r.key)
                .and_then(|w| w.2.clone());
            (at, then)
        } else {
            (rev, state.get(&r.key).cloned())
        };
        shown.insert(r.client, floor.max(at));
        r.output = Some(match r.op {
            OpKind::Get => {
                seen.insert((r.client, r.key.clone()), now.clone());
                Output {
                    value: now.as_ref().map(|n| n.0.clone()),
                    mod_revision: now.as_ref().map(|n| n.1),
                    revision: Some(at),
                    ..Default::default()
                }
            }
            OpKind::Delete => Output {
                deleted: Some(write as i64),
                revision: Some(rev),
                ..Default::default()
            },
            OpKind::Cas => Output {
                succeeded: Some(write),
                revision: Some(rev),
                ..Default::default()
            },
            _ => Output {
                revision: Some(rev),
                ..Default::default()
            },
        });
    }
    h
}

/// Runs `etcd-drill check-history` on `file`: wall seconds, peak RSS in MB (the child's
/// own rusage) and the verdict.
fn run(file: &Path, args: &[&str]) -> (f64, f64, String) {
    let t = Instant::now();
    // Reaped below with wait4, which also reports the child's own peak RSS.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(env!("CARGO_BIN_EXE_etcd-drill"))
        .arg("check-history")
        .arg(file)
        .args(args)
        .arg("--json")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("etcd-drill runs");
    let pid = child.id() as libc::pid_t;
    let mut out = child.stdout.expect("piped");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut out, &mut text).expect("reads");
    let mut status = 0;
    // SAFETY: wait4 on our own child, with valid pointers to locals.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::wait4(pid, &mut status, 0, &mut u);
        u
    };
    let secs = t.elapsed().as_secs_f64();
    let verdict = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["verdict"].as_str().map(str::to_string))
        .unwrap_or_else(|| format!("exit {status}"));
    (secs, usage.ru_maxrss as f64 / 1024.0, verdict)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(3);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let tmp = root.join("target/tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let shape = |name, ops, clients, keys, unknown, reads, open| Shape {
        name,
        ops,
        clients,
        keys,
        unknown,
        reads,
        open,
    };
    let shapes = [
        shape(
            "8 clients, 10 keys, open world",
            10_000,
            8,
            10,
            0.05,
            true,
            true,
        ),
        shape(
            "8 clients, 10 keys, open world",
            100_000,
            8,
            10,
            0.05,
            true,
            true,
        ),
        shape(
            "8 clients, 10 keys, open world",
            1_000_000,
            8,
            10,
            0.05,
            true,
            true,
        ),
        shape(
            "8 clients, 10 keys, closed world",
            10_000,
            8,
            10,
            0.05,
            true,
            false,
        ),
        shape(
            "8 clients, 10 keys, closed world",
            100_000,
            8,
            10,
            0.05,
            true,
            false,
        ),
        shape(
            "hot key, 16 clients, 40 % unknown, open",
            1_000,
            16,
            1,
            0.4,
            true,
            true,
        ),
        shape(
            "hot key, 16 clients, 40 % unknown, open",
            10_000,
            16,
            1,
            0.4,
            true,
            true,
        ),
        shape(
            "hot key, 16 clients, 40 % unknown, no reads, closed",
            1_000,
            16,
            1,
            0.4,
            false,
            false,
        ),
    ];
    let mut rows = vec![];
    let only = std::env::var("HISTORY_BENCH_ONLY").unwrap_or_default();
    for (n, s) in shapes.iter().enumerate() {
        if !format!("{} {}", s.name, s.ops).contains(&only) {
            continue;
        }
        let file = tmp.join(format!("history-bench-{}-{}.jsonl", s.ops, s.keys));
        // Written by a child: a process that held the generated history would pass its
        // resident memory on to every check-history it spawns (exec keeps the high-water
        // mark), and the peak RSS measured would be the generator's.
        if let Some(i) = args.iter().position(|a| a == "--write") {
            if args[i + 1] == n.to_string() {
                write_history(s, &file);
                return;
            }
            continue;
        }
        let wrote = Command::new(std::env::current_exe().unwrap())
            .args(["--write", &n.to_string()])
            .status()
            .unwrap();
        assert!(wrote.success());
        // The hot key at two deadlines: memory must not grow with the time given.
        let timeouts: &[&str] = match (s.keys, s.open) {
            (1, _) => &["5", "10"],
            (_, false) => &["20"],
            _ => &["300"],
        };
        for &timeout in timeouts {
            let (mut t, mut m, mut verdict) = (vec![], vec![], String::new());
            let (mut bt, mut bm) = (vec![], vec![]);
            for _ in 0..runs {
                let (secs, mb, v) = run(&file, &["--model", "etcd", "--timeout", timeout]);
                verdict = v;
                t.push(secs);
                m.push(mb);
                let (secs, mb, _) = run(&file, &["--model", "kv", "--timeout", timeout]);
                bt.push(secs);
                bm.push(mb);
            }
            let (t, m, bt, bm) = (median(t), median(m), median(bt), median(bm));
            println!(
                "{}, {} ops, --timeout {timeout}: {verdict} in {t:.2} s, {m:.0} MB (kv baseline {bt:.2} s, {bm:.0} MB; ratio {:.2})",
                s.name,
                s.ops,
                t / bt
            );
            rows.push(
                json!({"shape": s.name, "operations": s.ops, "clients": s.clients, "keys": s.keys,
                "unknown_share": s.unknown, "timeout_s": timeout, "verdict": verdict, "median_s": t,
                "peak_rss_mb": m, "baseline_kv_median_s": bt, "baseline_kv_peak_rss_mb": bm,
                "ratio_to_baseline": t / bt, "runs": runs}),
            );
        }
        let _ = std::fs::remove_file(&file);
    }
    if args.iter().any(|a| a == "--write") {
        return;
    }
    write_report(&root.join("reports/bench"), &rows);
}

fn write_history(s: &Shape, file: &Path) {
    let h = generate(s, s.ops as u64);
    let world = if s.open {
        World::Open
    } else {
        World::default()
    };
    let lines: String = std::iter::once(world.to_line())
        .chain(h.iter().map(Record::to_line))
        .map(|l| l + "\n")
        .collect();
    std::fs::write(file, lines).unwrap();
}

fn write_report(dir: &Path, rows: &[serde_json::Value]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("history-check.json"),
        serde_json::to_string_pretty(rows).unwrap() + "\n",
    )
    .unwrap();
    let mut md = String::from(
        "# check-history (the CLI: parse and the etcd model), baseline: the kv model on the same file\n\nMedians of the runs; peak RSS is the checking process's own. Targets: 1M operations ≤ 5 s and ≤ 500 MB; the hot key never above 1 GB at any --timeout.\n\n| history | operations | --timeout | verdict | median s | peak RSS MB | kv baseline s | kv MB | ratio |\n|---|---:|---:|---|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        md += &format!(
            "| {} | {} | {} | {} | {:.2} | {:.0} | {:.2} | {:.0} | {:.2} |\n",
            r["shape"].as_str().unwrap(),
            r["operations"],
            r["timeout_s"].as_str().unwrap(),
            r["verdict"].as_str().unwrap(),
            r["median_s"].as_f64().unwrap(),
            r["peak_rss_mb"].as_f64().unwrap(),
            r["baseline_kv_median_s"].as_f64().unwrap(),
            r["baseline_kv_peak_rss_mb"].as_f64().unwrap(),
            r["ratio_to_baseline"].as_f64().unwrap(),
        );
    }
    std::fs::write(dir.join("history-check.md"), md).unwrap();
}
