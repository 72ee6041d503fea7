//! WebSocket client over a tunnel TCP stream, sans-IO: [`ClientHandshake`] builds the upgrade
//! request and checks the `101` answer; [`WsCodec`] turns received bytes into messages and
//! messages into bytes to write (framing, masking, pings and the close handshake are
//! tungstenite's). Nothing here touches a socket: the caller writes
//! [`ClientHandshake::request`] and [`WsCodec::poll_transmit`] to the stream and feeds what it
//! reads.
//!
//! Bounds: the `101` answer's head at most [`MAX_RESPONSE_HEAD`], a message at most
//! [`MAX_MESSAGE`] (both directions), and so a frame too: servers send a large message as one
//! frame (a Jupyter plot, Home Assistant's first states, a camera's keyframe), and browsers take
//! frames of any size.

use super::AppError;
use base64::Engine as _;
use hometun_shared::app_name::AppTarget;
use std::io::{self, Read, Write};
use tungstenite::error::Error as WsError;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig, WebSocketContext};
use tungstenite::Message;

/// At most this many bytes of the server's `101` head.
pub const MAX_RESPONSE_HEAD: usize = 16 * 1024;
/// At most this large a message (after reassembly), received or sent.
pub const MAX_MESSAGE: usize = 16 << 20;

/// What to ask the LAN app for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeRequest {
    /// The LAN app.
    pub target: AppTarget,
    /// Path and query, starting with `/`.
    pub path: String,
    /// The page's LAN origin (`http://A.B.C.D[:P]`, mapped from its app origin), if any.
    pub origin: Option<String>,
    /// The `Cookie` header from the app's jar, if any.
    pub cookie: Option<String>,
    /// The `Authorization` the user's sign-in gives requests to the app (HTTP Basic or Digest),
    /// if any: browsers send it on the upgrade as on every request.
    pub authorization: Option<String>,
    /// The sub-protocols the page asked for (`new WebSocket(url, protocols)`).
    pub protocols: Vec<String>,
}

/// The client side of the opening handshake.
#[derive(Debug, Clone)]
pub struct ClientHandshake {
    request: Vec<u8>,
    accept: String,
    protocols: Vec<String>,
    received: Vec<u8>,
}

/// A finished opening handshake.
#[derive(Debug)]
pub struct Upgraded {
    /// The sub-protocol the server chose (empty when none).
    pub protocol: String,
    /// `Set-Cookie` values of the `101` answer (for the app's jar).
    pub set_cookies: Vec<String>,
    /// The codec for the connection, already fed the bytes that followed the head: call
    /// [`WsCodec::feed`] with an empty slice to read messages that came with it.
    pub codec: WsCodec,
}

