//! Serializable reads, against the guarantee they have. A member answers them from its
//! own applied state without asking the leader, so they may be stale by design and are
//! not held to linearizability. What they do promise: the value is the key's state at the
//! revision the response reports (a committed state, not a made-up or future one), and a
//! client pinned to one member never sees that member go back to before a revision it
//! already showed the client (etcd applies a write on the member that took it before
//! answering, and a restarted member serves only after replaying its log).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::history::{OpKind, Record};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReadCheck {
    pub reads: usize,
    /// What breaks the guarantee, at most twenty.
    pub problems: Vec<String>,
}

impl ReadCheck {
    pub fn passed(&self) -> bool {
        self.problems.is_empty() && self.reads > 0
    }
}

/// A key's committed writes in revision order: (revision, value or `None` for a delete,
/// the operation's index).
type KeyWrites<'a> = Vec<(i64, Option<&'a str>, usize)>;

/// Checks every serializable get that returned with a revision.
pub fn check(history: &[Record]) -> ReadCheck {
    // Per key, the committed writes in revision order: (revision, value, op).
    let mut writes: HashMap<&str, KeyWrites> = HashMap::new();
    for (i, r) in history.iter().enumerate() {
        if let Some((rev, v)) = r.committed() {
            writes.entry(r.key.as_str()).or_default().push((rev, v, i));
        }
    }
    for w in writes.values_mut() {
        w.sort();
    }
    let mut out = ReadCheck::default();
    // Per client, the highest revision a response has shown it so far, and where.
    let mut shown: HashMap<u64, (i64, usize)> = HashMap::new();
    let mut order: Vec<usize> = (0..history.len()).collect();
    order.sort_by_key(|&i| (history[i].call, i));
    for i in order {
        let r = &history[i];
        let Some(rev) = r
            .output
            .as_ref()
            .and_then(|o| o.revision)
            .filter(|_| r.known())
        else {
            continue;
        };
        if r.op == OpKind::Get && r.serializable {
            out.reads += 1;
            if let Some(&(before, j)) = shown.get(&r.client)
                && rev < before
            {
                out.problems.push(format!(
                    "serializable read #{i} of client {} answered at revision {rev}, behind revision {before} its member showed it in #{j}",
                    r.client
                ));
            }
            if let Some(p) = state_at(history, i, rev, writes.get(r.key.as_str())) {
                out.problems.push(p);
            }
        }
        let best = shown.entry(r.client).or_insert((rev, i));
        if rev > best.0 {
            *best = (rev, i);
        }
    }
    out.problems.truncate(20);
    out
}

/// Whether read `i` returned the key's state at `rev`: the last committed write at or
/// below it, or the value of a write of unknown outcome issued before the read returned
/// (its revision is not known, so it may lie anywhere). `None` when it did.
fn state_at(history: &[Record], i: usize, rev: i64, writes: Option<&KeyWrites>) -> Option<String> {
    let r = &history[i];
    let got = r.output.as_ref().and_then(|o| o.value.as_deref());
    let last = writes
        .and_then(|w| w.iter().rev().find(|(at, _, _)| *at <= rev))
        .map(|&(_, v, j)| (v, j));
    if last.map_or(got.is_none(), |(v, _)| v == got) {
        return None;
    }
    let returned = r.ret.unwrap_or(u64::MAX);
    let maybe = history.iter().any(|w| {
        w.key == r.key
            && w.unknown_write()
            && w.call <= returned
            && (w.op == OpKind::Delete && got.is_none()
                || w.op != OpKind::Delete && w.value.as_deref() == got)
    });
    if maybe {
        return None;
    }
    let held = match last {
        Some((v, j)) => format!("{} (#{j})", v.unwrap_or("nothing")),
        None => "nothing".into(),
    };
    Some(format!(
        "serializable read #{i} returned {}={} at revision {rev}, but at that revision the key held {held}",
        r.key,
        got.unwrap_or("nothing")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::history::Output;

    fn rec(client: u64, call: u64, op: OpKind, value: Option<&str>, rev: i64) -> Record {
        Record {
            client,
            call,
            ret: Some(call + 1),
            op,
            key: "k".into(),
            value: (op != OpKind::Get)
                .then(|| value.map(str::to_string))
                .flatten(),
            serializable: op == OpKind::Get,
            output: Some(Output {
                value: (op == OpKind::Get)
                    .then(|| value.map(str::to_string))
                    .flatten(),
                revision: Some(rev),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_stale_but_committed_read_passes_and_a_wrong_one_is_caught() {
        let h = vec![
            rec(1, 10, OpKind::Put, Some("a"), 5),
            rec(1, 20, OpKind::Put, Some("b"), 6),
            // Client 2's member is behind: it answers at revision 5, with revision 5's value.
            rec(2, 30, OpKind::Get, Some("a"), 5),
            rec(2, 40, OpKind::Get, Some("b"), 6),
        ];
        let c = check(&h);
        assert!(c.passed(), "{c:?}");
        // At revision 6 the key held b: a at 6 is a state that never was.
        let mut bad = h.clone();
        bad[3] = rec(2, 40, OpKind::Get, Some("a"), 6);
        let p = check(&bad).problems;
        assert!(p[0].contains("held b (#1)"), "{p:?}");
        // A value from the future of the revision answered.
        let mut bad = h.clone();
        bad[2] = rec(2, 30, OpKind::Get, Some("b"), 5);
        assert_eq!(check(&bad).problems.len(), 1);
    }

    #[test]
    fn a_member_going_back_in_time_for_its_client_is_caught() {
        let h = vec![
            rec(1, 10, OpKind::Put, Some("a"), 5),
            rec(2, 20, OpKind::Put, Some("b"), 6),
            rec(2, 30, OpKind::Get, Some("a"), 5),
        ];
        let p = check(&h).problems;
        assert!(p[0].contains("behind revision 6"), "{p:?}");
    }

    #[test]
    fn an_unknown_write_may_be_what_was_read_and_no_reads_is_no_pass() {
        let mut unknown = rec(1, 15, OpKind::Put, Some("u"), 0);
        unknown.ret = None;
        unknown.output = None;
        let h = vec![
            rec(1, 10, OpKind::Put, Some("a"), 5),
            unknown,
            rec(2, 30, OpKind::Get, Some("u"), 9),
        ];
        assert!(check(&h).passed(), "{:?}", check(&h));
        assert!(!check(&h[..2]).passed());
    }
}
