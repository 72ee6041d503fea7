//! The tun device's virtio-net header: how the relay and the kernel hand each other packets
//! larger than the MTU and packets whose checksum is left to the other side.
//!
//! The device is opened with `IFF_VNET_HDR` and the offloads `TUN_F_CSUM | TUN_F_TSO4`
//! ([`crate::forwarding::device`]). Every read then starts with a 10-byte header, and the kernel
//! may give, in one read, a TCP "super-packet" of up to 64 KiB that stands for many segments
//! (what a LAN host sent with TSO, or what the home server's NIC merged with GRO), with its
//! TCP checksum left partial. One read and one record then carry what took forty before.
//!
//! Clients get every packet whole: [`from_kernel`] completes the IPv4 total length and header
//! checksum, so a super-packet is one valid (large) IPv4 packet, which the clients' netstack
//! takes like any other. TCP checksums are the relay's to vouch for, not the clients' to check
//! ([`hometun_shared::control::Features::tcp_checksum_checked`]): one the kernel left to compute
//! (the data never crossed a wire since it was summed, or will be) is left as it is, one the
//! kernel verified is taken, and any other is checked here, so a TCP packet broken on a LAN
//! wire is dropped before it is sealed. Records are authenticated from here to the device, so
//! the device's own pass over every byte would find nothing more. UDP checksums left to do are
//! completed (devices check those).
//!
//! The other way works the same: a client may send TCP segments larger than the tun's MTU
//! (the relay told it the size it takes, and raised the MSS its LAN peers announce, see
//! [`super::mss`]); [`to_kernel`] gives such a packet a header that asks the kernel to cut it
//! into MTU-sized segments and do their checksums, as it does for its own sockets' data. Every
//! other packet goes behind a header that asks nothing ([`PLAIN`]).
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
/// `VIRTIO_NET_HDR_F_DATA_VALID`: the kernel (or the network card) verified the checksum.
const F_DATA_VALID: u8 = 2;
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
    /// A packet over the tun's MTU that is not one whole TCP segment the kernel could cut.
    #[error("packet of {0} bytes is over the MTU and not a TCP segment the kernel can cut")]
    Unsegmentable(usize),
    /// A TCP packet whose checksum nobody vouched for and which does not add up: broken on
    /// its way from the LAN host.
    #[error("TCP checksum does not add up")]
    BadChecksum,
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
/// packet whose total length, header checksum and UDP checksum are complete and whose TCP
/// checksum was vouched for (see the module's notes). Returns it as a slice of `read`,
/// completed in place.
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
    } else if header.flags & F_DATA_VALID == 0 {
        check_tcp_checksum(packet, header_len)?;
    }
    Ok(packet)
}

