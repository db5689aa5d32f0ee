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

/// One watch stream: a watcher's responses from one start revision until it ended.
pub struct Stream<'a> {
    pub client: u64,
    /// The watched key prefix.
    pub prefix: &'a str,
    pub start: i64,
    /// Its responses (indices into the history), in the order received.
    pub responses: Vec<usize>,
}

/// The history's watch streams, per watcher in the order opened: by their `stream` where
/// records name it, else a new one wherever `start_revision` changes.
pub fn streams(history: &[Record]) -> Vec<Stream<'_>> {
    let mut by_watcher: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (i, r) in history.iter().enumerate() {
        if r.op == OpKind::Watch {
            by_watcher.entry(r.client).or_default().push(i);
        }
    }
    let mut out: Vec<Stream> = vec![];
    for (client, mut responses) in by_watcher {
        responses.sort_by_key(|&i| (history[i].call, i));
        let first = out.len();
        for i in responses {
            let r = &history[i];
            let start = r.start_revision.unwrap_or(1);
            let same = |s: &Stream| match r.stream {
                Some(id) => history[s.responses[0]].stream == Some(id),
                None => s.start == start && s.prefix == r.key,
            };
            // Unnamed streams continue only the last one; named ones their own.
            let at = match r.stream {
                Some(_) => out[first..].iter().position(same).map(|p| p + first),
                None => (out.len() > first && same(&out[out.len() - 1])).then(|| out.len() - 1),
            };
            match at {
                Some(s) => out[s].responses.push(i),
                None => out.push(Stream {
                    client,
                    prefix: r.key.as_str(),
                    start,
                    responses: vec![i],
                }),
            }
        }
    }
    out
}

/// Checks every watcher's responses (records of kind `watch`) against the writes of the
/// history, as the etcd model placed them (`revision::check`'s `placed`).
pub fn check(history: &[Record]) -> WatchCheck {
    let placed = super::revision::placed(history);
    check_with(history, &placed)
}

/// [`check`] with the writes already placed: (revision, operation).
pub fn check_with(history: &[Record], placed: &[(i64, usize)]) -> WatchCheck {
    let mut at_revision: HashMap<i64, Write> = HashMap::new();
    for &(rev, op) in placed {
        let r = &history[op];
        let value = (r.op != OpKind::Delete)
            .then_some(r.value.as_deref())
            .flatten();
        at_revision.insert(
            rev,
            Write {
                op,
                key: r.key.as_str(),
                value,
                call: r.call,
            },
        );
    }
    // Writes of unknown outcome left unplaced, by (key, value): they may show up at any
    // revision no placed write took.
    let mut maybe: HashMap<(&str, Option<&str>), u64> = HashMap::new();
    for r in history.iter().filter(|r| r.unknown_write()) {
        let value = (r.op != OpKind::Delete)
            .then_some(r.value.as_deref())
            .flatten();
        let e = maybe.entry((r.key.as_str(), value)).or_insert(r.call);
        *e = (*e).min(r.call);
    }
    let writes = Writes { at_revision, maybe };
    let streams = streams(history);
    let mut out = WatchCheck {
        watchers: streams
            .iter()
            .map(|s| s.client)
            .collect::<HashSet<_>>()
            .len(),
        streams: streams.len(),
        ..Default::default()
    };
    // Per watcher, where its last stream ended: (last event's revision, compacted).
    let mut ended: HashMap<u64, (i64, bool)> = HashMap::new();
    for s in &streams {
        // A stream resumed past the revision after the last event skips what lies between:
        // lost if a write of the prefix is there (after a compaction that is etcd's
        // documented answer, not a loss). Writes a history does not hold touch no key
        // under a prefix it watches.
        if let Some(&(rev, compacted)) = ended.get(&s.client)
            && s.start > rev + 1
            && !compacted
            && let Some((at, w)) = writes
                .at_revision
                .iter()
                .filter(|(at, w)| (rev + 1..s.start).contains(*at) && w.key.starts_with(s.prefix))
                .min_by_key(|(at, _)| **at)
        {
            out.problems.push(format!(
                "watcher {} resumed from revision {} after receiving up to {rev}: operation #{}'s write of {} at revision {at} is never delivered",
                s.client, s.start, w.op, w.key
            ));
        }
        let end = one_stream(history, s, &writes, &mut out);
        let prev = ended.get(&s.client).map_or(0, |e| e.0);
        ended.insert(s.client, (end.0.unwrap_or(prev).max(prev), end.1));
    }
    out.problems.truncate(20);
    out
}

struct Writes<'a> {
    at_revision: HashMap<i64, Write<'a>>,
    maybe: HashMap<(&'a str, Option<&'a str>), u64>,
}

/// One stream's responses: ordered, unique, atomic, from its start, on its prefix, below
/// each response's header, each event a write, and every write it covered delivered.
/// Returns its last event's revision and whether it ended compacted.
fn one_stream(
    history: &[Record],
    s: &Stream,
    writes: &Writes,
    out: &mut WatchCheck,
) -> (Option<i64>, bool) {
    let client = s.client;
    let mut last: Option<(i64, usize)> = None;
    let mut seen: HashSet<(i64, &str)> = HashSet::new();
    let mut compacted = false;
    for &i in &s.responses {
        let r = &history[i];
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
            if e.revision < s.start {
                out.problems.push(format!(
                    "{at} is below the stream's start revision {}",
                    s.start
                ));
            }
            if let Some(h) = output.revision.filter(|&h| e.revision > h) {
                out.problems
                    .push(format!("{at} is above the response's header revision {h}"));
            }
            // The stream watches `r.key` as a prefix: an event of another key is not its own.
            if !e.key.starts_with(s.prefix) {
                out.problems.push(format!(
                    "{at} is of a key outside the watched prefix {:?}",
                    s.prefix
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
        }
    }
    // Every write the stream's range covered must have come through it.
    let Some((end, _)) = last else {
        return (None, compacted);
    };
    for (rev, w) in &writes.at_revision {
        if !w.key.starts_with(s.prefix) || !(s.start..=end).contains(rev) {
            continue;
        }
        out.writes_covered += 1;
        if !seen.contains(&(*rev, w.key)) {
            out.problems.push(format!(
                "watcher {client} never received operation #{}'s write of {} at revision {rev}, though its stream from revision {} received later revisions",
                w.op, w.key, s.start
            ));
        }
    }
    (Some(end), compacted)
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
