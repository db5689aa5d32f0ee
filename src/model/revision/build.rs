//! From records to the model's events: every returned operation pinned at its revision,
//! real time checked against revision order, writes of unknown outcome placed where
//! evidence shows them, and the rest left to the search with the lowest revision each may
//! take.

use std::collections::{HashMap, HashSet};

use super::search::Violation;
use super::{Cond, Effect, Event, KeyState, Source, Unknown, Want, What};
use crate::model::history::{EventKind, OpKind, Record};
use crate::model::linearize::Window;

pub(crate) struct Built<'a> {
    pub keys: Vec<&'a str>,
    pub values: Vec<&'a str>,
    /// Every pinned write and every response's expectation, in revision order.
    pub events: Vec<Event>,
    /// Writes of unknown outcome no evidence placed.
    pub unknowns: Vec<Unknown>,
    pub resolved: usize,
    /// What real time or revisions rule out before any search.
    pub problems: Vec<String>,
    /// Revisions pinned writes took, in order, and for each the last revision of the
    /// unbroken run it is in: the lowest free revision above any is one binary search away.
    pub occupied_sorted: Vec<i64>,
    pub run_end: Vec<i64>,
    /// Revisions some record names (a mod revision, a cas's, a watch event's), in order.
    pub named: Vec<i64>,
    /// Per key, the revision ranges a watch stream on it covered, and where it delivered
    /// an event of the key: a write there that no stream delivered cannot be.
    pub covered: Vec<Vec<(i64, i64)>>,
    pub delivered: HashSet<(u32, i64)>,
    /// Each placed write's revision and operation (known or placed by evidence).
    pub placed: Vec<(i64, usize)>,
}

impl Built<'_> {
    pub fn is_occupied(&self, g: i64) -> bool {
        self.occupied_sorted.binary_search(&g).is_ok()
    }

    pub fn is_named(&self, g: i64) -> bool {
        self.named.binary_search(&g).is_ok()
    }

    /// The named revisions in `lb..=hi`.
    pub fn named_in(&self, lb: i64, hi: i64) -> &[i64] {
        let a = self.named.partition_point(|&x| x < lb);
        let z = self.named.partition_point(|&x| x <= hi);
        &self.named[a..z.max(a)]
    }

    /// Whether a write of key `k` may take revision `g` without a record saying otherwise.
    pub fn free_for(&self, k: u32, g: i64) -> bool {
        !self.is_occupied(g)
            && (self.delivered.contains(&(k, g))
                || !self.covered[k as usize]
                    .iter()
                    .any(|&(a, b)| (a..=b).contains(&g)))
    }

    /// The lowest revision at or above `g` that no pinned write took.
    pub fn unoccupied_from(&self, g: i64) -> i64 {
        let p = self.occupied_sorted.partition_point(|&x| x < g);
        match self.occupied_sorted.get(p) {
            Some(&x) if x == g => self.run_end[p] + 1,
            _ => g,
        }
    }

    /// The lowest revision in `lb..=hi` a write of `k` may take that no record names.
    pub fn anonymous_slot(&self, k: u32, lb: i64, hi: i64) -> Option<i64> {
        let mut g = self.unoccupied_from(lb);
        while g <= hi {
            // A stream that covered `g` without delivering an event of `k` there rules it
            // out, and the rest of its range with it.
            let covering = self.covered[k as usize]
                .iter()
                .filter(|&&(a, b)| (a..=b).contains(&g))
                .map(|&(_, b)| b)
                .max();
            g = match covering {
                Some(b) if !self.delivered.contains(&(k, g)) => self.unoccupied_from(b + 1),
                _ if self.is_named(g) => self.unoccupied_from(g + 1),
                _ => return Some(g),
            };
        }
        None
    }
}

/// Strings as small numbers, borrowed from the history (a million values are not copied).
#[derive(Default)]
struct Interner<'a> {
    ids: HashMap<&'a str, u32>,
    names: Vec<&'a str>,
}

impl<'a> Interner<'a> {
    fn id(&mut self, s: &'a str) -> u32 {
        if let Some(&i) = self.ids.get(s) {
            return i;
        }
        let i = self.names.len() as u32;
        self.ids.insert(s, i);
        self.names.push(s);
        i
    }
}

