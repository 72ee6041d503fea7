//! TCP connection life cycles through the client netstack: what a user sees when a connection
//! is set up, refused, times out, is closed by either side, reset or released.

mod netstack_world;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use std::net::{Ipv4Addr, SocketAddrV4};

use hometun_shared::netstack::{Error, Event, TcpHandle, TcpState};
use hometun_shared::time::Duration;
use netstack_world::*;

fn wait_for(world: &mut World, handle: TcpHandle, state: TcpState, within: Duration) -> bool {
    world.run_until(within, |w| w.client.tcp_state(handle) == Ok(state))
}

fn events(world: &mut World) -> Vec<Event> {
    std::iter::from_fn(|| world.client.poll_event()).collect()
}

#[test]
fn a_connection_is_established_and_reported_as_an_event() {
    let mut world = World::new();
    let stream = world.client.tcp_connect(lan(ECHO_PORT)).unwrap();
    assert_eq!(world.client.tcp_state(stream), Ok(TcpState::Connecting));
    assert!(wait_for(&mut world, stream, TcpState::Established, Duration::from_secs(1)));
    assert_eq!(events(&mut world), vec![Event::Tcp { handle: stream, state: TcpState::Established }]);
    assert_eq!(world.client.tcp_remote(stream), Ok(lan(ECHO_PORT)));
    assert_eq!(*world.client.tcp_local(stream).unwrap().ip(), CLIENT);
}

#[test]
fn a_small_request_is_answered_without_delay() {
    let mut world = World::new();
    let stream = world.client.tcp_connect(lan(ECHO_PORT)).unwrap();
    assert!(wait_for(&mut world, stream, TcpState::Established, Duration::from_secs(1)));

    let sent_at = world.now;
    assert_eq!(world.client.tcp_send(stream, b"ping?"), Ok(5));
    let mut reply = Vec::new();
    let mut buf = [0u8; 64];
    let answered = world.run_until(Duration::from_secs(1), |w| {
        let n = w.client.tcp_recv(stream, &mut buf).unwrap();
        reply.extend_from_slice(&buf[..n]);
        reply.len() == 5
    });
    assert!(answered);
    assert_eq!(reply, b"ping?");
    let rtt = world.now.saturating_duration_since(sent_at);
    assert!(
        rtt < Duration::from_millis(3),
        "one round trip (1 ms) plus polling, not a Nagle/delayed-ACK stall: {rtt:?}"
    );
}

/// A connection to the echo port whose echoed byte the client has just taken in, as a driver
/// does with a record (`poll_ingress`: nothing polled out yet); returns the echo's sequence
/// number. The stack acknowledges every segment at once, as it does behind a relay that takes
/// super-packets.
fn echoed_byte_taken_in() -> (World, TcpHandle, u32) {
    let mut world = World::with_config(|config| config.tcp_ack_delay = None);
    let stream = world.client.tcp_connect(lan(ECHO_PORT)).unwrap();
    assert!(wait_for(&mut world, stream, TcpState::Established, Duration::from_secs(1)));
    assert_eq!(world.client.tcp_send(stream, b"1"), Ok(1));
    let echo = world.intercept_data_to_client(Duration::from_secs(1)).expect("the echo comes back");
    let (echo_seq, _, _) = tcp_segment(&echo).unwrap();
    world.client.receive_packet(&echo);
    let now = world.now;
    world.client.poll_ingress(now);
    (world, stream, echo_seq)
}

/// Polls the client and returns the TCP segments it sends: (seq, ack, payload).
fn poll_sent(world: &mut World) -> Vec<(u32, u32, Vec<u8>)> {
    let now = world.now;
    world.client.poll(now);
    let mut packets = Vec::new();
    world.client.drain_transmit(|packet| packets.extend(tcp_segment(packet)));
    packets
}

