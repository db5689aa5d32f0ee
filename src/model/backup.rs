//! Backups as data: a snapshot file and what etcd says of it, and the reports of the
//! restore drill and of `verify-snapshot`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Invalid;
use super::expect::BackupFacts;
use super::fault::FaultEvent;
use super::report::{
    Check, CheckRecord, DrillReport, PhaseRecord, REPORT_SCHEMA_VERSION, Rto, SnapshotRecord,
    StepRecord, Verdict,
};
use super::scenario::StepKind;

/// A snapshot file on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotFile {
    pub path: PathBuf,
    pub size: u64,
    /// sha256 of the whole file, to tell snapshots apart in reports.
    pub sha256: String,
    /// The member it was saved from, if etcd-drill saved it.
    pub member: Option<String>,
}

impl SnapshotFile {
    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// What the file check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Integrity {
    /// The sha256 trailer matches the content.
    HashVerified,
    /// No trailer (a `db` copied from a data dir), accepted because of --skip-hash-check.
    NoHashSkipped,
}

/// What `etcdutl snapshot status -w json` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotStatus {
    pub hash: u64,
    pub revision: i64,
    #[serde(rename = "totalKey")]
    pub total_key: u64,
    #[serde(rename = "totalSize")]
    pub total_size: u64,
}

/// How long one member's restore took (the restore tool's own time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberTime {
    pub name: String,
    pub seconds: f64,
}

/// How much of the cluster the disaster takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Disaster {
    /// A majority lost for good: quorum is gone.
    Quorum,
    /// Every member lost for good.
    All,
}

impl std::str::FromStr for Disaster {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        match s {
            "quorum" => Ok(Disaster::Quorum),
            "all" => Ok(Disaster::All),
            _ => Err(Invalid::Input(format!(
                "invalid disaster {s:?}: quorum or all"
            ))),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RestoreDrillReport {
    pub verdict: Verdict,
    pub size: usize,
    pub etcd_version: String,
    pub restored_with: String,
    pub seed: u64,
    pub tls: bool,
    pub keys_loaded: usize,
    pub keys_verified: usize,
    pub rpo_writes: usize,
    pub rpo_revisions: i64,
    /// How long inflicting the disaster took (not part of the RTO).
    pub disaster_s: f64,
    /// Disaster declared → verified.
    pub rto_s: f64,
    pub phases: Vec<PhaseRecord>,
    pub restore_per_member: Vec<MemberTime>,
    pub snapshot: SnapshotFile,
    pub snapshot_status: SnapshotStatus,
    pub snapshot_saved_from: String,
    pub disaster: Disaster,
    pub fault_events: Vec<FaultEvent>,
    pub checks: Vec<Check>,
    /// Why the recovery stopped before it was verified (the restore tool failed, the
    /// cluster never became healthy, no write succeeded): a failed drill, not bad input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RestoreDrillReport {
    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Pass
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SnapshotCheckReport {
    pub verdict: Verdict,
    pub file: SnapshotFile,
    pub integrity: Integrity,
    pub status: SnapshotStatus,
    pub members: usize,
    pub etcd_version: String,
    pub keys: usize,
    pub restore_s: f64,
    pub checks: Vec<Check>,
    /// The image the throwaway cluster ran.
    pub image: String,
    /// The restore's phases, as every restore reports them, then `verified`.
    pub phases: Vec<PhaseRecord>,
    /// Where the backup came from and what it holds.
    pub backup: BackupFacts,
}

impl SnapshotCheckReport {
    /// The scenario name verify-snapshot reports carry (so `report compare` pairs them).
    pub const SCENARIO: &'static str = "verify-snapshot";

    /// The same verification as a drill report, so every report file and `report compare`
    /// work on it: a restore step and a verify step, the restore's phases as the RTO.
    pub fn to_drill_report(&self, started_at_ms: u64, finished_at_ms: u64) -> DrillReport {
        let total_s = finished_at_ms.saturating_sub(started_at_ms) as f64 / 1000.0;
        let verify_s: f64 = self
            .phases
            .iter()
            .filter(|p| p.name == super::report::RtoPhase::Verified)
            .map(|p| p.seconds)
            .sum();
        let source = &self.backup.origin.source;
        let step = |index, kind, title: String, start_s, seconds, detail: String| StepRecord {
            index,
            kind,
            title,
            start_s,
            seconds,
            ok: index == 1 || self.checks.iter().all(|c| c.passed),
            detail,
        };
        let restore_detail = format!(
            "{} ({} bytes, revision {}) restored into {} members",
            self.backup.origin.object, self.file.size, self.status.revision, self.members
        );
        let failed = self.checks.iter().filter(|c| !c.passed).count();
        let verify_detail = format!(
            "{} keys; {} checks, {failed} failed",
            self.keys,
            self.checks.len()
        );
        let restore_start = (total_s - self.restore_s - verify_s).max(0.0);
        DrillReport {
            write_windows: vec![],
            history: vec![],
            history_check: None,
            schema_version: REPORT_SCHEMA_VERSION,
            scenario: Self::SCENARIO.into(),
            description: format!("verify-snapshot {source}"),
            file: source.clone(),
            seed: 0,
            repetition: 1,
            etcd_version: self.etcd_version.clone(),
            image: self.image.clone(),
            cluster_size: self.members,
            tls: false,
            started_at_ms,
            finished_at_ms,
            steps: vec![
                step(
                    1,
                    StepKind::Restore,
                    format!("restore {}", self.backup.origin.object),
                    restore_start,
                    self.restore_s,
                    restore_detail,
                ),
                step(
                    2,
                    StepKind::Verify,
                    "verify".into(),
                    restore_start + self.restore_s,
                    verify_s,
                    verify_detail,
                ),
            ],
            fault_events: vec![],
            actions: vec![],
            probes: vec![],
            snapshots: vec![SnapshotRecord {
                name: "backup".into(),
                file: self.file.file_name(),
                revision: self.status.revision,
                size: self.file.size,
                sha256: self.file.sha256.clone(),
                member: String::new(),
                at_s: 0.0,
                lag: None,
            }],
            rto: Some(Rto {
                start_s: None,
                total_s: self.phases.iter().map(|p| p.seconds).sum(),
                phases: self.phases.clone(),
            }),
            rpo: None,
            checks: self
                .checks
                .iter()
                .map(|c| CheckRecord {
                    step: 2,
                    check: c.clone(),
                })
                .collect(),
            gates: vec![],
            table: None,
            verdict: self.verdict,
            error: None,
            backup: Some(self.backup.clone()),
        }
    }
}
