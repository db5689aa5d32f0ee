//! A watch that delivers what was written passes; each way of breaking etcd's watch
//! guarantees is caught.

use super::*;
use crate::model::history::{EventKind, Output};

const P: &str = "/w/";

fn put(op_call: u64, key: &str, v: &str, rev: i64) -> Record {
    Record {
        client: 1,
        call: op_call,
        ret: Some(op_call + 5),
        op: OpKind::Put,
        key: key.into(),
        value: Some(v.into()),
        output: Some(Output {
            revision: Some(rev),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn ev(key: &str, v: &str, rev: i64) -> WatchEvent {
    WatchEvent {
        kind: EventKind::Put,
        key: key.into(),
        value: Some(v.into()),
        revision: rev,
    }
}

fn resp(at: u64, start: i64, events: Vec<WatchEvent>) -> Record {
    Record {
        client: 9,
        call: at,
        ret: Some(at),
        op: OpKind::Watch,
        key: P.into(),
        start_revision: Some(start),
        output: Some(Output {
            events,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Three writes at revisions 5, 6, 7 and a watch that saw them all.
fn good() -> Vec<Record> {
    vec![
        put(10, "/w/a", "1", 5),
        put(20, "/w/b", "2", 6),
        put(30, "/w/a", "3", 7),
        resp(16, 1, vec![ev("/w/a", "1", 5)]),
        resp(40, 1, vec![ev("/w/b", "2", 6), ev("/w/a", "3", 7)]),
    ]
}

fn problems(h: &[Record]) -> Vec<String> {
    check(h).problems
}

#[test]
fn a_watch_that_saw_every_write_in_order_passes() {
    let c = check(&good());
    assert!(c.passed(), "{c:?}");
    assert_eq!(
        (c.watchers, c.streams, c.events, c.writes_covered),
        (1, 1, 3, 3)
    );
}

#[test]
fn no_events_is_no_evidence() {
    let h = vec![put(10, "/w/a", "1", 5)];
    assert!(!check(&h).passed());
}

#[test]
fn a_reordered_watch_is_caught() {
    let mut h = good();
    h[4] = resp(40, 1, vec![ev("/w/a", "3", 7), ev("/w/b", "2", 6)]);
    let p = problems(&h);
    assert!(
        p.iter().any(|p| p.contains("out of revision order")),
        "{p:?}"
    );
}

#[test]
fn a_duplicate_event_is_caught() {
    let mut h = good();
    h.push(resp(50, 1, vec![ev("/w/a", "3", 7)]));
    let p = problems(&h);
    assert!(p.iter().any(|p| p.contains("delivered twice")), "{p:?}");
}

#[test]
fn a_gap_is_caught() {
    let mut h = good();
    h[4] = resp(40, 1, vec![ev("/w/a", "3", 7)]);
    let p = problems(&h);
    assert!(
        p.iter().any(|p| p.contains("never received operation #1")),
        "{p:?}"
    );
}

#[test]
fn an_event_nobody_wrote_or_at_the_wrong_revision_is_caught() {
    let mut h = good();
    h.push(resp(60, 1, vec![ev("/w/c", "9", 8)]));
    assert!(problems(&h).iter().any(|p| p.contains("no client wrote")));
    let mut h = good();
    h[4] = resp(40, 1, vec![ev("/w/b", "2", 6), ev("/w/a", "1", 7)]);
    let p = problems(&h);
    assert!(p.iter().any(|p| p.contains("wrote /w/a=3")), "{p:?}");
}

#[test]
fn an_event_received_before_its_write_was_issued_is_caught() {
    let mut h = good();
    h[3] = resp(8, 1, vec![ev("/w/a", "1", 5)]);
    let p = problems(&h);
    assert!(p.iter().any(|p| p.contains("before operation #0")), "{p:?}");
}

#[test]
fn a_revision_split_across_responses_is_caught() {
    // One txn writing two keys at revision 6.
    let mut h = vec![
        put(10, "/w/a", "1", 5),
        put(20, "/w/b", "2", 6),
        resp(16, 1, vec![ev("/w/a", "1", 5)]),
    ];
    h.push(resp(30, 1, vec![ev("/w/b", "2", 6)]));
    h.push(resp(31, 1, vec![ev("/w/c", "x", 6)]));
    h.push(Record {
        ret: None,
        output: None,
        ..put(20, "/w/c", "x", 0)
    });
    let p = problems(&h);
    assert!(p.iter().any(|p| p.contains("must come together")), "{p:?}");
}

#[test]
fn a_resumed_stream_must_start_right_after_the_last_event() {
    let mut h = good();
    // The watcher reconnected after revision 5 and resumed from 6: nothing lost.
    h[4] = resp(40, 6, vec![ev("/w/b", "2", 6), ev("/w/a", "3", 7)]);
    let c = check(&h);
    assert!(c.passed(), "{c:?}");
    assert_eq!(c.streams, 2);
    // Resumed from 7: revision 6 is never delivered.
    h[4] = resp(40, 7, vec![ev("/w/a", "3", 7)]);
    let p = problems(&h);
    assert!(
        p.iter().any(|p| p.contains("resumed from revision 7")),
        "{p:?}"
    );
}

#[test]
fn an_unknown_write_may_appear_but_not_before_it_was_issued() {
    let unknown = Record {
        ret: None,
        output: None,
        ..put(35, "/w/c", "4", 0)
    };
    let mut h = good();
    h.push(unknown.clone());
    h.push(resp(45, 1, vec![ev("/w/c", "4", 8)]));
    assert!(check(&h).passed(), "{:?}", check(&h));
    let mut h = good();
    h.push(unknown);
    h.push(resp(33, 1, vec![ev("/w/c", "4", 8)]));
    assert!(
        problems(&h)
            .iter()
            .any(|p| p.contains("before the write was issued"))
    );
}

/// A stream watches its prefix: an event of another key — even one written at that very
/// revision with that value — is not one it could deliver.
#[test]
fn an_event_outside_the_watched_prefix_is_caught() {
    let mut h = good();
    h.push(put(50, "/v/c", "4", 8));
    h.push(resp(60, 1, vec![ev("/v/c", "4", 8)]));
    let p = problems(&h);
    assert!(
        p.iter().any(|p| p.contains("outside the watched prefix")),
        "{p:?}"
    );
    assert!(problems(&good()).is_empty());
}

/// An event's type is part of what was written: a put event without a value at a delete's
/// revision is not that delete, nor is a delete event carrying a value.
#[test]
fn an_event_of_the_wrong_type_is_caught() {
    let mut h = good();
    h.push(Record {
        op: OpKind::Delete,
        value: None,
        output: Some(Output {
            revision: Some(8),
            deleted: Some(1),
            ..Default::default()
        }),
        ..put(50, "/w/b", "x", 8)
    });
    let mut as_put = ev("/w/b", "x", 8);
    as_put.value = None;
    h.push(resp(60, 1, vec![as_put]));
    let p = problems(&h);
    assert!(
        p.iter().any(|p| p.contains("a put event without a value")),
        "{p:?}"
    );
    let mut h = good();
    let mut del = ev("/w/a", "3", 7);
    del.kind = EventKind::Delete;
    h[4] = resp(40, 1, vec![ev("/w/b", "2", 6), del]);
    let p = problems(&h);
    assert!(
        p.iter().any(|p| p.contains("a delete event with a value")),
        "{p:?}"
    );
}
