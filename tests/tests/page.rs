//! The real page, served by the lab relay, in headless Chromium on the internet side (`wan`),
//! driven through WebDriver the way a person uses it on a phone-sized screen: open the invite
//! link, see "connected" and the secret gone from the address bar, open the LAN page
//! `http://192.168.0.10/` in the Open tool and see its text, see the traffic counted in the
//! status panel, ping the LAN host and look up its name; a later visit without the link
//! reconnects by itself. Screenshots go to `tests/output/`.
//!
//! Needs the page built (`bash scripts/build-page.sh`, an earlier phase of scripts/test.sh) before
//! the relay: the relay serves the page built into it, with no `--www`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use hometun_tests::browser::apps_page::wait_connected;
use hometun_tests::browser::{self, tools, webdriver::Chromedriver, webdriver::Session};
use hometun_tests::lab::{addr, wait_until, Lab, Node};
use hometun_tests::relay::{Relay, RelayOptions};

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn the_page_enrols_from_an_invite_link_and_opens_a_lan_page() {
    let started = Instant::now();
    assert!(
        browser::page_dist().join("index.html").exists(),
        "the page is not built: run `bash scripts/build-page.sh` first (the relay embeds it when compiled)"
    );
    let lab = Lab::start().expect("lab");
    let relay = Relay::start(&lab, RelayOptions::default()).expect("relay");
    let link = relay.invite("page-test", "1h", None).expect("invite").to_link();
    let second = relay.invite("page-test-guest", "1h", None).expect("second invite").to_link();
    let spki = browser::relay_spki(relay.dir()).expect("relay certificate pin");

    eprintln!("lab and relay up after {:.1?}", started.elapsed());
    let driver = Chromedriver::start(&lab, Node::Wan).expect("chromedriver");
    let result =
        driver.session(&browser::chromium_args(&spki), 420, 900).and_then(|page| use_the_page(&page, &link, &second));
    match result {
        Ok(shots) => {
            for shot in shots {
                eprintln!("screenshot: {}", shot.display());
            }
        }
        Err(e) => {
            let log = driver.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("---- chromedriver log (last lines) ----");
            tail.iter().rev().for_each(|l| eprintln!("{l}"));
            panic!("page test failed: {e:#}");
        }
    }
    eprintln!("page test passed in {:.1?}", started.elapsed());
}

/// Wraps the browser's IndexedDB so that a test can slow or break the page's writes, as a busy
/// or full browser does: `localStorage['test.idb']` holds `{"delayMs": n}` (a write's
/// completion reaches the page n ms late; the data is in), `{"failWrites": n}` (the next n
/// writes are aborted after they were made) or `{"hangOpens": n}` (the next n opens of the
/// database never answer, as WebKit's can after a page closed while creating it).
const STORAGE_HOOK: &str = r#"(() => {
  const open = IDBFactory.prototype.open;
  IDBFactory.prototype.open = function (...args) {
    const test = JSON.parse(localStorage.getItem('test.idb') || '{}');
    if (!(test.hangOpens > 0)) return open.apply(this, args);
    localStorage.setItem('test.idb', JSON.stringify({ hangOpens: test.hangOpens - 1 }));
    return {};
  };
  const real = IDBDatabase.prototype.transaction;
  const completion = Object.getOwnPropertyDescriptor(IDBTransaction.prototype, 'oncomplete');
  IDBDatabase.prototype.transaction = function (stores, mode, ...rest) {
    const tx = real.call(this, stores, mode, ...rest);
    const test = JSON.parse(localStorage.getItem('test.idb') || '{}');
    if (mode !== 'readwrite') return tx;
    if (test.failWrites > 0) {
      localStorage.setItem('test.idb', JSON.stringify({ failWrites: test.failWrites - 1 }));
      queueMicrotask(() => tx.abort());
    } else if (test.delayMs > 0) {
      Object.defineProperty(tx, 'oncomplete', {
        get() { return completion.get.call(tx); },
        set(f) { completion.set.call(tx, (e) => setTimeout(() => f(e), test.delayMs)); },
      });
    }
    return tx;
  };
})();"#;

