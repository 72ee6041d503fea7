//! Discovery of the home's devices: who is on the LAN, what they offer, what they are called —
//! and Wake-on-LAN for the ones that sleep.
//!
//! Passive: the relay follows its own neighbour table over rtnetlink ([`neighbours`]), listens to mDNS/DNS-SD
//! announcements on the LAN interface only ([`mdns`]) and asks the LAN's DNS server for
//! reverse names ([`reverse`]); opt-in, it tries common web ports of silent hosts ([`probe`]).
//! All of it feeds one sans-IO [`inventory::Inventory`]; a device
//! gets the part its ACL lets it reach ([`view`]) over the tunnel (control messages, never an
//! HTTP endpoint), pushed again on every change. [`wake`] holds the magic packet and its rate
//! limits; [`Discovery::wake`] sends it as a UDP broadcast on the LAN interface.

pub mod inventory;
pub mod mdns;
pub mod neighbours;
pub mod netlink;
pub mod probe;
pub mod reverse;
pub mod view;
pub mod wake;

use crate::config::Config;
use crate::daemon::{Clock, LogLimiter, Relay};
use crate::state::unix_now;
use hometun_shared::control::{AllowRule, HostList, WakeOutcome};
use hometun_shared::ipv4::Network;
use hometun_shared::time::Instant;
use inventory::{Inventory, KnownHost, Limits};
use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;

/// The `[discovery]` section of `relay.toml`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Whether the relay discovers hosts and offers the list to devices.
    pub enabled: bool,
    /// Whether it browses mDNS/DNS-SD on the LAN interface (needs `lan_interface`).
    pub mdns: bool,
    /// The DNS server asked for reverse names, `IP` or `IP:PORT`. Default: the first of `dns`
    /// inside the LAN, else the system resolver's first server inside the LAN; none: no
    /// reverse names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reverse_dns: Option<String>,
    /// Seconds between rounds of expiry, reverse-name queries and (opt-in) probes.
    pub poll_secs: u64,
    /// Seconds between full reads of the neighbour table (a safety net: its changes arrive
    /// as kernel events the moment they happen).
    pub resync_secs: u64,
    /// Wake requests one device may make per minute (refused ones count).
    pub wake_per_minute: usize,
    /// Most hosts remembered.
    pub max_hosts: usize,
    /// Opt-in: try common web ports on hosts that announce nothing ([`probe`]).
    pub probe_web_ports: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            enabled: true,
            mdns: true,
            reverse_dns: None,
            poll_secs: 5,
            resync_secs: 60,
            wake_per_minute: wake::DEVICE_BURST,
            max_hosts: 256,
            probe_web_ports: false,
        }
    }
}

impl Settings {
    /// Whether nothing differs from the defaults (the section is then left out of the file).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// Checks the section; the field at fault and why.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if let Some(server) = &self.reverse_dns {
            parse_server(server).ok_or(("reverse_dns", format!("`{server}` is not IP or IP:PORT")))?;
        }
        if !(1..=3600).contains(&self.poll_secs) {
            return Err(("poll_secs", format!("{} is outside 1..=3600", self.poll_secs)));
        }
        if !(1..=3600).contains(&self.resync_secs) {
            return Err(("resync_secs", format!("{} is outside 1..=3600", self.resync_secs)));
        }
        if !(1..=100).contains(&self.wake_per_minute) {
            return Err(("wake_per_minute", format!("{} is outside 1..=100", self.wake_per_minute)));
        }
        if !(1..=4096).contains(&self.max_hosts) {
            return Err(("max_hosts", format!("{} is outside 1..=4096", self.max_hosts)));
        }
        Ok(())
    }
}

/// `IP` (port 53) or `IP:PORT`.
fn parse_server(text: &str) -> Option<SocketAddr> {
    text.parse::<SocketAddr>().ok().or_else(|| text.parse::<Ipv4Addr>().ok().map(|ip| SocketAddr::from((ip, 53))))
}

/// Reverse names asked per round at most (each query may wait 2 s for its answer); hosts not
/// asked stay due for the next round.
const REVERSE_PER_ROUND: usize = 32;

/// Lines about refused or dropped wake requests, at most 5 a second over all devices; each
/// allowed line says how many were left out.
static REFUSAL_LOG: LogLimiter = LogLimiter::new(5);

/// The relay's discovery: the inventory, who is told of changes, the wake limits.
pub struct Discovery {
    settings: Settings,
    lan: Network,
    interface: Option<String>,
    clock: Clock,
    inventory: Mutex<Inventory>,
    published: Mutex<Vec<KnownHost>>,
    changed: watch::Sender<u64>,
    limiter: Mutex<wake::WakeLimiter>,
    wakes_dropped: AtomicU64,
    stopped: AtomicBool,
}

