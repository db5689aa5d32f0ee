//! Verifying a restored cluster: every key acknowledged up to the snapshot revision is back
//! byte for byte, nothing else is there, all members hold identical data (HashKV), the
//! member set is the restored one under a new cluster ID, writes work again, and an
//! operator's `etcdctl get --prefix --keys-only` inside a member agrees.
//! Each check is independent and reports its own pass/fail with a reason.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use etcd_client::GetOptions;
use futures_util::StreamExt;

use crate::backup::dataset::{AckLog, Dataset, PREFIX};
use crate::backup::ledger::{Accounted, HARNESS_PREFIX, HarnessView};
use crate::cluster::Cluster;
use crate::cluster::tls::CONTAINER_PKI_DIR;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
    /// How long the check took (they run concurrently, so these overlap).
    #[serde(default)]
    pub seconds: f64,
}

fn check(name: &str, passed: bool, detail: impl Into<String>) -> Check {
    Check {
        name: name.to_string(),
        passed,
        detail: detail.into(),
        seconds: 0.0,
    }
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

/// Keys per page of the data check, at most; fewer when values are large (see [`page_limit`]).
const PAGE: i64 = 1000;
/// What a page of the data check aims to stay under: far below [`MAX_RESPONSE`], so
/// a few unexpected oversized values still fit.
const PAGE_BYTES: usize = 2 << 20;
/// The largest response the checks accept. tonic's default, 4 MiB, is less than a thousand
/// 8 KiB values (Kubernetes objects are often that big): a page sized for small values
/// would turn a good restore into a failed check.
pub(crate) const MAX_RESPONSE: usize = 64 << 20;

/// Keys per page for values of `value_size` bytes: at most [`PAGE`], and about
/// [`PAGE_BYTES`] of response.
fn page_limit(value_size: usize) -> i64 {
    // A key under /registry/ and the revisions beside it: well under 128 bytes.
    (PAGE_BYTES / (value_size + 128)).clamp(1, PAGE as usize) as i64
}

/// A KV client for one member that takes responses up to [`MAX_RESPONSE`].
pub(crate) fn roomy_kv(c: &etcd_client::Client) -> etcd_client::KvClient {
    c.kv_client().max_decoding_message_size(MAX_RESPONSE)
}

/// What the restored cluster must hold, by dataset index: one byte per key, so a million
/// keys cost a megabyte and each lookup is an index, not a string search.
struct Wanted {
    state: Vec<u8>,
    /// Writes the snapshot must contain.
    want: usize,
    /// Writes acknowledged after the snapshot revision: the RPO.
    lost: usize,
}

const ABSENT: u8 = 0;
const WANT: u8 = 1;
const LOST: u8 = 2;

impl Wanted {
    fn new(exp: &Expected<'_>) -> Self {
        let len = exp
            .acks
            .acks
            .iter()
            .map(|a| a.index as usize + 1)
            .max()
            .unwrap_or(0);
        let mut state = vec![ABSENT; len];
        for a in &exp.acks.acks {
            let s = &mut state[a.index as usize];
            if a.revision <= exp.snapshot_revision {
                *s = WANT;
            } else if *s == ABSENT {
                *s = LOST;
            }
        }
        let want = state.iter().filter(|&&s| s == WANT).count();
        let lost = state.iter().filter(|&&s| s == LOST).count();
        Wanted { state, want, lost }
    }

    /// The key's dataset index and what must become of it; `None` for a key the dataset
    /// never wrote.
    fn lookup(&self, dataset: &Dataset, key: &[u8]) -> Option<(usize, u8)> {
        let i = dataset.index_of(key)?;
        Some((i, *self.state.get(i).unwrap_or(&ABSENT)))
    }
}

/// Runs a check and records how long it took.
async fn timed<F: std::future::Future<Output = Check>>(f: F) -> Check {
    let t0 = Instant::now();
    let mut c = f.await;
    c.seconds = t0.elapsed().as_secs_f64();
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
    let t0 = Instant::now();
    let wanted = Wanted::new(exp);
    let bounds = range_bounds(exp.dataset, &wanted);
    // Independent checks, run at once: the new write lands outside /registry/ and HashKV
    // compares all members at one fixed revision, so they cannot disturb each other. The
    // full scans (data, etcdctl) go to different members, so two etcd processes share the
    // work.
    let mut keys_verified = 0;
    // The new-write check's write lands while the data check reads: the data check is told
    // of it, so it is neither unexpected nor missed.
    let fresh = (
        format!("{HARNESS_PREFIX}after-restore"),
        format!("{NEW_WRITE_VALUES}{}", rand::random::<u32>()),
    );
    let (data, hashkv, membership, new_write, etcdctl) = tokio::join!(
        timed(async {
            let (c, n) =
                check_data(cluster, exp, &wanted, &bounds, (&fresh.0, NEW_WRITE_VALUES)).await;
            keys_verified = n;
            c
        }),
        timed(check_hashkv(cluster)),
        timed(check_membership(cluster, exp)),
        timed(check_new_write(cluster, &fresh.0, &fresh.1)),
        timed(check_etcdctl(
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
        rpo_writes: wanted.lost,
        rpo_revisions: (exp.acks.max_revision() - exp.snapshot_revision).max(0),
        seconds: t0.elapsed().as_secs_f64(),
    }
}

/// Reads all of `/registry/`, a few key ranges at once spread over the members, and
/// compares with what was acknowledged, regenerating each expected value from the
/// dataset's seed.
async fn check_data(
    cluster: &Cluster,
    exp: &Expected<'_>,
    wanted: &Wanted,
    bounds: &[Vec<u8>],
    in_flight: (&str, &str),
) -> (Check, usize) {
    let name = "data";
    if cluster.members.is_empty() {
        return (check(name, false, "no members"), 0);
    }
    let mut clients = vec![];
    for m in &cluster.members {
        match cluster.client(m).await {
            Ok(c) => clients.push((m.name.clone(), c)),
            Err(e) => return (check(name, false, e.to_string()), 0),
        }
    }
    let scans = bounds.windows(2).enumerate().map(|(r, w)| {
        let (member, c) = &clients[r % clients.len()];
        let scan = scan_range(c.clone(), exp.dataset, wanted, w[0].clone(), w[1].clone());
        async move {
            scan.await
                .map_err(|e| format!("reading {PREFIX} through {member}: {e}"))
        }
    });
    let mut scans = futures_util::stream::iter(scans).buffer_unordered(RANGES_IN_FLIGHT);
    let mut tally = Tally::default();
    while let Some(r) = scans.next().await {
        match r {
            Ok(t) => tally.add(t),
            Err(e) => return (check(name, false, e), tally.matched),
        }
    }
    let (member, c) = &clients[0];
    let outside = match scan_outside(c.clone(), exp.harness, in_flight).await {
        Ok(o) => o,
        Err(e) => {
            let e = format!("reading the keyspace outside {PREFIX} through {member}: {e}");
            return (check(name, false, e), tally.matched);
        }
    };
    let Tally {
        matched,
        wrong,
        unexpected,
        resurrected,
        seen,
    } = tally;
    let missing = wanted.want - matched - wrong.count;
    let ok = missing == 0
        && wrong.count == 0
        && unexpected.count == 0
        && resurrected.count == 0
        && outside.ok();
    let detail = if ok {
        format!(
            "{matched} keys present with byte-equal values; nothing else in the keyspace but {} harness key(s) under {HARNESS_PREFIX}, all accounted for",
            outside.accounted
        )
    } else {
        format!(
            "{matched}/{} keys match; missing {missing}; wrong value {wrong}; unexpected {unexpected}; written after the snapshot yet present {resurrected}; {seen} keys read under {PREFIX}; outside it: {outside}",
            wanted.want,
        )
    };
    (check(name, ok, detail), matched)
}

/// The keyspace outside the dataset's prefix, judged key by key against the harness's own
/// writes.
#[derive(Default)]
struct Outside {
    accounted: usize,
    unexpected: Offenders,
    stale: Offenders,
    missing: Offenders,
}

impl Outside {
    fn ok(&self) -> bool {
        self.unexpected.count == 0 && self.stale.count == 0 && self.missing.count == 0
    }
}

impl std::fmt::Display for Outside {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} harness key(s) accounted for; unexpected {}; older than their last acknowledged write {}; acknowledged harness keys missing {}",
            self.accounted, self.unexpected, self.stale, self.missing
        )
    }
}

