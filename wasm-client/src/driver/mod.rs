//! The driver: one [`Link`] behind `Rc<RefCell<..>>`, the pump that drives it, and the
//! connect / enrol / disconnect flows.
//!
//! The pump runs from a microtask after anything happened (a WebSocket event, an API call)
//! and from a timer at the connection's next deadline. Each run hands every queued socket
//! event to the core's `Connection`, sends what it has to send, and wakes the operations
//! waiting on the link.

pub mod errors;
pub mod link;
pub mod wait;

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use hometun_shared::control::ClientConfig;
use hometun_shared::invite::Invite;
use hometun_shared::keys::SecretKey;
use hometun_shared::time::{Duration, Instant};
use rand_core::OsRng;
use wasm_bindgen::JsValue;

use crate::error::ClientError;
use crate::profile::Profile;
use crate::web::socket::Socket;
use crate::web::timer::Timer;
use crate::web::{clock, page_host, store};
use link::{Link, Phase};

/// IndexedDB key of the device profile.
const PROFILE_KEY: &str = "profile";
/// IndexedDB key of the device an enrolment replaced (kept so it can be restored).
const PREVIOUS_PROFILE_KEY: &str = "profile.previous";
/// Writes of an enrolment's new device tried before giving up, and the pause between two.
const SAVE_ATTEMPTS: u32 = 3;
const SAVE_RETRY_AFTER: Duration = Duration::from_millis(500);
/// Pumps that may run back to back from microtasks before yielding to the event loop.
const MAX_IMMEDIATE_RUNS: u32 = 4;
/// Rounds of microtasks a pump that took records in lets pass before it sends what they call
/// for.
const HOLD_ROUNDS: u32 = 2;

/// A handle to the tunnel; clones share it.
#[derive(Clone, Default)]
pub struct Tunnel {
    link: Rc<RefCell<Link>>,
}

impl Tunnel {
    /// The shared state, for operations that wait on it.
    pub fn link(&self) -> &Rc<RefCell<Link>> {
        &self.link
    }

    /// Queues a pump (once, however often it is called before it runs).
    pub fn kick(&self) {
        kick(&self.link);
    }

    /// Loads the device profile from IndexedDB unless already loaded. `Ok(false)` when none.
    pub async fn load_profile(&self) -> Result<bool, ClientError> {
        if self.link.borrow().profile.is_some() {
            return Ok(true);
        }
        let Some(text) = store::get(PROFILE_KEY).await? else { return Ok(false) };
        let profile = Profile::from_text(&text).map_err(|e| ClientError::Storage(e.to_string()))?;
        self.link.borrow_mut().profile.get_or_insert(profile);
        Ok(true)
    }

    /// Enrols this browser with `invite` (a link, a fragment or a code): a fresh device key is
    /// made, presented with the invite, and stored once the relay has accepted it. The tunnel
    /// stays up afterwards. On failure the previous device, if any, stays; on success it is
    /// kept as the previous device ([`Self::restore_previous`]).
    pub async fn enroll(&self, invite: &str) -> Result<ClientConfig, ClientError> {
        let invite = Invite::parse(invite)?;
        let _ = self.load_profile().await;
        let previous = {
            let mut link = self.link.borrow_mut();
            link.stop(clock::now());
            let profile = Profile {
                secret: SecretKey::generate(&mut OsRng),
                relay_key: invite.relay_key,
                relay_url: invite.url.clone(),
            };
            link.enrol = Some(invite);
            link.saving = true;
            link.profile.replace(profile)
        };
        match self.bring_up().await {
            Ok(config) => {
                let saved = self.save_enrolled(previous.as_ref()).await;
                self.link.borrow_mut().saving = false;
                self.kick();
                saved.map(|()| config)
            }
            Err(e) => {
                let mut link = self.link.borrow_mut();
                link.enrol = None;
                link.saving = false;
                link.profile = previous;
                Err(e)
            }
        }
    }

    /// Writes the device an enrolment made (and the one it replaced) to the browser's storage,
    /// trying again after a failure. When every attempt failed the tunnel stays up on the device
    /// in memory, and the error says how to keep it: the relay already holds it and the invite
    /// is used.
    async fn save_enrolled(&self, previous: Option<&Profile>) -> Result<(), ClientError> {
        let text = self.link.borrow().profile.as_ref().map(Profile::to_text).unwrap_or_default();
        let mut attempt = 1;
        loop {
            let written = match previous {
                Some(previous) => store::put(PREVIOUS_PROFILE_KEY, &previous.to_text()).await,
                None => Ok(()),
            };
            let written = match written {
                Ok(()) => store::put(PROFILE_KEY, &text).await,
                failed => failed,
            };
            match written {
                Ok(()) => return Ok(()),
                Err(e) if attempt >= SAVE_ATTEMPTS => return Err(ClientError::DeviceNotSaved(e.to_string())),
                Err(_) => {
                    attempt += 1;
                    crate::web::timer::sleep(SAVE_RETRY_AFTER).await;
                }
            }
        }
    }

