//! Reverse names (PTR) of LAN hosts from the LAN's DNS server (usually the home router), one
//! UDP query per host with a short timeout. Messages are built and parsed by hickory-proto.

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// How long one query may take.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// The PTR query for `address` with message id `id`.
pub fn query(id: u16, address: Ipv4Addr) -> Vec<u8> {
    let mut message = Message::new();
    message
        .set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .add_query(Query::query(Name::from(address), RecordType::PTR));
    message.to_vec().unwrap_or_default()
}

/// The name in a reply to query `id`: `None` when the bytes are not that reply, `Some(None)`
/// when the server has no name for the address.
pub fn answer(id: u16, bytes: &[u8]) -> Option<Option<String>> {
    let message = Message::from_vec(bytes).ok()?;
    if message.id() != id || message.message_type() != MessageType::Response {
        return None;
    }
    Some(message.answers().iter().find_map(|record| match record.data() {
        RData::PTR(ptr) => Some(ptr.0.to_utf8()),
        _ => None,
    }))
}

/// Asks `server` for the reverse name of `address`.
pub async fn lookup(server: SocketAddr, address: Ipv4Addr) -> std::io::Result<Option<String>> {
    let socket = tokio::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).await?;
    let id: u16 = rand_core::RngCore::next_u32(&mut rand_core::OsRng) as u16;
    socket.send_to(&query(id, address), server).await?;
    let mut buffer = [0u8; 1500];
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let (n, from) = tokio::time::timeout_at(deadline, socket.recv_from(&mut buffer))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer"))??;
        if from != server {
            continue;
        }
        if let Some(name) = answer(id, &buffer[..n]) {
            return Ok(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::PTR;
    use hickory_proto::rr::Record;

    #[test]
    fn a_ptr_reply_gives_the_name_and_other_bytes_give_nothing() {
        let address = Ipv4Addr::new(192, 168, 0, 20);
        let asked = Message::from_vec(&query(7, address)).unwrap();
        assert_eq!(asked.queries()[0].name().to_utf8(), "20.0.168.192.in-addr.arpa.");

        let mut reply = asked.clone();
        reply.set_message_type(MessageType::Response);
        let name = Name::from_utf8("printer.home.arpa.").unwrap();
        reply.add_answer(Record::from_rdata(Name::from(address), 60, RData::PTR(PTR(name))));
        let bytes = reply.to_vec().unwrap();
        assert_eq!(answer(7, &bytes), Some(Some("printer.home.arpa.".into())));
        assert_eq!(answer(8, &bytes), None, "another query's reply");

        let mut empty = asked;
        empty.set_message_type(MessageType::Response);
        assert_eq!(answer(7, &empty.to_vec().unwrap()), Some(None));
        assert_eq!(answer(7, b"\x00\x07garbage"), None);
    }
}
