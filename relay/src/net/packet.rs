//! A checked view of the IPv4 header fields the relay's forwarding decisions need.
//!
//! Everything here reads untrusted bytes from a client: every length is checked before use, and
//! a short or inconsistent packet is an error, never a panic.

use std::net::Ipv4Addr;

/// IP protocol number of ICMP.
#[allow(dead_code)]
pub const PROTO_ICMP: u8 = 1;
/// IP protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;

/// The header fields of one IPv4 packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Summary {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP, ...).
    pub protocol: u8,
    /// TCP/UDP source and destination port; `None` for other protocols, for non-first
    /// fragments and for first fragments too short to hold the ports.
    pub ports: Option<(u16, u16)>,
    /// Whether this is a fragment other than the first (its ports cannot be known).
    pub later_fragment: bool,
}

/// Why bytes were not accepted as an IPv4 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Shorter than a minimal IPv4 header.
    #[error("packet of {0} bytes is shorter than an IPv4 header")]
    TooShort(usize),
    /// The version nibble is not 4.
    #[error("IP version {0} is not supported")]
    NotIpv4(u8),
    /// Header length or total length disagree with the bytes present.
    #[error("IPv4 header lengths are inconsistent")]
    BadLength,
}

/// Parses the IPv4 header of `packet`.
pub fn parse_ipv4(packet: &[u8]) -> Result<Ipv4Summary, PacketError> {
    if packet.len() < 20 {
        return Err(PacketError::TooShort(packet.len()));
    }
    let version = packet[0] >> 4;
    if version != 4 {
        return Err(PacketError::NotIpv4(version));
    }
    let header_len = usize::from(packet[0] & 0x0f) * 4;
    let total_len = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    if header_len < 20 || total_len < header_len || total_len > packet.len() {
        return Err(PacketError::BadLength);
    }
    let fragment_offset = u16::from_be_bytes([packet[6], packet[7]]) & 0x1fff;
    let protocol = packet[9];
    let src = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
    let dst = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
    let later_fragment = fragment_offset != 0;
    let payload = &packet[header_len..total_len];
    let ports = match protocol {
        PROTO_TCP | PROTO_UDP if !later_fragment && payload.len() >= 4 => Some((
            u16::from_be_bytes([payload[0], payload[1]]),
            u16::from_be_bytes([payload[2], payload[3]]),
        )),
        _ => None,
    };
    Ok(Ipv4Summary { src, dst, protocol, ports, later_fragment })
}

/// The destination address of an IPv4 packet, without further checks (for routing packets the
/// kernel handed over from the tun device).
pub fn ipv4_destination(packet: &[u8]) -> Option<Ipv4Addr> {
    if packet.len() < 20 || packet[0] >> 4 != 4 {
        return None;
    }
    Some(Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]))
}

/// Test helpers that build packets.
#[cfg(test)]
pub mod build {

    /// An IPv4 packet with a 20-byte header and `payload`.
    pub fn ipv4(src: [u8; 4], dst: [u8; 4], protocol: u8, fragment_offset: u16, payload: &[u8]) -> Vec<u8> {
        let total = 20 + payload.len();
        let mut p = vec![0u8; total];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        p[6..8].copy_from_slice(&fragment_offset.to_be_bytes());
        p[8] = 64;
        p[9] = protocol;
        p[12..16].copy_from_slice(&src);
        p[16..20].copy_from_slice(&dst);
        p[20..].copy_from_slice(payload);
        p
    }

    /// A TCP (or UDP) packet with the given ports and a few bytes after them.
    pub fn with_ports(src: [u8; 4], dst: [u8; 4], protocol: u8, sport: u16, dport: u16) -> Vec<u8> {
        let mut payload = vec![0u8; 20];
        payload[0..2].copy_from_slice(&sport.to_be_bytes());
        payload[2..4].copy_from_slice(&dport.to_be_bytes());
        ipv4(src, dst, protocol, 0, &payload)
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;

    #[test]
    fn reads_tcp_ports() {
        let p = with_ports([10, 8, 0, 2], [192, 168, 0, 10], PROTO_TCP, 40000, 80);
        let s = parse_ipv4(&p).unwrap();
        assert_eq!(s.src, Ipv4Addr::new(10, 8, 0, 2));
        assert_eq!(s.dst, Ipv4Addr::new(192, 168, 0, 10));
        assert_eq!(s.ports, Some((40000, 80)));
        assert!(!s.later_fragment);
    }

    #[test]
    fn fragments_and_short_transport_headers_have_no_ports() {
        let later = ipv4([10, 8, 0, 2], [192, 168, 0, 10], PROTO_TCP, 185, &[0; 24]);
        let s = parse_ipv4(&later).unwrap();
        assert!(s.later_fragment);
        assert_eq!(s.ports, None);
        let stub = ipv4([10, 8, 0, 2], [192, 168, 0, 10], PROTO_UDP, 0x2000, &[0, 1]);
        assert_eq!(parse_ipv4(&stub).unwrap().ports, None);
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let good = with_ports([1, 1, 1, 1], [2, 2, 2, 2], PROTO_UDP, 1, 2);
        let mut bad_ihl = good.clone();
        bad_ihl[0] = 0x4f; // 60-byte header in a 40-byte packet
        let mut tiny_ihl = good.clone();
        tiny_ihl[0] = 0x44;
        let mut long_total = good.clone();
        long_total[2..4].copy_from_slice(&1000u16.to_be_bytes());
        let mut v6 = good.clone();
        v6[0] = 0x60;
        let cases: &[(&[u8], PacketError)] = &[
            (&[], PacketError::TooShort(0)),
            (&good[..19], PacketError::TooShort(19)),
            (&bad_ihl, PacketError::BadLength),
            (&tiny_ihl, PacketError::BadLength),
            (&long_total, PacketError::BadLength),
            (&v6, PacketError::NotIpv4(6)),
        ];
        for (i, (bytes, want)) in cases.iter().enumerate() {
            assert_eq!(parse_ipv4(bytes), Err(*want), "case {i}");
        }
        for len in 0..good.len() {
            let _ = parse_ipv4(&good[..len]);
            let _ = ipv4_destination(&good[..len]);
        }
    }
}
