//! hometun's TLS client for home web apps: a separate WebAssembly module, loaded only when an
//! app served over https by a LAN device (a NAS, Proxmox, UniFi) is opened, that speaks TLS
//! (rustls, ring backend) over a TCP connection of the page's tunnel.
//!
//! The crate is sans-IO: [`Client`] takes the bytes that came from the TCP stream and hands
//! back the bytes to send on it and the decrypted application bytes; it never touches a socket.
//! It does not decide whom to trust either. Such devices show self-signed certificates, so the
//! caller pins the certificate's SHA-256 itself (trust on first use) after the handshake and
//! before sending anything; the handshake still makes the host prove it holds the key of the
//! certificate it showed (see `verifier`).
//!
//! - [`client`]: the TLS connection to one LAN host.
//! - [`error`]: the one error enum.
//! - `verifier` (private): the certificate policy.
//! - In the browser only: `web` (what the page's JavaScript calls: the `TlsClient` class).

pub mod client;
pub mod error;
mod verifier;

#[cfg(target_arch = "wasm32")]
pub mod web;

pub use client::{Client, MAX_UNREAD_PLAINTEXT};
pub use error::TlsError;

// The inline unit tests also run in headless Chromium (`--target wasm32-unknown-unknown`).
#[cfg(all(test, target_arch = "wasm32"))]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);
