//! etcd-drill: chaos and disaster-recovery drills against real etcd clusters in Docker.
//!
//! Modules, one concern each:
//! - [`error`]: the library's errors, each saying what went wrong and what to do;
//! - [`image`]: building the local etcd image offline;
//! - [`cluster`]: starting, probing and tearing down clusters of 1–9 members;
//! - [`tls`]: per-cluster certificates;
//! - [`docker`]: connection, labels, cleanup, one-shot containers;
//! - [`fault`]: failure injection (permanent loss, kill, stop, pause, partition, …);
//! - [`quorum`]: the fault-tolerance table, checked by observation;
//! - [`dataset`]: the deterministic dataset and the log of acknowledged writes;
//! - [`ledger`]: every acknowledged write across restores, and what must therefore be present;
//! - [`snapshot`]: saving, checking, staging and restoring snapshot files;
//! - [`verify`]: the checks that say whether a restored cluster holds what it should;
//! - [`recovery`]: the restore drill, member replacement and `verify-snapshot`;
//! - [`scenario`]: scenario files, parsed strictly;
//! - [`drill`]: running scenarios step by step;
//! - [`report`]: the drill report's data model; [`render`]: the files written from it;
//! - [`cli`]: the command line (the binary only parses and maps errors to exit codes).

pub mod cli;
pub mod cluster;
pub mod dataset;
pub mod docker;
pub mod drill;
pub mod error;
pub mod fault;
pub mod image;
pub mod ledger;
pub mod quorum;
pub mod recovery;
pub mod render;
pub mod report;
pub mod scenario;
pub mod snapshot;
pub mod tls;
pub mod verify;

pub use error::{Error, Result};
