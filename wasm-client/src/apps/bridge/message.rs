//! The port protocol's incoming messages as Rust values, and the checks every one must pass
//! before anything is sent to the LAN (see `docs/web-apps.md`, "Port protocol").
//!
//! Pure: `decode` reads the JavaScript object into these types; this module decides whether
//! the values are acceptable. A message that fails gets `error` for its id, never a panic.

use crate::apps::headers;
use crate::http::BodyFraming;

/// Largest buffered request body (`fetch` with `body`); a streamed one has no total cap.
pub const MAX_BODY: usize = 64 << 20;
/// Largest `body` chunk of a streamed request body (the worker's `BODY_CHUNK`).
pub const MAX_BODY_CHUNK: usize = 256 * 1024;
pub use crate::apps::headers::{MAX_HEADERS, MAX_HEADER_BYTES, MAX_PATH};
/// Longest method name.
pub const MAX_METHOD: usize = 32;
/// Largest WebSocket message the page may send.
pub const MAX_WS_MESSAGE: usize = 16 << 20;
/// Most WebSocket subprotocols offered.
pub const MAX_PROTOCOLS: usize = 16;
/// Longest `document.cookie = ...` string.
pub const MAX_COOKIE: usize = 8 * 1024;
/// Longest request id (when it is a string).
pub const MAX_ID: usize = 128;
/// Longest app origin a `prepare` names (a DNS name is at most 253 bytes, plus scheme and port).
pub const MAX_ORIGIN: usize = 300;

/// A request id as the asker chose it: a number or a short string, echoed back as given.
#[derive(Debug, Clone, PartialEq)]
pub enum Id {
    /// A finite number.
    Number(f64),
    /// A string of at most [`MAX_ID`] bytes.
    Text(String),
}

impl Id {
    /// A key that tells ids apart (a number and a string never collide).
    pub fn key(&self) -> String {
        match self {
            Self::Number(n) => format!("n{n}"),
            Self::Text(t) => format!("s{t}"),
        }
    }
}

/// A WebSocket message body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsData {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
}

impl WsData {
    /// Its size in bytes.
    pub fn len(&self) -> usize {
        match self {
            Self::Text(t) => t.len(),
            Self::Binary(b) => b.len(),
        }
    }

    /// Whether it has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One HTTP request from the service worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    /// Method, as sent (a token).
    pub method: String,
    /// Path and query, starting with one `/`.
    pub path: String,
    /// Request headers in order.
    pub headers: Vec<(String, String)>,
    /// Body bytes (empty for none, or when the body is streamed).
    pub body: Vec<u8>,
    /// `Some` when the body follows in `body` messages (`streamBody: true`): `Content-Length`
    /// when the browser's header gave one, else chunked.
    pub stream_body: Option<BodyFraming>,
    /// `Request.destination` (`document`, `iframe`, `script`, `""`, ...).
    pub destination: String,
    /// A navigation with a body that no page of the app announced (`crossSite: true`): a form
    /// another site posted here. It goes without the jar's cookies and the sign-in, as a
    /// browser sends no `SameSite=Lax` cookies (its default) with such a request.
    pub cross_site: bool,
}

impl FetchRequest {
    /// Whether the response is an HTML document the shim goes into, as far as the request
    /// tells (the response's `Content-Type` decides the rest).
    pub fn is_document(&self) -> bool {
        matches!(self.destination.as_str(), "document" | "iframe" | "frame")
    }
}

/// One checked message from the port.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// `fetch`: one HTTP request.
    Fetch(FetchRequest),
    /// `more`: the reader took one chunk.
    More,
    /// `body`: the next piece of a streamed request body.
    Body(Vec<u8>),
    /// `body-end`: the streamed request body is complete.
    BodyEnd,
    /// `cancel`: the reader gave up.
    Cancel,
    /// `ping`: answered by `pong`.
    Ping,
    /// `get-cookies`: the jar's script-visible cookies (a `cookies` message), then `ok`; a page's
    /// port asks when it opens, as the jar may have changed since the page was served.
    GetCookies,
    /// `ws-open`: a WebSocket upgrade at `path`.
    WsOpen {
        /// Path and query.
        path: String,
        /// Offered subprotocols.
        protocols: Vec<String>,
    },
    /// `ws-send`: one message.
    WsSend(WsData),
    /// `ws-close`: close with a code and reason.
    WsClose {
        /// Close code (1000 or 3000-4999), when given.
        code: Option<u16>,
        /// Close reason (at most 123 bytes).
        reason: String,
    },
    /// `set-cookie`: one `document.cookie = ...` string, and the path of the page that set it
    /// (`/` when not given).
    SetCookie {
        /// The string.
        cookie: String,
        /// The page's `location.pathname`.
        path: String,
    },
    /// `prepare`: the page is about to go to another app origin; the relay is asked for the
    /// certificate of its name.
    Prepare(String),
}

