//! An established tunnel session: records out, packets and events in, timers.
//!
//! The same state machine runs in the relay, the browser and the tests. Feed it received
//! WebSocket messages with [`Session::handle_message`] and the clock with
//! [`Session::handle_timeout`]; take messages to send from [`Session::poll_transmit`] and
//! events from [`Session::poll_event`]; ask [`Session::poll_timeout`] when to call again.
//!
//! A session ends in one way: the first of a close (either side), a dead peer, a failure or
//! a lost connection becomes its [`End`], reported once as [`Event::Closed`]. `handle_*`
//! return errors only for input they could not use.

mod end;
mod error;
mod params;

pub use end::{ConnectionLost, End};
pub use error::{CloseReason, Error, Malformed, Refusal};
pub use params::Params;

use crate::control::{ClientConfig, ControlMessage};
use crate::keys::PublicKey;
use crate::noise::record::{OpenError, Opener, Sealer};
use crate::time::{Duration, Instant};
use crate::wire::frame::{self, Frame, FrameKind, Frames, FRAME_HEADER_LEN, MAX_FRAME_BODY};
use crate::wire::{MAX_MESSAGE_LEN, RECORD_HEADER_LEN, TAG_LEN};
use std::collections::VecDeque;
use std::ops::Range;

/// Room for events a session keeps once its queue is empty again (see [`Session::poll_event`]).
const KEPT_EVENTS: usize = 16;

/// Something the application should know about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The peer proved its keys with its first record. On the relay this is the moment an
    /// enrolling device has proven the invite secret and may be registered.
    Established,
    /// The relay pushed this configuration (client side).
    Config(ClientConfig),
    /// Any other control message of a type this version knows (host list, wake request or
    /// reply). Messages of types it does not know are skipped, so newer peers can add some.
    Control(ControlMessage),
    /// The session ended, for this reason. Reported exactly once; nothing follows it.
    Closed(End),
}

/// Counters for status displays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// IP packet bytes received.
    pub bytes_in: u64,
    /// IP packet bytes queued for sending.
    pub bytes_out: u64,
    /// IP packets received.
    pub packets_in: u64,
    /// IP packets queued for sending.
    pub packets_out: u64,
    /// Records opened.
    pub records_in: u64,
    /// Records sealed.
    pub records_out: u64,
    /// Packets dropped because the send queue was full.
    pub dropped_packets: u64,
    /// Times this side moved to a new sending key.
    pub rekeys_sent: u64,
    /// Times the peer moved to a new sending key.
    pub rekeys_received: u64,
}

/// An established session. Create one with [`crate::handshake`].
pub struct Session {
    sealer: Sealer,
    opener: Opener,
    params: Params,
    remote_key: PublicKey,
    pending: Vec<u8>,
    ready: VecDeque<Vec<u8>>,
    ready_bytes: usize,
    events: VecDeque<Event>,
    end: Option<End>,
    closing: Option<CloseReason>,
    confirm_deadline: Option<Instant>,
    /// A liveness check is under way: the peer is dead unless a record arrives by then.
    alive_by: Option<Instant>,
    /// The record being built carries IP packets.
    pending_packets: bool,
    /// When the first record with packets went out since the last record came in.
    unanswered_since: Option<Instant>,
    now: Instant,
    last_sent: Instant,
    last_received: Instant,
    key_started: Instant,
    bytes_on_key: u64,
    stats: Stats,
}

/// The IP packets of one received record, borrowed from the decrypted message: those before
/// a close frame, in order, each already counted in [`Stats`].
#[derive(Debug, Clone)]
#[must_use = "the packets of a record are lost unless they are used"]
pub struct Packets<'a> {
    packets: std::vec::IntoIter<&'a [u8]>,
    /// The address of the message the packets lie in.
    message_at: usize,
}

