//! The relay's data path, one stage per function, in the order a packet takes them.
//!
//! Uplink, client → LAN:
//! 1. [`Link::receive`] — WebSocket: the next binary message from the client.
//! 2. [`Link::open`] — session: authenticate and decrypt it into IP packets and events
//!    (the first `Established` registers the client: [`Link::establish`]).
//! 3. [`Link::filter`] — filter: source address, ACL and client-to-client rules.
//! 4. [`Link::write_tun`] — tun: hand the allowed packets to the kernel, each behind a header
//!    written over the bytes in front of it in the opened message ([`Link::forward`]). An echo
//!    request to the relay's tunnel address is answered by the relay itself instead.
//!
//! Downlink, LAN → client:
//! 1. [`read_tun`] — tun reader: one task reads every packet the kernel routes to the pool.
//! 2. [`route_by_address`] — the live session owning the destination address.
//! 3. [`enqueue`] — that session's bounded queue; when full the packet is dropped and counted,
//!    as a router drops, instead of stalling every other client.
//! 4. [`Link::seal`] — session: a batch from the queue becomes records.
//! 5. [`Link::transmit`] — WebSocket: feed the records and flush once.
//!
//! The newest packets sealed since the device last sent anything stay with the link; when a new
//! connection of the same device replaces it, they and the queue's packets go to the new one
//! ([`Link::hand_over`]; see [`hometun_shared::unanswered`]).
//!
//! Beside the packets, a device that subscribed hears of the LAN's hosts it may reach
//! ([`Link::push_hosts`], again on every change, at most once a second) and may ask to wake one ([`Link::wake`]); a
//! device about to open a home web app asks for its app name's certificate ([`Link::app_cert`]).
//!
//! [`Link::run`] is the per-client driver: a short `select!` over these stages, the timers and
//! the two ways the relay ends a session (a kick from the session table or the admin socket,
//! and shutdown). Nothing a peer sends can panic it; every protocol error ends only this
//! session. However it ends, the session reports it once as a [`session::End`](End) — the same
//! type the browser and the test client read — and [`Link::finish`] turns it into the close
//! frame and the log line.

