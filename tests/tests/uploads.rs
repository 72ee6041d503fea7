//! Uploads from a home web app the way upload pages make them: `XMLHttpRequest` for its progress
//! events, and forms with files (`FormData`). A large body (1 MiB or more; 64 KiB for XHR) to
//! the app's own origin goes over a port of the page's own, not through the app's service worker
//! (docs/web-apps.md, "Long downloads and uploads"): the lab host must get every byte, the form
//! must arrive as the browser itself encodes one, and the page must see the events, states and
//! answers the browser's own `XMLHttpRequest` gives. In Chromium (an app tab of its own),
//! Firefox and WebKit (the launcher's frame).
//!
//! Needs root and the page built (`bash scripts/build-page.sh`).

use std::net::SocketAddr;

use anyhow::{ensure, Context};
use hometun_tests::browser::apps_page::{self, open_app, wait, TrustedLab};
use hometun_tests::browser::engines::{in_the_launchers_frame, FrameEngine, LAN_PAGE, WAIT};
use hometun_tests::browser::webdriver::Session;
use hometun_tests::lab::{addr, Lab};
use serde_json::{json, Value};

/// Helpers every script below starts with: random bytes, their SHA-256, and an XHR whose events
/// are written down in order (`u-` for its `upload`), with consecutive repeats (progress) merged.
const HELPERS: &str = r#"
const random = (n) => {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, Math.min(n, i + 65536)));
  return b;
};
const hex = async (bytes) => [...new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))]
  .map((x) => x.toString(16).padStart(2, '0')).join('');
const watched = (method, path, setup) => {
  const r = new XMLHttpRequest();
  const log = [];
  const uploads = [];
  const note = (name) => { if (log[log.length - 1] !== name) log.push(name); };
  r.open(method, path);
  if (setup) setup(r);
  r.onreadystatechange = () => note('rs' + r.readyState);
  for (const t of ['loadstart', 'progress', 'load', 'loadend', 'error', 'abort', 'timeout']) {
    r.addEventListener(t, () => note(t));
    r.upload.addEventListener(t, (e) => { note('u-' + t); if (t === 'progress') uploads.push([e.loaded, e.total]); });
  }
  const ended = new Promise((resolve) => r.addEventListener('loadend', () => setTimeout(resolve, 0)));
  return { r, log, uploads, ended };
};
"#;

/// Sends `arguments[1]` random bytes with XHR (`POST /upload`); `arguments[2]` says whether the
/// resource timing of the request is looked for (the browser's own XHR leaves one, a port none).
const XHR_UPLOAD: &str = r#"
const done = arguments[arguments.length - 1];
(async () => {
  const bytes = random(arguments[0]);
  const sent = `${bytes.length} ${await hex(bytes)} length\n`;
  performance.clearResourceTimings();
  const { r, log, uploads, ended } = watched('POST', '/upload', (r) => r.setRequestHeader('X-Upload', 'yes'));
  r.send(new Blob([bytes]));
  const stateAfterSend = r.readyState;
  await ended;
  const timings = performance.getEntriesByType('resource').filter((e) => new URL(e.name).pathname === '/upload');
  return { status: r.status, statusText: r.statusText, text: r.responseText, response: r.response, sent,
    url: r.responseURL, type: r.getResponseHeader('Content-Type'), all: r.getAllResponseHeaders(),
    log, uploads, stateAfterSend, total: bytes.length, timings: timings.length };
})().then(done, (e) => done({ error: String(e) }));
"#;

