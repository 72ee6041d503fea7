//! The browser against responses as LAN hosts send them, friendly and not, on a virtual clock.

use super::browser::*;
use super::message::tests::{name, response};
use super::message::{Answer, MOST_QUESTIONS};
use super::SERVICE_TYPES;
use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RecordType};
use hometun_shared::time::Instant;
use std::net::{Ipv4Addr, SocketAddrV4};

const NAS: &str = "My NAS._http._tcp.local.";
const NAS_HOST: &str = "nas.local.";
/// A LAN host's responder.
const FROM: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 168, 0, 10), 5353);

fn t(secs: u64) -> Instant {
    Instant::from_millis(secs * 1000)
}

fn browser() -> Browser {
    Browser::new(t(0), "192.168.0.0/24".parse().unwrap(), SERVICE_TYPES)
}

fn pointer(kind: &str, instance: &str, ttl: u32) -> Answer {
    Answer::Pointer { kind: name(kind), instance: name(instance), ttl }
}

fn service(instance: &str, target: &str, port: u16, ttl: u32) -> Answer {
    Answer::Service { instance: name(instance), target: name(target), port, ttl, flush: true }
}

fn address(host: &str, last: u8, ttl: u32, flush: bool) -> Answer {
    Answer::Address { host: name(host), address: Ipv4Addr::new(192, 168, 0, last), ttl, flush }
}

/// What a responder sends for the NAS's web UI (as python-zeroconf or Avahi do).
fn nas_announcement(ttl: u32) -> Vec<u8> {
    response(&[
        pointer("_http._tcp.local.", NAS, ttl),
        service(NAS, NAS_HOST, 8080, ttl),
        address(NAS_HOST, 10, ttl, true),
    ])
}

fn events(browser: &mut Browser) -> Vec<Event> {
    std::iter::from_fn(|| browser.poll_event()).collect()
}

fn resolved(instance: &str, host: &str, addresses: &[u8], port: u16) -> Event {
    Event::Resolved(crate::discovery::inventory::Announcement {
        instance: instance.into(),
        kind: "_http._tcp".into(),
        host_name: host.into(),
        addresses: addresses.iter().map(|&last| Ipv4Addr::new(192, 168, 0, last)).collect(),
        port,
        ttl: ANNOUNCEMENT_TTL,
    })
}

fn questions(query: &[u8]) -> Vec<(Name, RecordType)> {
    let message = Message::from_vec(query).unwrap();
    message.queries().iter().map(|q| (q.name().clone(), q.query_type())).collect()
}

#[test]
fn an_announced_service_is_resolved_and_its_goodbye_removes_it() {
    let mut browser = browser();
    browser.handle_response(t(1), FROM, &nas_announcement(120));
    assert_eq!(events(&mut browser), [resolved(NAS, NAS_HOST, &[10], 8080)]);

    // The same announcement again changes nothing the inventory must hear.
    browser.handle_response(t(2), FROM, &nas_announcement(120));
    assert_eq!(events(&mut browser), []);

    browser.handle_response(t(3), FROM, &response(&[pointer("_http._tcp.local.", NAS, 0)]));
    assert_eq!(events(&mut browser), [Event::Removed(NAS.into())]);
    assert_eq!(browser.held().0, 0);
}

#[test]
fn a_goodbye_is_checked_by_asking_again_within_seconds() {
    // An hour in, browses are an hour apart. A goodbye for the NAS's web UI, sent by anyone:
    // the browse goes out again a second later, and the NAS's answer brings it back.
    let mut browser = browser();
    browser.handle_response(t(1), FROM, &nas_announcement(4500));
    for second in 0..4000 {
        let _ = browser.poll_transmit(t(second));
    }
    let _ = events(&mut browser);
    browser.handle_response(t(4000), FROM, &response(&[pointer("_http._tcp.local.", NAS, 0)]));
    assert_eq!(events(&mut browser), [Event::Removed(NAS.into())]);
    let browsed = (4000..4010).find(|&second| {
        browser
            .poll_transmit(t(second))
            .is_some_and(|q| questions(&q).contains(&(name("_http._tcp.local."), RecordType::PTR)))
    });
    assert_eq!(browsed, Some(4001), "asked again a second after the goodbye");
    browser.handle_response(t(4001), FROM, &nas_announcement(4500));
    assert_eq!(events(&mut browser), [resolved(NAS, NAS_HOST, &[10], 8080)]);
}

