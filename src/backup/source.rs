//! Fetching a user's backup to a local file before anything starts: a file as it is, the
//! newest snapshot of a directory, or an object (or the newest under a prefix) from
//! S3-compatible storage, streamed to disk; gzip and zip unpacked. Every failure here is
//! bad input (exit 2) and happens before any container exists.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

use super::snapshot::StreamCheck;
use crate::error::{Error, Result};
use crate::model::backup::{Integrity, SnapshotFile};
use crate::model::source::{self, Entry, Origin, Packing, SNIFF_BYTES, Skipped, Source};

/// A backup made available as a local snapshot file.
pub struct Fetched {
    /// The snapshot itself (unpacked, if it was packed).
    pub path: PathBuf,
    pub origin: Origin,
    /// The snapshot's bytes, already hashed on their way to disk (a plain download), so
    /// checking it needs no second read.
    pub hashed: Option<StreamCheck>,
}

impl Fetched {
    /// The snapshot file checked: from the hashes taken on the way when there are some,
    /// else by reading it (on a blocking thread).
    pub async fn check(&mut self, skip_hash_check: bool) -> Result<(SnapshotFile, Integrity)> {
        match self.hashed.take() {
            Some(h) => h.finish(&self.path, skip_hash_check),
            None => super::record::check_snapshot(&self.path, skip_hash_check).await,
        }
    }
}

/// Fetches `source` into `work` (a directory this run owns) when it is not a plain local file.
pub async fn fetch(source: &Source, work: &Path) -> Result<Fetched> {
    let given = source.to_string();
    let (stored, mut origin, mut hashed) = match source {
        Source::Path(p) if p.is_dir() => with_no_hash(local_newest(p, &given)?),
        Source::Path(p) => with_no_hash(local_file(p, &given)?),
        Source::S3 { bucket, key } => {
            fetch_s3(bucket, key, source.is_prefix(), &given, work).await?
        }
    };
    let path = match origin.packing {
        Packing::Plain => stored,
        packed => {
            // What was hashed is the archive, not the snapshot in it.
            hashed = None;
            let out = work.to_path_buf();
            tokio::task::spawn_blocking(move || unpack(&stored, packed, &out))
                .await
                .map_err(|e| Error::Failed(format!("unpacking the backup: {e}")))??
        }
    };
    origin.object = origin.object.trim_start_matches("./").to_string();
    Ok(Fetched {
        path,
        origin,
        hashed,
    })
}

fn with_no_hash((p, o): (PathBuf, Origin)) -> (PathBuf, Origin, Option<StreamCheck>) {
    (p, o, None)
}

fn bad(path: &Path, reason: String) -> Error {
    Error::BadSnapshot {
        path: path.to_path_buf(),
        reason,
    }
}

fn sniff_file(path: &Path) -> Option<Packing> {
    let mut head = [0u8; SNIFF_BYTES];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .ok()?;
    source::sniff(&head[..n])
}

fn modified_ms(meta: &std::fs::Metadata) -> Option<u64> {
    let t = meta.modified().ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    Some(d.as_millis() as u64)
}

fn local_entry(path: &Path, name: String) -> Result<Entry> {
    let meta = std::fs::metadata(path).map_err(Error::io("reading the snapshot", path))?;
    Ok(Entry {
        name,
        size: meta.len(),
        modified_ms: modified_ms(&meta),
        packing: sniff_file(path),
    })
}

fn empty_object(path: &Path, what: &str) -> Error {
    bad(
        path,
        format!(
            "the {what} is empty (0 bytes): the backup job wrote or uploaded nothing; check the job's log and its storage"
        ),
    )
}

fn local_file(path: &Path, given: &str) -> Result<(PathBuf, Origin)> {
    let e = local_entry(path, path.display().to_string())?;
    if e.size == 0 {
        return Err(empty_object(path, "file"));
    }
    // A file named explicitly is checked as a snapshot even when it does not look like one,
    // so its refusal names what is wrong with it (trailer, size) rather than "unknown".
    let origin = origin_of(given, &e, e.packing.unwrap_or(Packing::Plain), vec![]);
    Ok((path.to_path_buf(), origin))
}

fn origin_of(given: &str, e: &Entry, packing: Packing, skipped: Vec<Skipped>) -> Origin {
    Origin {
        source: given.to_string(),
        object: e.name.clone(),
        packing,
        stored_bytes: e.size,
        taken_at_ms: source::taken_at_ms(e),
        skipped,
    }
}

