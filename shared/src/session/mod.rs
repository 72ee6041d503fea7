//! An established tunnel session: records out, packets and events in, timers.
//!
//! The same state machine runs in the relay, the browser and the tests. Feed it received
//! WebSocket messages with [`Session::handle_message`] and the clock with
//! [`Session::handle_timeout`]; take messages to send from [`Session::poll_transmit`] and
//! events from [`Session::poll_event`]; ask [`Session::poll_timeout`] when to call again.

mod error;
mod params;

pub use error::{CloseReason, Error, Refusal};
pub use params::Params;

use crate::control::{ClientConfig, ControlMessage};
use crate::keys::PublicKey;
use crate::noise::record::{OpenError, Opener, Sealer};
use crate::time::Instant;
use crate::wire::frame::{self, Frame, FrameKind, Frames, FRAME_HEADER_LEN, MAX_FRAME_BODY};
use crate::wire::{MAX_MESSAGE_LEN, RECORD_HEADER_LEN, TAG_LEN};
use std::collections::VecDeque;

/// Something the application should know about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The peer proved its keys with its first record. On the relay this is the moment an
    /// enrolling device has proven the invite secret and may be registered.
    Established,
    /// The relay pushed this configuration (client side).
    Config(ClientConfig),
    /// The peer closed the session.
    Closed(CloseReason),
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
    error: Option<Error>,
    closing: Option<CloseReason>,
    confirm_deadline: Option<Instant>,
    now: Instant,
    last_sent: Instant,
    last_received: Instant,
    key_started: Instant,
    bytes_on_key: u64,
    stats: Stats,
}

/// The IP packets of one received record, borrowed from the decrypted message.
#[derive(Debug, Clone)]
pub struct Packets<'a> {
    frames: Frames<'a>,
}

impl<'a> Iterator for Packets<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        for frame in self.frames.by_ref() {
            if let Ok(Frame::Packet(packet)) = frame {
                return Some(packet);
            }
        }
        None
    }
}

impl Session {
    /// Builds a session from the handshake's keys. `confirm_by` is set on the relay: the
    /// client must send its first record by then.
    pub(crate) fn new(
        send_key: [u8; 32],
        receive_key: [u8; 32],
        remote_key: PublicKey,
        params: &Params,
        now: Instant,
        confirm_by: Option<Instant>,
    ) -> Session {
        Session {
            sealer: Sealer::new(send_key, params.reject_after_records),
            opener: Opener::new(receive_key, params.reject_after_records),
            params: params.clone(),
            remote_key,
            pending: new_record_buffer(),
            ready: VecDeque::new(),
            ready_bytes: 0,
            events: VecDeque::new(),
            error: None,
            closing: None,
            confirm_deadline: confirm_by,
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
        self.error.is_some()
    }

    /// The error that ended the session, if it has ended.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// Queues one IP packet. When the send queue is full the packet is dropped and counted,
    /// as a router would. Fails once the session has ended or is closing.
    pub fn send_packet(&mut self, packet: &[u8]) -> Result<(), Error> {
        self.check_open()?;
        if packet.is_empty() || packet.len() > MAX_FRAME_BODY || self.queued_bytes() + packet.len() > self.params.max_queued_bytes
        {
            self.stats.dropped_packets += 1;
            return Ok(());
        }
        self.push_frame(FrameKind::Packet, packet)?;
        self.stats.packets_out += 1;
        self.stats.bytes_out += packet.len() as u64;
        Ok(())
    }

    /// Queues the client's configuration (relay side).
    pub fn send_config(&mut self, config: &ClientConfig) -> Result<(), Error> {
        self.check_open()?;
        self.push_frame(FrameKind::Control, &ControlMessage::Config(config.clone()).encode())
    }

    /// Queues a close frame. After [`Session::poll_transmit`] has returned it, the session is
    /// closed with [`Error::Closed`].
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
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        self.now = now;
        if self.error.is_some() {
            return None;
        }
        if self.ready.is_empty() && self.pending.len() > RECORD_HEADER_LEN {
            self.seal_pending().ok()?;
        }
        let message = self.ready.pop_front()?;
        self.ready_bytes -= message.len();
        if let (Some(reason), true) = (self.closing, self.ready.is_empty()) {
            self.error = Some(Error::Closed(reason));
        }
        Some(message)
    }