#[test]
fn the_browser_asks_for_each_type_then_for_what_an_instance_lacks() {
    let mut browser = browser();
    let browse = questions(&browser.poll_transmit(t(0)).unwrap());
    assert_eq!(browse.len(), SERVICE_TYPES.len());
    assert!(browse.iter().all(|(_, kind)| *kind == RecordType::PTR));
    assert!(browse.contains(&(name("_home-assistant._tcp.local."), RecordType::PTR)));
    assert_eq!(browser.poll_transmit(Instant::from_millis(50)), None, "at most one query per 100 ms");

    // Only the pointer came: the service is asked, then the address of its host.
    browser.handle_response(t(0), FROM, &response(&[pointer("_http._tcp.local.", NAS, 4500)]));
    let asked = questions(&browser.poll_transmit(t(1)).unwrap());
    assert_eq!(asked.len(), SERVICE_TYPES.len() + 1, "the browse again after 1 s, and the service");
    assert_eq!(asked.last(), Some(&(name(NAS), RecordType::SRV)));
    browser.handle_response(t(1), FROM, &response(&[service(NAS, NAS_HOST, 80, 120)]));
    assert!(questions(&browser.poll_transmit(t(2)).unwrap()).contains(&(name(NAS_HOST), RecordType::A)));
    assert_eq!(events(&mut browser), []);
    browser.handle_response(t(2), FROM, &response(&[address(NAS_HOST, 10, 120, true)]));
    assert_eq!(events(&mut browser), [resolved(NAS, NAS_HOST, &[10], 80)]);

    // The browse is asked again after 1, 2, 4, … s, at most every hour.
    let mut asked = Vec::new();
    for second in 3..8000 {
        if browser.poll_transmit(t(second)).is_some_and(|q| questions(&q).len() >= SERVICE_TYPES.len()) {
            asked.push(second);
        }
    }
    assert_eq!(asked[..4], [3, 7, 15, 31]);
    assert_eq!(asked.windows(2).map(|w| w[1] - w[0]).max(), Some(3600));
}

#[test]
fn records_are_asked_again_before_they_end_and_end_if_nobody_answers() {
    let mut browser = browser();
    browser.handle_response(t(0), FROM, &nas_announcement(100));
    events(&mut browser);
    let asked_at = |browser: &mut Browser, second: u64| {
        browser.poll_transmit(t(second)).map(|q| questions(&q)).unwrap_or_default()
    };
    let at_80 = asked_at(&mut browser, 80);
    assert!(at_80.contains(&(name(NAS), RecordType::SRV)), "{at_80:?}");
    assert!(at_80.contains(&(name(NAS_HOST), RecordType::A)), "{at_80:?}");
    assert!(asked_at(&mut browser, 85).iter().all(|(n, _)| *n != name(NAS)), "asked twice at 80 %");
    assert!(asked_at(&mut browser, 90).contains(&(name(NAS), RecordType::SRV)));

    browser.handle_timeout(t(99));
    assert_eq!(events(&mut browser), []);
    browser.handle_timeout(t(100));
    assert_eq!(events(&mut browser), [Event::Removed(NAS.into())]);
    browser.handle_timeout(t(101));
    assert_eq!(browser.held(), (0, 0));
}

#[test]
fn a_lifetime_is_at_most_75_minutes_whatever_the_sender_says() {
    let mut browser = browser();
    browser.handle_response(t(0), FROM, &nas_announcement(u32::MAX));
    events(&mut browser);
    browser.handle_timeout(t(4499));
    assert!(events(&mut browser).iter().all(|e| matches!(e, Event::Resolved(_))), "still there at 4,499 s");
    browser.handle_timeout(t(4500));
    assert_eq!(events(&mut browser), [Event::Removed(NAS.into())]);
}

