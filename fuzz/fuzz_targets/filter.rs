//! The relay's packet filter on arbitrary packets from an enrolled, restricted client. Beyond
//! "no panic", every packet it lets through must keep the promises: the client's own source
//! address, no IP options, a destination its ACL allows (or a whole echo request to the relay's
//! tunnel address), never the pool's network or broadcast address, never another client.
#![no_main]

use hometun_relay::forwarding::acl::Acl;
use hometun_relay::forwarding::filter::ClientFilter;
use hometun_shared::ipv4::Network;
use libfuzzer_sys::fuzz_target;
use std::net::Ipv4Addr;

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 8, 0, 6);
const RELAY: Ipv4Addr = Ipv4Addr::new(10, 8, 0, 1);

fuzz_target!(|packet: &[u8]| {
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
});