#[test]
fn an_answer_written_as_data_arrives_carries_its_acknowledgement() {
    let (mut world, stream, echo_seq) = echoed_byte_taken_in();
    assert_eq!(world.client.transmit_queue_len(), 0, "nothing leaves while the application may still answer");
    let mut buf = [0u8; 8];
    assert_eq!(world.client.tcp_recv(stream, &mut buf), Ok(1), "the data is readable at once");
    assert_eq!(world.client.tcp_send(stream, b"2"), Ok(1));
    let packets = poll_sent(&mut world);
    assert_eq!(packets.len(), 1, "one packet, not a bare acknowledgement and then the answer: {packets:?}");
    let (_, ack, payload) = &packets[0];
    assert_eq!((*ack, payload.as_slice()), (echo_seq.wrapping_add(1), &b"2"[..]));
}

#[test]
fn with_no_answer_the_acknowledgement_leaves_at_the_next_poll() {
    let (mut world, _stream, echo_seq) = echoed_byte_taken_in();
    assert!(world.client.poll_timeout().is_some_and(|at| at <= world.now), "the stack asks to be polled now");
    let packets = poll_sent(&mut world);
    assert_eq!(packets.len(), 1, "{packets:?}");
    let (_, ack, payload) = &packets[0];
    assert_eq!((*ack, payload.len()), (echo_seq.wrapping_add(1), 0), "a bare acknowledgement of the echo");
}

#[test]
fn connecting_to_a_closed_port_is_refused() {
    let mut world = World::new();
    let stream = world.client.tcp_connect(lan(CLOSED_PORT)).unwrap();
    assert!(wait_for(&mut world, stream, TcpState::Refused, Duration::from_secs(1)));
    let expected = Error::ConnectionRefused(lan(CLOSED_PORT));
    assert_eq!(world.client.tcp_send(stream, b"x"), Err(expected.clone()));
    assert_eq!(world.client.tcp_recv(stream, &mut [0u8; 8]), Err(expected.clone()), "the error is sticky");
    assert!(expected.to_string().contains("refused"), "{expected}");
}

#[test]
fn connecting_to_an_absent_host_times_out() {
    let mut world = World::with_config(|c| c.tcp_connect_timeout = Duration::from_secs(3));
    let target = SocketAddrV4::new(ABSENT_HOST, 80);
    let stream = world.client.tcp_connect(target).unwrap();
    assert!(!wait_for(&mut world, stream, TcpState::TimedOut, Duration::from_millis(2_900)), "not before the timeout");
    assert!(wait_for(&mut world, stream, TcpState::TimedOut, Duration::from_millis(1_000)));
    assert_eq!(world.client.tcp_recv(stream, &mut [0u8; 8]), Err(Error::TimedOut(target)));
}

#[test]
fn the_peer_closing_ends_the_stream_after_its_last_byte() {
    let mut world = World::new();
    let stream = world.client.tcp_connect(lan(SOURCE_PORT)).unwrap();
    assert!(wait_for(&mut world, stream, TcpState::Established, Duration::from_secs(1)));
    world.client.tcp_send(stream, &10u64.to_be_bytes()).unwrap();
    assert!(wait_for(&mut world, stream, TcpState::PeerClosed, Duration::from_secs(1)));

    let mut buf = [0u8; 64];
    assert_eq!(world.client.tcp_recv(stream, &mut buf), Ok(10), "data sent before the FIN is still readable");
    assert_eq!(first_mismatch(DOWNLOAD_STREAM, 0, &buf[..10]), None);
    assert_eq!(world.client.tcp_recv(stream, &mut buf), Err(Error::EndOfStream));
    assert_eq!(world.client.tcp_send(stream, b"bye"), Ok(3), "our direction stays open");

    world.client.tcp_close(stream).unwrap();
    assert!(wait_for(&mut world, stream, TcpState::Closed, Duration::from_secs(1)));
}

#[test]
fn after_close_sending_fails_but_the_echo_still_arrives() {
    let mut world = World::new();
    let stream = world.client.tcp_connect(lan(ECHO_PORT)).unwrap();
    assert!(wait_for(&mut world, stream, TcpState::Established, Duration::from_secs(1)));
    world.client.tcp_send(stream, b"last words").unwrap();
    world.client.tcp_close(stream).unwrap();
    assert_eq!(world.client.tcp_send(stream, b"more"), Err(Error::NotWritable(lan(ECHO_PORT))));

    let mut echoed = Vec::new();
    let mut buf = [0u8; 64];
    let ended = world.run_until(Duration::from_secs(1), |w| match w.client.tcp_recv(stream, &mut buf) {
        Ok(n) => {
            echoed.extend_from_slice(&buf[..n]);
            false
        }
        Err(Error::EndOfStream) => true,
        Err(e) => panic!("{e}"),
    });
    assert!(ended);
    assert_eq!(echoed, b"last words");
    assert!(wait_for(&mut world, stream, TcpState::Closed, Duration::from_secs(1)));
}

