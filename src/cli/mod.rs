//! The command line. `main` parses with [`Cli`] and calls [`run`]; every subcommand is a
//! function here over the library, and Ctrl-C/SIGTERM tear down what this process created.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::cluster::image::{self, Line, Source};
use crate::cluster::{self, Cluster, ClusterSpec};
use crate::docker::{self, Selector};
use crate::error::{Error, Result};

#[derive(Debug, Parser)]
#[command(
    name = "etcd-drill",
    version,
    about = "Chaos and disaster-recovery drills for etcd, in real containers"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build or adopt the local etcd image (no registry needed).
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Start, list and stop clusters.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Inject a fault into a running cluster (from `cluster up`) and print the event.
    Fault(FaultArgs),
    /// Fill etcd's fault-tolerance table by observation: for each size and k = 0..N permanent
    /// failures, predicted vs observed writability. Exits 1 if any cell disagrees.
    Quorum(QuorumArgs),
    /// The full recovery path: load data, snapshot, disaster, restore every member from the
    /// same snapshot under a new token, verify. Prints the verdict, RPO and RTO phases.
    RestoreDrill(RestoreDrillArgs),
    /// Restore a snapshot made anywhere into a throwaway cluster and check it.
    VerifySnapshot(VerifySnapshotArgs),
    /// Run scenario files one after another; write reports; exit 1 if any expectation or gate failed.
    Drill(DrillArgs),
    /// Check scenario files without running them.
    Validate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the JSON Schema of the scenario format.
    Schema,
    /// Work with drill reports.
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
    /// Remove every container, network and volume labelled etcd-drill=1 (what a killed run
    /// left), and the state directories of clusters that no longer exist.
    Cleanup {
        /// Only this cluster's objects.
        #[arg(long)]
        cluster: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Build etcd-drill/etcd:<version> FROM scratch with etcd, etcdctl, etcdutl and their libraries.
    Build {
        /// etcd line: 3.5 (Debian trixie) or 3.4 (Debian bookworm).
        #[arg(long, default_value = image::DEFAULT_VERSION)]
        version: String,
        /// Use the etcd binaries in this directory instead of Debian's packages.
        #[arg(long, conflicts_with = "image")]
        from_dir: Option<PathBuf>,
        /// Adopt an existing local image (binaries in /usr/local/bin) as-is.
        #[arg(long)]
        image: Option<String>,
        /// Rebuild even if the image is present.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Start a cluster, wait until healthy, print it and leave it running.
    Up(UpArgs),
    /// List clusters (every labelled cluster network), with how many members are running.
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// Tear a cluster down (containers, volumes, network, certificates).
    Down { name: String },
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Number of members, 1 to 9.
    #[arg(long)]
    pub size: usize,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long, default_value = image::DEFAULT_VERSION)]
    pub version: String,
    /// Client and peer TLS with client-certificate auth, like the seed's etcdctl procedure.
    #[arg(long)]
    pub tls: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct FaultArgs {
    #[arg(long)]
    pub cluster: String,
    /// permanent, kill, stop, restart, pause, unpause, partition, heal, wipe-data
    pub fault: String,
    /// leader, follower, random, member:<i>, count:<k>
    #[arg(long, default_value = "random")]
    pub target: String,
    /// Seed for random targets; printed, so a choice can be replayed.
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct QuorumArgs {
    /// Sizes to check: a range (1-9) or a list (1,3,5).
    #[arg(long, default_value = "1-9")]
    pub sizes: String,
    #[arg(long, default_value = image::DEFAULT_VERSION)]
    pub version: String,
    /// Seed for victim choice; printed, so a run can be replayed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// How long to watch each cell for an acknowledged write, in ms.
    #[arg(long, default_value_t = 3000)]
    pub window_ms: u64,
    /// Clusters checked at once (5 measured fastest on 2 cores, against 3 and 9).
    #[arg(long, default_value_t = 5)]
    pub parallel: usize,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RestoreDrillArgs {
    #[arg(long, default_value_t = 3)]
    pub size: usize,
    #[arg(long, default_value_t = 10_000)]
    pub keys: usize,
    #[arg(long, default_value_t = 1024)]
    pub value_size: usize,
    #[arg(long, default_value = image::DEFAULT_VERSION)]
    pub version: String,
    /// Restore with another etcd version (3.4 → 3.5 works; the reverse is refused).
    #[arg(long)]
    pub restore_version: Option<String>,
    #[arg(long)]
    pub tls: bool,
    /// quorum: a majority lost for good; all: every member lost.
    #[arg(long, default_value = "quorum")]
    pub disaster: String,
    /// Writes after the snapshot (lost by design; counted as RPO). Default: 1% of keys, at least 10.
    #[arg(long)]
    pub post_snapshot_writes: Option<usize>,
    #[arg(long)]
    pub bump_revision: Option<u64>,
    /// Member names after the restore, e.g. etcd-1,etcd-2,etcd-4 (the RKE node replacement).
    #[arg(long, value_delimiter = ',')]
    pub restore_members: Option<Vec<String>>,
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct VerifySnapshotArgs {
    pub file: PathBuf,
    #[arg(long, default_value_t = 3)]
    pub members: usize,
    #[arg(long, default_value = image::DEFAULT_VERSION)]
    pub version: String,
    /// Accept a `db` file copied from a data dir (no sha256 trailer).
    #[arg(long)]
    pub skip_hash_check: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DrillArgs {
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Overrides every scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long, default_value = "reports")]
    pub report_dir: PathBuf,
    /// Overrides every scenario's repeat count.
    #[arg(long)]
    pub repeat: Option<u32>,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// What changed between two runs of one scenario (report.json files or their
    /// directories); exit 1 when NEW is worse than OLD beyond both thresholds.
    Compare {
        old: PathBuf,
        new: PathBuf,
        /// Allowed relative increase of a time or of RPO, e.g. 0.2 for 20%.
        #[arg(long, default_value_t = 0.2)]
        tolerance: f64,
        /// A time regresses only when it also grew by more than this many seconds.
        #[arg(long, default_value_t = 0.5)]
        min_seconds: f64,
        /// RPO regresses only when it also grew by more than this many lost writes.
        #[arg(long, default_value_t = 200)]
        rpo_writes: u64,
        /// Compare reports of different scenarios anyway.
        #[arg(long)]
        force: bool,
    },
}

/// How a command ended, when it ran to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// A drill ran and its verdict is "fail".
    VerdictFailed,
    /// Stopped by Ctrl-C/SIGTERM after tearing down.
    Interrupted,
}

impl Outcome {
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Ok => 0,
            Outcome::VerdictFailed => 1,
            Outcome::Interrupted => 130,
        }
    }
}

