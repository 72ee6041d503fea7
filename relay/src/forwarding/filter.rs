//! The forwarding decision for a packet a client sent: anti-spoofing, ACL, client-to-client.

use super::acl::Acl;
use crate::net::packet::{parse_ipv4, Ipv4Summary, PacketError};
use hometun_shared::ipv4::Network;
use std::net::Ipv4Addr;

/// What a client may send, fixed for the life of its session.
#[derive(Clone, Debug)]
pub struct ClientFilter {
    /// The client's tunnel address: the only source address it may use.
    pub address: Ipv4Addr,
    /// Destinations the client may reach.
    pub acl: Acl,
    /// The client pool; destinations inside it are other clients.
    pub pool: Network,
    /// The home LAN the relay's LAN interface is on.
    pub lan: Network,
    /// The relay's own tunnel address.
    pub relay_address: Ipv4Addr,
    /// Whether packets to other clients are allowed (still subject to the ACL).
    pub client_to_client: bool,
}

/// Why a packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drop {
    /// Not a well-formed IPv4 packet.
    Malformed(PacketError),
    /// Source address is not the client's.
    Spoofed(Ipv4Summary),
    /// Destination is another client and client-to-client traffic is off.
    ClientToClient(Ipv4Summary),
    /// The ACL does not allow the destination.
    Denied(Ipv4Summary),
    /// The destination is no single host: the pool's or the LAN's network or broadcast
    /// address, 255.255.255.255 or a multicast group. The relay's kernel takes such a packet as
    /// addressed to itself (its own services would get it, whatever the ACL says of the relay's
    /// LAN address), or it would reach every client.
    NotAHost(Ipv4Summary),
    /// The IPv4 header carries options (source routes, record route, router alert, ...).
    IpOptions(Ipv4Summary),
    /// An ICMP error that is not about a packet the destination sent to this client (or a
    /// redirect or source quench, which a client never needs to send).
    IcmpError(Ipv4Summary),
}

impl ClientFilter {
    /// Decides whether `packet` may go out to the tun device.
    pub fn check(&self, packet: &[u8]) -> Result<Ipv4Summary, Drop> {
        let summary = parse_ipv4(packet).map_err(Drop::Malformed)?;
        if summary.src != self.address {
            return Err(Drop::Spoofed(summary));
        }
        // IP options are dropped toward every destination: no client stack needs them, and
        // source routes, record route or router alert only ask routers on the way (the
        // relay's kernel first) to do more than forward.
        if summary.options {
            return Err(Drop::IpOptions(summary));
        }
        // The relay's own tunnel address answers pings, nothing else: a client measures the
        // tunnel and checks that it is alive with them. Whole echo requests only, whatever the
        // ACL says (the relay answers them itself, `daemon::datapath`); the relay's own services
        // are reached through its LAN address, under the ACL.
        if summary.dst == self.relay_address {
            return if summary.echo_request && !summary.fragment { Ok(summary) } else { Err(Drop::Denied(summary)) };
        }
        // A client's ICMP error answers a packet it received: the one it quotes must be from the
        // error's destination to this client. Quoting another client's connection would let it
        // lower that connection's path MTU or end it (through the relay's masquerade, which
        // rewrites the quote too).
        if let Some((kind, quoted)) = summary.icmp_error {
            if !matches!(kind, 3 | 11 | 12) || quoted != Some((summary.dst, self.address)) {
                return Err(Drop::IcmpError(summary));
            }
        }
        let dst = summary.dst;
        if dst.is_broadcast() || dst.is_multicast() || names_all_of(self.pool, dst) || names_all_of(self.lan, dst) {
            return Err(Drop::NotAHost(summary));
        }
        let to_pool = self.pool.contains(dst);
        if to_pool && !self.client_to_client {
            return Err(Drop::ClientToClient(summary));
        }
        // Another client is a destination like any other: client-to-client only lets the ACL
        // decide.
        if self.acl.allows(&summary) {
            Ok(summary)
        } else {
            Err(Drop::Denied(summary))
        }
    }
}

