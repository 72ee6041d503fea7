//! Transport records: `[type][flags][counter u64 BE][ciphertext][tag]`, sealed in place.
//!
//! The header is the associated data and the counter is the nonce (Noise's ChaChaPoly nonce
//! layout). The transport is ordered, so the receiver accepts exactly the next counter and
//! nothing else. Keys are rotated with Noise's REKEY; the key phase bit tells the receiver
//! that the sender has moved to the next key. Old keys are overwritten (and zeroized on drop).

use super::aead::Cipher;
use crate::wire::{MessageType, RECORD_HEADER_LEN, TAG_LEN};
use zeroize::Zeroizing;

const PHASE_BIT: u8 = 1;

/// Why a record could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// Shorter than a header and a tag, or not a record, or unknown flags.
    Malformed,
    /// Not the next counter: a replay, a reordering or a gap.
    OutOfOrder { expected: u64, got: u64 },
    /// Authentication failed: tampered, or the wrong key.
    Forged,
    /// The peer's counter reached the limit.
    Exhausted,
}

/// One direction's key. The AEAD wipes its copy of the key on drop.
struct DirectionKey {
    cipher: Cipher,
    phase: bool,
}

impl DirectionKey {
    fn new(key: [u8; 32]) -> Self {
        let key = Zeroizing::new(key);
        Self { cipher: Cipher::new(&key), phase: false }
    }

    /// Noise's REKEY: the first 32 bytes of ENCRYPT(k, 2^64-1, "", zeros).
    fn next(&self) -> Self {
        let mut block = Zeroizing::new([0u8; 32]);
        let _tag = self.cipher.seal(u64::MAX, &[], &mut block[..]);
        let mut next = Self::new(*block);
        next.phase = !self.phase;
        next
    }
}

/// Seals outgoing records.
pub(crate) struct Sealer {
    key: DirectionKey,
    counter: u64,
    limit: u64,
}

impl Sealer {
    pub(crate) fn new(key: [u8; 32], limit: u64) -> Self {
        Self { key: DirectionKey::new(key), counter: 0, limit }
    }

    /// Counter of the next record.
    pub(crate) fn counter(&self) -> u64 {
        self.counter
    }

    /// Moves to the next key; the receiver follows when it sees the flipped phase.
    pub(crate) fn rekey(&mut self) {
        self.key = self.key.next();
    }

    /// Seals `buf` in place: its first [`RECORD_HEADER_LEN`] bytes are reserved for the header,
    /// the rest is plaintext; the tag is appended. `None` when the counter is exhausted.
    pub(crate) fn seal(&mut self, buf: &mut Vec<u8>) -> Option<()> {
        if self.counter >= self.limit {
            return None;
        }
        let counter = self.counter;
        self.counter += 1;
        buf[0] = MessageType::Record as u8;
        buf[1] = if self.key.phase { PHASE_BIT } else { 0 };
        buf[2..RECORD_HEADER_LEN].copy_from_slice(&counter.to_be_bytes());
        let (header, body) = buf.split_at_mut(RECORD_HEADER_LEN);
        let tag = self.key.cipher.seal(counter, header, body);
        buf.extend_from_slice(&tag);
        Some(())
    }
}

/// Opens incoming records.
pub(crate) struct Opener {
    key: DirectionKey,
    expected: u64,
    limit: u64,
}

impl Opener {
    pub(crate) fn new(key: [u8; 32], limit: u64) -> Self {
        Self { key: DirectionKey::new(key), expected: 0, limit }
    }

    /// Opens `message` in place and returns the plaintext and whether the peer changed keys.
    pub(crate) fn open<'a>(&mut self, message: &'a mut [u8]) -> Result<(&'a [u8], bool), OpenError> {
        if message.len() < RECORD_HEADER_LEN + TAG_LEN || message[0] != MessageType::Record as u8 {
            return Err(OpenError::Malformed);
        }
        let flags = message[1];
        if flags & !PHASE_BIT != 0 {
            return Err(OpenError::Malformed);
        }
        let got = u64::from_be_bytes(message[2..RECORD_HEADER_LEN].try_into().map_err(|_| OpenError::Malformed)?);
        if got != self.expected {
            return Err(OpenError::OutOfOrder { expected: self.expected, got });
        }
        if got >= self.limit {
            return Err(OpenError::Exhausted);
        }
        let phase = flags & PHASE_BIT != 0;
        let rekeyed = phase != self.key.phase;
        let next;
        let key = if rekeyed {
            next = self.key.next();
            &next
        } else {
            &self.key
        };
        let body_end = message.len() - TAG_LEN;
        let (header, rest) = message.split_at_mut(RECORD_HEADER_LEN);
        let (body, tag) = rest.split_at_mut(body_end - RECORD_HEADER_LEN);
        let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| OpenError::Malformed)?;
        key.cipher.open(got, header, body, tag).map_err(|_| OpenError::Forged)?;
        if rekeyed {
            self.key = self.key.next();
        }
        self.expected += 1;
        Ok((&message[RECORD_HEADER_LEN..body_end], rekeyed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn pair() -> (Sealer, Opener) {
        (Sealer::new([1; 32], 1000), Opener::new([1; 32], 1000))
    }

    fn record(sealer: &mut Sealer, text: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; RECORD_HEADER_LEN];
        buf.extend_from_slice(text);
        sealer.seal(&mut buf).unwrap();
        buf
    }

    #[test]
    fn a_sealed_record_opens_to_its_plaintext() {
        let (mut sealer, mut opener) = pair();
        let mut rec = record(&mut sealer, b"hello home");
        assert_eq!(rec.len(), RECORD_HEADER_LEN + 10 + TAG_LEN);
        assert_eq!(opener.open(&mut rec).unwrap(), (&b"hello home"[..], false));
    }

    #[test]
    fn rekeyed_records_open_and_old_phase_keys_are_gone() {
        let (mut sealer, mut opener) = pair();
        let mut first = record(&mut sealer, b"one");
        sealer.rekey();
        let mut second = record(&mut sealer, b"two");
        assert!(!opener.open(&mut first).unwrap().1);
        assert_eq!(opener.open(&mut second).unwrap(), (&b"two"[..], true));
        sealer.rekey();
        sealer.rekey();
        let mut fourth_key = record(&mut sealer, b"skipped a key");
        assert_eq!(opener.open(&mut fourth_key), Err(OpenError::Forged));
    }
}