pub fn init_tracing() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs a command; on Ctrl-C or SIGTERM a drill is asked to stop (it tears down its
/// cluster and writes the interrupted run's report); any other command is dropped (which
/// tears down its clusters). Then anything else this run created is removed.
pub async fn run(cli: Cli) -> Result<Outcome> {
    let run_id = docker::new_run_id();
    let cancel = tokio_util::sync::CancellationToken::new();
    let graceful = matches!(cli.command, Command::Drill(_));
    let work = dispatch(cli.command, run_id.clone(), cancel.clone());
    tokio::pin!(work);
    tokio::select! {
        r = &mut work => return r,
        _ = shutdown_signal() => {}
    }
    eprintln!("etcd-drill: interrupted; tearing down what this run created");
    if graceful {
        cancel.cancel();
        // Teardown and the report take seconds; a second signal or a minute ends the wait.
        tokio::select! {
            _ = &mut work => {}
            _ = shutdown_signal() => {}
            _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
        }
    }
    if let Ok(d) = docker::connect().await {
        docker::remove_objects(&d, &Selector::run(&run_id)).await?;
    }
    Ok(Outcome::Interrupted)
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}

async fn dispatch(
    command: Command,
    run_id: String,
    cancel: tokio_util::sync::CancellationToken,
) -> Result<Outcome> {
    match command {
        Command::Image {
            command:
                ImageCommand::Build {
                    version,
                    from_dir,
                    image,
                    force,
                },
        } => {
            let source = match (from_dir, image) {
                (Some(dir), _) => Source::Dir(dir),
                (None, Some(reference)) => Source::Existing(reference),
                (None, None) => Source::Debian(Line::parse(&version)?),
            };
            let docker = docker::connect().await?;
            let img = image::build(&docker, source, force).await?;
            println!("{} (etcd {})", img.tag, img.version);
            Ok(Outcome::Ok)
        }
        Command::Cluster {
            command: ClusterCommand::Up(args),
        } => cluster_up(args, run_id).await,
        Command::Cluster {
            command: ClusterCommand::Ls { json },
        } => cluster_ls(json).await,
        Command::Cluster {
            command: ClusterCommand::Down { name },
        } => {
            cluster::validate_name(&name)?;
            let docker = docker::connect().await?;
            if docker::list_objects(&docker, &Selector::cluster(&name))
                .await?
                .is_empty()
            {
                return Err(Error::InvalidInput(format!(
                    "no cluster named {name}; `etcd-drill cluster ls` lists the running ones"
                )));
            }
            cluster::destroy_by_name(&docker, &name).await?;
            println!("cluster {name} removed");
            Ok(Outcome::Ok)
        }
        Command::Quorum(args) => quorum(args, run_id).await,
        Command::Fault(args) => {
            let kind: crate::chaos::fault::FaultKind = args.fault.parse()?;
            let target: crate::chaos::fault::Target = args.target.parse()?;
            let seed = args
                .seed
                .unwrap_or_else(crate::chaos::fault::Injector::random_seed);
            let docker = docker::connect().await?;
            let mut c = Cluster::attach(&docker, &args.cluster).await?;
            let mut inj = crate::chaos::fault::Injector::new(seed);
            inj.inject(&mut c, kind, &target).await?;
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({"seed": seed, "events": inj.events}))
                        .expect("json")
                );
            } else {
                for e in &inj.events {
                    println!("{:?} {} (was {:?}); seed {seed}", e.fault, e.member, e.role);
                }
            }
            Ok(Outcome::Ok)
        }
        Command::Drill(args) => drill(args, run_id, cancel).await,
        Command::Validate { files } => {
            for f in &files {
                let l = crate::model::scenario::load(f)?;
                println!(
                    "{}: ok ({} steps, {} members)",
                    f.display(),
                    l.scenario.steps.len(),
                    l.scenario.cluster.size.get_ref()
                );
            }
            Ok(Outcome::Ok)
        }
        Command::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&crate::model::scenario::json_schema()).expect("json")
            );
            Ok(Outcome::Ok)
        }
        Command::Report {
            command:
                ReportCommand::Compare {
                    old,
                    new,
                    tolerance,
                    min_seconds,
                    rpo_writes,
                    force,
                },
        } => {
            let options = crate::render::CompareOptions {
                tolerance,
                min_seconds,
                rpo_writes: rpo_writes as f64,
            };
            report_compare(&old, &new, options, force)
        }
        Command::RestoreDrill(args) => restore_drill(args, run_id).await,
        Command::VerifySnapshot(args) => verify_snapshot(args, run_id).await,
        Command::Cleanup { cluster } => cleanup(cluster.as_deref()).await,
    }
}

