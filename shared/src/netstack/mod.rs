//! The client netstack: TCP streams, UDP, ICMP echo and DNS over the tunnel's IP packets.
//!
//! A browser cannot open raw sockets, so the client runs its own TCP/IP stack (smoltcp in
//! `Medium::Ip`) on top of the tunnel: IP packets the relay forwards from the home network go
//! in through [`NetStack::receive_packet`], and the packets the stack wants to send come out
//! of [`NetStack::poll_transmit`] (or [`NetStack::drain_transmit`]) to be sealed into tunnel
//! records. Every destination outside the tunnel subnet goes out through the tunnel too (the
//! default route points at it); the relay decides what is reachable.
//!
//! Sans-IO like the rest of the core: time comes in as [`Instant`] on every call that needs it,
//! randomness (initial sequence numbers, ports, DNS ids) comes from the seed given to
//! [`NetStack::new`]. The driving loop is:
//!
//! 1. feed received packets with [`NetStack::receive_packet`];
//! 2. call [`NetStack::poll`] with the current time;
//! 3. send what [`NetStack::poll_transmit`] returns into the tunnel, and read sockets /
//!    [`NetStack::poll_event`];
//! 4. sleep until [`NetStack::poll_timeout`], or until a packet arrives or a socket is used.
//!
//! Nothing an incoming packet contains can panic the stack: smoltcp parses with checked views,
//! and the DNS answers are parsed with bounds-checked readers.
//!
//! ```
//! use std::net::{Ipv4Addr, SocketAddrV4};
//! use hometun_shared::netstack::{NetConfig, NetStack, TcpState};
//! use hometun_shared::time::Instant;
//!
//! let mut config = NetConfig::new(Ipv4Addr::new(10, 8, 0, 6), 24);
//! config.dns_servers = vec![Ipv4Addr::new(192, 168, 0, 1)];
//! let now = Instant::from_millis(0);
//! let mut stack = NetStack::new(config, now, 0x5eed).unwrap();
//!
//! let web = stack.tcp_connect(SocketAddrV4::new(Ipv4Addr::new(192, 168, 0, 10), 80)).unwrap();
//! stack.poll(now);
//! let mut to_tunnel = Vec::new();
//! stack.drain_transmit(|packet| to_tunnel.push(packet.to_vec()));
//! assert_eq!(to_tunnel.len(), 1, "the SYN");
//! assert_eq!(stack.tcp_state(web).unwrap(), TcpState::Connecting);
//! // ... seal `to_tunnel` into records; feed what the relay sends back to `receive_packet`.
//! ```

mod device;
mod dns;
mod error;
mod icmp;
mod ids;
mod ports;
mod tcp;
mod udp;

use std::collections::VecDeque;
use std::net::Ipv4Addr;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use smoltcp::iface::{Config, Interface, PollIngressSingleResult, PollResult, SocketSet};
use smoltcp::wire::{HardwareAddress, IpCidr, Ipv4Cidr};

use crate::time::{Duration, Instant};
use crate::unanswered::Unanswered;
use device::TunnelDevice;

pub use dns::{DnsQuery, DNS_TIMEOUT_PER_SERVER};
pub use error::{Error, Result};
pub use icmp::PingReply;
pub use tcp::{TcpHandle, TcpState};
pub use udp::UdpHandle;

/// Upper bound on `poll_egress` rounds per [`NetStack::poll`]; each round sends at most one
/// segment per socket, so this bounds the work of one poll.
const MAX_EGRESS_ROUNDS: usize = 4096;
/// Events kept for [`NetStack::poll_event`] before the oldest are dropped.
const EVENT_LIMIT: usize = 4096;
/// RST sightings remembered between two polls (to tell "refused" from "timed out").
const RESET_LIMIT: usize = 256;
/// The default [`NetConfig::tcp_connect_timeout`].
pub const TCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The default [`NetConfig::tcp_timeout`]: two and a half minutes. While the peer keeps its
/// window closed (an app that stopped reading an upload), the stack probes it at doubling
/// intervals up to 60 s, and only the peer's answers show it alive; a page's timers may fire
/// up to a minute late (Chromium may wake a tab hidden for five minutes only once a minute).
/// A timeout of 60 s ended such uploads after about two minutes of a closed window: the probe
/// due a minute after the last answer went out a few milliseconds late and found the peer
/// "silent".
pub const TCP_TIMEOUT: Duration = Duration::from_secs(150);

