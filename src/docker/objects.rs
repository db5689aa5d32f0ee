//! The labels on everything etcd-drill creates, finding objects by them (and by name), and
//! removing them: what `cleanup`, `cluster down` and a cluster handle's rollback rely on.

use std::collections::HashMap;

use bollard::Docker;
use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
    RemoveContainerOptionsBuilder,
};

use crate::error::{Error, Result};

/// Every container, network and volume etcd-drill creates carries this label (value "1").
pub const LABEL: &str = "etcd-drill";
pub const LABEL_CLUSTER: &str = "etcd-drill.cluster";
pub const LABEL_RUN: &str = "etcd-drill.run";
pub const LABEL_MEMBER: &str = "etcd-drill.member";

pub fn labels(cluster: &str, run_id: &str, extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut l = HashMap::from([
        (LABEL.to_string(), "1".to_string()),
        (LABEL_CLUSTER.to_string(), cluster.to_string()),
        (LABEL_RUN.to_string(), run_id.to_string()),
    ]);
    for (k, v) in extra {
        l.insert(k.to_string(), v.to_string());
    }
    l
}

/// Label selectors in Docker's filter syntax, e.g. `etcd-drill.cluster=foo` or `etcd-drill`;
/// an object matches when it carries every one of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector(pub Vec<String>);

impl Selector {
    pub fn all() -> Self {
        Selector(vec![LABEL.to_string()])
    }
    /// Everything of a cluster, whichever run made it (`cluster down`, `cleanup --cluster`).
    pub fn cluster(name: &str) -> Self {
        Selector(vec![format!("{LABEL_CLUSTER}={name}")])
    }
    pub fn run(run_id: &str) -> Self {
        Selector(vec![format!("{LABEL_RUN}={run_id}")])
    }
    /// What one run made of one cluster: what a cluster handle may tear down, so a failed
    /// start never touches another run's cluster of the same name.
    pub fn cluster_run(name: &str, run_id: &str) -> Self {
        let mut s = Selector::cluster(name);
        s.0.extend(Selector::run(run_id).0);
        s
    }
    pub(crate) fn filters(&self) -> HashMap<String, Vec<String>> {
        HashMap::from([("label".to_string(), self.0.clone())])
    }
}

/// What a selector matches right now; used by `cleanup`, `cluster down` and leak assertions.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Objects {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
}

impl Objects {
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty() && self.networks.is_empty() && self.volumes.is_empty()
    }
    /// Adds `other`'s names not already listed.
    pub fn merge(&mut self, other: Objects) {
        for (mine, theirs) in [
            (&mut self.containers, other.containers),
            (&mut self.networks, other.networks),
            (&mut self.volumes, other.volumes),
        ] {
            for n in theirs {
                if !mine.contains(&n) {
                    mine.push(n);
                }
            }
        }
    }
    /// "container a, b; network c" with at most 3 names per kind, for messages.
    pub fn describe(&self) -> String {
        let kind = |what: &str, names: &[String]| -> Option<String> {
            let (shown, more) = names.split_at(names.len().min(3));
            (!names.is_empty()).then(|| match more.len() {
                0 => format!("{what} {}", shown.join(", ")),
                n => format!("{what} {} and {n} more", shown.join(", ")),
            })
        };
        [
            kind("container", &self.containers),
            kind("network", &self.networks),
            kind("volume", &self.volumes),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("; ")
    }
}

/// The cluster names on every object labelled etcd-drill=1: clusters that still exist.
pub async fn cluster_names(docker: &Docker) -> Result<std::collections::BTreeSet<String>> {
    use bollard::query_parameters::ListContainersOptionsBuilder as C;
    let f = Selector::all().filters();
    let label = |l: Option<HashMap<String, String>>| l.and_then(|mut l| l.remove(LABEL_CLUSTER));
    let containers = docker
        .list_containers(Some(C::default().all(true).filters(&f).build()))
        .await
        .map_err(Error::docker("listing containers"))?;
    let networks = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::default().filters(&f).build(),
        ))
        .await
        .map_err(Error::docker("listing networks"))?;
    let volumes = docker
        .list_volumes(Some(
            ListVolumesOptionsBuilder::default().filters(&f).build(),
        ))
        .await
        .map_err(Error::docker("listing volumes"))?;
    let volumes = volumes.volumes.unwrap_or_default();
    Ok(containers
        .into_iter()
        .filter_map(|c| label(c.labels))
        .chain(networks.into_iter().filter_map(|n| label(n.labels)))
        .chain(volumes.into_iter().filter_map(|v| label(Some(v.labels))))
        .collect())
}

