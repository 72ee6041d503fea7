//! What the tunnel is for, on the home network: name lookups, pings, TCP streams and HTTP,
//! as async Rust.
//!
//! Each operation queues its request with the netstack, kicks the pump, and waits on the
//! link (see `driver::wait`) until the answer is there or its time is up. The JavaScript API
//! in `api` is a thin layer over these.

pub mod host;
pub mod http;
pub mod ping;
pub mod tcp;
pub mod tls;

use crate::driver::link::{Link, Phase};
use crate::error::ClientError;
use hometun_shared::netstack::NetStack;

/// Runs `f` on the netstack; fails with the link's error (or "not connected") when there is
/// no tunnel to use.
pub fn with_net<T>(link: &mut Link, f: impl FnOnce(&mut NetStack) -> T) -> Result<T, ClientError> {
    if let (Phase::Idle, Some(error)) = (&link.phase, &link.error) {
        return Err(error.clone());
    }
    match link.net_mut() {
        Some(net) => Ok(f(net)),
        None => Err(ClientError::NotConnected),
    }
}
