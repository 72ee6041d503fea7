//! The rtnetlink socket of the neighbour driver (crate `netlink-proto` and the packet crates,
//! through `rtnetlink`'s re-exports): one connection subscribed to neighbour events
//! (`RTMGRP_NEIGH`), the two requests the driver makes on it (the IPv4 neighbour dump, an
//! interface's index), and a codec that skips what does not parse and reports that once.

use futures_util::{Stream, StreamExt};
use rtnetlink::constants::RTMGRP_NEIGH;
use rtnetlink::packet_core::{
    NetlinkBuffer, NetlinkDeserializable, NetlinkMessage, NetlinkPayload, NetlinkSerializable, NLM_F_DUMP,
    NLM_F_REQUEST,
};
use rtnetlink::packet_route::link::{LinkAttribute, LinkMessage};
use rtnetlink::packet_route::neighbour::NeighbourMessage;
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::proto::{ConnectionHandle, NetlinkCodec, NetlinkMessageCodec};
use rtnetlink::sys::{protocols::NETLINK_ROUTE, AsyncSocket, SocketAddr, TokioSocket};
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};

/// An rtnetlink connection subscribed to neighbour events; its task ends when it is dropped.
pub struct Socket {
    handle: ConnectionHandle<RouteNetlinkMessage>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Opens the socket and subscribes to neighbour events; they come out of the stream as they
/// arrive (with an `Overrun` payload when some were lost).
pub fn subscribe(
) -> std::io::Result<(Socket, impl Stream<Item = (NetlinkMessage<RouteNetlinkMessage>, SocketAddr)> + Unpin)> {
    let (mut connection, handle, events) =
        rtnetlink::proto::new_connection_with_codec::<RouteNetlinkMessage, TokioSocket, Codec>(NETLINK_ROUTE)?;
    connection.socket_mut().socket_mut().bind(&SocketAddr::new(0, RTMGRP_NEIGH))?;
    let task = tokio::spawn(connection);
    Ok((Socket { handle, task }, events))
}

impl Socket {
    /// Whether the connection ended (the socket failed).
    pub fn is_closed(&self) -> bool {
        self.task.is_finished()
    }

    /// Every IPv4 entry of the neighbour table now (`RTM_GETNEIGH` dump).
    pub async fn neighbours(&self) -> Result<Vec<NeighbourMessage>, String> {
        let mut request = NeighbourMessage::default();
        request.header.family = AddressFamily::Inet;
        let replies = self.request(RouteNetlinkMessage::GetNeighbour(request), NLM_F_REQUEST | NLM_F_DUMP).await?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewNeighbour(n) => Some(n),
                _ => None,
            })
            .collect())
    }

    /// The index of interface `name`.
    pub async fn interface_index(&self, name: &str) -> Result<u32, String> {
        let mut request = LinkMessage::default();
        request.attributes.push(LinkAttribute::IfName(name.to_owned()));
        let replies = self
            .request(RouteNetlinkMessage::GetLink(request), NLM_F_REQUEST)
            .await
            .map_err(|e| format!("interface {name}: {e}"))?;
        replies
            .into_iter()
            .find_map(|m| match m {
                RouteNetlinkMessage::NewLink(link) => Some(link.header.index),
                _ => None,
            })
            .ok_or_else(|| format!("no interface {name}"))
    }

    /// Sends `message` and collects the replies (an error reply ends it).
    async fn request(&self, message: RouteNetlinkMessage, flags: u16) -> Result<Vec<RouteNetlinkMessage>, String> {
        let mut message = NetlinkMessage::from(message);
        message.header.flags = flags;
        let mut replies =
            self.handle.request(message, SocketAddr::new(0, 0)).map_err(|e| format!("netlink request: {e}"))?;
        let mut out = Vec::new();
        while let Some(reply) = replies.next().await {
            match reply.payload {
                NetlinkPayload::InnerMessage(m) => out.push(m),
                NetlinkPayload::Error(e) if e.code.is_some() => return Err(e.to_string()),
                _ => {}
            }
        }
        Ok(out)
    }
}

/// Whether a message that did not parse was reported at `warn` already.
static REPORTED: AtomicBool = AtomicBool::new(false);

fn report(what: &str) {
    if REPORTED.swap(true, Ordering::Relaxed) {
        tracing::debug!("netlink message skipped: {what}");
    } else {
        tracing::warn!("netlink message skipped (further ones are logged at debug): {what}");
    }
}

/// The standard netlink codec, except that what does not parse is reported once through the
/// relay's log and skipped (never a panic, never a log line per packet).
pub struct Codec;

impl NetlinkMessageCodec for Codec {
    fn decode<T>(src: &mut bytes::BytesMut) -> std::io::Result<Option<NetlinkMessage<T>>>
    where
        T: NetlinkDeserializable + Debug,
    {
        while !src.is_empty() {
            let length = match NetlinkBuffer::new_checked(src.as_ref()) {
                Ok(buffer) => buffer.length() as usize,
                Err(e) => {
                    // No length to trust: the rest of the datagram goes.
                    report(&format!("a datagram of {} bytes: {e}", src.len()));
                    src.clear();
                    return Ok(None);
                }
            };
            let bytes = src.split_to(length.min(src.len()));
            match NetlinkMessage::<T>::deserialize(&bytes) {
                Ok(message) => return Ok(Some(message)),
                Err(e) => report(&format!("a message of {} bytes: {e}", bytes.len())),
            }
        }
        Ok(None)
    }

    fn encode<T>(message: NetlinkMessage<T>, buffer: &mut bytes::BytesMut) -> std::io::Result<()>
    where
        T: NetlinkSerializable + Debug,
    {
        NetlinkCodec::encode(message, buffer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtnetlink::packet_core::{Emitable, NetlinkHeader};

    fn new_neighbour_bytes() -> Vec<u8> {
        let mut message = NetlinkMessage::new(
            NetlinkHeader::default(),
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewNeighbour(NeighbourMessage::default())),
        );
        message.finalize();
        let mut bytes = vec![0; message.buffer_len()];
        message.emit(&mut bytes);
        bytes
    }

    #[test]
    fn what_does_not_parse_is_skipped_and_the_next_message_still_read() {
        let good = new_neighbour_bytes();
        let mut bad = good.clone();
        bad[4..6].copy_from_slice(&28u16.to_ne_bytes()); // RTM_NEWNEIGH…
        bad.truncate(20); // …with its header cut short
        bad[0..4].copy_from_slice(&20u32.to_ne_bytes());
        let mut datagram = bytes::BytesMut::from(&[bad.as_slice(), good.as_slice()].concat()[..]);
        let first = Codec::decode::<RouteNetlinkMessage>(&mut datagram).unwrap();
        assert!(matches!(
            first.map(|m| m.payload),
            Some(NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewNeighbour(_)))
        ));
        assert!(Codec::decode::<RouteNetlinkMessage>(&mut datagram).unwrap().is_none());

        for junk in [&[][..], &[1, 2, 3][..], &[0xff; 64][..], &good[..good.len() - 1]] {
            let mut datagram = bytes::BytesMut::from(junk);
            assert!(Codec::decode::<RouteNetlinkMessage>(&mut datagram).unwrap().is_none(), "{junk:?}");
            assert!(datagram.is_empty(), "nothing is left to trip over");
        }
    }
}
