//! The steps walked symbolically, as the run will take them: which members exist and which
//! states they can be in at each step. A victim chosen at random makes the walk branch — it
//! keeps every combination of states the earlier steps can leave (a "world") — so it refuses
//! only what fails in all of them: a step that fails whichever members were chosen.

use std::collections::BTreeSet;

use super::fault::{FaultKind, MemberState, Target};

/// Beyond this many worlds the walk stops judging states (until a restore makes them known
/// again) rather than take long: it never refuses what it has not followed.
const MAX_WORLDS: usize = 20_000;

/// Why a step is certain to fail, and what would not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub problem: String,
    pub allowed: String,
}

/// The cluster as the steps so far leave it.
#[derive(Debug, Clone)]
pub struct Walk {
    /// Member indices (`etcd-<i>`) in the cluster's order. Known exactly whatever the
    /// victims were: only replace-member and restore change the member set.
    members: Vec<usize>,
    /// Every combination of states the steps so far can leave, a state per member; `None`
    /// once there were too many to follow.
    worlds: Option<BTreeSet<Vec<MemberState>>>,
    /// False after `forget`: not even the member set is known.
    known: bool,
}

type Worlds = Option<BTreeSet<Vec<MemberState>>>;

impl Walk {
    pub fn new(size: usize) -> Walk {
        Walk::restored((1..=size).collect())
    }

    fn restored(members: Vec<usize>) -> Walk {
        let all_running = vec![MemberState::Running; members.len()];
        Walk {
            members,
            worlds: Some(BTreeSet::from([all_running])),
            known: true,
        }
    }

    /// Stops judging states: after a fault the walk could not follow (one refused), what
    /// the run would see is not known until a restore. The member set still is.
    pub fn forget_states(&mut self) {
        self.worlds = None;
    }

    /// Stops judging members too, after a refused change of the member set, until a restore
    /// names them.
    pub fn forget(&mut self) {
        self.known = false;
        self.worlds = None;
    }

    /// The member indices, in the cluster's order, when known.
    pub fn members(&self) -> Option<&[usize]> {
        self.known.then_some(self.members.as_slice())
    }

    /// A fault step: refused when no choice of victims can succeed.
    pub fn fault(&mut self, kind: FaultKind, target: &Target) -> Result<(), Refusal> {
        self.worlds = self.branch(kind, target)?;
        Ok(())
    }

    /// A snapshot's `from`: the run resolves it as it would a kill's victims, and a `from`
    /// it cannot resolve fails the step. Nothing changes.
    pub fn snapshot_from(&self, target: &Target) -> Result<(), Refusal> {
        self.branch(FaultKind::Kill, target).map(|_| ())
    }

    /// A heal step brings back every member a transient fault took, never one lost for good.
    pub fn heal(&mut self) {
        let back = |s: MemberState| match s {
            MemberState::Gone => MemberState::Gone,
            _ => MemberState::Running,
        };
        if let Some(ws) = &self.worlds {
            let healed = ws.iter().map(|w| w.iter().map(|s| back(*s)).collect());
            self.worlds = Some(healed.collect());
        }
    }

    /// A restore starts `members` (default: the current ones) afresh, all running.
    pub fn restore(&mut self, members: Option<Vec<usize>>) {
        match members {
            Some(m) => *self = Walk::restored(m),
            None if self.known => *self = Walk::restored(self.members.clone()),
            None => {}
        }
    }

    /// etcd's reconfiguration: `lost` leaves, `etcd-<highest index + 1>` joins, running. It
    /// reconfigures through another running member, so it needs one.
    pub fn replace(&mut self, lost: usize) -> Result<(), Refusal> {
        if !self.known {
            return Ok(());
        }
        let Some(p) = self.members.iter().position(|m| *m == lost) else {
            return Err(self.not_a_member("etcd-", lost));
        };
        let through =
            |w: &Vec<MemberState>| (0..w.len()).any(|q| q != p && w[q] == MemberState::Running);
        if let Some(ws) = &self.worlds
            && !ws.iter().any(through)
        {
            return Err(Refusal {
                problem: "no other member can be running here to reconfigure the cluster through"
                    .into(),
                allowed: "a heal or restart step before it".into(),
            });
        }
        let next = self.members.iter().max().copied().unwrap_or(0) + 1;
        self.members.remove(p);
        self.members.push(next);
        self.worlds = self.worlds.take().map(|ws| {
            ws.into_iter()
                .filter(through)
                .map(|mut w| {
                    w.remove(p);
                    w.push(MemberState::Running);
                    w
                })
                .collect()
        });
        Ok(())
    }

