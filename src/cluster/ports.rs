//! Members' client ports on the host: allocated once, when a member is first described,
//! and kept for the cluster's whole life, so `etcdctl --endpoints` taken from `cluster up
//! --json` still works after `fault … restart`, and a member can advertise a URL the host
//! can reach before it first starts.
//!
//! Docker's own allocator (`HostPort: ""`) is race-free but picks a new port on every
//! start. So the harness picks: the kernel offers a free port (a bind to port 0), ports
//! another cluster holds are refused, and the choice is recorded in Docker labels (the
//! network's for a cluster's first members, the container's for a member added later)
//! while a lock file serialises pickers, so two concurrent runs never pick the same port
//! even while one's member is stopped and its port is not bound.

use std::collections::BTreeSet;
use std::net::TcpListener;

use bollard::Docker;

use super::state_root;
use crate::error::{Error, Result};

/// On a cluster's network: the client ports of the members it was created with, `a,b,c`.
pub const LABEL_CLIENT_PORTS: &str = "etcd-drill.client-ports";
/// On a member's container: its client port on 127.0.0.1.
pub const LABEL_CLIENT_PORT: &str = "etcd-drill.client-port";

/// Held while ports are picked and until the labels recording them exist.
pub struct PortLock {
    _file: std::fs::File,
}

/// Waits for the state directory's port lock (another run may be picking).
pub async fn lock() -> Result<PortLock> {
    let root = state_root();
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&root).map_err(Error::io("creating the state directory", &root))?;
        let path = root.join("ports.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(Error::io("opening the port lock", &path))?;
        file.lock()
            .map_err(Error::io("locking the port lock", &path))?;
        Ok(PortLock { _file: file })
    })
    .await
    .map_err(|e| Error::Failed(format!("the port lock task failed: {e}")))?
}

/// Every client port an etcd-drill cluster holds, running or not, as its labels record
/// (and, for containers made before the labels existed, as Docker publishes them).
pub async fn taken(docker: &Docker) -> Result<BTreeSet<u16>> {
    let (nets, containers) = super::attach::labelled(docker).await?;
    let mut ports: BTreeSet<u16> = nets
        .iter()
        .filter_map(|n| n.labels.as_ref()?.get(LABEL_CLIENT_PORTS))
        .flat_map(|l| parse_ports(l))
        .collect();
    for c in &containers {
        let label = c.labels.as_ref().and_then(|l| l.get(LABEL_CLIENT_PORT));
        ports.extend(label.into_iter().flat_map(|l| parse_ports(l)));
        ports.extend(c.ports.iter().flatten().filter_map(|p| p.public_port));
    }
    Ok(ports)
}

/// `n` distinct free loopback ports, none of them in `taken`. Every offered port stays
/// bound until all are chosen, so the kernel never offers one twice.
pub fn pick(n: usize, taken: &BTreeSet<u16>) -> Result<Vec<u16>> {
    let mut held = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..(n + 64) {
        if ports.len() == n {
            break;
        }
        let l = TcpListener::bind(("127.0.0.1", 0))
            .map_err(|e| Error::Failed(format!("no free port on 127.0.0.1 for a member ({e})")))?;
        let p = l
            .local_addr()
            .map_err(|e| Error::Failed(format!("reading a bound port: {e}")))?
            .port();
        if !taken.contains(&p) {
            ports.push(p);
        }
        held.push(l);
    }
    if ports.len() < n {
        return Err(Error::Failed(format!(
            "found {} of {n} free ports on 127.0.0.1 that no other cluster holds; \
             `etcd-drill cleanup` removes clusters a killed run left",
            ports.len()
        )));
    }
    Ok(ports)
}

/// `a,b,c` → the ports; anything unreadable is skipped (a label is a hint, never trusted
/// to fail a run).
pub fn parse_ports(label: &str) -> Vec<u16> {
    label
        .split(',')
        .filter_map(|p| p.trim().parse().ok())
        .filter(|p| *p != 0)
        .collect()
}

pub fn join_ports(ports: &[u16]) -> String {
    ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_label_round_trips_and_ignores_junk() {
        assert_eq!(
            parse_ports(&join_ports(&[40001, 40002])),
            vec![40001, 40002]
        );
        assert_eq!(parse_ports("40001, x,0,,65535"), vec![40001, 65535]);
        assert!(parse_ports("").is_empty());
    }

    #[test]
    fn picked_ports_are_distinct_and_avoid_the_taken_ones() {
        let first = pick(9, &BTreeSet::new()).unwrap();
        let taken: BTreeSet<u16> = first.iter().copied().collect();
        assert_eq!(taken.len(), 9, "{first:?}");
        let second = pick(9, &taken).unwrap();
        assert!(second.iter().all(|p| !taken.contains(p)), "{second:?}");
    }
}
