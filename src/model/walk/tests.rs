use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, IteratorRandom};
use rand::{RngExt, SeedableRng};

use super::*;
use FaultKind::*;

fn t(s: &str) -> Target {
    s.parse().unwrap()
}

/// The walk after `faults` on `size` members, each fault accepted.
fn after(size: usize, faults: &[(FaultKind, &str)]) -> Walk {
    let mut w = Walk::new(size);
    for (k, target) in faults {
        w.fault(*k, &t(target))
            .unwrap_or_else(|r| panic!("{k} {target}: {r:?}"));
    }
    w
}

fn refused(w: &Walk, k: FaultKind, target: &str) -> Refusal {
    w.clone().fault(k, &t(target)).unwrap_err()
}

fn accepted(w: &Walk, k: FaultKind, target: &str) -> bool {
    w.clone().fault(k, &t(target)).is_ok()
}

#[test]
fn count_is_bounded_by_the_members_left_whichever_were_lost() {
    let w = after(5, &[(Permanent, "count:2")]);
    assert!(accepted(&w, Permanent, "count:3"));
    let r = refused(&w, Permanent, "count:4");
    assert_eq!(
        r.problem,
        "count:4 but at most 3 of the 5 members can be running or partitioned here"
    );
    assert_eq!(r.allowed, "count:1 to count:3");
    // Two losses one at a time, at random, leave the same three.
    let w = after(5, &[(Permanent, "random"), (Kill, "follower")]);
    assert!(accepted(&w, Stop, "count:3"));
    assert!(!accepted(&w, Stop, "count:4"));
    assert!(!accepted(&w, Stop, "count:6"), "beyond the cluster");
    assert!(!accepted(&w, Stop, "count:0"));
}

#[test]
fn wipe_data_needs_a_stopped_member() {
    let running = Walk::new(3);
    for target in ["count:3", "random", "member:1"] {
        let r = refused(&running, WipeData, target);
        assert!(r.problem.contains("down (killed or stopped)"), "{r:?}");
        assert!(r.allowed.contains("a kill or stop fault"), "{r:?}");
    }
    let all_stopped = after(3, &[(Stop, "count:3")]);
    assert!(accepted(&all_stopped, WipeData, "count:3"));
    let one = after(3, &[(Stop, "count:1")]);
    assert!(accepted(&one, WipeData, "count:1"));
    assert!(!accepted(&one, WipeData, "count:2"));
    // Any member may be the one stopped at random: member:1 can succeed.
    assert!(accepted(&one, WipeData, "member:1"));
    let two = after(3, &[(Kill, "member:2")]);
    assert!(accepted(&two, WipeData, "member:2"));
    let r = refused(&two, WipeData, "member:1");
    assert_eq!(
        r.problem,
        "etcd-1 is running here, and wipe-data applies only to members down (killed or stopped)"
    );
    // A wipe leaves the member down, to be wiped or restarted again.
    let wiped = after(3, &[(Stop, "member:2"), (WipeData, "member:2")]);
    assert!(accepted(&wiped, Restart, "member:2"));
}

#[test]
fn a_member_lost_replaced_or_beyond_the_cluster_is_refused() {
    let w = after(3, &[(Permanent, "member:3")]);
    let r = refused(&w, Kill, "member:3");
    assert!(r.problem.starts_with("etcd-3 is gone here"), "{r:?}");
    assert!(accepted(&w, Kill, "member:2"));
    let r = refused(&w, Kill, "member:4");
    assert_eq!(r.problem, "member:4 is not a member here");
    assert_eq!(r.allowed, "member:1, member:2, member:3");
    let mut w = w;
    w.replace(3).unwrap();
    assert_eq!(w.members(), Some(&[1, 2, 4][..]));
    assert!(accepted(&w, Kill, "member:4"));
    assert_eq!(
        refused(&w, Kill, "member:3").problem,
        "member:3 is not a member here"
    );
    assert_eq!(
        w.replace(3).unwrap_err().problem,
        "etcd-3 is not a member here"
    );
}