    /// Opens one received record in place and returns its IP packets. Control and close
    /// frames are handled here and reported through [`Session::poll_event`].
    pub fn handle_message<'a>(&mut self, now: Instant, message: &'a mut [u8]) -> Result<Packets<'a>, Error> {
        self.now = now;
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        let (plaintext, rekeyed) = match self.opener.open(message) {
            Ok(opened) => opened,
            Err(OpenError::Malformed) => return Err(self.fail(Error::Malformed("not a transport record"))),
            Err(OpenError::Forged) => return Err(self.fail(Error::Forged)),
            Err(OpenError::OutOfOrder { expected, got }) => return Err(self.fail(Error::OutOfOrder { expected, got })),
            Err(OpenError::Exhausted) => return Err(self.fail(Error::CounterExhausted)),
        };
        let plaintext: &'a [u8] = plaintext;
        self.last_received = now;
        self.stats.records_in += 1;
        self.stats.rekeys_received += u64::from(rekeyed);
        if self.stats.records_in == 1 {
            self.confirm_deadline = None;
            self.events.push_back(Event::Established);
        }
        for frame in Frames::new(plaintext) {
            match frame {
                Ok(Frame::Packet(packet)) => {
                    self.stats.packets_in += 1;
                    self.stats.bytes_in += packet.len() as u64;
                }
                Ok(Frame::Keepalive) => {}
                Ok(Frame::Control(body)) => match ControlMessage::decode(body) {
                    Ok(ControlMessage::Config(config)) => self.events.push_back(Event::Config(config)),
                    Err(error) => return Err(self.fail(Error::Control(error))),
                },
                Ok(Frame::Close(body)) => {
                    let code = body.first_chunk::<2>().map_or(0, |c| u16::from_be_bytes(*c));
                    let reason = CloseReason::from_code(code);
                    self.events.push_back(Event::Closed(reason));
                    self.error = Some(Error::PeerClosed(reason));
                    break;
                }
                Err(_) => return Err(self.fail(Error::BadFrame)),
            }
        }
        Ok(Packets { frames: Frames::new(plaintext) })
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Session::handle_timeout`] should next be called; `None` once ended.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.error.is_some() {
            return None;
        }
        let keepalive = self.last_sent + self.params.keepalive;
        let dead = self.last_received + self.params.dead_peer_after;
        Some(self.confirm_deadline.map_or(keepalive.min(dead), |c| c.min(keepalive).min(dead)))
    }

    /// Runs the timers: queues a keepalive when idle, ends the session when the peer is dead
    /// or (relay side) never confirmed its keys.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        self.now = now;
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        if self.confirm_deadline.is_some_and(|deadline| now >= deadline) {
            return Err(self.fail(Error::HandshakeTimeout));
        }
        if now >= self.last_received + self.params.dead_peer_after {
            return Err(self.fail(Error::DeadPeer));
        }
        if now >= self.last_sent + self.params.keepalive && self.queued_bytes() == 0 {
            self.push_frame(FrameKind::Keepalive, &[])?;
        }
        Ok(())
    }

    /// Queues a keepalive frame now (the client does this right after the handshake, so the
    /// relay learns that the client holds the keys).
    pub(crate) fn queue_keepalive(&mut self) {
        let _ = self.push_frame(FrameKind::Keepalive, &[]);
    }

    fn check_open(&self) -> Result<(), Error> {
        match (&self.error, self.closing) {
            (Some(error), _) => Err(error.clone()),
            (None, Some(reason)) => Err(Error::Closed(reason)),
            (None, None) => Ok(()),
        }
    }

    fn fail(&mut self, error: Error) -> Error {
        self.error = Some(error.clone());
        self.pending.truncate(RECORD_HEADER_LEN);
        self.ready.clear();
        self.ready_bytes = 0;
        error
    }

    fn push_frame(&mut self, kind: FrameKind, body: &[u8]) -> Result<(), Error> {
        if self.pending.len() + FRAME_HEADER_LEN + body.len() + TAG_LEN > MAX_MESSAGE_LEN {
            self.seal_pending()?;
        }
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
            .field("error", &self.error)
            .field("keys", &"<redacted>")
            .finish()
    }
}

fn new_record_buffer() -> Vec<u8> {
    let mut buffer = Vec::with_capacity(16 * 1024);
    buffer.resize(RECORD_HEADER_LEN, 0);
    buffer
}
