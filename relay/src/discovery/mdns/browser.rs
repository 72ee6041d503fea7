//! The DNS-SD browser (RFC 6763 over RFC 6762), sans IO: responses go in with
//! [`Browser::handle_response`], time with [`Browser::handle_timeout`]; queries come out of
//! [`Browser::poll_transmit`] and the instances found and lost out of [`Browser::poll_event`].
//!
//! Any host on the LAN can send it anything, so it keeps only what it asked about, and only so
//! much of it:
//! - responses from the LAN's own addresses and from port 5353 only;
//! - instances of the browsed service types only, at most [`MOST_PER_KIND`] of a type,
//!   [`MOST_PER_SENDER`] first named by one LAN address and [`MOST_INSTANCES`] in all (so one
//!   host that announces without end leaves room for the others); a new instance beyond that
//!   is ignored, and one that is not
//!   resolved (its service and an address) within [`RESOLVE_WITHIN`] of being first seen, or
//!   of losing its service or its host's last address, is forgotten;
//! - a service only for an instance it holds, on a `.local` host; an address only for such a
//!   host, at most [`MOST_ADDRESSES`] of one host, and at most [`MOST_HOSTS`] hosts;
//! - every lifetime at most [`LONGEST_TTL`], whatever the sender says.
//!
//! So its memory stays bounded (a few hundred small entries) whatever the LAN sends.

use super::message::{self, Answer};
use crate::discovery::inventory::{Announcement, MAX_ANNOUNCED_ADDRESSES};
use hickory_proto::rr::{Name, RecordType};
use hometun_shared::ipv4::Network;
use hometun_shared::time::{Duration, Instant};
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};

/// Most instances held, over all types.
pub const MOST_INSTANCES: usize = 256;
/// Most instances held of one service type.
pub const MOST_PER_KIND: usize = 64;
/// Most instances held that one LAN address named first. A NAS announces a handful (its web UI,
/// SMB, SSH, …); a sleep proxy answers for the sleeping hosts it stands for.
pub const MOST_PER_SENDER: usize = 32;
/// Most hosts (SRV targets) held.
pub const MOST_HOSTS: usize = 256;
/// Most addresses held of one host: one more than an announcement may carry, so that the
/// inventory still sees, and refuses, a host that announces too many.
pub const MOST_ADDRESSES: usize = MAX_ANNOUNCED_ADDRESSES + 1;
/// The longest a record is kept without news: mDNS's usual lifetime of a service's records
/// (RFC 6762 §10).
pub const LONGEST_TTL: Duration = Duration::from_secs(4500);
/// An instance not resolved this long after it was first seen is forgotten. A host answers
/// within a second; this frees the room that names nobody serves would hold.
pub const RESOLVE_WITHIN: Duration = Duration::from_secs(30);
/// How long the inventory keeps an announcement without news; it hears from the browser at
/// least every [`REPORT_AGAIN_AFTER`] while the instance lives.
pub const ANNOUNCEMENT_TTL: Duration = Duration::from_secs(2 * 3600);
/// A live instance is reported again after this long, to keep the inventory's entry fresh.
pub const REPORT_AGAIN_AFTER: Duration = Duration::from_secs(10 * 60);

/// The first browse is asked again after this long, then after twice as long each time up to
/// [`LONGEST_BROWSE_GAP`] (RFC 6762 §5.2).
const FIRST_BROWSE_GAP: Duration = Duration::from_secs(1);
const LONGEST_BROWSE_GAP: Duration = Duration::from_secs(3600);
/// How soon the browse goes out again after a goodbye (RFC 6762 §10.1 keeps the record a
/// second; asking again then finds a service whose goodbye someone else sent).
const GOODBYE_RECHECK: Duration = Duration::from_secs(1);
/// A missing service or address is asked at most [`MOST_ASKS`] times, this far apart.
const ASK_AGAIN_AFTER: Duration = Duration::from_secs(1);
const MOST_ASKS: u8 = 3;
/// At most one query per this long: 10 a second.
const SEND_GAP: Duration = Duration::from_millis(100);
/// Lifetimes are looked at most this often, however many packets arrive: the driver calls
/// [`Browser::handle_timeout`] after each one, and a LAN host can send thousands a second.
const CHECK_GAP: Duration = Duration::from_millis(100);