/// Sends one form (two text fields, one with a quote in its name and bare line breaks in its
/// value, a file with a type and a quoted name, a Blob without either) with `fetch` and with XHR
/// (asking for JSON), each with files of `arguments[0]` and `arguments[1]` bytes, to
/// `/upload/form`; returns what the lab host parsed of each and what the page meant.
const FORMS: &str = r#"
const done = arguments[arguments.length - 1];
(async () => {
  const form = async (photoSize, rawSize) => {
    const photo = random(photoSize);
    const raw = random(rawSize);
    const f = new FormData();
    f.append('note', 'line one\nline two\rthree');
    f.append('a"b', 'ü');
    f.append('photo', new File([photo], 'snap "1".png', { type: 'image/png' }));
    f.append('raw', new Blob([raw]));
    return { f, meant: { photo: [photo.length, await hex(photo)], raw: [raw.length, await hex(raw)] } };
  };
  const out = {};
  for (const [name, photoSize, rawSize] of [['large', arguments[0], arguments[1]], ['small', 3000, 200]]) {
    const viaFetch = await form(photoSize, rawSize);
    const answer = await fetch('/upload/form', { method: 'POST', body: viaFetch.f });
    out[`${name}-fetch`] = { status: answer.status, fields: await answer.json(), meant: viaFetch.meant };
    const viaXhr = await form(photoSize, rawSize);
    const { r, ended } = watched('POST', '/upload/form', (r) => { r.responseType = 'json'; });
    r.send(viaXhr.f);
    await ended;
    out[`${name}-xhr`] = { status: r.status, fields: r.response, meant: viaXhr.meant };
  }
  return out;
})().then(done, (e) => done({ error: String(e) }));
"#;

/// Starts an upload of `arguments[0]` bytes to `/upload/slow` (which reads nothing for 3 s) and
/// ends it from the page: `abort()` after 300 ms, or a `timeout` of 300 ms. Upload progress
/// events are left out of the log (what the socket buffers took may show as some).
const CUT_SHORT: &str = r#"
const done = arguments[arguments.length - 1];
(async () => {
  const out = {};
  for (const how of ['abort', 'timeout']) {
    const { r, log, uploads, ended } = watched('POST', '/upload/slow', (r) => { if (how === 'timeout') r.timeout = 300; });
    r.send(new Blob([random(arguments[0])]));
    if (how === 'abort') setTimeout(() => r.abort(), 300);
    await ended;
    out[how] = { log: log.filter((e) => e !== 'u-progress'), uploaded: uploads.map(([loaded]) => loaded),
      size: arguments[0], state: r.readyState, status: r.status, text: r.responseText };
  }
  return out;
})().then(done, (e) => done({ error: String(e) }));
"#;

/// An upload page in an app tab on the lab host, in Chromium: see [`upload_as_upload_pages_do`].
#[test]
fn an_upload_pages_large_xhr_and_form_uploads_arrive_as_sent_with_the_browsers_events_in_chromium() {
    let lab = Lab::start().expect("lab");
    let trusted = TrustedLab::start(&lab).expect("trusted relay");
    let lan = SocketAddr::from((addr::HOST10, 80));
    trusted.trust_app(lan).expect("the app name's certificate");
    let page = trusted.browser().expect("Chromium");
    let launcher = trusted.connect(&page, "uploads-laptop").expect("the launcher");
    open_app(&page, &launcher, &format!("http://{lan}/")).expect("an app tab");
    wait(&page, "the LAN host's page in its tab", WAIT, LAN_PAGE).expect("the app");
    if let Err(e) = upload_as_upload_pages_do(&page) {
        let shot = apps_page::screenshot(&page, "uploads-chromium");
        panic!("{e:#}\n{}\nscreenshot: {shot:?}", apps_page::describe(&page));
    }
}

/// The same in the launcher's frame in Firefox.
#[test]
fn an_upload_pages_large_xhr_and_form_uploads_arrive_as_sent_with_the_browsers_events_in_firefox() {
    in_the_launchers_frame(FrameEngine::Firefox, "uploads", upload_as_upload_pages_do);
}

/// The same in the launcher's frame in WebKit.
#[test]
fn an_upload_pages_large_xhr_and_form_uploads_arrive_as_sent_with_the_browsers_events_in_webkit() {
    in_the_launchers_frame(FrameEngine::WebKit, "uploads", upload_as_upload_pages_do);
}

