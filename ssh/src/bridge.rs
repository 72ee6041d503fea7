//! The tunnel's TCP connection (the page's `TcpConnection`: `send(bytes)`, `receive()`,
//! `close()`, `abort()`) as a tokio byte stream for russh.
//!
//! russh wants a `Send` stream; JavaScript objects are not. So russh gets one end of an
//! in-memory duplex pipe and two small tasks on the browser's event loop move bytes between
//! the other end and the JavaScript connection. Why the connection ended (the tunnel's error)
//! is kept for the message the user sees.

use std::cell::RefCell;
use std::rc::Rc;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{spawn_local, JsFuture};

/// Bytes buffered in each direction between russh and the connection.
const PIPE_BYTES: usize = 256 * 1024;
/// Largest chunk handed to `send` at once.
const SEND_CHUNK: usize = 64 * 1024;

#[wasm_bindgen]
extern "C" {
    /// Anything shaped like the page's `TcpConnection`.
    pub type TcpLike;
    #[wasm_bindgen(method, structural)]
    fn send(this: &TcpLike, data: &js_sys::Uint8Array) -> js_sys::Promise;
    #[wasm_bindgen(method, structural)]
    fn receive(this: &TcpLike) -> js_sys::Promise;
    #[wasm_bindgen(method, structural)]
    fn close(this: &TcpLike);
    #[wasm_bindgen(method, structural)]
    fn abort(this: &TcpLike);
}

/// Why the connection under a session ended, when it was not the SSH session's own end.
pub type DropReason = Rc<RefCell<Option<String>>>;

/// Starts moving bytes between `conn` and the returned stream; the reason is set when the
/// connection fails under it.
pub fn bridge(conn: TcpLike) -> (DuplexStream, DropReason) {
    let (ssh_side, pump_side) = tokio::io::duplex(PIPE_BYTES);
    let (mut from_ssh, mut to_ssh) = tokio::io::split(pump_side);
    let reason: DropReason = Rc::default();
    let conn = Rc::new(conn);

    let (down, why) = (conn.clone(), reason.clone());
    spawn_local(async move {
        loop {
            match JsFuture::from(down.receive()).await {
                Ok(chunk) if chunk.is_null() || chunk.is_undefined() => break,
                Ok(chunk) => {
                    if to_ssh.write_all(&js_sys::Uint8Array::new(&chunk).to_vec()).await.is_err() {
                        down.abort();
                        break;
                    }
                }
                Err(e) => {
                    *why.borrow_mut() = Some(describe(&e));
                    break;
                }
            }
        }
        let _ = to_ssh.shutdown().await;
    });

    let (up, why) = (conn, reason.clone());
    spawn_local(async move {
        let mut buf = vec![0u8; SEND_CHUNK];
        loop {
            match from_ssh.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    up.close();
                    break;
                }
                Ok(n) => {
                    if let Err(e) = JsFuture::from(up.send(&js_sys::Uint8Array::from(&buf[..n]))).await {
                        why.borrow_mut().get_or_insert_with(|| describe(&e));
                        up.abort();
                        break;
                    }
                }
            }
        }
    });
    (ssh_side, reason)
}

/// The message of a JavaScript error (the tunnel's errors carry one).
pub fn describe(error: &JsValue) -> String {
    js_sys::Reflect::get(error, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .or_else(|| error.as_string())
        .unwrap_or_else(|| "the connection failed".to_owned())
}
