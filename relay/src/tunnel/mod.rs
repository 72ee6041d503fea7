//! The tunnel side: ACLs, per-client packet filtering, the tun device and NAT rules.

pub mod acl;
pub mod device;
pub mod filter;
pub mod nat;
