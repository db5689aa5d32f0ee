//! Reports to render and compare in tests: one restore run that fails a check and two
//! gates, the fault-tolerance table run, and builders for their records.

use crate::model::compare::CompareOptions;
use crate::model::report::{
    Check, CheckRecord, DrillReport, FaultEventRecord, GateResult, PhaseRecord, ProbeRecord, Rpo,
    Rto, SnapshotRecord, StepRecord, TableRow, WriteWindow,
};

/// A typed report word (verdict, phase, gate, fault, role, step kind) from its spelling
/// in `report.json`.
pub(crate) fn word<T: serde::de::DeserializeOwned>(s: &str) -> T {
    serde_json::from_value(serde_json::Value::String(s.into())).expect("a known word")
}

pub(crate) fn step(
    index: usize,
    kind: &str,
    title: &str,
    start_s: f64,
    seconds: f64,
    ok: bool,
    detail: &str,
) -> StepRecord {
    StepRecord {
        index,
        kind: word(kind),
        title: title.into(),
        start_s,
        seconds,
        ok,
        detail: detail.into(),
    }
}

pub(crate) fn probe(at_s: f64, step: usize, writable: bool, leader: Option<&str>) -> ProbeRecord {
    ProbeRecord {
        at_s,
        step,
        writable,
        leader: leader.map(Into::into),
        serializable_readers: vec!["etcd-1".into()],
        first_write_ms: writable.then_some(140),
    }
}

fn check(step: usize, name: &str, passed: bool, detail: &str) -> CheckRecord {
    CheckRecord {
        step,
        check: Check::new(name, passed, detail),
    }
}

fn gate(name: &str, limit: f64, actual: Option<f64>, passed: bool) -> GateResult {
    GateResult {
        name: word(name),
        limit,
        actual,
        passed,
    }
}

