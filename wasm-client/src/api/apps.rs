//! `appPort(origin)` and `appUrl(lanUrl)`: home web apps on origins of their own, served through
//! a `MessagePort` bound to one LAN `host:port` (see `docs/web-apps.md`).

use wasm_bindgen::prelude::*;
use web_sys::{MessageChannel, MessagePort};

use crate::apps::bridge::{self, App};
use crate::apps::origin::AppOrigins;
use crate::error::ClientError;

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

/// [`app_port`] with the tunnel origin given (the page's own in `appPort`; tests use this to
/// stand for a page on a domain).
pub fn app_port_under(origin: &str, tunnel_origin: &str) -> Result<MessagePort, ClientError> {
    let origins = AppOrigins::new(tunnel_origin)?;
    let target = origins.target_of(origin)?;
    let channel = MessageChannel::new().map_err(|_| ClientError::InvalidArgument("MessageChannel failed".into()))?;
    let app = App { target, origin: origin.to_owned(), origins };
    bridge::serve(channel.port1(), app);
    Ok(channel.port2())
}

/// The app-origin URL of a LAN URL: `appUrl("http://192.168.0.10:8080/a")` is
/// `"https://h-192-168-0-10-p8080.<this page's host>/a"`. Fails with `not-an-app` for URLs
/// that are not `http://` on an IPv4 address (or a name the relay listed, see `hosts()`) and `no-app-origins` when this page is not on a
/// domain name.
#[wasm_bindgen(js_name = appUrl)]
pub fn app_url(lan_url: String) -> Result<String, JsValue> {
    let origins = AppOrigins::new(&tunnel_origin()?).map_err(ClientError::from)?;
    Ok(origins.app_url(&super::hosts::with_discovered_address(&lan_url)).map_err(ClientError::from)?)
}