impl Packets<'_> {
    /// Where the packets not yet taken lie in the message given to
    /// [`Session::handle_message`], as byte ranges, in order. All that lies in front of a
    /// packet is the record's and the frames' headers and the packets before it: a caller done
    /// with those may write over them, to put a header of its own in front of a packet
    /// instead of copying the packet behind one.
    pub fn into_positions(self) -> std::vec::IntoIter<Range<usize>> {
        let positions: Vec<_> = self
            .packets
            .map(|packet| {
                let start = packet.as_ptr().addr() - self.message_at;
                start..start + packet.len()
            })
            .collect();
        positions.into_iter()
    }
}

impl<'a> Iterator for Packets<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        self.packets.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.packets.size_hint()
    }
}

impl ExactSizeIterator for Packets<'_> {}

impl Session {
    /// Two ends of one session with fixed keys, for the fuzz targets only (cargo-fuzz builds
    /// with `--cfg fuzzing`): what the first seals, the second opens. Never in a real build.
    #[cfg(fuzzing)]
    pub fn fuzzing_pair(params: &Params) -> (Self, Self) {
        let remote = PublicKey::from_bytes([9; 32]);
        let sender = Self::new([7; 32], [8; 32], remote, params, Instant::ZERO, None);
        let receiver = Self::new([8; 32], [7; 32], remote, params, Instant::ZERO, None);
        (sender, receiver)
    }

    /// Builds a session from the handshake's keys. `confirm_by` is set on the relay: the
    /// client must send its first record by then.
    pub(crate) fn new(
        send_key: [u8; 32],
        receive_key: [u8; 32],
        remote_key: PublicKey,
        params: &Params,
        now: Instant,
        confirm_by: Option<Instant>,
    ) -> Self {
        Self {
            sealer: Sealer::new(send_key, params.reject_after_records),
            opener: Opener::new(receive_key, params.reject_after_records),
            params: params.clone(),
            remote_key,
            pending: new_record_buffer(),
            ready: VecDeque::new(),
            ready_bytes: 0,
            events: VecDeque::new(),
            end: None,
            closing: None,
            confirm_deadline: confirm_by,
            alive_by: None,
            pending_packets: false,
            unanswered_since: None,
            now,
            last_sent: now,
            last_received: now,
            key_started: now,
            bytes_on_key: 0,
            stats: Stats::default(),
        }
    }

