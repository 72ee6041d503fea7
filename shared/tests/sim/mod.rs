//! A simulated client and relay on a virtual clock, for the protocol scenarios.
#![allow(dead_code)]

use hometun_shared::control::ClientConfig;
use hometun_shared::handshake::{self, Initiator, Intent, Responder};
use hometun_shared::invite::Invite;
use hometun_shared::keys::{PublicKey, SecretKey};
use hometun_shared::session::{Error, Event, Params, Refusal, Session};
use hometun_shared::time::{Duration, Instant};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

pub(crate) fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// The relay's side of the world: its key, registered devices and invites.
pub(crate) struct RelaySim {
    pub secret: SecretKey,
    pub devices: HashSet<PublicKey>,
    pub invites: HashMap<[u8; 16], (Invite, Instant, bool)>,
    pub rng: ChaCha20Rng,
    pub params: Params,
}

impl RelaySim {
    pub(crate) fn new(seed: u64) -> Self {
        let mut rng = rng(seed);
        Self {
            secret: SecretKey::generate(&mut rng),
            devices: HashSet::new(),
            invites: HashMap::new(),
            rng,
            params: Params::default(),
        }
    }

    pub(crate) fn key(&self) -> PublicKey {
        self.secret.public_key()
    }

    pub(crate) fn invite(&mut self, expires: Instant) -> Invite {
        let invite = Invite::generate(self.key(), "https://home.example.net", &mut self.rng).unwrap();
        self.invites.insert(invite.id.0, (invite.clone(), expires, false));
        invite
    }

    /// What the relay does with a hello: refuse before allocating, or accept.
    pub(crate) fn answer(&mut self, now: Instant, hello: &[u8]) -> Result<(Session, Vec<u8>), Vec<u8>> {
        let (responder, hello): (Responder, _) = match Responder::read_hello(&self.secret, hello, &mut self.rng) {
            Ok(read) => read,
            Err(Error::Refused(reason)) => return Err(handshake::refusal_message(reason)),
            Err(_) => return Err(Vec::new()),
        };
        let psk = match hello.intent {
            Intent::Connect if self.devices.contains(&hello.client_key) => None,
            Intent::Connect => return Err(handshake::refusal_message(Refusal::UnknownDevice)),
            Intent::Enrol(id) => match self.invites.get(&id.0) {
                None => return Err(handshake::refusal_message(Refusal::InviteUnknown)),
                Some((_, expires, _)) if now >= *expires => {
                    return Err(handshake::refusal_message(Refusal::InviteExpired))
                }
                Some((_, _, true)) => return Err(handshake::refusal_message(Refusal::InviteUsed)),
                Some((invite, _, false)) => Some(invite.secret.clone()),
            },
        };
        let (session, reply) = responder.accept(psk.as_ref(), &self.params, now).map_err(|_| Vec::new())?;
        Ok((session, reply))
    }

    /// Registers the device once its first record has proven the keys.
    pub(crate) fn confirm(&mut self, session: &mut Session, enrolled_with: Option<&Invite>) -> bool {
        let mut established = false;
        while let Some(event) = session.poll_event() {
            established |= event == Event::Established;
        }
        if established {
            self.devices.insert(*session.remote_key());
            if let Some(invite) = enrolled_with {
                self.invites.get_mut(&invite.id.0).unwrap().2 = true;
            }
        }
        established
    }
}

include!("home_config.rs");

/// A client device.
pub(crate) struct Device {
    pub secret: SecretKey,
    pub rng: ChaCha20Rng,
    pub params: Params,
}

impl Device {
    pub(crate) fn new(seed: u64) -> Self {
        let mut rng = rng(seed);
        Self { secret: SecretKey::generate(&mut rng), rng, params: Params::default() }
    }

    pub(crate) fn hello(&mut self, relay: &PublicKey, invite: Option<&Invite>, now: Instant) -> (Initiator, Vec<u8>) {
        Initiator::start(&self.secret, relay, invite, &self.params, now, &mut self.rng).unwrap()
    }
}

/// Runs a whole handshake; returns (client session, relay session) or the client's error.
pub(crate) fn connect(
    relay: &mut RelaySim,
    device: &mut Device,
    invite: Option<&Invite>,
    now: Instant,
) -> Result<(Session, Session), Error> {
    let (initiator, hello) = device.hello(&relay.key(), invite, now);
    match relay.answer(now, &hello) {
        Ok((mut relay_session, reply)) => {
            let mut client = initiator.handle_reply(now, &reply)?;
            deliver_all(&mut client, &mut relay_session, now).expect("key confirmation arrives");
            relay.confirm(&mut relay_session, invite);
            Ok((client, relay_session))
        }
        Err(refusal) => Err(initiator.handle_reply(now, &refusal).unwrap_err()),
    }
}

/// Moves every queued message from `from` to `to`; returns the packets `to` received.
pub(crate) fn deliver_all(from: &mut Session, to: &mut Session, now: Instant) -> Result<Vec<Vec<u8>>, Error> {
    let mut packets = Vec::new();
    while let Some(mut message) = from.poll_transmit(now) {
        packets.extend(to.handle_message(now, &mut message)?.map(<[u8]>::to_vec));
    }
    Ok(packets)
}

/// A packet of `len` bytes whose content encodes `n`.
pub(crate) fn packet(n: u32, len: usize) -> Vec<u8> {
    let mut p = vec![0x45u8; len.max(8)];
    p[4..8].copy_from_slice(&n.to_be_bytes());
    for (i, byte) in p.iter_mut().enumerate().skip(8) {
        *byte = (i as u32 ^ n) as u8;
    }
    p
}
