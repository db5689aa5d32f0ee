//! The recovery procedures, sequencing Docker and etcd work end to end. [`recover`] holds
//! THE restore path; every command and every drill step that restores goes through it.

pub mod quorum_table;
pub mod recover;
pub mod restore_drill;
pub mod verify_snapshot;
