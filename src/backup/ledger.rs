//! What a drill has written and what must therefore be in the cluster, across restores.
//! Pure bookkeeping, no I/O: every acknowledged write — the dataset's and the harness's own
//! (the background writer, `expect` probes, the first write after a restore) — is recorded
//! in the history ("era") it was made in. A restore from a snapshot taken at revision R in
//! some era starts a new era holding what that era had at R; whatever the current era held
//! beyond that is the restore's loss (RPO), counted apart for dataset and harness writes.
//! Writes after a restore belong to the new era and are expected present, so a `load` after a
//! `restore`, and a second restore, are judged against the right history.

use std::collections::{BTreeMap, BTreeSet};

use crate::backup::dataset::{Ack, AckLog};

/// Every key the harness writes for itself lives under this prefix; nothing else outside
/// the dataset's prefix may exist in a cluster under test.
pub const HARNESS_PREFIX: &str = "/etcd-drill/";

/// A revision that stands for "inherited from the snapshot the era was restored from": at
/// or below any snapshot revision of the era.
const INHERITED: i64 = 0;

/// Which history a snapshot was cut from, and at what revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    pub era: usize,
    pub revision: i64,
}

#[derive(Debug, Clone, Default)]
struct Era {
    dataset: Vec<Ack>,
    /// Harness key → acknowledged revisions of its writes.
    harness: BTreeMap<String, Vec<i64>>,
    /// Harness key → acknowledged revisions of deletes that removed it.
    deletes: BTreeMap<String, Vec<i64>>,
}

/// What a restore lost: acknowledged writes present before it and absent after.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Loss {
    /// Dataset keys.
    pub dataset_writes: usize,
    /// The harness's own acknowledged writes (background writer, probes).
    pub harness_writes: usize,
}

impl Loss {
    pub fn total(&self) -> usize {
        self.dataset_writes + self.harness_writes
    }
}

#[derive(Debug, Clone)]
pub struct Ledger {
    eras: Vec<Era>,
    /// Values the harness tried to write, acknowledged or not, per key: a write that timed
    /// out may still have been applied, so any of them may be found.
    attempted: BTreeMap<String, BTreeSet<String>>,
    /// Harness keys a delete of unknown outcome was sent for: they may be gone.
    maybe_deleted: BTreeSet<String>,
    /// Dataset indexes the last restore lost (absent unless written again since).
    lost: Vec<u32>,
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger {
            eras: vec![Era::default()],
            attempted: BTreeMap::new(),
            maybe_deleted: BTreeSet::new(),
            lost: vec![],
        }
    }
}

impl Ledger {
    fn current(&mut self) -> &mut Era {
        self.eras.last_mut().expect("there is always an era")
    }

    pub fn era(&self) -> usize {
        self.eras.len() - 1
    }

    pub fn record_dataset(&mut self, log: AckLog) {
        self.current().dataset.extend(log.acks);
    }

    /// A harness write about to be tried (call before sending it).
    pub fn attempt(&mut self, key: &str, value: &str) {
        self.attempted
            .entry(key.to_string())
            .or_default()
            .insert(value.to_string());
    }

    /// A harness write etcd acknowledged at `revision`.
    pub fn acknowledged(&mut self, key: &str, value: &str, revision: i64) {
        self.attempt(key, value);
        self.current()
            .harness
            .entry(key.to_string())
            .or_default()
            .push(revision);
    }

    /// A harness delete that etcd acknowledged at `revision`, having removed the key.
    pub fn deleted(&mut self, key: &str, revision: i64) {
        self.current()
            .deletes
            .entry(key.to_string())
            .or_default()
            .push(revision);
    }

    /// A harness delete whose outcome is unknown: the key may be gone.
    pub fn attempt_delete(&mut self, key: &str) {
        self.maybe_deleted.insert(key.to_string());
    }

