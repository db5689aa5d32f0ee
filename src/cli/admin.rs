//! `image build` and `cleanup`: the environment around the drills.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::{Outcome, plural};
use crate::cluster;
use crate::cluster::image::{self, Line, Source};
use crate::docker::owner::{self, Liveness};
use crate::docker::sweep::{self, Plan, Scope};
use crate::docker::{self, Found, Objects};
use crate::error::Result;

pub(super) async fn image_build(
    version: &str,
    from_dir: Option<PathBuf>,
    reference: Option<String>,
    force: bool,
) -> Result<Outcome> {
    let source = match (from_dir, reference) {
        (Some(dir), _) => Source::Dir(dir),
        (None, Some(reference)) => Source::Existing(reference),
        (None, None) => Source::Debian(Line::parse(version)?),
    };
    let docker = docker::connect().await?;
    let img = image::build(&docker, source, force).await?;
    println!("{} (etcd {})", img.tag, img.version);
    Ok(Outcome::Ok)
}

/// `cleanup [--cluster NAME | --all] [--dry-run]`: the Docker objects the scope removes
/// (plain: those of dead runs), then the state directories of clusters with no object left.
pub(super) async fn cleanup(scope: Scope, dry_run: bool) -> Result<Outcome> {
    if let Scope::Cluster(name) = &scope {
        cluster::validate_name(name)?;
    }
    let docker = docker::connect().await?;
    let found = docker::list_found(&docker, &scope.selector()).await?;
    let here = owner::this_host();
    let plan = sweep::plan(found, &scope, |f| {
        owner::liveness(&f.labels, here.as_ref(), owner::running_since)
    });
    let only = match &scope {
        Scope::Cluster(name) => Some(name.as_str()),
        Scope::Dead | Scope::All => None,
    };
    let root = cluster::state_root();
    let (removed, dirs) = if dry_run {
        for line in dry_run_lines(&plan) {
            println!("{line}");
        }
        let dirs = cluster::stale_run_dirs(&root, &plan.kept_clusters(), only)?;
        for d in &dirs {
            println!("would remove state directory {}", d.display());
        }
        (Objects::of(&plan.remove), dirs.len())
    } else {
        let removed = docker::remove_found(&docker, &plan.remove).await?;
        // Clusters with objects left (kept, created since, or not selected) keep their directory.
        let live = docker::cluster_names(&docker).await?;
        (removed, cluster::remove_stale_run_dirs(&root, &live, only)?)
    };
    for line in summary(&scope, dry_run, &removed, dirs, &root, &plan.keep) {
        println!("{line}");
    }
    Ok(Outcome::Ok)
}

/// One line per object a dry run would remove or keep, with why it stays.
fn dry_run_lines(plan: &Plan) -> Vec<String> {
    let at = |f: &Found| match f.cluster() {
        Some(c) => format!("{} {} (cluster {c})", f.kind.word(), f.name),
        None => format!("{} {}", f.kind.word(), f.name),
    };
    let removed = plan
        .remove
        .iter()
        .map(|f| format!("would remove {}", at(f)));
    let kept = (plan.keep.iter()).map(|(f, why)| format!("would keep {}: {}", at(f), reason(why)));
    removed.chain(kept).collect()
}

fn reason(why: &Liveness) -> String {
    match why {
        Liveness::Dead => "its run is no longer alive".into(),
        Liveness::Alive => "its run is still alive".into(),
        Liveness::KeptByUser => "made by `cluster up`".into(),
        Liveness::OtherHost(h) => {
            format!(
                "made on another host or pid namespace ({h}); its run cannot be checked from here"
            )
        }
        Liveness::NoOwner => {
            "no owner label (an older etcd-drill, which may still be running, made it)".into()
        }
        Liveness::Unreadable(v) => format!("owner label {v:?} cannot be read"),
    }
}

/// What was removed (or would be), then one line per reason objects were kept, each with
/// the command that removes them when the user wants them gone.
fn summary(
    scope: &Scope,
    dry_run: bool,
    removed: &Objects,
    dirs: usize,
    root: &Path,
    kept: &[(Found, Liveness)],
) -> Vec<String> {
    let what = match scope {
        Scope::Dead => "of runs no longer alive".to_string(),
        Scope::Cluster(name) => format!("of cluster {name}"),
        Scope::All => "labelled etcd-drill=1".to_string(),
    };
    let verb = if dry_run { "would remove" } else { "removed" };
    let mut lines = vec![format!(
        "{verb} {}, {}, {} {what}, and {} under {}",
        plural(removed.containers.len(), "container"),
        plural(removed.networks.len(), "network"),
        plural(removed.volumes.len(), "volume"),
        match dirs {
            1 => "1 state directory".to_string(),
            n => format!("{n} state directories"),
        },
        root.display()
    )];
    lines.extend(kept_lines(
        kept,
        if dry_run { "would keep" } else { "kept" },
    ));
    if dry_run {
        lines.push("dry run: nothing was removed".into());
    }
    lines
}

