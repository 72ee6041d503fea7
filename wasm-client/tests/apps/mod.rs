//! App ports in the browser, without a service worker: the test plays the worker's part and
//! talks the port protocol (`docs/web-apps.md`) to a port from `appPort`, against the lab's
//! real LAN HTTP server through the real tunnel.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::SocketAddrV4;
use std::rc::Rc;
use std::time::Duration;

use hometun_wasm::api;
use hometun_wasm::apps::bridge::budget::{Held, MAX_HELD, MAX_PER_HOST};
use hometun_wasm::apps::bridge::pool;
use hometun_wasm::apps::bridge::port::{MAX_PORTS, MAX_PORTS_PER_HOST};
use hometun_wasm::web::timer::sleep;
use js_sys::{Array, Object, Reflect, Uint8Array};
use sha2::{Digest, Sha256};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::console_log;
use web_sys::{MessageEvent, MessagePort};

/// The page the test stands for: an app origin needs a page on a domain name.
const TUNNEL_ORIGIN: &str = "https://home.test";
/// How long one response may take.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

fn get(value: &JsValue, key: &str) -> JsValue {
    Reflect::get(value, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

/// The worker's side of one port: everything received, in order.
struct Client {
    port: MessagePort,
    inbox: Rc<RefCell<VecDeque<JsValue>>>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
}

/// What came back for one `fetch`.
#[derive(Debug, Default)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    error: Option<String>,
    chunks: usize,
    largest_chunk: usize,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

impl Client {
    fn new(port: MessagePort) -> Self {
        let inbox = Rc::new(RefCell::new(VecDeque::new()));
        let sink = inbox.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            sink.borrow_mut().push_back(event.data());
        });
        port.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        Self { port, inbox, _on_message: on_message }
    }

    fn post(&self, fields: &[(&str, JsValue)]) {
        let object = Object::new();
        for (key, value) in fields {
            Reflect::set(&object, &(*key).into(), value).unwrap();
        }
        self.port.post_message(&object).unwrap();
    }

    /// The next message, or `None` after `timeout`.
    async fn next(&self, timeout: Duration) -> Option<JsValue> {
        for _ in 0..timeout.as_millis() / 5 {
            if let Some(message) = self.inbox.borrow_mut().pop_front() {
                return Some(message);
            }
            sleep(Duration::from_millis(5)).await;
        }
        None
    }

    fn fetch(&self, id: u32, method: &str, path: &str, headers: &[(&str, &str)], destination: &str) {
        self.post(&fetch_message(id, method, path, headers, destination));
    }

    /// A `fetch` whose body follows in `body` messages.
    fn fetch_streamed(&self, id: u32, method: &str, path: &str, headers: &[(&str, &str)]) {
        let mut message = fetch_message(id, method, path, headers, "");
        message.push(("streamBody", true.into()));
        self.post(&message);
    }

    fn send_body(&self, id: u32, piece: &[u8]) {
        self.post(&[("op", "body".into()), ("id", id.into()), ("data", Uint8Array::from(piece).buffer().into())]);
    }

    /// Removes the `body-more` messages for `id` from the inbox and counts them; says whether an
    /// `error` for `id` is waiting.
    fn take_credits(&self, id: u32) -> (u32, bool) {
        let mut inbox = self.inbox.borrow_mut();
        let before = inbox.len();
        let is = |m: &JsValue, op: &str| {
            get(m, "op").as_string().as_deref() == Some(op) && get(m, "id").as_f64() == Some(f64::from(id))
        };
        inbox.retain(|m| !is(m, "body-more"));
        let credits = (before - inbox.len()) as u32;
        (credits, inbox.iter().any(|m| is(m, "error")))
    }

    /// Sends `body` for `id` in pieces of `sizes` (cycled), never more than the window ahead of
    /// `body-more`, then `body-end` (unless an `error` came first). Returns the most chunks that
    /// were in flight at once; fails when wasm credited a chunk that was never sent.
    async fn upload(&self, id: u32, body: &[u8], sizes: &[usize]) -> u32 {
        let deadline = js_sys::Date::now() + RESPONSE_TIMEOUT.as_millis() as f64;
        let (mut at, mut in_flight, mut most) = (0, 0u32, 0u32);
        let mut sizes = sizes.iter().cycle();
        while at < body.len() {
            assert!(js_sys::Date::now() < deadline, "upload {id} stuck at {at} bytes, {in_flight} chunks in flight");
            let (credits, failed) = self.take_credits(id);
            assert!(credits <= in_flight, "wasm credited {credits} chunks with {in_flight} in flight");
            in_flight -= credits;
            if failed {
                return most;
            }
            if in_flight < WINDOW {
                let end = (at + sizes.next().copied().unwrap_or(1)).min(body.len());
                self.send_body(id, &body[at..end]);
                at = end;
                in_flight += 1;
                most = most.max(in_flight);
            } else {
                sleep(Duration::from_millis(1)).await;
            }
        }
        self.post(&[("op", "body-end".into()), ("id", id.into())]);
        most
    }

    /// Reads the answer to `id` to its end, taking each chunk at once (`more`).
    async fn answer(&self, id: u32) -> Answer {
        let mut answer = Answer::default();
        while let Some(message) = self.next(RESPONSE_TIMEOUT).await {
            assert_eq!(get(&message, "id").as_f64(), Some(f64::from(id)), "a message for another id");
            match get(&message, "op").as_string().unwrap_or_default().as_str() {
                "head" => {
                    answer.status = get(&message, "status").as_f64().unwrap_or(0.0) as u16;
                    for pair in Array::from(&get(&message, "headers")).iter() {
                        let pair = Array::from(&pair);
                        answer.headers.push((pair.get(0).as_string().unwrap(), pair.get(1).as_string().unwrap()));
                    }
                }
                "chunk" => {
                    let data = Uint8Array::new(&get(&message, "data")).to_vec();
                    answer.chunks += 1;
                    answer.largest_chunk = answer.largest_chunk.max(data.len());
                    answer.body.extend(data);
                    self.post(&[("op", "more".into()), ("id", id.into())]);
                }
                "end" => return answer,
                // The credit for the last chunk of a streamed body may follow `body-end`.
                "body-more" => {}
                "error" => {
                    answer.error = get(&message, "message").as_string();
                    return answer;
                }
                other => panic!("unexpected {other:?} for a fetch"),
            }
        }
        panic!("no end for request {id} within {RESPONSE_TIMEOUT:?}");
    }
}

