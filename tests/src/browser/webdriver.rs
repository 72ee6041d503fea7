//! chromedriver inside a lab namespace and a small WebDriver client for it (and for
//! [`super::webkit`]'s driver): plain HTTP/1.1 with JSON bodies (W3C WebDriver), one connection
//! per command, every call bounded in time.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use base64::Engine;
use serde_json::{json, Value};

use crate::lab::{Lab, Node};

/// chromedriver's port inside the (fresh) lab namespace.
const PORT: u16 = 9515;
/// The longest one WebDriver command may take (page loads and scripts are bounded below it).
const CALL_TIMEOUT: Duration = Duration::from_secs(90);
/// The largest answer read (screenshots are the big ones).
const MAX_ANSWER: usize = 64 << 20;

/// A chromedriver process in a lab namespace; stopped when dropped.
pub struct Chromedriver {
    lab: Lab,
    netns: String,
    pid: Option<u32>,
}

impl Chromedriver {
    /// Starts chromedriver inside `node` and waits (at most 20 s) until it is ready.
    pub fn start(lab: &Lab, node: Node) -> anyhow::Result<Self> {
        Self::start_with_home(lab, node, None)
    }

    /// [`Chromedriver::start`] with `HOME` set to `home` for it and the browsers it starts
    /// (Chromium reads its NSS trust store from `$HOME/.pki/nssdb`).
    pub fn start_with_home(lab: &Lab, node: Node, home: Option<&Path>) -> anyhow::Result<Self> {
        let mut args = Vec::new();
        if let Some(home) = home {
            args.push(format!("HOME={}", home.display()));
        }
        args.push(super::chromedriver_path().display().to_string());
        args.push(format!("--port={PORT}"));
        let pid = lab.spawn(node, "chromedriver", "env", &args)?;
        let driver = Self { lab: lab.clone(), netns: lab.netns(node), pid: Some(pid) };
        wait_ready(&driver, lab, "chromedriver")?;
        Ok(driver)
    }

    /// Opens a headless Chromium with `args` (see [`super::chromium_args`]) and a window of
    /// `width`×`height` CSS pixels. It runs as a user's Chromium does, where chromedriver would
    /// start it otherwise:
    /// - its popup blocker is on (`--disable-popup-blocking` left out): a tab opens only from a
    ///   user's click ([`Session::click`]), not from a script's;
    /// - a tab in the background has its timers throttled (`--disable-background-timer-throttling`
    ///   and `--disable-backgrounding-occluded-windows` left out): the launcher behind an app tab
    ///   runs the tunnel as it would for a user.
    pub fn session(&self, args: &[String], width: u32, height: u32) -> anyhow::Result<Session<'_>> {
        let mut args = args.to_vec();
        args.extend(["--headless=new".to_owned(), format!("--window-size={width},{height}")]);
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": false,
            "timeouts": {"script": 60_000, "pageLoad": 60_000, "implicit": 0},
            "goog:chromeOptions": {
                "binary": super::CHROMIUM,
                "args": args,
                "excludeSwitches": [
                    "disable-popup-blocking",
                    "disable-background-timer-throttling",
                    "disable-backgrounding-occluded-windows",
                ],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let value = self.call("POST", "/session", Some(&capabilities)).context("starting Chromium")?;
        Session::new(self, &value)
    }

    /// What chromedriver logged so far.
    pub fn log(&self) -> String {
        self.lab.log("chromedriver")
    }
}

impl Driver for Chromedriver {
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        call(&self.netns, PORT, method, path, body)
    }
}

/// Waits (at most 20 s) until the WebDriver server `driver`, logging as `log_name`, is ready.
pub(super) fn wait_ready(driver: &dyn Driver, lab: &Lab, log_name: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match driver.call("GET", "/status", None) {
            Ok(status) if status["ready"] == true => return Ok(()),
            Ok(_) | Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Ok(status) => bail!("{log_name} not ready after 20 s: {status}"),
            Err(e) => return Err(e.context(format!("{log_name} did not answer; log:\n{}", lab.log(log_name)))),
        }
    }
}

/// A WebDriver server in a lab namespace that a [`Session`] sends its commands to.
pub trait Driver {
    /// One WebDriver command; returns its `value`, or fails with the WebDriver error.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value>;
}

