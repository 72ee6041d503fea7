//! The one error type of the client netstack.

use std::net::SocketAddrV4;

/// What went wrong in a netstack call.
///
/// Connection errors are sticky: once a TCP connection is refused, reset or timed out, every
/// later call on its handle returns the same error until the handle is released.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration handed to [`super::NetStack::new`] cannot work (the text says which
    /// field and why); fix the pushed configuration.
    #[error("invalid netstack configuration: {0}")]
    InvalidConfig(&'static str),

    /// The handle was never issued by this stack or was already released.
    #[error("unknown {0} handle: it was released or belongs to another stack")]
    UnknownHandle(&'static str),

    /// Every local port of the ephemeral range is taken by an open socket.
    #[error("no free local port: all ephemeral ports are in use; release finished connections")]
    PortsExhausted,

    /// The requested UDP port is already bound by another socket of this stack.
    #[error("local port {0} is already bound")]
    PortInUse(u16),

    /// The destination cannot be used: unspecified, broadcast, multicast or port 0.
    #[error("cannot send to {0}: not a unicast address and port")]
    Unaddressable(SocketAddrV4),

    /// The host answered the connection attempt with a reset: nothing listens on that port,
    /// or a firewall rejects it.
    #[error("connection to {0} refused: nothing listens on that port, or a firewall rejects it")]
    ConnectionRefused(SocketAddrV4),

    /// The peer reset an established connection.
    #[error("connection to {0} was reset by the peer")]
    ConnectionReset(SocketAddrV4),

    /// No reply to the connection attempt within [`super::NetConfig::tcp_connect_timeout`].
    /// Check that the host is up and reachable through the tunnel.
    #[error("connection to {0} timed out: the host did not answer")]
    TimedOut(SocketAddrV4),

    /// The peer of an established connection stopped answering: what was sent went
    /// unacknowledged (or a closed window unanswered) for [`super::NetConfig::tcp_timeout`].
    #[error("connection to {0} stopped answering what was sent to it")]
    StoppedAnswering(SocketAddrV4),

    /// The connection is not (or no longer) open for sending: it was closed with
    /// [`super::NetStack::tcp_close`] or aborted.
    #[error("connection to {0} is closed for sending")]
    NotWritable(SocketAddrV4),

    /// The peer closed its side of the connection and every byte it sent has been read.
    #[error("end of stream: the peer closed the connection and all its data was read")]
    EndOfStream,

    /// The send buffer of the socket is full; poll the stack, send what it transmits and retry.
    #[error("send buffer full; poll the stack and retry")]
    BufferFull,

    /// A datagram or echo payload is larger than what fits in one packet of the tunnel MTU.
    #[error("payload of {len} bytes is larger than the maximum of {max} bytes for this tunnel MTU")]
    PayloadTooLarge {
        /// The length that was asked for.
        len: usize,
        /// The largest length that fits.
        max: usize,
    },

    /// The buffer given to a receive call is smaller than the waiting datagram; the datagram
    /// stays queued, retry with a buffer of at least `needed` bytes.
    #[error("receive buffer too small: the datagram has {needed} bytes")]
    BufferTooSmall {
        /// The size of the waiting datagram.
        needed: usize,
    },

    /// The host name is not a valid DNS name (empty label, label over 63 bytes, name over
    /// 253 bytes, or characters outside letters, digits, `-` and `_`).
    #[error("invalid host name {0:?}")]
    InvalidName(String),

    /// The tunnel configuration has no DNS server; use an IP address instead of a name,
    /// or configure a DNS server on the relay.
    #[error("cannot resolve {0:?}: the tunnel has no DNS server configured")]
    NoDnsServers(String),

    /// The DNS servers answered that the name does not exist or has no IPv4 address.
    #[error("host name {0:?} not found (no IPv4 address)")]
    NameNotFound(String),

    /// No DNS server answered in time.
    #[error("DNS lookup of {0:?} timed out: no DNS server answered")]
    DnsTimeout(String),

    /// Every DNS server that answered reported a failure (e.g. SERVFAIL or REFUSED).
    #[error("DNS lookup of {name:?} failed: the server answered with error code {rcode}")]
    DnsServerFailure {
        /// The name that was looked up.
        name: String,
        /// The DNS response code of the last failing answer.
        rcode: u8,
    },

    /// Too many sockets or queries are open at once; release some and retry.
    #[error("too many open {0}; release some and retry")]
    TooMany(&'static str),
}

/// Result of a netstack call.
pub type Result<T, E = Error> = core::result::Result<T, E>;
