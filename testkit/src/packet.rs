//! Hand-built IPv4 packets for injecting straight into a tunnel (spoofing tests) or a
//! session queue.

use std::net::Ipv4Addr;

/// An IPv4/UDP packet from `src:sport` to `dst:dport` carrying `payload` (UDP checksum 0,
/// which IPv4 allows; the IP header checksum is correct).
pub fn udp(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let total = 20 + 8 + payload.len();
    let mut p = Vec::with_capacity(total);
    p.extend_from_slice(&[0x45, 0]);
    p.extend_from_slice(&(total as u16).to_be_bytes());
    p.extend_from_slice(&[0x12, 0x34, 0x40, 0x00, 64, 17, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let checksum = ipv4_checksum(&p[..20]);
    p[10..12].copy_from_slice(&checksum.to_be_bytes());
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}

/// IP protocol numbers used by the crafted packets.
pub const ICMP: u8 = 1;
/// TCP.
pub const TCP: u8 = 6;
/// UDP.
pub const UDP: u8 = 17;

/// An IPv4 packet with every header field under the test's control: options, fragment
/// fields, identification (to find the packet again in a capture). Checksums are computed.
#[derive(Clone, Debug)]
pub struct Ipv4 {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Protocol number.
    pub protocol: u8,
    /// Identification field.
    pub id: u16,
    /// Time to live.
    pub ttl: u8,
    /// The more-fragments flag.
    pub more_fragments: bool,
    /// Fragment offset in 8-byte units.
    pub fragment_offset: u16,
    /// Option bytes (padded to a multiple of 4 by [`Ipv4::build`]).
    pub options: Vec<u8>,
    /// Everything after the IP header.
    pub payload: Vec<u8>,
}

impl Ipv4 {
    /// An unfragmented packet without options.
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, payload: Vec<u8>) -> Self {
        Self {
            src,
            dst,
            protocol,
            id: 0x1234,
            ttl: 64,
            more_fragments: false,
            fragment_offset: 0,
            options: Vec::new(),
            payload,
        }
    }

    /// The packet's bytes.
    pub fn build(&self) -> Vec<u8> {
        let mut options = self.options.clone();
        options.resize(options.len().div_ceil(4) * 4, 0);
        let header_len = 20 + options.len();
        let total = header_len + self.payload.len();
        let flags_offset = (u16::from(self.more_fragments) << 13) | (self.fragment_offset & 0x1fff);
        let mut p = Vec::with_capacity(total);
        p.push(0x40 | (header_len / 4) as u8);
        p.push(0);
        p.extend_from_slice(&(total as u16).to_be_bytes());
        p.extend_from_slice(&self.id.to_be_bytes());
        p.extend_from_slice(&flags_offset.to_be_bytes());
        p.extend_from_slice(&[self.ttl, self.protocol, 0, 0]);
        p.extend_from_slice(&self.src.octets());
        p.extend_from_slice(&self.dst.octets());
        p.extend_from_slice(&options);
        let checksum = ipv4_checksum(&p[..header_len]);
        p[10..12].copy_from_slice(&checksum.to_be_bytes());
        p.extend_from_slice(&self.payload);
        p
    }
}

/// A UDP datagram (header + payload) from `src:sport` to `dst:dport`, checksum included.
pub fn udp_datagram(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut d = Vec::with_capacity(8 + payload.len());
    d.extend_from_slice(&sport.to_be_bytes());
    d.extend_from_slice(&dport.to_be_bytes());
    d.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(payload);
    let checksum = transport_checksum(src, dst, UDP, &d);
    d[6..8].copy_from_slice(&(if checksum == 0 { 0xffff } else { checksum }).to_be_bytes());
    d
}

/// A TCP SYN segment (20-byte header, no options) from `src:sport` to `dst:dport`.
pub fn tcp_syn(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16) -> Vec<u8> {
    let mut t = Vec::with_capacity(20);
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&0x0102_0304u32.to_be_bytes()); // sequence
    t.extend_from_slice(&[0, 0, 0, 0]); // acknowledgement
    t.extend_from_slice(&[0x50, 0x02]); // 5 words, SYN
    t.extend_from_slice(&64240u16.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
    let checksum = transport_checksum(src, dst, TCP, &t);
    t[16..18].copy_from_slice(&checksum.to_be_bytes());
    t
}

/// An ICMP message of `kind`/`code` with the 4 header bytes after the checksum (`rest`) and
/// `data`, checksum included.
pub fn icmp(kind: u8, code: u8, rest: [u8; 4], data: &[u8]) -> Vec<u8> {
    let mut m = vec![kind, code, 0, 0];
    m.extend_from_slice(&rest);
    m.extend_from_slice(data);
    let checksum = ipv4_checksum(&m);
    m[2..4].copy_from_slice(&checksum.to_be_bytes());
    m
}

fn transport_checksum(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, segment: &[u8]) -> u16 {
    let mut pseudo = Vec::with_capacity(12 + segment.len());
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&[0, protocol]);
    pseudo.extend_from_slice(&(segment.len() as u16).to_be_bytes());
    pseudo.extend_from_slice(segment);
    ipv4_checksum(&pseudo)
}

/// The Internet checksum (RFC 1071) of `bytes` (an odd last byte is padded with zero).
fn ipv4_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 =
        bytes.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_checksum_verifies() {
        let p = udp(Ipv4Addr::new(10, 8, 0, 2), Ipv4Addr::new(192, 168, 0, 10), 1000, 9, b"hi");
        assert_eq!(p.len(), 30);
        assert_eq!(ipv4_checksum(&p[..20]), 0, "a correct header sums to 0xffff");
    }

    #[test]
    fn crafted_headers_carry_options_fragments_and_verify() {
        let (a, b) = (Ipv4Addr::new(10, 8, 0, 2), Ipv4Addr::new(192, 168, 0, 10));
        let mut ip = Ipv4::new(a, b, TCP, tcp_syn(a, b, 1000, 80));
        ip.options = vec![7, 7, 4, 0, 0, 0, 0]; // record route, padded to 8
        ip.more_fragments = true;
        ip.fragment_offset = 3;
        ip.id = 0x5001;
        let p = ip.build();
        assert_eq!(p[0], 0x47, "IHL 7 words");
        assert_eq!(p.len(), 28 + 20);
        assert_eq!(u16::from_be_bytes([p[6], p[7]]), 0x2003);
        assert_eq!(ipv4_checksum(&p[..28]), 0);
        assert_eq!(transport_checksum(a, b, TCP, &p[28..]), 0, "the TCP checksum verifies");
        assert_eq!(ipv4_checksum(&icmp(8, 0, [0, 1, 0, 2], b"odd")), 0, "odd-length ICMP verifies");
    }
}