/// The `cluster up --json` shape of a cluster.
pub fn cluster_json(c: &Cluster) -> serde_json::Value {
    let mut v = json!({
        "name": c.name(),
        "size": c.members.len(),
        "version": c.image.version,
        "members": c.members.iter().map(|m| json!({
            "name": m.name, "container": m.container, "client_url": m.client_url, "id": format!("{:x}", m.id),
        })).collect::<Vec<_>>(),
        "tls": c.spec.tls,
    });
    if let Some(pki) = &c.pki {
        v["cacert"] = json!(pki.ca_path());
        v["cert"] = json!(pki.client_cert_path());
        v["key"] = json!(pki.client_key_path());
    }
    v
}

async fn cluster_up(args: UpArgs, run_id: String) -> Result<Outcome> {
    let mut spec = ClusterSpec::new(args.size);
    spec.run_id = run_id;
    spec.version = args.version;
    spec.tls = args.tls;
    if let Some(n) = args.name {
        spec.name = n;
    }
    spec.validate()?;
    let docker = docker::connect().await?;
    let c = Cluster::start(&docker, spec).await?.keep();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&cluster_json(&c)).expect("json")
        );
    } else {
        println!(
            "cluster {}: {} members, etcd {}, {}, healthy in {:.2}s",
            c.name(),
            c.members.len(),
            c.image.version,
            c.scheme(),
            c.start_elapsed.as_secs_f64()
        );
        for m in &c.members {
            println!("  {:<7} {:<28} {}", m.name, m.container, m.client_url);
        }
        let endpoints: Vec<&str> = c.members.iter().map(|m| m.client_url.as_str()).collect();
        match &c.pki {
            Some(p) => println!(
                "try: etcdctl --endpoints {} --cacert {} --cert {} --key {} endpoint health",
                endpoints.join(","),
                p.ca_path().display(),
                p.client_cert_path().display(),
                p.client_key_path().display()
            ),
            None => println!(
                "try: etcdctl --endpoints {} endpoint health",
                endpoints.join(",")
            ),
        }
        println!("tear down: etcd-drill cluster down {}", c.name());
    }
    Ok(Outcome::Ok)
}

