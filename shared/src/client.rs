//! A client's connection to the relay: handshake, session and netstack in one state machine.
//!
//! ```text
//!   Connection::connect ── hello ──► relay        handle_message(reply)  ► session up
//!   relay pushes ClientConfig ──► netstack built (address, MTU, DNS), keepalive applied
//!   ► Event::Configured                          ... packets both ways ...
//!   close / peer close / dead peer / failure / lost connection ► Event::Closed(End), once
//! ```
//!
//! When the relay offers the host list ([`Features::hosts`](crate::control::Features::hosts)), the connection subscribes
//! itself and reports every list as [`Event::Hosts`]; [`Connection::wake`] asks the relay to
//! wake a host when it offers that ([`Features::wake`](crate::control::Features::wake)), answered by [`Event::WakeReply`].
//!
//! Sans-IO like [`Session`]: the driver (browser WebSocket, tokio, a test) feeds what the
//! socket receives to [`Connection::handle_message`] and the clock to
//! [`Connection::handle_timeout`], sends what [`Connection::poll_transmit`] returns, sleeps
//! until [`Connection::poll_timeout`] and reads [`Connection::poll_event`]. Sockets (TCP,
//! UDP, ping, DNS) live on the [`NetStack`] from [`Connection::net_mut`]; after using one,
//! call `poll_transmit` again. A driver loop:
//!
//! ```text
//! on message:    conn.handle_message(now, &mut bytes)     (an Err only says the bytes were unusable)
//! on timer:      conn.handle_timeout(now)
//! on lost:       conn.connection_lost(ConnectionLost::...)
//! then:          while let Some(m) = conn.poll_transmit(now) { socket.send(m) }
//!                while let Some(e) = conn.poll_event() { ... }
//!                sleep until conn.poll_timeout()
//! ```

use std::collections::VecDeque;
use std::net::Ipv4Addr;

use rand_core::CryptoRngCore;

use crate::app_name::AppTarget;
use crate::control::{self, AppCertOutcome, AppCertReplies, ClientConfig, ControlMessage, HostList, WakeOutcome};
use crate::handshake::Initiator;
use crate::invite::Invite;
use crate::keys::{PublicKey, SecretKey};
use crate::netstack::{NetConfig, NetStack};
use crate::session::{self, CloseReason, ConnectionLost, End, Error, Params, Session, Stats};
use crate::time::{Duration, Instant};

/// Something the driver should know about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The relay pushed this configuration and it is applied: the netstack runs with its
    /// address, MTU and DNS servers, and keepalives go out at its interval. The first one
    /// means the tunnel is up.
    Configured(ClientConfig),
    /// The relay sent the home's hosts this device may see (after it offered them), first
    /// after the configuration and then on every change.
    Hosts(HostList),
    /// The relay's answer to [`Connection::wake`].
    WakeReply {
        /// The host asked for.
        address: Ipv4Addr,
        /// What the relay did.
        outcome: WakeOutcome,
    },
    /// The relay's answer to [`Connection::app_cert`].
    AppCertReply {
        /// The app asked for.
        app: AppTarget,
        /// What the relay did.
        outcome: AppCertOutcome,
    },
    /// The connection ended, for this reason. Reported exactly once; nothing follows it.
    Closed(End),
}

/// The netstack settings for a pushed configuration: its address and prefix, its MTU (at
/// least 576), the TCP packet size the relay takes, whether it fills in TCP checksums and
/// vouches for those it delivers, and its DNS servers; the rest keeps
/// [`NetConfig::new`]'s defaults.
pub fn net_config(config: &ClientConfig) -> NetConfig {
    let mut net = NetConfig::new(config.address.addr(), config.address.prefix_len());
    net.mtu = usize::from(config.mtu).max(576);
    net.max_tcp_packet = usize::from(config.max_packet).max(net.mtu);
    net.tcp_checksum_offload = config.features.tcp_checksum;
    net.tcp_checksum_checked = config.features.tcp_checksum_checked;
    if net.max_tcp_packet > net.mtu {
        // Such a relay raises the MSS LAN hosts announce to ~64 KiB, and smoltcp's delayed
        // ACK ("at once after a full segment") measures segments by that MSS: every download
        // would wait for the timer. Acknowledge each packet at once instead; the relay hands
        // over TCP data as super-packets of many segments, so that is still one ACK for many.
        net.tcp_ack_delay = None;
    }
    net.dns_servers = config.dns.clone();
    net
}