/// How the stack is set up: the tunnel address and limits the relay pushed, plus tuning.
///
/// Build it with [`NetConfig::new`] and adjust fields; every field has a sensible default
/// except the address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetConfig {
    /// The client's tunnel address (e.g. 10.8.0.6).
    pub address: Ipv4Addr,
    /// Prefix length of the tunnel subnet (e.g. 24).
    pub prefix_len: u8,
    /// The tunnel MTU: the largest UDP or ICMP packet the stack emits (576..=65535).
    pub mtu: usize,
    /// The largest TCP packet the stack emits, at least `mtu` (default: `mtu`). A relay that
    /// cuts large segments for the LAN takes up to 65535: one packet, one record and one
    /// AEAD pass per 64 KiB of upload instead of ~45. Connections still honour each peer's
    /// announced segment size (the relay raises it where it cuts).
    pub max_tcp_packet: usize,
    /// Leave the checksum of outgoing TCP packets out (default: compute it), for a relay
    /// that has it computed on the way to the LAN ([`crate::control::Features::tcp_checksum`]):
    /// one pass less over every byte sent.
    pub tcp_checksum_offload: bool,
    /// Take incoming TCP packets without checking their checksum (default: check it), from a
    /// relay that vouches for them ([`crate::control::Features::tcp_checksum_checked`]): one
    /// pass less over every byte received.
    pub tcp_checksum_checked: bool,
    /// DNS servers for [`NetStack::resolve`], tried in order.
    pub dns_servers: Vec<Ipv4Addr>,
    /// Receive buffer per TCP connection, in bytes: the most a LAN host may have in flight
    /// toward this device (default 1 MiB; the window scale follows from it). At most 1 GiB.
    /// 256 KiB capped a native download at ~1.4 Gbit/s (window / round trip under load), and
    /// as a send buffer an upload at ~1.0 Gbit/s.
    pub tcp_receive_buffer: usize,
    /// Send buffer per TCP connection, in bytes: the most this device may have in flight
    /// (default 1 MiB). At most 1 GiB.
    pub tcp_send_buffer: usize,
    /// Delayed-ACK time for TCP (default 1 ms; `None` acknowledges every segment at once).
    /// A second full segment is always acknowledged immediately.
    pub tcp_ack_delay: Option<Duration>,
    /// How long a connection attempt waits for an answer before [`Error::TimedOut`]
    /// (default [`TCP_CONNECT_TIMEOUT`]).
    pub tcp_connect_timeout: Duration,
    /// How long an established connection's peer may stay silent while sent data waits for
    /// it before the connection is declared dead with [`Error::StoppedAnswering`] (default
    /// [`TCP_TIMEOUT`]). Probes of a closed window count as waiting data: keep it well above
    /// the longest probe interval (60 s) plus how late the page's timers may fire.
    pub tcp_timeout: Duration,
    /// Most TCP connections open at once, closing ones included (default 256, as many as a
    /// browser opens in all; with the default buffers at most 512 MiB).
    pub max_tcp_sockets: usize,
    /// Packets queued in each direction between the tunnel and the stack (default 1024);
    /// received packets beyond this are dropped and counted.
    pub queue_packets: usize,
}

impl NetConfig {
    /// A configuration with the given tunnel address and defaults for everything else:
    /// MTU 1400, no DNS server, 1 MiB TCP receive and send buffers.
    pub fn new(address: Ipv4Addr, prefix_len: u8) -> Self {
        Self {
            address,
            prefix_len,
            mtu: 1400,
            max_tcp_packet: 1400,
            tcp_checksum_offload: false,
            tcp_checksum_checked: false,
            dns_servers: Vec::new(),
            tcp_receive_buffer: 1024 * 1024,
            tcp_send_buffer: 1024 * 1024,
            tcp_ack_delay: Some(Duration::from_millis(1)),
            tcp_connect_timeout: TCP_CONNECT_TIMEOUT,
            tcp_timeout: TCP_TIMEOUT,
            max_tcp_sockets: 256,
            queue_packets: 1024,
        }
    }