/// `report compare`: thresholds checked, then both reports read, then compared.
fn report_compare(
    old: &std::path::Path,
    new: &std::path::Path,
    options: crate::render::CompareOptions,
    force: bool,
) -> Result<Outcome> {
    for (flag, v, example) in [
        ("--tolerance", options.tolerance, "0.2"),
        ("--min-seconds", options.min_seconds, "0.5"),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            return Err(Error::InvalidInput(format!(
                "{flag} {v}: use a number >= 0, e.g. {example}"
            )));
        }
    }
    let (a, b) = (read_report(old)?, read_report(new)?);
    crate::render::ensure_comparable(&a, &b, force)?;
    let c = crate::render::compare(&a, &b, &options);
    print!("{}", crate::render::comparison_text(&c));
    Ok(if c.worse {
        Outcome::VerdictFailed
    } else {
        Outcome::Ok
    })
}

/// `cleanup [--cluster NAME]`: the Docker objects (all labelled etcd-drill=1, or one
/// cluster's), then the state directories of clusters with no object left.
async fn cleanup(only: Option<&str>) -> Result<Outcome> {
    if let Some(name) = only {
        cluster::validate_name(name)?;
    }
    let sel = only.map_or_else(Selector::all, Selector::cluster);
    let docker = docker::connect().await?;
    let removed = docker::remove_objects(&docker, &sel).await?;
    // Clusters with objects left (created since, or not selected) keep their directory.
    let live = docker::cluster_names(&docker).await?;
    let root = cluster::state_root();
    let dirs = cluster::remove_stale_run_dirs(&root, &live, only)?;
    println!(
        "removed {} containers, {} networks, {} volumes labelled etcd-drill=1, and {dirs} state directories under {}",
        removed.containers.len(),
        removed.networks.len(),
        removed.volumes.len(),
        root.display()
    );
    Ok(Outcome::Ok)
}

async fn cluster_ls(json: bool) -> Result<Outcome> {
    let docker = docker::connect().await?;
    let rows = cluster::list(&docker).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows).expect("json"));
    } else if rows.is_empty() {
        println!("no clusters");
    } else {
        println!(
            "{:<24} {:>4} {:>8} {:<5} IMAGE",
            "NAME", "SIZE", "RUNNING", "TLS"
        );
        for r in rows {
            println!(
                "{:<24} {:>4} {:>8} {:<5} {}",
                r.name, r.size, r.running, r.tls, r.image
            );
        }
    }
    Ok(Outcome::Ok)
}

