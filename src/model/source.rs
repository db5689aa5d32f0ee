//! Where a user's backup comes from, as data: a file, the newest snapshot in a directory or
//! under an object-store prefix, possibly compressed. Choosing the newest, recognising a
//! snapshot by its first bytes and reading a timestamp from a file name are pure, so they
//! are unit-tested here; fetching is `backup::source`.

use serde::{Deserialize, Serialize};

use super::Invalid;

/// A snapshot source as the user names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A local path: a file, or a directory holding snapshots (decided when it is read).
    Path(std::path::PathBuf),
    /// `s3://bucket/key`, or `s3://bucket/prefix/` for the newest object under it.
    S3 { bucket: String, key: String },
}

impl Source {
    pub fn parse(s: &str) -> Result<Source, Invalid> {
        let Some(rest) = s.strip_prefix("s3://") else {
            if s.contains("://") {
                return Err(Invalid::Input(format!(
                    "snapshot source {s:?}: only local paths and s3://bucket/key (or s3://bucket/prefix/) are supported"
                )));
            }
            return Ok(Source::Path(s.into()));
        };
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(Invalid::Input(format!(
                "snapshot source {s:?} names no bucket; use s3://bucket/key or s3://bucket/prefix/"
            )));
        }
        Ok(Source::S3 {
            bucket: bucket.into(),
            key: key.into(),
        })
    }

    /// An S3 source naming a prefix (empty, or ending in `/`) rather than one object.
    pub fn is_prefix(&self) -> bool {
        matches!(self, Source::S3 { key, .. } if key.is_empty() || key.ends_with('/'))
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Path(p) => write!(f, "{}", p.display()),
            Source::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
        }
    }
}

/// How a backup file is packed, recognised by content, not by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Packing {
    /// An etcd snapshot (a bolt database, with or without etcd's sha256 trailer).
    Plain,
    Gzip,
    /// A zip archive holding the snapshot (k3s `--etcd-snapshot-compress`, RKE's zipped ones).
    Zip,
}

impl Packing {
    pub fn as_str(self) -> &'static str {
        match self {
            Packing::Plain => "plain",
            Packing::Gzip => "gzip",
            Packing::Zip => "zip",
        }
    }
}

/// Enough of a file's first bytes to tell what it is.
pub const SNIFF_BYTES: usize = 64;

/// What the first bytes say the file is; `None` for anything that is not a snapshot.
pub fn sniff(head: &[u8]) -> Option<Packing> {
    // bolt's meta page: a 16-byte page header, then the magic 0xED0CDAED (little-endian).
    const BOLT_MAGIC: [u8; 4] = [0xED, 0xDA, 0x0C, 0xED];
    if head.starts_with(&[0x1f, 0x8b]) {
        Some(Packing::Gzip)
    } else if head.starts_with(b"PK\x03\x04") {
        Some(Packing::Zip)
    } else if head.get(16..20) == Some(&BOLT_MAGIC[..]) {
        Some(Packing::Plain)
    } else {
        None
    }
}

/// One entry of a directory or prefix, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The file name or object key.
    pub name: String,
    pub size: u64,
    /// Modification time, ms since the epoch.
    pub modified_ms: Option<u64>,
    /// What its first bytes say (`None`: not a snapshot, or not read).
    pub packing: Option<Packing>,
}

/// An entry passed over when looking for the newest snapshot, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub name: String,
    pub reason: String,
}

/// Whether a name is a file still being written (a backup job's partial upload).
pub fn is_partial(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        ".part",
        ".partial",
        ".tmp",
        ".temp",
        ".filepart",
        ".crdownload",
        "~",
    ]
    .iter()
    .any(|s| n.ends_with(s))
}

/// Why an entry is no candidate, if it is none.
fn unusable(e: &Entry) -> Option<&'static str> {
    if is_partial(&e.name) {
        Some("a partial file (still being written?)")
    } else if e.size == 0 {
        Some("empty (0 bytes)")
    } else if e.packing.is_none() {
        Some("not an etcd snapshot (neither a bolt database, gzip nor zip)")
    } else {
        None
    }
}

