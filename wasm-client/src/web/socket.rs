//! The WebSocket to the relay: binary messages in, binary messages out, and how it ended.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};

/// What the socket reports to its owner.
#[derive(Debug)]
pub enum SocketEvent {
    /// The connection is open; sending works from now on.
    Open,
    /// One binary message.
    Message(Vec<u8>),
    /// The connection ended (after an error, the browser also reports a close).
    Closed {
        /// Close code (1006 when the connection just dropped).
        code: u16,
        /// Close reason text from the relay.
        reason: String,
        /// Whether it was ever open.
        was_open: bool,
    },
}

/// An open or opening WebSocket. Dropping it detaches the handlers and closes the connection.
pub struct Socket {
    ws: WebSocket,
    _on_open: Closure<dyn FnMut()>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl Socket {
    /// Starts connecting to `url`; `on_event` receives every [`SocketEvent`] from the event loop.
    pub fn open(url: &str, on_event: impl FnMut(SocketEvent) + 'static) -> Result<Self, String> {
        let ws = WebSocket::new(url).map_err(|e| format!("{e:?}"))?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        let on_event = std::rc::Rc::new(std::cell::RefCell::new(on_event));
        let opened = std::rc::Rc::new(std::cell::Cell::new(false));

        let (handler, was_open) = (on_event.clone(), opened.clone());
        let on_open = Closure::<dyn FnMut()>::new(move || {
            was_open.set(true);
            (handler.borrow_mut())(SocketEvent::Open);
        });
        let handler = on_event.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            // Text messages are not part of the protocol; they are dropped.
            if let Ok(buffer) = event.data().dyn_into::<js_sys::ArrayBuffer>() {
                let bytes = js_sys::Uint8Array::new(&buffer).to_vec();
                super::spare::offer(buffer);
                (handler.borrow_mut())(SocketEvent::Message(bytes));
            }
        });
        let handler = on_event;
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |event: CloseEvent| {
            (handler.borrow_mut())(SocketEvent::Closed {
                code: event.code(),
                reason: event.reason(),
                was_open: opened.get(),
            });
        });
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        Ok(Self { ws, _on_open: on_open, _on_message: on_message, _on_close: on_close })
    }

    /// Sends one binary message. Fails when the socket is not open.
    pub fn send(&self, message: &[u8]) -> Result<(), String> {
        self.ws.send_with_u8_array(message).map_err(|e| format!("{e:?}"))
    }

    /// Bytes handed to `send` that the browser has not put on the wire yet.
    pub fn buffered_amount(&self) -> u32 {
        self.ws.buffered_amount()
    }

    /// The URL this socket connects to.
    pub fn url(&self) -> String {
        self.ws.url()
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}
