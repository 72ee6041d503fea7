//! ICMP echo ("ping") with round-trip times measured on the injected clock.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};

use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::socket::icmp;
use smoltcp::wire::{Icmpv4Packet, Icmpv4Repr};

use super::{is_unicast, Error, NetStack, Result};
use crate::time::{Duration, Instant};

/// Echo packets buffered per direction.
const PACKETS: usize = 32;
/// Echo requests remembered while waiting for their reply; the oldest are forgotten first.
const OUTSTANDING_LIMIT: usize = 256;
/// Replies kept for [`NetStack::poll_ping_reply`]; the oldest are dropped first.
const REPLY_LIMIT: usize = 256;
/// IPv4 + ICMP echo header bytes.
const HEADERS: usize = 20 + 8;

/// An echo reply that matched a request sent with [`NetStack::ping`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PingReply {
    /// Who answered.
    pub from: Ipv4Addr,
    /// The sequence number given to [`NetStack::ping`].
    pub seq: u16,
    /// Bytes of echoed payload.
    pub payload_len: usize,
    /// Time from the request leaving [`NetStack::ping`] to the [`NetStack::poll`] that
    /// processed the reply (so it includes the driver's polling delay).
    pub rtt: Duration,
}

/// A request waiting for its reply.
#[derive(Debug)]
struct Outstanding {
    dst: Ipv4Addr,
    seq: u16,
    sent_at: Instant,
}

/// The stack's one ICMP socket, bound to a random echo identifier.
#[derive(Debug)]
pub(crate) struct Pinger {
    socket: SocketHandle,
    ident: u16,
    outstanding: VecDeque<Outstanding>,
    replies: VecDeque<PingReply>,
    payload: Vec<u8>,
}

impl Pinger {
    pub(crate) fn new(sockets: &mut SocketSet<'static>, ident: u16, mtu: usize) -> Self {
        let buffer = || icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; PACKETS], vec![0u8; PACKETS * mtu]);
        let mut socket = icmp::Socket::new(buffer(), buffer());
        // An identifier endpoint is always specified and the socket is fresh: cannot fail.
        let _ = socket.bind(icmp::Endpoint::Ident(ident));
        Self {
            socket: sockets.add(socket),
            ident,
            outstanding: VecDeque::new(),
            replies: VecDeque::new(),
            payload: Vec::new(),
        }
    }

    /// Matches received echo replies with their requests; true when a reply was recorded.
    pub(crate) fn collect_replies(&mut self, sockets: &mut SocketSet<'static>, now: Instant) -> bool {
        let socket = sockets.get_mut::<icmp::Socket>(self.socket);
        let mut any = false;
        while let Ok((bytes, from)) = socket.recv() {
            let IpAddr::V4(from) = IpAddr::from(from) else { continue };
            let Ok(packet) = Icmpv4Packet::new_checked(bytes) else { continue };
            // The interface verified the checksum before handing the packet over.
            let Ok(Icmpv4Repr::EchoReply { ident, seq_no, data }) =
                Icmpv4Repr::parse(&packet, &ChecksumCapabilities::ignored())
            else {
                continue;
            };
            if ident != self.ident {
                continue;
            }
            let Some(index) = self.outstanding.iter().position(|o| o.seq == seq_no && o.dst == from) else {
                continue;
            };
            let Some(request) = self.outstanding.remove(index) else { continue };
            if self.replies.len() >= REPLY_LIMIT {
                self.replies.pop_front();
            }
            self.replies.push_back(PingReply {
                from,
                seq: seq_no,
                payload_len: data.len(),
                rtt: now.saturating_duration_since(request.sent_at),
            });
            any = true;
        }
        any
    }
}

impl NetStack {
    /// Sends an ICMP echo request to `dst` with sequence number `seq` and `payload_len` bytes
    /// of payload, stamped with `now`; it leaves at the next [`NetStack::poll`]. The reply
    /// comes out of [`NetStack::poll_ping_reply`]; a request without a reply is simply never
    /// answered (the caller decides when to give up).
    ///
    /// Fails with [`Error::PayloadTooLarge`] when the packet would not fit the tunnel MTU,
    /// [`Error::BufferFull`] when too many requests wait to be sent.
    pub fn ping(&mut self, dst: Ipv4Addr, seq: u16, payload_len: usize, now: Instant) -> Result<()> {
        if !is_unicast(dst) {
            return Err(Error::Unaddressable(std::net::SocketAddrV4::new(dst, 0)));
        }
        let max = self.config.mtu - HEADERS;
        if payload_len > max {
            return Err(Error::PayloadTooLarge { len: payload_len, max });
        }
        let pinger = &mut self.icmp;
        pinger.payload.clear();
        pinger.payload.extend((0..payload_len).map(|i| i as u8));
        let repr = Icmpv4Repr::EchoRequest { ident: pinger.ident, seq_no: seq, data: &pinger.payload };
        let socket = self.sockets.get_mut::<icmp::Socket>(pinger.socket);
        let buffer = socket.send(repr.buffer_len(), dst.into()).map_err(|_| Error::BufferFull)?;
        repr.emit(&mut Icmpv4Packet::new_unchecked(buffer), &ChecksumCapabilities::default());

        if pinger.outstanding.len() >= OUTSTANDING_LIMIT {
            pinger.outstanding.pop_front();
        }
        pinger.outstanding.retain(|o| !(o.seq == seq && o.dst == dst));
        pinger.outstanding.push_back(Outstanding { dst, seq, sent_at: now });
        Ok(())
    }

    /// Takes the next echo reply, oldest first.
    pub fn poll_ping_reply(&mut self) -> Option<PingReply> {
        self.icmp.replies.pop_front()
    }
}
