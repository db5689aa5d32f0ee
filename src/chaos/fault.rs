//! Failure injection against real members: permanent loss (container and data destroyed),
//! kill, stop, restart, pause/unpause, network partitions and data wipes. Targets are
//! resolved against the live cluster (who is leader right now) and, where random, from a
//! seeded RNG so a run can be replayed with `--seed`.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::SystemTime;

use bollard::query_parameters::{KillContainerOptionsBuilder, StopContainerOptionsBuilder};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;

use crate::cluster::{Cluster, Member, MemberState};
use crate::error::{Error, Result};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// Lost for good, as after a hardware failure or a lost disk: SIGKILL, then the container
    /// and its data volume are deleted.
    Permanent,
    /// SIGKILL, data kept.
    Kill,
    /// SIGTERM (graceful stop), data kept.
    Stop,
    /// Start a killed/stopped member again, or restart a running one.
    Restart,
    /// Freeze the member's processes (cgroup freezer).
    Pause,
    Unpause,
    /// Cut the member off from its peers; clients on the host still reach it.
    Partition,
    /// Undo partitions.
    Heal,
    /// The seed's `rm -rf /var/lib/etcd` on a stopped member.
    WipeData,
}

impl std::str::FromStr for FaultKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|_| {
            Error::InvalidInput(format!(
                "unknown fault {s:?}; one of: permanent, kill, stop, restart, pause, unpause, partition, heal, wipe-data"
            ))
        })
    }
}

/// Which members a fault hits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Leader,
    /// One follower, chosen with the seeded RNG.
    Follower,
    /// By 1-based index (`member:2` is `etcd-2`).
    Member(usize),
    /// One member chosen with the seeded RNG.
    Random,
    /// k distinct members chosen with the seeded RNG.
    Count(usize),
}

impl std::str::FromStr for Target {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::InvalidInput(format!(
                "invalid target {s:?}; one of: leader, follower, random, member:<i> (1-based), count:<k>"
            ))
        };
        Ok(match s {
            "leader" => Target::Leader,
            "follower" => Target::Follower,
            "random" => Target::Random,
            _ => match s.split_once(':') {
                Some(("member", i)) => Target::Member(i.parse().map_err(|_| bad())?),
                Some(("count", k)) => Target::Count(k.parse().map_err(|_| bad())?),
                _ => return Err(bad()),
            },
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Leader,
    Follower,
    /// Not reachable, or no leader known at the time.
    Unknown,
}

/// One injection, as it happened.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FaultEvent {
    /// Milliseconds since the Unix epoch.
    pub at_ms: u128,
    pub member: String,
    pub fault: FaultKind,
    pub role: Role,
}

/// Injects faults into one cluster and keeps the record of what it did.
pub struct Injector {
    pub seed: u64,
    rng: StdRng,
    pub events: Vec<FaultEvent>,
}

impl Injector {
    pub fn new(seed: u64) -> Self {
        Injector {
            seed,
            rng: StdRng::seed_from_u64(seed),
            events: vec![],
        }
    }

    /// A fresh seed for runs that did not ask for one; printed so the run can be replayed.
    pub fn random_seed() -> u64 {
        rand::random()
    }

    /// Resolves a target to member names, in a deterministic order given the cluster's state
    /// and the seed.
    pub async fn resolve(
        &mut self,
        cluster: &Cluster,
        target: &Target,
        kind: FaultKind,
    ) -> Result<Vec<String>> {
        // Faults that bring members back apply to members that are down; the rest to live ones.
        let eligible: Vec<&Member> = cluster
            .members
            .iter()
            .filter(|m| match kind {
                FaultKind::Restart => m.state != MemberState::Gone,
                FaultKind::Unpause => m.state == MemberState::Paused,
                FaultKind::Heal => m.state == MemberState::Partitioned,
                FaultKind::WipeData => m.state == MemberState::Down,
                _ => m.state.answers_clients(),
            })
            .collect();
        let names = |ms: Vec<&Member>| ms.into_iter().map(|m| m.name.clone()).collect::<Vec<_>>();
        match target {
            Target::Member(i) => {
                let m = cluster
                    .members
                    .iter()
                    .find(|m| m.index == *i)
                    .ok_or_else(|| {
                        Error::InvalidInput(format!(
                            "member:{i} does not exist; members are 1..={}",
                            cluster.members.len()
                        ))
                    })?;
                if !eligible.iter().any(|e| e.name == m.name) {
                    return Err(Error::InvalidInput(format!(
                        "cannot apply {kind:?} to {}: it is {:?}",
                        m.name, m.state
                    )));
                }
                Ok(vec![m.name.clone()])
            }
            Target::Leader | Target::Follower => {
                let leader = cluster.leader().await.ok_or_else(|| {
                    Error::Failed(
                        "no member reports a leader, so `leader`/`follower` cannot be resolved"
                            .into(),
                    )
                })?;
                if *target == Target::Leader {
                    return Ok(vec![leader]);
                }
                let followers: Vec<&Member> =
                    eligible.into_iter().filter(|m| m.name != leader).collect();
                let pick = followers
                    .choose(&mut self.rng)
                    .ok_or_else(|| Error::Failed("there is no follower to target".into()))?;
                Ok(vec![pick.name.clone()])
            }
            Target::Random => {
                let pick = eligible
                    .choose(&mut self.rng)
                    .ok_or_else(|| Error::Failed(format!("no member is eligible for {kind:?}")))?;
                Ok(vec![pick.name.clone()])
            }
            Target::Count(k) => {
                if *k > eligible.len() {
                    return Err(Error::InvalidInput(format!(
                        "count:{k} asks for more members than the {} eligible for {kind:?}",
                        eligible.len()
                    )));
                }
                let mut picked: Vec<&Member> =
                    eligible.sample(&mut self.rng, *k).copied().collect();
                picked.sort_by_key(|m| m.index);
                Ok(names(picked))
            }
        }
    }

