//! The services a LAN host runs in the lab, served by the `hometun-labhost` binary.
//!
//! - HTTP/1.1 (keep-alive): `/` an HTML page naming the host, `/blob/<size>` known bytes (see
//!   [`crate::content`]; one `Range: bytes=...` range gives `206`), `/whoami` the peer's address
//!   as the host saw it (tells masquerade from routed mode), `/ws/echo` a WebSocket that echoes
//!   every message (it logs `ws-echo <peer> open` and `ws-echo <peer> closed`), `/ws/stuck` one that reads nothing, `/ws/flood` one that reads nothing and
//!   sends without pause (it logs `ws-flood sent <bytes>`), `/bye` a keep-alive answer after
//!   which the server closes the connection anyway (as an idle timeout would), `/upload` answers
//!   what it received as `<length> <sha256 hex> <length|chunked>` (the body's size, hash and
//!   framing; `/upload/slow` the same after reading nothing for 3 s, `/upload/pace/<bytes per
//!   second>` the same after reading nothing for 150 s and the body no faster than that
//!   from the start: an upload that outlasts a browser's limits, its window long closed),
//!   `/upload/form` the fields of a multipart/form-data body as JSON (see
//!   [`form_fields`]), `/upload/firmware` a firmware form's upload as `<length> <sha256 hex of
//!   its file> <length|chunked>`, `/later/<ms>` `later` after that many milliseconds (at most a minute),
//!   `/text/<size>` the blob's bytes as `text/plain` (a page too large to show), anything else 404. Every request body (`Content-Length` or chunked) is read, whatever the path.
//! - TCP echo (the lab uses port 7).
//! - A banner listener (the lab uses port 22) standing for a service an ACL must hide.
//! - A DNS responder for A queries over UDP with fixed records.
//!
//! Every accepted connection or query is logged as one line on stdout, `conn <service> <peer>`,
//! so a test can also ask a host who reached it.

use std::net::{Ipv4Addr, SocketAddr};

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use crate::content;

/// The banner the :22 stand-in sends on connect.
pub const BANNER: &[u8] = b"SSH-2.0-hometun-lab\r\n";
/// Largest HTTP request head the server reads before giving up on a connection.
const MAX_HEAD: usize = 16 * 1024;

/// Serves HTTP on `listener` forever; `host_name` goes into the index page.
pub async fn serve_http(listener: TcpListener, host_name: String) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else { continue };
        log_conn("http", peer);
        let name = host_name.clone();
        tokio::spawn(async move {
            if let Err(e) = http_connection(stream, peer, &name).await {
                println!("http {peer}: {e:#}");
            }
        });
    }
}

