//! The mDNS browser's subscriptions, one per service type, sans IO: the events they received
//! go out, and a subscription the browser ended is started again.
//!
//! mdns-sd ends a subscription when its queue of events is full (a burst of announcements came
//! faster than they were read), and then says nothing more about that type. So a type whose
//! subscription ended is browsed again, at most once per [`RESTART_AFTER`]: each start sends
//! queries on the LAN, and a flood that goes on would end it again at once. Restarts are
//! logged at `warn` at most once per [`WARN_EVERY`], the others at `debug`.

use hometun_shared::time::{Duration, Instant};
use mdns_sd::ServiceEvent;

/// A type is browsed again at the earliest this long after it was last started.
pub const RESTART_AFTER: Duration = Duration::from_secs(30);

/// At most one `warn` line about restarts per this long.
pub const WARN_EVERY: Duration = Duration::from_secs(10 * 60);

/// Most events read from one subscription per [`Subscriptions::drain`] (what mdns-sd queues at
/// most), so that a flood on one type holds up neither the others nor stopping.
pub const MOST_PER_DRAIN: usize = 1000;

/// A subscription's queue of events: mdns-sd's receiver (a plain channel in tests).
pub trait Events {
    /// The next event waiting, `Ok(None)` when there is none, `Err(Ended)` once the browser
    /// ended the subscription and every event it had queued was read.
    fn try_next(&self) -> Result<Option<ServiceEvent>, Ended>;
}

/// The browser ended a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended;

impl Events for mdns_sd::Receiver<ServiceEvent> {
    fn try_next(&self) -> Result<Option<ServiceEvent>, Ended> {
        match self.try_recv() {
            Ok(event) => Ok(Some(event)),
            Err(mdns_sd::TryRecvError::Empty) => Ok(None),
            Err(mdns_sd::TryRecvError::Disconnected) => Err(Ended),
        }
    }
}

/// How a type is browsed: with its domain (`_http._tcp.local.`), giving its queue of events.
pub type Browse<'a, E> = dyn FnMut(&str) -> Result<E, mdns_sd::Error> + 'a;

struct Subscription<E> {
    kind: &'static str,
    /// `None` once it ended (or starting it again failed), until it is started again.
    events: Option<E>,
    started: Instant,
}

/// The subscriptions of the browsed service types.
pub struct Subscriptions<E> {
    subscriptions: Vec<Subscription<E>>,
    /// When the last `warn` line about a restart was logged.
    warned: Option<Instant>,
    /// Restarts logged at `debug` since then.
    unreported: u64,
}

