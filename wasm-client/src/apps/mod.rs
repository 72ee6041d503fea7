//! Home web apps in the page: each LAN `host:port` on an origin of its own, served through a
//! `MessagePort` to the tunnel (design: `docs/web-apps.md`).

pub mod bridge;
