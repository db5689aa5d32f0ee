//! The drill report (`report.json`): everything one scenario run produced, and the typed
//! words it is made of — verdicts, RTO phases, gates, checks.

use serde::{Deserialize, Serialize};

use super::expect::BackupFacts;
use super::fault::{Actor, FaultKind, HarnessAction, Role};
use super::scenario::StepKind;

/// How a run ended. Only `Pass` exits 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Pass,
    Fail,
    /// Stopped by Ctrl-C or SIGTERM.
    Interrupted,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Interrupted => "interrupted",
        }
    }

    /// Pass only with evidence: no error, at least one check, and every check passed.
    pub fn from_evidence(errored: bool, passed: impl IntoIterator<Item = bool>) -> Verdict {
        let mut any = false;
        let mut all = true;
        for p in passed {
            any = true;
            all &= p;
        }
        if !errored && any && all {
            Verdict::Pass
        } else {
            Verdict::Fail
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The phases of an RTO, in order: from the disaster declared to the restored cluster verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RtoPhase {
    StopSurvivors,
    SnapshotChecked,
    Restore,
    Started,
    LeaderElected,
    FirstWrite,
    Verified,
}

impl RtoPhase {
    pub const ALL: [RtoPhase; 7] = [
        RtoPhase::StopSurvivors,
        RtoPhase::SnapshotChecked,
        RtoPhase::Restore,
        RtoPhase::Started,
        RtoPhase::LeaderElected,
        RtoPhase::FirstWrite,
        RtoPhase::Verified,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RtoPhase::StopSurvivors => "stop-survivors",
            RtoPhase::SnapshotChecked => "snapshot-checked",
            RtoPhase::Restore => "restore",
            RtoPhase::Started => "started",
            RtoPhase::LeaderElected => "leader-elected",
            RtoPhase::FirstWrite => "first-write",
            RtoPhase::Verified => "verified",
        }
    }

    pub fn parse(s: &str) -> Option<RtoPhase> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl std::fmt::Display for RtoPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, not `write_str`: a column of phases (`{:<18}`) must line up.
        f.pad(self.as_str())
    }
}

/// A limit a scenario sets; written in reports as `max_rto_s`, `max_phase_s.<phase>`, …
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Gate {
    /// Total RTO, disaster declared → verified.
    MaxRtoS,
    MaxPhaseS(RtoPhase),
    /// Acknowledged writes the restore lost.
    MaxRpoWrites,
    /// Longest stretch without an acknowledged write while faults were injected.
    MaxWriteGapS,
    /// Revisions a snapshot step's file was behind the last acknowledged write.
    MaxSnapshotLag,
}

const PHASE_GATE_PREFIX: &str = "max_phase_s.";

impl Gate {
    pub fn name(self) -> String {
        match self {
            Gate::MaxRtoS => "max_rto_s".into(),
            Gate::MaxPhaseS(p) => format!("{PHASE_GATE_PREFIX}{p}"),
            Gate::MaxRpoWrites => "max_rpo_writes".into(),
            Gate::MaxWriteGapS => "max_write_gap_s".into(),
            Gate::MaxSnapshotLag => "max_snapshot_lag".into(),
        }
    }

    /// Whether the gate's figures are seconds (the others count writes).
    pub fn is_seconds(self) -> bool {
        !matches!(self, Gate::MaxRpoWrites | Gate::MaxSnapshotLag)
    }
}

impl std::fmt::Display for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl From<Gate> for String {
    fn from(g: Gate) -> String {
        g.name()
    }
}

impl TryFrom<String> for Gate {
    type Error = String;
    fn try_from(s: String) -> Result<Gate, String> {
        match s.as_str() {
            "max_rto_s" => Ok(Gate::MaxRtoS),
            "max_rpo_writes" => Ok(Gate::MaxRpoWrites),
            "max_write_gap_s" => Ok(Gate::MaxWriteGapS),
            "max_snapshot_lag" => Ok(Gate::MaxSnapshotLag),
            _ => s
                .strip_prefix(PHASE_GATE_PREFIX)
                .and_then(RtoPhase::parse)
                .map(Gate::MaxPhaseS)
                .ok_or_else(|| format!("unknown gate {s:?}")),
        }
    }
}