impl ClientHandshake {
    /// Starts a handshake with the 16 random bytes `key` (from the caller's RNG). Fails when the
    /// path or a protocol cannot be sent.
    pub fn new(request: &UpgradeRequest, key: [u8; 16]) -> Result<Self, AppError> {
        let path_ok = request.path.starts_with('/') && request.path.bytes().all(|b| b.is_ascii_graphic());
        if !path_ok {
            return Err(AppError::BadPath);
        }
        let token = |p: &String| {
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        };
        if let Some(bad) = request.protocols.iter().find(|p| !token(p)) {
            return Err(AppError::BadHeader(format!("Sec-WebSocket-Protocol {bad}")));
        }
        let value_ok = |v: &str| !v.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0));
        if ![&request.origin, &request.cookie, &request.authorization].iter().all(|v| v.as_deref().is_none_or(value_ok))
        {
            return Err(AppError::BadHeader("Origin, Cookie or Authorization".into()));
        }
        let key = base64::engine::general_purpose::STANDARD.encode(key);
        let mut head = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n",
            request.path,
            request.target.authority()
        );
        if let Some(origin) = &request.origin {
            head.push_str(&format!("Origin: {origin}\r\n"));
        }
        if !request.protocols.is_empty() {
            head.push_str(&format!("Sec-WebSocket-Protocol: {}\r\n", request.protocols.join(", ")));
        }
        if let Some(cookie) = &request.cookie {
            head.push_str(&format!("Cookie: {cookie}\r\n"));
        }
        if let Some(authorization) = &request.authorization {
            head.push_str(&format!("Authorization: {authorization}\r\n"));
        }
        head.push_str("\r\n");
        Ok(Self {
            request: head.into_bytes(),
            accept: accept_key(&key),
            protocols: request.protocols.clone(),
            received: Vec::new(),
        })
    }

    /// The request bytes to write to the stream.
    pub fn request(&self) -> &[u8] {
        &self.request
    }

    /// Feeds bytes read from the stream: `Ok(None)` while the answer's head is incomplete,
    /// `Ok(Some(_))` once it is a valid `101`; an error for anything else (the caller closes the
    /// stream).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Option<Upgraded>, AppError> {
        self.received.extend_from_slice(bytes);
        let refuse = |why: &str| AppError::WebSocketUpgrade(why.to_owned());
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        let head_len = match crate::http::response::as_browsers_read().parse_response(&mut response, &self.received) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if self.received.len() <= MAX_RESPONSE_HEAD => return Ok(None),
            Ok(httparse::Status::Partial) => return Err(refuse("answer head larger than 16 KiB")),
            Err(e) => return Err(AppError::WebSocketUpgrade(format!("malformed answer: {e}"))),
        };
        if head_len > MAX_RESPONSE_HEAD {
            return Err(refuse("answer head larger than 16 KiB"));
        }
        if response.code != Some(101) {
            return Err(AppError::WebSocketUpgrade(format!(
                "the app answered {} {}",
                response.code.unwrap_or(0),
                response.reason.unwrap_or("")
            )));
        }
        let header = |name: &str| -> Vec<String> {
            response
                .headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| String::from_utf8_lossy(h.value).into_owned())
                .collect()
        };
        let one = |name: &str| header(name).first().map(|v| v.trim().to_owned());
        if !one("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")) {
            return Err(refuse("no Upgrade: websocket"));
        }
        if !header("connection").iter().any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade"))) {
            return Err(refuse("no Connection: upgrade"));
        }
        if one("sec-websocket-accept").as_deref() != Some(self.accept.as_str()) {
            return Err(refuse("wrong Sec-WebSocket-Accept"));
        }
        if one("sec-websocket-extensions").is_some() {
            return Err(refuse("an extension was not asked for"));
        }
        let protocol = one("sec-websocket-protocol").unwrap_or_default();
        if !protocol.is_empty() && !self.protocols.contains(&protocol) {
            return Err(refuse("a sub-protocol was not asked for"));
        }
        let set_cookies = header("set-cookie");
        let mut codec = WsCodec::new();
        codec.pipe.input.extend_from_slice(&self.received[head_len..]);
        Ok(Some(Upgraded { protocol, set_cookies, codec }))
    }
}

/// What a WebSocket connection delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsEvent {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// The connection closed (reported once): `clean` when the close handshake completed.
    Closed {
        /// The close code (1005 when the close frame had none, 1006 when the connection broke).
        code: u16,
        /// The close reason.
        reason: String,
        /// Whether both sides exchanged close frames.
        clean: bool,
    },
}

/// An open WebSocket connection (client role), sans-IO.
#[derive(Debug)]
pub struct WsCodec {
    context: WebSocketContext,
    pipe: Pipe,
    closed: bool,
}

