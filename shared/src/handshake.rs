//! The handshake that starts every session: Noise IKpsk2 through snow.
//!
//! ```text
//! client (Initiator)                          relay (Responder)
//!   hello = [1] e, es, s, ss {version, intent}  ->  read_hello: learns the device key + intent,
//!                                                    refuses before allocating anything, or
//!   handle_reply  <-  [2] e, ee, se, psk {}      <-  accept(psk)
//!   first record (keepalive)                    ->  Event::Established (keys confirmed)
//! ```
//! The PSK is the invite secret when enrolling and zeros otherwise, so an enrolling device
//! proves it holds the invite without the secret ever crossing the wire.

use crate::invite::{Invite, InviteId, InviteSecret, ID_LEN};
use crate::keys::{PublicKey, SecretKey, KEY_LEN};
use crate::noise::{self, NO_PSK, PSK_SLOT};
use crate::session::{Error, Malformed, Params, Refusal, Session};
use crate::time::Instant;
use crate::wire::MessageType;
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

const HELLO_VERSION: u8 = 1;
const INTENT_CONNECT: u8 = 0;
const INTENT_ENROL: u8 = 1;
/// Largest handshake message (hello with an enrolment payload, plus margin).
pub const MAX_HANDSHAKE_LEN: usize = 256;

/// What a client asks for in its hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// Connect with an already registered device key.
    Connect,
    /// Register this device key with the given invite.
    Enrol(InviteId),
}

/// What the relay learns from a hello before deciding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// The device's static key (authenticated by the Noise `ss` step, once the handshake ends).
    pub client_key: PublicKey,
    /// What the device asks for.
    pub intent: Intent,
}

/// The client's half of a handshake in progress.
pub struct Initiator {
    state: snow::HandshakeState,
    params: Params,
    relay_key: PublicKey,
    deadline: Instant,
}