#[test]
fn a_live_instance_is_reported_again_after_ten_minutes_so_the_inventory_keeps_it() {
    let mut browser = browser();
    browser.handle_response(t(0), FROM, &nas_announcement(4500));
    events(&mut browser);
    browser.handle_response(t(300), FROM, &nas_announcement(4500));
    assert_eq!(events(&mut browser), []);
    browser.handle_response(t(600), FROM, &nas_announcement(4500));
    assert_eq!(events(&mut browser), [resolved(NAS, NAS_HOST, &[10], 8080)]);
}

#[test]
fn a_host_that_moves_is_reported_gone_then_found_at_its_new_address() {
    let mut browser = browser();
    browser.handle_response(t(0), FROM, &nas_announcement(120));
    events(&mut browser);
    // A cache-flush set replaces the addresses received more than a second before.
    browser.handle_response(t(5), FROM, &response(&[address(NAS_HOST, 11, 120, true)]));
    assert_eq!(events(&mut browser), [Event::Removed(NAS.into()), resolved(NAS, NAS_HOST, &[11], 8080)]);
    // Without the bit, an address is added; with TTL 0 it goes.
    browser.handle_response(t(6), FROM, &response(&[address(NAS_HOST, 12, 120, false)]));
    assert_eq!(events(&mut browser)[1], resolved(NAS, NAS_HOST, &[11, 12], 8080));
    browser.handle_response(t(7), FROM, &response(&[address(NAS_HOST, 11, 0, false)]));
    assert_eq!(events(&mut browser)[1], resolved(NAS, NAS_HOST, &[12], 8080));
    browser.handle_response(t(8), FROM, &response(&[address(NAS_HOST, 12, 0, false)]));
    assert_eq!(events(&mut browser), [Event::Removed(NAS.into())]);
}

#[test]
fn a_host_with_many_addresses_is_passed_on_with_one_too_many_for_the_inventory_to_refuse() {
    let mut browser = browser();
    let mut answers = vec![pointer("_http._tcp.local.", NAS, 120), service(NAS, NAS_HOST, 80, 120)];
    answers.extend((1..=50).map(|last| address(NAS_HOST, last, 120, false)));
    browser.handle_response(t(0), FROM, &response(&answers));
    let Event::Resolved(announcement) = &events(&mut browser)[0] else { panic!("not resolved") };
    assert_eq!(announcement.addresses.len(), MOST_ADDRESSES);
}

#[test]
fn only_mdns_responses_from_the_lan_are_read() {
    let mut browser = browser();
    for (from, packet) in [
        (SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 5), 5353), nas_announcement(120)), // not the LAN
        (SocketAddrV4::new(Ipv4Addr::new(192, 168, 0, 10), 40000), nas_announcement(120)), // not mDNS's port
        (FROM, b"not dns".to_vec()),
        (FROM, super::message::query(&[(name("_http._tcp.local."), RecordType::PTR)])),
    ] {
        browser.handle_response(t(0), from, &packet);
    }
    assert_eq!(browser.ignored(), 4);
    assert_eq!(browser.held(), (0, 0));
    assert_eq!(events(&mut browser), []);
}

#[test]
fn records_nobody_asked_for_are_not_kept() {
    let mut browser = browser();
    #[rustfmt::skip]
    let unasked = [
        // Addresses of names no service points to: a flood of these once grew mDNS caches.
        address("flood1.local.", 1, 120, false),
        address(NAS_HOST, 10, 120, true),
        // A type not browsed.
        pointer("_spotify-connect._tcp.local.", "Kitchen._spotify-connect._tcp.local.", 120),
        // An instance that is not under its type, or is the type itself.
        pointer("_http._tcp.local.", "nas.home.arpa.", 120),
        pointer("_http._tcp.local.", "a.b._ssh._tcp.local.", 120),
        pointer("_http._tcp.local.", "_http._tcp.local.", 120),
        // A service of an instance nobody announced.
        service("Other._http._tcp.local.", NAS_HOST, 80, 120),
    ];
    for answer in unasked {
        browser.handle_response(t(0), FROM, &response(&[answer]));
    }
    assert_eq!(browser.held(), (0, 0));
    assert_eq!(events(&mut browser), []);
}