    fn not_a_member(&self, prefix: &str, i: usize) -> Refusal {
        let names: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("{prefix}{m}"))
            .collect();
        Refusal {
            problem: format!("{prefix}{i} is not a member here"),
            allowed: names.join(", "),
        }
    }

    /// The worlds after a fault of `kind` at `target`, or why it fails in every one.
    fn branch(&self, kind: FaultKind, target: &Target) -> Result<Worlds, Refusal> {
        if !self.known {
            return Ok(None);
        }
        let n = self.members.len();
        match target {
            Target::Count(k) if *k == 0 || *k > n => {
                return Err(Refusal {
                    problem: format!("count:{k} but the cluster has {n} members here"),
                    allowed: format!("count:1 to count:{n}"),
                });
            }
            Target::Member(i) if !self.members.contains(i) => {
                return Err(self.not_a_member("member:", *i));
            }
            _ => {}
        }
        let Some(ws) = &self.worlds else {
            return Ok(None);
        };
        let mut next = BTreeSet::new();
        for w in ws {
            for victims in self.victims(w, kind, target) {
                let mut after = w.clone();
                for v in victims {
                    after[v] = leaves(kind);
                }
                next.insert(after);
                if next.len() > MAX_WORLDS {
                    return Ok(None);
                }
            }
        }
        if next.is_empty() {
            return Err(self.why_not(ws, kind, target));
        }
        Ok(Some(next))
    }

    /// Every set of positions the run may choose in world `w`, as `chaos::victims` chooses.
    /// The leader is not known here: any member may be it, so long as one answers to say so.
    fn victims(&self, w: &[MemberState], kind: FaultKind, target: &Target) -> Vec<Vec<usize>> {
        let eligible: Vec<usize> = (0..w.len()).filter(|p| kind.may_hit(w[*p])).collect();
        let someone_answers = w.iter().any(|s| s.answers_clients());
        let one_each = |ps: Vec<usize>| ps.into_iter().map(|p| vec![p]).collect();
        match target {
            Target::Member(i) => {
                let p = self.members.iter().position(|m| m == i);
                one_each(p.filter(|p| eligible.contains(p)).into_iter().collect())
            }
            Target::Leader if someone_answers => one_each((0..w.len()).collect()),
            Target::Follower if someone_answers && w.len() > 1 => one_each(eligible),
            Target::Leader | Target::Follower => vec![],
            Target::Random => one_each(eligible),
            Target::Count(k) => combinations(&eligible, *k),
        }
    }

    /// The refusal of a step that fails in every world.
    fn why_not(
        &self,
        ws: &BTreeSet<Vec<MemberState>>,
        kind: FaultKind,
        target: &Target,
    ) -> Refusal {
        let (can_be, before) = (can_be(kind), remedy(kind));
        let nobody_answers = ws.iter().all(|w| !w.iter().any(|s| s.answers_clients()));
        match target {
            Target::Leader | Target::Follower if nobody_answers => Refusal {
                problem: "no member can answer here (each is down, paused or lost for good), so none can name a leader".into(),
                allowed: "a heal, restart or unpause step before it".into(),
            },
            Target::Follower if self.members.len() == 1 => Refusal {
                problem: "a 1-member cluster has no follower".into(),
                allowed: "leader, random, member:<i>, count:1".into(),
            },
            Target::Member(i) => {
                let p = self.members.iter().position(|m| m == i).expect("checked");
                let states: BTreeSet<&str> = ws.iter().map(|w| w[p].as_str()).collect();
                let states: Vec<&str> = states.into_iter().collect();
                Refusal {
                    problem: format!(
                        "etcd-{i} is {} here, and {kind} applies only to members {can_be}",
                        states.join(" or ")
                    ),
                    allowed: format!("member:{i} after {before}, or another member"),
                }
            }
            Target::Count(k) => {
                let of = self.members.len();
                match ws.iter().map(|w| eligible(w, kind)).max().unwrap_or(0) {
                    0 => Refusal {
                        problem: format!("count:{k} but no member can be {can_be} here"),
                        allowed: format!("{before} earlier"),
                    },
                    most => Refusal {
                        problem: format!(
                            "count:{k} but at most {most} of the {of} members can be {can_be} here"
                        ),
                        allowed: format!("count:1 to count:{most}"),
                    },
                }
            }
            _ => Refusal {
                problem: format!("no member can be {can_be} here for {kind}"),
                allowed: format!("{before} earlier"),
            },
        }
    }
}

fn eligible(w: &[MemberState], kind: FaultKind) -> usize {
    w.iter().filter(|s| kind.may_hit(**s)).count()
}

/// The state a fault leaves its victim in, as `chaos::fault` records it.
fn leaves(kind: FaultKind) -> MemberState {
    match kind {
        FaultKind::Permanent => MemberState::Gone,
        FaultKind::Kill | FaultKind::Stop | FaultKind::WipeData => MemberState::Down,
        FaultKind::Pause => MemberState::Paused,
        FaultKind::Partition => MemberState::Partitioned,
        FaultKind::Restart | FaultKind::Unpause | FaultKind::Heal => MemberState::Running,
    }
}

/// The members a fault of `kind` applies to, in words (`FaultKind::may_hit`).
fn can_be(kind: FaultKind) -> &'static str {
    match kind {
        FaultKind::Restart => "not lost for good",
        FaultKind::Unpause => "paused",
        FaultKind::Heal => "partitioned",
        FaultKind::WipeData => "down (killed or stopped)",
        _ => "running or partitioned",
    }
}

/// The kind of step that makes members eligible for `kind`.
fn remedy(kind: FaultKind) -> &'static str {
    match kind {
        FaultKind::Restart => "a restore or replace-member step",
        FaultKind::Unpause => "a pause fault",
        FaultKind::Heal => "a partition fault",
        FaultKind::WipeData => "a kill or stop fault",
        _ => "a heal, restart or restore step",
    }
}

/// Every k-subset of `items`, each in `items`' order.
fn combinations(items: &[usize], k: usize) -> Vec<Vec<usize>> {
    if k == 0 {
        return vec![vec![]];
    }
    if items.len() < k {
        return vec![];
    }
    let (first, rest) = (items[0], &items[1..]);
    let mut with: Vec<Vec<usize>> = combinations(rest, k - 1)
        .into_iter()
        .map(|mut c| {
            c.insert(0, first);
            c
        })
        .collect();
    with.extend(combinations(rest, k));
    with
}

#[cfg(test)]
mod tests;