/// The newest snapshot in a directory (RKE's `/opt/rke/etcd-snapshots/`, k3s's
/// `db/snapshots/`); partial, empty and foreign files are passed over and listed.
pub fn local_newest(dir: &Path, given: &str) -> Result<(PathBuf, Origin)> {
    let listing =
        std::fs::read_dir(dir).map_err(Error::io("listing the snapshot directory", dir))?;
    let mut entries = vec![];
    for e in listing.flatten() {
        let p = e.path();
        if p.is_file() {
            entries.push(local_entry(
                &p,
                e.file_name().to_string_lossy().into_owned(),
            )?);
        }
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let (best, skipped) = source::newest(&entries);
    let Some(best) = best else {
        return Err(no_snapshot(given, &skipped));
    };
    let packing = best.packing.expect("a candidate has a packing");
    Ok((
        dir.join(&best.name),
        origin_of(given, best, packing, skipped),
    ))
}

fn no_snapshot(given: &str, skipped: &[Skipped]) -> Error {
    let seen = if skipped.is_empty() {
        "it holds no files".to_string()
    } else {
        let list: Vec<String> = skipped
            .iter()
            .map(|s| format!("{} ({})", s.name, s.reason))
            .collect();
        format!("passed over: {}", list.join("; "))
    };
    Error::InvalidInput(format!(
        "no etcd snapshot in {given}: {seen}; point at the directory or prefix the backup job writes to"
    ))
}

/// Unpacks a gzip or zip backup into `out`, streaming; returns the snapshot's path.
fn unpack(stored: &Path, packing: Packing, out: &Path) -> Result<PathBuf> {
    let file = std::fs::File::open(stored).map_err(Error::io("opening the backup", stored))?;
    let name = stored
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let target = out.join(format!(
        "{}.unpacked.db",
        name.trim_end_matches(".gz").trim_end_matches(".zip")
    ));
    let mut dst =
        std::fs::File::create(&target).map_err(Error::io("unpacking the backup", &target))?;
    let copied = match packing {
        Packing::Gzip => std::io::copy(&mut flate2::read::GzDecoder::new(file), &mut dst),
        Packing::Zip => {
            let mut zip = zip::ZipArchive::new(file)
                .map_err(|e| bad(stored, format!("not a readable zip archive: {e}")))?;
            let index = zip_snapshot_entry(&mut zip)
                .ok_or_else(|| bad(stored, "the zip archive holds no etcd snapshot".into()))?;
            let mut entry = zip
                .by_index(index)
                .map_err(|e| bad(stored, format!("reading the zip archive: {e}")))?;
            std::io::copy(&mut entry, &mut dst)
        }
        Packing::Plain => unreachable!("plain snapshots are not unpacked"),
    };
    copied.map_err(|e| bad(stored, format!("unpacking it failed: {e}")))?;
    dst.sync_all()
        .map_err(Error::io("unpacking the backup", &target))?;
    Ok(target)
}

/// The archive entry that is a snapshot: the only file, or the first whose bytes say so.
fn zip_snapshot_entry<R: Read + std::io::Seek>(zip: &mut zip::ZipArchive<R>) -> Option<usize> {
    let files: Vec<usize> = (0..zip.len())
        .filter(|&i| zip.by_index(i).is_ok_and(|e| e.is_file()))
        .collect();
    if files.len() == 1 {
        return files.first().copied();
    }
    files.into_iter().find(|&i| {
        let mut head = [0u8; SNIFF_BYTES];
        zip.by_index(i)
            .ok()
            .and_then(|mut e| e.read(&mut head).ok())
            .is_some_and(|n| source::sniff(&head[..n]) == Some(Packing::Plain))
    })
}

/// The object store for `bucket`, from the usual AWS environment variables. Credentials
/// must be given: etcd-drill never asks an instance metadata service for them.
fn s3_store(bucket: &str) -> Result<AmazonS3> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let (Some(key), Some(secret)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) else {
        return Err(Error::InvalidInput(
            "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_ENDPOINT_URL for an S3-compatible server)".into(),
        ));
    };
    let region = var("AWS_REGION")
        .or_else(|| var("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|| "us-east-1".into());
    let mut b = AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region(region)
        .with_access_key_id(key)
        .with_secret_access_key(secret)
        .with_virtual_hosted_style_request(false);
    if let Some(token) = var("AWS_SESSION_TOKEN") {
        b = b.with_token(token);
    }
    let endpoint = var("AWS_ENDPOINT_URL_S3")
        .or_else(|| var("AWS_ENDPOINT_URL"))
        .or_else(|| var("AWS_ENDPOINT"));
    if let Some(ep) = endpoint {
        let loopback = ["http://127.", "http://localhost", "http://[::1]"]
            .iter()
            .any(|p| ep.starts_with(p));
        let allowed = var("AWS_ALLOW_HTTP").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if ep.starts_with("http://") && !loopback && !allowed {
            return Err(Error::InvalidInput(format!(
                "AWS_ENDPOINT_URL {ep} is plain http: use https, or set AWS_ALLOW_HTTP=true to accept it"
            )));
        }
        b = b.with_endpoint(ep).with_allow_http(true);
    }
    b.build()
        .map_err(|e| Error::InvalidInput(format!("cannot use S3 bucket {bucket}: {e}")))
}

/// What an S3 error means for the user, with what to do.
fn s3_error(what: &str, e: object_store::Error) -> Error {
    let text = e.to_string();
    let hint = if text.contains("NoSuchBucket") {
        "the bucket does not exist; check the bucket name and AWS_ENDPOINT_URL"
    } else if matches!(e, object_store::Error::NotFound { .. }) || text.contains("NoSuchKey") {
        "no such object; check the key, or end a prefix with /"
    } else if matches!(
        e,
        object_store::Error::Unauthenticated { .. } | object_store::Error::PermissionDenied { .. }
    ) || [
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
        "AccessDenied",
        "403",
    ]
    .iter()
    .any(|s| text.contains(s))
    {
        "the server refused the credentials; check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    } else {
        "check AWS_ENDPOINT_URL and that the server answers"
    };
    Error::InvalidInput(format!("{what}: {hint} ({text})"))
}

async fn fetch_s3(
    bucket: &str,
    key: &str,
    prefix: bool,
    given: &str,
    work: &Path,
) -> Result<(PathBuf, Origin, Option<StreamCheck>)> {
    let store = s3_store(bucket)?;
    let (entry, skipped) = if prefix {
        s3_newest(&store, key, given).await?
    } else {
        let meta = store
            .head(&ObjectPath::from(key))
            .await
            .map_err(|e| s3_error(&format!("reading {given}"), e))?;
        let mut e = s3_entry(&meta);
        e.packing = s3_sniff(&store, &meta).await;
        (e, vec![])
    };
    if entry.size == 0 {
        return Err(empty_object(Path::new(given), "object"));
    }
    let packing = entry.packing.unwrap_or(Packing::Plain);
    let base = entry.name.rsplit('/').next().unwrap_or("snapshot.db");
    let local = work.join(base);
    let hashed = download(&store, &entry.name, entry.size, &local).await?;
    Ok((
        local,
        origin_of(given, &entry, packing, skipped),
        Some(hashed),
    ))
}

fn s3_entry(meta: &object_store::ObjectMeta) -> Entry {
    Entry {
        name: meta.location.to_string(),
        size: meta.size,
        modified_ms: u64::try_from(meta.last_modified.timestamp_millis()).ok(),
        packing: None,
    }
}

async fn s3_sniff(store: &AmazonS3, meta: &object_store::ObjectMeta) -> Option<Packing> {
    if meta.size == 0 {
        return None;
    }
    let end = meta.size.min(SNIFF_BYTES as u64);
    let head = store.get_range(&meta.location, 0..end).await.ok()?;
    source::sniff(&head)
}

/// The newest snapshot under a prefix; only candidates' first bytes are read.
async fn s3_newest(store: &AmazonS3, prefix: &str, given: &str) -> Result<(Entry, Vec<Skipped>)> {
    let p = ObjectPath::from(prefix.trim_end_matches('/'));
    let mut listing = store.list(Some(&p));
    let mut entries = vec![];
    while let Some(meta) = listing.next().await {
        let meta = meta.map_err(|e| s3_error(&format!("listing {given}"), e))?;
        let mut e = s3_entry(&meta);
        if !source::is_partial(&e.name) && e.size > 0 {
            e.packing = s3_sniff(store, &meta).await;
        }
        entries.push(e);
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let (best, skipped) = source::newest(&entries);
    match best {
        Some(b) => Ok((b.clone(), skipped)),
        None => Err(no_snapshot(given, &skipped)),
    }
}

/// Streams an object to `local`, never holding it in memory, hashed on the way (see
/// [`StreamCheck`]): chunks arrive on the runtime and are hashed and written, through a
/// large buffer, by a blocking thread, so receiving and writing overlap; fsynced before it
/// is used.
async fn download(store: &AmazonS3, key: &str, size: u64, local: &Path) -> Result<StreamCheck> {
    let what = format!("downloading {key}");
    let got = store
        .get(&ObjectPath::from(key))
        .await
        .map_err(|e| s3_error(&what, e))?;
    let mut stream = got.into_stream();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(64);
    let path = local.to_path_buf();
    let writer = tokio::task::spawn_blocking(move || -> Result<StreamCheck> {
        let io = |e| Error::io("writing the downloaded backup", &path)(e);
        let file = std::fs::File::create(&path).map_err(io)?;
        let mut out = std::io::BufWriter::with_capacity(4 << 20, file);
        let mut check = StreamCheck::new(size);
        while let Some(chunk) = rx.blocking_recv() {
            check.update(&chunk);
            out.write_all(&chunk).map_err(io)?;
        }
        let file = out.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        Ok(check)
    });
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| s3_error(&what, e))?;
        // A closed channel means the writer failed: its error is the one to report.
        if tx.send(chunk).await.is_err() {
            break;
        }
    }
    drop(tx);
    let check = writer
        .await
        .map_err(|e| Error::Failed(format!("writing the downloaded backup: {e}")))??;
    tracing::info!(key, size, "backup downloaded");
    Ok(check)
}