#[test]
fn an_abort_resets_the_peer_and_closes_at_once() {
    let mut world = World::new();
    let stream = world.client.tcp_connect(lan(ECHO_PORT)).unwrap();
    assert!(wait_for(&mut world, stream, TcpState::Established, Duration::from_secs(1)));
    world.client.tcp_abort(stream).unwrap();
    assert_eq!(world.client.tcp_state(stream), Ok(TcpState::Closed));
    world.run_for(Duration::from_millis(5));
    assert_eq!(world.client.tcp_state(stream), Ok(TcpState::Closed), "our own RST is not mistaken for the peer's");

    // The echo service got the RST and listens again: a new connection works.
    let again = world.client.tcp_connect(lan(ECHO_PORT)).unwrap();
    assert!(wait_for(&mut world, again, TcpState::Established, Duration::from_secs(1)));
}

#[test]
fn a_reset_from_the_peer_is_reported_as_reset() {
    let mut world = World::new();
    let stream = world.client.tcp_connect(lan(ECHO_PORT)).unwrap();
    assert!(wait_for(&mut world, stream, TcpState::Established, Duration::from_secs(1)));
    world.lan.reset_all_connections();
    assert!(wait_for(&mut world, stream, TcpState::Reset, Duration::from_secs(1)));
    assert_eq!(world.client.tcp_send(stream, b"x"), Err(Error::ConnectionReset(lan(ECHO_PORT))));
}

#[test]
fn what_the_peer_sent_before_its_reset_is_read_first_and_a_waiting_writer_learns_of_the_reset() {
    let mut world = World::new();
    let stream = world.client.tcp_connect(lan(ECHO_PORT)).unwrap();
    assert!(wait_for(&mut world, stream, TcpState::Established, Duration::from_secs(1)));
    // The answer arrives and waits unread, then the peer resets (a server that answers `413`
    // and closes at once, with our upload still coming).
    assert_eq!(world.client.tcp_send(stream, b"answer"), Ok(6));
    assert!(world.run_until(Duration::from_secs(1), |w| w.client.tcp_recv_queue(stream) == Ok(6)));
    world.lan.reset_all_connections();
    assert!(wait_for(&mut world, stream, TcpState::Reset, Duration::from_secs(1)));

    let reset = Err(Error::ConnectionReset(lan(ECHO_PORT)));
    assert_eq!(world.client.tcp_send_capacity(stream), reset, "a writer waiting for room must not wait forever");
    let mut buf = [0u8; 64];
    assert_eq!(world.client.tcp_recv(stream, &mut buf), Ok(6), "the answer is still read");
    assert_eq!(&buf[..6], b"answer");
    assert_eq!(world.client.tcp_recv(stream, &mut buf), reset, "then the reset");
}

#[test]
fn released_handles_are_invalid_and_their_ports_are_freed() {
    let mut world = World::new();
    let stream = world.client.tcp_connect(lan(ECHO_PORT)).unwrap();
    assert!(wait_for(&mut world, stream, TcpState::Established, Duration::from_secs(1)));
    world.client.tcp_release(stream).unwrap();
    assert_eq!(world.client.tcp_state(stream), Err(Error::UnknownHandle("TCP")));
    assert_eq!(world.client.tcp_release(stream), Err(Error::UnknownHandle("TCP")));
    assert_eq!(world.client.tcp_connection_count(), 1, "still closing in the background");
    world.run_for(Duration::from_millis(20));
    assert_eq!(world.client.tcp_connection_count(), 0, "closed gracefully and freed");
}

