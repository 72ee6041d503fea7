//! Time for the sans-IO core, from `performance.now()` (monotonic, sub-millisecond).

use hometun_shared::time::Instant;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
    #[wasm_bindgen(js_namespace = Date, js_name = now)]
    fn date_now() -> f64;
}

/// The current time as the core's [`Instant`] (microseconds since the page started).
pub fn now() -> Instant {
    Instant::from_micros((performance_now() * 1000.0).max(0.0) as u64)
}

/// Wall-clock milliseconds since the Unix epoch, for "connected since" in the status.
pub fn wall_millis() -> f64 {
    date_now()
}
