//! The client connection (handshake, session and netstack in one state machine) against a
//! simulated relay, on a virtual clock.

mod sim;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use std::net::{Ipv4Addr, SocketAddrV4};

use hometun_shared::client::{self, Connection, Event};
use hometun_shared::echo;
use hometun_shared::netstack::NetStack;
use hometun_shared::session::{CloseReason, ConnectionLost, End, Error, Params, Refusal, Session};
use hometun_shared::time::{Duration, Instant};
use sim::*;
use smoltcp::wire::{IpProtocol, Ipv4Packet};

const T0: Instant = Instant::ZERO;
const RELAY_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 8, 0, 1);

/// A phone's connection and the relay's session, talking through in-memory messages.
struct Pair {
    phone: Connection,
    relay: Session,
    now: Instant,
    /// Every IP packet the relay took in during [`Pair::exchange`].
    relay_got: Vec<Vec<u8>>,
}

impl Pair {
    /// Moves every message both ways until neither side has anything to send.
    fn exchange(&mut self) {
        for _ in 0..100 {
            let mut moved = false;
            while let Some(mut message) = self.phone.poll_transmit(self.now) {
                moved = true;
                if let Ok(packets) = self.relay.handle_message(self.now, &mut message) {
                    self.relay_got.extend(packets.map(<[u8]>::to_vec));
                }
            }
            while let Some(mut message) = self.relay.poll_transmit(self.now) {
                moved = true;
                let _ = self.phone.handle_message(self.now, &mut message);
            }
            if !moved {
                return;
            }
        }
        panic!("the exchange never settled");
    }

    /// Advances the clock to the next timer of either side and runs it; returns the new time.
    fn step(&mut self) -> Instant {
        let next = [self.phone.poll_timeout(), self.relay.poll_timeout()].into_iter().flatten().min().expect("a timer");
        assert!(next >= self.now, "timers never point into the past");
        self.now = next;
        self.phone.handle_timeout(next);
        self.relay.handle_timeout(next);
        next
    }

    fn phone_events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.phone.poll_event()).collect()
    }
}

/// A phone whose device the relay knows, connected and configured with [`home_config`].
fn configured() -> Pair {
    configured_with(None)
}

#[test]
fn a_connection_comes_up_with_the_pushed_configuration_applied() {
    let mut pair = configured();
    assert_eq!(pair.phone_events(), vec![Event::Configured(home_config())]);
    assert!(pair.phone.is_up());
    assert_eq!(pair.phone.config(), Some(&home_config()));
    let net = pair.phone.net().expect("the configuration built the netstack").config();
    assert_eq!((net.address, net.prefix_len), (Ipv4Addr::new(10, 8, 0, 6), 24), "the pushed address");
    assert_eq!(net.mtu, 1420, "the pushed MTU");
    assert_eq!(net.dns_servers, vec![Ipv4Addr::new(192, 168, 0, 1)], "the pushed DNS server");
    let config = home_config();
    assert!(client::routes_to(&config, Ipv4Addr::new(192, 168, 0, 10)), "the pushed route");
    assert!(client::routes_to(&config, RELAY_ADDRESS), "the tunnel subnet");
    assert!(!client::routes_to(&config, Ipv4Addr::new(192, 168, 1, 10)), "nothing else");
}

#[test]
fn a_relay_that_cuts_segments_gets_64_kib_tcp_packets_and_every_packet_acknowledged_at_once() {
    let mut config = home_config();
    let old = client::net_config(&config);
    assert_eq!((old.max_tcp_packet, old.tcp_ack_delay.is_some()), (1420, true), "an older relay: as before");
    config.max_packet = 65535;
    let net = client::net_config(&config);
    assert_eq!((net.mtu, net.max_tcp_packet), (1420, 65535), "TCP may exceed the MTU, UDP and ICMP may not");
    assert_eq!(net.tcp_ack_delay, None, "the raised MSS would hold every ACK for the timer");
}

