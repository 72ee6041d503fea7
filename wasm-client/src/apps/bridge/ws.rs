//! Serving one `ws-open`: the upgrade on a tunnel TCP stream of its own (with the jar's
//! `Cookie` and the page's LAN `Origin`), then messages both ways until close
//! (`crate::apps::websocket` does the handshake check and the framing).
//!
//! A reader task moves what the stream delivers into the task's queue; the task's loop takes
//! the page's commands and the stream's bytes in turn, so neither waits on the other.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use rand_core::{OsRng, RngCore};

use super::message::WsData;
use super::port::{PortServer, Task, WsCommand};
use super::reply::Reply;
use super::stream::LanStream;
use super::{jars, sign_in};
use crate::apps::websocket::{ClientHandshake, UpgradeRequest, WsCodec, WsEvent};
use crate::error::ClientError;
use crate::web::timer::Timer;

/// How long the LAN app has to answer the page's close before the connection is dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the LAN app has to answer the upgrade (a Home Assistant restarting holds its port
/// open and answers nothing): then the page's socket closes (1006) and the app's own code tries
/// again, as Chromium's WebSocket gives up on an opening handshake after 240 s.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(240);
/// The reader stops taking the LAN app's bytes while this many wait to be handled (the loop is
/// writing to an app that does not read): the TCP window then holds the app back.
const MAX_RECEIVED: usize = 1 << 20;

/// How a WebSocket ended, for `ws-closed`.
struct Closed {
    code: u16,
    reason: String,
    clean: bool,
}

/// One step of the loop.
enum Step {
    Cancelled,
    /// The deadline of the step's wait passed (the upgrade's, or the close's).
    Expired,
    Command(WsCommand),
    Read(Result<Option<Vec<u8>>, ClientError>),
}

/// Runs one WebSocket to its end, reports `ws-closed` (unless cancelled) and forgets its id.
pub async fn run(server: Rc<PortServer>, task: Rc<Task>, path: String, protocols: Vec<String>) {
    let closed = match serve(&server, &task, path, protocols).await {
        Ok(closed) => closed,
        Err(e) => Some(Closed { code: 1006, reason: e.to_string(), clean: false }),
    };
    if let (Some(closed), false) = (closed, task.cancelled.get()) {
        let reason: String = closed.reason.chars().take(123).collect();
        server.post(&task.id, Reply::WsClosed { code: closed.code, reason: &reason, was_clean: closed.clean });
    }
    if let Some(stream) = task.stream.borrow_mut().take() {
        stream.abort();
    }
    server.finish(&task);
}

async fn serve(
    server: &PortServer,
    task: &Rc<Task>,
    path: String,
    protocols: Vec<String>,
) -> Result<Option<Closed>, ClientError> {
    let app = &server.app;
    let target = app.target;
    let stream = Rc::new(LanStream::connect(target).await?);
    *task.stream.borrow_mut() = Some(stream.clone());
    spawn_reader(task.clone(), stream.clone());
    let cookie = jars::with_jar(target, |jar, now| jar.cookie_header(&path, now));
    let origin = app.origins.lan_origin(&app.origin).ok();
    let mut key = [0u8; 16];
    OsRng.fill_bytes(&mut key);
    // The sign-in the user gave this device (a router's Basic, a camera's Digest) goes along.
    let mut signed = Vec::new();
    sign_in::authorize(target, "GET", &path, &mut signed);
    let authorization = signed.pop().map(|(_, value)| value);
    let request = UpgradeRequest { target, path: path.clone(), origin, cookie, authorization, protocols };
    let mut handshake = ClientHandshake::new(&request, key)?;
    stream.write_all(handshake.request()).await?;
    let unanswered = Rc::new(Cell::new(false));
    let deadline = {
        let (unanswered, task) = (unanswered.clone(), task.clone());
        Timer::once(UPGRADE_TIMEOUT, move || {
            unanswered.set(true);
            task.signal.notify();
        })
    };
    let upgraded = loop {
        // Commands wait in their queue until the socket is open.
        match next_step(task, false, &unanswered).await {
            Step::Cancelled => return Ok(None),
            Step::Expired => {
                let reason = "the app did not answer the WebSocket upgrade in 240 s".into();
                return Ok(Some(Closed { code: 1006, reason, clean: false }));
            }
            Step::Command(command) => task.commands.borrow_mut().push_front(command),
            Step::Read(Ok(Some(bytes))) => {
                if let Some(upgraded) = handshake.feed(&bytes)? {
                    break upgraded;
                }
                continue;
            }
            Step::Read(Ok(None)) => {
                return Err(crate::apps::AppError::WebSocketUpgrade("the app closed the connection".into()).into())
            }
            Step::Read(Err(e)) => return Err(e),
        }
    };
    drop(deadline);
    jars::store(target, &path, &upgraded.set_cookies);
    server.post(&task.id, Reply::WsOpened { protocol: &upgraded.protocol });
    let mut codec = upgraded.codec;
    let close_expired = Rc::new(Cell::new(false));
    let mut close_timer = None;
    if let Some(closed) = deliver(server, task, codec.feed(&[])?) {
        return Ok(Some(closed));
    }
    loop {
        let mut sent = false;
        match next_step(task, true, &close_expired).await {
            Step::Cancelled => return Ok(None),
            Step::Command(WsCommand::Send(data)) => {
                match data {
                    WsData::Text(text) => codec.send_text(&text)?,
                    WsData::Binary(data) => codec.send_binary(&data)?,
                }
                sent = true;
            }
            Step::Command(WsCommand::Close { code, reason }) => {
                codec.close(code.unwrap_or(1000), &reason)?;
                let (expired, task) = (close_expired.clone(), task.clone());
                close_timer.get_or_insert_with(|| {
                    Timer::once(CLOSE_TIMEOUT, move || {
                        expired.set(true);
                        task.signal.notify();
                    })
                });
            }
            Step::Expired => {
                let reason = "the app did not answer the close".into();
                return Ok(Some(Closed { code: 1006, reason, clean: false }));
            }
            Step::Read(Ok(Some(bytes))) => {
                let events = codec.feed(&bytes)?;
                if let Some(closed) = deliver(server, task, events) {
                    flush(&stream, &mut codec).await?;
                    stream.close();
                    return Ok(Some(closed));
                }
            }
            Step::Read(Ok(None) | Err(_)) => {
                let lost = deliver(server, task, codec.connection_lost().into_iter().collect());
                return Ok(lost.map(|closed| Closed { reason: "the connection to the app broke".into(), ..closed }));
            }
        }
        flush(&stream, &mut codec).await?;
        if sent {
            // The message left for the app: the shim takes it off its `bufferedAmount`.
            server.post(&task.id, Reply::WsSent);
        }
    }
}