/// Reads every key before and after the dataset's prefix (few: the harness's own) and
/// accounts for each; a harness key with an acknowledged write that is not there is missing.
async fn scan_outside(
    c: etcd_client::Client,
    harness: &HarnessView,
    in_flight: (&str, &str),
) -> Result<Outside, etcd_client::Error> {
    let mut out = Outside::default();
    let mut seen = BTreeSet::new();
    let mut kv = roomy_kv(&c);
    // [\0, /registry/) and [end of /registry/, end of the keyspace): range end \0 is "to the end".
    for (mut from, end) in [
        (vec![0u8], PREFIX.as_bytes().to_vec()),
        (prefix_end(PREFIX), vec![0u8]),
    ] {
        loop {
            let opts = GetOptions::new()
                .with_range(end.clone())
                .with_limit(PAGE)
                .with_serializable();
            let resp = kv.get(from.clone(), Some(opts)).await?;
            for item in resp.kvs() {
                match harness.account(
                    item.key(),
                    item.value(),
                    item.mod_revision(),
                    Some(in_flight),
                ) {
                    Accounted::Yes => out.accounted += 1,
                    Accounted::Unexpected => out.unexpected.note(item.key()),
                    Accounted::Stale => out.stale.note(item.key()),
                }
                seen.insert(item.key().to_vec());
            }
            match resp.kvs().last() {
                Some(last) if resp.more() => {
                    from = last.key().to_vec();
                    from.push(0);
                }
                _ => break,
            }
        }
    }
    for k in harness.must_exist.keys() {
        if !seen.contains(k.as_bytes()) {
            out.missing.note(k.as_bytes());
        }
    }
    Ok(out)
}

