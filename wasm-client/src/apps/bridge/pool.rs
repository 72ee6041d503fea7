//! Keep-alive connections per target, over the tunnel's TCP: at most six per `host:port`, idle
//! ones reused (most recent first) and closed after 30 s. One pool per page, shared by every
//! port bound to the same target.
//!
//! [`lease`] reuses an idle connection first; [`lease_new`] (a request whose body cannot be
//! sent twice) always opens one. A [`Lease`] is a connection lent to one exchange; giving it
//! back with [`Lease::give_back`] makes it reusable, dropping it closes the connection and frees
//! its slot. The rules live in `slots`; this file adds the streams, the waiting and the timer.

use hometun_shared::app_name::AppTarget;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use super::slots::{Checkout, Slots};
use super::stream::LanStream;
use crate::error::ClientError;
use crate::signal::Signal;
use crate::web::clock;
use crate::web::timer::Timer;
use hometun_shared::time::Instant;

/// One open HTTP/1.1 connection: the stream and bytes read past the last response.
pub struct Connection {
    /// The tunnel TCP stream.
    pub stream: Rc<LanStream>,
    /// Bytes received and not yet used.
    pub buffer: Vec<u8>,
}

#[derive(Default)]
struct Target {
    slots: Slots<Connection>,
    signal: Rc<Signal>,
    opened: u64,
    sweep: Option<Timer>,
}

thread_local! {
    static POOL: RefCell<HashMap<AppTarget, Target>> = RefCell::new(HashMap::new());
}

/// A connection lent to one exchange.
pub struct Lease {
    target: AppTarget,
    connection: Option<Connection>,
    /// Whether it carried an earlier exchange (a failure before any response byte may then be
    /// the server's idle close, and is retried once on a new connection).
    pub reused: bool,
}

impl Lease {
    /// The connection.
    pub fn connection(&mut self) -> &mut Connection {
        self.connection.as_mut().expect("a lease holds its connection until given back or dropped")
    }

    /// The exchange ended cleanly with the whole response read: keep the connection for the next.
    pub fn give_back(mut self) {
        let Some(connection) = self.connection.take() else { return };
        with_target(self.target, |t| {
            t.slots.give_back(connection, clock::now());
            t.signal.notify();
        });
        arm_sweep(self.target);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            connection.stream.abort();
            with_target(self.target, |t| {
                t.slots.release();
                t.signal.notify();
            });
        }
    }
}

fn with_target<T>(target: AppTarget, f: impl FnOnce(&mut Target) -> T) -> T {
    POOL.with(|pool| f(pool.borrow_mut().entry(target).or_default()))
}

/// A connection to `target`: an idle one when there is one, else a new one when fewer than six
/// are open, else waits until one is given back or closed.
pub async fn lease(target: AppTarget) -> Result<Lease, ClientError> {
    checkout(target, Slots::checkout).await
}

/// A new connection to `target` (for a request that cannot be sent twice): an idle one is closed
/// when it takes the last slot, else waits like [`lease`].
pub async fn lease_new(target: AppTarget) -> Result<Lease, ClientError> {
    checkout(target, Slots::checkout_new).await
}

type CheckoutRule = fn(&mut Slots<Connection>, Instant, &mut Vec<Connection>) -> Checkout<Connection>;

async fn checkout(target: AppTarget, rule: CheckoutRule) -> Result<Lease, ClientError> {
    let signal = with_target(target, |t| t.signal.clone());
    let mut expired = Vec::new();
    let checkout = signal
        .until(|| match with_target(target, |t| rule(&mut t.slots, clock::now(), &mut expired)) {
            Checkout::Wait => None,
            other => Some(other),
        })
        .await;
    for old in expired {
        old.stream.abort();
    }
    match checkout {
        Checkout::Reuse(connection) => Ok(Lease { target, connection: Some(connection), reused: true }),
        Checkout::Open | Checkout::Wait => open(target).await,
    }
}

/// A new connection in a slot already reserved; the slot is freed when connecting fails.
pub async fn open(target: AppTarget) -> Result<Lease, ClientError> {
    match LanStream::connect(target).await {
        Ok(stream) => {
            with_target(target, |t| t.opened += 1);
            let connection = Connection { stream: Rc::new(stream), buffer: Vec::new() };
            Ok(Lease { target, connection: Some(connection), reused: false })
        }
        Err(e) => {
            with_target(target, |t| {
                t.slots.release();
                t.signal.notify();
            });
            Err(e)
        }
    }
}

/// A new connection for a retry: takes over the slot of the lease that failed.
pub async fn reopen(mut failed: Lease) -> Result<Lease, ClientError> {
    let target = failed.target;
    if let Some(connection) = failed.connection.take() {
        connection.stream.abort();
    }
    open(target).await
}

/// Closes idle connections past their time, and re-arms the sweep for the next.
fn arm_sweep(target: AppTarget) {
    let now = clock::now();
    let (expired, next) = with_target(target, |t| (t.slots.expire(now), t.slots.next_expiry()));
    for old in expired {
        old.stream.abort();
    }
    // From a fresh task: replacing the timer drops the one whose callback would be running.
    let timer = next.map(|at| {
        Timer::once(at.saturating_duration_since(now), move || {
            wasm_bindgen_futures::spawn_local(async move { arm_sweep(target) });
        })
    });
    with_target(target, |t| t.sweep = timer);
}

/// Connections opened to `target` since the page loaded (a reused one counts once).
pub fn opened(target: AppTarget) -> u64 {
    with_target(target, |t| t.opened)
}