pub async fn list_objects(docker: &Docker, sel: &Selector) -> Result<Objects> {
    let f = sel.filters();
    Ok(Objects {
        containers: container_names(docker, &f).await?,
        networks: network_names(docker, &f).await?,
        volumes: volume_names(docker, &f).await?,
    })
}

type Filters = HashMap<String, Vec<String>>;

async fn container_names(docker: &Docker, f: &Filters) -> Result<Vec<String>> {
    let opts = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(f)
        .build();
    Ok(docker
        .list_containers(Some(opts))
        .await
        .map_err(Error::docker("listing containers"))?
        .into_iter()
        .filter_map(|c| {
            c.names
                .and_then(|n| n.first().map(|n| n.trim_start_matches('/').to_string()))
        })
        .collect())
}

async fn network_names(docker: &Docker, f: &Filters) -> Result<Vec<String>> {
    Ok(network_ids(docker, f)
        .await?
        .into_iter()
        .map(|(_, name)| name)
        .collect())
}

/// (ID, name) of each network matching the filters.
async fn network_ids(docker: &Docker, f: &Filters) -> Result<Vec<(String, String)>> {
    let opts = ListNetworksOptionsBuilder::default().filters(f).build();
    Ok(docker
        .list_networks(Some(opts))
        .await
        .map_err(Error::docker("listing networks"))?
        .into_iter()
        .filter_map(|n| Some((n.id?, n.name?)))
        .collect())
}

async fn volume_names(docker: &Docker, f: &Filters) -> Result<Vec<String>> {
    let opts = ListVolumesOptionsBuilder::default().filters(f).build();
    Ok(docker
        .list_volumes(Some(opts))
        .await
        .map_err(Error::docker("listing volumes"))?
        .volumes
        .unwrap_or_default()
        .into_iter()
        .map(|v| v.name)
        .collect())
}

/// Which of `wanted`'s names exist in Docker now, whoever made them.
pub async fn taken_names(docker: &Docker, wanted: &Objects) -> Result<Objects> {
    // Docker's name filter matches substrings: keep exact matches only. An empty filter
    // would list everything, so a kind with no wanted names is not asked for.
    let f = |names: &[String]| HashMap::from([("name".to_string(), names.to_vec())]);
    let exact = |mut found: Vec<String>, names: &[String]| {
        found.retain(|n| names.contains(n));
        found
    };
    let mut taken = Objects::default();
    if !wanted.containers.is_empty() {
        let found = container_names(docker, &f(&wanted.containers)).await?;
        taken.containers = exact(found, &wanted.containers);
    }
    if !wanted.networks.is_empty() {
        let found = network_names(docker, &f(&wanted.networks)).await?;
        taken.networks = exact(found, &wanted.networks);
    }
    if !wanted.volumes.is_empty() {
        let found = volume_names(docker, &f(&wanted.volumes)).await?;
        taken.volumes = exact(found, &wanted.volumes);
    }
    Ok(taken)
}

/// Refuses a cluster name in use, touching nothing: any object labelled with it, or any
/// object (whoever made it) with a name in `wanted`, the names the new cluster would take.
pub async fn ensure_cluster_name_free(docker: &Docker, name: &str, wanted: &Objects) -> Result<()> {
    let mut found = list_objects(docker, &Selector::cluster(name)).await?;
    let ours = !found.is_empty();
    found.merge(taken_names(docker, wanted).await?);
    let (name, found) = (name.to_string(), found.describe());
    match (ours, found.is_empty()) {
        (true, _) => Err(Error::ClusterNameInUse { name, found }),
        (false, false) => Err(Error::ClusterNamesTaken { name, found }),
        (false, true) => Ok(()),
    }
}

