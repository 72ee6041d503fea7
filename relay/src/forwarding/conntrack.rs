//! The kernel's connection tracking entries of one tunnel address, forgotten when its device is
//! revoked and when the address goes to another device. An entry outlives the device that made
//! it (an established TCP flow is kept for five days): while it lasts, the LAN host's replies on
//! that flow (masqueraded or routed) are sent on to the address, which a new holder would get.
//!
//! Over ctnetlink (crate `netlink-packet-netfilter`): a dump of the IPv4 table, then one delete
//! per entry whose original direction starts or ends at the address (in its zone); again while
//! a dump finds any (a dump is not a snapshot: entries made or moved meanwhile can be missed),
//! at most [`PASSES`] times. Blocking (each answer within [`ANSWER_WITHIN`]); run it off the
//! async workers.

use netlink_packet_netfilter::conntrack::{ConntrackAttribute, ConntrackMessage, IPTuple, Tuple};
use netlink_packet_netfilter::{NetfilterHeader, NetfilterMessage, NetfilterMessageInner, NetfilterProtoFamily};
use rtnetlink::packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, Nla, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use rtnetlink::sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// Room for one datagram of the kernel's answers (a dump sends a few KiB at a time).
const RECEIVE_BUFFER: usize = 256 * 1024;
/// Most dumps one forget makes.
const PASSES: usize = 3;
/// Longest the kernel may take to answer a request: a stuck answer ends the forget, not the
/// session it runs for.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);
/// `CTA_ZONE`: the entry's zone, sent back with its tuple (an entry is found in its zone only).
const CTA_ZONE: u16 = 18;

/// What [`forget`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Forgotten {
    /// Entries of the address deleted.
    pub deleted: usize,
    /// Entries of the address that were gone by the time they were deleted (expired meanwhile).
    pub gone: usize,
    /// Entries of the table this crate could not read (skipped).
    pub unreadable: usize,
}

/// Deletes every connection tracking entry whose original direction has `address` as its source
/// or destination.
pub fn forget(address: Ipv4Addr) -> io::Result<Forgotten> {
    let mut socket = Socket::new(NETLINK_NETFILTER)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    socket2::SockRef::from(&socket).set_read_timeout(Some(ANSWER_WITHIN))?;
    let mut forgotten = Forgotten::default();
    for _ in 0..PASSES {
        let mut entries = Vec::new();
        send(&socket, ConntrackMessage::Get(Vec::new()), NLM_F_REQUEST | NLM_F_DUMP)?;
        receive(&socket, |message| match message {
            Some(ConntrackMessage::New(attributes)) => entries.extend(entry_of(&attributes, address)),
            Some(_) => {}
            None => forgotten.unreadable += 1,
        })?;
        if entries.is_empty() {
            break;
        }
        for entry in entries {
            send(&socket, ConntrackMessage::Delete(entry), NLM_F_REQUEST | NLM_F_ACK)?;
            match receive(&socket, |_| {}) {
                Ok(()) => forgotten.deleted += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => forgotten.gone += 1,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(forgotten)
}

/// What deletes an entry (its original-direction tuple, and its zone), when its original
/// direction starts or ends at `address`.
fn entry_of(attributes: &[ConntrackAttribute], address: Ipv4Addr) -> Option<Vec<ConntrackAttribute>> {
    let address = IpAddr::V4(address);
    let tuple = attributes.iter().find_map(|attribute| match attribute {
        ConntrackAttribute::CtaTupleOrig(tuple) => Some(tuple),
        _ => None,
    })?;
    let involved = tuple.iter().any(|part| match part {
        Tuple::Ip(ips) => ips
            .iter()
            .any(|ip| matches!(ip, IPTuple::SourceAddress(a) | IPTuple::DestinationAddress(a) if *a == address)),
        _ => false,
    });
    let zone = attributes.iter().find(|a| matches!(a, ConntrackAttribute::Other(nla) if nla.kind() == CTA_ZONE));
    involved.then(|| std::iter::once(ConntrackAttribute::CtaTupleOrig(tuple.clone())).chain(zone.cloned()).collect())
}

fn send(socket: &Socket, message: ConntrackMessage, flags: u16) -> io::Result<()> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    let inner = NetfilterMessage::new(NetfilterHeader::new(NetfilterProtoFamily::IPv4, 0, 0), message);
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(inner));
    packet.finalize();
    let mut buffer = vec![0; packet.buffer_len()];
    packet.serialize(&mut buffer);
    socket.send(&buffer, 0)?;
    Ok(())
}

/// Reads the kernel's answers to the last request until it is done (a dump's end, an
/// acknowledgement) or reports an error, handing each conntrack message to `each` (`None` for
/// one that does not parse).
fn receive(socket: &Socket, mut each: impl FnMut(Option<ConntrackMessage>)) -> io::Result<()> {
    let mut buffer = Vec::with_capacity(RECEIVE_BUFFER);
    loop {
        buffer.clear();
        let size = match socket.recv(&mut buffer, 0) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => other?,
        };
        let mut datagram = &buffer[..size];
        while !datagram.is_empty() {
            let length = netlink_length(datagram);
            if length == 0 || length > datagram.len() {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "a netlink answer with a damaged length"));
            }
            let (message, rest) = datagram.split_at(length);
            datagram = &rest[rest.len().min(padding(length))..];
            match NetlinkMessage::<NetfilterMessage>::deserialize(message) {
                Ok(NetlinkMessage { payload: NetlinkPayload::Done(done), .. }) => return os_result(done.code),
                // An acknowledgement (no code) or an error.
                Ok(NetlinkMessage { payload: NetlinkPayload::Error(e), .. }) => {
                    return os_result(e.code.map_or(0, |code| code.get()))
                }
                Ok(NetlinkMessage { payload: NetlinkPayload::InnerMessage(m), .. }) => match m.inner {
                    NetfilterMessageInner::Conntrack(m) => each(Some(m)),
                    _ => each(None),
                },
                Ok(_) => {}
                Err(_) => each(None),
            }
        }
    }
}

