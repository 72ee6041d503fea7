//! The browser's clock, timers, WebSocket and storage, wrapped as small Rust types.
//!
//! Everything here calls into JavaScript; nothing here knows the protocol.

pub mod clock;
pub mod lifecycle;
pub mod socket;
pub mod spare;
pub mod store;
pub mod timer;
pub mod tls;

/// `host[:port]` of the page (to tell whether the relay is on the page's own origin).
pub fn page_host() -> String {
    let global = js_sys::global();
    js_sys::Reflect::get(&global, &"location".into())
        .and_then(|location| js_sys::Reflect::get(&location, &"host".into()))
        .ok()
        .and_then(|host| host.as_string())
        .unwrap_or_default()
}

/// The page's `localStorage` (`None` in a worker, or when the browser refuses it).
pub fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}
