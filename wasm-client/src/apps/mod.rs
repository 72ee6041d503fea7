//! Home web apps in the page (design: `docs/web-apps.md`): every LAN `host:port` gets a browser
//! origin of its own, and its requests come here over a `MessagePort` to cross the tunnel.
//!
//! The pure parts (native-tested, no browser, no clock, no I/O): [`origin`] (app origin ↔ LAN
//! target and URL mapping), [`headers`] (request and response header mapping), [`jar`] (one
//! cookie jar per app), [`inject`] (the shim's script tag in HTML documents), [`websocket`]
//! (upgrade and framing over a tunnel TCP stream); their one error type is [`AppError`].

pub mod basic_auth;
pub mod bridge;
pub mod cookie_date;
pub mod digest_auth;
pub mod error;
pub mod headers;
pub mod inject;
pub mod jar;
pub mod origin;
pub mod pins;
pub mod websocket;

pub use error::AppError;