/// The app on the session's current page sends a 3 MiB file with `XMLHttpRequest`: the host
/// gets every byte; the page sees the upload's progress up to the whole size, the answer, its
/// headers and the events in the standard's order (as the browser's own XHR gives them for a
/// body under 64 KiB, which goes through the worker, with upload events besides), and the request
/// left no resource timing (it took the port, not the browser's network stack). Forms with a
/// 2 MiB file, by `fetch` and by XHR, arrive as the browser itself encodes a small one. An
/// upload the page aborts, or that times out, ends with the events the standard gives. Last, a
/// router's firmware form with a 24 MiB file, posted natively, reaches the host with a
/// `Content-Length` (Chromium streamed such a form chunked, which router firmware refuses).
fn upload_as_upload_pages_do(page: &Session<'_>) -> anyhow::Result<()> {
    step("an XHR upload of 3 MiB", || {
        let small = run(page, XHR_UPLOAD, &[json!(30_000)])?;
        let large = run(page, XHR_UPLOAD, &[json!((3 << 20) + 12_345)])?;
        for got in [&small, &large] {
            ensure!(got["status"] == 200 && got["statusText"] == "OK", "the answer: {got}");
            ensure!(
                got["text"] == got["sent"] && got["response"] == got["sent"],
                "the host did not get what was sent: {got}"
            );
            ensure!(got["type"] == "text/plain", "Content-Type: {got}");
            let all = got["all"].as_str().unwrap_or_default();
            ensure!(all.contains("content-type: text/plain\r\n") && all.ends_with("\r\n"), "all headers: {all:?}");
            ensure!(got["url"].as_str().is_some_and(|u| u.ends_with("/upload")), "responseURL: {got}");
            ensure!(got["stateAfterSend"] == 1, "readyState after send(): {got}");
        }
        let uploads = large["uploads"].as_array().cloned().unwrap_or_default();
        ensure!(
            uploads.last() == Some(&json!([large["total"], large["total"]])),
            "the last upload progress is not the whole body: {large}"
        );
        // The standard's order. Chromium's own XHR through the worker fires no upload events at
        // all (it does not report an upload the worker takes); the rest must be the same.
        let standard = [
            "loadstart",
            "u-loadstart",
            "u-progress",
            "u-load",
            "u-loadend",
            "rs2",
            "rs3",
            "progress",
            "rs4",
            "load",
            "loadend",
        ];
        ensure!(large["log"] == json!(standard), "events for 3 MiB {} instead of {standard:?}", large["log"]);
        let without_upload = |log: &Value| -> Vec<Value> {
            log.as_array()
                .into_iter()
                .flatten()
                .filter(|e| !e.as_str().unwrap_or_default().starts_with("u-"))
                .cloned()
                .collect()
        };
        ensure!(
            without_upload(&large["log"]) == without_upload(&small["log"]),
            "events for 3 MiB {} differ from the browser's own {}",
            large["log"],
            small["log"]
        );
        let uploads = large["uploads"].as_array().map_or(0, Vec::len);
        ensure!(uploads >= 2, "3 MiB gave {uploads} upload progress events");
        ensure!(small["timings"] == 1, "the browser's own XHR left no resource timing: {small}");
        ensure!(large["timings"] == 0, "3 MiB went through the browser's network stack, not a port: {large}");
        Ok(())
    })?;

    // A device that refuses a large body at once and resets the connection unread: the page
    // sees its refusal. A `Request` with its own body goes through the worker (held whole
    // in Firefox and WebKit, streamed in Chromium).
    step("an 8 MiB upload refused at once", || {
        let got = page.execute_async(
            "const done = arguments[0]; \
             fetch(new Request('/upload/refused', { method: 'PUT', body: new Uint8Array(8 << 20) })) \
               .then(async (r) => done({ status: r.status, text: await r.text() }), (e) => done({ error: String(e) }));",
            &[],
        )?;
        ensure!(
            got["status"] == 413 && got["text"] == "too large for this device\n",
            "an 8 MiB upload the device refused at once: {got}"
        );
        Ok(())
    })?;

    step("forms with a 2 MiB file", || {
        let got = run(page, FORMS, &[json!(2 << 20), json!(300_000)])?;
        for case in ["large-fetch", "large-xhr", "small-fetch", "small-xhr"] {
            let c = &got[case];
            ensure!(c["status"] == 200, "{case}: {c}");
            let fields = c["fields"].as_array().cloned().unwrap_or_default();
            let shape: Vec<Value> =
                fields.iter().map(|f| json!([f["name"], f["filename"], f["type"], f["text"]])).collect();
            let expected = [
                json!(["note", null, null, "line one\r\nline two\r\nthree"]),
                json!(["a%22b", null, null, "ü"]),
                json!(["photo", "snap %221%22.png", "image/png", null]),
                json!(["raw", "blob", "application/octet-stream", null]),
            ];
            ensure!(shape == expected, "{case}: the host parsed {shape:?}, not {expected:?}");
            for (field, name) in [(&fields[2], "photo"), (&fields[3], "raw")] {
                let got = json!([field["length"], field["sha256"]]);
                ensure!(got == c["meant"][name], "{case}: {name} arrived as {got}, not {}", c["meant"][name]);
            }
        }
        Ok(())
    })?;

    step("an upload aborted and one timed out", || {
        let got = run(page, CUT_SHORT, &[json!(4 << 20)])?;
        for how in ["abort", "timeout"] {
            let expected = json!(["loadstart", "u-loadstart", "rs4", format!("u-{how}"), "u-loadend", how, "loadend"]);
            ensure!(got[how]["log"] == expected, "{how}: events {} instead of {expected}", got[how]["log"]);
            ensure!(got[how]["status"] == 0 && got[how]["text"] == "", "{how}: an answer after all: {}", got[how]);
            // What the socket buffers took may show as progress, never the whole body.
            let whole = got[how]["uploaded"].as_array().into_iter().flatten().any(|n| *n == got[how]["size"]);
            ensure!(!whole, "{how}: the whole body counted as uploaded: {}", got[how]);
        }
        ensure!(got["abort"]["state"] == 0, "readyState after abort(): {}", got["abort"]);
        ensure!(got["timeout"]["state"] == 4, "readyState after a timeout: {}", got["timeout"]);
        Ok(())
    })?;
    step("requests the page gave up on hold no connection to the app", || {
        let got = run(page, GIVEN_UP, &[])?;
        // WebKit may end an aborted fetch the worker answered meanwhile as a network error.
        let ended: Vec<&str> = got["aborted"].as_array().into_iter().flatten().filter_map(|e| e.as_str()).collect();
        let fetches_aborted = ended.iter().step_by(2).all(|e| matches!(*e, "AbortError" | "TypeError"));
        let xhrs_timed_out = ended.iter().skip(1).step_by(2).all(|e| *e == "timeout");
        ensure!(
            ended.len() == 12 && fetches_aborted && xhrs_timed_out,
            "the requests the page gave up on ended with {}",
            got["aborted"]
        );
        ensure!(
            got["status"] == 200 && got["ms"].as_f64().is_some_and(|ms| ms < 5000.0),
            "a request after twelve the page gave up on (the app answers them in a minute): {got}"
        );
        Ok(())
    })?;
    step("a router's firmware form with a 24 MiB file", || {
        // Last: the form's answer replaces the page.
        page.execute(FIRMWARE_FORM, &[json!(FIRMWARE)])?;
        let shown = wait(page, "the host's answer to the form", WAIT, "const t = document.body && document.body.innerText.trim(); return /^\\d+ [0-9a-f]{64} \\w+$/.test(t) ? t : null")?;
        let shown = shown.as_str().unwrap_or_default();
        let words: Vec<&str> = shown.split(' ').collect();
        let (length, sha, framing) = (words[0], words[1], words[2]);
        ensure!(length.parse::<usize>().is_ok_and(|n| n > FIRMWARE), "the host received {length} bytes: {shown}");
        let meant = page.execute("return sessionStorage.getItem('firmware-sha256')", &[])?;
        ensure!(meant == sha, "the firmware arrived with other bytes: SHA-256 {sha}, the page sent {meant}");
        ensure!(
            framing == "length",
            "the form arrived {framing}, without a Content-Length (a router's server refuses it): {shown}"
        );
        Ok(())
    })?;
    Ok(())
}

