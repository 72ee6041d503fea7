//! `ping` and `resolve` for JavaScript, and the periodic round-trip probe to the relay.

use std::cell::Cell;
use std::time::Duration;

use wasm_bindgen::prelude::*;

use super::js::{self, Obj};
use super::tunnel;
use crate::driver::Tunnel;
use crate::lan;
use crate::web::clock;

/// How often `status()` may start a new round-trip probe to the relay.
const PROBE_EVERY: Duration = Duration::from_secs(10);

/// Pings `host` (address or name) `options.count` times (default 4, at most 100). Resolves
/// with `{host, address, rtts: [ms or null per echo], sent, received}`.
#[wasm_bindgen]
pub async fn ping(host: String, options: JsValue) -> Result<JsValue, JsValue> {
    let count = js::field(&options, "count").as_f64().map_or(4, |c| c.max(1.0) as u32);
    let run = lan::ping::ping(&tunnel(), &host, count).await?;
    let rtts: js_sys::Array =
        run.rtts.iter().map(|r| r.map_or(JsValue::NULL, |d| (d.as_secs_f64() * 1000.0).into())).collect();
    Ok(Obj::new()
        .set("host", host)
        .set("address", run.address.to_string())
        .set("sent", run.rtts.len() as u32)
        .set("received", run.rtts.iter().flatten().count() as u32)
        .set("rtts", rtts)
        .into_js())
}

/// Looks `name` up through the DNS servers the relay pushed; resolves with an array of
/// IPv4 addresses as text.
#[wasm_bindgen]
pub async fn resolve(name: String) -> Result<js_sys::Array, JsValue> {
    let addresses = lan::host::resolve(&tunnel(), &name).await?;
    Ok(js::strings(addresses))
}

thread_local! {
    static LAST_PROBE: Cell<Option<f64>> = const { Cell::new(None) };
}

/// Starts an echo to the relay's tunnel address when the last one is old; its round trip
/// becomes the status's `rttMs`. A relay that does not answer echoes keeps the handshake's.
pub(super) fn probe_relay_rtt(tunnel: &Tunnel) {
    let Some(relay) = tunnel.link().borrow().config.as_ref().map(|c| c.relay_address) else { return };
    if !tunnel.link().borrow().is_up() {
        return;
    }
    let now = clock::wall_millis();
    if LAST_PROBE.with(Cell::get).is_some_and(|t| now - t < PROBE_EVERY.as_millis() as f64) {
        return;
    }
    LAST_PROBE.with(|t| t.set(Some(now)));
    let tunnel = tunnel.clone();
    wasm_bindgen_futures::spawn_local(async move {
        if let Ok(Some(rtt)) = lan::ping::echo(&tunnel, relay, Duration::from_secs(3)).await {
            tunnel.link().borrow_mut().rtt = Some(rtt);
        }
    });
}
