//! The report set of one run, written to its own directory.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::model::report::DrillReport;

/// `reports/<UTC timestamp>-<scenario>[-rN]/` with every report file.
pub fn write_reports(dir: &Path, r: &DrillReport, repeat: u32) -> Result<PathBuf> {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let ts = time::OffsetDateTime::from_unix_timestamp((r.started_at_ms / 1000) as i64)
        .ok()
        .and_then(|t| t.format(fmt).ok())
        .unwrap_or_else(|| r.started_at_ms.to_string());
    let suffix = if repeat > 1 {
        format!("-r{}", r.repetition)
    } else {
        String::new()
    };
    let out = dir.join(format!("{ts}-{}{suffix}", r.scenario));
    std::fs::create_dir_all(&out).map_err(Error::io("creating the report directory", &out))?;
    let p = out.join("report.json");
    let json = serde_json::to_string_pretty(r).expect("report serializes") + "\n";
    std::fs::write(&p, json).map_err(Error::io("writing a report", &p))?;
    if !r.history.is_empty() {
        let p = out.join("history.jsonl");
        // The harness writes keys of its own beside the workload's (the dataset, the
        // background writer, probes) and records none of them here: an open world.
        let header = crate::model::history::World::Open.to_line() + "\n";
        let lines: String = r.history.iter().map(|h| h.to_line() + "\n").collect();
        let lines = header + &lines;
        std::fs::write(&p, lines).map_err(Error::io("writing the history", &p))?;
    }
    write_rendered(&out, r)?;
    Ok(out)
}

/// Every report rendered from `r` (all but `report.json`) into `out`: what `report
/// render` redoes for a report written by an earlier version.
pub fn write_rendered(out: &Path, r: &DrillReport) -> Result<()> {
    let write = |name: &str, body: String| -> Result<()> {
        let p = out.join(name);
        std::fs::write(&p, body).map_err(Error::io("writing a report", &p))
    };
    write("summary.md", crate::render::summary_md(r))?;
    write(
        "junit.xml",
        crate::render::junit_xml(r)
            .map_err(|e| Error::Failed(format!("rendering junit.xml: {e}")))?,
    )?;
    write("report.html", crate::render::report_html(r))?;
    write("metrics.prom", crate::render::metrics_prom(r))
}

/// Points `<dir>/latest-<scenario>` at the run directory just written, so scripts need not
/// guess timestamps: a relative symlink, replaced atomically (made under a temporary name,
/// then renamed over the old one).
pub fn point_latest(dir: &Path, scenario: &str, run: &Path) -> Result<PathBuf> {
    let link = dir.join(format!("latest-{scenario}"));
    let target = run
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| run.to_path_buf());
    let tmp = dir.join(format!(".latest-{scenario}.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&target, &tmp)
        .map_err(Error::io("pointing at the latest report", &tmp))?;
    std::fs::rename(&tmp, &link).map_err(Error::io("pointing at the latest report", &link))?;
    Ok(link)
}

/// Writes the run's metrics to `path` as well (node_exporter's textfile collector reads a
/// stable name), atomically: the collector never reads half a file.
pub fn write_metrics_file(path: &Path, r: &DrillReport) -> Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.{}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    std::fs::write(&tmp, crate::render::metrics_prom(r))
        .map_err(Error::io("writing the metrics file", &tmp))?;
    std::fs::rename(&tmp, path).map_err(Error::io("writing the metrics file", path))
}