/// Why a message was refused. Sent back as the `message` of an `error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The message is not an object with a string `op`.
    #[error("a port message must be an object with a string op")]
    NotAMessage,
    /// The message has no usable `id` (a finite number or a short string).
    #[error("a port message needs an id (a number or a string of at most {MAX_ID} bytes)")]
    NoId,
    /// `op` names no message of the protocol.
    #[error("unknown op {0:?}")]
    UnknownOp(String),
    /// A field is missing or of the wrong type.
    #[error("field {0} is missing or has the wrong type")]
    BadField(&'static str),
    /// The path does not start with a single `/` or contains bytes a request line cannot carry.
    #[error("path must start with one / (no scheme or host), be printable ASCII without spaces, and be at most {MAX_PATH} bytes")]
    BadPath,
    /// The method is not an HTTP token, or is one browsers never send.
    #[error("method {0:?} is not allowed")]
    BadMethod(String),
    /// A header name is not a token, or its value contains CR, LF or NUL.
    #[error("request header {0:?} cannot be sent")]
    BadHeader(String),
    /// More than [`MAX_HEADERS`] headers or [`MAX_HEADER_BYTES`] bytes of them.
    #[error("too many request headers (at most {MAX_HEADERS}, {MAX_HEADER_BYTES} bytes)")]
    TooManyHeaders,
    /// A buffered body is larger than [`MAX_BODY`].
    #[error("request body larger than {MAX_BODY} bytes (a streamed body has no such limit)")]
    BodyTooLarge,
    /// A `body` chunk is larger than [`MAX_BODY_CHUNK`].
    #[error("request body chunk larger than {MAX_BODY_CHUNK} bytes")]
    BodyChunkTooLarge,
    /// `body` or `body-end` for a request that streams no body, or after its `body-end`.
    #[error("body or body-end for a request that expects none (no streamBody, or after body-end)")]
    UnexpectedBody,
    /// More `body` chunks than the window allows before a `body-more`.
    #[error("request body chunk sent without credit (at most {window} chunks ahead of body-more)", window = super::credit::WINDOW)]
    BodyWithoutCredit,
    /// The browser's `Content-Length` of a streamed body is not a number, or two differ.
    #[error("Content-Length of a streamed body must be one decimal number")]
    BadContentLength,
    /// A subprotocol is not a token, or too many are offered.
    #[error("WebSocket subprotocols must be at most {MAX_PROTOCOLS} distinct tokens")]
    BadProtocols,
    /// A WebSocket message larger than [`MAX_WS_MESSAGE`].
    #[error("WebSocket message larger than {MAX_WS_MESSAGE} bytes")]
    WsMessageTooLarge,
    /// A close code other than 1000 or 3000-4999, or a reason over 123 bytes.
    #[error("close code must be 1000 or 3000-4999 and the reason at most 123 bytes")]
    BadClose,
    /// The origin of a `prepare` is empty or too long.
    #[error("origin must be 1 to {MAX_ORIGIN} bytes")]
    BadOrigin,
    /// The cookie string is empty, too long, or has control characters.
    #[error("cookie must be 1 to {MAX_COOKIE} bytes without control characters")]
    BadCookie,
    /// What app pages sent that waits in the launcher is at its budget already.
    #[error(
        "the hometun page holds too much for app pages already (at most {} MiB, {} MiB for one LAN host): try again",
        super::budget::MAX_HELD >> 20,
        super::budget::MAX_PER_HOST >> 20
    )]
    LauncherFull,
    /// The id is already in use on this port.
    #[error("id is already in use on this port")]
    IdInUse,
    /// Too many requests and sockets open on this port at once.
    #[error("too many open requests on this port")]
    TooManyOpen,
}

/// Whether `b` may appear in an HTTP token (RFC 9110 `tchar`).
pub fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token(text: &str, max: usize) -> bool {
    !text.is_empty() && text.len() <= max && text.bytes().all(is_token_byte)
}

