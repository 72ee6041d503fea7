//! The one error type of the home web apps' pure parts.

use hometun_shared::app_name::NameError;

/// Why an app origin, URL, header list, cookie or WebSocket exchange was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// The tunnel origin is not `https://HOST[:PORT]` with a lower-case host name.
    #[error("`{0}` is not a tunnel origin (https://HOST[:PORT]); app origins need the relay's domain")]
    TunnelOrigin(String),
    /// The origin is not `https://h-A-B-C-D-pPORT.` + the tunnel's host and port.
    #[error("`{0}` is not an app origin of this hometun page")]
    NotAppOrigin(String),
    /// The app origin's first label is not a canonical app name.
    #[error("app origin: {0}")]
    Name(#[from] NameError),
    /// The URL is not `http://A.B.C.D[:PORT]…` or `ws://A.B.C.D[:PORT]…` (a LAN address).
    #[error("`{0}` is not a LAN URL (http://A.B.C.D[:PORT]/…)")]
    NotLanUrl(String),
    /// A request path must start with `/` and hold no spaces or control characters.
    #[error("request path must start with / and hold no spaces or control characters")]
    BadPath,
    /// A header name or value holds characters HTTP/1.1 does not allow there.
    #[error("header `{0}` has an invalid name or value")]
    BadHeader(String),
    /// More headers than [`crate::apps::headers::MAX_HEADERS`].
    #[error("{0} headers are more than the {max} allowed", max = crate::apps::headers::MAX_HEADERS)]
    TooManyHeaders(usize),
    /// Headers larger than [`crate::apps::headers::MAX_HEADER_BYTES`] in total.
    #[error("{0} bytes of headers are more than the {max} allowed", max = crate::apps::headers::MAX_HEADER_BYTES)]
    HeadersTooLarge(usize),
    /// A cookie string a script set could not be parsed, or tried to replace an HttpOnly cookie.
    #[error("cookie refused: {0}")]
    CookieRefused(&'static str),
    /// The saved cookie jar (from `localStorage`) is not the JSON this version writes.
    #[error("saved cookie jar is unreadable: {0}")]
    SavedJar(String),
    /// The LAN server's answer to a WebSocket upgrade is not a valid `101 Switching Protocols`.
    #[error("WebSocket upgrade refused: {0}")]
    WebSocketUpgrade(String),
    /// The WebSocket connection broke the protocol or a size limit, or is already closed.
    #[error("WebSocket: {0}")]
    WebSocket(String),
    /// The page gave up on the request (aborted it, or its port closed).
    #[error("the page cancelled the request")]
    Cancelled,
}
