//! Safari's engine: WebKit (WebKitGTK's MiniBrowser, the engine every iPhone browser runs) on the
//! internet side (`wan`), trusting the lab ACME CA's root the way a phone trusts a public CA,
//! with no certificate exception (see `hometun_tests::browser::webkit`). It loads the relay's
//! page by its name, enrols from an invite link, connects, opens the LAN page
//! `http://192.168.0.10/` in the Open tool, pings the LAN host and looks up its name, and a later
//! visit reconnects by itself. Screenshots go to `tests/output/`.
//!
//! Needs the page built (`bash scripts/build-page.sh`).

use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use hometun_tests::browser::{self, webdriver::Session, webkit::WebKitDriver};
use hometun_tests::lab::{addr, Lab, Node};
use hometun_tests::relay::{AcmeOptions, Relay, RelayOptions};

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn safaris_engine_trusts_the_relay_by_name_enrols_and_reaches_the_lan() {
    let lab = Lab::start().expect("lab");
    let ca = lab.start_acme().expect("ACME CA");
    let root = ca.issuing_root().expect("pebble's root");
    let relay = Relay::start(&lab, RelayOptions { acme: Some(AcmeOptions::from(&ca)), ..RelayOptions::default() })
        .expect("ACME relay");
    let driver = WebKitDriver::start(&lab, Node::Wan, &root, &[(addr::DOMAIN, addr::ROUTER_WAN)]).expect("WebKit");
    let page = driver.session(420, 900).expect("MiniBrowser");
    let url = format!("https://{}/", addr::DOMAIN);
    // The relay gets its certificate from the lab CA while the browser starts.
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Err(e) = open(&page, &url) {
        assert!(Instant::now() < deadline, "WebKit never loaded the trusted page: {e:#}");
        std::thread::sleep(Duration::from_millis(500));
    }
    if let Err(e) = use_the_page(&page, &relay) {
        if let Ok(dir) = browser::output_dir() {
            let _ = page.screenshot(&dir.join("webkit-failed.png"));
        }
        eprintln!("WebKitWebDriver log tail:\n{}", driver.log().lines().rev().take(30).collect::<Vec<_>>().join("\n"));
        panic!("WebKit page: {e:#}");
    }
}

/// Navigates to `url`; `Err` unless the page itself loaded (an untrusted certificate ends in an
/// error, or on another page).
fn open(page: &Session, url: &str) -> anyhow::Result<()> {
    page.goto(url)?;
    let at = page.execute("return [location.href, document.title]", &[])?;
    ensure!(at[0].as_str().is_some_and(|h| h.starts_with(url)) && at[1] == "hometun", "WebKit shows {at}");
    Ok(())
}

fn use_the_page(page: &Session, relay: &Relay) -> anyhow::Result<()> {
    let out = browser::output_dir()?;
    let text = |id: &str| -> anyhow::Result<String> {
        let v = page.execute(
            "const e = document.getElementById(arguments[0]); return e ? e.textContent : null",
            &[id.into()],
        )?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    };
    let secure = page.execute("return [location.protocol, window.isSecureContext, location.host]", &[])?;
    ensure!(secure == serde_json::json!(["https:", true, addr::DOMAIN]), "not a secure context on the name: {secure}");
    let agent = page.execute("return navigator.userAgent", &[])?;
    eprintln!("WebKit: {agent}");

    // Opening the invite link enrols this browser and connects.
    let link = relay.invite("webkit-phone", "1h", None)?.to_link();
    page.goto("about:blank")?;
    page.goto(&link)?;
    let state = page.wait_for(
        "the page to connect or fail",
        WAIT,
        "const s = document.body.dataset.state; return s === 'connected' || s === 'failed' ? s : null",
    )?;
    ensure!(state == "connected", "page state {state}; error: {:?}", text("s-error")?);
    ensure!(text("s-address")?.starts_with("10.8.0."), "no tunnel address shown");
    relay.client("webkit-phone").context("the device is listed")?;
    page.screenshot(&out.join("webkit-connected.png"))?;

    // The Open tool shows the LAN host's page, fetched through the tunnel.
    let lan_url = format!("http://{}/", addr::HOST10);
    page.execute(
        "document.querySelector('[data-tab=browse]').click();
         document.getElementById('browse-url').value = arguments[0];
         document.querySelector('#browse-form button[type=submit]').click();",
        &[lan_url.clone().into()],
    )?;
    let frame_text = page.wait_for(
        "the LAN page in the frame",
        WAIT,
        "const d = document.getElementById('browse-frame').contentDocument;
         const t = d && d.body ? d.body.innerText : '';
         return t.includes('Hello from') ? t : null",
    )?;
    ensure!(frame_text.as_str().unwrap_or_default().contains("Hello from h10"), "frame shows {frame_text}");
    page.screenshot(&out.join("webkit-lan.png"))?;

    // Ping tool: replies from the LAN host.
    page.execute(
        "document.querySelector('[data-tab=ping]').click();
         document.getElementById('ping-host').value = arguments[0];
         document.getElementById('ping-count').value = 3;
         document.querySelector('#ping-form button[type=submit]').click();",
        &[addr::HOST10.to_string().into()],
    )?;
    let ping = page.wait_for(
        "the ping summary",
        WAIT,
        "const t = document.getElementById('ping-output').textContent; return t.includes('% loss') ? t : null",
    )?;
    ensure!(ping.as_str().unwrap_or_default().contains(&format!("reply from {}", addr::HOST10)), "ping shows {ping}");

    // Lookup tool: the pushed DNS resolves the LAN name.
    page.execute(
        "document.querySelector('[data-tab=dns]').click();
         document.getElementById('dns-name').value = arguments[0];
         document.querySelector('#dns-form button[type=submit]').click();",
        &[addr::NAS_NAME.into()],
    )?;
    let lookup = page.wait_for(
        "the lookup answer",
        WAIT,
        "const t = document.getElementById('dns-output').textContent; return t.length ? t : null",
    )?;
    ensure!(lookup.as_str().unwrap_or_default().contains(&addr::HOST10.to_string()), "lookup shows {lookup}");

    // A later visit, without the invite, reconnects the stored device by itself.
    page.goto(&format!("https://{}/", addr::DOMAIN))?;
    let state = page.wait_for(
        "the later visit to connect or fail",
        WAIT,
        "const s = document.body.dataset.state; return s === 'connected' || s === 'failed' || s === 'welcome' ? s : null",
    )?;
    ensure!(state == "connected", "later visit: page state {state}; error: {:?}", text("s-error")?);
    Ok(())
}