/// A returned operation's place in revision order and whether it is a linearizable one
/// (held to real time) — or `None` for one the model leaves aside.
fn shown(r: &Record) -> Option<((i64, u8), bool)> {
    let o = r.output.as_ref().filter(|_| r.known())?;
    if r.op == OpKind::Watch {
        let top = o.events.iter().map(|e| e.revision).max();
        return Some(((o.revision.max(top)?, 1), false));
    }
    let rev = o.revision?;
    let write = match r.op {
        OpKind::Put => true,
        OpKind::Cas => o.succeeded == Some(true),
        OpKind::Delete => o.deleted.is_some_and(|d| d > 0),
        OpKind::Get | OpKind::Watch => false,
    };
    Some(((rev, !write as u8), !r.serializable))
}

pub(crate) fn build(history: &[Record]) -> Built<'_> {
    let mut keys = Interner::default();
    let mut values = Interner::default();
    let mut events = vec![];
    let mut unknowns = vec![];
    let mut named = vec![];
    for (i, r) in history.iter().enumerate() {
        let k = keys.id(&r.key);
        let value = r.value.as_deref().map(|v| values.id(v));
        let cond = match (r.op, r.expect_revision) {
            (OpKind::Cas, Some(m)) => {
                named.push(m);
                Cond::ModRevision(m)
            }
            _ => Cond::Value(r.expect.as_deref().map(|v| values.id(v))),
        };
        let effect = match r.op {
            OpKind::Put => Some(Effect::Put(value.unwrap_or_default())),
            OpKind::Delete => Some(Effect::Delete),
            OpKind::Cas => Some(Effect::Cas(cond, value.unwrap_or_default())),
            OpKind::Get | OpKind::Watch => None,
        };
        if !r.known() {
            if let Some(effect) = effect {
                unknowns.push(Unknown {
                    op: i,
                    key: k,
                    effect,
                    lo: 1,
                });
            }
            continue;
        }
        let Some(o) = &r.output else { continue };
        if let (OpKind::Watch, Some(h)) = (r.op, o.revision) {
            events.push(Event {
                rev: h,
                key: k,
                what: What::Expect(Want::Reached),
                source: Source::Op(i),
            });
        }
        for (j, e) in o.events.iter().enumerate() {
            named.push(e.revision);
            let value = e.value.as_deref().map(|v| values.id(v));
            let value = if e.kind == EventKind::Delete {
                None
            } else {
                value
            };
            events.push(Event {
                rev: e.revision,
                key: keys.id(&e.key),
                what: What::Expect(Want::State {
                    value,
                    last: Some(e.revision),
                }),
                source: Source::WatchEvent(i, j),
            });
        }
        let Some(((rev, tag), _)) = shown(r).filter(|_| r.op != OpKind::Watch) else {
            continue;
        };
        let what = match (r.op, tag) {
            (_, 0) => What::Write(effect.expect("a write")),
            (OpKind::Cas, _) => What::Expect(Want::Fails(cond)),
            (OpKind::Delete, _) => What::Expect(Want::State {
                value: None,
                last: None,
            }),
            _ => {
                if let Some(m) = o.mod_revision {
                    named.push(m);
                }
                What::Expect(Want::State {
                    value: o.value.as_deref().map(|v| values.id(v)),
                    last: o.mod_revision,
                })
            }
        };
        events.push(Event {
            rev,
            key: k,
            what,
            source: Source::Op(i),
        });
    }
    let mut problems = real_time(history, &mut unknowns);
    let resolved = resolve(&mut events, &mut unknowns);
    let mut occupied = HashMap::new();
    for e in events.iter().filter(|e| matches!(e.what, What::Write(_))) {
        if let Some(j) = occupied.insert(e.rev, e.source.op()) {
            problems.push(format!(
                "operations #{j} and #{} both wrote revision {}",
                e.source.op(),
                e.rev
            ));
        }
    }
    events.sort_by_key(|e| (e.pos(), e.source));
    let mut placed: Vec<(i64, usize)> = occupied.into_iter().collect();
    placed.sort();
    named.sort();
    named.dedup();
    let occupied_sorted: Vec<i64> = placed.iter().map(|p| p.0).collect();
    let mut run_end = occupied_sorted.clone();
    for p in (0..run_end.len().saturating_sub(1)).rev() {
        if occupied_sorted[p + 1] == occupied_sorted[p] + 1 {
            run_end[p] = run_end[p + 1];
        }
    }
    let (covered, delivered) = coverage(history, &mut keys);
    Built {
        keys: keys.names,
        values: values.names,
        events,
        unknowns,
        resolved,
        problems,
        occupied_sorted,
        run_end,
        named,
        covered,
        delivered,
        placed,
    }
}