async fn http_connection(mut stream: TcpStream, peer: SocketAddr, host_name: &str) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(1024);
    loop {
        let Some(RequestHead {
            len: head_len,
            path,
            close,
            range,
            ws_key,
            is_head,
            body,
            content_type,
            method,
            cookie,
        }) = read_request_head(&mut stream, &mut buf).await?
        else {
            return Ok(());
        };
        buf.drain(..head_len);
        if path == "/upload/refused" {
            // A small device refusing a body too large for it at once, without reading it (a
            // firmware image over its flash size): the answer, then the connection closed with
            // the body unread, which the kernel turns into a reset.
            let refusal = "too large for this device\n";
            let head = format!(
                "HTTP/1.1 413 Payload Too Large\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{refusal}",
                refusal.len()
            );
            stream.write_all(head.as_bytes()).await?;
            return Ok(());
        }
        if path == "/upload/slow" {
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        }
        let later = path.strip_prefix("/later/").and_then(|ms| ms.parse::<u64>().ok()).filter(|ms| *ms <= 60_000);
        if let Some(ms) = later {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
        let mut pace = parse_upload_pace_path(&path).map(Pace::new);
        if pace.is_some() {
            // Busy elsewhere at first (a disk spinning up): the window fills and stays closed.
            // A buffer of its own, so the kernel does not grow it to megabytes meanwhile.
            rustix::net::sockopt::set_socket_recv_buffer_size(&stream, PACED_RECEIVE_BUFFER)?;
            tokio::time::sleep(PACED_HOLD).await;
        }
        let mut form = (path == "/upload/form" || path == "/upload/firmware").then(Vec::new);
        let received = read_request_body(&mut stream, &mut buf, body, &mut pace, form.as_mut()).await?;
        match (ws_key, path.as_str()) {
            (Some(key), "/ws/echo") => return ws_echo(stream, &key).await,
            (Some(key), "/ws/stuck") => return ws_stuck(stream, &key).await,
            (Some(key), "/ws/flood") => return ws_flood(stream, &key).await,
            _ => {}
        }
        let mut extra = String::new();
        let (status, ctype, body): (&str, &str, Body) = match path.as_str() {
            "/" | "/index.html" => {
                ("200 OK", "text/html; charset=utf-8", Body::Bytes(content::index_page(host_name).into()))
            }
            "/whoami" => ("200 OK", "text/plain", Body::Bytes(peer.ip().to_string().into())),
            p if p.split('?').next() == Some("/go.html") => {
                ("200 OK", "text/html", Body::Bytes(content::GO_PAGE.into()))
            }
            p if p.split('?').next() == Some("/went") => {
                let query = p.split_once('?').map_or("", |(_, q)| q);
                let page = content::went_page(&method, query, cookie.as_deref().unwrap_or_default());
                ("200 OK", "text/html", Body::Bytes(page.into_bytes()))
            }
            "/bye" => ("200 OK", "text/plain", Body::Bytes(b"bye\n".to_vec())),
            _ if later.is_some() => ("200 OK", "text/plain", Body::Bytes(b"later\n".to_vec())),
            p if p == "/upload" || p == "/upload/slow" || pace.is_some() => {
                ("200 OK", "text/plain", Body::Bytes(received.into_bytes()))
            }
            "/upload/form" => match form_fields(content_type.as_deref(), form.unwrap_or_default()).await {
                Ok(fields) => ("200 OK", "application/json", Body::Bytes(fields.to_string().into_bytes())),
                Err(e) => ("400 Bad Request", "text/plain", Body::Bytes(format!("{e:#}\n").into_bytes())),
            },
            "/upload/firmware" => match form_fields(content_type.as_deref(), form.unwrap_or_default()).await {
                Ok(fields) => {
                    let file = fields.as_array().into_iter().flatten().find(|f| !f["filename"].is_null());
                    let sha = file.and_then(|f| f["sha256"].as_str()).unwrap_or("no-file");
                    let words: Vec<&str> = received.split_whitespace().collect();
                    let answer = format!("{} {sha} {}", words.first().unwrap_or(&""), words.last().unwrap_or(&""));
                    ("200 OK", "text/plain", Body::Bytes(answer.into_bytes()))
                }
                Err(e) => ("400 Bad Request", "text/plain", Body::Bytes(format!("{e:#}\n").into_bytes())),
            },
            p if text_size(p).is_some() => {
                let size = text_size(p).unwrap_or_default();
                ("200 OK", "text/plain", Body::Blob { size, start: 0, end: size })
            }
            p => match (content::parse_drip_path(p), content::parse_blob_path(p), range.as_deref()) {
                (Some((secs, size)), _, _) => ("200 OK", "application/octet-stream", Body::Drip { size, secs }),
                (None, Some(size), Some(header)) => match byte_range(header, size) {
                    Some((start, end)) => {
                        extra = format!("Content-Range: bytes {start}-{}/{size}\r\n", end - 1);
                        ("206 Partial Content", "application/octet-stream", Body::Blob { size, start, end })
                    }
                    None => {
                        extra = format!("Content-Range: bytes */{size}\r\n");
                        ("416 Range Not Satisfiable", "text/plain", Body::Bytes(Vec::new()))
                    }
                },
                (None, Some(size), None) => {
                    ("200 OK", "application/octet-stream", Body::Blob { size, start: 0, end: size })
                }
                (None, None, _) => ("404 Not Found", "text/plain", Body::Bytes(b"not found\n".to_vec())),
            },
        };
        let len = match &body {
            Body::Bytes(b) => b.len() as u64,
            Body::Blob { start, end, .. } => end - start,
            Body::Drip { size, .. } => *size,
        };
        let conn = if close { "close" } else { "keep-alive" };
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len}\r\n{extra}Accept-Ranges: bytes\r\nConnection: {conn}\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await?;
        match body {
            _ if is_head => {}
            Body::Bytes(b) => stream.write_all(&b).await?,
            Body::Drip { size, secs } => {
                // Four pieces a second: the first at once, the last a quarter second before `secs` is up.
                let pieces = secs * 4;
                let mut chunk = vec![0u8; size.div_ceil(pieces) as usize];
                let mut offset = 0;
                let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
                while offset < size {
                    tick.tick().await;
                    let n = chunk.len().min((size - offset) as usize);
                    content::blob_bytes(size, offset, &mut chunk[..n]);
                    stream.write_all(&chunk[..n]).await?;
                    offset += n as u64;
                }
            }
            Body::Blob { size, start, end } => {
                let mut chunk = vec![0u8; 64 * 1024];
                let mut offset = start;
                while offset < end {
                    let n = chunk.len().min((end - offset) as usize);
                    content::blob_bytes(size, offset, &mut chunk[..n]);
                    stream.write_all(&chunk[..n]).await?;
                    offset += n as u64;
                }
            }
        }
        if path == "/bye" {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        if close || path == "/bye" {
            stream.shutdown().await?;
            // Lingering close: read until the client closes too. Dropping the socket at once
            // would make the kernel answer a late retransmission with a reset, which can
            // destroy response bytes the client has not read yet.
            let mut sink = [0u8; 4096];
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), async {
                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
            })
            .await;
            return Ok(());
        }
    }
}

