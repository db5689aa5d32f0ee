//! The search for writes of unknown outcome that evidence did not place. Events are walked
//! in revision order; before each, any unused such write may be inserted at a free revision
//! it may take (after its call's lower bound, below the event). A depth-first search with
//! memoisation of (event, revision, writes used, state), and a deadline.
//!
//! Which revision an inserted write takes matters only where the history names it (a mod
//! revision read, a cas on a revision, a watch event), so the candidates are the lowest free
//! revision no record names, and each free revision some record does.
//!
//! Keys are searched one at a time first, in an open world: a relaxation of the whole
//! problem, so a key that fails is a violation. Only when the keys' insertions collide on a
//! revision, or the world is closed (every revision a write of the history), is the
//! history searched as one.

use std::collections::{HashMap, HashSet};

use std::time::Instant;

use super::build::Built;
use super::build::zobrist_word;
use super::{Event, KeyState, Unknown, What, World};

/// A write of unknown outcome the search inserted: which (index into `Built::unknowns`), at
/// which revision, and the range it could have taken instead; `anonymous` when no record
/// names the revision, so any other free one in the range explains as much.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Insert {
    pub unknown: usize,
    pub slot: i64,
    pub lb: i64,
    pub hi: i64,
    pub anonymous: bool,
}

pub(crate) enum Found {
    Witness,
    Violation(Violation),
    Undecided(String),
}

/// Where the search got furthest before nothing could go on: the event (index into
/// `Built::events`) and its key's state then; `gap`: in a closed world, the revision no
/// write of the history could take.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Violation {
    pub event: usize,
    pub state: KeyState,
    pub gap: Option<i64>,
}

/// States remembered at most: about 64 bytes each with the table's slack, so the search
/// stays well under 1 GB at any deadline; beyond it the answer is undecided, never a guess.
const MEMO_CAP: usize = 2_500_000;

pub(crate) fn run(b: &Built, world: World, deadline: Instant) -> Found {
    let keys = b.keys.len() as u32;
    let mut inserted: Vec<Insert> = vec![];
    let mut undecided = None;
    let none = HashSet::new();
    for k in 0..keys {
        match Dfs::new(b, Some(k), World::Open, deadline, &none).run() {
            Ok(ins) => inserted.extend(ins),
            Err(Stop::Violation(v)) => return Found::Violation(v),
            Err(Stop::Undecided(why)) => undecided = Some(why),
        }
    }
    if let Some(why) = undecided {
        return Found::Undecided(why);
    }
    // Each key explained on its own: one explanation of all of them at once is the keys'
    // insertions on distinct revisions and, in a closed world, every other revision filled.
    if super::assign::complete(b, world, &inserted) {
        return Found::Witness;
    }
    // They collided: once more, each key avoiding the revisions the keys before it took.
    // (A key that cannot is no proof of anything: the whole history is searched then.)
    let mut taken: HashSet<i64> = HashSet::new();
    let mut again: Vec<Insert> = vec![];
    for k in 0..keys {
        match Dfs::new(b, Some(k), World::Open, deadline, &taken).run() {
            Ok(ins) => {
                taken.extend(ins.iter().map(|i| i.slot));
                again.extend(ins);
            }
            Err(_) => break,
        }
    }
    if super::assign::complete(b, world, &again) {
        return Found::Witness;
    }
    match Dfs::new(b, None, world, deadline, &none).run() {
        Ok(_) => Found::Witness,
        Err(Stop::Violation(v)) => Found::Violation(v),
        Err(Stop::Undecided(why)) => Found::Undecided(why),
    }
}

enum Stop {
    Violation(Violation),
    Undecided(String),
}

/// One node's alternatives: 0 processes its event, the rest insert a write first.
struct Frame {
    i: usize,
    cursor: i64,
    next: usize,
    cands: Option<Vec<(usize, Insert)>>,
    undo: Undo,
}

#[derive(Clone, Copy)]
enum Undo {
    Nothing,
    /// An event was processed: the key's state before it.
    Event(u32, KeyState),
    /// Unknown write `u` was inserted: its key's state before it.
    Insert(usize, u32, KeyState),
}

struct Dfs<'a> {
    b: &'a Built<'a>,
    /// The events walked (indices into `Built::events`), in revision order.
    events: Vec<usize>,
    /// Revisions other keys' explanations took: avoided.
    taken: &'a HashSet<i64>,
    per_key: bool,
    /// The unknown writes that may be inserted, by index into `Built::unknowns`, by `lo`.
    unknowns: Vec<usize>,
    closed: bool,
    deadline: Instant,
    state: HashMap<u32, KeyState>,
    state_hash: u128,
    used: Vec<bool>,
    used_hash: u128,
    used_count: usize,
    cursor: i64,
    i: usize,
    memo: HashSet<(u32, i64, u128, u128)>,
    path: Vec<Insert>,
    deepest: Option<Violation>,
    steps: u64,
}

