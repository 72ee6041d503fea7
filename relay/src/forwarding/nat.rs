//! The relay's own nftables table (`table ip hometun`): source NAT of the client pool towards
//! the LAN in masquerade mode and, with [`install_firewall`], a forward chain that keeps the
//! home server from routing anything but client traffic to and from the LAN through the tun
//! device. Only this table is ever created or deleted.

use anyhow::{bail, Context};
use hometun_shared::ipv4::Network;
use std::io::Write;
use std::process::{Command, Stdio};

/// Name of the nftables table the relay owns.
pub const TABLE: &str = "hometun";

/// Most flows one device may have open through the home server's kernel at once (its
/// connection-tracking entries, which NAT needs). A phone's apps and a browser use a few hundred;
/// without a bound, one device sending from thousands of ports a second filled the kernel's
/// table (`nf_conntrack_max`), and every device's new connections, and the home server's own
/// forwarding, were dropped. A new flow beyond it is dropped; the device's others go on.
pub const FLOWS_PER_DEVICE: u32 = 4096;

/// What the relay's table should allow.
#[derive(Clone, Debug)]
pub struct Firewall {
    /// The client pool.
    pub pool: Network,
    /// The LAN clients reach.
    pub lan: Network,
    /// The interface towards the LAN, when known.
    pub lan_interface: Option<String>,
    /// The relay's tun device.
    pub tun: String,
    /// Masquerade mode (clients appear as the relay on the LAN); otherwise routed mode.
    pub masquerade: bool,
    /// The home server did not forward traffic from the LAN interface (or at all, without an
    /// interface) before the relay switched forwarding on for its clients: then nothing else
    /// from the LAN is forwarded either (a LAN host cannot route through the home server into
    /// a Docker bridge or another VPN). When forwarding was already on, that was the owner's
    /// choice and the relay leaves other traffic alone.
    pub lan_was_not_forwarding: bool,
    /// Devices may reach each other (`client_to_client`): what one sends to another goes in
    /// and out of the tun, after the relay's own per-device checks (address, ACL).
    pub client_to_client: bool,
}

/// The ruleset text for `fw`, a whole transaction that replaces a stale table.
///
/// Forward chain: a device's new flows beyond [`FLOWS_PER_DEVICE`] dropped; tun → LAN allowed; LAN → tun only for established/related flows in
/// masquerade mode, or from the LAN in routed mode; tun → tun between pool addresses with
/// `client_to_client`; everything else forwarded in or out of the tun dropped. Other forwarded traffic of the host is not this table's business (policy
/// accept) — unless the relay is what switched forwarding on: then the rest of what comes in
/// from the LAN (everything else, without a LAN interface) is dropped too. NAT matches packets that came in on the tun and leave towards the LAN, so a
/// spoofed pool address arriving elsewhere is not masqueraded.
pub fn firewall_ruleset(fw: &Firewall) -> String {
    ruleset(fw, true)
}

/// [`firewall_ruleset`], with the bound on a device's flows when `bound_flows`.
fn ruleset(fw: &Firewall, bound_flows: bool) -> String {
    let tun = &fw.tun;
    let (lan_out, lan_in) = match &fw.lan_interface {
        // As the masquerade rule always did: with an interface, whatever leaves through it
        // (an ACL may allow more than the LAN's own network behind it).
        Some(ifname) => (format!("oifname \"{ifname}\""), format!("iifname \"{ifname}\"")),
        None => (format!("ip daddr {}", fw.lan), format!("ip saddr {}", fw.lan)),
    };
    let back_in = if fw.masquerade {
        format!("    {lan_in} oifname \"{tun}\" ip daddr {} ct state established,related accept\n", fw.pool)
    } else {
        format!("    {lan_in} oifname \"{tun}\" ip daddr {} accept\n", fw.pool)
    };
    let between_devices = if fw.client_to_client {
        format!("    iifname \"{tun}\" oifname \"{tun}\" ip saddr {pool} ip daddr {pool} accept\n", pool = fw.pool)
    } else {
        String::new()
    };
    let not_a_router = match (&fw.lan_interface, fw.lan_was_not_forwarding) {
        (Some(ifname), true) => format!("    iifname \"{ifname}\" drop\n"),
        (None, true) => "    drop\n".to_owned(),
        (_, false) => String::new(),
    };
    let nat = if fw.masquerade {
        format!(
            "  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    iifname \"{tun}\" ip saddr {} {lan_out} masquerade\n  }}\n",
            fw.pool
        )
    } else {
        String::new()
    };
    let (flows_set, flows_rule) = if bound_flows {
        (
            format!("  set flows {{\n    type ipv4_addr; size {}; flags dynamic;\n  }}\n", fw.pool.size().min(65_536)),
            format!(
                "    iifname \"{tun}\" ct state new add @flows {{ ip saddr ct count over {FLOWS_PER_DEVICE} }} drop\n"
            ),
        )
    } else {
        (String::new(), String::new())
    };
    format!(
        "add table ip {TABLE}\ndelete table ip {TABLE}\ntable ip {TABLE} {{\n{flows_set}  chain forward {{\n    type filter hook forward priority filter; policy accept;\n{flows_rule}    iifname \"{tun}\" ip saddr {pool} {lan_out} accept\n{back_in}{between_devices}    iifname \"{tun}\" drop\n    oifname \"{tun}\" drop\n{not_a_router}  }}\n{nat}}}\n",
        pool = fw.pool
    )
}

