//! The relay's picture of the home LAN, sans IO: what the drivers observed (neighbour table,
//! mDNS announcements, reverse names) goes in with the time, the current hosts come out.
//!
//! Bounded: at most [`Limits::max_hosts`] hosts (hosts without a MAC make room first, see
//! [`Inventory::observe_announcement`]), at most [`MAX_SERVICES`] services and [`MAX_NAMES`]
//! names per host; announcements naming more than [`MAX_ANNOUNCED_ADDRESSES`] addresses are
//! ignored; names, labels and service types that the control plane would not carry are dropped
//! on the way in, so nothing a LAN host announces can grow the relay's memory or reach a device
//! unchecked.

use hometun_shared::control::hosts::is_mdns_name;
use hometun_shared::control::{is_host_name, is_label, is_service_type, Service, MAX_NAMES, MAX_SERVICES};
use hometun_shared::ipv4::Network;
use hometun_shared::time::{Duration, Instant};
use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

/// A MAC address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mac(pub [u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for Mac {
    type Err = ();

    /// `aa:bb:cc:dd:ee:ff` (as the neighbour table prints it).
    fn from_str(text: &str) -> Result<Self, ()> {
        let mut out = [0u8; 6];
        let mut parts = text.split(':');
        for byte in &mut out {
            let part = parts.next().filter(|p| p.len() == 2).ok_or(())?;
            *byte = u8::from_str_radix(part, 16).map_err(|_| ())?;
        }
        if parts.next().is_some() {
            return Err(());
        }
        Ok(Self(out))
    }
}

impl Mac {
    /// Whether this is a unicast address of a real interface (not zero, broadcast or multicast).
    pub fn is_unicast(self) -> bool {
        self.0 != [0; 6] && self.0[0] & 1 == 0
    }
}

/// An announcement naming more IPv4 addresses than this is ignored: a real host has a few, and
/// one packet must not fill the inventory with hosts that do not exist.
pub const MAX_ANNOUNCED_ADDRESSES: usize = 4;

/// Bounds and timings.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Most hosts kept.
    pub max_hosts: usize,
    /// A host whose MAC is unknown is forgotten this long after it was last seen.
    pub forget_after: Duration,
    /// A host with a known MAC (so it can be woken) is kept this long after it was last seen.
    pub remember_mac_for: Duration,
    /// A reverse name is asked again after this long.
    pub reverse_refresh: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_hosts: 256,
            forget_after: Duration::from_secs(15 * 60),
            remember_mac_for: Duration::from_secs(30 * 24 * 3600),
            reverse_refresh: Duration::from_secs(10 * 60),
        }
    }
}

/// One mDNS service instance as resolved on the LAN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announcement {
    /// Full instance name, e.g. `My NAS._http._tcp.local.` (the key for its removal).
    pub instance: String,
    /// Service type without the domain, e.g. `_http._tcp`.
    pub kind: String,
    /// The host name it names, e.g. `nas.local.`.
    pub host_name: String,
    /// IPv4 addresses it names.
    pub addresses: Vec<Ipv4Addr>,
    /// Its port.
    pub port: u16,
    /// How long it is valid without being seen again.
    pub ttl: Duration,
}

/// A host as the relay knows it now (what views and the `hosts` command show).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownHost {
    /// LAN address.
    pub address: Ipv4Addr,
    /// Its MAC, once the neighbour table showed it.
    pub mac: Option<Mac>,
    /// Names: the mDNS host name first, then the reverse name (no trailing dot).
    pub names: Vec<String>,
    /// Friendly names from announcements (the instance name without the type), each with the
    /// service that gave it, in the order of the instance names.
    pub labels: Vec<(Service, String)>,
    /// Announced services, sorted.
    pub services: Vec<Service>,
    /// In the neighbour table as reachable, or announcing now.
    pub online: bool,
}

impl KnownHost {
    /// Its friendly name for the relay's own `hosts` list: the first of [`KnownHost::labels`].
    /// A device gets one only from a service it may see ([`super::view`]).
    pub fn label(&self) -> Option<&str> {
        self.labels.first().map(|(_, label)| label.as_str())
    }
}

