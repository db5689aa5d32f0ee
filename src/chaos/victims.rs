//! Victim choice, pure: which members a target names, given the members' states, the
//! leader and a seeded RNG. The same seed and the same cluster state give the same victims,
//! so a run can be replayed with `--seed`.

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;

use crate::cluster::Member;
use crate::error::{Error, Result};
use crate::model::fault::{FaultKind, Target};

/// The members `target` names for a fault of `kind`. `leader` is needed (and only
/// consulted) for `leader` and `follower`.
pub fn choose_victims(
    members: &[Member],
    leader: Option<&str>,
    target: &Target,
    kind: FaultKind,
    rng: &mut StdRng,
) -> Result<Vec<String>> {
    let eligible: Vec<&Member> = members.iter().filter(|m| kind.may_hit(m.state)).collect();
    let no_leader = || Error::Failed("no member reports a leader".into());
    match target {
        Target::Member(i) => {
            let m = members.iter().find(|m| m.index == *i).ok_or_else(|| {
                Error::InvalidInput(format!(
                    "member:{i} does not exist; members are 1..={}",
                    members.len()
                ))
            })?;
            if !eligible.iter().any(|e| e.name == m.name) {
                return Err(Error::InvalidInput(format!(
                    "cannot apply {kind} to {}: it is {}",
                    m.name,
                    m.state.as_str()
                )));
            }
            Ok(vec![m.name.clone()])
        }
        Target::Leader => Ok(vec![leader.ok_or_else(no_leader)?.to_string()]),
        Target::Follower => {
            let leader = leader.ok_or_else(no_leader)?;
            let followers: Vec<&Member> =
                eligible.into_iter().filter(|m| m.name != leader).collect();
            let pick = followers
                .choose(rng)
                .ok_or_else(|| Error::Failed("there is no follower to target".into()))?;
            Ok(vec![pick.name.clone()])
        }
        Target::Random => {
            let pick = eligible
                .choose(rng)
                .ok_or_else(|| Error::Failed(format!("no member is eligible for {kind}")))?;
            Ok(vec![pick.name.clone()])
        }
        Target::Count(k) => {
            if *k > eligible.len() {
                return Err(Error::InvalidInput(format!(
                    "count:{k} asks for more members than the {} eligible for {kind}",
                    eligible.len()
                )));
            }
            let mut picked: Vec<&Member> = eligible.sample(rng, *k).copied().collect();
            picked.sort_by_key(|m| m.index);
            Ok(picked.into_iter().map(|m| m.name.clone()).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::cluster::MemberState;

    fn members(states: &[MemberState]) -> Vec<Member> {
        states
            .iter()
            .enumerate()
            .map(|(i, s)| Member {
                index: i + 1,
                name: format!("etcd-{}", i + 1),
                container: String::new(),
                volume: String::new(),
                client_url: String::new(),
                host_port: 0,
                peer_url: String::new(),
                id: 0,
                state: *s,
            })
            .collect()
    }

    fn pick(
        ms: &[Member],
        leader: Option<&str>,
        t: Target,
        k: FaultKind,
        seed: u64,
    ) -> Result<Vec<String>> {
        choose_victims(ms, leader, &t, k, &mut StdRng::seed_from_u64(seed))
    }

    #[test]
    fn the_same_seed_and_state_give_the_same_victims() {
        use MemberState::Running;
        let ms = members(&[Running; 5]);
        for seed in 0..20 {
            let a = pick(&ms, None, Target::Count(2), FaultKind::Kill, seed).unwrap();
            assert_eq!(
                a,
                pick(&ms, None, Target::Count(2), FaultKind::Kill, seed).unwrap()
            );
            assert_eq!(a.len(), 2);
            assert!(a[0] < a[1], "sorted by index: {a:?}");
        }
    }

    #[test]
    fn a_follower_is_never_the_leader_and_only_eligible_members_are_hit() {
        use MemberState::{Down, Gone, Paused, Running};
        let ms = members(&[Running, Running, Down, Paused, Gone]);
        for seed in 0..50 {
            let f = pick(&ms, Some("etcd-1"), Target::Follower, FaultKind::Kill, seed).unwrap();
            assert_eq!(f, vec!["etcd-2"], "the only live follower");
            let r = pick(&ms, None, Target::Random, FaultKind::Restart, seed);
            assert!(
                r.unwrap() != vec!["etcd-5"],
                "a member gone for good cannot restart"
            );
        }
        assert_eq!(
            pick(&ms, None, Target::Random, FaultKind::Unpause, 1).unwrap(),
            vec!["etcd-4"]
        );
        assert_eq!(
            pick(&ms, None, Target::Random, FaultKind::WipeData, 1).unwrap(),
            vec!["etcd-3"]
        );
        assert_eq!(
            pick(&ms, Some("etcd-2"), Target::Leader, FaultKind::Kill, 1).unwrap(),
            vec!["etcd-2"]
        );
    }

    #[test]
    fn impossible_targets_are_refused() {
        use MemberState::{Down, Running};
        let ms = members(&[Running, Running, Down]);
        let err = |t, k| pick(&ms, None, t, k, 1).unwrap_err().to_string();
        assert!(err(Target::Member(9), FaultKind::Kill).contains("does not exist"));
        assert!(err(Target::Member(3), FaultKind::Kill).contains("it is down"));
        assert!(
            err(Target::Count(3), FaultKind::Kill).contains("more members than the 2 eligible")
        );
        assert!(err(Target::Leader, FaultKind::Kill).contains("no member reports a leader"));
        let one = members(&[Running]);
        let e = pick(&one, Some("etcd-1"), Target::Follower, FaultKind::Kill, 1).unwrap_err();
        assert!(e.to_string().contains("no follower"), "{e}");
    }
}
