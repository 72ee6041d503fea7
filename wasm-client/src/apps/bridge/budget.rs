//! What app pages may make the launcher hold at once: the bytes they sent that wait for a LAN
//! app (buffered request bodies, streamed body pieces, WebSocket messages), counted over every
//! port of every app. Each limit per request or socket is small next to the wasm's 4 GiB, but a
//! page may open many requests on many ports; past [`MAX_HELD`] in all, or past
//! [`MAX_PER_HOST`] for the apps of one LAN host, what would add more is refused (the request
//! gets `error`, the socket closes with 1006), and the tunnel every app shares lives on. The
//! share per host keeps one host's pages (a hostile device's, on any of its ports) from taking
//! the whole budget: the apps of other hosts always have half of it.
//!
//! A [`Held`] counts its bytes until it shrinks or is dropped; a task keeps one for all it holds.

use std::cell::{Cell, RefCell};
use std::net::Ipv4Addr;

/// Most bytes held for all app pages together.
pub const MAX_HELD: usize = 256 << 20;
/// Most bytes held for the app pages of one LAN host.
pub const MAX_PER_HOST: usize = MAX_HELD / 2;

thread_local! {
    static HELD: Cell<usize> = const { Cell::new(0) };
    /// Bytes held per host, for the hosts holding any (a few at a time: a list is enough).
    static BY_HOST: RefCell<Vec<(Ipv4Addr, usize)>> = const { RefCell::new(Vec::new()) };
}

/// Bytes counted against [`MAX_HELD`] and the host's [`MAX_PER_HOST`] until shrunk or dropped.
#[derive(Debug)]
pub struct Held {
    host: Ipv4Addr,
    bytes: usize,
}

impl Held {
    /// Nothing held yet, for an app of `host`.
    pub fn new(host: Ipv4Addr) -> Self {
        Self { host, bytes: 0 }
    }

    /// Counts `bytes` more; `false` (and nothing counted) when that would pass [`MAX_HELD`] or
    /// the host's [`MAX_PER_HOST`].
    #[must_use]
    pub fn grow(&mut self, bytes: usize) -> bool {
        HELD.with(|held| {
            BY_HOST.with(|hosts| {
                let mut hosts = hosts.borrow_mut();
                let total = held.get().saturating_add(bytes);
                let at = hosts.iter().position(|(host, _)| *host == self.host);
                let mine = at.map_or(0, |i| hosts[i].1).saturating_add(bytes);
                let fits = total <= MAX_HELD && mine <= MAX_PER_HOST;
                if fits && bytes > 0 {
                    held.set(total);
                    match at {
                        Some(i) => hosts[i].1 = mine,
                        None => hosts.push((self.host, mine)),
                    }
                    self.bytes += bytes;
                }
                fits
            })
        })
    }

    /// Bytes this one counts.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Counts `bytes` fewer (at most what this one holds).
    pub fn shrink(&mut self, bytes: usize) {
        let bytes = bytes.min(self.bytes);
        if bytes == 0 {
            return;
        }
        self.bytes -= bytes;
        HELD.with(|held| held.set(held.get().saturating_sub(bytes)));
        BY_HOST.with(|hosts| {
            let mut hosts = hosts.borrow_mut();
            if let Some(i) = hosts.iter().position(|(host, _)| *host == self.host) {
                hosts[i].1 = hosts[i].1.saturating_sub(bytes);
                if hosts[i].1 == 0 {
                    hosts.swap_remove(i);
                }
            }
        });
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.shrink(self.bytes);
    }
}

/// Bytes held now, over all app pages.
pub fn held() -> usize {
    HELD.with(Cell::get)
}

/// Bytes held now for the app pages of `host`.
pub fn held_for(host: Ipv4Addr) -> usize {
    BY_HOST.with(|hosts| hosts.borrow().iter().find(|(h, _)| *h == host).map_or(0, |(_, bytes)| *bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAS: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 10);
    const ROUTER: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 1);
    const CAMERA: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 30);

    #[test]
    fn what_passes_the_budget_is_refused_and_what_is_given_back_makes_room() {
        let mut first = Held::new(NAS);
        let mut second = Held::new(ROUTER);
        let mut third = Held::new(CAMERA);
        assert!(first.grow(MAX_PER_HOST));
        assert!(second.grow(MAX_PER_HOST - 10));
        assert!(!third.grow(11), "past the budget over all hosts");
        assert_eq!(held(), MAX_HELD - 10, "a refusal counts nothing");
        assert!(third.grow(10));
        first.shrink(100);
        assert_eq!((first.bytes(), third.bytes()), (MAX_PER_HOST - 100, 10));
        assert!(third.grow(100));
        drop(first);
        drop(second);
        assert_eq!(held(), 110, "dropping gives back what is left");
        third.shrink(1000);
        assert_eq!(held(), 0, "shrinking gives back at most what was held");
        assert_eq!(held_for(CAMERA), 0);
    }

    #[test]
    fn one_hosts_pages_cannot_take_the_other_hosts_half() {
        // A hostile device's pages, on two of its ports, hold what they can.
        let mut hostile = Held::new(CAMERA);
        let mut hostile_too = Held::new(CAMERA);
        assert!(hostile.grow(MAX_PER_HOST - 1));
        assert!(!hostile_too.grow(2), "past the host's share");
        assert!(hostile_too.grow(1));
        assert_eq!(held_for(CAMERA), MAX_PER_HOST);
        // The NAS's upload still has the other half.
        let mut upload = Held::new(NAS);
        assert!(upload.grow(MAX_HELD - MAX_PER_HOST));
        assert!(!upload.grow(1), "past the budget over all hosts");
        drop(hostile);
        assert_eq!(held_for(CAMERA), 1);
        assert!(!upload.grow(1), "the NAS has its share, not more");
        let mut router = Held::new(ROUTER);
        assert!(router.grow(MAX_PER_HOST - 1), "what the hostile host gave back");
        assert!(!router.grow(1), "past the budget over all hosts");
    }
}
