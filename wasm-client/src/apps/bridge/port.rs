//! The server end of one app port: reads each message, checks it, and starts or steers the
//! task it belongs to. A port is bound to one [`App`] (its target) for its whole life.
//!
//! Servers are kept in a per-page registry (for the `cookies` broadcast to every port of an
//! app) until their port closes, or until a busy port's far end stops answering (`liveness`).
//! Each `fetch` or `ws-open` becomes a [`Task`], keyed by its id, that `more`, `body`,
//! `body-end`, `cancel`, `ws-send` and `ws-close` steer; `ping`, `set-cookie`, `get-cookies`
//! and `prepare` are answered at once.

use hometun_shared::app_name::AppTarget;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::{Rc, Weak};

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{MessageEvent, MessagePort};

use super::budget::Held;
use super::credit::Credit;
use super::liveness::{self, Liveness, Verdict};
use super::message::{Id, Incoming, MessageError, WsData};
use super::reply::{self, Reply};
use super::stream::LanStream;
use super::upload::Inbox;
use super::{decode, exchange, fetch, jars, ws};
use crate::apps::origin::AppOrigins;
use crate::error::ClientError;
use crate::signal::Signal;
use crate::web::{clock, timer};

/// Tasks (requests and sockets) one port may have open at once.
pub const MAX_OPEN: usize = 256;
/// Most bytes of a WebSocket's messages from the page that may wait for the LAN app to take
/// them (the shim's `bufferedAmount`); a page that sends past it has its socket failed (1006)
/// rather than filling the launcher's memory.
pub const MAX_WS_QUEUED: usize = 2 * super::message::MAX_WS_MESSAGE;
/// Ports served at once, over all apps (a port per app document, worker and service worker,
/// and per large upload); past this one of the LAN host holding the most closes, as ports a
/// browser never reported closed would otherwise pile up.
pub const MAX_PORTS: usize = 256;
/// Ports the apps of one LAN host may hold: past this one of that host's closes, so a page that
/// asks for ports without end (a hostile LAN host's, on any of its ports) closes its own. The
/// one that closes is idle (no request or socket open) if any is, and of those the one used
/// longest ago: a port the browser never reported closed, rather than a page's live one.
pub const MAX_PORTS_PER_HOST: usize = 64;

/// What a port is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    /// The LAN `host:port` every request of the port goes to.
    pub target: AppTarget,
    /// The app's browser origin (`https://h-….DOMAIN[:port]`).
    pub origin: String,
    /// The app origins under the tunnel origin `T` (the launcher's).
    pub origins: AppOrigins,
}

/// A command for a running WebSocket task.
#[derive(Debug)]
pub enum WsCommand {
    /// Send a message.
    Send(WsData),
    /// Start the closing handshake.
    Close {
        /// Close code.
        code: Option<u16>,
        /// Close reason.
        reason: String,
    },
}

/// One open request or socket on a port.
pub struct Task {
    /// The asker's id.
    pub id: Id,
    /// Wakes the task when something below changed.
    pub signal: Signal,
    /// The response's flow-control window.
    pub credit: RefCell<Credit>,
    /// The streamed request body received so far (refuses every `body` when none is streamed).
    pub upload: RefCell<Inbox>,
    /// Set by `cancel` (or when the port closed).
    pub cancelled: Cell<bool>,
    /// The connection in use, to abort it on cancel.
    pub stream: RefCell<Option<Rc<LanStream>>>,
    /// Whether the task is a WebSocket (only those take `ws-send` and `ws-close`).
    pub socket: bool,
    /// WebSocket commands not yet handled.
    pub commands: RefCell<VecDeque<WsCommand>>,
    /// WebSocket reads not yet handled (`None`: the LAN app closed the stream).
    pub received: RefCell<VecDeque<Result<Option<Vec<u8>>, ClientError>>>,
    /// Bytes of the reads in [`Self::received`].
    pub received_bytes: Cell<usize>,
    /// What the page sent that waits here (a buffered body, streamed pieces, the messages in
    /// [`Self::commands`]), counted against the launcher's budget for all app pages.
    pub held: RefCell<Held>,
}