impl Initiator {
    /// Starts a handshake with the relay whose key is `relay_key` and returns the hello to send.
    /// With `enrol`, the hello asks to register this device with that invite.
    pub fn start(
        client: &SecretKey,
        relay_key: &PublicKey,
        enrol: Option<&Invite>,
        params: &Params,
        now: Instant,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(Self, Vec<u8>), Error> {
        let mut state = noise::builder(rng)
            .local_private_key(client.expose_bytes())
            .and_then(|b| b.remote_public_key(relay_key.as_bytes()))
            .and_then(|b| b.build_initiator())
            .map_err(|_| Error::HandshakeFailed)?;
        let psk = enrol.map_or(&NO_PSK, |invite| &invite.secret.0);
        state.set_psk(PSK_SLOT, psk).map_err(|_| Error::HandshakeFailed)?;
        let mut payload = vec![HELLO_VERSION];
        match enrol {
            None => payload.push(INTENT_CONNECT),
            Some(invite) => {
                payload.push(INTENT_ENROL);
                payload.extend_from_slice(&invite.id.0);
            }
        }
        let hello = write_message(&mut state, MessageType::Hello, &payload)?;
        let initiator =
            Self { state, params: params.clone(), relay_key: *relay_key, deadline: now + params.handshake_timeout };
        Ok((initiator, hello))
    }

    /// When the handshake fails if no reply has come.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Reads the relay's reply (or refusal) and returns the established session, which already
    /// holds the client's first record (a keepalive that confirms its keys).
    pub fn handle_reply(mut self, now: Instant, reply: &[u8]) -> Result<Session, Error> {
        if now >= self.deadline {
            return Err(Error::HandshakeTimeout);
        }
        match MessageType::of(reply) {
            Some(MessageType::Refusal) => {
                let code = reply.get(1).copied().ok_or(Error::Malformed(Malformed::EmptyRefusal))?;
                return Err(Error::Refused(Refusal::from_code(code)));
            }
            Some(MessageType::Reply) => {}
            _ => return Err(Error::Malformed(Malformed::NotAReply)),
        }
        let mut payload = [0u8; MAX_HANDSHAKE_LEN];
        self.state.read_message(&reply[1..], &mut payload).map_err(|_| Error::HandshakeFailed)?;
        let (to_relay, to_client) = split(&mut self.state);
        let mut session = Session::new(*to_relay, *to_client, self.relay_key, &self.params, now, None);
        session.queue_keepalive();
        Ok(session)
    }
}

/// The relay's half of a handshake: a hello has been read, a decision is due.
pub struct Responder {
    state: snow::HandshakeState,
    client_key: PublicKey,
}

impl Responder {
    /// Reads a hello. Nothing is allocated for the device yet: look up [`Hello::client_key`]
    /// and [`Hello::intent`], then call [`Responder::accept`] or send [`refusal_message`].
    pub fn read_hello(relay: &SecretKey, hello: &[u8], rng: &mut impl CryptoRngCore) -> Result<(Self, Hello), Error> {
        if MessageType::of(hello) != Some(MessageType::Hello) {
            return Err(Error::Malformed(Malformed::NotAHello));
        }
        if hello.len() > MAX_HANDSHAKE_LEN {
            return Err(Error::Malformed(Malformed::HelloTooLong));
        }
        let mut state = noise::builder(rng)
            .local_private_key(relay.expose_bytes())
            .and_then(|b| b.build_responder())
            .map_err(|_| Error::HandshakeFailed)?;
        let mut payload = [0u8; MAX_HANDSHAKE_LEN];
        let len = state.read_message(&hello[1..], &mut payload).map_err(|_| Error::HandshakeFailed)?;
        let intent = match payload[..len] {
            [HELLO_VERSION, INTENT_CONNECT] => Intent::Connect,
            [HELLO_VERSION, INTENT_ENROL, ref id @ ..] => match <[u8; ID_LEN]>::try_from(id) {
                Ok(id) => Intent::Enrol(InviteId(id)),
                Err(_) => return Err(Error::Malformed(Malformed::UnknownIntent)),
            },
            [HELLO_VERSION, ..] => return Err(Error::Malformed(Malformed::UnknownIntent)),
            _ => return Err(Error::Refused(Refusal::Unsupported)),
        };
        let client_key = state
            .get_remote_static()
            .and_then(|key| <[u8; KEY_LEN]>::try_from(key).ok())
            .map(PublicKey::from_bytes)
            .ok_or(Error::HandshakeFailed)?;
        Ok((Self { state, client_key }, Hello { client_key, intent }))
    }

    /// Accepts the device and returns its session and the reply to send. `psk` is the invite's
    /// secret for [`Intent::Enrol`] and `None` for [`Intent::Connect`]. The device must send
    /// its first record within `params.handshake_timeout`, or the session fails.
    pub fn accept(
        mut self,
        psk: Option<&InviteSecret>,
        params: &Params,
        now: Instant,
    ) -> Result<(Session, Vec<u8>), Error> {
        let psk = psk.map_or(&NO_PSK, |secret| &secret.0);
        self.state.set_psk(PSK_SLOT, psk).map_err(|_| Error::HandshakeFailed)?;
        let reply = write_message(&mut self.state, MessageType::Reply, &[])?;
        let (to_relay, to_client) = split(&mut self.state);
        let session =
            Session::new(*to_client, *to_relay, self.client_key, params, now, Some(now + params.handshake_timeout));
        Ok((session, reply))
    }
}

/// The message that refuses a hello, to send before closing the connection.
pub fn refusal_message(reason: Refusal) -> Vec<u8> {
    vec![MessageType::Refusal as u8, reason.code()]
}

fn write_message(state: &mut snow::HandshakeState, kind: MessageType, payload: &[u8]) -> Result<Vec<u8>, Error> {
    let mut message = vec![0u8; MAX_HANDSHAKE_LEN];
    message[0] = kind as u8;
    let len = state.write_message(payload, &mut message[1..]).map_err(|_| Error::HandshakeFailed)?;
    message.truncate(1 + len);
    Ok(message)
}

type Key = Zeroizing<[u8; 32]>;

fn split(state: &mut snow::HandshakeState) -> (Key, Key) {
    let (to_responder, to_initiator) = state.dangerously_get_raw_split();
    (Zeroizing::new(to_responder), Zeroizing::new(to_initiator))
}
