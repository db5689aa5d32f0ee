//! The run's story in time, read from the report alone: which members were in service
//! when, who led, and, for each stretch without an acknowledged write, whether the
//! fault-tolerance table predicts it. The picture draws these; a stretch the table
//! predicts is the drill working, so it must not read as a failure.

use std::collections::BTreeMap;

use super::fault::{FaultKind, Role};
use super::report::{DrillReport, RtoPhase, StepRecord, UNWRITABLE_AFTER_S};
use super::scenario::StepKind;
use super::table::majority;

/// How far a write window may lie from the change that explains it: etcd's default
/// election timeout (1 s). Faults and the writer's gaps are stamped on different clocks,
/// and the first write after quorum returns waits for an election.
pub const SLACK_S: f64 = 1.0;

/// Whether a fault takes its member out of service (`Some(true)`), brings it back
/// (`Some(false)`), or neither.
pub fn takes_out(k: FaultKind) -> Option<bool> {
    match k {
        FaultKind::Permanent
        | FaultKind::Kill
        | FaultKind::Stop
        | FaultKind::Pause
        | FaultKind::Partition
        | FaultKind::WipeData => Some(true),
        FaultKind::Restart | FaultKind::Unpause | FaultKind::Heal => Some(false),
    }
}

/// One member's stretch in one state: in service (`out` is `None`) or out, by that fault.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberSpan {
    pub member: String,
    pub from_s: f64,
    pub to_s: f64,
    pub out: Option<FaultKind>,
}

/// A member seen leading, from its first sighting until another leader (or none) is seen
/// or it is taken out.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaderSpan {
    pub member: String,
    pub from_s: f64,
    pub to_s: f64,
}

/// Why no write was acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Fewer than a majority in service (the fewest `up` of `size`): the table says so.
    QuorumLost { up: usize, size: usize },
    /// The restore: the harness stopped the cluster, and it writes again at its first write.
    Restore,
    /// Enough members in service (at least `up` of `size`), and still nothing acknowledged.
    Unexplained { up: usize, size: usize },
}

impl Cause {
    pub fn expected(self) -> bool {
        !matches!(self, Cause::Unexplained { .. })
    }
}

/// A stretch without an acknowledged write, and why.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outage {
    pub from_s: f64,
    pub to_s: f64,
    pub cause: Cause,
}

