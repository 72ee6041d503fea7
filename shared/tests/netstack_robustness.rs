//! Hostile input: garbage, truncated and altered packets fed to the client netstack must never
//! panic it, and it keeps working afterwards.

mod netstack_world;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use hometun_shared::netstack::{Error, TcpState};
use hometun_shared::time::Duration;
use netstack_world::*;
use smoltcp::wire::{Icmpv4Packet, IpAddress, IpProtocol, Ipv4Packet, TcpPacket, UdpPacket};

/// A small deterministic generator (xorshift64*), so failures replay.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Recomputes the IPv4 and transport checksums, so an altered packet gets past the checksum
/// checks and reaches the deeper parsers.
fn refresh_checksums(packet: &mut [u8]) {
    let Ok(mut ip) = Ipv4Packet::new_checked(&mut packet[..]) else { return };
    ip.fill_checksum();
    let (src, dst, protocol) = (IpAddress::Ipv4(ip.src_addr()), IpAddress::Ipv4(ip.dst_addr()), ip.next_header());
    let payload = ip.payload_mut();
    match protocol {
        IpProtocol::Tcp => {
            if let Ok(mut tcp) = TcpPacket::new_checked(payload) {
                tcp.fill_checksum(&src, &dst);
            }
        }
        IpProtocol::Udp => {
            if let Ok(mut udp) = UdpPacket::new_checked(payload) {
                udp.fill_checksum(&src, &dst);
            }
        }
        IpProtocol::Icmp => {
            if let Ok(mut icmp) = Icmpv4Packet::new_checked(payload) {
                icmp.fill_checksum();
            }
        }
        _ => {}
    }
}

/// Packets the LAN host really sends: TCP (handshake, data, FIN), UDP (echo, DNS answers), ICMP.
fn real_packets() -> Vec<Vec<u8>> {
    let mut world = World::new();
    world.recorded = Some(Vec::new());
    let stream = world.client.tcp_connect(lan(SOURCE_PORT)).unwrap();
    world.run_until(Duration::from_secs(1), |w| w.client.tcp_state(stream) == Ok(TcpState::Established));
    world.client.tcp_send(stream, &3000u64.to_be_bytes()).unwrap();
    let udp = world.client.udp_bind(0).unwrap();
    world.client.udp_send_to(udp, b"hello", lan(ECHO_PORT)).unwrap();
    for name in ["nas.home.arpa", "printer.home.arpa", "nothing.home.arpa", "broken.home.arpa"] {
        world.client.resolve(name).unwrap();
    }
    let now = world.now;
    world.client.ping(LAN_HOST, 1, 32, now).unwrap();
    world.run_for(Duration::from_millis(50));
    world.client.tcp_connect(lan(CLOSED_PORT)).unwrap();
    world.run_for(Duration::from_millis(50));
    world.recorded.take().expect("recording")
}

/// The client still connects, exchanges bytes and answers pings after the abuse.
fn assert_still_works(world: &mut World) {
    let stream = world.client.tcp_connect(lan(ECHO_PORT)).expect("connect after the abuse");
    world.client.tcp_send(stream, b"").unwrap();
    let mut buf = [0u8; 16];
    let mut sent = false;
    let mut echoed = Vec::new();
    let ok = world.run_until(Duration::from_secs(5), |w| {
        if !sent && w.client.tcp_state(stream) == Ok(TcpState::Established) {
            sent = w.client.tcp_send(stream, b"still here") == Ok(10);
        }
        match w.client.tcp_recv(stream, &mut buf) {
            Ok(n) => echoed.extend_from_slice(&buf[..n]),
            Err(e) => panic!("stream after abuse: {e}"),
        }
        echoed == b"still here"
    });
    assert!(ok, "an echo round trip still works after the abuse");
    let now = world.now;
    world.client.ping(LAN_HOST, 77, 8, now).unwrap();
    world.run_for(Duration::from_millis(10));
    assert!(std::iter::from_fn(|| world.client.poll_ping_reply()).any(|r| r.seq == 77));
}