/// One WebDriver command to the server on `port` inside `netns`; returns its `value`, or fails
/// with the WebDriver error.
pub(super) fn call(netns: &str, port: u16, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = super::connect_in(netns, addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(CALL_TIMEOUT))?;
    stream.set_write_timeout(Some(CALL_TIMEOUT))?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    let (code, body) = read_answer(&mut stream).with_context(|| format!("{method} {path}"))?;
    let json: Value =
        serde_json::from_slice(&body).with_context(|| format!("{method} {path}: answer {code} is not JSON"))?;
    let value = json.get("value").cloned().unwrap_or(Value::Null);
    if code != 200 || value.get("error").is_some() {
        bail!("{method} {path}: {code} {}: {}", value["error"], value["message"]);
    }
    Ok(value)
}

/// One read, again when a signal interrupted it: a socket with a read timeout is never
/// restarted by the kernel (signal(7)), and the lab's processes end with SIGCHLD around us.
pub(crate) fn read_retrying(stream: &mut TcpStream, chunk: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match stream.read(chunk) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Reads one answer (chromedriver keeps the connection open despite `Connection: close`, so
/// the body ends at its Content-Length); returns the status code and the body.
fn read_answer(stream: &mut TcpStream) -> anyhow::Result<(u16, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(head_len) = response.parse(&buf)? {
            let length = response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse::<usize>().ok())
                .context("answer without Content-Length")?;
            ensure!(head_len + length <= MAX_ANSWER, "answer too large");
            let code = response.code.unwrap_or(0);
            while buf.len() < head_len + length {
                let n = read_retrying(stream, &mut chunk)?;
                ensure!(n > 0, "connection closed inside the body");
                buf.extend_from_slice(&chunk[..n]);
            }
            return Ok((code, buf[head_len..head_len + length].to_vec()));
        }
        let n = read_retrying(stream, &mut chunk)?;
        ensure!(n > 0, "connection closed before the whole head");
        buf.extend_from_slice(&chunk[..n]);
        ensure!(buf.len() <= MAX_ANSWER, "answer too large");
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            // The lab also kills whatever is left in its namespaces (Chromium) when it goes.
            let _ = self.lab.stop(pid, Duration::from_secs(5));
        }
    }
}

/// One browser window driven through WebDriver; closed when dropped.
pub struct Session<'d> {
    driver: &'d dyn Driver,
    id: String,
}

impl<'d> Session<'d> {
    /// The session a `POST /session` answered with `value`.
    pub(super) fn new(driver: &'d dyn Driver, value: &Value) -> anyhow::Result<Self> {
        let id = value["sessionId"].as_str().context("no sessionId in the answer")?.to_owned();
        Ok(Self { driver, id })
    }