    fn validate(&self) -> Result<()> {
        let a = self.address;
        if a.is_unspecified() || a.is_broadcast() || a.is_multicast() {
            return Err(Error::InvalidConfig("address must be a unicast IPv4 address"));
        }
        if self.prefix_len > 32 {
            return Err(Error::InvalidConfig("prefix_len must be at most 32"));
        }
        if !(576..=65535).contains(&self.mtu) {
            return Err(Error::InvalidConfig("mtu must be between 576 and 65535"));
        }
        if !(self.mtu..=65535).contains(&self.max_tcp_packet) {
            return Err(Error::InvalidConfig("max_tcp_packet must be between mtu and 65535"));
        }
        if !(1024..=(1 << 30)).contains(&self.tcp_receive_buffer) {
            return Err(Error::InvalidConfig("tcp_receive_buffer must be between 1 KiB and 1 GiB"));
        }
        if !(1024..=(1 << 30)).contains(&self.tcp_send_buffer) {
            return Err(Error::InvalidConfig("tcp_send_buffer must be between 1 KiB and 1 GiB"));
        }
        if self.queue_packets == 0 {
            return Err(Error::InvalidConfig("queue_packets must be at least 1"));
        }
        if self.dns_servers.iter().any(|s| s.is_unspecified() || s.is_broadcast() || s.is_multicast()) {
            return Err(Error::InvalidConfig("dns_servers must be unicast IPv4 addresses"));
        }
        Ok(())
    }
}

/// Something that changed inside the stack, reported by [`NetStack::poll_event`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A TCP connection changed state (connected, peer closed, refused, reset, ...).
    Tcp {
        /// The connection.
        handle: TcpHandle,
        /// Its new state.
        state: TcpState,
    },
    /// A DNS query finished; fetch the answer with [`NetStack::dns_result`].
    DnsFinished(DnsQuery),
    /// An echo reply arrived; fetch it with [`NetStack::poll_ping_reply`].
    PingReply,
}

/// Packet counters, for diagnostics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Packets accepted from the tunnel into the receive queue.
    pub packets_in: u64,
    /// Packets handed out to the tunnel.
    pub packets_out: u64,
    /// Received packets dropped because the receive queue was full (poll more often).
    pub dropped_queue_full: u64,
    /// Received packets dropped before parsing because they cannot be IPv4 (empty, wrong
    /// version, longer than 65535 bytes).
    pub dropped_malformed: u64,
}

/// The client's TCP/IP stack over the tunnel. See the [module documentation](self).
pub struct NetStack {
    config: NetConfig,
    iface: Interface,
    sockets: SocketSet<'static>,
    device: TunnelDevice,
    rng: ChaCha8Rng,
    now: Instant,
    tcp: tcp::TcpTable,
    udp: udp::UdpTable,
    icmp: icmp::Pinger,
    dns: dns::Resolver,
    events: VecDeque<Event>,
    stats: NetStats,
    /// `(peer address, peer port, local port)` of TCP resets received since the last poll.
    resets: Vec<(Ipv4Addr, u16, u16)>,
    /// What went out since the relay last sent anything (see [`crate::unanswered`]).
    unanswered: Unanswered,
}