#[derive(Clone, Debug)]
struct Entry {
    mac: Option<Mac>,
    /// In the latest neighbour dump with a complete entry.
    neighbour_up: bool,
    last_seen: Instant,
    mdns_name: Option<String>,
    reverse_name: Option<String>,
    reverse_asked: Option<Instant>,
    probed: Option<Instant>,
    /// Instance name → (friendly label, service, expiry).
    services: BTreeMap<String, (Option<String>, Service, Instant)>,
}

impl Entry {
    fn new(now: Instant) -> Self {
        Self {
            mac: None,
            neighbour_up: false,
            last_seen: now,
            mdns_name: None,
            reverse_name: None,
            reverse_asked: None,
            probed: None,
            services: BTreeMap::new(),
        }
    }
}

/// The hosts of one LAN.
#[derive(Debug)]
pub struct Inventory {
    lan: Network,
    limits: Limits,
    hosts: BTreeMap<Ipv4Addr, Entry>,
}

impl Inventory {
    /// An empty inventory of `lan`: addresses outside it are ignored.
    pub fn new(lan: Network, limits: Limits) -> Self {
        Self { lan, limits, hosts: BTreeMap::new() }
    }

    /// A neighbour-table dump of the LAN interface: every `(address, MAC)` with a complete
    /// entry. Hosts missing from it are no longer counted online by it.
    pub fn observe_neighbours(&mut self, now: Instant, neighbours: &[(Ipv4Addr, Mac)]) {
        for entry in self.hosts.values_mut() {
            entry.neighbour_up = false;
        }
        for &(address, mac) in neighbours {
            if !mac.is_unicast() {
                continue;
            }
            if let Some(entry) = self.entry(now, address, true) {
                entry.mac = Some(mac);
                entry.neighbour_up = true;
                entry.last_seen = now;
            }
        }
    }

    /// One neighbour event of the LAN interface: `Some(mac)` while the kernel holds a usable
    /// entry for `address`, `None` once resolving it failed or the entry went (the host is then
    /// no longer counted online by the neighbour table; its MAC is kept for waking).
    pub fn observe_neighbour(&mut self, now: Instant, address: Ipv4Addr, mac: Option<Mac>) {
        match mac.filter(|m| m.is_unicast()) {
            Some(mac) => {
                if let Some(entry) = self.entry(now, address, true) {
                    entry.mac = Some(mac);
                    entry.neighbour_up = true;
                    entry.last_seen = now;
                }
            }
            None => {
                if let Some(entry) = self.hosts.get_mut(&address) {
                    entry.neighbour_up = false;
                }
            }
        }
    }

    /// A resolved mDNS service instance. Invalid names or types are dropped, and so is a host
    /// name outside `.local`: any LAN host may announce any name, and `nas.home.arpa` or a
    /// public name is the DNS's to give, not the host's. An announcement naming more than
    /// [`MAX_ANNOUNCED_ADDRESSES`] addresses adds nothing. A host it names that is new takes
    /// the place of a host without a MAC when the inventory is full, never of one with a MAC
    /// (that one may be asleep, waiting to be woken); when there is none, it is not added.
    pub fn observe_announcement(&mut self, now: Instant, announcement: &Announcement) {
        if !is_service_type(&announcement.kind)
            || announcement.port == 0
            || announcement.addresses.len() > MAX_ANNOUNCED_ADDRESSES
        {
            return;
        }
        let host_name = announcement.host_name.trim_end_matches('.').to_owned();
        let host_name = is_mdns_name(&host_name).then_some(host_name);
        let label = instance_label(&announcement.instance, &announcement.kind);
        let service = Service { kind: announcement.kind.clone(), port: announcement.port };
        let expires = now + announcement.ttl;
        if let Some(name) = &host_name {
            // A name is one host's: where it moved (a new DHCP lease), the old address loses it.
            for (address, entry) in &mut self.hosts {
                let same = entry.mdns_name.as_ref().is_some_and(|held| held.eq_ignore_ascii_case(name));
                if same && !announcement.addresses.contains(address) {
                    entry.mdns_name = None;
                }
            }
        }
        for &address in &announcement.addresses {
            let Some(entry) = self.entry(now, address, false) else { continue };
            entry.last_seen = now;
            if host_name.is_some() {
                entry.mdns_name.clone_from(&host_name);
            }
            let fits = entry.services.len() < MAX_SERVICES || entry.services.contains_key(&announcement.instance);
            if fits && announcement.instance.len() <= 255 {
                entry.services.insert(announcement.instance.clone(), (label.clone(), service.clone(), expires));
            }
        }
    }