/// Real time against revision order: an operation called after another returned is placed
/// after it — a write at a higher revision, a read at one at least as high. Every response
/// counts as shown (a serializable read or a watch response tells of a committed revision),
/// but only linearizable operations are held to it. Sets each unknown write's lowest
/// revision. What breaks it, at most ten.
fn real_time(history: &[Record], unknowns: &mut [Unknown]) -> Vec<String> {
    let mut returns: Vec<(u64, (i64, u8), usize)> = history
        .iter()
        .enumerate()
        .filter_map(|(i, r)| Some((r.ret?, shown(r)?.0, i)))
        .collect();
    returns.sort();
    // (call, operation, unknown write): one client's operations called at one instant go
    // in the order of their lines.
    let mut calls: Vec<(u64, usize, Option<usize>)> = history
        .iter()
        .enumerate()
        .filter(|(_, r)| shown(r).is_some())
        .map(|(i, r)| (r.call, i, None))
        .chain(
            unknowns
                .iter()
                .enumerate()
                .map(|(u, x)| (history[x.op].call, x.op, Some(u))),
        )
        .collect();
    calls.sort();
    let mut problems = vec![];
    type Shown = Option<((i64, u8), usize)>;
    let (mut k, mut best): (usize, Shown) = (0, None);
    // A client's own operations are in program order even when one is called the instant
    // the one before returned: what they showed it bounds what it does next.
    let mut own: HashMap<u64, ((i64, u8), usize)> = HashMap::new();
    for (call, i, unknown) in calls {
        while k < returns.len() && returns[k].0 < call {
            if best.is_none_or(|b| returns[k].1 > b.0) {
                best = Some((returns[k].1, returns[k].2));
            }
            k += 1;
        }
        let client = history[i].client;
        let bound = match (best, own.get(&client)) {
            (Some(b), Some(&o)) => Some(if o.0 > b.0 { o } else { b }),
            (b, o) => b.or(o.copied()),
        };
        if let Some(u) = unknown {
            if let Some((seen, _)) = bound {
                unknowns[u].lo = seen.0 + 1;
            }
            continue;
        }
        let (pos, linearizable) = shown(&history[i]).expect("filtered");
        if let Some((seen, j)) = bound {
            let behind = if pos.1 == 0 { pos <= seen } else { pos < seen };
            if behind && linearizable && problems.len() < 10 {
                let what = if pos.1 == 0 { "wrote" } else { "read at" };
                problems.push(format!(
                    "operation #{i} {what} revision {}, but #{j} had returned revision {} before it was called: revisions go forward in real time",
                    pos.0, seen.0
                ));
            }
        }
        let o = own.entry(client).or_insert((pos, i));
        if pos > o.0 {
            *o = (pos, i);
        }
    }
    problems
}

/// Places writes of unknown outcome that a response shows: a mod revision (or a delete
/// event's revision) that no pinned write took, shown with a value only one unknown write
/// of that key wrote, is that write's revision. Returns how many were placed; they leave
/// `unknowns` as pinned writes in `events`.
fn resolve(events: &mut Vec<Event>, unknowns: &mut Vec<Unknown>) -> usize {
    let pinned: HashSet<i64> = events
        .iter()
        .filter(|e| matches!(e.what, What::Write(_)))
        .map(|e| e.rev)
        .collect();
    let mut writers: HashMap<(u32, Option<u32>), Vec<usize>> = HashMap::new();
    for (u, x) in unknowns.iter().enumerate() {
        let value = match x.effect {
            Effect::Put(v) | Effect::Cas(_, v) => Some(v),
            Effect::Delete => None,
        };
        writers.entry((x.key, value)).or_default().push(u);
    }
    let mut at: HashMap<usize, i64> = HashMap::new();
    for e in events.iter() {
        let What::Expect(Want::State {
            value,
            last: Some(m),
        }) = e.what
        else {
            continue;
        };
        if pinned.contains(&m) {
            continue;
        }
        if let Some([u]) = writers.get(&(e.key, value)).map(Vec::as_slice)
            && unknowns[*u].lo <= m
        {
            at.entry(*u).or_insert(m);
        }
    }
    for (&u, &m) in &at {
        let x = unknowns[u];
        events.push(Event {
            rev: m,
            key: x.key,
            what: What::Write(x.effect),
            source: Source::Op(x.op),
        });
    }
    let mut u = 0;
    unknowns.retain(|_| {
        u += 1;
        !at.contains_key(&(u - 1))
    });
    at.len()
}

