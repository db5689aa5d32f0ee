//! The data model: scenarios as parsed, reports as written, observations, the fault-tolerance
//! table, and the comparison of two reports. Pure data and pure functions; nothing here
//! imports the rest of the crate, so renderers and decisions are tested without Docker.

pub mod across;
pub mod backup;
pub mod compare;
pub mod etcd;
pub mod expect;
pub mod fault;
pub mod history;
pub mod linearize;
pub mod observation;
pub mod reads;
pub mod report;
pub mod revision;
pub mod scenario;
pub mod source;
pub mod table;
pub mod timeline;
mod validate;
mod walk;
pub mod watch;

/// Input the model refuses. `crate::Error` takes these over unchanged (`From`), so a
/// message reads the same whichever layer found the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("invalid input: {0}")]
    Input(String),
    #[error(
        "invalid cluster size {size}: a cluster has 1 to 9 members (etcd's fault-tolerance table covers 1..=9)"
    )]
    Size { size: usize },
}
