//! Firefox (Gecko: Debian's `firefox-esr`) on the internet side (`wan`), driven through its
//! native WebDriver BiDi endpoint and trusting the lab ACME CA's root through its profile's NSS
//! database, with no certificate exception (see `hometun_tests::browser::firefox`). It loads the
//! relay's page by its name, enrols from an invite link, connects, opens the LAN page
//! `http://192.168.0.10/` in the Open tool, pings the LAN host and looks up its name, and a later
//! visit reconnects by itself. A home web app opens in the launcher's frame, in a tab of its own
//! from "Open in new tab" (no opener), and in a typed tab, on its trusted app name, served through
//! Firefox's service worker, and fetches a LAN file intact. A shell on a real OpenSSH server of
//! the LAN answers a command, in UTF-8 both ways, and a desktop of a real VNC server (TigerVNC's
//! Xvnc) shows its colour on the page's canvas. Screenshots go to `tests/output/`.
//!
//! Needs the page built (`bash scripts/build-page.sh`).

use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use hometun_shared::app_name::AppTarget;
use hometun_tests::acme::{demand_app_certs, retry, trusted_handshake};
use hometun_tests::apps::sshd::{self, Sshd};
use hometun_tests::apps::vnc::VncServer;
use hometun_tests::browser::apps_page::{app_name, wait, wait_connected};
use hometun_tests::browser::{self, firefox::FirefoxDriver, remote, tools, webdriver::Session};
use hometun_tests::capture::Capture;
use hometun_tests::lab::{addr, Lab, Node};
use hometun_tests::relay::{AcmeOptions, Relay, RelayOptions};
use serde_json::json;

/// Firefox on a busy 2-core machine (CI's debug builds, another test beside it) can take many
/// seconds over its first page: the waits allow for it.
const WAIT: Duration = Duration::from_secs(60);

/// One Firefox at a time: browsers beside each other on a busy machine starve each other.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The lab CA's root and a relay that gets its certificate from it.
fn trusted_relay(lab: &Lab) -> anyhow::Result<(String, Relay)> {
    let ca = lab.start_acme()?;
    let root = ca.issuing_root()?;
    let options =
        RelayOptions { acme: Some(AcmeOptions::from(&ca)), www: Some(browser::page_dist()), ..Default::default() };
    Ok((root, Relay::start(lab, options)?))
}

#[test]
fn firefox_trusts_the_relay_by_name_enrols_and_reaches_the_lan() {
    let _one = one_at_a_time();
    let lab = Lab::start().expect("lab");
    let (root, relay) = trusted_relay(&lab).expect("ACME relay");
    // Everything the browser's namespace sends or gets, but the page's own connections to the
    // relay (and ARP): Firefox must not call anywhere by itself.
    let elsewhere = format!("not arp and not (tcp port {} and host {})", addr::RELAY_PORT, addr::ROUTER_WAN);
    let capture = Capture::start(&lab, Node::Wan, "eth0", &elsewhere).expect("capture");
    let driver = FirefoxDriver::start(&lab, Node::Wan, &root, &[(addr::DOMAIN, addr::ROUTER_WAN)]).expect("Firefox");
    let page = driver.session(420, 900).expect("a Firefox session");
    let url = format!("https://{}/", addr::DOMAIN);
    // The relay gets its certificate from the lab CA while the browser starts.
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Err(e) = open(&page, &url) {
        assert!(Instant::now() < deadline, "Firefox never loaded the trusted page: {e:#}");
        std::thread::sleep(Duration::from_millis(500));
    }
    if let Err(e) = use_the_page(&page, &relay) {
        fail(&page, &driver, "firefox", e);
    }
    drop(page);
    drop(driver);
    let calls = capture.stop().expect("capture");
    assert!(calls.is_empty(), "Firefox sent or got packets other than the page's own:\n{}", calls.join("\n"));
}

