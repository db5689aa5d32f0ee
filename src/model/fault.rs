//! Faults as data: what can be injected, at whom, and the record of what was.

use super::Invalid;

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

impl FaultKind {
    pub const ALL: [FaultKind; 9] = [
        FaultKind::Permanent,
        FaultKind::Kill,
        FaultKind::Stop,
        FaultKind::Restart,
        FaultKind::Pause,
        FaultKind::Unpause,
        FaultKind::Partition,
        FaultKind::Heal,
        FaultKind::WipeData,
    ];

    /// The name scenarios, the CLI and reports use (serde's kebab-case spelling).
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Permanent => "permanent",
            FaultKind::Kill => "kill",
            FaultKind::Stop => "stop",
            FaultKind::Restart => "restart",
            FaultKind::Pause => "pause",
            FaultKind::Unpause => "unpause",
            FaultKind::Partition => "partition",
            FaultKind::Heal => "heal",
            FaultKind::WipeData => "wipe-data",
        }
    }
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for FaultKind {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        Self::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            Invalid::Input(format!(
                "unknown fault {s:?}; one of: permanent, kill, stop, restart, pause, unpause, partition, heal, wipe-data"
            ))
        })
    }
}

/// A member's condition as the harness left it. Only `Running` members are expected to
/// answer; `Partitioned` ones answer clients but cannot reach (some) peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MemberState {
    Running,
    Partitioned,
    Paused,
    /// SIGKILLed or SIGTERMed; container and data kept.
    Down,
    /// Container and data volume destroyed (permanent failure).
    Gone,
}

impl MemberState {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Running => "running",
            MemberState::Partitioned => "partitioned",
            MemberState::Paused => "paused",
            MemberState::Down => "down",
            MemberState::Gone => "gone",
        }
    }

    /// Whether the member's process is up and reachable from the harness.
    pub fn answers_clients(self) -> bool {
        matches!(self, MemberState::Running | MemberState::Partitioned)
    }
}

impl FaultKind {
    /// Whether a fault of this kind may hit a member in `state`: faults that bring members
    /// back apply to members that are down; the rest to live ones. Victim choice at run time
    /// and `validate`'s walk of the steps both ask this, so they cannot disagree.
    pub fn may_hit(self, state: MemberState) -> bool {
        match self {
            FaultKind::Restart => state != MemberState::Gone,
            FaultKind::Unpause => state == MemberState::Paused,
            FaultKind::Heal => state == MemberState::Partitioned,
            FaultKind::WipeData => state == MemberState::Down,
            _ => state.answers_clients(),
        }
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
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        let bad = || {
            Invalid::Input(format!(
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Leader,
    Follower,
    /// Not reachable, or no leader known at the time.
    Unknown,
    /// Not running (killed or stopped) when the fault was applied: it led nothing.
    Down,
}

/// Who did something to a member: the scenario (a fault step), or the harness itself (a
/// restore stopping the survivors, a member replaced) — a report must not mix them up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Actor {
    #[default]
    Scenario,
    Harness,
}

/// One injection, stamped when it took effect (the SIGKILL returned, the freeze, the first
/// DROP rule), not when the step around it ended.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FaultEvent {
    /// Milliseconds since the Unix epoch.
    pub at_ms: u128,
    /// The same moment on the monotonic clock the steps and the history use.
    #[serde(skip)]
    pub at: std::time::Instant,
    pub member: String,
    pub fault: FaultKind,
    pub role: Role,
    /// The step that did it (numbered from 1), when a drill step did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    pub by: Actor,
}

/// What the harness does to a member that is no fault: after a permanent loss's SIGKILL,
/// deleting the container and its data volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HarnessAction {
    RemoveContainerAndVolume,
}

/// One harness action: when it started, how long it took.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ActionEvent {
    #[serde(skip)]
    pub at: std::time::Instant,
    pub seconds: f64,
    pub member: String,
    pub action: HarnessAction,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Unknown => "unknown",
            Role::Down => "down",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_names_round_trip_and_match_serde() {
        for k in FaultKind::ALL {
            assert_eq!(k.as_str().parse::<FaultKind>().unwrap(), k);
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        assert!("meteor".parse::<FaultKind>().is_err());
    }

    #[test]
    fn targets_parse_and_bad_ones_are_refused() {
        assert_eq!("member:2".parse::<Target>().unwrap(), Target::Member(2));
        assert_eq!("count:3".parse::<Target>().unwrap(), Target::Count(3));
        assert_eq!("leader".parse::<Target>().unwrap(), Target::Leader);
        for bad in ["member:x", "count:", "the-big-one"] {
            assert!(bad.parse::<Target>().is_err(), "{bad}");
        }
    }
}
