//! An in-memory home network for the netstack tests (`netstack_*.rs`), on a virtual clock.
//!
//! `World` joins the client's [`NetStack`] (10.8.0.6/24, as if behind the tunnel) to a second
//! smoltcp stack playing the LAN host 192.168.0.10, through a link that delays every packet
//! by a fixed one-way time. The LAN host runs small services:
//!
//! - TCP 7: echo (many connections at once), TCP 9: sink (checks the upload pattern),
//!   TCP 19: source (sends as many pattern bytes as the 8-byte big-endian length asked for);
//! - UDP 7: echo; UDP 53: a DNS server with a few A records;
//! - ICMP echo: smoltcp answers by itself.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};

use hometun_shared::netstack::{NetConfig, NetStack, TcpHandle, TcpState};
use hometun_shared::time::{Duration, Instant};
use smoltcp::iface::{Config, Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::phy::{self, ChecksumCapabilities, DeviceCapabilities, Medium};
use smoltcp::socket::{tcp, udp};
use smoltcp::wire::{DnsPacket, DnsQuestion, HardwareAddress, IpCidr, Ipv4Cidr};

pub(crate) const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 8, 0, 6);
pub(crate) const LAN_HOST: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 10);
/// An address on the LAN where nobody lives: packets to it vanish.
pub(crate) const ABSENT_HOST: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 99);
pub(crate) const ECHO_PORT: u16 = 7;
pub(crate) const SINK_PORT: u16 = 9;
pub(crate) const SOURCE_PORT: u16 = 19;
pub(crate) const CLOSED_PORT: u16 = 81;
pub(crate) const DNS_PORT: u16 = 53;
pub(crate) const MTU: usize = 1400;

/// Names the LAN DNS server knows. `broken.home.arpa` gets SERVFAIL, `silent.home.arpa` no
/// answer at all, anything else NXDOMAIN.
pub(crate) const DNS_RECORDS: &[(&str, &[Ipv4Addr])] = &[
    ("nas.home.arpa", &[Ipv4Addr::new(192, 168, 0, 20)]),
    ("printer.home.arpa", &[Ipv4Addr::new(192, 168, 0, 21), Ipv4Addr::new(192, 168, 0, 22)]),
];

const ECHO_LISTENERS: usize = 80;
const ECHO_BUFFER: usize = 64 * 1024;
const BULK_BUFFER: usize = 1024 * 1024;
/// `poll` rounds of the LAN host per step; smoltcp sends one segment per socket per round.
const LAN_POLL_ROUNDS: usize = 10_000;

/// Byte `offset` of test stream `stream`: a cheap pattern where a shifted, lost, duplicated or
/// foreign byte is caught.
pub(crate) fn pattern(stream: u32, offset: u64) -> u8 {
    let x = (offset ^ (u64::from(stream) << 40)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (x >> 56) as u8 ^ offset as u8
}

pub(crate) fn fill_pattern(stream: u32, offset: u64, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = pattern(stream, offset + i as u64);
    }
}

/// Offset of the first byte of `buf` that differs from stream `stream` at `offset`.
pub(crate) fn first_mismatch(stream: u32, offset: u64, buf: &[u8]) -> Option<u64> {
    buf.iter().enumerate().find(|&(i, &b)| b != pattern(stream, offset + i as u64)).map(|(i, _)| offset + i as u64)
}

/// The pattern stream the sink checks uploads against, and the source sends downloads from.
pub(crate) const UPLOAD_STREAM: u32 = 1;
pub(crate) const DOWNLOAD_STREAM: u32 = 2;

/// What the sink saw on one finished upload connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SinkReport {
    pub bytes: u64,
    pub first_mismatch: Option<u64>,
}

enum Role {
    Echo,
    Sink { bytes: u64, first_mismatch: Option<u64> },
    Source { header: Vec<u8>, sent: u64 },
}

struct Server {
    socket: SocketHandle,
    port: u16,
    role: Role,
}

/// The LAN host: a plain smoltcp interface with the test services.
pub(crate) struct LanHost {
    iface: Interface,
    device: QueueDevice,
    sockets: SocketSet<'static>,
    servers: Vec<Server>,
    udp_echo: SocketHandle,
    dns: SocketHandle,
    pub sink_reports: Vec<SinkReport>,
    /// The sink service stops reading (an app busy elsewhere): its window closes.
    pub sink_paused: bool,
    /// TCP connections the echo service accepted (for "all streams were served" checks).
    pub echo_connections: usize,
    scratch: Vec<u8>,
    now: Instant,
}

