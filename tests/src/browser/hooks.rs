//! HTTP hooks the browser scenario calls from its page, to do to the relay what a test needs:
//!
//! - `POST /drop`: the relay drops every WebSocket (it is restarted on the same state).
//! - `POST /revoke` with `{"fingerprint": ...}` (as `status()` and `clients --json` show it):
//!   that device is revoked with `hometun-relay clients revoke`.
//!
//! They listen on loopback inside the browser's namespace and answer with
//! `Access-Control-Allow-Origin: *`, since the test page has another origin. Each answers once
//! the action is done: 200, or 404 (unknown path or device) / 500 (the action failed).

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::relay::Relay;

/// The longest the hooks serve: far beyond any browser scenario.
const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// The largest request read.
const MAX_REQUEST: usize = 64 * 1024;

/// Running hooks; they stop when dropped.
pub struct Hooks {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    calls: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl Hooks {
    /// Starts the hooks on 127.0.0.1 inside `netns`, acting on `relay`.
    pub fn start(netns: &str, relay: Arc<Mutex<Relay>>) -> anyhow::Result<Self> {
        let listener = super::listen_in(netns, SocketAddr::from(([127, 0, 0, 1], 0)))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, calls) = (stop.clone(), calls.clone());
            std::thread::Builder::new()
                .name("browser-hooks".into())
                .spawn(move || serve(listener, &relay, &stop, &calls))
                .context("starting the hooks thread")?
        };
        Ok(Self { addr, stop, calls, thread: Some(thread) })
    }

    /// The URL whose `POST` makes the relay drop every WebSocket.
    pub fn drop_url(&self) -> String {
        format!("http://{}/drop", self.addr)
    }

    /// The URL whose `POST` with `{"fingerprint": ...}` revokes that device.
    pub fn revoke_url(&self) -> String {
        format!("http://{}/revoke", self.addr)
    }

    /// What was called so far, one line each: `POST /drop -> 200` and the like.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for Hooks {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(listener: TcpListener, relay: &Mutex<Relay>, stop: &AtomicBool, calls: &Mutex<Vec<String>>) {
    let deadline = Instant::now() + MAX_LIFETIME;
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        match listener.accept() {
            Ok((stream, _)) => {
                let line = match answer(stream, relay) {
                    Ok(line) => line,
                    Err(e) => format!("error: {e:#}"),
                };
                eprintln!("browser hooks: {line}");
                calls.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                eprintln!("browser hooks: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Reads one request, acts, answers; returns the line for [`Hooks::calls`].
fn answer(mut stream: TcpStream, relay: &Mutex<Relay>) -> anyhow::Result<String> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let (method, path, body) = read_request(&mut stream)?;
    let (status, note) = match (method.as_str(), path.as_str()) {
        ("OPTIONS", _) => (204, String::new()),
        ("POST", "/drop") => {
            let mut relay = relay.lock().unwrap_or_else(|e| e.into_inner());
            match relay.restart() {
                Ok(()) => (200, String::new()),
                Err(e) => (500, format!("{e:#}")),
            }
        }
        ("POST", "/revoke") => revoke(&relay.lock().unwrap_or_else(|e| e.into_inner()), &body),
        _ => (404, String::new()),
    };
    let reason = match status {
        200 => "OK",
        204 => "No Content",
        404 => "Not Found",
        _ => "Internal Server Error",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nAccess-Control-Allow-Origin: *\r\nAccess-Control-Allow-Methods: POST, OPTIONS\r\n\
         Access-Control-Allow-Headers: *\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        note.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(note.as_bytes())?;
    Ok(format!("{method} {path} -> {status} {note}").trim_end().to_owned())
}

fn revoke(relay: &Relay, body: &[u8]) -> (u16, String) {
    let fingerprint = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) => v["fingerprint"].as_str().unwrap_or_default().to_owned(),
        Err(e) => return (404, format!("body is not JSON: {e}")),
    };
    let clients = match relay.clients() {
        Ok(c) => c,
        Err(e) => return (500, format!("{e:#}")),
    };
    let Some(name) = clients.iter().find(|c| c["fingerprint"] == fingerprint.as_str()).and_then(|c| c["name"].as_str())
    else {
        return (404, format!("no client with fingerprint {fingerprint:?}"));
    };
    match relay.revoke(name) {
        Ok(()) => (200, format!("revoked {name}")),
        Err(e) => (500, format!("{e:#}")),
    }
}

fn read_request(stream: &mut TcpStream) -> anyhow::Result<(String, String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = super::webdriver::read_retrying(stream, &mut chunk)?;
        anyhow::ensure!(n > 0, "connection closed before a whole request");
        buf.extend_from_slice(&chunk[..n]);
        anyhow::ensure!(buf.len() <= MAX_REQUEST, "request too large");
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        if let httparse::Status::Complete(head_len) = request.parse(&buf)? {
            let length = request
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse::<usize>().ok())
                .unwrap_or(0);
            anyhow::ensure!(head_len + length <= MAX_REQUEST, "request too large");
            let (method, path) =
                (request.method.unwrap_or_default().to_owned(), request.path.unwrap_or_default().to_owned());
            while buf.len() < head_len + length {
                let n = super::webdriver::read_retrying(stream, &mut chunk)?;
                anyhow::ensure!(n > 0, "connection closed inside the body");
                buf.extend_from_slice(&chunk[..n]);
            }
            return Ok((method, path, buf[head_len..head_len + length].to_vec()));
        }
    }
}
