//! `hometun-bench lan-serve`: the LAN host's services for every case (run on 192.168.0.10).
//!
//! - HTTP/1.1: `GET /bytes/<n>` answers `n` bytes of [`crate::pattern`]; `POST /sink` reads
//!   the body, checks every byte against the pattern and answers `received <n>`.
//! - TCP echo: every byte straight back (TCP_NODELAY).
//!
//! Blocking sockets, a thread per connection (at most [`MAX_CONNECTIONS`]); every socket has
//! read and write timeouts, so a stalled peer frees its thread.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::pattern;

/// Connections served at once; more are closed at accept.
pub(crate) const MAX_CONNECTIONS: usize = 1024;
/// Largest GET the server answers (bounds what one request can make it send).
pub(crate) const MAX_BYTES: u64 = 16 << 30;
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// Binds both services, prints `ready`, then serves until killed.
pub(crate) fn serve(http: SocketAddr, echo: SocketAddr) -> anyhow::Result<()> {
    let http = TcpListener::bind(http).with_context(|| format!("bind {http}"))?;
    let echo = TcpListener::bind(echo).with_context(|| format!("bind {echo}"))?;
    let active = Arc::new(AtomicUsize::new(0));
    let echo_active = active.clone();
    std::thread::spawn(move || accept_loop(echo, echo_active, echo_connection));
    println!("ready");
    accept_loop(http, active, http_connection);
    Ok(())
}

fn accept_loop(listener: TcpListener, active: Arc<AtomicUsize>, handler: fn(TcpStream) -> anyhow::Result<()>) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        let active = active.clone();
        std::thread::spawn(move || {
            let peer = stream.peer_addr().ok();
            if let Err(e) =
                stream.set_read_timeout(Some(IO_TIMEOUT)).and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)))
            {
                eprintln!("{peer:?}: {e}");
            } else if let Err(e) = handler(stream) {
                eprintln!("{peer:?}: {e:#}");
            }
            active.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

fn echo_connection(mut stream: TcpStream) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n])?;
    }
}

/// A request head: method, path, Content-Length, and how many bytes of the buffer it took.
struct Request {
    method: String,
    path: String,
    content_length: u64,
    head_len: usize,
}

fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<Request> {
    let mut chunk = [0u8; 4096];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        if let httparse::Status::Complete(head_len) = req.parse(buf)? {
            let content_length = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .map(|h| {
                    std::str::from_utf8(h.value).ok().and_then(|v| v.trim().parse().ok()).context("bad Content-Length")
                })
                .transpose()?
                .unwrap_or(0);
            return Ok(Request {
                method: req.method.unwrap_or("").to_owned(),
                path: req.path.unwrap_or("").to_owned(),
                content_length,
                head_len,
            });
        }
        anyhow::ensure!(buf.len() < 16 * 1024, "request head too long");
        let n = stream.read(&mut chunk)?;
        anyhow::ensure!(n > 0, "peer closed inside the request head");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn http_connection(mut stream: TcpStream) -> anyhow::Result<()> {
    let mut buf = Vec::with_capacity(4096);
    let request = read_head(&mut stream, &mut buf)?;
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", path) if path.starts_with("/bytes/") => {
            let size: u64 = path["/bytes/".len()..].parse().context("bad size")?;
            anyhow::ensure!(size <= MAX_BYTES, "size {size} above {MAX_BYTES}");
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {size}\r\n\
                 Cache-Control: no-store\r\nConnection: close\r\n\r\n"
            );
            stream.write_all(head.as_bytes())?;
            let mut sent = 0u64;
            while sent < size {
                let part = pattern::slice_at(sent, (size - sent).min(pattern::BLOCK as u64) as usize);
                stream.write_all(part)?;
                sent += part.len() as u64;
            }
            stream.flush()?;
        }
        ("POST", "/sink") => {
            let size = request.content_length;
            let mut received = 0u64;
            let early = &buf[request.head_len..];
            let take = early.len().min(size as usize);
            check_part(0, &early[..take])?;
            received += take as u64;
            let mut chunk = vec![0u8; 256 * 1024];
            while received < size {
                let want = chunk.len().min((size - received) as usize);
                let n = stream.read(&mut chunk[..want])?;
                if n == 0 {
                    bail!("body ended after {received} of {size} bytes");
                }
                check_part(received, &chunk[..n])?;
                received += n as u64;
            }
            let body = format!("received {received}\n");
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes())?;
            stream.write_all(body.as_bytes())?;
        }
        _ => {
            stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
        }
    }
    Ok(())
}

fn check_part(offset: u64, got: &[u8]) -> anyhow::Result<()> {
    pattern::check(offset, got).map_err(|at| anyhow::anyhow!("upload differs from the pattern at byte {at}"))
}
