//! TCP connections: connect, send, receive, close, and the states a user sees.
//!
//! smoltcp ends a refused, reset or timed-out connection in the same `Closed` state; the
//! stack tells them apart by remembering the resets it received during the poll
//! ([`reset_of`]) and how the connection got there, and keeps the verdict sticky.

use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};

use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp::{self, State as SmolState};

use super::ports::Ports;
use super::{is_unicast, push_event, smol_duration, Error, Event, NetConfig, NetStack, Result};
use crate::time::{Duration, Instant};

/// The longest a released connection may take to finish closing: nobody reads it any more, and
/// its buffers are held until it is done. Shorter than [`NetConfig::tcp_timeout`], which must
/// outlast a closed window's probes on a connection still in use.
const RELEASED_CLOSE_LIMIT: Duration = Duration::from_secs(60);

/// A TCP connection of a [`NetStack`]. Valid until [`NetStack::tcp_release`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TcpHandle(u64);

/// Where a TCP connection stands, as its user sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TcpState {
    /// The SYN is out; no answer yet.
    Connecting,
    /// Connected: both directions are open.
    Established,
    /// The peer finished sending (FIN). What it sent can still be read, and data can still be
    /// sent to it.
    PeerClosed,
    /// [`NetStack::tcp_close`] was called: our FIN is queued or unacknowledged. Data can still
    /// be received.
    Closing,
    /// Both directions finished cleanly, or the connection was aborted locally. Final.
    Closed,
    /// The host answered the connection attempt with a reset. Final.
    Refused,
    /// The peer reset the established connection. Final.
    Reset,
    /// The peer stopped answering. Final.
    TimedOut,
}

impl TcpState {
    /// True for the states a connection never leaves.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Closed | Self::Refused | Self::Reset | Self::TimedOut)
    }
}

/// One open connection.
#[derive(Debug)]
struct Entry {
    socket: SocketHandle,
    remote: SocketAddrV4,
    local_port: u16,
    /// The state last reported to the user; sticky once final.
    state: TcpState,
    /// smoltcp's state at the last look.
    last: SmolState,
    established: bool,
    aborted: bool,
}

impl Entry {
    fn error(&self) -> Option<Error> {
        match self.state {
            TcpState::Refused => Some(Error::ConnectionRefused(self.remote)),
            TcpState::Reset => Some(Error::ConnectionReset(self.remote)),
            TcpState::TimedOut if self.established => Some(Error::StoppedAnswering(self.remote)),
            TcpState::TimedOut => Some(Error::TimedOut(self.remote)),
            _ => None,
        }
    }
}

/// A released connection still finishing its closing handshake.
#[derive(Debug)]
struct Lingering {
    socket: SocketHandle,
    local_port: u16,
    /// After this the connection is aborted and freed even if the peer never finished.
    deadline: Instant,
    /// Set once it was aborted: freed at the next poll, after its RST went out.
    aborted: bool,
}

/// The TCP connections of a stack.
#[derive(Debug)]
pub(crate) struct TcpTable {
    entries: BTreeMap<u64, Entry>,
    lingering: Vec<Lingering>,
    ports: Ports,
}

impl TcpTable {
    pub(crate) fn new(port_start: u32) -> Self {
        Self { entries: BTreeMap::new(), lingering: Vec::new(), ports: Ports::new(port_start) }
    }

    /// Brings every connection's reported state up to date after a poll, and frees the
    /// released connections that finished.
    pub(crate) fn reconcile(
        &mut self,
        sockets: &mut SocketSet<'static>,
        resets: &[(Ipv4Addr, u16, u16)],
        now: Instant,
        config: &NetConfig,
        events: &mut VecDeque<Event>,
    ) {
        for (&id, entry) in self.entries.iter_mut() {
            if entry.state.is_final() {
                continue;
            }
            let socket = sockets.get_mut::<tcp::Socket>(entry.socket);
            let current = socket.state();
            if current == entry.last {
                continue;
            }
            if !entry.established && was_established(current) {
                entry.established = true;
                // From now on the timeout only fires while sent data stays unacknowledged.
                socket.set_timeout(Some(smol_duration(config.tcp_timeout)));
            }
            let state = public_state(entry, current, resets);
            entry.last = current;
            if state != entry.state {
                entry.state = state;
                push_event(events, Event::Tcp { handle: TcpHandle(id), state });
            }
        }

        self.lingering.retain_mut(|linger| {
            let socket = sockets.get_mut::<tcp::Socket>(linger.socket);
            let done = match socket.state() {
                // TIME-WAIT only guards against late duplicates; its buffers are better freed.
                SmolState::TimeWait => true,
                SmolState::Closed => linger.aborted || socket.local_endpoint().is_none(),
                _ => false,
            };
            if done {
                sockets.remove(linger.socket);
                self.ports.release(linger.local_port);
                return false;
            }
            if now >= linger.deadline && !linger.aborted {
                socket.abort();
                linger.aborted = true;
            } else if socket.state() == SmolState::Closed {
                linger.aborted = true;
            }
            true
        });
    }

