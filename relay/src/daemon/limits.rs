//! Per-source limits: open connections, connections still in handshakes, and the rate of
//! new connections (a token bucket per source and one for all sources together); open and
//! handshaking connections are also capped over all sources. When every handshake slot is
//! taken, a source holding fewer than the busiest one takes that one's oldest slot (its holder
//! is told through [`HandshakeSlot::evicted`]): a few sources cannot lock out the rest. Open
//! connections are shared likewise: once half of the cap over all sources is taken, no source
//! may open more than an even share of the cap among the sources holding some and one more (a
//! newcomer's), so sources holding many cannot take the last places: a newcomer finds one.
//!
//! A source is an IPv4 address or an IPv6 /64 (one home or host usually holds a whole /64).
//! A source's entry lives as long as it has connections open or its bucket is not yet full
//! again: closing a connection gives nothing back, only time refills the bucket. Idle entries
//! whose bucket is full are swept out at most once a second.

use crate::config::Limits;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// New connections per second over all sources (sustained), unless set otherwise.
pub const GLOBAL_NEW_CONNECTIONS_PER_SEC: u32 = 1000;
/// Burst of new connections over all sources, unless set otherwise.
pub const GLOBAL_NEW_CONNECTIONS_BURST: u32 = 4000;
/// Open connections over all sources, unless set otherwise (well under the unit's
/// `LimitNOFILE=65536`: each takes one descriptor).
pub const GLOBAL_MAX_OPEN: usize = 16_384;
/// Connections in handshakes over all sources, unless set otherwise.
pub const GLOBAL_MAX_UNAUTHENTICATED: usize = 1024;
/// How often idle entries are swept out.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Where connections come from, as far as the limits are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// One IPv4 address (IPv4-mapped IPv6 addresses included).
    V4(std::net::Ipv4Addr),
    /// The /64 network of an IPv6 address.
    V6Net(u64),
}

impl Source {
    /// The source `ip` belongs to.
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self::V4(v4),
            IpAddr::V6(v6) => Self::V6Net((u128::from(v6) >> 64) as u64),
        }
    }
}

/// A token bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl Bucket {
    fn full(burst: f64, now: Instant) -> Self {
        Self { tokens: burst, refilled: now }
    }

    /// Adds what `now` earns at `per_sec`, up to `burst`.
    fn refill(&mut self, now: Instant, per_sec: u32, burst: f64) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * f64::from(per_sec)).min(burst);
        self.refilled = self.refilled.max(now);
    }

    /// Whether the bucket would be full at `now` (nothing to remember about it).
    fn is_full_at(&self, now: Instant, per_sec: u32, burst: f64) -> bool {
        let mut copy = *self;
        copy.refill(now, per_sec, burst);
        copy.tokens >= burst
    }
}

#[derive(Debug)]
struct PerSource {
    open: usize,
    /// Its handshake slots, oldest first: each one's id and the way to evict it.
    handshakes: VecDeque<(u64, oneshot::Sender<()>)>,
    bucket: Bucket,
}

impl PerSource {
    fn new(burst: f64, now: Instant) -> Self {
        Self { open: 0, handshakes: VecDeque::new(), bucket: Bucket::full(burst, now) }
    }
}

#[derive(Debug)]
struct Table {
    sources: HashMap<Source, PerSource>,
    global: Bucket,
    swept: Instant,
    open: usize,
    /// Sources with at least one open connection.
    sources_open: usize,
    unauthenticated: usize,
    next_handshake: u64,
}

/// The rate of new connections, and the caps on open and handshaking connections, over all
/// sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalRate {
    /// Sustained new connections per second.
    pub per_sec: u32,
    /// Burst.
    pub burst: u32,
    /// Open connections.
    pub max_open: usize,
    /// Connections in handshakes.
    pub max_unauthenticated: usize,
}

