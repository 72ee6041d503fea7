//! IPv4 networks in CIDR notation (`192.168.0.0/24`), as used by the LAN, the pool and ACLs.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 network: a base address with its host bits cleared, and a prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Net {
    network: Ipv4Addr,
    prefix: u8,
}

/// Why a CIDR text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// The address part is not a dotted IPv4 address.
    #[error("`{0}` is not an IPv4 address (expected e.g. 192.168.0.0/24)")]
    BadAddress(String),
    /// The prefix is not a number from 0 to 32.
    #[error("`{0}` is not a prefix length from 0 to 32")]
    BadPrefix(String),
}

impl Ipv4Net {
    /// Builds a network, clearing any host bits of `addr`. `prefix` above 32 is clamped.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Self {
        let prefix = prefix.min(32);
        Ipv4Net { network: Ipv4Addr::from(u32::from(addr) & mask(prefix)), prefix }
    }

    /// The network's first address.
    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The netmask as an address (`255.255.255.0` for /24).
    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(mask(self.prefix))
    }

    /// The network's last address.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !mask(self.prefix))
    }

    /// Whether `addr` lies inside this network.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & mask(self.prefix) == u32::from(self.network)
    }

    /// Whether the two networks share any address.
    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        self.contains(other.network) || other.contains(self.network)
    }

    /// The `n`th address counted from the network address, if still inside the network.
    pub fn nth(&self, n: u32) -> Option<Ipv4Addr> {
        let size = 1u64 << (32 - u32::from(self.prefix));
        (u64::from(n) < size).then(|| Ipv4Addr::from(u32::from(self.network).wrapping_add(n)))
    }

    /// Number of addresses in the network.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

impl FromStr for Ipv4Net {
    type Err = CidrError;

    /// Parses `a.b.c.d/n`, or a bare address as a /32.
    fn from_str(text: &str) -> Result<Self, CidrError> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => {
                let prefix = prefix
                    .parse::<u8>()
                    .ok()
                    .filter(|p| *p <= 32)
                    .ok_or_else(|| CidrError::BadPrefix(prefix.to_owned()))?;
                (addr, prefix)
            }
            None => (text, 32),
        };
        let addr = addr.parse::<Ipv4Addr>().map_err(|_| CidrError::BadAddress(addr.to_owned()))?;
        Ok(Ipv4Net::new(addr, prefix))
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl serde::Serialize for Ipv4Net {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Ipv4Net {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        let cases: &[(&str, &str)] = &[
            ("192.168.0.0/24", "192.168.0.0/24"),
            ("192.168.0.77/24", "192.168.0.0/24"),
            ("10.8.0.1", "10.8.0.1/32"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            (" 10.0.0.0/8 ", "10.0.0.0/8"),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<Ipv4Net>().unwrap().to_string(), *want, "{text}");
        }
    }

    #[test]
    fn refuses_bad_text() {
        for text in ["", "192.168.0/24", "192.168.0.0/33", "192.168.0.0/x", "::1/128", "1.2.3.4/"] {
            assert!(text.parse::<Ipv4Net>().is_err(), "{text}");
        }
    }

    #[test]
    fn membership_and_bounds() {
        let net: Ipv4Net = "10.8.0.0/24".parse().unwrap();
        assert!(net.contains(Ipv4Addr::new(10, 8, 0, 255)));
        assert!(!net.contains(Ipv4Addr::new(10, 8, 1, 0)));
        assert_eq!(net.broadcast(), Ipv4Addr::new(10, 8, 0, 255));
        assert_eq!(net.netmask(), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(net.nth(1), Some(Ipv4Addr::new(10, 8, 0, 1)));
        assert_eq!(net.nth(256), None);
        assert!(net.overlaps(&"10.0.0.0/8".parse().unwrap()));
        assert!(!net.overlaps(&"192.168.0.0/24".parse().unwrap()));
        let all: Ipv4Net = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(all.size(), 1 << 32);
    }
}
