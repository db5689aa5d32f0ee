//! The image's own `etcdctl` and `etcdutl` on the host, for commands users run themselves
//! (`exec` steps, backup commands): extracted once per image into
//! `<state root>/tools/<image>/` and put first on those commands' `PATH`.

use std::collections::HashMap;
use std::path::PathBuf;

use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder,
    RemoveContainerOptionsBuilder,
};
use futures_util::StreamExt;

use super::image::{BIN_DIR, EtcdImage};
use crate::error::{Error, Result};

/// Where `image`'s tools live on the host.
pub fn tools_dir(image: &EtcdImage) -> PathBuf {
    let safe: String = image
        .tag
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    super::state_root().join("tools").join(safe)
}

/// The directory holding `image`'s etcdctl (and etcdutl on 3.5), extracting them first if
/// they are not there yet. The container used for that is created, never started, carries
/// `labels` (so `cleanup` finds it if this process dies) and is removed.
pub async fn host_tools(
    docker: &Docker,
    image: &EtcdImage,
    labels: HashMap<String, String>,
) -> Result<PathBuf> {
    let dir = tools_dir(image);
    let mut bins = vec!["etcdctl"];
    if image.has_etcdutl() {
        bins.push("etcdutl");
    }
    if bins.iter().all(|b| dir.join(b).is_file()) {
        return Ok(dir);
    }
    let name = format!("etcd-drill-tools-{:08x}", rand::random::<u32>());
    let body = ContainerCreateBody {
        image: Some(image.tag.clone()),
        entrypoint: Some(vec![format!("{BIN_DIR}/etcdctl")]),
        labels: Some(labels),
        ..Default::default()
    };
    let opts = CreateContainerOptionsBuilder::default().name(&name).build();
    docker
        .create_container(Some(opts), body)
        .await
        .map_err(Error::docker("creating a container to copy etcdctl from"))?;
    let copied = copy_bins(docker, &name, &bins, &dir).await;
    let rm = RemoveContainerOptionsBuilder::default().force(true).build();
    let _ = docker.remove_container(&name, Some(rm)).await;
    copied.map(|()| dir)
}

async fn copy_bins(docker: &Docker, container: &str, bins: &[&str], dir: &PathBuf) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(Error::io("creating the tools directory", dir))?;
    for bin in bins {
        let path = format!("{BIN_DIR}/{bin}");
        let opts = DownloadFromContainerOptionsBuilder::default()
            .path(&path)
            .build();
        let mut stream = docker.download_from_container(container, Some(opts));
        let mut tar_bytes = vec![];
        while let Some(chunk) = stream.next().await {
            tar_bytes
                .extend_from_slice(&chunk.map_err(Error::docker(format!("copying {path} out")))?);
        }
        // Unpacked under a temporary name, then renamed: a concurrent run never sees half a binary.
        let tmp = dir.join(format!(".{bin}.{:08x}", rand::random::<u32>()));
        let mut archive = tar::Archive::new(tar_bytes.as_slice());
        let mut entry = archive
            .entries()
            .and_then(|mut e| e.next().transpose())
            .ok()
            .flatten()
            .ok_or_else(|| Error::Failed(format!("{path}: not in the image")))?;
        entry
            .unpack(&tmp)
            .map_err(Error::io("unpacking a tool", &tmp))?;
        std::fs::rename(&tmp, dir.join(bin)).map_err(Error::io("installing a tool", dir))?;
    }
    Ok(())
}
