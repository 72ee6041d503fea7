//! A remote desktop in the page: real VNC servers (TigerVNC's Xvnc) on a lab LAN host, one open
//! and one with a VNC password, each painting its screen one known colour; headless Chromium on
//! the internet side opens them through the tunnel with noVNC (no websockify: RFB runs over the
//! tunnel's own TCP). A person sees the desktop's colour on the page's canvas, types a key that
//! the desktop receives, copies text both ways, types and clicks from a phone, logs in with the password (a wrong one is refused in plain words), gets
//! a clear message for a port the relay does not let the device reach, and is told when the
//! desktop goes away (and the page closes its end of the connection). Two quick calls on one
//! element show the later desktop and close the earlier one's connection; input that cannot be
//! a desktop leaves the desktop shown alone. A hostile desktop whose picture would unpack to
//! 100 MB is refused with a message, and the launcher carries on.
//!
//! Needs root, the page built (`bash scripts/build-page.sh`) and Debian's
//! tigervnc-standalone-server, tigervnc-tools, x11-xserver-utils, x11-utils and xclip
//! (scripts/install.sh).

use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use hometun_tests::apps::vnc::{RfbBomb, VncServer};
use hometun_tests::browser::apps_page::{self, screenshot, wait};
use hometun_tests::browser::webdriver::{Chromedriver, Session};
use hometun_tests::browser::{self, chromium_args, remote};
use hometun_tests::lab::{addr, Lab, Node};
use hometun_tests::relay::{Relay, RelayOptions};
use serde_json::{json, Value};

const GREEN: [u8; 3] = [0x12, 0xa3, 0x5b];
const BLUE: [u8; 3] = [0x1f, 0x4e, 0xc8];
const PASSWORD: &str = "s3same!";
const WAIT: Duration = Duration::from_secs(20);

/// How soon a connection the page is done with must be gone (or closing) at the LAN host.
const GONE_WAIT: Duration = Duration::from_secs(5);

/// The TCP connections of LAN host 192.168.0.10 from its port `port` in `state` (as `ss` names
/// states: `established`, `fin-wait-2`, ...), one line each.
fn sockets(lab: &Lab, port: u16, state: &str) -> Vec<String> {
    lab.tcp_sockets(Node::Host10, state, &format!("sport = :{port}")).expect("ss")
}

/// Calls `hometun.vnc` on a fresh element `#id` with `options`; returns `{ok, state, code,
/// message, ms}` once it settles.
fn open_by_api(page: &Session<'_>, id: &str, options: Value) -> anyhow::Result<Value> {
    page.execute_async(
        "const [id, options, done] = arguments; \
         const old = document.getElementById(id); if (old) old.remove(); \
         const el = document.createElement('div'); el.id = id; el.style.width = '700px'; \
         document.querySelector('main').append(el); \
         const started = performance.now(); \
         window.hometun.vnc(el, options).then( \
           (s) => { window[id] = s; done({ ok: true, state: el.dataset.vncState, name: s.desktopName, ms: performance.now() - started }); }, \
           (e) => done({ ok: false, state: el.dataset.vncState, code: e.code, message: e.message, \
                         shown: el.innerText, ms: performance.now() - started }));",
        &[json!(id), options],
    )
}

