//! Is a history linearizable? A Wing–Gong search with Lowe's memoisation (the algorithm
//! porcupine and Knossos use) against a key-value register: try each operation that may
//! go next (called before the earliest pending return), apply it to the model, and back
//! up when a return is reached whose operation could not be placed; a set of (operations
//! placed, model state) already explored is never explored again.
//!
//! Keys are independent in this model, and linearizability is local (a history is
//! linearizable iff every key's sub-history is), so each key is searched on its own,
//! which keeps a contended history of many keys tractable. This is the kv model (values
//! only, for foreign histories); the etcd model, one global state per revision, is
//! `revision`, reached through the same [`check`].
//!
//! The search has a deadline: running out of time gives `Unknown`, never a pass.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::history::{EventKind, OpKind, Record, World};

/// Which model the history is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Model {
    /// A register per key: get, put, delete, cas.
    Kv,
    /// The register model plus one global revision (outputs' `revision`).
    Etcd,
}

/// The answer. `Unknown` is what a search that ran out of time says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Linearizability {
    Linearizable,
    NotLinearizable,
    Unknown,
}

impl Linearizability {
    pub fn as_str(self) -> &'static str {
        match self {
            Linearizability::Linearizable => "linearizable",
            Linearizability::NotLinearizable => "not-linearizable",
            Linearizability::Unknown => "unknown",
        }
    }
}

/// Where the search got stuck on one key: the operations it had placed last, and those
/// that could have gone next but none of which the model allows. Indices are into the
/// history as given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub key: String,
    /// How many of the key's operations could be placed at most.
    pub placed: usize,
    /// The last few placed, in their linearization order (context).
    pub before: Vec<usize>,
    /// The candidates at the deepest point; none of them can go next.
    pub stuck: Vec<usize>,
}

/// A drill's history check as its report keeps it: the check, and the operations its
/// window names (the history itself is in `history.jsonl`), by index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryReport {
    pub check: HistoryCheck,
    pub rate: f64,
    pub seconds: f64,
    pub window_ops: Vec<(usize, Record)>,
    /// The history against the restore that followed it, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub across: Option<super::across::AcrossRestore>,
}

impl HistoryReport {
    pub fn new(check: HistoryCheck, history: &[Record], rate: f64, seconds: f64) -> Self {
        let named = check
            .window
            .iter()
            .flat_map(|w| w.before.iter().chain(&w.stuck));
        let window_ops = named.map(|&i| (i, history[i].clone())).collect();
        HistoryReport {
            check,
            rate,
            seconds,
            window_ops,
            across: None,
        }
    }
}

/// What the checker found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryCheck {
    pub verdict: Linearizability,
    pub model: Model,
    pub operations: usize,
    pub keys: usize,
    /// Operations whose outcome is unknown (they may or may not have taken effect).
    pub unknown_outcomes: usize,
    /// The first key that cannot be linearized, if one was found.
    pub window: Option<Window>,
    /// What the global revision rules out (etcd model).
    pub revision_problems: Vec<String>,
    /// Keys the deadline cut short.
    pub undecided_keys: Vec<String>,
    /// Serializable reads against their weaker guarantee, when the history has any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reads: Option<super::reads::ReadCheck>,
    /// What watchers received, when the history has watches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<super::watch::WatchCheck>,
    /// What the history promised of writes it does not hold (etcd model): in an open world
    /// revisions may be taken by writes it does not hold, and the check is weaker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub world: Option<World>,
    /// Writes of unknown outcome whose revision evidence fixed, and those left to the
    /// search (etcd model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_unknowns: Option<(usize, usize)>,
    /// Why the check could not decide (etcd model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undecided: Option<String>,
}

impl HistoryCheck {
    /// Whether everything checked holds (operations checked, linearizable, and any
    /// serializable reads and watches as guaranteed).
    pub fn passed(&self) -> bool {
        self.verdict == Linearizability::Linearizable
            && self.operations > 0
            && self.reads.as_ref().is_none_or(|r| r.passed())
            && self.watch.as_ref().is_none_or(|w| w.passed())
    }
}

