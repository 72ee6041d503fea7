//! The browser client's HTTP/1.1 response reader (head parser and body decoder: length,
//! chunked, until close) on arbitrary bytes from a LAN host, fed in arbitrary pieces. It may
//! refuse; it may not panic, loop, or produce more body than it was given.
#![no_main]

use hometun_wasm::http::{Body, ResponseHead};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, bytes)) = data.split_first() else { return };
    let Ok(Some((head, used))) = ResponseHead::parse(bytes) else { return };
    let _ = head.redirect_location();
    for request_was_head in [false, true] {
        let Ok(mut body) = Body::for_response(&head, request_was_head) else { continue };
        let mut rest = &bytes[used..];
        let mut out = Vec::new();
        let piece = usize::from(split).max(1);
        while !rest.is_empty() && !body.is_done() {
            let take = piece.min(rest.len());
            let Ok(consumed) = body.feed(&rest[..take], &mut out) else { break };
            assert!(consumed <= take, "consumed more than it was given");
            if consumed == 0 {
                break;
            }
            rest = &rest[consumed..];
        }
        assert!(out.len() <= bytes.len(), "more body than input");
        let _ = body.finish();
    }
});
