//! `report compare`: what changed between two runs of one scenario.

use std::path::Path;

use super::Outcome;
use crate::error::{Error, Result};
use crate::model::compare::{CompareOptions, compare as compare_reports, ensure_comparable};
use crate::model::report::DrillReport;

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
    let (a, b) = (read_report(old)?, read_report(new)?);
    ensure_comparable(&a, &b, force)?;
    let c = compare_reports(&a, &b, &options);
    print!("{}", crate::render::comparison_text(&c));
    Ok(if c.worse {
        Outcome::VerdictFailed
    } else {
        Outcome::Ok
    })
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