use super::admission::{Admission, AdmitError, Admitted, MakeLive};
use super::handshake::{Accepted, WsRx, WsTx};
use super::limits::HandshakeSlot;
use super::session_table::LiveSession;
use super::{Clock, LogLimiter, Relay};
use crate::forwarding::filter::Drop;
use crate::forwarding::offload;
use crate::net::packet::ipv4_destination;
use crate::state::unix_now;
use axum::extract::ws::{CloseFrame, Message};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hometun_shared::app_name::AppTarget;
use hometun_shared::control::{AppCertOutcome, ControlMessage, HostList};
use hometun_shared::session::{
    CloseReason, ConnectionLost, End, Error as SessionError, Event, Malformed, Packets, Session,
};
use hometun_shared::time::Instant;
use hometun_shared::unanswered::Unanswered;
use hometun_shared::wire::{frame::FRAME_HEADER_LEN, RECORD_HEADER_LEN};
use std::net::Ipv4Addr;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Most wake requests handled from one message; the rest are dropped (a person asks for one
/// at a time, a record can hold thousands).
pub const WAKES_PER_MESSAGE: usize = 4;

/// Most app-name certificate demands handled from one message, for the same reason.
pub const APP_CERTS_PER_MESSAGE: usize = 4;

/// Most packets taken from the downlink queue before records are flushed.
const PACKET_BATCH: usize = 256;

/// At most one host list this often to a device: a LAN host that keeps changing what it
/// announces cannot flood devices (on mobile data, say) with lists, nor the relay with
/// building them.
pub const HOSTS_EVERY: Duration = Duration::from_secs(1);

/// Where a packet a client may send goes.
enum Destination {
    /// Into the LAN (or to another client), through the tun.
    Tun,
    /// To the relay's own tunnel address: an echo request the relay answers itself.
    Relay,
}

/// The WebSocket close code for how a session ended, or `None` when the connection is
/// already gone: 1002 when the client broke the protocol, 1000 otherwise.
fn close_code(end: &End) -> Option<u16> {
    match end {
        End::ConnectionLost(_) => None,
        End::Failed(_) => Some(1002),
        _ => Some(1000),
    }
}

/// The close frame's text for how a session ended (also the disconnect log line's end).
fn close_text(end: &End) -> String {
    match end {
        End::Failed(e) => format!("protocol error: {e}"),
        other => other.to_string(),
    }
}

/// One client's tunnel from the handshake reply to its end.
pub struct Link {
    relay: Arc<Relay>,
    remote: std::net::SocketAddr,
    tx: WsTx,
    rx: WsRx,
    session: Session,
    admission: Admission,
    handshake_slot: Option<HandshakeSlot>,
    /// Set once the client is registered (the session is established).
    admitted: Option<Admitted>,
    live: Option<Arc<LiveSession>>,
    /// Handed to the session table when the client is registered.
    queue_tx: Option<mpsc::Sender<Vec<u8>>>,
    kick_tx: Option<mpsc::Sender<CloseReason>>,
    queue: mpsc::Receiver<Vec<u8>>,
    kicks: mpsc::Receiver<CloseReason>,
    shutdown: watch::Receiver<bool>,
    batch: Vec<Vec<u8>>,
    /// The newest packets sealed since the device last sent anything.
    unanswered: Unanswered,
    /// Ticks when the LAN's hosts change.
    hosts_changed: watch::Receiver<u64>,
    /// The device asked for the host list.
    hosts_subscribed: bool,
    /// The list it was sent last, and the version of the hosts it was built from.
    hosts_sent: Option<(u64, HostList)>,
    /// When a list was last sent.
    hosts_sent_at: Option<Instant>,
    /// A change came sooner than [`HOSTS_EVERY`] after that list; the next is sent then.
    hosts_pending: bool,
    /// This device's share of the lines about dropped packets, before the relay's own bound:
    /// one device's flood cannot hide the others' drops from the log.
    deny_log: LogLimiter,
}

/// Lines a second about one device's dropped packets.
const DENY_LINES_PER_DEVICE: u64 = 2;

impl Link {
    /// A link for a connection whose handshake was answered.
    pub fn new(relay: Arc<Relay>, accepted: Accepted) -> Self {
        let (kick_tx, kicks) = mpsc::channel(4);
        let (queue_tx, queue) = mpsc::channel(relay.config.limits.session_queue_packets);
        let shutdown = relay.shutdown.clone();
        let hosts_changed = relay.discovery.changes();
        Self {
            hosts_changed,
            hosts_subscribed: false,
            hosts_sent: None,
            hosts_sent_at: None,
            hosts_pending: false,
            deny_log: LogLimiter::new(DENY_LINES_PER_DEVICE),
            remote: accepted.remote,
            tx: accepted.tx,
            rx: accepted.rx,
            session: accepted.session,
            admission: accepted.admission,
            handshake_slot: Some(accepted.handshake_slot),
            admitted: None,
            live: None,
            queue_tx: Some(queue_tx),
            kick_tx: Some(kick_tx),
            queue,
            kicks,
            shutdown,
            // Grows on the first downlink packets (to at most PACKET_BATCH): an idle tunnel
            // holds no batch buffer.
            batch: Vec::new(),
            unanswered: Unanswered::default(),
            relay,
        }
    }

    /// The per-client driver: runs the stages until the session ends, and says why.
    pub async fn run(&mut self) -> End {
        // A client that stops reading must not hold this task: a kick, the shutdown or the
        // write timeout ends the session even while records wait for the socket.
        let write_timeout = super::handshake::params(&self.relay).dead_peer_after.max(Duration::from_secs(1));
        loop {
            tokio::select! {
                biased;
                sent = tokio::time::timeout(write_timeout, transmit(&mut self.tx, &mut self.session, self.relay.clock)) => {
                    if let Err(lost) = sent.unwrap_or(Err(ConnectionLost::StoppedReading)) {
                        self.session.connection_lost(lost);
                    }
                }
                // The socket may be stalled: the close frame is only attempted in `finish`.
                reason = self.kicks.recv() => return self.stop(reason.unwrap_or(CloseReason::Normal)),
                _ = self.shutdown.changed() => return self.stop(CloseReason::Shutdown),
            };
            if let Some(end) = self.session.end() {
                return end.clone();
            }
            let timer = self.session.poll_timeout().map(|t| self.relay.clock.to_tokio(t));
            let hosts_due = self.hosts_sent_at.filter(|_| self.hosts_pending);
            let hosts_due = hosts_due.map(|at| self.relay.clock.to_tokio(at + HOSTS_EVERY));
            let established = self.live.is_some();
            let step = tokio::select! {
                message = self.rx.next() => self.uplink(message).await,
                received = self.queue.recv_many(&mut self.batch, PACKET_BATCH), if established => {
                    self.seal(received)
                }
                reason = self.kicks.recv() => {
                    self.session.close(reason.unwrap_or(CloseReason::Normal));
                    Ok(())
                }
                _ = self.shutdown.changed() => {
                    self.session.close(CloseReason::Shutdown);
                    Ok(())
                }
                _ = sleep_until(timer) => {
                    self.session.handle_timeout(self.relay.clock.now());
                    Ok(())
                }
                changed = self.hosts_changed.changed(), if established && self.hosts_subscribed => {
                    match changed {
                        Ok(()) => self.hosts_changed(),
                        Err(_) => self.hosts_subscribed = false,
                    }
                    Ok(())
                }
                _ = sleep_until(hosts_due), if hosts_due.is_some() => {
                    self.hosts_pending = false;
                    self.push_hosts();
                    Ok(())
                }
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    /// The uplink stages for one WebSocket message.
    async fn uplink(&mut self, message: Option<Result<Message, axum::Error>>) -> Result<(), End> {
        let Some(bytes) = self.receive(message).await? else { return Ok(()) };
        let mut buffer = match bytes.try_into_mut() {
            Ok(unique) => unique,
            Err(shared) => bytes::BytesMut::from(&shared[..]),
        };
        let positions = self.open(&mut buffer).await?.into_positions();
        self.unanswered.answered(drop);
        if self.admitted.is_some() {
            for at in positions {
                if let Some(reply) = self.forward(&mut buffer, at).await {
                    // A full queue drops it, as it would any packet.
                    let _ = self.session.send_packet(&reply);
                }
            }
        }
        self.update_counters();
        Ok(())
    }

    /// Uplink stage 1: what a WebSocket message means. `Ok(None)`: nothing to do (ping, pong).
    async fn receive(&mut self, message: Option<Result<Message, axum::Error>>) -> Result<Option<Bytes>, End> {
        let lost = match message {
            Some(Ok(Message::Binary(bytes))) => return Ok(Some(bytes)),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => return Ok(None),
            Some(Ok(Message::Text(_))) => {
                self.session.close(CloseReason::ProtocolError);
                let _ = self.transmit().await;
                return Err(End::Failed(SessionError::Malformed(Malformed::TextMessage)));
            }
            Some(Ok(Message::Close(frame))) => ConnectionLost::WebSocketClosed {
                code: frame.as_ref().map_or(1005, |f| f.code),
                reason: frame.map(|f| printable(&f.reason)).unwrap_or_default(),
            },
            Some(Err(e)) => {
                tracing::debug!(remote = %self.remote, "WebSocket failed: {e}");
                ConnectionLost::Dropped
            }
            None => ConnectionLost::Dropped,
        };
        self.session.connection_lost(lost);
        Err(self.session.end().cloned().unwrap_or(End::ConnectionLost(ConnectionLost::Dropped)))
    }

    /// Uplink stage 2: the session opens one message into IP packets; its events are handled
    /// here (the first `Established` registers the client).
    async fn open<'a>(&mut self, buffer: &'a mut [u8]) -> Result<Packets<'a>, End> {
        let now = self.relay.clock.now();
        let packets = match self.session.handle_message(now, buffer) {
            Ok(packets) => packets,
            Err(e) => {
                // The session has ended itself (reported below); tell the client why, if it
                // still listens.
                self.session.close(CloseReason::ProtocolError);
                let _ = self.transmit().await;
                return Err(self.session.end().cloned().unwrap_or(End::Failed(e)));
            }
        };
        // One record can hold tens of thousands of control frames: a Subscribe only marks the
        // session, the list goes out once after them, and only the first few Wakes count.
        let (mut subscribed, mut wakes, mut app_certs) = (false, 0usize, 0usize);
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Established if self.live.is_none() => {
                    if let Err(end) = self.establish().await {
                        let _ = self.transmit().await;
                        return Err(end);
                    }
                    self.handshake_slot.take();
                }
                Event::Control(ControlMessage::Subscribe) if self.admitted.is_some() => subscribed = true,
                Event::Control(ControlMessage::Wake(address)) => {
                    wakes += 1;
                    if wakes <= WAKES_PER_MESSAGE {
                        self.wake(address);
                    }
                }
                Event::Control(ControlMessage::AppCert(app)) => {
                    app_certs += 1;
                    if app_certs <= APP_CERTS_PER_MESSAGE {
                        self.app_cert(app);
                    }
                }
                Event::Closed(end) => return Err(end),
                _ => {}
            }
        }
        if subscribed {
            self.hosts_subscribed = true;
            self.push_hosts();
        }
        if wakes > WAKES_PER_MESSAGE {
            if let Some(admitted) = &self.admitted {
                self.relay.discovery.drop_wakes(&admitted.name, wakes - WAKES_PER_MESSAGE);
            }
        }
        Ok(packets)
    }

    /// The LAN's hosts changed: the device hears of it now, or [`HOSTS_EVERY`] after the list
    /// it was sent last (one list then carries every change in between).
    fn hosts_changed(&mut self) {
        let now = self.relay.clock.now();
        match self.hosts_sent_at {
            Some(at) if now < at + HOSTS_EVERY => self.hosts_pending = true,
            _ => self.push_hosts(),
        }
    }

    /// Sends the device the hosts its ACL lets it reach, unless it has that list already. The
    /// list is built again only when the LAN's hosts changed since it was last built.
    fn push_hosts(&mut self) {
        let Some(admitted) = &self.admitted else { return };
        if !self.relay.discovery.enabled() {
            return;
        }
        // Read before the hosts: a change in between ticks again and is pushed then.
        let version = *self.hosts_changed.borrow();
        if self.hosts_sent.as_ref().is_some_and(|(sent, _)| *sent == version) {
            return;
        }
        let list = self.relay.discovery.view(&admitted.filter.acl.allow_rules(), admitted.wake);
        if self.hosts_sent.as_ref().is_some_and(|(_, sent)| *sent == list) {
            self.hosts_sent = Some((version, list));
            return;
        }
        // A session that has ended reports it through the run loop.
        if self.session.send_control(&ControlMessage::Hosts(list.clone())).is_ok() {
            self.hosts_sent = Some((version, list));
            self.hosts_sent_at = Some(self.relay.clock.now());
        }
    }

    /// The device asks to wake `address`: checked (its flag, its ACL), rate limited, sent,
    /// logged; the device hears what became of it.
    fn wake(&mut self, address: Ipv4Addr) {
        let Some(admitted) = &self.admitted else { return };
        let outcome =
            self.relay.discovery.wake(&admitted.name, &admitted.filter.acl.allow_rules(), admitted.wake, address);
        let _ = self.session.send_control(&ControlMessage::WakeReply { address, outcome });
    }

    /// The device is about to open `app` on its app name: the relay gets the name's certificate
    /// if this device may reach the app (its ACL) and the relay may certify it (LAN, caps); the
    /// device hears what became of it.
    fn app_cert(&mut self, app: AppTarget) {
        let Some(admitted) = &self.admitted else { return };
        let allowed = admitted.filter.acl.allow_rules().iter().any(|rule| rule.allows_tcp(app.addr));
        let outcome = match self.relay.app_certs.get() {
            None => AppCertOutcome::Unavailable,
            Some(_) if !allowed => AppCertOutcome::NotAllowed,
            Some(keeper) => keeper.demand(app, &admitted.name),
        };
        let _ = self.session.send_control(&ControlMessage::AppCertReply { app, outcome });
    }

    /// Uplink stage 3: whether the client may send `packet` (drops are counted and logged),
    /// and where to: the tun, or the relay itself (an echo request to its tunnel address).
    fn filter(&self, packet: &[u8]) -> Option<Destination> {
        let admitted = self.admitted.as_ref()?;
        match admitted.filter.check(packet) {
            Ok(summary) if summary.dst == admitted.filter.relay_address => Some(Destination::Relay),
            Ok(_) => Some(Destination::Tun),
            Err(drop) => {
                self.count_drop(&admitted.name, drop);
                None
            }
        }
    }

    /// Uplink stages 3 and 4 for the packet at `at` in the opened `message`: the filter, then
    /// the tun. The packet is not copied: its virtio-net header is written over the bytes in
    /// front of it, headers and packets the session has done with. An echo request to the
    /// relay's tunnel address is answered here, not by the host, whose firewall may drop what
    /// comes in on the tun: returns the reply to send back.
    async fn forward(&self, message: &mut [u8], at: Range<usize>) -> Option<Vec<u8>> {
        // A record's header and a frame's are longer than the virtio-net header, so every
        // packet has the room.
        const _: () = assert!(RECORD_HEADER_LEN + FRAME_HEADER_LEN >= offload::HEADER_LEN);
        let write = at.start.checked_sub(offload::HEADER_LEN).and_then(|start| message.get_mut(start..at.end))?;
        match self.filter(&write[offload::HEADER_LEN..])? {
            Destination::Tun => {
                self.write_tun(write).await;
                None
            }
            Destination::Relay => hometun_shared::echo::reply(&write[offload::HEADER_LEN..]),
        }
    }

    /// Uplink stage 4: `write` (a packet behind room for its header) goes to the kernel, its
    /// SYN's MSS clamped to the tun, behind a header that asks nothing of the kernel or, for a
    /// TCP segment over the tun's MTU, asks it to cut the segment.
    async fn write_tun(&self, write: &mut [u8]) {
        let Some(tun) = self.relay.tun.as_ref() else { return };
        let (header, packet) = write.split_at_mut(offload::HEADER_LEN);
        self.relay.segments.from_client(packet);
        match offload::to_kernel(packet, usize::from(self.relay.config.mtu)) {
            Ok(to_kernel) => header.copy_from_slice(&to_kernel),
            Err(e) => {
                tracing::debug!("uplink packet dropped: {e}");
                self.relay.drops.malformed.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        if let Err(e) = tun.send(write).await {
            tracing::debug!("tun write failed: {e}");
        }
    }

    /// Downlink stage 4: the session seals the `received` packets of the batch into records.
    /// An empty receive means the session table dropped the queue's sender.
    fn seal(&mut self, received: usize) -> Result<(), End> {
        if received == 0 {
            return Err(self.stop(CloseReason::Normal));
        }
        if let Some(live) = &self.live {
            live.dequeued(&self.batch);
        }
        for packet in self.batch.drain(..) {
            if self.session.send_packet(&packet).is_err() {
                break;
            }
            self.unanswered.keep(packet, drop);
        }
        self.update_counters();
        Ok(())
    }

    /// Downlink stage 5: sends every queued record (see [`transmit`]).
    async fn transmit(&mut self) -> Result<(), ConnectionLost> {
        transmit(&mut self.tx, &mut self.session, self.relay.clock).await
    }

    /// The relay ends the session: queues the close frame ([`Link::finish`] tries to deliver
    /// it) and returns the end without waiting for the socket.
    fn stop(&mut self, reason: CloseReason) -> End {
        self.session.close(reason);
        End::Closed(reason)
    }

    /// Registers the client once its keys are confirmed, joins the session table and pushes
    /// the client's configuration.
    async fn establish(&mut self) -> Result<(), End> {
        let (Some(packets), Some(kick)) = (self.queue_tx.take(), self.kick_tx.take()) else {
            return Err(self.stop(CloseReason::Refused));
        };
        let (key, remote) = (*self.session.remote_key(), self.remote);
        let relay = self.relay.clone();
        let live: MakeLive = Box::new(move |admitted: &Admitted| LiveSession {
            id: relay.sessions.next_id(),
            name: admitted.name.clone(),
            key: admitted.key,
            address: admitted.address,
            remote,
            since: unix_now(),
            packets,
            kick,
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            queued_bytes: AtomicUsize::new(0),
        });
        let joined = self.relay.admit_and_join(self.admission.clone(), key, live).await;
        let (admitted, live) = match joined {
            Ok(joined) => joined,
            Err(e) => {
                tracing::info!(remote = %self.remote, key = %key.fingerprint(), "refused after handshake: {e}");
                let reason = match e {
                    AdmitError::Revoked => CloseReason::Revoked,
                    // A full or failing disk: the device tries again later by itself.
                    AdmitError::Save(_) => CloseReason::Unavailable,
                    _ => CloseReason::Refused,
                };
                return Err(self.stop(reason));
            }
        };
        if admitted.reclaimed {
            let (relay, address, key) = (self.relay.clone(), admitted.address, admitted.key);
            let _ = tokio::task::spawn_blocking(move || relay.forget_flows(address, &key)).await;
        }
        let config = self.relay.client_config(&admitted);
        // Kept before anything can fail (the device's first record may have closed the session
        // already): `finish` then takes the session out of the table and records its end.
        let admitted = self.admitted.insert(admitted);
        self.live = Some(live);
        self.session.send_config(&config).map_err(End::Failed)?;
        tracing::info!(
            client = %admitted.name,
            remote = %self.remote,
            tunnel = %admitted.address,
            enrolled = admitted.enrolled,
            "connected"
        );
        Ok(())
    }

    /// A new connection of the same device replaced this one, which may have died without a
    /// word: the packets sealed since the device last sent anything, then those still queued,
    /// go to the new connection at once (not when the LAN host's backed-off timer resends
    /// them). Only to the same device at the same address; a revoked device's end is not a
    /// replacement.
    fn hand_over(&mut self) {
        let Some(old) = &self.live else { return };
        let Some(next) = self.relay.sessions.by_key(&old.key).filter(|n| n.id != old.id && n.address == old.address)
        else {
            return;
        };
        self.queue.close();
        let queued = std::iter::from_fn(|| self.queue.try_recv().ok());
        let (mut handed, mut bytes) = (0usize, 0usize);
        for packet in self.unanswered.take().into_iter().chain(queued) {
            let len = packet.len();
            if next.queue_owned(packet) {
                (handed, bytes) = (handed + 1, bytes + len);
            }
        }
        tracing::debug!(client = %old.name, packets = handed, bytes, "handed to the new connection");
    }

    fn update_counters(&self) {
        if let Some(live) = &self.live {
            let stats = self.session.stats();
            live.bytes_in.store(stats.bytes_in, Ordering::Relaxed);
            live.bytes_out.store(stats.bytes_out, Ordering::Relaxed);
        }
    }

    fn count_drop(&self, client: &str, drop: Drop) {
        let drops = &self.relay.drops;
        let (counter, summary, why) = match drop {
            Drop::Malformed(_) => (&drops.malformed, None, "malformed"),
            Drop::Spoofed(s) => (&drops.spoofed, Some(s), "spoofed source"),
            Drop::ClientToClient(s) => (&drops.denied, Some(s), "client-to-client"),
            Drop::Denied(s) => (&drops.denied, Some(s), "not allowed"),
            Drop::NotAHost(s) => (&drops.denied, Some(s), "not a host address (network, broadcast or multicast)"),
            Drop::IpOptions(s) => (&drops.denied, Some(s), "IP options"),
            Drop::IcmpError(s) => (&drops.denied, Some(s), "ICMP error not about its own packet"),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let now = unix_now();
        let skipped = self.deny_log.allow(now).filter(|_| self.relay.deny_log.allow(now).is_some());
        if let Some(skipped) = skipped {
            match summary {
                Some(s) => tracing::info!(
                    client,
                    src = %s.src,
                    dst = %s.dst,
                    protocol = s.protocol,
                    port = s.ports.map(|(_, d)| d),
                    skipped,
                    "dropped packet: {why}"
                ),
                None => tracing::info!(client, skipped, "dropped packet: {why}"),
            }
        }
    }

    /// Closes the connection with the reason, leaves the session table and records the
    /// client's counters.
    pub async fn finish(&mut self, end: End, fingerprint: &str) {
        if end == End::Closed(CloseReason::Replaced) {
            self.hand_over();
        }
        // Best effort: deliver a queued close frame, then the WebSocket close.
        let _ = tokio::time::timeout(Duration::from_secs(1), self.transmit()).await;
        if let Some(code) = close_code(&end) {
            // At most 123 bytes fit a close frame; the peer's own text may be multi-byte.
            let reason: String = close_text(&end)
                .chars()
                .scan(0, |len, c| {
                    *len += c.len_utf8();
                    (*len <= 120).then_some(c)
                })
                .collect();
            let frame = CloseFrame { code, reason: reason.into() };
            let _ = tokio::time::timeout(Duration::from_secs(1), self.tx.send(Message::Close(Some(frame)))).await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), self.tx.close()).await;
        let Some(admitted) = self.admitted.take() else {
            tracing::info!(remote = %self.remote, key = %fingerprint, "handshake ended: {end}");
            return;
        };
        if let Some(live) = self.live.take() {
            self.relay.sessions.remove(&live.key, live.id);
        }
        if end == End::Closed(CloseReason::Revoked) {
            let (relay, address, key) = (self.relay.clone(), admitted.address, admitted.key);
            let _ = tokio::task::spawn_blocking(move || relay.forget_flows(address, &key)).await;
        }
        let stats = self.session.stats();
        self.relay.record_session_end(admitted.key, stats.bytes_in, stats.bytes_out).await;
        tracing::info!(
            client = %admitted.name,
            remote = %self.remote,
            tunnel = %admitted.address,
            bytes_in = stats.bytes_in,
            bytes_out = stats.bytes_out,
            "disconnected: {end}"
        );
    }
}

/// Downlink stage 1: reads the tun device until shutdown and passes every packet on.
pub async fn read_tun(relay: Arc<Relay>) {
    let Some(tun) = relay.tun.as_ref() else { return };
    let mut shutdown = relay.shutdown.clone();
    let mut buffer = vec![0u8; offload::HEADER_LEN + offload::MAX_PACKET + 1];
    loop {
        let n = tokio::select! {
            read = tun.recv(&mut buffer) => match read {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!("reading the tun device failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let packet = match offload::from_kernel(&mut buffer[..n]) {
            Ok(packet) => {
                relay.segments.toward_client(packet);
                &*packet
            }
            Err(e) => {
                tracing::debug!("tun read dropped: {e}");
                relay.drops.malformed.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        let delivered = route_by_address(&relay, packet).is_some_and(|live| enqueue(&live, packet));
        if !delivered {
            relay.drops.no_route_or_full.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Downlink stage 2: the live session owning the packet's destination address.
pub fn route_by_address(relay: &Relay, packet: &[u8]) -> Option<Arc<LiveSession>> {
    let destination: Ipv4Addr = ipv4_destination(packet)?;
    relay.sessions.by_address(destination)
}

/// Downlink stage 3: queues a copy of the packet for the session; `false` when the queue is
/// full (in packets or in bytes) or the session is gone.
pub fn enqueue(live: &LiveSession, packet: &[u8]) -> bool {
    live.queue_packet(packet)
}

/// Sends every record the session has queued, flushing once.
async fn transmit(tx: &mut WsTx, session: &mut Session, clock: Clock) -> Result<(), ConnectionLost> {
    let mut sent = false;
    while let Some(message) = session.poll_transmit(clock.now()) {
        tx.feed(Message::Binary(message.into())).await.map_err(|_| ConnectionLost::SendFailed)?;
        sent = true;
    }
    if sent {
        tx.flush().await.map_err(|_| ConnectionLost::SendFailed)?;
    }
    Ok(())
}

/// Peer-supplied text made safe for one log line.
fn printable(text: &str) -> String {
    text.chars().take(120).map(|c| if c.is_control() { '?' } else { c }).collect()
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_end_gets_the_close_code_a_client_can_act_on() {
        let text_message = SessionError::Malformed(Malformed::TextMessage);
        let cases: Vec<(End, Option<u16>, &str)> = vec![
            (End::Closed(CloseReason::Revoked), Some(1000), "closed: "),
            (End::PeerClosed(CloseReason::Normal), Some(1000), "closed by the other side: "),
            (End::DeadPeer, Some(1000), "the other side stopped answering"),
            (End::Failed(text_message), Some(1002), "protocol error: malformed message: text message"),
            (End::Failed(SessionError::Forged), Some(1002), "protocol error: "),
            (
                End::ConnectionLost(ConnectionLost::StoppedReading),
                None,
                "connection lost: the other side stopped reading",
            ),
            (End::ConnectionLost(ConnectionLost::Dropped), None, "connection lost: the connection dropped"),
        ];
        for (end, code, text) in cases {
            assert_eq!(close_code(&end), code, "{end}");
            assert!(close_text(&end).starts_with(text), "{}", close_text(&end));
        }
    }

    #[test]
    fn a_peers_close_text_is_made_printable_and_short() {
        assert_eq!(printable("bye\n\u{7}now"), "bye??now");
        assert_eq!(printable(&"x".repeat(500)).len(), 120);
    }
}
