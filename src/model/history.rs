//! A client history: every operation clients issued, with when it was called and when it
//! returned on one monotonic clock, what it asked and what it got. One JSON object per
//! line (`history.jsonl`), a format small enough that histories from other tools convert
//! to it:
//!
//! ```text
//! {"client": 3, "call": 1200, "return": 1900, "op": "put", "key": "x", "value": "4"}
//! {"client": 0, "call": 1300, "return": 2100, "op": "get", "key": "x", "output": {"value": "4"}}
//! {"client": 2, "call": 2200, "return": 2500, "op": "cas", "key": "x", "expect": "3", "value": "0", "output": {"succeeded": false}}
//! {"client": 4, "call": 2300, "return": null, "op": "cas", "key": "x", "expect": "4", "value": "1"}
//! ```
//!
//! `return: null` is an operation whose outcome is unknown (a timeout, a lost
//! connection): it may have taken effect at any time after its call, or never. The etcd
//! model reads `revision` in outputs (the response header's revision), `deleted` (how many
//! keys a delete removed), `"serializable": true` on a get served by one member without
//! consensus, and `watch` records: one per watch response a watcher received, with the
//! revision its stream started from and the events, e.g.
//!
//! ```text
//! {"client": 8, "call": 2600, "return": 2600, "op": "watch", "key": "/w/", "start_revision": 1,
//!  "output": {"revision": 9, "events": [{"type": "put", "key": "/w/x", "value": "4", "revision": 7}]}}
//! ```
//!
//! A watch record may name its `stream` (a number per watcher): a resumed stream is a new
//! one. Without it a new stream starts where `start_revision` changes.
//!
//! The first line may be a header saying what the history promises of writes it does not
//! hold: `{"world": "closed", "from_revision": 1}` (the default: every write since
//! `from_revision`, when each of its keys was absent, is in the history — the etcd model
//! then requires revisions to be consecutive) or `{"world": "open"}` (other clients wrote
//! other keys, as a drill's harness does: revisions may be taken by writes the history does
//! not hold). The etcd model needs every returned operation's header `revision` and a
//! delete's `deleted`.

use serde::{Deserialize, Serialize};

/// What a history promises about writes it does not hold (its header line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "world", deny_unknown_fields)]
pub enum World {
    /// Clients the history does not hold may have written, to keys it never names: a
    /// revision may be taken by none of its writes. Gaps are allowed; the check is weaker.
    Open,
    /// Every write since `from_revision` (when every key of the history was absent) is in
    /// the history: each revision after it is one of the history's writes.
    Closed {
        #[serde(default = "fresh_cluster")]
        from_revision: i64,
    },
}

/// A new etcd cluster's revision: nothing written yet.
fn fresh_cluster() -> i64 {
    1
}

impl Default for World {
    fn default() -> World {
        World::Closed {
            from_revision: fresh_cluster(),
        }
    }
}

impl World {
    /// The header line that declares it.
    pub fn to_line(self) -> String {
        serde_json::to_string(&self).expect("a header serializes")
    }
}

/// A parsed history: its header's world, if it has one, and its records with their lines.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub world: Option<World>,
    pub records: Vec<Record>,
    /// The line of each record (1-based), for messages.
    pub lines: Vec<usize>,
}

/// What an operation asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpKind {
    /// A read of one key: linearizable unless the record says `serializable`.
    #[default]
    Get,
    Put,
    Delete,
    /// Compare-and-set: set `value` if the key holds `expect` (absent when `expect` is
    /// null), or, with `expect_revision`, if the key's mod revision is that (0: absent) —
    /// the way Kubernetes updates objects.
    Cas,
    /// One response of a watch on the prefix `key` (its events in `output.events`).
    Watch,
}

impl OpKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Get => "get",
            OpKind::Put => "put",
            OpKind::Delete => "delete",
            OpKind::Cas => "cas",
            OpKind::Watch => "watch",
        }
    }
}

