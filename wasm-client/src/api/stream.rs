//! A `ReadableStream` fed from the tunnel: each `pull` reads the next chunk.
//!
//! Pull-based, so the browser's consumer sets the pace: nothing is read from the TCP
//! connection until the stream asks, and an unread stream holds the sender back through the
//! TCP window instead of filling memory.

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{ReadableStream, ReadableStreamDefaultController};

use super::js::Obj;
use crate::error::ClientError;
use crate::lan::http::Response;
use crate::lan::tcp::TcpStream;

/// Where the chunks come from.
pub(super) enum Source {
    /// An HTTP response body.
    Body(Box<Response>),
    /// A raw TCP connection.
    Tcp(Rc<TcpStream>),
}

impl Source {
    async fn next(&mut self) -> Result<Option<Vec<u8>>, ClientError> {
        match self {
            Self::Body(response) => response.next_chunk().await,
            Self::Tcp(stream) => stream.read().await,
        }
    }
}

/// Wraps `source` in a `ReadableStream` of `Uint8Array` chunks. Cancelling the stream drops
/// the source (closing its connection).
pub(super) fn readable(source: Source) -> Result<ReadableStream, JsValue> {
    let cell = Rc::new(RefCell::new(Some(source)));
    let cancelled = Rc::new(std::cell::Cell::new(false));
    let (pull_cell, pull_cancelled) = (cell.clone(), cancelled.clone());
    let pull = Closure::<dyn FnMut(ReadableStreamDefaultController) -> js_sys::Promise>::new(
        move |controller: ReadableStreamDefaultController| {
            let (cell, cancelled) = (pull_cell.clone(), pull_cancelled.clone());
            wasm_bindgen_futures::future_to_promise(async move {
                // Taken out for the await, so `cancel` never meets a borrowed cell.
                let Some(mut source) = cell.borrow_mut().take() else {
                    let _ = controller.close();
                    return Ok(JsValue::UNDEFINED);
                };
                match source.next().await {
                    Ok(Some(chunk)) => {
                        controller.enqueue_with_chunk(&crate::web::spare::chunk(&chunk))?;
                        if !cancelled.get() {
                            cell.borrow_mut().get_or_insert(source);
                        }
                    }
                    Ok(None) => controller.close()?,
                    Err(e) => controller.error_with_e(&JsValue::from(e)),
                }
                Ok(JsValue::UNDEFINED)
            })
        },
    );
    let cancel = Closure::<dyn FnMut(JsValue)>::new(move |_reason: JsValue| {
        cancelled.set(true);
        cell.borrow_mut().take();
    });
    let underlying = Obj::new().set("pull", pull.into_js_value()).set("cancel", cancel.into_js_value()).into_js();
    ReadableStream::new_with_underlying_source(underlying.unchecked_ref())
}