    /// Connects with the stored device; resolves once the relay has pushed the configuration.
    /// While connected, a drop reconnects by itself (same key, so the same address).
    pub async fn connect(&self) -> Result<ClientConfig, ClientError> {
        if !self.load_profile().await? {
            return Err(ClientError::NotEnrolled);
        }
        self.bring_up().await
    }

    async fn bring_up(&self) -> Result<ClientConfig, ClientError> {
        {
            let mut link = self.link.borrow_mut();
            if let (true, Some(config)) = (link.is_up(), &link.config) {
                return Ok(config.clone());
            }
            let now = clock::now();
            link.want_up = true;
            link.error = None;
            if !link.watching_page {
                link.watching_page = true;
                let weak = Rc::downgrade(&self.link);
                crate::web::lifecycle::on_comeback(move || {
                    if let Some(link) = weak.upgrade() {
                        recheck(&link);
                    }
                });
            }
            match link.phase {
                Phase::Idle => {
                    link.was_up = false;
                    link.begin_attempt(now)?;
                    drop(link);
                    open_socket(&self.link);
                }
                Phase::Waiting => link.retry_at = Some(now),
                _ => {}
            }
        }
        self.kick();
        let outcome = wait::until(&self.link, None, |link| match (&link.phase, &link.config, &link.error) {
            (Phase::Up, Some(config), _) => Some(Ok(config.clone())),
            (Phase::Idle, _, Some(error)) => Some(Err(error.clone())),
            (Phase::Idle, _, None) => Some(Err(ClientError::NotConnected)),
            _ => None,
        });
        outcome.await.unwrap_or(Err(ClientError::NotConnected))
    }

    /// Closes the tunnel (a close frame tells the relay) and stops reconnecting.
    pub fn disconnect(&self) {
        let mut link = self.link.borrow_mut();
        link.stop(clock::now());
        link.error = None;
        link.wake_all();
    }

    /// Disconnects and deletes the stored device keys (the previous one too). The browser must
    /// be enrolled again.
    pub async fn forget(&self) -> Result<(), ClientError> {
        self.disconnect();
        self.link.borrow_mut().profile = None;
        store::delete(PREVIOUS_PROFILE_KEY).await?;
        store::delete(PROFILE_KEY).await
    }

    /// Whether an enrolment replaced a device that can be restored.
    pub async fn has_previous(&self) -> Result<bool, ClientError> {
        Ok(store::get(PREVIOUS_PROFILE_KEY).await?.is_some())
    }

    /// Swaps the current device with the one the last enrolment replaced (disconnected; connect
    /// afterwards). The current one becomes the previous one, so nothing is lost either way.
    pub async fn restore_previous(&self) -> Result<(), ClientError> {
        let Some(text) = store::get(PREVIOUS_PROFILE_KEY).await? else { return Err(ClientError::NotEnrolled) };
        let profile = Profile::from_text(&text).map_err(|e| ClientError::Storage(e.to_string()))?;
        self.load_profile().await?;
        self.disconnect();
        let current = self.link.borrow_mut().profile.replace(profile);
        match current {
            Some(current) => store::put(PREVIOUS_PROFILE_KEY, &current.to_text()).await?,
            None => store::delete(PREVIOUS_PROFILE_KEY).await?,
        }
        store::put(PROFILE_KEY, &text).await
    }

    /// The stored device as exportable text (contains the secret key).
    pub async fn export_device(&self) -> Result<String, ClientError> {
        if !self.load_profile().await? {
            return Err(ClientError::NotEnrolled);
        }
        Ok(self.link.borrow().profile.as_ref().map(Profile::to_text).unwrap_or_default())
    }

    /// Replaces the stored device with exported text; connect afterwards.
    pub async fn import_device(&self, text: &str) -> Result<(), ClientError> {
        let profile = Profile::from_text(text).map_err(|e| ClientError::InvalidArgument(e.to_string()))?;
        store::put(PROFILE_KEY, &profile.to_text()).await?;
        self.disconnect();
        self.link.borrow_mut().profile = Some(profile);
        Ok(())
    }
}

