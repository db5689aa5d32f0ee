//! Failure injection against real members: permanent loss (container and data destroyed),
//! kill, stop, restart, pause/unpause, network partitions and data wipes. Targets are
//! resolved against the live cluster (who is leader right now) and, where random, from a
//! seeded RNG so a run can be replayed with `--seed`.

use std::collections::BTreeSet;
use std::time::{Instant, SystemTime};

use bollard::query_parameters::{KillContainerOptionsBuilder, StopContainerOptionsBuilder};
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::victims::choose_victims;
use crate::cluster::{Cluster, MemberState};
use crate::docker::netns::{self, CHAIN};
use crate::error::{Error, Result};
use crate::model::fault::{ActionEvent, Actor, FaultEvent, FaultKind, HarnessAction, Role, Target};

/// Injects faults into one cluster and keeps the record of what it did.
pub struct Injector {
    pub seed: u64,
    rng: StdRng,
    pub events: Vec<FaultEvent>,
    /// The harness's own actions around faults (a lost member's container and volume
    /// deleted after its SIGKILL).
    pub actions: Vec<ActionEvent>,
    /// Who the next injections are by, and for which step: set by whoever drives it.
    pub actor: Actor,
    pub step: Option<usize>,
}

impl Injector {
    pub fn new(seed: u64) -> Self {
        Injector {
            seed,
            rng: StdRng::seed_from_u64(seed),
            events: vec![],
            actions: vec![],
            actor: Actor::Scenario,
            step: None,
        }
    }

    /// A fresh seed for runs that did not ask for one; printed so the run can be replayed.
    pub fn random_seed() -> u64 {
        rand::random()
    }

    /// Resolves a target to member names, in a deterministic order given the cluster's state
    /// and the seed. Only `leader` and `follower` need to ask the cluster anything.
    pub async fn resolve(
        &mut self,
        cluster: &Cluster,
        target: &Target,
        kind: FaultKind,
    ) -> Result<Vec<String>> {
        let leader = match target {
            Target::Leader | Target::Follower => Some(cluster.leader().await.ok_or_else(|| {
                Error::Failed(
                    "no member reports a leader, so `leader`/`follower` cannot be resolved".into(),
                )
            })?),
            _ => None,
        };
        choose_victims(
            &cluster.members,
            leader.as_deref(),
            target,
            kind,
            &mut self.rng,
        )
    }

    /// Undoes every transient fault: unpauses paused members, heals partitioned ones and
    /// restarts killed or stopped ones. Returns the members it touched (none: nothing to heal).
    pub async fn heal_all(&mut self, cluster: &mut Cluster) -> Result<Vec<String>> {
        let mut healed = vec![];
        for m in cluster.members.clone() {
            let fault = match m.state {
                MemberState::Paused => FaultKind::Unpause,
                MemberState::Partitioned => FaultKind::Heal,
                MemberState::Down => FaultKind::Restart,
                _ => continue,
            };
            self.inject(cluster, fault, &Target::Member(m.index))
                .await?;
            healed.push(m.name.clone());
        }
        Ok(healed)
    }

    /// Resolves the target and applies the fault to each member it names.
    pub async fn inject(
        &mut self,
        cluster: &mut Cluster,
        kind: FaultKind,
        target: &Target,
    ) -> Result<Vec<String>> {
        let victims = self.resolve(cluster, target, kind).await?;
        let roles = roles(cluster).await;
        if kind == FaultKind::Partition {
            for (v, at) in partition(cluster, &victims).await? {
                self.record(&v, kind, roles(&v), at);
            }
            return Ok(victims);
        }
        for v in &victims {
            let at = apply(cluster, v, kind).await?;
            self.record(v, kind, roles(v), at);
        }
        if kind == FaultKind::Permanent {
            // Every victim is dead (SIGKILL) before any is deleted: deleting takes a
            // while, and the third of three losses must not be stamped seconds late.
            for v in &victims {
                let m = cluster.member(v).expect("resolved targets exist").clone();
                let at = Instant::now();
                cluster.remove_member_and_data(&m).await?;
                self.actions.push(ActionEvent {
                    at,
                    seconds: at.elapsed().as_secs_f64(),
                    member: v.clone(),
                    action: HarnessAction::RemoveContainerAndVolume,
                    step: self.step,
                });
            }
        }
        Ok(victims)
    }

