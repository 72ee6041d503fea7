//! ICMP echo over the tunnel.

use std::net::Ipv4Addr;
use std::time::Duration;

use super::{host, with_net};
use crate::driver::{errors, wait, Tunnel};
use crate::error::ClientError;
use crate::web::timer::sleep;

/// How long one echo waits for its reply.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(2);
/// Time between echo requests.
pub const INTERVAL: Duration = Duration::from_millis(500);
/// Payload bytes per echo (like `ping -s 56`).
pub const PAYLOAD: usize = 56;

/// The outcome of a ping run.
#[derive(Debug, Clone)]
pub struct PingRun {
    /// The address pinged.
    pub address: Ipv4Addr,
    /// Round trip of each echo; `None` when no reply came in time.
    pub rtts: Vec<Option<Duration>>,
}

/// Sends `count` echo requests to `target` (name or address), one every [`INTERVAL`].
pub async fn ping(tunnel: &Tunnel, target: &str, count: u32) -> Result<PingRun, ClientError> {
    let address = host::address_of(tunnel, target).await?;
    let mut rtts = Vec::new();
    for i in 0..count.clamp(1, 100) {
        if i > 0 {
            sleep(INTERVAL).await;
        }
        rtts.push(echo(tunnel, address, REPLY_TIMEOUT).await?);
    }
    Ok(PingRun { address, rtts })
}

/// One echo request; `Ok(None)` when no reply came within `timeout`.
pub async fn echo(tunnel: &Tunnel, address: Ipv4Addr, timeout: Duration) -> Result<Option<Duration>, ClientError> {
    let seq = {
        let mut link = tunnel.link().borrow_mut();
        let seq = link.next_seq;
        link.next_seq = link.next_seq.wrapping_add(1);
        let now = crate::web::clock::now();
        with_net(&mut link, |net| net.ping(address, seq, PAYLOAD, now))?
            .map_err(|e| errors::net_error(e, &address.to_string()))?;
        seq
    };
    tunnel.kick();
    let reply = wait::until(tunnel.link(), Some(timeout), |link| {
        let at = link.ping_replies.iter().position(|r| r.seq == seq && r.from == address)?;
        link.ping_replies.remove(at).map(|r| r.rtt)
    })
    .await;
    Ok(reply)
}
