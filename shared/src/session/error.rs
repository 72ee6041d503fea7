//! The session layer's error type and close reasons.

use crate::control::ControlError;
use core::fmt;

/// Why a call into a handshake or a session failed: the input could not be used, or the
/// session has already ended. Failures that end a session are also reported once, as
/// [`End`](super::End) in [`Event::Closed`](super::Event::Closed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A message is not of the expected type or has an impossible length.
    #[error("malformed message: {0}")]
    Malformed(Malformed),
    /// The Noise handshake failed: a tampered message, or the peer does not hold the key
    /// (or the invite secret) it claims.
    #[error("handshake failed: the other side could not prove its key (wrong relay key, wrong invite, or a tampered message)")]
    HandshakeFailed,
    /// The handshake did not finish before its deadline.
    #[error("handshake did not finish in time")]
    HandshakeTimeout,
    /// The relay refused the hello.
    #[error("the relay refused: {0}")]
    Refused(Refusal),
    /// A record failed authentication: tampered, or sealed with another key.
    #[error("a record failed authentication (tampered or forged)")]
    Forged,
    /// A record arrived out of order: a replay, a reordering or a gap.
    #[error("record {got} arrived where {expected} was expected (replay, reordering or loss)")]
    OutOfOrder {
        /// The counter that was due.
        expected: u64,
        /// The counter that arrived.
        got: u64,
    },
    /// The record counter reached its limit; a new session is needed.
    #[error("record counter exhausted; reconnect")]
    CounterExhausted,
    /// A record's frames are malformed.
    #[error("malformed frames in a record")]
    BadFrame,
    /// A control message was refused.
    #[error("bad control message: {0}")]
    Control(ControlError),
    /// The handshake has not finished: nothing can be sent yet.
    #[error("the handshake with the relay has not finished yet")]
    Handshaking,
    /// The relay pushed a configuration the client's netstack cannot run with (an address
    /// that is not unicast, an impossible MTU); the relay's address settings need fixing.
    #[error("the relay pushed a configuration this client cannot use: {0}")]
    UnusableConfig(crate::netstack::Error),
    /// The session has ended (see [`End`](super::End)); nothing more is sent or received.
    #[error("the session has ended: {0}")]
    Ended(Box<super::End>),
}

/// What was wrong with a message's shape, before any cryptography.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Malformed {
    /// The message is not a transport record, or is shorter than a record's header and tag.
    #[error("not a transport record")]
    NotARecord,
    /// The first message of a connection was not a handshake hello.
    #[error("expected a handshake hello")]
    NotAHello,
    /// The hello is longer than any hello this version sends.
    #[error("hello too long")]
    HelloTooLong,
    /// The hello asks for something this relay does not know; update the relay.
    #[error("unknown hello intent")]
    UnknownIntent,
    /// The relay answered the hello with something other than a reply or a refusal.
    #[error("expected a handshake reply")]
    NotAReply,
    /// A refusal without its reason byte.
    #[error("empty refusal")]
    EmptyRefusal,
    /// A text WebSocket message: the tunnel carries binary messages only.
    #[error("text message (the tunnel carries binary messages only)")]
    TextMessage,
}

/// Why the relay refused a hello. Sent unauthenticated; it can only deny, never grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The device's key is not (or no longer) registered: revoked, or never enrolled.
    UnknownDevice,
    /// The relay has no such invite.
    InviteUnknown,
    /// The invite expired.
    InviteExpired,
    /// The invite was already used.
    InviteUsed,
    /// The relay is at a limit; try again later.
    Busy,
    /// The hello's protocol version is not supported.
    Unsupported,
    /// A reason this version does not know.
    Other(u8),
}

impl Refusal {
    /// The reason's code on the wire.
    pub fn code(self) -> u8 {
        match self {
            Self::UnknownDevice => 1,
            Self::InviteUnknown => 2,
            Self::InviteExpired => 3,
            Self::InviteUsed => 4,
            Self::Busy => 5,
            Self::Unsupported => 6,
            Self::Other(code) => code,
        }
    }

    /// The reason for a wire code.
    pub fn from_code(code: u8) -> Self {
        match code {
            1 => Self::UnknownDevice,
            2 => Self::InviteUnknown,
            3 => Self::InviteExpired,
            4 => Self::InviteUsed,
            5 => Self::Busy,
            6 => Self::Unsupported,
            other => Self::Other(other),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownDevice => {
                f.write_str("this device is not registered (revoked or never enrolled); ask for a new invite")
            }
            Self::InviteUnknown => f.write_str("the relay does not know this invite; ask for a new one"),
            Self::InviteExpired => f.write_str("the invite has expired; ask for a new one"),
            Self::InviteUsed => f.write_str("the invite was already used; ask for a new one"),
            Self::Busy => f.write_str("the relay is busy; try again shortly"),
            Self::Unsupported => f.write_str("the relay does not speak this protocol version; update hometun"),
            Self::Other(code) => write!(f, "refused with code {code}"),
        }
    }
}

/// Why a session ended, as carried in a close frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// An orderly end (the user disconnected).
    Normal,
    /// The relay is shutting down.
    Shutdown,
    /// The device was revoked.
    Revoked,
    /// The other side found an error in the protocol.
    ProtocolError,
    /// The same device connected again; this older session ends.
    Replaced,
    /// The relay could not register the device (invite used meanwhile, pool full, ...).
    Refused,
    /// The relay could not register the device now (its state could not be written): trying
    /// again later may work.
    Unavailable,
    /// A reason this version does not know.
    Other(u16),
}

impl CloseReason {
    /// The reason's code on the wire.
    pub fn code(self) -> u16 {
        match self {
            Self::Normal => 0,
            Self::Shutdown => 1,
            Self::Revoked => 2,
            Self::ProtocolError => 3,
            Self::Replaced => 4,
            Self::Refused => 5,
            Self::Unavailable => 6,
            Self::Other(code) => code,
        }
    }

    /// The reason for a wire code.
    pub fn from_code(code: u16) -> Self {
        match code {
            0 => Self::Normal,
            1 => Self::Shutdown,
            2 => Self::Revoked,
            3 => Self::ProtocolError,
            4 => Self::Replaced,
            5 => Self::Refused,
            6 => Self::Unavailable,
            other => Self::Other(other),
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Normal => f.write_str("disconnected"),
            Self::Shutdown => f.write_str("the relay is shutting down"),
            Self::Revoked => f.write_str("this device was revoked"),
            Self::ProtocolError => f.write_str("protocol error"),
            Self::Replaced => f.write_str("the same device connected again elsewhere"),
            Self::Refused => f.write_str("the relay could not register this device"),
            Self::Unavailable => {
                f.write_str("the relay could not register this device now (it could not write its state)")
            }
            Self::Other(code) => write!(f, "closed with code {code}"),
        }
    }
}
