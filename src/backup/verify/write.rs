//! Writes work again: a new key written and read back.

use super::{Check, check};
use crate::cluster::Cluster;

/// What every value the new-write check writes starts with.
pub(super) const NEW_WRITE_VALUES: &str = "written-";

/// A new write through one member reads back from every member.
pub(super) async fn check_new_write(cluster: &Cluster, key: &str, value: &str) -> Check {
    let name = "new-write";
    let Some(first) = cluster.members.first() else {
        return check(name, false, "no members");
    };
    match cluster.client(first).await {
        Ok(mut c) => {
            if let Err(e) = c.put(key, value, None).await {
                return check(name, false, format!("put through {}: {e}", first.name));
            }
        }
        Err(e) => return check(name, false, e.to_string()),
    }
    // Why each member failed, so a failure says whether it was an error or a wrong value.
    let mut bad = vec![];
    for m in &cluster.members {
        let got = match cluster.client(m).await {
            Ok(mut c) => c.get(key, None).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match got {
            Ok(r) => match r.kvs().first() {
                Some(kv) if kv.value() == value.as_bytes() => {}
                Some(kv) => bad.push(format!(
                    "{}: read {:?}",
                    m.name,
                    String::from_utf8_lossy(kv.value())
                )),
                None => bad.push(format!("{}: key absent", m.name)),
            },
            Err(e) => bad.push(format!("{}: {e}", m.name)),
        }
    }
    let detail = if bad.is_empty() {
        "written and read back through every member".to_string()
    } else {
        format!("not read back: {}", bad.join("; "))
    };
    check(name, bad.is_empty(), detail)
}

/// The restored cluster takes a write under the quota it runs with. A snapshot larger than
/// `--quota-backend-bytes` restores, but etcd then refuses every write (NOSPACE): that
/// must fail loudly, not pass because nothing tried to write.
pub async fn check_writable(cluster: &Cluster) -> Check {
    let t0 = std::time::Instant::now();
    let name = "writable";
    let Some(first) = cluster.members.first() else {
        return check(name, false, "no members");
    };
    let key = format!(
        "{}verify-snapshot/writable",
        crate::backup::ledger::HARNESS_PREFIX
    );
    let put = match cluster.client(first).await {
        Ok(mut c) => c.put(key, "ok", None).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let mut c = match put {
        Ok(_) => check(
            name,
            true,
            format!("a write was acknowledged through {}", first.name),
        ),
        Err(e) if e.contains("database space exceeded") => check(
            name,
            false,
            format!(
                "etcd raised NOSPACE and refuses every write ({e}): the snapshot does not fit the backend quota; raise --quota-backend-bytes"
            ),
        ),
        Err(e) => check(name, false, format!("no write through {}: {e}", first.name)),
    };
    c.seconds = Some(t0.elapsed().as_secs_f64());
    c
}
