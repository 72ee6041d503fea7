//! `setTimeout` as a cancellable one-shot [`Timer`] and as an awaitable [`sleep`].

use core::time::Duration;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(callback: &js_sys::Function, millis: i32) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
}

/// Whole milliseconds, rounded up: a timer must never fire before its deadline, or the code
/// that armed it finds nothing due and waits for a timer that already went off.
fn millis(delay: Duration) -> i32 {
    i32::try_from(delay.as_micros().div_ceil(1000)).unwrap_or(i32::MAX)
}

/// A pending `setTimeout`; dropping it cancels the call.
pub struct Timer {
    id: JsValue,
    fired: std::rc::Rc<std::cell::Cell<bool>>,
    _callback: Closure<dyn FnMut()>,
}

impl Timer {
    /// Calls `f` once after `delay` (from the event loop, never re-entrantly).
    pub fn once(delay: Duration, f: impl FnOnce() + 'static) -> Self {
        let fired = std::rc::Rc::new(std::cell::Cell::new(false));
        let flag = fired.clone();
        let callback = Closure::once(move || {
            flag.set(true);
            f();
        });
        let id = set_timeout(callback.as_ref().unchecked_ref(), millis(delay));
        Self { id, fired, _callback: callback }
    }

    /// Whether the callback has run.
    pub fn has_fired(&self) -> bool {
        self.fired.get()
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        clear_timeout(&self.id);
    }
}

/// Resolves after `delay`.
pub async fn sleep(delay: Duration) {
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        set_timeout(&resolve, millis(delay));
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}