#[test]
fn replacing_needs_another_running_member() {
    let mut w = after(3, &[(Permanent, "member:1"), (Pause, "count:2")]);
    let r = w.replace(1).unwrap_err();
    assert!(
        r.problem.contains("no other member can be running"),
        "{r:?}"
    );
    let mut w = after(3, &[(Permanent, "member:1"), (Pause, "count:1")]);
    w.replace(1).unwrap();
}

#[test]
fn heal_brings_back_what_is_transient_and_not_what_is_gone() {
    let mut w = after(
        5,
        &[
            (Permanent, "count:2"),
            (Kill, "count:1"),
            (Pause, "count:1"),
        ],
    );
    assert!(!accepted(&w, Kill, "count:2"));
    assert!(accepted(&w, Unpause, "count:1"));
    assert!(!accepted(&w, Unpause, "count:2"));
    w.heal();
    assert!(accepted(&w, Kill, "count:3"));
    assert!(!accepted(&w, Kill, "count:4"));
    assert!(
        !accepted(&w, Unpause, "random"),
        "nothing is paused after a heal"
    );
    assert!(accepted(&w, Restart, "count:3"));
    assert!(
        !accepted(&w, Restart, "count:4"),
        "a member lost for good never restarts"
    );
}

#[test]
fn a_restore_brings_every_named_member_back_running() {
    let mut w = after(3, &[(Permanent, "count:3")]);
    assert!(!accepted(&w, Kill, "random"));
    w.restore(Some(vec![1, 2, 4]));
    assert!(accepted(&w, Kill, "member:4"));
    assert!(accepted(&w, Kill, "count:3"));
    assert!(!accepted(&w, Kill, "member:3"));
    let mut w = after(3, &[(Permanent, "count:3")]);
    w.restore(None);
    assert!(accepted(&w, Permanent, "count:3"));
}

#[test]
fn leader_and_follower_need_a_member_that_answers() {
    let r = refused(&Walk::new(1), Kill, "follower");
    assert_eq!(r.problem, "a 1-member cluster has no follower");
    assert!(accepted(&Walk::new(1), Kill, "leader"));
    let down = after(3, &[(Kill, "count:3")]);
    let r = refused(&down, Kill, "leader");
    assert!(r.problem.starts_with("no member can answer here"), "{r:?}");
    assert!(!accepted(&down, Pause, "follower"));
    // The leader is not known: after one loss any member may still be it.
    let w = after(3, &[(Permanent, "leader")]);
    assert!(accepted(&w, Kill, "leader"));
    assert!(accepted(&w, Kill, "count:2"));
    assert!(!accepted(&w, Kill, "count:3"));
    let snap = after(3, &[(Stop, "count:3")]);
    assert!(snap.snapshot_from(&t("follower")).is_err());
    assert!(Walk::new(3).snapshot_from(&t("member:2")).is_ok());
}

#[test]
fn the_last_step_of_many_random_choices_is_judged_in_every_world() {
    // Nine members, a fault at random each step: the walk follows every combination.
    let mut w = Walk::new(9);
    for k in [Kill, Pause, Partition, Stop, Pause, Kill] {
        w.fault(k, &t("random")).unwrap();
    }
    // Five of the six took a member out; the partition may have hit one of them after.
    assert!(accepted(&w, Kill, "count:4"));
    assert!(!accepted(&w, Kill, "count:5"));
    assert!(accepted(&w, Unpause, "count:2"));
    assert!(!accepted(&w, Unpause, "count:3"));
}

/// A run as `chaos` and `cluster` would make it: concrete states, victims drawn among the
/// eligible, the leader some member that answers.
struct Run {
    members: Vec<(usize, MemberState)>,
}

impl Run {
    fn heal(&mut self) {
        for m in self.members.iter_mut().filter(|m| m.1 != MemberState::Gone) {
            m.1 = MemberState::Running;
        }
    }

