//! Building the request head sent to a home host, and the framing of a body streamed after it.

use super::response::HttpError;
use super::url::HttpUrl;

/// Headers the client sets itself; a caller's values for them are ignored.
const OWN_HEADERS: [&str; 5] = ["host", "connection", "content-length", "transfer-encoding", "accept-encoding"];

/// One HTTP/1.1 request. [`Request::encode`] asks for its own TCP connection (`Connection:
/// close`), which keeps the reader simple: the body ends at the length, the last chunk, or the
/// close; [`Request::encode_keep_alive`] leaves the connection open for the next request.
#[derive(Debug, Clone)]
pub struct Request {
    /// Method, upper-case (`GET`, `POST`, ...).
    pub method: String,
    /// Where it goes.
    pub url: HttpUrl,
    /// Caller's headers, in order.
    pub headers: Vec<(String, String)>,
    /// Body bytes (empty for none).
    pub body: Vec<u8>,
    /// The `Host` header when it is not the URL's own `host[:port]`: an https app's leaves out
    /// its default port 443, which [`HttpUrl`] (plain `http`) does not know.
    pub host: Option<String>,
    /// Ask for a gzipped body (`Accept-Encoding: gzip`): only a caller that undoes it sets this;
    /// otherwise `identity` is asked for.
    pub accept_gzip: bool,
}

impl Request {
    /// A request with no headers and no body.
    pub fn new(method: &str, url: HttpUrl) -> Self {
        Self {
            method: method.to_ascii_uppercase(),
            url,
            headers: Vec::new(),
            body: Vec::new(),
            host: None,
            accept_gzip: false,
        }
    }

    /// Whether the response to this request never has a body.
    pub fn is_head(&self) -> bool {
        self.method == "HEAD"
    }

    /// The bytes to send: head then body. Refuses header names or values that would split the
    /// head (CR, LF, NUL) and methods that are not tokens.
    pub fn encode(&self) -> Result<Vec<u8>, HttpError> {
        self.encode_with("close")
    }

    /// Like [`Request::encode`], with `Connection: keep-alive` so the connection can carry the
    /// next request once this response is read.
    pub fn encode_keep_alive(&self) -> Result<Vec<u8>, HttpError> {
        self.encode_with("keep-alive")
    }

    /// The head alone, keep-alive, announcing a body that follows in pieces framed by
    /// [`BodyFramer`] (`Content-Length` when its length is known, else `Transfer-Encoding:
    /// chunked`); [`Request::body`] is not sent.
    pub fn encode_streamed_head(&self, framing: BodyFraming) -> Result<Vec<u8>, HttpError> {
        self.encode_head("keep-alive", Some(framing))
    }

    fn encode_with(&self, connection: &str) -> Result<Vec<u8>, HttpError> {
        let has_length = !self.body.is_empty() || matches!(self.method.as_str(), "POST" | "PUT" | "PATCH");
        let framing = has_length.then_some(BodyFraming::Length(self.body.len() as u64));
        let mut bytes = self.encode_head(connection, framing)?;
        bytes.extend_from_slice(&self.body);
        Ok(bytes)
    }

    fn encode_head(&self, connection: &str, framing: Option<BodyFraming>) -> Result<Vec<u8>, HttpError> {
        if self.method.is_empty() || !self.method.bytes().all(is_token_byte) {
            return Err(HttpError::BadRequestHeader(self.method.clone()));
        }
        let host = self.host.clone().unwrap_or_else(|| self.url.host_header());
        if host.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
            return Err(HttpError::BadRequestHeader("Host".into()));
        }
        let mut head = format!("{} {} HTTP/1.1\r\nHost: {host}\r\n", self.method, self.url.target);
        for (name, value) in &self.headers {
            if name.is_empty()
                || !name.bytes().all(is_token_byte)
                || value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0))
            {
                return Err(HttpError::BadRequestHeader(name.clone()));
            }
            if OWN_HEADERS.iter().any(|own| own.eq_ignore_ascii_case(name)) {
                continue;
            }
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        match framing {
            Some(BodyFraming::Length(length)) => head.push_str(&format!("Content-Length: {length}\r\n")),
            Some(BodyFraming::Chunked) => head.push_str("Transfer-Encoding: chunked\r\n"),
            None => {}
        }
        // A browser does not decode a body the page hands it, so only a caller that decodes asks
        // for a compressed one.
        let coding = if self.accept_gzip { "gzip" } else { "identity" };
        head.push_str(&format!("Accept-Encoding: {coding}\r\nConnection: {connection}\r\n\r\n"));
        Ok(header_bytes(head))
    }
}