/// Checks a request path: one leading `/` (never `//` or `/\`, which browsers read as a host),
/// printable ASCII without spaces (the service worker sends `pathname + search`, already
/// percent-encoded), no fragment.
pub fn check_path(path: &str) -> Result<(), MessageError> {
    // The request-path rule, and stricter here: a port's paths never look like another host
    // (`//host`, `/\\host`) and carry no fragment.
    let refused = path.starts_with("//") || path.starts_with("/\\") || path.contains('#');
    if headers::check_path(path).is_err() || refused {
        return Err(MessageError::BadPath);
    }
    Ok(())
}

/// Checks a method: a token of at most [`MAX_METHOD`] bytes, and not one browsers forbid
/// (`CONNECT`, `TRACE`, `TRACK`).
pub fn check_method(method: &str) -> Result<(), MessageError> {
    let forbidden = ["CONNECT", "TRACE", "TRACK"].iter().any(|m| m.eq_ignore_ascii_case(method));
    if !is_token(method, MAX_METHOD) || forbidden {
        return Err(MessageError::BadMethod(method.chars().take(MAX_METHOD).collect()));
    }
    Ok(())
}

/// Checks request headers: token names, values without CR, LF or NUL, bounded in count and size.
pub fn check_headers(headers: &[(String, String)]) -> Result<(), MessageError> {
    headers::check_bounds(headers).map_err(|_| MessageError::TooManyHeaders)?;
    for (name, value) in headers {
        if !is_token(name, MAX_HEADER_BYTES) || value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
            return Err(MessageError::BadHeader(name.chars().take(64).collect()));
        }
    }
    Ok(())
}

/// Checks a whole fetch request.
pub fn check_fetch(request: &FetchRequest) -> Result<(), MessageError> {
    check_method(&request.method)?;
    check_path(&request.path)?;
    check_headers(&request.headers)?;
    if request.body.len() > MAX_BODY {
        return Err(MessageError::BodyTooLarge);
    }
    if request.stream_body.is_some() && !request.body.is_empty() {
        return Err(MessageError::BadField("body"));
    }
    Ok(())
}

/// The framing of a streamed body: the browser's `Content-Length` when it sent one (every copy
/// the same decimal number), else chunked. The header itself is never forwarded; the HTTP client
/// writes its own.
pub fn stream_framing(headers: &[(String, String)]) -> Result<BodyFraming, MessageError> {
    let mut length = None;
    for (_, value) in headers.iter().filter(|(name, _)| name.eq_ignore_ascii_case("content-length")) {
        let value = value.trim();
        // Digits only: `parse` would also take a leading `+`.
        let digits = value.bytes().all(|b| b.is_ascii_digit());
        let parsed = if digits { value.parse::<u64>().ok() } else { None }.ok_or(MessageError::BadContentLength)?;
        if length.is_some_and(|known| known != parsed) {
            return Err(MessageError::BadContentLength);
        }
        length = Some(parsed);
    }
    Ok(length.map_or(BodyFraming::Chunked, BodyFraming::Length))
}

/// Checks offered WebSocket subprotocols: distinct tokens, at most [`MAX_PROTOCOLS`].
pub fn check_protocols(protocols: &[String]) -> Result<(), MessageError> {
    let distinct = protocols.iter().enumerate().all(|(i, p)| !protocols[..i].contains(p));
    if protocols.len() > MAX_PROTOCOLS || !distinct || !protocols.iter().all(|p| is_token(p, 128)) {
        return Err(MessageError::BadProtocols);
    }
    Ok(())
}

/// Checks a close request as the browser's `WebSocket.close` would.
pub fn check_close(code: Option<u16>, reason: &str) -> Result<(), MessageError> {
    let code_ok = code.is_none_or(|c| c == 1000 || (3000..=4999).contains(&c));
    if !code_ok || reason.len() > 123 {
        return Err(MessageError::BadClose);
    }
    Ok(())
}

/// Checks a `document.cookie = ...` string.
pub fn check_cookie(cookie: &str) -> Result<(), MessageError> {
    if cookie.is_empty() || cookie.len() > MAX_COOKIE || cookie.chars().any(char::is_control) {
        return Err(MessageError::BadCookie);
    }
    Ok(())
}