/// Checks `history` against `model`, giving up (`Unknown`) after `limit`. `world` is what
/// the history promises of writes it does not hold (the etcd model's; kv ignores it).
pub fn check(history: &[Record], model: Model, world: World, limit: Duration) -> HistoryCheck {
    let deadline = Instant::now() + limit;
    if model == Model::Etcd {
        return check_etcd(history, world, deadline);
    }
    let mut by_key: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, r) in history.iter().enumerate() {
        // A read that never returned constrains nothing; serializable reads and watches
        // have guarantees of their own, checked apart.
        if r.op == OpKind::Get && (!r.known() || r.serializable) || r.op == OpKind::Watch {
            continue;
        }
        by_key.entry(r.key.as_str()).or_default().push(i);
    }
    let mut keys: Vec<&str> = by_key.keys().copied().collect();
    keys.sort();
    let seen = written_at(history);
    let none = HashMap::new();
    let mut window = None;
    let mut undecided_keys = vec![];
    for key in &keys {
        let seen = seen.get(key).unwrap_or(&none);
        match search(history, &by_key[key], seen, deadline) {
            Outcome::Linearizable => {}
            Outcome::Unknown => undecided_keys.push(key.to_string()),
            Outcome::Stuck(mut w) => {
                w.key = key.to_string();
                window = Some(w);
                break;
            }
        }
    }
    let verdict = if window.is_some() {
        Linearizability::NotLinearizable
    } else if !undecided_keys.is_empty() {
        Linearizability::Unknown
    } else {
        Linearizability::Linearizable
    };
    HistoryCheck {
        verdict,
        model,
        operations: history.iter().filter(|r| r.op != OpKind::Watch).count(),
        keys: keys.len(),
        unknown_outcomes: history.iter().filter(|r| !r.known()).count(),
        window,
        revision_problems: vec![],
        undecided_keys,
        reads: None,
        watch: None,
        world: None,
        resolved_unknowns: None,
        undecided: None,
    }
}

/// The etcd model: one global state per revision (`revision`), serializable reads'
/// sessions and watches against the writes it placed.
fn check_etcd(history: &[Record], world: World, deadline: Instant) -> HistoryCheck {
    let rc = super::revision::check(history, world, deadline);
    let has = |f: fn(&Record) -> bool| history.iter().any(f);
    let reads = has(|r| r.serializable).then(|| super::reads::check(history));
    let watch =
        has(|r| r.op == OpKind::Watch).then(|| super::watch::check_with(history, &rc.placed));
    let ops = history.iter().filter(|r| r.op != OpKind::Watch);
    let keys: HashSet<&str> = ops.clone().map(|r| r.key.as_str()).collect();
    HistoryCheck {
        verdict: match rc.linearizable {
            Some(true) => Linearizability::Linearizable,
            Some(false) => Linearizability::NotLinearizable,
            None => Linearizability::Unknown,
        },
        model: Model::Etcd,
        operations: ops.count(),
        keys: keys.len(),
        unknown_outcomes: history.iter().filter(|r| !r.known()).count(),
        window: rc.window,
        revision_problems: rc.problems,
        undecided_keys: vec![],
        reads,
        watch,
        world: Some(world),
        resolved_unknowns: Some((rc.resolved, rc.unresolved)),
        undecided: rc.undecided,
    }
}

enum Outcome {
    Linearizable,
    Unknown,
    Stuck(Window),
}

/// One key's operation for the model: values interned to small numbers.
#[derive(Debug, Clone, Copy)]
struct KeyOp {
    kind: OpKind,
    known: bool,
    value: Option<u32>,
    expect: Option<u32>,
    read: Option<u32>,
    succeeded: Option<bool>,
    /// For a delete that returned with its count: whether it removed the key.
    removed: Option<bool>,
}

/// The register's next state after `op`, or `None` if the model cannot produce what
/// `op` returned. An operation whose outcome is unknown accepts any result: it is
/// placed after every return, where it can no longer contradict anything.
fn step(state: Option<u32>, op: &KeyOp) -> Option<Option<u32>> {
    match op.kind {
        OpKind::Get => (op.read == state).then_some(state),
        OpKind::Put => Some(op.value),
        OpKind::Delete => match op.removed {
            Some(removed) if op.known && removed != state.is_some() => None,
            _ => Some(None),
        },
        OpKind::Watch => Some(state),
        OpKind::Cas => {
            let holds = state == op.expect;
            match (op.known, op.succeeded) {
                (true, Some(true)) => holds.then_some(op.value),
                (true, Some(false)) => (!holds).then_some(state),
                _ => Some(if holds { op.value } else { state }),
            }
        }
    }
}

fn intern(ids: &mut HashMap<String, u32>, v: &Option<String>) -> Option<u32> {
    let n = ids.len() as u32;
    v.as_ref().map(|s| *ids.entry(s.clone()).or_insert(n))
}