/// Requests for an answer the host gives in a minute, each kind as many as the six connections a
/// page has to one app: six fetches aborted after 300 ms, six XHRs with a timeout of 300 ms; then
/// one more fetch: its status and how long it took (`ms`), and how the twelve ended.
const GIVEN_UP: &str = r#"
const done = arguments[arguments.length - 1];
(async () => {
  const aborted = [];
  for (let i = 0; i < 6; i += 1) {
    const c = new AbortController();
    aborted.push(fetch(`/later/5999${i}`, { signal: c.signal, cache: 'no-store' }).then(() => 'answered', (e) => e.name));
    setTimeout(() => c.abort(), 300);
    aborted.push(new Promise((resolve) => {
      const r = new XMLHttpRequest();
      r.open('GET', `/later/5998${i}`);
      r.timeout = 300;
      r.ontimeout = () => resolve('timeout');
      r.onload = () => resolve('answered');
      r.onerror = () => resolve('error');
      r.send();
    }));
  }
  const ended = await Promise.all(aborted);
  const t0 = performance.now();
  const r = await fetch('/whoami', { cache: 'no-store' });
  await r.text();
  return { aborted: ended, status: r.status, ms: performance.now() - t0 };
})().then(done, (e) => done({ error: String(e) }));
"#;

/// A firmware image: more than the 16 MiB a fetch's body may have before the worker streams it.
const FIRMWARE: usize = 24 << 20;

