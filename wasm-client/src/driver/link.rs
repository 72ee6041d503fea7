//! The link to the relay: WebSocket, handshake, session and netstack, and the pump that moves
//! bytes between them.
//!
//! Everything here is synchronous and runs inside one `RefCell` borrow. The socket's
//! callbacks only queue their events in [`Link::inbox`]; the pump (run from a microtask or a
//! timer, never from inside a callback) takes them, so nothing is dropped while JavaScript is
//! still calling into it.

use std::collections::VecDeque;
use std::task::Waker;

use hometun_shared::control::ClientConfig;
use hometun_shared::handshake::Initiator;
use hometun_shared::invite::Invite;
use hometun_shared::netstack::{NetConfig, NetStack, PingReply};
use hometun_shared::session::{CloseReason, Event, Params, Session};
use hometun_shared::time::{Duration, Instant};
use rand_core::{OsRng, RngCore};

use super::errors;
use crate::backoff::Backoff;
use crate::error::ClientError;
use crate::profile::Profile;
use crate::web::socket::{Socket, SocketEvent};

/// Stop feeding packets to the WebSocket while the browser holds this much unsent.
const SOCKET_HIGH_WATER: u32 = 4 << 20;
/// How soon to look again while the WebSocket is backed up.
const BACKED_UP_RETRY: Duration = Duration::from_millis(5);
/// Opening the WebSocket and the handshake together must finish in this time.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(12);

/// Where the link stands.
pub enum Phase {
    /// Nothing open and nothing planned.
    Idle,
    /// The WebSocket is opening; the hello goes out once it is open.
    Opening(Initiator, Vec<u8>),
    /// The hello is out; waiting for the relay's reply.
    Handshaking(Initiator),
    /// The session is up; waiting for the pushed configuration.
    Configuring(Session),
    /// The tunnel carries packets.
    Up(Session),
    /// The link dropped; a new attempt starts at `Link::retry_at`.
    Waiting,
}

/// Counters kept across reconnects.
#[derive(Debug, Clone, Copy, Default)]
pub struct Totals {
    /// IP bytes received in sessions that ended.
    pub bytes_in: u64,
    /// IP bytes sent in sessions that ended.
    pub bytes_out: u64,
}

/// The whole client state. See the module documentation.
pub struct Link {
    /// Where the link stands.
    pub phase: Phase,
    /// The device, once loaded or enrolled.
    pub profile: Option<Profile>,
    /// The invite to present in the next hello (enrolment), cleared once the tunnel is up.
    pub enrol: Option<Invite>,
    /// The open WebSocket.
    pub socket: Option<Socket>,
    /// Events the socket reported, tagged with the socket generation.
    pub inbox: VecDeque<(u64, SocketEvent)>,
    /// Bumped for every new socket, so events of an old one are ignored.
    pub generation: u64,
    /// The TCP/IP stack; kept across reconnects while the address stays the same.
    pub net: Option<NetStack>,
    /// The configuration the relay pushed last.
    pub config: Option<ClientConfig>,
    /// The user wants the tunnel up: reconnect after drops.
    pub want_up: bool,
    /// The tunnel was up since the last `connect()`; a drop then means "reconnect".
    pub was_up: bool,
    /// Delays between reconnect attempts.
    pub backoff: Backoff,
    /// When the next reconnect attempt starts.
    pub retry_at: Option<Instant>,
    /// When the current attempt gives up.
    pub attempt_deadline: Option<Instant>,
    /// When the hello went out (for the handshake round trip).
    pub hello_at: Option<Instant>,
    /// Last measured round trip to the relay.
    pub rtt: Option<Duration>,
    /// The failure that stopped the link, until the next `connect()`.
    pub error: Option<ClientError>,
    /// Wall-clock milliseconds when the tunnel last came up.
    pub connected_since: Option<f64>,
    /// Counters of sessions that ended.
    pub totals: Totals,
    /// Whether a pump is already queued.
    pub pump_queued: bool,
    /// Whether the pump should run again soon (work was left).
    pub pump_again: bool,
    /// The pump's pending timer and when it fires.
    pub timer: Option<(Instant, crate::web::timer::Timer)>,
    /// Pumps run back to back from microtasks (bounded, so the event loop gets its turn).
    pub immediate_runs: u32,
    /// Echo replies not yet claimed by a `ping`.
    pub ping_replies: VecDeque<PingReply>,
    /// Next ICMP sequence number.
    pub next_seq: u16,
    /// Page origin differs from the relay's `wss://` origin (for the certificate hint).
    pub cross_origin_tls: bool,
    waiters: Vec<Waker>,
}

