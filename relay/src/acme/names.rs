//! App names: one DNS name under the relay's domain per LAN `host:port`, so every home web app
//! gets its own browser origin. `h-192-168-0-10-p8123.home.example.net` is 192.168.0.10:8123.
//!
//! The encoding is strict so that one address has exactly one name: the label is `h-`, four
//! canonical decimal octets (no leading zeros, 0-255) joined by `-`, then `-p` and a canonical
//! port 1-65535; it is the only label before the domain; letters are lower case (DNS names
//! arrive case-folded from TLS SNI). Anything else is not an app name.
//!
//! [`AppNames::check`] decides whether the relay may get a certificate for a name: only for
//! addresses inside the LAN subnet, never its network or broadcast address, never the relay's
//! own addresses, never loopback.

use hometun_shared::ipv4::Network;
use std::net::{Ipv4Addr, SocketAddrV4};

/// Why a name gets no app certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is not directly under the relay's domain.
    #[error("not a name directly under the relay's domain")]
    NotUnderDomain,
    /// The label under the domain is not a canonical `h-A-B-C-D-pPORT`.
    #[error("not a canonical app name (h-A-B-C-D-pPORT)")]
    Malformed,
    /// The address is outside the LAN subnet.
    #[error("{0} is outside the LAN")]
    OutsideLan(Ipv4Addr),
    /// The address is the LAN's network or broadcast address.
    #[error("{0} is the LAN's network or broadcast address")]
    NotAHost(Ipv4Addr),
    /// The address belongs to the relay itself.
    #[error("{0} is the relay's own address")]
    RelayAddress(Ipv4Addr),
}

/// Encodes `target` as an app name under `domain` (for the page's home web apps).
#[cfg_attr(not(test), allow(dead_code))]
pub fn encode(target: SocketAddrV4, domain: &str) -> String {
    let [a, b, c, d] = target.ip().octets();
    format!("h-{a}-{b}-{c}-{d}-p{}.{domain}", target.port())
}

/// Decodes an app name under `domain` (both compared in lower case).
pub fn decode(name: &str, domain: &str) -> Result<SocketAddrV4, NameError> {
    let name = name.trim_end_matches('.');
    let label = name
        .strip_suffix(domain)
        .and_then(|rest| rest.strip_suffix('.'))
        .filter(|label| !label.is_empty() && !label.contains('.'))
        .ok_or(NameError::NotUnderDomain)?;
    let rest = label.strip_prefix("h-").ok_or(NameError::Malformed)?;
    let (address, port) = rest.rsplit_once("-p").ok_or(NameError::Malformed)?;
    let octets: Vec<&str> = address.split('-').collect();
    let [a, b, c, d] = octets[..] else { return Err(NameError::Malformed) };
    let octet = |text: &str| canonical(text, 255).map(|v| v as u8);
    let ip = Ipv4Addr::new(octet(a)?, octet(b)?, octet(c)?, octet(d)?);
    let port = canonical(port, 65535)? as u16;
    if port == 0 {
        return Err(NameError::Malformed);
    }
    Ok(SocketAddrV4::new(ip, port))
}

/// A decimal number with no sign, no leading zero and at most `max`.
fn canonical(text: &str, max: u32) -> Result<u32, NameError> {
    let digits_only = !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit());
    if !digits_only || (text.len() > 1 && text.starts_with('0')) {
        return Err(NameError::Malformed);
    }
    text.parse::<u32>().ok().filter(|v| *v <= max).ok_or(NameError::Malformed)
}

/// The policy for app names: which decoded addresses may get a certificate.
#[derive(Debug, Clone)]
pub struct AppNames {
    /// The relay's domain (lower case).
    pub domain: String,
    /// The home LAN.
    pub lan: Network,
    /// The relay's own addresses (every interface, the tunnel address too).
    pub own: Vec<Ipv4Addr>,
}

impl AppNames {
    /// The LAN target of `name` when the relay may get a certificate for it.
    pub fn check(&self, name: &str) -> Result<SocketAddrV4, NameError> {
        let target = decode(name, &self.domain)?;
        let ip = *target.ip();
        if ip.is_loopback() || !self.lan.contains(ip) {
            return Err(NameError::OutsideLan(ip));
        }
        if self.lan.prefix_len() < 31 && (ip == self.lan.addr() || ip == self.lan.broadcast()) {
            return Err(NameError::NotAHost(ip));
        }
        if self.own.contains(&ip) {
            return Err(NameError::RelayAddress(ip));
        }
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOMAIN: &str = "home.example.net";

    #[test]
    fn encoding_round_trips() {
        let target: SocketAddrV4 = "192.168.0.10:8123".parse().unwrap();
        let name = encode(target, DOMAIN);
        assert_eq!(name, "h-192-168-0-10-p8123.home.example.net");
        assert_eq!(decode(&name, DOMAIN), Ok(target));
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

    #[test]
    fn only_lan_hosts_other_than_the_relay_pass() {
        let policy = AppNames {
            domain: DOMAIN.into(),
            lan: "192.168.0.0/24".parse().unwrap(),
            own: vec![Ipv4Addr::new(192, 168, 0, 2), Ipv4Addr::new(10, 8, 0, 1)],
        };
        let name = |ip: &str| format!("h-{}-p443.{DOMAIN}", ip.replace('.', "-"));
        let cases: &[(&str, Result<(), NameError>)] = &[
            ("192.168.0.10", Ok(())),
            ("192.168.0.1", Ok(())),
            ("192.168.0.254", Ok(())),
            ("192.168.0.0", Err(NameError::NotAHost(Ipv4Addr::new(192, 168, 0, 0)))),
            ("192.168.0.255", Err(NameError::NotAHost(Ipv4Addr::new(192, 168, 0, 255)))),
            ("192.168.0.2", Err(NameError::RelayAddress(Ipv4Addr::new(192, 168, 0, 2)))),
            ("10.0.0.1", Err(NameError::OutsideLan(Ipv4Addr::new(10, 0, 0, 1)))),
            ("10.8.0.1", Err(NameError::OutsideLan(Ipv4Addr::new(10, 8, 0, 1)))),
            ("8.8.8.8", Err(NameError::OutsideLan(Ipv4Addr::new(8, 8, 8, 8)))),
            ("127.0.0.1", Err(NameError::OutsideLan(Ipv4Addr::new(127, 0, 0, 1)))),
        ];
        for (ip, want) in cases {
            assert_eq!(policy.check(&name(ip)).map(|_| ()), *want, "{ip}");
        }
    }
}
