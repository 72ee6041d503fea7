//! A plain HTTP/1.0 client that runs inside a lab namespace: one request per connection, the
//! answer read to its end (HTTP/1.0, so no chunked bodies), every call bounded in time.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{ensure, Context};

use crate::lab::{Lab, Node};

/// The longest one request may take.
const TIMEOUT: Duration = Duration::from_secs(20);
/// The largest answer read (the big file plus its head).
const MAX_ANSWER: usize = (64 << 20) + (64 << 10);

/// One HTTP answer.
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The header fields, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// The first header field named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `GET path` on `addr` from inside `from`, with extra `headers`.
pub fn get(lab: &Lab, from: Node, addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> anyhow::Result<Answer> {
    request(lab, from, addr, "GET", path, headers, &[])
}

/// One request with a body (`Content-Length` added when `body` is not empty).
pub fn request(
    lab: &Lab,
    from: Node,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> anyhow::Result<Answer> {
    let mut stream = crate::browser::connect_in(&lab.netns(from), addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let mut head = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.take(MAX_ANSWER as u64 + 1).read_to_end(&mut raw).with_context(|| format!("{method} {path} on {addr}"))?;
    ensure!(raw.len() <= MAX_ANSWER, "{method} {path} on {addr}: answer too large");
    let mut fields = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut fields);
    let httparse::Status::Complete(head_len) = response.parse(&raw)? else {
        anyhow::bail!("{method} {path} on {addr}: incomplete answer ({} bytes)", raw.len());
    };
    let headers = response
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).into_owned()))
        .collect();
    Ok(Answer { status: response.code.unwrap_or(0), headers, body: raw[head_len..].to_vec() })
}