impl Task {
    fn new(id: Id, socket: bool, host: std::net::Ipv4Addr) -> Self {
        Self {
            id,
            socket,
            signal: Signal::default(),
            credit: RefCell::new(Credit::new()),
            upload: RefCell::new(Inbox::default()),
            cancelled: Cell::new(false),
            stream: RefCell::new(None),
            commands: RefCell::new(VecDeque::new()),
            received: RefCell::new(VecDeque::new()),
            received_bytes: Cell::new(0),
            held: RefCell::new(Held::new(host)),
        }
    }

    /// Stops the task: its connection is reset and its next wait returns.
    pub fn cancel(&self) {
        self.cancelled.set(true);
        if let Some(stream) = self.stream.borrow_mut().take() {
            stream.abort();
        }
        self.signal.notify();
    }
}

impl exchange::Watch for Task {
    fn connection(&self, stream: &Rc<LanStream>) {
        *self.stream.borrow_mut() = Some(stream.clone());
    }

    fn cancelled(&self) -> bool {
        self.cancelled.get()
    }
}

/// The server of one port.
pub struct PortServer {
    port: MessagePort,
    /// What the port is bound to.
    pub app: App,
    tasks: RefCell<HashMap<String, Rc<Task>>>,
    handlers: RefCell<Option<Handlers>>,
    /// When the port was last used (a turn number: see [`turn`]).
    used: Cell<u64>,
    /// Whether its far end still answers.
    liveness: Cell<Liveness>,
    /// Whether a message came since the last check (the check, not every message, reads the
    /// clock).
    spoke: Cell<bool>,
}

/// The port's event handlers, kept as long as the server.
struct Handlers {
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(JsValue)>,
}

thread_local! {
    static SERVERS: RefCell<Vec<Rc<PortServer>>> = const { RefCell::new(Vec::new()) };
    static TURNS: Cell<u64> = const { Cell::new(0) };
    static WATCHING: Cell<bool> = const { Cell::new(false) };
}

/// A number larger than every one before: the order in which ports were used.
fn turn() -> u64 {
    TURNS.with(|turns| {
        turns.set(turns.get() + 1);
        turns.get()
    })
}

/// Starts serving `port` for `app`.
pub fn serve(port: MessagePort, app: App) {
    let server = Rc::new(PortServer {
        port,
        app,
        tasks: RefCell::default(),
        handlers: RefCell::default(),
        used: Cell::new(turn()),
        liveness: Cell::new(Liveness::new(clock::now())),
        spoke: Cell::new(false),
    });
    let weak = Rc::downgrade(&server);
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
        if let Some(server) = weak.upgrade() {
            server.handle(&event.data());
        }
    });
    let weak = Rc::downgrade(&server);
    let on_close = Closure::<dyn FnMut(JsValue)>::new(move |_event: JsValue| {
        if let Some(server) = weak.upgrade() {
            server.close();
        }
    });
    server.port.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    let _ = server.port.add_event_listener_with_callback("close", on_close.as_ref().unchecked_ref());
    server.port.start();
    *server.handlers.borrow_mut() = Some(Handlers { _on_message: on_message, _on_close: on_close });
    let oldest = SERVERS.with(|servers| {
        let mut servers = servers.borrow_mut();
        let host = *server.app.target.addr.ip();
        servers.push(server);
        let held_by = |host: &std::net::Ipv4Addr| servers.iter().filter(|s| s.app.target.addr.ip() == host).count();
        let over = if held_by(&host) > MAX_PORTS_PER_HOST {
            Some(host)
        } else if servers.len() > MAX_PORTS {
            // Of two holding as many, the one whose ports came first.
            servers.iter().rev().map(|s| *s.app.target.addr.ip()).max_by_key(held_by)
        } else {
            None
        };
        let host = over?;
        // Never the port just opened (it has no task yet, but a page is about to use it).
        let newest = servers.len() - 1;
        let (at, _) = servers
            .iter()
            .enumerate()
            .filter(|(at, s)| *at != newest && *s.app.target.addr.ip() == host)
            .min_by_key(|(_, s)| (!s.tasks.borrow().is_empty(), s.used.get()))?;
        Some(servers.remove(at))
    });
    if let Some(oldest) = oldest {
        oldest.port.close();
        oldest.close();
    }
    if !WATCHING.with(|watching| watching.replace(true)) {
        wasm_bindgen_futures::spawn_local(watch());
    }
}

