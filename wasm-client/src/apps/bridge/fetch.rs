//! Serving one `fetch`: the request mapped and sent on a pooled connection (a streamed body
//! written piece by piece as `body` messages arrive, see `upload`), the response head mapped and
//! posted, the body streamed in chunks of at most 256 KiB within the credit window,
//! HTML documents with the shim injected, then `end`; `error` when anything fails.

use std::rc::Rc;

use base64::Engine;
use rand_core::{OsRng, RngCore};

use super::decompress::Decoded;
use super::exchange::Exchange;
use super::message::FetchRequest;
use super::port::{PortServer, Task};
use super::reply::{Reply, MAX_CHUNK};
use super::{exchange, jars, sign_in, upload};
use crate::apps::basic_auth;
use crate::apps::headers::{has_body, map_request, map_response, Answering};
use crate::apps::inject::Injector;
use crate::error::ClientError;
use crate::http::{HttpError, HttpUrl, Request};

/// Why streaming stopped early without an error to report.
struct Cancelled;

/// Runs one request to its end and forgets its id.
pub async fn run(server: Rc<PortServer>, task: Rc<Task>, request: FetchRequest) {
    if let Err(e) = serve(&server, &task, request).await {
        if !task.cancelled.get() {
            server.post(&task.id, Reply::Error(&e.to_string()));
        }
    }
    task.stream.borrow_mut().take();
    server.finish(&task);
}

async fn serve(server: &Rc<PortServer>, task: &Rc<Task>, request: FetchRequest) -> Result<(), ClientError> {
    let app = &server.app;
    let (target, path) = (app.target, request.path.as_str());
    let headers = jars::with_jar(target, |jar, now| {
        map_request(&app.origins, jar, path, &request.headers, request.cross_site, now)
    })?;
    let document = request.is_document();
    let url = HttpUrl { host: target.addr.ip().to_string(), port: target.addr.port(), target: request.path.clone() };
    let mut body = Some(request.body);
    let bodiless = request.stream_body.is_none() && body.as_ref().is_some_and(Vec::is_empty);
    let mut again = bodiless;
    let (head, exchange, answer) = loop {
        let mut http_request = Request::new(&request.method, url.clone());
        http_request.headers = headers.clone();
        let sent = if request.cross_site {
            sign_in::Sent::None
        } else {
            sign_in::authorize(target, &request.method, path, &mut http_request.headers)
        };
        http_request.body = body.take().unwrap_or_default();
        let (head, exchange) = match request.stream_body {
            Some(framing) => {
                let next_piece = || upload::next(server, task);
                exchange::send_streamed(target, &http_request, framing, next_piece, task.as_ref()).await?
            }
            None => exchange::send(target, &http_request, task.as_ref()).await?,
        };
        match sign_in::answered(target, sent, &head.headers, head.status, document) {
            // A stale Digest nonce: once more with the new one (only without a body to resend).
            sign_in::Answer::Again if std::mem::take(&mut again) => drop(exchange),
            answer => break (head, exchange, answer),
        }
    };
    if task.cancelled.get() {
        return Ok(());
    }
    if !(200..=599).contains(&head.status) {
        let message = format!("status {} cannot be handed to the page", head.status);
        return Err(HttpError::BadHead(message).into());
    }
    if answer == sign_in::Answer::SignInPage {
        // A sign-in page instead of the device's bare 401 (the LAN connection is dropped).
        drop(exchange);
        let page = basic_auth::sign_in_page(&target.lan_origin(), &sign_in::realm(&head.headers));
        let headers = sign_in::PAGE_HEADERS.map(|(n, v)| (n.to_owned(), v.to_owned()));
        server.post(&task.id, Reply::Head { status: 401, status_text: "Unauthorized", headers: &headers });
        if send_chunks(server, task, page.as_bytes()).await.is_ok() {
            server.post(&task.id, Reply::End);
        }
        return Ok(());
    }
    let destination = request.destination.as_str();
    let whole_body = has_body(&request.method, head.status) && head.status != 206;
    let nonce = fresh_nonce();
    let answering = Answering { path, destination, whole_body, nonce: &nonce };
    let mapped = jars::with_jar(target, |jar, now| {
        map_response(&app.origins, jar, &answering, &head.headers, now)
            .map(|mapped| (mapped.inject.then(|| Injector::new(&jar.script_cookies(path, now), &nonce)), mapped))
    })?;
    let (mut injector, mapped) = mapped;
    if mapped.jar_changed {
        jars::changed_jar(target);
    }
    let mut body = match mapped.decode {
        Some(coding) => Body::Decoded(Decoded::new(exchange, coding)?),
        None => Body::AsSent(exchange),
    };
    server.post(&task.id, Reply::Head { status: head.status, status_text: &head.reason, headers: &mapped.headers });
    while let Some(data) = body.next_chunk().await? {
        let data = match injector.as_mut() {
            Some(injector) => injector.push(&data),
            None => data,
        };
        if send_chunks(server, task, &data).await.is_err() {
            return Ok(());
        }
    }
    if let Some(mut injector) = injector.take() {
        if send_chunks(server, task, &injector.finish()).await.is_err() {
            return Ok(());
        }
    }
    server.post(&task.id, Reply::End);
    Ok(())
}

/// A nonce for one document's shim tag: 16 random bytes, base64.
fn fresh_nonce() -> String {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A response body as the page gets it.
enum Body {
    /// As the app sent it.
    AsSent(Exchange),
    /// With the app's compression undone.
    Decoded(Decoded),
}

impl Body {
    async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, ClientError> {
        match self {
            Self::AsSent(exchange) => exchange.next_chunk().await,
            Self::Decoded(decoded) => decoded.next_chunk().await,
        }
    }
}

/// Posts `data` as chunks, each waiting for room in the credit window.
async fn send_chunks(server: &PortServer, task: &Task, data: &[u8]) -> Result<(), Cancelled> {
    for piece in data.chunks(MAX_CHUNK) {
        task.signal.until(|| (task.cancelled.get() || task.credit.borrow().can_send()).then_some(())).await;
        if task.cancelled.get() {
            return Err(Cancelled);
        }
        task.credit.borrow_mut().sent();
        server.post(&task.id, Reply::Chunk(piece));
    }
    Ok(())
}