    /// The highest revision any write of the current era was acknowledged at.
    pub fn last_revision(&self) -> i64 {
        let now = self.eras.last().expect("there is always an era");
        let d = now.dataset.iter().map(|a| a.revision).max().unwrap_or(0);
        let h = now.harness.values().flatten().copied().max().unwrap_or(0);
        let x = now.deletes.values().flatten().copied().max().unwrap_or(0);
        d.max(h).max(x)
    }

    /// Dataset writes of the current era acknowledged above `revision`: what a snapshot at
    /// `revision` is missing of the dataset.
    pub fn dataset_after(&self, revision: i64) -> usize {
        let now = self.eras.last().expect("there is always an era");
        now.dataset.iter().filter(|a| a.revision > revision).count()
    }

    /// A snapshot taken now, at `revision`.
    pub fn cut(&self, revision: i64) -> Cut {
        Cut {
            era: self.era(),
            revision,
        }
    }

    /// A cut for a backup that is not of this history (the user's own): nothing the harness
    /// wrote is in it, so restoring it keeps none of that.
    pub fn foreign_cut(&self) -> Cut {
        Cut {
            era: self.era(),
            revision: -1,
        }
    }

    /// A restore from `cut`: the new era holds what the cut's era had at its revision; the
    /// current era's writes beyond that are the loss.
    pub fn restore(&mut self, cut: Cut) -> Loss {
        let from = &self.eras[cut.era.min(self.era())];
        let kept: Vec<Ack> = from
            .dataset
            .iter()
            .filter(|a| a.revision <= cut.revision)
            .map(|a| Ack {
                index: a.index,
                revision: INHERITED,
            })
            .collect();
        let kept_harness = inherit(&from.harness, cut.revision);
        let kept_deletes = inherit(&from.deletes, cut.revision);
        let now = self.eras.last().expect("there is always an era");
        let kept_set: BTreeSet<u32> = kept.iter().map(|a| a.index).collect();
        let lost: BTreeSet<u32> = now
            .dataset
            .iter()
            .map(|a| a.index)
            .filter(|i| !kept_set.contains(i))
            .collect();
        let harness_before: usize = now.harness.values().map(Vec::len).sum();
        let harness_after: usize = kept_harness.values().map(Vec::len).sum();
        let loss = Loss {
            dataset_writes: lost.len(),
            harness_writes: harness_before.saturating_sub(harness_after),
        };
        self.lost = lost.into_iter().collect();
        self.eras.push(Era {
            dataset: kept,
            harness: kept_harness,
            deletes: kept_deletes,
        });
        loss
    }

    /// The dataset as the verifier takes it: every acknowledged write that must be present
    /// (at or below the returned revision) and every one the last restore lost (above it).
    pub fn expected_dataset(&self) -> (AckLog, i64) {
        let now = self.eras.last().expect("there is always an era");
        let present: BTreeSet<u32> = now.dataset.iter().map(|a| a.index).collect();
        let mut acks: Vec<Ack> = now
            .dataset
            .iter()
            .map(|a| Ack {
                index: a.index,
                revision: a.revision.max(INHERITED),
            })
            .collect();
        acks.extend(
            self.lost
                .iter()
                .filter(|i| !present.contains(i))
                .map(|&index| Ack {
                    index,
                    revision: i64::MAX,
                }),
        );
        (AckLog { acks }, i64::MAX - 1)
    }

    /// What the verifier needs to account for every key under [`HARNESS_PREFIX`].
    pub fn harness_view(&self) -> HarnessView {
        let now = self.eras.last().expect("there is always an era");
        let last = |m: &BTreeMap<String, Vec<i64>>, k: &str| {
            m.get(k).and_then(|r| r.iter().copied().max())
        };
        let mut view = HarnessView {
            attempted: self.attempted.clone(),
            ..Default::default()
        };
        let keys: BTreeSet<&String> = now.harness.keys().chain(now.deletes.keys()).collect();
        for k in keys {
            let (put, del) = (last(&now.harness, k), last(&now.deletes, k));
            // Inherited writes and deletes both stand at INHERITED: the snapshot knew which
            // came last, the ledger does not, so neither is required.
            let exists = match (put, del) {
                (Some(_), None) => !self.maybe_deleted.contains(k),
                (Some(p), Some(d)) => p > d && !self.maybe_deleted.contains(k),
                _ => false,
            };
            if exists {
                view.must_exist.insert(k.clone(), put.unwrap_or(INHERITED));
            }
            let newest = put.into_iter().chain(del).max().unwrap_or(INHERITED);
            view.newer_than.insert(k.clone(), newest);
        }
        view
    }
}