/// A head's bytes. Header values from a browser are byte strings (each character one byte,
/// U+0000-U+00FF), so each character goes out as that one byte, as the browser would send it; a
/// head with a character beyond U+00FF (only a script's own call can give one) goes as UTF-8.
fn header_bytes(head: String) -> Vec<u8> {
    if head.is_ascii() || head.chars().any(|c| u32::from(c) > 0xFF) {
        return head.into_bytes();
    }
    head.chars().map(|c| u32::from(c) as u8).collect()
}

/// How a body sent in pieces after the head is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// `Content-Length`: exactly this many bytes follow.
    Length(u64),
    /// `Transfer-Encoding: chunked`: each piece a chunk, then the last (empty) chunk.
    Chunked,
}

/// Frames the pieces of a streamed request body as its head announced, and checks that a body
/// with a `Content-Length` has exactly that many bytes.
#[derive(Debug, Clone)]
pub struct BodyFramer {
    framing: BodyFraming,
    sent: u64,
}

impl BodyFramer {
    /// A body not yet started.
    pub fn new(framing: BodyFraming) -> Self {
        Self { framing, sent: 0 }
    }

    /// The bytes to write for `piece`; fails when they would pass the `Content-Length`.
    pub fn frame(&mut self, piece: &[u8]) -> Result<Vec<u8>, HttpError> {
        self.sent += piece.len() as u64;
        match self.framing {
            BodyFraming::Length(declared) if self.sent > declared => {
                Err(HttpError::RequestBodyLength { declared, sent: self.sent })
            }
            BodyFraming::Length(_) => Ok(piece.to_vec()),
            BodyFraming::Chunked if piece.is_empty() => Ok(Vec::new()),
            BodyFraming::Chunked => {
                let mut out = format!("{:x}\r\n", piece.len()).into_bytes();
                out.extend_from_slice(piece);
                out.extend_from_slice(b"\r\n");
                Ok(out)
            }
        }
    }