/// Cuts `/registry/` into ranges of about RANGE_KEYS wanted keys: the first bound is the
/// prefix, the last its end, so the ranges cover every key under it, expected or not.
fn range_bounds(dataset: &Dataset, wanted: &Wanted) -> Vec<Vec<u8>> {
    // Many short ranges rather than one long one paged through: etcd (3.5) counts every
    // key from a request's start to its range end whatever the limit, so paging a million
    // keys 1000 at a time walks the index half a billion times. Bounds at one wanted key
    // in RANGE_KEYS, picked by a hash of its index (a fixed stride would follow the
    // dataset's layout and leave half the key types in a few huge ranges), make each
    // request count about that many; together the ranges still cover every key under
    // /registry/, expected or not, and a range holding more than a page is paged.
    let mut keys: Vec<String> = (0..wanted.state.len())
        .filter(|&i| {
            wanted.state[i] == WANT && splitmix64(i as u64).is_multiple_of(RANGE_KEYS as u64)
        })
        .map(|i| dataset.key(i))
        .collect();
    keys.sort_unstable();
    let mut bounds = vec![PREFIX.as_bytes().to_vec()];
    bounds.extend(keys.into_iter().map(String::into_bytes));
    bounds.dedup();
    bounds.push(prefix_end(PREFIX));
    bounds
}

/// A well-mixed hash (SplitMix64's finaliser), for picking an even sample of indexes.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Wanted keys per range of the data check, on average.
const RANGE_KEYS: usize = 500;
/// Ranges read at once by the data check.
const RANGES_IN_FLIGHT: usize = 4;

#[derive(Default)]
struct Tally {
    matched: usize,
    wrong: Offenders,
    unexpected: Offenders,
    resurrected: Offenders,
    seen: usize,
}

