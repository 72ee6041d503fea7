//! IPv4 prefixes, with the two meanings kept apart as smoltcp's `Ipv4Cidr` users must:
//!
//! - [`Network`]: a block of addresses, `192.168.0.0/24` — host bits are always clear. The
//!   LAN, the client pool, ACL rules and pushed routes are networks.
//! - [`InterfaceAddress`]: one address on an interface with the prefix of its subnet,
//!   `10.8.0.6/24` — host bits are the point. A client's tunnel address is one.
//!
//! Both wrap [`smoltcp::wire::Ipv4Cidr`] and hand it out for the netstack. The text form is
//! `a.b.c.d/n`; a bare address reads as `/32`. With the `serde` feature both serialize as text.

use core::fmt;
use core::net::Ipv4Addr;
use core::str::FromStr;
use smoltcp::wire::Ipv4Cidr;

/// Why text or numbers are not an IPv4 prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrefixError {
    /// The address part is not a dotted IPv4 address.
    #[error("`{0}` is not an IPv4 address (expected e.g. 192.168.0.0/24)")]
    BadAddress(String),
    /// The prefix length is not a number from 0 to 32.
    #[error("`{0}` is not a prefix length from 0 to 32")]
    BadPrefixLen(String),
}

/// An IPv4 network: a block of addresses, host bits clear (`192.168.0.0/24`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Network(Ipv4Cidr);

/// An address on an interface with its subnet's prefix length (`10.8.0.6/24`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InterfaceAddress(Ipv4Cidr);

fn cidr(addr: Ipv4Addr, prefix_len: u8) -> Result<Ipv4Cidr, PrefixError> {
    if prefix_len > 32 {
        return Err(PrefixError::BadPrefixLen(prefix_len.to_string()));
    }
    Ok(Ipv4Cidr::new(addr, prefix_len))
}

fn parse(text: &str) -> Result<Ipv4Cidr, PrefixError> {
    let text = text.trim();
    let (addr, prefix_len) = match text.split_once('/') {
        Some((addr, len)) => {
            let len =
                len.parse::<u8>().ok().filter(|l| *l <= 32).ok_or_else(|| PrefixError::BadPrefixLen(len.to_owned()))?;
            (addr, len)
        }
        None => (text, 32),
    };
    let addr = addr.parse::<Ipv4Addr>().map_err(|_| PrefixError::BadAddress(addr.to_owned()))?;
    cidr(addr, prefix_len)
}

impl Network {
    /// The network of `addr` with `prefix_len` (host bits of `addr` are cleared).
    pub fn new(addr: Ipv4Addr, prefix_len: u8) -> Result<Self, PrefixError> {
        Ok(Self(cidr(addr, prefix_len)?.network()))
    }

    /// The network's first address (`192.168.0.0` for `192.168.0.0/24`).
    pub fn addr(&self) -> Ipv4Addr {
        self.0.address()
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.0.prefix_len()
    }

    /// The netmask as an address (`255.255.255.0` for /24).
    pub fn netmask(&self) -> Ipv4Addr {
        self.0.netmask()
    }

    /// The network's last address (for /31 and /32 the last address of the block).
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr()) | !u32::from(self.netmask()))
    }

    /// Whether `addr` lies inside this network.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        self.0.contains_addr(&addr)
    }

    /// Whether the two networks share any address.
    pub fn overlaps(&self, other: &Self) -> bool {
        self.contains(other.addr()) || other.contains(self.addr())
    }

    /// The `n`th address counted from the network address, if still inside the network.
    pub fn nth(&self, n: u32) -> Option<Ipv4Addr> {
        (u64::from(n) < self.size()).then(|| Ipv4Addr::from(u32::from(self.addr()).wrapping_add(n)))
    }

    /// Number of addresses in the network.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix_len()))
    }

    /// `addr` as an interface address on this network (`10.8.0.6` on `10.8.0.0/24` is
    /// `10.8.0.6/24`).
    pub fn interface_address(&self, addr: Ipv4Addr) -> InterfaceAddress {
        InterfaceAddress(Ipv4Cidr::new(addr, self.prefix_len()))
    }

    /// The smoltcp form.
    pub fn cidr(&self) -> Ipv4Cidr {
        self.0
    }
}

