//! Host keys trusted on first use, pinned per `host:port`.
//!
//! The pins are one JSON object, `{"192.168.0.10:22": "ssh-ed25519 AAAA…", …}` (OpenSSH
//! one-line public keys without comment), kept by a [`PinStore`] (the browser's `localStorage`
//! on the tunnel origin in the page). [`check`] compares the key a server offers with its pin:
//! an unknown target may be trusted (by the caller's choice), a changed key never is.

use russh::keys::{HashAlg, PublicKey};

use crate::error::SshError;

/// Where the pins live.
pub trait PinStore: Send + Sync {
    /// The whole pin object as stored, if any.
    fn load(&self) -> Option<String>;
    /// Replaces the stored pin object; fails (saying why, for the user) when it cannot.
    fn save(&self, pins: &str) -> Result<(), String>;
}

/// What the pin says about an offered host key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The offered key is the pinned one.
    Known,
    /// Nothing is pinned for this target yet.
    New {
        /// The offered key's SHA-256 fingerprint (`SHA256:…`).
        fingerprint: String,
    },
    /// Another key is pinned: the server's key changed, or someone is in between.
    Changed {
        /// The pinned key's fingerprint.
        old: String,
        /// The offered key's fingerprint.
        new: String,
    },
}

/// The SHA-256 fingerprint of `key` as OpenSSH prints it (`SHA256:…`, base64 without padding).
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// `key` in OpenSSH one-line form without comment.
fn one_line(key: &PublicKey) -> String {
    let mut key = key.clone();
    key.set_comment("");
    key.to_openssh().unwrap_or_default().trim().to_owned()
}

fn pins(store: &dyn PinStore) -> serde_json::Map<String, serde_json::Value> {
    store
        .load()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|value| value.as_object().cloned())
        .unwrap_or_default()
}

/// Compares `offered` with the pin of `target` (`host:port`). A pin that is no longer a
/// readable key counts as changed (never silently replaced).
pub fn check(store: &dyn PinStore, target: &str, offered: &PublicKey) -> Verdict {
    let new = fingerprint(offered);
    let Some(pinned) = pins(store).get(target).and_then(|v| v.as_str().map(str::to_owned)) else {
        return Verdict::New { fingerprint: new };
    };
    match PublicKey::from_openssh(&pinned) {
        Ok(old) if old.key_data() == offered.key_data() => Verdict::Known,
        Ok(old) => Verdict::Changed { old: fingerprint(&old), new },
        Err(_) => Verdict::Changed { old: "(unreadable pin)".to_owned(), new },
    }
}

/// Pins `key` for `target`, replacing any earlier pin. Fails with
/// [`SshError::PinsNotSaved`] when the store cannot keep it.
pub fn pin(store: &dyn PinStore, target: &str, key: &PublicKey) -> Result<(), SshError> {
    let mut all = pins(store);
    all.insert(target.to_owned(), serde_json::Value::String(one_line(key)));
    save(store, target, all)
}

/// Forgets the pin of `target`; returns whether there was one. Fails with
/// [`SshError::PinsNotSaved`] (the pin stays) when the store cannot keep the change.
pub fn forget(store: &dyn PinStore, target: &str) -> Result<bool, SshError> {
    let mut all = pins(store);
    let had = all.remove(target).is_some();
    if had {
        save(store, target, all)?;
    }
    Ok(had)
}

fn save(store: &dyn PinStore, target: &str, all: serde_json::Map<String, serde_json::Value>) -> Result<(), SshError> {
    store
        .save(&serde_json::Value::Object(all).to_string())
        .map_err(|reason| SshError::PinsNotSaved { target: target.to_owned(), reason })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use russh::keys::{Algorithm, PrivateKey};

    use super::*;

    #[derive(Default)]
    struct Memory(Mutex<Option<String>>);

    impl PinStore for Memory {
        fn load(&self) -> Option<String> {
            self.0.lock().unwrap().clone()
        }
        fn save(&self, pins: &str) -> Result<(), String> {
            *self.0.lock().unwrap() = Some(pins.to_owned());
            Ok(())
        }
    }

    /// A store that keeps what it has but takes nothing more (storage full).
    #[derive(Default)]
    struct Full(Memory);

    impl PinStore for Full {
        fn load(&self) -> Option<String> {
            self.0.load()
        }
        fn save(&self, _pins: &str) -> Result<(), String> {
            Err("storage full".into())
        }
    }

    fn key() -> PublicKey {
        PrivateKey::random(&mut russh::keys::key::safe_rng(), Algorithm::Ed25519).unwrap().public_key().clone()
    }

    #[test]
    fn a_first_seen_key_is_new_then_known_once_pinned() {
        let (store, k) = (Memory::default(), key());
        assert_eq!(check(&store, "192.168.0.10:22", &k), Verdict::New { fingerprint: fingerprint(&k) });
        pin(&store, "192.168.0.10:22", &k).unwrap();
        assert_eq!(check(&store, "192.168.0.10:22", &k), Verdict::Known);
        assert!(fingerprint(&k).starts_with("SHA256:"), "{}", fingerprint(&k));
    }

    #[test]
    fn another_key_for_a_pinned_target_is_a_change_naming_both_fingerprints() {
        let (store, old, new) = (Memory::default(), key(), key());
        pin(&store, "192.168.0.10:22", &old).unwrap();
        let verdict = check(&store, "192.168.0.10:22", &new);
        assert_eq!(verdict, Verdict::Changed { old: fingerprint(&old), new: fingerprint(&new) });
    }

    #[test]
    fn pins_are_per_host_and_port() {
        let (store, a, b) = (Memory::default(), key(), key());
        pin(&store, "192.168.0.10:22", &a).unwrap();
        assert!(matches!(check(&store, "192.168.0.10:2222", &b), Verdict::New { .. }));
        assert!(matches!(check(&store, "192.168.0.20:22", &a), Verdict::New { .. }));
    }

    #[test]
    fn forgetting_a_pin_makes_the_next_key_new() {
        let (store, old, new) = (Memory::default(), key(), key());
        pin(&store, "h:22", &old).unwrap();
        assert_eq!(forget(&store, "h:22"), Ok(true));
        assert_eq!(forget(&store, "h:22"), Ok(false));
        assert!(matches!(check(&store, "h:22", &new), Verdict::New { .. }));
    }

    #[test]
    fn an_unreadable_store_or_pin_never_passes_as_known() {
        let (store, k) = (Memory::default(), key());
        store.save("not json").unwrap();
        assert!(matches!(check(&store, "h:22", &k), Verdict::New { .. }));
        store.save(r#"{"h:22": "ssh-ed25519 garbage"}"#).unwrap();
        assert!(matches!(check(&store, "h:22", &k), Verdict::Changed { .. }));
    }

    #[test]
    fn a_store_that_cannot_save_changes_nothing_and_says_so() {
        let (store, old, new) = (Full::default(), key(), key());
        store.0.save(&format!(r#"{{"h:22": "{}"}}"#, one_line(&old))).unwrap();
        let refused = pin(&store, "h:2222", &new);
        assert!(
            matches!(&refused, Err(SshError::PinsNotSaved { target, reason }) if target == "h:2222" && reason == "storage full")
        );
        assert!(matches!(check(&store, "h:2222", &new), Verdict::New { .. }));
        assert!(matches!(forget(&store, "h:22"), Err(SshError::PinsNotSaved { .. })));
        assert_eq!(check(&store, "h:22", &old), Verdict::Known);
    }
}
