//! Transfers through an app's service worker that outlast what browsers allow one worker event
//! (five minutes) and a worker after its last event (a minute, in Firefox): the page downloads
//! the lab host's drip of known bytes, or uploads to a lab host that reads slowly, and the step
//! checks every byte, as a user's file would be checked.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure};
use serde_json::json;

use super::webdriver::Session;
use crate::content::{blob_bytes, drip_path};
use crate::labhost::upload_pace_path;

/// Starts the fetch in the app page and keeps its progress in `window.__download`.
const START: &str = r#"
window.__download = { bytes: 0 };
(async () => {
  const t0 = performance.now();
  const r = await fetch(arguments[0], { cache: 'no-store' });
  const reader = r.body.getReader();
  const parts = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    window.__download.bytes += value.length;
  }
  const body = await new Blob(parts).arrayBuffer();
  const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', body));
  window.__download.result = { status: r.status, length: body.byteLength, ms: performance.now() - t0,
    sha: [...hash].map((b) => b.toString(16).padStart(2, '0')).join('') };
})().catch((e) => { window.__download.result = { error: String(e) }; });
return true;
"#;

/// Uploads `arguments[1]` random bytes to `arguments[0]` with `fetch`, or with XHR when
/// `arguments[2]` (as upload pages do, counting its upload progress in `window.__upload.sent`),
/// and keeps the lab host's answer (`<length> <sha256> <framing>`) and the hash of what was sent
/// in `window.__upload`.
const UPLOAD: &str = r#"
window.__upload = { sent: 0 };
const xhr = (url, body) => new Promise((resolve, reject) => {
  const r = new XMLHttpRequest();
  r.open('POST', url);
  r.upload.onprogress = (e) => {
    window.__upload.sent = e.loaded;
    if (e.loaded > 0 && e.loaded < body.size) window.__upload.midway = true;
  };
  r.onload = () => resolve({ status: r.status, text: async () => r.responseText });
  r.onerror = () => reject(new Error('the XHR failed'));
  r.send(body);
});
(async () => {
  const bytes = new Uint8Array(arguments[1]);
  for (let at = 0; at < bytes.length; at += 65536) crypto.getRandomValues(bytes.subarray(at, at + 65536));
  const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  const sha = [...hash].map((b) => b.toString(16).padStart(2, '0')).join('');
  const t0 = performance.now();
  const r = arguments[2] ? await xhr(arguments[0], new Blob([bytes]))
    : await fetch(arguments[0], { method: 'POST', body: new Blob([bytes]), cache: 'no-store' });
  window.__upload.result = { status: r.status, text: await r.text(), sent: `${bytes.length} ${sha} length\n`,
    ms: performance.now() - t0, progress: [Boolean(window.__upload.midway), window.__upload.sent] };
})().catch((e) => { window.__upload.result = { error: String(e) }; });
return true;
"#;

/// The app on the session's current page (a tab or the launcher's frame) downloads `size` bytes
/// that the lab host spreads over `secs` seconds; they must all arrive, intact, and not early.
pub fn a_download_of(page: &Session, secs: u64, size: u64, engine: &str) -> anyhow::Result<()> {
    page.execute(START, &[json!(drip_path(secs, size))])?;
    let result = outcome(page, "__download", secs, engine)?;
    let mut bytes = vec![0u8; size as usize];
    blob_bytes(size, 0, &mut bytes);
    let whole = json!({ "status": 200, "length": size, "sha": crate::apps::sha256_hex(&bytes) });
    let got = json!({ "status": result["status"], "length": result["length"], "sha": result["sha"] });
    ensure!(got == whole, "{engine}: the {secs} s download ended with {result} instead of {whole}");
    took_about(&result, secs, engine, "download")
}

/// The app on the session's current page uploads `size` bytes with `fetch` to a lab host that
/// reads them over `secs` seconds; the host must have got every byte, and not early.
pub fn an_upload_of(page: &Session, secs: u64, size: u64, engine: &str) -> anyhow::Result<()> {
    upload(page, secs, size, engine, false)
}

/// [`an_upload_of`] with `XMLHttpRequest`, as upload pages send files.
pub fn an_xhr_upload_of(page: &Session, secs: u64, size: u64, engine: &str) -> anyhow::Result<()> {
    upload(page, secs, size, engine, true)
}

fn upload(page: &Session, secs: u64, size: u64, engine: &str, xhr: bool) -> anyhow::Result<()> {
    page.execute(UPLOAD, &[json!(upload_pace_path(size.div_ceil(secs))), json!(size), json!(xhr)])?;
    let result = outcome(page, "__upload", secs, engine)?;
    ensure!(
        result["status"] == 200 && result["text"] == result["sent"],
        "{engine}: the {secs} s upload ended with {result}: the host did not get what was sent"
    );
    // Upload pages show a bar: XHR's progress went through the middle and ended at the size.
    ensure!(
        !xhr || result["progress"] == json!([true, size]),
        "{engine}: the XHR's upload progress (seen midway, last) was {}",
        result["progress"]
    );
    took_about(&result, secs, engine, "upload")
}

/// Polls `window[global]` every 15 s until the page's step has a `result`, at most `secs` + 2 min.
fn outcome(page: &Session, global: &str, secs: u64, engine: &str) -> anyhow::Result<serde_json::Value> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs + 120);
    loop {
        std::thread::sleep(Duration::from_secs(15));
        let state = page.execute(&format!("return window.{global}"), &[])?;
        eprintln!("{engine}: {} s, {state}", started.elapsed().as_secs());
        if !state["result"].is_null() {
            return Ok(state["result"].clone());
        }
        if Instant::now() > deadline {
            bail!("{engine}: {global} did not end within {} s: {state}", secs + 120);
        }
    }
}

/// Whether the step's `result.ms` shows it took about `secs` (else it proved nothing).
fn took_about(result: &serde_json::Value, secs: u64, engine: &str, what: &str) -> anyhow::Result<()> {
    let ms = result["ms"].as_f64().unwrap_or_default();
    ensure!(
        ms >= (secs * 900) as f64,
        "{engine}: the {what} took {ms} ms, not about {secs} s: the test proves nothing"
    );
    Ok(())
}