/// What an era restored from a cut at `revision` inherits of `writes`: the writes at or
/// below it, each standing at [`INHERITED`].
fn inherit(writes: &BTreeMap<String, Vec<i64>>, revision: i64) -> BTreeMap<String, Vec<i64>> {
    writes
        .iter()
        .filter_map(|(k, revs)| {
            let n = revs.iter().filter(|r| **r <= revision).count();
            (n > 0).then(|| (k.clone(), vec![INHERITED; n]))
        })
        .collect()
}

/// For clusters the harness never wrote to on its own account.
pub static NO_HARNESS_WRITES: HarnessView = HarnessView {
    must_exist: BTreeMap::new(),
    newer_than: BTreeMap::new(),
    attempted: BTreeMap::new(),
};

/// The harness's own keys as the verifier judges them.
#[derive(Debug, Clone, Default)]
pub struct HarnessView {
    /// Keys whose last acknowledged change in the current era is a write (no delete
    /// after it, none of unknown outcome) → the latest such revision (0 when inherited).
    pub must_exist: BTreeMap<String, i64>,
    /// Keys with an acknowledged write or delete → the latest such revision: a value found
    /// older than that is stale (the write or delete after it was lost).
    pub newer_than: BTreeMap<String, i64>,
    pub attempted: BTreeMap<String, BTreeSet<String>>,
}

/// How one key outside the dataset's prefix fares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accounted {
    Yes,
    /// Not a key the harness writes, or a value it never tried: someone else's key.
    Unexpected,
    /// A harness key older than its last acknowledged write.
    Stale,
}