/// Keys that fail a test: how many, and the smallest as an example (the smallest, so the
/// message does not depend on which range finished first). Never a list: a restore gone
/// wholly wrong at a million keys must not cost the harness a million strings.
#[derive(Default)]
struct Offenders {
    count: usize,
    example: Option<Vec<u8>>,
}

impl Offenders {
    fn note(&mut self, key: &[u8]) {
        self.count += 1;
        if self.example.as_deref().is_none_or(|e| key < e) {
            self.example = Some(key.to_vec());
        }
    }

    fn add(&mut self, o: Offenders) {
        self.count += o.count;
        if let Some(k) = o.example {
            self.count -= 1;
            self.note(&k);
        }
    }
}

impl std::fmt::Display for Offenders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.count)?;
        if let Some(k) = &self.example {
            write!(f, " (e.g. {})", String::from_utf8_lossy(k))?;
        }
        Ok(())
    }
}

impl Tally {
    fn add(&mut self, o: Tally) {
        self.matched += o.matched;
        self.seen += o.seen;
        self.wrong.add(o.wrong);
        self.unexpected.add(o.unexpected);
        self.resurrected.add(o.resurrected);
    }
}

async fn scan_range(
    c: etcd_client::Client,
    dataset: &Dataset,
    wanted: &Wanted,
    mut from: Vec<u8>,
    end: Vec<u8>,
) -> Result<Tally, etcd_client::Error> {
    let mut t = Tally::default();
    let mut expected = vec![0u8; dataset.value_size];
    let mut kv = roomy_kv(&c);
    loop {
        // Serializable: each member answers from its own restored data, with no read-index
        // round to the leader per page (HashKV is what compares the members).
        let opts = GetOptions::new()
            .with_range(end.clone())
            .with_limit(page_limit(dataset.value_size))
            .with_serializable();
        let resp = kv.get(from.clone(), Some(opts)).await?;
        for kv in resp.kvs() {
            t.seen += 1;
            match wanted.lookup(dataset, kv.key()) {
                Some((i, WANT)) => {
                    dataset.value_into(i, &mut expected);
                    if kv.value() == expected.as_slice() {
                        t.matched += 1
                    } else {
                        t.wrong.note(kv.key())
                    }
                }
                Some((_, LOST)) => t.resurrected.note(kv.key()),
                _ => t.unexpected.note(kv.key()),
            }
        }
        match resp.kvs().last() {
            Some(last) if resp.more() => {
                from = last.key().to_vec();
                from.push(0);
            }
            _ => return Ok(t),
        }
    }
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
        checks: vec![timed(check_hashkv(cluster)).await],
        keys_verified: 0,
        rpo_writes: 0,
        rpo_revisions: 0,
        seconds: t0.elapsed().as_secs_f64(),
    }
}

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
    c.seconds = t0.elapsed().as_secs_f64();
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
    m: &crate::cluster::Member,
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
async fn member_hash(cluster: &Cluster, m: &crate::cluster::Member, rev: i64) -> String {
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

/// The member list is exactly the expected set — names, IDs and peer URLs — every member
/// started, under a new cluster ID after a restore and the same one otherwise.
async fn check_membership(cluster: &Cluster, exp: &Expected<'_>) -> Check {
    let name = "membership";
    let Some(first) = cluster.members.first() else {
        return check(name, false, "no members");
    };
    let resp = match cluster.client(first).await {
        Ok(mut c) => match c.member_list().await {
            Ok(r) => r,
            Err(e) => {
                return check(
                    name,
                    false,
                    format!("member list through {}: {e}", first.name),
                );
            }
        },
        Err(e) => return check(name, false, e.to_string()),
    };
    let listed: Vec<ListedMember> = resp
        .members()
        .iter()
        .map(|m| ListedMember {
            name: m.name().to_string(),
            id: m.id(),
            peer_urls: m.peer_urls().to_vec(),
            started: !m.name().is_empty() && !m.client_urls().is_empty(),
        })
        .collect();
    let want: Vec<ListedMember> = cluster
        .members
        .iter()
        .filter(|m| exp.members.contains(&m.name))
        .map(|m| ListedMember {
            name: m.name.clone(),
            id: m.id,
            peer_urls: vec![m.peer_url.clone()],
            started: true,
        })
        .collect();
    let rule = if exp.restored {
        ClusterIdRule::NewAfter(exp.old_cluster_id)
    } else {
        ClusterIdRule::Same(exp.old_cluster_id)
    };
    let cluster_id = resp.header().map(|h| h.cluster_id());
    let (ok, detail) = judge_membership(&listed, &want, &exp.members, cluster_id, rule);
    check(name, ok, detail)
}

/// One member as etcd lists it, or as the harness expects it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedMember {
    pub name: String,
    pub id: u64,
    pub peer_urls: Vec<String>,
    pub started: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterIdRule {
    /// A restored cluster: a new ID, not this one.
    NewAfter(u64),
    /// No restore: exactly this ID.
    Same(u64),
}

/// The membership verdict. `names` are the members asked for; `want` what the harness knows
/// of them (an ID of 0 is an ID it never learned, which cannot pass). A missing header or
/// cluster ID is a failure, never a default.
pub fn judge_membership(
    listed: &[ListedMember],
    want: &[ListedMember],
    names: &[String],
    cluster_id: Option<u64>,
    rule: ClusterIdRule,
) -> (bool, String) {
    let mut problems = vec![];
    let listed_names: BTreeSet<&str> = listed.iter().map(|m| m.name.as_str()).collect();
    let want_names: BTreeSet<&str> = names.iter().map(String::as_str).collect();
    if listed_names != want_names || listed.len() != names.len() {
        problems.push(format!("members {listed_names:?}, want {want_names:?}"));
    }
    for w in want {
        match listed.iter().find(|l| l.name == w.name) {
            None => {}
            Some(_) if w.id == 0 => {
                problems.push(format!("{}: the harness never learned its ID", w.name))
            }
            Some(l) if l.id != w.id => {
                problems.push(format!("{}: ID {:x}, want {:x}", w.name, l.id, w.id))
            }
            Some(l) if l.peer_urls != w.peer_urls => problems.push(format!(
                "{}: peer URLs {:?}, want {:?}",
                w.name, l.peer_urls, w.peer_urls
            )),
            Some(_) => {}
        }
    }
    if want.len() != names.len() {
        problems.push(format!(
            "the harness knows {} of the {} members asked for",
            want.len(),
            names.len()
        ));
    }
    for l in listed.iter().filter(|l| !l.started) {
        problems.push(format!(
            "{} (ID {:x}) has not started",
            if l.name.is_empty() {
                "an unnamed member"
            } else {
                &l.name
            },
            l.id
        ));
    }
    let id_problem = match (cluster_id, rule) {
        (None | Some(0), _) => Some("the member list carries no cluster ID".to_string()),
        (Some(id), ClusterIdRule::NewAfter(old)) if id == old => Some(format!(
            "cluster ID {id:x} is the one before the disaster: this is not a restored cluster"
        )),
        (Some(id), ClusterIdRule::Same(old)) if id != old => {
            Some(format!("cluster ID {id:x}, but the cluster had {old:x}"))
        }
        _ => None,
    };
    problems.extend(id_problem);
    let id = cluster_id
        .map(|c| format!("{c:x}"))
        .unwrap_or_else(|| "none".into());
    if problems.is_empty() {
        (
            true,
            format!(
                "{} members {listed_names:?} with the expected IDs and peer URLs, all started; cluster ID {id} ({})",
                listed.len(),
                match rule {
                    ClusterIdRule::NewAfter(o) => format!("new; {o:x} before the disaster"),
                    ClusterIdRule::Same(_) => "unchanged".into(),
                }
            ),
        )
    } else {
        (false, problems.join("; "))
    }
}

/// What every value the new-write check writes starts with.
const NEW_WRITE_VALUES: &str = "written-";

/// A new write through one member reads back from every member.
async fn check_new_write(cluster: &Cluster, key: &str, value: &str) -> Check {
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

/// As the seed does with the official client: `etcdctl get /registry/ --prefix --keys-only`
/// inside a member container returns exactly the expected keys. The listing is cut into
/// ranges at the data check's bounds, two at a time in two members' containers (etcdctl
/// and etcd's read of every value dominate this check, and each range is half the wait),
/// and a range larger than `page_size` is paged (`--limit`, a page starting at the last
/// key of the one before), so neither etcdctl's command timeout nor the harness's memory
/// grows with the data.
async fn check_etcdctl(
    cluster: &Cluster,
    dataset: &Dataset,
    wanted: &Wanted,
    bounds: &[Vec<u8>],
    page_size: usize,
) -> Check {
    let name = "etcdctl-keys";
    if cluster.members.is_empty() {
        return check(name, false, "no members");
    }
    let mut base = vec![
        format!("{}/etcdctl", crate::cluster::image::BIN_DIR),
        format!(
            "--endpoints={}://127.0.0.1:{}",
            cluster.scheme(),
            crate::cluster::CLIENT_PORT
        ),
        "--command-timeout=60s".into(),
    ];
    if cluster.pki.is_some() {
        base.extend([
            format!("--cacert={CONTAINER_PKI_DIR}/ca.pem"),
            format!("--cert={CONTAINER_PKI_DIR}/client.pem"),
            format!("--key={CONTAINER_PKI_DIR}/client-key.pem"),
        ]);
    }
    // About a page per range, and at least one range per call in flight; within a range
    // etcd's count per request stays short (see check_data).
    let ranges = wanted
        .want
        .div_ceil(page_size.max(1))
        .max(ETCDCTL_IN_FLIGHT)
        .min(bounds.len() - 1)
        .max(1);
    let per = (bounds.len() - 1).div_ceil(ranges);
    let mut cuts: Vec<&[u8]> = bounds.iter().step_by(per).map(Vec::as_slice).collect();
    cuts.push(bounds.last().expect("bounds end at the prefix end"));
    cuts.dedup();
    let listings = cuts.windows(2).enumerate().map(|(r, w)| {
        let m = &cluster.members[r % cluster.members.len()];
        etcdctl_range(cluster, &m.container, &base, w[0], w[1], page_size)
    });
    let mut listings = futures_util::stream::iter(listings).buffer_unordered(ETCDCTL_IN_FLIGHT);
    // Exactly the wanted keys, each once: count them and flag anything else.
    let mut listed = vec![false; wanted.state.len()];
    let (mut count, mut stray, mut pages) = (0usize, None, 0);
    while let Some(r) = listings.next().await {
        let (keys, n) = match r {
            Ok(l) => l,
            Err(e) => return check(name, false, e),
        };
        pages += n;
        for key in keys {
            match wanted.lookup(dataset, &key) {
                Some((i, WANT)) if !listed[i] => {
                    listed[i] = true;
                    count += 1;
                }
                _ => {
                    stray.get_or_insert_with(|| String::from_utf8_lossy(&key).into_owned());
                }
            }
        }
    }
    let ok = count == wanted.want && stray.is_none();
    check(
        name,
        ok,
        format!(
            "etcdctl listed {count} of the {} expected keys (in {} range(s), {pages} call(s) of at most {page_size} keys){}",
            wanted.want,
            cuts.len() - 1,
            match &stray {
                None => String::new(),
                Some(k) =>
                    format!(", and {k:?}, which it should not (unexpected, lost or listed twice)"),
            }
        ),
    )
}

/// etcdctl calls in flight in the etcdctl check.
const ETCDCTL_IN_FLIGHT: usize = 2;

/// Lists the keys in `[lo, hi)` with etcdctl in `container`, paging past `page_size`;
/// returns them and how many calls it took. The whole prefix is asked for as the seed
/// asks: `get /registry/ --prefix`.
async fn etcdctl_range(
    cluster: &Cluster,
    container: &str,
    base: &[String],
    lo: &[u8],
    hi: &[u8],
    page_size: usize,
) -> Result<(Vec<Vec<u8>>, usize), String> {
    let as_arg = |k: &[u8]| {
        String::from_utf8(k.to_vec()).map_err(|e| {
            format!(
                "cannot page etcdctl's listing past the key {:?}: not UTF-8, so not an argument etcdctl can take",
                String::from_utf8_lossy(e.as_bytes())
            )
        })
    };
    let whole_prefix = lo == PREFIX.as_bytes() && hi == prefix_end(PREFIX).as_slice();
    let end = as_arg(hi)?;
    let (mut keys, mut calls) = (vec![], 0);
    // The key a page resumes from: the last one the page before listed.
    let mut resume: Option<Vec<u8>> = None;
    loop {
        let mut cmd = base.to_vec();
        cmd.push("get".into());
        if whole_prefix && resume.is_none() {
            cmd.extend([PREFIX.into(), "--prefix".into()]);
        } else {
            cmd.extend([as_arg(resume.as_deref().unwrap_or(lo))?, end.clone()]);
        }
        cmd.extend([
            "--keys-only".into(),
            format!("--limit={page_size}"),
            // JSON is one write; the plain format's line-per-write costs more than the read.
            "--write-out=json".into(),
        ]);
        let page = etcdctl_page(cluster, container, cmd).await?;
        calls += 1;
        let before = keys.len();
        for (n, kv) in page.kvs.iter().enumerate() {
            use base64::Engine;
            let key = base64::engine::general_purpose::STANDARD
                .decode(&kv.key)
                .unwrap_or_else(|_| kv.key.clone().into_bytes());
            if n == 0 && resume.as_deref() == Some(key.as_slice()) {
                continue;
            }
            keys.push(key);
        }
        match keys.last() {
            Some(k) if page.more && keys.len() > before => resume = Some(k.clone()),
            _ => return Ok((keys, calls)),
        }
    }
}

#[derive(serde::Deserialize)]
struct EtcdctlListing {
    #[serde(default)]
    kvs: Vec<EtcdctlKey>,
    #[serde(default)]
    more: bool,
}

#[derive(serde::Deserialize)]
struct EtcdctlKey {
    key: String,
}

/// Runs one `etcdctl get … -w json` in `container`; the error says what went wrong.
async fn etcdctl_page(
    cluster: &Cluster,
    container: &str,
    cmd: Vec<String>,
) -> Result<EtcdctlListing, String> {
    let out = crate::docker::exec(
        cluster.docker(),
        container,
        cmd,
        vec!["ETCDCTL_API=3".into()],
    )
    .await
    .map_err(|e| e.to_string())?;
    if out.exit_code != 0 {
        return Err(format!(
            "etcdctl exited {}: {}",
            out.exit_code,
            out.stderr.trim()
        ));
    }
    serde_json::from_str(&out.stdout).map_err(|e| {
        format!(
            "etcdctl printed no JSON listing ({e}): {}",
            out.stdout.chars().take(200).collect::<String>()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(i: u64, started: bool) -> ListedMember {
        ListedMember {
            name: format!("etcd-{i}"),
            id: 0x100 + i,
            peer_urls: vec![format!("http://etcd-{i}:2380")],
            started,
        }
    }

    fn names(n: u64) -> Vec<String> {
        (1..=n).map(|i| format!("etcd-{i}")).collect()
    }

    #[test]
    fn membership_passes_only_the_expected_members_under_the_right_cluster_id() {
        let want: Vec<ListedMember> = (1..=3).map(|i| member(i, true)).collect();
        let restored = ClusterIdRule::NewAfter(0xaaa);
        let judge = |listed: &[ListedMember], id, rule| {
            judge_membership(listed, &want, &names(3), id, rule)
        };
        assert!(judge(&want, Some(0xbbb), restored).0, "a faithful restore");
        assert!(
            judge(&want, Some(0xaaa), ClusterIdRule::Same(0xaaa)).0,
            "no restore"
        );

        let (ok, why) = judge(&want, Some(0xaaa), restored);
        assert!(!ok && why.contains("not a restored cluster"), "{why}");
        let (ok, why) = judge(&want, None, restored);
        assert!(!ok && why.contains("no cluster ID"), "{why}");
        let (ok, why) = judge(&want, Some(0xbbb), ClusterIdRule::Same(0xaaa));
        assert!(!ok && why.contains("the cluster had aaa"), "{why}");
        // A member left out of the restore.
        let (ok, why) = judge(&want[..2], Some(0xbbb), restored);
        assert!(!ok && why.contains("want"), "{why}");
        // A member listed but never started.
        let mut listed = want.clone();
        listed[2].started = false;
        let (ok, why) = judge(&listed, Some(0xbbb), restored);
        assert!(
            !ok && why.contains("etcd-3 (ID 103) has not started"),
            "{why}"
        );
        // Another member under the right name: its ID or peer URL gives it away.
        let mut listed = want.clone();
        listed[1].id = 0x999;
        assert!(!judge(&listed, Some(0xbbb), restored).0);
        let mut listed = want.clone();
        listed[1].peer_urls = vec!["http://elsewhere:2380".into()];
        assert!(!judge(&listed, Some(0xbbb), restored).0);
        // An ID the harness never learned cannot be vouched for.
        let mut unknown = want.clone();
        unknown[0].id = 0;
        let (ok, why) = judge_membership(&want, &unknown, &names(3), Some(0xbbb), restored);
        assert!(!ok && why.contains("never learned its ID"), "{why}");
    }

    /// A range much larger than RANGE_KEYS makes etcd count its whole length on every
    /// page: the data check at a million keys went from 80 s to 9 s when a fixed-stride
    /// sample, which followed the dataset's layout, became a hashed one.
    #[test]
    fn pages_shrink_with_the_values_to_stay_far_below_the_response_limit() {
        assert_eq!(page_limit(256), PAGE);
        assert_eq!(page_limit(1024), PAGE);
        for value_size in [1, 256, 1024, 4096, 16 << 10, 256 << 10, 1 << 20] {
            let n = page_limit(value_size) as usize;
            assert!((1..=PAGE as usize).contains(&n));
            assert!(n * (value_size + 128) <= PAGE_BYTES.max(value_size + 128));
        }
        assert_eq!(page_limit(1 << 20), 1);
        const { assert!(PAGE_BYTES * 4 <= MAX_RESPONSE) };
    }

    #[test]
    fn range_bounds_cover_the_prefix_in_even_short_ranges() {
        let n = 100_000;
        let ds = Dataset {
            keys: n,
            value_size: 16,
            seed: 1,
        };
        let wanted = Wanted {
            state: vec![WANT; n],
            want: n,
            lost: 0,
        };
        let bounds = range_bounds(&ds, &wanted);
        assert_eq!(bounds.first().unwrap(), PREFIX.as_bytes());
        assert_eq!(bounds.last().unwrap(), &prefix_end(PREFIX));
        assert!(bounds.windows(2).all(|w| w[0] < w[1]), "bounds must ascend");
        let ranges = bounds.len() - 1;
        assert!(
            (n / RANGE_KEYS * 8 / 10..n / RANGE_KEYS * 12 / 10).contains(&ranges),
            "{ranges} ranges"
        );
        let mut per_range = vec![0usize; ranges];
        for i in 0..n {
            let k = ds.key(i).into_bytes();
            per_range[bounds.partition_point(|b| *b <= k) - 1] += 1;
        }
        let largest = per_range.iter().max().unwrap();
        assert!(
            *largest <= 8 * RANGE_KEYS,
            "a range of {largest} keys (want about {RANGE_KEYS})"
        );
    }
}