/// Fails the scenario with `e`, a screenshot `tests/output/NAME-failed.png` and Firefox's last
/// lines.
fn fail(page: &Session, driver: &FirefoxDriver, name: &str, e: anyhow::Error) -> ! {
    if let Ok(dir) = browser::output_dir() {
        let _ = page.screenshot(&dir.join(format!("{name}-failed.png")));
    }
    eprintln!("console:\n{}", page.console());
    eprintln!("Firefox log tail:\n{}", driver.log().lines().rev().take(30).collect::<Vec<_>>().join("\n"));
    panic!("{name}: {e:#}");
}

/// Navigates to `url`; `Err` unless the page itself loaded (an untrusted certificate ends in an
/// error, or on another page).
fn open(page: &Session, url: &str) -> anyhow::Result<()> {
    page.goto(url)?;
    let at = page.execute("return [location.href, document.title]", &[])?;
    ensure!(at[0].as_str().is_some_and(|h| h.starts_with(url)) && at[1] == "hometun", "Firefox shows {at}");
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
    ensure!(secure == json!(["https:", true, addr::DOMAIN]), "not a secure context on the name: {secure}");
    let agent = page.execute("return navigator.userAgent", &[])?;
    eprintln!("Firefox: {agent}");

    // Opening the invite link enrols this browser and connects.
    let link = relay.invite("firefox-laptop", "1h", None)?.to_link();
    page.goto("about:blank")?;
    page.goto(&link)?;
    wait_connected(page, WAIT)?;
    ensure!(text("s-address")?.starts_with("10.8.0."), "no tunnel address shown");
    relay.client("firefox-laptop").context("the device is listed")?;
    page.screenshot(&out.join("firefox-connected.png"))?;

    // The Open tool shows the LAN host's page, fetched through the tunnel, and the status panel
    // counts that traffic; Ping gets replies from the LAN host; Lookup resolves its name through
    // the pushed DNS.
    let frame = tools::open_lan_page(page, &format!("http://{}/", addr::HOST10))?;
    ensure!(frame.contains("Hello from h10"), "the Open tool's frame shows {frame}");
    page.screenshot(&out.join("firefox-lan.png"))?;
    tools::traffic_counted(page)?;
    let ping = tools::ping(page, &addr::HOST10.to_string())?;
    ensure!(ping.contains(&format!("reply from {}", addr::HOST10)), "ping shows {ping}");
    let lookup = tools::lookup(page, addr::NAS_NAME)?;
    ensure!(lookup.contains(&addr::HOST10.to_string()), "lookup shows {lookup}");

    // A later visit, without the invite, reconnects the stored device by itself.
    page.goto(&format!("https://{}/", addr::DOMAIN))?;
    wait_connected(page, WAIT).context("the later visit")?;
    Ok(())
}

/// The bytes of the lab host's `/blob/100000`, fetched by the app page, as SHA-256 hex.
const FETCH_BLOB: &str = r#"
const done = arguments[0];
fetch('/blob/100000', { cache: 'no-store' })
  .then(async (r) => {
    const bytes = await r.arrayBuffer();
    const hash = await crypto.subtle.digest('SHA-256', bytes);
    const sha = [...new Uint8Array(hash)].map((b) => b.toString(16).padStart(2, '0')).join('');
    done({ status: r.status, length: bytes.byteLength, sha });
  })
  .catch((e) => done({ error: String(e) }));
"#;

/// The lab host's page, once it shows: the origin it shows on.
const LAN_PAGE: &str =
    "return document.body && document.body.innerText.includes('Hello from h10') ? location.origin : null";

#[test]
fn a_home_web_app_opens_in_the_launchers_frame_and_in_tabs_of_its_own_in_firefox() {
    let _one = one_at_a_time();
    let lab = Lab::start().expect("lab");
    let (root, relay) = trusted_relay(&lab).expect("ACME relay");
    retry(Duration::from_secs(60), || trusted_handshake(&lab, addr::DOMAIN, &root)).expect("the relay's certificate");
    let lan = std::net::SocketAddrV4::new(addr::HOST10, 80);
    let name = app_name(lan.into());
    // The relay gets the app name's certificate as a launcher asks for it when it opens an app.
    let outcome = demand_app_certs(&lab, &relay, "firefox-apps-cert", None, &[AppTarget::http(lan)]).expect("demand");
    assert!(outcome[0].is_some_and(|o| o.opens()), "the relay refused {name}: {outcome:?}");
    retry(Duration::from_secs(60), || trusted_handshake(&lab, &name, &root)).expect("the app name's certificate");
    let hosts = [(addr::DOMAIN, addr::ROUTER_WAN), (name.as_str(), addr::ROUTER_WAN)];
    let driver = FirefoxDriver::start(&lab, Node::Wan, &root, &hosts).expect("Firefox");
    let page = driver.session(1200, 900).expect("a Firefox session");
    if let Err(e) = use_an_app(&page, &driver, &relay, &name) {
        fail(&page, &driver, "firefox-app", e);
    }
}