async fn flush(stream: &LanStream, codec: &mut WsCodec) -> Result<(), ClientError> {
    let bytes = codec.poll_transmit();
    if !bytes.is_empty() {
        stream.write_all(&bytes).await?;
    }
    Ok(())
}

/// Posts the messages; returns how the socket closed when a close came.
fn deliver(server: &PortServer, task: &Task, events: Vec<WsEvent>) -> Option<Closed> {
    for event in events {
        match event {
            WsEvent::Text(text) => server.post(&task.id, Reply::WsText(&text)),
            WsEvent::Binary(data) => server.post(&task.id, Reply::WsBinary(&data)),
            WsEvent::Closed { code, reason, clean } => return Some(Closed { code, reason, clean }),
        }
    }
    None
}

/// The next thing to handle: a cancel, the close timing out, a page command (when
/// `commands`), or a read.
async fn next_step(task: &Task, commands: bool, expired: &Cell<bool>) -> Step {
    let step = task
        .signal
        .until(|| {
            if task.cancelled.get() {
                return Some(Step::Cancelled);
            }
            if expired.get() {
                return Some(Step::Expired);
            }
            if commands {
                if let Some(command) = task.commands.borrow_mut().pop_front() {
                    if let WsCommand::Send(data) = &command {
                        task.held.borrow_mut().shrink(data.len());
                    }
                    return Some(Step::Command(command));
                }
            }
            let read = task.received.borrow_mut().pop_front()?;
            if let Ok(Some(bytes)) = &read {
                task.received_bytes.set(task.received_bytes.get().saturating_sub(bytes.len()));
            }
            Some(Step::Read(read))
        })
        .await;
    // The reader may be waiting for room.
    task.signal.notify();
    step
}

/// Reads `stream` into the task's queue until it ends, fails or the task is cancelled; while
/// [`MAX_RECEIVED`] bytes wait there, it reads nothing.
fn spawn_reader(task: Rc<Task>, stream: Rc<LanStream>) {
    wasm_bindgen_futures::spawn_local(async move {
        loop {
            task.signal
                .until(|| (task.cancelled.get() || task.received_bytes.get() < MAX_RECEIVED).then_some(()))
                .await;
            if task.cancelled.get() {
                break;
            }
            let read = stream.read().await;
            let done = !matches!(read, Ok(Some(_)));
            if let Ok(Some(bytes)) = &read {
                task.received_bytes.set(task.received_bytes.get() + bytes.len());
            }
            task.received.borrow_mut().push_back(read);
            task.signal.notify();
            if done || task.cancelled.get() {
                break;
            }
        }
    });
}