/// The size a `/text/<size>` path asks for (at most 1 GiB).
fn text_size(path: &str) -> Option<u64> {
    path.strip_prefix("/text/")?.parse().ok().filter(|size| *size <= 1 << 30)
}

enum Body {
    Bytes(Vec<u8>),
    /// Bytes `start..end` of the blob of `size` bytes.
    Blob {
        size: u64,
        start: u64,
        end: u64,
    },
    /// The blob of `size` bytes, spread evenly over `secs` seconds.
    Drip {
        size: u64,
        secs: u64,
    },
}

struct RequestHead {
    len: usize,
    path: String,
    close: bool,
    range: Option<String>,
    /// `Sec-WebSocket-Key` of an upgrade request.
    ws_key: Option<String>,
    /// A `HEAD` request: the answer has no body.
    is_head: bool,
    /// How the request body is framed.
    body: RequestBody,
    /// `Content-Type`, as sent.
    content_type: Option<String>,
    /// The method, and the `Cookie` header as sent (`/went` shows both).
    method: String,
    cookie: Option<String>,
}

/// A request body's framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequestBody {
    /// `Content-Length` (0 when absent).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// Largest body `/upload/form` takes.
const MAX_FORM: usize = 32 << 20;

/// The fields of a multipart/form-data body (parsed by `multer`) as JSON: for each, `name`,
/// `filename` and `type` (null when absent), `length` and `sha256`, and `text` when it is not a file.
async fn form_fields(content_type: Option<&str>, body: Vec<u8>) -> anyhow::Result<serde_json::Value> {
    let boundary = multer::parse_boundary(content_type.context("no Content-Type")?)?;
    let body = futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(bytes::Bytes::from(body)) });
    let mut form = multer::Multipart::new(body, boundary);
    let mut fields = Vec::new();
    while let Some(field) = form.next_field().await? {
        let name = field.name().map(str::to_owned);
        let filename = field.file_name().map(str::to_owned);
        let kind = field.content_type().map(ToString::to_string);
        let data = field.bytes().await?;
        let text = filename.is_none().then(|| String::from_utf8_lossy(&data).into_owned());
        fields.push(serde_json::json!({
            "name": name, "filename": filename, "type": kind, "length": data.len(),
            "sha256": crate::apps::sha256_hex(&data), "text": text,
        }));
    }
    Ok(serde_json::Value::Array(fields))
}