#[test]
fn keepalives_go_out_at_the_pushed_interval() {
    let mut pair = configured();
    assert_ne!(home_config().keepalive, Params::default().keepalive, "the fixture must differ from the default");
    let mut sent_at = Vec::new();
    while pair.now < T0 + Duration::from_secs(300) {
        let now = pair.step();
        let before = pair.phone.stats().records_out;
        pair.exchange();
        if pair.phone.stats().records_out > before {
            sent_at.push(now);
        }
    }
    assert!(pair.phone.end().is_none() && !pair.relay.is_closed(), "an idle tunnel stays up");
    let gaps: Vec<Duration> = sent_at.windows(2).map(|w| w[1].saturating_duration_since(w[0])).collect();
    assert!(gaps.len() >= 10, "keepalives kept coming: {gaps:?}");
    assert!(gaps.iter().all(|gap| *gap == home_config().keepalive), "one keepalive per pushed interval: {gaps:?}");
}

#[test]
fn packets_flow_both_ways() {
    let mut pair = configured();
    let now = pair.now;
    pair.phone.net_mut().unwrap().ping(RELAY_ADDRESS, 7, 56, now).unwrap();
    let mut request = pair.phone.poll_transmit(now).expect("a record with the echo request");
    let packets: Vec<Vec<u8>> = pair.relay.handle_message(now, &mut request).unwrap().map(<[u8]>::to_vec).collect();
    assert_eq!(packets.len(), 1, "one IP packet reached the relay");
    let reply = echo::reply(&packets[0]).expect("an echo request");

    pair.now = now + Duration::from_millis(20);
    pair.relay.send_packet(&reply).unwrap();
    pair.exchange();
    pair.phone.handle_timeout(pair.now);
    let got = pair.phone.net_mut().unwrap().poll_ping_reply().expect("the reply reached the phone's netstack");
    assert_eq!((got.from, got.seq, got.rtt), (RELAY_ADDRESS, 7, Duration::from_millis(20)));
    assert_eq!(pair.relay.stats().packets_in, 1);
    assert_eq!(pair.phone.stats().packets_in, 1);
}

use hometun_shared::client::{ANSWER_EXPECTED_WITHIN, CHECK_ANSWER_WITHIN};

/// The IP packets the phone sends now, as the relay reads them.
fn sent_packets(pair: &mut Pair) -> Vec<Vec<u8>> {
    let mut packets = Vec::new();
    while let Some(mut message) = pair.phone.poll_transmit(pair.now) {
        packets.extend(pair.relay.handle_message(pair.now, &mut message).unwrap().map(<[u8]>::to_vec));
    }
    packets
}

#[test]
fn a_liveness_check_pings_the_relay_and_its_answer_keeps_the_tunnel_up() {
    let mut pair = configured();
    pair.phone_events();
    pair.now = T0 + Duration::from_secs(2);
    assert!(pair.phone.check_alive(pair.now), "an up tunnel starts a check");
    assert!(!pair.phone.check_alive(pair.now), "one check at a time");
    let packets = sent_packets(&mut pair);
    let deadline = pair.now + CHECK_ANSWER_WITHIN;
    assert!(pair.phone.poll_timeout().is_some_and(|at| at <= deadline), "a timer by the check's deadline");
    assert_eq!(packets.len(), 1, "one echo request to the relay: {packets:?}");
    let request = Ipv4Packet::new_checked(&packets[0][..]).unwrap();
    assert_eq!((request.dst_addr(), request.next_header()), (RELAY_ADDRESS, IpProtocol::Icmp));

    pair.now = pair.now + Duration::from_millis(300);
    pair.relay.send_packet(&echo::reply(&packets[0]).unwrap()).unwrap();
    pair.exchange();
    pair.now = T0 + Duration::from_secs(30);
    pair.phone.handle_timeout(pair.now);
    assert!(pair.phone.is_up() && pair.phone_events().is_empty(), "the answer ended the check");
    let reply = pair.phone.net_mut().unwrap().poll_ping_reply().expect("the echo reply reached the netstack");
    assert_eq!(reply.from, RELAY_ADDRESS);
    assert!(reply.seq >= 0xC000, "apart from a driver's own pings: {}", reply.seq);
    assert!(pair.phone.check_alive(pair.now), "a later check may start");
}

