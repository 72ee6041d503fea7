//! `hometun-browser`: the page in headless Chromium on the remote device, driven over WebDriver
//! (chromedriver inside the remote device's namespace, so the browser reaches the relay only
//! through the lab). Each run starts a fresh browser profile: it opens the invite link (the page
//! enrols and connects), reloads (the page reconnects the stored device: the time from
//! navigation start to the tunnel being up is `tunnel_up_ms`), then runs the workload with the
//! page's own API: `window.hometun.fetch` for the GET and the POST, `connectTcp` for the echo.
//! The GET counts the streamed bytes (the native case checks content); the POST body is the
//! pattern (fetched once through the tunnel) and the LAN host checks every byte.
//! CPU = relay + every Chromium process (browser, renderer with the wasm, network service).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use fantoccini::wd::TimeoutConfiguration;
use fantoccini::{Client, ClientBuilder};
use hometun_tests::lab::{run_bounded, Node};
use serde_json::{json, Value};

use super::{browser_profile, measure, BenchLab, Case, CaseId, Plan, RunResult};
use crate::binaries::Binaries;
use crate::netns::NsRuntime;
use crate::workload::{Outcome, ECHO_PORT, HTTP_PORT, LAN_HOST};
use crate::{install, proc, Work};

const DRIVER_PORT: u16 = 9515;

/// The browser case.
pub(crate) struct HometunBrowser {
    runs: u32,
    page: Option<PathBuf>,
}

impl HometunBrowser {
    /// The case.
    pub(crate) fn new() -> Self {
        Self { runs: 0, page: None }
    }

    /// Where [`Case::install`] builds the page (when it did).
    pub(crate) fn page_dir(bins: &Binaries) -> Option<PathBuf> {
        Some(bins.target_dir.join("bench-www")).filter(|p| p.join("index.html").exists())
    }
}

impl Case for HometunBrowser {
    fn id(&self) -> CaseId {
        CaseId::HometunBrowser
    }

    fn describe(&self) -> String {
        let version = install::version_line("chromium", &["--version"]).unwrap_or_else(|| "Chromium".into());
        format!("{version} headless on the remote device, the page's window.hometun.fetch / connectTcp (wasm client) → relay; CPU = relay + all Chromium processes")
    }

    fn install(&mut self, bins: &Binaries) -> anyhow::Result<()> {
        install::browser()?;
        self.page = Some(bins.build_page()?);
        Ok(())
    }

    fn run(&mut self, lab: &BenchLab, plan: &Plan) -> anyhow::Result<RunResult> {
        self.runs += 1;
        let page = self.page.clone().context("page not built")?;
        let mut host = lab.relay.borrow_mut();
        let host = host.as_mut().context("relay not prepared")?;
        host.up(lab, Some(&page))?;
        let result = (|| {
            let relay_pid = host.pid(lab).context("relay not running")?;
            let link = host.invite_link(&format!("bench-browser-{}", self.runs))?;
            let spki = spki_sha256(&host.cert())?;
            let tag = format!("hometun-{}", self.runs);
            with_browser(lab, &tag, spki, plan.timeout(), |rt, client, browser_pids| {
                rt.run(navigate(client.clone(), Some(link)))??;
                let up_ms = rt.run(navigate(client.clone(), None))??;
                rt.run(load_pattern(client.clone()))??;
                let pids = || {
                    let mut pids = browser_pids();
                    pids.push(relay_pid);
                    pids
                };
                let mut r = measure(plan, &pids, &mut |work| rt.run(page_work(client.clone(), work))?)?;
                r.extra.insert("tunnel_up_ms".into(), up_ms);
                if plan.browser_cpu_profile && self.runs == 1 {
                    let mib = plan.size >> 20;
                    for (work, title) in [
                        (Work::Get { size: plan.size }, format!("download of {mib} MiB through the page")),
                        (Work::Put { size: plan.size }, format!("upload of {mib} MiB through the page")),
                        (Work::Echo { count: plan.echo_count }, format!("{} one-byte echoes", plan.echo_count)),
                    ] {
                        rt.run(browser_profile::start(client.clone()))??;
                        rt.run(page_work(client.clone(), work))??;
                        eprintln!("\n{}", rt.run(browser_profile::stop(client.clone(), title))??);
                    }
                }
                Ok(r)
            })
        })();
        if result.is_err() {
            eprintln!("relay log:\n{}", crate::binaries::tail(&host.log(), 30));
        }
        host.down()?;
        result
    }
}

