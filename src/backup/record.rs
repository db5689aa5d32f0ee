//! A backup as recorded when it was taken (or handed to etcd-drill): the file and its
//! sha256, where tool containers find it, and what etcd's own `snapshot status` says of it.

use std::path::Path;

use crate::backup::ledger::Cut;
use crate::backup::snapshot::{self, SnapshotSource};
use crate::cluster::Cluster;
use crate::error::{Error, Result};
use crate::model::backup::{Integrity, SnapshotFile, SnapshotStatus};

/// A backup as the job that took it recorded it: the file (with its sha256), where tool
/// containers find it, and what `snapshot status` said of it. Recording happens when the
/// backup is taken, so a recovery only has to prove the file is still the same bytes.
#[derive(Debug, Clone)]
pub struct Backup {
    pub file: SnapshotFile,
    pub status: SnapshotStatus,
    pub source: SnapshotSource,
    /// Which history the snapshot was cut from, at its revision.
    pub cut: Cut,
}

impl Backup {
    /// The file's sha256 trailer checked again, and its sha256 compared with the recorded
    /// one: a backup that changed since it was taken is refused.
    pub async fn check(&self, skip_hash_check: bool) -> Result<(SnapshotFile, Integrity)> {
        let (file, integrity) = check_snapshot(&self.file.path, skip_hash_check).await?;
        if file.sha256 != self.file.sha256 {
            return Err(Error::BadSnapshot {
                path: file.path.clone(),
                reason: format!(
                    "its sha256 is {} but was {} when the backup was taken: it changed since",
                    file.sha256, self.file.sha256
                ),
            });
        }
        Ok((file, integrity))
    }
}

/// Records a freshly taken (or given) snapshot as a backup: checked, staged, and read by
/// the image's own `snapshot status`.
pub async fn record_backup(
    cluster: &Cluster,
    file: SnapshotFile,
    skip_hash_check: bool,
    era: usize,
) -> Result<Backup> {
    let (checked, status, source) = stage_snapshot(cluster, &file.path, skip_hash_check).await?;
    Ok(Backup {
        file: SnapshotFile {
            member: file.member,
            ..checked
        },
        cut: Cut {
            era,
            revision: status.revision,
        },
        status,
        source,
    })
}

/// Checks the file on the host: its sha256 trailer (or, with `skip_hash_check`, that it
/// is there). Reads only the file; nothing is torn down before this passes.
pub async fn check_snapshot(
    path: &Path,
    skip_hash_check: bool,
) -> Result<(SnapshotFile, Integrity)> {
    let owned = path.to_path_buf();
    tokio::task::spawn_blocking(move || snapshot::check_file(&owned, skip_hash_check))
        .await
        .map_err(|e| Error::Failed(format!("checking the snapshot: {e}")))?
}

fn snapshot_volume_name(cluster: &Cluster) -> String {
    format!("{}-snapshots", cluster.name())
}

/// Makes a snapshot file visible to the cluster's tool containers.
pub async fn stage_source(cluster: &Cluster, path: &Path) -> Result<SnapshotSource> {
    SnapshotSource::stage(
        cluster.docker(),
        &cluster.image,
        cluster.labels(&[]),
        &snapshot_volume_name(cluster),
        path,
    )
    .await
}

/// Checks the file on the host, makes it visible to tool containers, and reads its
/// revision and key count with the image's own `snapshot status` (which reads the bolt file
/// itself, so it also refuses a "snapshot" that is not a database even when
/// --skip-hash-check let it through the trailer check).
pub async fn stage_snapshot(
    cluster: &Cluster,
    path: &Path,
    skip_hash_check: bool,
) -> Result<(SnapshotFile, SnapshotStatus, SnapshotSource)> {
    let (file, _) = check_snapshot(path, skip_hash_check).await?;
    let (status, source) = stage_checked(cluster, &file).await?;
    Ok((file, status, source))
}

/// Stages a file already checked, and reads its status.
async fn stage_checked(
    cluster: &Cluster,
    file: &SnapshotFile,
) -> Result<(SnapshotStatus, SnapshotSource)> {
    let path = file.path.as_path();
    let source = stage_source(cluster, path).await?;
    let name = file.file_name();
    let status = |source: SnapshotSource| {
        let name = name.clone();
        async move {
            let s = snapshot::status(
                cluster.docker(),
                &cluster.image,
                &source,
                &name,
                cluster.labels(&[]),
            )
            .await?;
            Ok::<_, Error>((s, source))
        }
    };
    let (status, source) = match status(source.clone()).await {
        Err(_) if matches!(source, SnapshotSource::HostDir(_)) => {
            // A daemon that cannot see this machine's directory after all: copy the file.
            let copied = SnapshotSource::copy(
                cluster.docker(),
                &cluster.image,
                cluster.labels(&[]),
                &snapshot_volume_name(cluster),
                path,
            )
            .await?;
            status(copied).await?
        }
        other => other?,
    };
    Ok((status, source))
}

/// Records a file checked by the caller (before any container existed) as a backup,
/// without reading it again.
pub async fn record_checked(cluster: &Cluster, file: SnapshotFile) -> Result<Backup> {
    let (status, source) = stage_checked(cluster, &file).await?;
    Ok(Backup {
        cut: Cut {
            era: 0,
            revision: status.revision,
        },
        file,
        status,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file shaped like a snapshot: pages plus a sha256 trailer over them.
    fn fake_snapshot(dir: &Path, fill: u8) -> std::path::PathBuf {
        use sha2::Digest;
        let body = vec![fill; 4096];
        let mut bytes = body.clone();
        bytes.extend_from_slice(&sha2::Sha256::digest(&body));
        let path = dir.join("20181215_145639_snapshot.db");
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[tokio::test]
    async fn a_backup_that_changed_since_it_was_taken_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = fake_snapshot(dir.path(), 1);
        let (file, _) = crate::backup::snapshot::check_file(&path, false).unwrap();
        let backup = Backup {
            file,
            status: SnapshotStatus {
                hash: 0,
                revision: 1,
                total_key: 0,
                total_size: 4096,
            },
            source: SnapshotSource::HostDir(dir.path().to_path_buf()),
            cut: Cut {
                era: 0,
                revision: 1,
            },
        };
        backup.check(false).await.expect("the same bytes pass");

        // Replaced by another valid snapshot: its own trailer is fine, but it is not the
        // backup that was recorded.
        fake_snapshot(dir.path(), 2);
        let err = backup.check(false).await.unwrap_err().to_string();
        assert!(err.contains("changed since"), "{err}");
    }
}