    /// Navigates to `url` and waits for the load (at most the page-load timeout).
    pub fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.command("POST", "url", Some(json!({ "url": url }))).map(|_| ())
    }

    /// Runs `script` (a function body; `arguments` are `args`) and returns its result.
    pub fn execute(&self, script: &str, args: &[Value]) -> anyhow::Result<Value> {
        self.command("POST", "execute/sync", Some(json!({ "script": script, "args": args })))
    }

    /// Runs `script` every 200 ms until it returns something other than `null`, `false`,
    /// `undefined` or `""`; returns that. Fails after `timeout`, saying it waited for `what`.
    pub fn wait_for(&self, what: &str, timeout: Duration, script: &str) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.execute(script, &[])?;
            if !matches!(&value, Value::Null | Value::Bool(false)) && value != "" {
                return Ok(value);
            }
            ensure!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Runs `script` as an async function body: it ends by calling `arguments[arguments.length -
    /// 1](result)`; returns that result (bounded by the session's script timeout, 60 s).
    pub fn execute_async(&self, script: &str, args: &[Value]) -> anyhow::Result<Value> {
        self.command("POST", "execute/async", Some(json!({ "script": script, "args": args })))
    }

    /// Clicks the first element matching `css` as a user does (a WebDriver element click, which
    /// counts as a user gesture: a popup it opens is not blocked).
    pub fn click(&self, css: &str) -> anyhow::Result<()> {
        let element = self.command("POST", "element", Some(json!({ "using": "css selector", "value": css })))?;
        let id =
            element.as_object().and_then(|o| o.values().next()).and_then(Value::as_str).context("no element id")?;
        self.command("POST", &format!("element/{id}/click"), Some(json!({}))).map(|_| ())
    }

    /// Presses and releases the pointer at the centre of `element` (a reference a script
    /// returned; inside shadow roots and frames too), as a user taps it (WebDriver's Perform
    /// Actions).
    pub fn tap(&self, element: &Value) -> anyhow::Result<()> {
        let tap = json!({"actions": [{"type": "pointer", "id": "finger", "parameters": {"pointerType": "mouse"},
            "actions": [{"type": "pointerMove", "origin": element, "x": 0, "y": 0},
                        {"type": "pointerDown", "button": 0}, {"type": "pointerUp", "button": 0}]}]});
        self.command("POST", "actions", Some(tap))?;
        self.command("DELETE", "actions", None).map(|_| ())
    }

    /// Taps the field `element` ([`Self::tap`]), selects what it holds and types `text` over it
    /// as a user does: a key down and up per character (WebDriver's Perform Actions; WebKit
    /// refuses Element Send Keys into fields inside shadow roots as "not focusable", and keys
    /// typed after a mere `focus()` of a field in the launcher's frame never reached it there:
    /// the field stayed empty, the frame's focused element was its body).
    pub fn type_into(&self, element: &Value, text: &str) -> anyhow::Result<()> {
        self.tap(element)?;
        self.execute("const f = arguments[0]; if (f.select) f.select();", std::slice::from_ref(element))?;
        self.keys(text)?;
        let now = self.execute("return arguments[0].value", std::slice::from_ref(element))?;
        ensure!(now == text, "typed {text:?} into a field, which now holds {now}");
        Ok(())
    }

    /// Types `text` into whatever has the focus: a key down and up per character (WebDriver's
    /// Perform Actions; `\u{E007}` is Enter).
    pub fn keys(&self, text: &str) -> anyhow::Result<()> {
        let keys: Vec<Value> = text
            .chars()
            .flat_map(|c| {
                [json!({"type": "keyDown", "value": c.to_string()}), json!({"type": "keyUp", "value": c.to_string()})]
            })
            .collect();
        let actions = json!({"actions": [{"type": "key", "id": "keyboard", "actions": keys}]});
        self.command("POST", "actions", Some(actions))?;
        self.command("DELETE", "actions", None).map(|_| ())
    }

    /// Sets the window's size in CSS pixels.
    pub fn set_window_size(&self, width: u32, height: u32) -> anyhow::Result<()> {
        self.command("POST", "window/rect", Some(json!({ "width": width, "height": height }))).map(|_| ())
    }

    /// The handles of every open window (tab).
    pub fn windows(&self) -> anyhow::Result<Vec<String>> {
        let value = self.command("GET", "window/handles", None)?;
        Ok(value.as_array().context("handles")?.iter().filter_map(|h| h.as_str().map(str::to_owned)).collect())
    }

    /// The handle of the window commands go to.
    pub fn window(&self) -> anyhow::Result<String> {
        Ok(self.command("GET", "window", None)?.as_str().context("handle")?.to_owned())
    }

    /// Sends further commands to the window `handle`.
    pub fn switch_to(&self, handle: &str) -> anyhow::Result<()> {
        self.command("POST", "window", Some(json!({ "handle": handle }))).map(|_| ())
    }

    /// Sends further commands to the frame that the first element matching `css` is (in the
    /// current browsing context); `None` goes back to the top-level page.
    pub fn switch_to_frame(&self, css: Option<&str>) -> anyhow::Result<()> {
        let id = match css {
            Some(css) => self.command("POST", "element", Some(json!({ "using": "css selector", "value": css })))?,
            None => Value::Null,
        };
        self.command("POST", "frame", Some(json!({ "id": id }))).map(|_| ())
    }

    /// Runs a Chrome DevTools Protocol command on the current window's target (chromedriver's
    /// `goog/cdp/execute`); returns its result.
    pub fn cdp(&self, cmd: &str, params: Value) -> anyhow::Result<Value> {
        self.command("POST", "goog/cdp/execute", Some(json!({ "cmd": cmd, "params": params })))
    }

    /// The browser console messages logged since the last call (level and text, one a line).
    pub fn console(&self) -> String {
        let Ok(entries) = self.command("POST", "se/log", Some(json!({ "type": "browser" }))) else {
            return String::new();
        };
        entries
            .as_array()
            .map(|entries| {
                entries.iter().map(|e| format!("{} {}", e["level"].as_str().unwrap_or("?"), e["message"])).collect()
            })
            .map(|lines: Vec<String>| lines.join("\n"))
            .unwrap_or_default()
    }

    /// Saves a PNG screenshot of the window to `path`.
    pub fn screenshot(&self, path: &Path) -> anyhow::Result<()> {
        let value = self.command("GET", "screenshot", None)?;
        let png =
            base64::engine::general_purpose::STANDARD.decode(value.as_str().context("screenshot is not a string")?)?;
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
    }

    fn command(&self, method: &str, what: &str, body: Option<Value>) -> anyhow::Result<Value> {
        self.driver.call(method, &format!("/session/{}/{what}", self.id), body.as_ref())
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        // Quits the browser.
        let _ = self.driver.call("DELETE", &format!("/session/{}", self.id), None);
    }
}
