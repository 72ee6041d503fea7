//! DNS lookups (A records) against the DNS servers the relay pushed.
//!
//! A small stub resolver over one UDP socket per query (random port and transaction id):
//! each server gets three attempts (waiting 1, 2 and 3 s), then the next server is tried.
//! Answers are parsed with smoltcp's bounds-checked DNS views; CNAME chains inside one answer
//! are followed. Unlike smoltcp's own DNS socket, failures come out typed: the name does not
//! exist, the servers failed, or nobody answered.

use std::collections::{BTreeMap, VecDeque};
use std::net::Ipv4Addr;

use rand_core::RngCore;
use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::udp;
use smoltcp::wire::{
    DnsFlags, DnsOpcode, DnsPacket, DnsQueryType, DnsQuestion, DnsRcode, DnsRecord, DnsRecordData, DnsRepr,
};

use super::udp::{new_socket, v4_endpoint, UdpTable};
use super::{push_event, Error, Event, NetStack, Result};
use crate::time::{Duration, Instant};

/// How long to wait after each attempt to one server before the next attempt.
const ATTEMPT_WAITS: [Duration; 3] = [Duration::from_secs(1), Duration::from_secs(2), Duration::from_secs(3)];
/// How long a lookup keeps asking one DNS server before it moves on (or gives up with
/// [`Error::DnsTimeout`] after the last server): the sum of the attempt waits.
pub const DNS_TIMEOUT_PER_SERVER: Duration = Duration::from_secs(1 + 2 + 3);
/// Lookups running at once.
const MAX_QUERIES: usize = 64;
/// Longest name in presentation form (RFC 1035 §2.3.4, without the trailing dot).
const MAX_NAME: usize = 253;
/// Labels followed when comparing names, far above any valid name (bounds the work).
const MAX_LABELS: usize = 128;
/// Answer records examined per response.
const MAX_RECORDS: usize = 64;
/// Datagrams buffered per query socket.
const DATAGRAMS: usize = 4;
const DNS_PORT: u16 = 53;

/// A DNS lookup started with [`NetStack::resolve`]. Valid until its result was taken with
/// [`NetStack::dns_result`] or it was cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DnsQuery(u64);

/// One lookup.
#[derive(Debug)]
struct Query {
    name: String,
    /// Lower-case labels of the name.
    labels: Vec<Vec<u8>>,
    /// The query's UDP socket and port, until it finishes.
    socket: Option<(SocketHandle, u16)>,
    txid: u16,
    servers: Vec<Ipv4Addr>,
    server: usize,
    attempt: usize,
    next_send: Instant,
    /// Response code of the last failing answer.
    failure: Option<u8>,
    outcome: Option<Result<Vec<Ipv4Addr>>>,
}

/// The lookups of a stack.
#[derive(Debug)]
pub(crate) struct Resolver {
    servers: Vec<Ipv4Addr>,
    queries: BTreeMap<u64, Query>,
}

/// What one response means for a query.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    /// Not a response to this query: ignore it.
    Unrelated,
    Addresses(Vec<Ipv4Addr>),
    NotFound,
    ServerFailure(u8),
}

impl Resolver {
    pub(crate) fn new(servers: Vec<Ipv4Addr>) -> Self {
        Self { servers, queries: BTreeMap::new() }
    }

    pub(crate) fn set_servers(&mut self, servers: Vec<Ipv4Addr>) {
        self.servers = servers;
    }

    /// When the next retry or timeout is due.
    pub(crate) fn next_timer(&self) -> Option<Instant> {
        self.queries.values().filter(|q| q.outcome.is_none()).map(|q| q.next_send).min()
    }

    /// Reads answers, sends (re)tries, and finishes queries; run once per poll, before the
    /// interface sends.
    pub(crate) fn process(
        &mut self,
        sockets: &mut SocketSet<'static>,
        udp: &mut UdpTable,
        now: Instant,
        events: &mut VecDeque<Event>,
    ) {
        for (&id, query) in self.queries.iter_mut() {
            let Some((handle, port)) = query.socket else { continue };
            let socket = sockets.get_mut::<udp::Socket>(handle);
            query.read_answers(socket, now);
            if query.outcome.is_none() {
                query.send_due(socket, now);
            }
            if query.outcome.is_some() {
                sockets.remove(handle);
                udp.ports.release(port);
                query.socket = None;
                push_event(events, Event::DnsFinished(DnsQuery(id)));
            }
        }
    }
}

