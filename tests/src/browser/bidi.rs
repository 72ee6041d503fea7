//! A WebDriver BiDi connection (W3C WebDriver BiDi, the protocol Firefox speaks natively): one
//! WebSocket to the browser inside a lab namespace, commands sent with ids and their answers
//! matched to them, events kept for whoever asks, every wait bounded. Also the two value
//! conversions a classic WebDriver client needs: JSON arguments to BiDi `LocalValue`s and BiDi
//! `RemoteValue`s back to JSON.
//!
//! Nothing the browser sends can panic this module: a malformed message is an error.

use std::collections::VecDeque;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Map, Value};
use tokio_tungstenite::tungstenite::{self, Message, WebSocket};

/// The key of a web element reference in classic WebDriver JSON.
pub const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// The key of a window reference in classic WebDriver JSON.
pub const WINDOW_KEY: &str = "window-fcc6-11e5-b4f8-330a88ab9d7f";

/// At most this many events are kept; older ones go first.
const MAX_EVENTS: usize = 2000;
/// How long one blocking read may wait before the deadline is looked at again.
const READ_SLICE: Duration = Duration::from_millis(500);

/// An open BiDi connection to one browser.
pub struct Connection {
    ws: WebSocket<TcpStream>,
    next_id: u64,
    events: VecDeque<Value>,
    /// Why the connection can no longer be used (errors are sticky).
    broken: Option<String>,
}

/// A command the browser answered with an error.
#[derive(Debug, thiserror::Error)]
#[error("{method}: {error}: {message}")]
pub struct CommandError {
    /// The command.
    pub method: String,
    /// The BiDi error code (`no such frame`, `unknown error`, ...).
    pub error: String,
    /// The browser's message.
    pub message: String,
}

impl Connection {
    /// Connects, from inside `netns`, to the BiDi endpoint of a browser listening on `port` of
    /// the namespace's loopback (`ws://127.0.0.1:PORT/session`).
    pub fn open(netns: &str, port: u16) -> anyhow::Result<Self> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let stream = super::connect_in(netns, addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_write_timeout(Some(Duration::from_secs(10)))?;
        let url = format!("ws://127.0.0.1:{port}/session");
        let (ws, _) = tungstenite::client::client(url.as_str(), stream)
            .map_err(|e| anyhow::anyhow!("WebSocket handshake with {url}: {e}"))?;
        Ok(Self { ws, next_id: 1, events: VecDeque::new(), broken: None })
    }

    /// Sends `method` with `params` and waits at most `timeout` for its answer; returns the
    /// command's `result`. Events that arrive meanwhile are kept (see [`Connection::events`]).
    /// An answer that comes after its timeout is dropped when it arrives.
    pub fn command(&mut self, method: &str, params: Value, timeout: Duration) -> anyhow::Result<Value> {
        if let Some(why) = &self.broken {
            bail!("{method}: the BiDi connection is gone ({why})");
        }
        let id = self.next_id;
        self.next_id += 1;
        let text = json!({ "id": id, "method": method, "params": params }).to_string();
        if let Err(e) = self.ws.send(Message::text(text)) {
            return Err(self.break_with(format!("sending {method}: {e}")));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let Some(message) = self.read_until(deadline)? else {
                bail!("{method}: no answer after {timeout:?}");
            };
            match message.get("type").and_then(Value::as_str) {
                Some("event") => self.keep(message),
                Some("success") if message["id"] == id => return Ok(message["result"].clone()),
                Some("error") if message["id"] == id || message["id"].is_null() => {
                    let text = |key: &str| message[key].as_str().unwrap_or_default().to_owned();
                    return Err(CommandError {
                        method: method.to_owned(),
                        error: text("error"),
                        message: text("message"),
                    }
                    .into());
                }
                // A late answer to a command that timed out.
                _ => {}
            }
        }
    }

    /// Takes the events of `method` (their `params`) that arrived so far, oldest first.
    pub fn events(&mut self, method: &str) -> Vec<Value> {
        // Whatever already waits on the socket, without blocking for more.
        while let Ok(Some(message)) = self.read_until(Instant::now()) {
            if message["type"] == "event" {
                self.keep(message);
            }
        }
        let (taken, kept) = self.events.drain(..).partition(|e| e["method"] == method);
        self.events = kept;
        taken.into_iter().map(|mut e| e["params"].take()).collect()
    }

    /// Whether the connection still works.
    pub fn is_open(&self) -> bool {
        self.broken.is_none()
    }

