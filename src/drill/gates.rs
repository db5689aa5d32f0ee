//! The drill's decisions, pure and unit-tested: what an `expect` step concludes from an
//! observation, which gates held, and the verdict.

use crate::model::observation::Observation;
use crate::model::report::{CheckRecord, Gate, GateResult, Rpo, Rto, RtoPhase, Verdict};
use crate::model::scenario::Scenario;

/// What an `expect` step asks of an observation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Expectation {
    pub writable: Option<bool>,
    pub leader: Option<bool>,
    pub serializable_readers: Option<usize>,
    pub members_answering: Option<usize>,
}

/// One check per expectation set: (name, passed, what was expected and observed). Counts
/// are of members that were probed and answered, never of members believed up.
pub fn judge_expectation(
    want: &Expectation,
    obs: &Observation,
) -> Vec<(&'static str, bool, String)> {
    let mut out = vec![];
    if let Some(w) = want.writable {
        let detail = match (w, obs.writable) {
            (false, true) => format!(
                "a write was acknowledged (by {}) although none should be",
                obs.acked_by.as_deref().unwrap_or("?")
            ),
            _ => format!(
                "writable: expected {w}, observed {} ({} {})",
                obs.writable,
                obs.attempts,
                if obs.attempts == 1 {
                    "attempt"
                } else {
                    "attempts"
                }
            ),
        };
        out.push(("writable", w == obs.writable, detail));
    }
    if let Some(l) = want.leader {
        let detail = format!(
            "leader: expected {}, observed {}",
            if l { "one" } else { "none" },
            obs.leader.as_deref().unwrap_or("none")
        );
        out.push(("leader", l == obs.leader.is_some(), detail));
    }
    if let Some(n) = want.serializable_readers {
        let readers = obs.serializable_readers();
        let detail = format!(
            "expected {n}, observed {} [{}]",
            readers.len(),
            readers.join(", ")
        );
        out.push(("serializable-readers", n == readers.len(), detail));
    }
    if let Some(n) = want.members_answering {
        let answering = obs.answering();
        let detail = format!("expected {n}, observed {answering}");
        out.push(("members-answering", n == answering, detail));
    }
    out
}

/// Pass only with evidence: no error, at least one check or gate, and all of them passed.
pub fn verdict(errored: bool, checks: &[CheckRecord], gates: &[GateResult]) -> Verdict {
    let passed = checks.iter().map(|c| c.check.passed);
    Verdict::from_evidence(errored, passed.chain(gates.iter().map(|g| g.passed)))
}

/// What a run measured that gates hold limits on; `None` where it was never measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct Measured<'a> {
    pub rto: Option<&'a Rto>,
    pub rpo: Option<&'a Rpo>,
    pub write_gap: Option<f64>,
    /// The largest lag (revisions) of the snapshots the drill's snapshot steps took.
    pub snapshot_lag: Option<i64>,
}