impl<E: Events> Subscriptions<E> {
    /// Browses each of `kinds` (`_http._tcp`, ...) at `now`; fails with the first failure.
    pub fn start(now: Instant, kinds: &[&'static str], browse: &mut Browse<'_, E>) -> Result<Self, mdns_sd::Error> {
        let mut subscriptions = Vec::with_capacity(kinds.len());
        for &kind in kinds {
            subscriptions.push(Subscription { kind, events: Some(browse(&domain(kind))?), started: now });
        }
        Ok(Self { subscriptions, warned: None, unreported: 0 })
    }

    /// Hands the events waiting to `handle` (at most [`MOST_PER_DRAIN`] of each subscription),
    /// and notes the subscriptions that ended.
    pub fn drain(&mut self, handle: &mut dyn FnMut(ServiceEvent)) {
        for subscription in &mut self.subscriptions {
            let Some(events) = &subscription.events else { continue };
            let mut ended = false;
            for _ in 0..MOST_PER_DRAIN {
                match events.try_next() {
                    Ok(Some(event)) => handle(event),
                    Ok(None) => break,
                    Err(Ended) => {
                        ended = true;
                        break;
                    }
                }
            }
            if ended {
                subscription.events = None;
            }
        }
    }

    /// Browses again, with `browse`, each type whose subscription ended and was started at
    /// least [`RESTART_AFTER`] before `now`. Call it only while discovery runs: a browser
    /// that was shut down ends every subscription.
    pub fn restart(&mut self, now: Instant, browse: &mut Browse<'_, E>) {
        for i in 0..self.subscriptions.len() {
            let subscription = &mut self.subscriptions[i];
            if subscription.events.is_some() || now.saturating_duration_since(subscription.started) < RESTART_AFTER {
                continue;
            }
            subscription.started = now;
            let kind = subscription.kind;
            let failed = match browse(&domain(kind)) {
                Ok(events) => {
                    subscription.events = Some(events);
                    None
                }
                Err(e) => Some(e),
            };
            self.report(now, kind, failed);
        }
    }

    /// Logs a restart of `kind`: at `warn` when none was in the last [`WARN_EVERY`], else at
    /// `debug` (a flood that goes on must not fill the log).
    fn report(&mut self, now: Instant, kind: &str, failed: Option<mdns_sd::Error>) {
        let outcome = match failed {
            None => "browsing it again".to_owned(),
            Some(e) => format!("browsing it again failed ({e}); trying again in {} s", RESTART_AFTER.as_secs()),
        };
        let what =
            format!("mDNS browsing of {kind} had stopped (its events came faster than they were read); {outcome}");
        if self.warned.is_some_and(|at| now.saturating_duration_since(at) < WARN_EVERY) {
            self.unreported += 1;
            tracing::debug!("{what}");
        } else {
            let unreported = std::mem::take(&mut self.unreported);
            self.warned = Some(now);
            tracing::warn!(unreported, "{what} (further restarts within 10 minutes are logged at debug)");
        }
    }
}

fn domain(kind: &str) -> String {
    format!("{kind}.local.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    impl Events for mpsc::Receiver<ServiceEvent> {
        fn try_next(&self) -> Result<Option<ServiceEvent>, Ended> {
            match self.try_recv() {
                Ok(event) => Ok(Some(event)),
                Err(mpsc::TryRecvError::Empty) => Ok(None),
                Err(mpsc::TryRecvError::Disconnected) => Err(Ended),
            }
        }
    }

    fn t(secs: u64) -> Instant {
        Instant::from_micros(secs * 1_000_000)
    }

    /// A browser on channels: what was browsed, and the sending side of each subscription
    /// (dropping it is the browser ending the subscription).
    #[derive(Default)]
    struct Browser {
        browsed: Vec<String>,
        senders: Vec<(String, mpsc::Sender<ServiceEvent>)>,
        failing: bool,
    }

    impl Browser {
        fn browse(&mut self, domain: &str) -> Result<mpsc::Receiver<ServiceEvent>, mdns_sd::Error> {
            self.browsed.push(domain.to_owned());
            if self.failing {
                return Err(mdns_sd::Error::Again);
            }
            let (sender, receiver) = mpsc::channel();
            self.senders.retain(|(d, _)| d != domain);
            self.senders.push((domain.to_owned(), sender));
            Ok(receiver)
        }

        /// Announces instance `name` on the subscription for `domain`, if it is open.
        fn found(&self, domain: &str, name: &str) {
            if let Some((_, sender)) = self.senders.iter().find(|(d, _)| d == domain) {
                let _ = sender.send(ServiceEvent::ServiceFound(domain.to_owned(), name.to_owned()));
            }
        }

        /// Ends the subscription for `domain`, as mdns-sd does when its queue is full.
        fn end(&mut self, domain: &str) {
            self.senders.retain(|(d, _)| d != domain);
        }
    }

    /// The instance names of the events waiting.
    fn drained(subscriptions: &mut Subscriptions<mpsc::Receiver<ServiceEvent>>) -> Vec<String> {
        let mut found = Vec::new();
        subscriptions.drain(&mut |event| {
            if let ServiceEvent::ServiceFound(_, name) = event {
                found.push(name);
            }
        });
        found
    }

    #[test]
    fn a_subscription_the_browser_ended_is_browsed_again_at_most_every_30_s() {
        let (http, ssh) = ("_http._tcp.local.", "_ssh._tcp.local.");
        let mut browser = Browser::default();
        let mut subscriptions =
            Subscriptions::start(t(0), &["_http._tcp", "_ssh._tcp"], &mut |d| browser.browse(d)).expect("starts");
        assert_eq!(browser.browsed, [http, ssh]);

        browser.found(http, "nas");
        browser.end(http);
        browser.found(ssh, "pi");
        assert_eq!(drained(&mut subscriptions), ["nas", "pi"], "what came before the end is read");
        subscriptions.restart(t(10), &mut |d| browser.browse(d));
        assert_eq!(browser.browsed.len(), 2, "not within 30 s of its start");

        subscriptions.restart(t(30), &mut |d| browser.browse(d));
        assert_eq!(browser.browsed[2..], [http], "only the one that ended");
        browser.found(http, "nas again");
        assert_eq!(drained(&mut subscriptions), ["nas again"]);
        assert_eq!(subscriptions.unreported, 0, "the first restart is a warning");

        browser.end(http);
        browser.failing = true;
        drained(&mut subscriptions);
        subscriptions.restart(t(59), &mut |d| browser.browse(d));
        assert_eq!(browser.browsed.len(), 3, "a flood that goes on does not start it every round");
        subscriptions.restart(t(60), &mut |d| browser.browse(d));
        assert_eq!(browser.browsed.len(), 4);
        browser.failing = false;
        subscriptions.restart(t(90), &mut |d| browser.browse(d));
        assert_eq!(browser.browsed[4..], [http], "a failed start is tried again");
        browser.found(http, "back");
        assert_eq!(drained(&mut subscriptions), ["back"]);
        assert_eq!(subscriptions.unreported, 2, "further restarts within 10 minutes go to debug");
    }
}