/// When an entry was taken: the timestamp in its name, else its modification time.
pub fn taken_at_ms(e: &Entry) -> Option<u64> {
    let base = e.name.rsplit('/').next().unwrap_or(&e.name);
    timestamp_in_name(base).or(e.modified_ms)
}

/// The newest usable entry (by [`taken_at_ms`]; names break ties), and every entry passed
/// over with its reason. Entries that are usable but older are not "skipped".
pub fn newest(entries: &[Entry]) -> (Option<&Entry>, Vec<Skipped>) {
    let mut skipped = vec![];
    let mut best: Option<&Entry> = None;
    for e in entries {
        if let Some(reason) = unusable(e) {
            skipped.push(Skipped {
                name: e.name.clone(),
                reason: reason.into(),
            });
            continue;
        }
        let key = |x: &Entry| (taken_at_ms(x), x.name.clone());
        if best.is_none_or(|b| key(e) > key(b)) {
            best = Some(e);
        }
    }
    (best, skipped)
}

/// A timestamp in a backup's file name, ms since the epoch, in the forms backup tools
/// write: `20181215_145639` (the seed's `date +%Y%m%d_%H%M%S`), `2019-05-12T09:41:12Z`
/// (RKE), or ten-digit Unix seconds (k3s/RKE2 `etcd-snapshot-<node>-1715000000`, Gardener).
pub fn timestamp_in_name(name: &str) -> Option<u64> {
    let b = name.as_bytes();
    let digits = |i: usize, n: usize| -> Option<u32> {
        let s = b.get(i..i + n)?;
        s.iter()
            .all(u8::is_ascii_digit)
            .then(|| s.iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')))
    };
    let boundary = |i: usize| i == 0 || !b[i - 1].is_ascii_digit();
    for i in 0..b.len() {
        if !boundary(i) {
            continue;
        }
        // 2019-05-12T09:41:12
        if let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(s)) = (
            digits(i, 4),
            digits(i + 5, 2),
            digits(i + 8, 2),
            digits(i + 11, 2),
            digits(i + 14, 2),
            digits(i + 17, 2),
        ) && b.get(i + 4) == Some(&b'-')
            && b.get(i + 10).is_some_and(|c| *c == b'T' || *c == b'_')
        {
            return civil_ms(y, mo, d, h, mi, s);
        }
        // 20181215_145639
        if let (Some(ymd), Some(hms)) = (digits(i, 8), digits(i + 9, 6))
            && b.get(i + 8)
                .is_some_and(|c| matches!(c, b'_' | b'-' | b'T'))
            && b.get(i + 15).is_none_or(|c| !c.is_ascii_digit())
        {
            let (y, mo, d) = (ymd / 10000, ymd / 100 % 100, ymd % 100);
            return civil_ms(y, mo, d, hms / 10000, hms / 100 % 100, hms % 100);
        }
        // Unix seconds, 2001-09-09 to 2100-01-01
        if let Some(secs) = digits(i, 10)
            && b.get(i + 10).is_none_or(|c| !c.is_ascii_digit())
            && (1_000_000_000..4_102_444_800).contains(&u64::from(secs))
        {
            return Some(u64::from(secs) * 1000);
        }
    }
    None
}

