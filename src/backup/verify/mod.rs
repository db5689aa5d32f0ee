//! Verifying a restored cluster: every key acknowledged up to the snapshot revision is back
//! byte for byte, nothing else is there, all members hold identical data (HashKV), the
//! member set is the restored one under a new cluster ID, writes work again, and an
//! operator's `etcdctl get --prefix --keys-only` inside a member agrees.
//! Each check is independent and reports its own pass/fail with a reason.

mod data;
mod etcdctl;
mod hashkv;
mod keyspace;
mod membership;
mod write;

use std::time::Instant;

pub use self::hashkv::verify_hashkv;
pub use self::keyspace::{KEYSPACE_PAGE_BYTES, Listing, check_keys_readable, presence};
pub use self::membership::{ClusterIdRule, ListedMember, judge_membership};
pub use self::write::check_writable;
use crate::backup::dataset::{AckLog, Dataset};
use crate::backup::ledger::{HARNESS_PREFIX, HarnessView};
use crate::cluster::Cluster;
pub use crate::model::report::Check;

fn check(name: &str, passed: bool, detail: impl Into<String>) -> Check {
    Check::new(name, passed, detail)
}

/// What the restored cluster should hold.
pub struct Expected<'a> {
    pub dataset: &'a Dataset,
    pub acks: &'a AckLog,
    /// The snapshot's revision: writes acknowledged at or below it must be back, later
    /// ones are lost (that loss is the RPO).
    pub snapshot_revision: i64,
    /// The cluster ID before the disaster; a restored cluster must have a new one, a
    /// cluster that was not restored must keep it.
    pub old_cluster_id: u64,
    /// Whether the cluster was restored from a snapshot since `old_cluster_id` was read.
    pub restored: bool,
    /// The member names the restore was asked for.
    pub members: Vec<String>,
    /// The harness's own writes: the only keys allowed outside the dataset's prefix.
    pub harness: &'a HarnessView,
}

#[derive(Debug, Clone)]
pub struct Verification {
    pub checks: Vec<Check>,
    pub keys_verified: usize,
}

impl Verification {
    pub fn passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.passed)
    }
}

/// Runs a check and records how long it took.
pub(super) async fn timed<F: std::future::Future<Output = Check>>(f: F) -> Check {
    let t0 = Instant::now();
    let mut c = f.await;
    c.seconds = Some(t0.elapsed().as_secs_f64());
    c
}

pub async fn verify(cluster: &Cluster, exp: &Expected<'_>) -> Verification {
    verify_with(cluster, exp, &Options::default()).await
}

/// How the checks read; the defaults suit any size up to a few gigabytes.
#[derive(Debug, Clone)]
pub struct Options {
    /// Keys per `etcdctl get` call in the etcdctl check (about 100 bytes of JSON each).
    pub etcdctl_page: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            etcdctl_page: 100_000,
        }
    }
}

pub async fn verify_with(cluster: &Cluster, exp: &Expected<'_>, opts: &Options) -> Verification {
    // The five checks joined make a large future; on the heap, a caller awaiting several
    // verifications (tests, drills with many steps) keeps a small stack.
    Box::pin(run_checks(cluster, exp, opts)).await
}

async fn run_checks(cluster: &Cluster, exp: &Expected<'_>, opts: &Options) -> Verification {
    let wanted = data::Wanted::new(exp);
    let bounds = data::range_bounds(exp.dataset, &wanted);
    // Independent checks, run at once: the new write lands outside /registry/ and HashKV
    // compares all members at one fixed revision, so they cannot disturb each other. The
    // full scans (data, etcdctl) go to different members, so two etcd processes share the
    // work.
    let mut keys_verified = 0;
    // The new-write check's write lands while the data check reads: the data check is told
    // of it, so it is neither unexpected nor missed.
    let fresh = (
        format!("{HARNESS_PREFIX}after-restore"),
        format!("{}{}", write::NEW_WRITE_VALUES, rand::random::<u32>()),
    );
    let (data, hashkv, membership, new_write, etcdctl) = tokio::join!(
        timed(async {
            let (c, n) = data::check_data(
                cluster,
                exp,
                &wanted,
                &bounds,
                (&fresh.0, write::NEW_WRITE_VALUES),
            )
            .await;
            keys_verified = n;
            c
        }),
        timed(hashkv::check_hashkv(cluster)),
        timed(membership::check_membership(cluster, exp)),
        timed(write::check_new_write(cluster, &fresh.0, &fresh.1)),
        timed(etcdctl::check_etcdctl(
            cluster,
            exp.dataset,
            &wanted,
            &bounds,
            opts.etcdctl_page
        )),
    );
    let checks = vec![data, hashkv, membership, new_write, etcdctl];
    Verification {
        checks,
        keys_verified,
    }
}
