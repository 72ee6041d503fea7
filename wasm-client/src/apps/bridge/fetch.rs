//! Serving one `fetch`: the request mapped and sent on a pooled connection (a streamed body
//! written piece by piece as `body` messages arrive, see `upload`), the response head mapped and
//! posted, the body streamed in chunks of at most 256 KiB within the credit window,
//! HTML documents with the shim injected, then `end`; `error` when anything fails.

use std::rc::Rc;

use base64::Engine;
use hometun_shared::app_name::AppTarget;
use rand_core::{OsRng, RngCore};

use super::decompress::{self, Decoded};
use super::exchange::Exchange;
use super::message::FetchRequest;
use super::port::{App, PortServer, Task};
use super::reply::{Reply, MAX_CHUNK};
use super::{exchange, jars, sign_in, upload};
use crate::apps::basic_auth;
use crate::apps::headers::{asks_for_gzip, has_body, map_request, map_response, Answering};
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
    let accept_gzip = asks_for_gzip(&request.method, &request.headers, decompress::available());
    let (head, exchange, answer) = loop {
        let mut http_request = Request::new(&request.method, url.clone());
        http_request.headers = headers.clone();
        http_request.host = Some(target.authority());
        http_request.accept_gzip = accept_gzip;
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
    // The request and its body are sent and gone: they no longer count against the budget.
    task.held.borrow_mut().shrink(usize::MAX);
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
    demand_redirect_target(app, &mapped.headers);
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

/// A redirect to another app (an `http://` router page sending the browser to its `https://`
/// port, a NAS to its other app): the relay is asked for that app name's certificate now, so
/// that it has it, or is getting it, when the browser follows. Answers are not awaited; one the
/// relay refuses shows as the browser's certificate error on that name.
fn demand_redirect_target(app: &App, headers: &[(String, String)]) {
    if let Some(other) = redirect_target(app, headers) {
        let _ = crate::api::demand_certificate(other);
    }
}

/// The other app a mapped answer's `Location` sends the browser to, if any.
fn redirect_target(app: &App, headers: &[(String, String)]) -> Option<AppTarget> {
    let (_, location) = headers.iter().find(|(name, _)| name.eq_ignore_ascii_case("location"))?;
    let rest = location.strip_prefix("https://")?;
    let origin_end = "https://".len() + rest.find(['/', '?', '#']).unwrap_or(rest.len());
    app.origins.target_of(&location[..origin_end]).ok().filter(|other| *other != app.target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apps::origin::AppOrigins;

    #[test]
    fn a_redirect_to_another_app_names_that_app() {
        let origins = AppOrigins::new("https://home.test").unwrap();
        let origin = "https://h-192-168-0-1-p80.home.test".to_owned();
        let app = App { target: origins.target_of(&origin).unwrap(), origin, origins };
        let location = |value: &str| {
            vec![("Content-Type".to_owned(), "text/html".to_owned()), ("Location".to_owned(), value.to_owned())]
        };
        let https = origins_target(&app, "https://h-192-168-0-1-s443.home.test");
        assert_eq!(redirect_target(&app, &location("https://h-192-168-0-1-s443.home.test/login?x=1")), Some(https));
        assert_eq!(redirect_target(&app, &location("https://h-192-168-0-1-s443.home.test")), Some(https));
        assert_eq!(redirect_target(&app, &location("https://h-192-168-0-1-p80.home.test/other")), None, "the same app");
        assert_eq!(redirect_target(&app, &location("/relative")), None);
        assert_eq!(redirect_target(&app, &location("https://example.com/")), None);
        assert_eq!(redirect_target(&app, &location("https://h-192-168-0-1-s443.home.test.evil/")), None);
        assert_eq!(redirect_target(&app, &[]), None);
    }

    fn origins_target(app: &App, origin: &str) -> AppTarget {
        app.origins.target_of(origin).unwrap()
    }
}