/// What the browser found out.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// An instance is resolved, or changed, or is still there.
    Resolved(Announcement),
    /// An instance reported before is gone (its full name).
    Removed(String),
}

/// The browser's state: what it holds of the browsed types, and when it asks next.
pub struct Browser {
    lan: Network,
    kinds: Vec<Kind>,
    instances: HashMap<Name, Instance>,
    /// How many of the instances each LAN address named first.
    senders: HashMap<Ipv4Addr, usize>,
    hosts: HashMap<Name, Host>,
    browse_at: Instant,
    browse_gap: Duration,
    sent_at: Option<Instant>,
    checked_at: Option<Instant>,
    events: VecDeque<Event>,
    ignored: u64,
}

struct Kind {
    name: Name,
    short: &'static str,
    held: usize,
}

struct Instance {
    /// Its full name as text, as first seen: later records may spell it in another case, and
    /// the inventory keys on the text.
    full_name: String,
    kind: usize,
    /// The LAN address that named it first.
    sender: Ipv4Addr,
    pointer: Lifetime,
    service: Option<Service>,
    /// Since when it has not been resolved: since it was first seen, or since it was last
    /// reported resolved; `None` while it is.
    unresolved_since: Option<Instant>,
    asks: Asks,
    reported: Option<Reported>,
    reported_at: Option<Instant>,
}

struct Service {
    target: Name,
    port: u16,
    life: Lifetime,
}

#[derive(Default)]
struct Host {
    addresses: Vec<(Ipv4Addr, Lifetime)>,
    asks: Asks,
    /// How many instances' services name it; it goes when none does.
    users: usize,
}

#[derive(Clone, PartialEq)]
struct Reported {
    target: Name,
    port: u16,
    addresses: Vec<Ipv4Addr>,
}

/// A record's lifetime and how often it was asked again before its end.
#[derive(Clone, Copy)]
struct Lifetime {
    ttl: Duration,
    expires: Instant,
    refreshes: u8,
}

impl Lifetime {
    fn new(now: Instant, ttl_secs: u32) -> Self {
        let ttl = Duration::from_secs(u64::from(ttl_secs)).min(LONGEST_TTL);
        Self { ttl, expires: now + ttl, refreshes: 0 }
    }

    fn expired(&self, now: Instant) -> bool {
        now >= self.expires
    }

    fn received(&self) -> Instant {
        self.expires - self.ttl
    }

    /// RFC 6762 §5.2: a querier asks again at 80 % and at 90 % of a record's lifetime.
    fn refresh_due(&self, now: Instant) -> bool {
        self.refreshes < 2 && now >= self.expires - self.ttl * u32::from(2 - self.refreshes) / 10
    }
}

#[derive(Default)]
struct Asks {
    count: u8,
    last: Option<Instant>,
}

impl Asks {
    fn due(&self, now: Instant) -> bool {
        self.count < MOST_ASKS && self.last.is_none_or(|at| now.saturating_duration_since(at) >= ASK_AGAIN_AFTER)
    }

    fn asked(&mut self, now: Instant) {
        self.count += 1;
        self.last = Some(now);
    }
}

