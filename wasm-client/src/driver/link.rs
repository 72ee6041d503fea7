//! The link to the relay: the WebSocket, a timer and an inbox around the core's
//! [`Connection`] (handshake, session and netstack), plus the reconnect policy.
//!
//! Everything here is synchronous and runs inside one `RefCell` borrow. The socket's
//! callbacks only queue their events in [`Link::inbox`]; the pump (run from a microtask or a
//! timer, never from inside a callback) takes them, so nothing is dropped while JavaScript is
//! still calling into it.

use std::collections::VecDeque;
use std::task::Waker;

use hometun_shared::client::{Connection, Event};
use hometun_shared::control::{ClientConfig, HostList, WakeOutcome};
use hometun_shared::invite::Invite;
use hometun_shared::netstack::{NetStack, PingReply};
use hometun_shared::session::{CloseReason, ConnectionLost, End, Params};
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
/// Echo replies kept for `ping` callers before the oldest are dropped.
const PING_REPLIES: usize = 256;
/// How long the sockets of a tunnel that went down wait for it to come back. A phone moving
/// from Wi-Fi to its mobile network is back in seconds and its connections carry on; after a
/// longer outage they fail (`not-connected`), as a browser's own do, instead of hanging until
/// the tunnel returns.
pub const PARKED_LIMIT: Duration = Duration::from_secs(60);

/// Where the link stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Nothing open and nothing planned.
    Idle,
    /// A WebSocket is opening or the handshake and configuration are under way.
    Connecting,
    /// The tunnel carries packets.
    Up,
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
    /// An enrolment's new device is being written to the browser's storage: the tunnel counts
    /// as up only once it is there (a page closed before would lose a device the relay holds).
    pub saving: bool,
    /// The connection of the current attempt.
    pub connection: Option<Connection>,
    /// The netstack between two connections: its sockets wait for the next one.
    parked_net: Option<NetStack>,
    /// Since when the tunnel has been down with sockets waiting ([`PARKED_LIMIT`]).
    down_since: Option<Instant>,
    /// The open WebSocket.
    pub socket: Option<Socket>,
    /// Whether the socket has reported `Open`.
    socket_open: bool,
    /// Events the socket reported, tagged with the socket generation.
    pub inbox: VecDeque<(u64, SocketEvent)>,
    /// Bumped for every new socket, so events of an old one are ignored.
    pub generation: u64,
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
    /// Records were taken in and what they call for waits a few microtasks (see the pump).
    pub holding: bool,
    /// The home's hosts as the relay last sent them (kept across reconnects).
    pub hosts: Option<HostList>,
    /// Wake replies so far, and the latest.
    pub wake_replies: (u64, Option<(std::net::Ipv4Addr, WakeOutcome)>),
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
    /// The page's comeback events ([`crate::web::lifecycle`]) reach [`super::recheck`].
    pub watching_page: bool,
    waiters: Vec<Waker>,
}

