//! Faults against real clusters, told as stories: fail → observe → repair → check nothing
//! acknowledged was lost.

mod common;

use std::time::{Duration, Instant};

use etcd_drill::chaos::fault::Injector;
use etcd_drill::chaos::observe::{self, ObserveOptions};
use etcd_drill::cluster::Cluster;
use etcd_drill::model::fault::{FaultKind, Role, Target};
use etcd_drill::procedures::quorum_table::{SweepOptions, sweep};
use etcd_drill::render::render_table;

/// Writes `n` keys and returns them: the writes this test has seen acknowledged.
async fn acknowledged_writes(cluster: &Cluster, prefix: &str, n: usize) -> Vec<(String, String)> {
    let mut c = cluster.client(&cluster.members[0]).await.unwrap();
    let mut acked = vec![];
    for i in 0..n {
        let (k, v) = (format!("{prefix}/{i}"), format!("v{i}"));
        c.put(k.as_str(), v.as_str(), None).await.unwrap();
        acked.push((k, v));
    }
    acked
}

/// Every acknowledged write is readable, linearizably, through `member`.
async fn assert_all_readable(cluster: &Cluster, member: &str, acked: &[(String, String)]) {
    let m = cluster.member(member).unwrap();
    let mut c = cluster.client(m).await.unwrap();
    for (k, v) in acked {
        let got = c
            .get(k.as_str(), None)
            .await
            .unwrap_or_else(|e| panic!("read {k} through {member}: {e}"));
        assert_eq!(
            got.kvs().first().map(|kv| kv.value()),
            Some(v.as_bytes()),
            "{k} through {member}"
        );
    }
}