fn key_ops(history: &[Record], ops: &[usize], seen: &HashMap<i64, String>) -> Vec<KeyOp> {
    let mut ids = HashMap::new();
    let mut by_revision = values_by_revision(history, ops);
    for (rev, v) in seen {
        by_revision.entry(*rev).or_insert_with(|| v.clone());
    }
    ops.iter()
        .map(|&i| {
            let r = &history[i];
            let out = r.output.clone().unwrap_or_default();
            // A cas on the mod revision is a cas on the value that revision wrote: every
            // write's value is its own, so the two name the same state. A revision nobody
            // in the history is known to have written names a value the key never held
            // here: such a cas can only fail.
            let expect = match r.expect_revision {
                None => r.expect.clone(),
                Some(0) => None,
                Some(rev) => Some(
                    by_revision
                        .get(&rev)
                        .cloned()
                        .unwrap_or_else(|| format!("\u{0}revision {rev}")),
                ),
            };
            KeyOp {
                kind: r.op,
                known: r.known(),
                value: intern(&mut ids, &r.value),
                expect: intern(&mut ids, &expect),
                read: intern(&mut ids, &out.value),
                succeeded: out.succeeded,
                removed: out.deleted.map(|d| d > 0),
            }
        })
        .collect()
}

/// Per key, mod revision → the value written at it, as shown by records the search leaves
/// out: serializable reads and watch events. A write of unknown outcome that such a record
/// shows held its value at that revision, and a cas on that revision (the workload takes
/// `mod_revision` from a serializable read) names that value — not one "never held".
fn written_at(history: &[Record]) -> HashMap<&str, HashMap<i64, String>> {
    let mut out: HashMap<&str, HashMap<i64, String>> = HashMap::new();
    for r in history {
        let Some(o) = &r.output else { continue };
        if r.op == OpKind::Get
            && r.serializable
            && let (Some(rev), Some(v)) = (o.mod_revision, &o.value)
        {
            out.entry(r.key.as_str())
                .or_default()
                .insert(rev, v.clone());
        }
        for e in o.events.iter().filter(|e| e.kind == EventKind::Put) {
            if let Some(v) = &e.value {
                out.entry(e.key.as_str())
                    .or_default()
                    .insert(e.revision, v.clone());
            }
        }
    }
    out
}

/// One key's mod revisions → the value written at each, from what writes returned and what
/// reads saw.
fn values_by_revision(history: &[Record], ops: &[usize]) -> HashMap<i64, String> {
    let mut out = HashMap::new();
    for &i in ops {
        let r = &history[i];
        if let Some((rev, Some(v))) = r.committed() {
            out.insert(rev, v.to_string());
        }
        if let Some(o) = &r.output
            && let (Some(rev), Some(v)) = (o.mod_revision, &o.value)
        {
            out.insert(rev, v.clone());
        }
    }
    out
}

const NIL: usize = usize::MAX;

/// The call and return events of a key's operations in time order, as a doubly linked
/// list that operations are lifted out of as they are placed and put back on backtrack.
struct Events {
    /// Per event: the operation (index into the key's ops) and whether it is the call.
    op: Vec<(usize, bool)>,
    /// The return event of each operation.
    ret_of: Vec<usize>,
    next: Vec<usize>,
    prev: Vec<usize>,
    head: usize,
}

impl Events {
    fn new(history: &[Record], ops: &[usize]) -> Events {
        let mut ev: Vec<(u64, bool, usize)> = vec![];
        for (j, &i) in ops.iter().enumerate() {
            // Calls sort before returns at the same instant: touching operations are
            // taken as concurrent, the reading that accuses nobody wrongly.
            ev.push((history[i].call, false, j));
            ev.push((history[i].ret.unwrap_or(u64::MAX), true, j));
        }
        ev.sort();
        let n = ev.len();
        let mut ret_of = vec![0; ops.len()];
        for (e, &(_, is_ret, j)) in ev.iter().enumerate() {
            if is_ret {
                ret_of[j] = e;
            }
        }
        let head = n;
        let mut next: Vec<usize> = (1..=n).collect();
        next[n - 1] = NIL;
        next.push(if n > 0 { 0 } else { NIL });
        let mut prev: Vec<usize> = (0..n).map(|e| if e == 0 { head } else { e - 1 }).collect();
        prev.push(NIL);
        Events {
            op: ev.iter().map(|&(_, r, j)| (j, !r)).collect(),
            ret_of,
            next,
            prev,
            head,
        }
    }