impl LanHost {
    fn new(now: Instant) -> Self {
        let mut device = QueueDevice::default();
        let mut config = Config::new(HardwareAddress::Ip);
        config.random_seed = 0x5eed;
        let mut iface = Interface::new(config, &mut device, smol(now));
        iface.update_ip_addrs(|a| a.push(IpCidr::Ipv4(Ipv4Cidr::new(LAN_HOST, 24))).expect("room for an address"));
        iface.routes_mut().add_default_ipv4_route(Ipv4Addr::new(192, 168, 0, 1)).expect("room for a route");

        let mut sockets = SocketSet::new(Vec::new());
        let mut servers = Vec::new();
        for _ in 0..ECHO_LISTENERS {
            servers.push(listen(&mut sockets, ECHO_PORT, ECHO_BUFFER, Role::Echo));
        }
        for _ in 0..2 {
            servers.push(listen(&mut sockets, SINK_PORT, BULK_BUFFER, Role::Sink { bytes: 0, first_mismatch: None }));
            servers.push(listen(&mut sockets, SOURCE_PORT, BULK_BUFFER, Role::Source { header: Vec::new(), sent: 0 }));
        }
        let udp_echo = sockets.add(bound_udp(ECHO_PORT));
        let dns = sockets.add(bound_udp(DNS_PORT));
        Self {
            iface,
            device,
            sockets,
            servers,
            udp_echo,
            dns,
            sink_reports: Vec::new(),
            sink_paused: false,
            echo_connections: 0,
            scratch: vec![0u8; 64 * 1024],
            now,
        }
    }

    /// Aborts every open TCP connection of the LAN host (each peer gets an RST).
    pub(crate) fn reset_all_connections(&mut self) {
        for server in &self.servers {
            let socket = self.sockets.get_mut::<tcp::Socket>(server.socket);
            if !matches!(socket.state(), tcp::State::Listen | tcp::State::Closed) {
                socket.abort();
            }
        }
        // Send the RSTs before the services recycle the sockets.
        for _ in 0..LAN_POLL_ROUNDS {
            if self.iface.poll_egress(smol(self.now), &mut self.device, &mut self.sockets) == PollResult::None {
                break;
            }
        }
    }

    fn poll(&mut self, now: Instant) {
        self.now = now;
        for _ in 0..LAN_POLL_ROUNDS {
            let changed =
                self.iface.poll(smol(now), &mut self.device, &mut self.sockets) == PollResult::SocketStateChanged;
            let served = self.serve();
            if !changed && !served {
                break;
            }
        }
    }

    /// Runs the services once; true when they did something.
    fn serve(&mut self) -> bool {
        let mut busy = false;
        for server in &mut self.servers {
            let socket = self.sockets.get_mut::<tcp::Socket>(server.socket);
            match socket.state() {
                tcp::State::Closed | tcp::State::TimeWait => {
                    if let Role::Sink { bytes, first_mismatch } = server.role {
                        if bytes > 0 || first_mismatch.is_some() {
                            self.sink_reports.push(SinkReport { bytes, first_mismatch });
                        }
                    }
                    if socket.state() == tcp::State::TimeWait {
                        socket.abort();
                    }
                    *socket = tcp_socket(socket_buffer_len(&server.role));
                    socket.listen(server.port).expect("listen on a fresh socket");
                    server.role = match server.role {
                        Role::Echo => Role::Echo,
                        Role::Sink { .. } => Role::Sink { bytes: 0, first_mismatch: None },
                        Role::Source { .. } => Role::Source { header: Vec::new(), sent: 0 },
                    };
                    busy = true;
                    continue;
                }
                tcp::State::Listen | tcp::State::SynReceived => continue,
                _ if self.sink_paused && matches!(server.role, Role::Sink { .. }) => continue,
                _ => {}
            }
            busy |= serve_connection(socket, &mut server.role, &mut self.scratch, &mut self.echo_connections);
        }
        busy |= self.serve_udp_echo();
        busy |= self.serve_dns();
        busy
    }