/// Checks a message that passed decoding; the id was checked there.
pub fn check(message: &Incoming) -> Result<(), MessageError> {
    match message {
        Incoming::Fetch(request) => check_fetch(request),
        Incoming::More | Incoming::Cancel | Incoming::Ping | Incoming::GetCookies | Incoming::BodyEnd => Ok(()),
        Incoming::Body(data) if data.len() > MAX_BODY_CHUNK => Err(MessageError::BodyChunkTooLarge),
        Incoming::Body(_) => Ok(()),
        Incoming::WsOpen { path, protocols } => check_path(path).and_then(|()| check_protocols(protocols)),
        Incoming::WsSend(data) if data.len() > MAX_WS_MESSAGE => Err(MessageError::WsMessageTooLarge),
        Incoming::WsSend(_) => Ok(()),
        Incoming::WsClose { code, reason } => check_close(*code, reason),
        Incoming::SetCookie { cookie, path } => check_cookie(cookie).and_then(|()| check_path(path)),
        Incoming::Prepare(origin) if origin.is_empty() || origin.len() > MAX_ORIGIN => Err(MessageError::BadOrigin),
        Incoming::Prepare(_) => Ok(()),
    }
}

/// Checks an id: a finite number, or a string of at most [`MAX_ID`] bytes.
pub fn check_id(id: &Id) -> Result<(), MessageError> {
    match id {
        Id::Number(n) if n.is_finite() => Ok(()),
        Id::Text(t) if t.len() <= MAX_ID => Ok(()),
        _ => Err(MessageError::NoId),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> FetchRequest {
        FetchRequest {
            method: "GET".into(),
            path: path.into(),
            headers: vec![("Accept".into(), "text/html".into())],
            body: Vec::new(),
            stream_body: None,
            destination: "document".into(),
            cross_site: false,
        }
    }

    #[test]
    fn a_path_reaches_only_the_bound_host() {
        let cases = [
            ("/", true),
            ("/a/b?c=d&e=%20f", true),
            ("/http://192.168.0.20/", true),
            ("//192.168.0.20/", false),
            ("/\\192.168.0.20/", false),
            ("http://192.168.0.20/", false),
            ("192.168.0.20/", false),
            ("", false),
            ("/a b", false),
            ("/a\r\nHost: evil", false),
            ("/a#frag", false),
            ("/é", false),
        ];
        for (path, ok) in cases {
            assert_eq!(check_path(path).is_ok(), ok, "{path:?}");
        }
        assert_eq!(check_path(&format!("/{}", "a".repeat(MAX_PATH))), Err(MessageError::BadPath));
    }

    #[test]
    fn methods_are_tokens_browsers_may_send() {
        for (method, ok) in [("GET", true), ("PROPFIND", true), ("patch", true), ("G T", false), ("", false)] {
            assert_eq!(check_method(method).is_ok(), ok, "{method:?}");
        }
        for forbidden in ["CONNECT", "trace", "TRACK"] {
            assert!(matches!(check_method(forbidden), Err(MessageError::BadMethod(_))));
        }
        assert!(check_method(&"A".repeat(MAX_METHOD + 1)).is_err());
    }

    #[test]
    fn headers_that_would_split_the_head_or_flood_it_are_refused() {
        assert!(check_fetch(&get("/")).is_ok());
        let mut request = get("/");
        request.headers.push(("X-A".into(), "1\r\nEvil: yes".into()));
        assert!(matches!(check_fetch(&request), Err(MessageError::BadHeader(_))));
        request.headers = vec![("Bad Name".into(), "1".into())];
        assert!(matches!(check_fetch(&request), Err(MessageError::BadHeader(_))));
        request.headers = vec![("X".into(), "v".into()); MAX_HEADERS + 1];
        assert_eq!(check_fetch(&request), Err(MessageError::TooManyHeaders));
        request.headers = vec![("X".into(), "v".repeat(MAX_HEADER_BYTES))];
        assert_eq!(check_fetch(&request), Err(MessageError::TooManyHeaders));
    }

    #[test]
    fn a_body_over_64_mib_is_refused() {
        let mut request = get("/upload");
        request.method = "POST".into();
        request.body = vec![0; MAX_BODY];
        assert!(check_fetch(&request).is_ok());
        request.body.push(0);
        assert_eq!(check_fetch(&request), Err(MessageError::BodyTooLarge));
    }

    #[test]
    fn a_streamed_body_has_no_total_cap_but_bounded_chunks_and_one_length() {
        let mut request = get("/upload");
        request.method = "PUT".into();
        request.stream_body = Some(BodyFraming::Chunked);
        assert!(check_fetch(&request).is_ok());
        request.body = b"x".to_vec();
        assert_eq!(check_fetch(&request), Err(MessageError::BadField("body")), "a body both inline and streamed");
        assert!(check(&Incoming::Body(vec![0; MAX_BODY_CHUNK])).is_ok());
        assert_eq!(check(&Incoming::Body(vec![0; MAX_BODY_CHUNK + 1])), Err(MessageError::BodyChunkTooLarge));

        let headers = |values: &[&str]| -> Vec<(String, String)> {
            values.iter().map(|v| ("Content-Length".to_owned(), (*v).to_owned())).collect()
        };
        let cases: [(&[&str], Result<BodyFraming, MessageError>); 8] = [
            (&[], Ok(BodyFraming::Chunked)),
            (&["8388608"], Ok(BodyFraming::Length(8 << 20))),
            (&["0"], Ok(BodyFraming::Length(0))),
            (&["12", "12"], Ok(BodyFraming::Length(12))),
            (&["12", "13"], Err(MessageError::BadContentLength)),
            (&["-1"], Err(MessageError::BadContentLength)),
            (&["1e3"], Err(MessageError::BadContentLength)),
            (&["99999999999999999999"], Err(MessageError::BadContentLength)),
        ];
        for (values, framing) in cases {
            assert_eq!(stream_framing(&headers(values)), framing, "{values:?}");
        }
    }

    #[test]
    fn websocket_messages_are_checked_like_the_browser_would() {
        let open = |path: &str, protocols: &[&str]| Incoming::WsOpen {
            path: path.into(),
            protocols: protocols.iter().map(|p| p.to_string()).collect(),
        };
        assert!(check(&open("/ws", &["chat", "v2"])).is_ok());
        assert_eq!(check(&open("//evil/ws", &[])), Err(MessageError::BadPath));
        assert_eq!(check(&open("/ws", &["a", "a"])), Err(MessageError::BadProtocols));
        assert_eq!(check(&open("/ws", &["a b"])), Err(MessageError::BadProtocols));
        assert!(check(&Incoming::WsClose { code: Some(1000), reason: "bye".into() }).is_ok());
        assert!(check(&Incoming::WsClose { code: None, reason: String::new() }).is_ok());
        assert_eq!(check(&Incoming::WsClose { code: Some(1006), reason: String::new() }), Err(MessageError::BadClose));
        assert_eq!(
            check(&Incoming::WsClose { code: Some(4000), reason: "x".repeat(124) }),
            Err(MessageError::BadClose)
        );
        let big = Incoming::WsSend(WsData::Binary(vec![0; MAX_WS_MESSAGE + 1]));
        assert_eq!(check(&big), Err(MessageError::WsMessageTooLarge));
    }

    #[test]
    fn cookies_and_ids_are_bounded() {
        let set = |cookie: &str, path: &str| Incoming::SetCookie { cookie: cookie.into(), path: path.into() };
        assert!(check(&set("a=1; path=/", "/")).is_ok());
        assert!(check(&set("a=1", "/cgi-bin/login.cgi")).is_ok());
        assert_eq!(check(&set("", "/")), Err(MessageError::BadCookie));
        assert_eq!(check(&set("a=1\n", "/")), Err(MessageError::BadCookie));
        assert_eq!(check(&set("a=1", "//evil")), Err(MessageError::BadPath));
        assert_eq!(check(&set("a=1", "admin")), Err(MessageError::BadPath));
        assert!(check(&Incoming::Prepare("https://h-192-168-0-10-p80.home.test".into())).is_ok());
        assert_eq!(check(&Incoming::Prepare(String::new())), Err(MessageError::BadOrigin));
        assert_eq!(check(&Incoming::Prepare("x".repeat(MAX_ORIGIN + 1))), Err(MessageError::BadOrigin));
        assert!(check_id(&Id::Number(7.0)).is_ok());
        assert_eq!(check_id(&Id::Number(f64::NAN)), Err(MessageError::NoId));
        assert_eq!(check_id(&Id::Text("x".repeat(MAX_ID + 1))), Err(MessageError::NoId));
        assert_ne!(Id::Number(1.0).key(), Id::Text("1".into()).key());
    }
}