/// Runs `f` with a fresh headless Chromium on the remote device: chromedriver in its namespace
/// (so the browser reaches the home only through the lab), a fresh profile named after `tag`,
/// trusting the certificate whose SPKI hash is `spki`. `f` gets the namespace's runtime, the
/// WebDriver client and the pids of chromedriver and every browser process. The browser and
/// chromedriver are gone afterwards, whatever `f` returned.
pub(crate) fn with_browser<T>(
    lab: &BenchLab,
    tag: &str,
    spki: String,
    timeout: Duration,
    f: impl FnOnce(&NsRuntime, Client, &dyn Fn() -> Vec<u32>) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let log = format!("chromedriver-{tag}");
    let driver = lab.lab.spawn(Node::Wan, &log, "chromedriver", [format!("--port={DRIVER_PORT}")])?;
    let result = (|| {
        lab.lab.wait_for_log(&log, "started successfully", Duration::from_secs(20))?;
        let rt = NsRuntime::new(&lab.lab.netns(Node::Wan))?;
        let profile = lab.lab.dir().join(format!("chromium-{tag}"));
        let client = rt.run(open_browser(spki, profile, timeout))??;
        let result = f(&rt, client.clone(), &|| proc::with_descendants(driver));
        let _ = rt.run(client.close());
        result
    })();
    let leftovers = proc::with_descendants(driver);
    let _ = lab.lab.stop(driver, Duration::from_secs(5));
    for pid in leftovers.into_iter().skip(1) {
        if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
    result
}

/// Base64 SHA-256 of the certificate's SubjectPublicKeyInfo, for Chromium's
/// `--ignore-certificate-errors-spki-list` (the relay's certificate is self-signed).
pub(crate) fn spki_sha256(cert: &Path) -> anyhow::Result<String> {
    let script = format!(
        "openssl x509 -in '{}' -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64",
        cert.display()
    );
    let mut cmd = Command::new("bash");
    cmd.args(["-o", "pipefail", "-c", &script]);
    let out = run_bounded(cmd, Duration::from_secs(20))?;
    ensure!(out.status.success(), "SPKI hash: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

async fn open_browser(spki: String, profile: PathBuf, script_timeout: Duration) -> anyhow::Result<Client> {
    let args = vec![
        "--headless=new".to_owned(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-dev-shm-usage".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--no-first-run".into(),
        format!("--user-data-dir={}", profile.display()),
        format!("--ignore-certificate-errors-spki-list={spki}"),
    ];
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": { "binary": "/usr/bin/chromium", "args": args },
    });
    let Value::Object(caps) = caps else { bail!("capabilities are an object") };
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{DRIVER_PORT}"))
        .await
        .context("WebDriver session")?;
    client
        .update_timeouts(TimeoutConfiguration::new(Some(script_timeout), Some(Duration::from_secs(60)), None))
        .await
        .context("WebDriver timeouts")?;
    Ok(client)
}

/// Waits (≤ 30 s) for `window.hometun.status().state === 'connected'`; answers the ms from
/// navigation start to the tunnel being up.
const WAIT_CONNECTED: &str = r#"
const done = arguments[arguments.length - 1];
const deadline = Date.now() + 30000;
(function poll() {
  try {
    if (window.hometun) {
      const s = window.hometun.status();
      if (s.state === 'connected') {
        const since = new Date(s.connectedSince).getTime();
        const upMs = Number.isFinite(since) && since > 0 ? since - performance.timeOrigin : performance.now();
        return done({ ok: true, upMs });
      }
      if (s.state === 'failed') return done({ ok: false, error: 'failed: ' + JSON.stringify(s.error) });
    }
  } catch (e) { return done({ ok: false, error: String(e) }); }
  if (Date.now() > deadline) return done({ ok: false, error: 'not connected after 30 s, page state ' + document.body.dataset.state });
  setTimeout(poll, 5);
})();
"#;

/// Opens the invite link (`Some`) or reloads the page (`None`), then waits for the tunnel.
async fn navigate(client: Client, link: Option<String>) -> anyhow::Result<f64> {
    match link {
        Some(link) => client.goto(&link).await?,
        None => client.refresh().await?,
    }
    let out = script(&client, WAIT_CONNECTED, vec![]).await?;
    out["upMs"].as_f64().context("no upMs")
}

/// Keeps one block of the pattern in the page (fetched through the tunnel) to build POST bodies.
const LOAD_PATTERN: &str = r#"
const [url, done] = arguments;
(async () => {
  const r = await window.hometun.fetch(url);
  window.__benchBlock = new Uint8Array(await r.arrayBuffer());
  done({ ok: true, bytes: window.__benchBlock.length });
})().catch((e) => done({ ok: false, error: (e && e.code ? e.code + ': ' : '') + String(e && e.message || e) }));
"#;

async fn load_pattern(client: Client) -> anyhow::Result<()> {
    let url = format!("http://{LAN_HOST}:{HTTP_PORT}/bytes/{}", crate::pattern::BLOCK);
    let out = script(&client, LOAD_PATTERN, vec![json!(url)]).await?;
    ensure!(out["bytes"].as_u64() == Some(crate::pattern::BLOCK as u64), "pattern block: {out}");
    Ok(())
}

/// A page script with two helpers in front: `fetchCounted(url)`, a GET through the tunnel whose
/// body is read to its end and counted, and `echoOnce(c, i)`, one byte sent on `connectTcp`'s
/// connection `c` and its echo awaited.
macro_rules! with_page_helpers {
    ($script:literal) => {
        concat!(
            r#"
const fetchCounted = async (url) => {
  const r = await window.hometun.fetch(url);
  if (r.status !== 200) throw new Error('status ' + r.status);
  const reader = r.body.getReader();
  let bytes = 0;
  for (;;) {
    const { done: end, value } = await reader.read();
    if (end) break;
    bytes += value.length;
  }
  return bytes;
};
const echoOnce = async (c, i) => {
  await c.send(new Uint8Array([i & 255]));
  let got = 0;
  while (got < 1) {
    const r = await c.receive();
    if (r === null) throw new Error('echo connection closed');
    got += r.length;
  }
};"#,
            $script
        )
    };
}

const GET: &str = with_page_helpers!(
    r#"
const [url, done] = arguments;
(async () => {
  const t0 = performance.now();
  const bytes = await fetchCounted(url);
  done({ ok: true, bytes, ms: performance.now() - t0 });
})().catch((e) => done({ ok: false, error: (e && e.code ? e.code + ': ' : '') + String(e && e.message || e) }));
"#
);

const POST: &str = r#"
const [url, size, done] = arguments;
(async () => {
  const block = window.__benchBlock;
  const body = new Uint8Array(size);
  for (let off = 0; off < size; off += block.length) body.set(block.subarray(0, Math.min(block.length, size - off)), off);
  const t0 = performance.now();
  const r = await window.hometun.fetch(url, { method: 'POST', body });
  const text = await r.text();
  const ms = performance.now() - t0;
  if (r.status !== 200) throw new Error('status ' + r.status + ': ' + text);
  done({ ok: true, bytes: size, ms });
})().catch((e) => done({ ok: false, error: (e && e.code ? e.code + ': ' : '') + String(e && e.message || e) }));
"#;

const ECHO: &str = with_page_helpers!(
    r#"
const [host, port, count, done] = arguments;
(async () => {
  const c = await window.hometun.connectTcp(host, port);
  const rtts = [];
  for (let i = 0; i < count; i++) {
    const t = performance.now();
    await echoOnce(c, i);
    rtts.push(performance.now() - t);
  }
  c.close();
  done({ ok: true, rtts });
})().catch((e) => done({ ok: false, error: (e && e.code ? e.code + ': ' : '') + String(e && e.message || e) }));
"#
);

const LOADED: &str = with_page_helpers!(
    r#"
const [url, size, host, port, count, after, every, done] = arguments;
(async () => {
  const c = await window.hometun.connectTcp(host, port);
  let finished = false;
  let failed = null;
  const download = (async () => {
    const bytes = await fetchCounted(url);
    if (bytes !== size) throw new Error('the download ended after ' + bytes + ' of ' + size + ' bytes');
  })().catch((e) => { failed = e; }).finally(() => { finished = true; });
  const rtts = [];
  await new Promise((ok) => setTimeout(ok, after));
  try {
    for (let i = 0; i < count && !finished; i++) {
      const t = performance.now();
      await echoOnce(c, i);
      const ms = performance.now() - t;
      if (!finished) rtts.push(ms);
      await new Promise((ok) => setTimeout(ok, Math.max(0, every - ms)));
    }
  } catch (e) {
    // The download's own failure (it may be what stopped the echoes) comes first.
    throw failed || e;
  }
  await download;
  if (failed) throw failed;
  c.close();
  done({ ok: true, rtts });
})().catch((e) => done({ ok: false, error: (e && e.code ? e.code + ': ' : '') + String(e && e.message || e) }));
"#
);

async fn page_work(client: Client, work: Work) -> anyhow::Result<Outcome> {
    let base = format!("http://{LAN_HOST}:{HTTP_PORT}");
    let transfer = |out: Value| -> anyhow::Result<Outcome> {
        let bytes = out["bytes"].as_u64().context("no bytes")?;
        let ms = out["ms"].as_f64().context("no ms")?;
        Ok(Outcome::Transfer { bytes, secs: ms / 1e3, cpu_secs: None })
    };
    match work {
        Work::Get { size } => {
            let out = script(&client, GET, vec![json!(format!("{base}/bytes/{size}"))]).await?;
            ensure!(out["bytes"].as_u64() == Some(size), "GET through the page got {} of {size} bytes", out["bytes"]);
            transfer(out)
        }
        Work::Put { size } => transfer(script(&client, POST, vec![json!(format!("{base}/sink")), json!(size)]).await?),
        Work::Loaded { size, count } => {
            let args = vec![
                json!(format!("{base}/bytes/{size}")),
                json!(size),
                json!(LAN_HOST.to_string()),
                json!(ECHO_PORT),
                json!(count),
                json!(crate::workload::LOADED_ECHO_AFTER.as_millis() as u64),
                json!(crate::workload::LOADED_ECHO_EVERY.as_millis() as u64),
            ];
            let out = script(&client, LOADED, args).await?;
            let rtts_ms = out["rtts"].as_array().context("no rtts")?.iter().filter_map(Value::as_f64).collect();
            Ok(Outcome::Echo { rtts_ms })
        }
        Work::Echo { count } => {
            let out = script(&client, ECHO, vec![json!(LAN_HOST.to_string()), json!(ECHO_PORT), json!(count)]).await?;
            let rtts_ms = out["rtts"].as_array().context("no rtts")?.iter().filter_map(Value::as_f64).collect();
            Ok(Outcome::Echo { rtts_ms })
        }
    }
}

/// Runs an async script; fails with its `error` unless it answered `{ok: true, ...}`.
pub(crate) async fn script(client: &Client, source: &str, args: Vec<Value>) -> anyhow::Result<Value> {
    let out = client.execute_async(source, args).await.context("WebDriver script")?;
    if out["ok"].as_bool() != Some(true) {
        bail!("page script failed: {}", out["error"].as_str().unwrap_or(&out.to_string()));
    }
    Ok(out)
}

/// Bytes of the page's wasm and JavaScript, raw and gzip -9.
pub(crate) fn page_size(dist: &Path) -> anyhow::Result<(u64, u64)> {
    use std::io::Write;
    let (mut raw, mut gz) = (0u64, 0u64);
    let mut stack = vec![dist.to_path_buf()];
    let mut visited = 0;
    while let Some(dir) = stack.pop() {
        visited += 1;
        ensure!(visited < 1000, "too many directories under {}", dist.display());
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "wasm" || e == "js") {
                let bytes = std::fs::read(&path)?;
                raw += bytes.len() as u64;
                let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                enc.write_all(&bytes)?;
                gz += enc.finish()?.len() as u64;
            }
        }
    }
    Ok((raw, gz))
}
