//! Joining the keys' explanations into one. Each key was explained on its own, with writes
//! of unknown outcome inserted at revisions; one explanation of the whole history needs
//! those revisions distinct and, in a closed world, every other revision below the last
//! one the history reaches taken by a write too. A write no record names the revision of
//! may take any free revision in its range, so those are laid out again, earliest deadline
//! first; gaps left in a closed world are filled with writes of unknown outcome that no
//! record could see there (a put whose key's next event is a put). When this finds no
//! layout, the search runs on the whole history, which decides exactly; this only spares it
//! the common case.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};

use super::build::Built;
use super::search::Insert;
use super::{Effect, What, World};

/// Whether the keys' insertions make one explanation in `world`.
pub(crate) fn complete(b: &Built, world: World, inserts: &[Insert]) -> bool {
    let mut taken: HashSet<i64> = HashSet::new();
    for i in inserts.iter().filter(|i| !i.anonymous) {
        if !taken.insert(i.slot) {
            return false;
        }
    }
    // Two of one key before one event keep their order: the later one's range starts after
    // the earlier one's, the sort is stable and revisions are handed out rising.
    let mut anonymous: Vec<&Insert> = inserts.iter().filter(|i| i.anonymous).collect();
    if !lay_out(b, &mut anonymous, &mut taken) {
        return false;
    }
    match world {
        World::Open => true,
        World::Closed { from_revision } => {
            // Nothing is written at or before the revision the history starts from.
            let after = |rev: i64, what: What| {
                rev > from_revision || (rev == from_revision && matches!(what, What::Expect(_)))
            };
            b.events.iter().all(|e| after(e.rev, e.what))
                && taken.iter().all(|&g| g > from_revision)
                && fill_gaps(b, from_revision, inserts, &taken)
        }
    }
}

/// The lowest revision at or above `g` that no pinned write took, no record names and no
/// insertion took.
fn usable(b: &Built, mut g: i64, taken: &HashSet<i64>) -> i64 {
    loop {
        let free = b.unoccupied_from(g);
        if !b.is_named(free) && !taken.contains(&free) {
            return free;
        }
        g = free + 1;
    }
}

/// Unit jobs with release and deadline on the free revisions: at each revision, the released
/// job with the earliest deadline.
fn lay_out(b: &Built, jobs: &mut [&Insert], taken: &mut HashSet<i64>) -> bool {
    jobs.sort_by_key(|i| i.lb);
    let mut heap = BinaryHeap::new();
    let (mut next, mut g) = (0, i64::MIN);
    while next < jobs.len() || !heap.is_empty() {
        if heap.is_empty() {
            g = g.max(jobs[next].lb);
        }
        g = usable(b, g, taken);
        while next < jobs.len() && jobs[next].lb <= g {
            heap.push(Reverse((jobs[next].hi, next)));
            next += 1;
        }
        let Some(Reverse((hi, j))) = heap.pop() else {
            continue;
        };
        if hi < g || !b.free_for(b.unknowns[jobs[j].unknown].key, g) {
            return false;
        }
        taken.insert(g);
        g += 1;
    }
    true
}

/// Closed world: every free revision after `from` and up to the last the history reaches
/// gets a put of unknown outcome that nothing saw there — its key's next event is a put,
/// with none of the key's insertions between.
fn fill_gaps(b: &Built, from: i64, inserts: &[Insert], taken: &HashSet<i64>) -> bool {
    let top = b.events.iter().map(|e| e.rev).max().unwrap_or(from);
    let mut by_key: Vec<Vec<usize>> = vec![vec![]; b.keys.len()];
    for (i, e) in b.events.iter().enumerate() {
        by_key[e.key as usize].push(i);
    }
    let used: HashSet<usize> = inserts.iter().map(|i| i.unknown).collect();
    let mut pool: HashMap<u32, BTreeMap<i64, Vec<usize>>> = HashMap::new();
    for (u, x) in b.unknowns.iter().enumerate() {
        if matches!(x.effect, Effect::Put(_)) && !used.contains(&u) {
            pool.entry(x.key)
                .or_default()
                .entry(x.lo)
                .or_default()
                .push(u);
        }
    }
    let inserted_at = |k: u32, a: i64, z: i64| {
        inserts
            .iter()
            .any(|i| b.unknowns[i.unknown].key == k && i.slot > a && i.slot < z)
    };
    let mut g = b.unoccupied_from(from + 1);
    while g <= top {
        if !taken.contains(&g) {
            // Keys whose next event after `g` is a put, soonest first.
            let mut best: Option<(i64, u32, i64)> = None;
            for (&k, lows) in &pool {
                let evs = &by_key[k as usize];
                let p = evs.partition_point(|&e| b.events[e].pos() < (g, 0));
                let Some(&e) = evs.get(p) else { continue };
                let put = &b.events[e];
                let start = p.checked_sub(1).map_or(i64::MIN, |q| b.events[evs[q]].rev);
                let Some((&lo, _)) = lows.range(..=g).next_back() else {
                    continue;
                };
                let fits = matches!(put.what, What::Write(Effect::Put(_)))
                    && b.free_for(k, g)
                    && !inserted_at(k, start, put.rev);
                if fits && best.is_none_or(|x| put.rev < x.0) {
                    best = Some((put.rev, k, lo));
                }
            }
            let Some((_, k, lo)) = best else {
                return false;
            };
            let lows = pool.get_mut(&k).expect("chosen from it");
            let list = lows.get_mut(&lo).expect("chosen from it");
            list.pop();
            if list.is_empty() {
                lows.remove(&lo);
            }
        }
        g = b.unoccupied_from(g + 1);
    }
    true
}
