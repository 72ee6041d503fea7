//! UDP sockets: bind, send to, receive from.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddrV4};

use smoltcp::iface::SocketHandle;
use smoltcp::socket::udp;
use smoltcp::wire::IpEndpoint;

use super::ports::Ports;
use super::{is_unicast, Error, NetStack, Result};

/// Datagrams buffered per socket and direction.
const DATAGRAMS: usize = 64;
/// IPv4 + UDP header bytes.
const HEADERS: usize = 20 + 8;

/// A UDP socket of a [`NetStack`]. Valid until [`NetStack::udp_release`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UdpHandle(u64);

/// The UDP sockets of a stack; the DNS resolver takes its ports from here too.
#[derive(Debug)]
pub(crate) struct UdpTable {
    entries: BTreeMap<u64, (SocketHandle, u16)>,
    pub(crate) ports: Ports,
}

impl UdpTable {
    pub(crate) fn new(port_start: u32) -> Self {
        Self { entries: BTreeMap::new(), ports: Ports::new(port_start) }
    }

    fn socket(&self, handle: UdpHandle) -> Result<SocketHandle> {
        self.entries.get(&handle.0).map(|&(socket, _)| socket).ok_or(Error::UnknownHandle("UDP"))
    }
}

/// A fresh UDP socket with room for `DATAGRAMS` datagrams of up to `mtu` bytes each way.
pub(crate) fn new_socket(mtu: usize, datagrams: usize) -> udp::Socket<'static> {
    let buffer = || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; datagrams], vec![0u8; datagrams * mtu]);
    udp::Socket::new(buffer(), buffer())
}

/// The IPv4 socket address of a smoltcp endpoint (the stack speaks only IPv4).
pub(crate) fn v4_endpoint(endpoint: IpEndpoint) -> Option<SocketAddrV4> {
    match IpAddr::from(endpoint.addr) {
        IpAddr::V4(addr) => Some(SocketAddrV4::new(addr, endpoint.port)),
        IpAddr::V6(_) => None,
    }
}

impl NetStack {
    /// Opens a UDP socket on local `port`, or on a fresh ephemeral port when `port` is 0.
    ///
    /// Fails with [`Error::PortInUse`] when another socket of this stack holds the port.
    pub fn udp_bind(&mut self, port: u16) -> Result<UdpHandle> {
        let port = if port == 0 {
            self.udp.ports.allocate().ok_or(Error::PortsExhausted)?
        } else if self.udp.ports.reserve(port) {
            port
        } else {
            return Err(Error::PortInUse(port));
        };
        let mut socket = new_socket(self.config.mtu, DATAGRAMS);
        if socket.bind(port).is_err() {
            self.udp.ports.release(port);
            return Err(Error::PortInUse(port));
        }
        let socket = self.sockets.add(socket);
        let id = super::ids::fresh();
        self.udp.entries.insert(id, (socket, port));
        Ok(UdpHandle(id))
    }

    /// The local port of the socket.
    pub fn udp_local_port(&self, handle: UdpHandle) -> Result<u16> {
        self.udp.entries.get(&handle.0).map(|&(_, port)| port).ok_or(Error::UnknownHandle("UDP"))
    }

    /// Largest datagram payload that fits one packet at the tunnel MTU.
    pub fn udp_max_payload(&self) -> usize {
        self.config.mtu - HEADERS
    }

    /// Queues one datagram to `remote`; it leaves at the next [`NetStack::poll`].
    ///
    /// Fails with [`Error::PayloadTooLarge`] above [`NetStack::udp_max_payload`] (the stack
    /// does not fragment), [`Error::BufferFull`] when the send queue is full,
    /// [`Error::Unaddressable`] for a non-unicast address or port 0.
    pub fn udp_send_to(&mut self, handle: UdpHandle, data: &[u8], remote: SocketAddrV4) -> Result<()> {
        let socket = self.udp.socket(handle)?;
        if remote.port() == 0 || !is_unicast(*remote.ip()) {
            return Err(Error::Unaddressable(remote));
        }
        let max = self.udp_max_payload();
        if data.len() > max {
            return Err(Error::PayloadTooLarge { len: data.len(), max });
        }
        self.sockets.get_mut::<udp::Socket>(socket).send_slice(data, remote).map_err(|e| match e {
            udp::SendError::BufferFull => Error::BufferFull,
            udp::SendError::Unaddressable => Error::Unaddressable(remote),
        })
    }

    /// Takes the next received datagram into `buf`: its length and sender, or `None` when
    /// nothing is waiting.
    ///
    /// Fails with [`Error::BufferTooSmall`] (the datagram stays queued) when `buf` is shorter
    /// than the datagram.
    pub fn udp_recv_from(&mut self, handle: UdpHandle, buf: &mut [u8]) -> Result<Option<(usize, SocketAddrV4)>> {
        let socket = self.sockets.get_mut::<udp::Socket>(self.udp.socket(handle)?);
        loop {
            let Ok((payload, meta)) = socket.peek() else {
                return Ok(None);
            };
            let Some(from) = v4_endpoint(meta.endpoint) else {
                let _ = socket.recv();
                continue;
            };
            let len = payload.len();
            if len > buf.len() {
                return Err(Error::BufferTooSmall { needed: len });
            }
            buf[..len].copy_from_slice(payload);
            let _ = socket.recv();
            return Ok(Some((len, from)));
        }
    }

    /// Closes the socket and frees its port. The handle is invalid afterwards.
    pub fn udp_release(&mut self, handle: UdpHandle) -> Result<()> {
        let (socket, port) = self.udp.entries.remove(&handle.0).ok_or(Error::UnknownHandle("UDP"))?;
        self.sockets.remove(socket);
        self.udp.ports.release(port);
        Ok(())
    }
}
