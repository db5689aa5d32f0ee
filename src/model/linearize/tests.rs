//! Good histories pass and each kind of bad one is caught: a checker that cannot say
//! "not linearizable" would be a test that cannot fail.

use super::*;
use crate::model::history::{Output, World, parse};

const SECOND: Duration = Duration::from_secs(5);

fn op(client: u64, call: u64, ret: Option<u64>, kind: OpKind, key: &str) -> Record {
    Record {
        client,
        call,
        ret,
        op: kind,
        key: key.into(),
        value: None,
        expect: None,
        output: None,
        ..Default::default()
    }
}

fn put(call: u64, ret: Option<u64>, key: &str, v: &str) -> Record {
    Record {
        value: Some(v.into()),
        ..op(1, call, ret, OpKind::Put, key)
    }
}

fn get(call: u64, ret: u64, key: &str, v: Option<&str>) -> Record {
    Record {
        output: Some(Output {
            value: v.map(str::to_string),
            ..Default::default()
        }),
        ..op(2, call, Some(ret), OpKind::Get, key)
    }
}

fn with_revision(mut r: Record, rev: i64) -> Record {
    r.output.get_or_insert_with(Output::default).revision = Some(rev);
    r
}

fn verdict(h: &[Record]) -> Linearizability {
    check(h, Model::Kv, World::Open, SECOND).verdict
}

#[test]
fn the_formats_example_is_linearizable() {
    let h = parse(
        "example",
        r#"{"client": 3, "call": 1200, "return": 1900, "op": "put", "key": "x", "value": "4"}
{"client": 0, "call": 1300, "return": 2100, "op": "get", "key": "x", "output": {"value": "4"}}
{"client": 1, "call": 1400, "return": 2000, "op": "get", "key": "x", "output": {"value": null}}
{"client": 2, "call": 2200, "return": 2500, "op": "cas", "key": "x", "expect": "3", "value": "0", "output": {"succeeded": false}}
{"client": 4, "call": 2300, "return": null, "op": "cas", "key": "x", "expect": "4", "value": "1"}"#,
    )
    .unwrap();
    let c = check(&h, Model::Kv, World::Open, SECOND);
    assert_eq!(c.verdict, Linearizability::Linearizable, "{c:?}");
    assert_eq!((c.operations, c.keys, c.unknown_outcomes), (5, 1, 1));
}

#[test]
fn a_stale_read_is_caught_and_shown() {
    let h = [
        put(0, Some(10), "x", "1"),
        put(20, Some(30), "x", "2"),
        get(40, 50, "x", Some("1")),
    ];
    let c = check(&h, Model::Kv, World::Open, SECOND);
    assert_eq!(c.verdict, Linearizability::NotLinearizable);
    let w = c.window.unwrap();
    assert_eq!(w.key, "x");
    assert_eq!(w.placed, 2, "both puts placed, the read cannot follow");
    assert_eq!(w.before, vec![0, 1]);
    assert_eq!(w.stuck, vec![2]);
}

#[test]
fn a_lost_acknowledged_write_is_caught() {
    let h = [put(0, Some(10), "x", "1"), get(20, 30, "x", None)];
    assert_eq!(verdict(&h), Linearizability::NotLinearizable);
}

#[test]
fn a_write_visible_before_it_was_issued_is_caught() {
    let h = [get(0, 10, "x", Some("5")), put(20, Some(30), "x", "5")];
    assert_eq!(verdict(&h), Linearizability::NotLinearizable);
    // Overlapping, the same two are fine: the put may take effect first.
    let h = [get(0, 25, "x", Some("5")), put(20, Some(30), "x", "5")];
    assert_eq!(verdict(&h), Linearizability::Linearizable);
}

#[test]
fn an_unknown_outcome_may_or_may_not_have_taken_effect() {
    for seen in [Some("1"), None] {
        let h = [put(0, None, "x", "1"), get(20, 30, "x", seen)];
        assert_eq!(verdict(&h), Linearizability::Linearizable, "{seen:?}");
    }
    // But not both ways at once: once seen, it cannot be unseen.
    let h = [
        put(0, None, "x", "1"),
        get(20, 30, "x", Some("1")),
        get(40, 50, "x", None),
    ];
    assert_eq!(verdict(&h), Linearizability::NotLinearizable);
}

