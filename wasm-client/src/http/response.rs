//! Reading a response: the head with `httparse`, then the body by its framing
//! (`Content-Length`, `chunked`, or until the server closes).

/// Largest response head accepted.
pub const MAX_HEAD: usize = 64 * 1024;
/// As many as the app bridge passes on (`apps::headers::MAX_HEADERS`).
const MAX_HEADERS: usize = 200;
const MAX_CHUNK_LINE: usize = 4096;

/// Why a response could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The host sent something that is not an HTTP/1.x response head.
    #[error("the host's reply is not HTTP/1.1: {0}")]
    BadHead(String),
    /// The head is larger than [`MAX_HEAD`] or has too many headers.
    #[error("the host's response head is too large")]
    HeadTooLarge,
    /// `Content-Length` is not a number, or two differ.
    #[error("the host sent an invalid Content-Length")]
    BadContentLength,
    /// A chunk size line or chunk terminator is malformed.
    #[error("the host sent a malformed chunked body")]
    BadChunk,
    /// The connection closed before the body was complete.
    #[error("the connection closed after {received} bytes of the body, before its end")]
    Truncated {
        /// Body bytes received before the close.
        received: u64,
    },
    /// A request header name or value cannot be sent.
    #[error("request header {0:?} cannot be sent (bad name, or CR/LF in the value)")]
    BadRequestHeader(String),
    /// A streamed request body did not have the length its `Content-Length` announced.
    #[error("the request body does not match its Content-Length: {declared} bytes announced, {sent} sent")]
    RequestBodyLength {
        /// The announced length.
        declared: u64,
        /// Bytes sent when the mismatch was seen (at least this many when too long).
        sent: u64,
    },
    /// A compressed body could not be decoded (corrupt, cut short, or the connection broke).
    #[error("the host's compressed body could not be decoded: {0}")]
    BadEncoding(String),
    /// A streamed request body stopped before its end: the page cancelled the request.
    #[error("the request body stopped before its end (the request was cancelled)")]
    RequestBodyStopped,
}

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// Headers in order; values lossily decoded as UTF-8.
    pub headers: Vec<(String, String)>,
    /// An `HTTP/1.0` answer (its connection closes after it unless it says `keep-alive`).
    pub http10: bool,
}

/// A header value as a browser holds it: each byte one character (U+0000-U+00FF), so raw
/// UTF-8 in a `Content-Disposition` file name reaches the browser as the bytes it was, and the
/// browser's `Headers` (which takes only such byte strings) accepts it.
/// A value folded over lines (obsolete, but old devices send it) is one line, as browsers join it.
fn byte_string(value: &[u8]) -> String {
    value.iter().map(|&b| if b == b'\r' || b == b'\n' { ' ' } else { char::from(b) }).collect()
}

/// Reads heads as browsers do, not only as the standard asks: routers, cameras and old PHP pages
/// send a space before a header's colon, a value folded over lines, a stray line that is no
/// header (a warning printed before the headers were done), or two spaces after the version.
/// A browser takes those pages; a strict parse refused the whole answer.
pub(crate) fn as_browsers_read() -> httparse::ParserConfig {
    let mut config = httparse::ParserConfig::default();
    config
        .allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true)
        .ignore_invalid_headers_in_responses(true)
        .allow_multiple_spaces_in_response_status_delimiters(true);
    config
}

impl ResponseHead {
    /// Parses a head at the start of `buf`. `Ok(None)` means more bytes are needed; on success
    /// returns the head and its length. Interim `1xx` heads (not 101) are skipped; together they
    /// count against [`MAX_HEAD`] too, so a host that sends nothing but `100 Continue` cannot
    /// make the buffer (and each parse of it) grow without end.
    pub fn parse(buf: &[u8]) -> Result<Option<(Self, usize)>, HttpError> {
        let mut offset = 0;
        let config = as_browsers_read();
        loop {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut response = httparse::Response::new(&mut headers);
            match config.parse_response(&mut response, &buf[offset..]) {
                Ok(httparse::Status::Complete(len)) => {
                    let status = response.code.unwrap_or_default();
                    if (100..200).contains(&status) && status != 101 {
                        offset += len;
                        if offset > MAX_HEAD {
                            return Err(HttpError::HeadTooLarge);
                        }
                        continue;
                    }
                    let head = Self {
                        status,
                        reason: response.reason.unwrap_or_default().to_owned(),
                        headers: response.headers.iter().map(|h| (h.name.to_owned(), byte_string(h.value))).collect(),
                        http10: response.version == Some(0),
                    };
                    return Ok(Some((head, offset + len)));
                }
                Ok(httparse::Status::Partial) if buf.len() - offset > MAX_HEAD => return Err(HttpError::HeadTooLarge),
                Ok(httparse::Status::Partial) => return Ok(None),
                Err(httparse::Error::TooManyHeaders) => return Err(HttpError::HeadTooLarge),
                Err(e) => return Err(HttpError::BadHead(e.to_string())),
            }
        }
    }

