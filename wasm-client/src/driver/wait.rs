//! Waiting for the tunnel: a future that re-checks a condition after every pump.
//!
//! Operations (connect, TCP reads, pings, lookups) do not get callbacks of their own; they
//! register their waker with the link and look again each time the pump has run. With a
//! handful of operations open at once this is cheaper and simpler than routing each event.

use super::link::Link;
use crate::web::clock;
use crate::web::timer::Timer;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;
use std::cell::RefCell;
use std::rc::Rc;

/// Resolves with `check`'s first `Some`, or `None` once `timeout` has passed.
pub fn until<T, F>(link: &Rc<RefCell<Link>>, timeout: Option<Duration>, check: F) -> Until<F>
where
    F: FnMut(&mut Link) -> Option<T> + Unpin,
{
    Until { link: link.clone(), check, deadline: timeout.map(|t| clock::now() + t), timer: None }
}

/// See [`until`].
pub struct Until<F> {
    link: Rc<RefCell<Link>>,
    check: F,
    deadline: Option<hometun_shared::time::Instant>,
    timer: Option<Timer>,
}

impl<T, F> Future for Until<F>
where
    F: FnMut(&mut Link) -> Option<T> + Unpin,
{
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        let mut link = this.link.borrow_mut();
        if let Some(value) = (this.check)(&mut link) {
            return Poll::Ready(Some(value));
        }
        if let Some(deadline) = this.deadline {
            let now = clock::now();
            if now >= deadline {
                return Poll::Ready(None);
            }
            if this.timer.as_ref().is_none_or(Timer::has_fired) {
                let waker = cx.waker().clone();
                this.timer = Some(Timer::once(deadline.saturating_duration_since(now), move || waker.wake()));
            }
        }
        link.add_waiter(cx.waker());
        Poll::Pending
    }
}
