//! `image build` and `cleanup`: the environment around the drills.

use std::path::PathBuf;

use super::Outcome;
use crate::cluster;
use crate::cluster::image::{self, Line, Source};
use crate::docker::{self, Selector};
use crate::error::Result;

pub(super) async fn image_build(
    version: &str,
    from_dir: Option<PathBuf>,
    reference: Option<String>,
    force: bool,
) -> Result<Outcome> {
    let source = match (from_dir, reference) {
        (Some(dir), _) => Source::Dir(dir),
        (None, Some(reference)) => Source::Existing(reference),
        (None, None) => Source::Debian(Line::parse(version)?),
    };
    let docker = docker::connect().await?;
    let img = image::build(&docker, source, force).await?;
    println!("{} (etcd {})", img.tag, img.version);
    Ok(Outcome::Ok)
}

/// `cleanup [--cluster NAME]`: the Docker objects (all labelled etcd-drill=1, or one
/// cluster's), then the state directories of clusters with no object left.
pub(super) async fn cleanup(only: Option<&str>) -> Result<Outcome> {
    if let Some(name) = only {
        cluster::validate_name(name)?;
    }
    let sel = only.map_or_else(Selector::all, Selector::cluster);
    let docker = docker::connect().await?;
    let removed = docker::remove_objects(&docker, &sel).await?;
    // Clusters with objects left (created since, or not selected) keep their directory.
    let live = docker::cluster_names(&docker).await?;
    let root = cluster::state_root();
    let dirs = cluster::remove_stale_run_dirs(&root, &live, only)?;
    println!(
        "removed {} containers, {} networks, {} volumes labelled etcd-drill=1, and {dirs} state directories under {}",
        removed.containers.len(),
        removed.networks.len(),
        removed.volumes.len(),
        root.display()
    );
    Ok(Outcome::Ok)
}
