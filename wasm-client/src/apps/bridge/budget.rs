//! What app pages may make the launcher hold at once: the bytes they sent that wait for a LAN
//! app (buffered request bodies, streamed body pieces, WebSocket messages), counted over every
//! port of every app. Each limit per request or socket is small next to the wasm's 4 GiB, but a
//! page may open many requests on many ports; past [`MAX_HELD`] in all, what would add more is
//! refused (the request gets `error`, the socket closes with 1006), and the tunnel every app
//! shares lives on.
//!
//! A [`Held`] counts its bytes until it shrinks or is dropped; a task keeps one for all it holds.

use std::cell::Cell;

/// Most bytes held for all app pages together.
pub const MAX_HELD: usize = 256 << 20;

thread_local! {
    static HELD: Cell<usize> = const { Cell::new(0) };
}

/// Bytes counted against [`MAX_HELD`] until shrunk or dropped.
#[derive(Debug, Default)]
pub struct Held(usize);

impl Held {
    /// Counts `bytes` more; `false` (and nothing counted) when that would pass [`MAX_HELD`].
    #[must_use]
    pub fn grow(&mut self, bytes: usize) -> bool {
        HELD.with(|held| {
            let total = held.get().saturating_add(bytes);
            let fits = total <= MAX_HELD;
            if fits {
                held.set(total);
                self.0 += bytes;
            }
            fits
        })
    }

    /// Bytes this one counts.
    pub fn bytes(&self) -> usize {
        self.0
    }

    /// Counts `bytes` fewer (at most what this one holds).
    pub fn shrink(&mut self, bytes: usize) {
        let bytes = bytes.min(self.0);
        self.0 -= bytes;
        HELD.with(|held| held.set(held.get().saturating_sub(bytes)));
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.shrink(self.0);
    }
}

/// Bytes held now, over all app pages.
pub fn held() -> usize {
    HELD.with(Cell::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_passes_the_budget_is_refused_and_what_is_given_back_makes_room() {
        let mut first = Held::default();
        let mut second = Held::default();
        assert!(first.grow(MAX_HELD - 10));
        assert!(!second.grow(11), "past the budget over both");
        assert_eq!(held(), MAX_HELD - 10, "a refusal counts nothing");
        assert!(second.grow(10));
        first.shrink(100);
        assert_eq!((first.bytes(), second.bytes()), (MAX_HELD - 110, 10));
        assert!(second.grow(100));
        drop(first);
        assert_eq!(held(), 110, "dropping gives back what is left");
        second.shrink(1000);
        assert_eq!(held(), 0, "shrinking gives back at most what was held");
    }
}