/// Checks every port's far end while there are ports: a busy port silent a while is asked, and
/// one that does not answer is closed (its requests and sockets end, and their LAN connections).
async fn watch() {
    loop {
        timer::sleep(liveness::CHECK_EVERY).await;
        let servers = SERVERS.with(|servers| servers.borrow().clone());
        if servers.is_empty() {
            WATCHING.with(|watching| watching.set(false));
            return;
        }
        let now = clock::now();
        for server in servers {
            let mut liveness = server.liveness.get();
            if server.spoke.replace(false) {
                liveness.heard(now);
            }
            let verdict = liveness.check(now, !server.tasks.borrow().is_empty());
            server.liveness.set(liveness);
            match verdict {
                Verdict::Fine => {}
                Verdict::Ask => reply::post_ping(&server.port),
                Verdict::Gone => {
                    server.port.close();
                    server.close();
                }
            }
        }
    }
}

/// Closes every port handed out: the app pages' workers and shims then ask for new ones (the
/// tunnel moved to another launcher tab). The jars in memory are forgotten too: the tab that
/// runs the tunnel now changes them, and this one reads them again if it gets it back.
pub fn close_all() {
    for server in SERVERS.with(|servers| servers.borrow_mut().drain(..).collect::<Vec<_>>()) {
        server.port.close();
        server.close();
    }
    jars::forget_all();
}

/// The open servers bound to `target` (for the `cookies` broadcast).
pub fn servers_of(target: AppTarget) -> Vec<Rc<PortServer>> {
    SERVERS.with(|servers| servers.borrow().iter().filter(|s| s.app.target == target).cloned().collect())
}

impl PortServer {
    /// Posts a reply for `id`.
    pub fn post(&self, id: &Id, reply: Reply<'_>) {
        reply::post(&self.port, id, reply);
    }

    /// Posts the jar's script-visible cookies.
    pub fn post_cookies(&self, cookies: &[(String, String, String)]) {
        reply::post_cookies(&self.port, cookies);
    }

    /// A task ended: forget its id.
    pub fn finish(&self, task: &Task) {
        let mut tasks = self.tasks.borrow_mut();
        if tasks.get(&task.id.key()).is_some_and(|t| std::ptr::eq(Rc::as_ptr(t), task)) {
            tasks.remove(&task.id.key());
        }
    }

    fn handle(self: &Rc<Self>, data: &JsValue) {
        self.used.set(turn());
        self.spoke.set(true);
        // A message without a usable id cannot be answered: it is ignored.
        let Some(id) = decode::id(data) else { return };
        match decode::op(data).and_then(|op| decode::incoming(&op, data)) {
            Ok(message) => self.dispatch(id, message),
            Err(e) => self.refuse(&id, &e),
        }
    }

    fn refuse(&self, id: &Id, error: &MessageError) {
        self.post(id, Reply::Error(&error.to_string()));
    }

    /// The page is about to go to the app origin `origin` (a mapped link, `window.open`, a
    /// navigation): the relay is asked for that name's certificate now, without waiting for
    /// the answer, so that it has it, or is getting it, when the browser gets there.
    fn prepare(&self, origin: &str) -> Result<(), ClientError> {
        let other = self.app.origins.target_of(origin)?;
        if other != self.app.target {
            crate::api::demand_certificate(other)?;
        }
        Ok(())
    }

