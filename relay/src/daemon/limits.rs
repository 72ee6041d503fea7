//! Per-source-IP limits: open connections, connections still in handshakes, and the rate of
//! new connections (a token bucket).

use crate::config::Limits;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Debug)]
struct PerIp {
    open: usize,
    unauthenticated: usize,
    tokens: f64,
    refilled: Instant,
}

/// The limiter shared by the listener and the session drivers.
#[derive(Clone)]
pub struct IpLimits {
    inner: Arc<Mutex<HashMap<IpAddr, PerIp>>>,
    limits: Limits,
}

/// Why a connection was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// Too many new connections per second.
    Rate,
    /// Too many open connections.
    Open,
    /// Too many connections in handshakes.
    Unauthenticated,
}

/// Holds one open-connection slot; released on drop.
pub struct ConnectionSlot {
    limits: IpLimits,
    ip: IpAddr,
}

/// Holds one handshake slot; released on drop (or when the session is established).
pub struct HandshakeSlot {
    limits: IpLimits,
    ip: IpAddr,
}

impl IpLimits {
    /// A limiter with `limits`.
    pub fn new(limits: Limits) -> Self {
        IpLimits { inner: Arc::new(Mutex::new(HashMap::new())), limits }
    }

    /// Admits a new connection from `ip` at `now`, or says why not.
    pub fn connect(&self, ip: IpAddr, now: Instant) -> Result<ConnectionSlot, Denied> {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let burst = f64::from(self.limits.new_connections_per_ip_burst.max(1));
        let entry =
            map.entry(ip).or_insert(PerIp { open: 0, unauthenticated: 0, tokens: burst, refilled: now });
        let elapsed = now.saturating_duration_since(entry.refilled).as_secs_f64();
        entry.tokens = (entry.tokens + elapsed * f64::from(self.limits.new_connections_per_ip_per_sec)).min(burst);
        entry.refilled = now;
        if entry.open >= self.limits.max_connections_per_ip {
            return Err(Denied::Open);
        }
        if entry.tokens < 1.0 {
            return Err(Denied::Rate);
        }
        entry.tokens -= 1.0;
        entry.open += 1;
        Ok(ConnectionSlot { limits: self.clone(), ip })
    }

    /// Takes a handshake slot for `ip`.
    pub fn handshake(&self, ip: IpAddr) -> Result<HandshakeSlot, Denied> {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map.entry(ip).or_insert(PerIp {
            open: 0,
            unauthenticated: 0,
            tokens: f64::from(self.limits.new_connections_per_ip_burst),
            refilled: Instant::now(),
        });
        if entry.unauthenticated >= self.limits.max_unauthenticated_per_ip {
            return Err(Denied::Unauthenticated);
        }
        entry.unauthenticated += 1;
        Ok(HandshakeSlot { limits: self.clone(), ip })
    }

    /// Connections currently in handshakes, over all sources.
    pub fn handshakes(&self) -> u64 {
        let map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.values().map(|e| e.unauthenticated as u64).sum()
    }

    fn release(&self, ip: IpAddr, open: usize, unauthenticated: usize) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = map.get_mut(&ip) {
            entry.open = entry.open.saturating_sub(open);
            entry.unauthenticated = entry.unauthenticated.saturating_sub(unauthenticated);
            // Forget idle sources with a full bucket so the map does not grow without bound.
            let burst = f64::from(self.limits.new_connections_per_ip_burst);
            if entry.open == 0 && entry.unauthenticated == 0 && entry.tokens >= burst - 1.0 {
                map.remove(&ip);
            }
        }
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.limits.release(self.ip, 1, 0);
    }
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        self.limits.release(self.ip, 0, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits() -> IpLimits {
        IpLimits::new(Limits {
            max_connections_per_ip: 3,
            max_unauthenticated_per_ip: 2,
            new_connections_per_ip_per_sec: 1,
            new_connections_per_ip_burst: 2,
            ..Limits::default()
        })
    }

    #[test]
    fn rate_open_and_handshake_limits() {
        let l = limits();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let t0 = Instant::now();
        let a = l.connect(ip, t0).unwrap();
        let _b = l.connect(ip, t0).unwrap();
        assert_eq!(l.connect(ip, t0).err(), Some(Denied::Rate), "burst of 2 used up");
        assert!(l.connect(other, t0).is_ok(), "other sources unaffected");
        let _c = l.connect(ip, t0 + Duration::from_secs(1)).unwrap();
        assert_eq!(l.connect(ip, t0 + Duration::from_secs(5)).err(), Some(Denied::Open), "3 open");
        drop(a);
        assert!(l.connect(ip, t0 + Duration::from_secs(5)).is_ok(), "slot freed on drop");

        let h1 = l.handshake(ip).unwrap();
        let _h2 = l.handshake(ip).unwrap();
        assert_eq!(l.handshake(ip).err(), Some(Denied::Unauthenticated));
        assert_eq!(l.handshakes(), 2);
        drop(h1);
        assert!(l.handshake(ip).is_ok());
    }
}