/// Kept objects grouped by reason: how many, of which clusters, and the remedy.
fn kept_lines(kept: &[(Found, Liveness)], verb: &str) -> Vec<String> {
    let mut groups: BTreeMap<u8, (usize, BTreeSet<String>)> = BTreeMap::new();
    for (f, why) in kept {
        let (order, cluster) = match why {
            Liveness::Alive => (0, f.cluster().unwrap_or("?").to_string()),
            Liveness::KeptByUser => (1, f.cluster().unwrap_or("?").to_string()),
            Liveness::OtherHost(h) => (2, format!("{} on {h}", f.cluster().unwrap_or("?"))),
            Liveness::NoOwner => (3, f.cluster().unwrap_or("?").to_string()),
            Liveness::Unreadable(_) | Liveness::Dead => (4, f.cluster().unwrap_or("?").to_string()),
        };
        let g = groups.entry(order).or_default();
        g.0 += 1;
        g.1.insert(cluster);
    }
    groups
        .into_iter()
        .map(|(order, (n, clusters))| {
            let (of, remedy) = match order {
                0 => ("of runs still alive", "each removes its own when it ends"),
                1 => (
                    "of clusters made by `cluster up`",
                    "`etcd-drill cluster down NAME` or `etcd-drill cleanup --all` removes them",
                ),
                2 => (
                    "of runs on another host or pid namespace, which cannot be checked from here",
                    "once they are done, `etcd-drill cleanup --cluster NAME` (or `--all`) removes them",
                ),
                3 => (
                    "without an owner label, made by an older etcd-drill that may still be running",
                    "once it is done, `etcd-drill cleanup --cluster NAME` (or `--all`) removes them",
                ),
                _ => (
                    "with an owner label this version cannot read",
                    "`etcd-drill cleanup --cluster NAME` (or `--all`) removes them",
                ),
            };
            format!("{verb} {} {of} ({}): {remedy}", plural(n, "object"), names(&clusters))
        })
        .collect()
}

/// "a, b, c, d, e and 2 more": clusters named in a line.
fn names(set: &BTreeSet<String>) -> String {
    let shown: Vec<&str> = set.iter().take(5).map(String::as_str).collect();
    match set.len().saturating_sub(shown.len()) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::docker::{Kind, LABEL_CLUSTER};

    fn obj(kind: Kind, name: &str, cluster: &str) -> Found {
        Found {
            kind,
            name: name.into(),
            id: name.into(),
            labels: HashMap::from([(LABEL_CLUSTER.to_string(), cluster.to_string())]),
        }
    }

    fn kept() -> Vec<(Found, Liveness)> {
        vec![
            (obj(Kind::Container, "a-etcd-1", "a"), Liveness::Alive),
            (obj(Kind::Network, "a-net", "a"), Liveness::Alive),
            (obj(Kind::Container, "b-etcd-1", "b"), Liveness::KeptByUser),
            (
                obj(Kind::Volume, "c-v", "c"),
                Liveness::OtherHost("ci-2".into()),
            ),
            (obj(Kind::Volume, "d-v", "d"), Liveness::NoOwner),
            (
                obj(Kind::Volume, "e-v", "e"),
                Liveness::Unreadable("x".into()),
            ),
        ]
    }

    #[test]
    fn every_kept_group_says_which_clusters_and_how_to_remove_them() {
        let lines = kept_lines(&kept(), "kept");
        assert_eq!(lines.len(), 5, "{lines:#?}");
        assert!(
            lines[0].starts_with("kept 2 objects of runs still alive (a)"),
            "{}",
            lines[0]
        );
        assert!(lines[1].contains("`cluster up` (b)") && lines[1].contains("cluster down NAME"));
        assert!(lines[2].contains("(c on ci-2)") && lines[2].contains("--cluster NAME"));
        assert!(lines[3].contains("without an owner label") && lines[3].contains("(d)"));
        assert!(lines[4].contains("cannot read (e)"), "{}", lines[4]);
        assert!(lines[3..].iter().all(|l| l.contains("--cluster NAME")));
        assert!(kept_lines(&[], "kept").is_empty());
    }

    #[test]
    fn the_summary_counts_what_went_and_a_dry_run_says_nothing_did() {
        let removed = Objects {
            containers: vec!["x".into(), "y".into()],
            networks: vec!["n".into()],
            volumes: vec![],
        };
        let root = Path::new("/tmp/state");
        let real = summary(&Scope::Dead, false, &removed, 1, root, &[]);
        assert_eq!(
            real,
            [
                "removed 2 containers, 1 network, 0 volumes of runs no longer alive, and 1 state directory under /tmp/state"
            ]
        );
        let dry = summary(&Scope::All, true, &removed, 0, root, &kept()[..1]);
        assert!(
            dry[0].starts_with("would remove 2 containers")
                && dry[0].contains("labelled etcd-drill=1")
        );
        assert!(dry[1].starts_with("would keep 1 object of runs still alive"));
        assert_eq!(dry.last().unwrap(), "dry run: nothing was removed");
        let one = summary(&Scope::Cluster("c1".into()), false, &removed, 0, root, &[]);
        assert!(one[0].contains("of cluster c1"));
    }

    #[test]
    fn a_dry_run_lists_each_object_with_why_it_stays() {
        let plan = Plan {
            remove: vec![obj(Kind::Container, "z-etcd-1", "z")],
            keep: kept(),
        };
        let lines = dry_run_lines(&plan);
        assert_eq!(lines[0], "would remove container z-etcd-1 (cluster z)");
        assert_eq!(
            lines[1],
            "would keep container a-etcd-1 (cluster a): its run is still alive"
        );
        assert!(
            lines[4].contains("another host or pid namespace (ci-2)"),
            "{}",
            lines[4]
        );
        assert_eq!(lines.len(), 7);
    }

    #[test]
    fn long_cluster_lists_are_cut() {
        let set: BTreeSet<String> = (1..=7).map(|i| format!("c{i}")).collect();
        assert_eq!(names(&set), "c1, c2, c3, c4, c5 and 2 more");
    }
}