impl Query {
    fn read_answers(&mut self, socket: &mut udp::Socket<'static>, now: Instant) {
        while let Ok((payload, meta)) = socket.recv() {
            let Some(from) = v4_endpoint(meta.endpoint) else { continue };
            if from.port() != DNS_PORT || !self.servers.contains(from.ip()) {
                continue;
            }
            match parse_answer(payload, self.txid, &self.labels) {
                Answer::Unrelated => continue,
                Answer::Addresses(addresses) => self.outcome = Some(Ok(addresses)),
                Answer::NotFound => self.outcome = Some(Err(Error::NameNotFound(self.name.clone()))),
                Answer::ServerFailure(rcode) => {
                    // Ask the next server right away.
                    self.failure = Some(rcode);
                    self.attempt = ATTEMPT_WAITS.len();
                    self.next_send = now;
                    continue;
                }
            }
            return;
        }
    }

    fn send_due(&mut self, socket: &mut udp::Socket<'static>, now: Instant) {
        if now < self.next_send {
            return;
        }
        if self.attempt >= ATTEMPT_WAITS.len() {
            self.server += 1;
            self.attempt = 0;
        }
        let Some(&server) = self.servers.get(self.server) else {
            self.outcome = Some(Err(match self.failure {
                Some(rcode) => Error::DnsServerFailure { name: self.name.clone(), rcode },
                None => Error::DnsTimeout(self.name.clone()),
            }));
            return;
        };
        let mut raw_name = Vec::with_capacity(self.name.len() + 2);
        for label in &self.labels {
            raw_name.push(label.len() as u8);
            raw_name.extend_from_slice(label);
        }
        raw_name.push(0);
        let repr = DnsRepr {
            transaction_id: self.txid,
            opcode: DnsOpcode::Query,
            flags: DnsFlags::RECURSION_DESIRED,
            question: DnsQuestion { name: &raw_name, type_: DnsQueryType::A },
        };
        let mut packet = vec![0u8; repr.buffer_len()];
        repr.emit(&mut DnsPacket::new_unchecked(&mut packet[..]));
        // A full send queue just skips this attempt; the next one retries.
        let _ = socket.send_slice(&packet, (server, DNS_PORT));
        self.next_send = now + ATTEMPT_WAITS[self.attempt];
        self.attempt += 1;
    }
}

/// Interprets one datagram as the answer to the query `txid` for `labels`.
fn parse_answer(payload: &[u8], txid: u16, labels: &[Vec<u8>]) -> Answer {
    let Ok(packet) = DnsPacket::new_checked(payload) else { return Answer::Unrelated };
    if packet.transaction_id() != txid
        || !packet.flags().contains(DnsFlags::RESPONSE)
        || packet.opcode() != DnsOpcode::Query
        || packet.question_count() != 1
    {
        return Answer::Unrelated;
    }
    let Ok((mut rest, question)) = DnsQuestion::parse(packet.payload()) else { return Answer::Unrelated };
    if question.type_ != DnsQueryType::A || !name_is(&packet, question.name, labels) {
        return Answer::Unrelated;
    }
    match packet.rcode() {
        DnsRcode::NoError => {}
        DnsRcode::NXDomain => return Answer::NotFound,
        other => return Answer::ServerFailure(u8::from(other)),
    }

    let mut target = labels.to_vec();
    let mut addresses = Vec::new();
    for _ in 0..packet.answer_record_count().min(MAX_RECORDS as u16) {
        let Ok((next, record)) = DnsRecord::parse(rest) else { break };
        rest = next;
        if !name_is(&packet, record.name, &target) {
            continue;
        }
        match record.data {
            DnsRecordData::A(address) if !addresses.contains(&address) => addresses.push(address),
            DnsRecordData::Cname(name) => match read_name(&packet, name) {
                Some(name) => target = name,
                None => break,
            },
            _ => {}
        }
    }
    if addresses.is_empty() {
        Answer::NotFound
    } else {
        Answer::Addresses(addresses)
    }
}

