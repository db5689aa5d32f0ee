//! The data model: scenarios as parsed, reports as written, and the comparison of two
//! reports. Pure data and pure functions; nothing here imports the rest of the crate, so
//! renderers and decisions can be tested without Docker.

pub mod report;
pub mod scenario;
