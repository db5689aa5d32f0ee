//! Verifying a restored cluster: every key acknowledged up to the snapshot revision is back
//! byte for byte, nothing else is there, all members hold identical data (HashKV), the
//! member set is the restored one under a new cluster ID, writes work again, and an
//! operator's `etcdctl get --prefix --keys-only` inside a member agrees.
//! Each check is independent and reports its own pass/fail with a reason.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use etcd_client::GetOptions;

use crate::cluster::Cluster;
use crate::dataset::{AckLog, Dataset, PREFIX};
use crate::tls::CONTAINER_PKI_DIR;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

fn check(name: &str, passed: bool, detail: impl Into<String>) -> Check {
    Check {
        name: name.to_string(),
        passed,
        detail: detail.into(),
    }
}

/// What the restored cluster should hold.
pub struct Expected<'a> {
    pub dataset: &'a Dataset,
    pub acks: &'a AckLog,
    /// The snapshot's revision: writes acknowledged at or below it must be back, later
    /// ones are lost (that loss is the RPO).
    pub snapshot_revision: i64,
    /// The cluster ID before the disaster; the restored cluster must have a new one.
    pub old_cluster_id: u64,
    /// The member names the restore was asked for.
    pub members: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Verification {
    pub checks: Vec<Check>,
    pub keys_verified: usize,
    /// Acknowledged writes the restore cannot have (after the snapshot revision).
    pub rpo_writes: usize,
    /// Revisions between the snapshot and the last acknowledged write.
    pub rpo_revisions: i64,
    pub seconds: f64,
}

impl Verification {
    pub fn passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.passed)
    }
}

const PAGE: i64 = 1000;

pub async fn verify(cluster: &Cluster, exp: &Expected<'_>) -> Verification {
    let t0 = Instant::now();
    // key → dataset index, for writes the snapshot must contain.
    let mut want: BTreeMap<String, u32> = BTreeMap::new();
    let mut lost = BTreeSet::new();
    for a in &exp.acks.acks {
        let key = exp.dataset.key(a.index as usize);
        if a.revision <= exp.snapshot_revision {
            want.insert(key, a.index);
        } else {
            lost.insert(key);
        }
    }
    let mut checks = vec![];
    let (data, keys_verified) = check_data(cluster, exp, &want, &lost).await;
    checks.push(data);
    checks.push(check_hashkv(cluster).await);
    checks.push(check_membership(cluster, exp).await);
    checks.push(check_new_write(cluster).await);
    checks.push(check_etcdctl(cluster, &want).await);
    Verification {
        checks,
        keys_verified,
        rpo_writes: lost.len(),
        rpo_revisions: (exp.acks.max_revision() - exp.snapshot_revision).max(0),
        seconds: t0.elapsed().as_secs_f64(),
    }
}

/// Pages through `/registry/` on the first member (linearizable reads) and compares with
/// what was acknowledged, regenerating each expected value from the dataset's seed.
async fn check_data(
    cluster: &Cluster,
    exp: &Expected<'_>,
    want: &BTreeMap<String, u32>,
    lost: &BTreeSet<String>,
) -> (Check, usize) {
    let name = "data";
    let Some(m) = cluster.members.first() else {
        return (check(name, false, "no members"), 0);
    };
    let mut c = match cluster.client(m).await {
        Ok(c) => c,
        Err(e) => return (check(name, false, e.to_string()), 0),
    };
    let end = prefix_end(PREFIX);
    let mut from = PREFIX.as_bytes().to_vec();
    let (mut matched, mut wrong, mut unexpected, mut resurrected) =
        (0usize, vec![], vec![], vec![]);
    let mut seen = 0usize;
    loop {
        let opts = GetOptions::new().with_range(end.clone()).with_limit(PAGE);
        let resp = match c.get(from.clone(), Some(opts)).await {
            Ok(r) => r,
            Err(e) => {
                return (
                    check(
                        name,
                        false,
                        format!("reading {PREFIX} through {}: {e}", m.name),
                    ),
                    matched,
                );
            }
        };
        for kv in resp.kvs() {
            seen += 1;
            let key = String::from_utf8_lossy(kv.key()).into_owned();
            match want.get(&key) {
                Some(&i) if kv.value() == exp.dataset.value(i as usize).as_slice() => matched += 1,
                Some(_) => wrong.push(key),
                None if lost.contains(&key) => resurrected.push(key),
                None => unexpected.push(key),
            }
        }
        match resp.kvs().last() {
            Some(last) if resp.more() => {
                from = last.key().to_vec();
                from.push(0);
            }
            _ => break,
        }
    }
    let missing = want.len() - matched - wrong.len();
    let ok = missing == 0 && wrong.is_empty() && unexpected.is_empty() && resurrected.is_empty();
    let first = |v: &Vec<String>| v.first().cloned().unwrap_or_default();
    let detail = if ok {
        format!("{matched} keys present with byte-equal values; nothing else under {PREFIX}")
    } else {
        format!(
            "{matched}/{} keys match; {missing} missing, {} with wrong values (e.g. {}), {} unexpected (e.g. {}), {} written after the snapshot yet present (e.g. {}); {seen} keys read",
            want.len(),
            wrong.len(),
            first(&wrong),
            unexpected.len(),
            first(&unexpected),
            resurrected.len(),
            first(&resurrected)
        )
    };
    (check(name, ok, detail), matched)
}

fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    *end.last_mut().expect("non-empty prefix") += 1;
    end
}

