//! The device profile: this browser's static key and the relay it belongs to.
//!
//! Stored in IndexedDB as one line of text, the same text the user can export to move the
//! device to another browser (`hometun-device-1.<base64url>`). It contains the secret key:
//! the page shows it only on request and warns that it is a password.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hometun_shared::keys::{PublicKey, SecretKey, KEY_LEN};
use zeroize::Zeroize;

const PREFIX: &str = "hometun-device-1.";

/// Why an exported profile could not be imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// Not text produced by `exportDevice()`.
    #[error("this is not an exported hometun device (it should start with {PREFIX})")]
    NotAProfile,
    /// Cut short or damaged.
    #[error("the exported device text is damaged; copy all of it again")]
    Damaged,
}

/// Who this browser is and where its relay lives.
#[derive(Clone, Debug)]
pub struct Profile {
    /// The device's static secret (redacted in `Debug`, zeroized on drop).
    pub secret: SecretKey,
    /// The relay's static public key.
    pub relay_key: PublicKey,
    /// The relay's URL, e.g. `https://home.example.net`.
    pub relay_url: String,
}

impl Profile {
    /// The WebSocket URL of the relay's tunnel endpoint.
    pub fn socket_url(&self) -> String {
        socket_url(&self.relay_url)
    }

    /// Text form for storage and export. Treat as a password.
    pub fn to_text(&self) -> String {
        let mut bytes = Vec::with_capacity(2 * KEY_LEN + self.relay_url.len());
        bytes.extend_from_slice(self.secret.expose_bytes());
        bytes.extend_from_slice(self.relay_key.as_bytes());
        bytes.extend_from_slice(self.relay_url.as_bytes());
        let text = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(&bytes));
        bytes.zeroize();
        text
    }

    /// Parses [`Profile::to_text`].
    pub fn from_text(text: &str) -> Result<Self, ProfileError> {
        let code = text.trim().strip_prefix(PREFIX).ok_or(ProfileError::NotAProfile)?;
        let mut bytes = URL_SAFE_NO_PAD.decode(code).map_err(|_| ProfileError::Damaged)?;
        let parsed = Self::from_bytes(&bytes);
        bytes.zeroize();
        parsed
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, ProfileError> {
        if bytes.len() <= 2 * KEY_LEN {
            return Err(ProfileError::Damaged);
        }
        let (secret, rest) = bytes.split_at(KEY_LEN);
        let (relay_key, url) = rest.split_at(KEY_LEN);
        let url = core::str::from_utf8(url).map_err(|_| ProfileError::Damaged)?;
        Ok(Self {
            secret: SecretKey::from_bytes(secret.try_into().map_err(|_| ProfileError::Damaged)?),
            relay_key: PublicKey::from_bytes(relay_key.try_into().map_err(|_| ProfileError::Damaged)?),
            relay_url: url.to_owned(),
        })
    }
}

/// Path of the relay's WebSocket endpoint.
pub const SOCKET_PATH: &str = "/tunnel";

/// Maps the relay's page URL to its WebSocket URL: `https` becomes `wss`, `http` becomes `ws`.
pub fn socket_url(relay_url: &str) -> String {
    let url = relay_url.trim().trim_end_matches('/');
    let (scheme, rest) = match url.split_once("://") {
        Some(("http", rest)) => ("ws", rest),
        Some(("ws", rest)) => ("ws", rest),
        Some((_, rest)) => ("wss", rest),
        None => ("wss", url),
    };
    format!("{scheme}://{rest}{SOCKET_PATH}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> Profile {
        Profile {
            secret: SecretKey::from_bytes([7; 32]),
            relay_key: PublicKey::from_bytes([9; 32]),
            relay_url: "https://home.example.net:8443".into(),
        }
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn an_exported_device_imports_back() {
        let text = profile().to_text();
        assert!(text.starts_with("hometun-device-1."));
        let back = Profile::from_text(&format!("  {text}\n")).unwrap();
        assert_eq!(back.secret.expose_bytes(), &[7; 32]);
        assert_eq!(back.relay_key, PublicKey::from_bytes([9; 32]));
        assert_eq!(back.relay_url, "https://home.example.net:8443");
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn the_secret_does_not_print_in_debug() {
        assert!(format!("{:?}", profile()).contains("<redacted>"));
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn damaged_exports_are_refused() {
        assert_eq!(Profile::from_text("hello").unwrap_err(), ProfileError::NotAProfile);
        assert_eq!(Profile::from_text("hometun-device-1.AAAA").unwrap_err(), ProfileError::Damaged);
        assert_eq!(Profile::from_text("hometun-device-1.@@").unwrap_err(), ProfileError::Damaged);
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn the_socket_url_follows_the_page_scheme() {
        assert_eq!(socket_url("https://home.example.net/"), "wss://home.example.net/tunnel");
        assert_eq!(socket_url("http://127.0.0.1:8080"), "ws://127.0.0.1:8080/tunnel");
        assert_eq!(socket_url("home.example.net"), "wss://home.example.net/tunnel");
    }
}
