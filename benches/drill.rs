//! `make bench`: end-to-end timings of what etcd-drill does, each against a baseline measured
//! in the same invocation, written to `reports/bench/`. Not a test: nothing here asserts a
//! time; it reports medians, every run, and the ratio to the baseline.
//!
//! `cargo bench --bench drill -- [cluster-start] [quorum-sweep] [restore] [restore-1gib]
//!     [--runs N] [--sizes 1,3,5,7,9] [--keys N] [--large-runs N]`

use std::process::Command;
use std::time::{Duration, Instant};

use etcd_drill::backup::dataset::{self, Dataset};
use etcd_drill::chaos::fault::Injector;
use etcd_drill::chaos::observe;
use etcd_drill::cluster::{self, Cluster, ClusterSpec};
use etcd_drill::docker::{self, Selector};
use etcd_drill::model::fault::{FaultKind, Target};
use etcd_drill::model::table::predicted_writable;
use etcd_drill::procedures::quorum_table::{self, SweepOptions};
use serde_json::json;

struct Args {
    sections: Vec<String>,
    runs: usize,
    sizes: Vec<usize>,
    /// The restore section's sizes: 3 and 5 unless --sizes is given.
    restore_sizes: Vec<usize>,
    /// Runs of the 1 GiB restore (minutes each).
    large_runs: usize,
    keys: usize,
}

fn parse_args() -> Args {
    let mut a = Args {
        sections: vec![],
        runs: 5,
        sizes: vec![1, 3, 5, 7, 9],
        restore_sizes: vec![3, 5],
        large_runs: 1,
        keys: 100_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        match x.as_str() {
            "--bench" => {}
            "--runs" => a.runs = it.next().and_then(|v| v.parse().ok()).expect("--runs N"),
            "--large-runs" => {
                a.large_runs = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--large-runs N")
            }
            "--keys" => a.keys = it.next().and_then(|v| v.parse().ok()).expect("--keys N"),
            "--sizes" => {
                a.sizes = it
                    .next()
                    .expect("--sizes 1,3")
                    .split(',')
                    .map(|s| s.parse().expect("size"))
                    .collect();
                a.restore_sizes = a.sizes.clone();
            }
            s => a.sections.push(s.to_string()),
        }
    }
    if a.sections.is_empty() {
        a.sections = vec![
            "cluster-start".into(),
            "quorum-sweep".into(),
            "restore".into(),
            "restore-1gib".into(),
        ];
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
    let probe = || async {
        let probes = futures_util::future::join_all(
            urls.iter()
                .map(|(n, u)| cluster::probe_member(n, u, opts.clone(), size)),
        )
        .await;
        probes.iter().all(|p| p.is_ok())
    };
    finish_baseline(
        &name,
        t0,
        "the docker CLI baseline never became healthy",
        probe,
    )
    .await
}

/// Polls `ready` every 25 ms (up to 120 s), then removes the baseline's objects and returns
/// the seconds from `t0` to ready.
async fn finish_baseline<F, Fut>(name: &str, t0: Instant, never: &str, ready: F) -> f64
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    while !ready().await {
        assert!(t0.elapsed() < Duration::from_secs(300), "{never}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let secs = t0.elapsed().as_secs_f64();
    let d = docker::connect().await.unwrap();
    docker::remove_objects(&d, &Selector::cluster(name))
        .await
        .unwrap();
    secs
}

async fn cluster_start(args: &Args) {
    let d = docker::connect().await.expect("docker");
    let image = etcd_drill::cluster::image::resolve(&d, "3.5")
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
    let orders = start_orders(&d, args).await;
    md.push_str(&orders.1);
    let report = json!({
        "bench": "cluster-start",
        "start_orders": orders.0,
        "etcd_version": image.version,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "runs": args.runs,
        "measured_at": chrono_like_now(),
        "sizes": rows,
    });
    write_report("cluster-start", &report, &md);
}

/// What starting etcd-1 first buys: the largest size started in each of the three orders
/// etcd-drill knows, at most three runs each (all at once takes seconds a run).
async fn start_orders(d: &bollard::Docker, args: &Args) -> (serde_json::Value, String) {
    use etcd_drill::cluster::StartOrder;
    let size = args.sizes.iter().copied().max().unwrap_or(9);
    let runs = args.runs.min(3);
    let mut md = format!(
        "\n## Start order, {size} members ({runs} runs each, medians)\n\n| order | start → healthy (s) | runs (s) |\n|---|---:|---|\n"
    );
    let mut rows = vec![];
    for (order, label) in [
        (
            StartOrder::FirstThenRest,
            "etcd-1 first, the rest once it serves peers (default)",
        ),
        (
            StartOrder::Sequential,
            "one `docker start` after another (all created first)",
        ),
        (StartOrder::Concurrent, "all at once"),
    ] {
        let mut xs = vec![];
        for _ in 0..runs {
            let mut spec = ClusterSpec::new(size);
            spec.name = format!("bench-order-{:06x}", rand::random::<u32>() & 0xff_ffff);
            spec.start_order = order;
            let c = Cluster::start(d, spec).await.expect("cluster start");
            xs.push(c.start_elapsed.as_secs_f64());
            c.destroy().await.unwrap();
        }
        let m = median(&xs);
        eprintln!("size {size}, {label}: {m:.2}s");
        let listed: Vec<String> = xs.iter().map(|x| format!("{x:.2}")).collect();
        md.push_str(&format!("| {label} | {m:.2} | {} |\n", listed.join(", ")));
        rows.push(json!({"order": order, "size": size, "median_s": m, "runs_s": xs}));
    }
    (json!(rows), md)
}

/// The naive way to fill the table: a fresh cluster per cell, k members failed at once.
async fn naive_sweep(d: &bollard::Docker, opts: &SweepOptions) -> (f64, usize) {
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
            let obs = observe::observe(&c, "/bench/naive", opts.observe).await;
            c.destroy().await.unwrap();
            obs.writable == predicted_writable(n, k)
        }))
        .buffer_unordered(opts.parallel)
        .collect()
        .await;
    (
        t0.elapsed().as_secs_f64(),
        results.iter().filter(|ok| !**ok).count(),
    )
}

