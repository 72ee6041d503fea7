//! Byte layouts on the wire: the WebSocket message types and the frames inside records.
//!
//! Every decoder here takes untrusted bytes, never panics and never allocates more than the
//! input's length.

pub mod frame;

/// Largest WebSocket message either side sends or accepts.
pub const MAX_MESSAGE_LEN: usize = 128 * 1024;

/// Length of a transport record header: type, flags, counter.
pub const RECORD_HEADER_LEN: usize = 1 + 1 + 8;

/// Length of the AEAD tag at the end of a record.
pub const TAG_LEN: usize = 16;

/// Largest plaintext one record carries: sized so a sealed record fits [`MAX_MESSAGE_LEN`].
pub const MAX_RECORD_PLAINTEXT: usize = MAX_MESSAGE_LEN - RECORD_HEADER_LEN - TAG_LEN;

/// What a WebSocket binary message is, by its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MessageType {
    /// Noise message 1, client to relay.
    Hello = 1,
    /// Noise message 2, relay to client.
    Reply = 2,
    /// The relay refuses a hello (unauthenticated, one reason byte follows).
    Refusal = 3,
    /// An AEAD-sealed transport record.
    Record = 4,
}

impl MessageType {
    /// Reads the type of a message; `None` for an empty message or an unknown type.
    pub fn of(message: &[u8]) -> Option<Self> {
        match message.first()? {
            1 => Some(Self::Hello),
            2 => Some(Self::Reply),
            3 => Some(Self::Refusal),
            4 => Some(Self::Record),
            _ => None,
        }
    }
}
