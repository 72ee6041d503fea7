//! hometun's tunnel protocol core.
//!
//! Sans-IO: nothing here opens a socket, reads a clock or draws OS randomness. Callers feed
//! received bytes and the current [`time::Instant`] in, and take bytes to send, decrypted IP
//! packets and events out. The relay (tokio), the browser client (wasm) and the tests all
//! drive these same state machines.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod app_name;
pub mod client;
pub mod control;
pub mod echo;
pub mod handshake;
pub mod invite;
pub mod ipv4;
pub mod keys;
pub mod netstack;
pub mod session;
pub mod time;
pub mod unanswered;
pub mod wire;

mod noise;

// The inline unit tests also run in headless Chromium (`--target wasm32-unknown-unknown`).
#[cfg(all(test, target_arch = "wasm32"))]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

pub use session::Session;