    /// An mDNS instance said goodbye (or its records expired in the browser). The host keeps
    /// its name: one asleep announces nothing, and is still woken by it.
    pub fn remove_announcement(&mut self, instance: &str) {
        for entry in self.hosts.values_mut() {
            entry.services.remove(instance);
        }
    }

    /// At most `limit` addresses whose reverse name should be asked now: those never asked
    /// first, then those asked longest ago. Only these are marked asked; the others stay due
    /// for the next round.
    pub fn reverse_due(&mut self, now: Instant, limit: usize) -> Vec<Ipv4Addr> {
        let refresh = self.limits.reverse_refresh;
        let mut due: Vec<(Option<Instant>, Ipv4Addr)> = self
            .hosts
            .iter()
            .filter(|(_, e)| e.reverse_asked.is_none_or(|at| now.saturating_duration_since(at) >= refresh))
            .map(|(address, e)| (e.reverse_asked, *address))
            .collect();
        due.sort_unstable();
        due.truncate(limit);
        for (_, address) in &due {
            if let Some(entry) = self.hosts.get_mut(address) {
                entry.reverse_asked = Some(now);
            }
        }
        due.into_iter().map(|(_, address)| address).collect()
    }

    /// The next host to probe for web ports (opt-in): one without announced services, not
    /// probed within `reverse_refresh`; it is marked probed.
    pub fn probe_due(&mut self, now: Instant) -> Option<Ipv4Addr> {
        let refresh = self.limits.reverse_refresh;
        let (address, entry) = self.hosts.iter_mut().find(|(_, e)| {
            e.services.keys().all(|k| k.starts_with(PROBED))
                && e.probed.is_none_or(|at| now.saturating_duration_since(at) >= refresh)
        })?;
        entry.probed = Some(now);
        Some(*address)
    }

    /// The web ports a probe found open on `address` (`(type, port)`); they count as services
    /// until twice the probe interval passes without a new probe finding them.
    pub fn observe_probe(&mut self, now: Instant, address: Ipv4Addr, open: &[(&str, u16)]) {
        let expires = now + self.limits.reverse_refresh * 2;
        let Some(entry) = self.hosts.get_mut(&address) else { return };
        entry.services.retain(|k, _| !k.starts_with(PROBED));
        for &(kind, port) in open.iter().take(MAX_SERVICES) {
            let service = Service { kind: kind.to_owned(), port };
            entry.services.insert(format!("{PROBED}{port}"), (None, service, expires));
        }
    }

    /// The LAN's DNS server answered a reverse query for `address` (`None`: no name).
    pub fn observe_reverse_name(&mut self, address: Ipv4Addr, name: Option<&str>) {
        let Some(entry) = self.hosts.get_mut(&address) else { return };
        entry.reverse_name = name.map(|n| n.trim_end_matches('.').to_ascii_lowercase()).filter(|n| is_host_name(n));
    }

    /// Drops expired services and hosts not seen for long (longer when their MAC is known).
    pub fn expire(&mut self, now: Instant) {
        let limits = self.limits;
        self.hosts.retain(|_, entry| {
            entry.services.retain(|_, (_, _, expires)| *expires > now);
            let keep_for = if entry.mac.is_some() { limits.remember_mac_for } else { limits.forget_after };
            entry.neighbour_up
                || !entry.services.is_empty()
                || now.saturating_duration_since(entry.last_seen) < keep_for
        });
    }

