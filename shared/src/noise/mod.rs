//! The cryptographic layer: the Noise handshake (through snow) and the record keys that follow.
//!
//! snow runs the handshake; its split gives one key per direction, which [`record`] uses with
//! ChaCha20-Poly1305 directly so records are sealed in place, with an explicit counter and a
//! key phase, like WireGuard's data messages.

mod aead;
pub(crate) mod record;
mod rng;

use crate::keys::KEY_LEN;
use rand_core::CryptoRngCore;

/// The Noise protocol: IK (the client knows the relay's key), PSK mixed at the end of message 2.
pub(crate) const PROTOCOL: &str = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";

/// Bound into every handshake, so another protocol or version cannot be replayed into this one.
pub(crate) const PROLOGUE: &[u8] = b"hometun/1";

/// The PSK slot of IKpsk2.
pub(crate) const PSK_SLOT: usize = 2;

/// The PSK used when connecting with an already enrolled key.
pub(crate) const NO_PSK: [u8; KEY_LEN] = [0; KEY_LEN];

/// A snow builder for our protocol, drawing its ephemeral key from the caller's RNG.
pub(crate) fn builder<'a>(rng: &mut impl CryptoRngCore) -> snow::Builder<'a> {
    let params = PROTOCOL.parse().expect("the protocol name is a valid Noise pattern");
    snow::Builder::with_resolver(params, Box::new(rng::CallerResolver::seeded_from(rng)))
        .prologue(PROLOGUE)
        .expect("the prologue is set once")
}
