//! Packets from the tun device to the session that owns their destination address. A full
//! session queue drops the packet (as a router does) instead of stalling every other client.

use super::Relay;
use crate::net::packet::ipv4_destination;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Reads the tun device until shutdown.
pub async fn run(relay: Arc<Relay>) {
    let Some(tun) = relay.tun.as_ref() else { return };
    let mut shutdown = relay.shutdown.clone();
    let mut buffer = vec![0u8; 65536];
    loop {
        let n = tokio::select! {
            read = tun.recv(&mut buffer) => match read {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!("reading the tun device failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let packet = &buffer[..n];
        let delivered = ipv4_destination(packet)
            .and_then(|dst| relay.sessions.by_address(dst))
            .is_some_and(|session| session.packets.try_send(packet.to_vec()).is_ok());
        if !delivered {
            relay.drops.no_route_or_full.fetch_add(1, Ordering::Relaxed);
        }
    }
}
