//! `make bench`: end-to-end timings of what etcd-drill does, each against a baseline measured
//! in the same invocation, written to `reports/bench/`. Not a test: nothing here asserts a
//! time; it reports medians, every run, and the ratio to the baseline.
//!
//! `cargo bench --bench drill -- [cluster-start] [--runs N] [--sizes 1,3,5,7,9]`

use std::process::Command;
use std::time::{Duration, Instant};

use etcd_drill::cluster::{self, Cluster, ClusterSpec};
use etcd_drill::docker::{self, Selector};
use etcd_drill::fault::{FaultKind, Injector, Target};
use etcd_drill::quorum;
use serde_json::json;

struct Args {
    sections: Vec<String>,
    runs: usize,
    sizes: Vec<usize>,
}

fn parse_args() -> Args {
    let mut a = Args {
        sections: vec![],
        runs: 5,
        sizes: vec![1, 3, 5, 7, 9],
    };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        match x.as_str() {
            "--bench" => {}
            "--runs" => a.runs = it.next().and_then(|v| v.parse().ok()).expect("--runs N"),
            "--sizes" => {
                a.sizes = it
                    .next()
                    .expect("--sizes 1,3")
                    .split(',')
                    .map(|s| s.parse().expect("size"))
                    .collect()
            }
            s => a.sections.push(s.to_string()),
        }
    }
    if a.sections.is_empty() {
        a.sections = vec!["cluster-start".into(), "quorum-sweep".into()];
    }
    a
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn write_report(name: &str, json: &serde_json::Value, md: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/bench");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(format!("{name}.json")),
        serde_json::to_string_pretty(json).unwrap() + "\n",
    )
    .unwrap();
    std::fs::write(dir.join(format!("{name}.md")), md).unwrap();
    println!("{md}\nwritten: reports/bench/{name}.json, reports/bench/{name}.md");
}