    /// Stops `names` all at once, as the harness's own action: SIGTERM, then SIGKILL
    /// without a grace period. etcd's graceful stop of a member that still leads first
    /// tries to hand its leadership over and, with no peer able to take it, waits ~7 s for
    /// the transfer to time out; whether it still leads at that moment races check-quorum's
    /// step-down, so identical reruns measured this phase at 4.1 s and 7.3 s (and with a
    /// 1 s grace, 0.2 s or 1.2 s). The restore replaces the survivors' data, so nothing a
    /// graceful stop would keep matters.
    pub async fn stop_all(&mut self, cluster: &mut Cluster, names: &[String]) -> Result<()> {
        let roles = roles(cluster).await;
        let docker = cluster.docker().clone();
        let stops = names.iter().map(|name| {
            let m = cluster
                .member(name)
                .expect("a member of the cluster")
                .clone();
            let docker = docker.clone();
            async move {
                let opts = StopContainerOptionsBuilder::default()
                    .t(SURVIVOR_GRACE_S)
                    .build();
                docker
                    .stop_container(&m.container, Some(opts))
                    .await
                    .map_err(Error::docker(format!("stopping member {}", m.name)))?;
                Ok::<_, Error>((m.name, Instant::now()))
            }
        });
        let stopped = futures_util::future::try_join_all(stops).await?;
        let was = std::mem::replace(&mut self.actor, Actor::Harness);
        for (name, at) in stopped {
            if let Some(m) = cluster.members.iter_mut().find(|m| m.name == name) {
                m.state = MemberState::Down;
            }
            self.record(&name, FaultKind::Stop, roles(&name), at);
        }
        self.actor = was;
        Ok(())
    }

    fn record(&mut self, member: &str, fault: FaultKind, role: Role, at: Instant) {
        // The wall-clock stamp is derived from the monotonic one, so both name one moment.
        let ago = at.elapsed();
        let at_ms = SystemTime::now()
            .checked_sub(ago)
            .unwrap_or_else(SystemTime::now)
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        tracing::info!(member, ?fault, ?role, "fault injected");
        self.events.push(FaultEvent {
            at_ms,
            at,
            member: member.to_string(),
            fault,
            role,
            step: self.step,
            by: self.actor,
        });
    }
}

/// A lookup from member name to its role right now (a member that is not running has
/// none: "restart etcd-1 (was follower)" for a stopped member would be wrong).
async fn roles(cluster: &Cluster) -> impl Fn(&str) -> Role + use<> {
    let leader = cluster.leader().await;
    let down: BTreeSet<String> = cluster
        .members
        .iter()
        .filter(|m| matches!(m.state, MemberState::Down | MemberState::Gone))
        .map(|m| m.name.clone())
        .collect();
    move |name: &str| match &leader {
        _ if down.contains(name) => Role::Down,
        Some(l) if l == name => Role::Leader,
        Some(_) => Role::Follower,
        None => Role::Unknown,
    }
}

/// Applies one fault to one member; returns when it took effect (the moment the signal,
/// freeze or restart returned), for its stamp.
async fn apply(cluster: &mut Cluster, name: &str, kind: FaultKind) -> Result<Instant> {
    let docker = cluster.docker().clone();
    let m = cluster
        .member(name)
        .expect("resolved targets exist")
        .clone();
    let ctx = |what: &str| format!("{what} member {name}");
    let new_state = match kind {
        FaultKind::Permanent | FaultKind::Kill => {
            let opts = KillContainerOptionsBuilder::default()
                .signal("SIGKILL")
                .build();
            let killed = docker.kill_container(&m.container, Some(opts)).await;
            if kind == FaultKind::Permanent {
                // Dead now; its container and volume are deleted by `inject` afterwards,
                // with a forced removal that also ends a member the kill could not reach.
                if let Err(e) = killed {
                    tracing::warn!(member = name, "SIGKILL before removal failed: {e}");
                }
                MemberState::Gone
            } else {
                killed.map_err(Error::docker(ctx("killing")))?;
                MemberState::Down
            }
        }
        FaultKind::Stop => {
            let opts = StopContainerOptionsBuilder::default().t(10).build();
            docker
                .stop_container(&m.container, Some(opts))
                .await
                .map_err(Error::docker(ctx("stopping")))?;
            MemberState::Down
        }
        FaultKind::Restart => {
            if m.state == MemberState::Paused {
                docker
                    .unpause_container(&m.container)
                    .await
                    .map_err(Error::docker(ctx("unpausing")))?;
            }
            docker
                .restart_container(
                    &m.container,
                    None::<bollard::query_parameters::RestartContainerOptions>,
                )
                .await
                .map_err(Error::docker(ctx("restarting")))?;
            MemberState::Running
        }
        FaultKind::Pause => {
            docker
                .pause_container(&m.container)
                .await
                .map_err(Error::docker(ctx("pausing")))?;
            MemberState::Paused
        }
        FaultKind::Unpause => {
            docker
                .unpause_container(&m.container)
                .await
                .map_err(Error::docker(ctx("unpausing")))?;
            MemberState::Running
        }
        FaultKind::Heal => {
            heal(cluster, name).await?;
            MemberState::Running
        }
        FaultKind::WipeData => {
            cluster.wipe_data(&m).await?;
            MemberState::Down
        }
        FaultKind::Partition => unreachable!("partitions are applied to groups"),
    };
    let at = Instant::now();
    if let Some(mm) = cluster.members.iter_mut().find(|x| x.name == name) {
        mm.state = new_state;
    }
    if matches!(kind, FaultKind::Restart | FaultKind::Unpause) {
        // Docker returns once the process runs; etcd listens a moment later. Until then its
        // port proxy resets connections, which the next step would take for a fault.
        let m = cluster.member(name).expect("resolved targets exist");
        cluster.wait_answering(m, RESTART_TIMEOUT).await?;
    }
    Ok(at)
}