/// One check of a verification or an expectation: something that must hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
    /// How long a verification check took (they run concurrently, so these overlap);
    /// absent for expectations, which are judged from an observation already made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
}

impl Check {
    pub fn new(name: &str, passed: bool, detail: impl Into<String>) -> Check {
        Check {
            name: name.to_string(),
            passed,
            detail: detail.into(),
            seconds: None,
        }
    }
}

/// How long one RTO phase took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseRecord {
    pub name: RtoPhase,
    pub seconds: f64,
}

/// Version of the `report.json` schema; bump on incompatible changes.
pub const REPORT_SCHEMA_VERSION: u32 = 1;

/// Everything one scenario run produced: the source of every report file.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DrillReport {
    pub schema_version: u32,
    pub scenario: String,
    pub description: String,
    pub file: String,
    pub seed: u64,
    /// Which repetition this is (1-based) of `repeat`.
    pub repetition: u32,
    pub etcd_version: String,
    pub image: String,
    pub cluster_size: usize,
    pub tls: bool,
    /// Milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    pub finished_at_ms: u64,
    pub steps: Vec<StepRecord>,
    pub fault_events: Vec<FaultEventRecord>,
    /// What the harness did to members besides faults, on the same clock.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<ActionRecord>,
    pub probes: Vec<ProbeRecord>,
    pub snapshots: Vec<SnapshotRecord>,
    pub rto: Option<Rto>,
    pub rpo: Option<Rpo>,
    pub checks: Vec<CheckRecord>,
    pub gates: Vec<GateResult>,
    /// The fault-tolerance table, for table scenarios: (size, majority, tolerance, cells
    /// as (failed, predicted_writable, observed_writable)).
    pub table: Option<Vec<TableRow>>,
    pub verdict: Verdict,
    /// Why the run stopped early, if it did.
    pub error: Option<String>,
    /// The check of the workload's history, when the scenario has a workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_check: Option<super::linearize::HistoryReport>,
    /// What the workload's clients saw (`history.jsonl`, not part of report.json).
    #[serde(skip)]
    pub history: Vec<super::history::Record>,
    /// When the background writer ran: writable and unwritable stretches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub write_windows: Vec<WriteWindow>,
    /// For a verification of a user's backup: where it came from and what it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupFacts>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StepRecord {
    pub index: usize,
    pub kind: StepKind,
    /// Human description, e.g. "fault permanent count:2".
    pub title: String,
    /// Offset from the run's start.
    pub start_s: f64,
    pub seconds: f64,
    pub ok: bool,
    pub detail: String,
}

/// A fault as it took effect, on the run's clock.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FaultEventRecord {
    pub at_s: f64,
    pub member: String,
    pub fault: FaultKind,
    pub role: Role,
    /// The step that injected it (from 1); absent in reports written before 2026-12.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    /// The scenario's fault or the harness's own action; absent in older reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<Actor>,
}

/// A harness action that is no fault (a lost member's container and volume deleted).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ActionRecord {
    pub at_s: f64,
    pub seconds: f64,
    pub member: String,
    pub action: HarnessAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
}

/// One availability observation (an `expect` step or a restore's own probes).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ProbeRecord {
    pub at_s: f64,
    pub step: usize,
    pub writable: bool,
    pub leader: Option<String>,
    pub serializable_readers: Vec<String>,
    pub first_write_ms: Option<u64>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SnapshotRecord {
    pub name: String,
    pub file: String,
    pub revision: i64,
    pub size: u64,
    pub sha256: String,
    pub member: String,
    pub at_s: f64,
    /// How far the member was behind what had been acknowledged when the step began;
    /// absent when it had caught up (or for a backup command's file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag: Option<SnapshotLag>,
}

