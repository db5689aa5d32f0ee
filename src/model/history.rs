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
//! model reads `revision` in outputs (the response header's revision).

use serde::{Deserialize, Serialize};

/// What an operation asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpKind {
    /// A linearizable read of one key.
    Get,
    Put,
    Delete,
    /// Compare-and-set on the value: set `value` if the key holds `expect` (absent when
    /// `expect` is null).
    Cas,
}

impl OpKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Get => "get",
            OpKind::Put => "put",
            OpKind::Delete => "delete",
            OpKind::Cas => "cas",
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
    /// For a cas: whether it set the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub succeeded: Option<bool>,
    /// The response header's revision (etcd model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
}

/// One operation of the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Output>,
}

impl Record {
    /// Whether the outcome is known (it returned); [`parse`] has checked that a returned
    /// get or cas carries its output.
    pub fn known(&self) -> bool {
        self.ret.is_some()
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

/// Parses `history.jsonl` text; blank lines are skipped. `file` is only for messages.
pub fn parse(file: &str, text: &str) -> Result<Vec<Record>, BadLine> {
    let mut out = vec![];
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |problem: String| BadLine {
            file: file.to_string(),
            line: i + 1,
            problem,
        };
        let r: Record = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        if let Some(p) = problem(&r) {
            return Err(bad(p));
        }
        out.push(r);
    }
    Ok(out)
}

/// What makes a record meaningless, if anything.
fn problem(r: &Record) -> Option<String> {
    if r.ret.is_some_and(|ret| ret < r.call) {
        return Some("returns before it is called (return < call)".into());
    }
    let needs_output = matches!(r.op, OpKind::Get | OpKind::Cas) && r.known();
    match r.op {
        OpKind::Put | OpKind::Cas if r.value.is_none() => {
            Some(format!("a {} needs the \"value\" it writes", r.op.as_str()))
        }
        OpKind::Get | OpKind::Delete if r.value.is_some() || r.expect.is_some() => Some(format!(
            "a {} takes no \"value\" or \"expect\" (a get's result goes in \"output\")",
            r.op.as_str()
        )),
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
