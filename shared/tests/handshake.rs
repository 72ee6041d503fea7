//! Handshake scenarios between a simulated device and relay, on a virtual clock.

mod sim;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use hometun_shared::handshake::{Initiator, Intent, Responder};
use hometun_shared::keys::SecretKey;
use hometun_shared::session::{End, Error, Event, Refusal};
use hometun_shared::time::{Duration, Instant};
use sim::*;

const T0: Instant = Instant::ZERO;
fn day() -> Instant {
    T0 + Duration::from_secs(86_400)
}

#[test]
fn a_device_enrols_with_an_invite_then_connects_with_its_key() {
    let mut relay = RelaySim::new(1);
    let mut phone = Device::new(2);
    let invite = relay.invite(day());

    let (mut client, mut relay_side) = connect(&mut relay, &mut phone, Some(&invite), T0).expect("enrolment succeeds");
    assert!(relay.devices.contains(&phone.secret.public_key()), "the relay registered the device");
    assert_eq!(client.remote_key(), &relay.key());
    assert_eq!(relay_side.remote_key(), &phone.secret.public_key());

    relay_side.send_config(&home_config()).unwrap();
    deliver_all(&mut relay_side, &mut client, T0).unwrap();
    let events: Vec<_> = std::iter::from_fn(|| client.poll_event()).collect();
    assert_eq!(events, vec![Event::Established, Event::Config(home_config())]);

    let later = T0 + Duration::from_secs(60);
    connect(&mut relay, &mut phone, None, later).expect("the enrolled key connects without an invite");
}

#[test]
fn a_client_expecting_another_relay_key_fails_the_handshake() {
    let mut relay = RelaySim::new(1);
    let mut phone = Device::new(2);
    relay.devices.insert(phone.secret.public_key());
    let impostor_key = SecretKey::from_bytes([9; 32]).public_key();
    let (_initiator, hello) = phone.hello(&impostor_key, None, T0);
    assert_eq!(Responder::read_hello(&relay.secret, &hello, &mut relay.rng).err(), Some(Error::HandshakeFailed));
}

#[test]
fn an_unknown_key_is_refused_right_after_the_hello() {
    let mut relay = RelaySim::new(1);
    let mut stranger = Device::new(3);
    let (_, hello) = stranger.hello(&relay.key(), None, T0);
    let (_responder, read) = Responder::read_hello(&relay.secret, &hello, &mut relay.rng).unwrap();
    assert_eq!(read.intent, Intent::Connect);
    assert_eq!(read.client_key, stranger.secret.public_key(), "the relay knows whom to refuse before allocating");
    assert_eq!(connect(&mut relay, &mut stranger, None, T0).err(), Some(Error::Refused(Refusal::UnknownDevice)));
}

#[test]
fn an_expired_invite_is_refused() {
    let mut relay = RelaySim::new(1);
    let invite = relay.invite(T0 + Duration::from_secs(60));
    let late = T0 + Duration::from_secs(61);
    assert_eq!(
        connect(&mut relay, &mut Device::new(2), Some(&invite), late).err(),
        Some(Error::Refused(Refusal::InviteExpired))
    );
    assert!(relay.devices.is_empty());
}

#[test]
fn an_invite_works_once() {
    let mut relay = RelaySim::new(1);
    let invite = relay.invite(day());
    connect(&mut relay, &mut Device::new(2), Some(&invite), T0).unwrap();
    let second = connect(&mut relay, &mut Device::new(3), Some(&invite), T0);
    assert_eq!(second.err(), Some(Error::Refused(Refusal::InviteUsed)));
    assert_eq!(relay.devices.len(), 1);
}

#[test]
fn a_wrong_invite_secret_never_gets_a_device_registered() {
    let mut relay = RelaySim::new(1);
    let invite = relay.invite(day());
    let mut forged = invite.clone();
    forged.secret.0[0] ^= 1;
    let mut device = Device::new(2);
    let (initiator, hello) = device.hello(&relay.key(), Some(&forged), T0);
    let (_relay_session, reply) = relay.answer(T0, &hello).expect("the relay cannot tell before key confirmation");
    assert_eq!(initiator.handle_reply(T0, &reply).err(), Some(Error::HandshakeFailed));
    assert!(relay.devices.is_empty());
}

#[test]
fn tampered_handshake_messages_fail() {
    let mut relay = RelaySim::new(1);
    let mut phone = Device::new(2);
    relay.devices.insert(phone.secret.public_key());
    for byte in [1usize, 40, 80, 98] {
        let (_, mut hello) = phone.hello(&relay.key(), None, T0);
        hello[byte] ^= 0x20;
        assert!(Responder::read_hello(&relay.secret, &hello, &mut relay.rng).is_err(), "hello byte {byte}");
    }
    for byte in [1usize, 33, 40] {
        let (initiator, hello) = phone.hello(&relay.key(), None, T0);
        let (_, mut reply) = relay.answer(T0, &hello).unwrap();
        reply[byte] ^= 0x20;
        assert_eq!(initiator.handle_reply(T0, &reply).err(), Some(Error::HandshakeFailed), "reply byte {byte}");
    }
}

#[test]
fn garbage_hellos_are_refused_without_panicking() {
    let mut relay = RelaySim::new(1);
    let inputs: [&[u8]; 5] = [&[], &[1], &[1; 40], &[2; 100], &[1; 4000]];
    for input in inputs {
        assert!(Responder::read_hello(&relay.secret, input, &mut relay.rng).is_err());
    }
}

#[test]
fn a_handshake_has_a_deadline_on_both_sides() {
    let mut relay = RelaySim::new(1);
    let mut phone = Device::new(2);
    relay.devices.insert(phone.secret.public_key());
    let (initiator, hello): (Initiator, _) = phone.hello(&relay.key(), None, T0);
    assert_eq!(initiator.deadline(), T0 + Duration::from_secs(10));
    let (mut relay_side, reply) = relay.answer(T0, &hello).unwrap();
    let too_late = T0 + Duration::from_secs(10);
    assert_eq!(initiator.handle_reply(too_late, &reply).err(), Some(Error::HandshakeTimeout));
    assert_eq!(relay_side.poll_timeout(), Some(too_late), "the relay waits for key confirmation until the deadline");
    relay_side.handle_timeout(too_late);
    assert_eq!(relay_side.end(), Some(&End::Failed(Error::HandshakeTimeout)));
}
