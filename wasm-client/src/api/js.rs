//! Small helpers for building JavaScript values.

use wasm_bindgen::prelude::*;

/// A plain object built field by field.
pub(super) struct Obj(pub js_sys::Object);

impl Obj {
    /// An empty object.
    pub(super) fn new() -> Self {
        Self(js_sys::Object::new())
    }

    /// Sets `key` and returns the object, for chaining.
    pub(super) fn set(self, key: &str, value: impl Into<JsValue>) -> Self {
        let _ = js_sys::Reflect::set(&self.0, &key.into(), &value.into());
        self
    }

    /// The finished value.
    pub(super) fn into_js(self) -> JsValue {
        self.0.into()
    }
}

impl Default for Obj {
    fn default() -> Self {
        Self::new()
    }
}

/// The bytes of a `Uint8Array`, an `ArrayBuffer` or anything else `new Uint8Array(x)` takes,
/// copied into wasm memory once: `new Uint8Array(x)` of a typed array copies it first (for a
/// 256 MiB POST body, 39 % of the page's time in the upload's profile).
pub(super) fn bytes(value: &JsValue) -> Vec<u8> {
    match value.dyn_ref::<js_sys::Uint8Array>() {
        Some(array) => array.to_vec(),
        None => js_sys::Uint8Array::new(value).to_vec(),
    }
}

/// A JavaScript array of strings.
pub(super) fn strings<T: ToString>(items: impl IntoIterator<Item = T>) -> js_sys::Array {
    items.into_iter().map(|item| JsValue::from(item.to_string())).collect()
}

/// Reads `key` of an options object (`undefined` when `options` is not an object).
pub(super) fn field(options: &JsValue, key: &str) -> JsValue {
    if options.is_object() {
        js_sys::Reflect::get(options, &key.into()).unwrap_or(JsValue::UNDEFINED)
    } else {
        JsValue::UNDEFINED
    }
}