/// True when the (possibly compressed) name at `bytes` equals `labels`, ignoring ASCII case.
fn name_is<T: AsRef<[u8]>>(packet: &DnsPacket<T>, bytes: &[u8], labels: &[Vec<u8>]) -> bool {
    read_name(packet, bytes).is_some_and(|name| name == labels)
}

/// The lower-case labels of the (possibly compressed) name at `bytes`; `None` if malformed.
fn read_name<T: AsRef<[u8]>>(packet: &DnsPacket<T>, bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut labels = Vec::new();
    for label in packet.parse_name(bytes).take(MAX_LABELS + 1) {
        labels.push(label.ok()?.to_ascii_lowercase());
    }
    (labels.len() <= MAX_LABELS).then_some(labels)
}

/// The lower-case labels of a host name, or `None` when it is not a valid DNS name.
fn parse_name(name: &str) -> Option<Vec<Vec<u8>>> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > MAX_NAME {
        return None;
    }
    name.split('.')
        .map(|label| {
            let valid = !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            valid.then(|| label.as_bytes().to_ascii_lowercase())
        })
        .collect()
}

impl NetStack {
    /// Starts looking up the IPv4 addresses of `name` with the configured DNS servers; the
    /// query leaves at the next [`NetStack::poll`]. An IPv4 address in dotted form resolves
    /// to itself without a query.
    ///
    /// Fails with [`Error::InvalidName`], [`Error::NoDnsServers`], or [`Error::TooMany`] when
    /// 64 lookups are already running. Watch [`Event::DnsFinished`] or call
    /// [`NetStack::dns_result`] after polls.
    pub fn resolve(&mut self, name: &str) -> Result<DnsQuery> {
        if let Ok(address) = name.parse::<Ipv4Addr>() {
            let id = super::ids::fresh();
            self.dns.queries.insert(id, Query::finished(name, Ok(vec![address])));
            push_event(&mut self.events, Event::DnsFinished(DnsQuery(id)));
            return Ok(DnsQuery(id));
        }
        let labels = parse_name(name).ok_or_else(|| Error::InvalidName(name.to_owned()))?;
        if self.dns.servers.is_empty() {
            return Err(Error::NoDnsServers(name.to_owned()));
        }
        if self.dns.queries.values().filter(|q| q.outcome.is_none()).count() >= MAX_QUERIES {
            return Err(Error::TooMany("DNS lookups"));
        }
        let port = self.udp.ports.allocate().ok_or(Error::PortsExhausted)?;
        let mut socket = new_socket(self.config.mtu, DATAGRAMS);
        if socket.bind(port).is_err() {
            self.udp.ports.release(port);
            return Err(Error::PortsExhausted);
        }
        let socket = self.sockets.add(socket);
        let id = super::ids::fresh();
        self.dns.queries.insert(
            id,
            Query {
                name: name.to_owned(),
                labels,
                socket: Some((socket, port)),
                txid: self.rng.next_u32() as u16,
                servers: self.dns.servers.clone(),
                server: 0,
                attempt: 0,
                next_send: Instant::ZERO,
                failure: None,
                outcome: None,
            },
        );
        Ok(DnsQuery(id))
    }

    /// The lookup's result: `Ok(None)` while it runs, then once `Ok(Some(addresses))` (in the
    /// server's order, at least one) or its error — [`Error::NameNotFound`],
    /// [`Error::DnsTimeout`], [`Error::DnsServerFailure`]. Taking the result frees the query.
    pub fn dns_result(&mut self, query: DnsQuery) -> Result<Option<Vec<Ipv4Addr>>> {
        let entry = self.dns.queries.get(&query.0).ok_or(Error::UnknownHandle("DNS query"))?;
        if entry.outcome.is_none() {
            return Ok(None);
        }
        let entry = self.dns.queries.remove(&query.0).ok_or(Error::UnknownHandle("DNS query"))?;
        entry.outcome.unwrap_or(Ok(Vec::new())).map(Some)
    }

