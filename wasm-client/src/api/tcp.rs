//! `connectTcp(host, port)`: a raw TCP connection for JavaScript.

use std::rc::Rc;

use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::stream::{readable, Source};
use super::tunnel;
use crate::error::ClientError;
use crate::lan::tcp::TcpStream;

/// An open TCP connection through the tunnel: `send(bytes)`, `receive()`, the `readable`
/// stream, `close()` (finish sending) and `abort()` (reset).
#[wasm_bindgen]
pub struct TcpConnection {
    stream: Rc<TcpStream>,
}

/// Connects to `host:port` on the home network. Resolves with a [`TcpConnection`].
pub async fn connect_tcp(host: String, port: u16) -> Result<TcpConnection, JsValue> {
    let stream = TcpStream::connect(&tunnel(), &host, port).await?;
    Ok(TcpConnection { stream: Rc::new(stream) })
}

/// `connectTcp(host, port)`: [`connect_tcp`] for JavaScript, whose `port` is any number: one
/// that is not a whole number 1..=65535 fails with `invalid-argument`. Taken as an `f64`, not a
/// `u16`: wasm-bindgen's conversion would wrap 65558 onto 22 and cut 22.9 to 22, connecting
/// somewhere not asked for.
#[wasm_bindgen(js_name = connectTcp)]
#[allow(unreachable_pub, reason = "exported to JavaScript (wasm-bindgen wants it public), not to Rust")]
pub async fn connect_tcp_js(host: String, port: f64) -> Result<TcpConnection, JsValue> {
    connect_tcp(host, tcp_port(port)?).await
}

/// `port` if it is one.
fn tcp_port(port: f64) -> Result<u16, ClientError> {
    if port.fract() == 0.0 && (1.0..=65535.0).contains(&port) {
        Ok(port as u16)
    } else {
        // Without the number: formatting a float would add ~10 KB gzip to the page.
        Err(ClientError::InvalidArgument("the port must be a whole number from 1 to 65535".into()))
    }
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
                Some(bytes) => crate::web::spare::chunk(&bytes).into(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_port_is_taken_as_given_or_refused_never_wrapped() {
        let cases: &[(f64, Option<u16>)] = &[
            (22.0, Some(22)),
            (1.0, Some(1)),
            (65_535.0, Some(65_535)),
            (0.0, None),
            (-1.0, None),
            (65_536.0, None),
            (65_558.0, None),
            (22.9, None),
            (f64::NAN, None),
            (f64::INFINITY, None),
        ];
        for (i, (given, want)) in cases.iter().enumerate() {
            let got = tcp_port(*given);
            match want {
                Some(p) => assert_eq!(got.ok(), Some(*p), "case {i}: {given}"),
                None => assert!(matches!(got, Err(ClientError::InvalidArgument(_))), "case {i}: {given} gave {got:?}"),
            }
        }
    }
}