    /// A member replaced through another running one, if the run can: the one it replaced.
    fn replace(&mut self, rng: &mut StdRng) -> Option<usize> {
        let running = |p: usize| self.members[p].1 == MemberState::Running;
        let n = self.members.len();
        let lost = (0..n)
            .filter(|p| (0..n).any(|q| q != *p && running(q)))
            .choose(rng)?;
        let next = self.members.iter().map(|m| m.0).max().unwrap_or(0) + 1;
        let (index, _) = self.members.remove(lost);
        self.members.push((next, MemberState::Running));
        Some(index)
    }

    /// A fault of `kind` the run can carry out: its target, and the victims chosen.
    fn fault(&self, kind: FaultKind, rng: &mut StdRng) -> Option<(String, Vec<usize>)> {
        let n = self.members.len();
        let eligible: Vec<usize> = (0..n)
            .filter(|p| kind.may_hit(self.members[*p].1))
            .collect();
        let leader = (0..n)
            .filter(|p| self.members[*p].1 == MemberState::Running)
            .choose(rng);
        match rng.random_range(0..5) {
            0 => Some(("leader".into(), vec![leader?])),
            1 => {
                leader?;
                let f = eligible.iter().filter(|p| Some(**p) != leader);
                Some(("follower".into(), vec![*f.choose(rng)?]))
            }
            2 => Some(("random".into(), vec![*eligible.choose(rng)?])),
            3 => {
                let p = *eligible.choose(rng)?;
                Some((format!("member:{}", self.members[p].0), vec![p]))
            }
            _ if eligible.is_empty() => None,
            _ => {
                let k = rng.random_range(1..=eligible.len());
                let picked = eligible.sample(rng, k).copied().collect();
                Some((format!("count:{k}"), picked))
            }
        }
    }
}

/// Every step a run can take is one the walk accepts, whatever victims it drew.
#[test]
fn the_walk_never_refuses_a_step_a_run_could_take() {
    let mut followed = 0;
    for seed in 0..200 {
        let mut rng = StdRng::seed_from_u64(seed);
        let size = rng.random_range(1..=9);
        let mut run = Run {
            members: (1..=size).map(|i| (i, MemberState::Running)).collect(),
        };
        let mut walk = Walk::new(size);
        for _ in 0..12 {
            match rng.random_range(0..12) {
                0 => {
                    walk.heal();
                    run.heal();
                }
                1 => {
                    let names: Vec<usize> = run.members.iter().map(|m| m.0).collect();
                    walk.restore(Some(names.clone()));
                    run.members = names
                        .into_iter()
                        .map(|i| (i, MemberState::Running))
                        .collect();
                }
                2 => {
                    if let Some(lost) = run.replace(&mut rng) {
                        walk.replace(lost)
                            .unwrap_or_else(|r| panic!("seed {seed}: replace {lost}: {r:?}"));
                    }
                }
                _ => {
                    let kind = *FaultKind::ALL.choose(&mut rng).unwrap();
                    let Some((target, victims)) = run.fault(kind, &mut rng) else {
                        continue;
                    };
                    walk.fault(kind, &t(&target))
                        .unwrap_or_else(|r| panic!("seed {seed}: {kind} {target}: {r:?}"));
                    for v in victims {
                        run.members[v].1 = leaves(kind);
                    }
                }
            }
            assert_eq!(
                walk.members(),
                Some(&run.members.iter().map(|m| m.0).collect::<Vec<_>>()[..])
            );
        }
        followed += usize::from(walk.worlds.is_some());
    }
    assert!(
        followed > 180,
        "the walk gave up on {} runs of 200",
        200 - followed
    );
}

#[test]
fn combinations_are_every_subset_once() {
    assert_eq!(combinations(&[1, 2, 3], 2), [[1, 2], [1, 3], [2, 3]]);
    assert_eq!(combinations(&[1, 2, 3], 0), [Vec::<usize>::new()]);
    assert!(combinations(&[1], 2).is_empty());
    assert_eq!(combinations(&[0, 1, 2, 3, 4, 5, 6, 7, 8], 4).len(), 126);
}
