//! The browser's socket: UDP port 5353 on the LAN interface only, in the IPv4 mDNS group.
//!
//! The port is shared (`SO_REUSEADDR`, `SO_REUSEPORT`) with any responder on the home server,
//! such as Avahi: every socket in the group gets its own copy of each multicast packet. The
//! socket is bound to the group's address, not to every address: the kernel gives a unicast
//! packet to one socket only, the best match, and a socket bound to the interface would take
//! the unicast queries and answers meant for the responder. The browser needs none: it asks
//! from port 5353 without the unicast-response bit, so responders answer to the group.

use super::message::{GROUP, PORT};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};
use std::net::{SocketAddrV4, UdpSocket};
use std::time::Duration;

/// How long a read waits before the driver looks at its timers.
pub const READ_TIMEOUT: Duration = Duration::from_millis(250);

/// Opens the socket on `interface`: bound to it (packets from other interfaces never reach
/// it, and queries leave through it) and to the group's address (it receives what is sent to
/// the group only), in the group on it, sending with TTL 255 (RFC 6762 §11). Loopback stays on
/// so that a responder on the home server itself hears the queries; the browser's own queries
/// come back and are ignored (they are not responses).
pub fn open(interface: &str) -> std::io::Result<UdpSocket> {
    open_on(interface, PORT)
}

/// [`open`] on `port` rather than mDNS's (for tests beside a responder on the same host).
pub(super) fn open_on(interface: &str, port: u16) -> std::io::Result<UdpSocket> {
    let index = std::fs::read_to_string(format!("/sys/class/net/{interface}/ifindex"))
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
        .ok_or_else(|| std::io::Error::other(format!("no network interface {interface}")))?;
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind_device(Some(interface.as_bytes()))?;
    socket.bind(&SocketAddrV4::new(GROUP, port).into())?;
    socket.join_multicast_v4_n(&GROUP, &InterfaceIndexOrAddress::Index(index))?;
    socket.set_multicast_ttl_v4(255)?;
    socket.set_multicast_loop_v4(true)?;
    socket.set_read_timeout(Some(READ_TIMEOUT))?;
    Ok(socket.into())
}