impl Default for Link {
    fn default() -> Self {
        Self {
            phase: Phase::Idle,
            profile: None,
            enrol: None,
            saving: false,
            connection: None,
            parked_net: None,
            down_since: None,
            socket: None,
            socket_open: false,
            inbox: VecDeque::new(),
            generation: 0,
            config: None,
            want_up: false,
            was_up: false,
            backoff: Backoff::default(),
            retry_at: None,
            attempt_deadline: None,
            rtt: None,
            error: None,
            connected_since: None,
            totals: Totals::default(),
            pump_queued: false,
            holding: false,
            hosts: None,
            wake_replies: (0, None),
            pump_again: false,
            timer: None,
            immediate_runs: 0,
            ping_replies: VecDeque::new(),
            next_seq: 1,
            cross_origin_tls: false,
            watching_page: false,
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

    /// Whether the tunnel carries packets now.
    pub fn is_up(&self) -> bool {
        self.phase == Phase::Up
    }

    /// Drops the parked netstack once the tunnel has been down for [`PARKED_LIMIT`]: its
    /// sockets fail (the next wake tells their waiters). Counts from the first drop, across
    /// every attempt to come back.
    pub fn expire_parked(&mut self, now: Instant) {
        if self.is_up() {
            self.down_since = None;
            return;
        }
        let since = *self.down_since.get_or_insert(now);
        if self.parked_net.is_some() && now >= since + PARKED_LIMIT {
            self.parked_net = None;
        }
    }

    /// The netstack for sockets: the connection's, or the one parked between connections.
    pub fn net_mut(&mut self) -> Option<&mut NetStack> {
        match self.connection.as_mut() {
            Some(connection) => connection.net_mut(),
            None => self.parked_net.as_mut(),
        }
    }

    /// Starts a connection (its hello waits for the socket) and moves to
    /// [`Phase::Connecting`]. The caller opens the socket.
    pub fn begin_attempt(&mut self, now: Instant) -> Result<(), ClientError> {
        let profile = self.profile.as_ref().ok_or(ClientError::NotEnrolled)?;
        // The attempt's own deadline bounds the handshake; the core's must not fire first.
        let params = Params { handshake_timeout: ATTEMPT_TIMEOUT, ..Params::default() };
        let mut connection =
            Connection::connect(&profile.secret, &profile.relay_key, self.enrol.as_ref(), &params, now, &mut OsRng)
                .map_err(|e| errors::ended(&End::Failed(e)))?;
        if let Some(net) = self.parked_net.take() {
            connection.reuse_net(net);
        }
        self.connection = Some(connection);
        self.phase = Phase::Connecting;
        self.socket_open = false;
        self.retry_at = None;
        self.attempt_deadline = Some(now + ATTEMPT_TIMEOUT);
        self.generation += 1;
        Ok(())
    }

    /// Whether the socket has handed over records the pump has not taken in yet.
    pub fn has_records_waiting(&self) -> bool {
        self.inbox
            .iter()
            .any(|(generation, event)| *generation == self.generation && matches!(event, SocketEvent::Message(_)))
    }

    /// One turn of the pump: socket events in, the connection driven, and, when `transmit`,
    /// records out.
    pub fn drive(&mut self, now: Instant, transmit: bool) {
        self.pump_again = false;
        while let Some((generation, event)) = self.inbox.pop_front() {
            if generation == self.generation {
                self.on_socket_event(event, now);
            }
        }
        if self.attempt_deadline.is_some_and(|d| now >= d) && !self.is_up() {
            let what =
                if self.socket_open { "the handshake with the relay" } else { "opening the connection to the relay" };
            return self
                .fail(ClientError::Timeout { what: what.into(), after_ms: ATTEMPT_TIMEOUT.as_millis() as u64 }, now);
        }
        let (Some(connection), Some(socket)) = (self.connection.as_mut(), self.socket.as_ref()) else { return };
        // Held: the timers wait too, or the netstack would send the acknowledgement alone.
        if transmit && connection.poll_timeout().is_some_and(|at| now >= at) {
            connection.handle_timeout(now);
        }
        if self.socket_open && transmit {
            while socket.buffered_amount() < SOCKET_HIGH_WATER {
                let Some(message) = connection.poll_transmit(now) else { break };
                if socket.send(&message).is_err() {
                    connection.connection_lost(ConnectionLost::SendFailed);
                    break;
                }
            }
            // Backed up: the packets wait in the netstack, which slows its senders down.
            self.pump_again |= socket.buffered_amount() >= SOCKET_HIGH_WATER;
        }
        if let Some(net) = connection.net_mut() {
            while let Some(reply) = net.poll_ping_reply() {
                if self.ping_replies.len() >= PING_REPLIES {
                    self.ping_replies.pop_front();
                }
                self.ping_replies.push_back(reply);
            }
        }
        while let Some(event) = self.connection.as_mut().and_then(Connection::poll_event) {
            match event {
                Event::Configured(config) => self.on_configured(config),
                Event::Hosts(list) if self.hosts.as_ref() != Some(&list) => {
                    self.hosts = Some(list);
                    crate::api::hosts::announce_change();
                }
                Event::WakeReply { address, outcome } => {
                    self.wake_replies = (self.wake_replies.0 + 1, Some((address, outcome)));
                }
                Event::Closed(end) => {
                    let url = self.socket.as_ref().map(Socket::url).unwrap_or_default();
                    let error = match end {
                        End::ConnectionLost(ConnectionLost::WebSocketClosed { code, reason }) => errors::socket_closed(
                            &url,
                            self.socket_open,
                            code,
                            &reason,
                            self.cross_origin_tls,
                            crate::web::lifecycle::offline(),
                        ),
                        other => errors::ended(&other),
                    };
                    return self.fail(error, now);
                }
                _ => {}
            }
        }
    }

    fn on_socket_event(&mut self, event: SocketEvent, now: Instant) {
        let Some(connection) = self.connection.as_mut() else { return };
        match event {
            SocketEvent::Open => self.socket_open = true,
            // A message the connection cannot use ends it; its Closed event says why.
            SocketEvent::Message(mut message) => drop(connection.handle_message(now, &mut message)),
            SocketEvent::Closed { code, reason, .. } => {
                connection.connection_lost(ConnectionLost::WebSocketClosed { code, reason });
            }
        }
    }

    /// The relay pushed a configuration and the connection applied it: the tunnel is up.
    fn on_configured(&mut self, config: ClientConfig) {
        self.rtt = self.connection.as_ref().and_then(Connection::handshake_rtt).or(self.rtt);
        self.config = Some(config);
        self.phase = Phase::Up;
        self.attempt_deadline = None;
        self.enrol = None;
        self.error = None;
        self.was_up = true;
        self.backoff.reset();
        self.connected_since = Some(crate::web::clock::wall_millis());
        self.pump_again = true;
    }

    /// The link failed: close what is open, then plan a reconnect or stop with `error`.
    pub fn fail(&mut self, error: ClientError, now: Instant) {
        self.end_session();
        if self.want_up && self.was_up && error.is_transient() {
            let delay = self.backoff.next_delay(OsRng.next_u32());
            self.retry_at = Some(now + delay);
            self.phase = Phase::Waiting;
        } else {
            self.want_up = false;
            self.phase = Phase::Idle;
        }
        self.error = Some(error);
    }

    /// Orderly stop (the user disconnected): a close frame goes out if the session is up.
    pub fn stop(&mut self, now: Instant) {
        if let (Some(connection), Some(socket), true) = (self.connection.as_mut(), &self.socket, self.socket_open) {
            connection.close(CloseReason::Normal);
            while let Some(message) = connection.poll_transmit(now) {
                let _ = socket.send(&message);
            }
        }
        self.want_up = false;
        self.end_session();
        self.phase = Phase::Idle;
        self.parked_net = None;
        self.config = None;
        self.retry_at = None;
    }

    /// Drops the socket and the connection; its netstack is parked for the next one.
    fn end_session(&mut self) {
        if let Some(mut connection) = self.connection.take() {
            let stats = connection.stats();
            self.totals.bytes_in += stats.bytes_in;
            self.totals.bytes_out += stats.bytes_out;
            self.parked_net = connection.take_net().or(self.parked_net.take());
        }
        self.socket = None;
        self.socket_open = false;
        self.generation += 1;
        self.inbox.clear();
        self.attempt_deadline = None;
        self.connected_since = None;
        self.pump_again = true;
    }

    /// When the pump must run next at the latest; `None` when nothing is pending.
    pub fn next_deadline(&mut self, now: Instant) -> Option<Instant> {
        if self.pump_again {
            let backed_up = self.socket.as_ref().is_some_and(|s| s.buffered_amount() >= SOCKET_HIGH_WATER);
            return Some(now + if backed_up { BACKED_UP_RETRY } else { Duration::ZERO });
        }
        let connection = self.connection.as_mut().filter(|_| self.socket_open).and_then(Connection::poll_timeout);
        let parked = self.down_since.filter(|_| self.parked_net.is_some()).map(|since| since + PARKED_LIMIT);
        [connection, self.retry_at, self.attempt_deadline, parked].into_iter().flatten().min()
    }

    /// Bytes in and out over every session since the page loaded.
    pub fn bytes(&self) -> (u64, u64) {
        let current = self.connection.as_ref().map(Connection::stats).unwrap_or_default();
        (self.totals.bytes_in + current.bytes_in, self.totals.bytes_out + current.bytes_out)
    }
}
