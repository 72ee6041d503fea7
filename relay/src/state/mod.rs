//! Persistent state in the state directory: clients, invites and address leases, each written
//! atomically.

pub mod actions;
pub mod atomic;
pub mod group_commit;
pub mod invites;
pub mod lock;
pub mod pool;
pub mod registry;
pub mod root;
pub mod store;
pub mod text;

/// Seconds since the Unix epoch (the unit of every time stored in the state files).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
