//! Timers and limits of a session. Defaults suit a home VPN; tests shrink them.

use core::time::Duration;

/// Timers and limits for handshakes and sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// A handshake that has not finished by then fails.
    pub handshake_timeout: Duration,
    /// Send a keepalive after this long without sending anything.
    pub keepalive: Duration,
    /// Declare the peer dead after this long without receiving anything.
    pub dead_peer_after: Duration,
    /// Move to the next key after this long on one key.
    pub rekey_after_time: Duration,
    /// Move to the next key after sealing this many plaintext bytes with one key.
    pub rekey_after_bytes: u64,
    /// Refuse to send or accept a record with a counter at or past this.
    pub reject_after_records: u64,
    /// Queue at most this many bytes of unsent records; packets beyond it are dropped (and
    /// counted), as a router drops on a full queue.
    pub max_queued_bytes: usize,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            keepalive: Duration::from_secs(15),
            dead_peer_after: Duration::from_secs(45),
            rekey_after_time: Duration::from_secs(120),
            rekey_after_bytes: 1 << 30,
            reject_after_records: u64::MAX - (1 << 16),
            max_queued_bytes: 4 << 20,
        }
    }
}
