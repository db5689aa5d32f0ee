//! A brute-force oracle for the etcd model, written from the specification and nothing
//! else: try every order of the operations that real time allows, every subset of the
//! writes of unknown outcome, and every revision each such write may take; replay each
//! order on one global state per revision; accept when one order explains every response,
//! serializable read and watch event. Exponential, and meant for histories of a handful of
//! operations, where it is the answer the checker must give.

use std::collections::BTreeMap;

use crate::model::history::{EventKind, OpKind, Record, World};

type State = BTreeMap<String, (Option<String>, i64)>;

/// Whether `a` (operation `i`) precedes `b` (operation `j`) in real time: it returned
/// before `b` was called — or, for one client, returned by then (program order).
fn before(a: &Record, i: usize, b: &Record, j: usize) -> bool {
    let same = a.client == b.client && i != j && a.call <= b.call && !std::ptr::eq(a, b);
    a.ret.is_some_and(|t| t < b.call || (same && t <= b.call))
}

struct Oracle<'a> {
    h: &'a [Record],
    world: World,
    /// Operations that must be placed (returned, linearizable) and those that may be.
    must: Vec<usize>,
    may: Vec<usize>,
    /// The highest revision the history names: past it, which revision an unknown write
    /// takes cannot be told apart.
    top: i64,
}

/// Whether some order of `h` is an etcd execution in `world`.
pub fn explains(h: &[Record], world: World) -> bool {
    let lin = |r: &Record| r.known() && r.op != OpKind::Watch && !r.serializable;
    let must: Vec<usize> = (0..h.len()).filter(|&i| lin(&h[i])).collect();
    let may: Vec<usize> = (0..h.len()).filter(|&i| h[i].unknown_write()).collect();
    let mut top = 0;
    for r in h {
        let o = r.output.iter();
        let named = o
            .flat_map(|o| {
                [o.revision, o.mod_revision]
                    .into_iter()
                    .flatten()
                    .chain(o.events.iter().map(|e| e.revision))
            })
            .chain(r.expect_revision);
        top = named.fold(top, i64::max);
    }
    let o = Oracle {
        h,
        world,
        must,
        may,
        top,
    };
    let start = match world {
        World::Open => 0,
        World::Closed { from_revision } => from_revision,
    };
    let mut placed = vec![None; h.len()];
    o.dfs(&mut placed, start, &State::new(), &mut vec![])
}

