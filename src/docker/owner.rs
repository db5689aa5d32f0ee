//! Whose run made an object, and whether that run is still alive: what lets a plain
//! `cleanup` on a shared daemon remove a killed run's leftovers and nothing of a live run.
//!
//! Every object carries `etcd-drill.owner=<pid>:<start>@<hostname>/<boot id>/<pid ns>`: the
//! process that created it, its start time (`/proc/<pid>/stat` field 22, clock ticks since
//! boot), and where it ran. The start time is there because pids are recycled: a pid that now
//! belongs to a process started at another time is not the owner. The boot id and the pid
//! namespace are there because a pid means that process only to someone on the same kernel,
//! in the same boot, looking through the same pid namespace; anyone else cannot tell, and
//! keeps the object. Only reading `/proc` is impure here; [`liveness`] is the decision.

use std::collections::HashMap;
use std::sync::OnceLock;

/// The process that created an object (see the module comment for the format).
pub const LABEL_OWNER: &str = "etcd-drill.owner";
/// "1" on the objects of a cluster meant to outlive the process that made it (`cluster up`).
pub const LABEL_KEEP: &str = "etcd-drill.keep";

/// Where a process runs, as far as its pid means anything: the same boot of the same
/// kernel and the same pid namespace. The hostname is for people reading the label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub hostname: String,
    pub boot_id: String,
    pub pid_ns: String,
}

/// One process, told apart from any later process that gets its pid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    /// Clock ticks after boot at which the process started.
    pub start: u64,
    pub host: Host,
}

impl Owner {
    pub fn label(&self) -> String {
        let h = &self.host;
        format!(
            "{}:{}@{}/{}/{}",
            self.pid, self.start, h.hostname, h.boot_id, h.pid_ns
        )
    }

    /// The owner a label names, or `None` when it is not one this module writes.
    pub fn parse(label: &str) -> Option<Owner> {
        let (proc, host) = label.split_once('@')?;
        let (pid, start) = proc.split_once(':')?;
        let mut parts = host.split('/');
        let (hostname, boot_id, pid_ns) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || boot_id.is_empty() || pid_ns.is_empty() {
            return None;
        }
        Some(Owner {
            pid: pid.parse().ok().filter(|p| *p > 0)?,
            start: start.parse().ok()?,
            host: Host {
                hostname: hostname.to_string(),
                boot_id: boot_id.to_string(),
                pid_ns: pid_ns.to_string(),
            },
        })
    }
}

/// Whether an object's run is alive, and so whether a plain `cleanup` may remove it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    /// Its owner process is gone, or its pid now belongs to a process started later.
    Dead,
    /// Its owner process still runs: it removes what it made when it ends.
    Alive,
    /// Made by `cluster up`: meant to outlive its process, removed by `cluster down`.
    KeptByUser,
    /// Made on another host, boot or pid namespace (the hostname): its pid means nothing here.
    OtherHost(String),
    /// No owner label: made by an etcd-drill older than the label, which may still be running.
    NoOwner,
    /// An owner label this version does not read (the label's value).
    Unreadable(String),
}

impl Liveness {
    pub fn removable(&self) -> bool {
        *self == Liveness::Dead
    }
}

/// The decision, from an object's labels and facts about this host: `here` is where this
/// process runs (`None` when it cannot be told, which makes every owner unknowable), and
/// `running_since(pid)` the start time of a running process with that pid (`None`: no such
/// process, or a zombie).
pub fn liveness(
    labels: &HashMap<String, String>,
    here: Option<&Host>,
    running_since: impl Fn(u32) -> Option<u64>,
) -> Liveness {
    // A kept cluster stays whoever made it, even if its maker is long gone: that is the point.
    if labels.get(LABEL_KEEP).is_some_and(|v| v == "1") {
        return Liveness::KeptByUser;
    }
    let Some(label) = labels.get(LABEL_OWNER) else {
        return Liveness::NoOwner;
    };
    let Some(owner) = Owner::parse(label) else {
        return Liveness::Unreadable(label.clone());
    };
    let same_host =
        here.is_some_and(|h| h.boot_id == owner.host.boot_id && h.pid_ns == owner.host.pid_ns);
    if !same_host {
        return Liveness::OtherHost(owner.host.hostname);
    }
    match running_since(owner.pid) {
        Some(start) if start == owner.start => Liveness::Alive,
        _ => Liveness::Dead,
    }
}

