//! etcd-drill: chaos and disaster-recovery drills against real etcd clusters in Docker.
//! `ARCHITECTURE.md` is the map; in short, one folder per concern:
//! - [`model`]: pure data (scenarios, reports, comparisons), importing nothing else of the crate;
//! - [`docker`]: the daemon connection, labels and cleanup, one-shot containers;
//! - [`cluster`]: starting, probing, reconfiguring and tearing down clusters of 1–9 members;
//! - [`chaos`]: failure injection and availability observation;
//! - [`backup`]: the dataset, snapshot files and the checks of restored data;
//! - [`procedures`]: the recovery procedures (THE restore path, restore drill, verify-snapshot,
//!   the fault-tolerance table);
//! - [`drill`]: scenarios run step by step, gates and verdicts;
//! - [`render`]: the report files, from the model alone;
//! - [`cli`]: the command line (the binary only parses and maps errors to exit codes).

pub mod backup;
pub mod chaos;
pub mod cli;
pub mod cluster;
pub mod docker;
pub mod drill;
pub mod error;
pub mod model;
pub mod poll;
pub mod procedures;
pub mod render;

pub use error::{Error, Result};