#[test]
fn a_relay_that_does_not_answer_a_liveness_check_ends_the_tunnel_as_dead() {
    let mut pair = configured();
    pair.phone_events();
    pair.now = T0 + Duration::from_secs(2);
    assert!(pair.phone.check_alive(pair.now));
    assert_eq!(sent_packets(&mut pair).len(), 1, "the echo request left");
    // The connection died without a word: nothing comes back.
    let before = pair.now + CHECK_ANSWER_WITHIN - Duration::from_millis(1);
    pair.phone.handle_timeout(before);
    assert!(pair.phone.is_up(), "still up just before the deadline");
    pair.phone.handle_timeout(pair.now + CHECK_ANSWER_WITHIN);
    assert_eq!(pair.phone_events(), vec![Event::Closed(End::DeadPeer)], "long before the dead-peer timer's 45 s");
}

#[test]
fn a_liveness_check_needs_a_tunnel_that_is_up() {
    let mut device = Device::new(38);
    let relay_key = RelaySim::new(39).key();
    let mut phone = Connection::connect(&device.secret, &relay_key, None, &device.params, T0, &mut device.rng).unwrap();
    assert!(!phone.check_alive(T0), "no check during the handshake");
    let mut pair = configured();
    pair.phone.connection_lost(ConnectionLost::Dropped);
    assert!(!pair.phone.check_alive(pair.now), "no check once ended");
}

/// A configured pair whose phone sent one small packet (an echo request) to `dst` at 1 s; returns
/// the pair, when it was sent, and the packets that left.
fn one_packet_sent_to(dst: Ipv4Addr) -> (Pair, Instant, Vec<Vec<u8>>) {
    let mut pair = configured();
    pair.phone_events();
    let sent = T0 + Duration::from_secs(1);
    pair.now = sent;
    pair.phone.net_mut().unwrap().ping(dst, 1, 1, sent).unwrap();
    let packets = sent_packets(&mut pair);
    (pair, sent, packets)
}

#[test]
fn packets_that_get_no_answer_start_a_liveness_check_and_a_dead_relay_is_found_in_seconds() {
    // A key typed into a terminal: its TCP segment would be acknowledged at once on a live tunnel.
    let (mut pair, sent, packets) = one_packet_sent_to(Ipv4Addr::new(192, 168, 0, 10));
    assert_eq!(packets.len(), 1, "the packet left");
    assert!(pair.phone.poll_timeout().is_some_and(|at| at <= sent + ANSWER_EXPECTED_WITHIN));
    pair.now = sent + ANSWER_EXPECTED_WITHIN;
    pair.phone.handle_timeout(pair.now);
    let check = sent_packets(&mut pair);
    assert_eq!(check.len(), 1, "nothing came back: an echo request to the relay {check:?}");
    assert_eq!(Ipv4Packet::new_checked(&check[0][..]).unwrap().dst_addr(), RELAY_ADDRESS);
    // Nothing ever comes back.
    pair.phone.handle_timeout(pair.now + CHECK_ANSWER_WITHIN);
    assert_eq!(pair.phone_events(), vec![Event::Closed(End::DeadPeer)], "7 s after the packet, not 45");
}

#[test]
fn packets_answered_in_time_start_no_check() {
    let (mut pair, sent, request) = one_packet_sent_to(RELAY_ADDRESS);
    pair.now = sent + Duration::from_millis(1500);
    pair.relay.send_packet(&echo::reply(&request[0]).unwrap()).unwrap();
    pair.exchange();
    for _ in 0..3 {
        pair.now = pair.phone.poll_timeout().expect("a timer").max(pair.now);
        pair.phone.handle_timeout(pair.now);
        assert!(sent_packets(&mut pair).is_empty(), "no echo request to the relay at {:?}", pair.now);
    }
    assert!(pair.phone.is_up());
}