impl Default for GlobalRate {
    fn default() -> Self {
        Self {
            per_sec: GLOBAL_NEW_CONNECTIONS_PER_SEC,
            burst: GLOBAL_NEW_CONNECTIONS_BURST,
            max_open: GLOBAL_MAX_OPEN,
            max_unauthenticated: GLOBAL_MAX_UNAUTHENTICATED,
        }
    }
}

/// The limiter shared by the listener and the session drivers.
#[derive(Clone)]
pub struct IpLimits {
    inner: Arc<Mutex<Table>>,
    limits: Limits,
    global: GlobalRate,
}

/// Why a connection was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// Too many new connections per second from this source.
    Rate,
    /// Too many new connections per second over all sources.
    GlobalRate,
    /// Too many open connections.
    Open,
    /// Too many connections in handshakes.
    Unauthenticated,
    /// Too many open connections over all sources.
    GlobalOpen,
    /// More than an even share of the open connections over all sources, which are nearly all
    /// taken.
    Share,
    /// Too many connections in handshakes over all sources.
    GlobalUnauthenticated,
}

/// Holds one open-connection slot; released on drop.
pub struct ConnectionSlot {
    limits: IpLimits,
    source: Source,
}

/// Holds one handshake slot; released on drop (or when the session is established), or taken
/// by another source ([`HandshakeSlot::evicted`]).
pub struct HandshakeSlot {
    limits: IpLimits,
    source: Source,
    id: u64,
    evicted: oneshot::Receiver<()>,
}

