//! What the page's JavaScript calls: [`TlsClient`], the [`Client`] as a class. Errors arrive
//! as JavaScript `Error`s whose message is the [`TlsError`](crate::TlsError) text.
//!
//! ```js
//! import init, { TlsClient } from '/tls/hometun_tls.js';
//! await init();
//! const tls = new TlsClient('192.168.1.10');
//! tcp.send(tls.takeOutgoing());
//! ```

use std::net::Ipv4Addr;

use wasm_bindgen::prelude::*;

use crate::client::Client;
use crate::error::TlsError;

/// A TLS connection to one LAN host; see [`Client`] for when to call what.
#[wasm_bindgen]
pub struct TlsClient {
    client: Client,
}

#[wasm_bindgen]
impl TlsClient {
    /// A client for the LAN host at `ip` (dotted IPv4); the ClientHello is ready in
    /// `takeOutgoing()` at once.
    #[wasm_bindgen(constructor)]
    pub fn new(ip: &str) -> Result<Self, JsError> {
        let ip: Ipv4Addr = ip.parse().map_err(|_| TlsError::InvalidAddress(ip.into()))?;
        Ok(Self { client: Client::new(ip)? })
    }

    /// Feeds bytes received from the TCP stream; throws once the connection has failed.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<(), JsError> {
        Ok(self.client.receive(bytes)?)
    }

    /// Bytes to send on the TCP stream now (a `Uint8Array`, empty if none).
    #[wasm_bindgen(js_name = takeOutgoing)]
    pub fn take_outgoing(&mut self) -> Vec<u8> {
        self.client.take_outgoing()
    }

    /// Decrypted bytes from the host (a `Uint8Array`, empty if none); take them after every
    /// `receive`.
    #[wasm_bindgen(js_name = takePlaintext)]
    pub fn take_plaintext(&mut self) -> Vec<u8> {
        self.client.take_plaintext()
    }

    /// Queues bytes to send; throws before the handshake is done, after `close()`, or once
    /// the connection has failed.
    pub fn send(&mut self, plaintext: &[u8]) -> Result<(), JsError> {
        Ok(self.client.send(plaintext)?)
    }

    /// True until the handshake has finished.
    #[wasm_bindgen(js_name = isHandshaking)]
    pub fn is_handshaking(&self) -> bool {
        self.client.is_handshaking()
    }

    /// True once the host sent close_notify.
    #[wasm_bindgen(js_name = peerClosed)]
    pub fn peer_closed(&self) -> bool {
        self.client.peer_closed()
    }

    /// The host's certificate (DER, a `Uint8Array`) or `undefined` before the handshake got
    /// that far; pin its SHA-256 before the first `send`.
    #[wasm_bindgen(js_name = peerCertificate)]
    pub fn peer_certificate(&self) -> Option<Vec<u8>> {
        self.client.peer_certificate()
    }

    /// The SHA-256 of the host's certificate as `AB:CD:…` (upper-case hex pairs), or
    /// `undefined` before the handshake got that far: the form to pin.
    #[wasm_bindgen(js_name = peerCertificateSha256)]
    pub fn peer_certificate_sha256(&self) -> Option<String> {
        self.client.peer_certificate_sha256()
    }

    /// "TLSv1.3" or "TLSv1.2", `undefined` while handshaking.
    pub fn protocol(&self) -> Option<String> {
        self.client.protocol()
    }

    /// Queues close_notify (send `takeOutgoing()` afterwards).
    pub fn close(&mut self) {
        self.client.close();
    }
}