#[test]
fn closing_is_reported_once() {
    let mut pair = configured();
    pair.phone_events();
    pair.phone.close(CloseReason::Normal);
    pair.exchange();
    pair.phone.connection_lost(ConnectionLost::Dropped);
    pair.phone.handle_timeout(pair.now + Duration::from_secs(3600));
    assert_eq!(pair.phone_events(), vec![Event::Closed(End::Closed(CloseReason::Normal))]);
    assert_eq!(pair.relay.end(), Some(&End::PeerClosed(CloseReason::Normal)), "the relay read the close frame");
    assert_eq!(pair.phone.poll_transmit(pair.now), None);
    assert_eq!(pair.phone.poll_timeout(), None);
    assert!(!pair.phone.is_up());
}

#[test]
fn the_relay_closing_ends_the_connection_with_its_reason() {
    let mut pair = configured();
    pair.phone_events();
    pair.relay.close(CloseReason::Revoked);
    pair.exchange();
    pair.phone.connection_lost(ConnectionLost::WebSocketClosed { code: 1000, reason: String::new() });
    assert_eq!(pair.phone_events(), vec![Event::Closed(End::PeerClosed(CloseReason::Revoked))]);
    let ended = Error::Ended(Box::new(End::PeerClosed(CloseReason::Revoked)));
    assert_eq!(pair.phone.send_packet(&packet(1, 60)), Err(ended));
}

#[test]
fn a_lost_connection_ends_it_once() {
    let mut pair = configured();
    pair.phone_events();
    pair.phone.connection_lost(ConnectionLost::Dropped);
    pair.phone.connection_lost(ConnectionLost::StoppedReading);
    assert_eq!(pair.phone_events(), vec![Event::Closed(End::ConnectionLost(ConnectionLost::Dropped))]);
}

#[test]
fn a_refused_device_learns_why() {
    let mut relay_sim = RelaySim::new(32);
    let mut stranger = Device::new(33);
    let mut phone =
        Connection::connect(&stranger.secret, &relay_sim.key(), None, &stranger.params, T0, &mut stranger.rng).unwrap();
    let hello = phone.poll_transmit(T0).unwrap();
    let mut refusal = relay_sim.answer(T0, &hello).expect_err("an unknown device is refused");
    assert_eq!(phone.handle_message(T0, &mut refusal), Err(Error::Refused(Refusal::UnknownDevice)));
    let events: Vec<_> = std::iter::from_fn(|| phone.poll_event()).collect();
    assert_eq!(events, vec![Event::Closed(End::Failed(Error::Refused(Refusal::UnknownDevice)))]);
}

#[test]
fn a_silent_relay_times_the_handshake_out() {
    let mut device = Device::new(34);
    let relay_key = RelaySim::new(35).key();
    let mut phone = Connection::connect(&device.secret, &relay_key, None, &device.params, T0, &mut device.rng).unwrap();
    let _hello = phone.poll_transmit(T0).unwrap();
    let deadline = phone.poll_timeout().unwrap();
    assert_eq!(deadline, T0 + Params::default().handshake_timeout);
    phone.handle_timeout(deadline);
    let events: Vec<_> = std::iter::from_fn(|| phone.poll_event()).collect();
    assert_eq!(events, vec![Event::Closed(End::Failed(Error::HandshakeTimeout))]);
}

/// A phone that started connecting to a LAN host, then lost its connection to the relay: its
/// netstack (to carry over) and the connection's handle.
fn dropped_while_connecting() -> (NetStack, hometun_shared::netstack::TcpHandle) {
    let mut first = configured();
    let handle = first.phone.net_mut().unwrap().tcp_connect("192.168.0.10:80".parse().unwrap()).unwrap();
    first.phone.connection_lost(ConnectionLost::Dropped);
    (first.phone.take_net().unwrap(), handle)
}