impl<'a> Dfs<'a> {
    fn new(
        b: &'a Built<'a>,
        key: Option<u32>,
        world: World,
        deadline: Instant,
        taken: &'a HashSet<i64>,
    ) -> Dfs<'a> {
        let mine = |k: u32| key.is_none_or(|x| x == k);
        let events = (0..b.events.len())
            .filter(|&e| mine(b.events[e].key))
            .collect();
        let mut unknowns: Vec<usize> = (0..b.unknowns.len())
            .filter(|&u| mine(b.unknowns[u].key))
            .collect();
        unknowns.sort_by_key(|&u| b.unknowns[u].lo);
        let (closed, cursor) = match world {
            World::Open => (false, 0),
            World::Closed { from_revision } => (true, from_revision),
        };
        Dfs {
            b,
            events,
            taken,
            per_key: key.is_some(),
            used: vec![false; unknowns.len()],
            unknowns,
            closed,
            deadline,
            state: HashMap::new(),
            state_hash: 0,
            used_hash: 0,
            used_count: 0,
            cursor,
            i: 0,
            memo: HashSet::new(),
            path: vec![],
            deepest: None,
            steps: 0,
        }
    }

    fn key_state(&self, k: u32) -> KeyState {
        self.state.get(&k).copied().unwrap_or_default()
    }

    fn set_state(&mut self, k: u32, s: KeyState) {
        let old = self.key_state(k);
        self.state_hash ^= state_word(k, old) ^ state_word(k, s);
        self.state.insert(k, s);
    }

    fn event(&self) -> Option<&'a Event> {
        let b: &'a Built<'a> = self.b;
        self.events.get(self.i).map(|&e| &b.events[e])
    }

    /// The highest revision an insertion before the current event may take.
    fn bound(&self) -> Option<i64> {
        let e = self.event()?;
        Some(match e.what {
            What::Write(_) => e.rev - 1,
            What::Expect(_) => e.rev,
        })
    }

    fn run(mut self) -> Result<Vec<Insert>, Stop> {
        let mut frames: Vec<Frame> = vec![];
        loop {
            if self.i == self.events.len() {
                return Ok(self.path);
            }
            self.steps += 1;
            if self.steps.is_multiple_of(1024) && Instant::now() > self.deadline {
                return Err(Stop::Undecided(self.why("ran out of time")));
            }
            if self.memo.len() > MEMO_CAP {
                return Err(Stop::Undecided(self.why("reached its memory bound")));
            }
            let fresh = !self.has_candidates()
                || self
                    .memo
                    .insert((self.i as u32, self.cursor, self.used_hash, self.state_hash));
            if fresh {
                frames.push(Frame {
                    i: self.i,
                    cursor: self.cursor,
                    next: 0,
                    cands: None,
                    undo: Undo::Nothing,
                });
            }
            // Find the next alternative to take, backing up as needed.
            loop {
                let Some(mut f) = frames.pop() else {
                    return Err(Stop::Violation(
                        self.deepest.expect("a failure was recorded"),
                    ));
                };
                self.undo(&f);
                if self.advance(&mut f) {
                    frames.push(f);
                    break;
                }
                if self.dominated(&f) {
                    return Err(Stop::Violation(
                        self.deepest.expect("a failure was recorded"),
                    ));
                }
            }
        }
    }

    /// Takes frame `f`'s next alternative; false when it has none left.
    fn advance(&mut self, f: &mut Frame) -> bool {
        if f.next == 0 {
            f.next = 1;
            if let Some(undo) = self.process() {
                f.undo = undo;
                return true;
            }
        }
        if f.cands.is_none() {
            f.cands = Some(self.candidates());
        }
        let cands = f.cands.as_ref().expect("just set");
        while f.next - 1 < cands.len() {
            let (u, ins) = cands[f.next - 1];
            let slot = ins.slot;
            f.next += 1;
            let unk = self.b.unknowns[self.unknowns[u]];
            let before = self.key_state(unk.key);
            if let Some(after) = unk.effect.apply(before, slot) {
                self.set_state(unk.key, after);
                self.used[u] = true;
                self.used_hash ^= zobrist_word(u as u64);
                self.used_count += 1;
                self.cursor = slot;
                self.path.push(ins);
                f.undo = Undo::Insert(u, unk.key, before);
                return true;
            }
        }
        false
    }

    /// Reverts what frame `f`'s last alternative did, back to the frame's node.
    fn undo(&mut self, f: &Frame) {
        match f.undo {
            Undo::Nothing => {}
            Undo::Event(k, s) => self.set_state(k, s),
            Undo::Insert(u, k, s) => {
                self.set_state(k, s);
                self.used[u] = false;
                self.used_hash ^= zobrist_word(u as u64);
                self.used_count -= 1;
                self.path.pop();
            }
        }
        self.i = f.i;
        self.cursor = f.cursor;
    }

    /// Processes the current event; the undo, or `None` (recorded as a failure) when the
    /// model cannot produce it here.
    fn process(&mut self) -> Option<Undo> {
        let e = self.event()?;
        let s = self.key_state(e.key);
        let bound = self.bound()?;
        // In a closed world every revision below the event is a write of the history.
        if self.closed && self.cursor < bound {
            self.fail(s, Some(self.cursor + 1));
            return None;
        }
        if self.cursor > bound {
            self.fail(s, None);
            return None;
        }
        let next = match e.what {
            What::Write(eff) => eff.apply(s, e.rev),
            What::Expect(w) => w.holds(s).then_some(s),
        };
        let Some(next) = next else {
            self.fail(s, None);
            return None;
        };
        self.set_state(e.key, next);
        self.cursor = e.rev;
        self.i += 1;
        Some(Undo::Event(e.key, s))
    }

    fn fail(&mut self, state: KeyState, gap: Option<i64>) {
        let here = self.events[self.i];
        if self.deepest.is_none_or(|d| here > d.event) {
            self.deepest = Some(Violation {
                event: here,
                state,
                gap,
            });
        }
    }

    /// Whether any unused write could be inserted before the current event.
    fn has_candidates(&self) -> bool {
        let Some(bound) = self.bound() else {
            return false;
        };
        let eligible = self
            .unknowns
            .partition_point(|&u| self.b.unknowns[u].lo <= bound);
        eligible > self.used_count
    }

    /// The insertions to try before the current event: (unknown, revision).
    fn candidates(&self) -> Vec<(usize, Insert)> {
        let Some(bound) = self.bound() else {
            return vec![];
        };
        let mut out = vec![];
        for (u, &ui) in self.unknowns.iter().enumerate() {
            let unk: &Unknown = &self.b.unknowns[ui];
            if unk.lo > bound {
                break;
            }
            if self.used[u] {
                continue;
            }
            let s = self.key_state(unk.key);
            let lb = unk.lo.max(self.cursor + 1);
            if lb > bound {
                continue;
            }
            let insert = |slot, anonymous| {
                (
                    u,
                    Insert {
                        unknown: ui,
                        slot,
                        lb,
                        hi: bound,
                        anonymous,
                    },
                )
            };
            if self.closed {
                let g = self.cursor + 1;
                if g >= unk.lo && g <= bound && self.b.free_for(unk.key, g) {
                    out.push(insert(g, false));
                }
                continue;
            }
            if unk.effect.apply(s, lb).is_none() {
                continue;
            }
            let mut from = lb;
            while let Some(g) = self.b.anonymous_slot(unk.key, from, bound) {
                if !self.taken.contains(&g) {
                    out.push(insert(g, true));
                    break;
                }
                from = g + 1;
            }
            for &g in self.b.named_in(lb, bound) {
                if self.b.free_for(unk.key, g) && !self.taken.contains(&g) {
                    out.push(insert(g, false));
                }
            }
        }
        // Those after which the event holds first: an explanation with fewer writes nobody
        // saw leaves more free revisions to the other keys.
        let e = self.event().expect("a bound has an event");
        let fixes = |&(_, ins): &(usize, Insert)| {
            let x = &self.b.unknowns[ins.unknown];
            let after = x.effect.apply(self.key_state(x.key), ins.slot);
            let s = if x.key == e.key {
                after
            } else {
                Some(self.key_state(e.key))
            };
            s.is_some_and(|s| match e.what {
                What::Write(eff) => eff.apply(s, e.rev).is_some(),
                What::Expect(w) => w.holds(s),
            })
        };
        // Among those, a revision a record names before one nobody does: a later cas on the
        // mod revision or a read of it is what needs the write there.
        out.sort_by_key(|c| (!fixes(c), c.1.anonymous));
        out
    }

    /// A node whose state a write fixed (its key's last event wrote it) and that used no
    /// unknown write failed in every way: every other way to reach it used more, so it
    /// fails too (one key at a time only: there the write fixes the whole state).
    fn dominated(&self, f: &Frame) -> bool {
        let after_write =
            f.i > 0 && matches!(self.b.events[self.events[f.i - 1]].what, What::Write(_));
        self.per_key && self.used_count == 0 && after_write && !self.closed
    }

    fn why(&self, what: &str) -> String {
        format!(
            "the search for where {} write(s) of unknown outcome that no read or watch event showed took effect {what} (after {} states); give it longer with --timeout, or record reads that show them",
            self.unknowns.len(),
            self.memo.len()
        )
    }
}

/// A fixed pseudo-random word for a key in a state, XORed into the state's hash.
fn state_word(k: u32, s: KeyState) -> u128 {
    let v = s.value.map_or(0, |v| v as u64 + 1);
    let a = zobrist_word((k as u64) << 40 ^ v << 1 ^ 1);
    let b = zobrist_word(s.last as u64 ^ 0x5bd1_e995_0000_0000);
    a ^ b.rotate_left(k % 127 + 1)
}
