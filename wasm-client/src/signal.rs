//! Waking tasks that wait on state of the page's own (a credit came back, a pooled connection
//! was returned, a WebSocket message arrived, a TLS stream's write turn is free): a list of
//! wakers and a future that re-checks a condition each time it is woken.

use core::future::poll_fn;
use core::task::{Poll, Waker};
use std::cell::RefCell;

/// Wakers of the tasks waiting on one piece of state.
#[derive(Default)]
pub struct Signal {
    wakers: RefCell<Vec<Waker>>,
}

impl Signal {
    /// Wakes every waiting task; each re-checks its condition.
    pub fn notify(&self) {
        for waker in self.wakers.take() {
            waker.wake();
        }
    }

    /// Resolves with `check`'s first `Some`, checked now and after every [`Self::notify`].
    pub async fn until<T>(&self, mut check: impl FnMut() -> Option<T>) -> T {
        poll_fn(|cx| match check() {
            Some(value) => Poll::Ready(value),
            None => {
                let mut wakers = self.wakers.borrow_mut();
                if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                    wakers.push(cx.waker().clone());
                }
                Poll::Pending
            }
        })
        .await
    }
}
