//! Invites: how a new browser enrols with a relay.
//!
//! An invite carries the relay's public key (so the client authenticates the relay from the
//! first message), an invite id, a 32-byte secret and the relay's URL. It travels in the URL
//! fragment (`https://home.example/#invite=...`), which browsers never send to a server. The
//! secret never crosses the wire: the client proves it holds it by using it as the Noise PSK.
//! Single use and expiry are enforced by the relay, which stores the invite.

use crate::keys::{PublicKey, KEY_LEN};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use core::fmt;
use rand_core::CryptoRngCore;
use zeroize::{Zeroize, ZeroizeOnDrop};

const VERSION: u8 = 1;
/// Length of an invite id.
pub const ID_LEN: usize = 16;
/// Length of an invite secret.
pub const SECRET_LEN: usize = 32;
/// Longest relay URL an invite may carry.
pub const MAX_URL_LEN: usize = 512;
const FIXED_LEN: usize = 1 + KEY_LEN + ID_LEN + SECRET_LEN;

/// Why an invite link was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InviteError {
    /// The code is not base64url.
    #[error("invite code is not base64url text; copy the whole link again")]
    NotBase64,
    /// The code is too short or too long to be an invite.
    #[error("invite code is cut short or too long; copy the whole link again")]
    WrongLength,
    /// The invite was made by a newer or unknown version of hometun.
    #[error("invite version {0} is not supported by this client; update hometun")]
    UnsupportedVersion(u8),
    /// The relay URL inside is not UTF-8.
    #[error("invite carries a relay URL that is not text")]
    BadUrl,
}

/// Identifies an invite on the relay (not secret).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InviteId(pub [u8; ID_LEN]);

impl InviteId {
    /// Hex text form, used as the key in the relay's invite store.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses the hex text form.
    pub fn from_hex(text: &str) -> Option<Self> {
        if text.len() != ID_LEN * 2 || !text.is_ascii() {
            return None;
        }
        let mut id = [0u8; ID_LEN];
        for (i, byte) in id.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Self(id))
    }
}

impl fmt::Debug for InviteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InviteId({})", self.to_hex())
    }
}

/// The invite's secret: the Noise PSK of the enrolment handshake. Never logged.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct InviteSecret(pub [u8; SECRET_LEN]);

impl InviteSecret {
    /// Text form for the relay's invite store. Treat as secret.
    pub fn to_text(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// Parses [`InviteSecret::to_text`].
    pub fn from_text(text: &str) -> Option<Self> {
        let mut bytes = URL_SAFE_NO_PAD.decode(text.trim()).ok()?;
        let secret = <[u8; SECRET_LEN]>::try_from(bytes.as_slice()).ok().map(InviteSecret);
        bytes.zeroize();
        secret
    }
}

impl fmt::Debug for InviteSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InviteSecret(<redacted>)")
    }
}

/// Everything a browser needs to enrol with a relay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invite {
    /// The relay's static public key.
    pub relay_key: PublicKey,
    /// Which invite this is, on the relay.
    pub id: InviteId,
    /// The secret proven in the handshake.
    pub secret: InviteSecret,
    /// The relay's public URL, e.g. `https://home.example.net`.
    pub url: String,
}

impl Invite {
    /// Makes a new invite with a random id and secret. Fails when `url` is too long.
    pub fn generate(relay_key: PublicKey, url: &str, rng: &mut impl CryptoRngCore) -> Result<Self, InviteError> {
        if url.len() > MAX_URL_LEN {
            return Err(InviteError::WrongLength);
        }
        let mut id = [0u8; ID_LEN];
        let mut secret = [0u8; SECRET_LEN];
        rng.fill_bytes(&mut id);
        rng.fill_bytes(&mut secret);
        Ok(Self {
            relay_key,
            id: InviteId(id),
            secret: InviteSecret(secret),
            url: url.trim_end_matches('/').to_owned(),
        })
    }

