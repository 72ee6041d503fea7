//! HTTP/1.1 requests to home hosts over [`TcpStream`], following redirects within them.

use super::host;
use super::tcp::TcpStream;
use crate::driver::Tunnel;
use crate::error::ClientError;
use crate::http::{Body, HttpUrl, Request, ResponseHead};

/// Redirects followed before giving up.
pub const MAX_REDIRECTS: usize = 10;

/// What to do with a redirect (the `redirect` option of `fetch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redirects {
    /// Follow redirects to home hosts; a redirect elsewhere is returned as is.
    Follow,
    /// Return every redirect as is.
    Manual,
    /// Fail on a redirect.
    Error,
}

/// A response whose head has arrived; the body is read with [`Response::next_chunk`].
pub struct Response {
    /// The URL that answered (after redirects).
    pub url: HttpUrl,
    /// Whether a redirect was followed.
    pub redirected: bool,
    /// Status, reason and headers.
    pub head: ResponseHead,
    /// The head exactly as received, for a raw view.
    pub raw_head: String,
    body: Body,
    stream: TcpStream,
    leftover: Vec<u8>,
}

/// Sends `request`, following redirects per `redirects`.
pub async fn fetch(tunnel: &Tunnel, mut request: Request, redirects: Redirects) -> Result<Response, ClientError> {
    let mut followed = 0;
    loop {
        let response = send(tunnel, &request).await?;
        let Some(location) = response.head.redirect_location() else {
            return Ok(Response { redirected: followed > 0, ..response });
        };
        match redirects {
            Redirects::Manual => return Ok(Response { redirected: followed > 0, ..response }),
            Redirects::Error => return Err(ClientError::Redirect(format!("{} redirects to {location}", request.url))),
            Redirects::Follow => {}
        }
        let Ok(next) = request.url.join(location) else { return Ok(Response { redirected: followed > 0, ..response }) };
        if !is_home_host(tunnel, &next).await {
            return Ok(Response { redirected: followed > 0, ..response });
        }
        followed += 1;
        if followed > MAX_REDIRECTS {
            return Err(ClientError::Redirect(format!("more than {MAX_REDIRECTS} redirects from {}", request.url)));
        }
        crate::http::redirect::follow(&mut request, response.head.status, next);
    }
}

async fn is_home_host(tunnel: &Tunnel, url: &HttpUrl) -> bool {
    host::address_of(tunnel, &url.host).await.is_ok()
}

/// One request on a new connection; returns once the head has arrived.
async fn send(tunnel: &Tunnel, request: &Request) -> Result<Response, ClientError> {
    let bytes = request.encode()?;
    let stream = TcpStream::connect(tunnel, &request.url.host, request.url.port).await?;
    stream.write_all(&bytes).await?;
    let mut buffer = Vec::new();
    loop {
        let Some(chunk) = stream.read().await? else {
            let reason = if buffer.is_empty() {
                "the host closed the connection without answering"
            } else {
                "the host closed the connection inside the response head"
            };
            return Err(ClientError::Http(crate::http::HttpError::BadHead(reason.into())));
        };
        buffer.extend_from_slice(&chunk);
        if let Some((head, len)) = ResponseHead::parse(&buffer)? {
            let body = Body::for_response(&head, request.is_head())?;
            let raw_head = String::from_utf8_lossy(&buffer[..len]).into_owned();
            buffer.drain(..len);
            return Ok(Response {
                url: request.url.clone(),
                redirected: false,
                head,
                raw_head,
                body,
                stream,
                leftover: buffer,
            });
        }
    }
}

impl Response {
    /// The body's length when the host declared it.
    pub fn content_length(&self) -> Option<u64> {
        self.body.declared_length()
    }

    /// The next piece of the body; `Ok(None)` at its end. Fails with
    /// [`crate::http::HttpError::Truncated`] when the connection ends early.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, ClientError> {
        loop {
            let taken = self.body.take_from(&mut self.leftover)?;
            if self.body.is_done() {
                self.leftover.clear();
            }
            if taken.is_some() {
                return Ok(taken);
            }
            if self.body.is_done() {
                return Ok(None);
            }
            match self.stream.read().await? {
                Some(bytes) => self.leftover = bytes,
                None => {
                    self.body.finish()?;
                    return Ok(None);
                }
            }
        }
    }

    /// Reads the rest of the body into memory.
    pub async fn bytes(&mut self) -> Result<Vec<u8>, ClientError> {
        let mut all = Vec::new();
        while let Some(chunk) = self.next_chunk().await? {
            all.extend_from_slice(&chunk);
        }
        Ok(all)
    }
}
