//! A real headless Chromium that trusts the lab ACME CA's root (an NSS database under its
//! `HOME`, as a phone trusts Let's Encrypt) — no ignore-certificate flags, no key pinning:
//! it refuses a relay on the self-signed fallback, and loads the page of a relay with an ACME
//! certificate by its name from an empty state directory, enrols from an invite link and
//! connects. Prints the time from the empty directory to the trusted page.
//!
//! Needs the page built (`bash scripts/build-page.sh`).

use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use hometun_tests::acme::nss_trusting;
use hometun_tests::browser::apps_page::wait_connected;
use hometun_tests::browser::{self, webdriver::Chromedriver, webdriver::Session};
use hometun_tests::lab::{addr, Lab, Node};
use hometun_tests::relay::{AcmeOptions, Relay, RelayOptions};

const WAIT: Duration = Duration::from_secs(30);

/// Chromium's lab flags without any certificate exception, mapping the relay's names to the
/// router's public address.
fn trusting_args() -> Vec<String> {
    let mut args = browser::chromium_args("");
    args.retain(|a| !a.starts_with("--ignore-certificate-errors"));
    args.push(format!("--host-resolver-rules=MAP {d} {a}, MAP *.{d} {a}", d = addr::DOMAIN, a = addr::ROUTER_WAN));
    assert!(!args.iter().any(|a| a.contains("ignore-certificate") || a.contains("spki")), "{args:?}");
    args
}

#[test]
fn a_browser_trusting_the_acme_root_refuses_the_self_signed_relay_and_uses_the_trusted_one() {
    let lab = Lab::start().expect("lab");
    let ca = lab.start_acme().expect("ACME CA");
    let root = ca.issuing_root().expect("pebble's root");
    let home = lab.dir().join("browser-home");
    nss_trusting(&lab, &home, &root).expect("NSS database");
    let driver = Chromedriver::start_with_home(&lab, Node::Wan, Some(&home)).expect("chromedriver");
    let page = driver.session(&trusting_args(), 420, 900).expect("Chromium");
    let url = format!("https://{}/", addr::DOMAIN);

    // The self-signed fallback: the relay says what it costs; the browser refuses it.
    let mut relay = Relay::start(&lab, RelayOptions::default()).expect("self-signed relay");
    let status = relay.admin(&["status"]).expect("status");
    assert!(status.contains("self-signed") && status.contains("certificate warning"), "status says:\n{status}");
    let refused = open(&page, &url).expect_err("the self-signed page was trusted");
    assert!(format!("{refused:#}").contains("ERR_CERT_AUTHORITY_INVALID"), "refused for another reason: {refused:#}");
    relay.stop().expect("stopping the self-signed relay");
    std::fs::remove_dir_all(relay.dir()).expect("emptying the state directory");
    drop(relay);

    // From an empty state directory to the trusted page, by its name.
    let started = Instant::now();
    let relay = Relay::start(&lab, RelayOptions { acme: Some(AcmeOptions::from(&ca)), ..RelayOptions::default() })
        .expect("ACME relay");
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Err(e) = open(&page, &url) {
        assert!(Instant::now() < deadline, "the page never became trusted: {e:#}");
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!("empty DIR to a trusted page in Chromium: {:.1?}", started.elapsed());
    let result = use_the_trusted_page(&page, &relay);
    if let Err(e) = &result {
        if let Ok(dir) = browser::output_dir() {
            let _ = page.screenshot(&dir.join("trusted-page-failed.png"));
        }
        eprintln!("chromedriver log tail:\n{}", driver.log().lines().rev().take(30).collect::<Vec<_>>().join("\n"));
        panic!("trusted page: {e:#}");
    }
}

/// Navigates to `url`; `Err` with Chromium's error page text unless the page itself loaded
/// (Chromium shows certificate errors as an error page, not as a WebDriver error).
fn open(page: &Session, url: &str) -> anyhow::Result<()> {
    page.goto(url)?;
    let at = page.execute("return [location.href, document.body ? document.body.innerText : '']", &[])?;
    let href = at[0].as_str().unwrap_or_default();
    ensure!(href.starts_with(url), "Chromium shows {href}: {}", at[1].as_str().unwrap_or_default().replace('\n', " "));
    Ok(())
}

fn use_the_trusted_page(page: &Session, relay: &Relay) -> anyhow::Result<()> {
    let secure = page.execute("return [location.protocol, window.isSecureContext, location.host]", &[])?;
    ensure!(secure == serde_json::json!(["https:", true, addr::DOMAIN]), "not a secure context on the name: {secure}");
    let kind = page.wait_for(
        "the certificate kind from /relay.json",
        WAIT,
        "return document.body.dataset.certificate || null",
    )?;
    ensure!(kind == "acme", "the relay reports a {kind} certificate");
    ensure!(
        page.execute("return document.getElementById('cert-notice').hidden", &[])? == true,
        "self-signed notice shown"
    );

    let link = relay.invite("trusted-phone", "1h", None)?.to_link();
    ensure!(link.starts_with(&format!("https://{}/", addr::DOMAIN)), "invite link {link} does not use the name");
    // From another page: a fragment change alone would not load the page again.
    page.goto("about:blank")?;
    page.goto(&link)?;
    wait_connected(page, WAIT)?;
    let address = page.execute("return document.getElementById('s-address').textContent", &[])?;
    ensure!(address.as_str().unwrap_or_default().starts_with("10.8.0."), "no tunnel address shown: {address}");
    relay.client("trusted-phone").context("the device is listed")?;
    Ok(())
}
