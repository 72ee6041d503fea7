//! The keep-alive bookkeeping of one target: idle connections with the time they went idle,
//! and how many are lent out. Pure and generic over the connection, so the rules are tested
//! natively; `pool` wraps it around real tunnel TCP streams.
//!
//! Rules: at most [`MAX_PER_TARGET`] connections (idle + lent) per target; the most recently
//! used idle one is reused first; one idle for [`IDLE_TIMEOUT`] is closed. A request that cannot
//! be sent twice (a streamed body) asks for a new connection: when every slot is taken, the
//! oldest idle connection is closed to make room.

use hometun_shared::time::{Duration, Instant};

/// Most connections to one target, as browsers allow per host.
pub const MAX_PER_TARGET: usize = 6;
/// How long an idle connection is kept.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// What the caller may do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Checkout<C> {
    /// Reuse this idle connection.
    Reuse(C),
    /// Open a new connection (a slot is reserved for it).
    Open,
    /// Every slot is lent out: wait until one comes back.
    Wait,
}

/// Idle and lent connections of one target.
#[derive(Debug)]
pub struct Slots<C> {
    idle: Vec<(C, Instant)>,
    lent: usize,
}

impl<C> Default for Slots<C> {
    fn default() -> Self {
        Self { idle: Vec::new(), lent: 0 }
    }
}

impl<C> Slots<C> {
    /// Takes a connection or a slot. Expired idle connections are returned in `expired` for the
    /// caller to close.
    pub fn checkout(&mut self, now: Instant, expired: &mut Vec<C>) -> Checkout<C> {
        expired.extend(self.expire(now));
        if let Some((connection, _)) = self.idle.pop() {
            self.lent += 1;
            return Checkout::Reuse(connection);
        }
        if self.lent < MAX_PER_TARGET {
            self.lent += 1;
            return Checkout::Open;
        }
        Checkout::Wait
    }

    /// Takes a slot for a new connection, never an idle one (the server may have closed that
    /// while idle, and a request that cannot be sent again must not find out). When the slots
    /// are full of idle and lent connections, the oldest idle one goes into `expired` (with the
    /// expired ones) for the caller to close.
    pub fn checkout_new(&mut self, now: Instant, expired: &mut Vec<C>) -> Checkout<C> {
        expired.extend(self.expire(now));
        if self.lent + self.idle.len() >= MAX_PER_TARGET && !self.idle.is_empty() {
            let oldest = (0..self.idle.len()).min_by_key(|&i| self.idle[i].1).unwrap_or(0);
            expired.push(self.idle.remove(oldest).0);
        }
        if self.lent + self.idle.len() < MAX_PER_TARGET {
            self.lent += 1;
            return Checkout::Open;
        }
        Checkout::Wait
    }

    /// A lent connection comes back, fully read and reusable.
    pub fn give_back(&mut self, connection: C, now: Instant) {
        self.lent = self.lent.saturating_sub(1);
        self.idle.push((connection, now));
    }

    /// A lent slot is freed without a connection to keep (closed, failed, or never opened).
    pub fn release(&mut self) {
        self.lent = self.lent.saturating_sub(1);
    }

    /// Removes and returns the connections idle for [`IDLE_TIMEOUT`] or longer.
    pub fn expire(&mut self, now: Instant) -> Vec<C> {
        let (old, fresh): (Vec<_>, Vec<_>) =
            self.idle.drain(..).partition(|(_, since)| now.saturating_duration_since(*since) >= IDLE_TIMEOUT);
        self.idle = fresh;
        old.into_iter().map(|(c, _)| c).collect()
    }

    /// When the oldest idle connection expires, if any is idle.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.idle.iter().map(|(_, since)| *since + IDLE_TIMEOUT).min()
    }

    /// Connections lent out now.
    pub fn lent(&self) -> usize {
        self.lent
    }

    /// Connections idle now.
    pub fn idle(&self) -> usize {
        self.idle.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> Instant {
        Instant::from_millis(secs * 1000)
    }

    #[test]
    fn a_returned_connection_is_reused_before_a_new_one_is_opened() {
        let mut slots = Slots::default();
        let mut expired = Vec::new();
        assert_eq!(slots.checkout(at(0), &mut expired), Checkout::Open);
        slots.give_back("first", at(1));
        assert_eq!(slots.checkout(at(2), &mut expired), Checkout::Reuse("first"));
        assert_eq!(slots.checkout(at(2), &mut expired), Checkout::Open, "the first is lent out again");
        assert!(expired.is_empty());
    }

    #[test]
    fn the_seventh_request_waits_until_one_of_six_comes_back() {
        let mut slots: Slots<u32> = Slots::default();
        let mut expired = Vec::new();
        for _ in 0..MAX_PER_TARGET {
            assert_eq!(slots.checkout(at(0), &mut expired), Checkout::Open);
        }
        assert_eq!(slots.checkout(at(0), &mut expired), Checkout::Wait);
        slots.release();
        assert_eq!(slots.checkout(at(0), &mut expired), Checkout::Open);
        slots.give_back(9, at(1));
        assert_eq!(slots.checkout(at(1), &mut expired), Checkout::Reuse(9));
        assert_eq!(slots.lent(), MAX_PER_TARGET);
    }

    #[test]
    fn a_request_that_cannot_be_sent_twice_gets_a_new_connection_within_the_six() {
        let mut slots = Slots::default();
        let mut expired = Vec::new();
        assert_eq!(slots.checkout(at(0), &mut expired), Checkout::Open);
        slots.give_back("idle", at(1));
        assert_eq!(slots.checkout_new(at(2), &mut expired), Checkout::Open, "the idle one is not used");
        assert_eq!((slots.lent(), slots.idle()), (1, 1));
        for _ in 0..4 {
            assert_eq!(slots.checkout_new(at(2), &mut expired), Checkout::Open);
        }
        assert!(expired.is_empty());
        assert_eq!(slots.checkout_new(at(3), &mut expired), Checkout::Open, "the idle one makes room");
        assert_eq!(expired, vec!["idle"]);
        assert_eq!((slots.lent(), slots.idle()), (MAX_PER_TARGET, 0));
        assert_eq!(slots.checkout_new(at(3), &mut expired), Checkout::Wait);
    }

    #[test]
    fn a_connection_idle_for_thirty_seconds_is_closed_not_reused() {
        let mut slots = Slots::default();
        let mut expired = Vec::new();
        assert_eq!(slots.checkout(at(0), &mut expired), Checkout::Open);
        assert_eq!(slots.checkout(at(0), &mut expired), Checkout::Open);
        slots.give_back("old", at(10));
        slots.give_back("new", at(25));
        assert_eq!(slots.next_expiry(), Some(at(40)));
        assert_eq!(slots.expire(at(39)), Vec::<&str>::new());
        assert_eq!(slots.checkout(at(40), &mut expired), Checkout::Reuse("new"));
        assert_eq!(expired, vec!["old"]);
        assert_eq!(slots.idle(), 0);
    }
}
