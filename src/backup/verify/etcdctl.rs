//! The operator's view: `etcdctl get --prefix --keys-only` inside a member must agree with
//! what was acknowledged.

use futures_util::StreamExt;

use super::data::{WANT, Wanted, prefix_end};
use super::{Check, check};
use crate::backup::dataset::{Dataset, PREFIX};
use crate::cluster::Cluster;
use crate::cluster::tls::CONTAINER_PKI_DIR;

/// As the seed does with the official client: `etcdctl get /registry/ --prefix --keys-only`
/// inside a member container returns exactly the expected keys. The listing is cut into
/// ranges at the data check's bounds, two at a time in two members' containers (etcdctl
/// and etcd's read of every value dominate this check, and each range is half the wait),
/// and a range larger than `page_size` is paged (`--limit`, a page starting at the last
/// key of the one before), so neither etcdctl's command timeout nor the harness's memory
/// grows with the data.
pub(super) async fn check_etcdctl(
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
