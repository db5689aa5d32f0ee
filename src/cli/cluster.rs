//! `cluster up|ls|down` and `fault`: clusters left running for people to poke at.

use clap::Args;

use super::Outcome;
use crate::chaos::fault::Injector;
use crate::cluster::{self, Cluster, ClusterSpec, image};
use crate::docker::{self, Selector};
use crate::error::{Error, Result};
use crate::model::fault::{FaultKind, Target};

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Number of members, 1 to 9.
    #[arg(long)]
    pub size: usize,
    /// Cluster name (default: drill-<random>); 1-40 of a-z, 0-9 and '-'.
    #[arg(long)]
    pub name: Option<String>,
    /// etcd line or version: 3.5, 3.4, or a full version with a local image.
    #[arg(long, default_value = image::DEFAULT_VERSION)]
    pub version: String,
    /// Client and peer TLS with client-certificate auth, like the seed's etcdctl procedure.
    #[arg(long)]
    pub tls: bool,
    /// Print the cluster (members, client URLs, certificates) as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct FaultArgs {
    /// The cluster to inject into (from `cluster up`).
    #[arg(long)]
    pub cluster: String,
    /// permanent, kill, stop, restart, pause, unpause, partition, heal, wipe-data
    pub fault: String,
    /// leader, follower, random, member:<i>, count:<k> (default random; for `heal`,
    /// every transient fault: paused, partitioned, killed and stopped members)
    #[arg(long)]
    pub target: Option<String>,
    /// Seed for random targets; printed, so a choice can be replayed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print the seed and the events as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The `cluster up --json` shape of a cluster.
#[derive(serde::Serialize)]
pub struct ClusterJson<'a> {
    name: &'a str,
    size: usize,
    version: &'a str,
    members: Vec<MemberJson<'a>>,
    tls: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    cacert: Option<std::path::PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cert: Option<std::path::PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<std::path::PathBuf>,
    /// The image's own etcdctl (and etcdutl on 3.5), extracted once per image onto this
    /// host: the client matching the cluster's etcd, no install needed.
    #[serde(skip_serializing_if = "Option::is_none")]
    etcdctl: Option<std::path::PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    etcdutl: Option<std::path::PathBuf>,
}

#[derive(serde::Serialize)]
struct MemberJson<'a> {
    name: &'a str,
    container: &'a str,
    client_url: &'a str,
    /// etcd's member ID in hex, as `etcdctl member list` prints it.
    id: String,
}

/// `tools`: the directory holding the image's etcdctl/etcdutl on this host, if extracted.
pub fn cluster_json<'a>(c: &'a Cluster, tools: Option<&std::path::Path>) -> ClusterJson<'a> {
    let members = c
        .members
        .iter()
        .map(|m| MemberJson {
            name: &m.name,
            container: &m.container,
            client_url: &m.client_url,
            id: format!("{:x}", m.id),
        })
        .collect();
    let pki = c.pki.as_ref();
    ClusterJson {
        name: c.name(),
        size: c.members.len(),
        version: &c.image.version,
        members,
        tls: c.spec.tls,
        cacert: pki.map(|p| p.ca_path()),
        cert: pki.map(|p| p.client_cert_path()),
        key: pki.map(|p| p.client_key_path()),
        etcdctl: tools.map(|d| d.join("etcdctl")),
        etcdutl: tools
            .map(|d| d.join("etcdutl"))
            .filter(|p| c.image.has_etcdutl() && p.is_file()),
    }
}

