//! Snapshots: saved from a live member through the Maintenance API (streamed to disk, its
//! sha256 trailer checked), checked before anything is torn down, made visible to tool
//! containers (its directory mounted, or copied onto a labelled volume), inspected with the
//! version's own tool, and restored into fresh member volumes
//! with `etcdutl snapshot restore` (3.5) or `etcdctl snapshot restore` (3.4).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, Mount, VolumeCreateRequest};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::cluster::image::{BIN_DIR, EtcdImage, Line};
use crate::cluster::{Cluster, Member};
use crate::docker::{self, OneShot};
use crate::error::{Error, Result};
use crate::model::backup::{Integrity, SnapshotFile, SnapshotStatus};
use crate::poll::{self, Attempt};

/// Where snapshot files appear in tool containers.
pub const SNAPSHOT_DIR: &str = "/snapshots";
const TRAILER: usize = 32;

/// `20181215_145639_snapshot.db`, like the seed's `$(date +%Y%m%d_%H%M%S)_snapshot.db`.
pub fn snapshot_file_name() -> String {
    let fmt = time::macros::format_description!("[year][month][day]_[hour][minute][second]");
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{}_snapshot.db",
        now.format(fmt).unwrap_or_else(|_| "snapshot".into())
    )
}

/// Streams a snapshot from `member` into `dir`, checks the sha256 trailer etcd appends,
/// and fsyncs the file and its directory before returning. Never held in memory whole.
pub async fn save(cluster: &Cluster, member: &Member, dir: &Path) -> Result<SnapshotFile> {
    std::fs::create_dir_all(dir).map_err(Error::io("creating the snapshot directory", dir))?;
    let mut name = snapshot_file_name();
    // Two snapshots in one second (tests do that): keep both.
    let mut n = 1;
    while dir.join(&name).exists() {
        name = format!("{}_{n}_snapshot.db", name.trim_end_matches("_snapshot.db"));
        n += 1;
    }
    let path = dir.join(&name);
    let mut client = cluster.client(member).await?;
    let mut stream = client
        .snapshot()
        .await
        .map_err(Error::etcd(&member.name, "starting a snapshot"))?;
    let file = tokio::fs::File::create(&path)
        .await
        .map_err(Error::io("creating the snapshot file", &path))?;
    let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
    let mut body_hash = Sha256::new();
    let mut tail: Vec<u8> = Vec::with_capacity(2 * TRAILER);
    let mut size = 0u64;
    while let Some(msg) = stream
        .message()
        .await
        .map_err(Error::etcd(&member.name, "streaming the snapshot"))?
    {
        let blob = msg.blob();
        out.write_all(blob)
            .await
            .map_err(Error::io("writing the snapshot", &path))?;
        size += blob.len() as u64;
        // Everything but the last 32 bytes is the body the trailer hashes.
        tail.extend_from_slice(blob);
        if tail.len() > TRAILER {
            let cut = tail.len() - TRAILER;
            body_hash.update(&tail[..cut]);
            tail.drain(..cut);
        }
    }
    out.flush()
        .await
        .map_err(Error::io("writing the snapshot", &path))?;
    let file = out.into_inner();
    file.sync_all()
        .await
        .map_err(Error::io("fsyncing the snapshot", &path))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    // The whole file's hash is the body's continued over the trailer: one pass, one hash.
    let mut file_hash = body_hash.clone();
    file_hash.update(&tail);
    if tail.len() != TRAILER || body_hash.finalize().as_slice() != tail.as_slice() {
        return Err(Error::BadSnapshot {
            path: path.clone(),
            reason: format!(
                "the snapshot streamed from {} does not match its own sha256 trailer",
                member.name
            ),
        });
    }
    Ok(SnapshotFile {
        path,
        size,
        sha256: hex::encode(file_hash.finalize()),
        member: Some(member.name.clone()),
    })
}

