//! The command line. `main` parses with [`Cli`] and calls [`run`]; each command family is a
//! file here over the library, and Ctrl-C/SIGTERM tear down what this process created.

mod admin;
mod backup;
mod cluster;
mod drill;
mod report;
mod table;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use self::backup::{RestoreDrillArgs, VerifySnapshotArgs};
pub use self::cluster::{FaultArgs, UpArgs, cluster_json};
pub use self::drill::DrillArgs;
pub use self::table::QuorumArgs;
use crate::cluster::image;
use crate::docker::{self, Selector};
use crate::error::Result;

#[derive(Debug, Parser)]
#[command(
    name = "etcd-drill",
    version,
    about = "Chaos and disaster-recovery drills for etcd, in real containers",
    after_help = "Exit codes: 0 ok; 1 a drill or verification ran and failed (a check, expectation or gate); 2 bad input or environment, before anything started; 3 check-history could not decide in time; 130 interrupted, after tearing down what it started."
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
        /// Scenario files to check.
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
    /// Check a client history (history.jsonl, one operation per line) for
    /// linearizability: exit 0 linearizable, 1 not linearizable, 3 undecided in time,
    /// 2 bad input.
    CheckHistory {
        /// The history file (a drill writes history.jsonl beside its reports).
        file: PathBuf,
        /// kv: a register per key; etcd: that plus one global revision across keys.
        /// Default: etcd when the records carry revisions (a drill's history.jsonl does), kv otherwise.
        #[arg(long, value_enum)]
        model: Option<HistoryModel>,
        /// Give up after this many seconds (the verdict is then "unknown", exit 3).
        #[arg(long, default_value_t = 60.0)]
        timeout: f64,
        /// Other clients may have written keys the history never names (etcd model): a
        /// revision may be taken by none of its writes. A header line {"world": "open"}
        /// says the same; without either, every revision must be one of its writes.
        #[arg(long)]
        open_world: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove what killed runs left: the containers, networks and volumes (labelled
    /// etcd-drill=1) whose run is no longer alive, and the state directories of clusters
    /// with nothing left. Live runs, `cluster up` clusters and runs that cannot be checked
    /// from here (another host, an older etcd-drill) are kept, and listed with why.
    Cleanup {
        /// Only this cluster's objects, whoever made them, alive or not.
        #[arg(long, conflicts_with = "all")]
        cluster: Option<String>,
        /// Everything labelled etcd-drill=1, alive or not, on this daemon.
        #[arg(long)]
        all: bool,
        /// List what would be removed and what kept, and why; remove nothing.
        #[arg(long)]
        dry_run: bool,
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
        /// Print the clusters as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Tear a cluster down (containers, volumes, network, certificates). A cluster that does
    /// not exist is a note and exit 0, so CI teardown steps are idempotent.
    Down {
        name: String,
        /// Exit 2 when there is no such cluster.
        #[arg(long)]
        strict: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// What changed between two runs of one scenario (report.json files or their
    /// directories); exit 1 when NEW is worse than OLD beyond both thresholds.
    Compare {
        /// The earlier run: a report directory (or its report.json), e.g. last night's
        /// `reports/latest-<scenario>`; or a directory of report directories (a baseline
        /// series, e.g. from `--repeat`): its median, each threshold widened by its spread.
        old: PathBuf,
        /// The run to judge against OLD; exit 1 when it is worse. Interrupted runs are
        /// refused (exit 2): they measured nothing.
        new: PathBuf,
        /// Allowed relative increase of a time or of RPO, e.g. 0.2 for 20%.
        #[arg(long, default_value_t = 0.2)]
        tolerance: f64,
        /// A phase regresses only when it also grew by more than this many seconds; the
        /// whole RTO, a sum of n phases, by more than √n times this.
        #[arg(long, default_value_t = 1.0)]
        min_seconds: f64,
        /// The dataset RPO (keys of the loaded dataset the restore lost) regresses only when it
        /// also grew by more than this many; the total with the harness's and workload's lost
        /// writes (how long the faults took, at the clients' rate) is shown, not judged.
        #[arg(long, default_value_t = 200)]
        rpo_writes: u64,
        /// Compare reports of different scenarios anyway.
        #[arg(long)]
        force: bool,
    },
    /// Render summary.md, junit.xml, report.html and metrics.prom again from a report
    /// directory's report.json (e.g. after upgrading etcd-drill); report.json is kept.
    Render {
        /// The report directory (holding report.json).
        dir: PathBuf,
    },
}

/// The model `check-history` checks against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HistoryModel {
    Kv,
    Etcd,
}

/// How a command ended, when it ran to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// A drill ran and its verdict is "fail".
    VerdictFailed,
    /// Stopped by Ctrl-C/SIGTERM after tearing down.
    Interrupted,
    /// A check ran out of time without a verdict (`check-history`).
    Undecided,
}

impl Outcome {
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Ok => 0,
            Outcome::VerdictFailed => 1,
            Outcome::Interrupted => 130,
            Outcome::Undecided => 3,
        }
    }
}

fn cleanup_scope(cluster: Option<String>, all: bool) -> docker::sweep::Scope {
    use docker::sweep::Scope;
    match (cluster, all) {
        (Some(name), _) => Scope::Cluster(name),
        (None, true) => Scope::All,
        (None, false) => Scope::Dead,
    }
}

/// "1 step", "2 steps": counts as people write them.
fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
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
        } => admin::image_build(&version, from_dir, image, force).await,
        Command::Cluster {
            command: ClusterCommand::Up(args),
        } => cluster::up(args, run_id).await,
        Command::Cluster {
            command: ClusterCommand::Ls { json },
        } => cluster::ls(json).await,
        Command::Cluster {
            command: ClusterCommand::Down { name, strict },
        } => cluster::down(&name, strict).await,
        Command::Quorum(args) => table::quorum(args, run_id).await,
        Command::Fault(args) => cluster::fault(args).await,
        Command::Drill(args) => drill::drill(args, run_id, cancel).await,
        Command::Validate { files } => drill::validate(&files),
        Command::Schema => drill::schema(),
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
            let options = crate::model::compare::CompareOptions {
                tolerance,
                min_seconds,
                rpo_writes: rpo_writes as f64,
            };
            report::compare(&old, &new, options, force)
        }
        Command::Report {
            command: ReportCommand::Render { dir },
        } => report::render(&dir),
        Command::RestoreDrill(args) => backup::restore_drill(args, run_id).await,
        Command::VerifySnapshot(args) => backup::verify_snapshot(args, run_id).await,
        Command::Cleanup {
            cluster,
            all,
            dry_run,
        } => admin::cleanup(cleanup_scope(cluster, all), dry_run).await,
        Command::CheckHistory {
            file,
            model,
            timeout,
            open_world,
            json,
        } => report::check_history(&file, model, timeout, open_world, json),
    }
}
