//! mDNS messages (RFC 6762) as the browser sees them: a response read into the few records it
//! uses, and a query built from its questions. hickory-proto parses and writes the DNS wire
//! format; nothing here trusts a sender.

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use std::net::Ipv4Addr;

/// The mDNS port and group (RFC 6762 §3).
pub const PORT: u16 = 5353;
/// The IPv4 mDNS group.
pub const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);

/// Most records read from one response (answers and additionals together); the rest are
/// ignored. A full 9,000-byte packet of address records would hold about 600.
pub const MOST_RECORDS: usize = 64;

/// Most questions in one query.
pub const MOST_QUESTIONS: usize = 32;

/// The largest mDNS message read (RFC 6762 §17).
pub const MAX_LEN: usize = 9000;

/// A record of a response the browser may use. TTLs are the sender's, in seconds; 0 is a
/// goodbye (RFC 6762 §10.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A service type's instance (`_http._tcp.local.` → `My NAS._http._tcp.local.`).
    Pointer {
        /// The service type's name.
        kind: Name,
        /// The instance's full name.
        instance: Name,
        /// Seconds it holds.
        ttl: u32,
    },
    /// Where an instance runs.
    Service {
        /// The instance's full name.
        instance: Name,
        /// The host it runs on.
        target: Name,
        /// Its port.
        port: u16,
        /// Seconds it holds.
        ttl: u32,
        /// The cache-flush bit: this response holds every record of the name and type (§10.2).
        flush: bool,
    },
    /// A host's IPv4 address.
    Address {
        /// The host's name.
        host: Name,
        /// One of its addresses.
        address: Ipv4Addr,
        /// Seconds it holds.
        ttl: u32,
        /// The cache-flush bit: this response holds every address of the host (§10.2).
        flush: bool,
    },
}

/// The records of a response the browser may use, in the message's order, at most
/// [`MOST_RECORDS`]; `None` for anything that is not a well-formed, successful mDNS response.
pub fn read_response(packet: &[u8]) -> Option<Vec<Answer>> {
    if packet.len() > MAX_LEN {
        return None;
    }
    let message = Message::from_vec(packet).ok()?;
    if message.message_type() != MessageType::Response
        || message.op_code() != OpCode::Query
        || message.response_code() != ResponseCode::NoError
    {
        return None;
    }
    let records = message.answers().iter().chain(message.additionals()).take(MOST_RECORDS);
    let answers = records
        .filter_map(|record| {
            let (name, ttl, flush) = (record.name().clone(), record.ttl(), record.mdns_cache_flush());
            match record.data() {
                RData::PTR(target) => Some(Answer::Pointer { kind: name, instance: target.0.clone(), ttl }),
                RData::SRV(srv) => {
                    Some(Answer::Service { instance: name, target: srv.target().clone(), port: srv.port(), ttl, flush })
                }
                RData::A(a) => Some(Answer::Address { host: name, address: a.0, ttl, flush }),
                _ => None,
            }
        })
        .collect();
    Some(answers)
}

/// A query asking each of `questions` (at most [`MOST_QUESTIONS`] are taken), as a querier
/// sends it from port 5353: id 0, no recursion, multicast answers wanted.
pub fn query(questions: &[(Name, RecordType)]) -> Vec<u8> {
    let mut message = Message::new();
    message.set_id(0).set_message_type(MessageType::Query).set_op_code(OpCode::Query);
    for (name, kind) in questions.iter().take(MOST_QUESTIONS) {
        message.add_query(Query::query(name.clone(), *kind));
    }
    // Writing can fail only for names or counts the wire cannot hold; ours come from the
    // wire or from constants, and the count is bounded above.
    message.to_vec().unwrap_or_default()
}

#[cfg(test)]
pub mod tests {
    //! Reading and writing, and the builders the browser's tests use.
    use super::*;
    use hickory_proto::rr::rdata::{A, PTR, SRV, TXT};
    use hickory_proto::rr::Record;

    /// A name as DNS-SD writes it: what comes before the first `._` is one label as it is
    /// (an instance's name may hold spaces, dots and any letters), the rest ordinary labels.
    pub fn name(text: &str) -> Name {
        match text.split_once("._") {
            Some((first, rest)) if !first.is_empty() => {
                let first = Name::from_labels([first.as_bytes()]).unwrap();
                first.append_domain(&Name::from_ascii(format!("_{rest}")).unwrap()).unwrap()
            }
            _ => Name::from_ascii(text).unwrap(),
        }
    }