/// Checks a snapshot file on the host before anything else happens: not empty, and either a
/// matching sha256 trailer or, only with `skip_hash_check`, a plain database file.
/// A refusal of the snapshot at `path`, for its reason.
fn refusal(path: &Path) -> impl Fn(String) -> Error + '_ {
    move |reason| Error::BadSnapshot {
        path: path.to_path_buf(),
        reason,
    }
}

pub fn check_file(path: &Path, skip_hash_check: bool) -> Result<(SnapshotFile, Integrity)> {
    use std::io::Read;
    let bad = refusal(path);
    let meta = std::fs::metadata(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    if !meta.is_file() {
        return Err(bad("not a regular file".into()));
    }
    let mut f = std::fs::File::open(path).map_err(|e| bad(format!("cannot open it: {e}")))?;
    let mut check = StreamCheck::new(meta.len());
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| bad(format!("read error: {e}")))?;
        if n == 0 {
            break;
        }
        check.update(&buf[..n]);
    }
    check.finish(path, skip_hash_check)
}

/// [`check_file`]'s hashing, fed chunk by chunk as the bytes go by (a download hashes on
/// the way, so the file need not be read again): one pass, one hash — the whole file's
/// sha256 is the body's continued over the trailer.
#[derive(Clone)]
pub struct StreamCheck {
    body_hash: Sha256,
    body_len: u64,
    read: u64,
    tail: Vec<u8>,
    size: u64,
}

impl StreamCheck {
    /// For a file of `size` bytes.
    pub fn new(size: u64) -> Self {
        StreamCheck {
            body_hash: Sha256::new(),
            body_len: size.saturating_sub(TRAILER as u64),
            read: 0,
            tail: Vec::with_capacity(TRAILER),
            size,
        }
    }

    pub fn update(&mut self, chunk: &[u8]) {
        let n = chunk.len();
        let in_body = (self.body_len.saturating_sub(self.read) as usize).min(n);
        self.body_hash.update(&chunk[..in_body]);
        self.tail.extend_from_slice(&chunk[in_body..]);
        self.read += n as u64;
    }

    /// The verdict on the bytes seen, for the file now at `path`.
    pub fn finish(self, path: &Path, skip_hash_check: bool) -> Result<(SnapshotFile, Integrity)> {
        let bad = refusal(path);
        let size = self.size;
        if size == 0 {
            return Err(bad("the file is empty".into()));
        }
        if self.read != size {
            return Err(bad(format!(
                "{} bytes were read of {size}: it changed while it was read",
                self.read
            )));
        }
        let mut file_hash = self.body_hash.clone();
        file_hash.update(&self.tail);
        let file = SnapshotFile {
            path: path.to_path_buf(),
            size,
            sha256: hex::encode(file_hash.finalize()),
            member: None,
        };
        // etcd's own rule: a snapshot with a hash is database pages plus a 32-byte trailer.
        let has_trailer = size % 512 == TRAILER as u64;
        // A trailer that is there and wrong is corruption, whatever the flag says: the flag is
        // for a `db` copied from a data dir, which has no trailer at all.
        if has_trailer {
            if self.body_hash.finalize().as_slice() == self.tail.as_slice() {
                return Ok((file, Integrity::HashVerified));
            }
            return Err(bad("its sha256 trailer does not match its content: the file is corrupt (bit rot, a bad copy); --skip-hash-check does not accept a wrong hash, only a missing one".into()));
        }
        if skip_hash_check {
            return Ok((file, Integrity::NoHashSkipped));
        }
        Err(bad(format!(
            "it has no sha256 trailer ({size} bytes is not database pages plus a 32-byte hash): it is truncated, not a snapshot, \
             or a `db` file copied from a data dir — for the last, pass --skip-hash-check"
        )))
    }
}