    fn serve_udp_echo(&mut self) -> bool {
        let socket = self.sockets.get_mut::<udp::Socket>(self.udp_echo);
        let mut busy = false;
        while let Ok((n, meta)) = socket.recv_slice(&mut self.scratch) {
            let _ = socket.send_slice(&self.scratch[..n], meta.endpoint);
            busy = true;
        }
        busy
    }

    fn serve_dns(&mut self) -> bool {
        let socket = self.sockets.get_mut::<udp::Socket>(self.dns);
        let mut busy = false;
        while let Ok((n, meta)) = socket.recv_slice(&mut self.scratch) {
            busy = true;
            if let Some(reply) = dns_reply(&self.scratch[..n]) {
                let _ = socket.send_slice(&reply, meta.endpoint);
            }
        }
        busy
    }
}

fn socket_buffer_len(role: &Role) -> usize {
    match role {
        Role::Echo => ECHO_BUFFER,
        _ => BULK_BUFFER,
    }
}

fn tcp_socket(buffer: usize) -> tcp::Socket<'static> {
    let mut socket =
        tcp::Socket::new(tcp::SocketBuffer::new(vec![0u8; buffer]), tcp::SocketBuffer::new(vec![0u8; buffer]));
    socket.set_nagle_enabled(false);
    socket.set_ack_delay(None);
    socket
}

fn listen(sockets: &mut SocketSet<'static>, port: u16, buffer: usize, role: Role) -> Server {
    let mut socket = tcp_socket(buffer);
    socket.listen(port).expect("listen on a fresh socket");
    Server { socket: sockets.add(socket), port, role }
}

fn bound_udp(port: u16) -> udp::Socket<'static> {
    let buffer = || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 64], vec![0u8; 64 * 1500]);
    let mut socket = udp::Socket::new(buffer(), buffer());
    socket.bind(port).expect("bind a fresh socket");
    socket
}

/// One round of a TCP service on an open connection; true when it moved bytes or state.
fn serve_connection(
    socket: &mut tcp::Socket<'static>,
    role: &mut Role,
    scratch: &mut [u8],
    accepted: &mut usize,
) -> bool {
    let mut busy = false;
    match role {
        Role::Echo => {
            loop {
                let room = (socket.send_capacity() - socket.send_queue()).min(scratch.len());
                let n = if room == 0 { 0 } else { socket.recv_slice(&mut scratch[..room]).unwrap_or(0) };
                if n == 0 {
                    break;
                }
                if socket.send_slice(&scratch[..n]).unwrap_or(0) != n {
                    panic!("echo lost bytes");
                }
                busy = true;
            }
            if socket.state() == tcp::State::CloseWait && socket.recv_queue() == 0 {
                *accepted += 1;
                socket.close();
                busy = true;
            }
        }
        Role::Sink { bytes, first_mismatch } => {
            loop {
                let n = socket.recv_slice(scratch).unwrap_or(0);
                if n == 0 {
                    break;
                }
                if first_mismatch.is_none() {
                    *first_mismatch = self::first_mismatch(UPLOAD_STREAM, *bytes, &scratch[..n]);
                }
                *bytes += n as u64;
                busy = true;
            }
            if socket.state() == tcp::State::CloseWait {
                socket.close();
                busy = true;
            }
        }
        Role::Source { header, sent } => {
            while header.len() < 8 {
                let mut byte = [0u8; 1];
                match socket.recv_slice(&mut byte) {
                    Ok(1) => header.push(byte[0]),
                    _ => break,
                }
            }
            if header.len() == 8 {
                let total = u64::from_be_bytes(header[..8].try_into().expect("8 bytes"));
                while *sent < total && socket.can_send() {
                    let room = (socket.send_capacity() - socket.send_queue()).min(scratch.len());
                    let n = room.min((total - *sent) as usize);
                    fill_pattern(DOWNLOAD_STREAM, *sent, &mut scratch[..n]);
                    let queued = socket.send_slice(&scratch[..n]).unwrap_or(0);
                    *sent += queued as u64;
                    busy |= queued > 0;
                    if queued < n {
                        break;
                    }
                }
                if *sent == total && socket.state() == tcp::State::Established {
                    socket.close();
                    busy = true;
                }
            }
        }
    }
    busy
}