impl Discovery {
    /// Discovery for the relay configured by `config` (nothing runs before [`start`]).
    pub fn new(config: &Config, clock: Clock) -> Self {
        let limits = Limits { max_hosts: config.discovery.max_hosts, ..Limits::default() };
        Self {
            settings: config.discovery.clone(),
            lan: config.lan,
            interface: config.lan_interface.clone(),
            clock,
            inventory: Mutex::new(Inventory::new(config.lan, limits)),
            published: Mutex::new(Vec::new()),
            changed: watch::channel(0).0,
            limiter: Mutex::new(wake::WakeLimiter::new(config.discovery.wake_per_minute)),
            wakes_dropped: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
        }
    }

    /// Whether the relay offers the host list.
    pub fn enabled(&self) -> bool {
        self.settings.enabled
    }

    /// Changes the inventory; devices hear of it when the visible hosts changed.
    pub fn update(&self, change: impl FnOnce(&mut Inventory, Instant)) {
        let now = self.clock.now();
        let hosts = {
            let mut inventory = lock(&self.inventory);
            change(&mut inventory, now);
            inventory.hosts()
        };
        let mut published = lock(&self.published);
        if *published != hosts {
            *published = hosts;
            self.changed.send_modify(|version| *version += 1);
        }
    }

    /// The hosts now.
    pub fn hosts(&self) -> Vec<KnownHost> {
        lock(&self.published).clone()
    }

    /// Ticks on every change of the hosts.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The list for a device with allow list `allow` and wake flag `may_wake`.
    pub fn view(&self, allow: &[AllowRule], may_wake: bool) -> HostList {
        view::for_device(&lock(&self.published), allow, may_wake)
    }

    /// Device `device` (allow list `allow`, wake flag `may_wake`) asks to wake `address`:
    /// checked, rate limited, sent as a broadcast on the LAN interface, logged (refusals within
    /// [`REFUSAL_LOG`]'s budget: a device can ask thousands of times a second).
    pub fn wake(&self, device: &str, allow: &[AllowRule], may_wake: bool, address: Ipv4Addr) -> WakeOutcome {
        match self.try_wake(device, allow, may_wake, address) {
            Ok(mac) => {
                tracing::info!(client = device, host = %address, %mac, "wake request: magic packet sent");
                WakeOutcome::Sent
            }
            Err((outcome, why)) => {
                if let Some(skipped) = REFUSAL_LOG.allow(unix_now()) {
                    tracing::info!(client = device, host = %address, outcome = outcome.as_str(), skipped, "wake request: {why}");
                }
                outcome
            }
        }
    }

    /// Wake requests from device `device` left unanswered because it sent `dropped` more in one
    /// message than are handled: counted, logged within [`REFUSAL_LOG`]'s budget.
    pub fn drop_wakes(&self, device: &str, dropped: usize) {
        self.wakes_dropped.fetch_add(dropped as u64, Ordering::Relaxed);
        if let Some(skipped) = REFUSAL_LOG.allow(unix_now()) {
            tracing::info!(client = device, dropped, skipped, "wake requests dropped: too many in one message");
        }
    }

    /// Wake requests dropped unanswered since the start ([`Discovery::drop_wakes`]).
    pub fn wakes_dropped(&self) -> u64 {
        self.wakes_dropped.load(Ordering::Relaxed)
    }

    /// The MAC the magic packet went to, or the outcome and why not.
    fn try_wake(
        &self,
        device: &str,
        allow: &[AllowRule],
        may_wake: bool,
        address: Ipv4Addr,
    ) -> Result<inventory::Mac, (WakeOutcome, String)> {
        if !self.enabled() || !may_wake || !view::may_reach(allow, address) || !self.lan.contains(address) {
            return Err((WakeOutcome::NotAllowed, "not allowed".into()));
        }
        if let Err(limit) = lock(&self.limiter).check(self.clock.now(), device, address) {
            return Err((WakeOutcome::RateLimited, format!("refused ({})", limit.as_str())));
        }
        let Some(mac) = lock(&self.inventory).mac_of(address) else {
            return Err((WakeOutcome::UnknownHost, "no MAC address known".into()));
        };
        match self.send_magic_packet(mac) {
            Ok(()) => Ok(mac),
            Err(e) => Err((WakeOutcome::Failed, format!("sending the magic packet to {mac} failed: {e}"))),
        }
    }

