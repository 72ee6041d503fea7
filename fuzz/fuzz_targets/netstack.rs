//! The client netstack (smoltcp under it, and the DNS reader) on arbitrary packets from the
//! tunnel while a lookup waits and a TCP connection is open. The input is a list of packets,
//! each a 2-byte big-endian length and its bytes. No panic, no unbounded growth.
#![no_main]

use hometun_shared::netstack::{NetConfig, NetStack};
use hometun_shared::time::{Duration, Instant};
use libfuzzer_sys::fuzz_target;
use std::net::Ipv4Addr;

fuzz_target!(|data: &[u8]| {
    let mut config = NetConfig::new(Ipv4Addr::new(10, 8, 0, 6), 24);
    config.dns_servers = vec![Ipv4Addr::new(192, 168, 0, 1)];
    let mut now = Instant::ZERO;
    let Ok(mut net) = NetStack::new(config, now, 1) else { return };
    let _ = net.resolve("nas.home.arpa");
    let _ = net.tcp_connect(std::net::SocketAddrV4::new(Ipv4Addr::new(192, 168, 0, 10), 80));
    net.poll(now);
    while net.poll_transmit().is_some() {}
    let mut rest = data;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        net.receive_packet(&rest[2..2 + len]);
        rest = &rest[2 + len..];
        now = now + Duration::from_millis(10);
        net.poll(now);
        while net.poll_transmit().is_some() {}
        while net.poll_event().is_some() {}
    }
});