/// Creates a network that must be the only one of its name. Docker before API 1.44 allows
/// duplicates (a second `X-net` beside a running cluster's): if another one exists after
/// creating, ours is removed again and the name refused.
pub async fn create_unique_network(
    docker: &Docker,
    cluster: &str,
    request: bollard::models::NetworkCreateRequest,
) -> Result<()> {
    let name = request.name.clone();
    let in_use = |found: String| Error::ClusterNameInUse {
        name: cluster.to_string(),
        found,
    };
    let id = match docker.create_network(request).await {
        Ok(r) => r.id,
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 409, ..
        }) => return Err(in_use(format!("network {name}"))),
        Err(e) => return Err(Error::docker(format!("creating network {name}"))(e)),
    };
    let wanted = Objects {
        networks: vec![name.clone()],
        ..Default::default()
    };
    if taken_names(docker, &wanted).await?.networks.len() <= 1 {
        return Ok(());
    }
    ignore_missing(docker.remove_network(&id).await).map_err(Error::docker(format!(
        "removing the duplicate network {name}"
    )))?;
    Err(in_use(format!(
        "network {name}, created by someone else meanwhile"
    )))
}

/// Removes everything the selector matches: containers first (they hold the volumes and
/// network endpoints), then volumes and networks. Missing objects are not an error, so
/// concurrent or repeated cleanups are safe.
pub async fn remove_objects(docker: &Docker, sel: &Selector) -> Result<Objects> {
    let f = sel.filters();
    // Networks by ID: Docker allows two of one name, and refuses to remove either by name.
    let networks = network_ids(docker, &f).await?;
    let found = Objects {
        containers: container_names(docker, &f).await?,
        networks: networks.iter().map(|(_, name)| name.clone()).collect(),
        volumes: volume_names(docker, &f).await?,
    };
    let rm = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    futures_util::future::join_all(found.containers.iter().map(|c| {
        let rm = rm.clone();
        async move { ignore_missing(docker.remove_container(c, Some(rm)).await) }
    }))
    .await
    .into_iter()
    .collect::<Result<Vec<_>, _>>()
    .map_err(Error::docker("removing containers"))?;
    futures_util::future::join_all(found.volumes.iter().map(|v| async move {
        ignore_missing(
            docker
                .remove_volume(v, None::<bollard::query_parameters::RemoveVolumeOptions>)
                .await,
        )
    }))
    .await
    .into_iter()
    .collect::<Result<Vec<_>, _>>()
    .map_err(Error::docker("removing volumes"))?;
    for (id, name) in &networks {
        ignore_missing(docker.remove_network(id).await)
            .map_err(Error::docker(format!("removing network {name}")))?;
    }
    Ok(found)
}

pub(crate) fn ignore_missing(
    r: Result<(), bollard::errors::Error>,
) -> Result<(), bollard::errors::Error> {
    match r {
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(()),
        // "removal already in progress": another cleanup got there first.
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 409, ..
        }) => Ok(()),
        other => other,
    }
}

pub(crate) fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_run_selector_requires_both_labels() {
        let f = Selector::cluster_run("x", "r1").filters();
        assert_eq!(
            f["label"],
            vec![
                "etcd-drill.cluster=x".to_string(),
                "etcd-drill.run=r1".to_string()
            ]
        );
        assert_eq!(Selector::cluster("x").filters()["label"].len(), 1);
    }

    #[test]
    fn objects_merge_and_describe() {
        let mut a = Objects {
            containers: vec!["c1".into()],
            ..Default::default()
        };
        a.merge(Objects {
            containers: vec!["c1".into(), "c2".into(), "c3".into(), "c4".into()],
            networks: vec!["n".into()],
            volumes: vec![],
        });
        assert_eq!(a.containers, ["c1", "c2", "c3", "c4"]);
        assert_eq!(a.describe(), "container c1, c2, c3 and 1 more; network n");
        assert_eq!(Objects::default().describe(), "");
    }
}