/// A 3-member restore: data loaded, snapshot taken, more data loaded, quorum lost for
/// good, restored from the snapshot, verified. One check and two gates fail.
pub(crate) fn fixture() -> DrillReport {
    let phases = [
        ("stop-survivors", 1.32),
        ("snapshot-checked", 0.41),
        ("restore", 8.40),
        ("started", 1.95),
        ("leader-elected", 1.12),
        ("first-write", 0.14),
        ("verified", 1.03),
    ];
    DrillReport {
        schema_version: crate::model::report::REPORT_SCHEMA_VERSION,
        scenario: "restore-3-quorum-loss".into(),
        description: "Lose 2 of 3 members for good, restore from the last snapshot".into(),
        file: "scenarios/restore-3-quorum-loss.toml".into(),
        seed: 42,
        repetition: 1,
        etcd_version: "v3.5.17".into(),
        image: "etcd-drill/etcd:v3.5.17".into(),
        cluster_size: 3,
        tls: false,
        started_at_ms: 1_718_000_000_000,
        finished_at_ms: 1_718_000_025_320,
        steps: vec![
            step(
                1,
                "load",
                "load 1000 keys",
                0.0,
                2.10,
                true,
                "1000 keys, 1000 acknowledged",
            ),
            step(
                2,
                "snapshot",
                "snapshot before",
                2.10,
                0.85,
                true,
                "revision 1003",
            ),
            step(
                3,
                "load",
                "load 200 keys",
                2.95,
                1.20,
                true,
                "200 keys after the snapshot",
            ),
            step(
                4,
                "fault",
                "fault permanent count:2",
                4.15,
                1.40,
                true,
                "etcd-2, etcd-3 lost",
            ),
            step(
                5,
                "expect",
                "expect not writable",
                5.55,
                3.00,
                true,
                "no write acknowledged",
            ),
            step(
                6,
                "restore",
                "restore from before",
                8.55,
                14.37,
                true,
                "3 members restored",
            ),
            step(
                7,
                "verify",
                "verify",
                22.92,
                1.80,
                false,
                "1 of 4 checks failed",
            ),
            step(
                8,
                "expect",
                "expect writable",
                24.72,
                0.60,
                true,
                "write acknowledged",
            ),
        ],
        actions: vec![],
        fault_events: vec![
            FaultEventRecord {
                at_s: 4.20,
                member: "etcd-2".into(),
                fault: word("permanent"),
                role: word("follower"),
                step: None,
                by: None,
            },
            FaultEventRecord {
                at_s: 4.90,
                member: "etcd-3".into(),
                fault: word("permanent"),
                role: word("leader"),
                step: None,
                by: None,
            },
            // The restore stopping the survivor: the harness's own action, not a fault.
            FaultEventRecord {
                at_s: 8.60,
                member: "etcd-1".into(),
                fault: word("stop"),
                role: word("follower"),
                step: None,
                by: None,
            },
        ],
        history: vec![],
        history_check: None,
        write_windows: vec![
            WriteWindow {
                from_s: 0.0,
                to_s: 4.9,
                writable: true,
            },
            WriteWindow {
                from_s: 4.9,
                to_s: 8.55,
                writable: false,
            },
        ],
        probes: vec![
            probe(0.50, 1, true, Some("etcd-3")),
            probe(5.60, 5, false, None),
            probe(7.50, 5, false, None),
            probe(21.00, 6, true, Some("etcd-1")),
            probe(24.80, 8, true, Some("etcd-1")),
        ],
        snapshots: vec![SnapshotRecord {
            name: "before".into(),
            file: "snapshots/before.db".into(),
            revision: 1003,
            size: 2_125_856,
            sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
            member: "etcd-1".into(),
            at_s: 2.50,
            lag: None,
        }],
        rto: Some(Rto {
            start_s: Some(8.55),
            total_s: 14.37,
            phases: phases
                .iter()
                .map(|(n, s)| PhaseRecord {
                    name: word(n),
                    seconds: *s,
                })
                .collect(),
        }),
        rpo: Some(Rpo {
            writes: 200,
            revisions: 200,
            dataset_writes: 200,
            harness_writes: 0,
        }),
        checks: vec![
            check(5, "not-writable", true, "no write acknowledged within 3s"),
            check(
                7,
                "keys-present",
                true,
                "1000/1000 keys from the snapshot present",
            ),
            check(7, "cluster-id-changed", true, "new cluster id"),
            check(
                7,
                "revision>=snapshot",
                false,
                "revision 998 < snapshot revision 1003 & \"compacted\"",
            ),
            check(7, "members", true, "3 members: etcd-1, etcd-2, etcd-3"),
            check(8, "writable", true, "write acknowledged in 140 ms"),
        ],
        gates: vec![
            gate("max_rto_s", 30.0, Some(14.37), true),
            gate("max_phase_s.restore", 5.0, Some(8.40), false),
            gate("max_phase_s.leader-elected", 3.0, Some(1.12), true),
            gate("max_rpo_writes", 250.0, Some(200.0), true),
            gate("max_write_gap_s", 5.0, None, false),
        ],
        table: None,
        verdict: word("fail"),
        error: None,
        backup: None,
    }
}

/// The fault-tolerance table for 3 and 5 members; one cell disagrees with the table.
pub(crate) fn table_fixture() -> DrillReport {
    let cells = |n: usize, disagree: Option<usize>| -> Vec<(usize, bool, bool)> {
        (0..=n)
            .map(|k| {
                // Survivors against the majority ⌊N/2⌋+1, as the table states it.
                #[allow(clippy::int_plus_one)]
                let predicted = n - k >= n / 2 + 1;
                (
                    k,
                    predicted,
                    if Some(k) == disagree {
                        !predicted
                    } else {
                        predicted
                    },
                )
            })
            .collect()
    };
    DrillReport {
        scenario: "quorum-table".into(),
        description: "The seed's fault-tolerance table, checked by observation".into(),
        file: "scenarios/quorum-table.toml".into(),
        steps: vec![step(
            1,
            "quorum-table",
            "quorum-table sizes:[3,5]",
            0.0,
            61.4,
            false,
            "1 cell disagrees",
        )],
        fault_events: vec![],
        actions: vec![],
        probes: vec![],
        write_windows: vec![],
        snapshots: vec![],
        rto: None,
        rpo: None,
        checks: vec![check(
            1,
            "table-agrees",
            false,
            "size 3, k=2: observed writable, predicted not",
        )],
        gates: vec![],
        table: Some(vec![
            TableRow {
                size: 3,
                majority: 2,
                tolerance: 1,
                cells: cells(3, Some(2)),
            },
            TableRow {
                size: 5,
                majority: 3,
                tolerance: 2,
                cells: cells(5, None),
            },
        ]),
        finished_at_ms: 1_718_000_061_400,
        ..fixture()
    }
}