fn fin(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

/// `etcd-2` before `etcd-10`: by the number a name ends in, then by name.
fn natural(name: &str) -> (String, u64) {
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (stem, num) = name.split_at(name.len() - digits);
    (stem.to_string(), num.parse().unwrap_or(0))
}

/// The members the picture has a lane for: `etcd-1`…`etcd-N`, then any other name the
/// report mentions (a member that joined under a new name), in natural order.
pub fn members(r: &DrillReport) -> Vec<String> {
    let mut names: Vec<String> = (1..=r.cluster_size).map(|i| format!("etcd-{i}")).collect();
    let seen = r
        .fault_events
        .iter()
        .map(|f| f.member.clone())
        .chain(r.probes.iter().filter_map(|p| p.leader.clone()));
    for n in seen {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    names.sort_by_key(|n| natural(n));
    names
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// A member that joined under a new name takes a permanently lost member's place.
    Join,
    Fault(FaultKind),
    /// A restore's end: every member is back.
    AllBack,
}

/// Every change of service in time order: faults, newcomers, restores' ends.
fn changes(r: &DrillReport, initial: &[String]) -> Vec<(f64, Change, String)> {
    let mut out: Vec<(f64, Change, String)> = r
        .fault_events
        .iter()
        .map(|f| (fin(f.at_s), Change::Fault(f.fault), f.member.clone()))
        .collect();
    let ends = |kinds: &[StepKind]| -> Vec<f64> {
        r.steps
            .iter()
            .filter(|s| kinds.contains(&s.kind))
            .map(|s| fin(s.start_s) + fin(s.seconds).max(0.0))
            .collect()
    };
    for st in r.steps.iter().filter(|s| s.kind == StepKind::Restore) {
        out.push((back_at(r, st), Change::AllBack, String::new()));
    }
    // A newcomer is in service from the end of the restore or replacement before it was
    // first seen: the report records no join of its own.
    let joins = ends(&[StepKind::Restore, StepKind::ReplaceMember]);
    let sightings = r
        .fault_events
        .iter()
        .map(|f| (fin(f.at_s), &f.member))
        .chain(
            r.probes
                .iter()
                .filter_map(|p| p.leader.as_ref().map(|l| (fin(p.at_s), l))),
        );
    let mut first: BTreeMap<&String, f64> = BTreeMap::new();
    for (t, m) in sightings.filter(|(_, m)| !initial.contains(m)) {
        let e = first.entry(m).or_insert(t);
        *e = e.min(t);
    }
    for (m, t) in first {
        let at = joins
            .iter()
            .copied()
            .filter(|j| *j <= t)
            .max_by(f64::total_cmp)
            .unwrap_or(t);
        out.push((at, Change::Join, m.clone()));
    }
    // At one moment a newcomer takes its place before a restore brings the rest back.
    let rank = |c: &Change| match c {
        Change::Join => 0,
        Change::Fault(_) => 1,
        Change::AllBack => 2,
    };
    out.sort_by(|a, b| a.0.total_cmp(&b.0).then(rank(&a.1).cmp(&rank(&b.1))));
    out
}

/// When a restore step's members are back in service: once its RTO's `started` phase
/// ends (they then elect and write while the restore verifies), else at the step's end.
fn back_at(r: &DrillReport, st: &StepRecord) -> f64 {
    let (start, end) = (fin(st.start_s), fin(st.start_s) + fin(st.seconds).max(0.0));
    let started = r.rto.as_ref().and_then(|rto| {
        let at = fin(rto.start_s?);
        let upto = rto
            .phases
            .iter()
            .position(|p| p.name == RtoPhase::Started)?;
        let secs: f64 = rto.phases[..=upto]
            .iter()
            .map(|p| fin(p.seconds).max(0.0))
            .sum();
        (start - 0.05 <= at && at <= end).then_some(at + secs)
    });
    started.map_or(end, |t| t.min(end))
}

#[derive(Debug, Clone)]
struct State {
    since: f64,
    out: Option<FaultKind>,
    /// Permanently lost and replaced by a newcomer: no restore brings it back.
    replaced: bool,
}

/// Each member's stretches in and out of service until `end_s`. Faults take members out
/// and bring them back; a restore brings every member back once started, except one
/// replaced by a member under a new name.
pub fn member_spans(r: &DrillReport, end_s: f64) -> Vec<MemberSpan> {
    let initial: Vec<String> = (1..=r.cluster_size).map(|i| format!("etcd-{i}")).collect();
    let mut state: BTreeMap<String, State> = initial
        .iter()
        .map(|m| {
            let s = State {
                since: 0.0,
                out: None,
                replaced: false,
            };
            (m.clone(), s)
        })
        .collect();
    let mut spans = vec![];
    let close = |spans: &mut Vec<MemberSpan>, m: &str, s: &State, t: f64| {
        if t > s.since {
            spans.push(MemberSpan {
                member: m.to_string(),
                from_s: s.since,
                to_s: t,
                out: s.out,
            });
        }
    };
    for (t, change, m) in changes(r, &initial) {
        match change {
            Change::Fault(k) => {
                let s = state.entry(m.clone()).or_insert(State {
                    since: t,
                    out: None,
                    replaced: false,
                });
                let next = match takes_out(k) {
                    Some(true) => Some(k),
                    _ if s.out == Some(FaultKind::Permanent) => continue,
                    _ => None,
                };
                if next != s.out {
                    close(&mut spans, &m, s, t);
                    (s.since, s.out) = (t, next);
                }
            }
            Change::Join => {
                if let Some(lost) = state
                    .values_mut()
                    .find(|s| s.out == Some(FaultKind::Permanent) && !s.replaced)
                {
                    lost.replaced = true;
                }
                state.entry(m).or_insert(State {
                    since: t,
                    out: None,
                    replaced: false,
                });
            }
            Change::AllBack => {
                for (m, s) in state.iter_mut().filter(|(_, s)| s.out.is_some()) {
                    if !s.replaced {
                        close(&mut spans, m, s, t);
                        (s.since, s.out) = (t, None);
                    }
                }
            }
        }
    }
    for (m, s) in &state {
        close(&mut spans, m, s, end_s.max(s.since));
    }
    spans.sort_by_key(|s| natural(&s.member));
    spans
}

/// How many members were in service at `t`.
pub fn up_at(spans: &[MemberSpan], t: f64) -> usize {
    spans
        .iter()
        .filter(|s| s.out.is_none() && s.from_s <= t && t < s.to_s)
        .count()
}

/// The fewest members in service over `from..to`.
fn fewest_up(spans: &[MemberSpan], from: f64, to: f64) -> usize {
    let mut at: Vec<f64> = spans
        .iter()
        .flat_map(|s| [s.from_s, s.to_s])
        .filter(|t| (from..to).contains(t))
        .collect();
    at.push(from);
    at.into_iter().map(|t| up_at(spans, t)).min().unwrap_or(0)
}

/// The stretches with fewer than a majority of `size` in service, each with its fewest up.
pub fn quorum_lost(spans: &[MemberSpan], size: usize) -> Vec<(f64, f64, usize)> {
    let mut cuts: Vec<f64> = spans.iter().flat_map(|s| [s.from_s, s.to_s]).collect();
    cuts.sort_by(f64::total_cmp);
    cuts.dedup();
    let mut out: Vec<(f64, f64, usize)> = vec![];
    for w in cuts.windows(2) {
        let up = up_at(spans, w[0]);
        if up >= majority(size.max(1)) {
            continue;
        }
        match out.last_mut() {
            Some(last) if last.1 >= w[0] => (last.1, last.2) = (w[1], last.2.min(up)),
            _ => out.push((w[0], w[1], up)),
        }
    }
    out
}

/// The restore's own outage: from the disaster declared to the restored cluster's first
/// write (the whole RTO when its phases stop short of one).
fn restore_window(r: &DrillReport) -> Option<(f64, f64)> {
    let rto = r.rto.as_ref()?;
    let start = fin(rto.start_s?);
    let upto = rto
        .phases
        .iter()
        .position(|p| p.name == RtoPhase::FirstWrite);
    let secs = match upto {
        Some(i) => rto.phases[..=i]
            .iter()
            .map(|p| fin(p.seconds).max(0.0))
            .sum(),
        None => fin(rto.total_s).max(0.0),
    };
    Some((start, start + secs))
}

/// Who led when, as far as the probes and the faults' roles tell: a member leads from the
/// first sighting until another leader (or none) is seen, it is taken out, or a restore
/// begins.
pub fn leader_spans(r: &DrillReport, spans: &[MemberSpan], end_s: f64) -> Vec<LeaderSpan> {
    let mut seen: Vec<(f64, Option<&String>)> = r
        .probes
        .iter()
        .map(|p| (fin(p.at_s), p.leader.as_ref()))
        .chain(
            r.fault_events
                .iter()
                .filter(|f| f.role == Role::Leader)
                .map(|f| (fin(f.at_s), Some(&f.member))),
        )
        // A restore stops the whole cluster first: whoever led, leads no more.
        .chain(
            r.steps
                .iter()
                .filter(|s| s.kind == StepKind::Restore)
                .map(|s| (fin(s.start_s), None)),
        )
        .collect();
    seen.sort_by(|a, b| a.0.total_cmp(&b.0));
    // When `m`, leading since `from`, was taken out, if before `to`.
    let out_by = |m: &str, from: f64, to: f64| {
        spans
            .iter()
            .filter(|s| s.member == m && s.out.is_some() && s.from_s >= from)
            .map(|s| s.from_s)
            .fold(to, f64::min)
    };
    let mut out = vec![];
    let mut cur: Option<(&String, f64)> = None;
    for (t, who) in seen {
        if cur.is_some_and(|(m, _)| Some(m) == who) {
            continue;
        }
        if let Some((m, from)) = cur.take() {
            out.push((m, from, out_by(m, from, t)));
        }
        cur = who.map(|m| (m, t));
    }
    if let Some((m, from)) = cur {
        out.push((m, from, out_by(m, from, end_s.max(from))));
    }
    out.into_iter()
        .map(|(m, from_s, to_s)| LeaderSpan {
            member: m.clone(),
            from_s,
            to_s,
        })
        .collect()
}

/// What explains no write, where: the restore first, then each lost quorum, widened by
/// [`SLACK_S`].
fn explanations(r: &DrillReport, spans: &[MemberSpan]) -> Vec<(f64, f64, Cause)> {
    let size = r.cluster_size;
    let mut why: Vec<(f64, f64, Cause)> = vec![];
    if let Some((a, b)) = restore_window(r) {
        // Nothing is stopped before the disaster is declared; after its first write the
        // restored cluster may still be electing.
        why.push((a, b + SLACK_S, Cause::Restore));
    }
    for (a, b, up) in quorum_lost(spans, size) {
        why.push((a - SLACK_S, b + SLACK_S, Cause::QuorumLost { up, size }));
    }
    why
}

/// Why no write would be acknowledged at `t` (an availability probe's moment).
pub fn cause_at(r: &DrillReport, spans: &[MemberSpan], t: f64) -> Cause {
    explanations(r, spans)
        .into_iter()
        .find(|e| e.0 <= t && t <= e.1)
        .map_or(
            Cause::Unexplained {
                up: up_at(spans, t),
                size: r.cluster_size,
            },
            |e| e.2,
        )
}

/// Every stretch without an acknowledged write, split by what explains it: the restore,
/// a lost quorum, or nothing — the only part that is a
/// failure. An unexplained sliver shorter than [`UNWRITABLE_AFTER_S`] beside an explained
/// part is the writer's pace, not a failure of its own.
pub fn outages(r: &DrillReport, spans: &[MemberSpan]) -> Vec<Outage> {
    let size = r.cluster_size;
    let why = explanations(r, spans);
    let mut out = vec![];
    for w in r.write_windows.iter().filter(|w| !w.writable) {
        let (from, to) = (fin(w.from_s), fin(w.to_s));
        if to <= from {
            continue;
        }
        let mut cuts: Vec<f64> = why
            .iter()
            .flat_map(|e| [e.0, e.0 + SLACK_S, e.1])
            .filter(|t| *t > from && *t < to)
            .chain([from, to])
            .collect();
        cuts.sort_by(f64::total_cmp);
        cuts.dedup();
        let pieces: Vec<Outage> = cuts
            .windows(2)
            .map(|c| {
                let mid = (c[0] + c[1]) / 2.0;
                let unexplained = Cause::Unexplained {
                    up: fewest_up(spans, c[0], c[1]),
                    size,
                };
                let e = why.iter().find(|e| e.0 <= mid && mid <= e.1);
                // The slack before a loss covers a window that starts a moment early; a
                // window that started before it was failing before the loss came.
                let early = e.is_some_and(|e| {
                    matches!(e.2, Cause::QuorumLost { .. }) && mid < e.0 + SLACK_S && from < e.0
                });
                let cause = match e {
                    Some(e) if !early => fewest_in(spans, *e, c[0], c[1]),
                    _ => unexplained,
                };
                Outage {
                    from_s: c[0],
                    to_s: c[1],
                    cause,
                }
            })
            .collect();
        out.extend(absorb_slivers(merge(pieces)));
    }
    out
}

/// A lost quorum's cause told for the piece `from..to` only: its fewest up there, not
/// over the whole loss (which a restore's stops may take down to none).
fn fewest_in(spans: &[MemberSpan], why: (f64, f64, Cause), from: f64, to: f64) -> Cause {
    match why.2 {
        Cause::QuorumLost { size, .. } => {
            let (a, b) = ((why.0 + SLACK_S).max(from), (why.1 - SLACK_S).min(to));
            // A piece in the slack before the loss: as many up as when it came.
            let up = if a < b {
                fewest_up(spans, a, b)
            } else {
                up_at(spans, why.0 + SLACK_S)
            };
            Cause::QuorumLost { up, size }
        }
        c => c,
    }
}

/// Neighbouring pieces with the same kind of cause as one, with the fewest up.
fn merge(pieces: impl IntoIterator<Item = Outage>) -> Vec<Outage> {
    let mut out: Vec<Outage> = vec![];
    for p in pieces {
        match out.last_mut() {
            Some(last) if same_kind(last.cause, p.cause) && last.to_s >= p.from_s => {
                last.to_s = p.to_s;
                last.cause = fewer(last.cause, p.cause);
            }
            _ => out.push(p),
        }
    }
    out
}

fn same_kind(a: Cause, b: Cause) -> bool {
    std::mem::discriminant(&a) == std::mem::discriminant(&b)
}

fn fewer(a: Cause, b: Cause) -> Cause {
    match (a, b) {
        (Cause::QuorumLost { up: x, size }, Cause::QuorumLost { up: y, .. }) => {
            Cause::QuorumLost { up: x.min(y), size }
        }
        (Cause::Unexplained { up: x, size }, Cause::Unexplained { up: y, .. }) => {
            Cause::Unexplained { up: x.min(y), size }
        }
        (a, _) => a,
    }
}

fn absorb_slivers(mut pieces: Vec<Outage>) -> Vec<Outage> {
    let n = pieces.len();
    for i in 0..n {
        let p = pieces[i];
        if p.cause.expected() || p.to_s - p.from_s >= UNWRITABLE_AFTER_S {
            continue;
        }
        let next = pieces.get(i + 1).filter(|q| q.cause.expected());
        let prev = i.checked_sub(1).map(|j| pieces[j]);
        if let Some(q) = prev.filter(|q| q.cause.expected()).or(next.copied()) {
            pieces[i].cause = q.cause;
        }
    }
    merge(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::report::{
        FaultEventRecord, PhaseRecord, ProbeRecord, Rto, StepRecord, Verdict, WriteWindow,
    };

    /// A run of `size` members with these faults (at, member, fault, role) and windows.
    fn run(
        size: usize,
        faults: &[(f64, &str, FaultKind)],
        windows: &[(f64, f64, bool)],
    ) -> DrillReport {
        DrillReport {
            schema_version: 1,
            scenario: "s".into(),
            description: String::new(),
            file: String::new(),
            seed: 1,
            repetition: 1,
            etcd_version: String::new(),
            image: String::new(),
            cluster_size: size,
            tls: false,
            started_at_ms: 0,
            finished_at_ms: 30_000,
            steps: vec![],
            fault_events: faults
                .iter()
                .map(|&(at_s, m, fault)| FaultEventRecord {
                    at_s,
                    member: m.into(),
                    fault,
                    role: Role::Follower,
                    step: None,
                    by: None,
                })
                .collect(),
            actions: vec![],
            probes: vec![],
            snapshots: vec![],
            rto: None,
            rpo: None,
            checks: vec![],
            gates: vec![],
            table: None,
            verdict: Verdict::Pass,
            error: None,
            history_check: None,
            history: vec![],
            write_windows: windows
                .iter()
                .map(|&(from_s, to_s, writable)| WriteWindow {
                    from_s,
                    to_s,
                    writable,
                })
                .collect(),
            backup: None,
        }
    }

    fn restore_step(start_s: f64, seconds: f64) -> StepRecord {
        StepRecord {
            index: 9,
            kind: StepKind::Restore,
            title: "restore".into(),
            start_s,
            seconds,
            ok: true,
            detail: String::new(),
        }
    }

    /// An RTO from `start_s` with these phases.
    fn rto(start_s: f64, phases: &[(RtoPhase, f64)]) -> Option<Rto> {
        Some(Rto {
            total_s: phases.iter().map(|p| p.1).sum(),
            start_s: Some(start_s),
            phases: phases
                .iter()
                .map(|&(name, seconds)| PhaseRecord { name, seconds })
                .collect(),
        })
    }

    fn probe(at_s: f64, leader: Option<&str>) -> ProbeRecord {
        ProbeRecord {
            at_s,
            step: 1,
            writable: leader.is_some(),
            leader: leader.map(Into::into),
            serializable_readers: vec![],
            first_write_ms: None,
        }
    }

    fn explain(r: &DrillReport) -> Vec<Outage> {
        outages(r, &member_spans(r, 30.0))
    }

    fn o(from_s: f64, to_s: f64, cause: Cause) -> Outage {
        Outage {
            from_s,
            to_s,
            cause,
        }
    }

    use FaultKind::*;

    #[test]
    fn members_go_out_and_come_back() {
        let r = run(
            3,
            &[
                (2.0, "etcd-2", Kill),
                (4.0, "etcd-2", Restart),
                (5.0, "etcd-3", Pause),
            ],
            &[],
        );
        let s = member_spans(&r, 10.0);
        assert_eq!(
            (
                up_at(&s, 1.0),
                up_at(&s, 3.0),
                up_at(&s, 4.5),
                up_at(&s, 6.0)
            ),
            (3, 2, 3, 2)
        );
        let two: Vec<_> = s
            .iter()
            .filter(|s| s.member == "etcd-2")
            .map(|s| (s.from_s, s.to_s, s.out))
            .collect();
        assert_eq!(
            two,
            vec![(0.0, 2.0, None), (2.0, 4.0, Some(Kill)), (4.0, 10.0, None)]
        );
        // Nothing restarts a member lost for good; a restore brings it back.
        let mut r = run(
            3,
            &[(2.0, "etcd-2", Permanent), (3.0, "etcd-2", Restart)],
            &[],
        );
        assert_eq!(up_at(&member_spans(&r, 10.0), 5.0), 2);
        r.steps.push(restore_step(6.0, 2.0));
        let s = member_spans(&r, 10.0);
        assert_eq!((up_at(&s, 7.0), up_at(&s, 8.5)), (2, 3));
    }

    #[test]
    fn a_restore_brings_members_back_once_started_not_when_verified() {
        let mut r = run(
            3,
            &[(2.0, "etcd-2", Permanent), (2.0, "etcd-3", Permanent)],
            &[],
        );
        r.steps.push(restore_step(5.0, 10.0));
        r.rto = rto(
            5.0,
            &[
                (RtoPhase::Restore, 2.0),
                (RtoPhase::Started, 1.0),
                (RtoPhase::Verified, 5.0),
            ],
        );
        let s = member_spans(&r, 20.0);
        assert_eq!((up_at(&s, 7.9), up_at(&s, 8.0)), (1, 3));
        // An RTO that is not this step's says nothing of it.
        r.rto.as_mut().unwrap().start_s = Some(40.0);
        assert_eq!(up_at(&member_spans(&r, 20.0), 8.0), 1);
    }

    #[test]
    fn a_newcomer_takes_the_place_of_the_member_it_replaced() {
        // The RKE procedure: etcd-3 lost, the restore brings back etcd-1, etcd-2, etcd-4.
        let mut r = run(3, &[(2.0, "etcd-3", Permanent)], &[]);
        r.steps.push(restore_step(5.0, 4.0));
        r.probes.push(probe(12.0, Some("etcd-4")));
        assert_eq!(members(&r), vec!["etcd-1", "etcd-2", "etcd-3", "etcd-4"]);
        let s = member_spans(&r, 20.0);
        assert_eq!(up_at(&s, 10.0), 3);
        let four: Vec<_> = s
            .iter()
            .filter(|s| s.member == "etcd-4")
            .map(|s| (s.from_s, s.out))
            .collect();
        assert_eq!(four, vec![(9.0, None)]);
        assert!(
            s.iter()
                .any(|s| s.member == "etcd-3" && s.to_s == 20.0 && s.out == Some(Permanent))
        );
    }

    #[test]
    fn no_write_with_a_majority_up_is_unexplained() {
        let r = run(
            5,
            &[(2.0, "etcd-1", Kill)],
            &[(0.0, 3.0, true), (3.0, 6.0, false)],
        );
        assert_eq!(
            explain(&r),
            vec![o(3.0, 6.0, Cause::Unexplained { up: 4, size: 5 })]
        );
        assert!(!explain(&r)[0].cause.expected());
    }

    #[test]
    fn no_write_with_quorum_lost_is_expected() {
        let f = [
            (2.0, "etcd-1", Permanent),
            (2.1, "etcd-2", Permanent),
            (2.2, "etcd-3", Stop),
        ];
        // The writer's last acknowledgement comes a beat before the fault is stamped.
        let r = run(5, &f, &[(0.0, 2.0, true), (2.0, 9.0, false)]);
        assert_eq!(
            explain(&r),
            vec![o(2.0, 9.0, Cause::QuorumLost { up: 2, size: 5 })]
        );
        // Told by the window's own stretch: a fourth lost later does not count.
        let mut r = run(5, &f, &[(2.0, 9.0, false)]);
        let later = run(5, &[(20.0, "etcd-4", Kill)], &[]).fault_events;
        r.fault_events.extend(later);
        assert_eq!(
            explain(&r),
            vec![o(2.0, 9.0, Cause::QuorumLost { up: 2, size: 5 })]
        );
        // Two of five out is within the tolerance: not an explanation.
        let r = run(5, &f[..2], &[(2.0, 9.0, false)]);
        assert_eq!(
            explain(&r),
            vec![o(2.0, 9.0, Cause::Unexplained { up: 3, size: 5 })]
        );
    }

    #[test]
    fn a_window_starting_before_the_loss_is_unexplained_up_to_it() {
        // Quorum is lost at 5 s; the writer stopped at 2 s: 2–5 s is a failure of its own
        // (the loss, coming while the window already fails, explains only itself).
        let f = [(5.0, "etcd-1", Kill), (5.0, "etcd-2", Kill)];
        let r = run(3, &f, &[(2.0, 8.0, false)]);
        assert_eq!(
            explain(&r),
            vec![
                o(2.0, 5.0, Cause::Unexplained { up: 3, size: 3 }),
                o(5.0, 8.0, Cause::QuorumLost { up: 1, size: 3 })
            ]
        );
        // Within the election timeout of the loss it is the loss.
        let r = run(3, &f, &[(4.3, 8.0, false)]);
        assert_eq!(
            explain(&r),
            vec![o(4.3, 8.0, Cause::QuorumLost { up: 1, size: 3 })]
        );
        // Started just before the slack: failing before the loss came.
        let r = run(3, &f, &[(3.7, 8.0, false)]);
        assert_eq!(
            explain(&r),
            vec![
                o(3.7, 5.0, Cause::Unexplained { up: 3, size: 3 }),
                o(5.0, 8.0, Cause::QuorumLost { up: 1, size: 3 })
            ]
        );
    }

    #[test]
    fn writes_resume_an_election_after_quorum_returns() {
        let f = [
            (2.0, "etcd-1", Kill),
            (2.0, "etcd-2", Kill),
            (6.0, "etcd-2", Restart),
        ];
        let r = run(3, &f, &[(2.0, 6.8, false)]);
        assert_eq!(
            explain(&r),
            vec![o(2.0, 6.8, Cause::QuorumLost { up: 1, size: 3 })]
        );
        // An unexplained sliver under the writer's threshold is its pace, absorbed.
        let r = run(3, &f, &[(2.0, 7.3, false)]);
        assert_eq!(
            explain(&r),
            vec![o(2.0, 7.3, Cause::QuorumLost { up: 1, size: 3 })]
        );
        // Long after quorum is back, still no write: that part failed.
        let r = run(3, &f, &[(2.0, 12.0, false)]);
        assert_eq!(
            explain(&r),
            vec![
                o(2.0, 7.0, Cause::QuorumLost { up: 1, size: 3 }),
                o(7.0, 12.0, Cause::Unexplained { up: 2, size: 3 })
            ]
        );
    }

    #[test]
    fn the_restore_explains_its_own_outage_until_its_first_write() {
        let mut r = run(
            3,
            &[(10.2, "etcd-1", Stop)],
            &[(0.0, 10.0, true), (10.0, 14.0, false)],
        );
        r.steps.push(restore_step(10.0, 8.0));
        r.rto = rto(
            10.0,
            &[
                (RtoPhase::StopSurvivors, 1.0),
                (RtoPhase::Restore, 2.0),
                (RtoPhase::FirstWrite, 0.5),
                (RtoPhase::Verified, 3.0),
            ],
        );
        assert_eq!(explain(&r), vec![o(10.0, 14.0, Cause::Restore)]);
        // Past the first write (13.5 s) and its election's slack, the restored cluster failed.
        r.write_windows[1].to_s = 17.0;
        assert_eq!(
            explain(&r),
            vec![
                o(10.0, 14.5, Cause::Restore),
                o(14.5, 17.0, Cause::Unexplained { up: 2, size: 3 })
            ]
        );
    }

    #[test]
    fn the_leader_is_followed_through_probes_and_faults() {
        let mut r = run(3, &[(4.9, "etcd-3", Permanent)], &[]);
        r.fault_events[0].role = Role::Leader;
        r.probes = vec![
            probe(0.5, Some("etcd-3")),
            probe(5.6, None),
            probe(21.0, Some("etcd-1")),
            probe(24.8, Some("etcd-1")),
        ];
        let s = member_spans(&r, 26.0);
        let l = leader_spans(&r, &s, 26.0);
        let l: Vec<_> = l
            .iter()
            .map(|l| (l.member.as_str(), l.from_s, l.to_s))
            .collect();
        assert_eq!(l, vec![("etcd-3", 0.5, 4.9), ("etcd-1", 21.0, 26.0)]);
        // A restore ends any reign: it stops every member first.
        r.probes.truncate(1);
        r.fault_events.clear();
        r.steps.push(restore_step(8.0, 5.0));
        let s = member_spans(&r, 26.0);
        let l = leader_spans(&r, &s, 26.0);
        assert_eq!((l.len(), l[0].to_s), (1, 8.0));
        // Nothing seen, nothing claimed.
        let r = run(3, &[], &[]);
        assert!(leader_spans(&r, &member_spans(&r, 9.0), 9.0).is_empty());
    }

    #[test]
    fn broken_input_gives_no_panic() {
        let r = run(
            0,
            &[(f64::NAN, "x", Kill), (-3.0, "etcd-1", Heal)],
            &[(f64::NAN, 2.0, false), (5.0, 1.0, false)],
        );
        let s = member_spans(&r, f64::NAN);
        let _ = explain(&r);
        let _ = leader_spans(&r, &s, 1.0);
    }
}
