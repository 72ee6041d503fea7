//! The tun device: created with the relay's tunnel address, removed when dropped (it is not
//! persistent), and IPv4 forwarding enabled for it and the LAN interface.

use hometun_shared::ipv4::Network;
use anyhow::Context;
use std::net::Ipv4Addr;

/// Creates the tun device `name` with `address` inside `pool`.
pub fn create(name: &str, address: Ipv4Addr, pool: Network, mtu: u16) -> anyhow::Result<tun::AsyncDevice> {
    let mut config = tun::Configuration::default();
    config.tun_name(name).address(address).netmask(pool.netmask()).mtu(mtu).up();
    let device = tun::create_as_async(&config).with_context(|| format!("creating tun device {name} (needs CAP_NET_ADMIN)"))?;
    Ok(device)
}

/// Enables IPv4 forwarding for packets arriving on `ifname` (or globally for `None`).
pub fn enable_forwarding(ifname: Option<&str>) -> anyhow::Result<()> {
    let path = match ifname {
        Some(name) => format!("/proc/sys/net/ipv4/conf/{name}/forwarding"),
        None => "/proc/sys/net/ipv4/ip_forward".to_owned(),
    };
    std::fs::write(&path, b"1").with_context(|| format!("enabling IPv4 forwarding ({path})"))
}
