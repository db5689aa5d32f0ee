//! The data check: all of the dataset's prefix read, a few ranges at once over the members,
//! and compared with what was acknowledged; anything outside it must be the harness's own.

use std::collections::BTreeSet;

use etcd_client::GetOptions;
use futures_util::StreamExt;

use super::{Check, Expected, check};
use crate::backup::dataset::{Dataset, PREFIX};
use crate::backup::ledger::{Accounted, HARNESS_PREFIX, HarnessView};
use crate::cluster::Cluster;

/// Keys per page of the data check, at most; fewer when values are large (see [`page_limit`]).
const PAGE: i64 = 1000;
/// What a page of the data check aims to stay under: far below [`MAX_RESPONSE`], so
/// a few unexpected oversized values still fit.
const PAGE_BYTES: usize = 2 << 20;
/// The largest response the checks accept. tonic's default, 4 MiB, is less than a thousand
/// 8 KiB values (Kubernetes objects are often that big): a page sized for small values
/// would turn a good restore into a failed check.
pub(super) const MAX_RESPONSE: usize = 64 << 20;

/// Keys per page for values of `value_size` bytes: at most [`PAGE`], and about
/// [`PAGE_BYTES`] of response.
fn page_limit(value_size: usize) -> i64 {
    // A key under /registry/ and the revisions beside it: well under 128 bytes.
    (PAGE_BYTES / (value_size + 128)).clamp(1, PAGE as usize) as i64
}

/// A KV client for one member that takes responses up to [`MAX_RESPONSE`].
pub(super) fn roomy_kv(c: &etcd_client::Client) -> etcd_client::KvClient {
    c.kv_client().max_decoding_message_size(MAX_RESPONSE)
}

/// What the restored cluster must hold, by dataset index: one byte per key, so a million
/// keys cost a megabyte and each lookup is an index, not a string search.
pub(super) struct Wanted {
    pub(super) state: Vec<u8>,
    /// Writes the snapshot must contain.
    pub(super) want: usize,
}

pub(super) const ABSENT: u8 = 0;
pub(super) const WANT: u8 = 1;
pub(super) const LOST: u8 = 2;

impl Wanted {
    pub(super) fn new(exp: &Expected<'_>) -> Self {
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
        Wanted { state, want }
    }

    /// The key's dataset index and what must become of it; `None` for a key the dataset
    /// never wrote.
    pub(super) fn lookup(&self, dataset: &Dataset, key: &[u8]) -> Option<(usize, u8)> {
        let i = dataset.index_of(key)?;
        Some((i, *self.state.get(i).unwrap_or(&ABSENT)))
    }
}

/// Reads all of `/registry/`, a few key ranges at once spread over the members, and
/// compares with what was acknowledged, regenerating each expected value from the
/// dataset's seed.
pub(super) async fn check_data(
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
pub(super) fn range_bounds(dataset: &Dataset, wanted: &Wanted) -> Vec<Vec<u8>> {
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

pub(super) fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    *end.last_mut().expect("non-empty prefix") += 1;
    end
}

#[cfg(test)]
mod tests {
    use super::*;

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