/// Per key, the ranges watch streams covered (from their start to their last event) and
/// the revisions at which they delivered one of its events.
#[allow(clippy::type_complexity)]
fn coverage<'a>(
    history: &'a [Record],
    keys: &mut Interner<'a>,
) -> (Vec<Vec<(i64, i64)>>, HashSet<(u32, i64)>) {
    let mut covered = vec![vec![]; keys.names.len()];
    let mut delivered = HashSet::new();
    for s in crate::model::watch::streams(history) {
        let last = s
            .responses
            .iter()
            .flat_map(|&i| history[i].output.iter().flat_map(|o| &o.events))
            .map(|e| e.revision)
            .max();
        for &i in &s.responses {
            for e in history[i].output.iter().flat_map(|o| &o.events) {
                delivered.insert((keys.id(&e.key), e.revision));
            }
        }
        let Some(last) = last else { continue };
        for (k, name) in keys.names.iter().enumerate() {
            if name.starts_with(s.prefix) {
                covered[k].push((s.start, last));
            }
        }
    }
    covered.resize(keys.names.len(), vec![]);
    (covered, delivered)
}

pub(crate) use crate::model::linearize::zobrist_word;

fn state_text(b: &Built, s: KeyState) -> String {
    match s.value {
        Some(v) => format!("{:?} (mod {})", b.values[v as usize], s.last),
        None if s.last > 0 => format!("absent (deleted at {})", s.last),
        None => "absent".into(),
    }
}

fn cond_text(b: &Built, c: Cond) -> String {
    match c {
        Cond::ModRevision(0) => "if absent (mod_revision = 0)".into(),
        Cond::ModRevision(m) => format!("if mod_revision = {m}"),
        Cond::Value(Some(v)) => format!("if {:?}", b.values[v as usize]),
        Cond::Value(None) => "if absent".into(),
    }
}

/// The violation in words: the revision, the state the model has there, and what the
/// operation says instead.
pub(crate) fn describe(history: &[Record], b: &Built, v: &Violation) -> String {
    let e = &b.events[v.event];
    let key = &b.keys[e.key as usize];
    let op = e.source.op();
    let r = &history[op];
    if let Some(g) = v.gap {
        return format!(
            "revision {g} is taken by no write of the history, yet #{op} is at revision {}: in a closed world every revision is one of its writes; if other clients wrote, mark the history open (--open-world, or a first line {{\"world\": \"open\"}})",
            e.rev
        );
    }
    let state = state_text(b, v.state);
    let says = match (e.what, e.source) {
        (What::Write(Effect::Cas(c, _)), _) => format!(
            "cas {} succeeded at revision {}, but its condition does not hold",
            cond_text(b, c),
            e.rev
        ),
        (What::Write(Effect::Delete), _) => {
            format!(
                "delete removed the key at revision {}, but it was absent",
                e.rev
            )
        }
        (What::Write(Effect::Put(_)), _) => format!("put at revision {}", e.rev),
        (What::Expect(Want::Reached), _) => "watch response's header revision".to_string(),
        (What::Expect(Want::Fails(c)), _) => {
            format!("cas {} failed, but its condition holds", cond_text(b, c))
        }
        (What::Expect(Want::State { value, last }), Source::WatchEvent(..)) => match value {
            Some(x) => format!(
                "watch event: put {:?} at revision {}",
                b.values[x as usize],
                last.unwrap_or(e.rev)
            ),
            None => format!("watch event: delete at revision {}", last.unwrap_or(e.rev)),
        },
        (What::Expect(Want::State { .. }), _) if r.op == OpKind::Delete => {
            "delete removed nothing".to_string()
        }
        (What::Expect(Want::State { value, last }), _) => {
            let got = match (value, last) {
                (Some(x), Some(m)) => format!("{:?} (mod {m})", b.values[x as usize]),
                (Some(x), None) => format!("{:?}", b.values[x as usize]),
                (None, _) => "absent".into(),
            };
            let how = if r.serializable {
                " (serializable)"
            } else {
                ""
            };
            format!("the get{how} returned {got}")
        }
    };
    let at = match e.what {
        What::Write(_) => e.rev - 1,
        What::Expect(_) => e.rev,
    };
    format!("at revision {at}, {key:?} = {state}; #{op} {says}")
}

/// The violation as a window: its key, the operation that cannot be, and the key's last
/// few events before it in revision order.
pub(crate) fn window(b: &Built, v: &Violation) -> Window {
    let e = &b.events[v.event];
    let before: Vec<usize> = b.events[..v.event]
        .iter()
        .filter(|x| x.key == e.key)
        .map(|x| x.source.op())
        .collect();
    let from = before.len().saturating_sub(5);
    Window {
        key: b.keys[e.key as usize].to_string(),
        placed: before.len(),
        before: before[from..].to_vec(),
        stuck: vec![e.source.op()],
    }
}
