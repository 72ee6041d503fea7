//! Finds the home LAN from the host's routing table (`ip -j route`, `ip -j addr`).

use anyhow::{anyhow, Context};
use hometun_shared::ipv4::Network;
use serde::Deserialize;
use std::net::Ipv4Addr;
use std::process::Command;

#[derive(Deserialize)]
struct Route {
    dev: Option<String>,
}

#[derive(Deserialize)]
struct Link {
    ifname: String,
    #[serde(default)]
    addr_info: Vec<AddrInfo>,
}

#[derive(Deserialize)]
struct AddrInfo {
    family: Option<String>,
    local: Option<String>,
    prefixlen: Option<u8>,
}

/// An IPv4 address of this host and the interface holding it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostAddress {
    /// Interface name.
    pub ifname: String,
    /// The address.
    pub address: Ipv4Addr,
    /// Its subnet.
    pub net: Network,
}

fn ip_json(args: &[&str]) -> anyhow::Result<Vec<u8>> {
    let out = Command::new("ip").arg("-j").args(args).output().context("running `ip` (install iproute2)")?;
    if !out.status.success() {
        return Err(anyhow!("`ip -j {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(out.stdout)
}

/// All IPv4 addresses of this host (this network namespace).
pub fn addresses() -> anyhow::Result<Vec<HostAddress>> {
    let links: Vec<Link> =
        serde_json::from_slice(&ip_json(&["-4", "addr", "show"])?).context("parsing `ip -j addr`")?;
    Ok(parse_links(links))
}

fn parse_links(links: Vec<Link>) -> Vec<HostAddress> {
    let mut found = Vec::new();
    for link in links {
        for info in link.addr_info {
            let (Some(local), Some(prefix)) = (info.local, info.prefixlen) else { continue };
            if info.family.as_deref().is_some_and(|f| f != "inet") {
                continue;
            }
            let Ok(address) = local.parse::<Ipv4Addr>() else { continue };
            if let Ok(net) = Network::new(address, prefix) {
                found.push(HostAddress { ifname: link.ifname.clone(), address, net });
            }
        }
    }
    found
}

/// The interface of the default route and its subnet.
pub fn default_lan() -> anyhow::Result<HostAddress> {
    let routes: Vec<Route> =
        serde_json::from_slice(&ip_json(&["-4", "route", "show", "default"])?).context("parsing `ip -j route`")?;
    let dev = routes
        .into_iter()
        .find_map(|r| r.dev)
        .ok_or_else(|| anyhow!("no default route; pass --lan CIDR and --lan-interface NAME"))?;
    addresses()?
        .into_iter()
        .find(|a| a.ifname == dev)
        .ok_or_else(|| anyhow!("interface {dev} of the default route has no IPv4 address; pass --lan CIDR"))
}

/// The interface holding an address inside `lan`, if any.
pub fn interface_in(lan: &Network) -> Option<HostAddress> {
    addresses().ok()?.into_iter().find(|a| lan.contains(a.address))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ip_json() {
        let json = r#"[{"ifindex":1,"ifname":"lo","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8}]},
            {"ifindex":2,"ifname":"eth0","addr_info":[{"family":"inet","local":"192.168.0.5","prefixlen":24},{"family":"inet6","local":"fe80::1","prefixlen":64}]}]"#;
        let links: Vec<Link> = serde_json::from_str(json).unwrap();
        let found = parse_links(links);
        assert_eq!(found.len(), 2);
        assert_eq!(found[1].ifname, "eth0");
        assert_eq!(found[1].net.to_string(), "192.168.0.0/24");
        assert_eq!(found[1].address, Ipv4Addr::new(192, 168, 0, 5));
    }
}