impl HarnessView {
    /// A key found outside the dataset's prefix, with its value and mod revision.
    /// `allowed` is the key the check itself writes meanwhile, with the prefix of its values.
    pub fn account(
        &self,
        key: &[u8],
        value: &[u8],
        mod_revision: i64,
        allowed: Option<(&str, &str)>,
    ) -> Accounted {
        let (Ok(key), Ok(value)) = (std::str::from_utf8(key), std::str::from_utf8(value)) else {
            return Accounted::Unexpected;
        };
        // The verifier's own new-write key is being overwritten while it reads: whatever
        // value of its own it finds there (this check's or an earlier one's) is accounted.
        if let Some((k, value_prefix)) = allowed
            && k == key
            && value.starts_with(value_prefix)
        {
            return Accounted::Yes;
        }
        if !key.starts_with(HARNESS_PREFIX)
            || !self.attempted.get(key).is_some_and(|v| v.contains(value))
        {
            return Accounted::Unexpected;
        }
        match self.newer_than.get(key) {
            Some(&rev) if mod_revision < rev => Accounted::Stale,
            _ => Accounted::Yes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(acks: &[(u32, i64)]) -> AckLog {
        AckLog {
            acks: acks
                .iter()
                .map(|&(index, revision)| Ack { index, revision })
                .collect(),
        }
    }

    fn split(l: &Ledger) -> (Vec<u32>, Vec<u32>) {
        let (acks, rev) = l.expected_dataset();
        let mut want: Vec<u32> = acks
            .acks
            .iter()
            .filter(|a| a.revision <= rev)
            .map(|a| a.index)
            .collect();
        let mut lost: Vec<u32> = acks
            .acks
            .iter()
            .filter(|a| a.revision > rev)
            .map(|a| a.index)
            .collect();
        want.sort();
        lost.sort();
        (want, lost)
    }

    #[test]
    fn a_restore_keeps_what_the_snapshot_had_and_counts_the_rest_as_lost() {
        let mut l = Ledger::default();
        l.record_dataset(log(&[(0, 5), (1, 6)]));
        let cut = l.cut(6);
        l.record_dataset(log(&[(2, 7), (3, 8)]));
        l.acknowledged("/etcd-drill/writer", "1", 6);
        l.acknowledged("/etcd-drill/writer", "2", 9);
        let loss = l.restore(cut);
        assert_eq!(
            loss,
            Loss {
                dataset_writes: 2,
                harness_writes: 1
            }
        );
        assert_eq!(split(&l), (vec![0, 1], vec![2, 3]));
    }

    #[test]
    fn writes_after_a_restore_are_expected_and_a_second_restore_works() {
        let mut l = Ledger::default();
        l.record_dataset(log(&[(0, 5)]));
        let first = l.cut(5);
        l.record_dataset(log(&[(1, 6)]));
        l.restore(first);
        // The new era: index 1 written again, index 2 new (revisions go on from the snapshot).
        l.record_dataset(log(&[(1, 7), (2, 8)]));
        assert_eq!(split(&l), (vec![0, 1, 2], vec![]));
        let second = l.cut(8);
        l.record_dataset(log(&[(3, 9)]));
        let loss = l.restore(second);
        assert_eq!(loss.dataset_writes, 1);
        assert_eq!(split(&l), (vec![0, 1, 2], vec![3]));
    }

    #[test]
    fn restoring_an_older_eras_snapshot_loses_the_newer_era() {
        let mut l = Ledger::default();
        l.record_dataset(log(&[(0, 5)]));
        let old = l.cut(5);
        l.restore(old);
        l.record_dataset(log(&[(1, 6)]));
        let loss = l.restore(old);
        assert_eq!(loss.dataset_writes, 1);
        assert_eq!(split(&l), (vec![0], vec![1]));
    }

    #[test]
    fn a_deleted_key_need_not_exist_and_a_lost_delete_is_stale() {
        let mut l = Ledger::default();
        l.acknowledged("/etcd-drill/workload/0", "a", 10);
        l.deleted("/etcd-drill/workload/0", 12);
        l.acknowledged("/etcd-drill/workload/1", "b", 11);
        l.attempt_delete("/etcd-drill/workload/1");
        l.acknowledged("/etcd-drill/workload/2", "c", 13);
        let v = l.harness_view();
        let must: Vec<&String> = v.must_exist.keys().collect();
        assert_eq!(must, ["/etcd-drill/workload/2"]);
        // Still there at its old revision: the acknowledged delete was lost.
        assert_eq!(
            v.account(b"/etcd-drill/workload/0", b"a", 10, None),
            Accounted::Stale
        );
        assert_eq!(l.last_revision(), 13);
    }

    #[test]
    fn harness_keys_are_accounted_and_anything_else_is_not() {
        let mut l = Ledger::default();
        l.attempt("/etcd-drill/expect/3", "attempt-1");
        l.acknowledged("/etcd-drill/writer", "7", 40);
        let v = l.harness_view();
        assert_eq!(
            v.account(b"/etcd-drill/writer", b"7", 40, None),
            Accounted::Yes
        );
        // A write that timed out may have been applied: present is fine, absent too.
        assert_eq!(
            v.account(b"/etcd-drill/expect/3", b"attempt-1", 12, None),
            Accounted::Yes
        );
        assert_eq!(
            v.account(b"/etcd-drill/writer", b"6", 39, None),
            Accounted::Unexpected
        );
        assert_eq!(
            v.account(b"/etcd-drill/writer", b"7", 30, None),
            Accounted::Stale
        );
        assert_eq!(
            v.account(b"/mallory", b"7", 41, None),
            Accounted::Unexpected
        );
        assert_eq!(
            v.account(b"/etcd-drill/forged", b"x", 41, None),
            Accounted::Unexpected
        );
        assert_eq!(
            v.account(
                b"/etcd-drill/after",
                b"w-2",
                41,
                Some(("/etcd-drill/after", "w-"))
            ),
            Accounted::Yes
        );
        assert_eq!(v.must_exist.len(), 1);
    }
}