#[test]
fn a_service_on_a_host_outside_local_is_never_resolved() {
    let mut browser = browser();
    browser.handle_response(
        t(0),
        FROM,
        &response(&[
            pointer("_http._tcp.local.", NAS, 120),
            service(NAS, "nas.home.arpa.", 80, 120),
            address("nas.home.arpa.", 10, 120, true),
            service("Zero._http._tcp.local.", NAS_HOST, 0, 120),
        ]),
    );
    assert_eq!(events(&mut browser), []);
    browser.handle_timeout(t(0) + RESOLVE_WITHIN);
    assert_eq!(browser.held(), (0, 0), "forgotten when not resolved in time");
}

/// A LAN address other than the NAS's (`192.168.0.LAST`, the mDNS port).
fn from(last: u8) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(192, 168, 0, last), 5353)
}

/// 3,000 instances over every browsed type (250 of each), each on a host of its own, with 8
/// addresses each, from `senders` LAN addresses in turn.
fn flood(browser: &mut Browser, senders: &[SocketAddrV4]) {
    for i in 0..3000u32 {
        let kind = format!("{}.local.", SERVICE_TYPES[i as usize % SERVICE_TYPES.len()]);
        let instance = format!("flood{i}.{kind}");
        let host = format!("flood{i}.local.");
        let mut answers = vec![pointer(&kind, &instance, u32::MAX), service(&instance, &host, 80, u32::MAX)];
        answers.extend((1..=8).map(|last| address(&host, last, u32::MAX, false)));
        browser.handle_response(t(0), senders[i as usize % senders.len()], &response(&answers));
        let (instances, hosts) = browser.held();
        assert!(instances <= MOST_INSTANCES && hosts <= MOST_HOSTS, "{instances} instances, {hosts} hosts");
    }
}

#[test]
fn one_host_announcing_without_end_holds_its_share_and_the_nas_is_found_at_once() {
    let mut browser = browser();
    flood(&mut browser, &[from(66)]);
    assert_eq!(browser.held().0, MOST_PER_SENDER);
    assert_eq!(events(&mut browser).len(), MOST_PER_SENDER);
    browser.handle_response(t(1), FROM, &nas_announcement(120));
    assert_eq!(events(&mut browser), [resolved(NAS, NAS_HOST, &[10], 8080)]);
    // Its goodbyes free its share again.
    for i in 0..MOST_PER_SENDER {
        let kind = format!("{}.local.", SERVICE_TYPES[i % SERVICE_TYPES.len()]);
        browser.handle_response(t(2), from(66), &response(&[pointer(&kind, &format!("flood{i}.{kind}"), 0)]));
    }
    assert_eq!(browser.held().0, 1);
    flood(&mut browser, &[from(66)]);
    assert_eq!(browser.held().0, 1 + MOST_PER_SENDER);
}

#[test]
fn a_flood_of_instances_holds_at_most_the_limits_and_leaves_room_once_it_stops() {
    let mut browser = browser();
    // From 200 addresses, as a host that makes up its source addresses can.
    let senders: Vec<SocketAddrV4> = (20..220).map(from).collect();
    flood(&mut browser, &senders);
    assert_eq!(browser.held().0, MOST_INSTANCES);
    let found = events(&mut browser).len();
    assert!(found <= MOST_INSTANCES, "{found} reported");
    // Instances beyond the limit never came in: the NAS waits until the flood's records end.
    browser.handle_response(t(1), FROM, &nas_announcement(120));
    assert_eq!(events(&mut browser), []);
    browser.handle_timeout(t(0) + LONGEST_TTL);
    assert_eq!(browser.held(), (0, 0));
    events(&mut browser);
    browser.handle_response(t(4501), FROM, &nas_announcement(120));
    assert_eq!(events(&mut browser), [resolved(NAS, NAS_HOST, &[10], 8080)]);
}

