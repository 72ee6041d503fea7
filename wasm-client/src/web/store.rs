//! The device profile in IndexedDB (one string per key), through a small JS module.

use crate::error::ClientError;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen(module = "/src/web/store.js")]
extern "C" {
    #[wasm_bindgen(js_name = storeGet)]
    fn store_get(key: &str) -> js_sys::Promise;
    #[wasm_bindgen(js_name = storePut)]
    fn store_put(key: &str, value: &str) -> js_sys::Promise;
    #[wasm_bindgen(js_name = storeDelete)]
    fn store_delete(key: &str) -> js_sys::Promise;
}

fn storage_error(e: JsValue) -> ClientError {
    ClientError::Storage(e.as_string().unwrap_or_else(|| format!("{e:?}")))
}

/// Reads `key`; `None` when absent.
pub async fn get(key: &str) -> Result<Option<String>, ClientError> {
    let value = JsFuture::from(store_get(key)).await.map_err(storage_error)?;
    Ok(value.as_string())
}

/// Writes `key`.
pub async fn put(key: &str, value: &str) -> Result<(), ClientError> {
    JsFuture::from(store_put(key, value)).await.map_err(storage_error)?;
    Ok(())
}

/// Removes `key` (no error when absent).
pub async fn delete(key: &str) -> Result<(), ClientError> {
    JsFuture::from(store_delete(key)).await.map_err(storage_error)?;
    Ok(())
}
