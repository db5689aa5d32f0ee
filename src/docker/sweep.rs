//! What a `cleanup` removes and what it keeps, and why, decided from the objects' labels
//! alone (the facts about this host's processes come in through the judge).

use std::collections::BTreeSet;

use super::objects::{Found, Selector};
use super::owner::Liveness;

/// Which objects a `cleanup` is asked to remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Plain `cleanup`: only objects whose run is known to be dead.
    Dead,
    /// `--cluster NAME`: that cluster's objects, whoever made them and whether or not
    /// their run lives: the user named it.
    Cluster(String),
    /// `--all`: everything labelled etcd-drill=1.
    All,
}

impl Scope {
    /// The objects this scope looks at.
    pub fn selector(&self) -> Selector {
        match self {
            Scope::Cluster(name) => Selector::cluster(name),
            Scope::Dead | Scope::All => Selector::all(),
        }
    }
}

/// A cleanup's decision: what goes, and what stays with the reason.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    pub remove: Vec<Found>,
    pub keep: Vec<(Found, Liveness)>,
}

impl Plan {
    /// Clusters with an object that stays: their state directories stay too.
    pub fn kept_clusters(&self) -> BTreeSet<String> {
        self.keep
            .iter()
            .filter_map(|(f, _)| f.cluster().map(str::to_string))
            .collect()
    }
}

/// Splits what `scope`'s selector found: an explicit scope (`--cluster`, `--all`) removes
/// all of it; plain `cleanup` removes what `judge` says is dead and keeps the rest.
pub fn plan(found: Vec<Found>, scope: &Scope, judge: impl Fn(&Found) -> Liveness) -> Plan {
    let mut p = Plan::default();
    for f in found {
        let verdict = match scope {
            Scope::Dead => judge(&f),
            Scope::Cluster(_) | Scope::All => Liveness::Dead,
        };
        if verdict.removable() {
            p.remove.push(f);
        } else {
            p.keep.push((f, verdict));
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::docker::objects::{Kind, LABEL_CLUSTER};

    fn obj(name: &str, cluster: &str) -> Found {
        Found {
            kind: Kind::Container,
            name: name.into(),
            id: name.into(),
            labels: HashMap::from([(LABEL_CLUSTER.to_string(), cluster.to_string())]),
        }
    }

    /// Liveness by the object's name, as a fake host would say.
    fn judge(f: &Found) -> Liveness {
        match f.name.split('-').next().unwrap() {
            "dead" => Liveness::Dead,
            "live" => Liveness::Alive,
            "up" => Liveness::KeptByUser,
            "far" => Liveness::OtherHost("ci-2".into()),
            "old" => Liveness::NoOwner,
            other => Liveness::Unreadable(other.into()),
        }
    }

    fn found() -> Vec<Found> {
        [
            "dead-1", "dead-2", "live-1", "up-1", "far-1", "old-1", "junk-1",
        ]
        .iter()
        .map(|n| obj(n, n.split('-').next().unwrap()))
        .collect()
    }

    #[test]
    fn plain_cleanup_removes_only_dead_runs_and_says_why_it_keeps_the_rest() {
        let p = plan(found(), &Scope::Dead, judge);
        let removed: Vec<&str> = p.remove.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(removed, ["dead-1", "dead-2"]);
        let kept: Vec<(&str, &Liveness)> =
            p.keep.iter().map(|(f, l)| (f.name.as_str(), l)).collect();
        assert_eq!(kept.len(), 5);
        assert!(kept.contains(&("live-1", &Liveness::Alive)));
        assert!(kept.contains(&("far-1", &Liveness::OtherHost("ci-2".into()))));
        assert!(kept.contains(&("junk-1", &Liveness::Unreadable("junk".into()))));
        assert_eq!(
            p.kept_clusters(),
            BTreeSet::from(["far", "junk", "live", "old", "up"].map(String::from))
        );
    }

    #[test]
    fn an_explicit_scope_removes_everything_it_found_without_judging() {
        let never = |_: &Found| -> Liveness { panic!("--all and --cluster do not judge") };
        for scope in [Scope::All, Scope::Cluster("live".into())] {
            let p = plan(found(), &scope, never);
            assert_eq!(p.remove.len(), 7, "{scope:?}");
            assert!(p.keep.is_empty() && p.kept_clusters().is_empty());
        }
        assert_eq!(plan(vec![], &Scope::Dead, judge), Plan::default());
        assert_eq!(
            Scope::Cluster("x".into()).selector(),
            Selector::cluster("x")
        );
        assert_eq!(Scope::Dead.selector(), Selector::all());
    }
}