#[test]
fn a_flood_of_names_nobody_serves_is_forgotten_within_half_a_minute() {
    let mut browser = browser();
    for i in 0..1000 {
        browser.handle_response(
            t(0),
            from(20 + (i % 100) as u8),
            &response(&[pointer("_ssh._tcp.local.", &format!("x{i}._ssh._tcp.local."), 4500)]),
        );
    }
    assert_eq!(browser.held().0, MOST_PER_KIND);
    // Unresolved names are asked for, a full query at a time, never more than its limit.
    let query = browser.poll_transmit(t(1)).unwrap();
    assert!(questions(&query).len() <= MOST_QUESTIONS);
    browser.handle_timeout(t(0) + RESOLVE_WITHIN);
    assert_eq!(browser.held(), (0, 0));
    browser.handle_response(t(31), FROM, &nas_announcement(120));
    assert_eq!(events(&mut browser), [resolved(NAS, NAS_HOST, &[10], 8080)]);
}

#[test]
fn an_instance_name_keeps_its_spaces_dots_and_letters() {
    let mut browser = browser();
    let instance = "Büro Drucker v2.0._http._tcp.local.";
    browser.handle_response(
        t(0),
        FROM,
        &response(&[
            pointer("_HTTP._tcp.local.", instance, 120),
            service(instance, "printer.local.", 631, 120),
            address("PRINTER.local.", 20, 120, true),
        ]),
    );
    assert_eq!(events(&mut browser), [resolved(instance, "printer.local.", &[20], 631)]);
}

/// A browser holding as much as it may: 256 resolved instances, each on a host of its own.
fn full_browser() -> Browser {
    let mut browser = browser();
    for i in 0..MOST_INSTANCES {
        let kind = format!("{}.local.", SERVICE_TYPES[i % SERVICE_TYPES.len()]);
        let instance = format!("host{i}.{kind}");
        let host = format!("host{i}.local.");
        browser.handle_response(
            t(0),
            from(100 + (i / MOST_PER_SENDER) as u8),
            &response(&[
                pointer(&kind, &instance, 4500),
                service(&instance, &host, 80, 4500),
                address(&host, 1, 4500, true),
            ]),
        );
    }
    assert_eq!(browser.held(), (MOST_INSTANCES, MOST_HOSTS));
    events(&mut browser);
    browser
}

#[test]
fn a_full_browser_spends_little_on_each_packet_a_lan_host_sends() {
    // Before, every packet cost a pass comparing every host with every instance (and every
    // address record with every instance): a few milliseconds each, so a LAN host sending a few
    // hundred packets a second kept the browser from reading the real responses.
    let mut browser = full_browser();
    let flood: Vec<Answer> = (0..64).map(|i| address(&format!("flood{i}.local."), 1, 4500, false)).collect();
    let flood = response(&flood);
    let start = std::time::Instant::now();
    for i in 0..2000u64 {
        // As the driver does for every packet: take it in, end what expired, maybe ask.
        let now = Instant::from_millis(1000 + i);
        let packet: &[u8] = if i % 2 == 0 { b"garbage" } else { &flood };
        browser.handle_response(now, FROM, packet);
        browser.handle_timeout(now);
        let _ = browser.poll_transmit(now);
    }
    let spent = start.elapsed();
    assert!(spent < std::time::Duration::from_millis(1500), "2,000 packets took {spent:?}");
    assert_eq!(browser.held(), (MOST_INSTANCES, MOST_HOSTS));
    assert_eq!(events(&mut browser), []);
}