fn fetch_message(
    id: u32,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    destination: &str,
) -> Vec<(&'static str, JsValue)> {
    let headers: Array =
        headers.iter().map(|(n, v)| -> JsValue { Array::of2(&(*n).into(), &(*v).into()).into() }).collect();
    vec![
        ("op", "fetch".into()),
        ("id", id.into()),
        ("method", method.into()),
        ("path", path.into()),
        ("headers", headers.into()),
        ("body", JsValue::NULL),
        ("destination", destination.into()),
    ]
}

/// Request body chunks the worker may send ahead of `body-more`.
const WINDOW: u32 = 4;

/// The page as the LAN host serves it, straight through the tunnel (no port).
async fn direct(lan: &str, path: &str) -> Vec<u8> {
    let response = api::http_fetch(format!("http://{lan}{path}"), JsValue::UNDEFINED).await.expect("direct fetch");
    let body = JsFuture::from(response.array_buffer().unwrap()).await.expect("direct body");
    Uint8Array::new(&body).to_vec()
}

/// Every app-port step of the scenario; the tunnel is up.
pub(crate) async fn app_ports(lan: &str, blob_byte: impl Fn(u64, u64) -> u8) {
    let target = hometun_shared::app_name::AppTarget::http(
        format!("{lan}:80").parse::<SocketAddrV4>().expect("LAN host is an IPv4 address"),
    );
    let origin = format!("https://h-{}-p80.home.test", lan.replace('.', "-"));

    // A bad origin gets no port.
    for bad in ["https://evil.test", "https://h-192-168-0-10-p80.evil.test", "https://home.test"] {
        let error = api::app_port_under(bad, TUNNEL_ORIGIN).map(|_| ()).expect_err("not an app origin");
        assert_eq!(error.code(), "not-an-app", "{bad}: {error}");
    }
    // The test page itself is on 127.0.0.1: no app origins at all there.
    let error = api::app_port(origin.clone()).map(|_| ()).expect_err("the runner page has no domain");
    assert_eq!(get(&error, "code").as_string().as_deref(), Some("no-app-origins"), "{error:?}");
    console_log!("app port: bad origins refused");

    let client = Client::new(api::app_port_under(&origin, TUNNEL_ORIGIN).expect("a port for the app origin"));

    // The page arrives byte-exact, with the shim right after the doctype.
    let opened_before = pool::opened(target);
    client.fetch(1, "GET", "/", &[("Accept", "text/html")], "document");
    let page = client.answer(1).await;
    assert_eq!((page.status, page.error.as_deref()), (200, None));
    assert_eq!(page.header("content-length"), None, "an injected page has no length");
    let original = direct(lan, "/").await;
    let doctype_end = original.iter().position(|&b| b == b'>').expect("doctype") + 1;
    // The tag carries a fresh nonce: 16 random bytes, base64.
    let text = String::from_utf8_lossy(&page.body).into_owned();
    let nonce = text.split("nonce=\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap_or_default();
    assert!(nonce.len() == 24 && nonce.ends_with("=="), "the shim's nonce: {nonce:?}");
    let shim = format!(r#"<script src="/__ht/shim.js" nonce="{nonce}" data-hometun-cookies="[]"></script>"#);
    let expected = [&original[..doctype_end], shim.as_bytes(), &original[doctype_end..]].concat();
    assert_eq!(String::from_utf8_lossy(&page.body), String::from_utf8_lossy(&expected));
    console_log!("app port: page of {} bytes with the shim", page.body.len());

    // A second request reuses the connection.
    client.fetch(2, "GET", "/whoami", &[], "");
    let whoami = client.answer(2).await;
    assert_eq!((whoami.status, whoami.error.as_deref()), (200, None));
    assert!(!whoami.body.is_empty());
    assert_eq!(pool::opened(target) - opened_before, 1, "the second request opened a new connection");
    console_log!("app port: second request on the same connection");

    // The server closes an idle keep-alive connection: the next request on it is sent again on a
    // new connection, and the page never sees the failure.
    client.fetch(20, "GET", "/bye", &[], "");
    assert_eq!(client.answer(20).await.status, 200);
    sleep(Duration::from_millis(800)).await;
    let opened_before_retry = pool::opened(target);
    client.fetch(21, "GET", "/whoami", &[], "");
    let after_close = client.answer(21).await;
    assert_eq!((after_close.status, after_close.error.as_deref()), (200, None));
    assert_eq!(pool::opened(target) - opened_before_retry, 1, "no new connection for the retry");
    console_log!("app port: a request on a connection the server had closed was retried on a new one");

    // A Range request: 206 as is, the exact bytes.
    let size = 1u64 << 20;
    let (start, end) = (123_457u64, 654_321u64);
    client.fetch(3, "GET", &format!("/blob/{size}"), &[("Range", &format!("bytes={start}-{end}"))], "");
    let range = client.answer(3).await;
    assert_eq!((range.status, range.error.as_deref()), (206, None));
    assert_eq!(range.header("content-range"), Some(format!("bytes {start}-{end}/{size}").as_str()));
    assert_eq!(range.body.len() as u64, end - start + 1);
    let mismatch = range.body.iter().enumerate().position(|(i, b)| *b != blob_byte(size, start + i as u64));
    assert_eq!(mismatch, None, "first wrong byte of the range");
    assert!(range.largest_chunk <= 256 * 1024, "a chunk of {} bytes", range.largest_chunk);
    console_log!("app port: range of {} bytes in {} chunks", range.body.len(), range.chunks);

    // A HEAD of a document gets no body, not even the shim.
    client.fetch(30, "HEAD", "/", &[], "document");
    let head = client.answer(30).await;
    assert_eq!((head.status, head.error.as_deref(), head.body.len()), (200, None, 0), "a HEAD got a body");

    // The window: without `more`, at most 4 chunks come (of a body larger than 4 full chunks).
    client.fetch(4, "GET", &format!("/blob/{}", 4 * size), &[], "");
    sleep(Duration::from_millis(1500)).await;
    let waiting: Vec<JsValue> = client.inbox.borrow_mut().drain(..).collect();
    let chunks: Vec<u32> = waiting
        .iter()
        .filter(|m| get(m, "op").as_string().as_deref() == Some("chunk"))
        .map(|m| Uint8Array::new(&get(m, "data")).length())
        .collect();
    assert_eq!(chunks.len(), 4, "chunks sent without a single more: {chunks:?}");
    assert!(chunks.iter().sum::<u32>() <= 1 << 20, "more than 1 MiB in flight: {chunks:?}");
    client.post(&[("op", "cancel".into()), ("id", 4.into())]);
    console_log!("app port: window held at {} chunks, then cancelled", chunks.len());

    // A path with a host, a bad method and a header that splits the head are refused.
    for (id, method, path) in [(5, "GET", "//192.168.0.20/"), (6, "GET", "http://192.168.0.20/"), (7, "GE T", "/")] {
        client.fetch(id, method, path, &[], "");
        let refused = client.answer(id).await;
        assert!(refused.error.is_some() && refused.status == 0, "{method} {path} was not refused: {refused:?}");
    }
    client.fetch(8, "GET", "/", &[("X-A", "1\r\nHost: 192.168.0.20")], "");
    assert!(client.answer(8).await.error.is_some(), "a header with CR LF was sent");
    // A message with an id but no known op gets an error for its id.
    for (id, op) in [(10, JsValue::UNDEFINED), (11, "teleport".into())] {
        client.post(&[("op", op), ("id", id.into())]);
        let answer = client.answer(id).await;
        assert!(answer.error.is_some(), "op of request {id} was not refused: {answer:?}");
    }
    // Garbage without an id is ignored; ping still answers.
    client.port.post_message(&"garbage".into()).unwrap();
    client.post(&[("op", "ping".into()), ("id", 9.into())]);
    let pong = client.next(RESPONSE_TIMEOUT).await.expect("pong");
    assert_eq!(get(&pong, "op").as_string().as_deref(), Some("pong"), "{pong:?}");
    console_log!("app port: hostile messages refused");

    uploads(&client, &blob_byte).await;
    websocket(&origin).await;
    cookies(&origin, &client).await;
    ports_past_the_cap(&origin).await;
}

/// At most [`MAX_PORTS_PER_HOST`] ports are served for the apps of one LAN host: another host's
/// page that asks for ports without end (a hostile one's) closes its own idle ones, the one used
/// longest ago first, never this app's; and at most [`MAX_PORTS`] over all apps, where the host
/// holding the most gives one up.
async fn ports_past_the_cap(origin: &str) {
    let on_host = |last: u8| origin.replace("-10-p80.", &format!("-{last}-p80."));
    let port = |origin: &str| Client::new(api::app_port_under(origin, TUNNEL_ORIGIN).expect("a port"));
    let own = port(origin);
    assert!(answers(&own, 1).await, "the app's port answers");
    let flooder = on_host(20);
    let flooders_first = port(&flooder);
    assert!(answers(&flooders_first, 2).await, "the other host's first port answers");
    let flood: Vec<Client> = (0..MAX_PORTS).map(|_| port(&flooder)).collect();
    assert!(answers(&own, 3).await, "the app's port was closed by another host's ports");
    assert!(!answers(&flooders_first, 4).await, "the flooding host's least used port still answers");
    assert!(answers(flood.last().expect("ports"), 5).await, "the flooding host's newest port");
    console_log!("app port: another host opened {MAX_PORTS} ports, closing only its own; this app's port answers");

    // Three more hosts with as many: past the cap over all, the flooding host (as many as any,
    // and first) gives up its least used port.
    let others: Vec<Vec<Client>> =
        (21..24).map(|last| (0..MAX_PORTS_PER_HOST).map(|_| port(&on_host(last))).collect()).collect();
    assert!(!answers(&flood[MAX_PORTS - MAX_PORTS_PER_HOST], 6).await, "the largest holder's least used port answers");
    assert!(answers(&own, 7).await, "the app with few ports kept its oldest");
    assert!(answers(others.last().and_then(|o| o.last()).expect("ports"), 8).await, "the newest port answers");
    console_log!("app port: past {MAX_PORTS} ports over all apps, the host holding the most gave up its least used");
}

/// Whether `client`'s port answers a ping within a second.
async fn answers(client: &Client, id: u32) -> bool {
    client.post(&[("op", "ping".into()), ("id", id.into())]);
    client.next(Duration::from_secs(1)).await.is_some()
}

/// Request bodies streamed through the port: 8 MiB chunked and with a `Content-Length` arrive
/// byte-exact (the LAN host answers their length, SHA-256 and framing); the window holds while
/// the LAN host does not read; a body that does not match its `Content-Length` is refused.
async fn uploads(client: &Client, blob_byte: &impl Fn(u64, u64) -> u8) {
    let size = 8u64 << 20;
    let body: Vec<u8> = (0..size).map(|i| blob_byte(size, i)).collect();
    let expected = |framing: &str| format!("{size} {} {framing}\n", hex(&Sha256::digest(&body)));
    let sizes = [256 * 1024, 1, 40_000, 65_535, 3, 64 * 1024];

    let started = js_sys::Date::now();
    client.fetch_streamed(50, "POST", "/upload", &[("Content-Type", "application/octet-stream")]);
    let most = client.upload(50, &body, &sizes).await;
    let chunked = client.answer(50).await;
    assert_eq!((chunked.status, chunked.error.as_deref()), (200, None), "chunked upload");
    assert_eq!(String::from_utf8_lossy(&chunked.body), expected("chunked"));
    assert!(most <= WINDOW, "{most} chunks in flight");
    let seconds = (js_sys::Date::now() - started) / 1000.0;
    console_log!("app port: streamed upload of {size} bytes chunked in {seconds:.2} s, at most {most} chunks ahead");

    let length = size.to_string();
    client.fetch_streamed(51, "PUT", "/upload", &[("Content-Length", &length)]);
    client.upload(51, &body, &[64 * 1024, 12_345]).await;
    let with_length = client.answer(51).await;
    assert_eq!((with_length.status, with_length.error.as_deref()), (200, None), "upload with Content-Length");
    assert_eq!(String::from_utf8_lossy(&with_length.body), expected("length"));
    console_log!("app port: streamed upload of {size} bytes with its Content-Length");

    // The LAN host reads nothing for 3 s: wasm writes what the TCP buffers take, then stops
    // crediting; the window stays full and a chunk sent without credit is refused.
    client.fetch_streamed(52, "POST", "/upload/slow", &[]);
    let mut in_flight = 0;
    let mut sent = 0usize;
    for _ in 0..300 {
        let (credits, failed) = client.take_credits(52);
        assert!(!failed && credits <= in_flight, "{credits} credits with {in_flight} in flight");
        in_flight -= credits;
        while in_flight < WINDOW {
            client.send_body(52, &body[..64 * 1024]);
            in_flight += 1;
            sent += 64 * 1024;
        }
        sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(in_flight, WINDOW, "the window is not full while the LAN host reads nothing");
    assert!(sent < 4 << 20, "{sent} bytes taken while the LAN host read nothing");
    client.send_body(52, b"one chunk too many");
    let refused = client.answer(52).await;
    assert!(refused.error.as_deref().is_some_and(|e| e.contains("without credit")), "{refused:?}");
    console_log!("app port: window held at {in_flight} chunks ({sent} bytes taken) while the LAN host read nothing");

    // A body longer or shorter than its Content-Length is refused.
    client.fetch_streamed(53, "POST", "/upload", &[("Content-Length", "1000")]);
    client.upload(53, &body[..1500], &[700]).await;
    let long = client.answer(53).await;
    assert!(long.error.as_deref().is_some_and(|e| e.contains("Content-Length")), "{long:?}");
    client.fetch_streamed(54, "POST", "/upload", &[("Content-Length", "1000")]);
    client.upload(54, &body[..999], &[500]).await;
    let short = client.answer(54).await;
    assert!(short.error.as_deref().is_some_and(|e| e.contains("Content-Length")), "{short:?}");
    // A `body` for no request is ignored.
    client.send_body(99, b"stray");
    client.post(&[("op", "ping".into()), ("id", 55.into())]);
    let pong = client.next(RESPONSE_TIMEOUT).await.expect("pong");
    assert_eq!(get(&pong, "op").as_string().as_deref(), Some("pong"), "{pong:?}");
    console_log!("app port: a body that does not match its Content-Length was refused");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The next message on `client`, which must be `op`.
async fn expect_op(client: &Client, op: &str) -> JsValue {
    let message = client.next(RESPONSE_TIMEOUT).await.unwrap_or_else(|| panic!("no {op}"));
    assert_eq!(get(&message, "op").as_string().as_deref(), Some(op), "{message:?}");
    message
}

/// A WebSocket on a port of its own: upgrade, a text and a binary message each reported sent
/// (`ws-sent`, what the shim's `bufferedAmount` follows) and echoed, a clean close. Then, with the
/// launcher's budget for app pages all but spent: a request with a body is refused, a socket
/// that sends is closed (1006), and socket commands on a request's id change nothing.
async fn websocket(origin: &str) {
    let ws = Client::new(api::app_port_under(origin, TUNNEL_ORIGIN).expect("a port for the shim"));
    let protocols = Array::new();
    ws.post(&[
        ("op", "ws-open".into()),
        ("id", 1.into()),
        ("path", "/ws/echo".into()),
        ("protocols", protocols.into()),
    ]);
    let opened = ws.next(RESPONSE_TIMEOUT).await.expect("an answer to ws-open");
    assert_eq!(get(&opened, "op").as_string().as_deref(), Some("ws-opened"), "{opened:?}");
    ws.post(&[("op", "ws-send".into()), ("id", 1.into()), ("data", "hello through the port".into())]);
    expect_op(&ws, "ws-sent").await;
    let text = expect_op(&ws, "ws-message").await;
    assert_eq!(get(&text, "data").as_string().as_deref(), Some("hello through the port"));
    let bytes: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    ws.post(&[
        ("op", "ws-send".into()),
        ("id", 1.into()),
        ("data", Uint8Array::from(bytes.as_slice()).buffer().into()),
    ]);
    expect_op(&ws, "ws-sent").await;
    let binary = expect_op(&ws, "ws-message").await;
    assert_eq!(Uint8Array::new(&get(&binary, "data")).to_vec(), bytes, "binary echo differs");
    ws.post(&[("op", "ws-close".into()), ("id", 1.into()), ("code", 1000.into()), ("reason", "done".into())]);
    let closed = ws.next(RESPONSE_TIMEOUT).await.expect("ws-closed");
    assert_eq!(get(&closed, "op").as_string().as_deref(), Some("ws-closed"), "{closed:?}");
    assert_eq!((get(&closed, "code").as_f64(), get(&closed, "wasClean").as_bool()), (Some(1000.0), Some(true)));
    console_log!("app port: WebSocket echoed text and {} binary bytes, closed cleanly", bytes.len());

    // Other pages' requests and messages hold nearly all the launcher may hold for app pages.
    let ws = Client::new(api::app_port_under(origin, TUNNEL_ORIGIN).expect("a port for the shim"));
    ws.post(&[
        ("op", "ws-open".into()),
        ("id", 1.into()),
        ("path", "/ws/echo".into()),
        ("protocols", Array::new().into()),
    ]);
    expect_op(&ws, "ws-opened").await;
    // (Two other LAN hosts' pages: one host's alone may hold only half.)
    let mut others = Held::new(std::net::Ipv4Addr::new(192, 168, 0, 98));
    let mut more = Held::new(std::net::Ipv4Addr::new(192, 168, 0, 99));
    assert!(others.grow(MAX_PER_HOST) && more.grow(MAX_HELD - MAX_PER_HOST - 1000), "the budget is in use already");
    let mut post = fetch_message(2, "POST", "/upload", &[], "");
    post.retain(|(key, _)| *key != "body");
    post.push(("body", Uint8Array::from(&[7u8; 4000][..]).buffer().into()));
    ws.post(&post);
    let refused = expect_op(&ws, "error").await;
    assert!(get(&refused, "message").as_string().unwrap_or_default().contains("holds too much"), "{refused:?}");
    // A request's id takes no socket commands (nothing would ever take them from its queue).
    ws.fetch(3, "GET", "/whoami", &[], "");
    ws.post(&[("op", "ws-send".into()), ("id", 3.into()), ("data", "x".repeat(4000).into())]);
    let answer = ws.answer(3).await;
    assert_eq!((answer.status, answer.error.as_deref()), (200, None));
    ws.post(&[("op", "ws-send".into()), ("id", 1.into()), ("data", "y".repeat(4000).into())]);
    let closed = expect_op(&ws, "ws-closed").await;
    assert_eq!(get(&closed, "code").as_f64(), Some(1006.0), "{closed:?}");
    drop((others, more));
    console_log!("app port: past the launcher's budget a body is refused and a sending socket closed");
}

/// `document.cookie` through the port: `ok`, the `cookies` broadcast to every port of the app,
/// the next request carrying it, the jar saved in the tunnel origin's storage, and given to a
/// port that asks (`get-cookies`).
async fn cookies(origin: &str, other: &Client) {
    let client = Client::new(api::app_port_under(origin, TUNNEL_ORIGIN).expect("a second port"));
    client.post(&[("op", "set-cookie".into()), ("id", 1.into()), ("cookie", "theme=dark; path=/".into())]);
    // The port that set it gets `ok` and the broadcast (in either order), the other port the broadcast.
    let mut seen = Vec::new();
    for (port, messages) in [(&client, 2), (other, 1)] {
        for _ in 0..messages {
            let message = port.next(RESPONSE_TIMEOUT).await.expect("ok and the cookies broadcast");
            seen.push(get(&message, "op").as_string().unwrap_or_default());
            if get(&message, "op").as_string().as_deref() == Some("cookies") {
                let first = Array::from(&Array::from(&get(&message, "cookies")).get(0));
                let cookie = (first.get(0).as_string(), first.get(1).as_string());
                assert_eq!(cookie, (Some("theme".into()), Some("dark".into())));
            }
        }
    }
    seen.sort();
    assert_eq!(seen, ["cookies", "cookies", "ok"]);
    let saved = web_sys::window().unwrap().local_storage().unwrap().unwrap();
    let key = format!(
        "hometun.jar.{}:80",
        origin.trim_start_matches("https://h-").split("-p").next().unwrap().replace('-', ".")
    );
    let json = saved.get_item(&key).unwrap().unwrap_or_default();
    assert!(json.contains("theme") && json.contains("dark"), "{key} holds {json:?}");
    // The next page carries it in the shim's attribute.
    client.fetch(2, "GET", "/", &[], "document");
    let page = String::from_utf8_lossy(&client.answer(2).await.body).into_owned();
    assert!(page.contains(r#"data-hometun-cookies="[[&quot;theme&quot;,&quot;dark&quot;,&quot;/&quot;]]""#), "{page}");
    // A port opened later (a page's after a launcher reload) asks for the jar: the cookies, then ok.
    let late = Client::new(api::app_port_under(origin, TUNNEL_ORIGIN).expect("a third port"));
    late.post(&[("op", "get-cookies".into()), ("id", 7.into())]);
    let jar = late.next(RESPONSE_TIMEOUT).await.expect("the jar");
    assert_eq!(get(&jar, "op").as_string().as_deref(), Some("cookies"));
    let first = Array::from(&Array::from(&get(&jar, "cookies")).get(0));
    assert_eq!((first.get(0).as_string(), first.get(1).as_string()), (Some("theme".into()), Some("dark".into())));
    let ok = late.next(RESPONSE_TIMEOUT).await.expect("ok");
    assert_eq!((get(&ok, "op").as_string().as_deref(), get(&ok, "id").as_f64()), (Some("ok"), Some(7.0)));
    console_log!(
        "app port: cookie set by a script, broadcast to both ports, saved, in the next page, given to a later port"
    );
}
