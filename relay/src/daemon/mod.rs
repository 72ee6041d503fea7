//! The running relay: the state all its tasks share, and the tasks themselves. A connection
//! goes through [`handshake`] (with [`admission`] deciding who may connect) and then the
//! [`datapath`] stages; [`session_table`] finds live sessions; [`limits`] bounds what one source
//! address may hold.

pub mod admission;
pub mod datapath;
pub mod handshake;
pub mod limits;
pub mod session_table;

use crate::admin::proto::DropCounters;
use crate::config::Config;
use crate::state::store::Store;
use hometun_shared::keys::{PublicKey, SecretKey};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use tokio::sync::watch;

/// Everything the relay's tasks share.
pub struct Relay {
    /// Settings.
    pub config: Config,
    /// The relay's static secret.
    pub secret: SecretKey,
    /// Its public key.
    pub public: PublicKey,
    /// Clients, invites, leases.
    pub store: Mutex<Store>,
    /// Admissions and session counters waiting for the state write that holds them.
    pub state_writes: crate::state::group_commit::GroupCommit<admission::StateJob>,
    /// Hellos waiting for the store while a state write holds it, decided together on one
    /// blocking thread (see [`Relay::decide`]).
    pub waiting_hellos: crate::state::group_commit::GroupCommit<admission::WaitingHello>,
    /// Live sessions.
    pub sessions: session_table::SessionTable,
    /// Per-source-IP limits.
    pub limits: limits::IpLimits,
    /// The tun device (absent in tests without privileges).
    pub tun: Option<tun::AsyncDevice>,
    /// The clock origin for the protocol core.
    pub clock: Clock,
    /// Dropped packet counters.
    pub drops: Drops,
    /// Rate limit for denied-packet log lines, over all devices (each has its own share first).
    pub deny_log: LogLimiter,
    /// Becomes true when the relay shuts down.
    pub shutdown: watch::Receiver<bool>,
    /// Start time, Unix seconds.
    pub started: u64,
    /// The home's devices as discovered, and Wake-on-LAN.
    pub discovery: std::sync::Arc<crate::discovery::Discovery>,
    /// TCP segment sizes on either side of the tun.
    pub segments: crate::forwarding::mss::Segments,
    /// Gets app names' certificates when devices ask (set once by `serve` on a relay with a
    /// domain; unset, devices are not offered them).
    pub app_certs: std::sync::OnceLock<std::sync::Arc<crate::acme::keeper::Keeper>>,
}

impl Relay {
    /// The shared state of a relay starting now with `config`, its key, its loaded `store`, the
    /// per-source `limits`, the tun device (none in tests without privileges) and the shutdown
    /// signal; its clock starts now and discovery is set up from `config` (not yet running).
    pub fn new(
        config: Config,
        secret: SecretKey,
        store: Store,
        limits: limits::IpLimits,
        tun: Option<tun::AsyncDevice>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let clock = Clock::start();
        Self {
            public: secret.public_key(),
            secret,
            store: Mutex::new(store),
            state_writes: Default::default(),
            waiting_hellos: Default::default(),
            sessions: session_table::SessionTable::default(),
            limits,
            tun,
            clock,
            drops: Drops::default(),
            deny_log: LogLimiter::new(10),
            shutdown,
            started: crate::state::unix_now(),
            discovery: std::sync::Arc::new(crate::discovery::Discovery::new(&config, clock)),
            segments: crate::forwarding::mss::Segments::new(config.mtu, config.tun_offload),
            app_certs: std::sync::OnceLock::new(),
            config,
        }
    }

    /// Locks the store (a poisoned lock is still usable: every write is a whole-file swap).
    pub fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The store, if nobody holds it now.
    pub fn store_if_free(&self) -> Option<std::sync::MutexGuard<'_, Store>> {
        match self.store.try_lock() {
            Ok(store) => Some(store),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }
}

/// Converts tokio time to the protocol core's [`hometun_shared::time::Instant`].
#[derive(Clone, Copy)]
pub struct Clock {
    origin: tokio::time::Instant,
}

impl Clock {
    /// A clock whose origin is now.
    pub fn start() -> Self {
        Self { origin: tokio::time::Instant::now() }
    }

    /// The current instant for the core.
    pub fn now(self) -> hometun_shared::time::Instant {
        self.to_core(tokio::time::Instant::now())
    }

    /// A tokio instant as a core instant.
    pub fn to_core(self, t: tokio::time::Instant) -> hometun_shared::time::Instant {
        let micros = t.saturating_duration_since(self.origin).as_micros();
        hometun_shared::time::Instant::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
    }

    /// A core instant as a tokio instant.
    pub fn to_tokio(self, t: hometun_shared::time::Instant) -> tokio::time::Instant {
        self.origin + std::time::Duration::from_micros(t.as_micros())
    }
}

/// Counters of dropped packets.
#[derive(Default)]
pub struct Drops {
    /// Wrong source address.
    pub spoofed: AtomicU64,
    /// ACL or client-to-client.
    pub denied: AtomicU64,
    /// Not IPv4 / malformed.
    pub malformed: AtomicU64,
    /// No session for the destination, or its queue full.
    pub no_route_or_full: AtomicU64,
}

impl Drops {
    /// A snapshot.
    pub fn snapshot(&self) -> DropCounters {
        DropCounters {
            spoofed: self.spoofed.load(Ordering::Relaxed),
            denied: self.denied.load(Ordering::Relaxed),
            malformed: self.malformed.load(Ordering::Relaxed),
            no_route_or_full: self.no_route_or_full.load(Ordering::Relaxed),
        }
    }
}

/// Allows at most `per_second` log lines per second (plus a note of how many were skipped).
pub struct LogLimiter {
    per_second: u64,
    window: AtomicU64,
    count: AtomicU64,
    skipped: AtomicU64,
}

impl LogLimiter {
    /// A limiter allowing `per_second` lines per second.
    pub const fn new(per_second: u64) -> Self {
        Self { per_second, window: AtomicU64::new(0), count: AtomicU64::new(0), skipped: AtomicU64::new(0) }
    }

    /// Whether a line may be logged at second `now_secs`; returns the number of lines skipped
    /// since the last allowed one.
    pub fn allow(&self, now_secs: u64) -> Option<u64> {
        if self.window.swap(now_secs, Ordering::Relaxed) != now_secs {
            self.count.store(0, Ordering::Relaxed);
        }
        if self.count.fetch_add(1, Ordering::Relaxed) < self.per_second {
            Some(self.skipped.swap(0, Ordering::Relaxed))
        } else {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_limiter_caps_lines_per_second() {
        let l = LogLimiter::new(2);
        assert_eq!(l.allow(1), Some(0));
        assert_eq!(l.allow(1), Some(0));
        assert_eq!(l.allow(1), None);
        assert_eq!(l.allow(1), None);
        assert_eq!(l.allow(2), Some(2), "reports what was skipped");
    }

    #[test]
    fn clock_round_trips() {
        let clock = Clock::start();
        let t = tokio::time::Instant::now() + std::time::Duration::from_millis(1500);
        let core = clock.to_core(t);
        let back = clock.to_tokio(core);
        assert!(back.saturating_duration_since(t) < std::time::Duration::from_micros(2));
    }
}
