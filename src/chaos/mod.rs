//! Faults and what the cluster looks like under them: injection (victims chosen from a
//! seed, then applied) and availability observation.

pub mod fault;
pub mod observe;
pub mod victims;
mod watcher;
pub mod workload;
