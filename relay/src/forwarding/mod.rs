//! What leaves the relay towards the LAN, and how: per-client ACLs, the forwarding filter every
//! client packet passes, the tun device and the NAT rules.

pub mod acl;
pub mod conntrack;
pub mod device;
pub mod filter;
pub mod keeper;
pub mod mss;
pub mod nat;
pub mod offload;
