//! App names: one DNS name under the relay's domain per LAN `host:port`, so every home web app
//! gets its own browser origin. `h-192-168-0-10-p8123.home.example.net` is 192.168.0.10:8123.
//!
//! The encoding is strict so that one address has exactly one name: the label is `h-`, four
//! canonical decimal octets (no leading zeros, 0-255) joined by `-`, then `-p` and a canonical
//! port 1-65535; it is the only label before the domain; letters are lower case (DNS names
//! arrive case-folded from TLS SNI). Anything else is not an app name. Grammar: `docs/names.md`.
//!
//! This module only encodes and decodes; which names the relay certifies (LAN hosts only) is the
//! relay's policy, and which origins a page may use is the browser client's.

use core::net::{Ipv4Addr, SocketAddrV4};

/// Why a name is not an app name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is not directly under the relay's domain.
    #[error("not a name directly under the relay's domain")]
    NotUnderDomain,
    /// The label under the domain is not a canonical `h-A-B-C-D-pPORT`.
    #[error("not a canonical app name (h-A-B-C-D-pPORT)")]
    Malformed,
}

/// Encodes `target` as an app name under `domain`: `h-A-B-C-D-pPORT.domain`.
pub fn encode(target: SocketAddrV4, domain: &str) -> String {
    format!("{}.{domain}", label(target))
}

/// The one label of `target`'s app name: `h-A-B-C-D-pPORT`.
pub fn label(target: SocketAddrV4) -> String {
    let [a, b, c, d] = target.ip().octets();
    format!("h-{a}-{b}-{c}-{d}-p{}", target.port())
}

/// Decodes an app name under `domain` (a trailing dot on `name` is allowed). Fails with
/// [`NameError::NotUnderDomain`] unless `name` is exactly one label followed by `.domain`, and
/// with [`NameError::Malformed`] when that label is not canonical.
pub fn decode(name: &str, domain: &str) -> Result<SocketAddrV4, NameError> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let label = name
        .strip_suffix(domain)
        .and_then(|rest| rest.strip_suffix('.'))
        .filter(|label| !label.is_empty() && !label.contains('.'))
        .ok_or(NameError::NotUnderDomain)?;
    decode_label(label)
}

/// Decodes one label `h-A-B-C-D-pPORT` (canonical, lower case) into its LAN target.
pub fn decode_label(label: &str) -> Result<SocketAddrV4, NameError> {
    let rest = label.strip_prefix("h-").ok_or(NameError::Malformed)?;
    let (address, port) = rest.rsplit_once("-p").ok_or(NameError::Malformed)?;
    let mut octets = [0u8; 4];
    let mut parts = address.split('-');
    for octet in &mut octets {
        let part = parts.next().ok_or(NameError::Malformed)?;
        *octet = canonical(part, 255)? as u8;
    }
    if parts.next().is_some() {
        return Err(NameError::Malformed);
    }
    let port = canonical(port, 65535)? as u16;
    if port == 0 {
        return Err(NameError::Malformed);
    }
    Ok(SocketAddrV4::new(Ipv4Addr::from(octets), port))
}

/// A decimal number with no sign, no leading zero and at most `max`.
fn canonical(text: &str, max: u32) -> Result<u32, NameError> {
    let digits_only = !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit());
    if !digits_only || (text.len() > 1 && text.starts_with('0')) {
        return Err(NameError::Malformed);
    }
    text.parse::<u32>().ok().filter(|v| *v <= max).ok_or(NameError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const DOMAIN: &str = "home.example.net";

    #[test]
    fn encoding_round_trips() {
        let target: SocketAddrV4 = "192.168.0.10:8123".parse().unwrap();
        let name = encode(target, DOMAIN);
        assert_eq!(name, "h-192-168-0-10-p8123.home.example.net");
        assert_eq!(decode(&name, DOMAIN), Ok(target));
        assert_eq!(decode(&format!("{name}."), DOMAIN), Ok(target));
        assert_eq!(decode_label(&label(target)), Ok(target));
    }

    #[test]
    fn only_canonical_names_decode() {
        let bad = [
            "h-192-168-0-010-p80",     // leading zero
            "h-192-168-0-256-p80",     // octet too big
            "h-192-168-0-p80",         // three octets
            "h-192-168-0-10-11-p80",   // five octets
            "h-192-168-0-10-p0",       // port 0
            "h-192-168-0-10-p65536",   // port too big
            "h-192-168-0-10-p080",     // leading zero in the port
            "h-192-168-0-10-p",        // no port
            "h-192-168-0-10",          // no port part
            "h-192-168-0-+1-p80",      // sign
            "h-192-168-0-1x-p80",      // not a digit
            "x-192-168-0-10-p80",      // wrong prefix
            "H-192-168-0-10-p80",      // upper case
            "h-192-168-0-10-P80",      // upper case port marker
            "h--192-168-0-10-p80",     // empty octet
            "h-192-168-0-10-p1234567", // long port
        ];
        for label in bad {
            assert_eq!(decode(&format!("{label}.{DOMAIN}"), DOMAIN), Err(NameError::Malformed), "{label}");
        }
        for name in [
            "home.example.net",
            "a.h-192-168-0-10-p80.home.example.net",
            "h-192-168-0-10-p80.example.net",
            "h-192-168-0-10-p80xhome.example.net",
        ] {
            assert_eq!(decode(name, DOMAIN), Err(NameError::NotUnderDomain), "{name}");
        }
    }
}
