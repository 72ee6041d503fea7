//! hometun's browser client.
//!
//! A thin driver around the shared protocol core's client `Connection` (handshake, session
//! and netstack): the browser's WebSocket carries the records,
//! `setTimeout` and `performance.now()` give the time, `crypto.getRandomValues` the randomness,
//! and IndexedDB keeps the device key. The JavaScript API (see `api`) is what the page exposes
//! as `window.hometun`.
//!
//! The pure parts (`http`, `backoff`, `profile`, `error`) build and test natively too.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod apps;
pub mod backoff;
pub mod driver;
pub mod error;
pub mod http;
pub mod lan;
pub mod profile;
pub mod signal;
pub mod web;

pub use error::ClientError;

#[cfg(all(test, target_arch = "wasm32"))]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);
