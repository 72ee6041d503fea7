//! Transport records between an established device and relay: what gets through and what
//! ends the session.

mod sim;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use hometun_shared::session::{CloseReason, ConnectionLost, End, Error, Event, Malformed, Params, Session};
use hometun_shared::time::{Duration, Instant};
use hometun_shared::wire::MAX_MESSAGE_LEN;
use sim::*;

const T0: Instant = Instant::ZERO;

fn pair_with(params: Params) -> (Session, Session) {
    let mut relay = RelaySim::new(10);
    relay.params = params.clone();
    let mut device = Device::new(11);
    device.params = params;
    relay.devices.insert(device.secret.public_key());
    connect(&mut relay, &mut device, None, T0).unwrap()
}

fn pair() -> (Session, Session) {
    pair_with(Params::default())
}

/// Three sealed records from the client (counters 1 to 3: its keepalive took 0).
fn three_records(client: &mut Session) -> Vec<Vec<u8>> {
    (1..=3)
        .map(|n| {
            client.send_packet(&packet(n, 100)).unwrap();
            client.poll_transmit(T0).unwrap()
        })
        .collect()
}

#[test]
fn packets_arrive_intact_and_in_order_batched_into_few_records() {
    let (mut client, mut relay) = pair();
    let sent: Vec<Vec<u8>> = (0..200).map(|n| packet(n, 1400)).collect();
    for p in &sent {
        client.send_packet(p).unwrap();
    }
    let records_before = client.stats().records_out;
    let received = deliver_all(&mut client, &mut relay, T0).unwrap();
    assert_eq!(received, sent);
    let records = client.stats().records_out - records_before;
    assert!(records <= 4, "200 packets of 1400 bytes should need ~3 records, took {records}");
    assert_eq!(relay.stats().packets_in, 200);
    assert_eq!(relay.stats().bytes_in, 200 * 1400);
}

#[test]
fn a_record_s_packets_can_be_found_in_place_and_given_headers_of_their_own() {
    let (mut client, mut relay) = pair();
    let sent = [packet(1, 20), packet(2, 1400), packet(3, 8), packet(4, 600)];
    for p in &sent {
        client.send_packet(p).unwrap();
    }
    client.send_encoded_control(&hometun_shared::control::encode_subscribe()).unwrap();
    client.send_packet(&packet(5, 300)).unwrap();
    let mut message = client.poll_transmit(T0).unwrap();
    assert!(client.poll_transmit(T0).is_none(), "one record holds all of them");

    let copy = message.clone();
    let positions: Vec<_> = relay.handle_message(T0, &mut message).unwrap().into_positions().collect();
    let opened = message.clone();
    let expected: Vec<Vec<u8>> = sent.iter().cloned().chain([packet(5, 300)]).collect();
    assert_eq!(positions.len(), expected.len(), "every packet, the control frame between them skipped");
    // As a relay does: each packet in turn goes out behind ten bytes of its own, written over
    // what lies in front of it.
    for (at, want) in positions.iter().zip(&expected) {
        assert!(at.start >= 10, "room in front of the packet at {at:?}");
        message[at.start - 10..at.start].fill(0xEE);
        let framed = &message[at.start - 10..at.end];
        assert_eq!((&framed[..10], &framed[10..]), (&[0xEE; 10][..], &want[..]), "packet at {at:?}");
    }
    assert_ne!(copy, opened, "opened in place");
}

/// Each case alters the record stream in flight and names the error that must end the session.
#[test]
fn altered_records_end_the_session_with_the_right_error() {
    type Alter = fn(Vec<Vec<u8>>) -> Vec<Vec<u8>>;
    let cases: [(&str, Alter, Error); 7] = [
        (
            "flipped ciphertext bit",
            |mut r| {
                r[0][15] ^= 1;
                r
            },
            Error::Forged,
        ),
        (
            "flipped tag bit",
            |mut r| {
                let n = r[0].len();
                r[0][n - 1] ^= 1;
                r
            },
            Error::Forged,
        ),
        (
            "flipped counter",
            |mut r| {
                r[0][9] ^= 1;
                r
            },
            Error::OutOfOrder { expected: 1, got: 0 },
        ),
        ("replayed record", |r| vec![r[0].clone(), r[0].clone()], Error::OutOfOrder { expected: 2, got: 1 }),
        ("reordered records", |r| vec![r[1].clone(), r[0].clone()], Error::OutOfOrder { expected: 1, got: 2 }),
        ("lost record", |r| vec![r[0].clone(), r[2].clone()], Error::OutOfOrder { expected: 2, got: 3 }),
        (
            "truncated record",
            |mut r| {
                r[0].truncate(20);
                r
            },
            Error::Malformed(Malformed::NotARecord),
        ),
    ];
    for (name, alter, expected) in cases {
        let (mut client, mut relay) = pair();
        let mut altered = alter(three_records(&mut client));
        let outcome = altered.iter_mut().map(|m| relay.handle_message(T0, m).map(|_| ())).find(Result::is_err);
        assert_eq!(outcome, Some(Err(expected.clone())), "case: {name}");
        let mut fresh = client.poll_transmit(T0).unwrap_or_else(|| vec![4; 40]);
        assert_eq!(relay.end(), Some(&End::Failed(expected.clone())), "case {name}");
        let ended = Error::Ended(Box::new(End::Failed(expected)));
        assert_eq!(relay.handle_message(T0, &mut fresh).err(), Some(ended), "case {name}: the end is sticky");
        assert!(relay.is_closed());
    }
}

