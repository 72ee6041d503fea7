//! The home's devices for the page: `hometun.hosts()`, the `hometun-hosts` event on `window`
//! when the list changes, and `hometun.wake(host)`.
//!
//! The relay sends only the hosts this device's ACL lets it reach (docs/discovery.md); their
//! `.local` names resolve in `fetch`, `appUrl`, `ping` and `connectTcp` through
//! [`crate::lan::host::discovered`] (other names go to DNS), and `wake` takes any name a host is
//! listed under, reverse names too.

use std::net::Ipv4Addr;
use std::time::Duration;

use hometun_shared::control::{Host, HostList};
use wasm_bindgen::prelude::*;

use super::js::{self, Obj};
use super::tunnel;
use crate::driver::wait;
use crate::error::ClientError;
use crate::lan;

/// How long `wake` waits for the relay's answer.
const WAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The event dispatched on `window` when the host list changed (its `detail` is the list).
pub(crate) const EVENT: &str = "hometun-hosts";

/// The home's devices this device may reach, as the relay last sent them:
/// `[{address, names: ["nas.local", …], label, services: [{type: "_http._tcp", port}], online,
/// wakeable}]`; `null` while the relay has sent none (not connected yet, or a relay without
/// discovery). `window` gets a `hometun-hosts` event whenever it changes.
#[wasm_bindgen]
pub fn hosts() -> JsValue {
    let tunnel = tunnel();
    let link = tunnel.link().borrow();
    link.hosts.as_ref().map_or(JsValue::NULL, list_array)
}

/// Asks the relay to wake `host` (address or discovered name) with a Wake-on-LAN packet.
/// Resolves with what the relay did: `"sent"`, `"not-allowed"` (this device may not wake
/// hosts, or not this one), `"unknown-host"` (its MAC is unknown), `"rate-limited"` (one per
/// host per 10 s, ten per device per minute) or `"failed"`. Whether the host woke up shows in
/// `ping(host)`.
#[wasm_bindgen]
pub async fn wake(host: String) -> Result<JsValue, JsValue> {
    let tunnel = tunnel();
    let address = match host.trim().parse::<Ipv4Addr>() {
        Ok(address) => address,
        Err(_) => lan::host::listed_for_waking(&tunnel, &host)
            .ok_or_else(|| ClientError::NameNotFound { name: host.trim().to_owned() })?,
    };
    let before = {
        let mut link = tunnel.link().borrow_mut();
        if !link.is_up() {
            return Err(ClientError::NotConnected.into());
        }
        let before = link.wake_replies.0;
        let sent = link.connection.as_mut().is_some_and(|c| c.wake(address));
        if !sent {
            return Err(ClientError::InvalidArgument("this relay does not offer waking hosts".into()).into());
        }
        before
    };
    tunnel.kick();
    let outcome = wait::until(tunnel.link(), Some(WAKE_TIMEOUT), |link| match link.wake_replies {
        (count, Some((replied, outcome))) if count > before && replied == address => Some(outcome),
        _ => None,
    })
    .await
    .ok_or_else(|| ClientError::Timeout {
        what: format!("waking {host}"),
        after_ms: WAKE_TIMEOUT.as_millis() as u64,
    })?;
    Ok(outcome.as_str().into())
}

/// `lan_url` with a discovered host name (`http://nas.local:5000/`) replaced by the host's
/// address (`http://192.168.0.10:5000/`), so `appUrl` takes names the relay listed; any other
/// URL as it is.
pub(crate) fn with_discovered_address(lan_url: &str) -> String {
    replace_host(lan_url, |name| lan::host::discovered(&tunnel(), name))
}

fn replace_host(lan_url: &str, lookup: impl Fn(&str) -> Option<Ipv4Addr>) -> String {
    let Some(rest) = lan_url.strip_prefix("http://") else { return lan_url.to_owned() };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    if authority.contains('@') || host.parse::<Ipv4Addr>().is_ok() {
        return lan_url.to_owned();
    }
    match lookup(host) {
        Some(address) => format!("http://{address}{}{tail}", port.map(|p| format!(":{p}")).unwrap_or_default()),
        None => lan_url.to_owned(),
    }
}

/// Tells the page, soon (never from inside the link's pump), that the list changed.
pub(crate) fn announce_change() {
    wasm_bindgen_futures::spawn_local(async {
        let Some(window) = web_sys::window() else { return };
        let init = web_sys::CustomEventInit::new();
        init.set_detail(&hosts());
        if let Ok(event) = web_sys::CustomEvent::new_with_event_init_dict(EVENT, &init) {
            let _ = window.dispatch_event(&event);
        }
    });
}

fn list_array(list: &HostList) -> JsValue {
    list.hosts.iter().map(host_object).collect::<js_sys::Array>().into()
}

fn host_object(host: &Host) -> JsValue {
    let services: js_sys::Array =
        host.services.iter().map(|s| Obj::new().set("type", s.kind.clone()).set("port", s.port).into_js()).collect();
    Obj::new()
        .set("address", host.address.to_string())
        .set("names", js::strings(&host.names))
        .set("label", host.label.clone())
        .set("services", services)
        .set("online", host.online)
        .set("wakeable", host.wakeable)
        .into_js()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn discovered_names_in_app_urls_become_addresses() {
        let lookup = |name: &str| (name == "nas.local").then_some(Ipv4Addr::new(192, 168, 0, 10));
        #[rustfmt::skip]
        let cases = [
            ("http://nas.local:5000/", "http://192.168.0.10:5000/"),
            ("http://nas.local/a?b#c", "http://192.168.0.10/a?b#c"),
            ("http://nas.local", "http://192.168.0.10"),
            ("http://other.local:80/", "http://other.local:80/"),
            ("http://192.168.0.20:80/", "http://192.168.0.20:80/"),
            ("http://user@nas.local/", "http://user@nas.local/"),
            ("https://nas.local/", "https://nas.local/"),
        ];
        for (input, expected) in cases {
            assert_eq!(replace_host(input, lookup), expected, "{input}");
        }
    }
}