#[test]
fn a_host_that_drops_its_address_and_takes_a_new_one_is_asked_for_it_and_found_again() {
    let mut browser = browser();
    browser.handle_response(t(0), FROM, &nas_announcement(4500));
    events(&mut browser);
    // Its address goes (a goodbye, as Avahi sends when an interface loses it); the new one is
    // announced a few seconds later, on its own.
    browser.handle_response(t(100), FROM, &response(&[address(NAS_HOST, 10, 0, false)]));
    browser.handle_timeout(t(100));
    assert_eq!(events(&mut browser), [Event::Removed(NAS.into())]);
    let asked = browser.poll_transmit(t(100)).map(|q| questions(&q)).unwrap_or_default();
    assert!(asked.contains(&(name(NAS_HOST), RecordType::A)), "its address is asked: {asked:?}");
    browser.handle_timeout(t(101));
    browser.handle_response(t(103), FROM, &response(&[address(NAS_HOST, 11, 120, true)]));
    assert_eq!(events(&mut browser), [resolved(NAS, NAS_HOST, &[11], 8080)]);

    // The same again later: asked again, and forgotten 30 s after nobody answers.
    browser.handle_response(t(200), FROM, &response(&[address(NAS_HOST, 11, 0, false)]));
    assert_eq!(events(&mut browser), [Event::Removed(NAS.into())]);
    let asked = browser.poll_transmit(t(200)).map(|q| questions(&q)).unwrap_or_default();
    assert!(asked.contains(&(name(NAS_HOST), RecordType::A)), "asked again: {asked:?}");
    browser.handle_timeout(t(229));
    assert_eq!(browser.held(), (1, 1));
    browser.handle_timeout(t(230));
    assert_eq!(browser.held(), (0, 0));
}

#[test]
fn an_instance_is_reported_and_removed_under_the_name_it_was_first_seen_with_whatever_the_case() {
    let mut browser = browser();
    browser.handle_response(t(0), FROM, &nas_announcement(4500));
    events(&mut browser);
    // DNS names are the same in any case: a later record spelling it otherwise is the same
    // instance, and the inventory, which keys on the text, must hear the same text.
    let shouting = "MY NAS._HTTP._TCP.LOCAL.";
    browser.handle_response(t(600), FROM, &response(&[service(shouting, NAS_HOST, 8080, 4500)]));
    assert_eq!(events(&mut browser), [resolved(NAS, NAS_HOST, &[10], 8080)]);
    browser.handle_response(t(601), FROM, &response(&[service(shouting, NAS_HOST, 8081, 4500)]));
    assert_eq!(events(&mut browser), [Event::Removed(NAS.into()), resolved(NAS, NAS_HOST, &[10], 8081)]);
    browser.handle_response(t(602), FROM, &response(&[pointer("_http._tcp.local.", shouting, 0)]));
    assert_eq!(events(&mut browser), [Event::Removed(NAS.into())]);
}

#[test]
fn an_instance_that_moves_to_another_host_stays_resolved_through_the_goodbye_of_its_old_service() {
    let mut browser = browser();
    browser.handle_response(t(0), FROM, &nas_announcement(120));
    events(&mut browser);
    // Renamed after a conflict, its responder announces the service on the new host, then says
    // goodbye to the one on the old host: only that record goes.
    browser.handle_response(
        t(10),
        FROM,
        &response(&[service(NAS, "nas-2.local.", 8080, 120), address("nas-2.local.", 10, 120, true)]),
    );
    assert_eq!(events(&mut browser), [Event::Removed(NAS.into()), resolved(NAS, "nas-2.local.", &[10], 8080)]);
    browser.handle_response(t(11), FROM, &response(&[service(NAS, NAS_HOST, 8080, 0)]));
    browser.handle_response(t(11), FROM, &response(&[service(NAS, "nas-2.local.", 8081, 0)]));
    assert_eq!(events(&mut browser), []);
    browser.handle_response(t(12), FROM, &response(&[service(NAS, "NAS-2.local.", 8080, 0)]));
    assert_eq!(events(&mut browser), [Event::Removed(NAS.into())]);
}

/// A responder's socket as Avahi and python-zeroconf open it: the port on every address, shared,
/// in the group on `interface`.
fn responder_socket(port: u16) -> std::net::UdpSocket {
    use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    socket.set_reuse_address(true).unwrap();
    socket.set_reuse_port(true).unwrap();
    socket.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port).into()).unwrap();
    socket.join_multicast_v4_n(&super::message::GROUP, &InterfaceIndexOrAddress::Index(1)).unwrap();
    socket.set_read_timeout(Some(std::time::Duration::from_millis(300))).unwrap();
    socket.into()
}

