//! The start of one tunnel connection, up to the session: the per-address handshake limit, the
//! hello (within the handshake deadline), admission's decision, the Noise reply. Refusals are
//! sent before anything is allocated; every failure ends only this connection, with a log line.
//! An accepted connection continues in [`super::datapath`].

use super::admission::Admission;
use super::datapath::Link;
use super::limits::HandshakeSlot;
use super::{LogLimiter, Relay};
use crate::web::listener::Upgraded;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use hometun_shared::handshake::{refusal_message, Responder};
use hometun_shared::session::{Error as SessionError, Params, Refusal, Session};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The sending half of a tunnel WebSocket.
pub type WsTx = SplitSink<WebSocket, Message>;
/// The receiving half of a tunnel WebSocket.
pub type WsRx = SplitStream<WebSocket>;

/// A connection whose handshake the relay answered: the session is keyed, admission still
/// has to register the client once the client confirms (see [`super::datapath`]).
pub struct Accepted {
    /// Sending half of the WebSocket.
    pub tx: WsTx,
    /// Receiving half of the WebSocket.
    pub rx: WsRx,
    /// The responder's session.
    pub session: Session,
    /// What the hello asked for.
    pub admission: Admission,
    /// Held until the session is established.
    pub handshake_slot: HandshakeSlot,
    /// Where the connection comes from.
    pub remote: SocketAddr,
}

/// Why no hello arrived.
#[derive(Debug, thiserror::Error)]
pub enum NoHello {
    /// The client sent a text message.
    #[error("text message instead of a hello")]
    Text,
    /// The WebSocket ended first.
    #[error("closed before the hello")]
    Closed,
    /// The WebSocket broke.
    #[error("{0}")]
    Transport(axum::Error),
}

/// Runs one WebSocket connection to its end: the handshake here, then the data path.
/// `upgraded` is told when the hello is accepted (the connection's pre-session read limit
/// ends).
pub async fn run(ws: WebSocket, remote: SocketAddr, upgraded: Upgraded, relay: Arc<Relay>) {
    let Some(accepted) = accept(ws, remote, &upgraded, &relay).await else { return };
    let fingerprint = accepted.session.remote_key().fingerprint();
    let mut link = Link::new(relay, accepted);
    let end = link.run().await;
    link.finish(end, &fingerprint).await;
}

/// The session parameters the relay's configuration asks for.
pub fn params(relay: &Relay) -> Params {
    let limits = &relay.config.limits;
    Params {
        handshake_timeout: Duration::from_secs(limits.handshake_timeout_secs),
        keepalive: Duration::from_secs(limits.keepalive_secs),
        dead_peer_after: Duration::from_secs(limits.idle_timeout_secs),
        ..Params::default()
    }
}

/// Lines about failed or refused handshakes, at most 10 a second over all connections (a
/// stranger can make any number of them); each allowed line says how many were left out.
static FAILURE_LOG: LogLimiter = LogLimiter::new(10);

/// Logs one failed handshake within [`FAILURE_LOG`]'s budget.
macro_rules! failure {
    ($($field:tt)*) => {
        if let Some(skipped) = FAILURE_LOG.allow(crate::state::unix_now()) {
            tracing::info!(skipped, $($field)*);
        }
    };
}

/// Takes a connection through the handshake; `None` when it ended there (already logged and
/// closed).
async fn accept(ws: WebSocket, remote: SocketAddr, upgraded: &Upgraded, relay: &Arc<Relay>) -> Option<Accepted> {
    let mut handshake_slot = match relay.limits.handshake(remote.ip()) {
        Ok(slot) => slot,
        Err(why) => {
            failure!(%remote, "refused: too many handshakes from this address ({why:?})");
            let (mut tx, _) = ws.split();
            let _ = tx.send(Message::Binary(refusal_message(Refusal::Busy).into())).await;
            let _ = tx.close().await;
            return None;
        }
    };
    let (mut tx, mut rx) = ws.split();
    let params = params(relay);
    let deadline = tokio::time::Instant::now() + params.handshake_timeout;
    let hello = tokio::select! {
        hello = tokio::time::timeout_at(deadline, next_binary(&mut rx)) => hello,
        () = handshake_slot.evicted() => {
            failure!(%remote, "handshake ended: its slot went to another source");
            close(&mut tx, 1013, "busy").await;
            return None;
        }
    };
    let hello = match hello {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(why)) => {
            failure!(%remote, "handshake failed: {why}");
            close(&mut tx, 1002, "expected a handshake").await;
            return None;
        }
        Err(_) => {
            failure!(%remote, "handshake failed: no hello in time");
            close(&mut tx, 1008, "handshake timeout").await;
            return None;
        }
    };
    let (responder, hello) = match Responder::read_hello(&relay.secret, &hello, &mut rand_core::OsRng) {
        Ok(read) => read,
        Err(e) => {
            failure!(%remote, "handshake failed: {e}");
            if let SessionError::Refused(reason) = e {
                let _ = tx.send(Message::Binary(refusal_message(reason).into())).await;
            }
            close(&mut tx, 1002, "bad hello").await;
            return None;
        }
    };
    let fingerprint = hello.client_key.fingerprint();
    let (admission, psk) = match relay.decide(hello).await {
        Ok(decision) => decision,
        Err(refusal) => {
            failure!(%remote, key = %fingerprint, "refused: {refusal}");
            let _ = tx.send(Message::Binary(refusal_message(refusal).into())).await;
            close(&mut tx, 1000, "refused").await;
            return None;
        }
    };
    let (session, reply) = match responder.accept(psk.as_ref(), &params, relay.clock.now()) {
        Ok(accepted) => accepted,
        Err(e) => {
            failure!(%remote, key = %fingerprint, "handshake failed: {e}");
            close(&mut tx, 1011, "handshake failed").await;
            return None;
        }
    };
    drop(psk);
    upgraded.authenticate();
    tx.send(Message::Binary(reply.into())).await.ok()?;
    Some(Accepted { tx, rx, session, admission, handshake_slot, remote })
}

async fn next_binary(rx: &mut WsRx) -> Result<Bytes, NoHello> {
    loop {
        match rx.next().await {
            Some(Ok(Message::Binary(bytes))) => return Ok(bytes),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Text(_))) => return Err(NoHello::Text),
            Some(Ok(Message::Close(_))) | None => return Err(NoHello::Closed),
            Some(Err(e)) => return Err(NoHello::Transport(e)),
        }
    }
}

/// Sends a close frame and closes, each bounded by a second.
async fn close(tx: &mut WsTx, code: u16, reason: &'static str) {
    let frame = CloseFrame { code, reason: reason.into() };
    let _ = tokio::time::timeout(Duration::from_secs(1), tx.send(Message::Close(Some(frame)))).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), tx.close()).await;
}