#[test]
fn a_released_connection_whose_peer_never_answers_is_freed_after_the_timeout() {
    let mut world = World::with_config(|c| {
        c.tcp_connect_timeout = Duration::from_secs(1);
        c.tcp_timeout = Duration::from_secs(2);
    });
    let stream = world.client.tcp_connect(SocketAddrV4::new(ABSENT_HOST, 80)).unwrap();
    world.run_for(Duration::from_millis(100));
    world.client.tcp_release(stream).unwrap();
    world.run_for(Duration::from_secs(3));
    assert_eq!(world.client.tcp_connection_count(), 0);
}

#[test]
fn an_upload_to_an_app_that_stops_reading_for_five_minutes_goes_on_when_it_reads_again() {
    // The app answers every probe of its closed window, so the connection is alive however
    // long the window stays closed, even when the page's timers fire a minute late (Chromium
    // wakes a tab hidden for five minutes once a minute).
    let mut world = World::new();
    world.client_timers_late_by = Duration::from_secs(60);
    let stream = world.client.tcp_connect(lan(SINK_PORT)).unwrap();
    assert!(wait_for(&mut world, stream, TcpState::Established, Duration::from_secs(5)));
    const TOTAL: u64 = 4 * 1024 * 1024;
    world.lan.sink_paused = true;
    let mut sent = 0;
    world.run_until(Duration::from_secs(5), |w| {
        sent = w.queue_upload(stream, sent, TOTAL);
        false
    });
    assert!(sent < TOTAL, "the app's window and the send buffer filled up ({sent} bytes queued)");

    world.run_for(Duration::from_secs(300));
    assert_eq!(world.client.tcp_state(stream), Ok(TcpState::Established), "alive after five closed minutes");

    world.lan.sink_paused = false;
    let finished = world.run_until(Duration::from_secs(60), |w| w.upload_to_the_sink(stream, &mut sent, TOTAL));
    assert!(finished, "the upload finished once the app read again, state {:?}", world.client.tcp_state(stream));
    assert_eq!(world.lan.sink_reports, vec![SinkReport { bytes: TOTAL, first_mismatch: None }]);
}

#[test]
fn a_released_upload_to_an_app_that_stopped_reading_is_freed_within_a_minute() {
    // The app answers every probe, so the connection itself would never time out; nobody
    // reads it any more, and its buffers are not held for longer than a minute.
    let mut world = World::new();
    let stream = world.client.tcp_connect(lan(SINK_PORT)).unwrap();
    assert!(wait_for(&mut world, stream, TcpState::Established, Duration::from_secs(5)));
    world.lan.sink_paused = true;
    let mut sent = 0;
    world.run_until(Duration::from_secs(5), |w| {
        sent = w.queue_upload(stream, sent, 4 * 1024 * 1024);
        false
    });
    world.client.tcp_release(stream).unwrap();
    world.run_for(Duration::from_secs(55));
    assert_eq!(world.client.tcp_connection_count(), 1, "still closing after 55 s");
    world.run_for(Duration::from_secs(6));
    assert_eq!(world.client.tcp_connection_count(), 0, "aborted and freed after a minute");
}

#[test]
fn unusable_destinations_are_refused_up_front() {
    let mut world = World::new();
    for target in [
        SocketAddrV4::new(LAN_HOST, 0),
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 80),
        SocketAddrV4::new(Ipv4Addr::BROADCAST, 80),
        SocketAddrV4::new(Ipv4Addr::new(224, 0, 0, 1), 80),
    ] {
        assert_eq!(world.client.tcp_connect(target), Err(Error::Unaddressable(target)));
    }
}

#[test]
fn the_connection_limit_is_enforced_with_a_typed_error() {
    let mut world = World::with_config(|c| c.max_tcp_sockets = 2);
    world.client.tcp_connect(lan(ECHO_PORT)).unwrap();
    world.client.tcp_connect(lan(ECHO_PORT)).unwrap();
    assert_eq!(world.client.tcp_connect(lan(ECHO_PORT)), Err(Error::TooMany("TCP connections")));
}

