//! The drill report's data model (`report.json`) and the restore drill's text summary; the
//! report files are rendered in `render`.

use crate::procedures::recover::RestoreDrillReport;

/// The restore drill's human summary: verdict, RPO, RTO by phase, and each check.
pub fn restore_drill_text(r: &RestoreDrillReport) -> String {
    let mut s = format!(
        "restore drill: {} — {} members, etcd {} (restored with {}), {} keys loaded, seed {}\n",
        r.verdict.to_uppercase(),
        r.size,
        r.etcd_version,
        r.restored_with,
        r.keys_loaded,
        r.seed
    );
    s.push_str(&format!(
        "snapshot {} ({} bytes, revision {}, sha256 {}…) saved from {}\n",
        r.snapshot.file_name(),
        r.snapshot.size,
        r.snapshot_status.revision,
        &r.snapshot.sha256[..12.min(r.snapshot.sha256.len())],
        r.snapshot_saved_from
    ));
    s.push_str(&format!(
        "RPO: {} acknowledged writes lost ({} revisions)\n",
        r.rpo_writes, r.rpo_revisions
    ));
    s.push_str(&format!("RTO: {:.2}s\n", r.rto_s));
    for p in &r.phases {
        s.push_str(&format!("  {:<18} {:>7.2}s\n", p.name, p.seconds));
    }
    for p in &r.restore_per_member {
        s.push_str(&format!("    restore {:<9} {:>7.2}s\n", p.name, p.seconds));
    }
    for c in &r.checks {
        s.push_str(&format!(
            "[{}] {}: {}\n",
            if c.passed { "ok" } else { "FAIL" },
            c.name,
            c.detail
        ));
    }
    if let Some(e) = &r.error {
        s.push_str(&format!("[FAIL] recovery stopped: {e}\n"));
    }
    s
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
    pub probes: Vec<ProbeRecord>,
    pub snapshots: Vec<SnapshotRecord>,
    pub rto: Option<Rto>,
    pub rpo: Option<Rpo>,
    pub checks: Vec<CheckRecord>,
    pub gates: Vec<GateResult>,
    /// The fault-tolerance table, for table scenarios: (size, majority, tolerance, cells
    /// as (failed, predicted_writable, observed_writable)).
    pub table: Option<Vec<TableRow>>,
    /// "pass" or "fail".
    pub verdict: String,
    /// Why the run stopped early, if it did.
    pub error: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StepRecord {
    pub index: usize,
    /// load, snapshot, fault, expect, heal, wait, restore, replace-member, verify, quorum-table
    pub kind: String,
    /// Human description, e.g. "fault permanent count:2".
    pub title: String,
    /// Offset from the run's start.
    pub start_s: f64,
    pub seconds: f64,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FaultEventRecord {
    pub at_s: f64,
    pub member: String,
    pub fault: String,
    pub role: String,
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
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Rto {
    pub total_s: f64,
    pub phases: Vec<PhaseRecord>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PhaseRecord {
    pub name: String,
    pub seconds: f64,
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

/// An expectation or verification check: something the scenario says must hold.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CheckRecord {
    pub step: usize,
    pub name: String,
    pub passed: bool,
    pub detail: String,
    /// How long a verification check took (they run concurrently, so these overlap);
    /// absent for expectations, which are judged from an observation already made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct GateResult {
    /// e.g. "max_rto_s", "max_phase_s.restore", "max_rpo_writes", "max_write_gap_s"
    pub name: String,
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
        self.verdict == "pass"
    }
}
