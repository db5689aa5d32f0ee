//! Membership: the restored member set, each started, under the right cluster ID.

use std::collections::BTreeSet;

use super::{Check, Expected, check};
use crate::cluster::Cluster;

/// The member list is exactly the expected set — names, IDs and peer URLs — every member
/// started, under a new cluster ID after a restore and the same one otherwise.
pub(super) async fn check_membership(cluster: &Cluster, exp: &Expected<'_>) -> Check {
    let name = "membership";
    let Some(first) = cluster.members.first() else {
        return check(name, false, "no members");
    };
    let resp = match cluster.client(first).await {
        Ok(mut c) => match c.member_list().await {
            Ok(r) => r,
            Err(e) => {
                return check(
                    name,
                    false,
                    format!("member list through {}: {e}", first.name),
                );
            }
        },
        Err(e) => return check(name, false, e.to_string()),
    };
    let listed: Vec<ListedMember> = resp
        .members()
        .iter()
        .map(|m| ListedMember {
            name: m.name().to_string(),
            id: m.id(),
            peer_urls: m.peer_urls().to_vec(),
            started: !m.name().is_empty() && !m.client_urls().is_empty(),
        })
        .collect();
    let want: Vec<ListedMember> = cluster
        .members
        .iter()
        .filter(|m| exp.members.contains(&m.name))
        .map(|m| ListedMember {
            name: m.name.clone(),
            id: m.id,
            peer_urls: vec![m.peer_url.clone()],
            started: true,
        })
        .collect();
    let rule = if exp.restored {
        ClusterIdRule::NewAfter(exp.old_cluster_id)
    } else {
        ClusterIdRule::Same(exp.old_cluster_id)
    };
    let cluster_id = resp.header().map(|h| h.cluster_id());
    let (ok, detail) = judge_membership(&listed, &want, &exp.members, cluster_id, rule);
    check(name, ok, detail)
}

/// One member as etcd lists it, or as the harness expects it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedMember {
    pub name: String,
    pub id: u64,
    pub peer_urls: Vec<String>,
    pub started: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterIdRule {
    /// A restored cluster: a new ID, not this one.
    NewAfter(u64),
    /// No restore: exactly this ID.
    Same(u64),
}

/// The membership verdict. `names` are the members asked for; `want` what the harness knows
/// of them (an ID of 0 is an ID it never learned, which cannot pass). A missing header or
/// cluster ID is a failure, never a default.
pub fn judge_membership(
    listed: &[ListedMember],
    want: &[ListedMember],
    names: &[String],
    cluster_id: Option<u64>,
    rule: ClusterIdRule,
) -> (bool, String) {
    let mut problems = vec![];
    let listed_names: BTreeSet<&str> = listed.iter().map(|m| m.name.as_str()).collect();
    let want_names: BTreeSet<&str> = names.iter().map(String::as_str).collect();
    if listed_names != want_names || listed.len() != names.len() {
        problems.push(format!("members {listed_names:?}, want {want_names:?}"));
    }
    for w in want {
        match listed.iter().find(|l| l.name == w.name) {
            None => {}
            Some(_) if w.id == 0 => {
                problems.push(format!("{}: the harness never learned its ID", w.name))
            }
            Some(l) if l.id != w.id => {
                problems.push(format!("{}: ID {:x}, want {:x}", w.name, l.id, w.id))
            }
            Some(l) if l.peer_urls != w.peer_urls => problems.push(format!(
                "{}: peer URLs {:?}, want {:?}",
                w.name, l.peer_urls, w.peer_urls
            )),
            Some(_) => {}
        }
    }
    if want.len() != names.len() {
        problems.push(format!(
            "the harness knows {} of the {} members asked for",
            want.len(),
            names.len()
        ));
    }
    for l in listed.iter().filter(|l| !l.started) {
        problems.push(format!(
            "{} (ID {:x}) has not started",
            if l.name.is_empty() {
                "an unnamed member"
            } else {
                &l.name
            },
            l.id
        ));
    }
    let id_problem = match (cluster_id, rule) {
        (None | Some(0), _) => Some("the member list carries no cluster ID".to_string()),
        (Some(id), ClusterIdRule::NewAfter(old)) if id == old => Some(format!(
            "cluster ID {id:x} is the one before the disaster: this is not a restored cluster"
        )),
        (Some(id), ClusterIdRule::Same(old)) if id != old => {
            Some(format!("cluster ID {id:x}, but the cluster had {old:x}"))
        }
        _ => None,
    };
    problems.extend(id_problem);
    let id = cluster_id
        .map(|c| format!("{c:x}"))
        .unwrap_or_else(|| "none".into());
    if problems.is_empty() {
        (
            true,
            format!(
                "{} members {listed_names:?} with the expected IDs and peer URLs, all started; cluster ID {id} ({})",
                listed.len(),
                match rule {
                    ClusterIdRule::NewAfter(o) => format!("new; {o:x} before the disaster"),
                    ClusterIdRule::Same(_) => "unchanged".into(),
                }
            ),
        )
    } else {
        (false, problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(i: u64, started: bool) -> ListedMember {
        ListedMember {
            name: format!("etcd-{i}"),
            id: 0x100 + i,
            peer_urls: vec![format!("http://etcd-{i}:2380")],
            started,
        }
    }

    fn names(n: u64) -> Vec<String> {
        (1..=n).map(|i| format!("etcd-{i}")).collect()
    }

    #[test]
    fn membership_passes_only_the_expected_members_under_the_right_cluster_id() {
        let want: Vec<ListedMember> = (1..=3).map(|i| member(i, true)).collect();
        let restored = ClusterIdRule::NewAfter(0xaaa);
        let judge = |listed: &[ListedMember], id, rule| {
            judge_membership(listed, &want, &names(3), id, rule)
        };
        assert!(judge(&want, Some(0xbbb), restored).0, "a faithful restore");
        assert!(
            judge(&want, Some(0xaaa), ClusterIdRule::Same(0xaaa)).0,
            "no restore"
        );

        let (ok, why) = judge(&want, Some(0xaaa), restored);
        assert!(!ok && why.contains("not a restored cluster"), "{why}");
        let (ok, why) = judge(&want, None, restored);
        assert!(!ok && why.contains("no cluster ID"), "{why}");
        let (ok, why) = judge(&want, Some(0xbbb), ClusterIdRule::Same(0xaaa));
        assert!(!ok && why.contains("the cluster had aaa"), "{why}");
        // A member left out of the restore.
        let (ok, why) = judge(&want[..2], Some(0xbbb), restored);
        assert!(!ok && why.contains("want"), "{why}");
        // A member listed but never started.
        let mut listed = want.clone();
        listed[2].started = false;
        let (ok, why) = judge(&listed, Some(0xbbb), restored);
        assert!(
            !ok && why.contains("etcd-3 (ID 103) has not started"),
            "{why}"
        );
        // Another member under the right name: its ID or peer URL gives it away.
        let mut listed = want.clone();
        listed[1].id = 0x999;
        assert!(!judge(&listed, Some(0xbbb), restored).0);
        let mut listed = want.clone();
        listed[1].peer_urls = vec!["http://elsewhere:2380".into()];
        assert!(!judge(&listed, Some(0xbbb), restored).0);
        // An ID the harness never learned cannot be vouched for.
        let mut unknown = want.clone();
        unknown[0].id = 0;
        let (ok, why) = judge_membership(&want, &unknown, &names(3), Some(0xbbb), restored);
        assert!(!ok && why.contains("never learned its ID"), "{why}");
    }
}
