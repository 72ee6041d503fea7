//! What a client may reach: a list of rules `CIDR[:PORT[-PORT]][/tcp|/udp]`.
//!
//! A rule without ports allows every protocol to its network. A rule with ports allows only TCP
//! and UDP (or the one protocol named) to those destination ports. Fragments are allowed only by
//! port-less rules: a fragment other than the first carries no ports, so a port rule could admit
//! only the first fragment of a datagram — which then waits in the home server's reassembly queue
//! for fragments that never come.

use crate::net::packet::{Ipv4Summary, PROTO_TCP, PROTO_UDP};
use hometun_shared::control::{AllowProtocol, AllowRule};
use hometun_shared::ipv4::Network;
use std::fmt;
use std::str::FromStr;

/// One allow rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    net: Network,
    ports: Option<(u16, u16)>,
    protocol: Option<u8>,
}

/// A client's allow list; everything not allowed is denied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Acl {
    rules: Vec<Rule>,
}

/// Why an ACL rule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    /// The network part is not CIDR notation.
    #[error("rule `{rule}`: {source}")]
    Network {
        /// The rule text.
        rule: String,
        /// What was wrong with the network.
        source: hometun_shared::ipv4::PrefixError,
    },
    /// The port part is not `N` or `N-M` with 1 <= N <= M <= 65535.
    #[error("rule `{0}`: ports must be N or N-M between 1 and 65535")]
    Ports(String),
    /// The protocol suffix is not `tcp` or `udp`.
    #[error("rule `{0}`: protocol must be tcp or udp")]
    Protocol(String),
    /// The list has no rules.
    #[error("an allow list needs at least one rule")]
    Empty,
}

impl Rule {
    /// A rule allowing everything to `net`.
    pub fn network(net: Network) -> Self {
        Self { net, ports: None, protocol: None }
    }

    fn allows(&self, packet: &Ipv4Summary) -> bool {
        if !self.net.contains(packet.dst) {
            return false;
        }
        let Some((low, high)) = self.ports else {
            return true;
        };
        let protocol_fits = match self.protocol {
            Some(p) => packet.protocol == p,
            None => packet.protocol == PROTO_TCP || packet.protocol == PROTO_UDP,
        };
        match packet.ports {
            Some((_, dport)) if !packet.fragment => protocol_fits && (low..=high).contains(&dport),
            _ => false,
        }
    }
}

impl Acl {
    /// The default for a client: the whole LAN subnet.
    pub fn whole(net: Network) -> Self {
        Self { rules: vec![Rule::network(net)] }
    }

    /// Parses a comma-separated list of rules (the `--allow` form).
    pub fn parse_list(text: &str) -> Result<Self, AclError> {
        let rules = text
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::parse)
            .collect::<Result<Vec<Rule>, _>>()?;
        if rules.is_empty() {
            return Err(AclError::Empty);
        }
        Ok(Self { rules })
    }

    /// Whether the packet's destination (and port) is allowed.
    pub fn allows(&self, packet: &Ipv4Summary) -> bool {
        self.rules.iter().any(|r| r.allows(packet))
    }

    /// The rules as pushed to the client (so its launcher can list what it may reach).
    pub fn allow_rules(&self) -> Vec<AllowRule> {
        self.rules
            .iter()
            .map(|rule| AllowRule {
                network: rule.net,
                ports: rule.ports,
                protocol: rule.protocol.and_then(|p| match p {
                    PROTO_TCP => Some(AllowProtocol::Tcp),
                    PROTO_UDP => Some(AllowProtocol::Udp),
                    _ => None,
                }),
            })
            .collect()
    }

    /// The networks the rules reach (routes to push to the client).
    pub fn networks(&self) -> Vec<Network> {
        let mut nets: Vec<Network> = self.rules.iter().map(|r| r.net).collect();
        nets.sort();
        nets.dedup();
        nets
    }
}

impl FromStr for Rule {
    type Err = AclError;

    fn from_str(text: &str) -> Result<Self, AclError> {
        let text = text.trim();
        let (net_text, port_text) = match text.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (text, None),
        };
        let net = net_text.parse::<Network>().map_err(|source| AclError::Network { rule: text.to_owned(), source })?;
        let Some(port_text) = port_text else {
            return Ok(Self::network(net));
        };
        let (range_text, protocol) = match port_text.split_once('/') {
            Some((r, "tcp")) => (r, Some(PROTO_TCP)),
            Some((r, "udp")) => (r, Some(PROTO_UDP)),
            Some(_) => return Err(AclError::Protocol(text.to_owned())),
            None => (port_text, None),
        };
        let port = |s: &str| s.trim().parse::<u16>().ok().filter(|p| *p > 0);
        let ports = match range_text.split_once('-') {
            Some((a, b)) => port(a).zip(port(b)),
            None => port(range_text).map(|p| (p, p)),
        }
        .filter(|(a, b)| a <= b)
        .ok_or_else(|| AclError::Ports(text.to_owned()))?;
        Ok(Self { net, ports: Some(ports), protocol })
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.net)?;
        if let Some((a, b)) = self.ports {
            if a == b {
                write!(f, ":{a}")?;
            } else {
                write!(f, ":{a}-{b}")?;
            }
            match self.protocol {
                Some(PROTO_TCP) => f.write_str("/tcp")?,
                Some(PROTO_UDP) => f.write_str("/udp")?,
                _ => {}
            }
        }
        Ok(())
    }
}