/// Installs the table with the forward chain (and NAT in masquerade mode); replaces a stale
/// one.
/// A kernel without connection counting for nftables (`nft_connlimit`) gets the table without the
/// bound on a device's flows, and a warning, rather than no relay.
pub fn install_firewall(fw: &Firewall) -> anyhow::Result<()> {
    let Err(bounded) = nft_script(&ruleset(fw, true)) else { return Ok(()) };
    nft_script(&ruleset(fw, false)).map_err(|_| bounded)?;
    tracing::warn!(
        "this kernel cannot count a device's connections for nftables (nft_connlimit): one device could fill \
         the connection table for all; the rest of the relay's firewall is in place"
    );
    Ok(())
}

/// Whether the relay's table is in the kernel's ruleset now.
pub fn table_present() -> bool {
    Command::new("nft")
        .args(["list", "table", "ip", TABLE])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
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

    fn firewall(masquerade: bool, lan_interface: Option<&str>) -> Firewall {
        Firewall {
            pool: "10.8.0.0/24".parse().unwrap(),
            lan: "192.168.0.0/24".parse().unwrap(),
            lan_interface: lan_interface.map(str::to_owned),
            tun: "hometun0".into(),
            masquerade,
            lan_was_not_forwarding: false,
            client_to_client: false,
        }
    }

    #[test]
    fn firewall_rules_by_mode() {
        /// Masquerade mode, LAN interface, rules wanted, text not wanted.
        type Case<'a> = (bool, Option<&'a str>, &'a [&'a str], &'a [&'a str]);
        let cases: &[Case] = &[
            (
                true,
                Some("eth1"),
                &[
                    "iifname \"hometun0\" ip saddr 10.8.0.0/24 oifname \"eth1\" accept",
                    "iifname \"eth1\" oifname \"hometun0\" ip daddr 10.8.0.0/24 ct state established,related accept",
                    "iifname \"hometun0\" drop",
                    "oifname \"hometun0\" drop",
                    "iifname \"hometun0\" ip saddr 10.8.0.0/24 oifname \"eth1\" masquerade",
                ],
                &["\n    ip saddr 10.8.0.0/24"],
            ),
            (
                false,
                None,
                &[
                    "iifname \"hometun0\" ip saddr 10.8.0.0/24 ip daddr 192.168.0.0/24 accept",
                    "ip saddr 192.168.0.0/24 oifname \"hometun0\" ip daddr 10.8.0.0/24 accept",
                    "iifname \"hometun0\" drop",
                    "oifname \"hometun0\" drop",
                ],
                &["masquerade", "ct state established"],
            ),
        ];
        for (masquerade, ifname, want, not) in cases {
            let text = firewall_ruleset(&firewall(*masquerade, *ifname));
            for w in *want {
                assert!(text.contains(w), "missing {w:?} in\n{text}");
            }
            for n in *not {
                assert!(!text.contains(n), "unexpected {n:?} in\n{text}");
            }
            // The drops come after the accepts (first match wins), the bound on new flows before.
            let flows = text.find("ct state new add @flows { ip saddr ct count over 4096 } drop\n").unwrap();
            assert!(flows < text.find("accept\n").unwrap());
            assert!(text.find("accept\n").unwrap() < text.find("iifname \"hometun0\" drop\n").unwrap());
            for line in text.lines().filter(|l| l.contains("table")) {
                assert!(line.contains("table ip hometun"), "{line}");
            }
        }
    }

    #[test]
    fn a_home_server_that_did_not_route_does_not_become_a_router() {
        for (ifname, last) in [(Some("eth1"), "    iifname \"eth1\" drop\n  }"), (None, "    drop\n  }")] {
            let mut fw = firewall(true, ifname);
            assert!(!firewall_ruleset(&fw).contains(last), "forwarding was already on: other traffic untouched");
            fw.lan_was_not_forwarding = true;
            let text = firewall_ruleset(&fw);
            assert!(text.contains(last), "missing the final drop {last:?} in\n{text}");
            let accept = text.find("ct state established,related accept").unwrap();
            assert!(accept < text.find(last).unwrap(), "replies to clients still pass:\n{text}");
        }
    }

    #[test]
    fn devices_pass_between_each_other_only_with_client_to_client() {
        let rule = "iifname \"hometun0\" oifname \"hometun0\" ip saddr 10.8.0.0/24 ip daddr 10.8.0.0/24 accept";
        let mut fw = firewall(true, Some("eth1"));
        assert!(!firewall_ruleset(&fw).contains(rule), "off by default");
        fw.client_to_client = true;
        let text = firewall_ruleset(&fw);
        let at = text.find(rule).unwrap_or_else(|| panic!("missing {rule:?} in\n{text}"));
        assert!(at < text.find("iifname \"hometun0\" drop").unwrap(), "before the drops:\n{text}");
    }

    /// The rulesets are valid nftables: `nft --check` in a fresh network namespace of its own
    /// (needs root and nft; the host's tables are never touched).
    #[test]
    fn firewall_rulesets_pass_nft_check() {
        if !nix_root() {
            eprintln!("skipped: needs root");
            return;
        }
        for (masquerade, ifname) in [(true, Some("eth1")), (true, None), (false, Some("eth1")), (false, None)] {
            let mut fw = firewall(masquerade, ifname);
            fw.lan_was_not_forwarding = masquerade;
            fw.client_to_client = !masquerade;
            let text = firewall_ruleset(&fw);
            let mut child = Command::new("unshare")
                .args(["--net", "nft", "--check", "-f", "-"])
                .stdin(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("unshare and nft");
            child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "{}\n{text}", String::from_utf8_lossy(&out.stderr));
        }
    }

    fn nix_root() -> bool {
        std::fs::read_to_string("/proc/self/status")
            .map(|s| s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0")))
            .unwrap_or(false)
    }
}