/// The LAN DNS server's answer to `query`, or `None` for no answer.
fn dns_reply(query: &[u8]) -> Option<Vec<u8>> {
    let packet = DnsPacket::new_checked(query).ok()?;
    let (rest, question) = DnsQuestion::parse(packet.payload()).ok()?;
    let name = packet
        .parse_name(question.name)
        .map(|label| label.map(|l| String::from_utf8_lossy(l).into_owned()))
        .collect::<Result<Vec<_>, _>>()
        .ok()?
        .join(".");
    let question_end = query.len() - rest.len();

    let (rcode, addresses): (u16, &[Ipv4Addr]) = match name.as_str() {
        "silent.home.arpa" => return None,
        "broken.home.arpa" => (2, &[]),
        _ => match DNS_RECORDS.iter().find(|(n, _)| *n == name) {
            Some((_, addresses)) => (0, addresses),
            None => (3, &[]),
        },
    };
    let mut reply = query[..question_end].to_vec();
    reply[2..4].copy_from_slice(&(0x8180 | rcode).to_be_bytes());
    reply[6..8].copy_from_slice(&(addresses.len() as u16).to_be_bytes());
    reply[8..12].fill(0);
    for address in addresses {
        // Name: pointer to the question at offset 12; type A, class IN, TTL 60, 4 bytes.
        reply.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        reply.extend_from_slice(&address.octets());
    }
    Some(reply)
}

/// A smoltcp device made of two packet queues.
#[derive(Default)]
struct QueueDevice {
    rx: VecDeque<Vec<u8>>,
    tx: VecDeque<Vec<u8>>,
}

struct QueueRx(Vec<u8>);
struct QueueTx<'a>(&'a mut VecDeque<Vec<u8>>);

impl phy::RxToken for QueueRx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for QueueTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = vec![0u8; len];
        let r = f(&mut buf);
        self.0.push_back(buf);
        r
    }
}

impl phy::Device for QueueDevice {
    type RxToken<'a> = QueueRx;
    type TxToken<'a> = QueueTx<'a>;

    fn receive(&mut self, _: smoltcp::time::Instant) -> Option<(QueueRx, QueueTx<'_>)> {
        let packet = self.rx.pop_front()?;
        Some((QueueRx(packet), QueueTx(&mut self.tx)))
    }

    fn transmit(&mut self, _: smoltcp::time::Instant) -> Option<QueueTx<'_>> {
        Some(QueueTx(&mut self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = MTU;
        caps.checksum = ChecksumCapabilities::default();
        caps
    }
}

fn smol(now: Instant) -> smoltcp::time::Instant {
    smoltcp::time::Instant::from_micros(now.as_micros() as i64)
}

/// The client stack, the LAN host and the link between them, on one virtual clock.
pub(crate) struct World {
    pub now: Instant,
    pub client: NetStack,
    pub lan: LanHost,
    /// One-way delay of the link (tunnel + LAN).
    pub delay: Duration,
    to_lan: VecDeque<(Instant, Vec<u8>)>,
    to_client: VecDeque<(Instant, Vec<u8>)>,
    /// Every packet the LAN host sent to the client, when recording (robustness tests).
    pub recorded: Option<Vec<Vec<u8>>>,
    /// Wall time spent inside the client stack's packet path (receive, poll, transmit), in ms.
    pub client_ms: f64,
    /// Compute the TCP checksum of every client packet on its way to the LAN, as the relay's
    /// kernel does for a client that leaves it out.
    pub fill_in_tcp_checksums: bool,
    /// Flip one payload byte of the next TCP packet with data toward the client, leaving its
    /// checksum as it was (a packet broken on the LAN side).
    pub corrupt_next_to_client: bool,
    /// Hand every TCP packet to the client with its checksum field holding only the
    /// pseudo-header's sum, as a relay passes on what the kernel left it to compute.
    pub partial_tcp_checksums_to_client: bool,
    /// How late the client's timers fire (a page's timers in a busy or background tab);
    /// packets arriving still wake it at once.
    pub client_timers_late_by: Duration,
}

impl World {
    /// The default world: LAN DNS server configured, 0.5 ms one-way delay.
    pub(crate) fn new() -> Self {
        Self::with_config(|_| {})
    }