pub(super) async fn up(args: UpArgs, run_id: String) -> Result<Outcome> {
    let mut spec = ClusterSpec::new(args.size);
    spec.run_id = run_id;
    // The cluster outlives this process: a plain `cleanup` must not take it for a leftover.
    spec.persistent = true;
    spec.version = args.version;
    spec.tls = args.tls;
    if let Some(n) = args.name {
        spec.name = n;
    }
    spec.validate()?;
    let docker = docker::connect().await?;
    let c = Cluster::start(&docker, spec).await?.keep();
    let tools = crate::cluster::tools::host_tools(c.docker(), &c.image, c.labels(&[])).await?;
    let etcdctl = tools.join("etcdctl");
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&cluster_json(&c, Some(&tools))).expect("json")
        );
    } else {
        println!(
            "cluster {}: {} members, etcd {}, {}, healthy in {:.2}s",
            c.name(),
            c.members.len(),
            c.image.version,
            c.scheme(),
            c.start_elapsed.as_secs_f64()
        );
        for m in &c.members {
            println!("  {:<7} {:<28} {}", m.name, m.container, m.client_url);
        }
        let endpoints: Vec<&str> = c.members.iter().map(|m| m.client_url.as_str()).collect();
        match &c.pki {
            Some(p) => println!(
                "try: {} --endpoints {} --cacert {} --cert {} --key {} endpoint health",
                etcdctl.display(),
                endpoints.join(","),
                p.ca_path().display(),
                p.client_cert_path().display(),
                p.client_key_path().display()
            ),
            None => println!(
                "try: {} --endpoints {} endpoint health",
                etcdctl.display(),
                endpoints.join(",")
            ),
        }
        println!("tear down: etcd-drill cluster down {}", c.name());
    }
    Ok(Outcome::Ok)
}

pub(super) async fn ls(json: bool) -> Result<Outcome> {
    let docker = docker::connect().await?;
    let rows = cluster::list(&docker).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows).expect("json"));
    } else if rows.is_empty() {
        println!("no clusters");
    } else {
        println!(
            "{:<24} {:>4} {:>8} {:<5} {:<22} NOT RUNNING",
            "NAME", "SIZE", "RUNNING", "TLS", "IMAGE"
        );
        for r in rows {
            println!(
                "{:<24} {:>4} {:>8} {:<5} {:<22} {}",
                r.name,
                r.size,
                r.running,
                r.tls,
                r.image,
                not_running(&r.members)
            );
        }
    }
    Ok(Outcome::Ok)
}

/// Which members are not running, and what Docker says they are: "etcd-2 exited,
/// etcd-3 paused" — "2 running" alone does not say which member to look at.
fn not_running(members: &[cluster::MemberRow]) -> String {
    let down: Vec<String> = members
        .iter()
        .filter(|m| m.state != "running")
        .map(|m| format!("{} {}", m.name, m.state))
        .collect();
    if down.is_empty() {
        "-".into()
    } else {
        down.join(", ")
    }
}

/// Tears a cluster down. One that does not exist is a note, exit 0, so teardown steps can
/// run whatever happened before them; `strict` makes it an error.
pub(super) async fn down(name: &str, strict: bool) -> Result<Outcome> {
    cluster::validate_name(name)?;
    let docker = docker::connect().await?;
    if docker::list_objects(&docker, &Selector::cluster(name))
        .await?
        .is_empty()
    {
        if !strict {
            println!("no cluster named {name}: nothing to remove");
            return Ok(Outcome::Ok);
        }
        return Err(Error::InvalidInput(format!(
            "no cluster named {name}; `etcd-drill cluster ls` lists the running ones"
        )));
    }
    cluster::destroy_by_name(&docker, name).await?;
    println!("cluster {name} removed");
    Ok(Outcome::Ok)
}

/// The `fault --json` shape: the seed (to replay the choice) and what was injected.
#[derive(serde::Serialize)]
struct FaultJson<'a> {
    seed: u64,
    events: &'a [crate::model::fault::FaultEvent],
}

pub(super) async fn fault(args: FaultArgs) -> Result<Outcome> {
    let kind: FaultKind = args.fault.parse()?;
    let target: Option<Target> = args.target.as_deref().map(str::parse).transpose()?;
    let seed = args.seed.unwrap_or_else(Injector::random_seed);
    let docker = docker::connect().await?;
    let mut c = Cluster::attach(&docker, &args.cluster).await?;
    let mut inj = Injector::new(seed);
    match (kind, target) {
        (FaultKind::Heal, None) => {
            if inj.heal_all(&mut c).await?.is_empty() {
                println!(
                    "nothing to heal: no member of {} is paused, partitioned, killed or stopped",
                    c.name()
                );
            }
        }
        (kind, target) => {
            inj.inject(&mut c, kind, &target.unwrap_or(Target::Random))
                .await?;
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&FaultJson {
                seed,
                events: &inj.events
            })
            .expect("json")
        );
    } else {
        for e in &inj.events {
            println!(
                "{} {} (was {}); seed {seed}",
                e.fault,
                e.member,
                e.role.as_str()
            );
        }
    }
    Ok(Outcome::Ok)
}