    fn keep(&mut self, event: Value) {
        if self.events.len() == MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    /// The next message, or `None` once `deadline` passed without one (at least one read is
    /// tried, however short the time).
    fn read_until(&mut self, deadline: Instant) -> anyhow::Result<Option<Value>> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let slice = left.clamp(Duration::from_millis(1), READ_SLICE);
            if let Err(e) = self.ws.get_mut().set_read_timeout(Some(slice)) {
                return Err(self.break_with(format!("socket: {e}")));
            }
            match self.ws.read() {
                Ok(Message::Text(text)) => {
                    return serde_json::from_str(text.as_str())
                        .map(Some)
                        .with_context(|| format!("a BiDi message that is not JSON: {:.200}", text.as_str()));
                }
                Ok(Message::Close(frame)) => return Err(self.break_with(format!("the browser closed it: {frame:?}"))),
                Ok(_) => {} // pings (answered by the WebSocket layer), pongs, binary
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(self.break_with(e.to_string())),
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
        }
    }

    fn break_with(&mut self, why: String) -> anyhow::Error {
        let error = anyhow::anyhow!("the BiDi connection broke: {why}");
        self.broken = Some(why);
        error
    }
}

/// A JSON value as a BiDi `script.LocalValue` (an argument of `script.callFunction`). A classic
/// element reference (`{ELEMENT_KEY: id}`) becomes a reference to that node.
pub fn local_value(value: &Value) -> Value {
    match value {
        Value::Null => json!({ "type": "null" }),
        Value::Bool(b) => json!({ "type": "boolean", "value": b }),
        Value::Number(n) => json!({ "type": "number", "value": n }),
        Value::String(s) => json!({ "type": "string", "value": s }),
        Value::Array(items) => json!({ "type": "array", "value": items.iter().map(local_value).collect::<Vec<_>>() }),
        Value::Object(map) => match map.get(ELEMENT_KEY) {
            Some(Value::String(id)) if map.len() == 1 => json!({ "sharedId": id }),
            _ => {
                let pairs: Vec<Value> = map.iter().map(|(k, v)| json!([k, local_value(v)])).collect();
                json!({ "type": "object", "value": pairs })
            }
        },
    }
}