#[test]
fn random_garbage_is_dropped_without_panic() {
    let mut world = World::new();
    let mut noise = Noise(0x1234_5678);
    for round in 0..5_000 {
        let len = noise.below(1600);
        let mut packet: Vec<u8> = (0..len).map(|_| noise.next() as u8).collect();
        if round % 2 == 0 && !packet.is_empty() {
            packet[0] = 0x45; // looks like IPv4, so it reaches smoltcp's parser
        }
        world.client.receive_packet(&packet);
        if round % 64 == 0 {
            world.step();
        }
    }
    world.step();
    let stats = world.client.stats();
    assert!(stats.dropped_malformed > 0, "non-IPv4 bytes are counted: {stats:?}");
    assert_still_works(&mut world);
}

#[test]
fn truncated_and_altered_real_packets_are_handled_without_panic() {
    let packets = real_packets();
    assert!(packets.len() > 10, "recorded a varied sample: {} packets", packets.len());
    let mut world = World::new();
    // An open connection and lookup give the altered packets live state to hit.
    let victim = world.client.tcp_connect(lan(ECHO_PORT)).unwrap();
    world.run_until(Duration::from_secs(1), |w| w.client.tcp_state(victim) == Ok(TcpState::Established));
    world.client.resolve("nas.home.arpa").unwrap();

    let mut noise = Noise(0xfeed);
    let mut fed = 0usize;
    for packet in &packets {
        for len in 0..packet.len() {
            world.client.receive_packet(&packet[..len]);
        }
        for _ in 0..64 {
            let mut altered = packet.clone();
            let at = noise.below(altered.len());
            altered[at] ^= 1 << noise.below(8);
            if noise.below(2) == 0 {
                refresh_checksums(&mut altered);
            }
            world.client.receive_packet(&altered);
        }
        fed += packet.len() + 64;
        world.step();
    }
    assert!(fed > 1_000);
    match world.client.tcp_state(victim) {
        Ok(_) => {}
        Err(e) => panic!("the handle survives: {e}"),
    }
    assert_still_works(&mut world);
}

#[test]
fn a_flood_beyond_the_receive_queue_is_dropped_and_counted() {
    let mut world = World::with_config(|c| c.queue_packets = 16);
    let packet = [0x45u8; 40];
    for _ in 0..100 {
        world.client.receive_packet(&packet);
    }
    assert_eq!(world.client.stats().dropped_queue_full, 84);
    world.step();
    assert_still_works(&mut world);
}

/// An ICMP echo request from the LAN host to the client, `payload` bytes long.
fn echo_request(seq: u16, payload: usize) -> Vec<u8> {
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{Icmpv4Repr, Ipv4Repr};
    let data = vec![0xA5; payload];
    let icmp = Icmpv4Repr::EchoRequest { ident: 7, seq_no: seq, data: &data };
    let ip = Ipv4Repr {
        src_addr: LAN_HOST,
        dst_addr: CLIENT,
        next_header: IpProtocol::Icmp,
        payload_len: icmp.buffer_len(),
        hop_limit: 64,
    };
    let mut packet = vec![0; ip.buffer_len() + icmp.buffer_len()];
    let caps = ChecksumCapabilities::default();
    let mut ip_packet = Ipv4Packet::new_unchecked(&mut packet[..]);
    ip.emit(&mut ip_packet, &caps);
    icmp.emit(&mut Icmpv4Packet::new_unchecked(ip_packet.payload_mut()), &caps);
    packet
}

