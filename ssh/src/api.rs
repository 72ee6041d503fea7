//! What the page's `ssh/ssh.js` calls (docs/ssh.md): `connect(connection, options)` resolving
//! to a [`Session`], `publicKey()`, `forgetHostKey(target)`. Pins and the device key live in
//! the tunnel origin's `localStorage`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use js_sys::{Function, Promise, Reflect, Uint8Array};
use russh::{ChannelMsg, ChannelReadHalf, Disconnect};
use tokio::sync::mpsc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, spawn_local, JsFuture};
use zeroize::Zeroizing;

use crate::bridge::{bridge, describe, sleep, DropReason, TcpLike};
use crate::client::{self, Client, HostKeyPolicy, HostKeyQuestion, Login, PromptQuestion, Terminal};
use crate::device_key::{self, KeyStore};
use crate::error::SshError;
use crate::known_hosts::{self, PinStore};
use crate::options::{self, MAX_TERMINAL_SIZE};
use crate::writes::ShellWriter;

/// `localStorage` key of the host key pins.
const PINS_KEY: &str = "hometun.ssh.hostKeys";
/// `localStorage` key of the device's SSH private key (a secret: never logged).
const DEVICE_KEY: &str = "hometun.ssh.key";
/// How long the login may take (key exchange, login, terminal and shell), not counting the time
/// a question waits for the person's answer.
const LOGIN_LIMIT_SECONDS: u32 = 20;

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

struct LocalPins;

impl PinStore for LocalPins {
    fn load(&self) -> Option<String> {
        storage()?.get_item(PINS_KEY).ok()?
    }
    fn save(&self, pins: &str) -> Result<(), String> {
        let store = storage().ok_or("this browser has no local storage here")?;
        store.set_item(PINS_KEY, pins).map_err(|_| "storage full or disabled?".to_owned())
    }
}

struct LocalKey;

impl KeyStore for LocalKey {
    fn load(&self) -> Option<Zeroizing<String>> {
        storage()?.get_item(DEVICE_KEY).ok()?.map(Zeroizing::new)
    }
    fn save(&self, openssh: &str) -> Result<(), SshError> {
        let store = storage().ok_or_else(|| SshError::Key("this browser has no local storage here".into()))?;
        store
            .set_item(DEVICE_KEY, openssh)
            .map_err(|_| SshError::Key("storing the key failed (storage full or disabled?)".into()))
    }
}

fn js_error(e: SshError) -> JsValue {
    let error = js_sys::Error::new(&e.to_string());
    error.set_name("HometunError");
    let _ = Reflect::set(&error, &"code".into(), &e.code().into());
    if let SshError::HostKeyChanged { old, new, .. } = &e {
        let _ = Reflect::set(&error, &"oldFingerprint".into(), &old.as_str().into());
        let _ = Reflect::set(&error, &"newFingerprint".into(), &new.as_str().into());
    }
    error.into()
}

fn key_comment() -> String {
    let host = web_sys::window().and_then(|w| w.location().host().ok()).unwrap_or_default();
    format!("hometun@{}", if host.is_empty() { "browser" } else { &host })
}

/// The device's SSH public key as one OpenSSH line; makes (and stores) the key on first use.
#[wasm_bindgen(js_name = publicKey)]
pub fn public_key() -> Result<String, JsValue> {
    let key = device_key::load_or_create(&LocalKey, &key_comment()).map_err(js_error)?;
    Ok(device_key::public_line(&key))
}

/// Forgets the pinned host key of `target` (`host:port`); returns whether one was pinned.
/// Fails with `pins-not-saved` (the pin stays) when the storage cannot keep the change.
#[wasm_bindgen(js_name = forgetHostKey)]
pub fn forget_host_key(target: String) -> Result<bool, JsValue> {
    known_hosts::forget(&LocalPins, &target).map_err(js_error)
}

fn get(options: &JsValue, name: &str) -> JsValue {
    Reflect::get(options, &name.into()).unwrap_or(JsValue::UNDEFINED)
}

/// `options[name]` as given: `None` when absent, NaN when not a number.
fn given_number(options: &JsValue, name: &str) -> Option<f64> {
    let value = get(options, name);
    (!value.is_undefined() && !value.is_null()).then(|| value.as_f64().unwrap_or(f64::NAN))
}

/// Questions waiting for the person's answer (the login's clock stops meanwhile).
type Asking = Rc<Cell<u32>>;

/// Resolves once the login has had [`LOGIN_LIMIT_SECONDS`] of the server's time.
async fn login_time_limit(asking: Asking) {
    let limit = f64::from(LOGIN_LIMIT_SECONDS) * 1000.0;
    let (mut waited, mut last) = (0.0, js_sys::Date::now());
    while waited < limit {
        sleep(250).await;
        let now = js_sys::Date::now();
        if asking.get() == 0 {
            // At most a second at once: a modal dialog stops the timers too.
            waited += (now - last).clamp(0.0, 1000.0);
        }
        last = now;
    }
}

