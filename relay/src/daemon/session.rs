//! The session driver: one task per WebSocket. It reads the hello, lets the relay decide,
//! runs the protocol core's session, and moves packets between it and the tun device with
//! bounded queues. Nothing a peer sends can panic it; every protocol error ends only this
//! session, with a reason.

use super::admission::{AdmitError, Admission, Admitted};
use super::sessions::SessionHandle;
use super::Relay;
use crate::ops::unix_now;
use crate::tunnel::filter::Drop;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use hometun_shared::handshake::{refusal_message, Responder};
use hometun_shared::session::{CloseReason, End as SessionEnd, Error as SessionError, Event, Malformed, Params, Refusal, Session};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

type Tx = SplitSink<WebSocket, Message>;
type Rx = SplitStream<WebSocket>;

/// Most packets taken from the tun queue before records are flushed.
const PACKET_BATCH: usize = 256;

/// How a session ended, for the disconnect log line.
#[derive(Debug)]
enum End {
    Peer(String),
    Local(CloseReason),
    Protocol(SessionEnd),
    Transport(String),
}

impl End {
    /// The session's own end, in the driver's terms.
    fn of_session(end: &SessionEnd) -> End {
        match end {
            SessionEnd::Closed(reason) => End::Local(*reason),
            SessionEnd::PeerClosed(reason) => End::Peer(reason.to_string()),
            other => End::Protocol(other.clone()),
        }
    }
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            End::Peer(why) => write!(f, "client closed: {why}"),
            End::Local(reason) => write!(f, "closed by relay: {reason}"),
            End::Protocol(e) => write!(f, "protocol error: {e}"),
            End::Transport(e) => write!(f, "connection lost: {e}"),
        }
    }
}

/// Runs one WebSocket connection to its end.
pub async fn run(ws: WebSocket, remote: SocketAddr, relay: Arc<Relay>) {
    let handshake_slot = match relay.limits.handshake(remote.ip()) {
        Ok(slot) => slot,
        Err(why) => {
            tracing::info!(%remote, "refused: too many handshakes from this address ({why:?})");
            let (mut tx, _) = ws.split();
            let _ = tx.send(Message::Binary(refusal_message(Refusal::Busy).into())).await;
            let _ = tx.close().await;
            return;
        }
    };
    let (mut tx, mut rx) = ws.split();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(relay.config.limits.handshake_timeout_secs);
    let hello = match tokio::time::timeout_at(deadline, next_binary(&mut rx)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(why)) => {
            tracing::info!(%remote, "handshake failed: {why}");
            return close_ws(&mut tx, 1002, "expected a handshake").await;
        }
        Err(_) => {
            tracing::info!(%remote, "handshake failed: no hello in time");
            return close_ws(&mut tx, 1008, "handshake timeout").await;
        }
    };
    let (responder, hello) = match Responder::read_hello(&relay.secret, &hello, &mut rand_core::OsRng) {
        Ok(read) => read,
        Err(e) => {
            tracing::info!(%remote, "handshake failed: {e}");
            if let SessionError::Refused(reason) = e {
                let _ = tx.send(Message::Binary(refusal_message(reason).into())).await;
            }
            return close_ws(&mut tx, 1002, "bad hello").await;
        }
    };
    let fingerprint = hello.client_key.fingerprint();
    let (admission, psk) = match relay.decide(&hello) {
        Ok(decision) => decision,
        Err(refusal) => {
            tracing::info!(%remote, key = %fingerprint, "refused: {refusal}");
            let _ = tx.send(Message::Binary(refusal_message(refusal).into())).await;
            return close_ws(&mut tx, 1000, "refused").await;
        }
    };
    let params = params(&relay);
    let (mut session, reply) = match responder.accept(psk.as_ref(), &params, relay.clock.now()) {
        Ok(accepted) => accepted,
        Err(e) => {
            tracing::info!(%remote, key = %fingerprint, "handshake failed: {e}");
            return close_ws(&mut tx, 1011, "handshake failed").await;
        }
    };
    drop(psk);
    if tx.send(Message::Binary(reply.into())).await.is_err() {
        return;
    }
    let mut driver = Driver { relay: relay.clone(), remote, tx, rx, admitted: None, handle: None };
    let end = driver.run(&mut session, &admission, Some(handshake_slot)).await;
    driver.finish(&mut session, end, &fingerprint).await;
}

fn params(relay: &Relay) -> Params {
    let limits = &relay.config.limits;
    Params {
        handshake_timeout: Duration::from_secs(limits.handshake_timeout_secs),
        keepalive: Duration::from_secs(limits.keepalive_secs),
        dead_peer_after: Duration::from_secs(limits.idle_timeout_secs),
        ..Params::default()
    }
}

struct Driver {
    relay: Arc<Relay>,
    remote: SocketAddr,
    tx: Tx,
    rx: Rx,
    admitted: Option<Admitted>,
    handle: Option<Arc<SessionHandle>>,
}

