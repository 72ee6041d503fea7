//! The maximum segment size (MSS) that TCP connections through the tunnel agree on.
//!
//! Each end of a TCP connection announces in its SYN the largest segment it takes; the other
//! sends no larger. The relay adjusts the option on SYNs crossing the tun, as routers clamp it:
//!
//! - **From a client** the MSS is clamped to what fits the tun's MTU (`mtu - 40`), so the LAN
//!   host never sends a segment the tun would refuse. (A client's netstack may announce up to
//!   64 KiB: see below.)
//! - **Toward a client**, when the relay cuts large segments for the kernel
//!   ([`super::offload::to_kernel`]), an MSS that admits full-MTU segments is raised to the
//!   segment size the client was told ([`Segments::client_packet`]): the client then sends
//!   its data in segments of up to 64 KiB, one record, one tun write and one AEAD pass each,
//!   and the kernel cuts them into segments of the LAN host's size. An MSS below a full
//!   segment (a LAN host on a smaller MTU) is left alone, so the client honours it.
//!
//! Sans-IO: a packet in, the same packet with the option and its checksum adjusted. Packets
//! that are not IPv4 TCP SYNs carrying an MSS option are left untouched, as are malformed ones
//! (the filter and the kernel judge those).

use smoltcp::wire::{IpProtocol, Ipv4Packet, TcpPacket};

/// IPv4 and TCP headers without options: what the MTU holds beyond the MSS.
const HEADERS: u16 = 40;
/// The TCP option kinds the walk knows: end of list, no-operation, maximum segment size.
const END: u8 = 0;
const NOP: u8 = 1;
const MSS: u8 = 2;

/// The largest TCP packet clients are told they may send when the relay cuts segments. The
/// kernel hands a device a large segment whole only while the frame, link-layer header
/// included, stays under the device's GSO limit (`gso_max_size`: 64 KiB on veth and most
/// network cards); at or over it the segment is cut in software first, on the relay's CPU. So
/// a client's packet stays 256 bytes under 64 KiB, room for an Ethernet header, VLAN tags and
/// TCP options, and goes to the LAN device whole (a network card's TSO cuts it there).
pub const CLIENT_SUPER_PACKET: u16 = 65_280;

/// How the relay sizes TCP segments on either side of the tun.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segments {
    /// The tun's MTU: the largest packet towards the LAN.
    mtu: u16,
    /// The largest TCP packet a client may send; above `mtu` when the relay cuts segments.
    client_packet: u16,
}

impl Segments {
    /// Segments for a tun of `mtu`; `cut` when the relay hands the kernel large segments to
    /// cut (the tun offload is on), so clients may send packets of up to
    /// [`CLIENT_SUPER_PACKET`].
    pub fn new(mtu: u16, cut: bool) -> Self {
        Self { mtu, client_packet: if cut { CLIENT_SUPER_PACKET.max(mtu) } else { mtu } }
    }

    /// The largest TCP packet a client may send (what its configuration says).
    pub fn client_packet(&self) -> u16 {
        self.client_packet
    }

    /// A packet from a client: a SYN's MSS is clamped to the tun's MTU.
    pub fn from_client(&self, packet: &mut [u8]) {
        let most = self.mtu.saturating_sub(HEADERS);
        rewrite_mss(packet, |mss| mss.min(most));
    }

    /// A packet toward a client: a SYN's MSS that admits full-MTU segments is raised to the
    /// client's packet size.
    pub fn toward_client(&self, packet: &mut [u8]) {
        if self.client_packet <= self.mtu {
            return;
        }
        let (full, raised) = (self.mtu.saturating_sub(HEADERS), self.client_packet - HEADERS);
        rewrite_mss(packet, |mss| if mss >= full { raised } else { mss });
    }
}

/// Applies `change` to the MSS option of an IPv4 TCP SYN, keeping the TCP checksum right.
/// Anything else, or anything that does not parse, is left as it was.
fn rewrite_mss(packet: &mut [u8], change: impl FnOnce(u16) -> u16) {
    let Some((header_len, at)) = mss_offset(packet) else { return };
    let old = u16::from_be_bytes([packet[at], packet[at + 1]]);
    let new = change(old);
    if new == old {
        return;
    }
    packet[at..at + 2].copy_from_slice(&new.to_be_bytes());
    let mut tcp = TcpPacket::new_unchecked(&mut packet[header_len..]);
    tcp.set_checksum(adjust_checksum(tcp.checksum(), old, new));
}

/// The IPv4 header's length and where the MSS value sits in `packet`, for an unfragmented IPv4
/// TCP SYN whose options hold a well-formed MSS option.
fn mss_offset(packet: &[u8]) -> Option<(usize, usize)> {
    let ip = Ipv4Packet::new_checked(packet).ok()?;
    if ip.next_header() != IpProtocol::Tcp || ip.frag_offset() != 0 || ip.more_frags() {
        return None;
    }
    let header_len = usize::from(ip.header_len());
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    if !tcp.syn() {
        return None;
    }
    let options_end = header_len + usize::from(tcp.header_len());
    let mut at = header_len + 20;
    while at < options_end {
        match packet[at] {
            END => return None,
            NOP => at += 1,
            kind => {
                let len = usize::from(*packet.get(at + 1)?);
                if len < 2 || at + len > options_end {
                    return None;
                }
                if kind == MSS {
                    return (len == 4).then_some((header_len, at + 2));
                }
                at += len;
            }
        }
    }
    None
}