    /// The earliest deadline of a released connection, if any.
    pub(crate) fn next_timer(&self) -> Option<Instant> {
        self.lingering.iter().filter(|l| !l.aborted).map(|l| l.deadline).min()
    }

    fn entry(&self, handle: TcpHandle) -> Result<&Entry> {
        self.entries.get(&handle.0).ok_or(Error::UnknownHandle("TCP"))
    }
}

/// The user-visible state for smoltcp state `current`.
fn public_state(entry: &Entry, current: SmolState, resets: &[(Ipv4Addr, u16, u16)]) -> TcpState {
    match current {
        SmolState::SynSent | SmolState::SynReceived => TcpState::Connecting,
        SmolState::Established => TcpState::Established,
        SmolState::CloseWait => TcpState::PeerClosed,
        SmolState::FinWait1 | SmolState::FinWait2 | SmolState::Closing | SmolState::LastAck => TcpState::Closing,
        SmolState::TimeWait | SmolState::Listen => TcpState::Closed,
        SmolState::Closed => {
            let key = (*entry.remote.ip(), entry.remote.port(), entry.local_port);
            if entry.aborted {
                TcpState::Closed
            } else if resets.contains(&key) {
                if entry.established {
                    TcpState::Reset
                } else {
                    TcpState::Refused
                }
            } else if entry.last == SmolState::LastAck || entry.last == SmolState::TimeWait {
                TcpState::Closed
            } else {
                TcpState::TimedOut
            }
        }
    }
}

fn was_established(state: SmolState) -> bool {
    !matches!(state, SmolState::Closed | SmolState::Listen | SmolState::SynSent | SmolState::SynReceived)
}

/// `(source address, source port, destination port)` when `packet` is an IPv4 TCP segment
/// with RST set. Reads only header bytes, with bounds checks.
pub(crate) fn reset_of(packet: &[u8]) -> Option<(Ipv4Addr, u16, u16)> {
    const TCP: u8 = 6;
    const RST: u8 = 0x04;
    let first = *packet.first()?;
    let header_len = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || header_len < 20 || *packet.get(9)? != TCP {
        return None;
    }
    let segment = packet.get(header_len..)?;
    if segment.get(13)? & RST == 0 {
        return None;
    }
    let src = Ipv4Addr::new(*packet.get(12)?, *packet.get(13)?, *packet.get(14)?, *packet.get(15)?);
    let src_port = u16::from_be_bytes([*segment.first()?, *segment.get(1)?]);
    let dst_port = u16::from_be_bytes([*segment.get(2)?, *segment.get(3)?]);
    Some((src, src_port, dst_port))
}

