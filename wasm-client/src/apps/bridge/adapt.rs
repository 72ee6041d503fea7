//! The bridge's glue to the request/response mapping: a checked port request becomes the
//! HTTP/1.1 request for the target, a response head becomes the head the app origin sees.
//!
//! Request: `Host` is the target (from the URL), `Origin`/`Referer` on the app origin become
//! the LAN origin, `Cookie` comes from the jar, hop-by-hop and browser-only headers go.
//! Response: `Set-Cookie` is taken out for the jar; `X-Frame-Options`, `Clear-Site-Data`,
//! `Strict-Transport-Security`, hop-by-hop headers and a CSP's `frame-ancestors` go;
//! `Location` on the LAN origin is mapped to the app origin.

use super::message::FetchRequest;
use super::port::App;
use crate::error::ClientError;
use crate::http::{HttpUrl, Request, ResponseHead};

const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
];
const REQUEST_DROPPED: [&str; 3] = ["cookie", "host", "content-length"];
const RESPONSE_DROPPED: [&str; 3] = ["x-frame-options", "clear-site-data", "strict-transport-security"];

fn is_one_of(name: &str, list: &[&str]) -> bool {
    list.iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// `http://A.B.C.D[:PORT]`, the LAN origin of the target.
pub fn lan_origin(app: &App) -> String {
    match app.target.port() {
        80 => format!("http://{}", app.target.ip()),
        port => format!("http://{}:{port}", app.target.ip()),
    }
}

/// The HTTP request for `request` on the app's target, with `cookie` from the jar.
pub fn request(app: &App, request: &FetchRequest, cookie: Option<&str>) -> Result<Request, ClientError> {
    let url = HttpUrl { host: app.target.ip().to_string(), port: app.target.port(), target: request.path.clone() };
    let mut out = Request::new(&request.method, url);
    out.body = request.body.clone();
    let lan = lan_origin(app);
    for (name, value) in &request.headers {
        if is_one_of(name, &HOP_BY_HOP) || is_one_of(name, &REQUEST_DROPPED) {
            continue;
        }
        let value = if name.eq_ignore_ascii_case("origin") || name.eq_ignore_ascii_case("referer") {
            match value.strip_prefix(&app.origin) {
                Some(rest) => format!("{lan}{rest}"),
                None => value.clone(),
            }
        } else {
            value.clone()
        };
        out.headers.push((name.clone(), value));
    }
    if let Some(cookie) = cookie.filter(|c| !c.is_empty()) {
        out.headers.push(("Cookie".into(), cookie.to_owned()));
    }
    Ok(out)
}

/// A response head as the app origin sees it.
#[derive(Debug, Default)]
pub struct Mapped {
    /// Headers to post in `head`.
    pub headers: Vec<(String, String)>,
    /// `Set-Cookie` values for the jar.
    pub set_cookies: Vec<String>,
    /// Whether the body is HTML.
    pub is_html: bool,
}

/// Maps a response head from the target.
pub fn response(app: &App, head: &ResponseHead) -> Mapped {
    let mut mapped = Mapped::default();
    let lan = lan_origin(app);
    for (name, value) in &head.headers {
        if name.eq_ignore_ascii_case("set-cookie") {
            mapped.set_cookies.push(value.clone());
        } else if is_one_of(name, &HOP_BY_HOP) || is_one_of(name, &RESPONSE_DROPPED) {
        } else if name.eq_ignore_ascii_case("location") {
            let value = match value.strip_prefix(&lan) {
                Some(rest) if rest.is_empty() || rest.starts_with(['/', '?', '#']) => format!("{}{rest}", app.origin),
                _ => value.clone(),
            };
            mapped.headers.push((name.clone(), value));
        } else if name.eq_ignore_ascii_case("content-security-policy") {
            let kept: Vec<&str> =
                value.split(';').filter(|d| !d.trim().to_ascii_lowercase().starts_with("frame-ancestors")).collect();
            mapped.headers.push((name.clone(), kept.join(";")));
        } else {
            if name.eq_ignore_ascii_case("content-type") {
                mapped.is_html = value.trim().to_ascii_lowercase().starts_with("text/html");
            }
            mapped.headers.push((name.clone(), value.clone()));
        }
    }
    mapped
}

/// The streaming shim injector for an HTML document whose script-visible cookies are `cookies`.
pub fn injector(cookies: &[(String, String, String)]) -> Injector {
    Injector::new(cookies)
}

/// Puts the shim's `<script>` right after the doctype (or at the start) of a streamed page.
pub struct Injector {
    tag: Option<Vec<u8>>,
    held: Vec<u8>,
}

/// Bytes looked at for a doctype before the shim goes in at the start.
const DOCTYPE_WINDOW: usize = 1024;

impl Injector {
    fn new(cookies: &[(String, String, String)]) -> Self {
        let json = {
            let items: Vec<String> = cookies
                .iter()
                .map(|(n, v, p)| format!("[{},{},{}]", json_string(n), json_string(v), json_string(p)))
                .collect();
            format!("[{}]", items.join(","))
        };
        let tag = format!("<script src=\"/__ht/shim.js\" data-hometun-cookies=\"{}\"></script>", html_escape(&json));
        Self { tag: Some(tag.into_bytes()), held: Vec::new() }
    }

    /// The bytes to pass on for `data`.
    pub fn feed(&mut self, data: &[u8]) -> Vec<u8> {
        if self.tag.is_none() {
            return data.to_vec();
        }
        self.held.extend_from_slice(data);
        let start = self.held.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(self.held.len());
        let rest = &self.held[start..];
        let prefix = b"<!doctype";
        let n = rest.len().min(prefix.len());
        if rest[..n].eq_ignore_ascii_case(&prefix[..n]) {
            if let Some(end) = rest.iter().position(|&b| b == b'>') {
                return self.insert_at(start + end + 1);
            }
            if self.held.len() < DOCTYPE_WINDOW {
                return Vec::new();
            }
        } else if rest.is_empty() && self.held.len() < DOCTYPE_WINDOW {
            return Vec::new();
        }
        self.insert_at(0)
    }

    fn insert_at(&mut self, at: usize) -> Vec<u8> {
        let tag = self.tag.take().unwrap_or_default();
        let mut out = Vec::with_capacity(self.held.len() + tag.len());
        out.extend_from_slice(&self.held[..at]);
        out.extend_from_slice(&tag);
        out.extend_from_slice(&self.held[at..]);
        self.held.clear();
        out
    }

    /// The end of the body: whatever is still held, with the shim when it never went in.
    pub fn finish(mut self) -> Vec<u8> {
        if self.tag.is_some() {
            return self.insert_at(0);
        }
        std::mem::take(&mut self.held)
    }
}

fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;")
}