#[test]
fn a_reconnect_with_the_same_address_keeps_the_sockets() {
    let (net, handle) = dropped_while_connecting();
    let mut second = configured_with(Some(net));
    assert_eq!(second.phone_events(), vec![Event::Configured(home_config())]);
    assert!(second.phone.net().unwrap().tcp_state(handle).is_ok(), "the connection attempt survived the reconnect");
}

#[test]
fn a_reconnect_sends_again_at_once_what_the_dead_connection_took_until_the_relay_answers() {
    // A key typed into a connection that then died without a word: the relay never got it.
    let (mut first, _, lost) = one_packet_sent_to(Ipv4Addr::new(192, 168, 0, 10));
    assert_eq!(lost.len(), 1);
    first.phone.connection_lost(ConnectionLost::Dropped);

    // The next connection sends it again right after the relay's configuration, not when the
    // netstack's backed-off timer would have.
    let mut second = configured_with(first.phone.take_net());
    assert_eq!(second.relay_got, lost, "the packet again, as it was");
    // It stays in doubt until the relay sends something on this connection too.
    second.phone.connection_lost(ConnectionLost::Dropped);
    let mut third = configured_with(second.phone.take_net());
    assert_eq!(third.relay_got, lost, "again, as nothing came back");

    // An answer: nothing sent before is in doubt any more; the next reconnect sends nothing again.
    third.relay.send_packet(&echo::reply(&lost[0]).unwrap()).unwrap();
    third.exchange();
    third.phone.connection_lost(ConnectionLost::Dropped);
    let fourth = configured_with(third.phone.take_net());
    assert_eq!(fourth.relay_got, Vec::<Vec<u8>>::new(), "nothing sent again after an answer");
}

#[test]
fn a_reconnect_to_a_relay_with_a_smaller_mtu_builds_the_netstack_anew() {
    let (net, handle) = dropped_while_connecting();

    // The relay was set up again meanwhile: a smaller MTU, and no packets above it.
    let smaller = hometun_shared::control::ClientConfig { mtu: 1280, max_packet: 1280, ..home_config() };
    let second = configured_as(Some(net), smaller);
    let net = second.phone.net().unwrap();
    assert_eq!((net.config().mtu, net.config().max_tcp_packet), (1280, 1280), "the new MTU applies");
    assert!(net.tcp_state(handle).is_err(), "a connection made for the old MTU is gone with its netstack");
}

/// Like [`configured`], carrying `net` over from an earlier connection.
fn configured_with(net: Option<NetStack>) -> Pair {
    configured_as(net, home_config())
}

/// Like [`configured_with`], the relay pushing `config`.
fn configured_as(net: Option<NetStack>, config: hometun_shared::control::ClientConfig) -> Pair {
    let mut relay_sim = RelaySim::new(36);
    let mut device = Device::new(37);
    relay_sim.devices.insert(device.secret.public_key());
    let mut phone =
        Connection::connect(&device.secret, &relay_sim.key(), None, &device.params, T0, &mut device.rng).unwrap();
    if let Some(net) = net {
        phone.reuse_net(net);
    }
    let hello = phone.poll_transmit(T0).expect("the hello goes first");
    let (relay, mut reply) = relay_sim.answer(T0, &hello).expect("the relay accepts");
    phone.handle_message(T0, &mut reply).expect("the reply completes the handshake");
    let mut pair = Pair { phone, relay, now: T0, relay_got: Vec::new() };
    pair.exchange();
    assert!(relay_sim.confirm(&mut pair.relay, None), "the phone's first record confirms its keys");
    pair.relay.send_config(&config).unwrap();
    pair.exchange();
    pair
}