impl Default for WsCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl WsCodec {
    /// A codec for a connection whose opening handshake is done (see [`ClientHandshake`]).
    pub fn new() -> Self {
        let config = WebSocketConfig::default()
            .read_buffer_size(16 * 1024)
            .write_buffer_size(0)
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE));
        Self { context: WebSocketContext::new(Role::Client, Some(config)), pipe: Pipe::default(), closed: false }
    }

    /// Feeds bytes read from the stream and returns the messages they complete. Pings are
    /// answered and a close is confirmed (see [`Self::poll_transmit`]). A protocol violation or
    /// an oversized frame or message is an error: the caller reports the connection closed (1006)
    /// and closes the stream.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<WsEvent>, AppError> {
        self.pipe.input.extend_from_slice(bytes);
        let mut events = Vec::new();
        while !self.closed {
            match self.context.read(&mut self.pipe) {
                Ok(Message::Text(text)) => events.push(WsEvent::Text(text.as_str().to_owned())),
                Ok(Message::Binary(data)) => events.push(WsEvent::Binary(data.to_vec())),
                Ok(Message::Close(frame)) => {
                    self.closed = true;
                    let (code, reason) =
                        frame.map_or((1005, String::new()), |f| (u16::from(f.code), f.reason.as_str().to_owned()));
                    events.push(WsEvent::Closed { code, reason, clean: true });
                }
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
                Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => self.closed = true,
                Err(e) => return Err(AppError::WebSocket(e.to_string())),
            }
        }
        self.flush()?;
        Ok(events)
    }

    /// Queues a text message. Fails after the close or beyond [`MAX_MESSAGE`].
    pub fn send_text(&mut self, text: &str) -> Result<(), AppError> {
        self.send(Message::text(text), text.len())
    }

    /// Queues a binary message. Fails after the close or beyond [`MAX_MESSAGE`].
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), AppError> {
        self.send(Message::binary(data.to_vec()), data.len())
    }

    /// Starts the close handshake with `code` (1000 or 3000-4999, as the browser's
    /// `WebSocket.close` allows) and `reason` (at most 123 bytes). The peer's answer arrives as
    /// [`WsEvent::Closed`] from [`Self::feed`].
    pub fn close(&mut self, code: u16, reason: &str) -> Result<(), AppError> {
        if !(code == 1000 || (3000..=4999).contains(&code)) {
            return Err(AppError::WebSocket(format!("close code {code} is not 1000 or 3000-4999")));
        }
        if reason.len() > 123 {
            return Err(AppError::WebSocket("close reason longer than 123 bytes".into()));
        }
        let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
        self.context.close(&mut self.pipe, Some(frame)).map_err(|e| AppError::WebSocket(e.to_string()))?;
        self.flush()
    }

    /// The bytes to write to the stream now (frames, pongs, close frames), taken out.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.pipe.output)
    }

    /// The stream ended or broke: returns `Closed {code: 1006, clean: false}` unless the close
    /// was already reported (a connection's end is reported once).
    #[must_use]
    pub fn connection_lost(&mut self) -> Option<WsEvent> {
        if self.closed {
            return None;
        }
        self.closed = true;
        Some(WsEvent::Closed { code: 1006, reason: String::new(), clean: false })
    }

    /// Whether the peer's close frame has arrived (nothing more will be received).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    fn send(&mut self, message: Message, len: usize) -> Result<(), AppError> {
        if len > MAX_MESSAGE {
            return Err(AppError::WebSocket(format!("a message of {len} bytes is larger than 16 MiB")));
        }
        self.context.write(&mut self.pipe, message).map_err(|e| AppError::WebSocket(e.to_string()))?;
        self.flush()
    }

    fn flush(&mut self) -> Result<(), AppError> {
        match self.context.flush(&mut self.pipe) {
            Ok(()) | Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => Ok(()),
            Err(e) => Err(AppError::WebSocket(e.to_string())),
        }
    }
}

