//! Building the request head sent to a home host.

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
}

impl Request {
    /// A request with no headers and no body.
    pub fn new(method: &str, url: HttpUrl) -> Self {
        Self { method: method.to_ascii_uppercase(), url, headers: Vec::new(), body: Vec::new() }
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

    fn encode_with(&self, connection: &str) -> Result<Vec<u8>, HttpError> {
        if self.method.is_empty() || !self.method.bytes().all(is_token_byte) {
            return Err(HttpError::BadRequestHeader(self.method.clone()));
        }
        let mut head = format!("{} {} HTTP/1.1\r\nHost: {}\r\n", self.method, self.url.target, self.url.host_header());
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
        if !self.body.is_empty() || matches!(self.method.as_str(), "POST" | "PUT" | "PATCH") {
            head.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        // The page cannot hand compressed bytes to the frame as they are; ask for plain ones.
        head.push_str(&format!("Accept-Encoding: identity\r\nConnection: {connection}\r\n\r\n"));
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&self.body);
        Ok(bytes)
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
    fn a_keep_alive_request_leaves_the_connection_open() {
        let request = Request::new("GET", HttpUrl::parse("http://192.168.0.10/").unwrap());
        let text = String::from_utf8(request.encode_keep_alive().unwrap()).unwrap();
        assert!(text.ends_with("Accept-Encoding: identity\r\nConnection: keep-alive\r\n\r\n"), "{text}");
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
    fn header_injection_is_refused() {
        let mut request = Request::new("GET", HttpUrl::parse("http://pi/").unwrap());
        request.headers.push(("X-A".into(), "1\r\nEvil: yes".into()));
        assert!(matches!(request.encode(), Err(HttpError::BadRequestHeader(_))));
        let request = Request::new("GE T", HttpUrl::parse("http://pi/").unwrap());
        assert!(request.encode().is_err());
    }
}
