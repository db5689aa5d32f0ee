//! The etcd model: one global state per revision, as etcd's own robustness model has it.
//! The keyspace at revision `r` is one snapshot: per key its value and the revision of its
//! last write. A successful put, delete or cas advances the revision by exactly one; a
//! failed cas, a delete of nothing and a read by none. Every response must match the state
//! at the revision it reports: a get's value and mod revision, a failed cas's condition, a
//! delete's count, a serializable read's whole answer, a watch event's key, type and value.
//!
//! Revisions order the history, so the check is linear where they are known: every
//! operation that returned is pinned to its revision (a write *is* the step to it, a read
//! sits *at* it), real time is checked against that order, and each key's events are
//! replayed in it. Writes of unknown outcome are placed by evidence first — a read or a
//! watch event that shows a write of unknown outcome fixes its revision, as etcd's
//! robustness suite patches its histories — and only what evidence cannot place is searched
//! (`search.rs`): each such write either never took effect or took a free revision after
//! its call.
//!
//! In a closed world every revision between the first and the last is a write of the
//! history; in an open one (a drill, whose harness writes other keys too) revisions may be
//! taken by writes the history does not hold, which touch none of its keys.

mod assign;
mod build;
mod search;

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::history::Record;
pub use super::history::World;

/// A key's state: its value (interned) and the revision of its last write, put or delete
/// (0 before any). A present key's mod revision is `last`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub(crate) struct KeyState {
    pub value: Option<u32>,
    pub last: i64,
}

/// What a cas compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cond {
    /// The value (`None`: the key is absent).
    Value(Option<u32>),
    /// The mod revision (0: the key is absent), as Kubernetes updates objects.
    ModRevision(i64),
}

impl Cond {
    pub fn holds(self, s: KeyState) -> bool {
        match self {
            Cond::Value(v) => s.value == v,
            Cond::ModRevision(0) => s.value.is_none(),
            Cond::ModRevision(m) => s.value.is_some() && s.last == m,
        }
    }
}

/// A write's effect on its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    Put(u32),
    Delete,
    Cas(Cond, u32),
}

impl Effect {
    /// The key's state after this write takes revision `slot`, or `None` when it cannot
    /// write: a delete of an absent key or a cas whose condition fails write nothing and
    /// take no revision.
    pub fn apply(self, s: KeyState, slot: i64) -> Option<KeyState> {
        let put = |v| KeyState {
            value: Some(v),
            last: slot,
        };
        match self {
            Effect::Put(v) => Some(put(v)),
            Effect::Delete => s.value.is_some().then_some(KeyState {
                value: None,
                last: slot,
            }),
            Effect::Cas(c, v) => c.holds(s).then(|| put(v)),
        }
    }
}

/// What a response says of its key's state at its revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// The value, and the revision of the last write when the response carries it (a
    /// get's mod revision; a watch event's revision, for a delete event too).
    State {
        value: Option<u32>,
        last: Option<i64>,
    },
    /// A cas that failed: its condition did not hold.
    Fails(Cond),
    /// Only that the revision was reached (a watch response's header).
    Reached,
}

impl Want {
    pub fn holds(self, s: KeyState) -> bool {
        match self {
            Want::State { value, last } => s.value == value && last.is_none_or(|m| s.last == m),
            Want::Fails(c) => !c.holds(s),
            Want::Reached => true,
        }
    }
}

/// One thing the history says happened at a revision: a write that took it, or a response
/// that saw the state there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum What {
    Write(Effect),
    Expect(Want),
}

/// Where an event came from: an operation, or event `j` of watch response `op`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Source {
    Op(usize),
    WatchEvent(usize, usize),
}

impl Source {
    pub fn op(self) -> usize {
        match self {
            Source::Op(i) | Source::WatchEvent(i, _) => i,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Event {
    pub rev: i64,
    pub key: u32,
    pub what: What,
    pub source: Source,
}

impl Event {
    /// Its place in revision order: a write is the step *to* its revision, a response
    /// sees the state *at* it, after that step.
    pub fn pos(&self) -> (i64, u8) {
        (self.rev, matches!(self.what, What::Expect(_)) as u8)
    }
}

/// A write of unknown outcome that no evidence placed: it took effect at a free revision
/// of at least `lo` (after everything that returned before it was called), or never.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Unknown {
    pub op: usize,
    pub key: u32,
    pub effect: Effect,
    pub lo: i64,
}

/// The verdict of the etcd model on a history's linearizable part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevisionCheck {
    pub linearizable: Option<bool>,
    /// What breaks the model, each naming the revision and the state expected there.
    pub problems: Vec<String>,
    /// Where it breaks: the key, the operation that cannot be, and its key's operations just
    /// before it in revision order.
    pub window: Option<super::linearize::Window>,
    /// Writes of unknown outcome whose revision evidence fixed, and those it did not.
    pub resolved: usize,
    pub unresolved: usize,
    /// Why the check could not decide, when it could not.
    pub undecided: Option<String>,
    /// Each write the model placed (known, or placed by evidence): (revision, operation).
    #[serde(skip)]
    pub placed: Vec<(i64, usize)>,
}

/// The writes placed at their revisions — known ones and those evidence placed — as
/// (revision, operation), in revision order.
pub fn placed(history: &[Record]) -> Vec<(i64, usize)> {
    build::build(history).placed
}

/// Checks the history's operations against one global state per revision. Needs every
/// operation that returned to carry its header revision (`history::needs_revisions`).
pub fn check(history: &[Record], world: World, deadline: Instant) -> RevisionCheck {
    let built = build::build(history);
    let mut out = RevisionCheck {
        linearizable: None,
        problems: built.problems.clone(),
        window: None,
        resolved: built.resolved,
        unresolved: built.unknowns.len(),
        undecided: None,
        placed: built.placed.clone(),
    };
    if !out.problems.is_empty() {
        out.linearizable = Some(false);
        out.problems.truncate(10);
        return out;
    }
    match search::run(&built, world, deadline) {
        search::Found::Witness => out.linearizable = Some(true),
        search::Found::Violation(v) => {
            out.linearizable = Some(false);
            out.problems.push(build::describe(history, &built, &v));
            out.window = Some(build::window(&built, &v));
        }
        search::Found::Undecided(why) => out.undecided = Some(why),
    }
    out
}

#[cfg(test)]
mod oracle;
#[cfg(test)]
mod tests;
