//! The whole keyspace read page by page: a restored snapshot must be readable end to end.

use std::time::Instant;

use super::data::roomy_kv;
use super::{Check, check};
use crate::cluster::{Cluster, Member};
use etcd_client::GetOptions;

/// Bytes of keys a page of [`check_keys_readable`] aims at.
pub const KEYSPACE_PAGE_BYTES: usize = 4 << 20;

/// For a keyspace whose content is not known (`verify-snapshot`): lists every key through
/// the first member, keys only, at one revision, and compares the number listed with etcd's
/// own count at that revision. Returns the check, the keys listed and the revision.
pub async fn check_keys_readable(cluster: &Cluster, page_bytes: usize) -> (Check, usize, i64) {
    let t0 = Instant::now();
    let name = "keys-readable";
    let Some(m) = cluster.members.first() else {
        return (check(name, false, "no members"), 0, 0);
    };
    let (mut c, keys, revision) = match list_keyspace(cluster, m, page_bytes).await {
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
    (c, keys, revision)
}

struct Listing {
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
) -> Result<Listing, String> {
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
    Ok(Listing {
        keys,
        revision,
        counted,
        pages,
    })
}