    /// The magic packet as a UDP broadcast to the LAN's broadcast address, port 9, out of the
    /// LAN interface only.
    fn send_magic_packet(&self, mac: inventory::Mac) -> std::io::Result<()> {
        use socket2::{Domain, Protocol, Socket, Type};
        let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        socket.set_broadcast(true)?;
        if let Some(interface) = &self.interface {
            socket.bind_device(Some(interface.as_bytes()))?;
        }
        let target = SocketAddrV4::new(self.lan.broadcast(), wake::PORT);
        socket.send_to(&wake::magic_packet(mac), &target.into())?;
        Ok(())
    }

    /// Stops the mDNS browser and the drivers.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    /// The DNS server for reverse names (see [`Settings::reverse_dns`]).
    fn reverse_server(&self, pushed_dns: &[Ipv4Addr]) -> Option<SocketAddr> {
        if let Some(server) = &self.settings.reverse_dns {
            return parse_server(server);
        }
        let system = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let system = system.lines().filter_map(|l| l.trim().strip_prefix("nameserver")?.trim().parse().ok());
        pushed_dns.iter().copied().chain(system).find(|ip| self.lan.contains(*ip)).map(|ip| SocketAddr::from((ip, 53)))
    }
}

/// The hosts for the admin socket's `hosts` answer.
pub fn host_infos(hosts: &[KnownHost]) -> Vec<crate::admin::proto::HostInfo> {
    hosts
        .iter()
        .map(|h| crate::admin::proto::HostInfo {
            address: h.address,
            mac: h.mac.map(|m| m.to_string()),
            names: h.names.clone(),
            label: h.label().map(str::to_owned),
            services: h.services.iter().map(|s| format!("{}:{}", s.kind, s.port)).collect(),
            online: h.online,
        })
        .collect()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts the drivers: neighbour table, expiry, reverse names, probes, mDNS. They stop with the relay.
pub fn start(relay: &Arc<Relay>) {
    let discovery = relay.discovery.clone();
    if !discovery.enabled() {
        return;
    }
    if discovery.settings.mdns {
        match &discovery.interface {
            Some(interface) => {
                if let Err(e) = mdns::start(interface, discovery.clone()) {
                    tracing::warn!("mDNS browsing is off: {e}");
                }
            }
            None => tracing::info!("mDNS browsing is off: set lan_interface in relay.toml"),
        }
    }
    let resync = std::time::Duration::from_secs(discovery.settings.resync_secs);
    tokio::spawn(neighbours::run(discovery.clone(), resync, relay.shutdown.clone()));
    let mut shutdown = relay.shutdown.clone();
    let reverse_server = discovery.reverse_server(&relay.config.dns);
    tokio::spawn(async move {
        let poll = std::time::Duration::from_secs(discovery.settings.poll_secs);
        loop {
            discovery.update(|inventory, now| inventory.expire(now));
            if let Some(server) = reverse_server {
                let due = {
                    let now = discovery.clock.now();
                    lock(&discovery.inventory).reverse_due(now, REVERSE_PER_ROUND)
                };
                for address in due {
                    let name = reverse::lookup(server, address).await;
                    if let Ok(name) = name {
                        discovery.update(|inventory, _| inventory.observe_reverse_name(address, name.as_deref()));
                    }
                }
            }
            if discovery.settings.probe_web_ports {
                let due = {
                    let now = discovery.clock.now();
                    lock(&discovery.inventory).probe_due(now)
                };
                if let Some(address) = due {
                    let open = probe::web_ports(address).await;
                    tracing::debug!(host = %address, ?open, "probed web ports");
                    discovery.update(|inventory, now| inventory.observe_probe(now, address, &open));
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = shutdown.changed() => break,
            }
        }
        discovery.stop();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_outside_their_ranges_are_refused_by_name() {
        assert_eq!(Settings::default().check(), Ok(()));
        #[rustfmt::skip]
        let cases: [(Settings, Option<&str>); 8] = [
            (Settings { resync_secs: 1, wake_per_minute: 1, ..Settings::default() },    None),
            (Settings { resync_secs: 3600, wake_per_minute: 100, ..Settings::default() }, None),
            (Settings { resync_secs: 0, ..Settings::default() },       Some("resync_secs")),
            (Settings { resync_secs: 3601, ..Settings::default() },    Some("resync_secs")),
            (Settings { wake_per_minute: 0, ..Settings::default() },   Some("wake_per_minute")),
            (Settings { wake_per_minute: 101, ..Settings::default() }, Some("wake_per_minute")),
            (Settings { poll_secs: 0, ..Settings::default() },         Some("poll_secs")),
            (Settings { reverse_dns: Some("router".into()), ..Settings::default() }, Some("reverse_dns")),
        ];
        for (i, (settings, field)) in cases.into_iter().enumerate() {
            assert_eq!(settings.check().err().map(|(f, _)| f), field, "case {}", i + 1);
        }
    }
}
