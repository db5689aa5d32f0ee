//! What a backup is made of and how a restored one is judged: the deterministic dataset,
//! the ledger of acknowledged writes, snapshot files, and the verifier.

pub mod dataset;
pub mod ledger;
pub mod record;
pub mod snapshot;
pub mod source;
pub mod verify;
