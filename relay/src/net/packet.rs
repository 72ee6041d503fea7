//! The IPv4 header fields the relay's forwarding decisions need, read through smoltcp's
//! checked `wire` views.
//!
//! Everything here reads untrusted bytes from a client: [`Ipv4Packet::new_checked`] proves the
//! lengths before any field is read, and a short or inconsistent packet is an error, never a
//! panic.

use smoltcp::wire::{Icmpv4Message, Icmpv4Packet, IpProtocol, Ipv4Packet, TcpPacket, UdpPacket};
use std::net::Ipv4Addr;

/// IP protocol number of ICMP.
pub const PROTO_ICMP: u8 = 1;
/// IP protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;

/// Length of an IPv4 header without options.
const MIN_HEADER_LEN: usize = 20;

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
    /// fragments and for first fragments too short to hold the transport header.
    pub ports: Option<(u16, u16)>,
    /// Whether this is a fragment other than the first (its ports cannot be known).
    pub later_fragment: bool,
    /// Whether this is any fragment of a larger datagram (first, later or last).
    pub fragment: bool,
    /// Whether the header carries IP options (it is longer than 20 bytes).
    pub options: bool,
    /// Whether this is an ICMP echo request (a ping).
    pub echo_request: bool,
    /// For an ICMP error message (destination unreachable, source quench, redirect, time
    /// exceeded, parameter problem): its type, and the source and destination of the packet it
    /// quotes (`None` when the quote is cut short).
    pub icmp_error: Option<(u8, Option<(Ipv4Addr, Ipv4Addr)>)>,
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
    /// The header checksum is wrong (the kernel would drop the packet; the relay does first).
    #[error("IPv4 header checksum is wrong")]
    BadChecksum,
}

/// Parses the IPv4 header of `packet` (and the ports or ICMP type after it).
pub fn parse_ipv4(packet: &[u8]) -> Result<Ipv4Summary, PacketError> {
    if packet.len() < MIN_HEADER_LEN {
        return Err(PacketError::TooShort(packet.len()));
    }
    // At least a whole fixed header is there, so the version may be read before the lengths
    // are checked: a packet of another version gets its own error.
    let version = Ipv4Packet::new_unchecked(packet).version();
    if version != 4 {
        return Err(PacketError::NotIpv4(version));
    }
    let ip = Ipv4Packet::new_checked(packet).map_err(|_| PacketError::BadLength)?;
    if !ip.verify_checksum() {
        return Err(PacketError::BadChecksum);
    }
    let later_fragment = ip.frag_offset() != 0;
    let first_fragment_only = !later_fragment && ip.more_frags();
    let protocol = ip.next_header();
    // The payload up to the total length (bytes after it are link padding).
    let payload = &packet[usize::from(ip.header_len())..usize::from(ip.total_len())];
    let ports = match protocol {
        _ if later_fragment => None,
        IpProtocol::Tcp => TcpPacket::new_checked(payload).ok().map(|tcp| (tcp.src_port(), tcp.dst_port())),
        // A first fragment's UDP length covers the whole datagram, more than this fragment
        // holds, so only the header's own eight bytes can be checked here.
        IpProtocol::Udp if first_fragment_only => (payload.len() >= smoltcp::wire::UDP_HEADER_LEN)
            .then(|| UdpPacket::new_unchecked(payload))
            .map(|udp| (udp.src_port(), udp.dst_port())),
        IpProtocol::Udp => UdpPacket::new_checked(payload).ok().map(|udp| (udp.src_port(), udp.dst_port())),
        _ => None,
    };
    let icmp =
        (protocol == IpProtocol::Icmp && !later_fragment).then(|| Icmpv4Packet::new_checked(payload).ok()).flatten();
    let echo_request = icmp.as_ref().is_some_and(|icmp| icmp.msg_type() == Icmpv4Message::EchoRequest);
    let icmp_error = icmp
        .as_ref()
        .map(|icmp| u8::from(icmp.msg_type()))
        .filter(|kind| ICMP_ERRORS.contains(kind))
        .map(|kind| (kind, quoted_addresses(&payload[ICMP_HEADER_LEN..])));
    Ok(Ipv4Summary {
        src: ip.src_addr(),
        dst: ip.dst_addr(),
        protocol: protocol.into(),
        ports,
        later_fragment,
        fragment: later_fragment || ip.more_frags(),
        options: usize::from(ip.header_len()) > MIN_HEADER_LEN,
        echo_request,
        icmp_error,
    })
}

/// ICMP types that report an error about another packet, which they quote.
const ICMP_ERRORS: [u8; 5] = [3, 4, 5, 11, 12];
/// The ICMP header before an error's quote (type, code, checksum, 4 bytes of the type's own).
const ICMP_HEADER_LEN: usize = 8;

/// Source and destination of the IPv4 header an ICMP error quotes.
fn quoted_addresses(quote: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr)> {
    let header = quote.get(..MIN_HEADER_LEN).filter(|h| h[0] >> 4 == 4)?;
    let address = |at: usize| Ipv4Addr::new(header[at], header[at + 1], header[at + 2], header[at + 3]);
    Some((address(12), address(16)))
}

/// The destination address of an IPv4 packet, without further checks (for routing packets the
/// kernel handed over from the tun device).
pub fn ipv4_destination(packet: &[u8]) -> Option<Ipv4Addr> {
    if packet.len() < MIN_HEADER_LEN {
        return None;
    }
    let ip = Ipv4Packet::new_unchecked(packet);
    (ip.version() == 4).then(|| ip.dst_addr())
}