impl Driver {
    async fn run(
        &mut self,
        session: &mut Session,
        admission: &Admission,
        mut handshake_slot: Option<super::limits::HandshakeSlot>,
    ) -> End {
        let (kick_tx, mut kick_rx) = mpsc::channel::<CloseReason>(4);
        let (packet_tx, mut packet_rx) = mpsc::channel::<Vec<u8>>(self.relay.config.limits.session_queue_packets);
        let mut packet_tx = Some(packet_tx);
        let mut kick_tx = Some(kick_tx);
        let mut shutdown = self.relay.shutdown.clone();
        let mut batch: Vec<Vec<u8>> = Vec::with_capacity(PACKET_BATCH);
        let write_timeout = Duration::from_secs(self.relay.config.limits.idle_timeout_secs.max(1));
        loop {
            // A client that stops reading must not hold this task: a kick, the shutdown or the
            // write timeout ends the session even while records wait for the socket.
            let sent = tokio::select! {
                biased;
                sent = tokio::time::timeout(write_timeout, self.transmit(session)) => {
                    sent.unwrap_or_else(|_| Err(End::Transport("the client stopped reading".into())))
                }
                reason = kick_rx.recv() => Err(End::Local(reason.unwrap_or(CloseReason::Normal))),
                _ = shutdown.changed() => Err(End::Local(CloseReason::Shutdown)),
            };
            if let Err(end) = sent {
                return end;
            }
            if let Some(end) = session.end() {
                return End::of_session(end);
            }
            let timer = session.poll_timeout().map(|t| self.relay.clock.to_tokio(t));
            let established = self.handle.is_some();
            tokio::select! {
                message = self.rx.next() => {
                    let bytes = match message {
                        Some(Ok(Message::Binary(bytes))) => bytes,
                        Some(Ok(Message::Close(frame))) => {
                            return End::Peer(frame.map(|f| printable(&f.reason)).unwrap_or_else(|| "websocket closed".into()));
                        }
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                        Some(Ok(Message::Text(_))) => {
                            session.close(CloseReason::ProtocolError);
                            let _ = self.transmit(session).await;
                            return End::Protocol(SessionEnd::Failed(SessionError::Malformed(Malformed::TextMessage)));
                        }
                        Some(Err(e)) => return End::Transport(e.to_string()),
                        None => return End::Transport("connection closed".into()),
                    };
                    let mut buffer = match bytes.try_into_mut() {
                        Ok(unique) => unique,
                        Err(shared) => bytes::BytesMut::from(&shared[..]),
                    };
                    let now = self.relay.clock.now();
                    let packets = match session.handle_message(now, &mut buffer) {
                        Ok(packets) => packets,
                        Err(e) => {
                            session.close(CloseReason::ProtocolError);
                            let _ = self.transmit(session).await;
                            return End::Protocol(SessionEnd::Failed(e));
                        }
                    };
                    while let Some(event) = session.poll_event() {
                        match event {
                            Event::Established if self.handle.is_none() => {
                                if let Err(end) = self.establish(session, admission, &mut packet_tx, &mut kick_tx).await {
                                    let _ = self.transmit(session).await;
                                    return end;
                                }
                                handshake_slot.take();
                            }
                            Event::Closed(end) => return End::of_session(&end),
                            _ => {}
                        }
                    }
                    if let Some(admitted) = &self.admitted {
                        let tun = self.relay.tun.as_ref();
                        for packet in packets {
                            match admitted.filter.check(packet) {
                                Ok(_) => {
                                    if let Some(tun) = tun {
                                        if let Err(e) = tun.send(packet).await {
                                            tracing::debug!("tun write failed: {e}");
                                        }
                                    }
                                }
                                Err(drop) => self.count_drop(&admitted.name, drop),
                            }
                        }
                    }
                    self.update_counters(session);
                }
                received = packet_rx.recv_many(&mut batch, PACKET_BATCH), if established => {
                    if received == 0 {
                        return End::Local(CloseReason::Normal);
                    }
                    for packet in batch.drain(..) {
                        if session.send_packet(&packet).is_err() {
                            break;
                        }
                    }
                    self.update_counters(session);
                }
                reason = kick_rx.recv() => {
                    session.close(reason.unwrap_or(CloseReason::Normal));
                }
                _ = shutdown.changed() => {
                    session.close(CloseReason::Shutdown);
                }
                _ = sleep_until(timer) => {
                    session.handle_timeout(self.relay.clock.now());
                }
            }
        }
    }

