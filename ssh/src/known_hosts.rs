//! Host keys trusted on first use, pinned per `host:port`.
//!
//! The pins are one JSON object, `{"192.168.0.10:22": "ssh-ed25519 AAAA…", …}` (OpenSSH
//! one-line public keys without comment), kept by a [`PinStore`] (the browser's `localStorage`
//! on the tunnel origin in the page). [`check`] compares the key a server offers with its pin:
//! an unknown target may be trusted (by the caller's choice), a changed key never is.

use russh::keys::{HashAlg, PublicKey};

/// Where the pins live.
pub trait PinStore: Send + Sync {
    /// The whole pin object as stored, if any.
    fn load(&self) -> Option<String>;
    /// Replaces the stored pin object.
    fn save(&self, pins: &str);
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

/// Pins `key` for `target`, replacing any earlier pin.
pub fn pin(store: &dyn PinStore, target: &str, key: &PublicKey) {
    let mut all = pins(store);
    all.insert(target.to_owned(), serde_json::Value::String(one_line(key)));
    store.save(&serde_json::Value::Object(all).to_string());
}

/// Forgets the pin of `target`; returns whether there was one.
pub fn forget(store: &dyn PinStore, target: &str) -> bool {
    let mut all = pins(store);
    let had = all.remove(target).is_some();
    if had {
        store.save(&serde_json::Value::Object(all).to_string());
    }
    had
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
        fn save(&self, pins: &str) {
            *self.0.lock().unwrap() = Some(pins.to_owned());
        }
    }

    fn key() -> PublicKey {
        PrivateKey::random(&mut russh::keys::key::safe_rng(), Algorithm::Ed25519).unwrap().public_key().clone()
    }

    #[test]
    fn a_first_seen_key_is_new_then_known_once_pinned() {
        let (store, k) = (Memory::default(), key());
        assert_eq!(check(&store, "192.168.0.10:22", &k), Verdict::New { fingerprint: fingerprint(&k) });
        pin(&store, "192.168.0.10:22", &k);
        assert_eq!(check(&store, "192.168.0.10:22", &k), Verdict::Known);
        assert!(fingerprint(&k).starts_with("SHA256:"), "{}", fingerprint(&k));
    }

    #[test]
    fn another_key_for_a_pinned_target_is_a_change_naming_both_fingerprints() {
        let (store, old, new) = (Memory::default(), key(), key());
        pin(&store, "192.168.0.10:22", &old);
        let verdict = check(&store, "192.168.0.10:22", &new);
        assert_eq!(verdict, Verdict::Changed { old: fingerprint(&old), new: fingerprint(&new) });
    }

    #[test]
    fn pins_are_per_host_and_port() {
        let (store, a, b) = (Memory::default(), key(), key());
        pin(&store, "192.168.0.10:22", &a);
        assert!(matches!(check(&store, "192.168.0.10:2222", &b), Verdict::New { .. }));
        assert!(matches!(check(&store, "192.168.0.20:22", &a), Verdict::New { .. }));
    }

    #[test]
    fn forgetting_a_pin_makes_the_next_key_new() {
        let (store, old, new) = (Memory::default(), key(), key());
        pin(&store, "h:22", &old);
        assert!(forget(&store, "h:22"));
        assert!(!forget(&store, "h:22"));
        assert!(matches!(check(&store, "h:22", &new), Verdict::New { .. }));
    }

    #[test]
    fn an_unreadable_store_or_pin_never_passes_as_known() {
        let (store, k) = (Memory::default(), key());
        store.save("not json");
        assert!(matches!(check(&store, "h:22", &k), Verdict::New { .. }));
        store.save(r#"{"h:22": "ssh-ed25519 garbage"}"#);
        assert!(matches!(check(&store, "h:22", &k), Verdict::Changed { .. }));
    }
}
