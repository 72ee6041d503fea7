//! The tun device's virtio-net header: how the relay and the kernel hand each other packets
//! larger than the MTU and packets whose checksum is left to the other side.
//!
//! The device is opened with `IFF_VNET_HDR` and the offloads `TUN_F_CSUM | TUN_F_TSO4`
//! ([`crate::forwarding::device`]). Every read then starts with a 10-byte header, and the kernel
//! may give, in one read, a TCP "super-packet" of up to 64 KiB that stands for many segments
//! (what a LAN host sent with TSO, or what the home server's NIC merged with GRO), with its
//! TCP checksum left partial. One read and one record then carry what took forty before.
//!
//! Clients get every packet whole: [`from_kernel`] completes the IPv4 total length, the header
//! checksum and the TCP/UDP checksum, so a super-packet is one valid (large) IPv4 packet, which
//! the clients' netstack takes like any other. Writes carry a header that asks nothing of the
//! kernel ([`PLAIN`]).
//!
//! Sans-IO: bytes in, bytes out; every length is checked before it is used, so nothing the
//! kernel (or a LAN host behind it) hands over can panic the relay.

use smoltcp::wire::{IpProtocol, Ipv4Packet, TcpPacket, UdpPacket};

/// Length of the virtio-net header before every packet (`struct virtio_net_hdr`).
pub const HEADER_LEN: usize = 10;

/// The header of a packet that asks nothing of the kernel: no offload, checksums complete.
pub const PLAIN: [u8; HEADER_LEN] = [0; HEADER_LEN];

