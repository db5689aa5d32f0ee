//! The etcd model on histories whose answers are known: each class of mistake the old
//! checker made, by name; then thousands of random small histories against the brute-force
//! oracle; then property tests with single mutations.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand::{RngExt, SeedableRng};

use super::oracle::explains;
use super::*;
use crate::model::history::{EventKind, OpKind, Output, Record, WatchEvent, parse};

fn lines(text: &str) -> Vec<Record> {
    parse("h", text).unwrap()
}

fn verdict(h: &[Record], world: World) -> Option<bool> {
    let c = check(h, world, Instant::now() + Duration::from_secs(5));
    c.linearizable
}

/// The model, serializable reads' sessions and watches together: what `check-history`
/// passes.
fn passes(h: &[Record], world: World) -> bool {
    let c = check(h, world, Instant::now() + Duration::from_secs(5));
    let reads = crate::model::reads::check(h).problems.is_empty();
    let watches = !h.iter().any(|r| r.op == OpKind::Watch)
        || crate::model::watch::check_with(h, &c.placed)
            .problems
            .is_empty();
    c.linearizable.expect("decided") && reads && watches
}

const OPEN: World = World::Open;

fn closed() -> World {
    World::Closed { from_revision: 1 }
}

// --- 1. Revisions order a key ---------------------------------------------------------

#[test]
fn a_get_whose_header_revision_is_below_the_write_it_shows_fails() {
    let h = lines(
        r#"{"client":1,"call":0,"return":10,"op":"put","key":"x","value":"a","output":{"revision":5}}
{"client":2,"call":20,"return":30,"op":"get","key":"x","output":{"value":"a","mod_revision":5,"revision":4}}"#,
    );
    assert_eq!(verdict(&h, OPEN), Some(false));
}