#[test]
fn a_delete_must_agree_with_what_it_removed() {
    let del = |call, ret, n: i64| Record {
        output: Some(Output {
            deleted: Some(n),
            ..Default::default()
        }),
        ..op(3, call, Some(ret), OpKind::Delete, "x")
    };
    let ok = [
        put(0, Some(10), "x", "1"),
        del(20, 30, 1),
        get(40, 50, "x", None),
    ];
    assert_eq!(verdict(&ok), Linearizability::Linearizable);
    // Removing nothing from a key that held a value, or reading it back after a delete.
    let nothing = [put(0, Some(10), "x", "1"), del(20, 30, 0)];
    assert_eq!(verdict(&nothing), Linearizability::NotLinearizable);
    let back = [
        put(0, Some(10), "x", "1"),
        del(20, 30, 1),
        get(40, 50, "x", Some("1")),
    ];
    assert_eq!(verdict(&back), Linearizability::NotLinearizable);
}

#[test]
fn compare_and_set_on_the_mod_revision_follows_the_register() {
    let cas = |call, ret, rev: i64, v: &str, ok: bool| Record {
        value: Some(v.into()),
        expect_revision: Some(rev),
        output: Some(Output {
            succeeded: Some(ok),
            revision: Some(20),
            ..Default::default()
        }),
        ..op(3, call, Some(ret), OpKind::Cas, "x")
    };
    let one = with_revision(put(0, Some(10), "x", "1"), 5);
    let three = with_revision(put(20, Some(30), "x", "3"), 6);
    // The key was last written at revision 5: a cas on 5 succeeds, on 0 (absent) fails.
    let ok = [one.clone(), cas(40, 50, 5, "2", true)];
    assert_eq!(verdict(&ok), Linearizability::Linearizable);
    let absent = [one.clone(), cas(40, 50, 0, "2", false)];
    assert_eq!(verdict(&absent), Linearizability::Linearizable);
    // Revision 6 overwrote it before the cas was called: a cas on 5 cannot succeed.
    let stale = [one.clone(), three, cas(40, 50, 5, "2", true)];
    assert_eq!(verdict(&stale), Linearizability::NotLinearizable);
    // A revision no operation is known to have written: the cas can only have failed.
    let unknown = [one, cas(40, 50, 4, "2", true)];
    assert_eq!(verdict(&unknown), Linearizability::NotLinearizable);
}

#[test]
fn compare_and_set_follows_the_register() {
    let cas = |call, ret, expect: Option<&str>, v: &str, ok: bool| Record {
        value: Some(v.into()),
        expect: expect.map(str::to_string),
        output: Some(Output {
            succeeded: Some(ok),
            ..Default::default()
        }),
        ..op(3, call, Some(ret), OpKind::Cas, "x")
    };
    let h = [
        put(0, Some(10), "x", "1"),
        cas(20, 30, Some("1"), "2", true),
        get(40, 50, "x", Some("2")),
    ];
    assert_eq!(verdict(&h), Linearizability::Linearizable);
    // Two sequential CAS from the same expected value cannot both succeed.
    let h = [
        put(0, Some(10), "x", "1"),
        cas(20, 30, Some("1"), "2", true),
        cas(40, 50, Some("1"), "3", true),
    ];
    assert_eq!(verdict(&h), Linearizability::NotLinearizable);
    // A CAS on an absent key (expect null) succeeds only while it is absent.
    let h = [cas(0, 10, None, "1", true), cas(20, 30, None, "2", true)];
    assert_eq!(verdict(&h), Linearizability::NotLinearizable);
}

#[test]
fn keys_are_checked_apart_and_the_bad_one_named() {
    let h = [
        put(0, Some(10), "a", "1"),
        get(20, 30, "a", Some("1")),
        put(0, Some(10), "b", "1"),
        put(20, Some(30), "b", "2"),
        get(40, 50, "b", Some("1")),
    ];
    let c = check(&h, Model::Kv, World::Open, SECOND);
    assert_eq!(c.verdict, Linearizability::NotLinearizable);
    assert_eq!(c.window.unwrap().key, "b");
}