/// Runs `ask` (a JavaScript function) for each question on `questions`, answering with what
/// its promise resolves to.
fn serve_host_key_questions(ask: Function, mut questions: mpsc::Receiver<HostKeyQuestion>, asking: Asking) {
    spawn_local(async move {
        while let Some(q) = questions.recv().await {
            let info = js_sys::Object::new();
            let _ = Reflect::set(&info, &"target".into(), &q.target.as_str().into());
            let _ = Reflect::set(&info, &"fingerprint".into(), &q.fingerprint.as_str().into());
            asking.set(asking.get() + 1);
            let answer = match ask.call1(&JsValue::NULL, &info) {
                Ok(v) => JsFuture::from(Promise::resolve(&v)).await.map(|v| v.is_truthy()).unwrap_or(false),
                Err(_) => false,
            };
            asking.set(asking.get() - 1);
            let _ = q.answer.send(answer);
        }
    });
}

fn serve_prompts(ask: Function, mut questions: mpsc::Receiver<PromptQuestion>, asking: Asking) {
    spawn_local(async move {
        while let Some(q) = questions.recv().await {
            asking.set(asking.get() + 1);
            let answer = match ask.call2(&JsValue::NULL, &q.prompt.as_str().into(), &q.echo.into()) {
                Ok(v) => {
                    JsFuture::from(Promise::resolve(&v)).await.ok().and_then(|v| v.as_string()).map(Zeroizing::new)
                }
                Err(_) => None,
            };
            asking.set(asking.get() - 1);
            let _ = q.answer.send(answer);
        }
    });
}

/// Logs in over `connection` (a `hometun.connectTcp` result) and starts a shell on a PTY.
/// `options`: `{host, port, user, password?, key?: bool, trustNewHostKey?: bool, cols?, rows?,
/// term?, askHostKey?: ({target, fingerprint}) => Promise<bool>, askPrompt?: (prompt, echo) =>
/// Promise<string|null>}`. Fails with `invalid-argument` before anything is sent when the port,
/// `cols` or `rows` is not a whole number in range ([`options`]), and with `timeout` when the
/// login takes longer than [`LOGIN_LIMIT_SECONDS`] (the caller then resets `connection`).
#[wasm_bindgen]
pub async fn connect(connection: TcpLike, options: JsValue) -> Result<Session, JsValue> {
    let host = get(&options, "host").as_string().unwrap_or_default();
    let user = get(&options, "user").as_string().unwrap_or_default();
    if host.is_empty() || user.is_empty() {
        return Err(js_error(SshError::InvalidArgument("host and user are needed".into())));
    }
    let port = options::port(given_number(&options, "port")).map_err(js_error)?;
    let cols = options::terminal_size("cols", given_number(&options, "cols"), 80).map_err(js_error)?;
    let rows = options::terminal_size("rows", given_number(&options, "rows"), 24).map_err(js_error)?;
    let target = format!("{host}:{port}");
    let password = get(&options, "password").as_string().filter(|p| !p.is_empty()).map(Zeroizing::new);
    let key = if get(&options, "key").is_truthy() {
        Some(Arc::new(device_key::load_or_create(&LocalKey, &key_comment()).map_err(js_error)?))
    } else {
        None
    };
    let asking = Asking::default();
    let ask = get(&options, "askHostKey").dyn_into::<Function>().ok().map(|f| {
        let (tx, rx) = mpsc::channel(1);
        serve_host_key_questions(f, rx, asking.clone());
        tx
    });
    let prompts = get(&options, "askPrompt").dyn_into::<Function>().ok().map(|f| {
        let (tx, rx) = mpsc::channel(1);
        serve_prompts(f, rx, asking.clone());
        tx
    });
    let policy = HostKeyPolicy {
        target: target.clone(),
        store: Box::new(LocalPins),
        trust_new: get(&options, "trustNewHostKey").is_truthy(),
        ask,
    };
    let term = get(&options, "term").as_string().unwrap_or_else(|| "xterm-256color".to_owned());
    let terminal = Terminal { term, cols, rows };
    let (stream, dropped) = bridge(connection);
    let login = Login { user, password, key, prompts };
    let opened = tokio::select! {
        opened = client::open(stream, policy, login, &terminal) => opened,
        () = login_time_limit(asking) => Err(SshError::Timeout { target, seconds: LOGIN_LIMIT_SECONDS }),
    };
    let shell = match opened {
        Ok(shell) => shell,
        Err(SshError::Protocol(what)) if dropped.borrow().is_some() => {
            let why = dropped.borrow().clone().unwrap_or_default();
            return Err(js_error(SshError::Protocol(format!("{what}; the connection failed: {why}"))));
        }
        Err(e) => return Err(js_error(e)),
    };
    Ok(Session {
        inner: Rc::new(Inner {
            handle: shell.handle,
            writer: ShellWriter::new(shell.writer),
            reader: RefCell::new(Some(shell.reader)),
            host_key: shell.host_key,
            dropped,
            closed_by_user: Cell::new(false),
        }),
    })
}