    /// Resolves the target and applies the fault to each member it names.
    pub async fn inject(
        &mut self,
        cluster: &mut Cluster,
        kind: FaultKind,
        target: &Target,
    ) -> Result<Vec<String>> {
        let victims = self.resolve(cluster, target, kind).await?;
        if kind == FaultKind::Partition {
            let roles = roles(cluster).await;
            partition(cluster, &victims).await?;
            for v in &victims {
                self.record(v, kind, roles(v));
            }
            return Ok(victims);
        }
        let roles = roles(cluster).await;
        for v in &victims {
            apply(cluster, v, kind).await?;
            self.record(v, kind, roles(v));
        }
        Ok(victims)
    }

    fn record(&mut self, member: &str, fault: FaultKind, role: Role) {
        let at_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        tracing::info!(member, ?fault, ?role, "fault injected");
        self.events.push(FaultEvent {
            at_ms,
            member: member.to_string(),
            fault,
            role,
        });
    }
}

/// A lookup from member name to its role right now.
async fn roles(cluster: &Cluster) -> impl Fn(&str) -> Role + use<> {
    let leader = cluster.leader().await;
    move |name: &str| match &leader {
        Some(l) if l == name => Role::Leader,
        Some(_) => Role::Follower,
        None => Role::Unknown,
    }
}

async fn apply(cluster: &mut Cluster, name: &str, kind: FaultKind) -> Result<()> {
    let docker = cluster.docker().clone();
    let m = cluster
        .member(name)
        .expect("resolved targets exist")
        .clone();
    let ctx = |what: &str| format!("{what} member {name}");
    let new_state = match kind {
        FaultKind::Permanent => {
            cluster.remove_member_and_data(&m).await?;
            MemberState::Gone
        }
        FaultKind::Kill => {
            let opts = KillContainerOptionsBuilder::default()
                .signal("SIGKILL")
                .build();
            docker
                .kill_container(&m.container, Some(opts))
                .await
                .map_err(Error::docker(ctx("killing")))?;
            MemberState::Down
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
    if let Some(mm) = cluster.members.iter_mut().find(|x| x.name == name) {
        mm.state = new_state;
    }
    if kind == FaultKind::Restart {
        // Docker may publish the client port on another host port after a restart.
        cluster.refresh_ports().await?;
    }
    if matches!(kind, FaultKind::Restart | FaultKind::Unpause) {
        // Docker returns once the process runs; etcd listens a moment later. Until then its
        // port proxy resets connections, which the next step would take for a fault.
        let m = cluster.member(name).expect("resolved targets exist");
        cluster.wait_answering(m, RESTART_TIMEOUT).await?;
    }
    Ok(())
}

/// How long a restarted or unpaused member may take to answer again (it replays its WAL).
const RESTART_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Chain name used for the rules, so heal removes exactly what partition added.
const CHAIN: &str = "ETCD_DRILL";

/// Cuts `side` off from every other member of the cluster, both ways, on all traffic
/// between member addresses. The harness's client path (through the published port, from
/// the bridge gateway) is untouched, so cut-off members can still be asked questions.
pub async fn partition(cluster: &mut Cluster, side: &[String]) -> Result<()> {
    let side_set: BTreeSet<&str> = side.iter().map(String::as_str).collect();
    let mut addrs = std::collections::HashMap::new();
    for m in cluster
        .members
        .iter()
        .filter(|m| m.state != MemberState::Gone && m.state != MemberState::Down)
    {
        addrs.insert(m.name.clone(), cluster.member_net(m).await?);
    }
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
        for rule in script {
            netns_iptables(pid, &rule, name, rule[0] == "-N")?;
        }
    }
    for m in cluster
        .members
        .iter_mut()
        .filter(|m| side_set.contains(m.name.as_str()))
    {
        m.state = MemberState::Partitioned;
    }
    Ok(())
}

/// Removes the partition rules from a member's network namespace.
async fn heal(cluster: &Cluster, name: &str) -> Result<()> {
    let m = cluster.member(name).expect("resolved").clone();
    let (pid, _) = cluster.member_net(&m).await?;
    netns_iptables(pid, &["-F".into(), CHAIN.into()], name, true)?;
    Ok(())
}

/// Runs iptables inside a container's network namespace from the host (the image has no
/// tools). `tolerate_exists`: creating a chain that exists, or flushing a missing one, is fine.
fn netns_iptables(pid: i64, rule: &[String], member: &str, tolerate_exists: bool) -> Result<()> {
    let out = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-n", "iptables", "-w"])
        .args(rule)
        .output()
        .map_err(|e| Error::Failed(format!("cannot run nsenter/iptables for {member} ({e}); install util-linux and iptables, run as root")))?;
    if !out.status.success() && !tolerate_exists {
        return Err(Error::Failed(format!(
            "iptables {} in {member}'s network namespace failed: {}",
            rule.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}
