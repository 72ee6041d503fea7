//! Whether the far end of an app port is still there. A port's holder (the app's service
//! worker, a page's WebSocket or upload) can go away without the port saying so: Firefox and
//! Safari fire no `close` on a port whose worker was stopped or whose page was frozen, and a
//! page stuck in a loop never answers at all. Its requests and sockets would then hold their LAN
//! connections for as long as the launcher runs (an app has six).
//!
//! So a port with a request or socket open that has heard nothing for [`ASK_AFTER`] is asked
//! (`ping`); one that has not answered within [`ANSWER_WITHIN`] is gone. Any message counts as an
//! answer. The wait is a minute, not seconds: a page that shows `alert()` or runs a long script
//! answers nothing meanwhile, and its sockets should outlast that; what matters is that a gone
//! holder's connections are not held for good. A message is dated by the check that finds it
//! (up to [`CHECK_EVERY`] late), so the message path never reads the clock. Checks may come late
//! (a hidden launcher tab's timers are throttled to one a minute): an answer that came after the
//! question counts, however late the check that looks at it.
//!
//! Pure bookkeeping; `port` runs the checks and closes what is gone.

use std::time::Duration;

use hometun_shared::time::Instant;

/// Silence after which a busy port is asked whether its far end is there.
pub const ASK_AFTER: Duration = Duration::from_secs(20);
/// How long the far end has to answer.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(60);
/// How often ports are checked.
pub const CHECK_EVERY: Duration = Duration::from_secs(5);

/// What a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to do.
    Fine,
    /// Ask the far end now (`ping`).
    Ask,
    /// The far end did not answer: close the port.
    Gone,
}

/// When a port last heard from its far end, and whether it asked since.
#[derive(Debug, Clone, Copy)]
pub struct Liveness {
    heard: Instant,
    asked: Option<Instant>,
}

impl Liveness {
    /// A port opened at `now`.
    pub fn new(now: Instant) -> Self {
        Self { heard: now, asked: None }
    }

    /// A message came in by `now` (the checks say so for the messages since the last one).
    pub fn heard(&mut self, now: Instant) {
        self.heard = now;
    }

    /// A check at `now`; `busy` says whether the port has a request or socket open (an idle
    /// port holds no LAN connection and is never asked).
    pub fn check(&mut self, now: Instant, busy: bool) -> Verdict {
        if let Some(asked) = self.asked {
            if self.heard >= asked {
                self.asked = None;
            } else if now.saturating_duration_since(asked) >= ANSWER_WITHIN {
                return if busy { Verdict::Gone } else { Verdict::Fine };
            } else {
                return Verdict::Fine;
            }
        }
        if busy && now.saturating_duration_since(self.heard) >= ASK_AFTER {
            self.asked = Some(now);
            return Verdict::Ask;
        }
        Verdict::Fine
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> Instant {
        Instant::from_micros(seconds * 1_000_000)
    }

    #[test]
    fn a_busy_port_that_stays_silent_is_asked_then_given_up() {
        let mut port = Liveness::new(at(0));
        assert_eq!(port.check(at(19), true), Verdict::Fine);
        assert_eq!(port.check(at(20), true), Verdict::Ask);
        assert_eq!(port.check(at(25), true), Verdict::Fine);
        assert_eq!(port.check(at(79), true), Verdict::Fine);
        assert_eq!(port.check(at(80), true), Verdict::Gone);
    }

    #[test]
    fn an_answer_keeps_the_port_and_the_silence_counts_from_it() {
        let mut port = Liveness::new(at(0));
        assert_eq!(port.check(at(20), true), Verdict::Ask);
        port.heard(at(21));
        assert_eq!(port.check(at(40), true), Verdict::Fine);
        assert_eq!(port.check(at(41), true), Verdict::Ask);
    }

    #[test]
    fn a_late_check_after_a_prompt_answer_keeps_the_port() {
        // A throttled launcher: the checks come a minute apart, the answer right after the ask.
        let mut port = Liveness::new(at(0));
        assert_eq!(port.check(at(60), true), Verdict::Ask);
        port.heard(at(60));
        assert_eq!(port.check(at(120), true), Verdict::Ask);
        port.heard(at(121));
        assert_eq!(port.check(at(180), true), Verdict::Ask);
    }

    #[test]
    fn a_port_that_is_talking_is_never_asked() {
        let mut port = Liveness::new(at(0));
        for second in 1..100 {
            port.heard(at(second));
            assert_eq!(port.check(at(second), true), Verdict::Fine);
        }
    }

    #[test]
    fn an_idle_port_is_never_asked_nor_given_up() {
        let mut port = Liveness::new(at(0));
        assert_eq!(port.check(at(3600), false), Verdict::Fine);
        // Asked while busy; its last request ended before the answer was due.
        assert_eq!(port.check(at(3620), true), Verdict::Ask);
        assert_eq!(port.check(at(3700), false), Verdict::Fine);
        assert_eq!(port.check(at(3800), false), Verdict::Fine);
    }
}