    fn dispatch(self: &Rc<Self>, id: Id, message: Incoming) {
        let task = self.tasks.borrow().get(&id.key()).cloned();
        match (message, task) {
            (Incoming::Ping, _) => self.post(&id, Reply::Pong),
            (Incoming::GetCookies, _) => {
                self.post_cookies(&jars::script_cookies(self.app.target));
                self.post(&id, Reply::Ok);
            }
            (Incoming::SetCookie { cookie, path }, _) => match jars::set_from_script(self.app.target, &cookie, &path) {
                Ok(()) => self.post(&id, Reply::Ok),
                Err(e) => self.post(&id, Reply::Error(&e.to_string())),
            },
            (Incoming::Prepare(origin), _) => match self.prepare(&origin) {
                Ok(()) => self.post(&id, Reply::Ok),
                Err(e) => self.post(&id, Reply::Error(&e.to_string())),
            },
            (Incoming::Fetch(_) | Incoming::WsOpen { .. }, Some(_)) => self.refuse(&id, &MessageError::IdInUse),
            (Incoming::Fetch(request), None) => {
                let mut held = Held::new(*self.app.target.addr.ip());
                if !held.grow(request.body.len()) {
                    return self.refuse(&id, &MessageError::LauncherFull);
                }
                if let Some(task) = self.start(&id, false) {
                    *task.held.borrow_mut() = held;
                    if request.stream_body.is_some() {
                        *task.upload.borrow_mut() = Inbox::streamed();
                    }
                    wasm_bindgen_futures::spawn_local(fetch::run(self.clone(), task, request));
                }
            }
            (Incoming::WsOpen { path, protocols }, None) => {
                if let Some(task) = self.start(&id, true) {
                    wasm_bindgen_futures::spawn_local(ws::run(self.clone(), task, path, protocols));
                }
            }
            (Incoming::More, Some(task)) => {
                task.credit.borrow_mut().more();
                task.signal.notify();
            }
            (Incoming::Body(data), Some(task)) => {
                let received = if task.held.borrow_mut().grow(data.len()) {
                    task.upload.borrow_mut().push(data)
                } else {
                    Err(MessageError::LauncherFull)
                };
                self.steer_upload(&task, received);
            }
            (Incoming::BodyEnd, Some(task)) => {
                let received = task.upload.borrow_mut().end();
                self.steer_upload(&task, received);
            }
            (Incoming::Cancel, Some(task)) => {
                task.cancel();
                self.finish(&task);
            }
            (Incoming::WsSend(data), Some(task)) if task.socket => {
                let fits = {
                    let mut held = task.held.borrow_mut();
                    held.bytes() + data.len() <= MAX_WS_QUEUED && held.grow(data.len())
                };
                if !fits {
                    task.cancel();
                    self.finish(&task);
                    let reason = "the page sent more than the app takes in";
                    self.post(&id, Reply::WsClosed { code: 1006, reason, was_clean: false });
                    return;
                }
                task.commands.borrow_mut().push_back(WsCommand::Send(data));
                task.signal.notify();
            }
            (Incoming::WsClose { code, reason }, Some(task)) if task.socket => {
                task.commands.borrow_mut().push_back(WsCommand::Close { code, reason });
                task.signal.notify();
            }
            // A socket's commands for a request: nothing would ever take them.
            (Incoming::WsSend(_) | Incoming::WsClose { .. }, Some(_)) => {}
            // Steering a task that already ended (or never was): nothing to do.
            (
                Incoming::More
                | Incoming::Body(_)
                | Incoming::BodyEnd
                | Incoming::Cancel
                | Incoming::WsSend(_)
                | Incoming::WsClose { .. },
                None,
            ) => {}
        }
    }

    /// A `body` or `body-end` was taken in, or broke the protocol: then the request stops (its
    /// connection is reset) and the worker gets `error`.
    fn steer_upload(&self, task: &Task, received: Result<(), MessageError>) {
        match received {
            Ok(()) => task.signal.notify(),
            Err(e) => {
                task.cancel();
                self.finish(task);
                self.refuse(&task.id, &e);
            }
        }
    }

    fn start(&self, id: &Id, socket: bool) -> Option<Rc<Task>> {
        let mut tasks = self.tasks.borrow_mut();
        if tasks.len() >= MAX_OPEN {
            drop(tasks);
            self.refuse(id, &MessageError::TooManyOpen);
            return None;
        }
        let task = Rc::new(Task::new(id.clone(), socket, *self.app.target.addr.ip()));
        tasks.insert(id.key(), task.clone());
        Some(task)
    }

    /// The port closed: stop every task and leave the registry.
    fn close(self: &Rc<Self>) {
        for (_, task) in self.tasks.borrow_mut().drain() {
            task.cancel();
        }
        self.port.set_onmessage(None);
        // Left from a fresh task: dropping the server here would drop the running handler.
        let me: Weak<Self> = Rc::downgrade(self);
        wasm_bindgen_futures::spawn_local(async move {
            SERVERS.with(|servers| servers.borrow_mut().retain(|s| !Weak::ptr_eq(&Rc::downgrade(s), &me)));
        });
    }
}