impl InterfaceAddress {
    /// `addr` on a subnet of `prefix_len`.
    pub fn new(addr: Ipv4Addr, prefix_len: u8) -> Result<Self, PrefixError> {
        Ok(Self(cidr(addr, prefix_len)?))
    }

    /// The address itself.
    pub fn addr(&self) -> Ipv4Addr {
        self.0.address()
    }

    /// The subnet's prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.0.prefix_len()
    }

    /// The subnet the address is on.
    pub fn network(&self) -> Network {
        Network(self.0.network())
    }

    /// Whether `addr` is on the same subnet.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        self.0.contains_addr(&addr)
    }

    /// The smoltcp form.
    pub fn cidr(&self) -> Ipv4Cidr {
        self.0
    }
}

impl FromStr for Network {
    type Err = PrefixError;

    /// Parses `a.b.c.d/n` (host bits are cleared), or a bare address as a /32.
    fn from_str(text: &str) -> Result<Self, PrefixError> {
        Ok(Self(parse(text)?.network()))
    }
}

impl FromStr for InterfaceAddress {
    type Err = PrefixError;

    /// Parses `a.b.c.d/n`, or a bare address as a /32.
    fn from_str(text: &str) -> Result<Self, PrefixError> {
        parse(text).map(InterfaceAddress)
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Display for InterfaceAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for InterfaceAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(feature = "serde")]
mod text_serde {
    use super::{InterfaceAddress, Network};

    macro_rules! as_text {
        ($ty:ty) => {
            impl serde::Serialize for $ty {
                fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                    s.collect_str(self)
                }
            }

            impl<'de> serde::Deserialize<'de> for $ty {
                fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                    let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                    text.parse().map_err(serde::de::Error::custom)
                }
            }
        };
    }

    as_text!(Network);
    as_text!(InterfaceAddress);
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn a_network_clears_host_bits_and_an_interface_address_keeps_them() {
        let cases: &[(&str, &str, &str)] = &[
            ("192.168.0.0/24", "192.168.0.0/24", "192.168.0.0/24"),
            ("192.168.0.77/24", "192.168.0.0/24", "192.168.0.77/24"),
            ("10.8.0.1", "10.8.0.1/32", "10.8.0.1/32"),
            ("0.0.0.0/0", "0.0.0.0/0", "0.0.0.0/0"),
            (" 10.0.0.0/8 ", "10.0.0.0/8", "10.0.0.0/8"),
        ];
        for (text, network, interface) in cases {
            assert_eq!(text.parse::<Network>().unwrap().to_string(), *network, "{text}");
            assert_eq!(text.parse::<InterfaceAddress>().unwrap().to_string(), *interface, "{text}");
        }
        let address: InterfaceAddress = "10.8.0.6/24".parse().unwrap();
        assert_eq!(address.network(), "10.8.0.0/24".parse().unwrap());
        assert_eq!(address.network().interface_address(address.addr()), address);
        assert!(address.contains(Ipv4Addr::new(10, 8, 0, 200)));
    }

    #[test]
    fn bad_text_is_refused_with_the_part_at_fault() {
        for text in ["", "192.168.0/24", "::1", "ten/8"] {
            assert!(matches!(text.parse::<Network>(), Err(PrefixError::BadAddress(_))), "{text}");
        }
        for text in ["192.168.0.0/33", "192.168.0.0/x", "1.2.3.4/"] {
            assert!(matches!(text.parse::<InterfaceAddress>(), Err(PrefixError::BadPrefixLen(_))), "{text}");
        }
        assert_eq!(Network::new(Ipv4Addr::UNSPECIFIED, 33), Err(PrefixError::BadPrefixLen("33".into())));
    }

    #[test]
    fn membership_and_bounds() {
        let net: Network = "10.8.0.0/24".parse().unwrap();
        assert!(net.contains(Ipv4Addr::new(10, 8, 0, 255)));
        assert!(!net.contains(Ipv4Addr::new(10, 8, 1, 0)));
        assert_eq!(net.broadcast(), Ipv4Addr::new(10, 8, 0, 255));
        assert_eq!(net.netmask(), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(net.nth(1), Some(Ipv4Addr::new(10, 8, 0, 1)));
        assert_eq!(net.nth(256), None);
        assert!(net.overlaps(&"10.0.0.0/8".parse().unwrap()));
        assert!(!net.overlaps(&"192.168.0.0/24".parse().unwrap()));
        let all: Network = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(all.size(), 1 << 32);
    }
}
