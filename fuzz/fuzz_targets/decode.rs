//! Every decoder a stranger on the network (or a pasted link) can reach, on arbitrary bytes.
//! The first byte picks the decoder; none may panic or allocate without bound.
#![no_main]

use hometun_shared::control::ControlMessage;
use hometun_shared::handshake::{Initiator, Responder};
use hometun_shared::invite::Invite;
use hometun_shared::keys::SecretKey;
use hometun_shared::session::{Params, Session};
use hometun_shared::time::Instant;
use hometun_shared::wire::frame::{Frame, Frames};
use libfuzzer_sys::fuzz_target;
use rand_chacha::rand_core::SeedableRng;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    let relay = SecretKey::from_bytes([1; 32]);
    match selector % 6 {
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
        4 => {
            // An established session receiving the bytes as a record.
            let (_, mut receiver) = Session::fuzzing_pair(&Params::default());
            let mut record = rest.to_vec();
            let _ = receiver.handle_message(Instant::ZERO, &mut record).map(|packets| packets.count());
        }
        5 => {
            // The bytes as packets (a length byte before each): whatever the sender queues
            // arrives at the other end intact and in order.
            let (mut sender, mut receiver) = Session::fuzzing_pair(&Params::default());
            let mut queued = Vec::new();
            let mut input = rest;
            while let Some((&len, tail)) = input.split_first() {
                let (packet, tail) = tail.split_at(usize::from(len).min(tail.len()));
                input = tail;
                let before = sender.stats().packets_out;
                sender.send_packet(packet).unwrap();
                if sender.stats().packets_out > before {
                    queued.push(packet.to_vec());
                }
            }
            let mut arrived = Vec::new();
            while let Some(mut record) = sender.poll_transmit(Instant::ZERO) {
                let packets = receiver.handle_message(Instant::ZERO, &mut record).unwrap();
                arrived.extend(packets.map(<[u8]>::to_vec));
            }
            assert_eq!(arrived, queued);
        }
        _ => {
            // A client reading the bytes as the relay's handshake reply.
            let device = SecretKey::from_bytes([2; 32]);
            let params = Params::default();
            let (initiator, _) =
                Initiator::start(&device, &relay.public_key(), None, &params, Instant::ZERO, &mut rng).unwrap();
            let _ = initiator.handle_reply(Instant::ZERO, rest);
        }
    }
});