    /// The first value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Whether this is a redirect that carries a `Location`.
    pub fn redirect_location(&self) -> Option<&str> {
        matches!(self.status, 301 | 302 | 303 | 307 | 308).then(|| self.header("location")).flatten()
    }
}

/// How the body is framed, and how far reading it has got.
#[derive(Debug)]
pub struct Body {
    framing: Framing,
    received: u64,
}

#[derive(Debug)]
enum Framing {
    Length(u64),
    Chunked { state: Chunk, line: Vec<u8> },
    UntilClose,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    Size,
    Data(u64),
    DataEnd,
    Trailer,
}

impl Body {
    /// Picks the framing for `head` (RFC 9112 section 6.3): no body for HEAD, 204 and 304;
    /// chunked wins over a length; otherwise the length, else until the close.
    pub fn for_response(head: &ResponseHead, request_was_head: bool) -> Result<Self, HttpError> {
        let framing = if request_was_head || matches!(head.status, 204 | 304) {
            Framing::Done
        } else if head
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"))
            .any(|(_, v)| v.to_ascii_lowercase().contains("chunked"))
        {
            Framing::Chunked { state: Chunk::Size, line: Vec::new() }
        } else {
            let mut length = None;
            for (_, value) in head.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("content-length")) {
                let parsed: u64 = value.trim().parse().map_err(|_| HttpError::BadContentLength)?;
                if length.is_some_and(|l| l != parsed) {
                    return Err(HttpError::BadContentLength);
                }
                length = Some(parsed);
            }
            match length {
                Some(0) => Framing::Done,
                Some(n) => Framing::Length(n),
                None => Framing::UntilClose,
            }
        };
        Ok(Self { framing, received: 0 })
    }

    /// The declared length, when the body has one.
    pub fn declared_length(&self) -> Option<u64> {
        match self.framing {
            Framing::Length(n) => Some(n + self.received),
            Framing::Done if self.received == 0 => Some(0),
            _ => None,
        }
    }

    /// Whether the whole body has been read.
    pub fn is_done(&self) -> bool {
        matches!(self.framing, Framing::Done)
    }

    /// Body bytes decoded so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Decodes `input`, appending body bytes to `out`. Returns how many input bytes belong to
    /// this body; bytes after its end are not consumed.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<usize, HttpError> {
        let total = input.len();
        loop {
            match &mut self.framing {
                Framing::Done => break,
                Framing::UntilClose => {
                    out.extend_from_slice(input);
                    self.received += input.len() as u64;
                    input = &[];
                    break;
                }
                Framing::Length(remaining) => {
                    let n = (*remaining).min(input.len() as u64) as usize;
                    out.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    self.received += n as u64;
                    *remaining -= n as u64;
                    if *remaining == 0 {
                        self.framing = Framing::Done;
                    }
                    break;
                }
                Framing::Chunked { state: Chunk::Data(remaining), .. } => {
                    if input.is_empty() {
                        break;
                    }
                    let n = (*remaining).min(input.len() as u64) as usize;
                    out.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    self.received += n as u64;
                    *remaining -= n as u64;
                    if *remaining == 0 {
                        self.framing = Framing::Chunked { state: Chunk::DataEnd, line: Vec::new() };
                    }
                }
                Framing::Chunked { state, line } => {
                    let Some(end) = input.iter().position(|&b| b == b'\n') else {
                        line.extend_from_slice(input);
                        input = &[];
                        if line.len() > MAX_CHUNK_LINE {
                            return Err(HttpError::BadChunk);
                        }
                        break;
                    };
                    line.extend_from_slice(&input[..=end]);
                    input = &input[end + 1..];
                    let is_blank = line.as_slice() == b"\r\n" || line.as_slice() == b"\n";
                    let next = match *state {
                        Chunk::Size => match httparse::parse_chunk_size(line) {
                            Ok(httparse::Status::Complete((_, 0))) => Chunk::Trailer,
                            Ok(httparse::Status::Complete((_, size))) => Chunk::Data(size),
                            _ => return Err(HttpError::BadChunk),
                        },
                        Chunk::DataEnd if is_blank => Chunk::Size,
                        Chunk::DataEnd => return Err(HttpError::BadChunk),
                        Chunk::Trailer if is_blank => {
                            self.framing = Framing::Done;
                            continue;
                        }
                        Chunk::Trailer => Chunk::Trailer,
                        // Data is consumed by the arm above and never reaches here.
                        Chunk::Data(_) => return Err(HttpError::BadChunk),
                    };
                    *state = next;
                    line.clear();
                }
            }
        }
        Ok(total - input.len())
    }

    /// Takes the body bytes at the front of `buffer` out of it; `None` when there were none.
    /// When all of `buffer` is body (no framing can lie in it), it is answered as it is,
    /// without a copy.
    pub fn take_from(&mut self, buffer: &mut Vec<u8>) -> Result<Option<Vec<u8>>, HttpError> {
        if buffer.is_empty() {
            return Ok(None);
        }
        if self.take_whole(buffer.len() as u64) {
            return Ok(Some(std::mem::take(buffer)));
        }
        let mut out = Vec::new();
        let used = self.feed(buffer, &mut out)?;
        buffer.drain(..used);
        Ok(Some(out).filter(|out| !out.is_empty()))
    }

    /// Counts `len` bytes as body, when they cannot hold framing: the body runs until the
    /// close, or at least `len` bytes of its length or of its current chunk are still to come.
    /// Answers whether it did.
    fn take_whole(&mut self, len: u64) -> bool {
        let remaining = match &mut self.framing {
            Framing::UntilClose => None,
            Framing::Length(remaining) | Framing::Chunked { state: Chunk::Data(remaining), .. }
                if *remaining >= len =>
            {
                *remaining -= len;
                Some(*remaining)
            }
            _ => return false,
        };
        self.received += len;
        if remaining == Some(0) {
            self.framing = match self.framing {
                Framing::Length(_) => Framing::Done,
                _ => Framing::Chunked { state: Chunk::DataEnd, line: Vec::new() },
            };
        }
        true
    }

    /// The connection closed: fine when the body is complete or runs until the close.
    pub fn finish(&mut self) -> Result<(), HttpError> {
        match self.framing {
            Framing::Done => Ok(()),
            Framing::UntilClose => {
                self.framing = Framing::Done;
                Ok(())
            }
            _ => Err(HttpError::Truncated { received: self.received }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads the body from pieces of `split_every` bytes twice, through [`Body::feed`] and
    /// through [`Body::take_from`] as the connections do, and checks that both read the same.
    fn read_all(response: &[u8], split_every: usize) -> Result<(ResponseHead, Vec<u8>), HttpError> {
        let (head, len) = ResponseHead::parse(response)?.expect("complete head");
        let pieces = || response[len..].chunks(split_every.max(1));
        let fed = (|| {
            let mut body = Body::for_response(&head, false)?;
            let mut out = Vec::new();
            for piece in pieces() {
                let used = body.feed(piece, &mut out)?;
                if used < piece.len() {
                    break;
                }
            }
            body.finish()?;
            Ok(out)
        })();
        let taken = (|| {
            let mut body = Body::for_response(&head, false)?;
            let (mut out, mut buffer) = (Vec::new(), Vec::new());
            for piece in pieces() {
                buffer.extend_from_slice(piece);
                while let Some(chunk) = body.take_from(&mut buffer)? {
                    out.extend_from_slice(&chunk);
                }
                if body.is_done() {
                    break;
                }
            }
            body.finish()?;
            Ok(out)
        })();
        assert_eq!(fed, taken, "feeding and taking read the same, split every {split_every}");
        Ok((head, fed?))
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_read_that_is_all_body_is_handed_on_as_it_is() {
        let head = ResponseHead::parse(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n").unwrap().unwrap().0;
        let mut body = Body::for_response(&head, false).unwrap();
        let mut read = b"0123".to_vec();
        let at = read.as_ptr();
        let chunk = body.take_from(&mut read).unwrap().unwrap();
        assert_eq!((chunk.as_slice(), chunk.as_ptr()), (&b"0123"[..], at), "the same buffer, not a copy");
        assert!(read.is_empty());

        let mut read = b"456789NEXT".to_vec();
        assert_eq!(body.take_from(&mut read).unwrap().unwrap(), b"456789", "the body ends at its length");
        assert_eq!(read, b"NEXT", "what follows the body stays");
        assert!(body.is_done());
        assert_eq!((body.received(), body.take_from(&mut read)), (10, Ok(None)));
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_content_length_body_ends_at_its_length() {
        let response = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhelloEXTRA";
        for split in [1, 3, 100] {
            let (head, body) = read_all(response, split).unwrap();
            assert_eq!((head.status, head.reason.as_str()), (200, "OK"));
            assert_eq!(head.header("content-type"), Some("text/plain"));
            assert_eq!(body, b"hello");
        }
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_chunked_body_is_reassembled_whatever_the_split() {
        let response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n";
        for split in [1, 2, 5, 7, 1000] {
            let (_, body) = read_all(response, split).unwrap();
            assert_eq!(body, b"hello, world", "split {split}");
        }
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_body_without_framing_runs_until_the_close() {
        let (_, body) = read_all(b"HTTP/1.0 200 OK\r\n\r\nall of it", 4).unwrap();
        assert_eq!(body, b"all of it");
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn an_old_devices_sloppy_head_is_read_as_browsers_read_it() {
        let head = b"HTTP/1.1  200 OK\r\nContent-Type : text/html\r\nX-Folded: one\r\n two\r\n\
            Warning: Undefined variable $x in /www/cgi.php\r\nbad line\r\nContent-Length: 2\r\n\r\nok";
        let (head, body) = read_all(head, 1).unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.header("content-type"), Some("text/html"));
        assert!(head
            .header("x-folded")
            .is_some_and(|v| v.starts_with("one") && v.ends_with("two") && !v.contains('\n')));
        assert_eq!(head.header("content-length"), Some("2"));
        assert_eq!(body, b"ok");
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_partial_head_asks_for_more() {
        assert_eq!(ResponseHead::parse(b"HTTP/1.1 200 OK\r\nContent-Le").unwrap(), None);
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn header_bytes_reach_the_browser_as_they_came() {
        // A NAS's raw UTF-8 file name ("照.jpg"): each byte one character, as a browser's
        // Headers holds it, so the browser reads the same bytes.
        let wire = b"HTTP/1.1 200 OK\r\nContent-Disposition: attachment; filename=\"\xE7\x85\xA7.jpg\"\r\n\r\n";
        let (head, _) = ResponseHead::parse(wire).unwrap().unwrap();
        let value = head.header("content-disposition").unwrap();
        assert_eq!(value, "attachment; filename=\"\u{e7}\u{85}\u{a7}.jpg\"");
        assert!(value.chars().all(|c| u32::from(c) <= 0xFF));
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn interim_continue_heads_are_skipped() {
        let (head, len) =
            ResponseHead::parse(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n\r\n").unwrap().unwrap();
        assert_eq!((head.status, len), (201, 49));
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn bodyless_responses_are_done_at_once() {
        let (head, _) =
            ResponseHead::parse(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n").unwrap().unwrap();
        assert!(Body::for_response(&head, false).unwrap().is_done());
        let (head, _) = ResponseHead::parse(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n").unwrap().unwrap();
        assert!(Body::for_response(&head, true).unwrap().is_done());
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_body_cut_short_is_an_error() {
        let response = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort";
        assert_eq!(read_all(response, 100), Err(HttpError::Truncated { received: 5 }));
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel";
        assert_eq!(read_all(chunked, 100), Err(HttpError::Truncated { received: 3 }));
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn malformed_responses_are_refused_not_panicked_on() {
        assert!(matches!(ResponseHead::parse(b"SSH-2.0-OpenSSH\r\n\r\n"), Err(HttpError::BadHead(_))));
        let bad_length = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n";
        assert_eq!(read_all(bad_length, 10), Err(HttpError::BadContentLength));
        let bad_chunk = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert_eq!(read_all(bad_chunk, 10), Err(HttpError::BadChunk));
        let missing_crlf = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\naXX\r\n";
        assert_eq!(read_all(missing_crlf, 10), Err(HttpError::BadChunk));
        let mut huge = b"HTTP/1.1 200 OK\r\n".to_vec();
        huge.extend(std::iter::repeat_n(b'a', MAX_HEAD + 10));
        assert_eq!(ResponseHead::parse(&huge), Err(HttpError::HeadTooLarge));
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_host_that_only_says_continue_is_refused_once_past_the_head_limit() {
        let interim: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
        let early = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n";
        let mut answer = [interim, early, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"].concat();
        let (head, len) = ResponseHead::parse(&answer).unwrap().unwrap();
        assert_eq!((head.status, len), (200, answer.len()), "a few interim heads are skipped");
        answer = interim.repeat(MAX_HEAD / interim.len());
        assert_eq!(ResponseHead::parse(&answer), Ok(None), "still within the limit: waits for more");
        answer.extend_from_slice(interim);
        assert_eq!(ResponseHead::parse(&answer), Err(HttpError::HeadTooLarge));
        answer.extend(interim.repeat(10_000));
        assert_eq!(ResponseHead::parse(&answer), Err(HttpError::HeadTooLarge), "and stays refused");
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn redirects_are_recognised_by_status_and_location() {
        let (head, _) = ResponseHead::parse(b"HTTP/1.1 302 Found\r\nLocation: /login\r\n\r\n").unwrap().unwrap();
        assert_eq!(head.redirect_location(), Some("/login"));
        let (head, _) = ResponseHead::parse(b"HTTP/1.1 200 OK\r\nLocation: /x\r\n\r\n").unwrap().unwrap();
        assert_eq!(head.redirect_location(), None);
    }
}