fn use_an_app(page: &Session, driver: &FirefoxDriver, relay: &Relay, name: &str) -> anyhow::Result<()> {
    let link = relay.invite("firefox-apps", "1h", None)?.to_link();
    page.goto(&link)?;
    wait_connected(page, WAIT)?;
    let launcher = page.window()?;
    let origin = format!("https://{name}");
    let lan_url = format!("http://{}/", addr::HOST10);
    let mut blob = vec![0u8; 100_000];
    hometun_tests::content::blob_bytes(100_000, 0, &mut blob);
    let intact = json!({"status": 200, "length": 100_000, "sha": hometun_tests::apps::sha256_hex(&blob)});

    // The Apps card's "Open here": the app opens in the launcher's own frame, which reaches the
    // tunnel through its parent.
    page.execute("document.getElementById('apps-address').value = arguments[0]", &[json!(lan_url)])?;
    page.click("#apps-open-here")?;
    wait(
        page,
        "the app's frame",
        Duration::from_secs(20),
        "return document.querySelector('#apps-viewer iframe') !== null",
    )?;
    page.switch_to_frame(Some("#apps-viewer iframe"))?;
    let at = wait(page, "the LAN host's page in the app's frame", WAIT, LAN_PAGE)?;
    ensure!(at == origin.as_str(), "the app's frame shows {at}");
    let got = page.execute_async(FETCH_BLOB, &[])?;
    ensure!(got == intact, "the framed app's fetch of /blob/100000: {got}");
    page.switch_to_frame(None)?;
    page.execute("document.getElementById('apps-viewer').scrollIntoView()", &[])?;
    page.screenshot(&browser::output_dir()?.join("firefox-app.png"))?;

    // The viewer's "Open in new tab", clicked as a user does, moves the app to a tab without an
    // opener that reaches the tunnel through its broker frame (Firefox shares the launcher's
    // SharedWorker with it); the Apps card's "Open in new tab" opens another.
    for (button, what) in [("#apps-viewer-tab", "the viewer's"), ("#apps-open-tab", "the Apps card's")] {
        page.switch_to(&launcher)?;
        let shown = page.execute("return !document.querySelector(arguments[0]).hidden", &[json!(button)])?;
        ensure!(shown == true, "{what} \"Open in new tab\" is hidden in Firefox");
        let before = page.windows()?;
        page.click(button)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let tab = loop {
            if let Some(tab) = page.windows()?.into_iter().find(|h| !before.contains(h)) {
                break tab;
            }
            ensure!(Instant::now() < deadline, "{what} \"Open in new tab\" opened no tab");
            std::thread::sleep(Duration::from_millis(100));
        };
        page.switch_to(&tab)?;
        let at = wait(page, "the LAN host's page in its own tab", WAIT, LAN_PAGE).context(what)?;
        ensure!(at == origin.as_str(), "{what} app tab shows {at}");
        let opener = page.execute("return window.opener === null", &[])?;
        ensure!(opener == true, "{what} app tab has an opener");
        let got = page.execute_async(FETCH_BLOB, &[])?;
        ensure!(got == intact, "{what} app tab's fetch of /blob/100000: {got}");
    }

    // The app's address typed into a new tab (no opener, nothing in common with the others)
    // reaches the launcher too.
    driver.open_typed(&format!("{origin}/"))?;
    let at = wait(page, "the LAN host's page in a typed tab", WAIT, LAN_PAGE)?;
    ensure!(at == origin.as_str(), "the typed tab shows {at}");
    let got = page.execute_async(FETCH_BLOB, &[])?;
    ensure!(got == intact, "the typed tab's fetch of /blob/100000: {got}");
    page.switch_to(&launcher)?;
    Ok(())
}

