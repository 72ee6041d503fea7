//! Every decoder a stranger on the network (or a pasted link) can reach, on arbitrary bytes.
//! The first byte picks the decoder; none may panic or allocate without bound.
#![no_main]

use hometun_shared::control::ControlMessage;
use hometun_shared::handshake::{Initiator, Responder};
use hometun_shared::invite::Invite;
use hometun_shared::keys::SecretKey;
use hometun_shared::session::Params;
use hometun_shared::time::Instant;
use hometun_shared::wire::frame::{Frame, Frames};
use libfuzzer_sys::fuzz_target;
use rand_chacha::rand_core::SeedableRng;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    let relay = SecretKey::from_bytes([1; 32]);
    match selector % 5 {
        0 => {
            for frame in Frames::new(rest) {
                if let Ok(Frame::Control(body)) = frame {
                    let _ = ControlMessage::decode(body);
                }
            }
        }
        1 => {
            let _ = ControlMessage::decode(rest);
        }
        2 => {
            let _ = Invite::parse(&String::from_utf8_lossy(rest));
        }
        3 => {
            let _ = Responder::read_hello(&relay, rest, &mut rng);
        }
        _ => {
            // An established session receiving the bytes as a record, and a client reading
            // them as the handshake reply.
            let device = SecretKey::from_bytes([2; 32]);
            let params = Params::default();
            let (initiator, hello) = Initiator::start(&device, &relay.public_key(), None, &params, Instant::ZERO, &mut rng).unwrap();
            let (responder, _) = Responder::read_hello(&relay, &hello, &mut rng).unwrap();
            let (mut session, reply) = responder.accept(None, &params, Instant::ZERO).unwrap();
            let mut record = rest.to_vec();
            let _ = session.handle_message(Instant::ZERO, &mut record).map(|packets| packets.count());
            let _ = initiator.handle_reply(Instant::ZERO, rest);
            let _ = reply;
        }
    }
});
