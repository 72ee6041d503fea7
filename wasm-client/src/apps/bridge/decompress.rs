//! A compressed response body (the bridge asks for `gzip` where the browser can undo it, and some
//! apps compress anyway), undone by the browser's own `DecompressionStream` as it streams: a task
//! feeds the LAN body into the stream's writable side in pieces of [`FEED_PIECE`], and
//! [`Decoded::next_chunk`] reads the plain bytes from its readable side. Each write waits until
//! the stream has taken the last one, and the stream gives out only what is read, so at most one
//! piece's output waits in between. A corrupt or cut-short body fails the read; dropping a
//! [`Decoded`] cancels the stream, which stops the feeding task.

use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStream, ReadableStreamDefaultReader, WritableStream, WritableStreamDefaultWriter};

use super::exchange::Exchange;
use crate::apps::headers::Coding;
use crate::error::ClientError;
use crate::http::HttpError;

#[wasm_bindgen]
extern "C" {
    /// The Compression Streams API's decoder (web-sys has it only behind its unstable flag).
    type DecompressionStream;
    #[wasm_bindgen(constructor, catch)]
    fn new(format: &str) -> Result<DecompressionStream, JsValue>;
    #[wasm_bindgen(method, getter)]
    fn readable(this: &DecompressionStream) -> ReadableStream;
    #[wasm_bindgen(method, getter)]
    fn writable(this: &DecompressionStream) -> WritableStream;
}

/// The compressed bytes handed to the decoder at a time. It queues all it makes of one write
/// before the reader takes any (deflate makes at most ~1,032 bytes of each), so a small piece
/// keeps a hostile body's output bounded: about 16 MiB waiting at most.
const FEED_PIECE: usize = 16 * 1024;

/// Whether this browser has `DecompressionStream` (every current one does), so the bridge may ask
/// apps for compressed bodies.
pub fn available() -> bool {
    Reflect::has(&js_sys::global(), &"DecompressionStream".into()).unwrap_or(false)
}

/// The plain bytes of a compressed response body.
pub struct Decoded {
    reader: ReadableStreamDefaultReader,
}

impl Decoded {
    /// Starts undoing `coding` on the body that `exchange` reads.
    pub fn new(exchange: Exchange, coding: Coding) -> Result<Self, ClientError> {
        let format = match coding {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
        };
        let stream = DecompressionStream::new(format).map_err(|e| corrupt(&e))?;
        let writer = stream.writable().get_writer().map_err(|e| corrupt(&e))?;
        let reader = stream.readable().get_reader().unchecked_into::<ReadableStreamDefaultReader>();
        // A failed stream rejects these too: seen here, they are not reported as unhandled.
        settle_quietly(writer.closed());
        settle_quietly(reader.closed());
        wasm_bindgen_futures::spawn_local(feed(exchange, writer));
        Ok(Self { reader })
    }

    /// The next plain bytes; `Ok(None)` at the body's end.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, ClientError> {
        loop {
            let result = JsFuture::from(self.reader.read()).await.map_err(|e| corrupt(&e))?;
            if Reflect::get(&result, &"done".into()).is_ok_and(|done| done.is_truthy()) {
                return Ok(None);
            }
            let value = Reflect::get(&result, &"value".into()).map_err(|e| corrupt(&e))?;
            let bytes = value.dyn_into::<Uint8Array>().map_err(|e| corrupt(&e))?.to_vec();
            if !bytes.is_empty() {
                return Ok(Some(bytes));
            }
        }
    }
}

impl Drop for Decoded {
    fn drop(&mut self) {
        // Ends the feeding task's wait (its write fails) when the page stopped reading early.
        settle_quietly(self.reader.cancel());
    }
}

/// Waits for `promise` and ignores how it settles.
fn settle_quietly(promise: js_sys::Promise) {
    wasm_bindgen_futures::spawn_local(async move {
        let _ = JsFuture::from(promise).await;
    });
}

/// Writes the LAN body into the stream, then closes it; a LAN error (or a cancel) aborts the
/// stream instead, so the reader fails rather than ending as if the body were whole.
async fn feed(mut exchange: Exchange, writer: WritableStreamDefaultWriter) {
    let failed = loop {
        match exchange.next_chunk().await {
            Ok(Some(chunk)) => {
                for piece in chunk.chunks(FEED_PIECE) {
                    let piece = Uint8Array::from(piece);
                    if JsFuture::from(writer.write_with_chunk(&piece)).await.is_err() {
                        return; // the reader went away
                    }
                }
            }
            Ok(None) => break None,
            Err(e) => break Some(e),
        }
    };
    let _ = match failed {
        None => JsFuture::from(writer.close()).await,
        Some(e) => JsFuture::from(writer.abort_with_reason(&JsValue::from_str(&e.to_string()))).await,
    };
}

/// The stream's failure as the app's error.
fn corrupt(error: &JsValue) -> ClientError {
    let reason = error
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| error.as_string())
        .unwrap_or_else(|| "the decoder failed".into());
    HttpError::BadEncoding(reason).into()
}
