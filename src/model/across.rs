//! What a restore must do to what clients were told. Restoring a snapshot taken at
//! revision S brings back the state at S: every write acknowledged at or below S is
//! readable afterwards, exactly as it was, and every write acknowledged above S is gone —
//! their count is the RPO in operations. A write of unknown outcome may be either.
//!
//! Revisions: a plain restore starts again from S, below what clients have already seen,
//! and a Kubernetes watch cache that resumes from its last revision then misses or
//! misorders events. `--bump-revision N --mark-compacted` exists to prevent that: the
//! revision must then end above anything seen, and a watch from a revision seen before
//! must be told it is compacted.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::history::Record;

/// A workload key as read after the restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub key: String,
    pub value: String,
    pub mod_revision: i64,
}

/// What the cluster looked like right after the restore.
#[derive(Debug, Clone, PartialEq)]
pub struct AfterRestore {
    pub snapshot_revision: i64,
    /// The workload's keys, read linearizably.
    pub found: Vec<Found>,
    /// The response header's revision of that read.
    pub revision: i64,
    /// `--bump-revision N` if the restore bumped.
    pub bumped: Option<u64>,
    /// With a bump: whether a watch from the highest revision clients saw was refused
    /// as compacted.
    pub old_watch_compacted: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AcrossRestore {
    pub snapshot_revision: i64,
    /// Acknowledged writes at or below the snapshot revision (their latest per key must be
    /// readable).
    pub kept_writes: usize,
    /// Acknowledged writes above it, lost by the restore: the RPO in operations.
    pub lost_writes: usize,
    /// The highest revision any client saw before the restore, and the revision after.
    pub highest_seen: i64,
    pub revision_after: i64,
    /// How far the revision went back (0 if it did not).
    pub went_back_by: i64,
    pub problems: Vec<String>,
}

impl AcrossRestore {
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks the restored state and revision against the history recorded before.
pub fn check(history: &[Record], after: &AfterRestore) -> AcrossRestore {
    let s = after.snapshot_revision;
    // Per key: the latest acknowledged change at or below S (None value: a delete).
    let mut at_s: HashMap<&str, (i64, Option<&str>, usize)> = HashMap::new();
    let mut out = AcrossRestore {
        snapshot_revision: s,
        revision_after: after.revision,
        ..Default::default()
    };
    for (i, r) in history.iter().enumerate() {
        if let Some(rev) = r.output.as_ref().and_then(|o| o.revision) {
            out.highest_seen = out.highest_seen.max(rev);
        }
        let Some((rev, value)) = r.committed() else {
            continue;
        };
        if rev > s {
            out.lost_writes += 1;
            continue;
        }
        out.kept_writes += 1;
        let e = at_s.entry(r.key.as_str()).or_insert((rev, value, i));
        if rev >= e.0 {
            *e = (rev, value, i);
        }
    }
    let found: HashMap<&str, &Found> = after.found.iter().map(|f| (f.key.as_str(), f)).collect();
    let mut keys: Vec<&str> = at_s.keys().chain(found.keys()).copied().collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        if let Some(p) = key_state(history, key, at_s.get(key), found.get(key).copied(), s) {
            out.problems.push(p);
        }
    }
    out.went_back_by = (out.highest_seen - after.revision).max(0);
    if let Some(n) = after.bumped {
        if out.went_back_by > 0 {
            out.problems.push(format!(
                "with --bump-revision {n} the revision after the restore ({}) is still {} below the highest a client saw ({})",
                after.revision, out.went_back_by, out.highest_seen
            ));
        }
        if after.old_watch_compacted != Some(true) {
            out.problems.push(format!(
                "with --mark-compacted a watch from revision {} (seen before the restore) must be refused as compacted, and was not",
                out.highest_seen
            ));
        }
    }
    out.problems.truncate(20);
    out
}

/// One key: what it holds after the restore against its state at the snapshot revision.
fn key_state(
    history: &[Record],
    key: &str,
    want: Option<&(i64, Option<&str>, usize)>,
    got: Option<&Found>,
    s: i64,
) -> Option<String> {
    let want_value = want.and_then(|w| w.1);
    let want_rev = want.map_or(0, |w| w.0);
    match (want_value, got) {
        (Some(v), Some(f)) if f.value == v && f.mod_revision == want_rev => return None,
        (None, None) => return None,
        _ => {}
    }
    if let Some(f) = got
        && f.mod_revision > s
    {
        return Some(format!(
            "{key} holds {} at revision {}, above the snapshot's revision {s}",
            f.value, f.mod_revision
        ));
    }
    // A write of unknown outcome after the last acknowledged one may be what is there
    // (or its delete what is not).
    let unknown = |matches: &dyn Fn(&Record) -> bool| {
        history
            .iter()
            .any(|r| r.key == key && r.unknown_write() && matches(r))
    };
    let explained = match got {
        Some(f) => f.mod_revision > want_rev && unknown(&|r| r.value.as_deref() == Some(&f.value)),
        None => unknown(&|r| r.op == super::history::OpKind::Delete),
    };
    if explained {
        return None;
    }
    let wanted = match want {
        Some((rev, Some(v), i)) => format!("{v} from acknowledged write #{i} at revision {rev}"),
        Some((rev, None, i)) => format!("nothing (deleted by #{i} at revision {rev})"),
        None => "nothing (no acknowledged write at or below it)".into(),
    };
    let found = match got {
        Some(f) => format!("{} at revision {}", f.value, f.mod_revision),
        None => "nothing".into(),
    };
    Some(format!(
        "{key} after the restore holds {found}; at the snapshot's revision {s} it held {wanted}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::history::{OpKind, Output};

    fn put(key: &str, v: &str, rev: i64) -> Record {
        Record {
            client: 1,
            call: rev as u64 * 10,
            ret: Some(rev as u64 * 10 + 5),
            op: OpKind::Put,
            key: key.into(),
            value: Some(v.into()),
            output: Some(Output {
                revision: Some(rev),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn found(key: &str, v: &str, rev: i64) -> Found {
        Found {
            key: key.into(),
            value: v.into(),
            mod_revision: rev,
        }
    }

    fn after(found: Vec<Found>, revision: i64, bumped: Option<u64>) -> AfterRestore {
        AfterRestore {
            snapshot_revision: 10,
            found,
            revision,
            bumped,
            old_watch_compacted: bumped.map(|_| true),
        }
    }

    fn history() -> Vec<Record> {
        vec![
            put("a", "1", 5),
            put("b", "2", 8),
            put("a", "3", 12),
            put("c", "4", 14),
        ]
    }

    #[test]
    fn the_state_at_the_snapshot_is_back_and_later_writes_are_the_loss() {
        let good = after(vec![found("a", "1", 5), found("b", "2", 8)], 11, None);
        let c = check(&history(), &good);
        assert!(c.passed(), "{c:?}");
        assert_eq!((c.kept_writes, c.lost_writes), (2, 2));
        // No bump: the revision went back from 14 to 11, reported, not failed.
        assert_eq!((c.highest_seen, c.went_back_by), (14, 3));
    }

    #[test]
    fn a_lost_or_a_surviving_write_is_caught() {
        // b's acknowledged write at 8 ≤ 10 is gone.
        let lost = after(vec![found("a", "1", 5)], 11, None);
        let p = check(&history(), &lost).problems;
        assert!(p[0].contains("b after the restore holds nothing"), "{p:?}");
        // a's write at 12 > 10 survived: not the snapshot's state.
        let survived = after(vec![found("a", "3", 12), found("b", "2", 8)], 13, None);
        let p = check(&history(), &survived).problems;
        assert!(p[0].contains("above the snapshot's revision 10"), "{p:?}");
    }

    #[test]
    fn a_bump_must_lift_the_revision_and_compact_old_watches() {
        let state = vec![found("a", "1", 5), found("b", "2", 8)];
        assert!(check(&history(), &after(state.clone(), 1011, Some(1000))).passed());
        let low = check(&history(), &after(state.clone(), 12, Some(1)));
        assert!(low.problems[0].contains("still 2 below"), "{low:?}");
        let mut open = after(state, 1011, Some(1000));
        open.old_watch_compacted = Some(false);
        assert!(check(&history(), &open).problems[0].contains("refused as compacted"));
    }
}
