//! The page's shell and remote desktop as the scenarios drive them, in any browser:
//! `hometun.ssh` sessions typed into and read, and the Remote desktop card's viewer waited on
//! until the desktop's own colour fills its canvas.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use serde_json::{json, Value};

use super::apps_page::wait;
use super::webdriver::Session;

/// How long a session's output or a desktop may take.
const WAIT: Duration = Duration::from_secs(30);

/// `hometun.ssh(options)`: `ok <host key>` (the session kept as `window.__ssh`, its output
/// collected in `window.__out`) or `error: <code>: <message>`.
pub fn ssh_open(page: &Session<'_>, options: Value) -> anyhow::Result<String> {
    let answer = page.execute_async(
        "const [options, done] = arguments;
         window.hometun.ssh(options).then((s) => {
           window.__ssh = s; window.__out = '';
           s.onData((text) => { window.__out += text; });
           done('ok ' + s.hostKey);
         }, (e) => done('error: ' + e.code + ': ' + e.message));",
        &[options],
    )?;
    answer.as_str().map(str::to_owned).context("hometun.ssh answered no text")
}

/// Writes `keys` to the session [`ssh_open`] kept and waits until its output contains
/// `expected`.
pub fn ssh_type_and_wait(page: &Session<'_>, keys: &str, expected: &str) -> anyhow::Result<()> {
    page.execute_async(
        "const [keys, done] = arguments; window.__ssh.write(keys).then(() => done(true), e => done(String(e)))",
        &[json!(keys)],
    )?;
    let seen =
        wait(page, expected, WAIT, &format!("return window.__out.includes({}) ? window.__out : null", json!(expected)));
    seen.with_context(|| {
        let out = page.execute("return window.__out", &[]).unwrap_or(Value::Null);
        format!("waiting for {expected:?}; output so far: {out}")
    })?;
    Ok(())
}

/// The RGB of the pixel at (x, y) of the canvas inside the element `css` (the desktop's own
/// pixels: noVNC's canvas is as large as the remote screen), or null while there is none.
const PIXEL: &str = "const [css, x, y] = arguments; \
    const c = document.querySelector(css + ' canvas'); \
    if (!c || c.width < x + 1 || c.height < y + 1) return null; \
    return Array.from(c.getContext('2d').getImageData(x, y, 1, 1).data.slice(0, 3));";