impl core::fmt::Debug for NetStack {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NetStack")
            .field("address", &self.config.address)
            .field("now", &self.now)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl NetStack {
    /// Builds a stack for the tunnel address in `config`, at time `now`.
    ///
    /// `seed` feeds every random choice of the stack (TCP initial sequence numbers, local
    /// ports, ICMP identifier, DNS transaction ids): take it from the OS RNG in the driver.
    /// Fails with [`Error::InvalidConfig`] when the configuration cannot work.
    pub fn new(config: NetConfig, now: Instant, seed: u64) -> Result<Self> {
        config.validate()?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut device = TunnelDevice::new(&config);

        let mut iface_config = Config::new(HardwareAddress::Ip);
        iface_config.random_seed = rng.next_u64();
        let mut iface = Interface::new(iface_config, &mut device, smol_instant(now));
        let cidr = Ipv4Cidr::new(config.address, config.prefix_len);
        iface.update_ip_addrs(|addrs| {
            // Room for IFACE_MAX_ADDR_COUNT (2) addresses; the list is empty here.
            let _ = addrs.push(IpCidr::Ipv4(cidr));
        });
        // In Medium::Ip the gateway is never looked up; the route only makes every
        // destination reachable through the tunnel.
        iface
            .routes_mut()
            .add_default_ipv4_route(config.address)
            .map_err(|_| Error::InvalidConfig("route table full"))?;

        let mut sockets = SocketSet::new(Vec::new());
        let tcp = tcp::TcpTable::new(rng.next_u32());
        let udp = udp::UdpTable::new(rng.next_u32());
        let icmp = icmp::Pinger::new(&mut sockets, rng.next_u32() as u16, config.mtu);
        let dns = dns::Resolver::new(config.dns_servers.clone());

        Ok(Self {
            config,
            iface,
            sockets,
            device,
            rng,
            now,
            tcp,
            udp,
            icmp,
            dns,
            events: VecDeque::new(),
            stats: NetStats::default(),
            resets: Vec::new(),
            unanswered: Unanswered::default(),
        })
    }

    /// The configuration the stack runs with.
    pub fn config(&self) -> &NetConfig {
        &self.config
    }

    /// Packet counters.
    pub fn stats(&self) -> NetStats {
        self.stats
    }

    /// Queues one IP packet received from the tunnel; [`NetStack::poll`] processes it.
    ///
    /// The packet is copied. When the receive queue is full the packet is dropped and counted
    /// in [`NetStats::dropped_queue_full`] (TCP retransmits it): poll after each batch.
    /// Any bytes are accepted; what is not a valid packet for this stack is dropped.
    pub fn receive_packet(&mut self, packet: &[u8]) {
        if packet.is_empty() || packet[0] >> 4 != 4 || packet.len() > 65535 {
            self.stats.dropped_malformed += 1;
            return;
        }
        if !self.device.push_rx(packet) {
            self.stats.dropped_queue_full += 1;
            return;
        }
        self.stats.packets_in += 1;
        if let Some(reset) = tcp::reset_of(packet) {
            if self.resets.len() < RESET_LIMIT {
                self.resets.push(reset);
            }
        }
    }

    /// Runs the stack at time `now`: processes every queued packet, fires timers
    /// (retransmissions, DNS retries, timeouts) and queues the packets to send.
    ///
    /// Call it after feeding packets, after using sockets, and when [`NetStack::poll_timeout`]
    /// is reached. `now` must not go backwards.
    pub fn poll(&mut self, now: Instant) {
        self.ingress(now);
        let ts = smol_instant(self.now);
        self.device.take_tx_blocked();
        for _ in 0..MAX_EGRESS_ROUNDS {
            if self.device.tx_full() {
                // More may be waiting: poll_timeout says "now" until the driver drained.
                self.device.mark_tx_blocked();
                break;
            }
            if self.iface.poll_egress(ts, &mut self.device, &mut self.sockets) == PollResult::None {
                break;
            }
        }

        self.reconcile();
    }

    /// Processes the queued packets at `now` (data reaches its sockets, echo replies and DNS
    /// answers are collected) but sends nothing: the acknowledgements wait for the next
    /// [`NetStack::poll`]. A driver that lets the application run in between sends an
    /// acknowledgement together with the application's answer, in one packet.
    pub fn poll_ingress(&mut self, now: Instant) {
        self.ingress(now);
        self.reconcile();
    }

    fn ingress(&mut self, now: Instant) {
        self.now = self.now.max(now);
        let (now, ts) = (self.now, smol_instant(self.now));
        while self.device.rx_pending() {
            if self.iface.poll_ingress_single(ts, &mut self.device, &mut self.sockets) == PollIngressSingleResult::None
            {
                break;
            }
        }
        if self.icmp.collect_replies(&mut self.sockets, now) {
            push_event(&mut self.events, Event::PingReply);
        }
        self.dns.process(&mut self.sockets, &mut self.udp, now, &mut self.events);
    }

    fn reconcile(&mut self) {
        self.tcp.reconcile(&mut self.sockets, &self.resets, self.now, &self.config, &mut self.events);
        self.resets.clear();
    }

    /// When [`NetStack::poll`] must run next if nothing else happens (like
    /// [`Session::poll_timeout`](crate::Session::poll_timeout)); `None` when no timer is
    /// pending. An instant at or before the last poll means "poll now": packets wait in the
    /// receive queue, a socket has data to send, or the last poll stopped because the
    /// transmit queue was full (drain it first, then poll).
    #[must_use]
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        if self.device.rx_pending() || self.device.tx_blocked() {
            return Some(self.now);
        }
        let iface = self.iface.poll_at(smol_instant(self.now), &self.sockets).map(core_instant);
        [iface, self.dns.next_timer(), self.tcp.next_timer()].into_iter().flatten().min()
    }