async fn quorum(args: QuorumArgs, run_id: String) -> Result<Outcome> {
    let sizes = crate::chaos::observe::parse_sizes(&args.sizes)?;
    image::Line::parse(&args.version)?;
    let seed = args
        .seed
        .unwrap_or_else(crate::chaos::fault::Injector::random_seed);
    if !args.json {
        eprintln!("seed {seed} (replay with --seed {seed})");
    }
    let opts = crate::chaos::observe::SweepOptions {
        version: args.version,
        seed,
        run_id,
        observe: crate::chaos::observe::ObserveOptions {
            window: std::time::Duration::from_millis(args.window_ms),
            ..Default::default()
        },
        parallel: args.parallel,
    };
    let docker = docker::connect().await?;
    let table = crate::chaos::observe::sweep(&docker, &sizes, &opts).await?;
    let bad = table.disagreements();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&table.to_json()).expect("json")
        );
    } else {
        print!("{}", crate::chaos::observe::render_table(&table.sizes));
        for (size, cell) in &bad {
            let what = if cell.observed_writable {
                "a write was acknowledged without quorum"
            } else {
                "no write was acknowledged although quorum held"
            };
            println!("DISAGREES: size {size}, {} failed: {what}", cell.failed);
        }
        println!(
            "{} cells, {} disagree, {:.1}s",
            table.sizes.iter().map(|s| s.cells.len()).sum::<usize>(),
            bad.len(),
            table.elapsed_s
        );
    }
    Ok(if bad.is_empty() {
        Outcome::Ok
    } else {
        Outcome::VerdictFailed
    })
}

async fn restore_drill(args: RestoreDrillArgs, run_id: String) -> Result<Outcome> {
    use crate::procedures::recover::{Disaster, RestoreDrillOptions};
    cluster::validate_size(args.size)?;
    if args.keys == 0 || args.value_size == 0 {
        return Err(Error::InvalidInput(
            "--keys and --value-size must be at least 1".into(),
        ));
    }
    let mut o = RestoreDrillOptions::new(args.size, args.keys, args.value_size);
    o.version = args.version;
    o.restore_version = args.restore_version;
    o.tls = args.tls;
    o.disaster = args.disaster.parse::<Disaster>()?;
    if let Some(w) = args.post_snapshot_writes {
        o.post_snapshot_writes = w;
    }
    o.restore.bump_revision = args.bump_revision;
    o.restore_members = args.restore_members;
    o.seed = args
        .seed
        .unwrap_or_else(crate::chaos::fault::Injector::random_seed);
    o.dataset.seed = o.seed;
    o.run_id = run_id;
    let docker = docker::connect().await?;
    let r = crate::procedures::recover::restore_drill(&docker, &o).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r).expect("json"));
    } else {
        print!("{}", crate::model::report::restore_drill_text(&r));
    }
    Ok(if r.passed() {
        Outcome::Ok
    } else {
        Outcome::VerdictFailed
    })
}

async fn verify_snapshot(args: VerifySnapshotArgs, run_id: String) -> Result<Outcome> {
    cluster::validate_size(args.members)?;
    image::Line::parse(&args.version)?;
    // The file is checked before Docker is even asked for.
    crate::backup::snapshot::check_file(&args.file, args.skip_hash_check)?;
    let docker = docker::connect().await?;
    let r = crate::procedures::recover::verify_snapshot(
        &docker,
        &args.file,
        args.members,
        &args.version,
        args.skip_hash_check,
        &run_id,
    )
    .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r).expect("json"));
    } else {
        println!(
            "{}: {} — {} bytes, revision {}, {} keys; restored into {} members (etcd {}) in {:.2}s",
            r.file.path.display(),
            r.verdict.to_uppercase(),
            r.file.size,
            r.status.revision,
            r.keys,
            r.members,
            r.etcd_version,
            r.restore_s
        );
        for c in &r.checks {
            println!(
                "  [{}] {}: {}",
                if c.passed { "ok" } else { "FAIL" },
                c.name,
                c.detail
            );
        }
    }
    Ok(if r.verdict == "pass" {
        Outcome::Ok
    } else {
        Outcome::VerdictFailed
    })
}