#[test]
fn a_shell_by_password_in_firefox() {
    let _one = one_at_a_time();
    let lab = Lab::start().expect("lab");
    let sshd = Sshd::start(&lab, Node::Host10, addr::HOST10).expect("sshd on the LAN host");
    let (root, relay) = trusted_relay(&lab).expect("ACME relay");
    retry(Duration::from_secs(60), || trusted_handshake(&lab, addr::DOMAIN, &root)).expect("the relay's certificate");
    let driver = FirefoxDriver::start(&lab, Node::Wan, &root, &[(addr::DOMAIN, addr::ROUTER_WAN)]).expect("Firefox");
    let page = driver.session(1200, 900).expect("a Firefox session");
    if let Err(e) = use_a_shell(&page, &relay, &sshd) {
        fail(&page, &driver, "firefox-ssh", e.context(format!("sshd log:\n{}", sshd.log())));
    }
}

fn use_a_shell(page: &Session, relay: &Relay, sshd: &Sshd) -> anyhow::Result<()> {
    page.goto(&relay.invite("firefox-shell", "1h", None)?.to_link())?;
    wait_connected(page, WAIT)?;
    let key = sshd.host_key_fingerprint()?;
    let options = json!({"host": addr::HOST10.to_string(), "port": sshd::PORT, "user": sshd::USER,
        "password": sshd::PASSWORD, "trustNewHostKey": true, "cols": 100, "rows": 30});
    let opened = remote::ssh_open(page, options)?;
    ensure!(opened == format!("ok {key}").as_str(), "password login: {opened} (server key {key})");
    remote::ssh_type_and_wait(page, "echo hometun-$((6*7))\n", "hometun-42")?;
    remote::ssh_type_and_wait(page, "w='grüße ✓'; echo \"$w $(printf %s \"$w\" | wc -c)\"\n", "grüße ✓ 11")?;
    Ok(())
}

/// The colour the lab's desktop paints its whole screen.
const GREEN: [u8; 3] = [0x12, 0xa3, 0x5b];

#[test]
fn a_desktop_shows_in_firefox() {
    let _one = one_at_a_time();
    let lab = Lab::start().expect("lab");
    let _desktop = VncServer::start(&lab, Node::Host10, (addr::HOST10, 5900).into(), "lab-desktop", None, GREEN)
        .expect("VNC server");
    let (root, relay) = trusted_relay(&lab).expect("ACME relay");
    retry(Duration::from_secs(60), || trusted_handshake(&lab, addr::DOMAIN, &root)).expect("the relay's certificate");
    let driver = FirefoxDriver::start(&lab, Node::Wan, &root, &[(addr::DOMAIN, addr::ROUTER_WAN)]).expect("Firefox");
    let page = driver.session(1100, 900).expect("a Firefox session");
    if let Err(e) = see_the_desktop(&page, &relay) {
        fail(&page, &driver, "firefox-vnc", e);
    }
}

fn see_the_desktop(page: &Session, relay: &Relay) -> anyhow::Result<()> {
    page.goto(&relay.invite("firefox-desk", "1h", None)?.to_link())?;
    wait_connected(page, WAIT)?;
    page.execute(
        "document.getElementById('desktop-host').value = arguments[0]; \
         document.getElementById('desktop-open').click();",
        &[json!(addr::HOST10.to_string())],
    )?;
    remote::vnc_wait_connected(page, GREEN)?;
    let title = page.execute("return document.querySelector('#desktop-viewer .vnc-title').textContent", &[])?;
    ensure!(title.as_str().is_some_and(|t| t.contains("lab-desktop")), "the viewer's title is {title}");
    page.execute("document.getElementById('desktop-viewer').scrollIntoView()", &[])?;
    page.screenshot(&browser::output_dir()?.join("firefox-vnc.png"))?;
    Ok(())
}