/// Where tool containers find snapshot files, mounted at [`SNAPSHOT_DIR`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotSource {
    /// The host directory holding the file, bind-mounted read-only: nothing is copied, so
    /// the restore starts at once. Only when the daemon shares this machine's filesystem.
    HostDir(PathBuf),
    /// A labelled volume the file was copied onto: works with any daemon.
    Volume(String),
}

impl SnapshotSource {
    pub fn mount(&self) -> Mount {
        match self {
            SnapshotSource::HostDir(dir) => docker::bind_mount_ro(dir, SNAPSHOT_DIR),
            SnapshotSource::Volume(name) => docker::volume_mount(name, SNAPSHOT_DIR),
        }
    }

    /// Makes `file` visible to tool containers under its own file name: its directory is
    /// mounted when the daemon can see it, else the file is copied onto `volume`.
    pub async fn stage(
        docker: &Docker,
        image: &EtcdImage,
        labels: std::collections::HashMap<String, String>,
        volume: &str,
        file: &Path,
    ) -> Result<Self> {
        if docker::shares_host_filesystem(docker).await
            && let Ok(real) = std::fs::canonicalize(file)
            && real.file_name() == file.file_name()
            && let Some(dir) = real.parent()
        {
            return Ok(SnapshotSource::HostDir(dir.to_path_buf()));
        }
        Self::copy(docker, image, labels, volume, file).await
    }

    /// Copies `file` onto a labelled volume named `volume` (created if missing).
    pub async fn copy(
        docker: &Docker,
        image: &EtcdImage,
        labels: std::collections::HashMap<String, String>,
        volume: &str,
        file: &Path,
    ) -> Result<Self> {
        docker
            .create_volume(VolumeCreateRequest {
                name: Some(volume.to_string()),
                labels: Some(labels.clone()),
                ..Default::default()
            })
            .await
            .map_err(Error::docker(format!("creating snapshot volume {volume}")))?;
        let as_name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        put_on_volume(docker, image, labels, volume, file, &as_name).await?;
        Ok(SnapshotSource::Volume(volume.to_string()))
    }
}

