//! `wss-native` and `wss-browser`: the tunnel's transport alone, as the ceiling for hometun.
//! `hometun-bench wss-serve` (see [`crate::wss`]) listens on the home server's port 443 with the
//! relay's certificate while the relay is stopped, so the remote device reaches it through the
//! same port forward, TLS and WebSocket as the relay; the bytes go as plain binary messages, with
//! no tunnel, session crypto or netstack inside. `wss-native` drives it with the native
//! client's TLS and WebSocket (`wss-probe`), `wss-browser` with Chromium's `WebSocket`.
//! CPU = the server plus the probe, or plus every Chromium process.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use fantoccini::Client;
use hometun_tests::lab::{addr, Node};
use serde_json::{json, Value};

use super::browser::{script, spki_sha256, with_browser};
use super::{measure, BenchLab, Case, CaseId, Plan, RunResult};
use crate::workload::Outcome;
use crate::{install, Work};

/// The server as the remote device reaches it: the router's port forward to the home server.
fn server_address() -> String {
    format!("{}:{}", addr::ROUTER_WAN, addr::RELAY_PORT)
}

/// Starts `wss-serve` on the home server with the relay's certificate (the relay is stopped
/// between runs), runs `f` with its pid and that certificate, stops it.
fn with_server<T>(lab: &BenchLab, tag: &str, f: impl FnOnce(u32, &Path) -> anyhow::Result<T>) -> anyhow::Result<T> {
    let (cert, key) = {
        let host = lab.relay.borrow();
        let host = host.as_ref().context("relay not prepared")?;
        (host.cert(), host.key())
    };
    let log = format!("wss-serve-{tag}");
    let listen = format!("0.0.0.0:{}", addr::RELAY_PORT);
    let args = ["wss-serve", "--listen", &listen, "--cert", &cert.to_string_lossy(), "--key", &key.to_string_lossy()]
        .map(str::to_owned);
    let pid = lab.lab.spawn(Node::Home, &log, &lab.bins.bench, args)?;
    let result = lab.lab.wait_for_log(&log, "wss-serve ready", Duration::from_secs(10)).and_then(|()| f(pid, &cert));
    let _ = lab.lab.stop(pid, Duration::from_secs(5));
    if result.is_err() {
        eprintln!("wss-serve log:\n{}", crate::binaries::tail(&lab.lab.log(&log), 20));
    }
    result
}

/// The native client's TLS and WebSocket with nothing inside.
pub(crate) struct WssNative {
    runs: u32,
}

impl WssNative {
    /// The case.
    pub(crate) fn new() -> Self {
        Self { runs: 0 }
    }
}

impl Case for WssNative {
    fn id(&self) -> CaseId {
        CaseId::WssNative
    }

    fn describe(&self) -> String {
        "the transport alone: the native client's TLS + WebSocket (tokio-tungstenite + rustls) → router port forward → a WebSocket server on the home server (rustls + tungstenite, one thread), 64 KiB binary messages, no tunnel inside (the ceiling for hometun-native); CPU = both processes".into()
    }

    fn run(&mut self, lab: &BenchLab, plan: &Plan) -> anyhow::Result<RunResult> {
        self.runs += 1;
        with_server(lab, &format!("native-{}", self.runs), |server, cert| {
            measure(&plan.without_load(), &|| vec![server], &mut |work| {
                let mut args: Vec<String> = vec!["wss-probe".into(), "--server".into(), server_address()];
                args.extend(["--cert".into(), cert.to_string_lossy().into_owned()]);
                args.extend(work.args());
                lab.wan_probe(&args, plan.timeout())
            })
        })
    }
}

/// Chromium's WebSocket with nothing inside.
pub(crate) struct WssBrowser {
    runs: u32,
}

impl WssBrowser {
    /// The case.
    pub(crate) fn new() -> Self {
        Self { runs: 0 }
    }
}

impl Case for WssBrowser {
    fn id(&self) -> CaseId {
        CaseId::WssBrowser
    }

    fn describe(&self) -> String {
        let version = install::version_line("chromium", &["--version"]).unwrap_or_else(|| "Chromium".into());
        format!("the transport alone: {version} headless, a page's `WebSocket` (binaryType arraybuffer, at most 8 MiB buffered) → router port forward → the same WebSocket server, 64 KiB binary messages, no tunnel inside (the ceiling for hometun-browser); CPU = the server + all Chromium processes")
    }

    fn install(&mut self, _bins: &crate::binaries::Binaries) -> anyhow::Result<()> {
        install::browser()
    }