    async fn establish(
        &mut self,
        session: &mut Session,
        admission: &Admission,
        packet_tx: &mut Option<mpsc::Sender<Vec<u8>>>,
        kick_tx: &mut Option<mpsc::Sender<CloseReason>>,
    ) -> Result<(), End> {
        // Admission writes state files (fsync): keep it off the async workers.
        let (relay, what, key) = (self.relay.clone(), admission.clone(), *session.remote_key());
        let admitted = tokio::task::spawn_blocking(move || relay.admit(&what, &key))
            .await
            .unwrap_or_else(|e| Err(AdmitError::Save(anyhow::anyhow!("admission task failed: {e}"))));
        let admitted = match admitted {
            Ok(admitted) => admitted,
            Err(e) => {
                tracing::info!(remote = %self.remote, key = %session.remote_key().fingerprint(), "refused after handshake: {e}");
                session.close(CloseReason::Refused);
                return Err(End::Local(CloseReason::Refused));
            }
        };
        let (Some(packets), Some(kick)) = (packet_tx.take(), kick_tx.take()) else {
            return Err(End::Local(CloseReason::Refused));
        };
        let handle = Arc::new(SessionHandle {
            id: self.relay.sessions.next_id(),
            name: admitted.name.clone(),
            key: admitted.key.clone(),
            address: admitted.address,
            remote: self.remote,
            since: unix_now(),
            packets,
            kick,
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
        });
        self.relay.sessions.insert(handle.clone());
        let config = self.relay.client_config(&admitted);
        if let Err(e) = session.send_config(&config) {
            return Err(End::Protocol(SessionEnd::Failed(e)));
        }
        tracing::info!(
            client = %admitted.name,
            remote = %self.remote,
            tunnel = %admitted.address,
            enrolled = admitted.enrolled,
            "connected"
        );
        self.admitted = Some(admitted);
        self.handle = Some(handle);
        Ok(())
    }

    /// Sends every queued record; batches them into one flush.
    async fn transmit(&mut self, session: &mut Session) -> Result<(), End> {
        let mut sent = false;
        while let Some(message) = session.poll_transmit(self.relay.clock.now()) {
            self.tx.feed(Message::Binary(message.into())).await.map_err(|e| End::Transport(e.to_string()))?;
            sent = true;
        }
        if sent {
            self.tx.flush().await.map_err(|e| End::Transport(e.to_string()))?;
        }
        Ok(())
    }

    fn update_counters(&self, session: &Session) {
        if let Some(handle) = &self.handle {
            let stats = session.stats();
            handle.bytes_in.store(stats.bytes_in, Ordering::Relaxed);
            handle.bytes_out.store(stats.bytes_out, Ordering::Relaxed);
        }
    }

    fn count_drop(&self, client: &str, drop: Drop) {
        let drops = &self.relay.drops;
        let (counter, summary, why) = match drop {
            Drop::Malformed(_) => (&drops.malformed, None, "malformed"),
            Drop::Spoofed(s) => (&drops.spoofed, Some(s), "spoofed source"),
            Drop::ClientToClient(s) => (&drops.denied, Some(s), "client-to-client"),
            Drop::Denied(s) => (&drops.denied, Some(s), "not allowed"),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Some(skipped) = self.relay.deny_log.allow(unix_now()) {
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

    async fn finish(&mut self, session: &mut Session, end: End, fingerprint: &str) {
        // Best effort: deliver a queued close frame, then the WebSocket close.
        let _ = tokio::time::timeout(Duration::from_secs(1), self.transmit(session)).await;
        if !matches!(end, End::Transport(_)) {
            let code = if matches!(end, End::Protocol(_)) { 1002 } else { 1000 };
            // At most 123 bytes fit a close frame; the peer's own text may be multi-byte.
            let reason: String = end.to_string().chars().scan(0, |len, c| {
                *len += c.len_utf8();
                (*len <= 120).then_some(c)
            }).collect();
            let frame = CloseFrame { code, reason: reason.into() };
            let _ = tokio::time::timeout(Duration::from_secs(1), self.tx.send(Message::Close(Some(frame)))).await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), self.tx.close()).await;
        let Some(admitted) = self.admitted.take() else {
            tracing::info!(remote = %self.remote, key = %fingerprint, "handshake ended: {end}");
            return;
        };
        if let Some(handle) = self.handle.take() {
            self.relay.sessions.remove(handle.address, handle.id);
        }
        let stats = session.stats();
        let relay = self.relay.clone();
        let key = admitted.key.clone();
        let _ = tokio::task::spawn_blocking(move || relay.record_session_end(&key, stats.bytes_in, stats.bytes_out)).await;
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

async fn next_binary(rx: &mut Rx) -> Result<Vec<u8>, String> {
    loop {
        match rx.next().await {
            Some(Ok(Message::Binary(bytes))) => return Ok(bytes.to_vec()),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Text(_))) => return Err("text message instead of a hello".into()),
            Some(Ok(Message::Close(_))) | None => return Err("closed before the hello".into()),
            Some(Err(e)) => return Err(e.to_string()),
        }
    }
}

async fn close_ws(tx: &mut Tx, code: u16, reason: &'static str) {
    let frame = CloseFrame { code, reason: reason.into() };
    let _ = tokio::time::timeout(Duration::from_secs(1), tx.send(Message::Close(Some(frame)))).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), tx.close()).await;
}