/// Whether the relay routes `address` under `config`: inside a pushed route or the tunnel
/// subnet.
pub fn routes_to(config: &ClientConfig, address: Ipv4Addr) -> bool {
    config.address.contains(address) || config.routes.iter().any(|route| route.contains(address))
}

/// A client's connection to the relay. See the [module documentation](self).
pub struct Connection {
    initiator: Option<Initiator>,
    hello: Option<Vec<u8>>,
    hello_sent: Option<Instant>,
    handshake_rtt: Option<Duration>,
    session: Option<Session>,
    net: Option<NetStack>,
    net_seed: u64,
    config: Option<ClientConfig>,
    /// The latest host list, once the relay sent one.
    hosts: Option<HostList>,
    subscribed: bool,
    /// How many wake replies came, and the latest.
    wake_replies: (u64, Option<(Ipv4Addr, WakeOutcome)>),
    app_cert_replies: AppCertReplies,
    events: VecDeque<Event>,
    end: Option<End>,
    /// The latest time a caller passed in.
    now: Instant,
    /// Sequence number of the next liveness check's echo request.
    check_seq: u16,
}

/// Packets sent this long ago with nothing back since start a liveness check
/// ([`Connection::check_alive`]): a TCP segment is acknowledged well within it on a live
/// tunnel, and on a dead one the check finds out long before the dead-peer timer, while a TCP
/// connection with data outstanding is still alive (150 s, `NetConfig::tcp_timeout`).
pub const ANSWER_EXPECTED_WITHIN: Duration = Duration::from_secs(2);
/// How long a liveness check gives the relay to answer.
pub const CHECK_ANSWER_WITHIN: Duration = Duration::from_secs(5);
/// Liveness checks' echo requests count up from here, apart from the low sequence numbers
/// a driver's own pings use.
const FIRST_CHECK_SEQ: u16 = 0xC000;

