//! `restore-drill` and `verify-snapshot`: the restore path on data etcd-drill wrote, and on
//! a snapshot made anywhere.

use std::path::PathBuf;

use clap::Args;

use super::Outcome;
use crate::chaos::fault::Injector;
use crate::cluster::{self, image};
use crate::docker;
use crate::error::{Error, Result};
use crate::model::backup::Disaster;
use crate::model::report::Verdict;
use crate::procedures::restore_drill::RestoreDrillOptions;

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

pub(super) async fn restore_drill(args: RestoreDrillArgs, run_id: String) -> Result<Outcome> {
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
    o.seed = args.seed.unwrap_or_else(Injector::random_seed);
    o.dataset.seed = o.seed;
    o.run_id = run_id;
    let docker = docker::connect().await?;
    let r = crate::procedures::restore_drill::restore_drill(&docker, &o).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r).expect("json"));
    } else {
        print!("{}", crate::render::restore_drill_text(&r));
    }
    Ok(if r.passed() {
        Outcome::Ok
    } else {
        Outcome::VerdictFailed
    })
}

pub(super) async fn verify_snapshot(args: VerifySnapshotArgs, run_id: String) -> Result<Outcome> {
    cluster::validate_size(args.members)?;
    image::Line::parse(&args.version)?;
    // The file is checked before Docker is even asked for.
    crate::backup::snapshot::check_file(&args.file, args.skip_hash_check)?;
    let docker = docker::connect().await?;
    let r = crate::procedures::verify_snapshot::verify_snapshot(
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
            r.verdict.as_str().to_uppercase(),
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
    Ok(if r.verdict == Verdict::Pass {
        Outcome::Ok
    } else {
        Outcome::VerdictFailed
    })
}
