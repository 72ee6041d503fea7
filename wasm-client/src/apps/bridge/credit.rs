//! The flow-control window of one streamed body: at most [`WINDOW`] chunks sent and not yet
//! taken by the other side (each `more` from the service worker gives one back; for a request
//! body, each `body-more` from wasm, see `upload`).
//!
//! Pure bookkeeping; `fetch` waits on it before each chunk. A `more` for a chunk that was never
//! sent is ignored, so a misbehaving reader cannot open the window wider than [`WINDOW`].

/// Chunks that may be in flight: with chunks of at most 256 KiB (a response's
/// [`super::reply::MAX_CHUNK`], a request body's [`super::message::MAX_BODY_CHUNK`]), 1 MiB.
pub const WINDOW: u32 = 4;

/// The window of one response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credit {
    in_flight: u32,
}

impl Credit {
    /// A window with nothing in flight.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether one more chunk may be sent now.
    pub fn can_send(&self) -> bool {
        self.in_flight < WINDOW
    }

    /// Records a sent chunk. Call only when [`Self::can_send`].
    pub fn sent(&mut self) {
        self.in_flight = (self.in_flight + 1).min(WINDOW);
    }

    /// The reader took one chunk (`more`).
    pub fn more(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// Chunks sent and not yet taken.
    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_of_chunks_goes_out_then_each_more_lets_one_more_go() {
        let mut credit = Credit::new();
        for _ in 0..WINDOW {
            assert!(credit.can_send());
            credit.sent();
        }
        assert!(!credit.can_send(), "the chunk past the window waits");
        credit.more();
        assert!(credit.can_send());
        credit.sent();
        assert!(!credit.can_send());
    }

    #[test]
    fn extra_mores_never_widen_the_window() {
        let mut credit = Credit::new();
        for _ in 0..100 {
            credit.more();
        }
        for _ in 0..WINDOW {
            credit.sent();
        }
        assert!(!credit.can_send());
        assert_eq!(credit.in_flight(), WINDOW);
    }
}