/// Test helpers that build packets.
#[cfg(test)]
pub mod build {

    /// An unfragmented IPv4 packet whose header carries four bytes of options (a router
    /// alert), then `payload`.
    pub fn with_options(src: [u8; 4], dst: [u8; 4], protocol: u8, payload: &[u8]) -> Vec<u8> {
        let plain = ipv4(src, dst, protocol, 0, payload);
        let mut p = Vec::with_capacity(plain.len() + 4);
        p.extend_from_slice(&plain[..20]);
        p.extend_from_slice(&[148, 4, 0, 0]);
        p.extend_from_slice(&plain[20..]);
        p[0] = 0x46;
        let total = p.len() as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        smoltcp::wire::Ipv4Packet::new_unchecked(&mut p[..]).fill_checksum();
        p
    }

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
        smoltcp::wire::Ipv4Packet::new_unchecked(&mut p[..]).fill_checksum();
        p
    }

    /// A TCP segment (or UDP datagram) with the given ports: a 20-byte transport header whose
    /// TCP data offset or UDP length is consistent (checksums are not).
    pub fn with_ports(src: [u8; 4], dst: [u8; 4], protocol: u8, sport: u16, dport: u16) -> Vec<u8> {
        ipv4(src, dst, protocol, 0, &transport(protocol, sport, dport))
    }

    /// The 20 transport bytes of [`with_ports`].
    pub fn transport(protocol: u8, sport: u16, dport: u16) -> Vec<u8> {
        let mut payload = vec![0u8; 20];
        payload[0..2].copy_from_slice(&sport.to_be_bytes());
        payload[2..4].copy_from_slice(&dport.to_be_bytes());
        match protocol {
            super::PROTO_TCP => payload[12] = 5 << 4,
            super::PROTO_UDP => payload[4..6].copy_from_slice(&20u16.to_be_bytes()),
            _ => {}
        }
        payload
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
        assert!(!s.later_fragment && !s.fragment && !s.options);
        let with_options = with_options([10, 8, 0, 2], [192, 168, 0, 10], PROTO_ICMP, &[8, 0, 0, 0, 0, 0, 0, 0]);
        let s = parse_ipv4(&with_options).unwrap();
        assert!(s.options && s.echo_request && !s.fragment);
    }

    #[test]
    fn fragments_and_short_transport_headers_have_no_ports() {
        let later = ipv4([10, 8, 0, 2], [192, 168, 0, 10], PROTO_TCP, 185, &[0; 24]);
        let s = parse_ipv4(&later).unwrap();
        assert!(s.later_fragment && s.fragment);
        assert_eq!(s.ports, None);
        let first = ipv4([10, 8, 0, 2], [192, 168, 0, 10], PROTO_ICMP, 0x2000, &[8, 0, 0, 0, 0, 0, 0, 0]);
        let s = parse_ipv4(&first).unwrap();
        assert!(s.fragment && !s.later_fragment);
        let stub = ipv4([10, 8, 0, 2], [192, 168, 0, 10], PROTO_UDP, 0x2000, &[0, 1]);
        assert_eq!(parse_ipv4(&stub).unwrap().ports, None);
        // A first fragment of a larger UDP datagram: its length field exceeds the fragment.
        let mut first = transport(PROTO_UDP, 5000, 53);
        first[4..6].copy_from_slice(&3000u16.to_be_bytes());
        let first = ipv4([10, 8, 0, 2], [192, 168, 0, 10], PROTO_UDP, 0x2000, &first);
        assert_eq!(parse_ipv4(&first).unwrap().ports, Some((5000, 53)));
        // Unfragmented, the same inconsistent length means no ports can be trusted.
        let mut lying = transport(PROTO_UDP, 5000, 53);
        lying[4..6].copy_from_slice(&3000u16.to_be_bytes());
        assert_eq!(parse_ipv4(&ipv4([10, 8, 0, 2], [192, 168, 0, 10], PROTO_UDP, 0, &lying)).unwrap().ports, None);
    }

    #[test]
    fn tells_pings_from_other_icmp() {
        let cases: &[(&str, u8, &[u8], bool)] = &[
            ("echo request", PROTO_ICMP, &[8, 0, 0, 0, 0, 1, 0, 1], true),
            ("echo reply", PROTO_ICMP, &[0, 0, 0, 0, 0, 1, 0, 1], false),
            ("port unreachable", PROTO_ICMP, &[3, 3, 0, 0, 0, 0, 0, 0], false),
            ("truncated echo request", PROTO_ICMP, &[8, 0, 0], false),
            ("udp that looks like one", PROTO_UDP, &[8, 0, 0, 8, 0, 1, 0, 1], false),
        ];
        for (name, protocol, payload, want) in cases {
            let packet = ipv4([10, 8, 0, 2], [10, 8, 0, 1], *protocol, 0, payload);
            assert_eq!(parse_ipv4(&packet).unwrap().echo_request, *want, "{name}");
        }
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
        let mut bad_checksum = good.clone();
        bad_checksum[10] ^= 0xff;
        let cases: &[(&[u8], PacketError)] = &[
            (&[], PacketError::TooShort(0)),
            (&good[..19], PacketError::TooShort(19)),
            (&bad_ihl, PacketError::BadLength),
            (&tiny_ihl, PacketError::BadLength),
            (&long_total, PacketError::BadLength),
            (&v6, PacketError::NotIpv4(6)),
            (&bad_checksum, PacketError::BadChecksum),
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
