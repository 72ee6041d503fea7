//! The opt-in probe of common web ports (`probe_web_ports = true`): for hosts that announce
//! nothing, a TCP connect to each port with a short timeout. At most one host per neighbour
//! poll and each host at most once per 10 minutes ([`super::inventory::Inventory::probe_due`]).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

/// The ports tried, with the service type an open one is listed as.
pub const PORTS: &[(&str, u16)] =
    &[("_http._tcp", 80), ("_https._tcp", 443), ("_http._tcp", 5000), ("_http._tcp", 8080), ("_http._tcp", 8123)];

/// How long one connect may take.
const TIMEOUT: Duration = Duration::from_millis(800);

/// The ports of [`PORTS`] open on `address` (connected, then closed at once).
pub async fn web_ports(address: Ipv4Addr) -> Vec<(&'static str, u16)> {
    let mut open = Vec::new();
    for &(kind, port) in PORTS {
        let connect = tokio::net::TcpStream::connect(SocketAddrV4::new(address, port));
        if let Ok(Ok(_stream)) = tokio::time::timeout(TIMEOUT, connect).await {
            open.push((kind, port));
        }
    }
    open
}
