//! The kernel's IPv4 neighbour table of the LAN interface over rtnetlink (crate `rtnetlink`):
//! one dump (`RTM_GETNEIGH`) at start and every `resync_secs`, and between dumps the kernel's
//! neighbour events (`RTNLGRP_NEIGH`), so a host shows up when the relay first exchanges a
//! packet with it and goes offline when the kernel gives up resolving it.
//!
//! [`observe`] turns one netlink message into a [`Neighbour`] (sans IO, unit-tested); [`run`] is
//! the thin driver that feeds [`super::inventory::Inventory`] from the socket of
//! [`super::netlink`]. IPv6 neighbours are skipped:
//! the inventory and the host list carry IPv4 addresses only. A lost event (the socket's buffer
//! overran, `ENOBUFS`) makes the driver dump the table again at once.

use super::inventory::Mac;
use super::{netlink, Discovery};
use futures_util::StreamExt;
use rtnetlink::packet_core::NetlinkPayload;
use rtnetlink::packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// What one neighbour message says about a LAN host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Neighbour {
    /// Its IPv4 address.
    pub address: Ipv4Addr,
    /// Its MAC while the kernel holds a usable entry (reachable, stale, being checked,
    /// permanent); `None` once resolving it failed or the entry was deleted.
    pub mac: Option<Mac>,
}

/// A neighbour message of the LAN interface that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unusable {
    /// An IPv4 entry without its IPv4 address.
    #[error("an IPv4 neighbour entry without an IPv4 destination")]
    NoAddress,
    /// A usable entry whose link-layer address is not a 6-byte MAC.
    #[error("the neighbour entry of {0} has a link-layer address of {1} bytes, not a MAC")]
    NotAMac(Ipv4Addr, usize),
}

/// What `message` (`deleted`: it came as `RTM_DELNEIGH`) says about a host on interface
/// `interface` (every interface when `None`). `Ok(None)`: not about an IPv4 host there.
pub fn observe(
    message: &NeighbourMessage,
    deleted: bool,
    interface: Option<u32>,
) -> Result<Option<Neighbour>, Unusable> {
    let header = &message.header;
    if header.family != AddressFamily::Inet || interface.is_some_and(|index| index != header.ifindex) {
        return Ok(None);
    }
    let address = message
        .attributes
        .iter()
        .find_map(|a| match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => Some(*ip),
            _ => None,
        })
        .ok_or(Unusable::NoAddress)?;
    let usable = matches!(
        header.state,
        NeighbourState::Reachable
            | NeighbourState::Stale
            | NeighbourState::Delay
            | NeighbourState::Probe
            | NeighbourState::Permanent
    );
    if deleted || !usable {
        return Ok(Some(Neighbour { address, mac: None }));
    }
    let lladdr = message.attributes.iter().find_map(|a| match a {
        NeighbourAttribute::LinkLayerAddress(bytes) => Some(bytes.as_slice()),
        _ => None,
    });
    let mac = match lladdr {
        Some(bytes) => Mac(bytes.try_into().map_err(|_| Unusable::NotAMac(address, bytes.len()))?),
        None => return Ok(Some(Neighbour { address, mac: None })),
    };
    Ok(Some(Neighbour { address, mac: Some(mac) }))
}

/// Reports each kind of trouble once at `warn`, then at `debug` (a kernel or crate that speaks
/// differently must not fill the log).
#[derive(Default)]
struct Complaints {
    unusable: bool,
    failed: bool,
}

impl Complaints {
    fn unusable(&mut self, e: &Unusable) {
        if std::mem::replace(&mut self.unusable, true) {
            tracing::debug!("neighbour message skipped: {e}");
        } else {
            tracing::warn!("neighbour message skipped (further ones are logged at debug): {e}");
        }
    }

    fn failed(&mut self, what: &str) {
        if std::mem::replace(&mut self.failed, true) {
            tracing::debug!("neighbour table: {what}");
        } else {
            tracing::warn!("neighbour table: {what} (further failures are logged at debug)");
        }
    }
}