/// The largest IPv4 packet (its total length is 16 bits).
pub const MAX_PACKET: usize = u16::MAX as usize;

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum at `csum_start + csum_offset` is to be done.
const F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_NONE`, `_TCPV4`, and the ECN bit that may be or-ed into them.
const GSO_NONE: u8 = 0;
const GSO_TCPV4: u8 = 1;
const GSO_ECN: u8 = 0x80;

/// Where a TCP and a UDP header keep their checksum.
const TCP_CHECKSUM_AT: usize = 16;
const UDP_CHECKSUM_AT: usize = 6;

/// Why a read from the tun was not made into a packet (the packet is dropped and counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OffloadError {
    /// Shorter than the header and an IPv4 header.
    #[error("read of {0} bytes is too short for a packet")]
    TooShort(usize),
    /// Not IPv4, or its header length does not fit.
    #[error("not an IPv4 packet the relay can complete")]
    NotIpv4,
    /// Longer than an IPv4 packet can say.
    #[error("packet of {0} bytes is longer than IPv4 allows")]
    TooLong(usize),
    /// A segmentation type other than TCP over IPv4 (the relay offers no other).
    #[error("segmentation type {0:#x} was not offered")]
    UnknownGso(u8),
    /// A checksum left to do somewhere other than a TCP or UDP header's checksum field.
    #[error("checksum to complete at an unexpected place")]
    ChecksumPlace,
}

/// The header fields the relay reads (native byte order: the kernel's legacy virtio layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    flags: u8,
    gso_type: u8,
    csum_start: u16,
    csum_offset: u16,
}

impl Header {
    fn read(bytes: &[u8; HEADER_LEN]) -> Self {
        let u16_at = |i: usize| u16::from_ne_bytes([bytes[i], bytes[i + 1]]);
        Self { flags: bytes[0], gso_type: bytes[1], csum_start: u16_at(6), csum_offset: u16_at(8) }
    }
}

/// Turns one read from the tun (header, then packet) into the packet a client gets: one IPv4
/// packet whose total length, header checksum and TCP/UDP checksum are complete. Returns it as
/// a slice of `read`, completed in place.
pub fn from_kernel(read: &mut [u8]) -> Result<&mut [u8], OffloadError> {
    let len = read.len();
    let Some((header, packet)) = read.split_first_chunk_mut::<HEADER_LEN>() else {
        return Err(OffloadError::TooShort(len));
    };
    let header = Header::read(header);
    let total_len = u16::try_from(packet.len()).map_err(|_| OffloadError::TooLong(packet.len()))?;
    let super_packet = match header.gso_type & !GSO_ECN {
        GSO_NONE => false,
        GSO_TCPV4 => true,
        other => return Err(OffloadError::UnknownGso(other)),
    };
    let header_len = ipv4_header_len(packet)?;
    if super_packet {
        // The kernel leaves the length and header checksum of the segments to whoever cuts
        // them; the packet goes on whole, so they are the whole packet's.
        let mut ip = Ipv4Packet::new_unchecked(&mut *packet);
        ip.set_total_len(total_len);
        ip.fill_checksum();
    }
    if header.flags & F_NEEDS_CSUM != 0 {
        complete_checksum(packet, header_len, header)?;
    }
    Ok(packet)
}

/// The IPv4 header length of `packet`, once its version and header length fit its bytes (the
/// total length of a super-packet is the kernel's to leave unset; clients check it).
fn ipv4_header_len(packet: &[u8]) -> Result<usize, OffloadError> {
    if packet.len() < 20 {
        return Err(OffloadError::TooShort(packet.len()));
    }
    let ip = Ipv4Packet::new_unchecked(packet);
    if ip.version() != 4 {
        return Err(OffloadError::NotIpv4);
    }
    let header_len = usize::from(ip.header_len());
    if header_len < 20 || header_len > packet.len() {
        return Err(OffloadError::NotIpv4);
    }
    Ok(header_len)
}

/// Computes the TCP or UDP checksum the kernel left to do: over the pseudo-header and the
/// whole transport segment, whatever partial sum the field held.
fn complete_checksum(packet: &mut [u8], header_len: usize, header: Header) -> Result<(), OffloadError> {
    let ip = Ipv4Packet::new_unchecked(&*packet);
    let (protocol, src, dst) = (ip.next_header(), ip.src_addr().into(), ip.dst_addr().into());
    let (at, min_len) = match protocol {
        IpProtocol::Tcp => (TCP_CHECKSUM_AT, 20),
        IpProtocol::Udp => (UDP_CHECKSUM_AT, 8),
        _ => return Err(OffloadError::ChecksumPlace),
    };
    let segment = &mut packet[header_len..];
    if usize::from(header.csum_start) != header_len || usize::from(header.csum_offset) != at || segment.len() < min_len
    {
        return Err(OffloadError::ChecksumPlace);
    }
    match protocol {
        IpProtocol::Tcp => TcpPacket::new_unchecked(segment).fill_checksum(&src, &dst),
        _ => {
            let mut udp = UdpPacket::new_unchecked(segment);
            if usize::from(udp.len()) != udp.as_ref().len() {
                return Err(OffloadError::ChecksumPlace);
            }
            udp.fill_checksum(&src, &dst);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::wire::Ipv4Address;

    const SRC: Ipv4Address = Ipv4Address::new(192, 168, 0, 10);
    const DST: Ipv4Address = Ipv4Address::new(10, 8, 0, 2);

    /// An IPv4 packet of `protocol` with a transport header and `payload`, checksums complete.
    fn packet(protocol: IpProtocol, payload: &[u8]) -> Vec<u8> {
        let transport_len = if protocol == IpProtocol::Tcp { 20 } else { 8 };
        let mut bytes = vec![0u8; 20 + transport_len + payload.len()];
        let mut ip = Ipv4Packet::new_unchecked(&mut bytes[..]);
        ip.set_version(4);
        ip.set_header_len(20);
        ip.set_total_len((20 + transport_len + payload.len()) as u16);
        ip.set_hop_limit(64);
        ip.set_dont_frag(true);
        ip.set_next_header(protocol);
        ip.set_src_addr(SRC);
        ip.set_dst_addr(DST);
        ip.fill_checksum();
        let segment = &mut bytes[20..];
        if protocol == IpProtocol::Tcp {
            let mut tcp = TcpPacket::new_unchecked(&mut *segment);
            tcp.set_src_port(8080);
            tcp.set_dst_port(40000);
            tcp.set_header_len(20);
            tcp.set_ack(true);
            tcp.set_window_len(512);
            tcp.payload_mut().copy_from_slice(payload);
            tcp.fill_checksum(&SRC.into(), &DST.into());
        } else {
            let mut udp = UdpPacket::new_unchecked(&mut *segment);
            udp.set_src_port(53);
            udp.set_dst_port(40000);
            udp.set_len((8 + payload.len()) as u16);
            udp.payload_mut().copy_from_slice(payload);
            udp.fill_checksum(&SRC.into(), &DST.into());
        }
        bytes
    }

    fn read(flags: u8, gso_type: u8, csum: (u16, u16), packet: &[u8]) -> Vec<u8> {
        let mut read = vec![flags, gso_type, 0, 0, 0, 0];
        read.extend_from_slice(&csum.0.to_ne_bytes());
        read.extend_from_slice(&csum.1.to_ne_bytes());
        read.extend_from_slice(packet);
        read
    }

    fn checksums_valid(packet: &[u8]) -> bool {
        let ip = Ipv4Packet::new_checked(packet).unwrap();
        let valid = match ip.next_header() {
            IpProtocol::Tcp => TcpPacket::new_checked(ip.payload()).unwrap().verify_checksum(&SRC.into(), &DST.into()),
            _ => UdpPacket::new_checked(ip.payload()).unwrap().verify_checksum(&SRC.into(), &DST.into()),
        };
        ip.verify_checksum() && usize::from(ip.total_len()) == packet.len() && valid
    }

    #[test]
    fn a_plain_packet_passes_unchanged() {
        let whole = packet(IpProtocol::Tcp, b"hello");
        let mut bytes = read(0, GSO_NONE, (0, 0), &whole);
        assert_eq!(from_kernel(&mut bytes).unwrap(), &whole[..]);
    }

    #[test]
    fn a_super_packet_becomes_one_whole_packet_with_every_checksum_done() {
        let payload: Vec<u8> = (0..60_000u32).map(|i| (i * 7) as u8).collect();
        let mut whole = packet(IpProtocol::Tcp, &payload);
        // As the kernel hands it over: total length and header checksum of a segment, the TCP
        // checksum field holding only a partial sum.
        Ipv4Packet::new_unchecked(&mut whole[..]).set_total_len(1500);
        whole[20 + 16..20 + 18].copy_from_slice(&[0x12, 0x34]);
        let mut bytes = read(F_NEEDS_CSUM, GSO_TCPV4 | GSO_ECN, (20, 16), &whole);
        let out = from_kernel(&mut bytes).unwrap();
        assert_eq!(out.len(), 20 + 20 + 60_000);
        assert!(checksums_valid(out));
        assert_eq!(TcpPacket::new_checked(&out[20..]).unwrap().payload(), &payload[..]);
    }

    #[test]
    fn a_udp_checksum_left_to_do_is_done() {
        let whole = packet(IpProtocol::Udp, b"answer");
        let mut partial = whole.clone();
        partial[20 + 6..20 + 8].copy_from_slice(&[0, 0]);
        let mut bytes = read(F_NEEDS_CSUM, GSO_NONE, (20, 6), &partial);
        assert_eq!(from_kernel(&mut bytes).unwrap(), &whole[..]);
    }

    #[test]
    fn what_the_relay_cannot_complete_is_refused_not_guessed() {
        let tcp = packet(IpProtocol::Tcp, b"x");
        let cases: Vec<(Vec<u8>, OffloadError)> = vec![
            (vec![0; 5], OffloadError::TooShort(5)),
            (read(0, GSO_NONE, (0, 0), &tcp[..12]), OffloadError::TooShort(12)),
            (read(0, 3, (0, 0), &tcp), OffloadError::UnknownGso(3)),
            (read(0, 4, (0, 0), &tcp), OffloadError::UnknownGso(4)),
            (read(F_NEEDS_CSUM, GSO_NONE, (20, 6), &tcp), OffloadError::ChecksumPlace),
            (read(F_NEEDS_CSUM, GSO_NONE, (24, 16), &tcp), OffloadError::ChecksumPlace),
            (read(0, GSO_NONE, (0, 0), &[0x60; 40]), OffloadError::NotIpv4),
            (read(0, GSO_NONE, (0, 0), &[0x4f; 40]), OffloadError::NotIpv4),
            (read(0, GSO_TCPV4, (0, 0), &vec![0x45; MAX_PACKET + 1]), OffloadError::TooLong(MAX_PACKET + 1)),
        ];
        for (mut bytes, error) in cases {
            assert_eq!(from_kernel(&mut bytes).unwrap_err(), error);
        }
        // A checksum to do on a segment too short to hold its field.
        let mut short = tcp[..30].to_vec();
        Ipv4Packet::new_unchecked(&mut short[..]).set_total_len(30);
        let mut bytes = read(F_NEEDS_CSUM, GSO_NONE, (20, 16), &short);
        assert_eq!(from_kernel(&mut bytes).unwrap_err(), OffloadError::ChecksumPlace);
    }
}
