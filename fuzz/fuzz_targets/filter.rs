//! The relay's packet filter on arbitrary packets from an enrolled, restricted client. Beyond
//! "no panic", every packet it lets through must keep the promises: the client's own source
//! address, no IP options, a destination its ACL allows (or a whole echo request to the relay's
//! tunnel address), never the pool's network or broadcast address, never another client, never
//! a fragment (the ACL here has only port rules). Each input is checked as it is and with its
//! IPv4 header checksum made right, so the fuzzer gets past the checksum check.
#![no_main]

use hometun_relay::forwarding::acl::Acl;
use hometun_relay::forwarding::filter::ClientFilter;
use hometun_shared::ipv4::Network;
use libfuzzer_sys::fuzz_target;
use std::net::Ipv4Addr;

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 8, 0, 6);
const RELAY: Ipv4Addr = Ipv4Addr::new(10, 8, 0, 1);

/// `packet` with a correct IPv4 header checksum, when its header length fits in it.
fn with_checksum(packet: &[u8]) -> Option<Vec<u8>> {
    let header_len = usize::from(*packet.first()? & 0x0f) * 4;
    if header_len < 20 || packet.len() < header_len {
        return None;
    }
    let mut p = packet.to_vec();
    p[10..12].fill(0);
    let mut sum: u32 = p[..header_len].chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], c[1]]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    p[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    Some(p)
}

fuzz_target!(|packet: &[u8]| {
    check(packet);
    if let Some(fixed) = with_checksum(packet) {
        check(&fixed);
    }
});

fn check(packet: &[u8]) {
    let pool: Network = "10.8.0.0/24".parse().unwrap();
    let filter = ClientFilter {
        address: CLIENT,
        acl: Acl::parse_list("192.168.0.10:80,192.168.0.30:53/udp").unwrap(),
        pool,
        relay_address: RELAY,
        client_to_client: false,
    };
    let Ok(summary) = filter.check(packet) else { return };
    assert_eq!(summary.src, CLIENT, "a spoofed source passed");
    assert!(!summary.options, "IP options passed");
    assert!(!summary.fragment || summary.dst == RELAY, "a fragment passed a port rule: {summary:?}");
    if summary.dst == RELAY {
        assert!(summary.echo_request && !summary.fragment, "something other than a whole echo request to the relay");
        return;
    }
    assert!(!pool.contains(summary.dst), "a packet into the pool passed: {summary:?}");
    assert!(filter.acl.allows(&summary), "the ACL denies what passed: {summary:?}");
    assert!(
        summary.dst == Ipv4Addr::new(192, 168, 0, 10) || summary.dst == Ipv4Addr::new(192, 168, 0, 30),
        "a destination outside the allow list passed: {summary:?}"
    );
}
