//! The TLS module's client (`tls/`, loaded on first use by `tls.js`), as an imported JS class:
//! a sans-IO TLS session that takes the bytes read from a TCP stream and gives the bytes to
//! write. Nothing here knows trust: the caller pins the certificate.

use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen(module = "/src/web/tls.js")]
extern "C" {
    #[wasm_bindgen(js_name = tlsClient)]
    fn tls_client(ip: &str) -> js_sys::Promise;
}

#[wasm_bindgen]
extern "C" {
    /// One TLS client session (`TlsClient` of the TLS module).
    pub type TlsClient;
    /// Takes bytes read from TCP.
    #[wasm_bindgen(method, catch)]
    pub fn receive(this: &TlsClient, bytes: &[u8]) -> Result<(), JsValue>;
    /// Bytes to write to TCP now.
    #[wasm_bindgen(method, js_name = takeOutgoing)]
    pub fn take_outgoing(this: &TlsClient) -> Vec<u8>;
    /// Decrypted bytes received.
    #[wasm_bindgen(method, js_name = takePlaintext)]
    pub fn take_plaintext(this: &TlsClient) -> Vec<u8>;
    /// Queues bytes to encrypt and send.
    #[wasm_bindgen(method, catch)]
    pub fn send(this: &TlsClient, bytes: &[u8]) -> Result<(), JsValue>;
    /// Whether the handshake is still running.
    #[wasm_bindgen(method, js_name = isHandshaking)]
    pub fn is_handshaking(this: &TlsClient) -> bool;
    /// Whether the host closed TLS.
    #[wasm_bindgen(method, js_name = peerClosed)]
    pub fn peer_closed(this: &TlsClient) -> bool;
    /// SHA-256 of the host's certificate, `AB:CD:…`.
    #[wasm_bindgen(method, js_name = peerCertificateSha256)]
    pub fn peer_certificate_sha256(this: &TlsClient) -> Option<String>;
    /// `TLSv1.3` or `TLSv1.2`.
    #[wasm_bindgen(method)]
    pub fn protocol(this: &TlsClient) -> Option<String>;
    /// Queues close_notify.
    #[wasm_bindgen(method)]
    pub fn close(this: &TlsClient);
    /// Frees the session's memory in the TLS module (wasm-bindgen's `free`).
    #[wasm_bindgen(method)]
    pub fn free(this: &TlsClient);
}

/// A new session for the LAN host `ip`, loading the TLS module first if needed. Fails with the
/// module's load error as text.
pub async fn client(ip: &str) -> Result<TlsClient, String> {
    let value = JsFuture::from(tls_client(ip)).await.map_err(|e| message(&e))?;
    Ok(value.unchecked_into())
}

/// A thrown JavaScript value as text.
pub fn message(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}