    /// A world whose client configuration is adjusted by `adjust` first.
    pub(crate) fn with_config(adjust: impl FnOnce(&mut NetConfig)) -> Self {
        let now = Instant::from_millis(1_000);
        let mut config = NetConfig::new(CLIENT, 24);
        config.mtu = MTU;
        config.dns_servers = vec![LAN_HOST];
        adjust(&mut config);
        let client = NetStack::new(config, now, 42).expect("valid test configuration");
        Self {
            now,
            client,
            lan: LanHost::new(now),
            delay: Duration::from_micros(500),
            to_lan: VecDeque::new(),
            to_client: VecDeque::new(),
            recorded: None,
            client_ms: 0.0,
            fill_in_tcp_checksums: false,
            corrupt_next_to_client: false,
            partial_tcp_checksums_to_client: false,
            client_timers_late_by: Duration::ZERO,
        }
    }

    /// One exchange at the current time: deliver due packets, poll both sides, put what they
    /// send on the link.
    pub(crate) fn step(&mut self) {
        let now = self.now;
        let started = wall_ms();
        while self.to_client.front().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, packet)) = self.to_client.pop_front() {
                self.client.receive_packet(&packet);
            }
        }
        self.client.poll(now);
        let arrive = now + self.delay;
        let to_lan = &mut self.to_lan;
        self.client.drain_transmit(|packet| to_lan.push_back((arrive, packet.to_vec())));
        self.client_ms += wall_ms() - started;
        while self.to_lan.front().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, mut packet)) = self.to_lan.pop_front() {
                if self.fill_in_tcp_checksums {
                    fill_in_tcp_checksum(&mut packet);
                }
                self.lan.device.rx.push_back(packet);
            }
        }
        self.lan.poll(now);
        while let Some(mut packet) = self.lan.device.tx.pop_front() {
            if self.corrupt_next_to_client && flip_tcp_payload_byte(&mut packet) {
                self.corrupt_next_to_client = false;
            }
            if self.partial_tcp_checksums_to_client {
                leave_tcp_checksum_partial(&mut packet);
            }
            if let Some(recorded) = self.recorded.as_mut() {
                recorded.push(packet.clone());
            }
            self.to_client.push_back((arrive, packet));
        }
    }

    /// Moves the clock to the next moment something can happen (a packet arrives, a timer
    /// fires), at least 10 µs and at most `max` ahead.
    fn advance(&mut self, max: Duration) {
        let now = self.now;
        let mut next = now + max;
        for at in [self.to_lan.front().map(|p| p.0), self.to_client.front().map(|p| p.0)].into_iter().flatten() {
            next = next.min(at);
        }
        if let Some(at) = self.client.poll_timeout() {
            next = next.min(if at > now { at + self.client_timers_late_by } else { at });
        }
        if let Some(delay) = self.lan.iface.poll_delay(smol(now), &self.lan.sockets) {
            next = next.min(now + Duration::from_micros(delay.total_micros()));
        }
        self.now = next.max(now + Duration::from_micros(10));
    }

    /// Steps until `done` holds (true) or `limit` of virtual time passed (false).
    pub(crate) fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&mut Self) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            self.step();
            if done(self) {
                return true;
            }
            if self.now >= end {
                return false;
            }
            self.advance(end.saturating_duration_since(self.now));
        }
    }

    /// Runs until a packet with TCP data is due at the client and hands it over instead of
    /// delivering it (the packets before it are delivered as usual); the clock stands at its
    /// arrival. `None` if none comes within `limit`.
    pub(crate) fn intercept_data_to_client(&mut self, limit: Duration) -> Option<Vec<u8>> {
        let end = self.now + limit;
        loop {
            while let Some((at, packet)) = self.to_client.pop_front() {
                self.now = self.now.max(at);
                if tcp_segment(&packet).is_some_and(|(_, _, payload)| !payload.is_empty()) {
                    return Some(packet);
                }
                self.client.receive_packet(&packet);
            }
            if self.now >= end {
                return None;
            }
            self.step();
            self.advance(end.saturating_duration_since(self.now));
        }
    }

    /// Lets `duration` of virtual time pass while both sides keep running.
    pub(crate) fn run_for(&mut self, duration: Duration) {
        self.run_until(duration, |_| false);
    }

    /// Queues the upload pattern on `stream` from byte `sent` on, as far as the send buffer
    /// takes it, up to `total`; returns the new count.
    pub(crate) fn queue_upload(&mut self, stream: TcpHandle, mut sent: u64, total: u64) -> u64 {
        let mut chunk = [0u8; 16 * 1024];
        while sent < total {
            let n = (total - sent).min(chunk.len() as u64) as usize;
            fill_pattern(UPLOAD_STREAM, sent, &mut chunk[..n]);
            let queued = self.client.tcp_send(stream, &chunk[..n]).expect("send while established");
            sent += queued as u64;
            if queued < n {
                break;
            }
        }
        sent
    }

    /// One round of an upload to the sink: queues what fits (see [`Self::queue_upload`]),
    /// closes after the last byte; true once the sink reported the finished upload.
    pub(crate) fn upload_to_the_sink(&mut self, stream: TcpHandle, sent: &mut u64, total: u64) -> bool {
        *sent = self.queue_upload(stream, *sent, total);
        if *sent == total && self.client.tcp_state(stream) == Ok(TcpState::Established) {
            self.client.tcp_close(stream).expect("close after the last byte");
        }
        !self.lan.sink_reports.is_empty()
    }
}

