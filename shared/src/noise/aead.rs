//! The records' AEAD: ChaCha20-Poly1305 (RFC 8439) with Noise's nonce (four zero bytes, then
//! the counter little-endian).
//!
//! Natively the cipher is ring's, whose assembly seals a 64 KiB record about 2.3 times as fast
//! as the portable code on the machine the bench runs on (2.4 against 1.1 GB/s per core); in
//! the browser it is RustCrypto's `chacha20poly1305`. Both are the same function of key, nonce,
//! header and plaintext: a test seals with each and opens with the other. Either way a key is
//! wiped when it is dropped.

use crate::wire::TAG_LEN;

/// The key is right but the record is not: tampered with, or sealed under another key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Forged;

fn nonce(counter: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_le_bytes());
    n
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use native::Cipher;
#[cfg(target_arch = "wasm32")]
pub(crate) use portable::Cipher;

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use super::{nonce, Forged, TAG_LEN};
    use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, CHACHA20_POLY1305};

    /// ring's ChaCha20-Poly1305 under one key.
    pub(crate) struct Cipher(LessSafeKey);

    fn key(bytes: &[u8; 32]) -> LessSafeKey {
        LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, bytes).expect("32 bytes is ChaCha20's key length"))
    }

    impl Cipher {
        pub(crate) fn new(bytes: &[u8; 32]) -> Self {
            Self(key(bytes))
        }

        /// Encrypts `body` in place and returns the tag over `header` and the ciphertext.
        pub(crate) fn seal(&self, counter: u64, header: &[u8], body: &mut [u8]) -> [u8; TAG_LEN] {
            let tag = self
                .0
                .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce(counter)), Aad::from(header), body)
                .expect("records are far below the AEAD's length limit");
            let mut out = [0u8; TAG_LEN];
            out.copy_from_slice(tag.as_ref());
            out
        }

        /// Checks `tag` and decrypts `body` in place; on [`Forged`] `body` is not plaintext.
        pub(crate) fn open(
            &self,
            counter: u64,
            header: &[u8],
            body: &mut [u8],
            tag: [u8; TAG_LEN],
        ) -> Result<(), Forged> {
            self.0
                .open_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce(counter)),
                    Aad::from(header),
                    Tag::from(tag),
                    body,
                    0..,
                )
                .map(|_| ())
                .map_err(|_| Forged)
        }
    }

    /// ring keeps the key's words inside the value and does not clear them, so the value is
    /// overwritten in place by the all-zero key; `black_box` keeps that store from being
    /// dropped as dead.
    impl Drop for Cipher {
        fn drop(&mut self) {
            self.0 = key(&[0; 32]);
            std::hint::black_box(&self.0);
        }
    }
}

#[cfg(any(target_arch = "wasm32", test))]
mod portable {
    use super::{nonce, Forged, TAG_LEN};
    use chacha20poly1305::aead::AeadInPlace;
    use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Tag};

    /// RustCrypto's ChaCha20-Poly1305 under one key; it wipes its key when dropped.
    pub(crate) struct Cipher(ChaCha20Poly1305);

    impl Cipher {
        pub(crate) fn new(bytes: &[u8; 32]) -> Self {
            Self(ChaCha20Poly1305::new(bytes.into()))
        }

        pub(crate) fn seal(&self, counter: u64, header: &[u8], body: &mut [u8]) -> [u8; TAG_LEN] {
            self.0
                .encrypt_in_place_detached(&nonce(counter).into(), header, body)
                .expect("records are far below the AEAD's length limit")
                .into()
        }

        pub(crate) fn open(
            &self,
            counter: u64,
            header: &[u8],
            body: &mut [u8],
            tag: [u8; TAG_LEN],
        ) -> Result<(), Forged> {
            self.0
                .decrypt_in_place_detached(&nonce(counter).into(), header, body, Tag::from_slice(&tag))
                .map_err(|_| Forged)
        }
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::{native, portable, Forged};

    const KEY: [u8; 32] = [0x42; 32];

    #[test]
    fn the_native_and_the_browser_cipher_open_each_others_records() {
        let (ring, rust) = (native::Cipher::new(&KEY), portable::Cipher::new(&KEY));
        for len in [0usize, 1, 63, 64, 65, 1400, 65_535] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            let header = [1, 0, 0, 0, 0, 0, 0, 0, 0, len as u8];

            let mut by_ring = plain.clone();
            let tag = ring.seal(len as u64, &header, &mut by_ring);
            let mut by_rust = plain.clone();
            assert_eq!(rust.seal(len as u64, &header, &mut by_rust), tag, "{len} bytes: same tag");
            assert_eq!(by_ring, by_rust, "{len} bytes: same ciphertext");

            rust.open(len as u64, &header, &mut by_ring, tag).unwrap();
            ring.open(len as u64, &header, &mut by_rust, tag).unwrap();
            assert_eq!((by_ring, by_rust), (plain.clone(), plain), "{len} bytes: both open to the plaintext");
        }
    }

    #[test]
    fn a_flipped_bit_anywhere_is_forged_for_both() {
        let (ring, rust) = (native::Cipher::new(&KEY), portable::Cipher::new(&KEY));
        let header = [1u8; 10];
        let mut body = b"turn on the porch light".to_vec();
        let tag = ring.seal(9, &header, &mut body);

        let mut bad_body = body.clone();
        bad_body[3] ^= 1;
        let mut bad_tag = tag;
        bad_tag[15] ^= 0x80;
        let mut bad_header = header;
        bad_header[0] ^= 4;
        type Open<'a> = Box<dyn Fn(u64, &[u8], &mut [u8], [u8; 16]) -> Result<(), Forged> + 'a>;
        let opens: [Open; 2] =
            [Box::new(|c, h, b, t| ring.open(c, h, b, t)), Box::new(|c, h, b, t| rust.open(c, h, b, t))];
        for cipher_open in opens {
            assert_eq!(cipher_open(9, &header, &mut bad_body.clone(), tag), Err(Forged));
            assert_eq!(cipher_open(9, &header, &mut body.clone(), bad_tag), Err(Forged));
            assert_eq!(cipher_open(9, &bad_header, &mut body.clone(), tag), Err(Forged));
            assert_eq!(cipher_open(10, &header, &mut body.clone(), tag), Err(Forged), "another counter");
            assert_eq!(cipher_open(9, &header, &mut body.clone(), tag), Ok(()));
        }
    }
}