    /// Abandons a lookup and frees it.
    pub fn dns_cancel(&mut self, query: DnsQuery) -> Result<()> {
        let entry = self.dns.queries.remove(&query.0).ok_or(Error::UnknownHandle("DNS query"))?;
        if let Some((socket, port)) = entry.socket {
            self.sockets.remove(socket);
            self.udp.ports.release(port);
        }
        Ok(())
    }
}

impl Query {
    fn finished(name: &str, outcome: Result<Vec<Ipv4Addr>>) -> Self {
        Self {
            name: name.to_owned(),
            labels: Vec::new(),
            socket: None,
            txid: 0,
            servers: Vec::new(),
            server: 0,
            attempt: 0,
            next_send: Instant::ZERO,
            failure: None,
            outcome: Some(outcome),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn labels(name: &str) -> Vec<Vec<u8>> {
        parse_name(name).expect("valid name")
    }

    /// A response to `txid` for `name` with the given rcode and answer records (already encoded).
    fn response(txid: u16, rcode: u8, answers: &[&[u8]]) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&txid.to_be_bytes());
        p.extend_from_slice(&(0x8180u16 | u16::from(rcode)).to_be_bytes());
        p.extend_from_slice(&1u16.to_be_bytes());
        p.extend_from_slice(&(answers.len() as u16).to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 0]);
        p.extend_from_slice(b"\x03nas\x04home\x04arpa\x00\x00\x01\x00\x01");
        for a in answers {
            p.extend_from_slice(a);
        }
        p
    }

    const A_RECORD: &[u8] = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\xa8\x00\x14";

    #[test]
    fn names_are_validated_and_lower_cased() {
        assert_eq!(labels("NAS.home.arpa."), vec![b"nas".to_vec(), b"home".to_vec(), b"arpa".to_vec()]);
        for bad in ["", ".", "a..b", "bad name", &"x".repeat(64), &"a.".repeat(128)] {
            assert_eq!(parse_name(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn an_a_record_answer_yields_its_address() {
        let answer = parse_answer(&response(7, 0, &[A_RECORD]), 7, &labels("nas.home.arpa"));
        assert_eq!(answer, Answer::Addresses(vec![Ipv4Addr::new(192, 168, 0, 20)]));
    }

    #[test]
    fn answers_for_another_query_are_ignored() {
        assert_eq!(parse_answer(&response(8, 0, &[A_RECORD]), 7, &labels("nas.home.arpa")), Answer::Unrelated);
        assert_eq!(parse_answer(&response(7, 0, &[A_RECORD]), 7, &labels("nas.home.org")), Answer::Unrelated);
    }

    #[test]
    fn nxdomain_and_empty_answers_mean_not_found_and_servfail_is_reported() {
        let name = labels("nas.home.arpa");
        assert_eq!(parse_answer(&response(7, 3, &[]), 7, &name), Answer::NotFound);
        assert_eq!(parse_answer(&response(7, 0, &[]), 7, &name), Answer::NotFound);
        assert_eq!(parse_answer(&response(7, 2, &[]), 7, &name), Answer::ServerFailure(2));
    }

    #[test]
    fn a_cname_chain_is_followed() {
        // nas.home.arpa CNAME box.home.arpa; box.home.arpa A 192.168.0.30
        let cname: &[u8] = b"\xc0\x0c\x00\x05\x00\x01\x00\x00\x00\x3c\x00\x06\x03box\xc0\x10";
        let a: &[u8] = b"\x03box\xc0\x10\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\xa8\x00\x1e";
        let answer = parse_answer(&response(7, 0, &[cname, a]), 7, &labels("nas.home.arpa"));
        assert_eq!(answer, Answer::Addresses(vec![Ipv4Addr::new(192, 168, 0, 30)]));
    }

    #[test]
    fn every_truncation_of_an_answer_is_handled_without_panic() {
        let full = response(7, 0, &[A_RECORD, A_RECORD]);
        let name = labels("nas.home.arpa");
        for len in 0..full.len() {
            let _ = parse_answer(&full[..len], 7, &name);
        }
        // A self-referencing compression pointer must not loop.
        let mut looped = response(7, 0, &[b"\xc0\x0c"]);
        looped[12] = 0xc0;
        looped[13] = 0x0c;
        let _ = parse_answer(&looped, 7, &name);
    }
}
