//! ICMP echo and DNS lookups through the client netstack.

mod netstack_world;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use std::net::Ipv4Addr;

use hometun_shared::netstack::{DnsQuery, Error, Event, PingReply};
use hometun_shared::time::Duration;
use netstack_world::*;

fn replies(world: &mut World) -> Vec<PingReply> {
    std::iter::from_fn(|| world.client.poll_ping_reply()).collect()
}

/// Runs until the lookup finishes (or 30 s of virtual time pass) and returns its result.
fn lookup(world: &mut World, query: DnsQuery) -> Result<Vec<Ipv4Addr>, Error> {
    let mut result = None;
    world.run_until(Duration::from_secs(30), |w| {
        result = w.client.dns_result(query).transpose();
        result.is_some()
    });
    result.expect("the lookup finished within 30 s")
}

#[test]
fn pings_to_the_lan_host_come_back_with_their_sequence_and_a_plausible_rtt() {
    let mut world = World::new();
    world.delay = Duration::from_millis(5);
    for seq in 1..=4u16 {
        let now = world.now;
        world.client.ping(LAN_HOST, seq, 56, now).unwrap();
        world.run_for(Duration::from_millis(50));
    }
    let got = replies(&mut world);
    assert_eq!(got.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    for reply in got {
        assert_eq!(reply.from, LAN_HOST);
        assert_eq!(reply.payload_len, 56);
        assert!(
            (Duration::from_millis(10)..Duration::from_millis(11)).contains(&reply.rtt),
            "RTT is two 5 ms link delays: {:?}",
            reply.rtt
        );
    }
}

#[test]
fn a_ping_reply_is_announced_as_an_event() {
    let mut world = World::new();
    let now = world.now;
    world.client.ping(LAN_HOST, 9, 8, now).unwrap();
    world.run_for(Duration::from_millis(10));
    assert!(std::iter::from_fn(|| world.client.poll_event()).any(|e| e == Event::PingReply));
    assert_eq!(replies(&mut world).len(), 1);
}

#[test]
fn a_ping_to_an_absent_host_gets_no_reply() {
    let mut world = World::new();
    let now = world.now;
    world.client.ping(ABSENT_HOST, 1, 56, now).unwrap();
    world.run_for(Duration::from_secs(2));
    assert_eq!(replies(&mut world), vec![]);
}

#[test]
fn a_ping_larger_than_the_mtu_is_refused() {
    let mut world = World::new();
    let now = world.now;
    assert_eq!(world.client.ping(LAN_HOST, 1, MTU, now), Err(Error::PayloadTooLarge { len: MTU, max: MTU - 28 }));
    world.client.ping(LAN_HOST, 2, MTU - 28, now).expect("the largest payload fits");
    world.run_for(Duration::from_millis(10));
    assert_eq!(replies(&mut world).first().map(|r| r.payload_len), Some(MTU - 28));
}

#[test]
fn a_known_name_resolves_to_its_address() {
    let mut world = World::new();
    let query = world.client.resolve("nas.home.arpa").unwrap();
    assert_eq!(world.client.dns_result(query), Ok(None), "pending until the answer arrives");
    assert_eq!(lookup(&mut world, query), Ok(vec![Ipv4Addr::new(192, 168, 0, 20)]));
    assert!(std::iter::from_fn(|| world.client.poll_event()).any(|e| e == Event::DnsFinished(query)));
    assert_eq!(world.client.dns_result(query), Err(Error::UnknownHandle("DNS query")), "the result is taken once");
}

#[test]
fn names_are_case_insensitive_and_may_end_with_a_dot() {
    let mut world = World::new();
    let query = world.client.resolve("NAS.Home.Arpa.").unwrap();
    assert_eq!(lookup(&mut world, query), Ok(vec![Ipv4Addr::new(192, 168, 0, 20)]));
}

#[test]
fn every_address_of_a_name_is_returned() {
    let mut world = World::new();
    let query = world.client.resolve("printer.home.arpa").unwrap();
    assert_eq!(lookup(&mut world, query), Ok(vec![Ipv4Addr::new(192, 168, 0, 21), Ipv4Addr::new(192, 168, 0, 22)]));
}

#[test]
fn an_unknown_name_is_not_found() {
    let mut world = World::new();
    let query = world.client.resolve("nothing.home.arpa").unwrap();
    assert_eq!(lookup(&mut world, query), Err(Error::NameNotFound("nothing.home.arpa".into())));
}

#[test]
fn a_failing_server_is_reported_with_its_code() {
    let mut world = World::new();
    let query = world.client.resolve("broken.home.arpa").unwrap();
    assert_eq!(lookup(&mut world, query), Err(Error::DnsServerFailure { name: "broken.home.arpa".into(), rcode: 2 }));
}

#[test]
fn a_silent_server_times_out_after_its_retries() {
    let mut world = World::new();
    let started = world.now;
    let query = world.client.resolve("silent.home.arpa").unwrap();
    assert_eq!(lookup(&mut world, query), Err(Error::DnsTimeout("silent.home.arpa".into())));
    let took = world.now.saturating_duration_since(started);
    assert!((Duration::from_secs(6)..Duration::from_secs(7)).contains(&took), "three tries, 1 + 2 + 3 s: {took:?}");
}

#[test]
fn the_next_server_answers_when_the_first_is_unreachable() {
    let mut world = World::with_config(|c| c.dns_servers = vec![ABSENT_HOST, LAN_HOST]);
    let query = world.client.resolve("nas.home.arpa").unwrap();
    assert_eq!(lookup(&mut world, query), Ok(vec![Ipv4Addr::new(192, 168, 0, 20)]));
}

#[test]
fn without_dns_servers_a_lookup_fails_at_once() {
    let mut world = World::with_config(|c| c.dns_servers.clear());
    assert_eq!(world.client.resolve("nas.home.arpa"), Err(Error::NoDnsServers("nas.home.arpa".into())));
    let literal = world.client.resolve("192.168.0.7").expect("an address needs no server");
    assert_eq!(world.client.dns_result(literal), Ok(Some(vec![Ipv4Addr::new(192, 168, 0, 7)])));
}

#[test]
fn invalid_names_are_refused() {
    let mut world = World::new();
    for name in ["", ".", "a..b", "has space.home", "ünicode.home"] {
        assert_eq!(world.client.resolve(name), Err(Error::InvalidName(name.into())), "{name:?}");
    }
}

#[test]
fn a_cancelled_lookup_frees_its_handle() {
    let mut world = World::new();
    let query = world.client.resolve("nas.home.arpa").unwrap();
    world.client.dns_cancel(query).unwrap();
    assert_eq!(world.client.dns_result(query), Err(Error::UnknownHandle("DNS query")));
    world.run_for(Duration::from_millis(10));
}