fn fill_in_tcp_checksum(packet: &mut [u8]) {
    use smoltcp::wire::{IpProtocol, Ipv4Packet, TcpPacket};
    let Ok(mut ip) = Ipv4Packet::new_checked(packet) else { return };
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    if ip.next_header() == IpProtocol::Tcp {
        if let Ok(mut tcp) = TcpPacket::new_checked(ip.payload_mut()) {
            tcp.fill_checksum(&src.into(), &dst.into());
        }
    }
}

/// Puts the pseudo-header's sum (folded, not inverted) in a TCP packet's checksum field: what
/// the kernel leaves for the network card to complete.
fn leave_tcp_checksum_partial(packet: &mut [u8]) {
    use smoltcp::wire::{IpProtocol, Ipv4Packet, TcpPacket};
    let Ok(mut ip) = Ipv4Packet::new_checked(packet) else { return };
    if ip.next_header() != IpProtocol::Tcp {
        return;
    }
    let words = [ip.src_addr().octets(), ip.dst_addr().octets()].concat();
    let length = ip.payload_mut().len() as u32;
    let mut sum: u32 = words.chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))).sum();
    sum += 6 + length;
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    if let Ok(mut tcp) = TcpPacket::new_checked(ip.payload_mut()) {
        tcp.set_checksum(sum as u16);
    }
}

/// Sequence number, acknowledgement number and payload of an IPv4 TCP packet.
pub(crate) fn tcp_segment(packet: &[u8]) -> Option<(u32, u32, Vec<u8>)> {
    use smoltcp::wire::{IpProtocol, Ipv4Packet, TcpPacket};
    let ip = Ipv4Packet::new_checked(packet).ok()?;
    if ip.next_header() != IpProtocol::Tcp {
        return None;
    }
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    let seq = tcp.seq_number().0 as u32;
    let ack = tcp.ack_number().0 as u32;
    Some((seq, ack, tcp.payload().to_vec()))
}

/// Flips a payload byte of a TCP packet that has one; false (unchanged) otherwise.
fn flip_tcp_payload_byte(packet: &mut [u8]) -> bool {
    use smoltcp::wire::{IpProtocol, Ipv4Packet, TcpPacket};
    let Ok(mut ip) = Ipv4Packet::new_checked(packet) else { return false };
    if ip.next_header() != IpProtocol::Tcp {
        return false;
    }
    let Ok(mut tcp) = TcpPacket::new_checked(ip.payload_mut()) else { return false };
    match tcp.payload_mut().first_mut() {
        Some(byte) => {
            *byte ^= 0x01;
            true
        }
        None => false,
    }
}

pub(crate) fn lan(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(LAN_HOST, port)
}

/// Milliseconds of wall time since an arbitrary origin (for reporting test speed).
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn wall_ms() -> f64 {
    use std::sync::OnceLock;
    static ORIGIN: OnceLock<std::time::Instant> = OnceLock::new();
    ORIGIN.get_or_init(std::time::Instant::now).elapsed().as_secs_f64() * 1000.0
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn wall_ms() -> f64 {
    performance_now()
}

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
}

/// Prints a timing line to the test output (stdout natively, the console in the browser).
pub(crate) fn report(line: &str) {
    #[cfg(not(target_arch = "wasm32"))]
    println!("{line}");
    #[cfg(target_arch = "wasm32")]
    wasm_bindgen_test::console_log!("{}", line);
}
