//! The drill runner: a scenario's steps in order against real clusters, every expectation
//! and gate recorded, teardown whatever happens. A failed expectation is a result and the
//! drill goes on; an error (Docker, etcd refusing a step) stops the steps, and the run is
//! still torn down and reported.

mod exec;
mod gates;
mod monitor;
mod progress;
mod reports;
mod restore;
mod runner;
mod steps;
mod workload;

use std::time::SystemTime;

use bollard::Docker;

pub use self::gates::{Expectation, Measured, evaluate_gates, judge_expectation, verdict};
use self::progress::Progress;
pub use self::reports::{point_latest, write_metrics_file, write_rendered, write_reports};
use self::runner::Runner;
use crate::chaos::fault::Injector;
use crate::error::{Error, Result};
use crate::model::report::{
    ActionRecord, DrillReport, FaultEventRecord, REPORT_SCHEMA_VERSION, StepRecord, Verdict,
};
use crate::model::scenario::Loaded;

#[derive(Debug, Clone)]
pub struct DrillOptions {
    pub seed: Option<u64>,
    pub repeat: Option<u32>,
    pub run_id: String,
    /// Show a spinner (terminals) instead of plain lines (CI).
    pub interactive: bool,
    /// Cancelled on Ctrl-C/SIGTERM: the running step stops, the cluster is torn down and
    /// the run is reported as interrupted.
    pub cancel: tokio_util::sync::CancellationToken,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Runs a scenario `repeat` times; `done` gets each run's report as soon as the run ends
/// (so a long series leaves its reports behind even if it is stopped). Stops after an
/// interrupted run.
pub async fn run(
    docker: &Docker,
    loaded: &Loaded,
    opts: &DrillOptions,
    done: &mut dyn FnMut(&DrillReport, u32) -> Result<()>,
) -> Result<Vec<DrillReport>> {
    let s = &loaded.scenario;
    let repeat = opts.repeat.unwrap_or(*s.repeat.get_ref()).max(1);
    let base_seed = opts.seed.or(s.seed).unwrap_or_else(Injector::random_seed);
    let mut out = vec![];
    for r in 1..=repeat {
        let seed = base_seed.wrapping_add(u64::from(r - 1));
        let report = run_once(docker, loaded, seed, r, opts).await;
        done(&report, repeat)?;
        let interrupted = report.verdict == Verdict::Interrupted;
        out.push(report);
        if interrupted {
            break;
        }
    }
    Ok(out)
}

async fn run_once(
    docker: &Docker,
    loaded: &Loaded,
    seed: u64,
    repetition: u32,
    opts: &DrillOptions,
) -> DrillReport {
    let s = &loaded.scenario;
    let started_at_ms = now_ms();
    let mut r = Runner::new(docker, s, opts, seed);
    let (steps, mut error) = run_steps(&mut r).await;
    r.stop_workload(steps.len()).await;
    r.stop_writer().await;
    r.finish_rto();
    if let Some(c) = r.cluster.take()
        && let Err(e) = c.destroy().await
    {
        error.get_or_insert_with(|| format!("teardown failed: {e}"));
    }
    let f = &r.found;
    let measured = Measured {
        rto: f.rto.as_ref(),
        rpo: f.rpo.as_ref(),
        write_gap: f.max_write_gap_s,
        snapshot_lag: snapshot_lag(&r.snaps),
    };
    // An interrupted run measured nothing its gates could be held to.
    let gates = if opts.cancel.is_cancelled() {
        vec![]
    } else {
        evaluate_gates(s, measured)
    };
    if error.is_none() && f.checks.is_empty() && gates.is_empty() {
        error = Some("no check or gate was evaluated: a pass needs evidence".into());
    }
    let verdict = if opts.cancel.is_cancelled() {
        Verdict::Interrupted
    } else {
        verdict(error.is_some(), &f.checks, &gates)
    };
    // One clock for steps, faults and the history: the run's monotonic one.
    let at_s = |i: std::time::Instant| i.saturating_duration_since(r.t0).as_secs_f64();
    let fault_events = r
        .injector
        .events
        .iter()
        .map(|e| FaultEventRecord {
            at_s: at_s(e.at),
            member: e.member.clone(),
            fault: e.fault,
            role: e.role,
            step: e.step,
            by: Some(e.by),
        })
        .collect();
    let actions = r
        .injector
        .actions
        .iter()
        .map(|a| ActionRecord {
            at_s: at_s(a.at),
            seconds: a.seconds,
            member: a.member.clone(),
            action: a.action,
            step: a.step,
        })
        .collect();
    let found = r.found;
    DrillReport {
        schema_version: REPORT_SCHEMA_VERSION,
        scenario: s.name.clone(),
        description: s.description.clone(),
        file: loaded.path.clone(),
        seed,
        repetition,
        etcd_version: r.etcd_version,
        image: r.image,
        cluster_size: *s.cluster.size.get_ref(),
        tls: s.cluster.tls,
        started_at_ms,
        finished_at_ms: now_ms(),
        steps,
        fault_events,
        actions,
        probes: found.probes,
        write_windows: found.write_windows,
        history: found.history,
        history_check: found.history_check,
        snapshots: r.snaps.into_iter().map(|x| x.record).collect(),
        rto: found.rto,
        rpo: found.rpo,
        checks: found.checks,
        gates,
        table: found.table,
        verdict,
        error,
        backup: found.backup,
    }
}

/// The steps in order until one errors (or a signal arrives); the records of those that
/// ran, and why the run stopped early, if it did.
async fn run_steps(r: &mut Runner<'_>) -> (Vec<StepRecord>, Option<String>) {
    let s = r.s;
    let progress = Progress::new(&s.name, s.steps.len(), r.opts.interactive);
    let mut steps = vec![];
    let mut error = None;
    // Steps are numbered from 1 in reports and progress, as people count them.
    for (i, step) in (1..).zip(s.steps.iter()) {
        let step = step.get_ref();
        progress.step(i, &step.title());
        r.injector.step = Some(i);
        let start_s = r.at();
        if Runner::stops_workload(step.kind()) {
            r.stop_workload(i).await;
        }
        let result = tokio::select! {
            biased;
            _ = r.opts.cancel.cancelled() => Err(Error::Failed("interrupted by a signal".into())),
            res = r.step(i, step) => res,
        };
        let seconds = r.at() - start_s;
        r.start_workload();
        let failed_checks = r
            .found
            .checks
            .iter()
            .any(|c| c.step == i && !c.check.passed);
        let (ok, detail) = match result {
            Ok(d) => (!failed_checks, d),
            Err(e) => (false, e.to_string()),
        };
        progress.done(i, &step.title(), ok, seconds, &detail);
        steps.push(StepRecord {
            index: i,
            kind: step.kind(),
            title: step.title(),
            start_s,
            seconds,
            ok,
            detail: detail.clone(),
        });
        if !ok && !failed_checks {
            error = Some(format!("step {i} ({}) failed: {detail}", step.title()));
            break;
        }
    }
    progress.finish();
    (steps, error)
}

/// The largest lag of the snapshots the drill's steps took (a backup command's file
/// included: what it missed of what was acknowledged); `None` when there were none.
fn snapshot_lag(snaps: &[runner::Snap]) -> Option<i64> {
    snaps
        .iter()
        .map(|s| s.record.lag.map_or(0, |l| l.revisions))
        .max()
}