/// State (field 3) and start time (field 22) from the text of `/proc/<pid>/stat`. The
/// command name (field 2) is in parentheses and may hold spaces and parentheses itself,
/// so fields are counted after the last `)`.
pub fn parse_stat(stat: &str) -> Option<(char, u64)> {
    let mut rest = stat.rsplit_once(')')?.1.split_whitespace();
    let state = rest.next()?.chars().next()?;
    // Field 3 was the first after `)`; field 22 is 18 further on.
    let start = rest.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// The inode of a pid namespace from its `/proc/…/ns/pid` link: `pid:[4026531836]`.
pub fn parse_pid_ns(link: &str) -> Option<String> {
    let inode = link.strip_prefix("pid:[")?.strip_suffix(']')?;
    (!inode.is_empty() && inode.bytes().all(|b| b.is_ascii_digit())).then(|| inode.to_string())
}

/// The start time of the running process `pid` on this host; `None` for no such process
/// and for a zombie (it has exited; only its parent has not collected it yet).
pub fn running_since(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    match parse_stat(&stat)? {
        ('Z' | 'X', _) => None,
        (_, start) => Some(start),
    }
}

/// This process's host, read from `/proc`; `None` where there is no `/proc` to read.
pub fn this_host() -> Option<Host> {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_string())
    };
    let link = std::fs::read_link("/proc/self/ns/pid").ok()?;
    Some(Host {
        hostname: read("/proc/sys/kernel/hostname").unwrap_or_default(),
        boot_id: read("/proc/sys/kernel/random/boot_id").filter(|b| !b.is_empty())?,
        pid_ns: parse_pid_ns(&link.to_string_lossy())?,
    })
}