    /// The peer's static key (the relay's, or the client device's).
    pub fn remote_key(&self) -> &PublicKey {
        &self.remote_key
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The session's timers and limits.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Bytes queued and not yet taken by [`Session::poll_transmit`]. Drivers stop reading
    /// packets for this session while it is high.
    pub fn queued_bytes(&self) -> usize {
        self.ready_bytes + self.pending.len() - RECORD_HEADER_LEN
    }

    /// Whether the session has ended (by error, by either side's close, or a dead peer).
    pub fn is_closed(&self) -> bool {
        self.end.is_some()
    }

    /// How the session ended, once it has (also reported once as [`Event::Closed`]).
    pub fn end(&self) -> Option<&End> {
        self.end.as_ref()
    }

    /// Queues one IP packet. When the send queue is full the packet is dropped and counted,
    /// as a router would. Fails once the session has ended or is closing.
    pub fn send_packet(&mut self, packet: &[u8]) -> Result<(), Error> {
        self.check_open()?;
        if packet.is_empty()
            || packet.len() > MAX_FRAME_BODY
            || self.queued_bytes() + packet.len() > self.params.max_queued_bytes
        {
            self.stats.dropped_packets += 1;
            return Ok(());
        }
        self.push_frame(FrameKind::Packet, packet)?;
        self.pending_packets = true;
        self.stats.packets_out += 1;
        self.stats.bytes_out += packet.len() as u64;
        Ok(())
    }

    /// Queues the client's configuration (relay side).
    pub fn send_config(&mut self, config: &ClientConfig) -> Result<(), Error> {
        self.check_open()?;
        self.push_frame(FrameKind::Control, &ControlMessage::Config(config.clone()).encode())
    }

    /// Queues any other control message (host list, subscription, wake request or reply).
    /// Send only what the peer offered (see [`crate::control::Features`]): a peer from before a
    /// message type ends the session on it.
    pub fn send_control(&mut self, message: &ControlMessage) -> Result<(), Error> {
        self.send_encoded_control(&message.encode())
    }

    /// Queues a control message a client sends, encoded by [`crate::control::encode_subscribe`],
    /// [`crate::control::encode_wake`] or [`crate::control::encode_app_cert`] (so the client
    /// links no other encoder); the same
    /// rule as for [`Session::send_control`].
    pub fn send_encoded_control(&mut self, message: &[u8]) -> Result<(), Error> {
        self.check_open()?;
        self.push_frame(FrameKind::Control, message)
    }

    /// Queues a close frame. After [`Session::poll_transmit`] has returned it, the session
    /// ends with [`End::Closed`].
    pub fn close(&mut self, reason: CloseReason) {
        if self.check_open().is_err() {
            return;
        }
        if self.push_frame(FrameKind::Close, &reason.code().to_be_bytes()).is_ok() {
            self.closing = Some(reason);
        }
    }

    /// The next WebSocket message to send, if any. Packets queued since the last call are
    /// sealed together into as few records as fit.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        self.now = now;
        if self.end.is_some() {
            return None;
        }
        if self.ready.is_empty() && self.pending.len() > RECORD_HEADER_LEN {
            self.seal_pending().ok()?;
        }
        let message = self.ready.pop_front()?;
        self.ready_bytes -= message.len();
        if let (Some(reason), true) = (self.closing, self.ready.is_empty()) {
            self.finish(End::Closed(reason));
        }
        Some(message)
    }

