//! Frames: the plaintext inside a transport record.
//!
//! A record's plaintext is a sequence of `[kind u8][len u16 BE][body]`. Several IP packets
//! ride in one record to cut per-message overhead.

/// Bytes before a frame's body.
pub const FRAME_HEADER_LEN: usize = 3;

/// Largest frame body.
pub const MAX_FRAME_BODY: usize = u16::MAX as usize;

/// Frame kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    /// One IP packet.
    Packet = 1,
    /// A control message (see [`crate::control`]).
    Control = 2,
    /// Nothing; keeps the path alive and confirms keys.
    Keepalive = 3,
    /// The sender ends the session: `[code u16 BE][utf-8 reason]`.
    Close = 4,
}

/// One frame, borrowed from a decrypted record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// An IP packet.
    Packet(&'a [u8]),
    /// An encoded control message.
    Control(&'a [u8]),
    /// A keepalive.
    Keepalive,
    /// A close frame's raw body.
    Close(&'a [u8]),
}

/// Why a record's plaintext is not a valid frame sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A frame header or body runs past the end of the record.
    #[error("frame truncated")]
    Truncated,
    /// A frame kind this version does not know.
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
}

/// Appends one frame to `out`. The caller keeps `body` within [`MAX_FRAME_BODY`].
pub fn encode(out: &mut Vec<u8>, kind: FrameKind, body: &[u8]) {
    debug_assert!(body.len() <= MAX_FRAME_BODY);
    out.push(kind as u8);
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
}

/// Iterates over the frames of a plaintext; yields one error and stops on bad input.
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    rest: &'a [u8],
}

impl<'a> Frames<'a> {
    /// Starts reading `plaintext`.
    pub fn new(plaintext: &'a [u8]) -> Self {
        Frames { rest: plaintext }
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>, FrameError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let Some((&[kind, hi, lo], after)) = self.rest.split_first_chunk::<FRAME_HEADER_LEN>() else {
            self.rest = &[];
            return Some(Err(FrameError::Truncated));
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if after.len() < len {
            self.rest = &[];
            return Some(Err(FrameError::Truncated));
        }
        let (body, rest) = after.split_at(len);
        self.rest = rest;
        Some(match kind {
            1 => Ok(Frame::Packet(body)),
            2 => Ok(Frame::Control(body)),
            3 => Ok(Frame::Keepalive),
            4 => Ok(Frame::Close(body)),
            other => {
                self.rest = &[];
                Err(FrameError::UnknownKind(other))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn frames_round_trip_in_order() {
        let mut out = Vec::new();
        encode(&mut out, FrameKind::Packet, b"first");
        encode(&mut out, FrameKind::Keepalive, b"");
        encode(&mut out, FrameKind::Packet, &[0xAB; 1500]);
        let frames: Vec<_> = Frames::new(&out).collect::<Result<_, _>>().unwrap();
        assert_eq!(frames, vec![Frame::Packet(b"first"), Frame::Keepalive, Frame::Packet(&[0xAB; 1500])]);
    }

    #[test]
    fn truncated_and_unknown_frames_stop_with_an_error() {
        let mut out = Vec::new();
        encode(&mut out, FrameKind::Packet, b"abc");
        let cases: [(&[u8], FrameError); 3] = [
            (&out[..2], FrameError::Truncated),
            (&out[..5], FrameError::Truncated),
            (&[9, 0, 0], FrameError::UnknownKind(9)),
        ];
        for (input, expected) in cases {
            let got: Vec<_> = Frames::new(input).collect();
            assert_eq!(got, vec![Err(expected)]);
        }
    }
}