    fn run(&mut self, lab: &BenchLab, plan: &Plan) -> anyhow::Result<RunResult> {
        self.runs += 1;
        let tag = format!("wss-{}", self.runs);
        with_server(lab, &tag, |server, cert| {
            with_browser(lab, &tag, spki_sha256(cert)?, plan.timeout(), |rt, client, browser_pids| {
                let blank = client.clone();
                rt.run(async move { blank.goto("about:blank").await })??;
                let pids = || {
                    let mut pids = browser_pids();
                    pids.push(server);
                    pids
                };
                measure(&plan.without_load(), &pids, &mut |work| rt.run(page_work(client.clone(), work))?)
            })
        })
    }
}

/// Downloads `size` bytes, counting them as they arrive.
const GET: &str = r#"
const [url, size, done] = arguments;
let bytes = 0, t0 = 0, finished = false;
const finish = (out) => { if (!finished) { finished = true; ws.close(); done(out); } };
const ws = new WebSocket(url);
ws.binaryType = 'arraybuffer';
ws.onopen = () => { t0 = performance.now(); ws.send('get ' + size); };
ws.onmessage = (e) => {
  if (typeof e.data !== 'string') { bytes += e.data.byteLength; return; }
  const ms = performance.now() - t0;
  finish(bytes === size ? { ok: true, bytes, ms } : { ok: false, error: 'got ' + bytes + ' of ' + size + ' bytes' });
};
ws.onclose = (e) => finish({ ok: false, error: 'closed (' + e.code + ') after ' + bytes + ' bytes' });
"#;

/// Uploads `size` bytes in 64 KiB messages, keeping at most 8 MiB buffered in the browser.
const PUT: &str = r#"
const [url, size, done] = arguments;
let finished = false;
const finish = (out) => { if (!finished) { finished = true; ws.close(); done(out); } };
const chunk = new Uint8Array(65536).fill(0xa5);
const ws = new WebSocket(url);
ws.binaryType = 'arraybuffer';
ws.onopen = async () => {
  const t0 = performance.now();
  ws.onmessage = (e) => finish(e.data === 'done'
    ? { ok: true, bytes: size, ms: performance.now() - t0 }
    : { ok: false, error: 'unexpected answer' });
  ws.send('put ' + size);
  let sent = 0;
  while (sent < size && !finished) {
    while (sent < size && ws.bufferedAmount < (8 << 20)) {
      const n = Math.min(chunk.length, size - sent);
      ws.send(n === chunk.length ? chunk : chunk.subarray(0, n));
      sent += n;
    }
    if (sent < size) await new Promise((r) => setTimeout(r, 1));
  }
};
ws.onclose = (e) => finish({ ok: false, error: 'closed (' + e.code + ')' });
"#;

/// `count` round trips of a one-byte message.
const ECHO: &str = r#"
const [url, count, done] = arguments;
let finished = false, t = 0;
const rtts = [];
const finish = (out) => { if (!finished) { finished = true; ws.close(); done(out); } };
const ws = new WebSocket(url);
ws.binaryType = 'arraybuffer';
const ask = () => { t = performance.now(); ws.send(new Uint8Array([rtts.length & 255])); };
ws.onopen = ask;
ws.onmessage = (e) => {
  rtts.push(performance.now() - t);
  if (e.data.byteLength !== 1) return finish({ ok: false, error: 'echo of ' + e.data.byteLength + ' bytes' });
  if (rtts.length >= count) return finish({ ok: true, rtts });
  ask();
};
ws.onclose = (e) => finish({ ok: false, error: 'closed (' + e.code + ')' });
"#;

async fn page_work(client: Client, work: Work) -> anyhow::Result<Outcome> {
    let url = json!(format!("wss://{}/", server_address()));
    let transfer = |out: Value| -> anyhow::Result<Outcome> {
        let bytes = out["bytes"].as_u64().context("no bytes")?;
        let ms = out["ms"].as_f64().context("no ms")?;
        Ok(Outcome::Transfer { bytes, secs: ms / 1e3, cpu_secs: None })
    };
    match work {
        Work::Get { size } => transfer(script(&client, GET, vec![url, json!(size)]).await?),
        Work::Put { size } => transfer(script(&client, PUT, vec![url, json!(size)]).await?),
        Work::Loaded { .. } => anyhow::bail!("the transport alone has no echo under load"),
        Work::Echo { count } => {
            let out = script(&client, ECHO, vec![url, json!(count)]).await?;
            let rtts_ms = out["rtts"].as_array().context("no rtts")?.iter().filter_map(Value::as_f64).collect();
            Ok(Outcome::Echo { rtts_ms })
        }
    }
}
