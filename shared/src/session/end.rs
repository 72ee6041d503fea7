//! How a session ends: one [`End`], reported once.
//!
//! Like quinn's `ConnectionLost { reason }`: whichever way a session (or a client connection
//! still in its handshake) stops, the state machine reports it exactly once as
//! [`Event::Closed`](super::Event::Closed) with an [`End`], and every later call fails with
//! [`Error::Ended`]. The relay, the browser client and the test client all read the same type.

use super::error::{CloseReason, Error};

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum End {
    /// The other side sent a close frame with this reason.
    #[error("closed by the other side: {0}")]
    PeerClosed(CloseReason),
    /// This side closed the session (its close frame has been handed out to send).
    #[error("closed: {0}")]
    Closed(CloseReason),
    /// Nothing arrived from the other side for longer than the dead-peer timeout: the
    /// network or the other side is down.
    #[error("the other side stopped answering")]
    DeadPeer,
    /// The connection under the session (TCP, TLS, WebSocket) ended without a close frame.
    #[error("connection lost: {0}")]
    ConnectionLost(ConnectionLost),
    /// The handshake or the session failed: a refusal, a key that does not match, a
    /// deadline, a tampered or malformed record, an exhausted counter.
    #[error("{0}")]
    Failed(Error),
}

/// How the connection under a session was lost. The drivers report it with
/// `connection_lost`; the state machine ignores it once the session has already ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionLost {
    /// The connection dropped without a WebSocket close: reset, end of stream, or the
    /// network went away. Reconnecting may help.
    #[error("the connection dropped")]
    Dropped,
    /// The other side closed the WebSocket without closing the session first.
    #[error("the WebSocket was closed{} (code {code})", if reason.is_empty() { String::new() } else { format!(": {reason}") })]
    WebSocketClosed {
        /// The WebSocket close code (1006 when the connection just dropped).
        code: u16,
        /// The close text the other side sent, for display only (it is the peer's text).
        reason: String,
    },
    /// The other side stopped reading: records waited to be sent for too long.
    #[error("the other side stopped reading")]
    StoppedReading,
    /// A message could not be handed to the WebSocket (it was closing or broken).
    #[error("sending on the WebSocket failed")]
    SendFailed,
    /// A system I/O error of this kind broke the connection.
    #[error("I/O error: {0}")]
    Io(std::io::ErrorKind),
}

impl End {
    /// The session's error for calls made after this end.
    pub(crate) fn to_error(&self) -> Error {
        Error::Ended(Box::new(self.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn ends_read_as_sentences() {
        let cases = [
            (End::PeerClosed(CloseReason::Revoked), "closed by the other side: this device was revoked"),
            (End::DeadPeer, "the other side stopped answering"),
            (End::Failed(Error::Forged), "a record failed authentication (tampered or forged)"),
            (
                End::ConnectionLost(ConnectionLost::WebSocketClosed { code: 1002, reason: "protocol error".into() }),
                "connection lost: the WebSocket was closed: protocol error (code 1002)",
            ),
            (
                End::ConnectionLost(ConnectionLost::WebSocketClosed { code: 1006, reason: String::new() }),
                "connection lost: the WebSocket was closed (code 1006)",
            ),
        ];
        for (end, text) in cases {
            assert_eq!(end.to_string(), text);
        }
    }
}