/// Every gate the scenario sets, against what the run measured; a gate that could not be
/// measured fails.
pub fn evaluate_gates(s: &Scenario, m: Measured<'_>) -> Vec<GateResult> {
    let Measured {
        rto,
        rpo,
        write_gap,
        snapshot_lag,
    } = m;
    let mut g = vec![];
    let mut gate = |name: Gate, limit: f64, actual: Option<f64>| {
        g.push(GateResult {
            passed: actual.is_some_and(|a| a <= limit),
            name,
            limit,
            actual,
        });
    };
    if let Some(l) = &s.gates.max_rto_s {
        // An RTO is whole only once the restored cluster was verified; a part is no measure.
        let whole = rto.filter(|r| r.phases.iter().any(|p| p.name == RtoPhase::Verified));
        gate(Gate::MaxRtoS, *l.get_ref(), whole.map(|r| r.total_s));
    }
    for (phase, l) in &s.gates.max_phase_s {
        // Validation refused unknown phases.
        let Some(phase) = RtoPhase::parse(phase) else {
            continue;
        };
        let actual = rto.and_then(|r| r.phases.iter().find(|p| p.name == phase));
        gate(
            Gate::MaxPhaseS(phase),
            *l.get_ref(),
            actual.map(|p| p.seconds),
        );
    }
    if let Some(l) = s.gates.max_rpo_writes {
        gate(Gate::MaxRpoWrites, l as f64, rpo.map(|r| r.writes as f64));
    }
    if let Some(l) = &s.gates.max_write_gap_s {
        gate(Gate::MaxWriteGapS, *l.get_ref(), write_gap);
    }
    if let Some(l) = s.gates.max_snapshot_lag {
        gate(
            Gate::MaxSnapshotLag,
            l as f64,
            snapshot_lag.map(|x| x as f64),
        );
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::observation::MemberProbe;
    use crate::model::report::{Check, PhaseRecord};

    fn obs(writable: bool, leader: bool, readers: usize, answering: usize) -> Observation {
        Observation {
            writable,
            acked_by: writable.then(|| "etcd-1".into()),
            first_write_ms: writable.then_some(20),
            leader_seen_ms: None,
            leader: leader.then(|| "etcd-1".into()),
            members: (0..answering)
                .map(|i| MemberProbe {
                    member: format!("etcd-{}", i + 1),
                    answered: true,
                    linearizable_read: writable,
                    serializable_read: i < readers,
                    leader: None,
                    unreachable: None,
                })
                .collect(),
            elapsed_ms: 100,
            attempts: 1,
            writes: vec![],
        }
    }

    #[test]
    fn each_expectation_passes_when_it_holds_and_fails_when_it_does_not() {
        let o = obs(true, true, 3, 3);
        let cases = [
            (
                Expectation {
                    writable: Some(true),
                    ..Default::default()
                },
                true,
            ),
            (
                Expectation {
                    writable: Some(false),
                    ..Default::default()
                },
                false,
            ),
            (
                Expectation {
                    leader: Some(true),
                    ..Default::default()
                },
                true,
            ),
            (
                Expectation {
                    leader: Some(false),
                    ..Default::default()
                },
                false,
            ),
            (
                Expectation {
                    serializable_readers: Some(3),
                    ..Default::default()
                },
                true,
            ),
            (
                Expectation {
                    serializable_readers: Some(2),
                    ..Default::default()
                },
                false,
            ),
            (
                Expectation {
                    members_answering: Some(3),
                    ..Default::default()
                },
                true,
            ),
            (
                Expectation {
                    members_answering: Some(4),
                    ..Default::default()
                },
                false,
            ),
        ];
        for (want, pass) in cases {
            let got = judge_expectation(&want, &o);
            assert_eq!(got.len(), 1, "{want:?}");
            assert_eq!(got[0].1, pass, "{want:?}: {}", got[0].2);
        }
        // And the other way round: a cluster without quorum.
        let down = obs(false, false, 1, 2);
        let want = Expectation {
            writable: Some(false),
            leader: Some(false),
            serializable_readers: Some(1),
            members_answering: Some(2),
        };
        assert!(judge_expectation(&want, &down).iter().all(|c| c.1));
        let wrong = Expectation {
            writable: Some(true),
            leader: Some(true),
            serializable_readers: Some(2),
            members_answering: Some(3),
        };
        assert!(judge_expectation(&wrong, &down).iter().all(|c| !c.1));
    }

    #[test]
    fn an_rto_that_never_reached_verified_fails_its_gate() {
        let s = crate::model::scenario::parse(
            "t.toml",
            "name = \"t\"\n[cluster]\nsize = 1\n[gates]\nmax_rto_s = 60\n[[steps]]\nkind = \"wait\"\nseconds = 0\n",
        )
        .unwrap();
        let phase = |name: RtoPhase| PhaseRecord { name, seconds: 1.0 };
        let partial = Rto {
            start_s: None,
            total_s: 2.0,
            phases: vec![phase(RtoPhase::StopSurvivors), phase(RtoPhase::Restore)],
        };
        let g = evaluate_gates(
            &s,
            Measured {
                rto: Some(&partial),
                ..Default::default()
            },
        );
        assert!(!g[0].passed && g[0].actual.is_none(), "{g:?}");
        let whole = Rto {
            start_s: None,
            total_s: 3.0,
            phases: vec![
                phase(RtoPhase::StopSurvivors),
                phase(RtoPhase::Restore),
                phase(RtoPhase::Verified),
            ],
        };
        let g = evaluate_gates(
            &s,
            Measured {
                rto: Some(&whole),
                ..Default::default()
            },
        );
        assert!(g[0].passed && g[0].actual == Some(3.0), "{g:?}");
        assert!(!evaluate_gates(&s, Measured::default())[0].passed);
    }

    #[test]
    fn no_evidence_is_no_pass() {
        assert_eq!(verdict(false, &[], &[]), Verdict::Fail);
        let ok = CheckRecord {
            step: 1,
            check: Check::new("writable", true, ""),
        };
        assert_eq!(
            verdict(false, std::slice::from_ref(&ok), &[]),
            Verdict::Pass
        );
        assert_eq!(verdict(true, std::slice::from_ref(&ok), &[]), Verdict::Fail);
        let mut bad = ok.clone();
        bad.check.passed = false;
        assert_eq!(verdict(false, &[ok, bad], &[]), Verdict::Fail);
        let failed_gate = GateResult {
            name: Gate::MaxRtoS,
            limit: 1.0,
            actual: None,
            passed: false,
        };
        assert_eq!(
            verdict(false, &[], std::slice::from_ref(&failed_gate)),
            Verdict::Fail
        );
    }
}
