//! Requests whose path or query carry control characters (bytes below 0x20 or 0x7f, raw or
//! percent-encoded) are answered 400 before any route sees them: no handler, log line or file
//! lookup gets a newline, NUL or escape sequence from the network.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Middleware: 400 for a request target with control characters, else the routes.
pub async fn reject_control_characters(request: Request, next: Next) -> Response {
    let uri = request.uri();
    let dirty = has_control(uri.path().as_bytes()) || uri.query().is_some_and(|q| has_control(q.as_bytes()));
    if dirty {
        let mut response = (StatusCode::BAD_REQUEST, "control characters in the request path\n").into_response();
        super::page::security_headers(response.headers_mut());
        return response;
    }
    next.run(request).await
}

/// Whether `text` holds a control character, raw or as `%XX`.
fn has_control(text: &[u8]) -> bool {
    let control = |b: u8| b < 0x20 || b == 0x7f;
    text.iter().enumerate().any(|(i, &b)| {
        control(b)
            || (b == b'%'
                && text
                    .get(i + 1..i + 3)
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                    .is_some_and(control))
    })
}

#[cfg(test)]
mod tests {
    use super::has_control;

    #[test]
    fn control_characters_raw_or_percent_encoded_are_found() {
        for dirty in ["/a%0ab", "/%00", "/x%7F", "/x%7f", "/%1b[31m", "a\u{7f}", "/\t", "/%0D%0A"] {
            assert!(has_control(dirty.as_bytes()), "{dirty}");
        }
        for clean in ["/", "/index.html", "/a%20b", "/%25", "/%", "/%0", "/%zz", "/caf%C3%A9", "/+~"] {
            assert!(!has_control(clean.as_bytes()), "{clean}");
        }
    }
}
