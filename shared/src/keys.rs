//! Static X25519 key pairs: the identity of a relay or a client device.
//!
//! Text form is unpadded base64url (43 characters), used in config files and invite links.
//! Secrets are zeroized on drop and print as `<redacted>`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use blake2::{Blake2s256, Digest};
use core::fmt;
use core::str::FromStr;
use rand_core::CryptoRngCore;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length of a key in bytes.
pub const KEY_LEN: usize = 32;

/// Why a key in text form was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The text is not unpadded base64url.
    #[error("key is not base64url text (expected 43 characters of A-Z a-z 0-9 - _)")]
    NotBase64,
    /// The text decodes to the wrong number of bytes.
    #[error("key has {0} bytes; an X25519 key has 32")]
    WrongLength(usize),
}

/// A static X25519 secret key. Never logged, zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey([u8; KEY_LEN]);

impl SecretKey {
    /// Draws a new secret key from `rng`.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut bytes = [0u8; KEY_LEN];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Wraps raw secret bytes (clamping happens inside X25519).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw secret, for the handshake and for storage. Handle with care.
    pub fn expose_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The public key that belongs to this secret.
    pub fn public_key(&self) -> PublicKey {
        let secret = x25519_dalek::StaticSecret::from(self.0);
        PublicKey(x25519_dalek::PublicKey::from(&secret).to_bytes())
    }

    /// Text form for a key file. Treat the result as secret.
    pub fn to_text(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// Parses the text form written by [`SecretKey::to_text`].
    pub fn from_text(text: &str) -> Result<Self, KeyError> {
        let mut bytes = decode_key(text)?;
        let key = Self(bytes);
        bytes.zeroize();
        Ok(key)
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// A static X25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey([u8; KEY_LEN]);

impl PublicKey {
    /// Wraps raw public key bytes.
    pub const fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw key.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Text form (unpadded base64url).
    pub fn to_text(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// Parses the text form.
    pub fn from_text(text: &str) -> Result<Self, KeyError> {
        decode_key(text).map(PublicKey)
    }

    /// A short digest (16 hex digits) for listings and logs; not reversible to the key.
    pub fn fingerprint(&self) -> String {
        let digest = Blake2s256::new_with_prefix(b"hometun fingerprint").chain_update(self.0).finalize();
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.fingerprint())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        Self::from_text(s)
    }
}

fn decode_key(text: &str) -> Result<[u8; KEY_LEN], KeyError> {
    let mut decoded = URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| KeyError::NotBase64)?;
    let result = <[u8; KEY_LEN]>::try_from(decoded.as_slice()).map_err(|_| KeyError::WrongLength(decoded.len()));
    decoded.zeroize();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn text_forms_round_trip() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let secret = SecretKey::generate(&mut rng);
        let again = SecretKey::from_text(&secret.to_text()).unwrap();
        assert_eq!(again.expose_bytes(), secret.expose_bytes());
        let public = secret.public_key();
        assert_eq!(public.to_text().len(), 43);
        assert_eq!(public.to_text().parse::<PublicKey>().unwrap(), public);
    }

    #[test]
    fn secrets_never_print() {
        let secret = SecretKey::from_bytes([7; 32]);
        let shown = format!("{secret:?}");
        assert_eq!(shown, "SecretKey(<redacted>)");
        assert!(!shown.contains(&secret.to_text()));
    }

    #[test]
    fn bad_text_is_refused_with_a_reason() {
        assert_eq!(PublicKey::from_text("not base64!"), Err(KeyError::NotBase64));
        assert_eq!(PublicKey::from_text("AAAA"), Err(KeyError::WrongLength(3)));
    }
}