/// Waits until `member` serves `key` = `value` from its own state (it has caught up).
async fn wait_caught_up(cluster: &Cluster, member: &str, key: &str, value: &str) {
    let m = cluster.member(member).unwrap();
    let t0 = Instant::now();
    loop {
        if let Ok(mut c) = cluster.client(m).await {
            let opts = etcd_client::GetOptions::new().with_serializable();
            if let Ok(r) = c.get(key, Some(opts)).await
                && r.kvs().first().map(|kv| kv.value()) == Some(value.as_bytes())
            {
                return;
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "{member} never caught up with {key}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_whole_table_is_observed_cell_by_cell() {
    let docker = common::docker().await;
    let opts = SweepOptions {
        version: "3.5".into(),
        seed: 1,
        run_id: etcd_drill::docker::new_run_id(),
        observe: ObserveOptions::default(),
        parallel: 5,
    };
    let table = sweep(&docker, &(1..=9).collect::<Vec<_>>(), &opts)
        .await
        .unwrap();
    let cells: usize = table.sizes.iter().map(|s| s.cells.len()).sum();
    assert_eq!(cells, 54, "sizes 1..=9 have 2+3+…+10 cells");
    let bad = table.disagreements();
    assert!(
        bad.is_empty(),
        "observation disagrees with the table:\n{}",
        render_table(&table.sizes)
    );
    // Even sizes buy nothing: 2 tolerates what 1 does, 4 what 3 does, and so on.
    for even in [2, 4, 6, 8] {
        let tol = |n: usize| {
            table
                .sizes
                .iter()
                .find(|s| s.size == n)
                .unwrap()
                .cells
                .iter()
                .filter(|c| c.observed_writable)
                .count()
        };
        assert_eq!(
            tol(even),
            tol(even - 1),
            "size {even} tolerates exactly as many failures as {}",
            even - 1
        );
    }
}

async fn leader_loss_then_follower_loss(size: usize) {
    let docker = common::docker().await;
    let mut cluster = common::start(&docker, common::spec(&format!("leader{size}"), size)).await;
    let acked = acknowledged_writes(&cluster, "/registry/before", 20).await;
    let mut inj = Injector::new(3);

    // Losing the leader: the survivors elect a new one and writes resume.
    let old_leader = cluster
        .leader()
        .await
        .expect("a healthy cluster has a leader");
    let hit = inj
        .inject(&mut cluster, FaultKind::Kill, &Target::Leader)
        .await
        .unwrap();
    assert_eq!(hit, vec![old_leader.clone()]);
    assert_eq!(inj.events.last().unwrap().role, Role::Leader);
    let after = observe::observe(
        &cluster,
        "/registry/after-leader-loss",
        ObserveOptions::default(),
    )
    .await;
    assert!(
        after.writable,
        "quorum held, yet no write was acknowledged: {after:?}"
    );
    let new_leader = after.leader.clone().expect("a new leader");
    assert_ne!(new_leader, old_leader);
    assert!(after.leader_seen_ms.is_some() && after.first_write_ms.is_some());

    // Losing a follower: the leader stays, writes go on.
    inj.inject(&mut cluster, FaultKind::Kill, &Target::Follower)
        .await
        .unwrap();
    assert_eq!(inj.events.last().unwrap().role, Role::Follower);
    if size >= 5 {
        let obs = observe::observe(
            &cluster,
            "/registry/after-follower-loss",
            ObserveOptions::default(),
        )
        .await;
        assert!(obs.writable, "{obs:?}");
        assert_eq!(
            obs.leader.as_deref(),
            Some(new_leader.as_str()),
            "a follower loss moved the leadership"
        );
    }

    // Bring both back: everything acknowledged before the faults is still there.
    for m in cluster.members.clone() {
        if m.state == etcd_drill::cluster::MemberState::Down {
            inj.inject(&mut cluster, FaultKind::Restart, &Target::Member(m.index))
                .await
                .unwrap();
        }
    }
    cluster.wait_healthy(Duration::from_secs(30)).await.unwrap();
    for m in cluster.members.clone() {
        assert_all_readable(&cluster, &m.name, &acked).await;
    }
}

#[tokio::test]
async fn leader_loss_and_follower_loss_on_three() {
    leader_loss_then_follower_loss(3).await;
}

#[tokio::test]
async fn leader_loss_and_follower_loss_on_five() {
    leader_loss_then_follower_loss(5).await;
}

#[tokio::test]
async fn pause_and_partition_on_three() {
    let docker = common::docker().await;
    let mut cluster = common::start(&docker, common::spec("netfault", 3)).await;
    let acked = acknowledged_writes(&cluster, "/registry/pre", 10).await;
    let mut inj = Injector::new(9);

    // Pause a follower: the other two keep writing; the frozen one answers nobody.
    let paused = inj
        .inject(&mut cluster, FaultKind::Pause, &Target::Follower)
        .await
        .unwrap()
        .remove(0);
    let obs = observe::observe(
        &cluster,
        "/registry/while-paused",
        ObserveOptions::default(),
    )
    .await;
    assert!(obs.writable);
    assert!(
        !obs.members.iter().any(|p| p.member == paused),
        "paused members are not asked"
    );
    let idx = cluster.member(&paused).unwrap().index;
    inj.inject(&mut cluster, FaultKind::Unpause, &Target::Member(idx))
        .await
        .unwrap();
    wait_caught_up(&cluster, &paused, "/registry/while-paused", "attempt-1").await;

    // Partition a follower: the majority side writes; the cut-off member refuses
    // linearizable reads and writes, but still answers serializable reads.
    let cut = inj
        .inject(&mut cluster, FaultKind::Partition, &Target::Follower)
        .await
        .unwrap()
        .remove(0);
    let obs = observe::observe(&cluster, "/registry/while-cut", ObserveOptions::default()).await;
    assert!(obs.writable);
    assert_ne!(
        obs.acked_by.as_deref(),
        Some(cut.as_str()),
        "the cut-off member acknowledged a write"
    );
    let probe = obs
        .members
        .iter()
        .find(|p| p.member == cut)
        .expect("the cut-off member is still asked");
    assert!(
        probe.answered && !probe.linearizable_read && probe.serializable_read,
        "{probe:?}"
    );
    let mut direct = cluster.client(cluster.member(&cut).unwrap()).await.unwrap();
    let write = tokio::time::timeout(
        Duration::from_secs(3),
        direct.put("/registry/through-cut", "x", None),
    )
    .await;
    assert!(
        !matches!(write, Ok(Ok(_))),
        "a write through the cut-off member was acknowledged"
    );

    // Heal: it catches up and everything acknowledged is readable through it.
    let idx = cluster.member(&cut).unwrap().index;
    inj.inject(&mut cluster, FaultKind::Heal, &Target::Member(idx))
        .await
        .unwrap();
    wait_caught_up(&cluster, &cut, "/registry/while-cut", "attempt-1").await;
    assert_all_readable(&cluster, &cut, &acked).await;
    let events: Vec<FaultKind> = inj.events.iter().map(|e| e.fault).collect();
    assert_eq!(
        events,
        [
            FaultKind::Pause,
            FaultKind::Unpause,
            FaultKind::Partition,
            FaultKind::Heal
        ]
    );
}

#[tokio::test]
async fn the_same_seed_replays_the_same_choices() {
    let docker = common::docker().await;
    let cluster = common::start(&docker, common::spec("seed", 5)).await;
    let targets = [
        Target::Random,
        Target::Count(3),
        Target::Follower,
        Target::Random,
        Target::Count(2),
    ];
    let mut runs = vec![];
    for _ in 0..2 {
        let mut inj = Injector::new(1234);
        let mut picks = vec![];
        for t in &targets {
            picks.push(inj.resolve(&cluster, t, FaultKind::Kill).await.unwrap());
        }
        runs.push(picks);
    }
    assert_eq!(runs[0], runs[1]);
    // And a different seed is not stuck on the same answers everywhere.
    let mut other = Injector::new(99);
    let mut differs = false;
    for (i, t) in targets.iter().enumerate() {
        differs |= other.resolve(&cluster, t, FaultKind::Kill).await.unwrap() != runs[0][i];
    }
    assert!(differs, "seeds 1234 and 99 chose identically five times");
}

/// A member the harness believes is up but cannot reach (here: a stale port) is an error of
/// the observation, never evidence that the cluster is unavailable.
#[tokio::test]
async fn an_unreachable_member_is_an_observation_error_not_unavailability() {
    let docker = common::docker().await;
    let mut cluster = common::start(&docker, common::spec("unreach", 1)).await;
    let o = ObserveOptions {
        window: Duration::from_millis(1000),
        ..Default::default()
    };
    let healthy = observe::observe(&cluster, "/etcd-drill/expect/ok", o).await;
    assert!(healthy.writable && healthy.error().is_none(), "{healthy:?}");

    // Nothing listens on port 9 of loopback: the connection is refused.
    cluster.members[0].client_url = "http://127.0.0.1:9".into();
    let stale = observe::observe(&cluster, "/etcd-drill/expect/stale", o).await;
    assert!(!stale.writable);
    assert!(stale.attempts >= 1);
    assert_eq!(stale.answering(), 0);
    let e = stale
        .error()
        .expect("an unreachable member must make the observation an error");
    assert!(e.contains("etcd-1"), "{e}");
}
