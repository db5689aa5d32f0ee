//! Serializable reads' sessions. A member answers them from its own applied state without
//! asking the leader, so they may be stale by design and are not held to linearizability;
//! their answer must be the state at the revision they report, which the etcd model
//! (`revision`) checks by replaying each there. What is left is the session: a client
//! pinned to one member never sees it go back to before a revision its own returned
//! operations already showed it (etcd applies a write on the member that took it before
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

/// Checks every serializable get that returned: its client never goes behind a revision
/// one of its own operations that returned before it showed. (Its answer is the state at the
/// revision it reports: the etcd model replays it there, with everything else.)
pub fn check(history: &[Record]) -> ReadCheck {
    let mut out = ReadCheck::default();
    // Per client, the highest revision a returned response has shown it so far, and where.
    let mut shown: HashMap<u64, (i64, usize)> = HashMap::new();
    let mut order: Vec<usize> = (0..history.len()).filter(|&i| history[i].known()).collect();
    order.sort_by_key(|&i| (history[i].call, i));
    for i in order {
        let r = &history[i];
        let Some(o) = r.output.as_ref() else { continue };
        let top = o.events.iter().map(|e| e.revision).max();
        let Some(rev) = o.revision.max(top) else {
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
        }
        let best = shown.entry(r.client).or_insert((rev, i));
        if rev > best.0 {
            *best = (rev, i);
        }
    }
    out.problems.truncate(20);
    out
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
    fn no_reads_is_no_pass() {
        let h = vec![rec(1, 10, OpKind::Put, Some("a"), 5)];
        assert!(!check(&h).passed());
        let h = vec![
            rec(1, 10, OpKind::Put, Some("a"), 5),
            rec(2, 30, OpKind::Get, Some("a"), 5),
        ];
        assert!(check(&h).passed());
    }
}
