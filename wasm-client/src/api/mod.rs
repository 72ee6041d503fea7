//! The JavaScript API: what the page exposes as `window.hometun`.
//!
//! Every function returns a `Promise` (except `status`), and every failure is an `Error`
//! with `name = "HometunError"` and a `code` (see [`crate::ClientError::code`]). One tunnel
//! serves the whole page.

mod apps;
mod fetch;
pub(crate) mod hosts;
mod js;
mod stream;
mod tcp;
mod tools;

pub(crate) use apps::demand_certificate;
pub use apps::{
    app_certificate, app_port, app_port_under, app_url, close_app_ports, forget_app_certificate, prepare_app,
    trust_app_certificate,
};
pub use fetch::http_fetch;
pub use hosts::{hosts, wake};
pub use tcp::{connect_tcp, TcpConnection};
pub use tools::{ping, resolve};

use hometun_shared::control::{AllowProtocol, AllowRule, ClientConfig};
use wasm_bindgen::prelude::*;

use crate::driver::link::Phase;
use crate::driver::Tunnel;
use js::Obj;

thread_local! {
    static TUNNEL: Tunnel = Tunnel::default();
}

/// The page's tunnel.
pub fn tunnel() -> Tunnel {
    TUNNEL.with(Clone::clone)
}

fn config_object(config: &ClientConfig) -> JsValue {
    Obj::new()
        .set("address", config.address.addr().to_string())
        .set("prefix", config.address.prefix_len())
        .set("relayAddress", config.relay_address.to_string())
        .set("routes", js::strings(&config.routes))
        .set("dns", js::strings(&config.dns))
        .set("mtu", config.mtu)
        .set("allow", allow_array(&config.allow))
        .into_js()
}

/// The allow list as `[{network: "192.168.0.10/32", ports: [80, 80] | null, protocol: "tcp" |
/// "udp" | null}, …]` (`ports` is the first and last port, both included; `null` every port).
fn allow_array(allow: &[AllowRule]) -> js_sys::Array {
    allow
        .iter()
        .map(|rule| {
            let ports = match rule.ports {
                Some((first, last)) => {
                    JsValue::from([first, last].into_iter().map(JsValue::from).collect::<js_sys::Array>())
                }
                None => JsValue::NULL,
            };
            let protocol = match rule.protocol {
                Some(AllowProtocol::Tcp) => JsValue::from("tcp"),
                Some(AllowProtocol::Udp) => JsValue::from("udp"),
                None => JsValue::NULL,
            };
            Obj::new().set("network", rule.network.to_string()).set("ports", ports).set("protocol", protocol).into_js()
        })
        .collect()
}

/// Enrols this browser with an invite (the whole link, its `#invite=...` fragment or the bare
/// code) and brings the tunnel up. Resolves with `{address, prefix, relayAddress, routes, dns, mtu, allow}`
/// (`allow`: `[{network, ports: [first, last] | null, protocol: "tcp" | "udp" | null}]`, empty = everything routed).
#[wasm_bindgen]
pub async fn enroll(invite: String) -> Result<JsValue, JsValue> {
    let config = tunnel().enroll(&invite).await?;
    Ok(config_object(&config))
}

/// Connects with the stored device key; resolves with the same object as `enroll` once the
/// tunnel is up. After a drop the tunnel reconnects by itself until `disconnect()`.
#[wasm_bindgen]
pub async fn connect() -> Result<JsValue, JsValue> {
    let config = tunnel().connect().await?;
    Ok(config_object(&config))
}

/// Whether a device key is stored in this browser.
#[wasm_bindgen(js_name = isEnrolled)]
pub async fn is_enrolled() -> Result<bool, JsValue> {
    Ok(tunnel().load_profile().await?)
}

/// Closes the tunnel and stops reconnecting.
#[wasm_bindgen]
pub fn disconnect() {
    tunnel().disconnect();
}

/// Disconnects and deletes the stored device key.
#[wasm_bindgen]
pub async fn forget() -> Result<(), JsValue> {
    Ok(tunnel().forget().await?)
}

/// Whether an enrolment replaced an earlier device of this browser that `restorePreviousDevice()`
/// can bring back.
#[wasm_bindgen(js_name = hasPreviousDevice)]
pub async fn has_previous_device() -> Result<bool, JsValue> {
    Ok(tunnel().has_previous().await?)
}

/// Swaps the current device with the one the last enrolment replaced (the current one is kept
/// in its place); call `connect()` afterwards.
#[wasm_bindgen(js_name = restorePreviousDevice)]
pub async fn restore_previous_device() -> Result<(), JsValue> {
    Ok(tunnel().restore_previous().await?)
}

/// The device as text, to move it to another browser. It contains the secret key.
#[wasm_bindgen(js_name = exportDevice)]
pub async fn export_device() -> Result<String, JsValue> {
    Ok(tunnel().export_device().await?)
}

/// Stores a device exported with `exportDevice()`; call `connect()` afterwards.
#[wasm_bindgen(js_name = importDevice)]
pub async fn import_device(text: String) -> Result<(), JsValue> {
    Ok(tunnel().import_device(&text).await?)
}

/// The tunnel right now: `{state, enrolled, relay, device (public key), fingerprint, address, routes, dns, rttMs, bytesIn,
/// bytesOut, connectedSince, error}`. `state` is one of `idle`, `connecting`, `connected`,
/// `reconnecting`, `failed`; `error` is `{code, message}` or `null`.
#[wasm_bindgen]
pub fn status() -> JsValue {
    let tunnel = tunnel();
    tools::probe_relay_rtt(&tunnel);
    let link = tunnel.link().borrow();
    let state = match (&link.phase, &link.error) {
        (Phase::Up, _) if link.saving => "connecting",
        (Phase::Up, _) => "connected",
        (Phase::Waiting, _) => "reconnecting",
        (Phase::Idle, Some(_)) => "failed",
        (Phase::Idle, None) => "idle",
        _ if link.was_up => "reconnecting",
        _ => "connecting",
    };
    let (bytes_in, bytes_out) = link.bytes();
    let config = link.config.as_ref();
    let error = match &link.error {
        Some(e) => Obj::new().set("code", e.code()).set("message", e.to_string()).into_js(),
        None => JsValue::NULL,
    };
    Obj::new()
        .set("state", state)
        .set("enrolled", link.profile.is_some())
        .set("relay", link.profile.as_ref().map(|p| p.relay_url.clone()))
        .set("device", link.profile.as_ref().map(|p| p.secret.public_key().to_text()))
        .set("fingerprint", link.profile.as_ref().map(|p| p.secret.public_key().fingerprint()))
        .set("address", config.map(|c| c.address.addr().to_string()))
        .set("routes", config.map(|c| js::strings(&c.routes)).unwrap_or_default())
        .set("dns", config.map(|c| js::strings(&c.dns)).unwrap_or_default())
        .set("rttMs", link.rtt.map(|d| d.as_secs_f64() * 1000.0))
        .set("bytesIn", link_bytes(bytes_in))
        .set("bytesOut", link_bytes(bytes_out))
        .set("connectedSince", link.connected_since)
        .set("reconnectAttempts", link.backoff.attempts())
        .set("error", error)
        .into_js()
}

fn link_bytes(n: u64) -> f64 {
    n as f64
}
