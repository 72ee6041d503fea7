//! Reconnect delays: exponential with jitter, capped, reset once a connection holds.

use core::time::Duration;

/// First delay after a drop.
pub const FIRST: Duration = Duration::from_millis(500);
/// Longest delay between attempts. A browser that tells the page nothing when the network returns
/// (Firefox on a desktop without a network manager) or a relay back from a restart finds the page
/// within this (and a quarter more of jitter); a home relay's few devices trying every 10 s cost
/// it nothing.
pub const CAP: Duration = Duration::from_secs(10);

/// The delay schedule for one outage.
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    attempt: u32,
}

impl Backoff {
    /// Delay before the next attempt. `jitter` is a random number; it spreads the delay over
    /// 75 %..125 % so many browsers do not return to a restarted relay at the same instant.
    pub fn next_delay(&mut self, jitter: u32) -> Duration {
        let base = FIRST.saturating_mul(1u32 << self.attempt.min(16)).min(CAP);
        self.attempt = self.attempt.saturating_add(1);
        let permille = 750 + u64::from(jitter % 501);
        Duration::from_millis(u64::try_from(base.as_millis()).unwrap_or(u64::MAX) * permille / 1000)
    }

    /// Attempts made in this outage.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// The connection is back: start over at [`FIRST`] next time.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn delays_double_up_to_the_cap_and_reset_after_success() {
        let mut backoff = Backoff::default();
        let mid = 250; // jitter 250 of 0..=500 -> exactly 100 %
        let delays: Vec<u64> = (0..9).map(|_| backoff.next_delay(mid).as_millis() as u64).collect();
        assert_eq!(delays, [500, 1000, 2000, 4000, 8000, 10000, 10000, 10000, 10000]);
        backoff.reset();
        assert_eq!(backoff.next_delay(mid), FIRST);
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn jitter_stays_within_a_quarter() {
        let mut lowest = Backoff::default();
        let mut highest = Backoff::default();
        assert_eq!(lowest.next_delay(0), Duration::from_millis(375));
        assert_eq!(highest.next_delay(500), Duration::from_millis(625));
        for _ in 0..100 {
            assert!(Backoff::default().next_delay(u32::MAX) <= Duration::from_millis(625));
        }
    }
}
