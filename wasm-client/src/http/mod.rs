//! HTTP/1.1 over the tunnel's TCP: URLs, the request head, and the response reader.
//!
//! Sans-IO like the protocol core: these types turn bytes into heads and bodies and back; the
//! browser glue in `api::fetch` moves the bytes through a tunnel TCP connection.

pub mod redirect;
pub mod request;
pub mod response;
pub mod url;

pub use request::{BodyFramer, BodyFraming, Request};
pub use response::{Body, HttpError, ResponseHead};
pub use url::{HttpUrl, UrlError};
