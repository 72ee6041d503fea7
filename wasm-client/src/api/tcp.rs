//! `connectTcp(host, port)`: a raw TCP connection for JavaScript.

use std::rc::Rc;

use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::stream::{readable, Source};
use super::tunnel;
use crate::lan::tcp::TcpStream;

/// An open TCP connection through the tunnel: `send(bytes)`, `receive()`, the `readable`
/// stream, `close()` (finish sending) and `abort()` (reset).
#[wasm_bindgen]
pub struct TcpConnection {
    stream: Rc<TcpStream>,
}

/// Connects to `host:port` on the home network. Resolves with a [`TcpConnection`].
#[wasm_bindgen(js_name = connectTcp)]
pub async fn connect_tcp(host: String, port: u16) -> Result<TcpConnection, JsValue> {
    let stream = TcpStream::connect(&tunnel(), &host, port).await?;
    Ok(TcpConnection { stream: Rc::new(stream) })
}

#[wasm_bindgen]
impl TcpConnection {
    /// Sends bytes (a `Uint8Array` or a string, sent as UTF-8); resolves once they are queued.
    pub fn send(&self, data: JsValue) -> js_sys::Promise {
        let stream = self.stream.clone();
        let bytes = match data.as_string() {
            Some(text) => text.into_bytes(),
            None => super::js::bytes(&data),
        };
        future_to_promise(async move {
            stream.write_all(&bytes).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// The next received bytes as a `Uint8Array`, or `null` once the peer has closed.
    pub fn receive(&self) -> js_sys::Promise {
        let stream = self.stream.clone();
        future_to_promise(async move {
            Ok(match stream.read().await? {
                Some(bytes) => js_sys::Uint8Array::from(bytes.as_slice()).into(),
                None => JsValue::NULL,
            })
        })
    }

    /// The received bytes as a `ReadableStream` (use either this or `receive()`).
    #[wasm_bindgen(getter)]
    pub fn readable(&self) -> Result<web_sys::ReadableStream, JsValue> {
        readable(Source::Tcp(self.stream.clone()))
    }

    /// Finishes sending; the peer sees end-of-file. Receiving continues.
    pub fn close(&self) {
        self.stream.close();
    }

    /// Resets the connection at once.
    pub fn abort(&self) {
        self.stream.abort();
    }

    /// The host as given to `connectTcp`.
    #[wasm_bindgen(getter)]
    pub fn host(&self) -> String {
        self.stream.peer().0
    }

    /// The port.
    #[wasm_bindgen(getter)]
    pub fn port(&self) -> u16 {
        self.stream.peer().1
    }
}
