//! `report compare`: what changed between two runs of one scenario; `report render`:
//! the rendered reports again from a report.json.

use std::path::Path;

use super::Outcome;
use crate::error::{Error, Result};
use crate::model::compare::{CompareOptions, compare as compare_reports, ensure_comparable};
use crate::model::report::{DrillReport, Verdict};

/// `report compare`: thresholds checked, then both reports read, then compared.
pub(super) fn compare(
    old: &Path,
    new: &Path,
    options: CompareOptions,
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
    let (olds, b) = (read_series(old)?, read_report(new)?);
    for (r, which) in olds.iter().map(|r| (r, "OLD")).chain([(&b, "NEW")]) {
        if r.verdict == Verdict::Interrupted {
            let path = if which == "NEW" { new } else { old };
            return Err(Error::InvalidInput(format!(
                "{which} {} is an interrupted run, which measured nothing to compare; compare completed runs (reports/latest-{} names the last one)",
                path.display(),
                r.scenario
            )));
        }
    }
    for a in &olds {
        ensure_comparable(a, &b, force)?;
    }
    let c = match olds.as_slice() {
        [a] => compare_reports(a, &b, &options),
        series => crate::model::compare::compare_series(series, &b, &options),
    };
    print!("{}", crate::render::comparison_text(&c));
    Ok(if c.worse {
        Outcome::VerdictFailed
    } else {
        Outcome::Ok
    })
}

/// `report render DIR`: the rendered reports again, from the directory's report.json.
pub(super) fn render(dir: &Path) -> Result<Outcome> {
    if !dir.is_dir() {
        return Err(Error::InvalidInput(format!(
            "{}: not a directory; pass a report directory (it holds report.json)",
            dir.display()
        )));
    }
    let mut r = read_report(dir)?;
    // The history is beside report.json, not in it; the HTML draws it when it is there.
    let file = dir.join("history.jsonl");
    if file.is_file() {
        let text = std::fs::read_to_string(&file).map_err(Error::io("reading a history", &file))?;
        r.history = crate::model::history::parse(&file.display().to_string(), &text)
            .map_err(|e| Error::InvalidInput(e.to_string()))?;
    }
    crate::drill::write_rendered(dir, &r)?;
    println!("rendered {} from its report.json", dir.display());
    Ok(Outcome::Ok)
}

/// `check-history FILE`: the history read and checked; the verdict is the exit code.
pub(super) fn check_history(
    file: &Path,
    model: Option<super::HistoryModel>,
    timeout: f64,
    open_world: bool,
    json: bool,
) -> Result<Outcome> {
    use crate::model::history::World;
    use crate::model::linearize::{self, Linearizability, Model};
    if !(timeout.is_finite() && timeout > 0.0) {
        return Err(Error::InvalidInput(format!(
            "--timeout {timeout}: use a number of seconds > 0, e.g. 60"
        )));
    }
    let reader = std::fs::File::open(file).map_err(Error::io("reading a history", file))?;
    let reader = std::io::BufReader::with_capacity(1 << 20, reader);
    let parsed = crate::model::history::parse_reader(&file.display().to_string(), reader)
        .map_err(|e| Error::InvalidInput(e.to_string()))?;
    let history = parsed.records;
    if history.is_empty() {
        return Err(Error::InvalidInput(format!(
            "{}: no operations; a history has one JSON object per line",
            file.display()
        )));
    }
    let model = match model {
        Some(super::HistoryModel::Kv) => Model::Kv,
        Some(super::HistoryModel::Etcd) => Model::Etcd,
        // Our own histories carry revisions: the model that checks them is etcd's.
        None if crate::model::history::carries_revisions(&history) => Model::Etcd,
        None => Model::Kv,
    };
    if model == Model::Etcd
        && let Some((i, why)) = crate::model::history::etcd_unready(&history)
    {
        return Err(Error::InvalidInput(format!(
            "{}:{}: {why}",
            file.display(),
            parsed.lines[i]
        )));
    }
    let world = if open_world {
        World::Open
    } else {
        parsed.world.unwrap_or_default()
    };
    let limit = std::time::Duration::from_secs_f64(timeout);
    let c = linearize::check(&history, model, world, limit);
    if json {
        println!("{}", serde_json::to_string_pretty(&c).expect("serializes"));
    } else {
        print!("{}", crate::render::history_check_text(&c, &history));
    }
    let guarantees_hold = c.reads.as_ref().is_none_or(|r| r.problems.is_empty())
        && c.watch.as_ref().is_none_or(|w| w.problems.is_empty());
    Ok(match c.verdict {
        _ if !guarantees_hold => Outcome::VerdictFailed,
        Linearizability::Linearizable => Outcome::Ok,
        Linearizability::NotLinearizable => Outcome::VerdictFailed,
        Linearizability::Unknown => Outcome::Undecided,
    })
}

/// OLD: one report (a report directory or its report.json), or a directory of report
/// directories — a `--repeat` series kept as a baseline — read in name order (`latest-*`
/// links, which name runs already in it, are skipped).
fn read_series(path: &Path) -> Result<Vec<DrillReport>> {
    if !path.is_dir() || path.join("report.json").is_file() {
        return Ok(vec![read_report(path)?]);
    }
    let entries = std::fs::read_dir(path).map_err(Error::io("reading a report series", path))?;
    let mut dirs: Vec<std::path::PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("report.json").is_file())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("latest-"))
        })
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        return Err(Error::InvalidInput(format!(
            "{}: no report.json in it or in any directory under it; pass a report directory or a directory of them",
            path.display()
        )));
    }
    dirs.iter().map(|d| read_report(d)).collect()
}

fn read_report(path: &Path) -> Result<DrillReport> {
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
