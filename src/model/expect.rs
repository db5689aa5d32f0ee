//! What a user expects of their backup, beyond "it restores": enough keys, the prefixes and
//! keys their workload needs, not too old, not behind the last one verified. Judged here,
//! purely, from the facts the verification found.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Invalid;
use super::report::Check;
use super::source::Origin;

/// What verify-snapshot found out about a backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupFacts {
    pub origin: Origin,
    /// Size of the snapshot itself (after decompression).
    pub size: u64,
    pub sha256: String,
    pub revision: i64,
    pub keys: usize,
    /// Keys per top-level prefix (see [`top_level_prefix`]).
    pub keys_per_prefix: BTreeMap<String, usize>,
    /// Age when verified, from when it was taken.
    pub age_s: Option<f64>,
    /// The `--quota-backend-bytes` the restored members ran with, and where it came from.
    pub quota_backend_bytes: u64,
    pub quota_from: QuotaFrom,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QuotaFrom {
    /// Sized from the snapshot (see [`sized_quota`]).
    Snapshot,
    /// The user's `--quota-backend-bytes`.
    User,
}

/// etcd's default backend quota, 2 GiB.
pub const DEFAULT_QUOTA: u64 = 2 << 30;
/// etcd's suggested maximum, 8 GiB.
pub const MAX_QUOTA: u64 = 8 << 30;

/// A quota the snapshot fits with room for the restored cluster's own writes: 1.5 × its
/// size, never below etcd's default, never above etcd's suggested maximum.
pub fn sized_quota(snapshot_bytes: u64) -> u64 {
    (snapshot_bytes.saturating_mul(3) / 2).clamp(DEFAULT_QUOTA, MAX_QUOTA)
}

/// The prefix a key is counted under: its first two path segments (`/registry/pods/` for
/// `/registry/pods/default/web-0`), or the first one for shorter keys.
pub fn top_level_prefix(key: &str) -> String {
    let slash = key.starts_with('/');
    let parts: Vec<&str> = key.trim_start_matches('/').split('/').collect();
    let lead = if slash { "/" } else { "" };
    match parts.len() {
        0 | 1 => key.to_string(),
        2 => format!("{lead}{}/", parts[0]),
        _ => format!("{lead}{}/{}/", parts[0], parts[1]),
    }
}

/// What the user expects; every field unset expects nothing beyond restoring.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expectations {
    pub min_keys: Option<usize>,
    /// At least one key under each.
    pub require_prefix: Vec<String>,
    pub require_key: Vec<String>,
    pub max_age_s: Option<f64>,
    /// The revision of the backup verified before (from its `report.json`).
    pub previous_revision: Option<i64>,
}

/// Whether each required prefix and key is present in the restored cluster.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Presence {
    pub prefixes: Vec<(String, usize)>,
    pub keys: Vec<(String, bool)>,
}

/// One check per expectation set, each able to fail.
pub fn judge(want: &Expectations, facts: &BackupFacts, found: &Presence) -> Vec<Check> {
    let mut out = vec![];
    if let Some(n) = want.min_keys {
        let detail = format!("{} keys; at least {n} expected", facts.keys);
        out.push(Check::new("min-keys", facts.keys >= n, detail));
    }
    for (p, n) in &found.prefixes {
        let keys = if *n == 1 { "key" } else { "keys" };
        let detail = format!("{n} {keys} under {p}");
        out.push(Check::new("require-prefix", *n > 0, detail));
    }
    for (k, present) in &found.keys {
        let detail = format!("{k} {}", if *present { "present" } else { "missing" });
        out.push(Check::new("require-key", *present, detail));
    }
    if let Some(max) = want.max_age_s {
        let (passed, detail) = match facts.age_s {
            Some(age) => (
                age <= max,
                format!("{} old; at most {}", human(age), human(max)),
            ),
            None => (
                false,
                "its age is unknown: no timestamp in its name and no modification time".into(),
            ),
        };
        out.push(Check::new("max-age", passed, detail));
    }
    if let Some(prev) = want.previous_revision {
        let rev = facts.revision;
        let detail = if rev < prev {
            format!(
                "revision {rev} is behind the previous backup's {prev}: the backup job may be uploading an old snapshot, and revisions going backwards break Kubernetes watches"
            )
        } else {
            format!("revision {rev}; the previous backup's was {prev}")
        };
        out.push(Check::new("not-older-than-previous", rev >= prev, detail));
    }
    out
}