impl NetStack {
    /// Opens a TCP connection to `remote` from a fresh local port.
    ///
    /// Returns at once in [`TcpState::Connecting`]; the SYN leaves at the next
    /// [`NetStack::poll`]. Watch [`NetStack::tcp_state`] or [`Event::Tcp`] for the outcome.
    /// Fails with [`Error::Unaddressable`] for a non-unicast address or port 0,
    /// [`Error::TooMany`] beyond [`NetConfig::max_tcp_sockets`], [`Error::PortsExhausted`]
    /// when every ephemeral port is taken.
    pub fn tcp_connect(&mut self, remote: SocketAddrV4) -> Result<TcpHandle> {
        if remote.port() == 0 || !is_unicast(*remote.ip()) {
            return Err(Error::Unaddressable(remote));
        }
        if self.tcp.entries.len() + self.tcp.lingering.len() >= self.config.max_tcp_sockets {
            return Err(Error::TooMany("TCP connections"));
        }
        let local_port = self.tcp.ports.allocate().ok_or(Error::PortsExhausted)?;

        let mut socket = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0u8; self.config.tcp_receive_buffer]),
            tcp::SocketBuffer::new(vec![0u8; self.config.tcp_send_buffer]),
        );
        socket.set_nagle_enabled(false);
        socket.set_ack_delay(self.config.tcp_ack_delay.map(smol_duration));
        socket.set_timeout(Some(smol_duration(self.config.tcp_connect_timeout)));
        socket.set_congestion_control(tcp::CongestionControl::Cubic);
        if socket.connect(self.iface.context(), remote, local_port).is_err() {
            self.tcp.ports.release(local_port);
            return Err(Error::Unaddressable(remote));
        }
        let socket = self.sockets.add(socket);

        let id = super::ids::fresh();
        self.tcp.entries.insert(
            id,
            Entry {
                socket,
                remote,
                local_port,
                state: TcpState::Connecting,
                last: SmolState::SynSent,
                established: false,
                aborted: false,
            },
        );
        Ok(TcpHandle(id))
    }

    /// The connection's current state.
    pub fn tcp_state(&self, handle: TcpHandle) -> Result<TcpState> {
        Ok(self.tcp.entry(handle)?.state)
    }

    /// The peer's address of the connection.
    pub fn tcp_remote(&self, handle: TcpHandle) -> Result<SocketAddrV4> {
        Ok(self.tcp.entry(handle)?.remote)
    }

    /// The local (tunnel) address and port of the connection.
    pub fn tcp_local(&self, handle: TcpHandle) -> Result<SocketAddrV4> {
        Ok(SocketAddrV4::new(self.config.address, self.tcp.entry(handle)?.local_port))
    }

    /// Queues bytes to send; returns how many fit in the send buffer (0 when it is full, or
    /// while the connection is still being set up). Poll the stack afterwards to send them.
    ///
    /// Fails with [`Error::NotWritable`] after [`NetStack::tcp_close`], and with the
    /// connection's error once it was refused, reset or timed out.
    pub fn tcp_send(&mut self, handle: TcpHandle, data: &[u8]) -> Result<usize> {
        let entry = self.tcp.entry(handle)?;
        if let Some(error) = entry.error() {
            return Err(error);
        }
        let remote = entry.remote;
        let socket = self.sockets.get_mut::<tcp::Socket>(entry.socket);
        match socket.state() {
            SmolState::SynSent | SmolState::SynReceived => Ok(0),
            _ => socket.send_slice(data).map_err(|_| Error::NotWritable(remote)),
        }
    }

    /// Free room in the send buffer, in bytes (0 while connecting or after closing); the
    /// connection's error once it has one, so a writer waiting for room learns of a reset.
    pub fn tcp_send_capacity(&self, handle: TcpHandle) -> Result<usize> {
        let entry = self.tcp.entry(handle)?;
        if let Some(error) = entry.error() {
            return Err(error);
        }
        let socket = self.sockets.get::<tcp::Socket>(entry.socket);
        if !socket.may_send() {
            return Ok(0);
        }
        Ok(socket.send_capacity() - socket.send_queue())
    }

    /// Bytes sent but not yet acknowledged by the peer, plus bytes not yet sent.
    pub fn tcp_send_queue(&self, handle: TcpHandle) -> Result<usize> {
        let entry = self.tcp.entry(handle)?;
        Ok(self.sockets.get::<tcp::Socket>(entry.socket).send_queue())
    }

    /// Reads received bytes into `buf`; returns how many (0 when nothing is waiting yet).
    ///
    /// Fails with [`Error::EndOfStream`] once the peer closed and everything was read, and
    /// with the connection's error once it was refused, reset or timed out.
    pub fn tcp_recv(&mut self, handle: TcpHandle, buf: &mut [u8]) -> Result<usize> {
        self.tcp_recv_with(handle, |socket| socket.recv_slice(buf))
    }

    /// Appends at most `max` received bytes to `out`; returns how many. As [`Self::tcp_recv`],
    /// but the bytes go straight from the receive buffer to the end of `out`, with no buffer to
    /// zero first.
    pub fn tcp_recv_append(&mut self, handle: TcpHandle, out: &mut Vec<u8>, max: usize) -> Result<usize> {
        self.tcp_recv_with(handle, |socket| {
            let mut taken = 0;
            // The receive buffer is a ring: what waits may lie in two pieces.
            while taken < max {
                let step = socket.recv(|waiting| {
                    let n = waiting.len().min(max - taken);
                    out.extend_from_slice(&waiting[..n]);
                    (n, n)
                });
                match step {
                    Ok(0) => break,
                    Ok(n) => taken += n,
                    // Finished only once the buffer is empty: what was taken is the answer.
                    Err(_) if taken > 0 => break,
                    Err(e) => return Err(e),
                }
            }
            Ok(taken)
        })
    }

    /// Runs one read of `handle`'s socket, answering the connection's error instead when it
    /// has one (after a reset, once what arrived before it is read), and the end of the stream
    /// once the peer closed and everything was read.
    fn tcp_recv_with(
        &mut self,
        handle: TcpHandle,
        read: impl FnOnce(&mut tcp::Socket<'static>) -> std::result::Result<usize, tcp::RecvError>,
    ) -> Result<usize> {
        let entry = self.tcp.entry(handle)?;
        let socket = self.sockets.get_mut::<tcp::Socket>(entry.socket);
        if let Some(error) = entry.error() {
            // What the peer sent before its reset is still read first, as a kernel's TCP does:
            // a server's answer followed at once by its reset (a `413`, then close) gets through.
            if !(matches!(error, Error::ConnectionReset(_)) && socket.can_recv()) {
                return Err(error);
            }
        }
        match read(socket) {
            Ok(n) => Ok(n),
            Err(tcp::RecvError::Finished) => Err(Error::EndOfStream),
            Err(tcp::RecvError::InvalidState) => match socket.state() {
                SmolState::SynSent | SmolState::SynReceived => Ok(0),
                _ => Err(Error::EndOfStream),
            },
        }
    }

    /// Bytes received and waiting to be read.
    pub fn tcp_recv_queue(&self, handle: TcpHandle) -> Result<usize> {
        let entry = self.tcp.entry(handle)?;
        Ok(self.sockets.get::<tcp::Socket>(entry.socket).recv_queue())
    }

    /// Finishes sending (FIN after the queued data); receiving goes on until the peer closes.
    /// Closing a connection that is still connecting abandons it ([`TcpState::Closed`]).
    pub fn tcp_close(&mut self, handle: TcpHandle) -> Result<()> {
        let entry = self.tcp.entries.get_mut(&handle.0).ok_or(Error::UnknownHandle("TCP"))?;
        if entry.state.is_final() {
            return Ok(());
        }
        let socket = self.sockets.get_mut::<tcp::Socket>(entry.socket);
        if socket.state() == SmolState::SynSent {
            entry.aborted = true;
        }
        socket.close();
        Ok(())
    }

    /// Drops the connection at once: one RST goes to the peer, unread and unsent data are
    /// discarded, and the state becomes [`TcpState::Closed`].
    pub fn tcp_abort(&mut self, handle: TcpHandle) -> Result<()> {
        let entry = self.tcp.entries.get_mut(&handle.0).ok_or(Error::UnknownHandle("TCP"))?;
        if entry.state.is_final() {
            return Ok(());
        }
        self.sockets.get_mut::<tcp::Socket>(entry.socket).abort();
        entry.aborted = true;
        entry.last = SmolState::Closed;
        entry.state = TcpState::Closed;
        push_event(&mut self.events, Event::Tcp { handle, state: TcpState::Closed });
        Ok(())
    }

    /// Releases the handle. An open connection is closed gracefully in the background (and
    /// aborted if the peer does not finish within [`NetConfig::tcp_timeout`] or a minute,
    /// whichever is shorter); its buffers and local port are freed once it is done. The handle
    /// is invalid afterwards.
    pub fn tcp_release(&mut self, handle: TcpHandle) -> Result<()> {
        let entry = self.tcp.entries.remove(&handle.0).ok_or(Error::UnknownHandle("TCP"))?;
        let socket = self.sockets.get_mut::<tcp::Socket>(entry.socket);
        socket.close();
        self.tcp.lingering.push(Lingering {
            socket: entry.socket,
            local_port: entry.local_port,
            deadline: self.now + self.config.tcp_timeout.min(RELEASED_CLOSE_LIMIT),
            aborted: false,
        });
        Ok(())
    }

    /// Number of TCP connections holding resources, including released ones still closing.
    pub fn tcp_connection_count(&self) -> usize {
        self.tcp.entries.len() + self.tcp.lingering.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn segment(flags: u8) -> Vec<u8> {
        let mut p = vec![0u8; 40];
        p[0] = 0x45;
        p[9] = 6;
        p[12..16].copy_from_slice(&[192, 168, 0, 10]);
        p[20..22].copy_from_slice(&80u16.to_be_bytes());
        p[22..24].copy_from_slice(&50000u16.to_be_bytes());
        p[33] = flags;
        p
    }

    #[test]
    fn a_reset_segment_is_recognised_by_its_header_alone() {
        assert_eq!(reset_of(&segment(0x14)), Some((Ipv4Addr::new(192, 168, 0, 10), 80, 50000)));
        assert_eq!(reset_of(&segment(0x10)), None);
    }

    #[test]
    fn headers_cut_before_the_flags_are_not_resets() {
        let full = segment(0x04);
        for len in 0..34 {
            assert_eq!(reset_of(&full[..len]), None, "length {len}");
        }
    }
}
