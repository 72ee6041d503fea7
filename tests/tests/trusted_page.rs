//! A real headless Chromium that trusts the lab ACME CA's root (an NSS database under its
//! `HOME`, as a phone trusts Let's Encrypt) — no ignore-certificate flags, no key pinning:
//! it refuses a relay on the self-signed fallback, and loads the page of a relay with an ACME
//! certificate by its name from an empty state directory, enrols from an invite link and
//! connects. The trusted page installs as an app (Chromium finds no installability error in
//! its manifest; its icons load with the types and size it names), and the installed app's start
//! URL opens the same device, connected. Prints the time from the empty directory to the
//! trusted page.
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
    let start_url = installable(page).context("the page as an installed app")?;

    let link = relay.invite("trusted-phone", "1h", None)?.to_link();
    ensure!(link.starts_with(&format!("https://{}/", addr::DOMAIN)), "invite link {link} does not use the name");
    // From another page: a fragment change alone would not load the page again.
    page.goto("about:blank")?;
    page.goto(&link)?;
    wait_connected(page, WAIT)?;
    let address = page.execute("return document.getElementById('s-address').textContent", &[])?;
    ensure!(address.as_str().unwrap_or_default().starts_with("10.8.0."), "no tunnel address shown: {address}");
    relay.client("trusted-phone").context("the device is listed")?;
    // The app on the home screen opens its start URL: the same device, connected again.
    page.goto("about:blank")?;
    page.goto(&start_url)?;
    wait_connected(page, WAIT).context("the installed app's start URL")?;
    Ok(())
}

/// Checks that Chromium would install the open page as an app, and returns the app's start URL.
fn installable(page: &Session) -> anyhow::Result<String> {
    let errors = page.cdp("Page.getInstallabilityErrors", serde_json::json!({}))?;
    ensure!(errors["installabilityErrors"] == serde_json::json!([]), "Chromium would not install the page: {errors}");
    let manifest = page.cdp("Page.getAppManifest", serde_json::json!({}))?;
    ensure!(manifest["errors"] == serde_json::json!([]), "the manifest has errors: {manifest}");
    let app = &manifest["manifest"];
    let page_url = format!("https://{}/", addr::DOMAIN);
    ensure!(
        app["name"] == "hometun" && app["display"] == "kStandalone" && app["startUrl"] == page_url.as_str(),
        "the app is not the page on its own: {app}"
    );
    // Each icon loads as the type the manifest names; the PNG for iPhones is 180 px square.
    let icons = page.execute_async(
        "const done = arguments[arguments.length - 1];
         Promise.all(arguments[0].map(async (icon) => {
           const r = await fetch(icon.url);
           const blob = await r.blob();
           const size = icon.type === 'image/png' ? await createImageBitmap(blob).then((b) => `${b.width}x${b.height}`) : '';
           return `${r.status} ${blob.type} ${size}`.trim();
         })).then(done, (e) => done('failed: ' + e));",
        &[app["icons"].clone()],
    )?;
    ensure!(
        icons == serde_json::json!(["200 image/svg+xml", "200 image/svg+xml", "200 image/png 180x180"]),
        "the app's icons: {icons}"
    );
    Ok(page_url)
}