/// Submits a `multipart/form-data` form with `arguments[0]` random bytes as its file to
/// `/upload/firmware`, natively (`form.submit()`), as router pages take a firmware image; the
/// file's SHA-256 is kept in `sessionStorage` (`firmware-sha256`) for after the answer.
const FIRMWARE_FORM: &str = r#"
const form = document.createElement('form');
form.method = 'post';
form.enctype = 'multipart/form-data';
form.action = '/upload/firmware';
const input = document.createElement('input');
input.type = 'file';
input.name = 'firmware';
const bytes = new Uint8Array(arguments[0]);
for (let i = 0; i < bytes.length; i += 65536) crypto.getRandomValues(bytes.subarray(i, Math.min(bytes.length, i + 65536)));
const files = new DataTransfer();
files.items.add(new File([bytes], 'firmware.trx', { type: 'application/octet-stream' }));
input.files = files.files;
form.append(input);
document.body.append(form);
crypto.subtle.digest('SHA-256', bytes).then((digest) => {
  sessionStorage.setItem('firmware-sha256', [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join(''));
  form.submit();
});
return 1;
"#;

/// Runs `script` (after [`HELPERS`]) in the page; fails with the page's error if it threw.
fn run(page: &Session<'_>, script: &str, args: &[Value]) -> anyhow::Result<Value> {
    let got = page.execute_async(&format!("{HELPERS}{script}"), args)?;
    ensure!(got.get("error").is_none(), "the page: {}", got["error"]);
    Ok(got)
}

/// Runs one part of the scenario; a failure says which.
fn step(name: &str, f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<()> {
    f().with_context(|| name.to_owned())
}