impl Browser {
    /// A browser of `kinds` (`_http._tcp`, …) on the LAN `lan`; it browses at once.
    pub fn new(now: Instant, lan: Network, kinds: &[&'static str]) -> Self {
        let kinds = kinds
            .iter()
            .filter_map(|&short| Some(Kind { name: Name::from_ascii(format!("{short}.local.")).ok()?, short, held: 0 }))
            .collect();
        Self {
            lan,
            kinds,
            instances: HashMap::new(),
            senders: HashMap::new(),
            hosts: HashMap::new(),
            browse_at: now,
            browse_gap: FIRST_BROWSE_GAP,
            sent_at: None,
            checked_at: None,
            events: VecDeque::new(),
            ignored: 0,
        }
    }

    /// Takes in a packet that arrived from `from`. What is not an mDNS response from the LAN is
    /// counted in [`Browser::ignored`] and changes nothing.
    pub fn handle_response(&mut self, now: Instant, from: SocketAddrV4, packet: &[u8]) {
        let answers = (from.port() == message::PORT && self.lan.contains(*from.ip()))
            .then(|| message::read_response(packet))
            .flatten();
        let Some(answers) = answers else {
            self.ignored += 1;
            return;
        };
        let mut touched = Vec::new();
        // Pointers first, then services, then addresses: each may name what the one before
        // brought in, whatever the order in the message.
        for answer in &answers {
            if let Answer::Pointer { kind, instance, ttl } = answer {
                self.pointer(now, *from.ip(), kind, instance, *ttl, &mut touched);
            }
        }
        for answer in &answers {
            if let Answer::Service { instance, target, port, ttl, .. } = answer {
                self.service(now, instance, target, *port, *ttl, &mut touched);
            }
        }
        let mut flushed: HashSet<&Name> = HashSet::new();
        let mut changed: HashSet<&Name> = HashSet::new();
        for answer in &answers {
            if let Answer::Address { host, address, ttl, flush } = answer {
                let first_of_its_set = *flush && flushed.insert(host);
                if self.address(now, host, *address, *ttl, first_of_its_set) {
                    changed.insert(host);
                }
            }
        }
        // Every instance on a host whose addresses changed: one pass, and none when nothing
        // changed (most packets a flood sends).
        if !changed.is_empty() {
            let of_hosts = self
                .instances
                .iter()
                .filter(|(_, i)| i.service.as_ref().is_some_and(|s| changed.contains(&s.target)))
                .map(|(name, _)| name.clone());
            touched.extend(of_hosts);
        }
        touched.sort_unstable();
        touched.dedup();
        for name in &touched {
            self.report(now, name);
        }
    }

    /// Ends what expired by `now`: records past their lifetime, instances not resolved within
    /// [`RESOLVE_WITHIN`] of being first seen or of losing their service or last address. Looks at most every 100 ms; calls in between change nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.checked_at.is_some_and(|at| now.saturating_duration_since(at) < CHECK_GAP) {
            return;
        }
        self.checked_at = Some(now);
        let mut ended = Vec::new();
        for (name, instance) in &mut self.instances {
            if instance.service.as_ref().is_some_and(|s| s.life.expired(now)) {
                release(&mut self.hosts, instance.service.take());
            }
            let unresolved =
                instance.unresolved_since.is_some_and(|at| now.saturating_duration_since(at) >= RESOLVE_WITHIN);
            if instance.pointer.expired(now) || unresolved {
                ended.push(name.clone());
            }
        }
        for name in ended {
            self.forget(&name);
        }
        for host in self.hosts.values_mut() {
            host.addresses.retain(|(_, life)| !life.expired(now));
        }
        let names: Vec<Name> = self.instances.keys().cloned().collect();
        for name in &names {
            self.report(now, name);
        }
    }

    /// The next query to send to the group, if one is due: the browse, records at 80 % and 90 %
    /// of their lifetime, services and addresses still missing. At most one every 100 ms.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.sent_at.is_some_and(|at| now.saturating_duration_since(at) < SEND_GAP) {
            return None;
        }
        let mut questions = Questions::default();
        if now >= self.browse_at {
            for kind in &self.kinds {
                questions.ask(&kind.name, RecordType::PTR);
            }
            self.browse_at = now + self.browse_gap;
            self.browse_gap = (self.browse_gap * 2).min(LONGEST_BROWSE_GAP);
        }
        for (name, instance) in &mut self.instances {
            if instance.pointer.refresh_due(now) && questions.ask(&self.kinds[instance.kind].name, RecordType::PTR) {
                instance.pointer.refreshes += 1;
            }
            match &mut instance.service {
                Some(service) => {
                    if service.life.refresh_due(now) && questions.ask(name, RecordType::SRV) {
                        service.life.refreshes += 1;
                    }
                }
                None => {
                    if instance.asks.due(now) && questions.ask(name, RecordType::SRV) {
                        instance.asks.asked(now);
                    }
                }
            }
        }
        for (name, host) in &mut self.hosts {
            let refresh = host.addresses.iter().any(|(_, life)| life.refresh_due(now));
            let missing = host.addresses.is_empty() && host.asks.due(now);
            if (refresh || missing) && questions.ask(name, RecordType::A) {
                if missing {
                    host.asks.asked(now);
                }
                for (_, life) in &mut host.addresses {
                    if life.refresh_due(now) {
                        life.refreshes += 1;
                    }
                }
            }
        }
        if questions.0.is_empty() {
            return None;
        }
        self.sent_at = Some(now);
        Some(message::query(&questions.0))
    }

    /// The next thing found out, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Packets taken in that were not mDNS responses from the LAN.
    pub fn ignored(&self) -> u64 {
        self.ignored
    }

    /// How many instances and hosts it holds.
    pub fn held(&self) -> (usize, usize) {
        (self.instances.len(), self.hosts.len())
    }

    fn pointer(
        &mut self,
        now: Instant,
        sender: Ipv4Addr,
        kind: &Name,
        instance: &Name,
        ttl: u32,
        touched: &mut Vec<Name>,
    ) {
        let Some(k) = self.kinds.iter().position(|k| &k.name == kind) else { return };
        if instance.num_labels() != kind.num_labels() + 1 || &instance.base_name() != kind {
            return;
        }
        let Some(full_name) = text(instance) else { return };
        if ttl == 0 {
            self.forget(instance);
            // Any LAN host can send a goodbye in another's name: ask again soon, so a service
            // that is still there is back in a second, not at the next browse an hour away.
            self.browse_at = self.browse_at.min(now + GOODBYE_RECHECK);
            return;
        }
        if let Some(held) = self.instances.get_mut(instance) {
            held.pointer = Lifetime::new(now, ttl);
        } else {
            let named = self.senders.get(&sender).copied().unwrap_or(0);
            if self.instances.len() >= MOST_INSTANCES || self.kinds[k].held >= MOST_PER_KIND || named >= MOST_PER_SENDER
            {
                return;
            }
            self.senders.insert(sender, named + 1);
            self.kinds[k].held += 1;
            let instance_state = Instance {
                full_name,
                kind: k,
                sender,
                pointer: Lifetime::new(now, ttl),
                service: None,
                unresolved_since: Some(now),
                asks: Asks::default(),
                reported: None,
                reported_at: None,
            };
            self.instances.insert(instance.clone(), instance_state);
        }
        touched.push(instance.clone());
    }

    fn service(&mut self, now: Instant, instance: &Name, target: &Name, port: u16, ttl: u32, touched: &mut Vec<Name>) {
        let Some(held) = self.instances.get_mut(instance) else { return };
        if ttl == 0 {
            // A goodbye ends the record it names (RFC 6762 §10.1), not one that replaced it.
            if !held.service.as_ref().is_some_and(|s| &s.target == target && s.port == port) {
                return;
            }
            release(&mut self.hosts, held.service.take());
        } else if is_local(target) && port != 0 && text(target).is_some() {
            if held.service.as_ref().is_none_or(|s| &s.target != target) {
                if !self.hosts.contains_key(target) && self.hosts.len() >= MOST_HOSTS {
                    return;
                }
                self.hosts.entry(target.clone()).or_default().users += 1;
                release(&mut self.hosts, held.service.take());
            }
            held.service = Some(Service { target: target.clone(), port, life: Lifetime::new(now, ttl) });
        } else {
            return;
        }
        touched.push(instance.clone());
    }

    /// An address of `host`; `flush` when it is the first of a set that replaces the host's
    /// addresses (RFC 6762 §10.2: those received more than a second ago go). True when the
    /// host's addresses changed (not merely lived longer).
    fn address(&mut self, now: Instant, host: &Name, address: Ipv4Addr, ttl: u32, flush: bool) -> bool {
        let Some(held) = self.hosts.get_mut(host) else { return false };
        let before: Vec<Ipv4Addr> = held.addresses.iter().map(|(a, _)| *a).collect();
        if flush {
            held.addresses.retain(|(_, life)| now.saturating_duration_since(life.received()) < Duration::from_secs(1));
        }
        if ttl == 0 {
            held.addresses.retain(|(a, _)| *a != address);
        } else if let Some((_, life)) = held.addresses.iter_mut().find(|(a, _)| *a == address) {
            *life = Lifetime::new(now, ttl);
        } else if held.addresses.len() < MOST_ADDRESSES {
            held.addresses.push((address, Lifetime::new(now, ttl)));
        }
        !held.addresses.iter().map(|(a, _)| *a).eq(before.iter().copied())
    }

    fn forget(&mut self, name: &Name) {
        let Some(instance) = self.instances.remove(name) else { return };
        self.kinds[instance.kind].held -= 1;
        if let Some(named) = self.senders.get_mut(&instance.sender) {
            *named -= 1;
            if *named == 0 {
                self.senders.remove(&instance.sender);
            }
        }
        release(&mut self.hosts, instance.service);
        if instance.reported.is_some() {
            self.events.push_back(Event::Removed(instance.full_name));
        }
    }

    /// Tells what changed of the instance `name`: resolved now, changed (gone, then resolved
    /// again, so the inventory drops the old addresses), gone, or still there after
    /// [`REPORT_AGAIN_AFTER`].
    fn report(&mut self, now: Instant, name: &Name) {
        let Some(instance) = self.instances.get(name) else { return };
        let current = instance.service.as_ref().and_then(|s| {
            let mut addresses: Vec<Ipv4Addr> = self.hosts.get(&s.target)?.addresses.iter().map(|(a, _)| *a).collect();
            addresses.sort_unstable();
            (!addresses.is_empty()).then(|| Reported { target: s.target.clone(), port: s.port, addresses })
        });
        let kind = self.kinds[instance.kind].short;
        let last_report = instance.reported_at;
        let Some(instance) = self.instances.get_mut(name) else { return };
        let full_name = instance.full_name.clone();
        match (&instance.reported, current) {
            (None, None) => {}
            (Some(_), None) => {
                // Gone from the inventory, but not yet from here: what it lacks is asked again
                // (a host that changes its address drops the old one before it announces the
                // new), and it is forgotten if nobody answers in time.
                instance.reported = None;
                instance.unresolved_since = Some(now);
                instance.asks = Asks::default();
                if let Some(host) = instance.service.as_ref().and_then(|s| self.hosts.get_mut(&s.target)) {
                    host.asks = Asks::default();
                }
                self.events.push_back(Event::Removed(full_name));
            }
            (before, Some(current)) => {
                let changed = before.as_ref() != Some(&current);
                let stale = last_report.is_none_or(|at| now.saturating_duration_since(at) >= REPORT_AGAIN_AFTER);
                if changed || stale {
                    if changed && before.is_some() {
                        self.events.push_back(Event::Removed(full_name.clone()));
                    }
                    self.events.push_back(Event::Resolved(Announcement {
                        instance: full_name,
                        kind: kind.to_owned(),
                        host_name: text(&current.target).unwrap_or_default(),
                        addresses: current.addresses.clone(),
                        port: current.port,
                        ttl: ANNOUNCEMENT_TTL,
                    }));
                    instance.reported = Some(current);
                    instance.reported_at = Some(now);
                    instance.unresolved_since = None;
                }
            }
        }
    }
}

