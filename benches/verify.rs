//! `cargo bench --bench verify -- [--runs 3] [--keys 2000000]`: `verify-snapshot` of a
//! 2 GiB snapshot (taken with `etcdctl snapshot save`, the image's own etcdctl) into 3
//! members, from a local file and from a real S3-compatible server on loopback (s3s-fs),
//! alternating, each through the release binary as a user runs it: wall time from command
//! start to verdict, the harness's peak RSS, the restore's phases. Writes
//! reports/bench/verify-2gib.{json,md}. Targets (issue 14): ≤ 90 s, ≤ 100 MB RSS, S3 ≤ 1.2 ×
//! the local file.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use etcd_drill::backup::dataset::{self, Dataset};
use etcd_drill::cluster::{Cluster, ClusterSpec};
use serde_json::{Value, json};

// The tests' S3 server and uploader, not a copy of them.
#[path = "../tests/common/mod.rs"]
mod common;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("a number"))
        .unwrap_or(default)
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// A 1-member cluster loaded with `keys` × `value_size`, snapshotted with the image's own
/// `etcdctl snapshot save` from the host into `dir`.
async fn make_snapshot(keys: usize, value_size: usize, dir: &Path) -> PathBuf {
    let d = etcd_drill::docker::connect().await.expect("docker");
    let mut spec = ClusterSpec::new(1);
    spec.name = format!("bench-verify-{:06x}", rand::random::<u32>() & 0xff_ffff);
    spec.etcd_args = vec![format!("--quota-backend-bytes={}", 8u64 << 30)];
    let c = Cluster::start(&d, spec).await.expect("start");
    let client = c.client(&c.members[0]).await.unwrap();
    let ds = Dataset {
        keys,
        value_size,
        seed: 1,
    };
    let t = Instant::now();
    dataset::load(&client, "etcd-1", &ds, 0..keys, 16)
        .await
        .expect("load");
    eprintln!("loaded {keys} keys in {:.0}s", t.elapsed().as_secs_f64());
    let tools = etcd_drill::cluster::tools::host_tools(&d, &c.image, c.labels(&[]))
        .await
        .expect("tools");
    let file = dir.join("20261202_000000_snapshot.db");
    let st = Command::new(tools.join("etcdctl"))
        .args([
            "--endpoints",
            &c.members[0].client_url,
            "--command-timeout=600s",
            "snapshot",
            "save",
        ])
        .arg(&file)
        .env("ETCDCTL_API", "3")
        .status()
        .expect("etcdctl");
    assert!(st.success(), "etcdctl snapshot save");
    c.destroy().await.unwrap();
    file
}

/// `etcd-drill verify-snapshot SOURCE --members 3 --json` as a child: its report, wall
/// seconds, own peak RSS (MiB, from wait4) and exit code.
fn verify_child(source: &str, env: &[(&str, &str)]) -> (Value, f64, f64, i32) {
    let t = Instant::now();
    #[allow(clippy::zombie_processes)]
    let mut child = Command::new(root().join("target/release/etcd-drill"))
        .args(["verify-snapshot", source, "--members", "3", "--json"])
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .spawn()
        .expect("etcd-drill (make build first)");
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut status = 0;
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    assert_eq!(unsafe { libc::wait4(pid, &mut status, 0, &mut ru) }, pid);
    let wall = t.elapsed().as_secs_f64();
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    let r = serde_json::from_str(&out).unwrap_or(Value::Null);
    (r, wall, ru.ru_maxrss as f64 / 1024.0, code)
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

fn phases(r: &Value) -> String {
    r["phases"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            format!(
                "{} {:.1}",
                p["name"].as_str().unwrap_or("?"),
                p["seconds"].as_f64().unwrap_or(0.0)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::main]
async fn main() {
    let runs = arg("--runs", 3);
    let keys = arg("--keys", 2_000_000);
    let work = tempfile::tempdir_in(root().join("target")).unwrap();
    // The snapshot takes minutes to make: kept between invocations (cargo clean drops it).
    let cache = root().join(format!("target/bench-cache/verify-{keys}.db"));
    let snap = if cache.is_file() {
        cache
    } else {
        let made = make_snapshot(keys, 1024, work.path()).await;
        std::fs::create_dir_all(cache.parent().unwrap()).unwrap();
        std::fs::rename(&made, &cache).unwrap();
        cache
    };
    let size = std::fs::metadata(&snap).unwrap().len();
    eprintln!("snapshot {} bytes", size);
    let server = common::S3Server::start();
    server.bucket("backups");
    let t = Instant::now();
    server
        .put("backups", "etcd/20261202_000000_snapshot.db", &snap)
        .await;
    eprintln!("uploaded in {:.1}s", t.elapsed().as_secs_f64());
    let s3_env = server.env();
    let env: Vec<(&str, &str)> = s3_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let local = snap.to_str().unwrap().to_string();
    let s3 = "s3://backups/etcd/".to_string();
    let mut md = format!(
        "# verify-snapshot of a {:.2} GiB snapshot ({keys} keys × 1 KiB, `etcdctl snapshot save`) into 3 members\n\n\
         Through the release binary, local file and loopback S3 (s3s-fs) alternating.\n\n\
         | run | source | verdict | wall (s) | restore_s | peak RSS (MiB) | phases (s) |\n|---:|---|---|---:|---:|---:|---|\n",
        size as f64 / (1u64 << 30) as f64
    );
    let (mut walls, mut rss, mut rows) = ([vec![], vec![]], [vec![], vec![]], vec![]);
    for run in 1..=runs {
        for (i, (name, source, e)) in [("local", &local, &[][..]), ("s3", &s3, &env[..])]
            .into_iter()
            .enumerate()
        {
            let (r, wall, mem, code) = verify_child(source, e);
            eprintln!("run {run} {name}: exit {code} wall {wall:.1}s rss {mem:.0} MiB");
            md.push_str(&format!(
                "| {run} | {name} | {} | {wall:.1} | {:.1} | {mem:.0} | {} |\n",
                r["verdict"].as_str().unwrap_or("?"),
                r["restore_s"].as_f64().unwrap_or(f64::NAN),
                phases(&r)
            ));
            walls[i].push(wall);
            rss[i].push(mem);
            rows.push(json!({"run": run, "source": name, "exit": code, "wall_s": wall, "peak_rss_mib": mem,
                "verdict": r["verdict"], "restore_s": r["restore_s"], "phases": r["phases"], "checks": r["checks"]}));
        }
    }
    drop(server);
    let (ml, ms) = (median(&walls[0]), median(&walls[1]));
    let peak = rss.iter().flatten().cloned().fold(0.0, f64::max);
    md.push_str(&format!(
        "\nMedian wall: local {ml:.1} s, S3 {ms:.1} s (S3/local {:.2}×); peak RSS {peak:.0} MiB. \
         Targets (issue 14): ≤ 90 s, ≤ 100 MB, S3 ≤ 1.2 × local.\n",
        ms / ml
    ));
    let report = json!({"bench": "verify-2gib", "keys": keys, "value_size": 1024, "snapshot_bytes": size,
        "members": 3, "runs": rows, "median_wall_s": {"local": ml, "s3": ms}, "s3_over_local": ms / ml,
        "peak_rss_mib": peak});
    let dir = root().join("reports/bench");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("verify-2gib.json"),
        serde_json::to_string_pretty(&report).unwrap() + "\n",
    )
    .unwrap();
    std::fs::write(dir.join("verify-2gib.md"), &md).unwrap();
    print!("{md}");
}