    /// The hosts now, by address.
    pub fn hosts(&self) -> Vec<KnownHost> {
        self.hosts.iter().map(|(address, entry)| known(*address, entry)).collect()
    }

    /// The MAC last seen at `address`.
    pub fn mac_of(&self, address: Ipv4Addr) -> Option<Mac> {
        self.hosts.get(&address).and_then(|e| e.mac)
    }

    /// The entry for `address`, made if there is room. When the inventory is full, the host
    /// seen longest ago among those without a MAC goes; a host with a MAC goes only for a
    /// newcomer `with_mac` (from the neighbour table), and only when every host has one.
    fn entry(&mut self, now: Instant, address: Ipv4Addr, with_mac: bool) -> Option<&mut Entry> {
        if !self.lan.contains(address) || address == self.lan.addr() || address == self.lan.broadcast() {
            return None;
        }
        if !self.hosts.contains_key(&address) && self.hosts.len() >= self.limits.max_hosts {
            let leaving = self
                .hosts
                .iter()
                .filter(|(_, e)| with_mac || e.mac.is_none())
                .min_by_key(|(_, e)| (e.mac.is_some(), e.last_seen))
                .map(|(a, _)| *a)?;
            self.hosts.remove(&leaving);
        }
        Some(self.hosts.entry(address).or_insert_with(|| Entry::new(now)))
    }
}

/// Key prefix of services found by a probe (no mDNS instance name starts with it).
const PROBED: &str = "\u{0}probe:";

fn known(address: Ipv4Addr, entry: &Entry) -> KnownHost {
    let mut names: Vec<String> = entry.mdns_name.iter().chain(entry.reverse_name.iter()).cloned().collect();
    names.dedup();
    names.truncate(MAX_NAMES);
    let mut services: Vec<Service> = entry.services.values().map(|(_, s, _)| s.clone()).collect();
    services.sort();
    services.dedup();
    KnownHost {
        address,
        mac: entry.mac,
        names,
        labels: entry
            .services
            .values()
            .filter_map(|(label, service, _)| Some((service.clone(), label.clone()?)))
            .collect(),
        services,
        online: entry.neighbour_up || entry.services.keys().any(|k| !k.starts_with(PROBED)),
    }
}

