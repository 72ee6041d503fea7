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

fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], c[1]]))).sum();
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
}
