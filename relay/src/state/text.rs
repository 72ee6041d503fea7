//! The serde edge of the state files: keys, invite ids and invite secrets are typed in memory
//! and text only in JSON. Use with `#[serde(with = "...")]`; a damaged value refuses the file
//! with the field's own error.

use serde::{de::Error as _, Deserialize, Deserializer, Serializer};
use std::borrow::Cow;

/// A [`hometun_shared::keys::PublicKey`] as its base64url text.
pub mod public_key {
    use super::*;
    use hometun_shared::keys::PublicKey;

    /// Writes the key's text form.
    pub fn serialize<S: Serializer>(key: &PublicKey, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(key)
    }

    /// Reads the key's text form.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PublicKey, D::Error> {
        let text = Cow::<'de, str>::deserialize(d)?;
        PublicKey::from_text(&text).map_err(D::Error::custom)
    }
}

/// A [`hometun_shared::invite::InviteId`] as hex.
pub mod invite_id {
    use super::*;
    use hometun_shared::invite::InviteId;

    /// Writes the id as hex.
    pub fn serialize<S: Serializer>(id: &InviteId, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&id.to_hex())
    }

    /// Reads the hex id.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<InviteId, D::Error> {
        let text = Cow::<'de, str>::deserialize(d)?;
        InviteId::from_hex(&text)
            .ok_or_else(|| D::Error::custom(format!("`{text}` is not an invite id (32 hex digits)")))
    }
}

/// A [`hometun_shared::invite::InviteSecret`] as base64url; the text is zeroized after use.
pub mod invite_secret {
    use super::*;
    use hometun_shared::invite::InviteSecret;
    use zeroize::Zeroizing;

    /// Writes the secret's text form.
    pub fn serialize<S: Serializer>(secret: &InviteSecret, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&Zeroizing::new(secret.to_text()))
    }

    /// Reads the secret's text form.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<InviteSecret, D::Error> {
        let text = Zeroizing::new(String::deserialize(d)?);
        InviteSecret::from_text(&text).ok_or_else(|| D::Error::custom("an invite secret is damaged"))
    }
}