fn read_report(path: &std::path::Path) -> Result<crate::model::report::DrillReport> {
    let file = if path.is_dir() {
        path.join("report.json")
    } else {
        path.to_path_buf()
    };
    let text =
        std::fs::read_to_string(&file).map_err(Error::io("reading a drill report", &file))?;
    serde_json::from_str(&text).map_err(|e| {
        Error::InvalidInput(format!("{}: not a drill report.json: {e}", file.display()))
    })
}

async fn drill(
    args: DrillArgs,
    run_id: String,
    cancel: tokio_util::sync::CancellationToken,
) -> Result<Outcome> {
    use std::io::IsTerminal;
    // Every file is checked before anything starts.
    let loaded: Vec<_> = args
        .files
        .iter()
        .map(|f| crate::model::scenario::load(f))
        .collect::<Result<_>>()?;
    if let Some(n) = args.repeat
        && !(1..=100).contains(&n)
    {
        return Err(Error::InvalidInput(format!(
            "--repeat {n}: a scenario runs 1 to 100 times"
        )));
    }
    check_report_dir(&args.report_dir)?;
    let docker = docker::connect().await?;
    // A missing image is the environment's fault, not a failed drill: refuse up front
    // (exit 2, naming the command that builds it) rather than report a run that never began.
    for l in &loaded {
        crate::cluster::image::resolve(&docker, l.scenario.cluster.version.get_ref()).await?;
    }
    let opts = crate::drill::DrillOptions {
        seed: args.seed,
        repeat: args.repeat,
        run_id,
        interactive: std::io::stderr().is_terminal(),
        cancel: cancel.clone(),
    };
    let mut all_passed = true;
    let mut interrupted = false;
    for l in &loaded {
        // Each run's reports are written as soon as it ends.
        let mut write = |r: &crate::model::report::DrillReport, repeat: u32| -> Result<()> {
            let dir = crate::drill::write_reports(&args.report_dir, r, repeat)?;
            all_passed &= r.passed();
            interrupted |= r.verdict == crate::drill::INTERRUPTED;
            print_run(r, &dir);
            Ok(())
        };
        crate::drill::run(&docker, l, &opts, &mut write).await?;
        if cancel.is_cancelled() {
            break;
        }
    }
    Ok(if interrupted || cancel.is_cancelled() {
        Outcome::Interrupted
    } else if all_passed {
        Outcome::Ok
    } else {
        Outcome::VerdictFailed
    })
}

/// `--report-dir` must exist or be creatable, and be writable, before anything starts.
fn check_report_dir(dir: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| {
        Error::InvalidInput(format!(
            "--report-dir {}: cannot create it ({e}); pass a directory you can write to",
            dir.display()
        ))
    })?;
    let probe = dir.join(format!(".etcd-drill-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| {
        Error::InvalidInput(format!(
            "--report-dir {}: not writable ({e}); pass a directory you can write to",
            dir.display()
        ))
    })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

fn print_run(r: &crate::model::report::DrillReport, dir: &std::path::Path) {
    println!(
        "{}: {} (seed {}) — {}",
        r.scenario,
        r.verdict.to_uppercase(),
        r.seed,
        dir.display()
    );
    for c in r.checks.iter().filter(|c| !c.passed) {
        println!("  FAILED check step {} {}: {}", c.step, c.name, c.detail);
    }
    for g in r.gates.iter().filter(|g| !g.passed) {
        let actual = g
            .actual
            .map(|a| format!("{a:.2}"))
            .unwrap_or_else(|| "not measured".into());
        println!(
            "  FAILED gate {}: limit {}, actual {actual}",
            g.name, g.limit
        );
    }
    if let Some(e) = &r.error {
        println!("  stopped: {e}");
    }
}