impl Oracle<'_> {
    /// `placed[i]`: the revision operation i was placed at (a write's own, a read's
    /// header); `writes`: (revision, key, value or None) in order.
    fn dfs(
        &self,
        placed: &mut Vec<Option<i64>>,
        rev: i64,
        state: &State,
        writes: &mut Vec<(i64, String, Option<String>, usize)>,
    ) -> bool {
        if self.must.iter().all(|&i| placed[i].is_some()) && self.finish(placed, writes) {
            return true;
        }
        let pending: Vec<usize> = self
            .must
            .iter()
            .chain(&self.may)
            .copied()
            .filter(|&i| placed[i].is_none())
            .collect();
        // Real time: nothing goes before an unplaced operation that returned before its call.
        let h = self.h;
        let ready = pending
            .iter()
            .copied()
            .filter(|&i| !pending.iter().any(|&j| before(&h[j], j, &h[i], i)));
        for i in ready.collect::<Vec<_>>() {
            for (at, next, wrote) in self.steps(i, rev, state) {
                placed[i] = Some(at);
                if let Some(w) = wrote.clone() {
                    writes.push((at, self.h[i].key.clone(), w, i));
                }
                let new_rev = if wrote.is_some() { at } else { rev.max(at) };
                if self.dfs(placed, new_rev, &next, writes) {
                    return true;
                }
                if wrote.is_some() {
                    writes.pop();
                }
                placed[i] = None;
            }
        }
        false
    }

    /// Every way operation `i` can go next: (its revision, the state after, what it wrote).
    #[allow(clippy::type_complexity)]
    fn steps(
        &self,
        i: usize,
        rev: i64,
        state: &State,
    ) -> Vec<(i64, State, Option<Option<String>>)> {
        let r = &self.h[i];
        let closed = matches!(self.world, World::Closed { .. });
        let cur = state.get(&r.key).cloned().unwrap_or((None, 0));
        let holds = match (r.expect_revision, &r.expect) {
            (Some(0), _) => cur.0.is_none(),
            (Some(m), _) => cur.0.is_some() && cur.1 == m,
            (None, e) => cur.0 == *e,
        };
        let writes = match r.op {
            OpKind::Put => true,
            OpKind::Delete => cur.0.is_some(),
            OpKind::Cas => holds,
            _ => false,
        };
        let value = if r.op == OpKind::Delete {
            None
        } else {
            r.value.clone()
        };
        // The revisions it may take: a returned one its own; an unknown write any.
        let revs: Vec<i64> = match r.output.as_ref().and_then(|o| o.revision) {
            Some(h) => vec![h],
            None if closed => vec![rev + 1],
            None => (rev + 1..=self.top.max(rev) + 1).collect(),
        };
        let mut out = vec![];
        for at in revs {
            let fits = if writes {
                at > rev && (!closed || at == rev + 1)
            } else {
                at >= rev && (!closed || at == rev)
            };
            if !fits || !self.answers(i, &cur, holds) {
                continue;
            }
            let mut next = state.clone();
            if writes {
                next.insert(r.key.clone(), (value.clone(), at));
            }
            out.push((at, next, writes.then(|| value.clone())));
        }
        if !r.known() && !writes {
            // An unknown write that could not write: it changed nothing (and is not placed
            // again: skipping it is the same as placing it nowhere).
            return vec![];
        }
        out
    }

    /// Whether returned operation `i`'s response is what the state gives.
    fn answers(&self, i: usize, cur: &(Option<String>, i64), holds: bool) -> bool {
        let r = &self.h[i];
        let Some(o) = r.output.as_ref().filter(|_| r.known()) else {
            return true;
        };
        match r.op {
            OpKind::Get => {
                o.value == cur.0 && o.mod_revision.is_none_or(|m| cur.0.is_some() && m == cur.1)
            }
            OpKind::Cas => o.succeeded == Some(holds),
            OpKind::Delete => o.deleted.is_none_or(|d| (d > 0) == cur.0.is_some()),
            _ => true,
        }
    }

    /// With every required operation placed: serializable reads, watch events and the
    /// bounds responses set on what was called after them.
    fn finish(
        &self,
        placed: &[Option<i64>],
        writes: &[(i64, String, Option<String>, usize)],
    ) -> bool {
        let h = self.h;
        let closed = matches!(self.world, World::Closed { .. });
        let last = writes.iter().map(|w| w.0).max();
        let state_at = |key: &str, rev: i64| {
            writes
                .iter()
                .filter(|w| w.0 <= rev && w.1 == key)
                .max_by_key(|w| w.0)
                .map_or((None, 0), |w| (w.2.clone(), w.0))
        };
        // A response tells of a revision committed when it returned: whatever was called
        // after it is placed at or after it.
        for s in h {
            let Some(o) = s.output.as_ref().filter(|_| s.known()) else {
                continue;
            };
            let top = o.events.iter().map(|e| e.revision).max();
            let Some(shown) = o.revision.max(top) else {
                continue;
            };
            if closed && shown > last.unwrap_or(i64::MIN).max(self.from()) {
                return false;
            }
            // A client never goes behind what its own returned operations showed it.
            if s.serializable {
                let behind = h.iter().enumerate().any(|(j, p)| {
                    p.client == s.client
                        && before(p, j, s, usize::MAX)
                        && p.output
                            .as_ref()
                            .and_then(|o| o.revision)
                            .is_some_and(|r| r > shown)
                });
                if behind {
                    return false;
                }
            }
            for (i, b) in h.iter().enumerate() {
                let Some(at) = placed[i] else { continue };
                let is_write = writes.iter().any(|w| w.3 == i);
                let after = before(s, usize::MAX, b, i);
                if after && (at < shown || (is_write && at == shown)) {
                    return false;
                }
            }
            if s.serializable {
                let (v, m) = state_at(&s.key, shown);
                if o.value != v || o.mod_revision.is_some_and(|x| v.is_none() || x != m) {
                    return false;
                }
            }
            if s.op == OpKind::Watch && !self.watch_ok(s, writes) {
                return false;
            }
        }
        true
    }

    fn from(&self) -> i64 {
        match self.world {
            World::Open => 0,
            World::Closed { from_revision } => from_revision,
        }
    }

    /// One watch response (its own stream): each event the write at its revision, in
    /// order, from the start, under the prefix and the header, and nothing it covered
    /// missing.
    fn watch_ok(&self, s: &Record, writes: &[(i64, String, Option<String>, usize)]) -> bool {
        let o = s.output.as_ref().expect("returned");
        let start = s.start_revision.unwrap_or(1);
        let mut prev = i64::MIN;
        for e in &o.events {
            let value = if e.kind == EventKind::Delete {
                None
            } else {
                e.value.clone()
            };
            let w = writes.iter().find(|w| w.0 == e.revision);
            let ok = w.is_some_and(|w| w.1 == e.key && w.2 == value)
                && (e.kind == EventKind::Delete) == e.value.is_none()
                && e.revision > prev
                && e.revision >= start
                && e.key.starts_with(s.key.as_str())
                && o.revision.is_none_or(|h| e.revision <= h);
            if !ok {
                return false;
            }
            prev = e.revision;
        }
        let Some(end) = o.events.last().map(|e| e.revision) else {
            return true;
        };
        writes
            .iter()
            .filter(|w| w.1.starts_with(s.key.as_str()) && (start..=end).contains(&w.0))
            .all(|w| o.events.iter().any(|e| e.revision == w.0))
    }
}
