//! hometun's SSH client for the page: a separate WebAssembly module, loaded only when a
//! terminal is opened, that speaks SSH (russh, ring backend) over a TCP connection of the
//! page's tunnel (`hometun.connectTcp`).
//!
//! - [`client`]: one login with a terminal over any byte stream (host key check, public key /
//!   password / keyboard-interactive login, PTY and shell).
//! - [`known_hosts`]: host keys trusted on first use, pinned per `host:port`.
//! - [`options`]: what `connect` takes from JavaScript, checked.
//! - [`device_key`]: the device's Ed25519 key, made in the browser.
//! - [`writes`]: what goes to the shell, with a bound on what waits for the server.
//! - [`error`]: the one error enum.
//! - In the browser only: `bridge` (the JavaScript connection as a tokio stream) and `api`
//!   (what `www/ssh/ssh.js` calls; docs/ssh.md).

pub mod client;
pub mod device_key;
pub mod error;
pub mod known_hosts;
pub mod options;
pub mod writes;

#[cfg(target_arch = "wasm32")]
pub mod api;
#[cfg(target_arch = "wasm32")]
pub mod bridge;

pub use error::SshError;