/// Only the HashKV agreement check (for snapshots whose content is not known).
pub async fn verify_hashkv(cluster: &Cluster) -> Verification {
    let t0 = Instant::now();
    Verification {
        checks: vec![check_hashkv(cluster).await],
        keys_verified: 0,
        rpo_writes: 0,
        rpo_revisions: 0,
        seconds: t0.elapsed().as_secs_f64(),
    }
}

/// All members must report the same KV hash at the same revision.
async fn check_hashkv(cluster: &Cluster) -> Check {
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
    let mut hashes = BTreeMap::new();
    for m in &cluster.members {
        let h = match cluster.client(m).await {
            Ok(mut c) => c
                .hash_kv(rev)
                .await
                .map(|r| format!("{:08x}", r.hash()))
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        hashes.insert(m.name.clone(), h.unwrap_or_else(|e| format!("error: {e}")));
    }
    let distinct: BTreeSet<&String> = hashes.values().collect();
    let ok = distinct.len() == 1 && !distinct.iter().any(|h| h.starts_with("error"));
    check(name, ok, format!("at revision {rev}: {hashes:?}"))
}

/// The member list is exactly the restored set, all started, under a new cluster ID.
async fn check_membership(cluster: &Cluster, exp: &Expected<'_>) -> Check {
    let name = "membership";
    let Some(first) = cluster.members.first() else {
        return check(name, false, "no members");
    };
    let resp = match cluster.client(first).await {
        Ok(mut c) => match c.member_list().await {
            Ok(r) => r,
            Err(e) => return check(name, false, e.to_string()),
        },
        Err(e) => return check(name, false, e.to_string()),
    };
    let cluster_id = resp.header().map(|h| h.cluster_id()).unwrap_or(0);
    let names: BTreeSet<String> = resp
        .members()
        .iter()
        .map(|m| m.name().to_string())
        .collect();
    let want: BTreeSet<String> = exp.members.iter().cloned().collect();
    let ok = names == want && cluster_id != exp.old_cluster_id && cluster_id != 0;
    check(
        name,
        ok,
        format!(
            "members {names:?} (want {want:?}); cluster ID {cluster_id:x} (before the disaster {:x})",
            exp.old_cluster_id
        ),
    )
}

/// A new write through one member reads back from every member.
async fn check_new_write(cluster: &Cluster) -> Check {
    let name = "new-write";
    let key = "/etcd-drill/after-restore";
    let value = format!("written-{}", rand::random::<u32>());
    let Some(first) = cluster.members.first() else {
        return check(name, false, "no members");
    };
    match cluster.client(first).await {
        Ok(mut c) => {
            if let Err(e) = c.put(key, value.as_str(), None).await {
                return check(name, false, format!("put through {}: {e}", first.name));
            }
        }
        Err(e) => return check(name, false, e.to_string()),
    }
    let mut bad = vec![];
    for m in &cluster.members {
        let got = match cluster.client(m).await {
            Ok(mut c) => c
                .get(key, None)
                .await
                .ok()
                .and_then(|r| r.kvs().first().map(|kv| kv.value().to_vec())),
            Err(_) => None,
        };
        if got.as_deref() != Some(value.as_bytes()) {
            bad.push(m.name.clone());
        }
    }
    let detail = if bad.is_empty() {
        "written and read back through every member".to_string()
    } else {
        format!("not read back through {bad:?}")
    };
    check(name, bad.is_empty(), detail)
}

/// As the seed does with the official client: `etcdctl get /registry/ --prefix --keys-only`
/// inside a member container returns exactly the expected keys.
async fn check_etcdctl(cluster: &Cluster, want: &BTreeMap<String, u32>) -> Check {
    let name = "etcdctl-keys";
    let Some(m) = cluster.members.first() else {
        return check(name, false, "no members");
    };
    let mut cmd = vec![
        format!("{}/etcdctl", crate::image::BIN_DIR),
        format!(
            "--endpoints={}://127.0.0.1:{}",
            cluster.scheme(),
            crate::cluster::CLIENT_PORT
        ),
    ];
    if cluster.pki.is_some() {
        cmd.extend([
            format!("--cacert={CONTAINER_PKI_DIR}/ca.pem"),
            format!("--cert={CONTAINER_PKI_DIR}/client.pem"),
            format!("--key={CONTAINER_PKI_DIR}/client-key.pem"),
        ]);
    }
    cmd.extend([
        "get".into(),
        PREFIX.into(),
        "--prefix".into(),
        "--keys-only".into(),
    ]);
    let out = match crate::docker::exec(
        cluster.docker(),
        &m.container,
        cmd,
        vec!["ETCDCTL_API=3".into()],
    )
    .await
    {
        Ok(o) => o,
        Err(e) => return check(name, false, e.to_string()),
    };
    if out.exit_code != 0 {
        return check(
            name,
            false,
            format!("etcdctl exited {}: {}", out.exit_code, out.stderr.trim()),
        );
    }
    let keys: BTreeSet<&str> = out.stdout.lines().filter(|l| !l.is_empty()).collect();
    let want_keys: BTreeSet<&str> = want.keys().map(String::as_str).collect();
    let ok = keys == want_keys;
    check(
        name,
        ok,
        format!(
            "etcdctl in {} listed {} keys, {} expected{}",
            m.container,
            keys.len(),
            want_keys.len(),
            if ok { "" } else { " (sets differ)" }
        ),
    )
}