/// How long a paced upload's reader takes nothing before it starts (then catches up with its
/// pace): longer than two of the sender's longest probe intervals (60 s), so a sender that
/// cannot tell a closed window from a silent peer gives up.
const PACED_HOLD: std::time::Duration = std::time::Duration::from_secs(150);
/// The receive buffer of a paced upload's connection (the kernel doubles it).
const PACED_RECEIVE_BUFFER: usize = 128 * 1024;

/// Slowest pace of a `/upload/pace/<bytes per second>` upload (a KiB a second).
pub const MIN_UPLOAD_PACE: u64 = 1024;

/// The path whose request body a lab host reads no faster than `bytes_per_sec`.
pub fn upload_pace_path(bytes_per_sec: u64) -> String {
    format!("/upload/pace/{bytes_per_sec}")
}

/// Parses an [`upload_pace_path`]; `None` for any other path or a pace below [`MIN_UPLOAD_PACE`].
pub fn parse_upload_pace_path(path: &str) -> Option<u64> {
    let pace: u64 = path.strip_prefix("/upload/pace/")?.parse().ok()?;
    (pace >= MIN_UPLOAD_PACE).then_some(pace)
}

/// A request body read no faster than `per_sec` bytes a second, in pieces of a quarter second.
struct Pace {
    per_sec: u64,
    started: tokio::time::Instant,
    read: u64,
}

impl Pace {
    fn new(per_sec: u64) -> Self {
        Self { per_sec, started: tokio::time::Instant::now(), read: 0 }
    }
}

/// Reads the request body that follows the head (`buf` holds bytes already read; paced if
/// `pace`), keeping its bytes in `keep` when given (at most [`MAX_FORM`]), and says what arrived:
/// `<length> <sha256 hex> <length|chunked>`.
async fn read_request_body(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    body: RequestBody,
    pace: &mut Option<Pace>,
    mut keep: Option<&mut Vec<u8>>,
) -> anyhow::Result<String> {
    let mut digest = crate::apps::sha256();
    let mut take = |bytes: &[u8]| -> anyhow::Result<()> {
        digest.update(bytes);
        if let Some(kept) = keep.as_deref_mut() {
            anyhow::ensure!(kept.len() + bytes.len() <= MAX_FORM, "a form body over {MAX_FORM} bytes");
            kept.extend_from_slice(bytes);
        }
        Ok(())
    };
    let mut total = 0u64;
    match body {
        RequestBody::Length(length) => {
            while total < length {
                if buf.is_empty() {
                    fill(stream, buf, pace).await.context("the body ended before its Content-Length")?;
                }
                let n = buf.len().min(usize::try_from(length - total).unwrap_or(usize::MAX));
                take(&buf[..n])?;
                buf.drain(..n);
                total += n as u64;
            }
        }
        RequestBody::Chunked => loop {
            let line = read_line(stream, buf, pace).await?;
            let size = line.split(';').next().unwrap_or_default().trim();
            let size = u64::from_str_radix(size, 16).with_context(|| format!("bad chunk size line {line:?}"))?;
            if size == 0 {
                // Trailers, then the empty line.
                while !read_line(stream, buf, pace).await?.is_empty() {}
                break;
            }
            let mut left = size;
            while left > 0 {
                if buf.is_empty() {
                    fill(stream, buf, pace).await.context("the body ended inside a chunk")?;
                }
                let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                take(&buf[..n])?;
                buf.drain(..n);
                left -= n as u64;
            }
            total += size;
            anyhow::ensure!(read_line(stream, buf, pace).await?.is_empty(), "no CRLF after a chunk");
        },
    }
    let framing = if body == RequestBody::Chunked { "chunked" } else { "length" };
    Ok(format!("{total} {} {framing}\n", crate::apps::hex(digest.finish().as_ref())))
}

