//! `restore-drill` and `verify-snapshot`: the restore path on data etcd-drill wrote, and on
//! a snapshot made anywhere.

use std::path::{Path, PathBuf};

use clap::Args;

use super::Outcome;
use crate::chaos::fault::Injector;
use crate::cluster::{self, image};
use crate::docker;
use crate::error::{Error, Result};
use crate::model::backup::Disaster;
use crate::model::expect::{Expectations, parse_duration};
use crate::model::report::Verdict;
use crate::model::source::Source;
use crate::procedures::restore_drill::RestoreDrillOptions;
use crate::procedures::verify_snapshot::{self, VerifyRequest};

#[derive(Debug, Args)]
pub struct RestoreDrillArgs {
    /// Members of the cluster the drill starts, 1 to 9.
    #[arg(long, default_value_t = 3)]
    pub size: usize,
    /// Keys loaded before the snapshot.
    #[arg(long, default_value_t = 10_000)]
    pub keys: usize,
    /// Bytes per value.
    #[arg(long, default_value_t = 1024)]
    pub value_size: usize,
    /// etcd line or version the cluster runs: 3.5, 3.4, or a full version with a local image.
    #[arg(long, default_value = image::DEFAULT_VERSION)]
    pub version: String,
    /// Restore with another etcd version (3.4 → 3.5 works; the reverse is refused).
    #[arg(long)]
    pub restore_version: Option<String>,
    /// Client and peer TLS with client-certificate auth, like the seed's etcdctl procedure.
    #[arg(long)]
    pub tls: bool,
    /// quorum: a majority lost for good; all: every member lost.
    #[arg(long, default_value = "quorum")]
    pub disaster: String,
    /// Writes after the snapshot (lost by design; counted as RPO). Default: 1% of keys, at least 10.
    #[arg(long)]
    pub post_snapshot_writes: Option<usize>,
    /// Restore with `--bump-revision N --mark-compacted` (etcd 3.5).
    #[arg(long)]
    pub bump_revision: Option<u64>,
    /// Member names after the restore, e.g. etcd-1,etcd-2,etcd-4 (the RKE node replacement).
    #[arg(long, value_delimiter = ',')]
    pub restore_members: Option<Vec<String>>,
    /// Seed for the dataset and every random choice; printed, so a run can be replayed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct VerifySnapshotArgs {
    /// The backup: a snapshot file; a directory (its newest snapshot, by the timestamp in
    /// the name, else modification time); or s3://bucket/key, s3://bucket/prefix/ for the
    /// newest object under it (AWS_* environment variables; AWS_ENDPOINT_URL for
    /// S3-compatible servers). gzip and zip are unpacked.
    pub source: String,
    /// Members of the throwaway cluster the backup is restored into, 1 to 9.
    #[arg(long, default_value_t = 3)]
    pub members: usize,
    /// etcd line or version to restore with: 3.5, 3.4, or a full version with a local image.
    #[arg(long, default_value = image::DEFAULT_VERSION)]
    pub version: String,
    /// Accept a `db` file copied from a data dir (no sha256 trailer).
    #[arg(long)]
    pub skip_hash_check: bool,
    /// Fail unless the snapshot holds at least N keys (1 or more).
    #[arg(long)]
    pub min_keys: Option<usize>,
    /// Fail unless at least one key is under this prefix (repeatable).
    #[arg(long)]
    pub require_prefix: Vec<String>,
    /// Fail unless this key is present (repeatable).
    #[arg(long)]
    pub require_key: Vec<String>,
    /// Fail if the backup is older than this (e.g. 26h, 90m, 2d): from the timestamp in its
    /// name, else its modification time.
    #[arg(long)]
    pub max_age: Option<String>,
    /// A report.json of an earlier verification: fail if this backup's revision is behind it.
    #[arg(long)]
    pub previous: Option<PathBuf>,
    /// Run the restored members with this quota instead of one sized from the snapshot.
    #[arg(long)]
    pub quota_backend_bytes: Option<u64>,
    /// Also write report.json, summary.md, junit.xml, report.html and metrics.prom here.
    #[arg(long)]
    pub report_dir: Option<PathBuf>,
    /// Print the report as JSON instead of text.
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

/// Everything the user asks of the backup, checked before anything runs.
fn request(args: &VerifySnapshotArgs, run_id: String) -> Result<VerifyRequest> {
    if args.min_keys == Some(0) {
        return Err(Error::InvalidInput(
            "--min-keys 0 expects nothing; pass the number of keys the backup must hold at least"
                .into(),
        ));
    }
    if let Some(q) = args.quota_backend_bytes
        && q < 1 << 20
    {
        return Err(Error::InvalidInput(format!(
            "--quota-backend-bytes {q}: etcd needs at least 1 MiB (1048576); pass the quota your members run with"
        )));
    }
    let expect = Expectations {
        min_keys: args.min_keys,
        require_prefix: args.require_prefix.clone(),
        require_key: args.require_key.clone(),
        max_age_s: args.max_age.as_deref().map(parse_duration).transpose()?,
        previous_revision: args
            .previous
            .as_deref()
            .map(previous_revision)
            .transpose()?,
    };
    Ok(VerifyRequest {
        source: Source::parse(&args.source)?,
        members: args.members,
        version: args.version.clone(),
        skip_hash_check: args.skip_hash_check,
        run_id,
        expect,
        quota_backend_bytes: args.quota_backend_bytes,
    })
}

/// The revision of an earlier verification: its `report.json` (`backup.revision`) or its
/// `--json` output (`status.revision`).
fn previous_revision(path: &Path) -> Result<i64> {
    let file = if path.is_dir() {
        path.join("report.json")
    } else {
        path.to_path_buf()
    };
    let text =
        std::fs::read_to_string(&file).map_err(Error::io("reading the previous report", &file))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Error::InvalidInput(format!(
            "--previous {}: not JSON ({e}); pass the report.json of an earlier verify-snapshot",
            file.display()
        ))
    })?;
    v.pointer("/backup/revision")
        .or_else(|| v.pointer("/status/revision"))
        .and_then(serde_json::Value::as_i64)
        .ok_or_else(|| {
            Error::InvalidInput(format!(
                "--previous {}: no backup revision in it; pass the report.json of an earlier verify-snapshot",
                file.display()
            ))
        })
}

pub(super) async fn verify_snapshot(args: VerifySnapshotArgs, run_id: String) -> Result<Outcome> {
    let req = request(&args, run_id)?;
    if let Some(dir) = &args.report_dir {
        super::drill::check_report_dir(dir)?;
    }
    let started_at_ms = now_ms();
    // The source is fetched and the file checked before Docker is even asked for.
    let prepared = verify_snapshot::prepare(&req).await?;
    let docker = docker::connect().await?;
    let r = verify_snapshot::verify_prepared(&docker, &req, prepared).await?;
    if let Some(dir) = &args.report_dir {
        let report = r.to_drill_report(started_at_ms, now_ms());
        let out = crate::drill::write_reports(dir, &report, 1)?;
        crate::drill::point_latest(dir, &report.scenario, &out)?;
        eprintln!("reports written to {}", out.display());
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r).expect("json"));
    } else {
        print!("{}", crate::render::snapshot_check_text(&r));
    }
    Ok(if r.verdict == Verdict::Pass {
        Outcome::Ok
    } else {
        Outcome::VerdictFailed
    })
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