/// The network came back, or the page is shown or resumed again: the link may have died unseen,
/// or be waiting out a reconnect delay that grew while there was no network. A waiting link
/// tries again at once; an up one pings the relay and reconnects at once unless something
/// comes back within 5 s (`client::CHECK_ANSWER_WITHIN`, instead of the dead-peer timer's 45 s).
fn recheck(rc: &Rc<RefCell<Link>>) {
    let Ok(mut link) = rc.try_borrow_mut() else { return };
    let now = clock::now();
    match link.phase {
        Phase::Waiting if link.want_up => link.retry_at = Some(now),
        Phase::Up => {
            if let Some(connection) = link.connection.as_mut() {
                connection.check_alive(now);
            }
        }
        _ => return,
    }
    drop(link);
    kick(rc);
}

/// Queues a pump as a microtask unless one is queued.
fn kick(link: &Rc<RefCell<Link>>) {
    let Ok(mut state) = link.try_borrow_mut() else {
        // Only reachable from inside a pump, which reschedules itself anyway.
        return;
    };
    if state.pump_queued {
        return;
    }
    state.pump_queued = true;
    drop(state);
    let link = link.clone();
    wasm_bindgen_futures::spawn_local(pump_after(link, 0));
}

fn kick_weak(link: &Weak<RefCell<Link>>) {
    if let Some(link) = link.upgrade() {
        kick(&link);
    }
}

/// One run of the pump, then the timer for the next.
fn pump(rc: &Rc<RefCell<Link>>, ends_hold: bool) {
    let mut start_socket = false;
    let mut link = rc.borrow_mut();
    link.pump_queued = false;
    link.holding &= !ends_hold;
    let now = clock::now();
    link.expire_parked(now);
    if matches!(link.phase, Phase::Waiting) && link.retry_at.is_some_and(|t| now >= t) {
        match link.begin_attempt(now) {
            Ok(()) => start_socket = true,
            Err(e) => link.fail(e, now),
        }
    }
    // Records taken in call for an acknowledgement. It waits a few microtasks, long enough for
    // an application that answers at once (its promise continuation, then its write) to put
    // the answer beside it: one record and one WebSocket send instead of two. It never waits
    // past this task.
    let hold = link.is_up() && link.has_records_waiting() && !link.holding;
    link.holding |= hold;
    let transmit = !link.holding;
    link.drive(now, transmit);
    link.wake_all();
    if !transmit {
        drop(link);
        if hold {
            wasm_bindgen_futures::spawn_local(pump_after(rc.clone(), HOLD_ROUNDS));
        }
        return;
    }
    let next = link.next_deadline(now);
    let due_now = next.is_some_and(|at| at <= now);
    if due_now && link.immediate_runs < MAX_IMMEDIATE_RUNS {
        link.immediate_runs += 1;
        drop(link);
        kick(rc);
    } else {
        link.immediate_runs = 0;
        if let Some(at) = next {
            arm_timer(rc, &mut link, at, now);
        }
        drop(link);
    }
    if start_socket {
        open_socket(rc);
    }
}

/// Runs a pump once `rounds` rounds of microtasks have passed: the microtasks queued so far,
/// and those they queue in turn. A pump after rounds ends the hold.
async fn pump_after(link: Rc<RefCell<Link>>, rounds: u32) {
    for _ in 0..rounds {
        let _ = wasm_bindgen_futures::JsFuture::from(js_sys::Promise::resolve(&JsValue::UNDEFINED)).await;
    }
    pump(&link, rounds > 0);
}

fn arm_timer(rc: &Rc<RefCell<Link>>, link: &mut Link, at: Instant, now: Instant) {
    if link.timer.as_ref().is_some_and(|(t, timer)| *t <= at && *t > now && !timer.has_fired()) {
        return;
    }
    let weak = Rc::downgrade(rc);
    let delay = at.saturating_duration_since(now).max(Duration::from_millis(0));
    link.timer = Some((at, Timer::once(delay, move || kick_weak(&weak))));
}

/// Opens the WebSocket for the attempt [`Link::begin_attempt`] prepared.
fn open_socket(rc: &Rc<RefCell<Link>>) {
    let mut link = rc.borrow_mut();
    let Some(url) = link.profile.as_ref().map(Profile::socket_url) else { return };
    link.cross_origin_tls =
        url.starts_with("wss://") && !url["wss://".len()..].starts_with(&format!("{}/", page_host()));
    let generation = link.generation;
    let weak = Rc::downgrade(rc);
    let opened = Socket::open(&url, move |event| {
        if let Some(rc) = weak.upgrade() {
            if let Ok(mut link) = rc.try_borrow_mut() {
                link.inbox.push_back((generation, event));
            }
            kick(&rc);
        }
    });
    match opened {
        Ok(socket) => link.socket = Some(socket),
        Err(_) => {
            let cross = link.cross_origin_tls;
            let offline = crate::web::lifecycle::offline();
            link.fail(errors::socket_closed(&url, false, 1006, "", cross, offline), clock::now());
        }
    }
    drop(link);
    kick(rc);
}