/// Seconds a survivor of a disaster gets between SIGTERM and SIGKILL when a restore stops it.
const SURVIVOR_GRACE_S: i32 = 0;

/// How long a restarted or unpaused member may take to answer again (it replays its WAL).
const RESTART_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Cuts `side` off from every other member of the cluster, both ways, on all traffic
/// between member addresses. The harness's client path (through the published port, from
/// the bridge gateway) is untouched, so cut-off members can still be asked questions.
/// Returns when each member was cut off: its first DROP rule in place.
pub async fn partition(cluster: &mut Cluster, side: &[String]) -> Result<Vec<(String, Instant)>> {
    let side_set: BTreeSet<&str> = side.iter().map(String::as_str).collect();
    let mut addrs = std::collections::HashMap::new();
    for m in cluster
        .members
        .iter()
        .filter(|m| m.state != MemberState::Gone && m.state != MemberState::Down)
    {
        addrs.insert(m.name.clone(), cluster.member_net(m).await?);
    }
    let mut cut = vec![];
    for name in side {
        let (pid, _) = addrs.get(name).copied().ok_or_else(|| {
            Error::InvalidInput(format!("cannot partition {name}: it is not running"))
        })?;
        let others: Vec<std::net::Ipv4Addr> = addrs
            .iter()
            .filter(|(n, _)| !side_set.contains(n.as_str()))
            .map(|(_, (_, ip))| *ip)
            .collect();
        let mut script = vec![
            vec!["-N".to_string(), CHAIN.to_string()],
            vec!["-I".into(), "INPUT".into(), "-j".into(), CHAIN.into()],
            vec!["-I".into(), "OUTPUT".into(), "-j".into(), CHAIN.into()],
        ];
        for ip in others {
            script.push(vec![
                "-A".into(),
                CHAIN.into(),
                "-s".into(),
                ip.to_string(),
                "-j".into(),
                "DROP".into(),
            ]);
            script.push(vec![
                "-A".into(),
                CHAIN.into(),
                "-d".into(),
                ip.to_string(),
                "-j".into(),
                "DROP".into(),
            ]);
        }
        let mut first_drop = None;
        for rule in script {
            netns::iptables(pid, &rule, name, rule[0] == "-N").await?;
            if rule[0] == "-A" && first_drop.is_none() {
                first_drop = Some(Instant::now());
            }
        }
        cut.push((name.clone(), first_drop.unwrap_or_else(Instant::now)));
    }
    for m in cluster
        .members
        .iter_mut()
        .filter(|m| side_set.contains(m.name.as_str()))
    {
        m.state = MemberState::Partitioned;
    }
    Ok(cut)
}

/// Removes the partition rules from a member's network namespace.
async fn heal(cluster: &Cluster, name: &str) -> Result<()> {
    let m = cluster.member(name).expect("resolved").clone();
    let (pid, _) = cluster.member_net(&m).await?;
    netns::iptables(pid, &["-F".into(), CHAIN.into()], name, true).await?;
    Ok(())
}
