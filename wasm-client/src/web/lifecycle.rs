//! The page's hints that its connections may have died unseen or that a wait is pointless:
//! the network came back (`online`), the page is shown again (`visibilitychange` to visible,
//! `pageshow`) or the browser resumed it after freezing it (`resume`, as phones do with
//! pages in the background). And whether the browser says the device has no network.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// Calls `on_hint` on each of those events while the page is visible, for the rest of the
/// page's life (a hidden page waits for the `visibilitychange` that shows it), and on `online`
/// also while hidden: a launcher behind an app tab carries that app's traffic, and a phone
/// that moved from Wi-Fi to its mobile network should not wait for the launcher to be shown.
/// Does nothing in a worker, which has no such events.
pub fn on_comeback(mut on_hint: impl FnMut() + 'static) {
    let Some(window) = web_sys::window() else { return };
    let Ok(document) = js_sys::Reflect::get(&window, &"document".into()) else { return };
    let watched = document.clone();
    let callback = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
        let kind = js_sys::Reflect::get(&event, &"type".into()).ok().and_then(|s| s.as_string());
        let state = js_sys::Reflect::get(&watched, &"visibilityState".into()).ok().and_then(|s| s.as_string());
        if kind.as_deref() == Some("online") || state.as_deref() != Some("hidden") {
            on_hint();
        }
    });
    let function = callback.as_ref().unchecked_ref();
    let document: &web_sys::EventTarget = document.unchecked_ref();
    for (target, event) in [
        (window.as_ref(), "online"),
        (window.as_ref(), "pageshow"),
        (document, "visibilitychange"),
        (document, "resume"),
    ] {
        let _ = target.add_event_listener_with_callback(event, function);
    }
    // Listens for the page's life, as the page itself does.
    callback.forget();
}

/// Whether the browser says the device has no network now (`navigator.onLine` false). Its
/// "online" only means some network is up, so only the "offline" is worth telling a user.
pub fn offline() -> bool {
    js_sys::Reflect::get(&js_sys::global(), &"navigator".into())
        .and_then(|navigator| js_sys::Reflect::get(&navigator, &"onLine".into()))
        .is_ok_and(|online| online == JsValue::FALSE)
}