#[test]
fn a_phone_subscribes_to_the_host_list_only_when_offered_and_asks_to_wake_through_it() {
    use hometun_shared::control::{ControlMessage, Features, Host, HostList, WakeOutcome};
    use hometun_shared::session::Event as SessionEvent;
    let nas = Ipv4Addr::new(192, 168, 0, 10);

    // Not offered (a relay from before the host list): nothing is sent that it would not know.
    let mut old = configured();
    let _ = old.phone_events();
    assert!(!old.phone.wake(nas), "no wake request to a relay that offers no host list");
    old.exchange();
    assert!(std::iter::from_fn(|| old.relay.poll_event()).all(|e| !matches!(e, SessionEvent::Control(_))));

    // Offered: the phone subscribes, gets the list, and its wake request gets an answer.
    let mut pair = configured();
    let mut offered = home_config();
    offered.features = Features { hosts: true, wake: true, ..Features::default() };
    pair.relay.send_config(&offered).unwrap();
    pair.exchange();
    let control: Vec<_> = std::iter::from_fn(|| pair.relay.poll_event())
        .filter_map(|e| match e {
            SessionEvent::Control(message) => Some(message),
            _ => None,
        })
        .collect();
    assert_eq!(control, [ControlMessage::Subscribe], "one subscription");
    let list = HostList { hosts: vec![Host::new(nas)], may_wake: true };
    pair.relay.send_control(&ControlMessage::Hosts(list.clone())).unwrap();
    pair.exchange();
    assert_eq!(pair.phone.hosts(), Some(&list));
    assert!(pair.phone_events().contains(&Event::Hosts(list)));

    assert!(pair.phone.wake(nas));
    pair.exchange();
    let asked =
        std::iter::from_fn(|| pair.relay.poll_event()).any(|e| e == SessionEvent::Control(ControlMessage::Wake(nas)));
    assert!(asked, "the relay hears the wake request");
    pair.relay.send_control(&ControlMessage::WakeReply { address: nas, outcome: WakeOutcome::Sent }).unwrap();
    pair.exchange();
    assert_eq!(pair.phone.wake_replies(), (1, Some((nas, WakeOutcome::Sent))));
    assert!(pair.phone.end().is_none() && !pair.relay.is_closed());
}

#[test]
fn a_phone_asks_for_an_app_names_certificate_only_when_the_relay_offers_it() {
    use hometun_shared::app_name::AppTarget;
    use hometun_shared::control::{AppCertOutcome, ControlMessage, Features};
    use hometun_shared::session::Event as SessionEvent;
    let nas = AppTarget::http(SocketAddrV4::new(Ipv4Addr::new(192, 168, 0, 10), 5000));

    // Not offered (a relay without a domain, or from before the message): nothing is sent.
    let mut old = configured();
    let _ = old.phone_events();
    assert!(!old.phone.app_cert(nas), "no demand to a relay that does not offer app-name certificates");
    old.exchange();
    assert!(std::iter::from_fn(|| old.relay.poll_event()).all(|e| !matches!(e, SessionEvent::Control(_))));

    let mut pair = configured();
    let mut offered = home_config();
    offered.features = Features { app_certs: true, ..Features::default() };
    pair.relay.send_config(&offered).unwrap();
    pair.exchange();
    let _ = pair.phone_events();
    assert!(pair.phone.app_cert(nas));
    pair.exchange();
    let asked = std::iter::from_fn(|| pair.relay.poll_event())
        .any(|e| e == SessionEvent::Control(ControlMessage::AppCert(nas)));
    assert!(asked, "the relay hears the demand");
    let reply = ControlMessage::AppCertReply { app: nas, outcome: AppCertOutcome::Ordering };
    pair.relay.send_control(&reply).unwrap();
    pair.exchange();
    assert_eq!(pair.phone_events(), [Event::AppCertReply { app: nas, outcome: AppCertOutcome::Ordering }]);
    assert_eq!(pair.phone.app_cert_replies().since(nas, 0), Some(AppCertOutcome::Ordering));
    assert!(pair.phone.end().is_none() && !pair.relay.is_closed());
}