#[test]
fn running_out_of_time_is_unknown_never_a_pass() {
    // Thirty concurrent writes and a read of a value none of them wrote: refuting it
    // means trying every order, which no deadline of zero allows.
    let mut h: Vec<Record> = (0..30)
        .map(|i| put(0, Some(1000), "x", &i.to_string()))
        .collect();
    h.push(get(0, 1000, "x", Some("never written")));
    let c = check(&h, Model::Kv, World::Open, Duration::ZERO);
    assert_eq!(c.verdict, Linearizability::Unknown, "{c:?}");
    assert_eq!(c.undecided_keys, vec!["x".to_string()]);
}

#[test]
fn the_etcd_model_holds_revisions_to_one_global_order() {
    let ok = [
        with_revision(put(0, Some(10), "x", "1"), 5),
        with_revision(get(20, 30, "y", None), 5),
        with_revision(put(40, Some(50), "y", "1"), 6),
    ];
    assert_eq!(
        check(&ok, Model::Etcd, World::Open, SECOND).verdict,
        Linearizability::Linearizable
    );
    // A read on another key that saw an older revision than one already returned.
    let stale = [
        with_revision(put(0, Some(10), "x", "1"), 5),
        with_revision(get(20, 30, "y", None), 4),
    ];
    let c = check(&stale, Model::Etcd, World::Open, SECOND);
    assert_eq!(c.verdict, Linearizability::NotLinearizable);
    assert!(
        c.revision_problems[0].contains("had returned revision 5 before it was called"),
        "{c:?}"
    );
    // The register model alone cannot see it.
    assert_eq!(verdict(&stale), Linearizability::Linearizable);
    // Two writes with one revision.
    let mut other = with_revision(put(0, Some(10), "y", "1"), 5);
    other.client = 2;
    let twice = [with_revision(put(0, Some(10), "x", "1"), 5), other];
    let c = check(&twice, Model::Etcd, World::Open, SECOND);
    assert!(
        c.revision_problems[0].contains("both wrote revision 5"),
        "{c:?}"
    );
}

#[test]
fn a_long_contended_history_is_decided() {
    // 8 clients on 2 keys, 4000 operations, overlapping in pairs: the memoised search
    // must decide it well inside the deadline.
    let mut h = vec![];
    let mut t = 0;
    for i in 0..2000u64 {
        let key = if i % 2 == 0 { "a" } else { "b" };
        h.push(put(t, Some(t + 15), key, &i.to_string()));
        h.push(get(t + 5, t + 20, key, Some(&i.to_string())));
        t += 10;
    }
    let c = check(&h, Model::Kv, World::Open, Duration::from_secs(30));
    assert_eq!(c.verdict, Linearizability::Linearizable, "{c:?}");
}

/// The drill's own pattern: a put whose outcome is unknown (it timed out, yet committed at
/// revision 5), a serializable read that shows it (mod revision 5), and a cas on that mod
/// revision, which etcd acknowledged. The revision was only ever learned from the read: the
/// checker called it "never held" and flagged a history etcd produces.
#[test]
fn a_cas_on_a_revision_learned_from_a_serializable_read_is_not_a_false_alarm() {
    let history = |cas_on: i64| {
        parse(
            "h",
            &format!(
                r#"{{"client": 1, "call": 10, "return": null, "op": "put", "key": "x", "value": "a"}}
{{"client": 2, "call": 30, "return": 40, "op": "get", "key": "x", "serializable": true, "output": {{"value": "a", "mod_revision": 5, "revision": 5}}}}
{{"client": 2, "call": 50, "return": 60, "op": "cas", "key": "x", "expect_revision": {cas_on}, "value": "b", "output": {{"succeeded": true, "revision": 6}}}}"#
            ),
        )
        .unwrap()
    };
    let c = check(&history(5), Model::Etcd, World::Open, SECOND);
    assert_eq!(c.verdict, Linearizability::Linearizable, "{c:?}");
    // A revision nobody was shown to hold still cannot succeed.
    let c = check(&history(4), Model::Etcd, World::Open, SECOND);
    assert_eq!(c.verdict, Linearizability::NotLinearizable, "{c:?}");
}