#[test]
fn a_desktop_at_home_shows_in_the_page_takes_keys_and_asks_for_its_password() {
    let started = Instant::now();
    assert!(
        browser::page_dist().join("vnc/viewer.js").exists(),
        "the page is not built: run `bash scripts/build-page.sh`"
    );
    let lab = Lab::start().expect("lab");
    let mut open = VncServer::start(&lab, Node::Host10, (addr::HOST10, 5900).into(), "lab-desktop", None, GREEN)
        .expect("open VNC server");
    let locked =
        VncServer::start(&lab, Node::Host10, (addr::HOST10, 5901).into(), "locked-desktop", Some(PASSWORD), BLUE)
            .expect("VNC server with a password");
    let relay =
        Relay::start(&lab, RelayOptions { www: Some(browser::page_dist()), ..RelayOptions::default() }).expect("relay");
    // The device may reach the desktops and the LAN's DNS server, nothing else.
    let allow = "192.168.0.10/32:5900-5901/tcp,192.168.0.10/32:5903/tcp,192.168.0.1/32:53/udp";
    let link = relay.invite("desk", "1h", Some(allow)).expect("invite").to_link();
    let spki = browser::relay_spki(relay.dir()).expect("relay certificate pin");
    let driver = Chromedriver::start(&lab, Node::Wan).expect("chromedriver");
    let page = driver.session(&chromium_args(&spki), 1100, 900).expect("Chromium");
    eprintln!("vnc: lab, desktops, relay and browser up after {:.1?}", started.elapsed());

    step(&page, "connect", || {
        page.goto(&link)?;
        let state = wait(
            &page,
            "the page to connect",
            WAIT,
            "const s = document.body.dataset.state; return s === 'connected' || s === 'failed' ? s : null",
        )?;
        ensure!(state == "connected", "page state {state}");
        Ok(())
    });

    // The launcher: type the address, open; the desktop's colour fills the canvas.
    step(&page, "picture", || {
        let before =
            page.execute("return performance.getEntriesByType('resource').some(e => e.name.includes('/vnc/'))", &[])?;
        ensure!(before == false, "the viewer was loaded before any desktop was opened");
        page.execute(
            "document.getElementById('desktop-host').value = arguments[0]; \
             document.getElementById('desktop-open').click();",
            &[json!(addr::HOST10.to_string())],
        )?;
        remote::vnc_wait_connected(&page, GREEN)?;
        let title = page.execute("return document.querySelector('#desktop-viewer .vnc-title').textContent", &[])?;
        ensure!(title.as_str().is_some_and(|t| t.contains("lab-desktop")), "the viewer's title is {title}");
        Ok(())
    });

    // Keys typed on the page (real key events from the browser's input pipeline, into the
    // focused canvas) reach the desktop, which xev shows.
    step(&page, "typing", || {
        page.execute("document.querySelector('#desktop-viewer canvas').focus()", &[])?;
        for (key, code, vk) in [("q", "KeyQ", 81), ("7", "Digit7", 55), ("Enter", "Enter", 13)] {
            let text = if key.len() == 1 { key } else { "\r" };
            for kind in ["keyDown", "keyUp"] {
                let mut event = json!({"type": kind, "key": key, "code": code, "windowsVirtualKeyCode": vk});
                if kind == "keyDown" {
                    event["text"] = json!(text);
                }
                page.cdp("Input.dispatchKeyEvent", event)?;
            }
        }
        let want = ["q", "7", "Return"];
        hometun_tests::lab::wait_until(Duration::from_secs(5), || (open.key_presses() == want).then_some(()))
            .with_context(|| format!("the desktop got {:?}, not {want:?}", open.key_presses()))?;
        Ok(())
    });

    // The clipboard both ways: text sent from the viewer's clipboard box lands on the desktop's
    // clipboard; text copied on the desktop shows up in the box.
    step(&page, "clipboard", || {
        page.execute(
            "document.querySelector('#desktop-viewer .vnc-clipboard-button').click(); \
             document.querySelector('#desktop-viewer .vnc-clipboard-text').value = arguments[0]; \
             document.querySelector('#desktop-viewer .vnc-clipboard-send').click();",
            &[json!("from the page ✓")],
        )?;
        let mut last = String::new();
        hometun_tests::lab::wait_until(Duration::from_secs(5), || {
            last = open.clipboard().unwrap_or_else(|e| format!("{e:#}"));
            (last == "from the page ✓").then_some(())
        })
        .with_context(|| format!("the desktop's clipboard has {last:?}"))?;
        open.copy("from the desktop ✓")?;
        wait(
            &page,
            "the desktop's clipboard in the viewer",
            Duration::from_secs(5),
            "return document.querySelector('#desktop-viewer .vnc-clipboard-text').value === 'from the desktop ✓'",
        )?;
        Ok(())
    });

    // A phone: a finger for a pointer and no keyboard of its own until a text field has the
    // focus. The viewer's Keyboard button (shown only to a finger) brings the phone's keyboard
    // up; what it types reaches the desktop as keys (its Backspace deletes without a key
    // event, as Android's does; a word it composes goes as it grows and its correction replaces
    // it; the cursor moved back moves the desktop's), and so do the row's Esc and a latched Ctrl
    // with the next letter. A view-only desktop offers none of this. At 1:1 a finger's drag moves
    // the view over a desktop larger than the phone's screen. A tap on the desktop is a click there, and the keyboard stays up. The page fits
    // the phone's width.
    step(&page, "a phone", || {
        let viewer = "#desktop-viewer";
        let displayed = format!(
            "return ['.vnc-keyboard', '.keys'].map((s) => getComputedStyle(document.querySelector('{viewer} ' + s)).display !== 'none')"
        );
        let shown = page.execute(&displayed, &[])?;
        ensure!(shown == json!([false, false]), "a mouse's page shows the phone's keys: {shown}");
        remote::phone(&page, true)?;
        remote::phone_screen(&page, false)?;
        let shown = page.execute(&displayed, &[])?;
        ensure!(shown == json!([true, true]), "a phone's page hides its keys: {shown}");
        let before = open.key_presses().len();
        let clicks_before = open.clicks().len();
        remote::tap(&page, &format!("{viewer} .vnc-keyboard"))?;
        let focused =
            format!("return document.activeElement === document.querySelector('{viewer} .vnc-keyboard-input')");
        let focus = "return document.activeElement.outerHTML.slice(0, 120)";
        // The tap's click comes a moment after the finger is lifted (later on a busy machine).
        wait(&page, "the Keyboard button's field to have the focus", Duration::from_secs(5), &focused).with_context(
            || format!("the Keyboard button left the focus on {}", page.execute(focus, &[]).unwrap_or_default()),
        )?;
        // The keyboard up: the desktop and the row fit above it, and are used there.
        remote::phone_screen(&page, true)?;
        remote::fits_on_screen(&page, &format!("{viewer} .vnc-screen"), &format!("{viewer} .vnc-keys"))?;
        let height = format!("return document.querySelector('{viewer} .vnc-screen').getBoundingClientRect().height");
        let above_keyboard = page.execute(&height, &[])?.as_f64().unwrap_or_default();
        remote::keyboard_text(&page, "hi")?;
        page.execute("document.execCommand('delete')", &[])?;
        remote::key(&page, "Enter", 13, "\r")?;
        remote::tap(&page, &format!("{viewer} canvas"))?;
        ensure!(
            page.execute(&focused, &[])? == true,
            "a tap on the desktop moved the focus to {}",
            page.execute(focus, &[])?
        );
        remote::tap(&page, &format!("{viewer} .keys [data-key=Escape]"))?;
        remote::tap(&page, &format!("{viewer} .keys [data-key=Control]"))?;
        let latched = page
            .execute(&format!("return document.querySelector('{viewer} .keys [data-key=Control]').ariaPressed"), &[])?;
        ensure!(latched == "true", "Ctrl does not show latched: {latched}");
        remote::keyboard_text(&page, "c")?;
        // A word the keyboard composes goes as it is typed, and its correction replaces it.
        remote::composing(&page, "w")?;
        remote::composing(&page, "wr")?;
        remote::keyboard_text(&page, "word")?;
        // A swipe on the space bar moves the field's cursor two characters back.
        page.execute(
            &format!("const f = document.querySelector('{viewer} .vnc-keyboard-input'); f.setSelectionRange(f.value.length - 2, f.value.length - 2)"),
            &[],
        )?;
        let want = [
            "h",
            "i",
            "BackSpace",
            "Return",
            "Escape",
            "Control_L",
            "c",
            "w",
            "r",
            "BackSpace",
            "o",
            "r",
            "d",
            "Left",
            "Left",
        ];
        let mut got = Vec::new();
        hometun_tests::lab::wait_until(Duration::from_secs(5), || {
            got = open.key_presses().split_off(before);
            (got == want).then_some(())
        })
        .with_context(|| format!("the desktop got {got:?} from the phone, not {want:?}"))?;
        let buttons: Vec<u32> = open.clicks().split_off(clicks_before).iter().map(|c| c.0).collect();
        ensure!(buttons == [1], "the desktop saw buttons {buttons:?} for one tap");
        let released = page
            .execute(&format!("return document.querySelector('{viewer} .keys [data-key=Control]').ariaPressed"), &[])?;
        ensure!(released == "false", "Ctrl stays latched after its key: {released}");
        // View only: nothing typed would reach the desktop, so nothing is offered.
        let session = "document.getElementById('desktop-viewer').hometunVncSession";
        page.execute(&format!("{session}.setViewOnly(true)"), &[])?;
        let shown = page.execute(&displayed, &[])?;
        ensure!(shown == json!([false, false]), "a view-only desktop offers the phone's keys: {shown}");
        page.execute(&format!("{session}.setViewOnly(false)"), &[])?;
        // The keyboard down: the desktop has its height back.
        remote::phone_screen(&page, false)?;
        // Its usual height is the style sheet's, three quarters of the screen.
        let usual = format!(
            "const h = (() => {{ {height} }})(); return Math.abs(h - Math.min(0.75 * innerHeight, 900)) < 2 ? h : null"
        );
        wait(&page, "the desktop's usual height back without the keyboard", Duration::from_secs(5), &usual)
            .with_context(|| {
                format!(
                    "{above_keyboard} pixels tall above the keyboard, now {}",
                    page.execute(&height, &[]).unwrap_or_default()
                )
            })?;
        // On a phone's screen the desktop is shrunk to fit; 1:1 shows it as it is, and a finger's
        // drag moves the view: the same tap after a drag 200 pixels left clicks 200 pixels further
        // right on the desktop, and the drag itself clicks nothing (on the phone's screen, as
        // since the step began).
        let actual = (|| -> anyhow::Result<Vec<(u32, i32, i32)>> {
            remote::tap(&page, &format!("{viewer} .vnc-zoom"))?;
            let pressed =
                page.execute(&format!("return document.querySelector('{viewer} .vnc-zoom').ariaPressed"), &[])?;
            ensure!(pressed == "true", "1:1 does not show pressed: {pressed}");
            let corner = page.execute(
                &format!(
                    "const c = document.querySelector('{viewer} canvas'); c.scrollIntoView({{block: 'center'}}); \
                          const r = c.getBoundingClientRect(); return [r.left, r.top, r.width, innerHeight]"
                ),
                &[],
            )?;
            let (left, top, width) = (
                corner[0].as_f64().unwrap_or(0.0),
                corner[1].as_f64().unwrap_or(0.0),
                corner[2].as_f64().unwrap_or(0.0),
            );
            ensure!(width > 250.0 && width < 400.0, "the 1:1 view is {width} pixels wide on a phone: {corner}");
            let before = open.clicks().len();
            remote::tap_at(&page, left + 40.0, top + 40.0)?;
            remote::drag(&page, (left + 240.0, top + 120.0), (left + 40.0, top + 120.0))?;
            remote::tap_at(&page, left + 40.0, top + 40.0)?;
            let mut clicks = Vec::new();
            let _ = hometun_tests::lab::wait_until(Duration::from_secs(5), || {
                clicks = open.clicks().split_off(before);
                (clicks.len() >= 2).then_some(())
            });
            remote::tap(&page, &format!("{viewer} .vnc-zoom"))?;
            Ok(clicks)
        })();
        page.cdp("Emulation.clearDeviceMetricsOverride", json!({}))?;
        let clicks = actual?;
        ensure!(
            clicks.len() == 2
                && clicks[0].0 == 1
                && clicks[1].0 == 1
                && (clicks[1].1 - clicks[0].1 - 200).abs() <= 2
                && clicks[1].2 == clicks[0].2,
            "a tap, a drag 200 pixels left and the same tap at 1:1 clicked the desktop at {clicks:?}"
        );
        // And the page, with the desktop open, fits a phone's screen: nothing to scroll sideways.
        let wide = remote::wider_than_a_phone(&page)?;
        ensure!(wide["page"] == wide["screen"] && wide["wide"] == json!([]), "wider than a phone: {wide}");
        remote::phone(&page, false)?;
        Ok(())
    });

    // VNC password auth: a wrong password is refused in plain words, the right one logs in.
    step(&page, "password", || {
        let target = json!({"host": addr::HOST10.to_string(), "port": 5901, "password": "wrong"});
        let wrong = open_by_api(&page, "vnc-wrong", target)?;
        ensure!(wrong["ok"] == false && wrong["code"] == "vnc-auth-failed", "a wrong password gave {wrong}");
        ensure!(wrong["state"] == "error", "the viewer's state after a wrong password: {wrong}");
        let shown = page.execute("return document.getElementById('vnc-wrong').innerText", &[])?;
        ensure!(
            shown.as_str().is_some_and(|t| t.contains("refused the login")),
            "the viewer says {shown} after a wrong password"
        );
        let right = open_by_api(
            &page,
            "vnc-right",
            json!({"host": addr::HOST10.to_string(), "port": 5901, "password": PASSWORD}),
        )?;
        ensure!(right["ok"] == true && right["state"] == "connected", "the right password gave {right}");
        ensure!(right["name"] == "locked-desktop", "connected to {right}");
        remote::vnc_wait_for_colour(&page, "#vnc-right", BLUE)?;
        // The API's own keys, typed into the locked desktop now; in view-only mode none is sent
        // (`y` never arrives, though `z` after it does).
        page.execute(
            "const s = window['vnc-right']; s.sendKey(0x78, 'KeyX'); s.setViewOnly(true); s.sendKey(0x79, 'KeyY'); \
             s.setViewOnly(false); s.sendKey(0x7a, 'KeyZ'); return true",
            &[],
        )?;
        hometun_tests::lab::wait_until(Duration::from_secs(5), || (locked.key_presses() == ["x", "z"]).then_some(()))
            .with_context(|| format!("the locked desktop got {:?}", locked.key_presses()))?;
        page.execute_async("const done = arguments[0]; window['vnc-right'].disconnect().then(done)", &[])?;
        Ok(())
    });

    // The password prompt: opened without one, the viewer asks; typing it logs in. The desktop
    // shown in the launcher before is closed first (one session per viewer).
    step(&page, "password prompt", || {
        page.execute(
            "window.firstEnded = null; \
             document.getElementById('desktop-viewer').hometunVncSession.closed.then((m) => { window.firstEnded = m; })",
            &[],
        )?;
        page.execute(
            "document.getElementById('desktop-host').value = arguments[0]; \
             document.getElementById('desktop-port').value = '5901'; \
             document.getElementById('desktop-open').click();",
            &[json!(addr::HOST10.to_string())],
        )?;
        wait(
            &page,
            "the password prompt",
            WAIT,
            "const f = document.querySelector('#desktop-viewer .vnc-login'); return f && !f.hidden",
        )?;
        page.execute(
            "document.querySelector('#desktop-viewer .vnc-password').value = arguments[0]; \
             document.querySelector('#desktop-viewer .vnc-login button[type=submit]').click();",
            &[json!(PASSWORD)],
        )?;
        remote::vnc_wait_connected(&page, BLUE)?;
        screenshot(&page, "vnc-desktop");
        let ended = wait(&page, "the first desktop to end", WAIT, "return window.firstEnded")?;
        ensure!(ended == "Disconnected.", "the first desktop ended with {ended}");
        Ok(())
    });

    // Two calls on one element in quick succession: the later desktop shows, the earlier call is
    // told it was replaced and its connection is closed (none is left to port 5900, where no
    // desktop is open now). Once with the second call at once (the first gives up before
    // connecting), once a turn of the event loop later (the first is connecting by then, and
    // resets its connection).
    step(&page, "two calls on one element", || {
        for (round, gap) in [(0, Value::Null), (1, json!(0))] {
            let both = page.execute_async(
                "const [id, host, password, gap, done] = arguments; \
                 const el = document.createElement('div'); el.id = id; el.style.width = '700px'; \
                 document.querySelector('main').append(el); \
                 const settled = (p) => p.then((s) => ({ ok: true, name: s.desktopName }), \
                                               (e) => ({ ok: false, code: e.code, message: e.message })); \
                 const first = settled(window.hometun.vnc(el, { host, port: 5900 })); \
                 const second = () => { \
                   const state = el.dataset.vncState || 'not started'; \
                   const call = window.hometun.vnc(el, { host, port: 5901, password }); \
                   call.then((s) => { window[id] = s; }, () => {}); \
                   Promise.all([first, settled(call), state]).then(done); \
                 }; \
                 if (gap === null) second(); else setTimeout(second, gap);",
                &[json!(format!("vnc-twice-{round}")), json!(addr::HOST10.to_string()), json!(PASSWORD), gap],
            )?;
            ensure!(
                both[1]["ok"] == true && both[1]["name"] == "locked-desktop",
                "round {round}: the second call gave {}",
                both[1]
            );
            ensure!(
                both[0]["ok"] == false && both[0]["code"] == "vnc-replaced",
                "round {round}: the first call gave {}",
                both[0]
            );
            remote::vnc_wait_for_colour(&page, &format!("#vnc-twice-{round}"), BLUE)?;
            hometun_tests::lab::wait_until(GONE_WAIT, || sockets(&lab, 5900, "established").is_empty().then_some(()))
                .with_context(|| {
                format!(
                    "round {round}: the replaced call's connection is open: {:?}",
                    sockets(&lab, 5900, "established")
                )
            })?;
            eprintln!("vnc: two calls, round {round} (the first was {} when the second came)", both[2]);
            page.execute_async(
                "const [id, done] = arguments; window[id].disconnect().then(done)",
                &[json!(format!("vnc-twice-{round}"))],
            )?;
        }
        Ok(())
    });

    // Input that cannot be a desktop (a port that is not one, no host, a host the access list
    // lacks) on an element showing one: refused, and the desktop shown goes on.
    step(&page, "bad input keeps the desktop", || {
        let shown = open_by_api(
            &page,
            "vnc-kept",
            json!({"host": addr::HOST10.to_string(), "port": 5901, "password": PASSWORD}),
        )?;
        ensure!(shown["ok"] == true, "the desktop to keep: {shown}");
        let refused = page.execute_async(
            "const [host, done] = arguments; const el = document.getElementById('vnc-kept'); \
             const attempt = (options) => window.hometun.vnc(el, options).then(() => 'opened', (e) => e.code); \
             (async () => [await attempt({ host, port: 70000 }), await attempt({ host: '' }), \
                           await attempt({ host: '192.168.0.20' }), el.dataset.vncState, \
                           el.hometunVncSession === window['vnc-kept']])().then(done);",
            &[json!(addr::HOST10.to_string())],
        )?;
        ensure!(
            refused == json!(["invalid-argument", "invalid-argument", "vnc-not-allowed", "connected", true]),
            "bad input on an element showing a desktop: {refused}"
        );
        remote::vnc_wait_for_colour(&page, "#vnc-kept", BLUE)?;
        page.execute_async("const done = arguments[0]; window['vnc-kept'].disconnect().then(done)", &[])?;
        Ok(())
    });

    // A desktop the relay does not let this device reach: a clear message at once, and nothing
    // is sent.
    step(&page, "access list", || {
        let denied = open_by_api(&page, "vnc-denied", json!({"host": addr::HOST20.to_string()}))?;
        ensure!(denied["ok"] == false && denied["code"] == "vnc-not-allowed", "192.168.0.20:5900 gave {denied}");
        let message = denied["message"].as_str().unwrap_or_default();
        ensure!(
            message.contains("192.168.0.20:5900")
                && message.contains("access list")
                && message.contains("192.168.0.10/32:5900-5901"),
            "the message is {message:?}"
        );
        ensure!(denied["shown"] == message, "the viewer shows {}", denied["shown"]);
        ensure!(denied["ms"].as_f64().is_some_and(|ms| ms < 1000.0), "the answer took {} ms", denied["ms"]);
        // A name is looked up first and its address checked the same way.
        let named = open_by_api(&page, "vnc-denied", json!({"host": addr::NAS_NAME, "port": 5902}))?;
        let message = named["message"].as_str().unwrap_or_default();
        ensure!(named["code"] == "vnc-not-allowed", "{}:5902 gave {named}", addr::NAS_NAME);
        ensure!(message.contains(&format!("{}:5902 ({})", addr::NAS_NAME, addr::HOST10)), "the message is {message:?}");
        Ok(())
    });

    // A hostile desktop whose first picture would unpack to 100 MB (from about 100 KB sent):
    // the viewer sets nothing of that aside, says why, and the launcher carries on.
    step(&page, "a picture too large to unpack", || {
        let bomb = RfbBomb::start(&lab, Node::Host10, (addr::HOST10, 5903).into())?;
        let _ = open_by_api(&page, "vnc-bomb", json!({"host": addr::HOST10.to_string(), "port": 5903}))?;
        let said = wait(
            &page,
            "the viewer to refuse the picture",
            WAIT,
            "const v = document.getElementById('vnc-bomb'); \
             return v && v.dataset.vncState === 'error' ? v.querySelector('.vnc-status').textContent : null",
        )?;
        ensure!(
            said.as_str().is_some_and(|t| t.contains("unpacks to 100000000 bytes") && t.contains("192.168.0.10:5903")),
            "the viewer says {said}"
        );
        ensure!(bomb.log().contains("sent "), "the server never sent its picture: {}", bomb.log());
        let state = page.execute("return document.body.dataset.state", &[])?;
        ensure!(state == "connected", "the launcher is {state} after the hostile desktop");
        Ok(())
    });

    // The desktop goes away: the viewer says the connection dropped.
    step(&page, "server gone", || {
        page.execute(
            "document.getElementById('desktop-host').value = arguments[0]; \
             document.getElementById('desktop-port').value = '5900'; \
             document.getElementById('desktop-open').click();",
            &[json!(addr::HOST10.to_string())],
        )?;
        remote::vnc_wait_for_colour(&page, "#desktop-viewer", GREEN)?;
        ensure!(!sockets(&lab, 5900, "established").is_empty(), "the desktop shows, yet no connection is seen");
        open.stop();
        let said = wait(
            &page,
            "the viewer to say the connection dropped",
            WAIT,
            "const v = document.getElementById('desktop-viewer'); \
             return v.dataset.vncState === 'disconnected' ? v.querySelector('.vnc-status').textContent : null",
        )?;
        ensure!(
            said.as_str().is_some_and(|t| t.contains("dropped") && t.contains("192.168.0.10:5900")),
            "the viewer says {said}"
        );
        // The page closes its end too: the server's side is not left waiting half closed.
        hometun_tests::lab::wait_until(GONE_WAIT, || sockets(&lab, 5900, "fin-wait-2").is_empty().then_some(()))
            .with_context(|| {
                format!("the page left the connection half open: {:?}", sockets(&lab, 5900, "fin-wait-2"))
            })?;
        Ok(())
    });
    screenshot(&page, "vnc-end");
    drop(page);
    eprintln!("vnc: passed in {:.1?}", started.elapsed());
}

/// One part of the scenario ([`apps_page::step`]).
fn step<T>(page: &Session<'_>, name: &str, f: impl FnOnce() -> anyhow::Result<T>) -> T {
    apps_page::step(page, "vnc", name, f)
}