struct Inner {
    handle: russh::client::Handle<Client>,
    writer: Arc<ShellWriter>,
    reader: RefCell<Option<ChannelReadHalf>>,
    host_key: String,
    dropped: DropReason,
    closed_by_user: Cell<bool>,
}

/// A logged-in shell: `run(onBytes)`, `write(bytes)`, `resize(cols, rows)`, `close()`.
#[wasm_bindgen]
pub struct Session {
    inner: Rc<Inner>,
}

#[wasm_bindgen]
impl Session {
    /// The server's host key fingerprint (`SHA256:…`).
    #[wasm_bindgen(getter, js_name = hostKey)]
    pub fn host_key(&self) -> String {
        self.inner.host_key.clone()
    }

    /// Delivers what the shell prints to `on_bytes` (a `Uint8Array` each call) until the
    /// session ends; resolves then with `{exitStatus, reason, dropped}` (`reason` says why, for
    /// the user; `dropped` is true when the connection died under a running session: the
    /// server went away or the tunnel was lost). The SSH connection ends with the session.
    /// Call once.
    pub fn run(&self, on_bytes: Function) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let Some(mut reader) = inner.reader.borrow_mut().take() else {
                return Err(js_error(SshError::InvalidArgument("run() was already called".into())));
            };
            let mut exit_status: Option<u32> = None;
            let mut signal: Option<String> = None;
            // The server's own end of the channel; without it the stream just stopped.
            let mut ended = false;
            while let Some(message) = reader.wait().await {
                match message {
                    ChannelMsg::Data { data } | ChannelMsg::ExtendedData { data, .. } => {
                        let _ = on_bytes.call1(&JsValue::NULL, &Uint8Array::from(&data[..]));
                    }
                    ChannelMsg::ExitStatus { exit_status: status } => exit_status = Some(status),
                    ChannelMsg::ExitSignal { signal_name, .. } => signal = Some(format!("{signal_name:?}")),
                    ChannelMsg::Close => {
                        ended = true;
                        break;
                    }
                    _ => {}
                }
            }
            let by_user = inner.closed_by_user.get();
            if !by_user {
                // The shell is gone and nothing else runs on this connection: end it, or it (and
                // its tunnel TCP connection) would stay open as long as the page.
                let _ = inner.handle.disconnect(Disconnect::ByApplication, "the session ended", "en").await;
            }
            let dropped = !by_user && !ended && exit_status.is_none() && signal.is_none();
            let reason = match (exit_status, signal) {
                _ if by_user => "you closed the session".to_owned(),
                (Some(status), _) => format!("the session ended (exit status {status})"),
                (None, Some(signal)) => format!("the session ended (killed by signal {signal})"),
                (None, None) if !dropped => "the server closed the session".to_owned(),
                (None, None) => match inner.dropped.borrow().clone() {
                    Some(why) => format!("the connection dropped: {why}"),
                    None => "the connection dropped: the server closed it in the middle of the session \
                             (sshd stopped, or the host went away)"
                        .to_owned(),
                },
            };
            let out = js_sys::Object::new();
            let status = exit_status.map_or(JsValue::NULL, JsValue::from);
            let _ = Reflect::set(&out, &"exitStatus".into(), &status);
            let _ = Reflect::set(&out, &"reason".into(), &reason.into());
            let _ = Reflect::set(&out, &"dropped".into(), &dropped.into());
            Ok(out.into())
        })
    }

    /// Sends bytes (a `Uint8Array`, or a string sent as UTF-8) to the shell.
    pub fn write(&self, data: JsValue) -> Promise {
        let bytes = match data.as_string() {
            Some(text) => text.into_bytes(),
            None => Uint8Array::new(&data).to_vec(),
        };
        match self.inner.writer.write(bytes) {
            Ok(sent) => future_to_promise(async move {
                sent.await.map_err(js_error)?;
                Ok(JsValue::UNDEFINED)
            }),
            Err(refused) => Promise::reject(&js_error(refused)),
        }
    }

    /// Tells the server the terminal's new size (each clamped to 1..=[`MAX_TERMINAL_SIZE`]).
    pub fn resize(&self, cols: u32, rows: u32) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            inner
                .writer
                .channel()
                .window_change(cols.clamp(1, MAX_TERMINAL_SIZE), rows.clamp(1, MAX_TERMINAL_SIZE), 0, 0)
                .await
                .map_err(|e| js_error(e.into()))?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Ends the session (the server sees a disconnect); `run()` then resolves.
    pub fn close(&self) {
        let inner = self.inner.clone();
        inner.closed_by_user.set(true);
        spawn_local(async move {
            let _ = inner.writer.channel().close().await;
            let _ = inner.handle.disconnect(Disconnect::ByApplication, "closed by the user", "en").await;
        });
    }
}

/// The message of a JavaScript error, for `ssh.js`.
#[wasm_bindgen(js_name = describeError)]
pub fn describe_error(error: JsValue) -> String {
    describe(&error)
}
