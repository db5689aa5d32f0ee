//! The comparison of two reports: which times and counts grew beyond the thresholds, and
//! whether NEW is worse than OLD. Analysis, not rendering: `render::comparison_text`
//! shows the result.

use super::report::{DrillReport, Rto};

/// When NEW counts as worse than OLD. A time or the RPO regresses only when it grew by more
/// than the tolerance relatively *and* by more than its absolute floor: two runs of one
/// scenario on one machine differ by fractions of a second and by a few hundred lost
/// writes (0 → 128 is "+inf %"), and neither is a regression.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct CompareOptions {
    /// Allowed relative increase, e.g. 0.2 for 20 %.
    pub tolerance: f64,
    /// Seconds a time may grow by, whatever the ratio.
    pub min_seconds: f64,
    /// Acknowledged writes the RPO may grow by, whatever the ratio.
    pub rpo_writes: f64,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            tolerance: 0.2,
            min_seconds: 1.0,
            rpo_writes: 200.0,
        }
    }
}

impl CompareOptions {
    /// Negative or non-finite values count as 0.
    fn sanitized(self) -> Self {
        let clamp = |v: f64| if v.is_finite() && v > 0.0 { v } else { 0.0 };
        CompareOptions {
            tolerance: clamp(self.tolerance),
            min_seconds: clamp(self.min_seconds),
            rpo_writes: clamp(self.rpo_writes),
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Comparison {
    pub rows: Vec<CompareRow>,
    /// NEW is worse than OLD on at least one row.
    pub worse: bool,
    /// The thresholds the rows were judged by.
    pub options: CompareOptions,
    /// How many runs OLD is: 1, or a series (`--repeat`) whose median is OLD's value and
    /// whose spread widens each threshold.
    pub old_runs: usize,
}

impl CompareRow {
    /// Whether the row can make NEW worse (the total RPO is shown for reference only).
    pub fn judged(&self) -> bool {
        self.what != "rpo_writes"
    }

    /// Whether the row counts writes (shown as whole numbers).
    pub fn counts_writes(&self) -> bool {
        self.what.starts_with("rpo_")
    }
}

impl Comparison {
    /// What each row that regressed measures, in row order.
    pub fn worse_rows(&self) -> Vec<&str> {
        self.rows
            .iter()
            .filter(|r| r.worse)
            .map(|r| r.what.as_str())
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CompareRow {
    /// `rto_s`, `phase <name>`, `rpo_dataset_writes`, `rpo_writes` or `verdict`.
    pub what: String,
    pub old: Option<f64>,
    pub new: Option<f64>,
    pub worse: bool,
    /// For a series OLD: max − min of the figure over its runs, added to the threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread: Option<f64>,
}

/// A time or count that is worse when it grows beyond `old × (1 + tolerance)` and by more
/// than `floor`, or is missing in NEW while OLD had it.
fn grew(old: Option<f64>, new: Option<f64>, tolerance: f64, floor: f64) -> bool {
    match (old, new) {
        (Some(_), None) => true,
        (Some(o), Some(n)) => n > o * (1.0 + tolerance) && n - o > floor,
        _ => false,
    }
}

/// Two reports of different scenarios, named old and new.
#[derive(Debug, thiserror::Error)]
#[error(
    "reports of different scenarios ({old} vs {new}) are not comparable; compare runs of one scenario, or pass --force"
)]
pub struct NotComparable {
    pub old: String,
    pub new: String,
}

/// Refuses to compare runs of different scenarios (their phases and RPO mean different
/// things) unless `force`.
pub fn ensure_comparable(
    old: &DrillReport,
    new: &DrillReport,
    force: bool,
) -> Result<(), NotComparable> {
    if force || old.scenario == new.scenario {
        return Ok(());
    }
    Err(NotComparable {
        old: old.scenario.clone(),
        new: new.scenario.clone(),
    })
}

/// Phases with repeated names summed into one, in order of first appearance (series and
/// comparison rows must be unique per phase).
pub fn merged_phases(rto: &Rto) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = Vec::new();
    for p in &rto.phases {
        match out.iter_mut().find(|(n, _)| n == p.name.as_str()) {
            Some((_, s)) => *s += p.seconds,
            None => out.push((p.name.to_string(), p.seconds)),
        }
    }
    out
}

/// The rows for the RTO and each phase (in OLD's order, then NEW's new ones).
fn time_rows(old: &DrillReport, new: &DrillReport, o: &CompareOptions) -> Vec<CompareRow> {
    let row = |what: String, old: Option<f64>, new: Option<f64>| CompareRow {
        worse: grew(old, new, o.tolerance, o.min_seconds),
        what,
        old,
        new,
        spread: None,
    };
    let total = |r: &DrillReport| r.rto.as_ref().map(|r| r.total_s);
    let old_phases = old.rto.as_ref().map(merged_phases).unwrap_or_default();
    let new_phases = new.rto.as_ref().map(merged_phases).unwrap_or_default();
    let mut names: Vec<&str> = old_phases.iter().map(|p| p.0.as_str()).collect();
    for (name, _) in &new_phases {
        if !names.contains(&name.as_str()) {
            names.push(name);
        }
    }
    let (a, b) = (total(old), total(new));
    let mut rows = vec![CompareRow {
        worse: grew(a, b, o.tolerance, rto_floor(o, names.len())),
        what: "rto_s".into(),
        old: a,
        new: b,
        spread: None,
    }];
    let find = |ps: &[(String, f64)], name: &str| ps.iter().find(|p| p.0 == name).map(|p| p.1);
    for name in names {
        let (a, b) = (find(&old_phases, name), find(&new_phases, name));
        rows.push(row(format!("phase {name}"), a, b));
    }
    rows
}

/// Compares two runs. NEW is worse when a time or the RPO grew beyond both thresholds of
/// `options`, an RTO, phase or RPO measured in OLD is missing in NEW, or the verdict went
/// from pass to fail (always flagged).
pub fn compare(old: &DrillReport, new: &DrillReport, options: &CompareOptions) -> Comparison {
    let o = options.sanitized();
    let mut rows = time_rows(old, new, &o);
    // The dataset's lost keys are what the backup procedure decides (and, with the snapshot
    // waiting for its member, the same on every rerun); the harness's and the workload's
    // lost writes count how long the faults before the restore took at the clients' rate
    // (98 and 374 on identical reruns): shown, not judged.
    let dataset = |r: &DrillReport| r.rpo.as_ref().map(|r| r.dataset_writes as f64);
    rows.push(CompareRow {
        what: "rpo_dataset_writes".into(),
        old: dataset(old),
        new: dataset(new),
        worse: grew(dataset(old), dataset(new), o.tolerance, o.rpo_writes),
        spread: None,
    });
    let total = |r: &DrillReport| r.rpo.as_ref().map(|r| r.writes as f64);
    rows.push(CompareRow {
        what: "rpo_writes".into(),
        old: total(old),
        new: total(new),
        worse: false,
        spread: None,
    });
    let verdict = |r: &DrillReport| if r.passed() { 1.0 } else { 0.0 };
    rows.push(CompareRow {
        what: "verdict".into(),
        old: Some(verdict(old)),
        new: Some(verdict(new)),
        worse: old.passed() && !new.passed(),
        spread: None,
    });
    let worse = rows.iter().any(|r| r.worse);
    Comparison {
        rows,
        worse,
        options: o,
        old_runs: 1,
    }
}

/// Compares NEW with a series of runs of one scenario (e.g. a `--repeat` series kept as the
/// baseline). Each figure's OLD is the series' median, and it regresses only when it grew
/// beyond its threshold *plus the series' own spread* (max − min): what identical reruns
/// already do is no regression. The verdict row is worse when every run of the series
/// passed and NEW did not. An empty series is NEW against itself.
pub fn compare_series(
    olds: &[DrillReport],
    new: &DrillReport,
    options: &CompareOptions,
) -> Comparison {
    let o = options.sanitized();
    let per: Vec<Comparison> = olds.iter().map(|old| compare(old, new, &o)).collect();
    let Some(first) = per.first() else {
        return compare(new, new, &o);
    };
    let rows: Vec<CompareRow> = first
        .rows
        .iter()
        .map(|r| {
            let olds: Vec<f64> = per
                .iter()
                .filter_map(|c| c.rows.iter().find(|x| x.what == r.what))
                .filter_map(|x| x.old)
                .collect();
            let (median, spread) = median_and_spread(&olds);
            let worse = if r.what == "verdict" {
                olds.iter().all(|&v| v == 1.0) && r.new == Some(0.0)
            } else if !r.judged() {
                false
            } else {
                // The single-run judgement's threshold, found again from its floor.
                let floor = row_floor(&r.what, &o, first);
                grew(median, r.new, o.tolerance, floor + spread.unwrap_or(0.0))
            };
            CompareRow {
                what: r.what.clone(),
                old: median,
                new: r.new,
                worse,
                spread,
            }
        })
        .collect();
    Comparison {
        worse: rows.iter().any(|r| r.worse),
        rows,
        options: o,
        old_runs: olds.len(),
    }
}

/// The RTO is the sum of its phases, so its run-to-run noise is theirs added up: with
/// independent phases, √n times one phase's. Identical reruns on a shared 2-core machine
/// moved single phases by up to 0.6 s and the RTO by 1.7 s.
fn rto_floor(o: &CompareOptions, phases: usize) -> f64 {
    o.min_seconds * (phases.max(1) as f64).sqrt()
}

/// The absolute floor a row's growth must exceed (before any spread).
fn row_floor(what: &str, o: &CompareOptions, c: &Comparison) -> f64 {
    let phases = c
        .rows
        .iter()
        .filter(|r| r.what.starts_with("phase "))
        .count();
    match what {
        "rto_s" => rto_floor(o, phases),
        "rpo_dataset_writes" => o.rpo_writes,
        _ => o.min_seconds,
    }
}

fn median_and_spread(v: &[f64]) -> (Option<f64>, Option<f64>) {
    if v.is_empty() {
        return (None, None);
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let mid = s.len() / 2;
    let median = if s.len().is_multiple_of(2) {
        (s[mid - 1] + s[mid]) / 2.0
    } else {
        s[mid]
    };
    (Some(median), Some(s[s.len() - 1] - s[0]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::comparison_text;
    use crate::render::fixtures::{
        drop_phase, fixture, opts, passing, scale_rto, set_phase, set_rpo,
    };

    fn row<'a>(c: &'a Comparison, what: &str) -> &'a CompareRow {
        c.rows.iter().find(|r| r.what == what).unwrap()
    }

    /// A baseline series knows its own noise: a phase that moved within what the series
    /// itself spans is no regression, though it would be against one run; a real one still is.
    #[test]
    fn a_series_widens_each_threshold_by_its_spread() {
        let runs: Vec<DrillReport> = [0.7, 1.3, 2.2]
            .iter()
            .map(|&s| {
                let mut r = fixture();
                set_phase(&mut r, "restore", s);
                r
            })
            .collect();
        let mut new = fixture();
        set_phase(&mut new, "restore", 2.6);
        let o = CompareOptions::default();
        assert!(row(&compare(&runs[1], &new, &o), "phase restore").worse);
        let c = compare_series(&runs, &new, &o);
        let r = row(&c, "phase restore");
        assert_eq!(r.old, Some(1.3));
        assert!((r.spread.unwrap() - 1.5).abs() < 1e-9, "{:?}", r.spread);
        assert!(!r.worse, "{}", comparison_text(&c));
        assert_eq!(c.old_runs, 3);
        set_phase(&mut new, "restore", 8.0);
        assert!(row(&compare_series(&runs, &new, &o), "phase restore").worse);
        // One failed run in the series: a failing NEW is not a pass -> fail regression.
        let mut failing = fixture();
        failing.verdict = crate::model::report::Verdict::Fail;
        let mut passing_runs = runs.clone();
        for r in &mut passing_runs {
            r.verdict = crate::model::report::Verdict::Pass;
        }
        assert!(row(&compare_series(&passing_runs, &failing, &o), "verdict").worse);
        passing_runs[0].verdict = crate::model::report::Verdict::Fail;
        assert!(!row(&compare_series(&passing_runs, &failing, &o), "verdict").worse);
    }

    #[test]
    fn compare_self_is_not_worse() {
        let c = compare(&fixture(), &fixture(), &opts(0.0, 0.0, 0.0));
        assert!(!c.worse, "{}", comparison_text(&c));
        assert!(c.rows.iter().all(|r| !r.worse));
        // rto_s, 7 phases, rpo_dataset_writes, rpo_writes, verdict
        assert_eq!(c.rows.len(), 11);
    }

    #[test]
    fn compare_defaults_are_the_documented_ones() {
        assert_eq!(CompareOptions::default(), opts(0.2, 1.0, 200.0));
    }

    /// Two runs of one scenario and seed on one machine: sub-second phases that moved by a
    /// few hundred percent, and 0 → 128 lost writes. Not a regression, either way round.
    #[test]
    fn compare_same_ish_runs_are_not_flagged_in_either_direction() {
        let mut old = fixture();
        set_rpo(&mut old, 0);
        let mut new = old.clone();
        set_phase(&mut new, "first-write", 0.49); // 0.14 → 0.49: +250 %
        set_phase(&mut new, "snapshot-checked", 0.1);
        set_phase(&mut new, "leader-elected", 1.55); // +0.43 s
        set_phase(&mut new, "started", 1.8);
        set_rpo(&mut new, 128); // "+inf %"
        for (a, b) in [(&old, &new), (&new, &old)] {
            let c = compare(a, b, &CompareOptions::default());
            assert!(!c.worse, "{}", comparison_text(&c));
        }
        // The same pair without the absolute floors is what cried wolf.
        let c = compare(&old, &new, &opts(0.2, 0.0, 0.0));
        assert!(row(&c, "phase first-write").worse);
        assert!(row(&c, "rpo_dataset_writes").worse);
    }

    #[test]
    fn compare_rto_up_by_ten_seconds_is_flagged() {
        let mut new = fixture();
        set_phase(&mut new, "restore", 18.40); // 8.40 → 18.40: the RTO up by 10 s
        let c = compare(&fixture(), &new, &CompareOptions::default());
        assert!(c.worse);
        let flagged: Vec<&str> = c
            .rows
            .iter()
            .filter(|r| r.worse)
            .map(|r| r.what.as_str())
            .collect();
        assert_eq!(flagged, ["rto_s", "phase restore"]);
        let rto = row(&c, "rto_s").new.unwrap();
        assert!((rto - 24.37).abs() < 1e-9, "{rto}");
    }

    #[test]
    fn compare_doubled_rto_is_worse() {
        let mut new = fixture();
        scale_rto(&mut new, 2.0);
        let c = compare(&fixture(), &new, &opts(0.1, 0.5, 100.0));
        assert!(c.worse);
        let r = row(&c, "rto_s");
        assert!(r.worse);
        assert_eq!((r.old, r.new), (Some(14.37), Some(28.74)));
        // Doubling 0.14 s or 0.41 s stays under the 0.5 s floor: not flagged.
        assert!(!row(&c, "phase first-write").worse);
        assert!(!row(&c, "phase snapshot-checked").worse);
        assert!(row(&c, "phase verified").worse, "1.03 → 2.06 s");
        insta::assert_snapshot!("comparison_rto_doubled", comparison_text(&c));
    }

    #[test]
    fn compare_min_seconds_is_the_time_floor() {
        let mut new = fixture();
        set_phase(&mut new, "verified", 1.63); // +0.60 s, +58 %
        assert!(compare(&fixture(), &new, &opts(0.2, 0.5, 100.0)).worse);
        assert!(!compare(&fixture(), &new, &opts(0.2, 0.7, 100.0)).worse);
        // Both thresholds must be exceeded: +0.6 s on 8.4 s is 7 %.
        let mut new = fixture();
        set_phase(&mut new, "restore", 9.0);
        assert!(!compare(&fixture(), &new, &opts(0.2, 0.5, 100.0)).worse);
    }

    #[test]
    fn compare_pass_to_fail_is_worse_and_fail_to_pass_is_not() {
        // Always flagged, whatever the thresholds.
        let c = compare(&passing(), &fixture(), &opts(10.0, 1e9, 1e9));
        assert!(c.worse);
        assert!(row(&c, "verdict").worse);
        assert_eq!(c.rows.iter().filter(|r| r.worse).count(), 1);
        let c = compare(&fixture(), &passing(), &opts(0.1, 0.5, 100.0));
        assert!(!c.worse);
    }

    #[test]
    fn compare_missing_phase_is_worse() {
        let o = opts(0.1, 0.5, 100.0);
        let mut new = fixture();
        drop_phase(&mut new, "verified");
        let c = compare(&fixture(), &new, &o);
        assert!(c.worse);
        let r = row(&c, "phase verified");
        assert!(r.worse);
        assert_eq!((r.old, r.new), (Some(1.03), None));
        // A phase only NEW has is not a regression.
        let c = compare(&new, &fixture(), &o);
        assert!(!c.worse);
        // RTO gone entirely is.
        let mut gone = fixture();
        gone.rto = None;
        assert!(compare(&fixture(), &gone, &o).worse);
    }

    #[test]
    fn compare_within_tolerance_is_not_worse() {
        let mut new = fixture();
        scale_rto(&mut new, 1.05);
        assert!(!compare(&fixture(), &new, &opts(0.1, 0.0, 0.0)).worse);
        // Same change with no tolerance and no floor is worse (restore grows 0.42 s)...
        let c = compare(&fixture(), &new, &opts(0.0, 0.0, 0.0));
        assert!(c.worse);
        // ...and with a floor above the largest growth (the RTO's 0.72 s) it is not.
        assert!(!compare(&fixture(), &new, &opts(0.0, 0.8, 0.0)).worse);
        // Negative and non-finite thresholds count as 0.
        let c2 = compare(&fixture(), &new, &opts(-1.0, f64::NAN, f64::INFINITY));
        assert_eq!(c2.rows, c.rows);
    }

    #[test]
    fn compare_rpo_up_by_128_is_flagged_only_above_the_threshold() {
        let mut old = fixture();
        set_rpo(&mut old, 0);
        let mut new = fixture();
        set_rpo(&mut new, 128);
        let c = compare(&old, &new, &opts(0.2, 1.0, 200.0));
        assert!(!c.worse, "{}", comparison_text(&c));
        let c = compare(&old, &new, &opts(0.2, 0.5, 100.0));
        assert!(c.worse);
        assert!(row(&c, "rpo_dataset_writes").worse);
        // The total (harness and workload writes too) is shown, never judged.
        assert!(!row(&c, "rpo_writes").worse);
        // The relative tolerance applies too: 1000 → 1128 is +12.8 %.
        set_rpo(&mut old, 1000);
        set_rpo(&mut new, 1128);
        assert!(!compare(&old, &new, &opts(0.2, 0.5, 100.0)).worse);
        // An RPO measured in OLD and missing in NEW is worse.
        new.rpo = None;
        assert!(
            row(
                &compare(&old, &new, &opts(0.2, 0.5, 100.0)),
                "rpo_dataset_writes"
            )
            .worse
        );
    }

    #[test]
    fn compare_refuses_different_scenarios_unless_forced() {
        let mut other = fixture();
        other.scenario = "total-loss-9".into();
        let err = ensure_comparable(&fixture(), &other, false).unwrap_err();
        assert_eq!(
            (err.old.as_str(), err.new.as_str()),
            ("restore-3-quorum-loss", "total-loss-9")
        );
        // What the CLI's `?` makes of it: the crate's error, with the same message.
        let err = crate::Error::from(err);
        assert!(matches!(err, crate::Error::NotComparable(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "reports of different scenarios (restore-3-quorum-loss vs total-loss-9) are not comparable; compare runs of one scenario, or pass --force"
        );
        ensure_comparable(&fixture(), &other, true).unwrap();
        ensure_comparable(&fixture(), &fixture(), false).unwrap();
    }
}
