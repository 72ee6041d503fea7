//! The tunnel's TCP connection (the page's `TcpConnection`: `send(bytes)`, `receive()`,
//! `close()`, `abort()`) as a tokio byte stream for russh.
//!
//! russh wants a `Send` stream; JavaScript objects are not. So russh gets one end of an
//! in-memory duplex pipe and two small tasks on the browser's event loop move bytes between
//! the other end and the JavaScript connection. Why the connection ended (the tunnel's error)
//! is kept for the message the user sees. When the SSH side ends, the connection is closed and,
//! should the server not close its side within [`CLOSE_GRACE_MS`], reset: a server that hangs
//! does not hold one of the tunnel's TCP connections for ever.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{spawn_local, JsFuture};

/// Bytes buffered in each direction between russh and the connection.
const PIPE_BYTES: usize = 256 * 1024;
/// Largest chunk handed to `send` at once.
const SEND_CHUNK: usize = 64 * 1024;
/// How long the server has to close its side once the SSH session has ended before the
/// connection is reset.
pub const CLOSE_GRACE_MS: i32 = 2_000;

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

    // Whether the download has ended (the server closed, or the connection failed), and
    // whether this side is resetting the connection after the session (not a failure to report).
    let (downloaded, resetting) = (Rc::new(Cell::new(false)), Rc::new(Cell::new(false)));

    let (down, why, done, ours) = (conn.clone(), reason.clone(), downloaded.clone(), resetting.clone());
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
                    if !ours.get() {
                        *why.borrow_mut() = Some(describe(&e));
                    }
                    break;
                }
            }
        }
        done.set(true);
        let _ = to_ssh.shutdown().await;
    });

    let (up, why) = (conn, reason.clone());
    spawn_local(async move {
        let mut buf = vec![0u8; SEND_CHUNK];
        loop {
            match from_ssh.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    up.close();
                    sleep(CLOSE_GRACE_MS).await;
                    if !downloaded.get() {
                        // The reset ends the download's wait too.
                        resetting.set(true);
                        up.abort();
                    }
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

/// Resolves after `ms` milliseconds, by the page's timer (tokio has no timer in the browser).
pub(crate) async fn sleep(ms: i32) {
    let timer = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    let _ = JsFuture::from(timer).await;
}

/// The message of a JavaScript error (the tunnel's errors carry one).
pub fn describe(error: &JsValue) -> String {
    js_sys::Reflect::get(error, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .or_else(|| error.as_string())
        .unwrap_or_else(|| "the connection failed".to_owned())
}