impl Default for Link {
    fn default() -> Self {
        Link {
            phase: Phase::Idle,
            profile: None,
            enrol: None,
            socket: None,
            inbox: VecDeque::new(),
            generation: 0,
            net: None,
            config: None,
            want_up: false,
            was_up: false,
            backoff: Backoff::default(),
            retry_at: None,
            attempt_deadline: None,
            hello_at: None,
            rtt: None,
            error: None,
            connected_since: None,
            totals: Totals::default(),
            pump_queued: false,
            pump_again: false,
            timer: None,
            immediate_runs: 0,
            ping_replies: VecDeque::new(),
            next_seq: 1,
            cross_origin_tls: false,
            waiters: Vec::new(),
        }
    }
}

impl Link {
    /// Registers a future to be woken after the next pump.
    pub fn add_waiter(&mut self, waker: &Waker) {
        if !self.waiters.iter().any(|w| w.will_wake(waker)) {
            self.waiters.push(waker.clone());
        }
    }

    /// Wakes every waiting operation so it looks again.
    pub fn wake_all(&mut self) {
        for waker in self.waiters.drain(..) {
            waker.wake();
        }
    }

    /// The session, while one exists.
    pub fn session(&self) -> Option<&Session> {
        match &self.phase {
            Phase::Configuring(s) | Phase::Up(s) => Some(s),
            _ => None,
        }
    }

    /// Whether the tunnel carries packets now.
    pub fn is_up(&self) -> bool {
        matches!(self.phase, Phase::Up(_))
    }

    /// Builds the hello and moves to [`Phase::Opening`]. The caller opens the socket.
    pub fn begin_attempt(&mut self, now: Instant) -> Result<(), ClientError> {
        let profile = self.profile.as_ref().ok_or(ClientError::NotEnrolled)?;
        let (initiator, hello) =
            Initiator::start(&profile.secret, &profile.relay_key, self.enrol.as_ref(), &Params::default(), now, &mut OsRng)
                .map_err(|e| errors::session_error(&e))?;
        self.phase = Phase::Opening(initiator, hello);
        self.retry_at = None;
        self.attempt_deadline = Some(now + ATTEMPT_TIMEOUT);
        self.generation += 1;
        Ok(())
    }

    /// One turn of the pump: socket events in, session and netstack driven, records out.
    pub fn drive(&mut self, now: Instant) {
        self.pump_again = false;
        while let Some((generation, event)) = self.inbox.pop_front() {
            if generation == self.generation {
                self.on_socket_event(event, now);
            }
        }
        if self.attempt_deadline.is_some_and(|d| now >= d) && !self.is_up() {
            let what = if matches!(self.phase, Phase::Opening(..)) { "opening the connection to the relay" } else { "the handshake with the relay" };
            self.fail(ClientError::Timeout { what: what.into(), after_ms: ATTEMPT_TIMEOUT.as_millis() as u64 }, now);
        }
        if let Err(error) = self.drive_session(now) {
            self.fail(error, now);
        }
    }

    fn on_socket_event(&mut self, event: SocketEvent, now: Instant) {
        match event {
            SocketEvent::Open => {
                if let Phase::Opening(..) = self.phase {
                    let Phase::Opening(initiator, hello) = std::mem::replace(&mut self.phase, Phase::Idle) else { return };
                    if let Some(socket) = &self.socket {
                        if let Err(e) = socket.send(&hello) {
                            return self.fail(ClientError::Tunnel(e), now);
                        }
                    }
                    self.hello_at = Some(now);
                    self.phase = Phase::Handshaking(initiator);
                }
            }
            SocketEvent::Message(mut message) => {
                if let Phase::Handshaking(_) = self.phase {
                    let Phase::Handshaking(initiator) = std::mem::replace(&mut self.phase, Phase::Idle) else { return };
                    match initiator.handle_reply(now, &message) {
                        Ok(session) => {
                            self.rtt = self.hello_at.map(|t| now.saturating_duration_since(t));
                            self.phase = Phase::Configuring(session);
                        }
                        Err(e) => self.fail(errors::session_error(&e), now),
                    }
                } else if let Phase::Configuring(session) | Phase::Up(session) = &mut self.phase {
                    match session.handle_message(now, &mut message) {
                        Ok(packets) => {
                            if let Some(net) = self.net.as_mut() {
                                for packet in packets {
                                    net.receive_packet(packet);
                                }
                            }
                        }
                        Err(e) => self.fail(errors::session_error(&e), now),
                    }
                }
            }
            SocketEvent::Closed { code, reason, was_open } => {
                let url = self.socket.as_ref().map(Socket::url).unwrap_or_default();
                let error = match (&self.phase, self.session().and_then(Session::error)) {
                    (_, Some(e)) => errors::session_error(e),
                    _ => errors::socket_closed(&url, was_open, code, &reason, self.cross_origin_tls),
                };
                self.fail(error, now);
            }
        }
    }