/// What an operation got back, when it returned.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    /// For a get: the value read; null when the key was absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// For a get of a present key: its mod revision (etcd model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mod_revision: Option<i64>,
    /// For a cas: whether it set the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub succeeded: Option<bool>,
    /// The response header's revision (etcd model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    /// For a delete: how many keys it removed (etcd model; 0 or 1 for one key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<i64>,
    /// For a watch response: the events it carried, in the order received.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<WatchEvent>,
    /// For a watch response that ended its stream because the revision asked for is
    /// compacted: the compaction revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compacted: Option<i64>,
}

/// One event of a watch response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchEvent {
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub key: String,
    /// The value put; null for a delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The revision of the write (the key's mod revision; the delete's revision).
    pub revision: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    Put,
    Delete,
}

/// One operation of the history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub client: u64,
    /// When the client called, in any unit, on one clock shared by all clients.
    pub call: u64,
    /// When it returned; null when the outcome is unknown.
    #[serde(rename = "return")]
    pub ret: Option<u64>,
    pub op: OpKind,
    pub key: String,
    /// For put and cas: the value written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// For cas: the value required (null: the key must be absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<String>,
    /// For cas on the mod revision instead of the value (etcd model): the revision
    /// required, 0 for an absent key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_revision: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Output>,
    /// A get served by the member asked from its own state, without consensus: it may be
    /// stale, and is checked against that weaker guarantee, not linearizability.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub serializable: bool,
    /// For a watch: the revision its stream started from (a resumed stream starts again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_revision: Option<i64>,
    /// For a watch: which of the watcher's streams the response came on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<u64>,
}

/// Whether a history speaks of etcd's revisions (a header revision, a mod revision, a
/// cas on a revision, a watch): then it is checked by the etcd model, which holds those
/// to etcd's rules; a history of values alone is a register history (the kv model).
pub fn carries_revisions(history: &[Record]) -> bool {
    history.iter().any(|r| {
        r.expect_revision.is_some()
            || r.op == OpKind::Watch
            || r.output
                .as_ref()
                .is_some_and(|o| o.revision.is_some() || o.mod_revision.is_some())
    })
}

impl Record {
    /// Whether the outcome is known (it returned); [`parse`] has checked that a returned
    /// get or cas carries its output.
    pub fn known(&self) -> bool {
        self.ret.is_some()
    }

    /// What a write that returned did at which revision: `Some((revision, value))`, the
    /// value `None` for a delete. Reads, failed cas, deletes of nothing, and writes without
    /// a revision (register histories) give `None`.
    pub fn committed(&self) -> Option<(i64, Option<&str>)> {
        let out = self.output.as_ref()?;
        let rev = out.revision?;
        match self.op {
            OpKind::Put if self.known() => Some((rev, self.value.as_deref())),
            OpKind::Cas if self.known() && out.succeeded == Some(true) => {
                Some((rev, self.value.as_deref()))
            }
            OpKind::Delete if self.known() && out.deleted.is_some_and(|d| d > 0) => {
                Some((rev, None))
            }
            _ => None,
        }
    }

    /// Whether this is a write (put, cas, delete) whose outcome is unknown.
    pub fn unknown_write(&self) -> bool {
        !self.known() && matches!(self.op, OpKind::Put | OpKind::Cas | OpKind::Delete)
    }

    /// One line of `history.jsonl`.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("a record serializes")
    }
}

/// A history line that is not a record, with where it is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}:{line}: {problem}")]
pub struct BadLine {
    pub file: String,
    pub line: usize,
    pub problem: String,
}

/// Parses `history.jsonl` text's records (a header line is read and left out); blank lines
/// are skipped. `file` is only for messages.
pub fn parse(file: &str, text: &str) -> Result<Vec<Record>, BadLine> {
    parse_history(file, text).map(|h| h.records)
}

/// Parses `history.jsonl` text: the header, if its first line is one, and the records.
pub fn parse_history(file: &str, text: &str) -> Result<History, BadLine> {
    parse_reader(file, text.as_bytes())
}