/// An enrolment counts only once this browser holds the new device: the page says "connecting"
/// until then, even though the relay already sees the tunnel, because a page closed in between
/// would lose a device whose invite is used. A write the browser refuses is tried again; when
/// every try fails the page says so, with how to keep the device. A storage that does not
/// answer at all is given up on after a time limit and tried again; when it never answers the
/// page says that it cannot start and why.
#[test]
fn an_enrolment_counts_once_the_browser_holds_the_device() {
    let lab = Lab::start().expect("lab");
    let relay = Relay::start(&lab, RelayOptions::default()).expect("relay");
    let invites: Vec<String> = ["slow", "refused-once", "refused"]
        .iter()
        .map(|n| relay.invite(n, "1h", None).expect("invite").to_link())
        .collect();
    let spki = browser::relay_spki(relay.dir()).expect("relay certificate pin");
    let driver = Chromedriver::start(&lab, Node::Wan).expect("chromedriver");
    let page = driver.session(&browser::chromium_args(&spki), 420, 900).expect("Chromium");
    if let Err(e) = enrol_through_a_slow_and_a_failing_storage(&page, &relay, &invites) {
        panic!("{e:#}\n{}", browser::apps_page::describe(&page));
    }
}

fn enrol_through_a_slow_and_a_failing_storage(page: &Session, relay: &Relay, invites: &[String]) -> anyhow::Result<()> {
    let state = || -> anyhow::Result<String> {
        Ok(page.execute("return document.body.dataset.state", &[])?.as_str().unwrap_or_default().to_owned())
    };
    let fingerprint = || -> anyhow::Result<String> {
        let v = page.execute("return window.hometun.status().fingerprint", &[])?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    };
    let set_storage = |test: &str| page.execute("localStorage.setItem('test.idb', arguments[0])", &[test.into()]);
    let (base, _) = invites[0].split_once('#').context("invite link has no fragment")?;
    page.cdp("Page.addScriptToEvaluateOnNewDocument", serde_json::json!({ "source": STORAGE_HOOK }))?;
    page.goto(base)?;
    page.wait_for("the welcome card", WAIT, "return document.body.dataset.state === 'welcome'")?;

    // Slow storage: the relay has the tunnel up while the write is still on its way.
    set_storage(r#"{"delayMs": 3000}"#)?;
    page.goto(&invites[0])?;
    wait_until(WAIT, || relay.client("slow").ok().filter(|c| c["online"] == true).map(|_| ()))
        .context("the relay sees the slow device")?;
    let meanwhile = state()?;
    ensure!(meanwhile == "connecting", "the page says {meanwhile:?} while its device is not stored yet");
    wait_connected(page, WAIT)?;
    let slow = fingerprint()?;
    set_storage("{}")?;
    page.goto(base)?;
    wait_connected(page, WAIT).context("the stored slow device reconnects")?;
    ensure!(fingerprint()? == slow, "a later visit came back as another device");

    // One refused write is tried again.
    set_storage(r#"{"failWrites": 1}"#)?;
    page.goto(&invites[1])?;
    replace_this_device(page)?;
    wait_connected(page, WAIT)?;
    let refused_once = fingerprint()?;
    page.goto(base)?;
    wait_connected(page, WAIT).context("the device stored at the second try reconnects")?;
    ensure!(fingerprint()? == refused_once, "the device whose first write failed was not kept");

    // Every write refused: the tunnel is up on the device in memory, and the page says how to
    // keep it.
    set_storage(r#"{"failWrites": 99}"#)?;
    page.goto(&invites[2])?;
    replace_this_device(page)?;
    let error = page.wait_for(
        "the page to say the device was not kept",
        WAIT,
        "const e = document.getElementById('s-error'); return !e.hidden && e.textContent.includes('device-not-saved') ? e.textContent : null",
    )?;
    let error = error.as_str().unwrap_or_default();
    ensure!(error.contains("export") && error.contains("new invite"), "the error does not say what to do: {error}");
    ensure!(state()? == "connected", "the tunnel of the unsaved device is not up");
    set_storage("{}")?;
    page.goto(base)?;
    wait_connected(page, WAIT)?;
    ensure!(fingerprint()? == refused_once, "after the unsaved device, the stored one is back");

    // Storage that does not answer: an open is given up after its time limit and tried again,
    // and a storage that never answers is said, instead of a page "loading" for good.
    set_storage(r#"{"hangOpens": 1}"#)?;
    page.goto(base)?;
    wait_connected(page, WAIT).context("the stored device, read at the second try")?;
    ensure!(fingerprint()? == refused_once, "the device read after an unanswered open is another");
    set_storage(r#"{"hangOpens": 99}"#)?;
    page.goto(base)?;
    let said = page.wait_for(
        "the page to say it cannot start",
        WAIT,
        "return document.body.dataset.state === 'failed' ? document.querySelector('main').textContent : null",
    )?;
    let said = said.as_str().unwrap_or_default();
    ensure!(said.contains("storage did not answer"), "the page does not say why it cannot start: {said}");
    set_storage("{}")?;
    page.goto(base)?;
    wait_connected(page, WAIT).context("the stored device once the storage answers again")?;
    Ok(())
}

/// Answers "use this invite" to the page's question before it replaces the enrolled device.
fn replace_this_device(page: &Session) -> anyhow::Result<()> {
    page.wait_for(
        "the question before replacing this device",
        WAIT,
        "return !document.getElementById('replace').hidden",
    )?;
    page.execute("document.getElementById('replace-use').click()", &[]).map(|_| ())
}

/// The scenario; returns the screenshots taken.
fn use_the_page(page: &Session, link: &str, second: &str) -> anyhow::Result<Vec<PathBuf>> {
    let out = browser::output_dir()?;
    let mut shots = Vec::new();
    let mut shot = |page: &Session, name: &str| -> anyhow::Result<()> {
        let path = out.join(format!("page-{name}.png"));
        page.screenshot(&path)?;
        shots.push(path);
        Ok(())
    };
    let text = |page: &Session, id: &str| -> anyhow::Result<String> {
        let v = page.execute(
            "const e = document.getElementById(arguments[0]); return e ? e.textContent : null",
            &[id.into()],
        )?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    };

    // Opening the invite link enrols this browser and connects.
    page.goto(link)?;
    let state = page.wait_for(
        "the page to connect or fail",
        WAIT,
        "const s = document.body.dataset.state; return s === 'connected' || s === 'failed' ? s : null",
    )?;
    if state != "connected" {
        shot(page, "failed")?;
    }
    ensure!(state == "connected", "page state {state}; error: {:?}", text(page, "s-error")?);
    let href = page.execute("return location.href", &[])?;
    let href = href.as_str().unwrap_or_default();
    let secret = link.split_once('#').map(|(_, s)| s).context("invite link has no fragment")?;
    ensure!(!href.contains('#') && !href.contains(secret), "the secret stayed in the address bar: {href}");
    ensure!(text(page, "s-address")?.starts_with("10.8.0."), "no tunnel address shown");
    // This relay is on the self-signed fallback: the page says what that costs.
    let notice = page.execute("return document.getElementById('cert-notice').hidden ? null : document.getElementById('cert-fingerprint').textContent", &[])?;
    ensure!(notice.as_str().is_some_and(|f| f.len() == 95), "no self-signed notice with the fingerprint: {notice}");
    shot(page, "connected")?;
    // The page's wasm came compressed, as brotli (Chromium takes it over HTTPS): what a phone
    // downloads is about a third of it.
    let (sent, size) = wasm_transfer(page)?;
    ensure!(size > 0 && sent * 100 < size * 37, "the page's wasm came as {sent} bytes for {size}");
    let coding = page.execute_async(
        "const done = arguments[0]; \
         const wasm = performance.getEntriesByType('resource').find(r => r.name.endsWith('.wasm')).name; \
         fetch(wasm, {cache: 'no-store'}).then(r => done(r.headers.get('content-encoding')), e => done(String(e)))",
        &[],
    )?;
    ensure!(coding == "br", "the page's wasm came with Content-Encoding {coding}");

    // The Open tool shows the LAN host's page, fetched through the tunnel.
    let lan_url = format!("http://{}/", addr::HOST10);
    let frame = tools::open_lan_page(page, &lan_url)?;
    ensure!(frame.contains("Hello from h10"), "frame shows {frame}");
    let info = text(page, "browse-info")?;
    ensure!(info.contains("200") && info.contains(&lan_url), "outcome line says {info:?}");
    ensure!(text(page, "browse-raw")?.starts_with("HTTP/1.1 200"), "raw view lacks the status line");
    // A page too large to show (a LAN host that sends without end) is refused past 16 MiB, and
    // the launcher goes on.
    let huge = tools::open_outcome(page, &format!("http://{}/text/20000000", addr::HOST10))?;
    ensure!(huge.contains("larger than 16 MiB"), "a 20 MB page in the Open tool: {huge:?}");
    let frame = tools::open_lan_page(page, &lan_url)?;
    ensure!(frame.contains("Hello from h10"), "after the huge page, the frame shows {frame}");

    // The status panel counts that traffic.
    eprintln!("status panel in / out: {}", tools::traffic_counted(page)?);
    shot(page, "lan")?;

    // Ping tool: replies from the LAN host.
    let ping = tools::ping(page, &addr::HOST10.to_string())?;
    eprintln!("ping tool:\n{ping}");
    ensure!(ping.contains(&format!("reply from {}", addr::HOST10)), "no echo reply shown");
    shot(page, "ping")?;

    // Lookup tool: the pushed DNS resolves the LAN name.
    let lookup = tools::lookup(page, addr::NAS_NAME)?;
    ensure!(lookup.contains(&addr::HOST10.to_string()), "lookup shows {lookup}");

    // A later visit, without the invite, reconnects the stored device by itself.
    let (page_url, _) = link.split_once('#').context("invite link has no fragment")?;
    page.goto(page_url)?;
    let state = page.wait_for(
        "the later visit to connect or fail",
        WAIT,
        "const s = document.body.dataset.state; return s === 'connected' || s === 'failed' || s === 'welcome' ? s : null",
    )?;
    ensure!(state == "connected", "later visit: page state {state}; error: {:?}", text(page, "s-error")?);
    // The unchanged page was revalidated, not downloaded again.
    let (_, size) = wasm_transfer(page)?;
    let moved = page.execute(WASM_MOVED, &[])?;
    ensure!(moved.as_f64().is_some_and(|b| b < 4096.0), "the later visit moved {moved} bytes of the {size}-byte wasm");
    let own = text(page, "s-address")?;

    // Another invite opened in this browser asks first; keeping the device changes nothing.
    let connected_as = |page: &Session, what: &str| -> anyhow::Result<String> {
        let shown = page.wait_for(
            what,
            WAIT,
            "const s = document.body.dataset.state; const a = document.getElementById('s-address').textContent;
             return s === 'connected' && a.startsWith('10.8.0.') ? a : (s === 'failed' ? 'failed' : null)",
        )?;
        Ok(shown.as_str().unwrap_or_default().to_owned())
    };
    let ask =
        "return document.getElementById('replace').hidden ? null : document.getElementById('replace').textContent";
    page.goto(second)?;
    page.wait_for("the question before replacing this device", WAIT, ask)?;
    shot(page, "replace-question")?;
    page.execute("document.getElementById('replace-keep').click()", &[])?;
    ensure!(connected_as(page, "the kept device to connect")? == own, "keeping the device changed the address");

    // Asked again, using the invite makes this browser the new device; the old one comes back.
    page.goto(second)?;
    page.wait_for("the question again", WAIT, ask)?;
    page.execute("document.getElementById('replace-use').click()", &[])?;
    let guest = connected_as(page, "the new device to connect")?;
    ensure!(guest != own && guest != "failed", "the new device has address {guest}, the old one {own}");
    page.wait_for(
        "the switch-back button",
        WAIT,
        "return document.getElementById('restore-button').hidden ? null : true",
    )?;
    page.execute("document.getElementById('restore-button').click()", &[])?;
    let back = page.wait_for(
        "the previous device to connect again",
        WAIT,
        &format!(
            "const a = document.getElementById('s-address').textContent;
             return document.body.dataset.state === 'connected' && a === {own:?} ? a : null"
        ),
    );
    ensure!(back.is_ok(), "switching back did not bring address {own} back: {:?}", text(page, "s-address")?);
    Ok(shots)
}

/// The bytes the page's wasm took on the wire (all of this visit's transfer, headers included).
const WASM_MOVED: &str =
    "const e = performance.getEntriesByType('resource').find(r => r.name.endsWith('.wasm')); return e ? e.transferSize : null";

/// The page's wasm in this visit: its body's bytes as sent (compressed) and as decoded.
fn wasm_transfer(page: &Session) -> anyhow::Result<(u64, u64)> {
    let sizes = page.execute(
        "const e = performance.getEntriesByType('resource').find(r => r.name.endsWith('.wasm')); \
         return e ? [e.encodedBodySize, e.decodedBodySize] : null",
        &[],
    )?;
    let size = |i: usize| sizes.get(i).and_then(|v| v.as_u64()).context("no resource timing for the page's wasm");
    Ok((size(0)?, size(1)?))
}