/// A netlink answer's code (0, or an errno negated) as a result.
fn os_result(code: i32) -> io::Result<()> {
    match code {
        0 => Ok(()),
        code => Err(io::Error::from_raw_os_error(code.saturating_neg())),
    }
}

/// The length field of the netlink message at the start of `datagram` (0 when it is too short).
fn netlink_length(datagram: &[u8]) -> usize {
    datagram.get(..4).map_or(0, |b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

/// Bytes after a message of `length` before the next one (messages are 4-byte aligned).
fn padding(length: usize) -> usize {
    length.next_multiple_of(4) - length
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_netfilter::conntrack::{ProtoTuple, Protocol};
    use rtnetlink::packet_core::DefaultNla;

    fn tuple(src: [u8; 4], dst: [u8; 4]) -> Vec<Tuple> {
        vec![
            Tuple::Ip(vec![
                IPTuple::SourceAddress(Ipv4Addr::from(src).into()),
                IPTuple::DestinationAddress(Ipv4Addr::from(dst).into()),
            ]),
            Tuple::Proto(vec![
                ProtoTuple::Protocol(Protocol::Tcp),
                ProtoTuple::SourcePort(40000),
                ProtoTuple::DestinationPort(80),
            ]),
        ]
    }

    #[test]
    fn an_entry_is_the_addresss_when_its_original_direction_starts_or_ends_there() {
        let original = |entry: Option<Vec<ConntrackAttribute>>| {
            entry.map(|attributes| match attributes.first() {
                Some(ConntrackAttribute::CtaTupleOrig(tuple)) => tuple.clone(),
                other => panic!("no original tuple first: {other:?}"),
            })
        };
        let me = Ipv4Addr::new(10, 8, 0, 2);
        let entry = |orig: Vec<Tuple>, reply: Vec<Tuple>| {
            vec![ConntrackAttribute::CtaTupleOrig(orig), ConntrackAttribute::CtaTupleReply(reply)]
        };
        // The device's own flow to a LAN host, masqueraded: found, with its original tuple.
        let outgoing = entry(tuple([10, 8, 0, 2], [192, 168, 0, 10]), tuple([192, 168, 0, 10], [192, 168, 0, 2]));
        assert_eq!(original(entry_of(&outgoing, me)), Some(tuple([10, 8, 0, 2], [192, 168, 0, 10])));
        // A LAN host's flow to the address (routed mode).
        let incoming = entry(tuple([192, 168, 0, 10], [10, 8, 0, 2]), tuple([10, 8, 0, 2], [192, 168, 0, 10]));
        assert!(entry_of(&incoming, me).is_some());
        // Another device's flow, and a flow only whose reply names the address: not its own.
        let other = entry(tuple([10, 8, 0, 3], [192, 168, 0, 10]), tuple([192, 168, 0, 10], [192, 168, 0, 2]));
        assert_eq!(entry_of(&other, me), None);
        let reply_only = entry(tuple([192, 168, 0, 10], [192, 168, 0, 2]), tuple([192, 168, 0, 2], [10, 8, 0, 2]));
        assert_eq!(entry_of(&reply_only, me), None);
        // An entry of another zone is deleted in its zone.
        let zone = ConntrackAttribute::Other(DefaultNla::new(CTA_ZONE, vec![0, 7]));
        let zoned = [outgoing.clone(), vec![zone.clone()]].concat();
        assert_eq!(entry_of(&zoned, me).map(|e| e.len()), Some(2));
        assert_eq!(entry_of(&zoned, me).and_then(|e| e.last().cloned()), Some(zone));
    }
}