fn received(socket: &std::net::UdpSocket) -> Vec<Vec<u8>> {
    let mut packet = [0; 64];
    std::iter::from_fn(|| socket.recv(&mut packet).ok().map(|len| packet[..len].to_vec())).collect()
}

#[test]
fn the_browser_socket_shares_the_group_with_a_responder_on_the_same_host_and_leaves_it_its_unicast() {
    let port = std::net::UdpSocket::bind("0.0.0.0:0").unwrap().local_addr().unwrap().port();
    let responder = responder_socket(port);
    let browser = match super::socket::open_on("lo", port) {
        Ok(socket) => socket,
        // Binding to a device needs CAP_NET_RAW.
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return,
        Err(e) => panic!("{e}"),
    };
    let sender = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    sender.set_multicast_if_v4(&Ipv4Addr::LOCALHOST).unwrap();
    sender.set_multicast_loop_v4(true).unwrap();
    let sender: std::net::UdpSocket = sender.into();
    sender.send_to(b"to the group", SocketAddrV4::new(super::message::GROUP, port)).unwrap();
    // A unicast packet to the port (a query sent straight to the responder, or the answer to
    // a question it asked with the unicast-response bit) is the responder's alone: the
    // kernel hands it to one socket, and a socket bound to the device would win it.
    sender.send_to(b"to the host", SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).unwrap();
    assert_eq!(received(&browser), [b"to the group".to_vec()]);
    assert_eq!(received(&responder), [b"to the group".to_vec(), b"to the host".to_vec()]);
    // Bound to the group's address, the browser still sends its queries to the group (from the
    // interface's own address), and the responder hears them.
    browser.send_to(b"a query", SocketAddrV4::new(super::message::GROUP, port)).unwrap();
    assert_eq!(received(&responder), [b"a query".to_vec()]);
}

#[test]
fn a_host_that_moves_is_published_once_at_its_new_address_never_without_its_service() {
    let config = crate::config::Config::parse(crate::config::EXAMPLE, std::path::Path::new("relay.toml")).unwrap();
    let discovery = crate::discovery::Discovery::new(&config, crate::daemon::Clock::start());
    let mut browser = browser();
    browser.handle_response(t(0), FROM, &nas_announcement(120));
    super::handle(&discovery, events(&mut browser));
    let changes = discovery.changes();
    let version = *changes.borrow();
    // The address changes: the browser says gone, then found at the new address. Devices are
    // told of the new list once, and no list without the NAS's service is published between.
    browser.handle_response(t(5), FROM, &response(&[address(NAS_HOST, 11, 120, true)]));
    super::handle(&discovery, events(&mut browser));
    assert_eq!(*changes.borrow() - version, 1, "published once");
    let with_service: Vec<Ipv4Addr> =
        discovery.hosts().iter().filter(|h| !h.services.is_empty()).map(|h| h.address).collect();
    assert_eq!(with_service, [Ipv4Addr::new(192, 168, 0, 11)]);
}

#[test]
fn an_instance_pointing_at_ever_new_hosts_does_not_fill_the_room_of_hosts() {
    let mut browser = browser();
    let evil = "Evil._http._tcp.local.";
    browser.handle_response(t(0), FROM, &response(&[pointer("_http._tcp.local.", evil, 4500)]));
    // One instance, hundreds of hosts in a few milliseconds: only the last one it names is
    // held.
    for p in 0..8u64 {
        let answers: Vec<Answer> = (0..64).map(|i| service(evil, &format!("h{p}-{i}.local."), 80, 4500)).collect();
        let now = Instant::from_millis(1000 + p);
        browser.handle_response(now, FROM, &response(&answers));
        browser.handle_timeout(now);
    }
    assert_eq!(browser.held(), (1, 1));
    browser.handle_response(Instant::from_millis(1010), FROM, &nas_announcement(120));
    assert_eq!(events(&mut browser), [resolved(NAS, NAS_HOST, &[10], 8080)]);
}
