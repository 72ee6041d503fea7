//! Wake-on-LAN, sans IO: the magic packet and the rate limits (one packet per host per
//! [`HOST_INTERVAL`], `wake_per_minute` requests per device per [`DEVICE_WINDOW`], by default
//! [`DEVICE_BURST`]). The driver
//! in [`super`] sends the packet as a UDP broadcast on the LAN interface.

use super::inventory::Mac;
use hometun_shared::time::{Duration, Instant};
use std::collections::{BTreeMap, VecDeque};
use std::net::Ipv4Addr;

/// One magic packet per host per this interval.
pub const HOST_INTERVAL: Duration = Duration::from_secs(10);
/// At most this many wake requests per device per [`DEVICE_WINDOW`] unless configured.
pub const DEVICE_BURST: usize = 10;
/// The window of the per-device limit.
pub const DEVICE_WINDOW: Duration = Duration::from_secs(60);
/// The UDP port of the magic packet (discard).
pub const PORT: u16 = 9;
/// Most devices and hosts the limiter remembers at once (older entries go first).
const MAX_TRACKED: usize = 1024;

/// The magic packet for `mac`: six 0xff bytes, then the MAC sixteen times.
pub fn magic_packet(mac: Mac) -> [u8; 102] {
    let mut packet = [0xff; 102];
    for copy in packet[6..].chunks_exact_mut(6) {
        copy.copy_from_slice(&mac.0);
    }
    packet
}

/// Which limit a request hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    /// This host was woken less than [`HOST_INTERVAL`] ago.
    Host,
    /// This device asked its limit of times within [`DEVICE_WINDOW`].
    Device,
}

impl Limited {
    /// How the log names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Host => "one packet per host per 10 s",
            Self::Device => "per-device limit per minute",
        }
    }
}

/// The rate limits of wake requests.
#[derive(Debug)]
pub struct WakeLimiter {
    device_burst: usize,
    hosts: BTreeMap<Ipv4Addr, Instant>,
    devices: BTreeMap<String, VecDeque<Instant>>,
}

impl Default for WakeLimiter {
    fn default() -> Self {
        Self::new(DEVICE_BURST)
    }
}

impl WakeLimiter {
    /// Limits of `device_burst` requests per device per [`DEVICE_WINDOW`] (at least one).
    pub fn new(device_burst: usize) -> Self {
        Self { device_burst: device_burst.max(1), hosts: BTreeMap::new(), devices: BTreeMap::new() }
    }

    /// Counts a request of `device` to wake `host` at `now`; `Err` when a limit refuses it.
    /// Every request counts against the device, refused ones too.
    pub fn check(&mut self, now: Instant, device: &str, host: Ipv4Addr) -> Result<(), Limited> {
        self.prune(now);
        let times = self.devices.entry(device.to_owned()).or_default();
        let device_full = times.len() >= self.device_burst;
        if !device_full {
            times.push_back(now);
        }
        if device_full {
            return Err(Limited::Device);
        }
        if self.hosts.get(&host).is_some_and(|at| now.saturating_duration_since(*at) < HOST_INTERVAL) {
            return Err(Limited::Host);
        }
        self.hosts.insert(host, now);
        Ok(())
    }

    fn prune(&mut self, now: Instant) {
        for times in self.devices.values_mut() {
            while times.front().is_some_and(|t| now.saturating_duration_since(*t) >= DEVICE_WINDOW) {
                times.pop_front();
            }
        }
        self.devices.retain(|_, times| !times.is_empty());
        self.hosts.retain(|_, at| now.saturating_duration_since(*at) < HOST_INTERVAL);
        while self.devices.len() > MAX_TRACKED {
            self.devices.pop_first();
        }
        while self.hosts.len() > MAX_TRACKED {
            self.hosts.pop_first();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(millis: u64) -> Instant {
        Instant::from_millis(millis)
    }

    #[test]
    fn the_magic_packet_is_six_ff_then_the_mac_sixteen_times() {
        let mac = Mac([0x02, 0x11, 0x22, 0x33, 0x44, 0x55]);
        let packet = magic_packet(mac);
        assert_eq!(&packet[..6], &[0xff; 6]);
        assert_eq!(packet[6..].chunks(6).filter(|c| *c == mac.0).count(), 16);
    }

    #[test]
    fn one_packet_per_host_per_ten_seconds() {
        let mut limiter = WakeLimiter::default();
        let nas = Ipv4Addr::new(192, 168, 0, 10);
        let printer = Ipv4Addr::new(192, 168, 0, 20);
        #[rustfmt::skip]
        let steps: [(u64, &str, Ipv4Addr, Result<(), Limited>); 5] = [
            (0,      "phone",  nas,     Ok(())),
            (1_000,  "laptop", nas,     Err(Limited::Host)),
            (1_000,  "phone",  printer, Ok(())),
            (9_999,  "phone",  nas,     Err(Limited::Host)),
            (10_000, "laptop", nas,     Ok(())),
        ];
        for (i, (at, device, host, expected)) in steps.into_iter().enumerate() {
            assert_eq!(limiter.check(t(at), device, host), expected, "step {}", i + 1);
        }
    }

    #[test]
    fn ten_requests_per_device_per_minute() {
        let mut limiter = WakeLimiter::default();
        for i in 0..DEVICE_BURST as u8 {
            assert_eq!(limiter.check(t(u64::from(i)), "phone", Ipv4Addr::new(192, 168, 0, i + 1)), Ok(()));
        }
        let eleventh = Ipv4Addr::new(192, 168, 0, 100);
        assert_eq!(limiter.check(t(100), "phone", eleventh), Err(Limited::Device));
        assert_eq!(limiter.check(t(100), "laptop", eleventh), Ok(()), "other devices are not held back");
        assert_eq!(limiter.check(t(60_000), "phone", Ipv4Addr::new(192, 168, 0, 101)), Ok(()), "the window slid");
    }

    #[test]
    fn the_per_device_limit_is_configurable() {
        let mut limiter = WakeLimiter::new(2);
        let host = |last| Ipv4Addr::new(192, 168, 0, last);
        assert_eq!(limiter.check(t(0), "phone", host(1)), Ok(()));
        assert_eq!(limiter.check(t(1), "phone", host(2)), Ok(()));
        assert_eq!(limiter.check(t(2), "phone", host(3)), Err(Limited::Device));
        assert_eq!(WakeLimiter::new(0).check(t(0), "phone", host(1)), Ok(()), "never below one");
    }
}