/// Waits until the canvas inside `css` shows `colour` at two points far apart (the whole
/// screen, not a corner).
pub fn vnc_wait_for_colour(page: &Session<'_>, css: &str, colour: [u8; 3]) -> anyhow::Result<()> {
    let want = json!(colour);
    let deadline = Instant::now() + WAIT;
    loop {
        let a = page.execute(PIXEL, &[json!(css), json!(10), json!(10)])?;
        let b = page.execute(PIXEL, &[json!(css), json!(600), json!(380)])?;
        if a == want && b == want {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "the canvas in {css} never showed {want} (last: {a} and {b})");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the Remote desktop card's viewer is connected and shows `colour`.
pub fn vnc_wait_connected(page: &Session<'_>, colour: [u8; 3]) -> anyhow::Result<()> {
    wait(
        page,
        "the desktop to connect",
        WAIT,
        "return document.getElementById('desktop-viewer').dataset.vncState === 'connected'",
    )?;
    vnc_wait_for_colour(page, "#desktop-viewer", colour)
}

/// Makes Chromium a phone, or a desktop again: a finger for the main pointer (the page's
/// `(pointer: coarse)`) and touch events from [`tap`].
pub fn phone(page: &Session<'_>, on: bool) -> anyhow::Result<()> {
    page.cdp("Emulation.setTouchEmulationEnabled", json!({"enabled": on, "maxTouchPoints": 5}))?;
    let coarse = page.execute("return matchMedia('(pointer: coarse)').matches", &[])?;
    ensure!(coarse == on, "the page's pointer is not {} after the emulation", if on { "a finger" } else { "a mouse" });
    Ok(())
}

/// A finger's tap in the middle of the element `css` (Chromium's input pipeline: touch events,
/// then the pointer events and click a tap makes), once that point shows the element and has
/// stayed put for 150 ms (a page still settling after a scroll is waited for, up to a few
/// seconds).
pub fn tap(page: &Session<'_>, css: &str) -> anyhow::Result<()> {
    let mut last = Value::Null;
    for _ in 0..20 {
        last = page.execute_async(
            "const [css, done] = arguments; const e = document.querySelector(css); if (!e) return done(null); \
             const seen = e.getBoundingClientRect(); \
             if (seen.top < 0 || seen.bottom > innerHeight || seen.left < 0 || seen.right > innerWidth) e.scrollIntoView({block: 'center'}); \
             const at = () => { const r = e.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; }; \
             requestAnimationFrame(() => { const [x0, y0] = at(); setTimeout(() => requestAnimationFrame(() => { \
               const [x, y] = at(); const there = document.elementFromPoint(x, y); \
               const still = x === x0 && y === y0; \
               done([x, y, still && Boolean(there && (there === e || e.contains(there))), there ? there.outerHTML.slice(0, 60) : null]); }), 150); });",
            &[json!(css)],
        )?;
        if let (Some(x), Some(y), Some(true)) = (last[0].as_f64(), last[1].as_f64(), last[2].as_bool()) {
            return tap_at(page, x, y);
        }
        // Covered (by the page's sticky bar, say): into the middle of the screen.
        page.execute(
            "const e = document.querySelector(arguments[0]); if (e) e.scrollIntoView({block: 'center'})",
            &[json!(css)],
        )?;
        std::thread::sleep(Duration::from_millis(50));
    }
    anyhow::bail!("{css} cannot be tapped: {last}")
}

/// A finger at (x, y) of the page, then lifted: a tap at a point.
pub fn tap_at(page: &Session<'_>, x: f64, y: f64) -> anyhow::Result<()> {
    page.cdp("Input.dispatchTouchEvent", json!({"type": "touchStart", "touchPoints": [{"x": x, "y": y}]}))?;
    page.cdp("Input.dispatchTouchEvent", json!({"type": "touchEnd", "touchPoints": []}))?;
    Ok(())
}

/// A finger put down at `from`, moved to `to` in ten steps, and lifted.
pub fn drag(page: &Session<'_>, from: (f64, f64), to: (f64, f64)) -> anyhow::Result<()> {
    page.cdp("Input.dispatchTouchEvent", json!({"type": "touchStart", "touchPoints": [{"x": from.0, "y": from.1}]}))?;
    for step in 1..=10 {
        let f = f64::from(step) / 10.0;
        let point = json!({"x": from.0 + (to.0 - from.0) * f, "y": from.1 + (to.1 - from.1) * f});
        page.cdp("Input.dispatchTouchEvent", json!({"type": "touchMove", "touchPoints": [point]}))?;
    }
    page.cdp("Input.dispatchTouchEvent", json!({"type": "touchEnd", "touchPoints": []}))?;
    Ok(())
}

/// Text from a phone's keyboard into the focused field (an input method's insertion: no key
/// events for the characters).
pub fn keyboard_text(page: &Session<'_>, text: &str) -> anyhow::Result<()> {
    page.cdp("Input.insertText", json!({ "text": text }))?;
    Ok(())
}

/// A word the phone's keyboard is composing (an input method's composition, not committed yet:
/// [`keyboard_text`] commits it).
pub fn composing(page: &Session<'_>, text: &str) -> anyhow::Result<()> {
    let end = text.chars().count();
    page.cdp("Input.imeSetComposition", json!({ "text": text, "selectionStart": end, "selectionEnd": end }))?;
    Ok(())
}

/// A key with a key event of its own (Enter, Backspace, ...) pressed and released.
pub fn key(page: &Session<'_>, key: &str, code: u32, text: &str) -> anyhow::Result<()> {
    for kind in ["keyDown", "keyUp"] {
        let mut event = json!({"type": kind, "key": key, "code": key, "windowsVirtualKeyCode": code});
        if kind == "keyDown" && !text.is_empty() {
            event["text"] = json!(text);
        }
        page.cdp("Input.dispatchKeyEvent", event)?;
    }
    Ok(())
}

/// A phone's screen, 390 by 844 CSS pixels as an iPhone's, with its keyboard down, or up: the
/// page then sees only the top 430 pixels (`visualViewport.height`), as a phone's keyboard leaves
/// it. `Emulation.clearDeviceMetricsOverride` gives the browser its own size back.
pub fn phone_screen(page: &Session<'_>, keyboard_up: bool) -> anyhow::Result<()> {
    let height = if keyboard_up { 430 } else { 844 };
    page.cdp(
        "Emulation.setDeviceMetricsOverride",
        json!({"width": 390, "height": height, "deviceScaleFactor": 2, "mobile": true}),
    )?;
    Ok(())
}

/// Waits until a `screen` (a terminal, a desktop) and the `row` of keys under it are where a
/// person sees and reaches them on what the page shows: the row wholly inside the visible part of
/// the page, the screen's top under the page's bar and at least 100 pixels of the screen above
/// the row. Says where they are if not.
pub fn fits_on_screen(page: &Session<'_>, screen: &str, row: &str) -> anyhow::Result<()> {
    let script = format!(
        "const s = document.querySelector({screen:?}).getBoundingClientRect(); \
         const r = document.querySelector({row:?}).getBoundingClientRect(); \
         const bar = document.querySelector('body > .bar').getBoundingClientRect(); \
         const v = window.visualViewport; const top = v.offsetTop, bottom = v.offsetTop + v.height; \
         const seen = {{screen: [s.top, s.bottom], row: [r.top, r.bottom], bar: bar.bottom, visible: [top, bottom], focus: document.activeElement.className, style: document.querySelector({screen:?}).style.cssText, scrollY}}; \
         window.__fit = seen; \
         return r.height > 0 && r.top >= top && r.bottom <= bottom && s.top >= Math.max(top, bar.bottom - 1) && s.bottom - s.top >= 100 ? seen : null"
    );
    wait(page, &format!("{screen} and {row} on what the page shows"), Duration::from_secs(5), &script)
        .with_context(|| format!("where they are: {}", page.execute("return window.__fit", &[]).unwrap_or_default()))?;
    Ok(())
}

/// What is wider than a phone's screen (390 CSS pixels, as an iPhone's) on the page: each
/// element whose right edge passes the screen's while the page is that narrow (`.keys` rows
/// scroll within themselves and are left out), and the page's own width.
pub fn wider_than_a_phone(page: &Session<'_>) -> anyhow::Result<Value> {
    phone_screen(page, false)?;
    let found = page.execute_async(
        "const done = arguments[0]; \
         requestAnimationFrame(() => requestAnimationFrame(() => { \
           const width = document.documentElement.clientWidth; \
           const wide = [...document.querySelectorAll('body *')].filter((e) => { \
             if (e.closest('.keys') || e.closest('[hidden]')) return false; \
             const r = e.getBoundingClientRect(); return r.width > 0 && r.right > width + 1; }) \
             .map((e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className && e.className.baseVal === undefined ? '.' + String(e.className).split(' ')[0] : '')); \
           done({ page: document.documentElement.scrollWidth, screen: width, wide: wide.slice(0, 12) }); \
         }));",
        &[],
    );
    page.cdp("Emulation.clearDeviceMetricsOverride", json!({}))?;
    found
}
