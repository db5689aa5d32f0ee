//! What an observation of a live cluster saw: per member, whether it answered, read and
//! saw a leader; overall, whether a write was acknowledged. Data only; `chaos::observe`
//! makes them.

use serde::Serialize;

/// One member's answers during an observation.
#[derive(Debug, Clone, Serialize)]
pub struct MemberProbe {
    pub member: String,
    /// It answered at least one request (success or etcd's own refusal) during the
    /// observation.
    pub answered: bool,
    pub linearizable_read: bool,
    pub serializable_read: bool,
    pub leader: Option<String>,
    /// Why it never answered, when it did not: the last transport error (connection
    /// refused, reset, timed out without ever answering).
    pub unreachable: Option<String>,
}

/// A harness write tried during an observation: its value, and the revision etcd
/// acknowledged it at (none when it was not acknowledged).
#[derive(Debug, Clone, Serialize)]
pub struct ProbeWrite {
    pub value: String,
    pub revision: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Observation {
    /// A linearizable write was acknowledged by some member within the window.
    pub writable: bool,
    /// Which member acknowledged it.
    pub acked_by: Option<String>,
    /// Time from the start of the observation to the first acknowledged write.
    pub first_write_ms: Option<u64>,
    /// Time until some member reported a leader.
    pub leader_seen_ms: Option<u64>,
    pub leader: Option<String>,
    pub members: Vec<MemberProbe>,
    pub elapsed_ms: u64,
    /// How many rounds of writes were tried (at least one).
    pub attempts: u32,
    /// Every write tried, for the ledger.
    #[serde(skip)]
    pub writes: Vec<ProbeWrite>,
}

impl Observation {
    /// Members that served a serializable (local) read.
    pub fn serializable_readers(&self) -> Vec<&str> {
        self.members
            .iter()
            .filter(|m| m.serializable_read)
            .map(|m| m.member.as_str())
            .collect()
    }

    /// Members that answered at all.
    pub fn answering(&self) -> usize {
        self.members.iter().filter(|m| m.answered).count()
    }

    /// The observation itself failed: a member the harness believes is up never answered.
    /// That is not evidence of unavailability — it is a fault of the observation (a stale
    /// port, a member not yet serving) and must be reported as one.
    pub fn error(&self) -> Option<String> {
        let bad: Vec<String> = self
            .members
            .iter()
            .filter(|m| !m.answered)
            .map(|m| {
                format!(
                    "{}: {}",
                    m.member,
                    m.unreachable.as_deref().unwrap_or("no answer")
                )
            })
            .collect();
        (!bad.is_empty()).then(|| {
            format!(
                "the observation could not reach members the harness believes are up, so it proves nothing about availability: {}",
                bad.join("; ")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(name: &str, answered: bool) -> MemberProbe {
        MemberProbe {
            member: name.into(),
            answered,
            linearizable_read: false,
            serializable_read: answered,
            leader: None,
            unreachable: (!answered).then(|| "transport error: connection reset".into()),
        }
    }

    fn observation(members: Vec<MemberProbe>) -> Observation {
        Observation {
            writable: false,
            acked_by: None,
            first_write_ms: None,
            leader_seen_ms: None,
            leader: None,
            members,
            elapsed_ms: 3000,
            attempts: 5,
            writes: vec![],
        }
    }

    #[test]
    fn a_member_that_never_answered_makes_the_observation_an_error_not_a_finding() {
        let good = observation(vec![probe("etcd-1", true), probe("etcd-2", true)]);
        assert_eq!(good.error(), None);
        assert_eq!(good.answering(), 2);
        let bad = observation(vec![probe("etcd-1", true), probe("etcd-2", false)]);
        let e = bad.error().expect("an unreachable member is an error");
        assert!(
            e.contains("etcd-2: transport error: connection reset"),
            "{e}"
        );
        assert_eq!(bad.answering(), 1);
        assert_eq!(bad.serializable_readers(), vec!["etcd-1"]);
    }
}