impl HandshakeSlot {
    /// Completes when another source took this slot (never, otherwise): the handshake should
    /// end, it no longer counts.
    pub async fn evicted(&mut self) {
        if (&mut self.evicted).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl IpLimits {
    /// A limiter with `limits` and the default global rate.
    pub fn new(limits: Limits) -> Self {
        Self::with_global(limits, GlobalRate::default())
    }

    /// A limiter with `limits` and the rate `global` over all sources.
    pub fn with_global(limits: Limits, global: GlobalRate) -> Self {
        let now = Instant::now();
        let table = Table {
            sources: HashMap::new(),
            global: Bucket::full(f64::from(global.burst.max(1)), now),
            swept: now,
            open: 0,
            sources_open: 0,
            unauthenticated: 0,
            next_handshake: 0,
        };
        Self { inner: Arc::new(Mutex::new(table)), limits, global }
    }

    fn burst(&self) -> f64 {
        f64::from(self.limits.new_connections_per_ip_burst.max(1))
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a new connection from `ip` at `now`, or says why not.
    pub fn connect(&self, ip: IpAddr, now: Instant) -> Result<ConnectionSlot, Denied> {
        let (per_sec, burst) = (self.limits.new_connections_per_ip_per_sec, self.burst());
        let (global_per_sec, global_burst) = (self.global.per_sec, f64::from(self.global.burst.max(1)));
        let source = Source::of(ip);
        let mut table = self.lock();
        if now.saturating_duration_since(table.swept) >= SWEEP_EVERY {
            table.swept = now;
            table
                .sources
                .retain(|_, e| e.open > 0 || !e.handshakes.is_empty() || !e.bucket.is_full_at(now, per_sec, burst));
        }
        table.global.refill(now, global_per_sec, global_burst);
        let table = &mut *table;
        if table.open >= self.global.max_open {
            return Err(Denied::GlobalOpen);
        }
        let (crowded, sources_open) = (table.open >= self.global.max_open / 2, table.sources_open);
        let entry = table.sources.entry(source).or_insert_with(|| PerSource::new(burst, now));
        entry.bucket.refill(now, per_sec, burst);
        if entry.open >= self.limits.max_connections_per_ip {
            return Err(Denied::Open);
        }
        if crowded && entry.open >= self.global.max_open / (sources_open + 1) {
            return Err(Denied::Share);
        }
        if entry.bucket.tokens < 1.0 {
            return Err(Denied::Rate);
        }
        if table.global.tokens < 1.0 {
            return Err(Denied::GlobalRate);
        }
        entry.bucket.tokens -= 1.0;
        entry.open += 1;
        table.sources_open += usize::from(entry.open == 1);
        table.global.tokens -= 1.0;
        table.open += 1;
        Ok(ConnectionSlot { limits: self.clone(), source })
    }

    /// Takes a handshake slot for `ip`. When all are taken, takes the oldest of the source
    /// holding the most instead, if that is more than `ip`'s source holds.
    pub fn handshake(&self, ip: IpAddr) -> Result<HandshakeSlot, Denied> {
        let burst = self.burst();
        let source = Source::of(ip);
        let mut table = self.lock();
        let table = &mut *table;
        let held = table.sources.get(&source).map_or(0, |e| e.handshakes.len());
        if held >= self.limits.max_unauthenticated_per_ip {
            return Err(Denied::Unauthenticated);
        }
        if table.unauthenticated >= self.global.max_unauthenticated {
            let busiest = table.sources.values_mut().max_by_key(|e| e.handshakes.len());
            let Some(busiest) = busiest.filter(|e| e.handshakes.len() > held) else {
                return Err(Denied::GlobalUnauthenticated);
            };
            if let Some((_, evict)) = busiest.handshakes.pop_front() {
                let _ = evict.send(());
            }
            table.unauthenticated -= 1;
        }
        let id = table.next_handshake;
        table.next_handshake += 1;
        let (evict, evicted) = oneshot::channel();
        let entry = table.sources.entry(source).or_insert_with(|| PerSource::new(burst, Instant::now()));
        entry.handshakes.push_back((id, evict));
        table.unauthenticated += 1;
        Ok(HandshakeSlot { limits: self.clone(), source, id, evicted })
    }

    /// Connections currently in handshakes, over all sources.
    pub fn handshakes(&self) -> u64 {
        self.lock().sources.values().map(|e| e.handshakes.len() as u64).sum()
    }

    /// Sources currently remembered (with connections open or a bucket not yet full).
    pub fn sources(&self) -> usize {
        self.lock().sources.len()
    }

    fn release(&self, source: Source, open: usize) {
        // The entry stays, even when idle: its bucket refills by time only, and the next
        // sweep forgets it once it is full.
        let mut table = self.lock();
        let Some(entry) = table.sources.get_mut(&source) else { return };
        let open = open.min(entry.open);
        entry.open -= open;
        let emptied = open > 0 && entry.open == 0;
        table.sources_open -= usize::from(emptied);
        table.open = table.open.saturating_sub(open);
    }

    fn release_handshake(&self, source: Source, id: u64) {
        let mut table = self.lock();
        let Some(entry) = table.sources.get_mut(&source) else { return };
        // An evicted slot was given back when it was taken.
        let Some(at) = entry.handshakes.iter().position(|(held, _)| *held == id) else { return };
        entry.handshakes.remove(at);
        table.unauthenticated = table.unauthenticated.saturating_sub(1);
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.limits.release(self.source, 1);
    }
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        self.limits.release_handshake(self.source, self.id);
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

    /// One step of [`rate_limit_table`]: at `at_ms` on the virtual clock, a connection from
    /// `source` is admitted (`Ok`) or denied; admitted connections close at once unless `hold`.
    struct Step {
        at_ms: u64,
        source: &'static str,
        hold: bool,
        want: Result<(), Denied>,
    }

    const fn step(at_ms: u64, source: &'static str, hold: bool, want: Result<(), Denied>) -> Step {
        Step { at_ms, source, hold, want }
    }

    #[test]
    fn rate_limit_table() {
        // 1 new connection per second per source, burst 2, 3 open per source.
        const OK: Result<(), Denied> = Ok(());
        const RATE: Result<(), Denied> = Err(Denied::Rate);
        let steps = [
            // One connection at a time does not refill the bucket: closing is not time.
            step(0, "192.0.2.1", false, OK),
            step(0, "192.0.2.1", false, OK),
            step(0, "192.0.2.1", false, RATE),
            step(500, "192.0.2.1", false, RATE),
            step(1000, "192.0.2.1", false, OK),
            step(1000, "192.0.2.1", false, RATE),
            // A partly drained bucket is remembered while other sources come and go.
            step(1100, "192.0.2.2", false, OK),
            step(1200, "192.0.2.1", false, RATE),
            // Time refills it: two seconds later the burst is back.
            step(3000, "192.0.2.1", false, OK),
            step(3000, "192.0.2.1", false, OK),
            step(3000, "192.0.2.1", false, RATE),
            // An IPv4 address seen as IPv4-mapped IPv6 is the same source.
            step(3000, "::ffff:192.0.2.1", false, RATE),
            // IPv6 sources share a bucket per /64.
            step(4000, "2001:db8:0:1::1", false, OK),
            step(4000, "2001:db8:0:1::ffff", false, OK),
            step(4000, "2001:db8:0:1:8000::2", false, RATE),
            step(4000, "2001:db8:0:2::1", false, OK),
            // The open limit is per source too, /64 for IPv6.
            step(10_000, "2001:db8:0:1::1", true, OK),
            step(10_000, "2001:db8:0:1::2", true, OK),
            step(12_000, "2001:db8:0:1::3", true, OK),
            step(20_000, "2001:db8:0:1::4", true, Err(Denied::Open)),
        ];
        let l = limits();
        let t0 = Instant::now();
        let mut held = Vec::new();
        for (i, s) in steps.iter().enumerate() {
            let got = l.connect(s.source.parse().unwrap(), t0 + Duration::from_millis(s.at_ms));
            assert_eq!(got.as_ref().map(|_| ()).map_err(|e| *e), s.want, "step {i}: {} at {} ms", s.source, s.at_ms);
            if s.hold {
                held.extend(got.ok());
            }
        }
    }

    #[test]
    fn a_global_rate_covers_all_sources_and_denying_it_costs_a_source_nothing() {
        let l = IpLimits::with_global(
            Limits { new_connections_per_ip_per_sec: 1, new_connections_per_ip_burst: 2, ..Limits::default() },
            GlobalRate { per_sec: 2, burst: 3, ..GlobalRate::default() },
        );
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let ip = |last: u8| IpAddr::from([198, 51, 100, last]);
        let steps: [(u64, u8, Result<(), Denied>); 7] = [
            (0, 1, Ok(())),
            (0, 2, Ok(())),
            (0, 3, Ok(())),
            (0, 4, Err(Denied::GlobalRate)),
            (0, 5, Err(Denied::GlobalRate)),
            (500, 4, Ok(())),
            (500, 4, Err(Denied::GlobalRate)),
        ];
        for (i, (ms, last, want)) in steps.into_iter().enumerate() {
            assert_eq!(l.connect(ip(last), at(ms)).map(|_| ()), want, "step {i}");
        }
        // Source 4 was refused twice by the global rate but kept its own burst.
        assert!(l.connect(ip(4), at(1000)).is_ok());
    }

    #[test]
    fn global_caps_on_open_and_handshaking_connections_cover_all_sources() {
        let l = IpLimits::with_global(
            Limits::default(),
            GlobalRate { max_open: 2, max_unauthenticated: 1, ..GlobalRate::default() },
        );
        let (a, b, c): (IpAddr, IpAddr, IpAddr) =
            ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap(), "2001:db8::1".parse().unwrap());
        let now = Instant::now();
        let first = l.connect(a, now).unwrap();
        let _second = l.connect(b, now).unwrap();
        assert_eq!(l.connect(c, now).err(), Some(Denied::GlobalOpen));
        drop(first);
        let _third = l.connect(c, now).unwrap();

        let shaking = l.handshake(a).unwrap();
        assert_eq!(l.handshake(a).err(), Some(Denied::GlobalUnauthenticated), "no source holds more than a");
        drop(shaking);
        let _shaking = l.handshake(b).unwrap();
    }

    #[test]
    fn near_the_open_cap_no_source_takes_more_than_an_even_share_so_a_newcomer_finds_a_place() {
        let l = IpLimits::with_global(Limits::default(), GlobalRate { max_open: 8, ..GlobalRate::default() });
        let [busy, other, newcomer]: [IpAddr; 3] =
            ["192.0.2.1", "192.0.2.2", "2001:db8::1"].map(|a| a.parse().unwrap());
        let now = Instant::now();
        let mut held = Vec::new();
        let mut take = |ip: IpAddr| l.connect(ip, now).map(|slot| held.push(slot));
        for _ in 0..4 {
            take(busy).expect("below half of the cap, a source's own limit applies");
        }
        assert_eq!(take(busy), Err(Denied::Share), "half of 8 with one other source to come");
        take(other).unwrap();
        take(other).unwrap();
        assert_eq!(take(other), Err(Denied::Share), "8 / 3");
        take(newcomer).expect("a newcomer finds a place");
        take(newcomer).unwrap();
        assert_eq!(take(busy), Err(Denied::GlobalOpen));
        drop(held);
        assert_eq!(l.lock().sources_open, 0, "every source gave its places back");
    }

    fn was_evicted(slot: &mut HandshakeSlot) -> bool {
        slot.evicted.try_recv().is_ok()
    }

    #[test]
    fn when_all_handshake_slots_are_taken_a_source_holding_fewer_takes_the_busiest_ones_oldest() {
        let l =
            IpLimits::with_global(Limits::default(), GlobalRate { max_unauthenticated: 3, ..GlobalRate::default() });
        let [busy, other, newcomer]: [IpAddr; 3] =
            ["192.0.2.1", "192.0.2.2", "2001:db8::1"].map(|a| a.parse().unwrap());
        let mut oldest = l.handshake(busy).unwrap();
        let mut next = l.handshake(busy).unwrap();
        let mut others = l.handshake(other).unwrap();
        let mut fresh = l.handshake(newcomer).expect("a source with none takes one");
        assert!(was_evicted(&mut oldest), "the busiest source's oldest slot went");
        assert!(!was_evicted(&mut next) && !was_evicted(&mut others) && !was_evicted(&mut fresh));
        assert_eq!(l.handshakes(), 3);
        assert_eq!(l.handshake(other).err(), Some(Denied::GlobalUnauthenticated), "1 each: nobody holds more");
        drop(oldest);
        assert_eq!(l.handshakes(), 3, "an evicted slot was given back when it was taken");
        drop(next);
        assert_eq!(l.handshakes(), 2);
        assert!(l.handshake(busy).is_ok(), "a free slot is taken as before");
    }

    #[test]
    fn idle_sources_are_forgotten_once_their_bucket_is_full_again() {
        let l = limits(); // 1 per second, burst 2
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let drained: IpAddr = "192.0.2.1".parse().unwrap();
        let held: IpAddr = "192.0.2.2".parse().unwrap();
        let passer: IpAddr = "192.0.2.3".parse().unwrap();
        drop(l.connect(drained, at(0)));
        drop(l.connect(drained, at(0)));
        let _open = l.connect(held, at(0)).unwrap();
        assert_eq!(l.sources(), 2);
        drop(l.connect(passer, at(1)));
        assert_eq!(l.sources(), 3, "a drained idle source is remembered until refilled");
        drop(l.connect(passer, at(3)));
        // At 3 s the drained source is full again and goes; the held one stays; the passer
        // comes back.
        assert_eq!(l.sources(), 2, "refilled sources go at the next sweep, the held one stays");
        drop(l.connect(held, at(10)));
        assert_eq!(l.sources(), 1, "only the source with an open connection is left");
    }
}
