//! etcd release lines and cluster sizes: what the harness can drive.

use super::Invalid;

pub const MIN_SIZE: usize = 1;
pub const MAX_SIZE: usize = 9;

/// The line drills use unless told otherwise: 3.5.5+ (3.5.0–3.5.4 have data-inconsistency bugs).
pub const DEFAULT_VERSION: &str = "3.5";

/// An etcd release line the harness knows how to build and drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    V3_4,
    V3_5,
}

impl Line {
    pub fn parse(version: &str) -> Result<Line, Invalid> {
        let mm: Vec<&str> = version.trim_start_matches('v').splitn(3, '.').collect();
        match (mm.first(), mm.get(1)) {
            (Some(&"3"), Some(&"4")) => Ok(Line::V3_4),
            (Some(&"3"), Some(&"5")) => Ok(Line::V3_5),
            _ => Err(Invalid::Input(format!(
                "unsupported etcd version {version:?}: etcd-drill supports the 3.4 and 3.5 lines (e.g. `--version 3.5` or `--version 3.4.23`)"
            ))),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Line::V3_4 => "3.4",
            Line::V3_5 => "3.5",
        }
    }
    /// The Debian suite whose `etcd-server`/`etcd-client` packages carry this line.
    pub fn debian_suite(self) -> &'static str {
        match self {
            Line::V3_4 => "bookworm",
            Line::V3_5 => "trixie",
        }
    }
}

/// 1 to 9 members: etcd's fault-tolerance table covers exactly these.
pub fn validate_size(size: usize) -> Result<(), Invalid> {
    if (MIN_SIZE..=MAX_SIZE).contains(&size) {
        Ok(())
    } else {
        Err(Invalid::Size { size })
    }
}

/// Flags the harness sets itself on every member: a user's value would break the cluster
/// (names, URLs, data dir, bootstrap) or the harness's way of reaching it (TLS, logger).
const HARNESS_FLAGS: [&str; 15] = [
    "--name",
    "--data-dir",
    "--wal-dir",
    "--listen-client-urls",
    "--listen-peer-urls",
    "--advertise-client-urls",
    "--initial-advertise-peer-urls",
    "--initial-cluster",
    "--initial-cluster-token",
    "--initial-cluster-state",
    "--logger",
    "--cert-file",
    "--key-file",
    "--trusted-ca-file",
    "--client-cert-auth",
];

/// A user's etcd flags: each `--flag` or `--flag=value`, none the harness owns.
pub fn check_etcd_args(args: &[String]) -> Result<(), Invalid> {
    for a in args {
        let flag = a.split('=').next().unwrap_or(a);
        if !flag.starts_with("--") || flag.len() < 3 {
            return Err(Invalid::Input(format!(
                "etcd flag {a:?} is not of the form --flag=value"
            )));
        }
        let owned = HARNESS_FLAGS.contains(&flag)
            || flag.starts_with("--peer-")
            || flag.starts_with("--initial-");
        if owned {
            return Err(Invalid::Input(format!(
                "etcd flag {flag} is set by etcd-drill on every member (names, URLs, data dir, TLS); drop it from etcd_args"
            )));
        }
    }
    Ok(())
}

/// `etcd-<i>`, i >= 1: the member names the harness gives and accepts.
pub fn member_index(name: &str) -> Option<usize> {
    name.strip_prefix("etcd-")
        .and_then(|i| i.parse::<usize>().ok())
        .filter(|i| *i >= 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_users_etcd_flags_are_taken_and_the_harnesss_own_refused() {
        let ok = |a: &[&str]| check_etcd_args(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        ok(&[
            "--quota-backend-bytes=8589934592",
            "--auto-compaction-retention=1",
        ])
        .unwrap();
        for bad in [
            "--data-dir=/x",
            "--name=a",
            "--initial-cluster-state=new",
            "--peer-cert-file=x",
            "quota=1",
            "--",
        ] {
            let e = ok(&[bad]).unwrap_err().to_string();
            assert!(e.starts_with("invalid input: etcd flag"), "{bad}: {e}");
        }
    }

    #[test]
    fn member_names_are_etcd_dash_a_positive_index() {
        assert_eq!(member_index("etcd-4"), Some(4));
        for bad in ["etcd-0", "etcd-", "node-1", "etcd-x"] {
            assert_eq!(member_index(bad), None, "{bad}");
        }
    }
}
