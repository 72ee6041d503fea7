//! The packets one end sent since the other end last sent anything, kept so that the next
//! connection can carry them again at once.
//!
//! A connection that dies without a word (a phone that lost its network, a router that forgot
//! the connection) takes the packets in flight with it. The TCP connections inside the tunnel
//! then wait out their retransmission timers, and those backed off while the connection was
//! dead: after a half-minute outage a shell's answer or a download's next bytes can come half a
//! minute after the tunnel is back. So each end keeps the newest packets it sent since the other
//! end last sent anything, within a budget, and once a new connection of the same device
//! replaces the dead one they go out again first: TCP drops what it already had, and what it
//! missed moves on at once. The relay hands its connection's packets to the device's next
//! connection; the device's netstack sends its own again once that connection is up.

use std::collections::VecDeque;

/// Bytes of packets kept at most: four of the largest TCP segments the tunnel carries.
pub const BUDGET_BYTES: usize = 256 << 10;
/// Packets kept at most, whatever their size.
pub const BUDGET_PACKETS: usize = 256;

/// The newest packets sent since the peer last sent anything, within [`BUDGET_BYTES`] and
/// [`BUDGET_PACKETS`].
#[derive(Debug, Default)]
pub struct Unanswered {
    packets: VecDeque<Vec<u8>>,
    bytes: usize,
}

impl Unanswered {
    /// Keeps `packet`, just sent; the oldest kept packets that no longer fit the budget go to
    /// `evicted` (for a buffer pool). A packet over the whole budget is not kept.
    pub fn keep(&mut self, packet: Vec<u8>, mut evicted: impl FnMut(Vec<u8>)) {
        if packet.len() > BUDGET_BYTES {
            return evicted(packet);
        }
        while self.packets.len() >= BUDGET_PACKETS || self.bytes + packet.len() > BUDGET_BYTES {
            let Some(oldest) = self.packets.pop_front() else { break };
            self.bytes -= oldest.len();
            evicted(oldest);
        }
        self.bytes += packet.len();
        self.packets.push_back(packet);
    }

    /// The peer sent something: nothing sent before is in doubt any more. Every kept packet
    /// goes to `released`.
    pub fn answered(&mut self, released: impl FnMut(Vec<u8>)) {
        self.bytes = 0;
        self.packets.drain(..).for_each(released);
        // A burst of small packets grew the queue: an idle tunnel does not keep its size.
        self.packets.shrink_to(16);
    }

    /// Takes every kept packet, oldest first.
    pub fn take(&mut self) -> VecDeque<Vec<u8>> {
        self.bytes = 0;
        core::mem::take(&mut self.packets)
    }

    /// The kept packets, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.packets.iter().map(Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(tag: u8, len: usize) -> Vec<u8> {
        vec![tag; len]
    }

    fn tags(kept: &Unanswered) -> Vec<u8> {
        kept.iter().map(|p| p[0]).collect()
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn the_newest_packets_are_kept_within_the_byte_budget() {
        let mut kept = Unanswered::default();
        let mut evicted = Vec::new();
        for tag in 1..=5 {
            kept.keep(packet(tag, 64 << 10), |p| evicted.push(p[0]));
        }
        assert_eq!(tags(&kept), [2, 3, 4, 5], "four 64 KiB segments fit; the oldest went");
        assert_eq!(evicted, [1]);
        assert_eq!(kept.bytes, BUDGET_BYTES);
        kept.keep(packet(6, 40), |p| evicted.push(p[0]));
        assert_eq!(tags(&kept), [3, 4, 5, 6], "a small packet still pushes out the oldest once full");
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn many_small_packets_are_held_to_the_packet_budget() {
        let mut kept = Unanswered::default();
        let mut evicted = 0;
        for n in 0..BUDGET_PACKETS + 10 {
            kept.keep(packet(n as u8, 40), |_| evicted += 1);
        }
        assert_eq!(kept.iter().count(), BUDGET_PACKETS);
        assert_eq!(evicted, 10);
        assert_eq!(kept.bytes, BUDGET_PACKETS * 40);
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn an_answer_releases_everything_and_a_take_empties() {
        let mut kept = Unanswered::default();
        kept.keep(packet(1, 100), drop);
        kept.keep(packet(2, BUDGET_BYTES + 1), |p| assert_eq!(p[0], 2, "over the budget: not kept"));
        kept.keep(packet(3, 100), drop);
        let mut released = Vec::new();
        kept.answered(|p| released.push(p[0]));
        assert_eq!(released, [1, 3]);
        assert!(kept.packets.is_empty() && kept.bytes == 0);
        kept.keep(packet(4, 100), drop);
        assert_eq!(kept.take().into_iter().map(|p| p[0]).collect::<Vec<_>>(), [4]);
        assert!(kept.packets.is_empty() && kept.bytes == 0);
    }
}
