//! Messages on the admin socket: one JSON request line, one JSON response line.

use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// A request from a command to the running relay.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// The relay's state and sessions.
    Status,
    /// All clients with their online state.
    Clients,
    /// Revoke a client and close its session.
    Revoke {
        /// The client's name.
        name: String,
    },
    /// Create an invite.
    Invite {
        /// Name of the device to enrol.
        name: String,
        /// Validity, seconds.
        ttl_secs: u64,
        /// ACL rules (`--allow` form); `None` for the whole LAN.
        allow: Option<String>,
        /// Whether the device may wake LAN hosts.
        #[serde(default)]
        wake: bool,
    },
    /// The hosts the relay sees on the LAN.
    Hosts,
}

/// The relay's answer.
// One answer per request on the control socket: the size of the status variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Response {
    /// Answer to [`Request::Status`].
    Status(StatusInfo),
    /// Answer to [`Request::Clients`].
    Clients {
        /// The clients.
        clients: Vec<ClientInfo>,
    },
    /// Answer to [`Request::Revoke`].
    Revoked {
        /// The client.
        name: String,
        /// Whether a live session was closed.
        closed_session: bool,
    },
    /// Answer to [`Request::Invite`].
    Invite(InviteInfo),
    /// Answer to [`Request::Hosts`].
    Hosts {
        /// The hosts, by address.
        hosts: Vec<HostInfo>,
    },
    /// The request failed.
    Error {
        /// Why.
        message: String,
    },
}

/// One client for listings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientInfo {
    /// Name.
    pub name: String,
    /// Key fingerprint.
    pub fingerprint: String,
    /// Tunnel address; `None` for a revoked client whose address went to a new device.
    pub address: Option<Ipv4Addr>,
    /// The client that holds the address a revoked client gave up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_reused_by: Option<String>,
    /// Allowed destinations.
    pub allow: String,
    /// May wake LAN hosts?
    #[serde(default)]
    pub wake: bool,
    /// Revoked?
    pub revoked: bool,
    /// Connected now? (`None` when the relay is not running.)
    pub online: Option<bool>,
    /// Remote address of the live session.
    pub remote: Option<String>,
    /// Last seen, Unix seconds.
    pub last_seen: Option<u64>,
    /// Bytes from the client.
    pub bytes_in: u64,
    /// Bytes to the client.
    pub bytes_out: u64,
}

/// One live session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Client name.
    pub name: String,
    /// Tunnel address.
    pub address: Ipv4Addr,
    /// Remote socket address.
    pub remote: String,
    /// Connected since, Unix seconds.
    pub since: u64,
    /// Bytes from the client in this session.
    pub bytes_in: u64,
    /// Bytes to the client in this session.
    pub bytes_out: u64,
}

/// The running relay.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusInfo {
    /// Listen address.
    pub listen: String,
    /// Public URL.
    pub public_url: String,
    /// masquerade / routed.
    pub mode: String,
    /// tun device name.
    pub tun: String,
    /// Relay tunnel address.
    pub relay_address: Ipv4Addr,
    /// Pool.
    pub pool: String,
    /// LAN.
    pub lan: String,
    /// LAN interface.
    pub lan_interface: Option<String>,
    /// Relay public key fingerprint.
    pub relay_fingerprint: String,
    /// Started, Unix seconds.
    pub started: u64,
    /// Live sessions.
    pub sessions: Vec<SessionInfo>,
    /// Connections waiting in handshakes.
    pub handshakes: u64,
    /// Packets dropped (spoofed, denied, malformed, queue full).
    pub dropped: DropCounters,
    /// The TLS certificate in use.
    #[serde(default)]
    pub certificate: Option<crate::acme::CertificateInfo>,
}

/// Dropped packet counters.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DropCounters {
    /// Wrong source address.
    pub spoofed: u64,
    /// Not allowed by the ACL, or client-to-client.
    pub denied: u64,
    /// Not IPv4 or malformed.
    pub malformed: u64,
    /// Session queue full or no session for the destination.
    pub no_route_or_full: u64,
}

/// A created invite.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InviteInfo {
    /// The link (holds the secret in its fragment).
    pub link: String,
    /// Name of the device.
    pub name: String,
    /// Expiry, Unix seconds.
    pub expires: u64,
    /// Allowed destinations.
    pub allow: String,
    /// May the device wake LAN hosts?
    #[serde(default)]
    pub wake: bool,
}

/// One LAN host for `hometun-relay hosts`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostInfo {
    /// LAN address.
    pub address: Ipv4Addr,
    /// MAC address, once seen.
    pub mac: Option<String>,
    /// Names (mDNS, reverse DNS).
    pub names: Vec<String>,
    /// Friendly name from an announcement.
    pub label: Option<String>,
    /// Services as `type:port`, e.g. `_http._tcp:80`.
    pub services: Vec<String>,
    /// Seen now.
    pub online: bool,
}
