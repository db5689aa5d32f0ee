//! The labels on everything etcd-drill creates, finding objects by them (and by name), and
//! removing them: what `cleanup`, `cluster down` and a cluster handle's rollback rely on.

use std::collections::HashMap;

use bollard::Docker;
use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
    RemoveContainerOptionsBuilder,
};

use super::owner;
use crate::error::{Error, Result};

/// Every container, network and volume etcd-drill creates carries this label (value "1").
pub const LABEL: &str = "etcd-drill";
pub const LABEL_CLUSTER: &str = "etcd-drill.cluster";
pub const LABEL_RUN: &str = "etcd-drill.run";
pub const LABEL_MEMBER: &str = "etcd-drill.member";

/// The labels of an object this process creates: etcd-drill's, its cluster, its run, and
/// its owner (this process, so `cleanup` can tell whether the run is still alive).
pub fn labels(cluster: &str, run_id: &str, extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut l = HashMap::from([
        (LABEL.to_string(), "1".to_string()),
        (LABEL_CLUSTER.to_string(), cluster.to_string()),
        (LABEL_RUN.to_string(), run_id.to_string()),
        (
            owner::LABEL_OWNER.to_string(),
            owner::this_owner_label().to_string(),
        ),
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
    /// The names of these objects, by kind.
    pub fn of(found: &[Found]) -> Objects {
        let names = |kind: Kind| {
            found
                .iter()
                .filter(|f| f.kind == kind)
                .map(|f| f.name.clone())
                .collect()
        };
        Objects {
            containers: names(Kind::Container),
            networks: names(Kind::Network),
            volumes: names(Kind::Volume),
        }
    }
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
    Ok(list_found(docker, &Selector::all())
        .await?
        .into_iter()
        .filter_map(|f| f.cluster().map(str::to_string))
        .collect())
}

/// What kind of Docker object a [`Found`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Container,
    Network,
    Volume,
}

impl Kind {
    pub fn word(self) -> &'static str {
        match self {
            Kind::Container => "container",
            Kind::Network => "network",
            Kind::Volume => "volume",
        }
    }
}

/// One object a selector matched, with its labels: what `cleanup` decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub kind: Kind,
    pub name: String,
    /// What Docker removes it by: the ID for networks (two may share a name), else the name.
    pub id: String,
    pub labels: HashMap<String, String>,
}

impl Found {
    pub fn cluster(&self) -> Option<&str> {
        self.labels.get(LABEL_CLUSTER).map(String::as_str)
    }
}

/// Every container, network and volume the selector matches, with their labels.
pub async fn list_found(docker: &Docker, sel: &Selector) -> Result<Vec<Found>> {
    list_filtered(docker, &sel.filters()).await
}

type Filters = HashMap<String, Vec<String>>;

async fn list_filtered(docker: &Docker, f: &Filters) -> Result<Vec<Found>> {
    let opts = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(f)
        .build();
    let containers = docker
        .list_containers(Some(opts))
        .await
        .map_err(Error::docker("listing containers"))?
        .into_iter()
        .filter_map(|c| {
            let name = c.names?.first()?.trim_start_matches('/').to_string();
            Some(found(Kind::Container, name.clone(), name, c.labels))
        });
    let opts = ListNetworksOptionsBuilder::default().filters(f).build();
    let networks = docker
        .list_networks(Some(opts))
        .await
        .map_err(Error::docker("listing networks"))?
        .into_iter()
        .filter_map(|n| Some(found(Kind::Network, n.name?, n.id?, n.labels)));
    let mut all: Vec<Found> = containers.chain(networks).collect();
    let opts = ListVolumesOptionsBuilder::default().filters(f).build();
    let volumes = docker
        .list_volumes(Some(opts))
        .await
        .map_err(Error::docker("listing volumes"))?
        .volumes
        .unwrap_or_default();
    all.extend(
        volumes
            .into_iter()
            .map(|v| found(Kind::Volume, v.name.clone(), v.name, Some(v.labels))),
    );
    Ok(all)
}

fn found(kind: Kind, name: String, id: String, labels: Option<HashMap<String, String>>) -> Found {
    Found {
        kind,
        name,
        id,
        labels: labels.unwrap_or_default(),
    }
}

pub async fn list_objects(docker: &Docker, sel: &Selector) -> Result<Objects> {
    Ok(Objects::of(&list_found(docker, sel).await?))
}

/// Which of `wanted`'s names exist in Docker now, whoever made them.
pub async fn taken_names(docker: &Docker, wanted: &Objects) -> Result<Objects> {
    let names: Vec<String> = [&wanted.containers, &wanted.networks, &wanted.volumes]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    // An empty filter would list everything.
    if names.is_empty() {
        return Ok(Objects::default());
    }
    let f = HashMap::from([("name".to_string(), names)]);
    let listed = Objects::of(&list_filtered(docker, &f).await?);
    // Docker's name filter matches substrings: keep exact matches of the wanted kind only.
    let exact = |mut found: Vec<String>, names: &[String]| {
        found.retain(|n| names.contains(n));
        found
    };
    Ok(Objects {
        containers: exact(listed.containers, &wanted.containers),
        networks: exact(listed.networks, &wanted.networks),
        volumes: exact(listed.volumes, &wanted.volumes),
    })
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

/// Removes everything the selector matches (see [`remove_found`]).
pub async fn remove_objects(docker: &Docker, sel: &Selector) -> Result<Objects> {
    remove_found(docker, &list_found(docker, sel).await?).await
}

/// Removes these objects: containers first (they hold the volumes and network endpoints),
/// then volumes and networks; returns their names. Missing objects are not an error, so
/// concurrent or repeated cleanups are safe.
pub async fn remove_found(docker: &Docker, found: &[Found]) -> Result<Objects> {
    let of = |kind: Kind| found.iter().filter(move |f| f.kind == kind);
    let rm = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    futures_util::future::join_all(of(Kind::Container).map(|c| {
        let rm = rm.clone();
        async move { ignore_missing(docker.remove_container(&c.id, Some(rm)).await) }
    }))
    .await
    .into_iter()
    .collect::<Result<Vec<_>, _>>()
    .map_err(Error::docker("removing containers"))?;
    futures_util::future::join_all(of(Kind::Volume).map(|v| async move {
        ignore_missing(
            docker
                .remove_volume(
                    &v.id,
                    None::<bollard::query_parameters::RemoveVolumeOptions>,
                )
                .await,
        )
    }))
    .await
    .into_iter()
    .collect::<Result<Vec<_>, _>>()
    .map_err(Error::docker("removing volumes"))?;
    // Networks by ID: Docker allows two of one name, and refuses to remove either by name.
    for n in of(Kind::Network) {
        ignore_missing(docker.remove_network(&n.id).await)
            .map_err(Error::docker(format!("removing network {}", n.name)))?;
    }
    Ok(Objects::of(found))
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
