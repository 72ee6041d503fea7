//! A download through an app's service worker that outlasts what browsers allow one worker
//! event (five minutes) and an idle worker (30 seconds): the page reads the lab host's drip of
//! known bytes and the step checks every byte, as a user's file would be checked.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure};
use serde_json::json;

use super::webdriver::Session;
use crate::content::{blob_bytes, drip_path};

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

/// The app on the session's current page (a tab or the launcher's frame) downloads `size` bytes
/// that the lab host spreads over `secs` seconds; they must all arrive, intact, and not early.
pub fn a_download_of(page: &Session, secs: u64, size: u64, engine: &str) -> anyhow::Result<()> {
    page.execute(START, &[json!(drip_path(secs, size))])?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs + 120);
    let result = loop {
        std::thread::sleep(Duration::from_secs(15));
        let state = page.execute("return window.__download", &[])?;
        eprintln!("{engine}: {} s, {} bytes", started.elapsed().as_secs(), state["bytes"]);
        if !state["result"].is_null() {
            break state["result"].clone();
        }
        if Instant::now() > deadline {
            bail!("{engine}: the download did not end within {} s: {state}", secs + 120);
        }
    };
    let mut bytes = vec![0u8; size as usize];
    blob_bytes(size, 0, &mut bytes);
    let whole = json!({ "status": 200, "length": size, "sha": crate::apps::sha256_hex(&bytes) });
    let got = json!({ "status": result["status"], "length": result["length"], "sha": result["sha"] });
    ensure!(got == whole, "{engine}: the {secs} s download ended with {result} instead of {whole}");
    let ms = result["ms"].as_f64().unwrap_or_default();
    ensure!(
        ms >= (secs * 900) as f64,
        "{engine}: the download took {ms} ms, not about {secs} s: the test proves nothing"
    );
    Ok(())
}
