//! Buffers for the chunks the page's streams hand to JavaScript. Each chunk must be an
//! `ArrayBuffer` of its own (a consumer may keep it), and a fresh one costs Chromium about 18 µs
//! plus 0.4 µs per KiB, more than the copy into it (bench/README.md, "Record sizes in a browser
//! download"). The last WebSocket message's `ArrayBuffer` is garbage once its bytes are copied
//! into wasm, and was made by the browser already: it carries the next chunk that fits in it.

use std::cell::RefCell;

use js_sys::{ArrayBuffer, Uint8Array};

thread_local! {
    static SPARE: RefCell<Option<ArrayBuffer>> = const { RefCell::new(None) };
}

/// Keeps `buffer` (a message whose bytes are in wasm now) for the next chunk, in place of the
/// one kept before.
pub fn offer(buffer: ArrayBuffer) {
    SPARE.with(|spare| *spare.borrow_mut() = Some(buffer));
}

/// `bytes` in a `Uint8Array` whose buffer no one else holds: the kept message's when `bytes` fit
/// in it (its rest zeroed), else a new one.
pub fn chunk(bytes: &[u8]) -> Uint8Array {
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    let fits = SPARE.with(|spare| spare.borrow_mut().take_if(|buffer| buffer.byte_length() >= len));
    match fits {
        Some(buffer) => {
            let whole = Uint8Array::new(&buffer);
            whole.fill(0, len, whole.length());
            let view = whole.subarray(0, len);
            view.copy_from(bytes);
            view
        }
        None => Uint8Array::from(bytes),
    }
}

#[cfg(all(test, target_arch = "wasm32"))]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn message(len: u32) -> ArrayBuffer {
        let buffer = ArrayBuffer::new(len);
        Uint8Array::new(&buffer).fill(0xaa, 0, len);
        buffer
    }

    #[wasm_bindgen_test]
    fn a_chunk_that_fits_takes_the_kept_message_with_its_rest_zeroed_and_only_once() {
        let kept = message(100);
        offer(kept.clone());
        let first = chunk(&[1, 2, 3]);
        assert_eq!(first.to_vec(), [1, 2, 3]);
        assert!(first.buffer() == kept, "the chunk is not in the kept message's buffer");
        assert_eq!(Uint8Array::new(&kept).to_vec()[3..], [0; 97], "the message's own bytes are left");
        let second = chunk(&[4, 5]);
        assert_eq!(second.to_vec(), [4, 5]);
        assert_eq!(second.buffer().byte_length(), 2, "the kept buffer was handed out twice");
    }

    #[wasm_bindgen_test]
    fn a_chunk_larger_than_the_kept_message_gets_a_buffer_of_its_own_and_leaves_it_kept() {
        let kept = message(4);
        offer(kept.clone());
        let large = chunk(&[9; 10]);
        assert_eq!(large.to_vec(), [9; 10]);
        assert_eq!(large.buffer().byte_length(), 10);
        let small = chunk(&[7]);
        assert!(small.buffer() == kept, "the kept buffer was dropped by a chunk it could not carry");
    }
}
