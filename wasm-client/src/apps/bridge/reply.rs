//! The messages wasm sends on a port (`head`, `chunk`, `end`, `error`, `body-more`, `pong`,
//! `ws-*`, `ok`, `cookies`), built as plain objects; chunk buffers are transferred, not copied.

use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::JsValue;
use web_sys::MessagePort;

use super::message::Id;

/// Largest `chunk` of a response body (what one read of the LAN connection takes at most).
/// Each chunk costs the launcher's thread a message out and a `more` in: with 256 KiB chunks
/// instead of 64 KiB, a 64 MiB download through the worker took a sixth fewer of that
/// thread's profile samples on average (bench/README.md, "Chunks of 256 KiB on the port").
pub const MAX_CHUNK: usize = 256 * 1024;

/// One outgoing message.
#[derive(Debug)]
pub enum Reply<'a> {
    /// `head`: status, reason and mapped headers.
    Head {
        /// Status code.
        status: u16,
        /// Reason phrase.
        status_text: &'a str,
        /// Headers in order.
        headers: &'a [(String, String)],
    },
    /// `chunk`: body bytes (at most [`MAX_CHUNK`]).
    Chunk(&'a [u8]),
    /// `end`: the body is complete.
    End,
    /// `error`: the request failed (before or after `head`).
    Error(&'a str),
    /// `body-more`: one more chunk of the streamed request body may come.
    BodyMore,
    /// `pong`: answer to `ping`.
    Pong,
    /// `ok`: answer to `set-cookie`.
    Ok,
    /// `ws-opened`: the upgrade succeeded.
    WsOpened {
        /// The subprotocol the server chose (empty for none).
        protocol: &'a str,
    },
    /// `ws-sent`: the page's oldest message not yet reported went to the app.
    WsSent,
    /// `ws-message`: a text message.
    WsText(&'a str),
    /// `ws-message`: a binary message.
    WsBinary(&'a [u8]),
    /// `ws-closed`: the WebSocket ended.
    WsClosed {
        /// Close code.
        code: u16,
        /// Close reason.
        reason: &'a str,
        /// Whether the closing handshake completed.
        was_clean: bool,
    },
}

fn set(object: &Object, key: &str, value: impl Into<JsValue>) {
    let _ = Reflect::set(object, &key.into(), &value.into());
}

fn id_value(id: &Id) -> JsValue {
    match id {
        Id::Number(n) => (*n).into(),
        Id::Text(t) => t.into(),
    }
}

/// Pairs as an array of `[name, value]` arrays.
pub fn pairs<'a>(items: impl IntoIterator<Item = [&'a str; 2]>) -> Array {
    items.into_iter().map(|[a, b]| -> JsValue { Array::of2(&a.into(), &b.into()).into() }).collect()
}

/// Posts `reply` for `id` on `port`. A closed port drops it silently (its reader is gone).
pub fn post(port: &MessagePort, id: &Id, reply: Reply<'_>) {
    let object = Object::new();
    set(&object, "id", id_value(id));
    let transfer = Array::new();
    let op = match reply {
        Reply::Head { status, status_text, headers } => {
            set(&object, "status", status);
            set(&object, "statusText", status_text);
            set(&object, "headers", pairs(headers.iter().map(|(n, v)| [n.as_str(), v.as_str()])));
            "head"
        }
        Reply::Chunk(bytes) => {
            let buffer = Uint8Array::from(bytes).buffer();
            set(&object, "data", buffer.clone());
            transfer.push(&buffer);
            "chunk"
        }
        Reply::End => "end",
        Reply::Error(message) => {
            set(&object, "message", message);
            "error"
        }
        Reply::BodyMore => "body-more",
        Reply::Pong => "pong",
        Reply::Ok => "ok",
        Reply::WsOpened { protocol } => {
            set(&object, "protocol", protocol);
            "ws-opened"
        }
        Reply::WsSent => "ws-sent",
        Reply::WsText(text) => {
            set(&object, "data", text);
            "ws-message"
        }
        Reply::WsBinary(bytes) => {
            let buffer = Uint8Array::from(bytes).buffer();
            set(&object, "data", buffer.clone());
            transfer.push(&buffer);
            "ws-message"
        }
        Reply::WsClosed { code, reason, was_clean } => {
            set(&object, "code", code);
            set(&object, "reason", reason);
            set(&object, "wasClean", was_clean);
            "ws-closed"
        }
    };
    set(&object, "op", op);
    let _ = port.post_message_with_transferable(&object, &transfer);
}

/// Posts the `cookies` broadcast (no id): the jar's script-visible cookies.
pub fn post_cookies(port: &MessagePort, cookies: &[(String, String, String)]) {
    let object = Object::new();
    set(&object, "op", "cookies");
    let list: Array =
        cookies.iter().map(|(n, v, p)| -> JsValue { Array::of3(&n.into(), &v.into(), &p.into()).into() }).collect();
    set(&object, "cookies", list);
    let _ = port.post_message(&object);
}

/// Asks the far end of `port` whether it is still there: `{op: "ping"}` without an id, which
/// every holder of an app port answers with `{op: "pong"}` (any message counts).
pub fn post_ping(port: &MessagePort) {
    let object = Object::new();
    set(&object, "op", "ping");
    let _ = port.post_message(&object);
}