    fn unlink(&mut self, e: usize) {
        let (p, n) = (self.prev[e], self.next[e]);
        self.next[p] = n;
        if n != NIL {
            self.prev[n] = p;
        }
    }

    fn relink(&mut self, e: usize) {
        let (p, n) = (self.prev[e], self.next[e]);
        self.next[p] = e;
        if n != NIL {
            self.prev[n] = e;
        }
    }

    fn lift(&mut self, call: usize) {
        let r = self.ret_of[self.op[call].0];
        self.unlink(call);
        self.unlink(r);
    }

    /// Undoes [`Events::lift`] (in reverse order, as dancing links require).
    fn unlift(&mut self, call: usize) {
        let r = self.ret_of[self.op[call].0];
        self.relink(r);
        self.relink(call);
    }

    /// The operations that may go next: every call before the first return, and the
    /// operation of that return.
    fn candidates(&self) -> Vec<usize> {
        let mut out = vec![];
        let mut e = self.next[self.head];
        while e != NIL {
            let (j, is_call) = self.op[e];
            if !out.contains(&j) {
                out.push(j);
            }
            if !is_call {
                break;
            }
            e = self.next[e];
        }
        out
    }
}

/// The search on one key's operations (`ops`: indices into `history`); `seen`: the
/// values the key is known to have held at mod revisions, from every record.
fn search(
    history: &[Record],
    ops: &[usize],
    seen: &HashMap<i64, String>,
    deadline: Instant,
) -> Outcome {
    if ops.is_empty() {
        return Outcome::Linearizable;
    }
    let kops = key_ops(history, ops, seen);
    let mut ev = Events::new(history, ops);
    // The set of placed operations as a Zobrist hash (XOR of a random 128-bit word per
    // operation): O(1) to update and 16 bytes to remember, where the bitset itself would
    // make memory and time quadratic in the key's operations. Two sets colliding has
    // probability 2^-128 per pair.
    let zobrist: Vec<u128> = (0..ops.len() as u64).map(zobrist_word).collect();
    let mut placed: u128 = 0;
    let mut seen: HashSet<(u128, Option<u32>)> = HashSet::new();
    let mut stack: Vec<(usize, Option<u32>)> = vec![];
    let mut state: Option<u32> = None;
    let mut deepest = (0, vec![], vec![]);
    let mut entry = ev.next[ev.head];
    let mut steps = 0u64;
    while ev.next[ev.head] != NIL {
        steps += 1;
        if steps.is_multiple_of(4096) && Instant::now() > deadline {
            return Outcome::Unknown;
        }
        let (j, is_call) = ev.op[entry];
        if is_call {
            if let Some(new) = step(state, &kops[j])
                && seen.insert((placed ^ zobrist[j], new))
            {
                placed ^= zobrist[j];
                stack.push((entry, state));
                state = new;
                ev.lift(entry);
                entry = ev.next[ev.head];
                continue;
            }
            entry = ev.next[entry];
        } else {
            // A return whose operation is not placed: nothing can go before it. The
            // deepest such point is what a violation shows (kept only when it deepens,
            // so a history that never backs up pays nothing for it).
            if stack.len() > deepest.0 || deepest.2.is_empty() {
                let order: Vec<usize> = stack.iter().map(|s| ops[ev.op[s.0].0]).collect();
                let stuck = ev.candidates().iter().map(|&j| ops[j]).collect();
                deepest = (stack.len(), order, stuck);
            }
            // Undo the last placement and try its next alternative.
            let Some((call, before)) = stack.pop() else {
                let (placed, order, stuck) = deepest;
                let from = order.len().saturating_sub(5);
                return Outcome::Stuck(Window {
                    key: String::new(),
                    placed,
                    before: order[from..].to_vec(),
                    stuck,
                });
            };
            state = before;
            placed ^= zobrist[ev.op[call].0];
            ev.unlift(call);
            entry = ev.next[call];
        }
    }
    Outcome::Linearizable
}

/// A fixed pseudo-random 128-bit word for operation `j` (splitmix64, twice).
pub(crate) fn zobrist_word(j: u64) -> u128 {
    let mix = |mut z: u64| {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    ((mix(2 * j) as u128) << 64) | mix(2 * j + 1) as u128
}

#[cfg(test)]
mod tests;