/// The in-memory stream tungstenite reads from and writes to.
#[derive(Debug, Default)]
struct Pipe {
    input: Vec<u8>,
    output: Vec<u8>,
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.input.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.input.len());
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input.drain(..n);
        Ok(n)
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The `Sec-WebSocket-Accept` a server must answer to `key` (RFC 6455 section 4.2.2: SHA-1 of
/// the key and the protocol's GUID, in base64).
fn accept_key(key: &str) -> String {
    use sha1::Digest as _;
    let mut sha1 = sha1::Sha1::new();
    sha1.update(key.as_bytes());
    sha1.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(sha1.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tungstenite::handshake::server::{Request, Response};

    /// The LAN app's side: tungstenite in the server role over the same kind of pipe.
    struct Server {
        socket: tungstenite::WebSocket<Pipe>,
    }

    impl Server {
        // The callback's error type is tungstenite's, not ours.
        #[allow(clippy::result_large_err)]
        /// Accepts `request`, choosing sub-protocol `protocol`; returns the server and its answer.
        fn accept(request: &[u8], protocol: Option<&'static str>) -> (Self, Vec<u8>, Vec<String>) {
            let pipe = Pipe { input: request.to_vec(), output: Vec::new() };
            let mut seen = Vec::new();
            let callback = |req: &Request, mut resp: Response| {
                seen = req.headers().iter().map(|(n, v)| format!("{n}: {}", v.to_str().unwrap())).collect();
                if let Some(p) = protocol {
                    resp.headers_mut().insert("sec-websocket-protocol", p.parse().unwrap());
                }
                resp.headers_mut().insert("set-cookie", "ws=1; Path=/".parse().unwrap());
                Ok(resp)
            };
            let mut socket = tungstenite::accept_hdr(pipe, callback).unwrap();
            let answer = std::mem::take(&mut socket.get_mut().output);
            (Self { socket }, answer, seen)
        }

        fn receive(&mut self, bytes: &[u8]) -> Vec<Message> {
            self.socket.get_mut().input.extend_from_slice(bytes);
            let mut got = Vec::new();
            loop {
                match self.socket.read() {
                    Ok(message) => got.push(message),
                    Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(WsError::ConnectionClosed) => break,
                    Err(e) => panic!("server: {e}"),
                }
            }
            let _ = self.socket.flush();
            got
        }

        fn send(&mut self, message: Message) -> Vec<u8> {
            self.socket.send(message).unwrap();
            std::mem::take(&mut self.socket.get_mut().output)
        }
    }

    fn request(protocols: &[&str]) -> UpgradeRequest {
        UpgradeRequest {
            target: AppTarget::http("192.168.0.10:8888".parse().unwrap()),
            path: "/api/kernels/1/channels?session_id=x".into(),
            origin: Some("http://192.168.0.10:8888".into()),
            cookie: Some("_xsrf=tok".into()),
            authorization: None,
            protocols: protocols.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    /// Handshake, then a connected client codec and server.
    fn connected() -> (WsCodec, Server) {
        let mut client = ClientHandshake::new(&request(&["v1.kernel", "chat"]), [7; 16]).unwrap();
        let (server, answer, _) = Server::accept(client.request(), Some("chat"));
        let upgraded = client.feed(&answer).unwrap().expect("a complete answer");
        assert_eq!(upgraded.protocol, "chat");
        assert_eq!(upgraded.set_cookies, ["ws=1; Path=/"]);
        (upgraded.codec, server)
    }

    #[test]
    fn the_upgrade_request_carries_the_mapped_host_origin_cookie_and_protocols() {
        let client = ClientHandshake::new(&request(&["v1.kernel", "chat"]), [7; 16]).unwrap();
        let (_, _, seen) = Server::accept(client.request(), None);
        for want in [
            "host: 192.168.0.10:8888",
            "origin: http://192.168.0.10:8888",
            "cookie: _xsrf=tok",
            "sec-websocket-protocol: v1.kernel, chat",
            "sec-websocket-version: 13",
        ] {
            assert!(seen.iter().any(|h| h == want), "{want} in {seen:?}");
        }
        assert!(String::from_utf8_lossy(client.request())
            .starts_with("GET /api/kernels/1/channels?session_id=x HTTP/1.1\r\n"));
        assert!(!seen.iter().any(|h| h.starts_with("authorization")), "no sign-in, no Authorization");
    }

    #[test]
    fn a_signed_in_device_gets_the_sign_in_on_the_upgrade_too() {
        let mut signed = request(&[]);
        signed.authorization = Some("Basic YWRtaW46c2VjcmV0".into());
        let client = ClientHandshake::new(&signed, [7; 16]).unwrap();
        let (_, _, seen) = Server::accept(client.request(), None);
        assert!(seen.iter().any(|h| h == "authorization: Basic YWRtaW46c2VjcmV0"), "{seen:?}");
        signed.authorization = Some("Basic x\r\nHost: y".into());
        assert!(ClientHandshake::new(&signed, [7; 16]).is_err(), "no header smuggled in");
    }

    #[test]
    fn messages_cross_both_ways_even_when_split_into_single_bytes() {
        let (mut client, mut server) = connected();
        client.send_text("execute_request").unwrap();
        client.send_binary(&[0, 1, 2, 255]).unwrap();
        let got = server.receive(&client.poll_transmit());
        assert_eq!(got, [Message::text("execute_request"), Message::binary(vec![0, 1, 2, 255])]);

        let mut wire = server.send(Message::text("stream: hello"));
        wire.extend(server.send(Message::binary(vec![9; 70_000])));
        let mut events = Vec::new();
        for byte in wire {
            events.extend(client.feed(&[byte]).unwrap());
        }
        assert_eq!(events, [WsEvent::Text("stream: hello".into()), WsEvent::Binary(vec![9; 70_000])]);
    }

    #[test]
    fn a_fragmented_message_is_reassembled_and_pings_are_answered() {
        use tungstenite::protocol::frame::coding::{Data, OpCode};
        use tungstenite::protocol::frame::Frame;
        let (mut client, mut server) = connected();
        let first = Frame::message(b"hel".to_vec(), OpCode::Data(Data::Text), false);
        let ping = Frame::ping(b"are you there".to_vec());
        let last = Frame::message(b"lo".to_vec(), OpCode::Data(Data::Continue), true);
        let mut wire = Vec::new();
        for frame in [first, ping, last] {
            frame.format(&mut wire).unwrap();
        }
        assert_eq!(client.feed(&wire).unwrap(), [WsEvent::Text("hello".into())]);
        assert_eq!(server.receive(&client.poll_transmit()), [Message::Pong(b"are you there".to_vec().into())]);
    }

    #[test]
    fn a_close_from_either_side_is_reported_once_and_cleanly() {
        let (mut client, mut server) = connected();
        client.close(1000, "bye").unwrap();
        let got = server.receive(&client.poll_transmit());
        assert_eq!(got, [Message::Close(Some(CloseFrame { code: CloseCode::Normal, reason: "bye".into() }))]);
        let reply = std::mem::take(&mut server.socket.get_mut().output);
        let events = client.feed(&reply).unwrap();
        assert_eq!(events, [WsEvent::Closed { code: 1000, reason: "bye".into(), clean: true }]);
        assert!(client.is_closed() && client.send_text("late").is_err());

        let (mut client, mut server) = connected();
        server.socket.close(Some(CloseFrame { code: CloseCode::Away, reason: "restart".into() })).unwrap();
        let _ = server.socket.flush();
        let wire = std::mem::take(&mut server.socket.get_mut().output);
        assert_eq!(
            client.feed(&wire).unwrap(),
            [WsEvent::Closed { code: 1001, reason: "restart".into(), clean: true }]
        );
        assert!(client.feed(&[]).unwrap().is_empty(), "reported once");
        assert!(matches!(&server.receive(&client.poll_transmit())[..], [Message::Close(_)]), "the close is confirmed");
        assert!(client.close(1006, "").is_err(), "a page may not send reserved codes");
        assert_eq!(client.connection_lost(), None, "already reported");

        let (mut client, _server) = connected();
        let lost = WsEvent::Closed { code: 1006, reason: String::new(), clean: false };
        assert_eq!(client.connection_lost(), Some(lost), "a stream that ends without a close frame");
        assert_eq!(client.connection_lost(), None);
    }

    #[test]
    fn the_accept_key_is_the_one_rfc_6455_gives_for_its_sample_key() {
        assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn a_wrong_accept_key_or_status_refuses_the_upgrade() {
        let mut client = ClientHandshake::new(&request(&[]), [7; 16]).unwrap();
        let other = ClientHandshake::new(&request(&[]), [8; 16]).unwrap();
        let (_, answer, _) = Server::accept(other.request(), None);
        assert_eq!(client.feed(&answer).unwrap_err(), AppError::WebSocketUpgrade("wrong Sec-WebSocket-Accept".into()));

        let mut client = ClientHandshake::new(&request(&[]), [7; 16]).unwrap();
        assert!(client.feed(b"HTTP/1.1 403 Forbidden\r\n").unwrap().is_none(), "waits for the whole head");
        let refused = client.feed(b"Content-Length: 0\r\n\r\n").unwrap_err();
        assert_eq!(refused, AppError::WebSocketUpgrade("the app answered 403 Forbidden".into()));

        let mut client = ClientHandshake::new(&request(&["chat"]), [7; 16]).unwrap();
        let (_, answer, _) = Server::accept(client.request(), Some("other"));
        assert_eq!(
            client.feed(&answer).unwrap_err(),
            AppError::WebSocketUpgrade("a sub-protocol was not asked for".into())
        );

        let mut client = ClientHandshake::new(&request(&[]), [7; 16]).unwrap();
        assert!(client.feed(&vec![b'x'; MAX_RESPONSE_HEAD + 1]).is_err());
    }

    #[test]
    fn a_large_message_in_one_frame_arrives_and_an_oversized_one_is_refused() {
        let (mut client, mut server) = connected();
        let plot: Vec<u8> = (0..4u32 << 20).map(|i| (i % 251) as u8).collect();
        let wire = server.send(Message::binary(plot.clone()));
        let mut got = Vec::new();
        for piece in wire.chunks(64 * 1024) {
            got.extend(client.feed(piece).expect("a 4 MiB frame is taken"));
        }
        assert_eq!(got, [WsEvent::Binary(plot)]);

        let wire = server.send(Message::binary(vec![0; MAX_MESSAGE + 1]));
        assert!(matches!(client.feed(&wire), Err(AppError::WebSocket(_))));
    }

    #[test]
    fn bad_requests_are_refused() {
        let mut bad = request(&[]);
        bad.path = "/a b".into();
        assert_eq!(ClientHandshake::new(&bad, [0; 16]).unwrap_err(), AppError::BadPath);
        let mut bad = request(&["a,b"]);
        bad.path = "/".into();
        assert!(ClientHandshake::new(&bad, [0; 16]).is_err());
        let mut bad = request(&[]);
        bad.cookie = Some("a=1\r\nHost: x".into());
        assert!(ClientHandshake::new(&bad, [0; 16]).is_err());
    }
}
