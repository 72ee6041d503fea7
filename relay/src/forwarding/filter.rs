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
    /// The destination is the pool's network or broadcast address (no client has it; a
    /// packet there would reach every client or the relay's own stack as a broadcast).
    PoolSpecial(Ipv4Summary),
}

impl ClientFilter {
    /// Decides whether `packet` may go out to the tun device.
    pub fn check(&self, packet: &[u8]) -> Result<Ipv4Summary, Drop> {
        let summary = parse_ipv4(packet).map_err(Drop::Malformed)?;
        if summary.src != self.address {
            return Err(Drop::Spoofed(summary));
        }
        let to_pool = self.pool.contains(summary.dst);
        if to_pool && (summary.dst == self.pool.addr() || summary.dst == self.pool.broadcast()) {
            return Err(Drop::PoolSpecial(summary));
        }
        if to_pool && summary.dst != self.relay_address && !self.client_to_client {
            return Err(Drop::ClientToClient(summary));
        }
        // Pinging the relay's tunnel address is how a client measures the tunnel itself; any
        // other traffic to the relay (its own services) still needs the ACL. Another client is
        // a destination like any other: client-to-client only lets the ACL decide.
        let ping_to_relay = summary.dst == self.relay_address && summary.echo_request;
        if ping_to_relay || self.acl.allows(&summary) {
            Ok(summary)
        } else {
            Err(Drop::Denied(summary))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::packet::{build, PROTO_ICMP, PROTO_TCP};

    fn filter(client_to_client: bool) -> ClientFilter {
        ClientFilter {
            address: Ipv4Addr::new(10, 8, 0, 2),
            // The whole pool is allowed so that the pool's special addresses are not refused by
            // the ACL alone; one other client (10.8.0.3) is named, 10.8.0.4 is not.
            acl: Acl::parse_list("192.168.0.0/24, 10.8.0.3, 10.8.0.0, 10.8.0.255").unwrap(),
            pool: "10.8.0.0/24".parse().unwrap(),
            relay_address: Ipv4Addr::new(10, 8, 0, 1),
            client_to_client,
        }
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
            ("tcp to another client outside the ACL", true, build::with_ports(me, [10, 8, 0, 4], PROTO_TCP, 1, 22), "denied"),
            ("to the pool's network address", true, ping(me, [10, 8, 0, 0]), "pool-special"),
            ("to the pool's broadcast address", true, ping(me, [10, 8, 0, 255]), "pool-special"),
            ("to the pool's broadcast address, c2c off", false, ping(me, [10, 8, 0, 255]), "pool-special"),
            ("ping to the relay", false, ping(me, [10, 8, 0, 1]), "ok"),
            ("other icmp to the relay", false, build::ipv4(me, [10, 8, 0, 1], PROTO_ICMP, 0, &[3, 3, 0, 0, 0, 0, 0, 0]), "denied"),
            ("tcp to the relay, not in ACL", false, build::with_ports(me, [10, 8, 0, 1], PROTO_TCP, 1, 22), "denied"),
            ("outside the ACL", false, build::with_ports(me, [1, 1, 1, 1], PROTO_TCP, 1, 443), "denied"),
            ("garbage", false, vec![0x45, 0, 0], "malformed"),
        ];
        for (name, c2c, packet, want) in cases {
            let got = match filter(c2c).check(&packet) {
                Ok(_) => "ok",
                Err(Drop::Spoofed(_)) => "spoofed",
                Err(Drop::ClientToClient(_)) => "c2c",
                Err(Drop::Denied(_)) => "denied",
                Err(Drop::Malformed(_)) => "malformed",
                Err(Drop::PoolSpecial(_)) => "pool-special",
            };
            assert_eq!(got, want, "{name}");
        }
    }
}
