//! Keepalives and dead-peer detection on the virtual clock.

mod sim;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use hometun_shared::session::{End, Event, Session};
use hometun_shared::time::{Duration, Instant};
use sim::*;

const T0: Instant = Instant::ZERO;

fn pair() -> (Session, Session) {
    let mut relay = RelaySim::new(20);
    let mut device = Device::new(21);
    relay.devices.insert(device.secret.public_key());
    connect(&mut relay, &mut device, None, T0).unwrap()
}

/// Advances both sides to their next timer, moving whatever they send; returns the new time.
fn step(client: &mut Session, relay: &mut Session, now: Instant, deliver: bool) -> Instant {
    let next = [client.poll_timeout(), relay.poll_timeout()].into_iter().flatten().min().unwrap();
    assert!(next >= now, "timers never point into the past");
    for side in [&mut *client, &mut *relay] {
        side.handle_timeout(next);
    }
    if deliver {
        deliver_all(client, relay, next).unwrap();
        deliver_all(relay, client, next).unwrap();
    } else {
        while client.poll_transmit(next).is_some() {}
        while relay.poll_transmit(next).is_some() {}
    }
    next
}

#[test]
fn idle_sessions_stay_up_on_keepalives() {
    let (mut client, mut relay) = pair();
    let mut now = T0;
    while now < T0 + Duration::from_secs(600) {
        now = step(&mut client, &mut relay, now, true);
    }
    assert!(!client.is_closed() && !relay.is_closed());
    let keepalives = client.stats().records_out;
    assert!((35..=45).contains(&keepalives), "about one keepalive per 15 s, got {keepalives} in 10 min");
}

#[test]
fn a_silent_peer_is_declared_dead_after_the_timeout() {
    let (mut client, mut relay) = pair();
    let mut now = T0;
    while !relay.is_closed() {
        now = step(&mut client, &mut relay, now, false);
        assert!(now <= T0 + Duration::from_secs(60), "detected in bounded time");
    }
    assert_eq!(relay.end(), Some(&End::DeadPeer));
    let ends: Vec<_> = std::iter::from_fn(|| relay.poll_event()).filter(|e| matches!(e, Event::Closed(_))).collect();
    assert_eq!(ends, vec![Event::Closed(End::DeadPeer)], "the end is reported once");
    assert_eq!(now, T0 + Duration::from_secs(45));
}