    /// Opens one received record in place and returns its IP packets: those before a close
    /// frame, each counted. Control and close frames are handled in the same pass and
    /// reported through [`Session::poll_event`].
    ///
    /// Fails only for a message it could not use: one that does not open (forged, replayed,
    /// malformed), whose frames or control message are malformed, or that arrived after
    /// the session ended. A failure that breaks the session also ends it
    /// ([`Event::Closed`] with [`End::Failed`]).
    pub fn handle_message<'a>(&mut self, now: Instant, message: &'a mut [u8]) -> Result<Packets<'a>, Error> {
        self.now = now;
        if let Some(end) = &self.end {
            return Err(end.to_error());
        }
        let message_at = message.as_ptr().addr();
        let (plaintext, rekeyed) = match self.opener.open(message) {
            Ok(opened) => opened,
            Err(OpenError::Malformed) => return Err(self.fail(Error::Malformed(Malformed::NotARecord))),
            Err(OpenError::Forged) => return Err(self.fail(Error::Forged)),
            Err(OpenError::OutOfOrder { expected, got }) => return Err(self.fail(Error::OutOfOrder { expected, got })),
            Err(OpenError::Exhausted) => return Err(self.fail(Error::CounterExhausted)),
        };
        let plaintext: &'a [u8] = plaintext;
        self.last_received = now;
        self.alive_by = None;
        self.unanswered_since = None;
        self.stats.records_in += 1;
        self.stats.rekeys_received += u64::from(rekeyed);
        if self.stats.records_in == 1 {
            self.confirm_deadline = None;
            self.events.push_back(Event::Established);
        }
        let mut packets = Vec::new();
        let mut bytes = 0;
        let mut peer_closed = None;
        for frame in Frames::new(plaintext) {
            match frame {
                Ok(Frame::Packet(packet)) => {
                    bytes += packet.len() as u64;
                    packets.push(packet);
                }
                Ok(Frame::Keepalive) => {}
                Ok(Frame::Control(body)) => match ControlMessage::decode(body) {
                    Ok(ControlMessage::Config(config)) => self.events.push_back(Event::Config(config)),
                    Ok(other) => self.events.push_back(Event::Control(other)),
                    Err(crate::control::ControlError::UnknownType(_)) => {}
                    Err(error) => return Err(self.fail(Error::Control(error))),
                },
                Ok(Frame::Close(body)) => {
                    let code = body.first_chunk::<2>().map_or(0, |c| u16::from_be_bytes(*c));
                    peer_closed = Some(CloseReason::from_code(code));
                    break;
                }
                Err(_) => return Err(self.fail(Error::BadFrame)),
            }
        }
        self.stats.packets_in += packets.len() as u64;
        self.stats.bytes_in += bytes;
        if let Some(reason) = peer_closed {
            self.finish(End::PeerClosed(reason));
        }
        Ok(Packets { packets: packets.into_iter(), message_at })
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front();
        // One record may carry tens of thousands of control frames, an event each: once they
        // are taken, the queue gives that memory back rather than keep it for the session's life.
        if self.events.is_empty() && self.events.capacity() > KEPT_EVENTS {
            self.events.shrink_to(KEPT_EVENTS);
        }
        event
    }

    /// When [`Session::handle_timeout`] should next be called; `None` once ended.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.end.is_some() {
            return None;
        }
        let keepalive = self.last_sent + self.params.keepalive;
        let dead = self.last_received + self.params.dead_peer_after;
        [Some(keepalive), Some(dead), self.confirm_deadline, self.alive_by].into_iter().flatten().min()
    }

    /// Runs the timers: queues a keepalive when idle, ends the session when the peer is dead
    /// or (relay side) never confirmed its keys. Time is always usable input, so nothing is
    /// returned: an end is reported through [`Session::poll_event`].
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if self.end.is_some() {
            return;
        }
        if self.confirm_deadline.is_some_and(|deadline| now >= deadline) {
            self.fail(Error::HandshakeTimeout);
        } else if now >= self.last_received + self.params.dead_peer_after || self.alive_by.is_some_and(|by| now >= by) {
            self.finish(End::DeadPeer);
        } else if now >= self.last_sent + self.params.keepalive && self.queued_bytes() == 0 {
            // A sealing failure ends the session itself.
            let _ = self.push_frame(FrameKind::Keepalive, &[]);
        }
    }

    /// Starts a liveness check: unless a record arrives within `within` of `now`, the session
    /// ends as [`End::DeadPeer`]. For when the connection under it may have died without a word
    /// (the device's network changed, or it slept); the caller makes the peer answer something
    /// (the client pings the relay). A check already under way keeps its deadline.
    pub fn check_alive(&mut self, now: Instant, within: Duration) {
        if self.end.is_none() {
            self.alive_by.get_or_insert(now + within);
            // The check stands for the packets that wait for an answer.
            self.unanswered_since = None;
        }
    }

    /// When the first record carrying IP packets went out since the last record came in:
    /// packets that usually get an answer (a TCP segment its acknowledgement) have none yet.
    /// `None` once a record came in, or a liveness check started.
    pub fn unanswered_since(&self) -> Option<Instant> {
        self.unanswered_since
    }

    /// Stops counting the packets sent so far as waiting for an answer.
    pub fn forget_unanswered(&mut self) {
        self.unanswered_since = None;
    }

    /// Whether a liveness check ([`Session::check_alive`]) is under way.
    pub fn checking_alive(&self) -> bool {
        self.alive_by.is_some()
    }

    /// The connection under the session ended without a close frame. Ends the session with
    /// [`End::ConnectionLost`] unless it has already ended (then the first end stands).
    pub fn connection_lost(&mut self, lost: ConnectionLost) {
        self.finish(End::ConnectionLost(lost));
    }

    /// Uses `interval` between keepalives from now on (the client applies the interval the
    /// relay pushed). The peer is declared dead only after at least three intervals of
    /// silence, so a longer pushed interval never ends a healthy session.
    pub(crate) fn set_keepalive(&mut self, interval: Duration) {
        self.params.keepalive = interval;
        self.params.dead_peer_after = self.params.dead_peer_after.max(interval.saturating_mul(3));
    }

    /// Queues a keepalive frame now (the client does this right after the handshake, so the
    /// relay learns that the client holds the keys).
    pub(crate) fn queue_keepalive(&mut self) {
        let _ = self.push_frame(FrameKind::Keepalive, &[]);
    }

    fn check_open(&self) -> Result<(), Error> {
        match (&self.end, self.closing) {
            (Some(end), _) => Err(end.to_error()),
            (None, Some(reason)) => Err(End::Closed(reason).to_error()),
            (None, None) => Ok(()),
        }
    }

    /// Ends the session with `error` and returns it for the failing call.
    fn fail(&mut self, error: Error) -> Error {
        self.finish(End::Failed(error.clone()));
        error
    }

    /// Ends the session unless it has ended already: drops what was not sent and reports
    /// the end once.
    fn finish(&mut self, end: End) {
        if self.end.is_some() {
            return;
        }
        self.pending.truncate(RECORD_HEADER_LEN);
        self.ready.clear();
        self.ready_bytes = 0;
        self.end = Some(end.clone());
        self.events.push_back(Event::Closed(end));
    }

    fn push_frame(&mut self, kind: FrameKind, body: &[u8]) -> Result<(), Error> {
        let frame_and_tag = FRAME_HEADER_LEN + body.len() + TAG_LEN;
        if self.pending.len() + frame_and_tag > MAX_MESSAGE_LEN {
            self.seal_pending()?;
        }
        reserve_for_record(&mut self.pending, frame_and_tag);
        frame::encode(&mut self.pending, kind, body);
        Ok(())
    }

    fn seal_pending(&mut self) -> Result<(), Error> {
        let plaintext_len = (self.pending.len() - RECORD_HEADER_LEN) as u64;
        if self.bytes_on_key >= self.params.rekey_after_bytes
            || self.now >= self.key_started + self.params.rekey_after_time
        {
            self.sealer.rekey();
            self.stats.rekeys_sent += 1;
            self.key_started = self.now;
            self.bytes_on_key = 0;
        }
        let mut record = std::mem::replace(&mut self.pending, new_record_buffer());
        if self.sealer.seal(&mut record).is_none() {
            return Err(self.fail(Error::CounterExhausted));
        }
        self.bytes_on_key += plaintext_len;
        self.stats.records_out += 1;
        self.last_sent = self.now;
        if std::mem::take(&mut self.pending_packets) {
            self.unanswered_since.get_or_insert(self.now);
        }
        self.ready_bytes += record.len();
        self.ready.push_back(record);
        Ok(())
    }
}