/// The header for writing `packet` to a tun whose MTU is `mtu`. A whole TCP segment gets a
/// request to compute its checksum, which clients may leave out
/// ([`hometun_shared::control::Features::tcp_checksum`]); one larger than the MTU also a request
/// to cut it into segments of at most `mtu` bytes (each with the same TCP header and options,
/// the kernel numbering and checksumming them). The TCP checksum field is set to what the
/// kernel starts from: the pseudo-header's sum over the whole length. Any other packet within
/// the MTU goes behind [`PLAIN`], unchanged; any other packet over it is refused (the caller
/// drops and counts it).
pub fn to_kernel(packet: &mut [u8], mtu: usize) -> Result<[u8; HEADER_LEN], OffloadError> {
    let len = packet.len();
    let Some(headers) = tcp_segment_headers(packet) else {
        return if len <= mtu { Ok(PLAIN) } else { Err(OffloadError::Unsegmentable(len)) };
    };
    let mut header = [0u8; HEADER_LEN];
    if len > mtu {
        // The kernel refuses a segment size too small to carry data.
        if headers.tcp >= len || mtu < headers.tcp + 8 {
            return Err(OffloadError::Unsegmentable(len));
        }
        let cwr = TcpPacket::new_unchecked(&packet[headers.ip..]).cwr();
        header[1] = if cwr { GSO_TCPV4 | GSO_ECN } else { GSO_TCPV4 };
        header[2..4].copy_from_slice(&(headers.tcp as u16).to_ne_bytes());
        header[4..6].copy_from_slice(&((mtu - headers.tcp) as u16).to_ne_bytes());
    }
    let ip = Ipv4Packet::new_unchecked(&*packet);
    let (src, dst) = (ip.src_addr().octets(), ip.dst_addr().octets());
    let sum = pseudo_header_sum(src, dst, IpProtocol::Tcp.into(), (len - headers.ip) as u16);
    let at = headers.ip + TCP_CHECKSUM_AT;
    packet[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    header[0] = F_NEEDS_CSUM;
    header[6..8].copy_from_slice(&(headers.ip as u16).to_ne_bytes());
    header[8..10].copy_from_slice(&(TCP_CHECKSUM_AT as u16).to_ne_bytes());
    Ok(header)
}

/// Where a whole, unfragmented IPv4 TCP packet's headers end: after the IPv4 header (`ip`)
/// and after the TCP header (`tcp`). `None` for anything else.
struct Headers {
    ip: usize,
    tcp: usize,
}

fn tcp_segment_headers(packet: &[u8]) -> Option<Headers> {
    let len = packet.len();
    let ip_len = ipv4_header_len(packet).ok()?;
    let ip = Ipv4Packet::new_unchecked(packet);
    let whole = usize::from(ip.total_len()) == len && len <= MAX_PACKET;
    let fragment = ip.more_frags() || ip.frag_offset() != 0;
    if !whole || fragment || ip.next_header() != IpProtocol::Tcp || len < ip_len + 20 {
        return None;
    }
    let tcp_len = usize::from(TcpPacket::new_unchecked(&packet[ip_len..]).header_len());
    (tcp_len >= 20 && ip_len + tcp_len <= len).then_some(Headers { ip: ip_len, tcp: ip_len + tcp_len })
}

/// The ones'-complement sum (folded, not inverted) of an IPv4 pseudo-header: what a checksum
/// the kernel is asked to complete starts from.
fn pseudo_header_sum(src: [u8; 4], dst: [u8; 4], protocol: u8, length: u16) -> u16 {
    let word = |b: [u8; 2]| u32::from(u16::from_be_bytes(b));
    let mut sum = word([src[0], src[1]])
        + word([src[2], src[3]])
        + word([dst[0], dst[1]])
        + word([dst[2], dst[3]])
        + u32::from(protocol)
        + u32::from(length);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
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

/// Checks the checksum of an unfragmented TCP packet over its IPv4 total length. Anything else
/// passes: devices check UDP and ICMP checksums themselves, and drop fragments and packets
/// longer than what carries them.
fn check_tcp_checksum(packet: &[u8], header_len: usize) -> Result<(), OffloadError> {
    let ip = Ipv4Packet::new_unchecked(packet);
    let end = usize::from(ip.total_len());
    let fragment = ip.more_frags() || ip.frag_offset() != 0;
    if ip.next_header() != IpProtocol::Tcp || fragment || end > packet.len() || end < header_len + 20 {
        return Ok(());
    }
    let (src, dst) = (ip.src_addr().into(), ip.dst_addr().into());
    match TcpPacket::new_unchecked(&packet[header_len..end]).verify_checksum(&src, &dst) {
        true => Ok(()),
        false => Err(OffloadError::BadChecksum),
    }
}

/// The TCP or UDP checksum the kernel left to do, once it is where it belongs: a TCP one is
/// left as it is (the pseudo-header's sum), a UDP one is computed over the pseudo-header and
/// the whole datagram, whatever partial sum the field held.
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
    if protocol == IpProtocol::Udp {
        let mut udp = UdpPacket::new_unchecked(segment);
        if usize::from(udp.len()) != udp.as_ref().len() {
            return Err(OffloadError::ChecksumPlace);
        }
        udp.fill_checksum(&src, &dst);
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
    fn a_super_packet_becomes_one_whole_packet_its_tcp_checksum_left_as_the_kernel_gave_it() {
        let payload: Vec<u8> = (0..60_000u32).map(|i| (i * 7) as u8).collect();
        let mut whole = packet(IpProtocol::Tcp, &payload);
        // As the kernel hands it over: total length and header checksum of a segment, the TCP
        // checksum field holding only a partial sum.
        Ipv4Packet::new_unchecked(&mut whole[..]).set_total_len(1500);
        whole[20 + 16..20 + 18].copy_from_slice(&[0x12, 0x34]);
        let mut bytes = read(F_NEEDS_CSUM, GSO_TCPV4 | GSO_ECN, (20, 16), &whole);
        let out = from_kernel(&mut bytes).unwrap();
        assert_eq!(out.len(), 20 + 20 + 60_000);
        let ip = Ipv4Packet::new_checked(&*out).unwrap();
        assert!(ip.verify_checksum() && usize::from(ip.total_len()) == out.len(), "a whole IPv4 packet");
        assert_eq!(&out[20 + 16..20 + 18], &[0x12, 0x34], "no pass over the data: devices do not check it");
        assert_eq!(TcpPacket::new_checked(&out[20..]).unwrap().payload(), &payload[..]);
    }

    #[test]
    fn a_tcp_checksum_nobody_vouched_for_is_checked_here() {
        let good = packet(IpProtocol::Tcp, &[7; 1380]);
        let mut broken = good.clone();
        broken[20 + 20 + 700] ^= 0x10; // one bit flipped on a LAN wire
        let mut bytes = read(0, GSO_NONE, (0, 0), &good);
        assert_eq!(from_kernel(&mut bytes).unwrap(), &good[..]);
        let mut bytes = read(0, GSO_NONE, (0, 0), &broken);
        assert_eq!(from_kernel(&mut bytes).unwrap_err(), OffloadError::BadChecksum);
        // The kernel (or the network card) verified it: taken without a second pass.
        let mut bytes = read(F_DATA_VALID, GSO_NONE, (0, 0), &broken);
        assert_eq!(from_kernel(&mut bytes).unwrap(), &broken[..]);
        // Bytes after the IPv4 total length are not the segment's.
        let mut padded = good.clone();
        padded.extend_from_slice(&[0xee; 6]);
        let mut bytes = read(0, GSO_NONE, (0, 0), &padded);
        assert_eq!(from_kernel(&mut bytes).unwrap(), &padded[..]);
        // UDP checksums are the devices' to check.
        let mut udp = packet(IpProtocol::Udp, b"answer");
        udp[20 + 8] ^= 0x10;
        let mut bytes = read(0, GSO_NONE, (0, 0), &udp);
        assert_eq!(from_kernel(&mut bytes).unwrap(), &udp[..]);
    }

    #[test]
    fn a_udp_checksum_left_to_do_is_done() {
        let whole = packet(IpProtocol::Udp, b"answer");
        let mut partial = whole.clone();
        partial[20 + 6..20 + 8].copy_from_slice(&[0, 0]);
        let mut bytes = read(F_NEEDS_CSUM, GSO_NONE, (20, 6), &partial);
        assert_eq!(from_kernel(&mut bytes).unwrap(), &whole[..]);
    }

    /// What the kernel does with a checksum it is asked to complete: sums everything from
    /// `csum_start`, starting from what the field holds, and stores the complement.
    fn complete_as_the_kernel_does(packet: &mut [u8], start: usize, offset: usize) {
        let mut sum: u32 =
            packet[start..].chunks(2).map(|c| u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0))).sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        packet[start + offset..start + offset + 2].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    }

    fn field(header: &[u8; HEADER_LEN], at: usize) -> usize {
        usize::from(u16::from_ne_bytes([header[at], header[at + 1]]))
    }

    #[test]
    fn a_udp_packet_within_the_mtu_goes_behind_a_plain_header_unchanged() {
        let whole = packet(IpProtocol::Udp, &[7; 1380]);
        let mut written = whole.clone();
        assert_eq!(to_kernel(&mut written, 1420).unwrap(), PLAIN);
        assert_eq!(written, whole);
        // So does what is not a whole TCP segment: the kernel decides what becomes of it.
        let mut fragment = packet(IpProtocol::Tcp, &[7; 100]);
        Ipv4Packet::new_unchecked(&mut fragment[..]).set_more_frags(true);
        let before = fragment.clone();
        assert_eq!(to_kernel(&mut fragment, 1420).unwrap(), PLAIN);
        assert_eq!(fragment, before);
    }

    #[test]
    fn a_tcp_segment_within_the_mtu_has_its_checksum_done_whatever_it_carried() {
        let whole = packet(IpProtocol::Tcp, &[7; 1380]);
        for carried in [[0, 0], [0xde, 0xad]] {
            // A client that leaves the checksum out (or got it wrong).
            let mut written = whole.clone();
            written[20 + 16..20 + 18].copy_from_slice(&carried);
            let header = to_kernel(&mut written, 1420).unwrap();
            assert_eq!((header[0], header[1]), (F_NEEDS_CSUM, GSO_NONE), "no cutting, only the checksum");
            assert_eq!((field(&header, 6), field(&header, 8)), (20, 16));
            complete_as_the_kernel_does(&mut written, 20, 16);
            assert_eq!(written, whole, "the kernel's checksum is the right one");
        }
    }

    #[test]
    fn a_large_client_segment_is_handed_to_the_kernel_to_cut_into_mtu_sized_ones() {
        let payload: Vec<u8> = (0..60_000u32).map(|i| (i * 13) as u8).collect();
        let mut big = packet(IpProtocol::Tcp, &payload);
        let header = to_kernel(&mut big, 1420).unwrap();
        assert_eq!((header[0], header[1]), (F_NEEDS_CSUM, GSO_TCPV4));
        assert_eq!(field(&header, 2), 40, "headers the kernel copies into every segment");
        assert_eq!(field(&header, 4), 1380, "payload per segment: each segment is 1420 bytes");
        assert_eq!((field(&header, 6), field(&header, 8)), (20, 16));
        // The field holds the pseudo-header's sum: completed as the kernel does, the
        // checksum over the whole segment is right (the kernel then adjusts it per piece).
        complete_as_the_kernel_does(&mut big, 20, 16);
        assert!(checksums_valid(&big));
        assert_eq!(TcpPacket::new_checked(&big[20..]).unwrap().payload(), &payload[..]);

        // Congestion-window-reduced rides on the first segment only: the kernel must know.
        let mut cwr = packet(IpProtocol::Tcp, &payload);
        TcpPacket::new_unchecked(&mut cwr[20..]).set_cwr(true);
        assert_eq!(to_kernel(&mut cwr, 1420).unwrap()[1], GSO_TCPV4 | GSO_ECN);
    }

    #[test]
    fn over_the_mtu_only_whole_tcp_segments_are_accepted() {
        let udp = packet(IpProtocol::Udp, &[1; 3000]);
        let mut fragment = packet(IpProtocol::Tcp, &[1; 3000]);
        Ipv4Packet::new_unchecked(&mut fragment[..]).set_more_frags(true);
        let mut short_total = packet(IpProtocol::Tcp, &[1; 3000]);
        Ipv4Packet::new_unchecked(&mut short_total[..]).set_total_len(1000);
        let tcp = packet(IpProtocol::Tcp, &[1; 3000]);
        let cases: Vec<(Vec<u8>, usize)> = vec![(udp, 1420), (fragment, 1420), (short_total, 1420), (tcp, 44)];
        for (mut bytes, mtu) in cases {
            let before = bytes.clone();
            assert_eq!(to_kernel(&mut bytes, mtu).unwrap_err(), OffloadError::Unsegmentable(before.len()));
            assert_eq!(bytes, before, "a refused packet is left as it was");
        }
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