/// One CRLF-terminated line (without the CRLF), at most 4 KiB.
async fn read_line(stream: &mut TcpStream, buf: &mut Vec<u8>, pace: &mut Option<Pace>) -> anyhow::Result<String> {
    loop {
        if let Some(end) = buf.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 2);
            return Ok(line);
        }
        anyhow::ensure!(buf.len() < 4096, "line too long in a chunked body");
        fill(stream, buf, pace).await.context("the body ended inside a chunk line")?;
    }
}

/// Appends what the next read brings; fails when the peer closed. With a `pace`, reads at most a
/// quarter second's worth, then waits until the bytes read so far are due.
async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>, pace: &mut Option<Pace>) -> anyhow::Result<()> {
    let mut chunk = [0u8; 64 * 1024];
    let most = pace.as_ref().map_or(chunk.len(), |p| (p.per_sec / 4).clamp(256, chunk.len() as u64) as usize);
    let n = stream.read(&mut chunk[..most]).await?;
    anyhow::ensure!(n > 0, "the peer closed the connection");
    buf.extend_from_slice(&chunk[..n]);
    if let Some(p) = pace {
        p.read += n as u64;
        let due = std::time::Duration::from_secs_f64(p.read as f64 / p.per_sec as f64);
        tokio::time::sleep_until(p.started + due).await;
    }
    Ok(())
}

/// Answers a WebSocket upgrade and echoes every text and binary message until the close or the
/// connection's end, logging when it opened and when it ended (tests watch an app's socket go).
async fn ws_echo(mut stream: TcpStream, key: &str) -> anyhow::Result<()> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::protocol::Role;
    let peer = stream.peer_addr()?;
    ws_accept(&mut stream, key).await?;
    println!("ws-echo {peer} open");
    let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(stream, Role::Server, None).await;
    let echoed = async {
        while let Some(message) = ws.next().await {
            let message = message?;
            if message.is_text() || message.is_binary() {
                ws.send(message).await?;
            }
        }
        anyhow::Ok(())
    }
    .await;
    println!("ws-echo {peer} closed");
    echoed
}

/// A WebSocket whose server accepts the upgrade, then reads nothing for a minute (an app that
/// stopped taking messages): what the client sends piles up before it.
async fn ws_stuck(mut stream: TcpStream, key: &str) -> anyhow::Result<()> {
    ws_accept(&mut stream, key).await?;
    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    Ok(())
}

/// Most bytes `/ws/flood` sends, and for how long it tries.
const FLOOD_BYTES: u64 = 128 << 20;
const FLOOD_TIME: std::time::Duration = std::time::Duration::from_secs(8);

/// A WebSocket whose server accepts the upgrade and, half a second later, sends binary messages
/// of 32 KiB without pause while it reads nothing (an app streaming to a client whose messages it
/// stopped taking), until [`FLOOD_BYTES`] have gone or [`FLOOD_TIME`] has passed. It logs
/// `ws-flood sent <bytes>` (whole messages the kernel took) and drops the connection: how far it
/// got is what the other side took in.
async fn ws_flood(mut stream: TcpStream, key: &str) -> anyhow::Result<()> {
    ws_accept(&mut stream, key).await?;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let mut frame = vec![0x82, 126, 0x80, 0x00];
    frame.resize(4 + (32 << 10), 0x5a);
    let deadline = tokio::time::Instant::now() + FLOOD_TIME;
    let mut sent = 0u64;
    while sent < FLOOD_BYTES {
        match tokio::time::timeout_at(deadline, stream.write_all(&frame)).await {
            Ok(result) => result?,
            Err(_) => break,
        }
        sent += frame.len() as u64;
    }
    println!("ws-flood sent {sent}");
    Ok(())
}

/// Answers a WebSocket upgrade with `key`.
async fn ws_accept(stream: &mut TcpStream, key: &str) -> anyhow::Result<()> {
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await?;
    Ok(())
}

