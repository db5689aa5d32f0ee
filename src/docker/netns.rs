//! iptables inside a container's network namespace, run from the host with `nsenter`: the
//! etcd image has no shell and no tools. The processes are awaited through tokio, so an
//! iptables waiting on the xtables lock (`-w`) holds up only its caller, never a runtime
//! worker thread that other tasks (the availability probes of a drill) run on.

use tokio::process::Command;

use crate::error::{Error, Result};

/// The chain partition rules go into, so healing removes exactly what partitioning added
/// and a later process can tell a partitioned member from its rules alone.
pub const CHAIN: &str = "ETCD_DRILL";

/// `iptables` in the network namespace of the process `pid`.
fn iptables_in(pid: i64) -> Command {
    let mut c = Command::new("nsenter");
    c.args(["-t", &pid.to_string(), "-n", "iptables"]);
    c
}

/// Runs `iptables -w RULE…` in the namespace of `member`'s process `pid`.
/// `tolerate_exists`: creating a chain that exists, or flushing a missing one, is fine.
pub async fn iptables(
    pid: i64,
    rule: &[String],
    member: &str,
    tolerate_exists: bool,
) -> Result<()> {
    let out = iptables_in(pid)
        .arg("-w")
        .args(rule)
        .output()
        .await
        .map_err(|e| Error::Failed(format!("cannot run nsenter/iptables for {member} ({e}); install util-linux and iptables, run as root")))?;
    if !out.status.success() && !tolerate_exists {
        return Err(Error::Failed(format!(
            "iptables {} in {member}'s network namespace failed: {}",
            rule.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Whether [`CHAIN`] in the namespace of process `pid` drops traffic, i.e. the member is
/// partitioned. What cannot be read (no chain, no nsenter, no privileges) counts as not
/// partitioned: a cluster that was never partitioned has no chain at all.
pub async fn drops_traffic(pid: i64) -> bool {
    iptables_in(pid)
        .args(["-S", CHAIN])
        .output()
        .await
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("-j DROP"))
}