impl fmt::Display for Acl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.rules.iter().map(Rule::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

impl serde::Serialize for Acl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.rules.iter().map(Rule::to_string))
    }
}

impl<'de> serde::Deserialize<'de> for Acl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let texts = Vec::<String>::deserialize(d)?;
        let rules =
            texts.iter().map(|t| t.parse::<Rule>()).collect::<Result<Vec<_>, _>>().map_err(serde::de::Error::custom)?;
        Ok(Self { rules })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::packet::{build, parse_ipv4, PROTO_ICMP};

    fn summary(bytes: Vec<u8>) -> Ipv4Summary {
        parse_ipv4(&bytes).unwrap()
    }

    #[test]
    fn rules_parse_and_print_back() {
        for text in ["192.168.0.0/24", "192.168.0.10/32:80", "192.168.0.10/32:8000-8100/tcp", "10.0.0.0/8:53/udp"] {
            assert_eq!(text.parse::<Rule>().unwrap().to_string(), text);
        }
        assert_eq!("192.168.0.10:80".parse::<Rule>().unwrap().to_string(), "192.168.0.10/32:80");
    }

    #[test]
    fn the_pushed_allow_rules_are_the_acl() {
        let acl = Acl::parse_list("192.168.0.10:80, 192.168.0.20/32:8000-8100/tcp, 10.0.0.0/8:53/udp, 192.168.1.0/24")
            .unwrap();
        let net = |text: &str| text.parse::<Network>().unwrap();
        assert_eq!(
            acl.allow_rules(),
            vec![
                AllowRule { network: net("192.168.0.10/32"), ports: Some((80, 80)), protocol: None },
                AllowRule {
                    network: net("192.168.0.20/32"),
                    ports: Some((8000, 8100)),
                    protocol: Some(AllowProtocol::Tcp)
                },
                AllowRule { network: net("10.0.0.0/8"), ports: Some((53, 53)), protocol: Some(AllowProtocol::Udp) },
                AllowRule::network(net("192.168.1.0/24")),
            ]
        );
    }

    #[test]
    fn bad_rules_are_refused() {
        for text in ["", "192.168.0.0/24:0", "192.168.0.0/24:90-80", "192.168.0.0/24:http", "1.2.3.4:80/icmp", "nope"] {
            assert!(text.parse::<Rule>().is_err(), "{text}");
        }
        assert_eq!(Acl::parse_list(" , "), Err(AclError::Empty));
    }

    #[test]
    fn decisions_table() {
        let acl = Acl::parse_list("192.168.0.10:80,192.168.0.30/32:53/udp,192.168.1.0/24").unwrap();
        let src = [10, 8, 0, 2];
        let cases: Vec<(&str, Vec<u8>, bool)> = vec![
            ("tcp to allowed port", build::with_ports(src, [192, 168, 0, 10], PROTO_TCP, 5000, 80), true),
            (
                "udp to allowed port (no protocol named)",
                build::with_ports(src, [192, 168, 0, 10], PROTO_UDP, 5000, 80),
                true,
            ),
            ("tcp to other port", build::with_ports(src, [192, 168, 0, 10], PROTO_TCP, 5000, 22), false),
            ("icmp to port-only host", build::ipv4(src, [192, 168, 0, 10], PROTO_ICMP, 0, &[8, 0, 0, 0]), false),
            ("other host in LAN", build::with_ports(src, [192, 168, 0, 20], PROTO_TCP, 5000, 80), false),
            ("udp 53 allowed", build::with_ports(src, [192, 168, 0, 30], PROTO_UDP, 5000, 53), true),
            ("tcp 53 where only udp allowed", build::with_ports(src, [192, 168, 0, 30], PROTO_TCP, 5000, 53), false),
            ("whole subnet rule, icmp", build::ipv4(src, [192, 168, 1, 7], PROTO_ICMP, 0, &[8, 0, 0, 0]), true),
            ("later fragment to port rule", build::ipv4(src, [192, 168, 0, 10], PROTO_TCP, 100, &[0; 8]), false),
            ("later fragment to subnet rule", build::ipv4(src, [192, 168, 1, 7], PROTO_TCP, 100, &[0; 8]), true),
            (
                "first fragment to port rule",
                build::ipv4(src, [192, 168, 0, 10], PROTO_TCP, 0x2000, &build::transport(PROTO_TCP, 5000, 80)),
                false,
            ),
            (
                "first fragment to subnet rule",
                build::ipv4(src, [192, 168, 1, 7], PROTO_TCP, 0x2000, &build::transport(PROTO_TCP, 5000, 80)),
                true,
            ),
            (
                "first fragment too short for ports",
                build::ipv4(src, [192, 168, 0, 10], PROTO_TCP, 0x2000, &[0, 80]),
                false,
            ),
            ("outside everything", build::with_ports(src, [8, 8, 8, 8], PROTO_UDP, 5000, 53), false),
        ];
        for (name, packet, want) in cases {
            assert_eq!(acl.allows(&summary(packet)), want, "{name}");
        }
    }

    #[test]
    fn serde_round_trip() {
        let acl = Acl::parse_list("192.168.0.10:80,192.168.0.0/24").unwrap();
        let json = serde_json::to_string(&acl).unwrap();
        assert_eq!(json, r#"["192.168.0.10/32:80","192.168.0.0/24"]"#);
        assert_eq!(serde_json::from_str::<Acl>(&json).unwrap(), acl);
    }
}