/// The SYN a fresh stack sends for a connection, as it would go into the tunnel.
fn first_syn(config: hometun_shared::netstack::NetConfig) -> Vec<u8> {
    use hometun_shared::netstack::NetStack;
    use hometun_shared::time::Instant;
    let now = Instant::from_millis(0);
    let mut stack = NetStack::new(config, now, 7).unwrap();
    stack.tcp_connect(lan(ECHO_PORT)).unwrap();
    stack.poll(now);
    let mut sent = Vec::new();
    stack.drain_transmit(|packet| sent.push(packet.to_vec()));
    assert_eq!(sent.len(), 1, "the SYN");
    sent.remove(0)
}

fn tcp_checksum_valid(packet: &[u8]) -> bool {
    use smoltcp::wire::{Ipv4Packet, TcpPacket};
    let ip = Ipv4Packet::new_checked(packet).unwrap();
    let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
    tcp.verify_checksum(&ip.src_addr().into(), &ip.dst_addr().into())
}

#[test]
fn tcp_checksums_are_left_out_only_for_a_relay_that_fills_them_in() {
    let mut config = hometun_shared::netstack::NetConfig::new(CLIENT, 24);
    assert!(tcp_checksum_valid(&first_syn(config.clone())), "by default every packet carries its checksum");
    config.tcp_checksum_offload = true;
    let syn = first_syn(config);
    assert!(!tcp_checksum_valid(&syn), "left for the relay's kernel to compute");
    assert_eq!(&syn[20 + 16..20 + 18], &[0, 0]);
}

#[test]
fn a_stack_that_leaves_checksums_out_still_checks_what_it_receives() {
    let mut world = World::with_config(|c| c.tcp_checksum_offload = true);
    // The simulated LAN takes the client's packets as the relay's kernel would: checksums done.
    world.fill_in_tcp_checksums = true;
    let stream = world.client.tcp_connect(lan(ECHO_PORT)).unwrap();
    assert!(wait_for(&mut world, stream, TcpState::Established, Duration::from_secs(1)));
    assert_eq!(world.client.tcp_send(stream, b"intact"), Ok(6));
    let mut reply = [0u8; 16];
    let mut got = 0;
    assert!(world.run_until(Duration::from_secs(1), |w| {
        got += w.client.tcp_recv(stream, &mut reply[got..]).unwrap();
        got == 6
    }));
    assert_eq!(&reply[..6], b"intact");

    // A reply broken on the LAN side is dropped, not delivered.
    world.corrupt_next_to_client = true;
    assert_eq!(world.client.tcp_send(stream, b"again"), Ok(5));
    world.run_for(Duration::from_millis(50));
    assert_eq!(world.client.tcp_recv(stream, &mut reply), Ok(0), "the corrupted copy never arrives");
}

/// Echoes `message` over a new connection to the LAN host; what came back, if it did within
/// a second.
fn echo_once(world: &mut World, message: &[u8]) -> Option<Vec<u8>> {
    let stream = world.client.tcp_connect(lan(ECHO_PORT)).unwrap();
    if !wait_for(world, stream, TcpState::Established, Duration::from_secs(1)) {
        return None;
    }
    assert_eq!(world.client.tcp_send(stream, message), Ok(message.len()));
    let mut reply = vec![0u8; message.len()];
    let mut got = 0;
    let done = world.run_until(Duration::from_secs(1), |w| {
        got += w.client.tcp_recv(stream, &mut reply[got..]).unwrap();
        got == message.len()
    });
    done.then_some(reply)
}

#[test]
fn a_stack_the_relay_vouches_to_takes_tcp_checksums_as_the_kernel_left_them() {
    // The relay leaves the checksum the LAN host's kernel left to compute as it is.
    let mut world = World::with_config(|c| c.tcp_checksum_checked = true);
    world.partial_tcp_checksums_to_client = true;
    assert_eq!(echo_once(&mut world, b"vouched").as_deref(), Some(&b"vouched"[..]));

    // A stack the relay said nothing to checks them, and takes none of those.
    let mut world = World::new();
    world.partial_tcp_checksums_to_client = true;
    assert_eq!(echo_once(&mut world, b"vouched"), None, "no connection on packets that do not add up");
}
