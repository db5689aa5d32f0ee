//! The fault-tolerance table filled by observation: for each size, members failed
//! permanently one at a time and availability observed after each, never taken from the
//! prediction.

use std::time::Instant;

use bollard::Docker;
use futures_util::StreamExt;

use crate::chaos::fault::Injector;
use crate::chaos::observe::{ObserveOptions, observe};
use crate::cluster::{Cluster, ClusterSpec};
use crate::error::Result;
use crate::model::fault::{FaultKind, Target};
use crate::model::table::{Cell, SizeResult, TableResult, majority, predicted_writable, tolerance};

#[derive(Debug, Clone)]
pub struct SweepOptions {
    pub version: String,
    pub seed: u64,
    pub run_id: String,
    pub observe: ObserveOptions,
    /// How many clusters run at once (on 2 cores 5 measured fastest: 44.7 s vs 64.1 s at 3
    /// and 48.7 s at 9).
    pub parallel: usize,
}

/// Fills the table for one size: one cluster, members failed permanently one at a time,
/// availability observed after each (k = 0..=N). Followers are failed first while a leader
/// exists, so writable cells are not slowed by elections; which member is lost does not
/// change what the table claims.
pub async fn sweep_size(docker: &Docker, size: usize, opts: &SweepOptions) -> Result<SizeResult> {
    let mut spec = ClusterSpec::new(size);
    spec.version = opts.version.clone();
    spec.run_id = opts.run_id.clone();
    spec.name = format!("quorum-{size}-{:06x}", rand::random::<u32>() & 0xff_ffff);
    let mut cluster = Cluster::start(docker, spec).await?;
    let mut injector = Injector::new(opts.seed.wrapping_add(size as u64));
    let mut cells = vec![];
    let mut failed_members: Vec<String> = vec![];
    for k in 0..=size {
        if k > 0 {
            let victims = match injector
                .inject(&mut cluster, FaultKind::Permanent, &Target::Follower)
                .await
            {
                Ok(v) => v,
                Err(_) => {
                    injector
                        .inject(&mut cluster, FaultKind::Permanent, &Target::Random)
                        .await?
                }
            };
            failed_members.extend(victims);
        }
        let observation =
            observe(&cluster, &format!("/etcd-drill/quorum/k{k}"), opts.observe).await;
        if let Some(e) = observation.error() {
            return Err(crate::Error::Failed(format!(
                "size {size}, {k} failed: {e}"
            )));
        }
        cells.push(Cell {
            failed: k,
            predicted_writable: predicted_writable(size, k),
            observed_writable: observation.writable,
            failed_members: failed_members.clone(),
        });
    }
    cluster.destroy().await?;
    Ok(SizeResult {
        size,
        majority: majority(size),
        tolerance: tolerance(size),
        cells,
    })
}

/// The whole table: every size in `sizes`, every k, a few clusters at a time.
pub async fn sweep(docker: &Docker, sizes: &[usize], opts: &SweepOptions) -> Result<TableResult> {
    for &s in sizes {
        crate::cluster::validate_size(s)?;
    }
    let image = crate::cluster::image::resolve(docker, &opts.version).await?;
    let t0 = Instant::now();
    // Largest first, so the longest job does not start last.
    let mut order = sizes.to_vec();
    order.sort_unstable_by(|a, b| b.cmp(a));
    let mut results: Vec<SizeResult> =
        futures_util::stream::iter(order.into_iter().map(|n| sweep_size(docker, n, opts)))
            .buffer_unordered(opts.parallel.max(1))
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_>>()?;
    results.sort_by_key(|r| r.size);
    Ok(TableResult {
        seed: opts.seed,
        etcd_version: image.version,
        sizes: results,
        elapsed_s: t0.elapsed().as_secs_f64(),
    })
}
