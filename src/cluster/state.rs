//! Per-cluster files on disk (certificates, snapshots): where they live, and removing the
//! ones no cluster owns any more.

use std::path::PathBuf;

use super::validate_name;
use crate::error::{Error, Result};

/// Where per-cluster files (certificates, snapshots) live: `$ETCD_DRILL_STATE_DIR/<cluster>`,
/// by default under the system temp dir.
pub fn run_dir(cluster: &str) -> PathBuf {
    state_root().join(cluster)
}

/// The directory holding every cluster's run directory.
pub fn state_root() -> PathBuf {
    std::env::var_os("ETCD_DRILL_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("etcd-drill"))
}

/// What a run directory may hold; a directory holding anything else is not ours.
const RUN_DIR_ENTRIES: [&str; 2] = ["pki", "snapshots"];

/// The run directories under `root` of clusters not in `live` (all of them, or only
/// `only`): what a cleanup removes. Only real directories named like a cluster and holding
/// nothing but `pki` and `snapshots` count: `root` may be a directory the user shares with
/// other things (`ETCD_DRILL_STATE_DIR`).
pub fn stale_run_dirs(
    root: &std::path::Path,
    live: &std::collections::BTreeSet<String>,
    only: Option<&str>,
) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        r => r.map_err(Error::io("listing the state directory", root))?,
    };
    let mut stale: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| {
            only.is_none_or(|o| o == name) && !live.contains(name) && validate_name(name).is_ok()
        })
        .map(|name| root.join(name))
        .filter(|dir| is_run_dir(dir))
        .collect();
    stale.sort();
    Ok(stale)
}

/// Removes [`stale_run_dirs`] and returns how many.
pub fn remove_stale_run_dirs(
    root: &std::path::Path,
    live: &std::collections::BTreeSet<String>,
    only: Option<&str>,
) -> Result<usize> {
    let stale = stale_run_dirs(root, live, only)?;
    for dir in &stale {
        std::fs::remove_dir_all(dir).map_err(Error::io("removing a stale run directory", dir))?;
    }
    Ok(stale.len())
}

/// A real directory (not a link), not empty, whose entries are all directories in
/// [`RUN_DIR_ENTRIES`].
fn is_run_dir(dir: &std::path::Path) -> bool {
    let real_dir = |p: &std::path::Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let entries: Vec<_> = entries.collect();
    real_dir(dir)
        && !entries.is_empty()
        && entries.iter().all(|e| {
            e.as_ref().is_ok_and(|e| {
                RUN_DIR_ENTRIES.contains(&e.file_name().to_string_lossy().as_ref())
                    && real_dir(&e.path())
            })
        })
}

/// Removes cluster `name`'s run directory, if there is one.
pub(super) fn remove_run_dir(name: &str) -> Result<()> {
    let dir = run_dir(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .map_err(Error::io("removing the cluster's run directory", &dir))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mkdirs(root: &std::path::Path, dirs: &[&str]) {
        for d in dirs {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
    }

    #[test]
    fn stale_run_dirs_go_and_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("state");
        mkdirs(
            &root,
            &["dead-1/pki", "dead-2/snapshots", "dead-3/pki", "live/pki"],
        );
        std::fs::write(root.join("dead-3/pki/ca.pem"), "x").unwrap();
        // Not ours: a name no cluster can have, unknown content, empty, a file, a link.
        mkdirs(&root, &["Not_Ours/pki", "src/pki", "src/lib", "empty"]);
        std::fs::write(root.join("notes"), "keep").unwrap();
        let outside = tmp.path().join("outside");
        mkdirs(&outside, &["pki"]);
        std::os::unix::fs::symlink(&outside, root.join("linked")).unwrap();
        let live = std::collections::BTreeSet::from(["live".to_string()]);
        assert_eq!(
            stale_run_dirs(&root, &live, None).unwrap(),
            ["dead-1", "dead-2", "dead-3"].map(|d| root.join(d)),
            "listing removes nothing"
        );

        assert_eq!(
            remove_stale_run_dirs(&root, &live, Some("dead-1")).unwrap(),
            1
        );
        assert!(!root.join("dead-1").exists());
        assert!(
            root.join("dead-2").exists(),
            "--cluster dead-1 touches only dead-1"
        );
        assert_eq!(remove_stale_run_dirs(&root, &live, None).unwrap(), 2);
        for kept in ["live", "Not_Ours", "src", "empty", "notes", "linked"] {
            assert!(root.join(kept).exists(), "{kept} must stay");
        }
        assert!(outside.join("pki").exists());
        assert_eq!(remove_stale_run_dirs(&root, &live, None).unwrap(), 0);
        let missing = tmp.path().join("never-created");
        assert_eq!(remove_stale_run_dirs(&missing, &live, None).unwrap(), 0);
    }
}