    /// The bytes that end the body (the last chunk); fails when fewer bytes than the
    /// `Content-Length` were sent.
    pub fn finish(&self) -> Result<&'static [u8], HttpError> {
        match self.framing {
            BodyFraming::Length(declared) if self.sent != declared => {
                Err(HttpError::RequestBodyLength { declared, sent: self.sent })
            }
            BodyFraming::Length(_) => Ok(b""),
            BodyFraming::Chunked => Ok(b"0\r\n\r\n"),
        }
    }

    /// Body bytes framed so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_get_carries_host_and_closes_the_connection() {
        let mut request = Request::new("get", HttpUrl::parse("http://nas:8080/a?b").unwrap());
        request.headers.push(("Accept".into(), "text/html".into()));
        request.headers.push(("Connection".into(), "keep-alive".into()));
        let text = String::from_utf8(request.encode().unwrap()).unwrap();
        assert_eq!(
            text,
            "GET /a?b HTTP/1.1\r\nHost: nas:8080\r\nAccept: text/html\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn an_https_app_on_its_default_port_gets_host_without_it() {
        let mut request = Request::new("GET", HttpUrl::parse("http://192.168.0.5:443/").unwrap());
        request.host = Some("192.168.0.5".into());
        let text = String::from_utf8(request.encode_keep_alive().unwrap()).unwrap();
        assert!(text.starts_with("GET / HTTP/1.1\r\nHost: 192.168.0.5\r\n"), "{text}");
        request.host = Some("192.168.0.5\r\nX: y".into());
        assert_eq!(request.encode(), Err(HttpError::BadRequestHeader("Host".into())));
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_browser_header_value_goes_out_byte_for_byte() {
        // A browser's header values are byte strings: "é" there is the one byte 0xE9.
        let mut request = Request::new("GET", HttpUrl::parse("http://nas/").unwrap());
        request.headers.push(("X-Name".into(), "caf\u{e9}".into()));
        let bytes = request.encode().unwrap();
        assert!(bytes.windows(14).any(|w| w == b"X-Name: caf\xE9\r\n"), "{bytes:?}");
        // A script's own value beyond U+00FF has no byte of its own: it goes as UTF-8.
        request.headers[0].1 = "\u{7167}".into();
        let text = String::from_utf8(request.encode().unwrap()).unwrap();
        assert!(text.contains("X-Name: \u{7167}\r\n"), "{text}");
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_keep_alive_request_leaves_the_connection_open() {
        let request = Request::new("GET", HttpUrl::parse("http://192.168.0.10/").unwrap());
        let text = String::from_utf8(request.encode_keep_alive().unwrap()).unwrap();
        assert!(text.ends_with("Accept-Encoding: identity\r\nConnection: keep-alive\r\n\r\n"), "{text}");
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_caller_that_decodes_asks_for_gzip_and_only_its_own_coding_goes_out() {
        let mut request = Request::new("GET", HttpUrl::parse("http://192.168.0.20:8123/app.js").unwrap());
        request.headers.push(("Accept-Encoding".into(), "br".into()));
        let text = String::from_utf8(request.encode_keep_alive().unwrap()).unwrap();
        assert!(text.contains("Accept-Encoding: identity\r\n") && !text.contains("br"), "{text}");
        request.accept_gzip = true;
        let text = String::from_utf8(request.encode_keep_alive().unwrap()).unwrap();
        assert_eq!(text.matches("Accept-Encoding").count(), 1, "{text}");
        assert!(text.contains("Accept-Encoding: gzip\r\n"), "{text}");
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_post_carries_its_length_and_body() {
        let mut request = Request::new("POST", HttpUrl::parse("http://pi/form").unwrap());
        request.body = b"a=1".to_vec();
        let text = String::from_utf8(request.encode().unwrap()).unwrap();
        assert!(text.contains("Content-Length: 3\r\n"));
        assert!(text.ends_with("\r\n\r\na=1"));
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_streamed_body_of_unknown_length_goes_in_chunks() {
        let mut request = Request::new("PUT", HttpUrl::parse("http://nas/upload").unwrap());
        request.headers.push(("Content-Length".into(), "999".into()));
        request.headers.push(("Transfer-Encoding".into(), "gzip".into()));
        let head = String::from_utf8(request.encode_streamed_head(BodyFraming::Chunked).unwrap()).unwrap();
        assert_eq!(
            head,
            "PUT /upload HTTP/1.1\r\nHost: nas\r\nTransfer-Encoding: chunked\r\nAccept-Encoding: identity\r\nConnection: keep-alive\r\n\r\n"
        );
        let mut framer = BodyFramer::new(BodyFraming::Chunked);
        let mut wire = Vec::new();
        for piece in [&b"hello, "[..], b"", &[b'x'; 20]] {
            wire.extend(framer.frame(piece).unwrap());
        }
        wire.extend_from_slice(framer.finish().unwrap());
        assert_eq!(wire, b"7\r\nhello, \r\n14\r\nxxxxxxxxxxxxxxxxxxxx\r\n0\r\n\r\n");
        assert_eq!(framer.sent(), 27);
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_streamed_body_with_a_length_must_have_exactly_that_many_bytes() {
        let request = Request::new("POST", HttpUrl::parse("http://nas/upload").unwrap());
        let head = String::from_utf8(request.encode_streamed_head(BodyFraming::Length(5)).unwrap()).unwrap();
        assert!(head.contains("Content-Length: 5\r\n") && !head.contains("chunked"), "{head}");

        let mut exact = BodyFramer::new(BodyFraming::Length(5));
        assert_eq!(exact.frame(b"abc").unwrap(), b"abc");
        assert_eq!(exact.frame(b"de").unwrap(), b"de");
        assert_eq!(exact.finish(), Ok(&b""[..]));

        let mut short = BodyFramer::new(BodyFraming::Length(5));
        short.frame(b"abcd").unwrap();
        assert_eq!(short.finish(), Err(HttpError::RequestBodyLength { declared: 5, sent: 4 }));

        let mut long = BodyFramer::new(BodyFraming::Length(5));
        long.frame(b"abc").unwrap();
        assert_eq!(long.frame(b"def"), Err(HttpError::RequestBodyLength { declared: 5, sent: 6 }));
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn header_injection_is_refused() {
        let mut request = Request::new("GET", HttpUrl::parse("http://pi/").unwrap());
        request.headers.push(("X-A".into(), "1\r\nEvil: yes".into()));
        assert!(matches!(request.encode(), Err(HttpError::BadRequestHeader(_))));
        let request = Request::new("GE T", HttpUrl::parse("http://pi/").unwrap());
        assert!(request.encode().is_err());
    }
}