    /// Takes the next IP packet to send into the tunnel, oldest first.
    #[must_use]
    ///
    /// Give the buffer back with [`NetStack::recycle`] when done to avoid an allocation per
    /// packet, or use [`NetStack::drain_transmit`].
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        let packet = self.device.pop_tx()?;
        self.stats.packets_out += 1;
        Some(packet)
    }

    /// Hands every queued outgoing packet to `send`, oldest first, and keeps the buffers for
    /// reuse (no allocation per packet once warm). The newest of them stay until
    /// [`NetStack::answered`], for [`NetStack::send_unanswered_again`]: their buffers return to
    /// the pool then, so keeping them copies nothing.
    pub fn drain_transmit(&mut self, mut send: impl FnMut(&[u8])) {
        while let Some(packet) = self.device.pop_tx() {
            self.stats.packets_out += 1;
            send(&packet);
            let device = &mut self.device;
            self.unanswered.keep(packet, |old| device.recycle_tx(old));
        }
    }

    /// The relay sent something: the packets sent before are no longer in doubt.
    pub fn answered(&mut self) {
        let device = &mut self.device;
        self.unanswered.answered(|packet| device.recycle_tx(packet));
    }

    /// Hands the newest packets sent since the relay last sent anything to `send` again,
    /// oldest first (a new connection replaced one that may have died with them; see
    /// [`crate::unanswered`]). They stay kept until the relay answers.
    pub fn send_unanswered_again(&mut self, mut send: impl FnMut(&[u8])) {
        self.unanswered.iter().for_each(&mut send);
    }

    /// Number of packets waiting in the transmit queue.
    pub fn transmit_queue_len(&self) -> usize {
        self.device.tx_len()
    }

    /// Returns a buffer taken from [`NetStack::poll_transmit`] for reuse.
    pub fn recycle(&mut self, buffer: Vec<u8>) {
        self.device.recycle_tx(buffer);
    }

    /// Takes the next event (TCP state changes, finished DNS queries, echo replies), oldest
    /// first. Events are informative: the state can always be queried directly too. At most
    /// 4096 are kept; older ones are dropped when nobody takes them.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Replaces the DNS servers (e.g. after the relay pushed a new configuration). Queries
    /// already running keep their servers.
    pub fn set_dns_servers(&mut self, servers: Vec<Ipv4Addr>) -> Result<()> {
        let mut config = self.config.clone();
        config.dns_servers = servers.clone();
        config.validate()?;
        self.config = config;
        self.dns.set_servers(servers);
        Ok(())
    }
}

fn push_event(events: &mut VecDeque<Event>, event: Event) {
    if events.len() >= EVENT_LIMIT {
        events.pop_front();
    }
    events.push_back(event);
}

/// The core's time as smoltcp's (microseconds; saturating at i64::MAX).
fn smol_instant(now: Instant) -> smoltcp::time::Instant {
    smoltcp::time::Instant::from_micros(i64::try_from(now.as_micros()).unwrap_or(i64::MAX))
}

/// smoltcp's time as the core's (microseconds; times before the origin read as the origin).
fn core_instant(at: smoltcp::time::Instant) -> Instant {
    Instant::from_micros(u64::try_from(at.total_micros()).unwrap_or(0))
}

/// The core's duration as smoltcp's (microseconds; saturating).
fn smol_duration(d: Duration) -> smoltcp::time::Duration {
    smoltcp::time::Duration::from_micros(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// True when `addr` can be the destination of a unicast packet.
fn is_unicast(addr: Ipv4Addr) -> bool {
    !(addr.is_unspecified() || addr.is_broadcast() || addr.is_multicast())
}