/// The same with the revision shown by a watch event instead of a read.
#[test]
fn a_cas_on_a_revision_a_watch_event_showed_is_not_a_false_alarm() {
    let h = parse(
        "h",
        r#"{"client": 1, "call": 10, "return": null, "op": "put", "key": "x", "value": "a"}
{"client": 3, "call": 20, "return": 25, "op": "watch", "key": "x", "start_revision": 1, "output": {"events": [{"type": "put", "key": "x", "value": "a", "revision": 5}], "revision": 5}}
{"client": 2, "call": 50, "return": 60, "op": "cas", "key": "x", "expect_revision": 5, "value": "b", "output": {"succeeded": true, "revision": 6}}"#,
    )
    .unwrap();
    let c = check(&h, Model::Etcd, World::Open, SECOND);
    assert_eq!(c.verdict, Linearizability::Linearizable, "{c:?}");
}

/// One key run by a real sequential register with etcd's revisions, its operations' intervals
/// drawn around their linearization points (so they overlap at random): puts (some of unknown
/// outcome, applied or not), serializable and linearizable gets, and cas on the mod revision
/// the client last saw — the drill workload's pattern. Linearizable by construction.
fn etcd_register_history(rng: &mut rand::rngs::StdRng) -> Vec<Record> {
    use rand::RngExt;
    let (mut value, mut mod_rev, mut rev) = (None::<String>, 0i64, 1i64);
    let mut seen_mod = 0i64;
    let mut h = vec![];
    for i in 0..rng.random_range(3..9u64) {
        let at = 100 * (i + 1);
        let (call, ret) = (at - rng.random_range(0..60), at + rng.random_range(0..60));
        let mut r = op(i, call, Some(ret), OpKind::Get, "x");
        let output = |value: &Option<String>, mod_rev: i64, rev: i64| Output {
            value: value.clone(),
            mod_revision: (mod_rev > 0).then_some(mod_rev),
            revision: Some(rev),
            ..Default::default()
        };
        match rng.random_range(0..4) {
            0 => {
                let applied = rng.random_bool(0.8);
                let known = applied && rng.random_bool(0.6);
                let v = format!("v{i}");
                if applied {
                    rev += 1;
                    (value, mod_rev) = (Some(v.clone()), rev);
                }
                r.op = OpKind::Put;
                r.value = Some(v);
                r.ret = known.then_some(ret);
                r.output = known.then(|| Output {
                    revision: Some(rev),
                    ..Default::default()
                });
            }
            1 => {
                r.serializable = true;
                r.output = Some(output(&value, mod_rev, rev));
                seen_mod = mod_rev;
            }
            2 => r.output = Some(output(&value, mod_rev, rev)),
            _ => {
                let holds = seen_mod == mod_rev;
                let v = format!("c{i}");
                if holds {
                    rev += 1;
                    (value, mod_rev) = (Some(v.clone()), rev);
                }
                r.op = OpKind::Cas;
                r.value = Some(v);
                r.expect_revision = Some(seen_mod);
                r.output = Some(Output {
                    succeeded: Some(holds),
                    revision: Some(rev),
                    ..Default::default()
                });
            }
        }
        h.push(r);
    }
    h
}

/// Property, with single mutations: every history an etcd register produces passes (no
/// false alarm, the workload's cas on a revision a serializable read showed included), and
/// each single mutation that no register could produce — a successful cas on a revision
/// the key never had, a linearizable get of a value never written — fails.
#[test]
fn register_histories_pass_and_every_single_mutation_fails() {
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(22);
    let mut mutations = 0;
    for _ in 0..500 {
        let h = etcd_register_history(&mut rng);
        let c = check(&h, Model::Etcd, World::Open, SECOND);
        assert_eq!(c.verdict, Linearizability::Linearizable, "{h:#?}\n{c:?}");
        for i in 0..h.len() {
            let mut m = h.clone();
            let r = &mut m[i];
            let succeeded = r.output.as_ref().and_then(|o| o.succeeded) == Some(true);
            match r.op {
                OpKind::Cas if succeeded => r.expect_revision = Some(1_000_000),
                OpKind::Get if !r.serializable => {
                    r.output.as_mut().unwrap().value = Some("never written".into())
                }
                _ => continue,
            }
            mutations += 1;
            let c = check(&m, Model::Etcd, World::Open, SECOND);
            assert_eq!(c.verdict, Linearizability::NotLinearizable, "{m:#?}");
        }
    }
    assert!(
        mutations > 500,
        "the mutations must be exercised: {mutations}"
    );
}
