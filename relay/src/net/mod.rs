//! Small IPv4 building blocks: CIDR networks, checked packet header views, LAN detection.

pub mod cidr;
pub mod detect;
pub mod packet;

pub use cidr::Ipv4Net;
