//! Small IPv4 building blocks: checked packet header views and LAN detection. Prefixes are
//! [`hometun_shared::ipv4`]'s.

pub mod detect;
pub mod packet;