#[test]
fn an_oversized_packet_is_dropped_not_sent() {
    let (mut client, mut relay) = pair();
    client.send_packet(&vec![0x45; 70_000]).unwrap();
    client.send_packet(&packet(1, 60)).unwrap();
    assert_eq!(client.stats().dropped_packets, 1);
    assert_eq!(deliver_all(&mut client, &mut relay, T0).unwrap(), vec![packet(1, 60)]);
}

#[test]
fn a_full_send_queue_drops_packets_instead_of_growing() {
    let (mut client, _relay) = pair_with(Params { max_queued_bytes: 64 * 1024, ..Params::default() });
    for n in 0..1000 {
        client.send_packet(&packet(n, 1400)).unwrap();
    }
    assert!(client.queued_bytes() <= 64 * 1024);
    assert!(client.stats().dropped_packets > 900);
    let sealed: usize = std::iter::from_fn(|| client.poll_transmit(T0)).map(|m| m.len()).sum();
    assert!(sealed <= 64 * 1024 + 1024, "queued {sealed} bytes");
    assert!(sealed <= MAX_MESSAGE_LEN * 2);
}

#[test]
fn the_counter_stops_before_it_runs_out() {
    let params = Params { reject_after_records: 3, ..Params::default() };
    let (mut client, mut relay) = pair_with(params);
    // The client's keepalive used counter 0; two more records fit.
    for n in 0..2 {
        client.send_packet(&packet(n, 100)).unwrap();
        let mut record = client.poll_transmit(T0).unwrap();
        assert_eq!(relay.handle_message(T0, &mut record).unwrap().len(), 1);
    }
    client.send_packet(&packet(9, 100)).unwrap();
    assert_eq!(client.poll_transmit(T0), None);
    assert_eq!(client.end(), Some(&End::Failed(Error::CounterExhausted)));
    assert_eq!(client.send_packet(&packet(10, 100)), Err(Error::Ended(Box::new(End::Failed(Error::CounterExhausted)))));
}

#[test]
fn keys_rotate_under_traffic_without_losing_a_packet() {
    let params = Params { rekey_after_bytes: 100_000, ..Params::default() };
    let (mut client, mut relay) = pair_with(params);
    let mut now = T0;
    let mut expected = Vec::new();
    let mut received = Vec::new();
    for n in 0..2000u32 {
        let p = packet(n, 1200);
        client.send_packet(&p).unwrap();
        expected.push(p);
        if n % 10 == 0 {
            now = now + Duration::from_millis(1);
            received.extend(deliver_all(&mut client, &mut relay, now).unwrap());
        }
    }
    received.extend(deliver_all(&mut client, &mut relay, now).unwrap());
    assert_eq!(received.len(), expected.len());
    assert!(received == expected, "every packet arrives, in order, intact");
    assert!(client.stats().rekeys_sent >= 20, "rekeyed {} times", client.stats().rekeys_sent);
    assert_eq!(relay.stats().rekeys_received, client.stats().rekeys_sent);
}

#[test]
fn keys_rotate_on_time_too() {
    let (mut client, mut relay) = pair();
    for tick in 1..=30u64 {
        let now = T0 + Duration::from_secs(tick * 10);
        client.send_packet(&packet(tick as u32, 100)).unwrap();
        relay.handle_timeout(now);
        assert_eq!(deliver_all(&mut client, &mut relay, now).unwrap(), vec![packet(tick as u32, 100)]);
        deliver_all(&mut relay, &mut client, now).unwrap();
    }
    assert_eq!(client.stats().rekeys_sent, 2, "120 s per key over 5 minutes");
}

#[test]
fn a_close_reaches_the_other_side_with_its_reason() {
    let (mut client, mut relay) = pair();
    while relay.poll_event().is_some() {}
    relay.close(CloseReason::Revoked);
    let closing = Error::Ended(Box::new(End::Closed(CloseReason::Revoked)));
    assert_eq!(relay.send_packet(&packet(1, 60)), Err(closing));
    deliver_all(&mut relay, &mut client, T0).unwrap();
    assert!(relay.is_closed());
    let relay_events: Vec<_> = std::iter::from_fn(|| relay.poll_event()).collect();
    assert_eq!(relay_events, vec![Event::Closed(End::Closed(CloseReason::Revoked))]);
    let events: Vec<_> = std::iter::from_fn(|| client.poll_event()).collect();
    assert_eq!(events, vec![Event::Established, Event::Closed(End::PeerClosed(CloseReason::Revoked))]);
    let peer_closed = Error::Ended(Box::new(End::PeerClosed(CloseReason::Revoked)));
    assert_eq!(client.send_packet(&packet(2, 60)), Err(peer_closed));
}

#[test]
fn a_session_ends_once_with_its_first_reason() {
    let (mut client, mut relay) = pair();
    relay.close(CloseReason::Shutdown);
    deliver_all(&mut relay, &mut client, T0).unwrap();
    client.connection_lost(ConnectionLost::Dropped);
    client.handle_timeout(T0 + Duration::from_secs(3600));
    let ends: Vec<_> = std::iter::from_fn(|| client.poll_event()).filter(|e| matches!(e, Event::Closed(_))).collect();
    assert_eq!(ends, vec![Event::Closed(End::PeerClosed(CloseReason::Shutdown))], "one end: the first");
    assert_eq!(client.end(), Some(&End::PeerClosed(CloseReason::Shutdown)));
    assert_eq!(client.poll_timeout(), None);
}
