//! Property tests: every codec round-trips, and every decoder survives arbitrary bytes.
#![cfg(not(target_arch = "wasm32"))]

mod sim;

use hometun_shared::control::{AllowProtocol, AllowRule, ClientConfig, ControlMessage};
use hometun_shared::handshake::Responder;
use hometun_shared::invite::{Invite, InviteId, InviteSecret};
use hometun_shared::ipv4::{InterfaceAddress, Network};
use hometun_shared::keys::PublicKey;
use hometun_shared::time::{Duration, Instant};
use hometun_shared::wire::frame::{self, Frame, FrameKind, Frames};
use proptest::prelude::*;
use std::net::Ipv4Addr;

fn address() -> impl Strategy<Value = InterfaceAddress> {
    (any::<u32>(), 0u8..=32).prop_map(|(a, len)| InterfaceAddress::new(Ipv4Addr::from(a), len).unwrap())
}

fn net() -> impl Strategy<Value = Network> {
    (any::<u32>(), 0u8..=32).prop_map(|(a, len)| Network::new(Ipv4Addr::from(a), len).unwrap())
}

fn config() -> impl Strategy<Value = ClientConfig> {
    (
        address(),
        any::<u32>(),
        prop::collection::vec(net(), 0..8),
        prop::collection::vec(any::<u32>(), 0..4),
        (576u16.., any::<u16>()),
        1u16..,
        prop::collection::vec(allow_rule(), 0..4),
    )
        .prop_map(|(address, relay, routes, dns, (mtu, extra), keepalive, allow)| ClientConfig {
            address,
            relay_address: Ipv4Addr::from(relay),
            routes,
            dns: dns.into_iter().map(Ipv4Addr::from).collect(),
            mtu,
            max_packet: mtu.saturating_add(extra),
            keepalive: Duration::from_secs(u64::from(keepalive)),
            allow,
            features: Default::default(),
        })
}

fn allow_rule() -> impl Strategy<Value = AllowRule> {
    (net(), prop::option::of((1u16.., any::<u16>())), prop::option::of(any::<bool>())).prop_map(
        |(network, ports, tcp)| {
            let ports = ports.map(|(first, extra)| (first, first.saturating_add(extra)));
            let protocol = ports.and(tcp).map(|tcp| if tcp { AllowProtocol::Tcp } else { AllowProtocol::Udp });
            AllowRule { network, ports, protocol }
        },
    )
}

proptest! {
    #[test]
    fn frames_round_trip(bodies in prop::collection::vec((1u8..=4, prop::collection::vec(any::<u8>(), 0..2000)), 0..20)) {
        let mut out = Vec::new();
        for (kind, body) in &bodies {
            let kind = [FrameKind::Packet, FrameKind::Control, FrameKind::Keepalive, FrameKind::Close][usize::from(*kind - 1)];
            frame::encode(&mut out, kind, if kind == FrameKind::Keepalive { &[] } else { body });
        }
        let decoded: Vec<Frame> = Frames::new(&out).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(decoded.len(), bodies.len());
    }

    #[test]
    fn configs_round_trip(config in config()) {
        let message = ControlMessage::Config(config);
        prop_assert_eq!(ControlMessage::decode(&message.encode()), Ok(message));
    }

    #[test]
    fn invites_round_trip(key in any::<[u8; 32]>(), id in any::<[u8; 16]>(), secret in any::<[u8; 32]>(), url in "https://[a-z]{1,20}\\.example(:[0-9]{1,5})?") {
        let invite = Invite { relay_key: PublicKey::from_bytes(key), id: InviteId(id), secret: InviteSecret(secret), url };
        prop_assert_eq!(Invite::parse(&invite.to_link()), Ok(invite));
    }

    #[test]
    fn decoders_survive_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = Frames::new(&bytes).count();
        let _ = ControlMessage::decode(&bytes);
        let _ = Invite::parse(&String::from_utf8_lossy(&bytes));
        let relay = sim::RelaySim::new(1);
        let _ = Responder::read_hello(&relay.secret, &bytes, &mut sim::rng(2));
    }

    #[test]
    fn sessions_survive_arbitrary_messages(mut bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let mut relay = sim::RelaySim::new(1);
        let mut device = sim::Device::new(2);
        relay.devices.insert(device.secret.public_key());
        let (_client, mut session) = sim::connect(&mut relay, &mut device, None, Instant::ZERO).unwrap();
        prop_assert!(session.handle_message(Instant::ZERO, &mut bytes).is_err());
        prop_assert!(session.poll_transmit(Instant::ZERO).is_none());
    }
}

/// Writes the fuzz target's seed corpus (valid messages of every kind). Run after a wire
/// change: `cargo test -p hometun-shared --test codec_props -- --ignored`.
#[test]
#[ignore]
fn write_fuzz_seed_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/decode");
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, selector: u8, body: &[u8]| {
        let mut bytes = vec![selector];
        bytes.extend_from_slice(body);
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    let config = ControlMessage::Config(sim::home_config()).encode();
    let mut frames = Vec::new();
    frame::encode(&mut frames, FrameKind::Packet, &sim::packet(1, 60));
    frame::encode(&mut frames, FrameKind::Control, &config);
    frame::encode(&mut frames, FrameKind::Keepalive, &[]);
    frame::encode(&mut frames, FrameKind::Close, &2u16.to_be_bytes());
    write("frames", 0, &frames);
    write("control", 1, &config);
    let mut relay = sim::RelaySim::new(1);
    write("invite", 2, relay.invite(Instant::ZERO).to_link().as_bytes());
    let relay_key = hometun_shared::keys::SecretKey::from_bytes([1; 32]).public_key();
    let mut device = sim::Device::new(3);
    let (_, hello) = device.hello(&relay_key, None, Instant::ZERO);
    write("hello", 3, &hello);
    let mut record = vec![4u8, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    record.extend_from_slice(&[0; 40]);
    write("record", 4, &record);
}
