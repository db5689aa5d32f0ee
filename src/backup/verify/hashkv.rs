//! HashKV: every member holds identical data at one revision.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use super::{Check, Verification, check, timed};
use crate::cluster::{Cluster, Member};

/// Only the HashKV agreement check (for snapshots whose content is not known).
pub async fn verify_hashkv(cluster: &Cluster) -> Verification {
    Verification {
        checks: vec![timed(check_hashkv(cluster)).await],
        keys_verified: 0,
    }
}

/// All members must report the same KV hash at the same revision.
pub(super) async fn check_hashkv(cluster: &Cluster) -> Check {
    let name = "hashkv";
    let Some(first) = cluster.members.first() else {
        return check(name, false, "no members");
    };
    let rev = match cluster.client(first).await {
        Ok(mut c) => match c.get("etcd-drill/hashkv-probe", None).await {
            Ok(r) => r.header().map(|h| h.revision()).unwrap_or(0),
            Err(e) => return check(name, false, format!("{}: {e}", first.name)),
        },
        Err(e) => return check(name, false, e.to_string()),
    };
    let hashes: BTreeMap<String, String> = futures_util::future::join_all(
        cluster
            .members
            .iter()
            .map(|m| async move { (m.name.clone(), member_hash(cluster, m, rev).await) }),
    )
    .await
    .into_iter()
    .collect();
    let distinct: BTreeSet<&String> = hashes.values().collect();
    let ok = distinct.len() == 1 && !distinct.iter().any(|h| h.starts_with("error"));
    check(name, ok, format!("at revision {rev}: {hashes:?}"))
}

/// Long enough for HashKV over a few gigabytes on a busy 2-core machine.
const HASHKV_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// A member's KV hash at `rev`, as hex, or "error: …". A follower that has not applied
/// `rev` yet ("future revision") is given a moment to catch up: lagging is not diverging.
async fn member_hash(cluster: &Cluster, m: &Member, rev: i64) -> String {
    let t0 = Instant::now();
    loop {
        let h = match cluster.patient_client(m, HASHKV_TIMEOUT).await {
            Ok(mut c) => c
                .hash_kv(rev)
                .await
                .map(|r| format!("{:08x}", r.hash()))
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match h {
            Err(e)
                if e.contains("future revision")
                    && t0.elapsed() < std::time::Duration::from_secs(5) =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            other => return other.unwrap_or_else(|e| format!("error: {e}")),
        }
    }
}