/// `90s`, `45m`, `26h`, `7d`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<f64, Invalid> {
    let bad = || {
        Invalid::Input(format!(
            "invalid duration {s:?}: use a number with s, m, h or d, e.g. 26h"
        ))
    };
    let t = s.trim();
    let (num, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c),
        _ => (t, 's'),
    };
    let factor = match unit {
        's' => 1.0,
        'm' => 60.0,
        'h' => 3600.0,
        'd' => 86400.0,
        _ => return Err(bad()),
    };
    let v: f64 = num.trim().parse().map_err(|_| bad())?;
    if v.is_finite() && v >= 0.0 {
        Ok(v * factor)
    } else {
        Err(bad())
    }
}

/// An age as people say it: `26h` stays 26.0 h rather than 1.1 d.
pub fn human(secs: f64) -> String {
    if secs >= 2.0 * 86400.0 {
        format!("{:.1} d", secs / 86400.0)
    } else if secs >= 3600.0 {
        format!("{:.1} h", secs / 3600.0)
    } else if secs >= 60.0 {
        format!("{:.1} min", secs / 60.0)
    } else {
        format!("{secs:.0} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::source::Packing;

    fn facts(keys: usize, revision: i64, age_s: Option<f64>) -> BackupFacts {
        BackupFacts {
            origin: Origin {
                source: "s3://b/p/".into(),
                object: "p/x.db".into(),
                packing: Packing::Plain,
                stored_bytes: 1,
                taken_at_ms: None,
                skipped: vec![],
            },
            size: 1,
            sha256: String::new(),
            revision,
            keys,
            keys_per_prefix: BTreeMap::new(),
            age_s,
            quota_backend_bytes: DEFAULT_QUOTA,
            quota_from: QuotaFrom::Snapshot,
        }
    }

    #[test]
    fn each_expectation_passes_when_it_holds_and_fails_when_it_does_not() {
        let want = Expectations {
            min_keys: Some(10),
            require_prefix: vec!["/registry/namespaces/".into()],
            require_key: vec!["/registry/namespaces/default".into()],
            max_age_s: Some(3600.0),
            previous_revision: Some(100),
        };
        let good = Presence {
            prefixes: vec![("/registry/namespaces/".into(), 3)],
            keys: vec![("/registry/namespaces/default".into(), true)],
        };
        let checks = judge(&want, &facts(10, 100, Some(3600.0)), &good);
        assert_eq!(checks.len(), 5);
        assert!(checks.iter().all(|c| c.passed), "{checks:#?}");

        let bad = Presence {
            prefixes: vec![("/registry/namespaces/".into(), 0)],
            keys: vec![("/registry/namespaces/default".into(), false)],
        };
        let checks = judge(&want, &facts(9, 99, Some(3601.0)), &bad);
        assert!(checks.iter().all(|c| !c.passed), "{checks:#?}");
        let unknown_age = judge(&want, &facts(10, 100, None), &good);
        assert!(
            !unknown_age[3].passed,
            "an age that cannot be known does not pass"
        );
        assert!(
            judge(
                &Expectations::default(),
                &facts(0, 1, None),
                &Presence::default()
            )
            .is_empty()
        );
    }

    #[test]
    fn an_empty_snapshot_fails_any_min_keys() {
        let want = Expectations {
            min_keys: Some(1),
            ..Default::default()
        };
        let c = judge(&want, &facts(0, 1, None), &Presence::default());
        assert!(!c[0].passed && c[0].detail.starts_with("0 keys"), "{c:?}");
    }

    #[test]
    fn durations_and_quotas() {
        assert_eq!(parse_duration("26h").unwrap(), 93600.0);
        assert_eq!(parse_duration("90").unwrap(), 90.0);
        assert_eq!(parse_duration("1.5d").unwrap(), 129600.0);
        for bad in ["", "h", "-1h", "3w", "abc"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(sized_quota(1 << 20), DEFAULT_QUOTA);
        assert_eq!(sized_quota(2 << 30), 3 << 30);
        assert_eq!(sized_quota(100 << 30), MAX_QUOTA);
    }

    #[test]
    fn keys_are_counted_under_their_first_two_segments() {
        assert_eq!(
            top_level_prefix("/registry/pods/default/web-0"),
            "/registry/pods/"
        );
        assert_eq!(top_level_prefix("/registry/ranges"), "/registry/");
        assert_eq!(top_level_prefix("/health"), "/health");
        assert_eq!(top_level_prefix("app/config/x"), "app/config/");
        assert_eq!(top_level_prefix("plain"), "plain");
    }
}
