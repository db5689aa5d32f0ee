//! The whole keyspace read page by page: a restored snapshot must be readable end to end.

use std::collections::BTreeMap;
use std::time::Instant;

use super::data::roomy_kv;
use super::{Check, check};
use crate::cluster::{Cluster, Member};
use crate::model::expect::{Presence, top_level_prefix};
use etcd_client::GetOptions;

/// Bytes of keys a page of [`check_keys_readable`] aims at.
pub const KEYSPACE_PAGE_BYTES: usize = 4 << 20;

/// What [`check_keys_readable`] found: its check, the keys listed, at which revision, and
/// how many under each top-level prefix.
#[derive(Debug, Clone)]
pub struct Listing {
    pub check: Check,
    pub keys: usize,
    pub revision: i64,
    pub per_prefix: BTreeMap<String, usize>,
}

/// For a keyspace whose content is not known (`verify-snapshot`): lists every key through
/// the first member, keys only, at one revision, and compares the number listed with etcd's
/// own count at that revision.
pub async fn check_keys_readable(cluster: &Cluster, page_bytes: usize) -> Listing {
    let t0 = Instant::now();
    let name = "keys-readable";
    let Some(m) = cluster.members.first() else {
        return Listing {
            check: check(name, false, "no members"),
            keys: 0,
            revision: 0,
            per_prefix: BTreeMap::new(),
        };
    };
    let mut per_prefix = BTreeMap::new();
    let (mut c, keys, revision) = match list_keyspace(cluster, m, page_bytes, &mut per_prefix).await
    {
        Ok(l) if l.keys as i64 == l.counted => (
            check(
                name,
                true,
                format!(
                    "{} keys read back through {} at revision {} ({} page(s))",
                    l.keys, m.name, l.revision, l.pages
                ),
            ),
            l.keys,
            l.revision,
        ),
        Ok(l) => (
            check(
                name,
                false,
                format!(
                    "{} keys read back through {} at revision {}, but etcd counts {} there",
                    l.keys, m.name, l.revision, l.counted
                ),
            ),
            l.keys,
            l.revision,
        ),
        Err(e) => (check(name, false, e), 0, 0),
    };
    c.seconds = Some(t0.elapsed().as_secs_f64());
    Listing {
        check: c,
        keys,
        revision,
        per_prefix,
    }
}

/// At most this many prefixes are counted apart; the rest go under [`OTHER_PREFIXES`].
const MAX_PREFIXES: usize = 200;
const OTHER_PREFIXES: &str = "(other prefixes)";

fn count_prefix(per_prefix: &mut BTreeMap<String, usize>, key: &[u8]) {
    let p = top_level_prefix(&String::from_utf8_lossy(key));
    if let Some(n) = per_prefix.get_mut(&p) {
        *n += 1;
    } else if per_prefix.len() < MAX_PREFIXES {
        per_prefix.insert(p, 1);
    } else {
        *per_prefix.entry(OTHER_PREFIXES.into()).or_default() += 1;
    }
}

/// How many keys are under each required prefix, and whether each required key is there,
/// asked of the first member (counts only: nothing is read whole).
pub async fn presence(cluster: &Cluster, prefixes: &[String], keys: &[String]) -> Presence {
    let mut found = Presence::default();
    let client = match cluster.members.first() {
        Some(m) => cluster.client(m).await.ok(),
        None => None,
    };
    let count = |key: String, prefix: bool| {
        let mut c = client.clone();
        async move {
            let mut opts = GetOptions::new().with_count_only();
            if prefix {
                opts = opts.with_prefix();
            }
            match c.as_mut() {
                Some(c) => c.get(key, Some(opts)).await.map(|r| r.count()).unwrap_or(0),
                None => 0,
            }
        }
    };
    for p in prefixes {
        let n = count(p.clone(), true).await;
        found.prefixes.push((p.clone(), n.max(0) as usize));
    }
    for k in keys {
        found
            .keys
            .push((k.clone(), count(k.clone(), false).await > 0));
    }
    found
}

struct KeyPages {
    keys: usize,
    revision: i64,
    /// What etcd counted in the whole keyspace at `revision`.
    counted: i64,
    pages: usize,
}

/// Pages through the whole keyspace. Pages are sized in bytes from the keys seen so far,
/// and large: etcd (3.5) counts every key from a request's start to the end of the
/// keyspace whatever the limit, so a thousand keys a page made a million-key snapshot a
/// two-minute check. A page that still overflows [`MAX_RESPONSE`] is asked again at half
/// the size.
async fn list_keyspace(
    cluster: &Cluster,
    m: &Member,
    page_bytes: usize,
    per_prefix: &mut BTreeMap<String, usize>,
) -> Result<KeyPages, String> {
    let client = cluster
        .patient_client(m, std::time::Duration::from_secs(60))
        .await
        .map_err(|e| e.to_string())?;
    let mut kv = roomy_kv(&client);
    let mut from = vec![0u8];
    // Until keys are seen, assume Kubernetes-like ones of about 100 bytes.
    let mut limit = (page_bytes / 128).clamp(1, 1 << 20) as i64;
    let (mut keys, mut key_bytes, mut pages) = (0usize, 0usize, 0usize);
    let (mut revision, mut counted) = (0i64, 0i64);
    loop {
        // Key "\0" to range end "\0": every key from `from` on.
        let mut opts = GetOptions::new()
            .with_range(vec![0u8])
            .with_keys_only()
            .with_limit(limit);
        if revision > 0 {
            opts = opts.with_revision(revision);
        }
        let resp = match kv.get(from.clone(), Some(opts)).await {
            Ok(r) => r,
            Err(e) if e.to_string().contains("message length too large") && limit > 1 => {
                limit /= 2;
                continue;
            }
            Err(e) => return Err(format!("reading keys through {}: {e}", m.name)),
        };
        pages += 1;
        if revision == 0 {
            // The first page spans the whole keyspace, so its count is etcd's total.
            revision = resp.header().map(|h| h.revision()).unwrap_or(0);
            counted = resp.count();
        }
        keys += resp.kvs().len();
        key_bytes += resp.kvs().iter().map(|kv| kv.key().len()).sum::<usize>();
        for kv in resp.kvs() {
            count_prefix(per_prefix, kv.key());
        }
        match resp.kvs().last() {
            Some(last) if resp.more() => {
                from = last.key().to_vec();
                from.push(0);
            }
            _ => break,
        }
        // A key's revisions and framing add about 32 bytes to it in the response.
        let per_key = key_bytes / keys.max(1) + 32;
        limit = (page_bytes / per_key).clamp(1, 1 << 20) as i64;
    }
    Ok(KeyPages {
        keys,
        revision,
        counted,
        pages,
    })
}