/// The lag of a snapshot at `revision` taken when `acked` was the last acknowledged
/// revision; `None` when it holds all of it. `keys` counts the dataset keys it misses.
pub fn snapshot_lag(
    acked: i64,
    revision: i64,
    keys: impl FnOnce() -> usize,
) -> Option<SnapshotLag> {
    (revision < acked).then(|| SnapshotLag {
        revisions: acked - revision,
        keys: keys(),
    })
}

/// What a snapshot is missing of what was acknowledged before it was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SnapshotLag {
    /// The last acknowledged revision minus the snapshot's revision.
    pub revisions: i64,
    /// Dataset keys acknowledged above the snapshot's revision.
    pub keys: usize,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Rto {
    pub total_s: f64,
    pub phases: Vec<PhaseRecord>,
    /// When the disaster was declared and the RTO clock started, in seconds since the run
    /// started; absent where the RTO has no run around it (`verify-snapshot`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_s: Option<f64>,
}

/// A stretch of the background writer's run: writable (writes acknowledged at its normal
/// pace) or not (no write acknowledged for [`UNWRITABLE_AFTER_S`] or longer).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WriteWindow {
    pub from_s: f64,
    pub to_s: f64,
    pub writable: bool,
}

/// How long without an acknowledged write counts as unwritable: ten of the writer's
/// 50 ms beats, well above its round trip on a healthy cluster.
pub const UNWRITABLE_AFTER_S: f64 = 0.5;

/// The writer's run from `from` to `to` as alternating windows, given its gaps (stretches
/// without an acknowledged write, in order). Gaps shorter than [`UNWRITABLE_AFTER_S`]
/// are the writer's normal pace; overlapping or out-of-range gaps are clipped.
pub fn write_windows(from: f64, to: f64, gaps: &[(f64, f64)]) -> Vec<WriteWindow> {
    let mut out: Vec<WriteWindow> = vec![];
    let mut push = |from_s: f64, to_s: f64, writable: bool| {
        if to_s <= from_s {
            return;
        }
        match out.last_mut() {
            Some(w) if w.writable == writable && w.to_s >= from_s => w.to_s = w.to_s.max(to_s),
            _ => out.push(WriteWindow {
                from_s,
                to_s,
                writable,
            }),
        }
    };
    let mut at = from;
    for &(a, b) in gaps {
        let (a, b) = (a.clamp(at, to), b.clamp(at, to));
        if b - a < UNWRITABLE_AFTER_S {
            continue;
        }
        push(at, a, true);
        push(a, b, false);
        at = b;
    }
    push(at, to, true);
    out
}

/// The stretches of `from..to` without an acknowledged write, given every write
/// acknowledged in it (by anyone: the background writer, the workload's clients; in any
/// order): the longest stretch, and those of [`UNWRITABLE_AFTER_S`] or longer in order.
/// Acknowledgements outside the span are ignored.
pub fn ack_gaps(from: f64, to: f64, acks: &[f64]) -> (f64, Vec<(f64, f64)>) {
    let mut at: Vec<f64> = acks
        .iter()
        .copied()
        .filter(|a| a.is_finite() && (from..=to).contains(a))
        .collect();
    at.sort_by(f64::total_cmp);
    let mut longest = 0.0f64;
    let mut gaps = vec![];
    let mut last = from;
    for a in at.into_iter().chain([to]) {
        let d = a - last;
        longest = longest.max(d);
        if d >= UNWRITABLE_AFTER_S {
            gaps.push((last, a));
        }
        last = a;
    }
    (longest, gaps)
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Rpo {
    /// Every acknowledged write the restore lost: the gate's figure.
    pub writes: usize,
    pub revisions: i64,
    /// Of `writes`, the dataset's …
    #[serde(default)]
    pub dataset_writes: usize,
    /// … and the harness's own (background writer, probes).
    #[serde(default)]
    pub harness_writes: usize,
}

/// A check, and the step that made it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CheckRecord {
    pub step: usize,
    #[serde(flatten)]
    pub check: Check,
}