async fn quorum_sweep() {
    let d = docker::connect().await.expect("docker");
    // Three sweeps whatever --runs says: one takes ~50 s, and three give a median.
    let runs = 3;
    let opts = SweepOptions {
        version: "3.5".into(),
        seed: 1,
        run_id: docker::new_run_id(),
        observe: observe::ObserveOptions::default(),
        parallel: 5,
    };
    let sizes: Vec<usize> = (1..=9).collect();
    let (mut ours, mut naive, mut disagreements) = (vec![], vec![], 0usize);
    for _ in 0..runs {
        let t = quorum_table::sweep(&d, &sizes, &opts).await.expect("sweep");
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

/// The seed's procedure as a person would script it with the docker CLI: copy the snapshot
/// onto a volume, restore node by node with etcdutl, start every member, then check only
/// that `get /registry/ --prefix --count-only` returns the expected count.
async fn seed_procedure_with_docker_cli(
    size: usize,
    snapshot: &std::path::Path,
    keys: usize,
) -> f64 {
    let name = format!("bench-seed-{:06x}", rand::random::<u32>() & 0xff_ffff);
    let cl = format!("etcd-drill.cluster={name}");
    let l = ["--label", "etcd-drill=1", "--label"];
    let net = format!("{name}-net");
    let snapvol = format!("{name}-snapshots");
    let file = snapshot.file_name().unwrap().to_string_lossy().into_owned();
    let initial: Vec<String> = (1..=size)
        .map(|i| format!("etcd-{i}=http://etcd-{i}:2380"))
        .collect();
    let initial = initial.join(",");
    let hosts: Vec<String> = (1..=size)
        .flat_map(|i| ["--add-host".to_string(), format!("etcd-{i}:127.0.0.1")])
        .collect();
    let t0 = Instant::now();
    docker_cli(&["network", "create", l[0], l[1], l[2], &cl, &net]);
    docker_cli(&["volume", "create", l[0], l[1], l[2], &cl, &snapvol]);
    let holder = format!("{name}-copy");
    docker_cli(&[
        "create",
        "--name",
        &holder,
        l[0],
        l[1],
        l[2],
        &cl,
        "-v",
        &format!("{snapvol}:/snapshots"),
        "etcd-drill/etcd:3.5",
    ]);
    docker_cli(&[
        "cp",
        snapshot.to_str().unwrap(),
        &format!("{holder}:/snapshots/{file}"),
    ]);
    docker_cli(&["rm", &holder]);
    for i in 1..=size {
        let vol = format!("{name}-etcd-{i}-data");
        docker_cli(&["volume", "create", l[0], l[1], l[2], &cl, &vol]);
        let mut a: Vec<String> = ["run", "--rm", "--network", "none"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.extend(hosts.iter().cloned());
        a.extend([l[0], l[1], l[2], &cl].iter().map(|s| s.to_string()));
        a.extend([
            "-v".into(),
            format!("{snapvol}:/snapshots"),
            "-v".into(),
            format!("{vol}:/var/lib/etcd"),
            "--entrypoint".into(),
            "/usr/local/bin/etcdutl".into(),
            "etcd-drill/etcd:3.5".into(),
            "snapshot".into(),
            "restore".into(),
            format!("/snapshots/{file}"),
            format!("--name=etcd-{i}"),
            format!("--initial-cluster={initial}"),
            "--initial-cluster-token=seed-restored".into(),
            format!("--initial-advertise-peer-urls=http://etcd-{i}:2380"),
            "--data-dir=/var/lib/etcd/data".into(),
        ]);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        docker_cli(&a);
    }
    let mut port = 0;
    for i in 1..=size {
        port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        docker_cli(&[
            "run",
            "-d",
            "--name",
            &format!("{name}-etcd-{i}"),
            l[0],
            l[1],
            l[2],
            &cl,
            "--network",
            &net,
            "--network-alias",
            &format!("etcd-{i}"),
            "-p",
            &format!("127.0.0.1:{port}:2379"),
            "-v",
            &format!("{name}-etcd-{i}-data:/var/lib/etcd"),
            "etcd-drill/etcd:3.5",
            &format!("--name=etcd-{i}"),
            "--data-dir=/var/lib/etcd/data",
            "--listen-client-urls=http://0.0.0.0:2379",
            &format!("--advertise-client-urls=http://etcd-{i}:2379"),
            "--listen-peer-urls=http://0.0.0.0:2380",
            &format!("--initial-advertise-peer-urls=http://etcd-{i}:2380"),
            &format!("--initial-cluster={initial}"),
            "--initial-cluster-token=seed-restored",
            "--initial-cluster-state=new",
            "--logger=zap",
        ]);
    }
    let opts = etcd_client::ConnectOptions::new()
        .with_connect_timeout(Duration::from_millis(500))
        .with_timeout(Duration::from_secs(5));
    // Only the count, as the seed's check does.
    let probe = || async {
        let count = async {
            let url = format!("http://127.0.0.1:{port}");
            let mut c = etcd_client::Client::connect([url], Some(opts.clone()))
                .await
                .ok()?;
            let only_count = etcd_client::GetOptions::new()
                .with_prefix()
                .with_count_only();
            let r = c.get("/registry/", Some(only_count)).await.ok()?;
            Some(r.count() as usize)
        };
        count.await == Some(keys)
    };
    finish_baseline(
        &name,
        t0,
        "the docker CLI restore never served the keys",
        probe,
    )
    .await
}

/// One size of the restore comparison: etcd-drill's RTO (disaster → verified), the floor
/// (the restore tool and etcd alone) and the seed's procedure with the docker CLI, `runs`
/// times each, interleaved so drift on the machine hits all three alike.
struct RestoreRuns {
    snapshot_bytes: u64,
    ours: Vec<f64>,
    floor: Vec<f64>,
    cli: Vec<f64>,
    phases: Vec<Vec<(String, f64)>>,
}

async fn measure_restore(
    d: &bollard::Docker,
    size: usize,
    ds: &Dataset,
    runs: usize,
) -> RestoreRuns {
    use etcd_drill::backup::record;
    use etcd_drill::backup::snapshot::{self, RestoreOptions};
    use etcd_drill::model::backup::Disaster;
    use etcd_drill::procedures::recover::{self, cluster_id};
    use etcd_drill::procedures::restore_drill::{Recovery, recover};
    let mut spec = ClusterSpec::new(size);
    spec.name = format!("bench-restore-{:06x}", rand::random::<u32>() & 0xff_ffff);
    let mut c = Cluster::start(d, spec).await.expect("start");
    let client = c.client(&c.members[0]).await.unwrap();
    let t = Instant::now();
    let acks = dataset::load(&client, "etcd-1", ds, 0..ds.keys, 16)
        .await
        .expect("load");
    eprintln!(
        "loaded {} keys in {:.1}s",
        ds.keys,
        t.elapsed().as_secs_f64()
    );
    let dir = tempfile::tempdir().unwrap();
    let snap = snapshot::save(&c, &c.members[0].clone(), dir.path())
        .await
        .expect("snapshot");
    let backup = record::record_backup(&c, snap.clone(), false, 0)
        .await
        .expect("record the backup");
    let names: Vec<String> = c.members.iter().map(|m| m.name.clone()).collect();
    let mut inj = Injector::new(1);
    let (mut ours, mut floor, mut cli) = (vec![], vec![], vec![]);
    let mut phases: Vec<Vec<(String, f64)>> = vec![];
    for _ in 0..runs {
        let old = cluster_id(&c).await.unwrap();
        let r = recover(
            &mut c,
            &mut inj,
            &backup,
            &Recovery {
                disaster: Disaster::All,
                members: names.clone(),
                restore: RestoreOptions::default(),
                dataset: ds,
                acks: &acks,
                old_cluster_id: old,
            },
        )
        .await
        .expect("recover");
        assert!(r.verification.passed(), "{:#?}", r.verification.checks);
        eprintln!(
            "phases {:?}\nchecks {:?}",
            r.phases
                .iter()
                .map(|p| format!("{} {:.2}", p.name, p.seconds))
                .collect::<Vec<_>>(),
            r.verification
                .checks
                .iter()
                .map(|c| format!("{} {:.2}", c.name, c.seconds.unwrap_or(0.0)))
                .collect::<Vec<_>>()
        );
        ours.push(r.rto_s);
        phases.push(
            r.phases
                .iter()
                .map(|p| (p.name.to_string(), p.seconds))
                .collect(),
        );

        // Floor: the restore tool and etcd alone, from a snapshot already in place.
        inj.inject(&mut c, FaultKind::Permanent, &Target::Count(size))
            .await
            .unwrap();
        let t = Instant::now();
        recover::restore_mixed(
            &mut c,
            &backup.source,
            &backup.file.file_name(),
            &Default::default(),
            &names,
            &RestoreOptions::default(),
        )
        .await
        .unwrap();
        c.start_all().await.unwrap();
        c.wait_for_leader(Duration::from_secs(120)).await.unwrap();
        let mut cl = c.client(&c.members[0]).await.unwrap();
        while cl.put("/floor", "x", None).await.is_err() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        floor.push(t.elapsed().as_secs_f64());
        c.wait_healthy(Duration::from_secs(120)).await.unwrap();

        cli.push(seed_procedure_with_docker_cli(size, &snap.path, ds.keys).await);
        eprintln!(
            "size {size}: rto {:.2}s floor {:.2}s cli {:.2}s",
            ours.last().unwrap(),
            floor.last().unwrap(),
            cli.last().unwrap()
        );
    }
    c.destroy().await.unwrap();
    RestoreRuns {
        snapshot_bytes: snap.size,
        ours,
        floor,
        cli,
        phases,
    }
}

const RESTORE_TABLE_HEAD: &str = "| members | snapshot MB | etcd-drill RTO (s) | floor: restore + start (s) | docker CLI seed procedure (s) | RTO / floor | RTO / CLI |\n\
     |---:|---:|---:|---:|---:|---:|---:|\n";

/// Medians of one size's runs: a row of the table above, rows of the phase table, and
/// the JSON record.
fn restore_summary(size: usize, r: &RestoreRuns) -> (String, String, serde_json::Value) {
    let (mo, mf, mc) = (median(&r.ours), median(&r.floor), median(&r.cli));
    let row = format!(
        "| {size} | {:.0} | {mo:.2} | {mf:.2} | {mc:.2} | {:.2} | {:.2} |\n",
        r.snapshot_bytes as f64 / 1e6,
        mo / mf,
        mo / mc
    );
    let mut phase_rows = String::new();
    let mut phase_json = vec![];
    for (i, (n, _)) in r.phases[0].iter().enumerate() {
        let m = median(&r.phases.iter().map(|p| p[i].1).collect::<Vec<_>>());
        phase_rows.push_str(&format!("| {size} | {n} | {m:.2} |\n"));
        phase_json.push(json!({"name": n, "median_s": m}));
    }
    let j = json!({
        "members": size,
        "snapshot_bytes": r.snapshot_bytes,
        "etcd_drill_rto": {"median_s": mo, "runs_s": r.ours, "phases": phase_json},
        "floor_restore_and_start": {"median_s": mf, "runs_s": r.floor},
        "docker_cli_seed_procedure": {"median_s": mc, "runs_s": r.cli},
        "rto_over_floor": mo / mf,
        "rto_over_cli": mo / mc,
    });
    (row, phase_rows, j)
}

const PHASE_TABLE_HEAD: &str =
    "\nMedian phases of etcd-drill's RTO:\n\n| members | phase | s |\n|---:|---|---:|\n";

async fn restore(args: &Args) {
    let d = docker::connect().await.expect("docker");
    let runs = args.runs.clamp(3, 5);
    let ds = Dataset {
        keys: args.keys,
        value_size: 1024,
        seed: 1,
    };
    let mut rows = vec![];
    let mut md = format!(
        "# Restore: disaster → verified ({} keys × 1 KiB, {runs} runs each, medians)\n\n{RESTORE_TABLE_HEAD}",
        ds.keys
    );
    let mut phase_md = String::from(PHASE_TABLE_HEAD);
    for size in args.restore_sizes.clone() {
        let r = measure_restore(&d, size, &ds, runs).await;
        let (row, phase_rows, j) = restore_summary(size, &r);
        md.push_str(&row);
        phase_md.push_str(&phase_rows);
        rows.push(j);
    }
    // Peak memory of the harness doing a whole drill at this size, as a separate process.
    let (_, peak, code) = restore_drill_child(ds.keys, &[]);
    md.push_str(&phase_md);
    md.push_str(&format!(
        "\nPeak RSS of `etcd-drill restore-drill --size 3 --keys {}` (load, snapshot, disaster, restore, verify): {peak:.0} MiB (exit {code}).\n\
         Targets (issue #4): RTO ≤ 1.15 × floor and ≤ 0.85 × the docker-CLI procedure; harness ≤ 100 MB. The 1 GiB case is the `restore-1gib` section.\n",
        ds.keys,
    ));
    let report = json!({
        "bench": "restore",
        "keys": ds.keys,
        "value_size": 1024,
        "runs": runs,
        "sizes": rows,
        "harness_peak_rss_mib": peak,
        "measured_at": chrono_like_now(),
    });
    write_report("restore", &report, &md);
}

/// Runs `etcd-drill` with `args` as a child and returns its stdout and its own peak RSS
/// (MiB), read from `wait4` so earlier children do not count.
fn run_child_measured(args: &[&str]) -> (String, f64, i32) {
    use std::io::Read;
    let bin = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/etcd-drill");
    // Reaped below by wait4, not wait(): only wait4 gives this child's own rusage.
    #[allow(clippy::zombie_processes)]
    let mut child = Command::new(&bin)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run etcd-drill (make build first)");
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
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    assert_eq!(r, pid, "wait4");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (out, ru.ru_maxrss as f64 / 1024.0, code)
}

/// `etcd-drill restore-drill --size 3 --keys KEYS --value-size 1024 --json EXTRA…` as a
/// child: its stdout, its peak RSS (MiB) and its exit code.
fn restore_drill_child(keys: usize, extra: &[&str]) -> (String, f64, i32) {
    let keys = keys.to_string();
    let mut args = vec![
        "restore-drill",
        "--size",
        "3",
        "--keys",
        &keys,
        "--value-size",
        "1024",
        "--json",
    ];
    args.extend_from_slice(extra);
    run_child_measured(&args)
}

/// The large case of issue #4: 1 GiB (1,000,000 keys × 1 KiB) restored into 3 members.
/// First through the CLI as a user runs it, for the RTO it reports and the harness's peak
/// memory; then in process against the floor and the docker-CLI procedure, as the
/// `restore` section does. One run of each unless --large-runs says otherwise: each takes
/// minutes.
async fn restore_1gib(args: &Args) {
    let ds = Dataset {
        keys: 1_000_000,
        value_size: 1024,
        seed: 1,
    };
    let mut runs_json = vec![];
    let (mut rtos, mut rss_all) = (vec![], vec![]);
    let mut md = String::from(
        "# Restore of 1 GiB (1,000,000 keys × 1 KiB) into 3 members\n\n\
         Through the CLI (`etcd-drill restore-drill --size 3 --keys 1000000 --value-size 1024 --disaster all`):\n\n\
         | run | verdict | snapshot MB | RTO (s) | restore (s) | started + leader (s) | verified (s) | peak RSS (MiB) |\n\
         |---:|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for run in 1..=args.large_runs {
        let (out, rss, code) = restore_drill_child(ds.keys, &["--disaster", "all"]);
        let r: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| {
            panic!("restore-drill exited {code} without a JSON report ({e}): {out}")
        });
        let phase = |n: &str| {
            r["phases"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["name"] == n)
                .and_then(|p| p["seconds"].as_f64())
                .unwrap_or(0.0)
        };
        let rto = r["rto_s"].as_f64().unwrap_or(f64::NAN);
        eprintln!(
            "1 GiB run {run}: {} rto {rto:.1}s rss {rss:.0} MiB",
            r["verdict"]
        );
        md.push_str(&format!(
            "| {run} | {} | {:.0} | {rto:.1} | {:.1} | {:.1} | {:.1} | {rss:.0} |\n",
            r["verdict"].as_str().unwrap_or("?"),
            r["snapshot"]["size"].as_f64().unwrap_or(0.0) / 1e6,
            phase("restore"),
            phase("started") + phase("leader-elected"),
            phase("verified"),
        ));
        rtos.push(rto);
        rss_all.push(rss);
        runs_json.push(json!({"verdict": r["verdict"], "rto_s": rto, "phases": r["phases"],
            "checks": r["checks"], "snapshot_bytes": r["snapshot"]["size"], "peak_rss_mib": rss, "exit": code}));
    }
    let d = docker::connect().await.expect("docker");
    let inproc = measure_restore(&d, 3, &ds, args.large_runs).await;
    let (row, phase_rows, inproc_json) = restore_summary(3, &inproc);
    let (m, peak) = (median(&rtos), rss_all.iter().cloned().fold(0.0, f64::max));
    md.push_str(&format!(
        "\nIn process, against the floor (etcdutl restore + etcd start alone) and the seed's procedure with the docker CLI:\n\n\
         {RESTORE_TABLE_HEAD}{row}{PHASE_TABLE_HEAD}{phase_rows}\n\
         Median RTO through the CLI {m:.1} s; harness peak RSS {peak:.0} MiB. Targets (issue #4): 1 GiB on 3 members ≤ 30 s; harness ≤ 100 MB.\n"
    ));
    let report = json!({
        "bench": "restore-1gib",
        "keys": ds.keys,
        "value_size": 1024,
        "members": 3,
        "cli": {"rto_median_s": m, "peak_rss_mib": peak, "runs": runs_json},
        "in_process": inproc_json,
        "measured_at": chrono_like_now(),
    });
    write_report("restore-1gib", &report, &md);
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
            "quorum-sweep" => quorum_sweep().await,
            "restore" => restore(&args).await,
            "restore-1gib" => restore_1gib(&args).await,
            other => panic!(
                "unknown bench section {other}; known: cluster-start, quorum-sweep, restore, restore-1gib"
            ),
        }
    }
}
