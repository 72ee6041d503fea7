//! The relay's own nftables table (`table ip hometun`): source NAT of the client pool towards
//! the LAN in masquerade mode. Only this table is ever created or deleted.

use hometun_shared::ipv4::Network;
use anyhow::{bail, Context};
use std::io::Write;
use std::process::{Command, Stdio};

/// Name of the nftables table the relay owns.
pub const TABLE: &str = "hometun";

/// The ruleset text for masquerading `pool` out of `lan_interface` (or towards `lan`).
pub fn ruleset(pool: Network, lan: Network, lan_interface: Option<&str>) -> String {
    let out = match lan_interface {
        Some(ifname) => format!("oifname \"{ifname}\""),
        None => format!("ip daddr {lan}"),
    };
    // `add` then `delete` first clears a table left over by a crash, in the same transaction.
    format!(
        "add table ip {TABLE}\ndelete table ip {TABLE}\ntable ip {TABLE} {{\n  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    ip saddr {pool} {out} masquerade\n  }}\n}}\n"
    )
}

/// Installs the table; replaces a stale one.
pub fn install(pool: Network, lan: Network, lan_interface: Option<&str>) -> anyhow::Result<()> {
    nft_script(&ruleset(pool, lan, lan_interface))
}

/// Removes the table if present.
pub fn remove() -> anyhow::Result<()> {
    nft_script(&format!("add table ip {TABLE}\ndelete table ip {TABLE}\n"))
}

fn nft_script(script: &str) -> anyhow::Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("running `nft` (install nftables)")?;
    child.stdin.take().context("nft stdin")?.write_all(script.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("nft failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ruleset_touches_only_its_table() {
        let text = ruleset("10.8.0.0/24".parse().unwrap(), "192.168.0.0/24".parse().unwrap(), Some("eth1"));
        assert!(text.contains("ip saddr 10.8.0.0/24 oifname \"eth1\" masquerade"));
        for line in text.lines().filter(|l| l.contains("table")) {
            assert!(line.contains("table ip hometun"), "{line}");
        }
        let text = ruleset("10.8.0.0/24".parse().unwrap(), "192.168.0.0/24".parse().unwrap(), None);
        assert!(text.contains("ip daddr 192.168.0.0/24 masquerade"));
    }
}