/// A BiDi `script.RemoteValue` (what a script returned) as classic WebDriver JSON gives it:
/// `undefined` and `null` as null; NaN and the infinities as null and -0 as 0 (as
/// `JSON.stringify` has them); arrays and sets as arrays; objects and maps as objects (a key that
/// is not a string as its JSON text); a node as an element reference and a window as a window
/// reference; dates and regular expressions as their text. Anything else (functions, promises,
/// errors, values seen before in a cycle) is null.
pub fn from_remote(value: &Value) -> anyhow::Result<Value> {
    let kind = value.get("type").and_then(Value::as_str).context("a RemoteValue without a type")?;
    let inner = &value["value"];
    Ok(match kind {
        "undefined" | "null" => Value::Null,
        "string" | "date" | "bigint" => {
            Value::String(inner.as_str().context("a text RemoteValue without text")?.into())
        }
        "boolean" => Value::Bool(inner.as_bool().context("a boolean RemoteValue without a boolean")?),
        "number" => match inner {
            Value::Number(_) => inner.clone(),
            Value::String(special) if special == "-0" => json!(0),
            Value::String(_) => Value::Null,
            _ => bail!("a number RemoteValue of {inner}"),
        },
        "regexp" => Value::String(format!(
            "/{}/{}",
            inner["pattern"].as_str().unwrap_or_default(),
            inner["flags"].as_str().unwrap_or_default()
        )),
        "array" | "set" | "nodelist" | "htmlcollection" => match inner {
            Value::Array(items) => Value::Array(items.iter().map(from_remote).collect::<anyhow::Result<_>>()?),
            _ => Value::Null,
        },
        "object" | "map" => match inner {
            Value::Array(pairs) => {
                let mut map = Map::new();
                for pair in pairs {
                    let (Some(key), Some(v)) = (pair.get(0), pair.get(1)) else { bail!("an object entry {pair}") };
                    let key = match key {
                        Value::String(k) => k.clone(),
                        other => match from_remote(other)? {
                            Value::String(k) => k,
                            other => other.to_string(),
                        },
                    };
                    map.insert(key, from_remote(v)?);
                }
                Value::Object(map)
            }
            _ => Value::Null,
        },
        "node" => match value.get("sharedId").and_then(Value::as_str) {
            Some(id) => json!({ ELEMENT_KEY: id }),
            None => Value::Null,
        },
        "window" => match inner["context"].as_str() {
            Some(context) => json!({ WINDOW_KEY: context }),
            None => Value::Null,
        },
        _ => Value::Null,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_become_local_values() {
        let cases = [
            (json!(null), json!({"type": "null"})),
            (json!(true), json!({"type": "boolean", "value": true})),
            (json!(3), json!({"type": "number", "value": 3})),
            (json!(2.5), json!({"type": "number", "value": 2.5})),
            (json!("grüße ✓"), json!({"type": "string", "value": "grüße ✓"})),
            (
                json!([1, "a"]),
                json!({"type": "array", "value": [{"type": "number", "value": 1}, {"type": "string", "value": "a"}]}),
            ),
            (
                json!({"k": [null]}),
                json!({"type": "object", "value": [["k", {"type": "array", "value": [{"type": "null"}]}]]}),
            ),
            (json!({ ELEMENT_KEY: "node-1" }), json!({"sharedId": "node-1"})),
            (
                json!({ ELEMENT_KEY: "node-1", "x": 1 }),
                json!({"type": "object", "value": [[ELEMENT_KEY, {"type": "string", "value": "node-1"}], ["x", {"type": "number", "value": 1}]]}),
            ),
        ];
        for (i, (arg, want)) in cases.iter().enumerate() {
            assert_eq!(&local_value(arg), want, "case {i}: {arg}");
        }
    }

    #[test]
    fn remote_values_become_json_as_classic_webdriver_gives_them() {
        let cases = [
            (json!({"type": "undefined"}), json!(null)),
            (json!({"type": "null"}), json!(null)),
            (json!({"type": "string", "value": "x"}), json!("x")),
            (json!({"type": "number", "value": 3145728}), json!(3145728)),
            (json!({"type": "number", "value": 0.5}), json!(0.5)),
            (json!({"type": "number", "value": "NaN"}), json!(null)),
            (json!({"type": "number", "value": "-0"}), json!(0)),
            (json!({"type": "number", "value": "Infinity"}), json!(null)),
            (json!({"type": "number", "value": "-Infinity"}), json!(null)),
            (json!({"type": "boolean", "value": false}), json!(false)),
            (json!({"type": "bigint", "value": "12345678901234567890"}), json!("12345678901234567890")),
            (json!({"type": "array", "value": [{"type": "number", "value": 18}, {"type": "null"}]}), json!([18, null])),
            (json!({"type": "set", "value": [{"type": "string", "value": "a"}]}), json!(["a"])),
            (
                json!({"type": "object", "value": [["status", {"type": "number", "value": 200}], ["sha", {"type": "string", "value": "ab"}]]}),
                json!({"status": 200, "sha": "ab"}),
            ),
            (
                json!({"type": "map", "value": [[{"type": "number", "value": 1}, {"type": "boolean", "value": true}], ["b", {"type": "null"}]]}),
                json!({"1": true, "b": null}),
            ),
            (json!({"type": "node", "sharedId": "n-7", "value": {"nodeType": 1}}), json!({ ELEMENT_KEY: "n-7" })),
            (json!({"type": "window", "value": {"context": "ctx-2"}}), json!({ WINDOW_KEY: "ctx-2" })),
            (json!({"type": "date", "value": "2026-11-30T10:00:00.000Z"}), json!("2026-11-30T10:00:00.000Z")),
            (json!({"type": "regexp", "value": {"pattern": "a+", "flags": "g"}}), json!("/a+/g")),
            (json!({"type": "function", "handle": "h"}), json!(null)),
            (json!({"type": "object", "internalId": "1"}), json!(null)),
        ];
        for (i, (remote, want)) in cases.iter().enumerate() {
            assert_eq!(&from_remote(remote).unwrap(), want, "case {i}: {remote}");
        }
    }

    #[test]
    fn malformed_remote_values_are_errors() {
        for bad in [
            json!({}),
            json!({"type": "string"}),
            json!({"type": "boolean", "value": "yes"}),
            json!({"type": "number", "value": [1]}),
            json!({"type": "object", "value": [["only a key"]]}),
            json!({"type": "array", "value": [{"no": "type"}]}),
        ] {
            assert!(from_remote(&bad).is_err(), "{bad}");
        }
    }
}
