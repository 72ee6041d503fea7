//! App names: one DNS name under the relay's domain per LAN web app, so every home web app gets
//! its own browser origin. `h-192-168-0-10-p8123.home.example.net` is `http://192.168.0.10:8123`
//! and `h-192-168-0-5-s8006.home.example.net` is `https://192.168.0.5:8006` (an app the LAN host
//! serves over TLS itself, reached with TLS inside the tunnel).
//!
//! The encoding is strict so that one target has exactly one name: the label is `h-`, four
//! canonical decimal octets (no leading zeros, 0-255) joined by `-`, then `-p` (plain HTTP) or
//! `-s` (HTTPS) and a canonical port 1-65535; it is the only label before the domain; letters
//! are lower case (DNS names arrive case-folded from TLS SNI). Anything else is not an app name.
//! Grammar: `docs/names.md`.
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
    /// The label under the domain is not a canonical `h-A-B-C-D-pPORT` or `h-A-B-C-D-sPORT`.
    #[error("not a canonical app name (h-A-B-C-D-pPORT, or -sPORT for HTTPS)")]
    Malformed,
}

/// A LAN web app: the host's address and port, and whether the host serves it over TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AppTarget {
    /// The LAN host and port.
    pub addr: SocketAddrV4,
    /// `https://` (the host speaks TLS on that port) rather than `http://`.
    pub tls: bool,
}

impl AppTarget {
    /// A plain-HTTP app at `addr`.
    pub const fn http(addr: SocketAddrV4) -> Self {
        Self { addr, tls: false }
    }

    /// An HTTPS app at `addr`.
    pub const fn https(addr: SocketAddrV4) -> Self {
        Self { addr, tls: true }
    }

    /// `http` or `https`.
    pub const fn scheme(self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }

    /// `ws` or `wss`, for the app's WebSockets.
    pub const fn ws_scheme(self) -> &'static str {
        if self.tls {
            "wss"
        } else {
            "ws"
        }
    }

    /// `A.B.C.D[:PORT]` as the LAN URL and `Host` header write it (the scheme's default port,
    /// 80 or 443, left out).
    pub fn authority(self) -> String {
        let default = if self.tls { 443 } else { 80 };
        match self.addr.port() {
            port if port == default => self.addr.ip().to_string(),
            port => format!("{}:{port}", self.addr.ip()),
        }
    }

    /// The LAN origin: `http://192.168.0.10:8123`, `https://192.168.0.5:8006`.
    pub fn lan_origin(self) -> String {
        format!("{}://{}", self.scheme(), self.authority())
    }
}

impl core::fmt::Display for AppTarget {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.lan_origin())
    }
}

/// Encodes `target` as an app name under `domain`: `h-A-B-C-D-pPORT.domain` (`-sPORT` for HTTPS).
pub fn encode(target: AppTarget, domain: &str) -> String {
    format!("{}.{domain}", label(target))
}

/// The one label of `target`'s app name: `h-A-B-C-D-pPORT` or `h-A-B-C-D-sPORT`.
pub fn label(target: AppTarget) -> String {
    let [a, b, c, d] = target.addr.ip().octets();
    let marker = if target.tls { 's' } else { 'p' };
    format!("h-{a}-{b}-{c}-{d}-{marker}{}", target.addr.port())
}

/// Decodes an app name under `domain` (a trailing dot on `name` is allowed). Fails with
/// [`NameError::NotUnderDomain`] unless `name` is exactly one label followed by `.domain`, and
/// with [`NameError::Malformed`] when that label is not canonical.
pub fn decode(name: &str, domain: &str) -> Result<AppTarget, NameError> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let label = name
        .strip_suffix(domain)
        .and_then(|rest| rest.strip_suffix('.'))
        .filter(|label| !label.is_empty() && !label.contains('.'))
        .ok_or(NameError::NotUnderDomain)?;
    decode_label(label)
}

/// Decodes one label `h-A-B-C-D-pPORT` or `h-A-B-C-D-sPORT` (canonical, lower case) into its
/// LAN target.
pub fn decode_label(label: &str) -> Result<AppTarget, NameError> {
    let rest = label.strip_prefix("h-").ok_or(NameError::Malformed)?;
    let (address, tail) = rest.rsplit_once('-').ok_or(NameError::Malformed)?;
    let (tls, port) = match tail.split_at_checked(1) {
        Some(("p", port)) => (false, port),
        Some(("s", port)) => (true, port),
        _ => return Err(NameError::Malformed),
    };
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
    Ok(AppTarget { addr: SocketAddrV4::new(Ipv4Addr::from(octets), port), tls })
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
        let http = AppTarget::http("192.168.0.10:8123".parse().unwrap());
        let name = encode(http, DOMAIN);
        assert_eq!(name, "h-192-168-0-10-p8123.home.example.net");
        assert_eq!(decode(&name, DOMAIN), Ok(http));
        assert_eq!(decode(&format!("{name}."), DOMAIN), Ok(http));
        assert_eq!(decode_label(&label(http)), Ok(http));
        let https = AppTarget::https("192.168.0.5:8006".parse().unwrap());
        assert_eq!(encode(https, DOMAIN), "h-192-168-0-5-s8006.home.example.net");
        assert_eq!(decode("h-192-168-0-5-s8006.home.example.net", DOMAIN), Ok(https));
    }

    #[test]
    fn lan_origins_leave_out_the_default_port() {
        let at = |s: &str| s.parse::<SocketAddrV4>().unwrap();
        assert_eq!(AppTarget::http(at("192.168.0.10:80")).lan_origin(), "http://192.168.0.10");
        assert_eq!(AppTarget::http(at("192.168.0.10:443")).lan_origin(), "http://192.168.0.10:443");
        assert_eq!(AppTarget::https(at("192.168.0.10:443")).lan_origin(), "https://192.168.0.10");
        assert_eq!(AppTarget::https(at("192.168.0.10:80")).authority(), "192.168.0.10:80");
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
            "h-192-168-0-10-S443",     // upper case TLS marker
            "h-192-168-0-10-t443",     // unknown marker
            "h-192-168-0-10-s",        // no TLS port
            "h-192-168-0-10-s0443",    // leading zero in the TLS port
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