/// One `bytes=` range of a body of `size` bytes as `start..end`; `None` when it is not a single
/// satisfiable range (`a-b`, `a-` or `-n`).
fn byte_range(header: &str, size: u64) -> Option<(u64, u64)> {
    let spec = header.trim().strip_prefix("bytes=")?;
    let (first, last) = spec.split_once('-')?;
    let (start, end) = match (first.trim(), last.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (size.saturating_sub(n), size)
        }
        (a, "") => (a.parse().ok()?, size),
        (a, b) => (a.parse().ok()?, b.parse::<u64>().ok()?.saturating_add(1).min(size)),
    };
    (start < end).then_some((start, end))
}

/// Reads one request head; `None` when the peer closed cleanly between requests.
async fn read_request_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<Option<RequestHead>> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        if let httparse::Status::Complete(len) = req.parse(buf).context("bad request")? {
            let path = req.path.unwrap_or("/").to_owned();
            let close = req.version == Some(0)
                || req
                    .headers
                    .iter()
                    .any(|h| h.name.eq_ignore_ascii_case("connection") && h.value.eq_ignore_ascii_case(b"close"));
            // A header's value as sent, and trimmed and lowercased (for tokens).
            let raw = |name: &str| {
                req.headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(name))
                    .map(|h| String::from_utf8_lossy(h.value).into_owned())
            };
            let header = |name: &str| raw(name).map(|v| v.trim().to_ascii_lowercase());
            let range = raw("range");
            let ws_key = raw("sec-websocket-key");
            let content_type = raw("content-type");
            let is_head = req.method == Some("HEAD");
            let body = match (header("transfer-encoding"), header("content-length")) {
                (Some(coding), _) if coding == "chunked" => RequestBody::Chunked,
                (Some(coding), _) => anyhow::bail!("unsupported Transfer-Encoding {coding:?}"),
                (None, Some(length)) => RequestBody::Length(length.parse().context("bad Content-Length")?),
                (None, None) => RequestBody::Length(0),
            };
            let method = req.method.unwrap_or_default().to_owned();
            let cookie = raw("cookie");
            return Ok(Some(RequestHead {
                len,
                path,
                close,
                range,
                ws_key,
                is_head,
                body,
                content_type,
                method,
                cookie,
            }));
        }
        anyhow::ensure!(buf.len() < MAX_HEAD, "request head too long");
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            anyhow::ensure!(buf.is_empty(), "peer closed inside a request head");
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Echoes every byte back on each connection to `listener`, forever.
pub async fn serve_echo(listener: TcpListener) {
    loop {
        let Ok((mut stream, peer)) = listener.accept().await else { continue };
        log_conn("echo", peer);
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let (mut r, mut w) = stream.split();
            let _ = tokio::io::copy(&mut r, &mut w).await;
        });
    }
}

/// Sends [`BANNER`] on each connection to `listener`, then waits for the peer to close.
pub async fn serve_banner(listener: TcpListener) {
    loop {
        let Ok((mut stream, peer)) = listener.accept().await else { continue };
        log_conn("banner", peer);
        tokio::spawn(async move {
            if stream.write_all(BANNER).await.is_ok() {
                let mut sink = [0u8; 1024];
                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
            }
        });
    }
}

/// Answers A queries on `socket` from `records` (name → address); other names get NXDOMAIN.
pub async fn serve_dns(socket: UdpSocket, records: Vec<(String, Ipv4Addr)>) {
    let mut buf = [0u8; 512];
    loop {
        let Ok((n, peer)) = socket.recv_from(&mut buf).await else { continue };
        log_conn("dns", peer);
        if let Some(reply) = dns_reply(&buf[..n], &records) {
            let _ = socket.send_to(&reply, peer).await;
        }
    }
}