/// A peer sends pings while the driver cannot send anything (its socket backed up): the
/// answers pile up to one receive queue past the transmit limit and no further, and once the
/// driver drains, the stack answers again.
#[test]
fn answers_made_while_nothing_can_be_sent_stop_piling_up() {
    let mut world = World::with_config(|c| c.queue_packets = 16);
    for round in 0..50u16 {
        for i in 0..16 {
            world.client.receive_packet(&echo_request(round * 16 + i, 8));
        }
        world.client.poll_ingress(world.now);
    }
    let mut waiting = 0;
    while world.client.poll_transmit().is_some() {
        waiting += 1;
    }
    assert_eq!(waiting, 32, "answers waiting after 800 pings with nothing sent");
    assert!(world.client.stats().dropped_queue_full > 700, "{:?}", world.client.stats());

    // The pings still waiting are answered once there is room, and a new one after them too.
    world.client.poll(world.now);
    let waited = std::iter::from_fn(|| world.client.poll_transmit()).count();
    assert_eq!(waited, 16, "the pings that waited in the receive queue");
    world.client.receive_packet(&echo_request(9999, 8));
    world.client.poll(world.now);
    let answers: Vec<Vec<u8>> = std::iter::from_fn(|| world.client.poll_transmit()).collect();
    assert_eq!(answers.len(), 1, "one answer to the new ping");
    let reply = Icmpv4Packet::new_checked(&answers[0][20..]).expect("an ICMP answer");
    assert_eq!(reply.echo_seq_no(), 9999, "the answer is to the new ping");
    assert_still_works(&mut world);
}

/// A handle kept from a stack that was replaced (a new address, a disconnect and connect) names
/// nothing in the new stack, rather than whichever new connection took the same number.
#[test]
fn a_handle_from_a_replaced_stack_names_nothing_in_the_new_one() {
    let mut old = World::new();
    let kept = old.client.tcp_connect(lan(ECHO_PORT)).expect("connect");
    let kept_udp = old.client.udp_bind(0).expect("bind");
    let kept_query = old.client.resolve("nas.home.arpa").expect("resolve");

    let mut new = World::new();
    let stream = new.client.tcp_connect(lan(ECHO_PORT)).expect("connect in the new stack");
    new.client.udp_bind(0).expect("bind in the new stack");
    new.client.resolve("nas.home.arpa").expect("resolve in the new stack");
    assert!(new.run_until(Duration::from_secs(1), |w| w.client.tcp_state(stream) == Ok(TcpState::Established)));

    assert!(matches!(new.client.tcp_send(kept, b"GET / with the old cookies"), Err(Error::UnknownHandle(_))));
    assert!(matches!(new.client.tcp_abort(kept), Err(Error::UnknownHandle(_))));
    assert!(matches!(new.client.udp_local_port(kept_udp), Err(Error::UnknownHandle(_))));
    assert!(matches!(new.client.dns_cancel(kept_query), Err(Error::UnknownHandle(_))));
    assert_eq!(new.client.tcp_state(stream), Ok(TcpState::Established), "the new connection was touched");
}

#[test]
fn configurations_that_cannot_work_are_refused() {
    use hometun_shared::netstack::{NetConfig, NetStack};
    use hometun_shared::time::Instant;
    use std::net::Ipv4Addr;
    type Case = (&'static str, fn(&mut NetConfig));
    let cases: [Case; 6] = [
        ("unspecified address", |c| c.address = Ipv4Addr::UNSPECIFIED),
        ("prefix over 32", |c| c.prefix_len = 33),
        ("tiny MTU", |c| c.mtu = 100),
        ("huge TCP receive buffer", |c| c.tcp_receive_buffer = 2 << 30),
        ("huge TCP send buffer", |c| c.tcp_send_buffer = 2 << 30),
        ("multicast DNS server", |c| c.dns_servers = vec![Ipv4Addr::new(224, 0, 0, 251)]),
    ];
    for (what, adjust) in cases {
        let mut config = NetConfig::new(CLIENT, 24);
        adjust(&mut config);
        assert!(matches!(NetStack::new(config, Instant::ZERO, 1), Err(Error::InvalidConfig(_))), "{what}");
    }
}