impl core::fmt::Debug for Session {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Session")
            .field("remote_key", &self.remote_key)
            .field("next_counter", &self.sealer.counter())
            .field("end", &self.end)
            .field("keys", &"<redacted>")
            .finish()
    }
}

/// Makes room for `more` bytes (a frame and the tag that sealing appends), growing as `Vec`
/// does but never past the largest record: without the cap, the tag of a 64 KiB packet made
/// a 128 KiB buffer 256 KiB, and every such record a fresh mapping from the allocator.
fn reserve_for_record(buffer: &mut Vec<u8>, more: usize) {
    let needed = buffer.len() + more;
    if needed > buffer.capacity() {
        let grown = (buffer.capacity() * 2).clamp(needed, MAX_MESSAGE_LEN.max(needed));
        buffer.reserve_exact(grown - buffer.len());
    }
}

fn new_record_buffer() -> Vec<u8> {
    let mut buffer = Vec::with_capacity(16 * 1024);
    buffer.resize(RECORD_HEADER_LEN, 0);
    buffer
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::{Initiator, Responder};
    use crate::keys::SecretKey;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const T: Instant = Instant::ZERO;

    /// A client and a relay session after the handshake (keys not yet confirmed).
    fn pair() -> (Session, Session) {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let (relay, device) = (SecretKey::generate(&mut rng), SecretKey::generate(&mut rng));
        let params = Params::default();
        let (initiator, hello) = Initiator::start(&device, &relay.public_key(), None, &params, T, &mut rng).unwrap();
        let (responder, _) = Responder::read_hello(&relay, &hello, &mut rng).unwrap();
        let (relay_session, reply) = responder.accept(None, &params, T).unwrap();
        (initiator.handle_reply(T, &reply).unwrap(), relay_session)
    }

    #[test]
    fn a_record_full_of_control_frames_leaves_no_large_queue_behind() {
        let (mut client, mut relay) = pair();
        for _ in 0..20_000 {
            client.send_control(&ControlMessage::Subscribe).unwrap();
        }
        let mut events = 0;
        while let Some(mut record) = client.poll_transmit(T) {
            relay.handle_message(T, &mut record).unwrap().for_each(drop);
            events += std::iter::from_fn(|| relay.poll_event()).count();
        }
        assert_eq!(events, 20_001, "each frame was an event (and the first record's Established)");
        assert!(relay.events.capacity() <= KEPT_EVENTS, "{} events' room kept", relay.events.capacity());
    }

    #[test]
    fn packets_after_a_close_frame_are_neither_delivered_nor_counted() {
        let (mut client, mut relay) = pair();
        relay.send_packet(b"before").unwrap();
        relay.push_frame(FrameKind::Close, &CloseReason::Shutdown.code().to_be_bytes()).unwrap();
        relay.push_frame(FrameKind::Packet, b"after").unwrap();
        let mut record = relay.poll_transmit(T).unwrap();
        let packets: Vec<&[u8]> = client.handle_message(T, &mut record).unwrap().collect();
        assert_eq!(packets, vec![&b"before"[..]]);
        assert_eq!((client.stats().packets_in, client.stats().bytes_in), (1, 6), "only what was delivered is counted");
        let events: Vec<_> = std::iter::from_fn(|| client.poll_event()).collect();
        assert_eq!(events, vec![Event::Established, Event::Closed(End::PeerClosed(CloseReason::Shutdown))]);
    }

    #[test]
    fn a_malformed_frame_delivers_nothing_and_ends_the_session() {
        let (mut client, mut relay) = pair();
        relay.send_packet(b"fine").unwrap();
        relay.pending.extend_from_slice(&[9, 0, 0]);
        let mut record = relay.poll_transmit(T).unwrap();
        assert_eq!(client.handle_message(T, &mut record).err(), Some(Error::BadFrame));
        assert_eq!(client.stats().packets_in, 0);
        assert_eq!(client.end(), Some(&End::Failed(Error::BadFrame)));
    }

    #[test]
    fn a_record_never_holds_more_memory_than_the_largest_record() {
        let (mut client, mut relay) = pair();
        let big = vec![0x45; MAX_FRAME_BODY];
        relay.send_packet(&big).unwrap();
        let mut record = relay.poll_transmit(T).unwrap();
        assert!(record.capacity() <= MAX_MESSAGE_LEN, "a 64 KiB packet's record holds {} bytes", record.capacity());
        assert_eq!(client.handle_message(T, &mut record).unwrap().collect::<Vec<_>>(), vec![&big[..]]);

        for _ in 0..MAX_MESSAGE_LEN / 1400 + 1 {
            relay.send_packet(&[0x45; 1400]).unwrap();
        }
        while let Some(record) = relay.poll_transmit(T) {
            assert!(
                record.capacity() <= MAX_MESSAGE_LEN,
                "a record of small packets holds {} bytes",
                record.capacity()
            );
        }
    }
}