/// Copies a file onto a volume, streamed: through a container that is created with the
/// volume mounted and never started.
async fn put_on_volume(
    docker: &Docker,
    image: &EtcdImage,
    labels: std::collections::HashMap<String, String>,
    volume: &str,
    file: &Path,
    as_name: &str,
) -> Result<()> {
    let holder = format!("etcd-drill-copy-{}", docker::new_run_id());
    docker
        .create_container(
            Some(
                CreateContainerOptionsBuilder::default()
                    .name(&holder)
                    .build(),
            ),
            ContainerCreateBody {
                image: Some(image.tag.clone()),
                labels: Some(labels),
                host_config: Some(HostConfig {
                    mounts: Some(vec![docker::volume_mount(volume, SNAPSHOT_DIR)]),
                    network_mode: Some("none".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .map_err(Error::docker("creating a container to copy the snapshot"))?;
    let result = async {
        let size = std::fs::metadata(file)
            .map_err(Error::io("reading the snapshot", file))?
            .len();
        let stream = tar_stream_of_file(file, as_name, size).await?;
        let opts = UploadToContainerOptionsBuilder::default()
            .path(SNAPSHOT_DIR)
            .build();
        docker
            .upload_to_container(&holder, Some(opts), bollard::body_try_stream(stream))
            .await
            .map_err(Error::docker(format!(
                "copying {} onto volume {}",
                file.display(),
                volume
            )))
    }
    .await;
    let rm = RemoveContainerOptionsBuilder::default().force(true).build();
    let _ = docker::ignore_missing(docker.remove_container(&holder, Some(rm)).await);
    result
}

/// A one-entry tar archive as a stream: header, the file's bytes straight from disk, padding.
async fn tar_stream_of_file(
    file: &Path,
    name: &str,
    size: u64,
) -> Result<
    impl futures_util::Stream<Item = std::result::Result<bytes::Bytes, std::io::Error>> + use<>,
> {
    let mut h = tar::Header::new_gnu();
    h.set_path(name)
        .map_err(Error::io("naming the snapshot in the archive", file))?;
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_cksum();
    let header = bytes::Bytes::copy_from_slice(h.as_bytes());
    let pad = ((512 - (size % 512)) % 512) as usize;
    let trailer = bytes::Bytes::from(vec![0u8; pad + 1024]);
    let f = tokio::fs::File::open(file)
        .await
        .map_err(Error::io("opening the snapshot", file))?;
    let body = tokio_util::io::ReaderStream::with_capacity(f, 1 << 20);
    Ok(futures_util::stream::once(async move { Ok(header) })
        .chain(body)
        .chain(futures_util::stream::once(async move { Ok(trailer) })))
}

/// The offline snapshot tool of the image's line: etcdutl (3.5) or etcdctl (3.4).
fn offline_tool(image: &EtcdImage) -> String {
    let tool = if image.has_etcdutl() {
        "etcdutl"
    } else {
        "etcdctl"
    };
    format!("{BIN_DIR}/{tool}")
}

/// Runs `snapshot status` with the image's own tool on a staged file.
pub async fn status(
    docker: &Docker,
    image: &EtcdImage,
    source: &SnapshotSource,
    file: &str,
    labels: std::collections::HashMap<String, String>,
) -> Result<SnapshotStatus> {
    let tool = offline_tool(image);
    let out = OneShot::new(
        &image.tag,
        &tool,
        vec![
            "snapshot".into(),
            "status".into(),
            format!("{SNAPSHOT_DIR}/{file}"),
            "-w".into(),
            "json".into(),
        ],
        labels,
    )
    .mounts(vec![source.mount()])
    .env(vec!["ETCDCTL_API=3".into()])
    .run(docker)
    .await?;
    let json = out.output.lines().find(|l| l.trim_start().starts_with('{'));
    match (
        out.exit_code,
        json.map(serde_json::from_str::<SnapshotStatus>),
    ) {
        (0, Some(Ok(s))) => Ok(s),
        _ => Err(Error::BadSnapshot {
            path: PathBuf::from(file),
            reason: format!(
                "`{} snapshot status` cannot read it: {}",
                tool.rsplit('/').next().unwrap_or(""),
                out.output.trim()
            ),
        }),
    }
}

/// Options of one member's restore.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    pub skip_hash_check: bool,
    /// `--bump-revision N --mark-compacted` (3.5 only).
    pub bump_revision: Option<u64>,
}

/// Checks restore options against what the image's tool supports, before anything starts.
pub fn check_restore_options(image: &EtcdImage, opts: &RestoreOptions) -> Result<()> {
    if opts.bump_revision.is_some() && image.line() == Line::V3_4 {
        return Err(Error::InvalidInput(format!(
            "--bump-revision needs etcdutl from etcd 3.5 (image {} is etcd {}); restore with --version 3.5",
            image.tag, image.version
        )));
    }
    Ok(())
}

/// Restores `file` (staged at `source`) into `member`'s data volume, as the seed's per-node
/// `snapshot restore` with `--name`, `--initial-cluster`, a new `--initial-cluster-token`
/// and `--initial-advertise-peer-urls`. Returns the seconds it took.
pub async fn restore_member(
    cluster: &Cluster,
    member: &Member,
    source: &SnapshotSource,
    file: &str,
    opts: &RestoreOptions,
) -> Result<f64> {
    let t0 = Instant::now();
    let image = &cluster.image;
    let tool = offline_tool(image);
    let mut args = vec![
        "snapshot".to_string(),
        "restore".into(),
        format!("{SNAPSHOT_DIR}/{file}"),
        format!("--name={}", member.name),
        format!("--initial-cluster={}", cluster.initial_cluster()),
        format!("--initial-cluster-token={}", cluster.token),
        format!("--initial-advertise-peer-urls={}", member.peer_url),
        format!("--data-dir={}", crate::cluster::DATA_DIR),
    ];
    if opts.skip_hash_check {
        args.push("--skip-hash-check".into());
    }
    if let Some(n) = opts.bump_revision {
        args.push(format!("--bump-revision={n}"));
        args.push("--mark-compacted".into());
    }
    // The restore resolves peer URL hosts and waits ~30 s for names that do not resolve;
    // the members are down, so map every member name to loopback for the tool.
    let extra_hosts = cluster
        .members
        .iter()
        .map(|m| format!("{}:127.0.0.1", m.name))
        .collect();
    let out = OneShot::new(&image.tag, &tool, args, cluster.labels(&[]))
        .mounts(vec![
            docker::volume_mount(&member.volume, crate::cluster::VOLUME_MOUNT),
            source.mount(),
        ])
        .extra_hosts(extra_hosts)
        .env(vec!["ETCDCTL_API=3".into()])
        .run(cluster.docker())
        .await?;
    if out.exit_code != 0 {
        return Err(Error::Failed(format!(
            "restoring {file} into member {} failed (exit {}): {}",
            member.name,
            out.exit_code,
            out.output.trim()
        )));
    }
    Ok(t0.elapsed().as_secs_f64())
}

/// How long a snapshot waits for its member to apply what was acknowledged.
pub const CATCH_UP: Duration = Duration::from_secs(10);

/// Waits (up to `limit`) until `m` has applied `revision`; returns the revision it had
/// applied when it caught up or the wait ended (`None`: it never answered). A follower's
/// snapshot is its own state, and a follower was seen to lag a whole dataset behind on a
/// loaded machine — the backup then held none of it. A member that does not catch up is
/// snapshotted anyway: the caller records the lag and a gate may fail it.
pub async fn caught_up(
    cluster: &Cluster,
    m: &Member,
    revision: i64,
    limit: Duration,
) -> Option<i64> {
    let c = cluster.client(m).await.ok()?;
    let opts = etcd_client::GetOptions::new().with_serializable();
    let seen = std::sync::Mutex::new(None);
    let _ = poll::until(limit, Duration::from_millis(50), || {
        let (mut c, opts, seen) = (c.clone(), opts.clone(), &seen);
        async move {
            let rev = c
                .get("/", Some(opts))
                .await
                .ok()
                .and_then(|r| r.header().map(|h| h.revision()));
            if let (Some(r), Ok(mut s)) = (rev, seen.lock()) {
                *s = Some(r);
            }
            match rev {
                Some(r) if r >= revision => Attempt::Ready(()),
                r => Attempt::NotYet(r),
            }
        }
    })
    .await;
    seen.into_inner().ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// Four database pages, then (optionally) a trailer.
    fn pages() -> Vec<u8> {
        (0..4 * 4096).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn a_good_trailer_passes_with_or_without_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = pages();
        b.extend_from_slice(&Sha256::digest(pages()));
        let p = write(dir.path(), "good.db", &b);
        for skip in [false, true] {
            let (_, i) = check_file(&p, skip).unwrap();
            assert_eq!(i, Integrity::HashVerified);
        }
    }

    #[test]
    fn a_wrong_trailer_is_corrupt_even_with_skip_hash_check() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = pages();
        b.extend_from_slice(&[0xAB; 32]);
        let p = write(dir.path(), "rotten.db", &b);
        for skip in [false, true] {
            let e = check_file(&p, skip).unwrap_err().to_string();
            assert!(e.contains("does not match its content"), "skip={skip}: {e}");
        }
    }

    #[test]
    fn a_missing_trailer_needs_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "db", &pages());
        let e = check_file(&p, false).unwrap_err().to_string();
        assert!(e.contains("--skip-hash-check"), "{e}");
        let (_, i) = check_file(&p, true).unwrap();
        assert_eq!(i, Integrity::NoHashSkipped);
    }
}
