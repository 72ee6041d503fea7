//! Ephemeral local ports, handed out without collisions.
//!
//! Ports are taken in sequence from a seeded random start inside the IANA dynamic range, so a
//! port freed by a closed connection is reused only after the whole range went round: the
//! peer has long forgotten the old connection by then.

use std::collections::BTreeSet;

/// First port of the IANA dynamic range.
pub(crate) const FIRST: u16 = 49152;
/// Last port of the IANA dynamic range.
pub(crate) const LAST: u16 = 65535;
const COUNT: u32 = (LAST - FIRST) as u32 + 1;

/// The local ports of one transport protocol.
#[derive(Debug)]
pub(crate) struct Ports {
    in_use: BTreeSet<u16>,
    next: u32,
}

impl Ports {
    pub(crate) fn new(start: u32) -> Self {
        Self { in_use: BTreeSet::new(), next: start % COUNT }
    }

    /// Takes the next free ephemeral port, or `None` when all are taken.
    pub(crate) fn allocate(&mut self) -> Option<u16> {
        for _ in 0..COUNT {
            let candidate = FIRST + (self.next % COUNT) as u16;
            self.next = (self.next + 1) % COUNT;
            if self.in_use.insert(candidate) {
                return Some(candidate);
            }
        }
        None
    }

    /// Takes a specific port; false when it is already taken.
    pub(crate) fn reserve(&mut self, port: u16) -> bool {
        self.in_use.insert(port)
    }

    pub(crate) fn release(&mut self, port: u16) {
        self.in_use.remove(&port);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn ports_never_collide_until_the_range_is_exhausted() {
        let mut ports = Ports::new(12345);
        let mut seen = BTreeSet::new();
        for _ in 0..COUNT {
            let port = ports.allocate().expect("a free port");
            assert!((FIRST..=LAST).contains(&port));
            assert!(seen.insert(port), "port {port} handed out twice");
        }
        assert_eq!(ports.allocate(), None);
        ports.release(50000);
        assert_eq!(ports.allocate(), Some(50000));
    }

    #[test]
    fn a_reserved_port_is_skipped() {
        let mut ports = Ports::new(0);
        assert!(ports.reserve(FIRST));
        assert!(!ports.reserve(FIRST));
        assert_eq!(ports.allocate(), Some(FIRST + 1));
    }
}