    /// The code that follows `#invite=` in a link.
    pub fn to_code(&self) -> String {
        let mut bytes = Vec::with_capacity(FIXED_LEN + self.url.len());
        bytes.push(VERSION);
        bytes.extend_from_slice(self.relay_key.as_bytes());
        bytes.extend_from_slice(&self.id.0);
        bytes.extend_from_slice(&self.secret.0);
        bytes.extend_from_slice(self.url.as_bytes());
        let code = URL_SAFE_NO_PAD.encode(&bytes);
        bytes.zeroize();
        code
    }

    /// The whole link: `{url}/#invite={code}`.
    pub fn to_link(&self) -> String {
        format!("{}/#invite={}", self.url, self.to_code())
    }

    /// Parses a link, a fragment (`#invite=...` or `invite=...`) or a bare code.
    pub fn parse(text: &str) -> Result<Self, InviteError> {
        let text = text.trim();
        let code = match text.rfind("invite=") {
            Some(at) => &text[at + "invite=".len()..],
            None => text,
        };
        let code = code.split('&').next().unwrap_or_default();
        let mut bytes = URL_SAFE_NO_PAD.decode(code).map_err(|_| InviteError::NotBase64)?;
        let parsed = Self::from_bytes(&bytes);
        bytes.zeroize();
        parsed
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, InviteError> {
        let version = *bytes.first().ok_or(InviteError::WrongLength)?;
        if version != VERSION {
            return Err(InviteError::UnsupportedVersion(version));
        }
        if bytes.len() < FIXED_LEN || bytes.len() > FIXED_LEN + MAX_URL_LEN {
            return Err(InviteError::WrongLength);
        }
        let (key, rest) = bytes[1..].split_at(KEY_LEN);
        let (id, rest) = rest.split_at(ID_LEN);
        let (secret, url) = rest.split_at(SECRET_LEN);
        let url = core::str::from_utf8(url).map_err(|_| InviteError::BadUrl)?;
        Ok(Self {
            relay_key: PublicKey::from_bytes(key.try_into().map_err(|_| InviteError::WrongLength)?),
            id: InviteId(id.try_into().map_err(|_| InviteError::WrongLength)?),
            secret: InviteSecret(secret.try_into().map_err(|_| InviteError::WrongLength)?),
            url: url.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SecretKey;
    use rand_chacha::rand_core::SeedableRng;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn invite() -> Invite {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let relay = SecretKey::generate(&mut rng).public_key();
        Invite::generate(relay, "https://home.example.net/", &mut rng).unwrap()
    }

    #[test]
    fn a_link_parses_back_to_the_same_invite() {
        let invite = invite();
        let link = invite.to_link();
        assert!(link.starts_with("https://home.example.net/#invite="));
        assert_eq!(Invite::parse(&link).unwrap(), invite);
        assert_eq!(Invite::parse(&format!("#invite={}", invite.to_code())).unwrap(), invite);
        assert_eq!(Invite::parse(&invite.to_code()).unwrap(), invite);
    }

    #[test]
    fn the_secret_never_prints() {
        let invite = invite();
        assert!(!format!("{invite:?}").contains(&invite.secret.to_text()));
    }

    #[test]
    fn damaged_links_are_refused_with_a_reason() {
        let code = invite().to_code();
        assert_eq!(Invite::parse("#invite=@@@"), Err(InviteError::NotBase64));
        assert_eq!(Invite::parse(&code[..40]), Err(InviteError::WrongLength));
        let mut bytes = URL_SAFE_NO_PAD.decode(&code).unwrap();
        bytes[0] = 9;
        assert_eq!(Invite::parse(&URL_SAFE_NO_PAD.encode(&bytes)), Err(InviteError::UnsupportedVersion(9)));
        assert_eq!(Invite::parse(""), Err(InviteError::WrongLength));
    }

    #[test]
    fn invite_ids_have_a_hex_form() {
        let id = invite().id;
        assert_eq!(InviteId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(InviteId::from_hex("zz"), None);
    }
}