/// [`parse_history`] from a reader, a line at a time: a large history is never held as text
/// beside its records.
pub fn parse_reader(file: &str, text: impl std::io::BufRead) -> Result<History, BadLine> {
    let mut h = History::default();
    for (i, line) in text.lines().enumerate() {
        let bad = |problem: String| BadLine {
            file: file.to_string(),
            line: i + 1,
            problem,
        };
        let line = line.map_err(|e| bad(format!("cannot be read: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let first = h.records.is_empty() && h.world.is_none();
        if first && has_key(&line, "world") && !has_key(&line, "client") {
            h.world = Some(serde_json::from_str::<World>(&line).map_err(|e| {
                bad(format!(
                    "{e}: a header is {{\"world\": \"open\"}} or {{\"world\": \"closed\", \"from_revision\": N}}"
                ))
            })?);
            continue;
        }
        let r: Record = serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
        // An unknown outcome is said, not implied: a record that lost its "return" would
        // otherwise pass as one whose result nobody saw, and a stale read with it.
        if !has_key(&line, "return") {
            return Err(bad(
                "no \"return\": give when it returned, or \"return\": null if the outcome is unknown".into(),
            ));
        }
        if let Some(p) = problem(&r) {
            return Err(bad(p));
        }
        h.records.push(r);
        h.lines.push(i + 1);
    }
    if let Some((line, p)) = overlapping(&h.records, &h.lines) {
        return Err(BadLine {
            file: file.to_string(),
            line,
            problem: p,
        });
    }
    Ok(h)
}

/// The first record the etcd model cannot check, and why: it places every operation that
/// returned at its header revision, and a delete by whether it removed the key.
pub fn etcd_unready(history: &[Record]) -> Option<(usize, String)> {
    history.iter().position(|r| {
        r.known()
            && r.op != OpKind::Watch
            && r.output.as_ref().is_none_or(|o| {
                o.revision.is_none() || (r.op == OpKind::Delete && o.deleted.is_none())
            })
    })
    .map(|i| {
        let r = &history[i];
        let what = if r.op == OpKind::Delete {
            "\"output\": {\"revision\": N, \"deleted\": 0|1}"
        } else {
            "its header revision in \"output\": {\"revision\": N}"
        };
        (
            i,
            format!(
                "the etcd model needs a returned {}'s {what}; add it, or check the history with --model kv",
                r.op.as_str()
            ),
        )
    })
}

/// Whether a JSON object's text has `key` as a key: the quoted name followed by a colon. Inside
/// a string a quote is escaped, so the quoted name followed by a colon is only ever a key.
fn has_key(line: &str, key: &str) -> bool {
    let quoted = format!("\"{key}\"");
    line.match_indices(&quoted)
        .any(|(i, m)| line[i + m.len()..].trim_start().starts_with(':'))
}

/// A client is sequential: an operation it called before its previous one returned is no
/// history a client makes — whatever the later one's outcome. (An operation of unknown
/// outcome never returned: the client gave up on it, so what it does next does not overlap
/// it.) The later line, and why.
fn overlapping(records: &[Record], lines: &[usize]) -> Option<(usize, String)> {
    let mut by_client: std::collections::BTreeMap<u64, Vec<(usize, &Record)>> =
        std::collections::BTreeMap::new();
    for (r, &line) in records.iter().zip(lines) {
        if r.op != OpKind::Watch {
            by_client.entry(r.client).or_default().push((line, r));
        }
    }
    for ops in by_client.values_mut() {
        ops.sort_by_key(|(line, r)| (r.call, *line));
        for w in ops.windows(2) {
            let ((_, a), (line, b)) = (w[0], w[1]);
            if a.ret.is_some_and(|ret| b.call < ret) {
                return Some((
                    line,
                    format!(
                        "client {} calls this at {} before its previous operation returned (at {}): a client is sequential; give concurrent operations clients of their own",
                        b.client,
                        b.call,
                        a.ret.unwrap_or_default()
                    ),
                ));
            }
        }
    }
    None
}

/// Fields that belong to another kind of operation: a put with an `expect`, a cas's
/// `succeeded` on a get, a delete's count on a put, watch events on anything but a watch.
fn foreign_fields(r: &Record) -> Option<String> {
    let op = r.op.as_str();
    if r.op == OpKind::Put && r.expect.is_some() {
        return Some("a put takes no \"expect\" (a cas does)".into());
    }
    let o = r.output.as_ref()?;
    let foreign = [
        (
            o.succeeded.is_some() && r.op != OpKind::Cas,
            "succeeded",
            "a cas's",
        ),
        (
            o.deleted.is_some() && r.op != OpKind::Delete,
            "deleted",
            "a delete's",
        ),
        (
            !o.events.is_empty() && r.op != OpKind::Watch,
            "events",
            "a watch's",
        ),
        (
            (o.value.is_some() || o.mod_revision.is_some()) && !matches!(r.op, OpKind::Get),
            "value/mod_revision",
            "a get's",
        ),
    ];
    foreign
        .iter()
        .find(|(bad, _, _)| *bad)
        .map(|(_, field, whose)| format!("a {op}'s output has no \"{field}\": that is {whose}"))
}

/// What makes a record meaningless, if anything.
fn problem(r: &Record) -> Option<String> {
    if r.ret.is_some_and(|ret| ret < r.call) {
        return Some("returns before it is called (return < call)".into());
    }
    let needs_output = matches!(r.op, OpKind::Get | OpKind::Cas | OpKind::Watch) && r.known();
    if let Some(p) = foreign_fields(r) {
        return Some(p);
    }
    if r.expect_revision.is_some() && (r.op != OpKind::Cas || r.expect.is_some()) {
        return Some("\"expect_revision\" is a cas's, instead of \"expect\"".into());
    }
    if r.serializable && r.op != OpKind::Get {
        return Some("only a get can be \"serializable\"".into());
    }
    // A serializable read is checked against the state at the revision it reports: one
    // without it would be skipped, and a pass would claim a check that never ran.
    if r.serializable && r.known() && r.output.as_ref().is_none_or(|o| o.revision.is_none()) {
        return Some(
            "a serializable get that returned needs its header \"revision\" in \"output\"".into(),
        );
    }
    if r.output
        .as_ref()
        .is_some_and(|o| o.mod_revision.is_some() && o.value.is_none())
    {
        return Some("a get of an absent key has no \"mod_revision\" (etcd returns no key)".into());
    }
    if r.stream.is_some() && r.op != OpKind::Watch {
        return Some("only a watch response has a \"stream\"".into());
    }
    if r.start_revision.is_some() != (r.op == OpKind::Watch) {
        return Some("a watch, and only a watch, has a \"start_revision\"".into());
    }
    if r.op == OpKind::Watch && !r.known() {
        return Some("a watch response was received: its \"return\" is when".into());
    }
    match r.op {
        OpKind::Put | OpKind::Cas if r.value.is_none() => {
            Some(format!("a {} needs the \"value\" it writes", r.op.as_str()))
        }
        OpKind::Get | OpKind::Delete | OpKind::Watch if r.value.is_some() || r.expect.is_some() => {
            Some(format!(
                "a {} takes no \"value\" or \"expect\" (a get's result goes in \"output\")",
                r.op.as_str()
            ))
        }
        _ if needs_output && r.output.is_none() => Some(format!(
            "a {} that returned needs its \"output\" (or \"return\": null if unknown)",
            r.op.as_str()
        )),
        OpKind::Cas if r.known() && r.output.as_ref().is_some_and(|o| o.succeeded.is_none()) => {
            Some("a cas that returned needs \"output\": {\"succeeded\": true|false}".into())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{"client": 3, "call": 1200, "return": 1900, "op": "put", "key": "x", "value": "4"}
{"client": 0, "call": 1300, "return": 2100, "op": "get", "key": "x", "output": {"value": "4"}}
{"client": 1, "call": 1400, "return": 2000, "op": "get", "key": "x", "output": {"value": null}}

{"client": 2, "call": 2200, "return": 2500, "op": "cas", "key": "x", "expect": "3", "value": "0", "output": {"succeeded": false}}
{"client": 4, "call": 2300, "return": null, "op": "cas", "key": "x", "expect": "4", "value": "1"}
"#;

    #[test]
    fn the_register_subset_parses_and_round_trips() {
        let h = parse("h.jsonl", SAMPLE).unwrap();
        assert_eq!(h.len(), 5);
        assert_eq!(h[2].output.as_ref().unwrap().value, None);
        assert!(!h[4].known());
        for r in &h {
            assert_eq!(&parse("again", &r.to_line()).unwrap()[0], r);
        }
    }

    /// Strict input: an unknown outcome is an explicit null, a field of another kind of
    /// operation is refused, and a client is sequential — each at its line.
    #[test]
    fn what_a_history_cannot_say_is_refused_at_its_line() {
        let ok = r#"{"client":1,"call":1,"return":2,"op":"put","key":"x","value":"1"}"#;
        let cases = [
            (
                r#"{"client":1,"call":5,"op":"get","key":"x","output":{"value":"1"}}"#,
                "no \"return\"",
            ),
            // A key named "return" is not the field.
            (
                r#"{"client":1,"call":5,"op":"put","key":"return","value":"1"}"#,
                "no \"return\"",
            ),
            (
                r#"{"client":1,"call":5,"return":6,"op":"put","key":"x","value":"1","expect":"0"}"#,
                "a put takes no \"expect\"",
            ),
            (
                r#"{"client":1,"call":5,"return":6,"op":"put","key":"x","value":"1","output":{"succeeded":true}}"#,
                "that is a cas's",
            ),
            (
                r#"{"client":1,"call":5,"return":6,"op":"get","key":"x","output":{"value":"1","deleted":1}}"#,
                "that is a delete's",
            ),
            (
                r#"{"client":1,"call":1,"return":9,"op":"get","key":"x","output":{"value":"1"}}"#,
                "before its previous operation returned",
            ),
        ];
        for (line, says) in cases {
            let e = parse("h.jsonl", &format!("{ok}\n{line}")).unwrap_err();
            assert_eq!(e.line, 2, "{line}: {e}");
            assert!(e.problem.contains(says), "{line}: {e}");
        }
        // An unknown outcome does not overlap what the client does next.
        let gave_up = r#"{"client":1,"call":3,"return":null,"op":"put","key":"x","value":"2"}
{"client":1,"call":4,"return":5,"op":"get","key":"x","output":{"value":"2"}}"#;
        assert!(parse("h.jsonl", &format!("{ok}\n{gave_up}")).is_ok());
    }

    #[test]
    fn bad_lines_are_refused_with_their_line_number() {
        let cases = [
            (
                r#"{"client":1,"call":5,"return":4,"op":"put","key":"x","value":"1"}"#,
                "return < call",
            ),
            (
                r#"{"client":1,"call":5,"return":6,"op":"put","key":"x"}"#,
                "needs the \"value\"",
            ),
            (
                r#"{"client":1,"call":5,"return":6,"op":"get","key":"x"}"#,
                "needs its \"output\"",
            ),
            (
                r#"{"client":1,"call":5,"return":6,"op":"incr","key":"x"}"#,
                "unknown variant",
            ),
            (
                r#"{"client":1,"call":5,"return":6,"op":"get","key":"x","colour":1}"#,
                "unknown field",
            ),
            (
                r#"{"client":1,"call":5,"return":6,"op":"cas","key":"x","value":"1","output":{}}"#,
                "succeeded",
            ),
        ];
        for (line, want) in cases {
            let text = format!("\n{line}\n");
            let e = parse("h.jsonl", &text).unwrap_err();
            assert_eq!(e.line, 2, "{line}");
            assert!(e.to_string().contains(want), "{line}: {e}");
        }
    }
}
