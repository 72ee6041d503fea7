//! The answer to an ICMP echo request: what the relay sends back for its own tunnel address
//! (and what the core's tests answer with).

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Packet, Ipv4Repr};

/// The echo reply to `request`, an ICMP echo request: from its destination back to its source,
/// with its identifier, sequence number and data. `None` for anything else, a fragment, or a
/// header or ICMP checksum that does not add up. The reply is never longer than the request.
pub fn reply(request: &[u8]) -> Option<Vec<u8>> {
    let checksums = ChecksumCapabilities::default();
    let ip = Ipv4Packet::new_checked(request).ok()?;
    if ip.more_frags() || ip.frag_offset() != 0 {
        return None;
    }
    let ip_repr = Ipv4Repr::parse(&ip, &checksums).ok()?;
    let icmp = Icmpv4Packet::new_checked(ip.payload()).ok()?;
    let Icmpv4Repr::EchoRequest { ident, seq_no, data } = Icmpv4Repr::parse(&icmp, &checksums).ok()? else {
        return None;
    };
    let reply = Icmpv4Repr::EchoReply { ident, seq_no, data };
    let reply_ip = Ipv4Repr {
        src_addr: ip_repr.dst_addr,
        dst_addr: ip_repr.src_addr,
        next_header: IpProtocol::Icmp,
        payload_len: reply.buffer_len(),
        hop_limit: 64,
    };
    let mut out = vec![0; reply_ip.buffer_len() + reply.buffer_len()];
    let mut packet = Ipv4Packet::new_unchecked(&mut out[..]);
    reply_ip.emit(&mut packet, &checksums);
    reply.emit(&mut Icmpv4Packet::new_unchecked(packet.payload_mut()), &checksums);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    /// An IPv4 packet from 10.8.0.2 to 10.8.0.1 with `payload`, its header checksum filled in.
    fn ipv4(protocol: u8, fragment_offset: u16, payload: &[u8]) -> Vec<u8> {
        let total = u16::try_from(20 + payload.len()).unwrap();
        let mut p = vec![0u8; usize::from(total)];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p[6..8].copy_from_slice(&fragment_offset.to_be_bytes());
        p[8] = 64;
        p[9] = protocol;
        p[12..16].copy_from_slice(&[10, 8, 0, 2]);
        p[16..20].copy_from_slice(&[10, 8, 0, 1]);
        p[20..].copy_from_slice(payload);
        Ipv4Packet::new_unchecked(&mut p[..]).fill_checksum();
        p
    }

    /// An echo request with a valid ICMP checksum: identifier 0x1234, sequence 7, `data`.
    fn echo_request(data: &[u8]) -> Vec<u8> {
        let mut icmp = vec![8, 0, 0, 0, 0x12, 0x34, 0, 7];
        icmp.extend_from_slice(data);
        Icmpv4Packet::new_unchecked(&mut icmp[..]).fill_checksum();
        ipv4(1, 0, &icmp)
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn an_echo_request_gets_its_reply_and_nothing_else_does() {
        let request = echo_request(b"abcdefgh");
        let answer = reply(&request).expect("a reply");
        let ip = Ipv4Packet::new_checked(&answer[..]).unwrap();
        assert!(ip.verify_checksum(), "the header checksum adds up");
        assert_eq!((ip.src_addr(), ip.dst_addr()), (Ipv4Addr::new(10, 8, 0, 1), Ipv4Addr::new(10, 8, 0, 2)));
        let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum(), "the ICMP checksum adds up");
        let parsed = Icmpv4Repr::parse(&icmp, &ChecksumCapabilities::default()).unwrap();
        assert_eq!(parsed, Icmpv4Repr::EchoReply { ident: 0x1234, seq_no: 7, data: b"abcdefgh" });
        assert_eq!(answer.len(), request.len());

        let mut bad_icmp = request.clone();
        bad_icmp[30] ^= 1; // a data byte: the ICMP checksum no longer adds up
        let fragment = ipv4(1, 0x2000, &request[20..]);
        let udp = ipv4(17, 0, &[0, 8, 0, 0, 0, 8, 0, 0]);
        for (name, packet) in
            [("bad ICMP checksum", &bad_icmp), ("a reply", &answer), ("a fragment", &fragment), ("UDP", &udp)]
        {
            assert_eq!(reply(packet), None, "{name}");
        }
        for cut in 0..request.len() {
            assert_eq!(reply(&request[..cut]), None, "cut at {cut}");
        }
    }
}
