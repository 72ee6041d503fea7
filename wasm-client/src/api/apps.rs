//! `appPort(origin)` and `appUrl(lanUrl)`: home web apps on origins of their own, served through
//! a `MessagePort` bound to one LAN `host:port` (see `docs/web-apps.md`).

use wasm_bindgen::prelude::*;
use web_sys::{MessageChannel, MessagePort};

use super::js::Obj;
use crate::apps::bridge::{self, stream, App};
use crate::apps::origin::{lan_target, AppOrigins};
use crate::apps::pins::Verdict;
use crate::driver::wait;
use crate::error::ClientError;
use crate::web::clock;
use hometun_shared::app_name::AppTarget;
use hometun_shared::control::AppCertOutcome;
use std::time::Duration;

/// The page's own origin `T` (`location.origin`).
fn tunnel_origin() -> Result<String, ClientError> {
    web_sys::window()
        .and_then(|w| w.location().origin().ok())
        .ok_or_else(|| ClientError::InvalidArgument("no page origin (not in a window)".into()))
}

/// A port for the app origin `origin` (an `event.origin`, never page-supplied text): checks it
/// is `https://h-A-B-C-D-pPORT.<this page's host>`, binds a new port to `A.B.C.D:PORT` for its
/// whole life and returns the other end. Fails with `not-an-app` for any other origin and
/// `no-app-origins` when this page is not on a domain name.
#[wasm_bindgen(js_name = appPort)]
pub fn app_port(origin: String) -> Result<MessagePort, JsValue> {
    Ok(app_port_under(&origin, &tunnel_origin()?)?)
}

/// Closes every port `appPort` handed out (this page gave the tunnel to another launcher tab):
/// the app pages ask the hub for new ones, which the tab that runs the tunnel now answers.
#[wasm_bindgen(js_name = closeAppPorts)]
pub fn close_app_ports() {
    bridge::close_all();
}

/// [`app_port`] with the tunnel origin given (the page's own in `appPort`; tests use this to
/// stand for a page on a domain).
pub fn app_port_under(origin: &str, tunnel_origin: &str) -> Result<MessagePort, ClientError> {
    let origins = AppOrigins::new(tunnel_origin)?;
    let target = origins.target_of(origin)?;
    let channel = MessageChannel::new().map_err(|_| ClientError::InvalidArgument("MessageChannel failed".into()))?;
    let app = App { target, origin: origin.to_owned(), origins };
    bridge::serve(channel.port1(), app);
    // The app is in use: asking for its name's certificate again keeps it among the relay's
    // names (a name no device asks for in a week may make room for another app).
    let _ = demand_certificate(target);
    Ok(channel.port2())
}

/// The app-origin URL of a LAN URL: `appUrl("http://192.168.0.10:8080/a")` is
/// `"https://h-192-168-0-10-p8080.<this page's host>/a"`. Fails with `not-an-app` for URLs
/// that are not `http://` or `https://` on an IPv4 address (or a name the relay listed, see `hosts()`) and `no-app-origins` when this page is not on a
/// domain name.
#[wasm_bindgen(js_name = appUrl)]
pub fn app_url(lan_url: String) -> Result<String, JsValue> {
    let origins = AppOrigins::new(&tunnel_origin()?).map_err(ClientError::from)?;
    Ok(origins.app_url(&super::hosts::with_discovered_address(&lan_url)).map_err(ClientError::from)?)
}

/// How long `prepareApp` waits for one answer of the relay.
const APP_CERT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often `prepareApp` asks again while the relay is getting the certificate.
const APP_CERT_AGAIN: Duration = Duration::from_secs(1);
/// How long `prepareApp` waits for a certificate being obtained before it lets the browser try
/// (whose first handshake waits a few seconds more).
const APP_CERT_PATIENCE: Duration = Duration::from_secs(60);