/// Keeps the inventory's neighbours current until `shutdown` changes: subscribes to neighbour
/// events, dumps the table at once and every `resync`, and starts over (after a pause) when
/// the netlink socket fails.
pub async fn run(discovery: Arc<Discovery>, resync: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut complaints = Complaints::default();
    loop {
        match follow(&discovery, resync, &mut complaints, &mut shutdown).await {
            Ok(()) => return,
            Err(e) => complaints.failed(&e),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// One netlink connection: `Ok` when shutting down, `Err` when the socket failed.
async fn follow(
    discovery: &Discovery,
    resync: Duration,
    complaints: &mut Complaints,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), String> {
    let (socket, mut events) = netlink::subscribe().map_err(|e| format!("netlink socket: {e}"))?;
    let mut dump_every = tokio::time::interval(resync);
    dump_every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut interface = None;
    loop {
        tokio::select! {
            _ = dump_every.tick() => {
                if let Some(name) = discovery.interface.as_deref() {
                    interface = Some(socket.interface_index(name).await?);
                }
                let mut found = Vec::new();
                for message in socket.neighbours().await.map_err(|e| format!("dump: {e}"))? {
                    match observe(&message, false, interface) {
                        Ok(Some(Neighbour { address, mac: Some(mac) })) => found.push((address, mac)),
                        Ok(_) => {}
                        Err(e) => complaints.unusable(&e),
                    }
                }
                discovery.update(|inventory, now| inventory.observe_neighbours(now, &found));
            }
            event = events.next() => {
                let Some((message, _)) = event else { return Err("netlink events ended".into()) };
                let (message, deleted) = match message.payload {
                    NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewNeighbour(m)) => (m, false),
                    NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelNeighbour(m)) => (m, true),
                    NetlinkPayload::Overrun(_) => {
                        tracing::debug!("neighbour events were lost; reading the table again");
                        dump_every.reset_immediately();
                        continue;
                    }
                    _ => continue,
                };
                match observe(&message, deleted, interface) {
                    Ok(Some(n)) => discovery.update(|inventory, now| inventory.observe_neighbour(now, n.address, n.mac)),
                    Ok(None) => {}
                    Err(e) => complaints.unusable(&e),
                }
            }
            _ = shutdown.changed() => return Ok(()),
        }
        if socket.is_closed() {
            return Err("netlink connection ended".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtnetlink::packet_route::neighbour::NeighbourAddress;
    use std::net::Ipv6Addr;

    const LAN: u32 = 3;
    const NAS: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 10);
    const MAC10: [u8; 6] = [2, 0, 0, 0, 0, 0x10];

    /// A neighbour message as the kernel sends it: family, interface, state, attributes.
    fn message(
        family: AddressFamily,
        ifindex: u32,
        state: NeighbourState,
        attributes: Vec<NeighbourAttribute>,
    ) -> NeighbourMessage {
        let mut m = NeighbourMessage::default();
        m.header.family = family;
        m.header.ifindex = ifindex;
        m.header.state = state;
        m.attributes = attributes;
        m
    }

    fn nas(state: NeighbourState, lladdr: &[u8]) -> NeighbourMessage {
        let mut attributes = vec![NeighbourAttribute::Destination(NeighbourAddress::Inet(NAS))];
        if !lladdr.is_empty() {
            attributes.push(NeighbourAttribute::LinkLayerAddress(lladdr.to_vec()));
        }
        message(AddressFamily::Inet, LAN, state, attributes)
    }

    #[test]
    fn usable_entries_carry_the_mac_and_failed_or_deleted_ones_say_the_host_is_gone() {
        let up = Ok(Some(Neighbour { address: NAS, mac: Some(Mac(MAC10)) }));
        let gone = Ok(Some(Neighbour { address: NAS, mac: None }));
        #[rustfmt::skip]
        let cases = [
            (NeighbourState::Reachable,  false, &MAC10[..], up.clone()),
            (NeighbourState::Stale,      false, &MAC10[..], up.clone()),
            (NeighbourState::Delay,      false, &MAC10[..], up.clone()),
            (NeighbourState::Probe,      false, &MAC10[..], up.clone()),
            (NeighbourState::Permanent,  false, &MAC10[..], up.clone()),
            (NeighbourState::Reachable,  true,  &MAC10[..], gone.clone()),
            (NeighbourState::Failed,     false, &[][..],    gone.clone()),
            (NeighbourState::Incomplete, false, &[][..],    gone.clone()),
            (NeighbourState::None,       false, &MAC10[..], gone.clone()),
            (NeighbourState::Other(0x400), false, &MAC10[..], gone.clone()),
            (NeighbourState::Reachable,  false, &[][..],    gone.clone()),
        ];
        for (i, (state, deleted, lladdr, expected)) in cases.into_iter().enumerate() {
            assert_eq!(observe(&nas(state, lladdr), deleted, Some(LAN)), expected, "case {}", i + 1);
        }
    }

    #[test]
    fn other_interfaces_and_ipv6_entries_are_not_about_lan_hosts() {
        let mut other = nas(NeighbourState::Reachable, &MAC10);
        other.header.ifindex = LAN + 1;
        assert_eq!(observe(&other, false, Some(LAN)), Ok(None));
        assert!(observe(&other, false, None).unwrap().is_some(), "every interface when none is set");
        let v6 = message(
            AddressFamily::Inet6,
            LAN,
            NeighbourState::Reachable,
            vec![NeighbourAttribute::Destination(NeighbourAddress::Inet6(Ipv6Addr::LOCALHOST))],
        );
        assert_eq!(observe(&v6, false, Some(LAN)), Ok(None));
    }

    #[test]
    fn malformed_entries_are_refused_not_guessed() {
        let no_address = message(AddressFamily::Inet, LAN, NeighbourState::Reachable, vec![]);
        assert_eq!(observe(&no_address, false, Some(LAN)), Err(Unusable::NoAddress));
        let v6_address_in_v4 = message(
            AddressFamily::Inet,
            LAN,
            NeighbourState::Reachable,
            vec![NeighbourAttribute::Destination(NeighbourAddress::Other(vec![1, 2, 3]))],
        );
        assert_eq!(observe(&v6_address_in_v4, false, Some(LAN)), Err(Unusable::NoAddress));
        let long = nas(NeighbourState::Reachable, &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(observe(&long, false, Some(LAN)), Err(Unusable::NotAMac(NAS, 8)));
    }

    #[test]
    fn a_message_from_the_wire_converts_like_a_built_one() {
        use rtnetlink::packet_core::{Emitable, NetlinkHeader, NetlinkMessage};
        let mut wire = NetlinkMessage::new(
            NetlinkHeader::default(),
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewNeighbour(nas(NeighbourState::Stale, &MAC10))),
        );
        wire.finalize();
        let mut bytes = vec![0; wire.buffer_len()];
        wire.emit(&mut bytes);
        let parsed = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&bytes).expect("parses");
        let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewNeighbour(m)) = parsed.payload else { panic!() };
        assert_eq!(observe(&m, false, Some(LAN)), Ok(Some(Neighbour { address: NAS, mac: Some(Mac(MAC10)) })));
        assert!(NetlinkMessage::<RouteNetlinkMessage>::deserialize(&bytes[..bytes.len() - 3]).is_err(), "cut short");
    }
}