/// The questions of one query, each once, at most [`message::MOST_QUESTIONS`].
#[derive(Default)]
struct Questions(Vec<(Name, RecordType)>);

impl Questions {
    /// Adds a question; false when the query is full (asked in a later one).
    fn ask(&mut self, name: &Name, kind: RecordType) -> bool {
        if self.0.iter().any(|(n, k)| n == name && *k == kind) {
            return true;
        }
        if self.0.len() >= message::MOST_QUESTIONS {
            return false;
        }
        self.0.push((name.clone(), kind));
        true
    }
}

/// An instance no longer has `service`: its host goes once no instance names it (so that hosts
/// an instance named before, however many, hold no room).
fn release(hosts: &mut HashMap<Name, Host>, service: Option<Service>) {
    let Some(service) = service else { return };
    if let Some(host) = hosts.get_mut(&service.target) {
        host.users = host.users.saturating_sub(1);
        if host.users == 0 {
            hosts.remove(&service.target);
        }
    }
}

/// `name` as text: its labels as they are (an instance's first label may hold dots and
/// spaces), with the trailing dot; `None` unless every label is UTF-8.
fn text(name: &Name) -> Option<String> {
    let labels: Option<Vec<&str>> = name.iter().map(|label| std::str::from_utf8(label).ok()).collect();
    Some(format!("{}.", labels?.join(".")))
}

/// Whether `name` is a host name under `.local`.
fn is_local(name: &Name) -> bool {
    name.num_labels() >= 2 && name.iter().next_back().is_some_and(|top| top.eq_ignore_ascii_case(b"local"))
}
