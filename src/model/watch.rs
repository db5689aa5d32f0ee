//! What watchers received, against what clients wrote. etcd promises a watch delivers
//! every event on its keys from its start revision on, in revision order, each once, the
//! events of one revision (one txn) together, and that a stream resumed from the revision
//! after the last event it delivered loses nothing. The committed history is what clients
//! were told: every write that returned has its revision, so a watch that skips one, shows
//! one twice, shows it out of order or shows a value at a revision nobody wrote it at is
//! caught. Writes of unknown outcome may appear (they may have taken effect) but never
//! before they were issued.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::history::{EventKind, OpKind, Record, WatchEvent};

/// The verdict on every watcher of a history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WatchCheck {
    pub watchers: usize,
    /// Watch streams opened (more than one per watcher means it resumed).
    pub streams: usize,
    pub events: usize,
    /// Acknowledged writes the watchers' ranges covered, each of which must have come.
    pub writes_covered: usize,
    /// What breaks the guarantees, at most twenty.
    pub problems: Vec<String>,
}

impl WatchCheck {
    /// Passed: watchers received events and nothing broke. No event is no evidence.
    pub fn passed(&self) -> bool {
        self.problems.is_empty() && self.events > 0
    }
}

/// A write clients were told about (or might have made): where it is in the history.
struct Write<'a> {
    op: usize,
    key: &'a str,
    value: Option<&'a str>,
    call: u64,
}

/// Checks every watcher's responses (records of kind `watch`) against the writes of the
/// history.
pub fn check(history: &[Record]) -> WatchCheck {
    let mut at_revision: HashMap<i64, Write> = HashMap::new();
    // Writes of unknown outcome, by (key, value): they may show up at any revision.
    let mut maybe: HashMap<(&str, Option<&str>), u64> = HashMap::new();
    for (op, r) in history.iter().enumerate() {
        if let Some((rev, value)) = r.committed() {
            let (key, call) = (r.key.as_str(), r.call);
            at_revision.insert(
                rev,
                Write {
                    op,
                    key,
                    value,
                    call,
                },
            );
        } else if r.unknown_write() {
            let value = (r.op != OpKind::Delete)
                .then_some(r.value.as_deref())
                .flatten();
            let e = maybe.entry((r.key.as_str(), value)).or_insert(r.call);
            *e = (*e).min(r.call);
        }
    }
    let mut by_watcher: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (i, r) in history.iter().enumerate() {
        if r.op == OpKind::Watch {
            by_watcher.entry(r.client).or_default().push(i);
        }
    }
    let mut out = WatchCheck {
        watchers: by_watcher.len(),
        ..Default::default()
    };
    let writes = Writes { at_revision, maybe };
    for (client, mut responses) in by_watcher {
        responses.sort_by_key(|&i| history[i].call);
        one_watcher(history, client, &responses, &writes, &mut out);
    }
    out.problems.truncate(20);
    out
}

struct Writes<'a> {
    at_revision: HashMap<i64, Write<'a>>,
    maybe: HashMap<(&'a str, Option<&'a str>), u64>,
}

/// One watcher's responses in the order received.
fn one_watcher(
    history: &[Record],
    client: u64,
    responses: &[usize],
    writes: &Writes,
    out: &mut WatchCheck,
) {
    let mut last: Option<(i64, usize)> = None;
    let mut stream_start: Option<i64> = None;
    let mut seen: HashSet<(i64, &str)> = HashSet::new();
    // Per stream: the prefix and the revisions it covered, [start, last event].
    let mut covered: Vec<(&str, i64, i64)> = vec![];
    let mut compacted = false;
    for &i in responses {
        let r = &history[i];
        let start = r.start_revision.unwrap_or(1);
        if stream_start != Some(start) {
            out.streams += 1;
            // A stream resumed past the revision after the last event skips what lies between
            // (after a compaction that is etcd's documented answer, not a loss).
            if let Some((rev, _)) = last
                && start > rev + 1
                && !compacted
            {
                out.problems.push(format!(
                    "watcher {client} resumed from revision {start} after receiving up to {rev}: revisions in between are never delivered"
                ));
            }
            stream_start = Some(start);
            covered.push((r.key.as_str(), start, start - 1));
        }
        let Some(output) = r.output.as_ref() else {
            continue;
        };
        compacted = output.compacted.is_some();
        for e in &output.events {
            out.events += 1;
            let at = format!(
                "watcher {client}, response #{i}: event {} at revision {}",
                e.key, e.revision
            );
            if e.revision < start {
                out.problems
                    .push(format!("{at} is below the stream's start revision {start}"));
            }
            // The stream watches `r.key` as a prefix: an event of another key is not its own.
            if !e.key.starts_with(r.key.as_str()) {
                out.problems.push(format!(
                    "{at} is of a key outside the watched prefix {:?}",
                    r.key
                ));
            }
            match last {
                Some((rev, _)) if e.revision < rev => out.problems.push(format!(
                    "{at} came after revision {rev}: events out of revision order"
                )),
                Some((rev, resp)) if e.revision == rev && resp != i => out.problems.push(format!(
                    "{at} came in a later response than other events of that revision: one revision's events must come together"
                )),
                _ => {}
            }
            if !seen.insert((e.revision, e.key.as_str())) {
                out.problems.push(format!("{at} was delivered twice"));
            }
            if let Some(p) = provenance(e, r.call, writes) {
                out.problems.push(format!("{at}: {p}"));
            }
            last = Some((e.revision, i));
            if let Some(c) = covered.last_mut() {
                c.2 = c.2.max(e.revision);
            }
        }
    }
    // Every acknowledged write a stream's range covered must have come through it.
    for (rev, w) in &writes.at_revision {
        let in_range = covered
            .iter()
            .any(|&(prefix, a, b)| w.key.starts_with(prefix) && (a..=b).contains(rev));
        if !in_range {
            continue;
        }
        out.writes_covered += 1;
        if !seen.contains(&(*rev, w.key)) {
            out.problems.push(format!(
                "watcher {client} never received operation #{}'s write of {} at revision {rev}, though it received later revisions",
                w.op, w.key
            ));
        }
    }
}

/// Whether an event is something clients wrote: an acknowledged write at that very
/// revision, or a write of unknown outcome with that key and value issued before the event
/// was received. `None` when it is.
fn provenance(e: &WatchEvent, received: u64, writes: &Writes) -> Option<String> {
    // A put event carries the value put and a delete's none: a put event without a value
    // would otherwise pass for the delete at its revision.
    if (e.kind == EventKind::Delete) != e.value.is_none() {
        return Some(format!(
            "a {} event {} a value",
            if e.kind == EventKind::Delete {
                "delete"
            } else {
                "put"
            },
            if e.kind == EventKind::Delete {
                "with"
            } else {
                "without"
            }
        ));
    }
    let value = e.value.as_deref();
    if let Some(w) = writes.at_revision.get(&e.revision) {
        if w.key != e.key || w.value != value {
            return Some(format!(
                "operation #{} wrote {}={} at that revision",
                w.op,
                w.key,
                w.value.unwrap_or("(deleted)")
            ));
        }
        return (w.call > received)
            .then(|| format!("received before operation #{} wrote it was issued", w.op));
    }
    match writes.maybe.get(&(e.key.as_str(), value)) {
        Some(&call) if call <= received => None,
        Some(_) => Some("received before the write was issued".into()),
        None => Some(format!(
            "no client wrote {}={}",
            e.key,
            value.unwrap_or("(deleted)")
        )),
    }
}

#[cfg(test)]
mod tests;