/// `My NAS` from `My NAS._http._tcp.local.` (mDNS instance names may hold dots and escapes;
/// only a printable label of at most 63 bytes is kept).
fn instance_label(instance: &str, kind: &str) -> Option<String> {
    let label = instance.split_once(&format!(".{kind}.")).map_or(instance, |(label, _)| label);
    let label = label.replace("\\032", " ").replace('\\', "");
    is_label(&label).then_some(label)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC10: Mac = Mac([0x02, 0, 0, 0, 0, 0x10]);

    fn t(secs: u64) -> Instant {
        Instant::from_micros(secs * 1_000_000)
    }

    fn inventory() -> Inventory {
        Inventory::new("192.168.0.0/24".parse().unwrap(), Limits::default())
    }

    fn nas_http(ttl: u64) -> Announcement {
        Announcement {
            instance: "My NAS._http._tcp.local.".into(),
            kind: "_http._tcp".into(),
            host_name: "nas.local.".into(),
            addresses: vec![Ipv4Addr::new(192, 168, 0, 10)],
            port: 5000,
            ttl: Duration::from_secs(ttl),
        }
    }

    #[test]
    fn macs_parse_from_the_neighbour_table_form_and_print_back() {
        let mac: Mac = "02:00:00:00:00:10".parse().unwrap();
        assert_eq!(mac, MAC10);
        assert_eq!(mac.to_string(), "02:00:00:00:00:10");
        for bad in ["", "02:00:00:00:00", "02:00:00:00:00:10:11", "2:00:00:00:00:10", "zz:00:00:00:00:10"] {
            assert!(bad.parse::<Mac>().is_err(), "{bad:?}");
        }
        assert!(!Mac([0; 6]).is_unicast() && !Mac([0xff; 6]).is_unicast() && MAC10.is_unicast());
    }

    #[test]
    fn an_announcement_names_a_host_with_its_label_and_services() {
        let mut inv = inventory();
        inv.observe_announcement(t(1), &nas_http(120));
        let mut ssh = nas_http(120);
        ssh.instance = "My NAS._ssh._tcp.local.".into();
        ssh.kind = "_ssh._tcp".into();
        ssh.port = 22;
        inv.observe_announcement(t(1), &ssh);
        let hosts = inv.hosts();
        assert_eq!(hosts.len(), 1);
        let nas = &hosts[0];
        assert_eq!(nas.names, ["nas.local"]);
        assert_eq!(nas.label(), Some("My NAS"));
        assert_eq!(
            nas.services.iter().map(|s| (s.kind.as_str(), s.port)).collect::<Vec<_>>(),
            [("_http._tcp", 5000), ("_ssh._tcp", 22)]
        );
        assert!(nas.online);
    }

    #[test]
    fn services_expire_and_goodbyes_remove_them_but_a_known_mac_is_remembered() {
        let mut inv = inventory();
        inv.observe_neighbours(t(0), &[(Ipv4Addr::new(192, 168, 0, 10), MAC10)]);
        inv.observe_announcement(t(0), &nas_http(60));
        inv.observe_neighbours(t(30), &[]);
        inv.expire(t(30));
        assert!(inv.hosts()[0].online, "the announcement still holds");
        inv.expire(t(61));
        let host = &inv.hosts()[0];
        assert!(host.services.is_empty() && !host.online, "{host:?}");
        assert_eq!(inv.mac_of(host.address), Some(MAC10), "asleep, but it can be woken");
        inv.expire(t(60 * 24 * 3600));
        assert!(inv.hosts().is_empty(), "forgotten after a month unseen");

        inv.observe_announcement(t(0), &nas_http(600));
        inv.remove_announcement("My NAS._http._tcp.local.");
        assert!(inv.hosts()[0].services.is_empty());
        assert_eq!(inv.hosts()[0].names, ["nas.local"], "asleep, it is still woken by its name");
    }

    #[test]
    fn a_name_that_moves_to_another_address_leaves_the_old_one() {
        // DHCP gave the NAS a new address; the old one may be a guest's phone by now.
        let mut inv = inventory();
        inv.observe_announcement(t(0), &nas_http(600));
        let moved = Announcement { addresses: vec![Ipv4Addr::new(192, 168, 0, 12)], ..nas_http(600) };
        inv.observe_announcement(t(1), &moved);
        let named: Vec<_> =
            inv.hosts().into_iter().filter(|h| h.names.contains(&"nas.local".to_owned())).map(|h| h.address).collect();
        assert_eq!(named, [Ipv4Addr::new(192, 168, 0, 12)]);
    }

    #[test]
    fn neighbour_events_bring_a_host_online_and_take_it_offline_keeping_its_mac() {
        let mut inv = inventory();
        let nas = Ipv4Addr::new(192, 168, 0, 10);
        inv.observe_neighbour(t(0), Ipv4Addr::new(192, 168, 0, 20), None);
        assert!(inv.hosts().is_empty(), "a failed lookup of an unknown address adds nothing");
        inv.observe_neighbour(t(1), nas, Some(MAC10));
        assert!(inv.hosts()[0].online);
        inv.observe_neighbour(t(2), nas, Some(Mac([0xff; 6])));
        assert_eq!(inv.mac_of(nas), Some(MAC10), "a broadcast MAC is not a host's");
        inv.observe_neighbour(t(3), nas, None);
        let host = &inv.hosts()[0];
        assert!(!host.online && host.mac == Some(MAC10), "{host:?}");
        inv.observe_neighbours(t(4), &[(nas, MAC10)]);
        assert!(inv.hosts()[0].online, "a full dump says it again");
        inv.observe_neighbour(t(5), Ipv4Addr::new(10, 0, 0, 1), Some(MAC10));
        assert_eq!(inv.hosts().len(), 1, "outside the LAN");
    }

    #[test]
    fn a_host_without_a_mac_is_forgotten_sooner() {
        let mut inv = inventory();
        inv.observe_announcement(t(0), &nas_http(60));
        inv.expire(t(61));
        assert_eq!(inv.hosts().len(), 1);
        inv.expire(t(61 + 15 * 60));
        assert!(inv.hosts().is_empty());
    }

    #[test]
    fn what_the_lan_announces_is_bounded_and_checked() {
        let mut inv = Inventory::new("192.168.0.0/24".parse().unwrap(), Limits { max_hosts: 3, ..Limits::default() });
        for last in 1..=10u8 {
            inv.observe_neighbours(t(u64::from(last)), &[(Ipv4Addr::new(192, 168, 0, last), MAC10)]);
        }
        let kept: Vec<u8> = inv.hosts().iter().map(|h| h.address.octets()[3]).collect();
        assert_eq!(kept, [8, 9, 10], "the hosts seen longest ago made room");

        let mut inv = inventory();
        let outside = Announcement { addresses: vec![Ipv4Addr::new(10, 0, 0, 1)], ..nas_http(60) };
        let broadcast = Announcement { addresses: vec![Ipv4Addr::new(192, 168, 0, 255)], ..nas_http(60) };
        let bad_type = Announcement { kind: "http".into(), ..nas_http(60) };
        for a in [outside, broadcast, bad_type] {
            inv.observe_announcement(t(0), &a);
        }
        assert!(inv.hosts().is_empty());
        let bad_name =
            Announcement { host_name: "evil name\n.local.".into(), instance: "x\u{7}\n".into(), ..nas_http(60) };
        inv.observe_announcement(t(0), &bad_name);
        assert!(inv.hosts()[0].names.is_empty() && inv.hosts()[0].label().is_none());
        for port in 1..=40 {
            let many = Announcement { instance: format!("s{port}._http._tcp.local."), port, ..nas_http(60) };
            inv.observe_announcement(t(0), &many);
        }
        assert_eq!(inv.hosts()[0].services.len(), MAX_SERVICES);
    }

    #[test]
    fn an_announcement_names_its_host_only_under_local() {
        let mut inv = inventory();
        let hijack = Announcement { host_name: "nas.home.arpa.".into(), ..nas_http(60) };
        inv.observe_announcement(t(0), &hijack);
        assert!(inv.hosts()[0].names.is_empty(), "a DNS name is the DNS server's to give, not a LAN host's");
        for other in ["example.com.", "local.", "nas.local.evil.", "nas.localhost."] {
            inv.observe_announcement(t(0), &Announcement { host_name: other.into(), ..nas_http(60) });
            assert!(inv.hosts()[0].names.is_empty(), "{other}");
        }
        inv.observe_announcement(t(1), &nas_http(60));
        assert_eq!(inv.hosts()[0].names, ["nas.local"]);
        inv.observe_announcement(t(2), &Announcement { host_name: "NAS.Local".into(), ..nas_http(60) });
        assert_eq!(inv.hosts()[0].names, ["NAS.Local"], "any case, with or without the trailing dot");
    }

    #[test]
    fn an_announcement_with_more_addresses_than_a_host_has_adds_nothing() {
        let mut inv = inventory();
        let whole_lan = (1..=254).map(|last| Ipv4Addr::new(192, 168, 0, last)).collect();
        inv.observe_announcement(t(0), &Announcement { addresses: whole_lan, ..nas_http(60) });
        assert!(inv.hosts().is_empty(), "one packet does not make 254 hosts");
        let four = (10..14).map(|last| Ipv4Addr::new(192, 168, 0, last)).collect();
        inv.observe_announcement(t(0), &Announcement { addresses: four, ..nas_http(60) });
        assert_eq!(inv.hosts().len(), 4, "a host with a few interfaces is listed under each");
    }

    #[test]
    fn a_sleeping_host_with_a_known_mac_outlasts_announced_hosts_when_full() {
        let mut inv = Inventory::new("192.168.0.0/24".parse().unwrap(), Limits { max_hosts: 3, ..Limits::default() });
        let sleeper = Ipv4Addr::new(192, 168, 0, 5);
        inv.observe_neighbour(t(0), sleeper, Some(MAC10));
        inv.observe_neighbour(t(1), sleeper, None);
        for last in 100..200u8 {
            let fake = Announcement {
                instance: format!("fake{last}._http._tcp.local."),
                addresses: vec![Ipv4Addr::new(192, 168, 0, last)],
                ..nas_http(60)
            };
            inv.observe_announcement(t(u64::from(last)), &fake);
        }
        let kept: Vec<u8> = inv.hosts().iter().map(|h| h.address.octets()[3]).collect();
        assert_eq!(kept, [5, 198, 199], "announced hosts without a MAC made room for each other");
        assert_eq!(inv.mac_of(sleeper), Some(MAC10), "it can still be woken");

        let mut inv = Inventory::new("192.168.0.0/24".parse().unwrap(), Limits { max_hosts: 1, ..Limits::default() });
        inv.observe_neighbour(t(0), sleeper, Some(MAC10));
        inv.observe_announcement(t(1), &nas_http(60));
        assert_eq!(inv.mac_of(sleeper), Some(MAC10), "a host without a MAC never pushes out one with a MAC");
        inv.observe_neighbour(t(2), Ipv4Addr::new(192, 168, 0, 10), Some(MAC10));
        assert_eq!(inv.mac_of(sleeper), None, "a newcomer with a MAC does, the one seen longest ago first");
    }

    #[test]
    fn probes_visit_hosts_without_announcements_one_at_a_time() {
        let mut inv = inventory();
        let (nas, printer) = (Ipv4Addr::new(192, 168, 0, 10), Ipv4Addr::new(192, 168, 0, 20));
        inv.observe_neighbours(t(0), &[(nas, MAC10), (printer, MAC10)]);
        inv.observe_announcement(t(0), &nas_http(3600));
        assert_eq!(inv.probe_due(t(0)), Some(printer), "the NAS announces itself");
        assert_eq!(inv.probe_due(t(1)), None, "one probe per host per interval");
        inv.observe_probe(t(1), printer, &[("_http._tcp", 80)]);
        let probed = inv.hosts().into_iter().find(|h| h.address == printer).unwrap();
        assert_eq!(probed.services, [Service { kind: "_http._tcp".into(), port: 80 }]);
        assert_eq!(inv.probe_due(t(601)), Some(printer));
        inv.observe_probe(t(601), printer, &[]);
        assert!(inv.hosts().iter().find(|h| h.address == printer).unwrap().services.is_empty(), "closed again");
    }

    #[test]
    fn reverse_names_of_a_big_lan_are_asked_a_batch_per_round_until_all_were() {
        let mut inv = inventory();
        let lan: Vec<(Ipv4Addr, Mac)> = (1..=40).map(|last| (Ipv4Addr::new(192, 168, 0, last), MAC10)).collect();
        inv.observe_neighbours(t(0), &lan);
        let first = inv.reverse_due(t(0), 32);
        assert_eq!(first.len(), 32);
        let second = inv.reverse_due(t(5), 32);
        assert_eq!(second.len(), 8, "the rest, not the same 32 again");
        let mut asked = [first, second].concat();
        asked.sort();
        assert_eq!(asked, lan.iter().map(|(address, _)| *address).collect::<Vec<_>>());
        assert!(inv.reverse_due(t(10), 32).is_empty(), "then none until the refresh");
    }

    #[test]
    fn reverse_names_are_asked_once_per_refresh_and_checked() {
        let mut inv = inventory();
        let printer = Ipv4Addr::new(192, 168, 0, 20);
        inv.observe_neighbours(t(0), &[(printer, MAC10)]);
        assert_eq!(inv.reverse_due(t(0), 32), [printer]);
        assert!(inv.reverse_due(t(1), 32).is_empty());
        inv.observe_reverse_name(printer, Some("Printer.home.arpa."));
        assert_eq!(inv.hosts()[0].names, ["printer.home.arpa"]);
        assert_eq!(inv.reverse_due(t(601), 32), [printer]);
        inv.observe_reverse_name(printer, Some("bad name"));
        assert!(inv.hosts()[0].names.is_empty());
    }
}
