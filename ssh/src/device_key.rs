//! The device's own SSH key: Ed25519, made in the browser from the system's randomness, kept
//! with the device (a [`KeyStore`]: `localStorage` of the tunnel origin in the page) as an
//! unencrypted OpenSSH private key. Its public half, one OpenSSH line, goes into a server's
//! `authorized_keys`. The private key is never logged; its text is zeroized after use.

use russh::keys::ssh_key::LineEnding;
use russh::keys::{Algorithm, PrivateKey};
use zeroize::Zeroizing;

use crate::error::SshError;

/// Where the device key lives.
pub trait KeyStore {
    /// The stored OpenSSH private key, if any.
    fn load(&self) -> Option<Zeroizing<String>>;
    /// Stores a new one.
    fn save(&self, openssh: &str) -> Result<(), SshError>;
}

/// The stored key, or a new one (stored) when there is none. `comment` names the key in its
/// public line (e.g. `hometun@home.example.net`).
pub fn load_or_create(store: &dyn KeyStore, comment: &str) -> Result<PrivateKey, SshError> {
    if let Some(text) = store.load() {
        return PrivateKey::from_openssh(text.as_bytes()).map_err(|e| {
            SshError::Key(format!("the stored SSH key cannot be read ({e}); remove it to make a new one"))
        });
    }
    let mut key = PrivateKey::random(&mut russh::keys::key::safe_rng(), Algorithm::Ed25519)
        .map_err(|e| SshError::Key(format!("making a key failed: {e}")))?;
    key.set_comment(comment);
    let text = key.to_openssh(LineEnding::LF).map_err(|e| SshError::Key(format!("encoding the key failed: {e}")))?;
    store.save(&text)?;
    Ok(key)
}

/// The public half as one OpenSSH line (`ssh-ed25519 AAAA… comment`), for `authorized_keys`.
pub fn public_line(key: &PrivateKey) -> String {
    key.public_key().to_openssh().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    #[derive(Default)]
    struct Memory(RefCell<Option<String>>);

    impl KeyStore for Memory {
        fn load(&self) -> Option<Zeroizing<String>> {
            self.0.borrow().clone().map(Zeroizing::new)
        }
        fn save(&self, openssh: &str) -> Result<(), SshError> {
            *self.0.borrow_mut() = Some(openssh.to_owned());
            Ok(())
        }
    }

    #[test]
    fn the_first_call_makes_and_stores_a_key_later_calls_return_the_same() {
        let store = Memory::default();
        let first = load_or_create(&store, "hometun@home.test").unwrap();
        assert!(store.0.borrow().as_deref().unwrap().starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
        let again = load_or_create(&store, "ignored").unwrap();
        assert_eq!(public_line(&first), public_line(&again));
        let line = public_line(&first);
        assert!(line.starts_with("ssh-ed25519 AAAA") && line.ends_with(" hometun@home.test"), "{line}");
    }

    #[test]
    fn two_devices_get_different_keys() {
        let (a, b) = (Memory::default(), Memory::default());
        assert_ne!(public_line(&load_or_create(&a, "x").unwrap()), public_line(&load_or_create(&b, "x").unwrap()));
    }

    #[test]
    fn an_unreadable_stored_key_is_an_error_not_a_silent_new_key() {
        let store = Memory::default();
        *store.0.borrow_mut() = Some("garbage".into());
        assert!(matches!(load_or_create(&store, "x"), Err(SshError::Key(_))));
        assert_eq!(store.0.borrow().as_deref(), Some("garbage"));
    }
}