/// [`app_url`], once the relay has the certificate of the app name: resolves with the app URL,
/// to be opened at once. On a first visit the relay obtains it first (a few seconds; after a
/// minute the URL comes anyway). The relay gets an app name's certificate only when an enrolled
/// device asks like this (never because a TLS handshake named it), and only for LAN hosts this
/// device's allow list reaches. Fails with `not-connected`, `app-not-allowed`, `app-names-busy`
/// (the relay's limits on new names; try later), `app-name-failed` (the certificate authority
/// refused the name lately), `app-names-unavailable` or `timeout`, and as `appUrl` does. A relay
/// that does not offer app-name certificates is not asked.
#[wasm_bindgen(js_name = prepareApp)]
pub async fn prepare_app(lan_url: String) -> Result<String, JsValue> {
    let origins = AppOrigins::new(&tunnel_origin()?).map_err(ClientError::from)?;
    let lan_url = super::hosts::with_discovered_address(&lan_url);
    let url = origins.app_url(&lan_url).map_err(ClientError::from)?;
    let app = lan_target(&lan_url).map_err(ClientError::from)?;
    let tunnel = super::tunnel();
    let started = clock::now();
    loop {
        let Some(before) = demand_certificate(app)? else { return Ok(url) };
        let outcome = wait::until(tunnel.link(), Some(APP_CERT_TIMEOUT), |link| answer(link, app, before))
            .await
            .ok_or_else(|| ClientError::Timeout {
                what: format!("the relay's answer for {}", app.lan_origin()),
                after_ms: APP_CERT_TIMEOUT.as_millis() as u64,
            })?;
        match outcome {
            AppCertOutcome::Ready => return Ok(url),
            AppCertOutcome::Ordering if clock::now().saturating_duration_since(started) >= APP_CERT_PATIENCE => {
                return Ok(url)
            }
            // Asking again orders nothing new; its answer says when the certificate is there.
            AppCertOutcome::Ordering => {
                wait::until(tunnel.link(), Some(APP_CERT_AGAIN), |_| None::<()>).await;
            }
            refused => return Err(ClientError::AppNameRefused { origin: app.lan_origin(), outcome: refused }.into()),
        }
    }
}

/// Asks the relay for the certificate of `app`'s name without waiting for the answer: returns
/// the count of answers before it (see [`AppCertReplies::since`](hometun_shared::control::AppCertReplies::since)),
/// or `None` when the relay does not offer app-name certificates (nothing sent).
pub(crate) fn demand_certificate(app: AppTarget) -> Result<Option<u64>, ClientError> {
    let tunnel = super::tunnel();
    let before = {
        let mut link = tunnel.link().borrow_mut();
        if !link.is_up() {
            return Err(ClientError::NotConnected);
        }
        let Some(connection) = link.connection.as_mut() else { return Err(ClientError::NotConnected) };
        let before = connection.app_cert_replies().count();
        if !connection.app_cert(app) {
            return Ok(None);
        }
        before
    };
    tunnel.kick();
    Ok(Some(before))
}

/// The relay's answer for `app` among those after the first `before` of this connection (a
/// demand does not outlive its connection: after a reconnect the wait runs out).
fn answer(link: &mut crate::driver::link::Link, app: AppTarget, before: u64) -> Option<AppCertOutcome> {
    link.connection.as_ref().and_then(|c| c.app_cert_replies().since(app, before))
}

/// The `https://` LAN target of `lan_url` (a discovered name allowed, see `hosts()`).
fn https_target(lan_url: &str) -> Result<std::net::SocketAddrV4, ClientError> {
    let target = lan_target(&super::hosts::with_discovered_address(lan_url))?;
    if !target.tls {
        return Err(ClientError::InvalidArgument(format!("{lan_url} is not an https:// LAN URL")));
    }
    Ok(target.addr)
}

/// What the HTTPS home app at `lanUrl` shows: resolves with `{origin, fingerprint, protocol,
/// status, pinned}`, where `status` is `"trusted"` (the pinned certificate), `"new"` (nothing
/// pinned yet) or `"changed"` (`pinned` is the fingerprint trusted before). Connects and runs the
/// TLS handshake only; nothing is sent inside TLS. Fingerprints are SHA-256 of the certificate,
/// `AB:CD:…`.
#[wasm_bindgen(js_name = appCertificate)]
pub async fn app_certificate(lan_url: String) -> Result<JsValue, JsValue> {
    let addr = https_target(&lan_url)?;
    let (handshake, verdict) = stream::inspect(addr).await?;
    let pinned = match &verdict {
        Verdict::Trusted => JsValue::from(handshake.fingerprint.as_str()),
        Verdict::New => JsValue::NULL,
        Verdict::Changed(pinned) => JsValue::from(pinned.as_str()),
    };
    Ok(Obj::new()
        .set("origin", AppTarget::https(addr).lan_origin())
        .set("fingerprint", handshake.fingerprint)
        .set("protocol", handshake.protocol)
        .set("status", verdict.as_str())
        .set("pinned", pinned)
        .into_js())
}

/// Trusts `fingerprint` (from [`app_certificate`], after the user saw it) as the certificate
/// of the HTTPS home app at `lanUrl`, replacing any earlier one.
#[wasm_bindgen(js_name = trustAppCertificate)]
pub fn trust_app_certificate(lan_url: String, fingerprint: String) -> Result<(), JsValue> {
    Ok(stream::trust(https_target(&lan_url)?, &fingerprint)?)
}

/// Forgets the trusted certificate of the HTTPS home app at `lanUrl`; whether there was one.
#[wasm_bindgen(js_name = forgetAppCertificate)]
pub fn forget_app_certificate(lan_url: String) -> Result<bool, JsValue> {
    Ok(stream::forget(https_target(&lan_url)?)?)
}
