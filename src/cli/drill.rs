//! `drill`, `validate` and `schema`: scenario files.

use std::path::{Path, PathBuf};

use clap::Args;

use super::Outcome;
use crate::docker;
use crate::error::{Error, Result};
use crate::model::report::{DrillReport, Verdict};
use crate::model::scenario::{self, Loaded};

#[derive(Debug, Args)]
pub struct DrillArgs {
    /// Scenario files (scenarios/*.toml); all are checked before any runs.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Overrides every scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where each run writes its report directory (and latest-<scenario>).
    #[arg(long, default_value = "reports")]
    pub report_dir: PathBuf,
    /// Overrides every scenario's repeat count.
    #[arg(long)]
    pub repeat: Option<u32>,
    /// Also write each run's metrics here, atomically, for node_exporter's textfile
    /// collector; `{scenario}` in the path is replaced by the scenario's name (required
    /// with several files), e.g. /var/lib/node_exporter/textfile/etcd_drill_{scenario}.prom
    #[arg(long)]
    pub metrics_file: Option<String>,
}

/// The metrics file of one scenario, from `--metrics-file`.
fn metrics_path(template: &str, scenario: &str) -> PathBuf {
    PathBuf::from(template.replace("{scenario}", scenario))
}

/// `--metrics-file` must name a writable directory, and one file per scenario.
fn check_metrics_file(template: &str, scenarios: usize) -> Result<()> {
    if scenarios > 1 && !template.contains("{scenario}") {
        return Err(Error::InvalidInput(format!(
            "--metrics-file {template} would be overwritten by each of the {scenarios} scenarios; put {{scenario}} in the name"
        )));
    }
    let p = metrics_path(template, "x");
    let dir = p
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(Error::InvalidInput(format!(
            "--metrics-file {template}: {} is not a directory; create it, or point at node_exporter's --collector.textfile.directory",
            dir.display()
        )));
    }
    Ok(())
}

pub(super) async fn drill(
    args: DrillArgs,
    run_id: String,
    cancel: tokio_util::sync::CancellationToken,
) -> Result<Outcome> {
    use std::io::IsTerminal;
    // Every file is checked before anything starts.
    let loaded = load_all(&args.files, |_, _| {})?;
    if let Some(n) = args.repeat
        && !(1..=100).contains(&n)
    {
        return Err(Error::InvalidInput(format!(
            "--repeat {n}: a scenario runs 1 to 100 times"
        )));
    }
    check_report_dir(&args.report_dir)?;
    if let Some(m) = &args.metrics_file {
        check_metrics_file(m, loaded.len())?;
    }
    let docker = docker::connect().await?;
    // A missing image is the environment's fault, not a failed drill: refuse up front
    // (exit 2, naming the command that builds it) rather than report a run that never began.
    for l in &loaded {
        let c = &l.scenario.cluster;
        crate::cluster::image::for_spec(&docker, c.version.get_ref(), c.image.as_deref()).await?;
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
        let mut write = |r: &DrillReport, repeat: u32| -> Result<()> {
            let dir = crate::drill::write_reports(&args.report_dir, r, repeat)?;
            // latest-<scenario> names the last run that finished: what a reviewer compares.
            if r.verdict != Verdict::Interrupted {
                crate::drill::point_latest(&args.report_dir, &r.scenario, &dir)?;
            }
            // The collector's file keeps the last completed run: an interrupted one would
            // drop its verdict and timestamp series, silencing the alerts built on them.
            if let Some(m) = args
                .metrics_file
                .as_ref()
                .filter(|_| r.verdict != Verdict::Interrupted)
            {
                crate::drill::write_metrics_file(&metrics_path(m, &r.scenario), r)?;
            }
            all_passed &= r.passed();
            interrupted |= r.verdict == Verdict::Interrupted;
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
pub(super) fn check_report_dir(dir: &Path) -> Result<()> {
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

fn print_run(r: &DrillReport, dir: &Path) {
    println!(
        "{}: {} (seed {}) — {}",
        r.scenario,
        r.verdict.as_str().to_uppercase(),
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

pub(super) fn validate(files: &[PathBuf]) -> Result<Outcome> {
    load_all(files, |f, l| {
        println!(
            "{}: ok ({}, {})",
            f.display(),
            super::plural(l.scenario.steps.len(), "step"),
            super::plural(*l.scenario.cluster.size.get_ref(), "member")
        )
    })?;
    Ok(Outcome::Ok)
}

/// Loads and checks every file, so one run of `validate` (or `drill`) shows every bad file:
/// each one's error is printed as it is found, and one error for them all ends the command.
/// `ok` is told of each good file.
fn load_all(files: &[PathBuf], mut ok: impl FnMut(&Path, &Loaded)) -> Result<Vec<Loaded>> {
    if let [one] = files {
        let l = scenario::load(one)?;
        ok(one, &l);
        return Ok(vec![l]);
    }
    let mut loaded = vec![];
    let mut failed = 0;
    for f in files {
        match scenario::load(f) {
            Ok(l) => {
                ok(f, &l);
                loaded.push(l);
            }
            Err(e) => {
                failed += 1;
                eprintln!("etcd-drill: error: {}", Error::from(e));
            }
        }
    }
    if failed > 0 {
        return Err(Error::InvalidInput(format!(
            "{failed} of {} scenario files are invalid (each error is above); fix them and run again",
            files.len()
        )));
    }
    Ok(loaded)
}

pub(super) fn schema() -> Result<Outcome> {
    println!(
        "{}",
        serde_json::to_string_pretty(&scenario::json_schema()).expect("json")
    );
    Ok(Outcome::Ok)
}
