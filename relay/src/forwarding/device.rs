//! The tun device: created with the relay's tunnel address, removed when dropped (it is not
//! persistent), and IPv4 forwarding enabled for it and the LAN interface ([`Forwarding`] puts
//! the previous settings back when dropped).

use anyhow::Context;
use hometun_shared::ipv4::Network;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// Packets the kernel holds for the relay to read (`txqueuelen`; Linux gives a tun 500). With
/// segmentation offload each can be a 64 KiB super-packet. At 500, 200 clients downloading at
/// once through an overloaded relay lost ~20 % of those packets at this queue and moved 78–89
/// Mbit/s in all; at 4,096, 290 (bench/README.md). What waits here is bounded by the LAN hosts'
/// TCP windows toward the clients.
pub const TUN_QUEUE_PACKETS: u32 = 4096;

/// Creates the tun device `name` with `address` inside `pool`. Every packet read from it or
/// written to it carries a virtio-net header ([`super::offload`]). With `offload`, the kernel
/// may hand over TCP super-packets and leave checksums to the relay, which completes them
/// before a client sees them; a kernel that refuses the offloads still works (its reads carry
/// plain headers), as does `offload: false`.
pub fn create(
    name: &str,
    address: Ipv4Addr,
    pool: Network,
    mtu: u16,
    offload: bool,
) -> anyhow::Result<tun::AsyncDevice> {
    let mut config = tun::Configuration::default();
    config.tun_name(name).address(address).netmask(pool.netmask()).mtu(mtu).up();
    config.platform_config(|platform| {
        platform.vnet_hdr(true);
    });
    let device =
        tun::create_as_async(&config).with_context(|| format!("creating tun device {name} (needs CAP_NET_ADMIN)"))?;
    if let Err(e) = hometun_sys::set_tx_queue_len(name, TUN_QUEUE_PACKETS) {
        tracing::warn!("tun device {name}: could not lengthen its queue to {TUN_QUEUE_PACKETS} packets ({e})");
    }
    if !offload {
        return Ok(device);
    }
    if let Err(e) = hometun_sys::tun_set_offload(&*device, hometun_sys::TUN_F_CSUM | hometun_sys::TUN_F_TSO4) {
        tracing::warn!("tun device {name}: the kernel refused TCP segmentation offload ({e}); packets go one by one");
    }
    Ok(device)
}

/// IPv4 forwarding switched on by the relay; the previous settings are written back on drop,
/// unless another program switched forwarding on for the whole host meanwhile (Docker does, for
/// its published ports): an interface turned off again would cut what that program forwards.
pub struct Forwarding {
    saved: Vec<(PathBuf, Vec<u8>)>,
    /// The host-wide switch (`ip_forward`).
    global: PathBuf,
    /// Whether it was on when the relay started.
    global_was_on: bool,
}

/// The sysctl file that switches IPv4 forwarding for `ifname` (or globally for `None`).
pub fn forwarding_path(ifname: Option<&str>) -> PathBuf {
    match ifname {
        Some(name) => PathBuf::from(format!("/proc/sys/net/ipv4/conf/{name}/forwarding")),
        None => PathBuf::from("/proc/sys/net/ipv4/ip_forward"),
    }
}

/// Whether this host has a network interface named `ifname` now.
pub fn interface_exists(ifname: &str) -> bool {
    !ifname.contains('/') && Path::new("/sys/class/net").join(ifname).exists()
}

/// Whether IPv4 forwarding is on for `ifname` (or globally for `None`); unreadable counts as off.
pub fn forwarding_enabled(ifname: Option<&str>) -> bool {
    is_on(&forwarding_path(ifname))
}

/// Whether the sysctl file at `path` says 1; unreadable counts as off.
fn is_on(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|v| v.trim_ascii() == b"1")
}

impl Forwarding {
    /// Enables IPv4 forwarding for each of `ifnames` (`None`: globally), remembering what was
    /// set before. On an error the settings already changed are put back.
    pub fn enable(ifnames: &[Option<&str>]) -> anyhow::Result<Self> {
        Self::enable_at(ifnames.iter().map(|i| forwarding_path(*i)).collect(), forwarding_path(None))
    }

    /// As [`Forwarding::enable`], on the given sysctl files, `global` the host-wide one.
    pub fn enable_at(paths: Vec<PathBuf>, global: PathBuf) -> anyhow::Result<Self> {
        let global_was_on = is_on(&global);
        let mut guard = Self { saved: Vec::new(), global, global_was_on };
        for path in paths {
            if guard.saved.iter().any(|(p, _)| *p == path) {
                continue;
            }
            let before = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            std::fs::write(&path, b"1").with_context(|| format!("enabling IPv4 forwarding ({})", path.display()))?;
            guard.saved.push((path, before));
        }
        Ok(guard)
    }
}

impl Drop for Forwarding {
    fn drop(&mut self) {
        let global_by_others =
            !self.global_was_on && !self.saved.iter().any(|(p, _)| *p == self.global) && is_on(&self.global);
        for (path, before) in self.saved.iter().rev() {
            if global_by_others && before.trim_ascii() == b"0" {
                tracing::info!(
                    "{} stays on: IPv4 forwarding was switched on for the whole host while the relay ran (Docker?)",
                    path.display()
                );
                continue;
            }
            if let Err(e) = std::fs::write(path, before) {
                tracing::warn!("restoring {} failed: {e}", path.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarding_settings_are_put_back_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let (off, on) = (dir.path().join("lan"), dir.path().join("already"));
        let global = dir.path().join("ip_forward");
        std::fs::write(&global, b"0\n").unwrap();
        std::fs::write(&off, b"0\n").unwrap();
        std::fs::write(&on, b"1\n").unwrap();
        let guard = Forwarding::enable_at(vec![off.clone(), on.clone(), off.clone()], global.clone()).unwrap();
        assert_eq!(std::fs::read(&off).unwrap(), b"1");
        drop(guard);
        assert_eq!(std::fs::read(&off).unwrap(), b"0\n");
        assert_eq!(std::fs::read(&on).unwrap(), b"1\n");
        // A file that cannot be read fails the whole step and puts the others back.
        std::fs::write(&off, b"0\n").unwrap();
        assert!(Forwarding::enable_at(vec![off.clone(), dir.path().join("missing")], global.clone()).is_err());
        assert_eq!(std::fs::read(&off).unwrap(), b"0\n");
    }

    #[test]
    fn forwarding_another_program_switched_on_for_the_host_stays_on() {
        // The relay started first at boot; Docker then switched forwarding on for the whole
        // host. Stopping the relay must not turn the LAN interface off under Docker.
        let dir = tempfile::tempdir().unwrap();
        let (lan, global) = (dir.path().join("eth0"), dir.path().join("ip_forward"));
        std::fs::write(&lan, b"0\n").unwrap();
        std::fs::write(&global, b"0\n").unwrap();
        let guard = Forwarding::enable_at(vec![lan.clone()], global.clone()).unwrap();
        std::fs::write(&global, b"1\n").unwrap();
        drop(guard);
        assert_eq!(std::fs::read(&lan).unwrap(), b"1", "the LAN interface was turned off under Docker");
        // The relay's own switch of the whole host (no LAN interface named) is put back.
        std::fs::write(&global, b"0\n").unwrap();
        let guard = Forwarding::enable_at(vec![global.clone()], global.clone()).unwrap();
        assert_eq!(std::fs::read(&global).unwrap(), b"1");
        drop(guard);
        assert_eq!(std::fs::read(&global).unwrap(), b"0\n");
    }
}