/// A UTC calendar time as ms since the epoch, if it is a real date.
fn civil_ms(y: u32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<u64> {
    let month = time::Month::try_from(u8::try_from(mo).ok()?).ok()?;
    let date = time::Date::from_calendar_date(i32::try_from(y).ok()?, month, u8::try_from(d).ok()?)
        .ok()?;
    let t = time::Time::from_hms(
        u8::try_from(h).ok()?,
        u8::try_from(mi).ok()?,
        u8::try_from(s).ok()?,
    )
    .ok()?;
    let secs = date.with_time(t).assume_utc().unix_timestamp();
    u64::try_from(secs).ok().map(|s| s * 1000)
}

/// Where the backup that was verified came from, for the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Origin {
    /// The source as the user gave it.
    pub source: String,
    /// The file or object key actually read (the newest, for a directory or prefix).
    pub object: String,
    pub packing: Packing,
    /// Size as stored (compressed, if it was).
    pub stored_bytes: u64,
    /// When it was taken, ms since the epoch: from its name, else its modification time.
    pub taken_at_ms: Option<u64>,
    /// Entries of a directory or prefix passed over, and why.
    #[serde(default)]
    pub skipped: Vec<Skipped>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, size: u64, modified_s: u64, packing: Option<Packing>) -> Entry {
        Entry {
            name: name.into(),
            size,
            modified_ms: Some(modified_s * 1000),
            packing,
        }
    }

    #[test]
    fn sources_parse_and_bad_ones_are_refused() {
        assert_eq!(
            Source::parse("s3://backups/etcd/").unwrap(),
            Source::S3 {
                bucket: "backups".into(),
                key: "etcd/".into()
            }
        );
        assert!(Source::parse("s3://backups/etcd/").unwrap().is_prefix());
        assert!(!Source::parse("s3://b/etcd/x.db").unwrap().is_prefix());
        assert!(Source::parse("s3://b").unwrap().is_prefix());
        assert_eq!(
            Source::parse("/opt/rke/etcd-snapshots").unwrap(),
            Source::Path("/opt/rke/etcd-snapshots".into())
        );
        assert!(Source::parse("s3:///key").is_err());
        assert!(Source::parse("gs://bucket/key").is_err());
    }

    #[test]
    fn snapshots_are_recognised_by_content() {
        let mut bolt = vec![0u8; 64];
        bolt[16..20].copy_from_slice(&[0xED, 0xDA, 0x0C, 0xED]);
        assert_eq!(sniff(&bolt), Some(Packing::Plain));
        assert_eq!(sniff(&[0x1f, 0x8b, 8, 0]), Some(Packing::Gzip));
        assert_eq!(sniff(b"PK\x03\x04rest"), Some(Packing::Zip));
        assert_eq!(sniff(b"just some text, not a database at all......"), None);
        assert_eq!(sniff(&[]), None);
    }

    #[test]
    fn timestamps_are_read_from_the_names_backup_tools_write() {
        let t = timestamp_in_name;
        let seed = 1_544_885_799_000; // 2018-12-15 14:56:39 UTC
        assert_eq!(t("20181215_145639_snapshot.db"), Some(seed));
        assert_eq!(t("c-abc_2018-12-15T14:56:39Z"), Some(seed));
        assert_eq!(t("etcd-snapshot-node1-1544885799"), Some(seed));
        assert_eq!(t("etcd-snapshot-node1-1544885799.zip"), Some(seed));
        assert_eq!(t("snapshot.db"), None);
        assert_eq!(t("20181345_145639_snapshot.db"), None, "month 13");
        assert_eq!(t("backup-12345.db"), None);
    }

    #[test]
    fn the_newest_snapshot_wins_and_what_was_passed_over_is_listed() {
        let plain = Some(Packing::Plain);
        let entries = vec![
            entry("20240101_000000_snapshot.db", 10, 9_999_999_999, plain),
            entry("20240301_000000_snapshot.db", 10, 1, plain),
            entry("20240401_000000_snapshot.db.part", 10, 1, plain),
            entry("20240402_000000_snapshot.db", 0, 1, plain),
            entry("README.txt", 10, 1, None),
            entry("20240201_000000_snapshot.db.gz", 10, 1, Some(Packing::Gzip)),
        ];
        let (best, skipped) = newest(&entries);
        assert_eq!(best.unwrap().name, "20240301_000000_snapshot.db");
        let names: Vec<&str> = skipped.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "20240401_000000_snapshot.db.part",
                "20240402_000000_snapshot.db",
                "README.txt"
            ]
        );
        // Without timestamps in names, the modification time decides.
        let by_mtime = vec![entry("a.db", 1, 20, plain), entry("b.db", 1, 10, plain)];
        assert_eq!(newest(&by_mtime).0.unwrap().name, "a.db");
        assert!(newest(&[entry("x.part", 1, 1, plain)]).0.is_none());
    }
}
