//! Certificates of HTTPS home apps, trusted on first use and pinned per `host:port`, as SSH
//! pins host keys: LAN devices (a NAS, Proxmox, a router) mostly show self-signed certificates
//! that no authority vouches for, so the one question is "is this the certificate I trusted
//! before?". The user trusts a first-seen certificate from the launcher after seeing its
//! SHA-256 fingerprint; a different certificate later is refused until the user trusts the new
//! one there, knowing it changed.
//!
//! Pure: the pins and their saved form (JSON in the tunnel origin's `localStorage`: an array of
//! `["A.B.C.D:PORT", "AB:CD:…"]` pairs; a list rather than a map keeps the page's wasm small).

use std::net::SocketAddrV4;

/// At most this many pins are kept (a user with more HTTPS devices than this forgets some).
pub const MAX_PINS: usize = 256;

/// Pinned certificate fingerprints by `host:port`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pins {
    by_target: Vec<(SocketAddrV4, String)>,
}

/// What a certificate shown by a host is, against the pins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The pinned certificate.
    Trusted,
    /// Nothing is pinned for the host yet.
    New,
    /// Another certificate is pinned (its fingerprint).
    Changed(String),
}

impl Verdict {
    /// `trusted`, `new` or `changed`, as the JavaScript API says it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Trusted => "trusted",
            Self::New => "new",
            Self::Changed(_) => "changed",
        }
    }
}

impl Pins {
    /// The saved pins; unreadable text gives no pins (the user is asked again).
    pub fn from_json(json: &str) -> Self {
        let saved: Vec<(String, String)> = serde_json::from_str(json).unwrap_or_default();
        let mut pins = Self::default();
        for (target, fingerprint) in saved {
            if let Ok(target) = target.parse() {
                let _ = pins.trust(target, &fingerprint);
            }
        }
        pins
    }

    /// The saved form.
    pub fn to_json(&self) -> String {
        let saved: Vec<(String, &String)> = self.by_target.iter().map(|(t, f)| (t.to_string(), f)).collect();
        serde_json::to_string(&saved).unwrap_or_default()
    }

    fn get(&self, target: SocketAddrV4) -> Option<&String> {
        self.by_target.iter().find(|(t, _)| *t == target).map(|(_, f)| f)
    }

    /// What `fingerprint`, shown by `target`, is.
    pub fn check(&self, target: SocketAddrV4, fingerprint: &str) -> Verdict {
        match self.get(target) {
            None => Verdict::New,
            Some(pinned) if pinned == fingerprint => Verdict::Trusted,
            Some(pinned) => Verdict::Changed(pinned.clone()),
        }
    }

    /// Pins `fingerprint` for `target` (replacing any other). Refuses text that is not a
    /// SHA-256 fingerprint, and a new target when [`MAX_PINS`] are kept.
    pub fn trust(&mut self, target: SocketAddrV4, fingerprint: &str) -> Result<(), &'static str> {
        if !is_fingerprint(fingerprint) {
            return Err("not a SHA-256 fingerprint (32 bytes as AB:CD:… hex)");
        }
        self.forget(target);
        if self.by_target.len() >= MAX_PINS {
            return Err("too many pinned certificates; forget some first");
        }
        self.by_target.push((target, fingerprint.to_owned()));
        Ok(())
    }

    /// Forgets `target`'s pin; whether there was one.
    pub fn forget(&mut self, target: SocketAddrV4) -> bool {
        let before = self.by_target.len();
        self.by_target.retain(|(t, _)| *t != target);
        self.by_target.len() != before
    }
}

/// 32 bytes as upper-case hex pairs joined by `:`.
fn is_fingerprint(text: &str) -> bool {
    text.len() == 32 * 3 - 1
        && text
            .split(':')
            .all(|pair| pair.len() == 2 && pair.bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn fingerprint(byte: u8) -> String {
        vec![format!("{byte:02X}"); 32].join(":")
    }

    fn nas() -> SocketAddrV4 {
        "192.168.0.5:8006".parse().unwrap()
    }

    #[test]
    fn a_first_seen_certificate_is_new_until_trusted_and_another_one_later_is_a_change() {
        let mut pins = Pins::default();
        assert_eq!(pins.check(nas(), &fingerprint(1)), Verdict::New);
        pins.trust(nas(), &fingerprint(1)).unwrap();
        assert_eq!(pins.check(nas(), &fingerprint(1)), Verdict::Trusted);
        assert_eq!(pins.check(nas(), &fingerprint(2)), Verdict::Changed(fingerprint(1)));
        let other_port: SocketAddrV4 = "192.168.0.5:443".parse().unwrap();
        assert_eq!(pins.check(other_port, &fingerprint(1)), Verdict::New, "pins are per host:port");
        pins.trust(nas(), &fingerprint(2)).unwrap();
        assert_eq!(pins.check(nas(), &fingerprint(2)), Verdict::Trusted);
        assert!(pins.forget(nas()));
        assert_eq!(pins.check(nas(), &fingerprint(2)), Verdict::New);
    }

    #[test]
    fn pins_survive_their_saved_form_and_bad_saved_text_is_dropped() {
        let mut pins = Pins::default();
        pins.trust(nas(), &fingerprint(0xAB)).unwrap();
        assert_eq!(Pins::from_json(&pins.to_json()), pins);
        assert_eq!(Pins::from_json("not json"), Pins::default());
        let tampered = format!(
            r#"[["192.168.0.5:8006","{}"],["nas:1","{}"],["192.168.0.6:1","x"]]"#,
            fingerprint(1),
            fingerprint(1)
        );
        let loaded = Pins::from_json(&tampered);
        assert_eq!(loaded.check(nas(), &fingerprint(1)), Verdict::Trusted);
        assert_eq!(loaded.to_json(), format!(r#"[["192.168.0.5:8006","{}"]]"#, fingerprint(1)));
    }

    #[test]
    fn only_fingerprints_are_pinned_and_the_number_of_pins_is_bounded() {
        let mut pins = Pins::default();
        for bad in ["", "ab:cd", &fingerprint(0xAB).to_lowercase(), &fingerprint(1).replace(':', "")] {
            assert!(pins.trust(nas(), bad).is_err(), "{bad}");
        }
        for i in 0..MAX_PINS {
            pins.trust(SocketAddrV4::new([10, 0, (i / 256) as u8, (i % 256) as u8].into(), 443), &fingerprint(1))
                .unwrap();
        }
        assert!(pins.trust(nas(), &fingerprint(1)).is_err());
        pins.trust("10.0.0.0:443".parse().unwrap(), &fingerprint(2)).expect("replacing a pin needs no room");
    }
}