fn docker_cli(args: &[&str]) {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The baseline a person would script: `docker run -d` one member after another with the
/// same flags, then poll until the same health definition etcd-drill uses holds.
async fn docker_cli_loop(size: usize) -> f64 {
    let name = format!("bench-cli-{:06x}", rand::random::<u32>() & 0xff_ffff);
    let labels = ["--label", "etcd-drill=1", "--label"];
    let cl = format!("etcd-drill.cluster={name}");
    let t0 = Instant::now();
    let net = format!("{name}-net");
    docker_cli(&[
        "network", "create", labels[0], labels[1], labels[2], &cl, &net,
    ]);
    let initial: Vec<String> = (1..=size)
        .map(|i| format!("etcd-{i}=http://etcd-{i}:2380"))
        .collect();
    let initial = initial.join(",");
    let mut urls: Vec<(String, String)> = vec![];
    for i in 1..=size {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let vol = format!("{name}-etcd-{i}-data");
        docker_cli(&[
            "volume", "create", labels[0], labels[1], labels[2], &cl, &vol,
        ]);
        docker_cli(&[
            "run",
            "-d",
            "--name",
            &format!("{name}-etcd-{i}"),
            labels[0],
            labels[1],
            labels[2],
            &cl,
            "--network",
            &net,
            "--network-alias",
            &format!("etcd-{i}"),
            "--hostname",
            &format!("etcd-{i}"),
            "-p",
            &format!("127.0.0.1:{port}:2379"),
            "-v",
            &format!("{vol}:/var/lib/etcd"),
            "etcd-drill/etcd:3.5",
            &format!("--name=etcd-{i}"),
            "--data-dir=/var/lib/etcd",
            "--listen-client-urls=http://0.0.0.0:2379",
            &format!("--advertise-client-urls=http://etcd-{i}:2379"),
            "--listen-peer-urls=http://0.0.0.0:2380",
            &format!("--initial-advertise-peer-urls=http://etcd-{i}:2380"),
            &format!("--initial-cluster={initial}"),
            "--initial-cluster-token=bench",
            "--initial-cluster-state=new",
            "--logger=zap",
        ]);
        urls.push((format!("etcd-{i}"), format!("http://127.0.0.1:{port}")));
    }
    let opts = etcd_client::ConnectOptions::new()
        .with_connect_timeout(Duration::from_millis(500))
        .with_timeout(Duration::from_secs(3));
    loop {
        let probes = futures_util::future::join_all(
            urls.iter()
                .map(|(n, u)| cluster::probe_member(n, u, opts.clone(), size)),
        )
        .await;
        if probes.iter().all(|p| p.is_ok()) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "docker CLI baseline never became healthy: {probes:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let secs = t0.elapsed().as_secs_f64();
    let d = docker::connect().await.unwrap();
    docker::remove_objects(&d, &Selector::cluster(&name))
        .await
        .unwrap();
    secs
}

async fn cluster_start(args: &Args) {
    let d = docker::connect().await.expect("docker");
    let image = etcd_drill::image::resolve(&d, "3.5")
        .await
        .expect("image (make image)");
    let mut rows = vec![];
    let mut md = format!(
        "# Cluster start → healthy (etcd {}, {} runs each, medians)\n\n| size | etcd-drill (s) | docker CLI loop (s) | ratio |\n|---:|---:|---:|---:|\n",
        image.version, args.runs
    );
    for &size in &args.sizes {
        let (mut ours, mut base) = (vec![], vec![]);
        for _ in 0..args.runs {
            // Interleaved so drift on the machine hits both alike.
            let mut spec = ClusterSpec::new(size);
            spec.name = format!("bench-{:06x}", rand::random::<u32>() & 0xff_ffff);
            let c = Cluster::start(&d, spec).await.expect("cluster start");
            ours.push(c.start_elapsed.as_secs_f64());
            c.destroy().await.unwrap();
            base.push(docker_cli_loop(size).await);
        }
        let (mo, mb) = (median(&ours), median(&base));
        eprintln!("size {size}: etcd-drill {mo:.2}s, docker CLI {mb:.2}s");
        md.push_str(&format!(
            "| {size} | {mo:.2} | {mb:.2} | {:.2} |\n",
            mo / mb
        ));
        rows.push(json!({
            "size": size,
            "etcd_drill": {"median_s": mo, "runs_s": ours, "start_order": "first-then-rest"},
            "docker_cli_loop": {"median_s": mb, "runs_s": base},
            "ratio": mo / mb,
        }));
    }
    md.push_str("\nTargets (issue #2): 3 members ≤ 0.9 s; 9 members ≤ 2.0 s and ≤ 0.6 × the docker CLI loop.\n");
    let report = json!({
        "bench": "cluster-start",
        "etcd_version": image.version,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "runs": args.runs,
        "measured_at": chrono_like_now(),
        "sizes": rows,
    });
    write_report("cluster-start", &report, &md);
}

/// The naive way to fill the table: a fresh cluster per cell, k members failed at once.
async fn naive_sweep(d: &bollard::Docker, opts: &quorum::SweepOptions) -> (f64, usize) {
    use futures_util::StreamExt;
    let t0 = Instant::now();
    let cells: Vec<(usize, usize)> = (1..=9usize)
        .rev()
        .flat_map(|n| (0..=n).map(move |k| (n, k)))
        .collect();
    let results: Vec<bool> =
        futures_util::stream::iter(cells.into_iter().map(|(n, k)| async move {
            let mut spec = ClusterSpec::new(n);
            spec.name = format!("bench-naive-{:06x}", rand::random::<u32>() & 0xff_ffff);
            let mut c = Cluster::start(d, spec).await.expect("start");
            let mut inj = Injector::new(opts.seed);
            if k > 0 {
                inj.inject(&mut c, FaultKind::Permanent, &Target::Count(k))
                    .await
                    .expect("fault");
            }
            let obs = quorum::observe(&c, "/bench/naive", opts.observe).await;
            c.destroy().await.unwrap();
            obs.writable == quorum::predicted_writable(n, k)
        }))
        .buffer_unordered(opts.parallel)
        .collect()
        .await;
    (
        t0.elapsed().as_secs_f64(),
        results.iter().filter(|ok| !**ok).count(),
    )
}

async fn quorum_sweep(args: &Args) {
    let d = docker::connect().await.expect("docker");
    let runs = args.runs.min(3).max(3);
    let opts = quorum::SweepOptions {
        version: "3.5".into(),
        seed: 1,
        run_id: docker::new_run_id(),
        observe: quorum::ObserveOptions::default(),
        parallel: 5,
    };
    let sizes: Vec<usize> = (1..=9).collect();
    let (mut ours, mut naive, mut disagreements) = (vec![], vec![], 0usize);
    for _ in 0..runs {
        let t = quorum::sweep(&d, &sizes, &opts).await.expect("sweep");
        disagreements += t.disagreements().len();
        ours.push(t.elapsed_s);
        let (secs, bad) = naive_sweep(&d, &opts).await;
        disagreements += bad;
        naive.push(secs);
        eprintln!("sweep {:.1}s, naive {:.1}s", t.elapsed_s, secs);
    }
    let (mo, mn) = (median(&ours), median(&naive));
    let md = format!(
        "# Fault-tolerance table sweep (sizes 1–9, all 54 cells; {runs} runs each, medians)\n\n\
         | method | median (s) | runs (s) |\n|---|---:|---|\n\
         | etcd-drill: one cluster per size, members failed one at a time | {mo:.1} | {ours:.1?} |\n\
         | naive: a fresh cluster per cell | {mn:.1} | {naive:.1?} |\n\n\
         Ratio {:.2}. Cells disagreeing with the table across all runs: {disagreements}.\n\
         Both with 5 clusters at a time and a 3 s observation window. Target (issue #3): ≤ 60 s.\n",
        mo / mn
    );
    let report = json!({
        "bench": "quorum-sweep",
        "runs": runs,
        "parallel": opts.parallel,
        "window_ms": opts.observe.window.as_millis() as u64,
        "etcd_drill": {"median_s": mo, "runs_s": ours},
        "naive_fresh_cluster_per_cell": {"median_s": mn, "runs_s": naive},
        "ratio": mo / mn,
        "disagreements": disagreements,
        "measured_at": chrono_like_now(),
    });
    write_report("quorum-sweep", &report, &md);
}

fn chrono_like_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    for s in args.sections.clone() {
        match s.as_str() {
            "cluster-start" => cluster_start(&args).await,
            "quorum-sweep" => quorum_sweep(&args).await,
            other => panic!("unknown bench section {other}; known: cluster-start, quorum-sweep"),
        }
    }
}