/// The checksum after one 16-bit word changed from `old` to `new` (RFC 1624, eqn. 3).
fn adjust_checksum(checksum: u16, old: u16, new: u16) -> u16 {
    let mut sum = u32::from(!checksum) + u32::from(!old) + u32::from(new);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::wire::{IpAddress, Ipv4Address};

    const CLIENT: Ipv4Address = Ipv4Address::new(10, 8, 0, 2);
    const LAN_HOST: Ipv4Address = Ipv4Address::new(192, 168, 0, 10);

    /// A TCP packet from `src` to `dst` with these flags and options, checksums complete.
    fn tcp(src: Ipv4Address, dst: Ipv4Address, syn: bool, options: &[u8]) -> Vec<u8> {
        let tcp_len = 20 + options.len();
        let mut bytes = vec![0u8; 20 + tcp_len + 3];
        let mut ip = Ipv4Packet::new_unchecked(&mut bytes[..]);
        ip.set_version(4);
        ip.set_header_len(20);
        ip.set_total_len((20 + tcp_len + 3) as u16);
        ip.set_hop_limit(64);
        ip.set_next_header(IpProtocol::Tcp);
        ip.set_src_addr(src);
        ip.set_dst_addr(dst);
        ip.fill_checksum();
        let mut segment = TcpPacket::new_unchecked(&mut bytes[20..]);
        segment.set_src_port(40000);
        segment.set_dst_port(8080);
        segment.set_header_len(tcp_len as u8);
        segment.set_syn(syn);
        segment.set_window_len(65535);
        segment.options_mut().copy_from_slice(options);
        segment.payload_mut().copy_from_slice(b"abc");
        segment.fill_checksum(&IpAddress::Ipv4(src), &IpAddress::Ipv4(dst));
        bytes
    }

    /// The MSS the packet announces, once its checksum is checked.
    fn announced(packet: &[u8]) -> Option<u16> {
        let ip = Ipv4Packet::new_checked(packet).unwrap();
        let segment = TcpPacket::new_checked(ip.payload()).unwrap();
        assert!(
            segment.verify_checksum(&IpAddress::Ipv4(ip.src_addr()), &IpAddress::Ipv4(ip.dst_addr())),
            "checksum kept right"
        );
        mss_offset(packet).map(|(_, at)| u16::from_be_bytes([packet[at], packet[at + 1]]))
    }

    fn mss(value: u16) -> [u8; 4] {
        let [hi, lo] = value.to_be_bytes();
        [MSS, 4, hi, lo]
    }

    #[test]
    fn a_clients_64_kib_mss_is_clamped_to_the_tun_and_a_lan_hosts_full_mss_raised() {
        let segments = Segments::new(1420, true);
        assert_eq!(segments.client_packet(), 65280, "under the kernel's 64 KiB GSO limit with a link header");

        let mut syn = tcp(CLIENT, LAN_HOST, true, &[&mss(65495)[..], &[NOP, NOP, 4, 2]].concat());
        segments.from_client(&mut syn);
        assert_eq!(announced(&syn), Some(1380));

        // A LAN host on Ethernet announces 1460: the client may now send 64 KiB segments.
        let mut syn_ack = tcp(LAN_HOST, CLIENT, true, &[&[NOP, 3, 3, 7][..], &mss(1460)].concat());
        segments.toward_client(&mut syn_ack);
        assert_eq!(announced(&syn_ack), Some(65240));

        // One on a smaller MTU keeps its own, and the client honours it.
        let mut small = tcp(LAN_HOST, CLIENT, true, &mss(1200));
        segments.toward_client(&mut small);
        assert_eq!(announced(&small), Some(1200));
    }

    #[test]
    fn without_cutting_a_lan_hosts_mss_reaches_the_client_unchanged() {
        let segments = Segments::new(1420, false);
        assert_eq!(segments.client_packet(), 1420);
        let mut syn_ack = tcp(LAN_HOST, CLIENT, true, &mss(1460));
        segments.toward_client(&mut syn_ack);
        assert_eq!(announced(&syn_ack), Some(1460));
        let mut syn = tcp(CLIENT, LAN_HOST, true, &mss(1380));
        let before = syn.clone();
        segments.from_client(&mut syn);
        assert_eq!(syn, before, "an MSS that fits is not touched");
    }

    #[test]
    fn packets_without_a_well_formed_mss_on_a_syn_are_left_alone() {
        let segments = Segments::new(1420, true);
        let mut bad_length = tcp(CLIENT, LAN_HOST, true, &[MSS, 0, 0xff, 0xff]);
        let mut past_the_end = tcp(CLIENT, LAN_HOST, true, &[NOP, NOP, MSS, 6]);
        let mut after_end = tcp(CLIENT, LAN_HOST, true, &[&[END, NOP, NOP, NOP][..], &mss(65495)].concat());
        let mut not_syn = tcp(CLIENT, LAN_HOST, false, &mss(65495));
        let mut truncated = tcp(CLIENT, LAN_HOST, true, &mss(65495));
        truncated.truncate(30);
        for packet in [&mut bad_length, &mut past_the_end, &mut after_end, &mut not_syn, &mut truncated] {
            let before = packet.clone();
            segments.from_client(packet);
            segments.toward_client(packet);
            assert_eq!(*packet, before);
        }
    }

    #[test]
    fn the_incremental_checksum_matches_a_full_recomputation_for_any_change() {
        for (old, new) in [(0u16, 1u16), (1460, 65495), (65495, 1380), (0xffff, 0), (0x1234, 0xfedc)] {
            let mut packet = tcp(CLIENT, LAN_HOST, true, &mss(old));
            rewrite_mss(&mut packet, |_| new);
            assert_eq!(announced(&packet), Some(new));
        }
    }
}