/// Builds the answer to one DNS query; `None` when the query is malformed (it is then ignored).
pub fn dns_reply(query: &[u8], records: &[(String, Ipv4Addr)]) -> Option<Vec<u8>> {
    let header = query.get(..12)?;
    if header[2] & 0x80 != 0 || u16::from_be_bytes([header[4], header[5]]) != 1 {
        return None;
    }
    let mut pos = 12;
    let mut labels = Vec::new();
    loop {
        let len = *query.get(pos)? as usize;
        pos += 1;
        if len == 0 {
            break;
        }
        if len > 63 {
            return None;
        }
        labels.push(String::from_utf8_lossy(query.get(pos..pos + len)?).to_ascii_lowercase());
        pos += len;
    }
    let qtype = u16::from_be_bytes([*query.get(pos)?, *query.get(pos + 1)?]);
    let question_end = pos + 4;
    let question = query.get(12..question_end)?;
    let name = labels.join(".");
    let known = records.iter().find(|(n, _)| n.eq_ignore_ascii_case(&name));
    let answer = known.filter(|_| qtype == 1).map(|(_, addr)| *addr);

    let mut reply = Vec::with_capacity(question_end + 16);
    reply.extend_from_slice(&header[..2]);
    let rcode = if known.is_some() { 0 } else { 3 };
    reply.push(0x80 | (header[2] & 0x01)); // response, copy RD
    reply.push(0x80 | rcode); // RA
    reply.extend_from_slice(&[0, 1, 0, u8::from(answer.is_some()), 0, 0, 0, 0]);
    reply.extend_from_slice(question);
    if let Some(addr) = answer {
        reply.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        reply.extend_from_slice(&addr.octets());
    }
    Some(reply)
}

fn log_conn(service: &str, peer: SocketAddr) {
    println!("conn {service} {peer}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&[0, 1]);
        q
    }

    #[test]
    fn a_single_byte_range_is_served_and_others_are_not() {
        assert_eq!(byte_range("bytes=0-99", 1000), Some((0, 100)));
        assert_eq!(byte_range("bytes=990-", 1000), Some((990, 1000)));
        assert_eq!(byte_range("bytes=-10", 1000), Some((990, 1000)));
        assert_eq!(byte_range("bytes=900-5000", 1000), Some((900, 1000)));
        assert_eq!(byte_range("bytes=1000-", 1000), None);
        assert_eq!(byte_range("bytes=5-1", 1000), None);
        assert_eq!(byte_range("items=0-1", 1000), None);
        assert_eq!(byte_range("bytes=x-1", 1000), None);
    }

    #[test]
    fn upload_paces_round_trip_and_are_bounded() {
        assert_eq!(parse_upload_pace_path(&upload_pace_path(16_667)), Some(16_667));
        assert_eq!(parse_upload_pace_path(&upload_pace_path(MIN_UPLOAD_PACE - 1)), None);
        assert_eq!(parse_upload_pace_path("/upload/pace/x"), None);
        assert_eq!(parse_upload_pace_path("/upload"), None);
    }

    #[test]
    fn known_name_gets_its_address() {
        let records = vec![("nas.home.arpa".to_owned(), Ipv4Addr::new(192, 168, 0, 10))];
        let q = query("NAS.home.arpa", 1);
        let r = dns_reply(&q, &records).expect("reply");
        assert_eq!(&r[..2], &[0x12, 0x34]);
        assert_eq!(r[3] & 0x0f, 0, "NOERROR");
        assert_eq!(u16::from_be_bytes([r[6], r[7]]), 1, "one answer");
        assert_eq!(&r[r.len() - 4..], &[192, 168, 0, 10]);
    }

    #[test]
    fn unknown_name_is_nxdomain_and_garbage_is_ignored() {
        let r = dns_reply(&query("nope.home.arpa", 1), &[]).expect("reply");
        assert_eq!(r[3] & 0x0f, 3);
        assert_eq!(dns_reply(&[1, 2, 3], &[]), None);
        let mut truncated = query("nas.home.arpa", 1);
        truncated.truncate(20);
        assert_eq!(dns_reply(&truncated, &[]), None);
    }
}