/// Whether `address` is `network`'s own address or its broadcast address (a /31 or /32 has
/// neither).
fn names_all_of(network: Network, address: Ipv4Addr) -> bool {
    network.prefix_len() < 31 && (address == network.addr() || address == network.broadcast())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::packet::{build, PROTO_ICMP, PROTO_TCP, PROTO_UDP};

    fn filter(client_to_client: bool) -> ClientFilter {
        ClientFilter {
            address: Ipv4Addr::new(10, 8, 0, 2),
            // The pool's special addresses and the relay's own address are allowed so that
            // they are not refused by the ACL alone; one other client (10.8.0.3) is named,
            // 10.8.0.4 is not.
            acl: Acl::parse_list(
                "192.168.0.0/24, 10.8.0.1, 10.8.0.3, 10.8.0.0, 10.8.0.255, 224.0.0.0/4, 255.255.255.255",
            )
            .unwrap(),
            pool: "10.8.0.0/24".parse().unwrap(),
            lan: "192.168.0.0/24".parse().unwrap(),
            relay_address: Ipv4Addr::new(10, 8, 0, 1),
            client_to_client,
        }
    }

    /// An ICMP error of type `kind` from this client to 192.168.0.10, quoting a TCP packet
    /// `from` → `to` (192.168.0.10 → the client itself when it reports on a packet it received).
    fn icmp_error(kind: u8, from: [u8; 4], to: [u8; 4]) -> Vec<u8> {
        let quoted = build::with_ports(from, to, PROTO_TCP, 80, 40000);
        let mut icmp = vec![kind, 4, 0, 0, 0, 0, 0x02, 0x28];
        icmp.extend_from_slice(&quoted[..28]);
        build::ipv4([10, 8, 0, 2], [192, 168, 0, 10], PROTO_ICMP, 0, &icmp)
    }

    #[test]
    fn decisions_table() {
        let me = [10, 8, 0, 2];
        let ping = |src, dst| build::ipv4(src, dst, PROTO_ICMP, 0, &[8, 0, 0, 0, 0, 0, 0, 0]);
        let cases: Vec<(&str, bool, Vec<u8>, &str)> = vec![
            ("to the LAN", false, ping(me, [192, 168, 0, 10]), "ok"),
            ("spoofed LAN source", false, ping([192, 168, 0, 99], [192, 168, 0, 10]), "spoofed"),
            ("spoofed other client", false, ping([10, 8, 0, 3], [192, 168, 0, 10]), "spoofed"),
            ("to another client, off", false, ping(me, [10, 8, 0, 3]), "c2c"),
            ("to another client, on, ACL allows", true, ping(me, [10, 8, 0, 3]), "ok"),
            ("to another client, on, ACL denies", true, ping(me, [10, 8, 0, 4]), "denied"),
            (
                "tcp to another client outside the ACL",
                true,
                build::with_ports(me, [10, 8, 0, 4], PROTO_TCP, 1, 22),
                "denied",
            ),
            ("to the pool's network address", true, ping(me, [10, 8, 0, 0]), "not-a-host"),
            ("to the pool's broadcast address", true, ping(me, [10, 8, 0, 255]), "not-a-host"),
            ("to the pool's broadcast address, c2c off", false, ping(me, [10, 8, 0, 255]), "not-a-host"),
            // The ACL reaches the whole LAN, yet its broadcast and network addresses would be
            // taken by the relay's own stack (its DNS, NetBIOS or mDNS services).
            (
                "udp to the LAN's broadcast address",
                false,
                build::with_ports(me, [192, 168, 0, 255], PROTO_UDP, 5000, 53),
                "not-a-host",
            ),
            ("to the LAN's network address", false, ping(me, [192, 168, 0, 0]), "not-a-host"),
            ("to everyone", false, build::with_ports(me, [255, 255, 255, 255], PROTO_UDP, 68, 67), "not-a-host"),
            ("to the mDNS group", false, build::with_ports(me, [224, 0, 0, 251], PROTO_UDP, 5353, 5353), "not-a-host"),
            ("ping to the relay", false, ping(me, [10, 8, 0, 1]), "ok"),
            ("port unreachable about its own packet", false, icmp_error(3, [192, 168, 0, 10], me), "ok"),
            ("time exceeded about its own packet", false, icmp_error(11, [192, 168, 0, 10], me), "ok"),
            ("mtu error about another client's packet", false, icmp_error(3, [192, 168, 0, 10], [10, 8, 0, 3]), "icmp"),
            ("error about a packet from elsewhere", false, icmp_error(3, [192, 168, 0, 11], me), "icmp"),
            ("redirect", false, icmp_error(5, [192, 168, 0, 10], me), "icmp"),
            ("source quench", false, icmp_error(4, [192, 168, 0, 10], me), "icmp"),
            (
                "error with its quote cut short",
                false,
                build::ipv4(me, [192, 168, 0, 10], PROTO_ICMP, 0, &[3, 4, 0, 0, 0, 0, 2, 40, 0x45, 0]),
                "icmp",
            ),
            (
                "other icmp to the relay",
                false,
                build::ipv4(me, [10, 8, 0, 1], PROTO_ICMP, 0, &[3, 3, 0, 0, 0, 0, 0, 0]),
                "denied",
            ),
            ("outside the ACL", false, build::with_ports(me, [1, 1, 1, 1], PROTO_TCP, 1, 443), "denied"),
            ("garbage", false, vec![0x45, 0, 0], "malformed"),
            // Toward the relay's own tunnel address only whole echo requests without options,
            // whatever the ACL says.
            (
                "first fragment of a ping to the relay",
                false,
                build::ipv4(me, [10, 8, 0, 1], PROTO_ICMP, 0x2000, &[8, 0, 0, 0, 0, 0, 0, 0]),
                "denied",
            ),
            (
                "later fragment to the relay",
                false,
                build::ipv4(me, [10, 8, 0, 1], PROTO_ICMP, 1, &[8, 0, 0, 0, 0, 0, 0, 0]),
                "denied",
            ),
            (
                "echo reply to the relay",
                true,
                build::ipv4(me, [10, 8, 0, 1], PROTO_ICMP, 0, &[0, 0, 0, 0, 0, 0, 0, 0]),
                "denied",
            ),
            (
                "tcp to the relay, though the ACL names it",
                true,
                build::with_ports(me, [10, 8, 0, 1], PROTO_TCP, 1, 22),
                "denied",
            ),
            // IP options are dropped toward every destination.
            (
                "ping to the relay with options",
                false,
                build::with_options(me, [10, 8, 0, 1], PROTO_ICMP, &[8, 0, 0, 0, 0, 0, 0, 0]),
                "options",
            ),
            (
                "to the LAN with options",
                false,
                build::with_options(me, [192, 168, 0, 10], PROTO_ICMP, &[8, 0, 0, 0, 0, 0, 0, 0]),
                "options",
            ),
            (
                "to another client with options",
                true,
                build::with_options(me, [10, 8, 0, 3], PROTO_ICMP, &[8, 0, 0, 0, 0, 0, 0, 0]),
                "options",
            ),
        ];
        for (name, c2c, packet, want) in cases {
            let got = match filter(c2c).check(&packet) {
                Ok(_) => "ok",
                Err(Drop::Spoofed(_)) => "spoofed",
                Err(Drop::ClientToClient(_)) => "c2c",
                Err(Drop::Denied(_)) => "denied",
                Err(Drop::Malformed(_)) => "malformed",
                Err(Drop::IcmpError(_)) => "icmp",
                Err(Drop::NotAHost(_)) => "not-a-host",
                Err(Drop::IpOptions(_)) => "options",
            };
            assert_eq!(got, want, "{name}");
        }
    }
}