fn fault(at_s: f64, member: &str, fault: &str, role: &str) -> FaultEventRecord {
    FaultEventRecord {
        at_s,
        member: member.into(),
        fault: word(fault),
        role: word(role),
        step: None,
        by: None,
    }
}

/// The shipped quorum-loss-5 as it passes: two of five lost for good at once (tolerated),
/// the leader a third (quorum lost, as the table predicts), then the restore.
pub(crate) fn quorum_loss_5() -> DrillReport {
    let r = passing();
    let mut rto = r.rto.clone().expect("the fixture restores");
    rto.start_s = Some(10.7);
    DrillReport {
        scenario: "quorum-loss-5".into(),
        description: "5 members: 2 permanent failures tolerated, a 3rd loses quorum, restore"
            .into(),
        file: "scenarios/quorum-loss-5.toml".into(),
        cluster_size: 5,
        finished_at_ms: r.started_at_ms + 26_800,
        steps: vec![
            step(1, "load", "load 1000 keys", 0.0, 2.0, true, ""),
            step(2, "snapshot", "snapshot", 2.0, 0.6, true, "revision 1003"),
            step(3, "fault", "fault permanent count:2", 2.6, 1.2, true, ""),
            step(4, "expect", "expect writable leader", 3.8, 3.0, true, ""),
            step(5, "fault", "fault permanent count:1", 6.8, 0.9, true, ""),
            step(6, "expect", "expect not writable", 7.7, 3.0, true, ""),
            step(
                7,
                "restore",
                "restore",
                10.7,
                12.0,
                true,
                "5 members restored",
            ),
            step(8, "verify", "verify", 22.7, 1.5, true, "4 checks passed"),
        ],
        fault_events: vec![
            fault(2.70, "etcd-2", "permanent", "follower"),
            fault(2.72, "etcd-4", "permanent", "follower"),
            fault(6.90, "etcd-1", "permanent", "leader"),
            fault(10.80, "etcd-3", "stop", "follower"),
            fault(10.80, "etcd-5", "stop", "follower"),
        ],
        probes: vec![
            probe(4.0, 4, true, Some("etcd-1")),
            probe(8.0, 6, false, None),
            probe(24.2, 7, true, Some("etcd-3")),
            probe(26.0, 8, true, Some("etcd-3")),
        ],
        write_windows: vec![
            WriteWindow {
                from_s: 0.0,
                to_s: 6.9,
                writable: true,
            },
            WriteWindow {
                from_s: 6.9,
                to_s: 10.7,
                writable: false,
            },
        ],
        rto: Some(rto),
        ..r
    }
}

pub(crate) fn passing() -> DrillReport {
    let mut r = fixture();
    r.verdict = word("pass");
    for c in &mut r.checks {
        c.passed = true;
    }
    for st in &mut r.steps {
        st.ok = true;
    }
    r.gates.retain(|g| g.passed);
    r
}

pub(crate) fn scale_rto(r: &mut DrillReport, f: f64) {
    let rto = r.rto.as_mut().unwrap();
    rto.total_s *= f;
    for p in &mut rto.phases {
        p.seconds *= f;
    }
}

pub(crate) fn opts(tolerance: f64, min_seconds: f64, rpo_writes: f64) -> CompareOptions {
    CompareOptions {
        tolerance,
        min_seconds,
        rpo_writes,
    }
}

pub(crate) fn set_phase(r: &mut DrillReport, name: &str, seconds: f64) {
    let rto = r.rto.as_mut().unwrap();
    let p = rto
        .phases
        .iter_mut()
        .find(|p| p.name.as_str() == name)
        .unwrap();
    rto.total_s += seconds - p.seconds;
    p.seconds = seconds;
}

pub(crate) fn drop_phase(r: &mut DrillReport, name: &str) {
    r.rto
        .as_mut()
        .unwrap()
        .phases
        .retain(|p| p.name.as_str() != name);
}

pub(crate) fn set_rpo(r: &mut DrillReport, writes: usize) {
    r.rpo = Some(Rpo {
        writes,
        revisions: writes as i64,
        dataset_writes: writes,
        harness_writes: 0,
    });
}