    /// A response carrying `answers` (as a responder on the LAN writes it).
    pub fn response(answers: &[Answer]) -> Vec<u8> {
        let mut message = Message::new();
        message.set_message_type(MessageType::Response).set_authoritative(true);
        for answer in answers {
            let mut record = match answer.clone() {
                Answer::Pointer { kind, instance, ttl } => Record::from_rdata(kind, ttl, RData::PTR(PTR(instance))),
                Answer::Service { instance, target, port, ttl, .. } => {
                    Record::from_rdata(instance, ttl, RData::SRV(SRV::new(0, 0, port, target)))
                }
                Answer::Address { host, address, ttl, .. } => Record::from_rdata(host, ttl, RData::A(A(address))),
            };
            if let Answer::Service { flush: true, .. } | Answer::Address { flush: true, .. } = answer {
                record.set_mdns_cache_flush(true);
            }
            message.add_answer(record);
        }
        message.to_vec().unwrap()
    }

    #[test]
    fn a_response_gives_its_pointer_service_and_address_records_and_skips_the_rest() {
        let mut message = Message::new();
        message.set_message_type(MessageType::Response);
        let txt =
            Record::from_rdata(name("My NAS._http._tcp.local."), 4500, RData::TXT(TXT::new(vec!["path=/".into()])));
        message.add_answer(txt);
        let mut packet = message.to_vec().unwrap();
        assert_eq!(read_response(&packet), Some(vec![]));

        let answers = vec![
            Answer::Pointer { kind: name("_http._tcp.local."), instance: name("My NAS._http._tcp.local."), ttl: 4500 },
            Answer::Service {
                instance: name("My NAS._http._tcp.local."),
                target: name("nas.local."),
                port: 8080,
                ttl: 120,
                flush: true,
            },
            Answer::Address {
                host: name("nas.local."),
                address: Ipv4Addr::new(192, 168, 0, 10),
                ttl: 120,
                flush: true,
            },
        ];
        packet = response(&answers);
        assert_eq!(read_response(&packet), Some(answers));
    }

    #[test]
    fn queries_errors_and_garbage_are_not_responses() {
        let asked = query(&[(name("_http._tcp.local."), RecordType::PTR)]);
        assert_eq!(read_response(&asked), None, "a query");
        let mut refused = Message::new();
        refused.set_message_type(MessageType::Response).set_response_code(ResponseCode::Refused);
        assert_eq!(read_response(&refused.to_vec().unwrap()), None, "an error");
        assert_eq!(read_response(&[]), None);
        assert_eq!(read_response(&[0xff; 12]), None);
        let mut big = response(&[]);
        big.resize(MAX_LEN + 1, 0);
        assert_eq!(read_response(&big), None, "longer than mDNS allows");
        // Every truncation of a good response is refused or read, never a panic.
        let good = response(&[Answer::Address {
            host: name("nas.local."),
            address: Ipv4Addr::new(192, 168, 0, 10),
            ttl: 120,
            flush: false,
        }]);
        for len in 0..good.len() {
            let _ = read_response(&good[..len]);
        }
    }

    #[test]
    fn a_response_is_read_up_to_its_limit_of_records() {
        let answers: Vec<Answer> = (0..200u8)
            .map(|i| Answer::Address {
                host: name("nas.local."),
                address: Ipv4Addr::new(10, 0, 0, i),
                ttl: 120,
                flush: false,
            })
            .collect();
        assert_eq!(read_response(&response(&answers)).unwrap().len(), MOST_RECORDS);
    }

    #[test]
    fn a_query_asks_its_questions_from_id_zero_and_at_most_its_limit() {
        let questions: Vec<(Name, RecordType)> =
            (0..40).map(|i| (name(&format!("host{i}.local.")), RecordType::A)).collect();
        let message = Message::from_vec(&query(&questions)).unwrap();
        assert_eq!(message.id(), 0);
        assert_eq!(message.message_type(), MessageType::Query);
        assert!(!message.recursion_desired());
        assert_eq!(message.queries().len(), MOST_QUESTIONS);
        assert_eq!(message.queries()[0].name(), &name("host0.local."));
    }
}