/// The owner label of everything this process creates: read once, it does not change.
/// Where `/proc` cannot be read the label says so, and every `cleanup` keeps the object.
pub fn this_owner_label() -> &'static str {
    static LABEL: OnceLock<String> = OnceLock::new();
    LABEL.get_or_init(|| {
        let pid = std::process::id();
        match (this_host(), running_since(pid)) {
            (Some(host), Some(start)) => Owner { pid, start, host }.label(),
            _ => format!("{pid}:unknown"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(boot: &str, ns: &str) -> Host {
        Host {
            hostname: "ci-1".into(),
            boot_id: boot.into(),
            pid_ns: ns.into(),
        }
    }

    fn owned(label: &str) -> HashMap<String, String> {
        HashMap::from([(LABEL_OWNER.to_string(), label.to_string())])
    }

    const BOOT: &str = "3f1c6a52-9a57-4a8e-9b5e-0d1f2b7c8e11";

    #[test]
    fn an_owner_label_reads_back() {
        let o = Owner {
            pid: 4242,
            start: 987_654,
            host: host(BOOT, "4026531836"),
        };
        let label = o.label();
        assert_eq!(label, format!("4242:987654@ci-1/{BOOT}/4026531836"));
        assert_eq!(Owner::parse(&label), Some(o));
    }

    #[test]
    fn broken_owner_labels_are_not_read() {
        for bad in [
            "",
            "4242",
            "4242:unknown",
            "4242:12@ci-1",
            "4242:12@ci-1/boot",
            "4242:12@ci-1//4026531836",
            "4242:12@ci-1/boot/",
            "4242:12@ci-1/boot/ns/extra",
            "0:12@ci-1/boot/ns",
            "-1:12@ci-1/boot/ns",
            "x:12@ci-1/boot/ns",
            "4242:-5@ci-1/boot/ns",
        ] {
            assert_eq!(Owner::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_run_is_alive_only_while_its_very_process_runs() {
        let here = host(BOOT, "77");
        let label = owned(&format!("100:5000@ci-1/{BOOT}/77"));
        let judge = |since: Option<u64>| liveness(&label, Some(&here), |_| since);
        assert_eq!(judge(Some(5000)), Liveness::Alive);
        assert_eq!(judge(None), Liveness::Dead, "no such process");
        assert_eq!(
            judge(Some(9000)),
            Liveness::Dead,
            "the pid was recycled by a process started later"
        );
        // The pid asked about is the owner's.
        let asked = std::cell::Cell::new(0);
        liveness(&label, Some(&here), |p| {
            asked.set(p);
            None
        });
        assert_eq!(asked.get(), 100);
    }

    #[test]
    fn what_cannot_be_checked_from_here_is_kept() {
        let here = host(BOOT, "77");
        let never = |_| -> Option<u64> { panic!("a pid of another host must not be looked up") };
        let other_boot = owned("100:5000@ci-1/another-boot/77");
        assert_eq!(
            liveness(&other_boot, Some(&here), never),
            Liveness::OtherHost("ci-1".into())
        );
        let other_ns = owned(&format!("100:5000@box/{BOOT}/78"));
        assert_eq!(
            liveness(&other_ns, Some(&here), never),
            Liveness::OtherHost("box".into()),
            "another pid namespace (a container) on the same kernel"
        );
        let mine = owned(&format!("100:5000@ci-1/{BOOT}/77"));
        assert_eq!(
            liveness(&mine, None, never),
            Liveness::OtherHost("ci-1".into()),
            "where this host cannot be read, nothing can be checked"
        );
        assert_eq!(
            liveness(&HashMap::new(), Some(&here), never),
            Liveness::NoOwner
        );
        assert_eq!(
            liveness(&owned("100:unknown"), Some(&here), never),
            Liveness::Unreadable("100:unknown".into())
        );
        assert!(!Liveness::NoOwner.removable() && Liveness::Dead.removable());
    }

    #[test]
    fn a_kept_cluster_stays_even_when_its_maker_is_dead() {
        let here = host(BOOT, "77");
        let mut labels = owned(&format!("100:5000@ci-1/{BOOT}/77"));
        labels.insert(LABEL_KEEP.into(), "1".into());
        assert_eq!(
            liveness(&labels, Some(&here), |_| None),
            Liveness::KeptByUser
        );
        labels.insert(LABEL_KEEP.into(), "0".into());
        assert_eq!(liveness(&labels, Some(&here), |_| None), Liveness::Dead);
    }

    #[test]
    fn proc_stat_is_read_past_a_command_name_with_spaces_and_parens() {
        let tail = "S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 123456 19 20";
        assert_eq!(
            parse_stat(&format!("42 (etcd-drill) {tail}")),
            Some(('S', 123456))
        );
        assert_eq!(
            parse_stat(&format!("42 (a b) (c)) {tail}")),
            Some(('S', 123456))
        );
        assert_eq!(
            parse_stat(&format!("42 (x) Z{}", &tail[1..])),
            Some(('Z', 123456))
        );
        assert_eq!(parse_stat("42 (short) S 1 2"), None);
        assert_eq!(parse_stat("no parens at all"), None);
        assert_eq!(
            parse_stat(&format!("42 (x) {}", tail.replace("123456", "x"))),
            None
        );
    }

    #[test]
    fn pid_namespace_links_are_read() {
        assert_eq!(parse_pid_ns("pid:[4026531836]"), Some("4026531836".into()));
        for bad in ["pid:[]", "net:[4026531836]", "pid:[40x]", "pid:4026531836"] {
            assert_eq!(parse_pid_ns(bad), None, "{bad}");
        }
    }

    #[test]
    fn this_process_is_alive_by_its_own_label() {
        let label = owned(this_owner_label());
        assert_eq!(
            liveness(&label, this_host().as_ref(), running_since),
            Liveness::Alive
        );
    }
}