#[test]
fn a_get_at_revision_6_returning_revision_5s_value_fails() {
    let h = |v: &str, m: i64| {
        lines(&format!(
            r#"{{"client":1,"call":0,"return":10,"op":"put","key":"x","value":"a","output":{{"revision":5}}}}
{{"client":1,"call":20,"return":30,"op":"put","key":"x","value":"b","output":{{"revision":6}}}}
{{"client":2,"call":5,"return":40,"op":"get","key":"x","output":{{"value":"{v}","mod_revision":{m},"revision":6}}}}"#
        ))
    };
    assert_eq!(verdict(&h("b", 6), OPEN), Some(true));
    let c = check(&h("a", 5), OPEN, Instant::now() + Duration::from_secs(5));
    assert_eq!(c.linearizable, Some(false));
    // The window names the revision and the state the model has there.
    assert!(
        c.problems[0]
            .contains(r#"at revision 6, "x" = "b" (mod 6); #2 the get returned "a" (mod 5)"#),
        "{c:?}"
    );
}

#[test]
fn a_mod_revision_no_write_of_the_key_produced_fails() {
    let h = lines(
        r#"{"client":1,"call":0,"return":10,"op":"put","key":"x","value":"a","output":{"revision":5}}
{"client":1,"call":20,"return":30,"op":"put","key":"y","value":"a","output":{"revision":6}}
{"client":2,"call":40,"return":50,"op":"get","key":"x","output":{"value":"a","mod_revision":6,"revision":6}}"#,
    );
    assert_eq!(verdict(&h, OPEN), Some(false));
}

#[test]
fn every_keys_state_at_a_revision_is_one_snapshot() {
    // y read at 11 may miss nothing of x; but x's write at 10 is ordered before it.
    let h = lines(
        r#"{"client":1,"call":0,"return":10,"op":"put","key":"x","value":"a","output":{"revision":10}}
{"client":2,"call":5,"return":30,"op":"get","key":"x","output":{"value":null,"revision":11}}"#,
    );
    assert_eq!(verdict(&h, OPEN), Some(false));
}

// --- 2. A cas on a revision compares revisions ------------------------------------------

#[test]
fn a_cas_on_a_stale_revision_fails_even_when_the_value_came_back() {
    // A -> B -> A: the value is A again, but the mod revision is 7, not 5.
    let h = |succeeded: bool| {
        lines(&format!(
            r#"{{"client":1,"call":0,"return":10,"op":"put","key":"x","value":"A","output":{{"revision":5}}}}
{{"client":1,"call":20,"return":30,"op":"put","key":"x","value":"B","output":{{"revision":6}}}}
{{"client":1,"call":40,"return":50,"op":"put","key":"x","value":"A","output":{{"revision":7}}}}
{{"client":2,"call":60,"return":70,"op":"cas","key":"x","expect_revision":5,"value":"C","output":{{"succeeded":{succeeded},"revision":{}}}}}"#,
            if succeeded { 8 } else { 7 }
        ))
    };
    assert_eq!(verdict(&h(true), OPEN), Some(false));
    assert_eq!(verdict(&h(false), OPEN), Some(true), "a correct failed cas");
}

#[test]
fn the_workloads_cas_on_a_revision_a_serializable_read_showed_passes() {
    let h = lines(
        r#"{"client":1,"call":10,"return":null,"op":"put","key":"x","value":"a"}
{"client":2,"call":30,"return":40,"op":"get","key":"x","serializable":true,"output":{"value":"a","mod_revision":5,"revision":5}}
{"client":2,"call":50,"return":60,"op":"cas","key":"x","expect_revision":5,"value":"b","output":{"succeeded":true,"revision":6}}"#,
    );
    assert!(passes(&h, OPEN));
    let c = check(&h, OPEN, Instant::now() + Duration::from_secs(5));
    assert_eq!((c.resolved, c.unresolved), (1, 0), "placed by evidence");
}

// --- 3. Serializable reads ----------------------------------------------------------------

#[test]
fn a_serializable_read_is_replayed_at_its_revision() {
    let base = r#"{"client":1,"call":0,"return":10,"op":"put","key":"x","value":"a","output":{"revision":5}}
{"client":1,"call":20,"return":30,"op":"put","key":"x","value":"b","output":{"revision":6}}"#;
    let read = |v: &str, m: i64, r: i64| {
        lines(&format!(
            "{base}\n{{\"client\":2,\"call\":40,\"return\":50,\"op\":\"get\",\"key\":\"x\",\"serializable\":true,\"output\":{{\"value\":\"{v}\",\"mod_revision\":{m},\"revision\":{r}}}}}"
        ))
    };
    assert!(passes(&read("a", 5, 5), OPEN), "stale but committed");
    assert!(!passes(&read("a", 5, 6), OPEN), "a state that never was");
    assert!(
        !passes(&read("b", 6, 5), OPEN),
        "from the future of its revision"
    );
}

#[test]
fn a_linearizable_read_behind_a_serializable_read_that_returned_fails() {
    let h = lines(
        r#"{"client":1,"call":0,"return":10,"op":"put","key":"x","value":"a","output":{"revision":5}}
{"client":1,"call":20,"return":30,"op":"put","key":"x","value":"b","output":{"revision":6}}
{"client":2,"call":40,"return":50,"op":"get","key":"x","serializable":true,"output":{"value":"b","mod_revision":6,"revision":6}}
{"client":3,"call":5,"return":null,"op":"put","key":"y","value":"u"}
{"client":2,"call":60,"return":70,"op":"get","key":"y","output":{"value":null,"revision":5}}"#,
    );
    assert_eq!(verdict(&h, OPEN), Some(false));
}

#[test]
fn a_member_going_back_in_time_for_its_client_fails() {
    let h = lines(
        r#"{"client":1,"call":0,"return":10,"op":"put","key":"x","value":"a","output":{"revision":5}}
{"client":2,"call":20,"return":30,"op":"put","key":"x","value":"b","output":{"revision":6}}
{"client":2,"call":40,"return":50,"op":"get","key":"x","serializable":true,"output":{"value":"a","mod_revision":5,"revision":5}}"#,
    );
    assert!(!passes(&h, OPEN));
}

// --- 4. Watches ---------------------------------------------------------------------------

fn watched(events: &str, header: i64) -> Vec<Record> {
    lines(&format!(
        r#"{{"client":1,"call":0,"return":10,"op":"put","key":"/w/a","value":"1","output":{{"revision":5}}}}
{{"client":1,"call":20,"return":30,"op":"delete","key":"/w/a","output":{{"revision":6,"deleted":1}}}}
{{"client":9,"call":40,"return":40,"op":"watch","key":"/w/","start_revision":5,"output":{{"revision":{header},"events":[{events}]}}}}"#
    ))
}

#[test]
fn a_watch_event_must_be_the_write_at_its_revision() {
    let put = r#"{"type":"put","key":"/w/a","value":"1","revision":5}"#;
    let del = r#"{"type":"delete","key":"/w/a","revision":6}"#;
    assert!(passes(&watched(&format!("{put},{del}"), 6), OPEN));
    let cases = [
        (format!("{put},{del}"), 5, "above the header revision"),
        (
            format!(r#"{put},{{"type":"put","key":"/w/a","value":"2","revision":6}}"#),
            6,
            "put for a delete",
        ),
        (
            format!(r#"{put},{{"type":"delete","key":"/w/b","revision":6}}"#),
            6,
            "another key",
        ),
        (
            put.to_string(),
            6,
            "missing the delete: the stream covered only 5, allowed",
        ),
        (
            del.to_string(),
            6,
            "missing the put at 5, which the stream covered",
        ),
        (format!("{del},{put}"), 6, "out of order"),
    ];
    for (events, header, what) in cases {
        let ok = what.ends_with("allowed");
        assert_eq!(passes(&watched(&events, header), OPEN), ok, "{what}");
        assert_eq!(
            explains(&watched(&events, header), OPEN),
            ok,
            "oracle: {what}"
        );
    }
}

#[test]
fn a_second_stream_of_one_watcher_is_checked_on_its_own() {
    // Stream 2 of watcher 9 (named) starts again at 5 and misses the put it covered.
    let mut h = watched(r#"{"type":"put","key":"/w/a","value":"1","revision":5}"#, 6);
    h[2].stream = Some(1);
    let mut second = h[2].clone();
    second.call = 50;
    second.ret = Some(50);
    second.stream = Some(2);
    second.output.as_mut().unwrap().events = vec![WatchEvent {
        kind: EventKind::Delete,
        key: "/w/a".into(),
        value: None,
        revision: 6,
    }];
    h.push(second);
    assert!(!passes(&h, OPEN));
}

#[test]
fn a_resume_at_or_below_the_last_event_may_deliver_it_again() {
    let mut h = watched(r#"{"type":"put","key":"/w/a","value":"1","revision":5}"#, 6);
    let mut again = h[2].clone();
    again.call = 50;
    again.ret = Some(50);
    again.start_revision = Some(5);
    again.stream = Some(2);
    h[2].stream = Some(1);
    again.output.as_mut().unwrap().events = vec![
        WatchEvent {
            kind: EventKind::Put,
            key: "/w/a".into(),
            value: Some("1".into()),
            revision: 5,
        },
        WatchEvent {
            kind: EventKind::Delete,
            key: "/w/a".into(),
            value: None,
            revision: 6,
        },
    ];
    h.push(again);
    assert!(passes(&h, OPEN), "{:?}", crate::model::watch::check(&h));
}

#[test]
fn two_watchers_cannot_place_one_unknown_write_at_two_revisions() {
    let h = lines(
        r#"{"client":1,"call":0,"return":null,"op":"put","key":"/w/a","value":"u"}
{"client":8,"call":40,"return":40,"op":"watch","key":"/w/","start_revision":1,"output":{"revision":7,"events":[{"type":"put","key":"/w/a","value":"u","revision":5}]}}
{"client":9,"call":40,"return":40,"op":"watch","key":"/w/","start_revision":1,"output":{"revision":7,"events":[{"type":"put","key":"/w/a","value":"u","revision":7}]}}"#,
    );
    assert!(!passes(&h, OPEN));
    assert!(!explains(&h, OPEN));
}

// --- closed and open worlds -------------------------------------------------------------

#[test]
fn in_a_closed_world_a_revision_no_write_took_fails() {
    let h = lines(
        r#"{"client":1,"call":0,"return":10,"op":"put","key":"x","value":"a","output":{"revision":2}}
{"client":1,"call":20,"return":30,"op":"put","key":"x","value":"b","output":{"revision":4}}"#,
    );
    let c = check(&h, closed(), Instant::now() + Duration::from_secs(5));
    assert_eq!(c.linearizable, Some(false));
    assert!(
        c.problems[0].contains("revision 3 is taken by no write"),
        "{c:?}"
    );
    assert_eq!(verdict(&h, OPEN), Some(true));
    // An unknown write may fill it.
    let mut filled = h.clone();
    filled.push(
        lines(r#"{"client":2,"call":5,"return":null,"op":"put","key":"y","value":"u"}"#).remove(0),
    );
    assert_eq!(verdict(&filled, closed()), Some(true));
}

// --- the oracle --------------------------------------------------------------------------

/// A small history run on a real etcd state: 2–7 operations of 1–3 clients on 1–3 keys,
/// values from a pool of three (so values repeat), writes of unknown outcome that did or
/// did not take effect, stale serializable reads, a watcher; in an open world, other
/// clients' writes between them.
fn small_history(rng: &mut rand::rngs::StdRng, open: bool) -> Vec<Record> {
    let keys = ["a", "b", "c"];
    let nkeys = rng.random_range(1..=3);
    let n = rng.random_range(2..=7);
    let (mut h, timeline) = generate(rng, n, nkeys, open, false);
    let rev = timeline.last().map_or(1, |w| w.0);
    if rng.random_bool(0.5) && !timeline.is_empty() {
        let prefix = if rng.random_bool(0.5) {
            "".to_string()
        } else {
            keys[rng.random_range(0..nkeys)].to_string()
        };
        let start = rng.random_range(1..=rev);
        let end = rng.random_range(start..=rev);
        let events = events_of(&timeline, &prefix, start..=end);
        let at = 30 * (n as u64 + 5);
        h.push(Record {
            client: 50,
            call: at,
            ret: Some(at),
            op: OpKind::Watch,
            key: prefix,
            start_revision: Some(start),
            output: Some(Output {
                revision: Some(rev),
                events,
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    h
}

type Timeline = Vec<(i64, String, Option<String>)>;

/// The events a watch of `prefix` delivers over `range` of a timeline.
fn events_of(t: &Timeline, prefix: &str, range: std::ops::RangeInclusive<i64>) -> Vec<WatchEvent> {
    t.iter()
        .filter(|w| w.1.starts_with(prefix) && range.contains(&w.0))
        .map(|w| WatchEvent {
            kind: if w.2.is_some() {
                EventKind::Put
            } else {
                EventKind::Delete
            },
            key: w.1.clone(),
            value: w.2.clone(),
            revision: w.0,
        })
        .collect()
}

/// `n` operations on `nkeys` keys run on a real etcd state, and the writes that took
/// effect: (revision, key, value or `None` for a delete). Values from a pool of three, or
/// each its own when `unique`.
fn generate(
    rng: &mut rand::rngs::StdRng,
    n: usize,
    nkeys: usize,
    open: bool,
    unique: bool,
) -> (Vec<Record>, Timeline) {
    let keys = ["a", "b", "c", "d"];
    let mut rev = 1i64;
    let mut state: BTreeMap<String, (Option<String>, i64)> = BTreeMap::new();
    let mut timeline: Vec<(i64, String, Option<String>)> = vec![];
    let mut free_at: BTreeMap<u64, u64> = BTreeMap::new();
    let mut floor: BTreeMap<u64, i64> = BTreeMap::new();
    let mut h = vec![];
    for i in 0..n {
        if open && rng.random_bool(0.3) {
            rev += rng.random_range(1..=2);
        }
        let t = 30 * (i as u64 + 2);
        let (call, ret) = (t - rng.random_range(0..60), t + rng.random_range(0..60));
        let mut client = rng.random_range(0..3u64);
        if free_at.get(&client).is_some_and(|&f| f >= call) {
            client = 100 + i as u64;
        }
        let key = keys[rng.random_range(0..nkeys)].to_string();
        let cur = state.get(&key).cloned().unwrap_or((None, 0));
        let value = if unique {
            format!("v{i}")
        } else {
            format!("{}", rng.random_range(1..=3))
        };
        let mut r = Record {
            client,
            call,
            ret: Some(ret),
            key: key.clone(),
            ..Default::default()
        };
        let kind = rng.random_range(0..6);
        let (writes, new) = match kind {
            0 | 1 => {
                r.op = OpKind::Get;
                let at = if kind == 1 {
                    r.serializable = true;
                    rng.random_range(floor.get(&client).copied().unwrap_or(1).min(rev)..=rev)
                } else {
                    rev
                };
                let (v, m) = timeline
                    .iter()
                    .rfind(|w| w.0 <= at && w.1 == key)
                    .map_or((None, 0), |w| (w.2.clone(), w.0));
                r.output = Some(Output {
                    mod_revision: v.is_some().then_some(m),
                    value: v,
                    revision: Some(at),
                    ..Default::default()
                });
                (false, None)
            }
            2 => {
                r.op = OpKind::Put;
                r.value = Some(value.clone());
                (true, Some(value))
            }
            3 => {
                r.op = OpKind::Delete;
                (cur.0.is_some(), None)
            }
            _ => {
                r.op = OpKind::Cas;
                r.value = Some(value.clone());
                let holds = if rng.random_bool(0.5) {
                    let m = if rng.random_bool(0.7) {
                        cur.1
                    } else {
                        rng.random_range(0..=rev)
                    };
                    r.expect_revision = Some(if cur.0.is_some() { m } else { 0 });
                    super::Cond::ModRevision(r.expect_revision.unwrap()).holds(KeyState {
                        value: cur.0.as_ref().map(|_| 0),
                        last: cur.1,
                    })
                } else {
                    r.expect = if rng.random_bool(0.7) {
                        cur.0.clone()
                    } else {
                        Some(format!("{}", rng.random_range(1..=3)))
                    };
                    r.expect == cur.0
                };
                (holds, Some(value))
            }
        };
        let unknown = r.op != OpKind::Get && rng.random_bool(0.3);
        let applied = !unknown || rng.random_bool(0.5);
        if writes && applied {
            rev += 1;
            state.insert(key.clone(), (new.clone(), rev));
            timeline.push((rev, key.clone(), new));
        }
        if unknown {
            r.ret = None;
        } else if r.op != OpKind::Get {
            r.output = Some(Output {
                revision: Some(rev),
                succeeded: (r.op == OpKind::Cas).then_some(writes),
                deleted: (r.op == OpKind::Delete).then_some(writes as i64),
                ..Default::default()
            });
        }
        // A client is sequential: busy until its call returns, or, when it gave up on it,
        // from its call on.
        free_at.insert(client, r.ret.unwrap_or(call));
        if r.ret.is_some() {
            let shown = r.output.as_ref().and_then(|o| o.revision).unwrap_or(0);
            let f = floor.entry(client).or_insert(0);
            *f = (*f).max(shown);
        }
        h.push(r);
    }
    (h, timeline)
}

/// One random change of one field: a value, a revision, a mod revision, an outcome, an
/// event's type, key or revision, an event dropped, duplicated or swapped.
fn mutate(rng: &mut rand::rngs::StdRng, h: &mut [Record]) {
    let i = rng.random_range(0..h.len());
    let r = &mut h[i];
    let bump = if rng.random_bool(0.5) { 1 } else { -1 };
    let Some(o) = r.output.as_mut() else {
        r.call += 1;
        return;
    };
    match (r.op, rng.random_range(0..3)) {
        (OpKind::Watch, _) if o.events.is_empty() => o.revision = o.revision.map(|v| v + bump),
        (OpKind::Watch, k) => {
            let j = rng.random_range(0..o.events.len());
            match (k, rng.random_range(0..3)) {
                (0, 0) => drop(o.events.remove(j)),
                (0, 1) => o.events.insert(j, o.events[j].clone()),
                (0, _) => {
                    let k = rng.random_range(0..o.events.len());
                    o.events.swap(j, k)
                }
                (1, 0) => o.events[j].revision += bump,
                (1, _) => o.events[j].key = format!("{}x", o.events[j].key),
                (_, 0) => {
                    let e = &mut o.events[j];
                    e.kind = if e.kind == EventKind::Put {
                        EventKind::Delete
                    } else {
                        EventKind::Put
                    };
                    e.value = if e.value.is_some() {
                        None
                    } else {
                        Some("1".into())
                    };
                }
                _ => o.events[j].value = o.events[j].value.as_ref().map(|v| format!("{v}9")),
            }
        }
        (OpKind::Get, 0) => {
            if o.value.is_some() {
                o.value = Some(format!("{}", rng.random_range(1..=3)));
            }
        }
        (OpKind::Get, 1) => o.mod_revision = o.mod_revision.map(|m| m + bump),
        (OpKind::Cas, 0) => o.succeeded = o.succeeded.map(|s| !s),
        (OpKind::Cas, 1) => r.expect_revision = r.expect_revision.map(|m| (m + bump).max(0)),
        (OpKind::Delete, 0) => o.deleted = o.deleted.map(|d| 1 - d),
        _ => o.revision = o.revision.map(|v| (v + bump).max(1)),
    }
}

/// Thousands of random small histories, half of them mutated, in both worlds: the checker
/// and the oracle agree on every one.
#[test]
fn the_checker_agrees_with_a_brute_force_oracle() {
    // ORACLE_HISTORIES=200000 (and ORACLE_SEED) for a longer hunt than `make test`'s.
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(env("ORACLE_SEED", 2207));
    let (mut passed, mut failed) = (0, 0);
    for n in 0..env("ORACLE_HISTORIES", 4000) {
        let open = n % 2 == 0;
        let world = if open { OPEN } else { closed() };
        let mut h = small_history(&mut rng, open);
        if n % 4 >= 2 {
            mutate(&mut rng, &mut h);
        }
        if crate::model::history::parse(
            "h",
            &h.iter().map(Record::to_line).collect::<Vec<_>>().join("\n"),
        )
        .is_err()
        {
            continue;
        }
        let want = explains(&h, world);
        let got = passes(&h, world);
        assert_eq!(
            got,
            want,
            "{world:?} history #{n}:\n{}",
            h.iter().map(Record::to_line).collect::<Vec<_>>().join("\n")
        );
        if want { passed += 1 } else { failed += 1 }
    }
    assert!(
        passed > 1000 && failed > 500,
        "both verdicts exercised: {passed} / {failed}"
    );
}

// --- property tests ------------------------------------------------------------------------

/// A longer history run on a real etcd state: `ops` operations of up to six clients on
/// `keys` keys, with unique values, writes of unknown outcome (applied or not), stale
/// serializable reads, cas on values and on mod revisions, and two watchers whose streams
/// break and resume (from right after their last event, or from at or before it, which
/// delivers it again). Valid by construction in `world`.
fn etcd_history(rng: &mut rand::rngs::StdRng, ops: usize, keys: usize, open: bool) -> Vec<Record> {
    let (mut h, writes) = generate(rng, ops, keys, open, true);
    let rev = writes.last().map_or(1, |w| w.0);
    let at = 30 * (ops as u64 + 5);
    for watcher in 0..2u64 {
        let mut start = rng.random_range(1..=rev.max(1));
        let mut stream = 0;
        while start <= rev {
            stream += 1;
            let end = rng.random_range(start..=rev);
            let events = events_of(&writes, "", start..=end);
            // The stream's events in one or two responses, never splitting a revision.
            let cut = rng.random_range(0..=events.len());
            for (n, part) in [&events[..cut], &events[cut..]].into_iter().enumerate() {
                if part.is_empty() {
                    continue;
                }
                h.push(Record {
                    client: 60 + watcher,
                    call: at + 10 * stream + n as u64,
                    ret: Some(at + 10 * stream + n as u64),
                    op: OpKind::Watch,
                    key: String::new(),
                    start_revision: Some(start),
                    stream: Some(stream),
                    output: Some(Output {
                        revision: Some(rev),
                        events: part.to_vec(),
                        ..Default::default()
                    }),
                    ..Default::default()
                });
            }
            let last = if events.is_empty() { start - 1 } else { end };
            start = if rng.random_bool(0.3) {
                rng.random_range(1.max(last - 1)..=last + 1)
            } else {
                last + 1
            };
            if events.is_empty() {
                break;
            }
        }
    }
    h
}

/// Changes no etcd could produce, each applied alone to a valid history.
#[derive(Debug, Clone, Copy)]
enum Mutation {
    /// A get returns a value never written.
    Value,
    /// A get's mod revision is one no write of its key took.
    ModRevision,
    /// A successful cas on a revision the key never had.
    CasRevision,
    /// A watch event's type flipped (an acknowledged write's).
    EventType,
    /// A watch event's key one nobody wrote.
    EventKey,
    /// An event of an acknowledged write left out of its stream (not its last).
    DropEvent,
    DuplicateEvent,
    ReorderEvents,
    /// Closed world: every revision from one on moved up by one, leaving a gap.
    SkipRevision,
    /// Closed world: a get's header revision one the history never reached.
    FutureHeader,
}

const MUTATIONS: [Mutation; 10] = [
    Mutation::Value,
    Mutation::ModRevision,
    Mutation::CasRevision,
    Mutation::EventType,
    Mutation::EventKey,
    Mutation::DropEvent,
    Mutation::DuplicateEvent,
    Mutation::ReorderEvents,
    Mutation::SkipRevision,
    Mutation::FutureHeader,
];

/// `m` applied to one place of `h` it fits (chosen by `pick`), or `None` where it fits none.
fn mutated(h: &[Record], m: Mutation, closed: bool, pick: usize) -> Option<Vec<Record>> {
    let mut h = h.to_vec();
    let acked: std::collections::HashSet<i64> = h
        .iter()
        .filter_map(|r| r.committed().map(|c| c.0))
        .collect();
    let get = |r: &Record| r.op == OpKind::Get && r.known();
    let fits: Vec<usize> = (0..h.len())
        .filter(|&i| {
            let r = &h[i];
            let o = r.output.as_ref();
            let events = o.map_or(0, |o| o.events.len());
            match m {
                Mutation::Value => get(r),
                Mutation::ModRevision => get(r) && o.is_some_and(|o| o.mod_revision.is_some()),
                Mutation::CasRevision => r.expect_revision.is_some() && r.committed().is_some(),
                // An acknowledged write's type is known; an unknown one's may be either.
                Mutation::EventType => o.is_some_and(|o| {
                    o.events
                        .first()
                        .is_some_and(|e| acked.contains(&e.revision))
                }),
                Mutation::EventKey | Mutation::DuplicateEvent => events > 0,
                Mutation::DropEvent => o.is_some_and(|o| {
                    o.events
                        .iter()
                        .rev()
                        .skip(1)
                        .any(|e| acked.contains(&e.revision))
                }),
                Mutation::ReorderEvents => events > 1,
                Mutation::SkipRevision => closed && i == 0 && !h.iter().any(|r| r.unknown_write()),
                Mutation::FutureHeader => closed && get(r) && !r.serializable,
            }
        })
        .collect();
    let i = *fits.get(pick % fits.len().max(1))?;
    let r = &mut h[i];
    let o = r.output.as_mut().expect("returned");
    match m {
        Mutation::Value => o.value = Some("never written".into()),
        Mutation::ModRevision => o.mod_revision = o.mod_revision.map(|m| m + 1000),
        Mutation::CasRevision => r.expect_revision = Some(1_000_000),
        Mutation::EventType => {
            let e = &mut o.events[0];
            (e.kind, e.value) = match e.kind {
                EventKind::Put => (EventKind::Delete, None),
                EventKind::Delete => (EventKind::Put, Some("never written".into())),
            };
        }
        Mutation::EventKey => o.events[0].key = "zz".into(),
        Mutation::DropEvent => {
            let last = o.events.len() - 1;
            let j = (0..last)
                .find(|&j| acked.contains(&o.events[j].revision))
                .expect("fits");
            o.events.remove(j);
        }
        Mutation::DuplicateEvent => o.events.insert(0, o.events[0].clone()),
        Mutation::ReorderEvents => o.events.reverse(),
        Mutation::FutureHeader => o.revision = o.revision.map(|v| v + 1000),
        Mutation::SkipRevision => {
            let top = acked.iter().max().copied()?;
            let from = 2 + (pick as i64 % (top - 1).max(1));
            let up = |v: &mut i64| {
                if *v >= from {
                    *v += 1
                }
            };
            for r in h.iter_mut() {
                r.expect_revision.as_mut().into_iter().for_each(&up);
                r.start_revision.as_mut().into_iter().for_each(&up);
                if let Some(o) = r.output.as_mut() {
                    o.revision.as_mut().into_iter().for_each(&up);
                    o.mod_revision.as_mut().into_iter().for_each(&up);
                    o.events.iter_mut().for_each(|e| up(&mut e.revision));
                }
            }
        }
    }
    Some(h)
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Histories etcd produces pass — random concurrency, unknown outcomes that did or did
    /// not take effect, watchers that resume, serializable reads, both worlds — and every
    /// single mutation above fails.
    #[test]
    fn etcd_histories_pass_and_every_single_mutation_fails(
        seed: u64,
        ops in 5usize..40,
        keys in 1usize..5,
        open: bool,
        pick: usize,
    ) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let h = etcd_history(&mut rng, ops, keys, open);
        let world = if open { OPEN } else { closed() };
        let text = |h: &[Record]| h.iter().map(Record::to_line).collect::<Vec<_>>().join("\n");
        proptest::prop_assert!(parse("h", &text(&h)).is_ok(), "{}", text(&h));
        proptest::prop_assert!(passes(&h, world), "{world:?}\n{}", text(&h));
        for m in MUTATIONS {
            if let Some(bad) = mutated(&h, m, !open, pick) {
                proptest::prop_assert!(!passes(&bad, world), "{m:?} passed in {world:?}:\n{}", text(&bad));
            }
        }
    }
}
