//! Persistent state in the state directory: clients, invites and address leases, each written
//! atomically.

pub mod atomic;
pub mod invites;
pub mod pool;
pub mod registry;
pub mod store;