    fn drive_session(&mut self, now: Instant) -> Result<(), ClientError> {
        let up = self.is_up();
        let mut backed_up = false;
        let mut new_config = None;
        {
            let Link { phase, net, socket, ping_replies, .. } = self;
            let (Phase::Configuring(session) | Phase::Up(session)) = phase else { return Ok(()) };
            let Some(socket) = socket.as_ref() else { return Ok(()) };
            if session.poll_timeout().is_some_and(|t| now >= t) {
                session.handle_timeout(now).map_err(|e| errors::session_error(&e))?;
            }
            if let Some(net) = net.as_mut() {
                net.poll(now);
                while let Some(reply) = net.poll_ping_reply() {
                    if ping_replies.len() >= 256 {
                        ping_replies.pop_front();
                    }
                    ping_replies.push_back(reply);
                }
                if up && socket.buffered_amount() < SOCKET_HIGH_WATER {
                    net.drain_transmit(|packet| {
                        // A full send queue drops the packet, as a router would; TCP resends.
                        let _ = session.send_packet(packet);
                    });
                } else if up {
                    backed_up = true;
                }
            }
            while let Some(event) = session.poll_event() {
                match event {
                    Event::Config(c) => new_config = Some(c),
                    Event::Closed(reason) => return Err(errors::closed(reason)),
                    _ => {}
                }
            }
            while let Some(message) = session.poll_transmit(now) {
                socket.send(&message).map_err(ClientError::Tunnel)?;
            }
            if let Some(e) = session.error() {
                return Err(errors::session_error(e));
            }
        }
        self.pump_again |= backed_up;
        if let Some(c) = new_config {
            self.apply_config(c, now)?;
        }
        Ok(())
    }

    /// The relay pushed a configuration: (re)build the netstack unless the address stayed.
    fn apply_config(&mut self, config: ClientConfig, now: Instant) -> Result<(), ClientError> {
        let same_address = self.net.as_ref().is_some_and(|n| n.config().address == config.address.addr());
        if same_address {
            if let Some(net) = self.net.as_mut() {
                let _ = net.set_dns_servers(config.dns.clone());
            }
        } else {
            let mut net_config = NetConfig::new(config.address.addr(), config.address.prefix_len());
            net_config.mtu = usize::from(config.mtu).max(576);
            net_config.dns_servers = config.dns.clone();
            let net = NetStack::new(net_config, now, OsRng.next_u64()).map_err(|e| ClientError::Tunnel(e.to_string()))?;
            self.net = Some(net);
        }
        self.config = Some(config);
        if let Phase::Configuring(session) = std::mem::replace(&mut self.phase, Phase::Idle) {
            self.phase = Phase::Up(session);
        }
        self.attempt_deadline = None;
        self.enrol = None;
        self.error = None;
        self.was_up = true;
        self.backoff.reset();
        self.connected_since = Some(crate::web::clock::wall_millis());
        self.pump_again = true;
        Ok(())
    }

    /// The link failed: close what is open, then plan a reconnect or stop with `error`.
    pub fn fail(&mut self, error: ClientError, now: Instant) {
        self.end_session();
        if self.want_up && self.was_up && error.is_transient() {
            let delay = self.backoff.next_delay(OsRng.next_u32());
            self.retry_at = Some(now + delay);
            self.phase = Phase::Waiting;
            self.error = Some(error);
        } else {
            self.want_up = false;
            self.phase = Phase::Idle;
            self.error = Some(error);
        }
    }

    /// Orderly stop (the user disconnected): a close frame goes out if the session is up.
    pub fn stop(&mut self, now: Instant) {
        if let (Phase::Up(session) | Phase::Configuring(session), Some(socket)) = (&mut self.phase, &self.socket) {
            session.close(CloseReason::Normal);
            while let Some(message) = session.poll_transmit(now) {
                let _ = socket.send(&message);
            }
        }
        self.want_up = false;
        self.end_session();
        self.phase = Phase::Idle;
        self.net = None;
        self.config = None;
        self.retry_at = None;
    }

    fn end_session(&mut self) {
        if let Some(session) = self.session() {
            let stats = session.stats();
            self.totals.bytes_in += stats.bytes_in;
            self.totals.bytes_out += stats.bytes_out;
        }
        self.socket = None;
        self.generation += 1;
        self.inbox.clear();
        self.attempt_deadline = None;
        self.connected_since = None;
        self.pump_again = true;
    }

    /// When the pump must run next at the latest; `None` when nothing is pending.
    pub fn next_deadline(&mut self, now: Instant) -> Option<Instant> {
        if self.pump_again {
            return Some(now + if self.socket.as_ref().is_some_and(|s| s.buffered_amount() >= SOCKET_HIGH_WATER) { BACKED_UP_RETRY } else { Duration::ZERO });
        }
        let session = self.session().and_then(Session::poll_timeout);
        let net = self.net.as_mut().and_then(|n| n.poll_delay(now)).map(|d| now + d);
        [session, net, self.retry_at, self.attempt_deadline].into_iter().flatten().min()
    }

    /// Bytes in and out over every session since the page loaded.
    pub fn bytes(&self) -> (u64, u64) {
        let current = self.session().map(Session::stats).unwrap_or_default();
        (self.totals.bytes_in + current.bytes_in, self.totals.bytes_out + current.bytes_out)
    }
}