impl core::fmt::Debug for Connection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Connection")
            .field("handshaking", &self.initiator.is_some())
            .field("session", &self.session)
            .field("config", &self.config)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Starts a handshake with the relay whose key is `relay_key`, as device `device`; with
    /// `enrol`, the hello asks to register the device with that invite. The hello is the first
    /// message [`Connection::poll_transmit`] returns: call it once the socket is open.
    /// `rng` also seeds the netstack's random choices.
    pub fn connect(
        device: &SecretKey,
        relay_key: &PublicKey,
        enrol: Option<&Invite>,
        params: &Params,
        now: Instant,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, Error> {
        let (initiator, hello) = Initiator::start(device, relay_key, enrol, params, now, rng)?;
        Ok(Self {
            initiator: Some(initiator),
            hello: Some(hello),
            hello_sent: None,
            handshake_rtt: None,
            session: None,
            net: None,
            net_seed: rng.next_u64(),
            config: None,
            hosts: None,
            subscribed: false,
            wake_replies: (0, None),
            app_cert_replies: AppCertReplies::default(),
            events: VecDeque::new(),
            end: None,
            now,
            check_seq: FIRST_CHECK_SEQ,
        })
    }

    /// Carries the netstack of an earlier connection over (a reconnect): if the relay pushes
    /// the same address again, its sockets live on; otherwise a new netstack replaces it.
    pub fn reuse_net(&mut self, net: NetStack) {
        self.net = Some(net);
    }

    /// Takes the netstack out, for [`Connection::reuse_net`] on the next connection.
    pub fn take_net(&mut self) -> Option<NetStack> {
        self.net.take()
    }

    /// The configuration the relay pushed, once it has.
    pub fn config(&self) -> Option<&ClientConfig> {
        self.config.as_ref()
    }

    /// The latest host list the relay sent (`None` before one came, or when the relay does
    /// not offer it).
    pub fn hosts(&self) -> Option<&HostList> {
        self.hosts.as_ref()
    }

    /// How many wake replies came so far, and the latest (for drivers that read state rather
    /// than events).
    pub fn wake_replies(&self) -> (u64, Option<(Ipv4Addr, WakeOutcome)>) {
        self.wake_replies
    }

    /// Asks the relay to wake the host at `address` (a magic packet on the LAN); the answer
    /// comes as [`Event::WakeReply`]. The relay decides (the device's `wake` flag, its ACL, the
    /// rate limits); `features.wake` only tells a launcher whether to offer it. Returns
    /// `false`, sending nothing, when the relay offers no host list (so it may not know the
    /// message) or the tunnel is not up. Call [`Connection::poll_transmit`] after.
    pub fn wake(&mut self, address: Ipv4Addr) -> bool {
        self.send_if_offered(|f| f.hosts, || control::encode_wake(address))
    }

    /// Queues the control message `encoded()` when the relay's features say it takes it
    /// (`offered`) and the tunnel is up; whether it was queued.
    fn send_if_offered(&mut self, offered: fn(&control::Features) -> bool, encoded: impl FnOnce() -> Vec<u8>) -> bool {
        let offered = self.config.as_ref().is_some_and(|c| offered(&c.features));
        match self.session.as_mut() {
            Some(session) if offered && self.end.is_none() => session.send_encoded_control(&encoded()).is_ok(),
            _ => false,
        }
    }

    /// The relay's answers to [`Connection::app_cert`] (for drivers that read state rather than
    /// events).
    pub fn app_cert_replies(&self) -> &AppCertReplies {
        &self.app_cert_replies
    }

    /// Tells the relay that this device is about to open `app` on its app name, so that the
    /// relay gets the name's certificate if it has none; the answer comes as
    /// [`Event::AppCertReply`]. The relay decides (its domain, the LAN, this device's ACL, its
    /// caps). Returns `false`, sending nothing, when the relay does not offer app-name
    /// certificates or the tunnel is not up. Call [`Connection::poll_transmit`] after.
    pub fn app_cert(&mut self, app: AppTarget) -> bool {
        self.send_if_offered(|f| f.app_certs, || control::encode_app_cert(app))
    }

    /// The netstack, once a configuration built it (or one was carried over).
    pub fn net(&self) -> Option<&NetStack> {
        self.net.as_ref()
    }

    /// The netstack for sockets (TCP, UDP, ping, DNS). Call [`Connection::poll_transmit`]
    /// after using it.
    pub fn net_mut(&mut self) -> Option<&mut NetStack> {
        self.net.as_mut()
    }

    /// Whether the tunnel carries packets: configured and not ended.
    pub fn is_up(&self) -> bool {
        self.config.is_some() && self.end.is_none()
    }

    /// How the connection ended, once it has (also reported once as [`Event::Closed`]).
    pub fn end(&self) -> Option<&End> {
        self.end.as_ref()
    }

    /// Session counters (zero during the handshake).
    pub fn stats(&self) -> Stats {
        self.session.as_ref().map(Session::stats).unwrap_or_default()
    }

    /// Time from handing out the hello to reading the relay's reply.
    pub fn handshake_rtt(&self) -> Option<Duration> {
        self.handshake_rtt
    }

    /// Queues one raw IP packet into the tunnel, past the netstack (tests that spoof).
    pub fn send_packet(&mut self, packet: &[u8]) -> Result<(), Error> {
        if let Some(end) = &self.end {
            return Err(Error::Ended(Box::new(end.clone())));
        }
        match self.session.as_mut() {
            Some(session) => session.send_packet(packet),
            None => Err(Error::Handshaking),
        }
    }

    /// Feeds one message received from the relay: the handshake reply, then records whose
    /// packets go to the netstack and whose pushed configuration is applied. The netstack
    /// takes the packets in at once, so their data is readable on return; what it answers
    /// (acknowledgements) leaves with the next [`Connection::poll_transmit`], together with
    /// anything the application writes before then.
    ///
    /// Fails only for a message it could not use; when that also ends the connection (a
    /// refusal, a forged record, ...), [`Event::Closed`] says so.
    pub fn handle_message(&mut self, now: Instant, message: &mut [u8]) -> Result<(), Error> {
        self.now = now;
        if let Some(end) = &self.end {
            return Err(Error::Ended(Box::new(end.clone())));
        }
        if let Some(initiator) = self.initiator.take() {
            self.hello = None;
            return match initiator.handle_reply(now, message) {
                Ok(session) => {
                    self.handshake_rtt = self.hello_sent.map(|sent| now.saturating_duration_since(sent));
                    self.session = Some(session);
                    Ok(())
                }
                Err(error) => {
                    self.finish(End::Failed(error.clone()));
                    Err(error)
                }
            };
        }
        let Some(session) = self.session.as_mut() else { return Ok(()) };
        let result = session.handle_message(now, message).map(|packets| {
            if let Some(net) = self.net.as_mut().filter(|_| self.config.is_some()) {
                // A record of this connection, after its configuration: what the netstack
                // sent before is not in doubt. (The configuration itself answers nothing that
                // an earlier connection sent.)
                net.answered();
                for packet in packets {
                    net.receive_packet(packet);
                }
                net.poll_ingress(now);
            }
        });
        self.take_session_events(now);
        result
    }

    /// Runs the timers at `now`: the handshake deadline, the session's keepalive and
    /// dead-peer timers, the netstack's retransmissions and timeouts. An end is reported
    /// through [`Connection::poll_event`].
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if self.end.is_some() {
            return;
        }
        if let Some(initiator) = &self.initiator {
            if now >= initiator.deadline() {
                self.finish(End::Failed(Error::HandshakeTimeout));
            }
            return;
        }
        if let Some(session) = self.session.as_mut() {
            if session.poll_timeout().is_some_and(|at| now >= at) {
                session.handle_timeout(now);
            }
        }
        if self.unanswered_check_at().is_some_and(|at| now >= at) && !self.check_alive(now) {
            // No check could start (its echo did not fit): wait for the next packets' answer.
            if let Some(session) = self.session.as_mut() {
                session.forget_unanswered();
            }
        }
        if let Some(net) = self.net.as_mut().filter(|_| self.config.is_some()) {
            if net.poll_timeout().is_some_and(|at| now >= at) {
                net.poll(now);
            }
        }
        self.take_session_events(now);
    }

    /// Checks that the relay still answers, for when the connection under the tunnel may have
    /// died without a word (the network came back, the device slept): pings the relay's tunnel
    /// address, which answers whatever the device's ACL says, and ends the connection as
    /// [`End::DeadPeer`] unless a record comes back within [`CHECK_ANSWER_WITHIN`]. The
    /// connection starts one itself when packets it sent got nothing back within
    /// [`ANSWER_EXPECTED_WITHIN`]. Returns whether a check started: not unless the tunnel is
    /// up, nor while one is under way.
    pub fn check_alive(&mut self, now: Instant) -> bool {
        self.now = now;
        let (Some(session), Some(net), Some(config), None) =
            (self.session.as_mut(), self.net.as_mut(), self.config.as_ref(), self.end.as_ref())
        else {
            return false;
        };
        // Without the echo an idle tunnel would have nothing to answer: no check then.
        if session.checking_alive() || net.ping(config.relay_address, self.check_seq, 0, now).is_err() {
            return false;
        }
        self.check_seq = self.check_seq.checked_add(1).unwrap_or(FIRST_CHECK_SEQ);
        session.check_alive(now, CHECK_ANSWER_WITHIN);
        true
    }

    /// When packets sent without an answer call for a liveness check, if they do.
    fn unanswered_check_at(&self) -> Option<Instant> {
        let session = self.session.as_ref().filter(|s| !s.checking_alive() && self.config.is_some())?;
        session.unanswered_since().map(|since| since + ANSWER_EXPECTED_WITHIN)
    }

    /// The connection under the session ended without a close frame. Ends the connection
    /// with [`End::ConnectionLost`] unless it has already ended (the first end stands).
    pub fn connection_lost(&mut self, lost: ConnectionLost) {
        match self.session.as_mut() {
            Some(session) => session.connection_lost(lost),
            None => self.finish(End::ConnectionLost(lost)),
        }
        self.take_session_events(self.now);
    }

    /// Closes the connection: a close frame goes out with the next
    /// [`Connection::poll_transmit`], then [`Event::Closed`] reports [`End::Closed`].
    pub fn close(&mut self, reason: CloseReason) {
        match self.session.as_mut() {
            Some(session) if self.end.is_none() => session.close(reason),
            _ => self.finish(End::Closed(reason)),
        }
    }

    /// The next message to send: the hello first, then records sealing the netstack's
    /// packets (and keepalives, the close frame). A driver whose socket is backed up stops
    /// calling this; the packets then wait in the netstack, which slows its senders down.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        self.now = now;
        if self.end.is_some() {
            return None;
        }
        if let Some(hello) = self.hello.take() {
            self.hello_sent = Some(now);
            return Some(hello);
        }
        let session = self.session.as_mut()?;
        if let Some(net) = self.net.as_mut().filter(|_| self.config.is_some()) {
            if session.queued_bytes() == 0 {
                net.poll(now);
                // A full send queue drops the packet, as a router would; TCP resends.
                net.drain_transmit(|packet| {
                    let _ = session.send_packet(packet);
                });
            }
        }
        let message = session.poll_transmit(now);
        self.take_session_events(now);
        message
    }

    /// When [`Connection::handle_timeout`] should next be called; `None` once ended.
    #[must_use]
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        if self.end.is_some() {
            return None;
        }
        if let Some(initiator) = &self.initiator {
            return Some(initiator.deadline());
        }
        let session = self.session.as_ref().and_then(Session::poll_timeout);
        let check = self.unanswered_check_at();
        let net = self.net.as_mut().filter(|_| self.config.is_some()).and_then(NetStack::poll_timeout);
        [session, check, net].into_iter().flatten().min()
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn take_session_events(&mut self, now: Instant) {
        while let Some(event) = self.session.as_mut().and_then(Session::poll_event) {
            match event {
                session::Event::Config(config) => self.apply_config(config, now),
                session::Event::Control(ControlMessage::Hosts(list)) => {
                    self.hosts = Some(list.clone());
                    self.events.push_back(Event::Hosts(list));
                }
                session::Event::Control(ControlMessage::WakeReply { address, outcome }) => {
                    self.wake_replies = (self.wake_replies.0 + 1, Some((address, outcome)));
                    self.events.push_back(Event::WakeReply { address, outcome });
                }
                session::Event::Control(ControlMessage::AppCertReply { app, outcome }) => {
                    self.app_cert_replies.push(app, outcome);
                    self.events.push_back(Event::AppCertReply { app, outcome });
                }
                session::Event::Closed(end) => self.finish(end),
                _ => {}
            }
        }
    }

    /// Applies a pushed configuration: the netstack is kept when the address, prefix, MTU and
    /// largest packet stayed (its DNS servers are updated) and built anew otherwise, or when it
    /// leaves TCP checksums out and this relay does not fill them in, or when the relay's word
    /// on the checksums it delivers changed; the keepalive interval is the relay's.
    fn apply_config(&mut self, config: ClientConfig, now: Instant) {
        if self.end.is_some() {
            return;
        }
        let wanted = net_config(&config);
        let keep = self.net.as_ref().is_some_and(|net| {
            let have = net.config();
            (have.address, have.prefix_len, have.mtu, have.max_tcp_packet)
                == (wanted.address, wanted.prefix_len, wanted.mtu, wanted.max_tcp_packet)
                && (config.features.tcp_checksum || !have.tcp_checksum_offload)
                && config.features.tcp_checksum_checked == have.tcp_checksum_checked
        });
        if keep {
            if let Some(net) = self.net.as_mut() {
                let _ = net.set_dns_servers(config.dns.clone());
                // What the netstack sent into the connection before, since the relay last sent
                // anything, goes again now rather than when TCP's backed-off timers run out.
                if let Some(session) = self.session.as_mut() {
                    net.send_unanswered_again(|packet| {
                        let _ = session.send_packet(packet);
                    });
                }
            }
        } else {
            match NetStack::new(wanted, now, self.net_seed) {
                Ok(net) => self.net = Some(net),
                Err(error) => return self.finish(End::Failed(Error::UnusableConfig(error))),
            }
        }
        if let Some(session) = self.session.as_mut() {
            session.set_keepalive(config.keepalive);
            if config.features.hosts && !self.subscribed {
                self.subscribed = session.send_encoded_control(&control::encode_subscribe()).is_ok();
            }
        }
        self.config = Some(config.clone());
        self.events.push_back(Event::Configured(config));
    }

    fn finish(&mut self, end: End) {
        if self.end.is_some() {
            return;
        }
        self.initiator = None;
        self.hello = None;
        self.end = Some(end.clone());
        self.events.push_back(Event::Closed(end));
    }
}
