//! mDNS/DNS-SD browsing on the LAN interface only: every resolved instance of the common
//! service types becomes an [`Announcement`]; goodbyes and expiries remove it.
//!
//! The browser ([`browser`]) is sans IO and bounded; this driver is a thread that reads the
//! socket ([`socket`]), feeds the browser, sends its queries and hands what it found to
//! discovery, until discovery stops.

pub mod browser;
pub mod message;
pub mod socket;
#[cfg(test)]
mod tests;

use super::Discovery;
use browser::{Browser, Event};
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;

/// The service types browsed.
pub const SERVICE_TYPES: &[&str] = &[
    "_http._tcp",
    "_https._tcp",
    "_ssh._tcp",
    "_sftp-ssh._tcp",
    "_rfb._tcp",
    "_smb._tcp",
    "_afpovertcp._tcp",
    "_ipp._tcp",
    "_printer._tcp",
    "_device-info._tcp",
    "_workstation._tcp",
    "_home-assistant._tcp",
];

/// Starts browsing on `interface` (IPv4) on a thread of its own, which ends within
/// [`socket::READ_TIMEOUT`] of [`Discovery::stop`]. Fails when the socket cannot be opened.
pub fn start(interface: &str, discovery: Arc<Discovery>) -> std::io::Result<()> {
    let socket = socket::open(interface)?;
    let mut browser = Browser::new(discovery.clock.now(), discovery.lan, SERVICE_TYPES);
    let group = SocketAddrV4::new(message::GROUP, message::PORT);
    std::thread::Builder::new().name("mdns".into()).spawn(move || {
        let mut packet = vec![0; message::MAX_LEN];
        let mut failing = false;
        while !discovery.stopped() {
            let now = discovery.clock.now();
            match socket.recv_from(&mut packet) {
                Ok((len, SocketAddr::V4(from))) => browser.handle_response(now, from, &packet[..len]),
                Ok(_) => {}
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) => {
                    if !failing {
                        tracing::warn!("mDNS: reading failed: {e}");
                        failing = true;
                    }
                    std::thread::sleep(socket::READ_TIMEOUT);
                }
            }
            let now = discovery.clock.now();
            browser.handle_timeout(now);
            handle(&discovery, std::iter::from_fn(|| browser.poll_event()).collect());
            if let Some(query) = browser.poll_transmit(now) {
                if let Err(e) = socket.send_to(&query, group) {
                    tracing::debug!("mDNS: a query was not sent: {e}");
                }
            }
        }
    })?;
    Ok(())
}

/// Hands what one round of the browser found to the inventory in one change, so devices hear of
/// it once: an instance whose address changed comes as gone and found again, and no list
/// without it is published between (nor a list per instance when a host has many).
fn handle(discovery: &Discovery, events: Vec<Event>) {
    if events.is_empty() {
        return;
    }
    discovery.update(|inventory, now| {
        for event in &events {
            match event {
                Event::Resolved(announcement) => inventory.observe_announcement(now, announcement),
                Event::Removed(instance) => inventory.remove_announcement(instance),
            }
        }
    });
}