/// A check record reads as its check (`record.passed`, `record.name`).
impl std::ops::Deref for CheckRecord {
    type Target = Check;
    fn deref(&self) -> &Check {
        &self.check
    }
}

impl std::ops::DerefMut for CheckRecord {
    fn deref_mut(&mut self) -> &mut Check {
        &mut self.check
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct GateResult {
    pub name: Gate,
    pub limit: f64,
    /// None when the drill never got far enough to measure it (the gate then fails).
    pub actual: Option<f64>,
    pub passed: bool,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TableRow {
    pub size: usize,
    pub majority: usize,
    pub tolerance: usize,
    pub cells: Vec<(usize, bool, bool)>,
}

impl DrillReport {
    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Pass
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(from_s: f64, to_s: f64, writable: bool) -> WriteWindow {
        WriteWindow {
            from_s,
            to_s,
            writable,
        }
    }

    /// Brute force: the longest gap is the largest distance between neighbours of the
    /// sorted set {from, acks in range, to}, whatever order the acks come in.
    #[test]
    fn ack_gaps_agree_with_a_brute_force_on_random_acks() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..2000 {
            let n = rng.random_range(0..8);
            let acks: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..11.0)).collect();
            let (longest, gaps) = ack_gaps(0.0, 10.0, &acks);
            let mut pts: Vec<f64> = acks
                .iter()
                .copied()
                .filter(|a| (0.0..=10.0).contains(a))
                .collect();
            pts.extend([0.0, 10.0]);
            pts.sort_by(f64::total_cmp);
            let brute = pts.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
            assert!((longest - brute).abs() < 1e-9, "{acks:?}");
            for &(a, b) in &gaps {
                assert!(b - a >= UNWRITABLE_AFTER_S);
                assert!(
                    !acks.iter().any(|x| a < *x && *x < b),
                    "an ack inside a gap: {acks:?}"
                );
            }
        }
    }

    #[test]
    fn a_write_acknowledged_by_anyone_ends_a_gap() {
        // The writer alone saw nothing from 3.7 to 12.2 s; the workload's 31 writes
        // between 3.7 and 5.3 s shrink that stretch to 5.3 to 12.2 s.
        let mut acks = vec![1.0, 2.0, 3.7];
        acks.extend((0..31).map(|i| 3.7 + 1.6 * f64::from(i) / 30.0));
        acks.push(12.2);
        let (longest, gaps) = ack_gaps(0.5, 13.0, &acks);
        assert!((longest - 6.9).abs() < 1e-9, "{longest}");
        // 0.5-1, 1-2, 2-3.7, 5.3-12.2, 12.2-13: nothing inside 3.7-5.3 any more.
        assert_eq!(gaps.len(), 5, "{gaps:?}");
        assert!(
            (gaps[3].0 - 5.3).abs() < 1e-9 && (gaps[3].1 - 12.2).abs() < 1e-9,
            "{gaps:?}"
        );
        assert_eq!(ack_gaps(0.0, 4.0, &[]), (4.0, vec![(0.0, 4.0)]));
    }

    #[test]
    fn the_writers_run_splits_at_its_gaps() {
        assert_eq!(write_windows(1.0, 9.0, &[]), vec![w(1.0, 9.0, true)]);
        // A beat-sized pause is the writer's pace, not an outage.
        assert_eq!(
            write_windows(1.0, 9.0, &[(2.0, 2.2)]),
            vec![w(1.0, 9.0, true)]
        );
        assert_eq!(
            write_windows(1.0, 9.0, &[(2.0, 4.0), (6.0, 9.5)]),
            vec![
                w(1.0, 2.0, true),
                w(2.0, 4.0, false),
                w(4.0, 6.0, true),
                w(6.0, 9.0, false)
            ]
        );
        // Overlapping gaps merge; a gap before the run is clipped to it.
        assert_eq!(
            write_windows(1.0, 9.0, &[(0.0, 3.0), (2.5, 5.0)]),
            vec![w(1.0, 5.0, false), w(5.0, 9.0, true)]
        );
    }
}
