//! Safari's engine: WebKit (WebKitGTK's MiniBrowser, the engine every iPhone browser runs) on the
//! internet side (`wan`), trusting the lab ACME CA's root the way a phone trusts a public CA,
//! with no certificate exception (see `hometun_tests::browser::webkit`). It loads the relay's
//! page by its name, enrols from an invite link, connects, opens the LAN page
//! `http://192.168.0.10/` in the Open tool, pings the LAN host and looks up its name, and a later
//! visit reconnects by itself. A home web app opens in the launcher's frame on its trusted app
//! name, served through WebKit's service worker, and fetches a LAN file intact. A shell on a real
//! OpenSSH server of the LAN answers a command, in UTF-8 both ways, and a desktop of a real VNC
//! server (TigerVNC's Xvnc) shows its colour on the page's canvas. Screenshots go to
//! `tests/output/`.
//!
//! Needs the page built (`bash scripts/build-page.sh`).

use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use hometun_shared::app_name::AppTarget;
use hometun_tests::acme::{demand_app_certs, retry, trusted_handshake};
use hometun_tests::apps::sshd::{self, Sshd};
use hometun_tests::apps::vnc::VncServer;
use hometun_tests::browser::apps_page::{app_name, wait, wait_connected};
use hometun_tests::browser::{self, remote, tools, webdriver::Session, webkit::WebKitDriver};
use hometun_tests::lab::{addr, Lab, Node};
use hometun_tests::relay::{AcmeOptions, Relay, RelayOptions};
use serde_json::json;

/// WebKitGTK on a busy 2-core machine (CI's debug builds, another test beside it) can take
/// many seconds over its first page of a session: the waits allow for it.
const WAIT: Duration = Duration::from_secs(60);

/// One WebKit at a time: two beside each other on a busy machine starved each other for longer
/// than any wait here.
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
fn safaris_engine_trusts_the_relay_by_name_enrols_and_reaches_the_lan() {
    let _one = one_at_a_time();
    let lab = Lab::start().expect("lab");
    let (root, relay) = trusted_relay(&lab).expect("ACME relay");
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
        fail(&page, &driver, "webkit", e);
    }
}

/// Fails the scenario with `e`, a screenshot `tests/output/NAME-failed.png` and the driver's last
/// lines.
fn fail(page: &Session, driver: &WebKitDriver, name: &str, e: anyhow::Error) -> ! {
    if let Ok(dir) = browser::output_dir() {
        let _ = page.screenshot(&dir.join(format!("{name}-failed.png")));
    }
    eprintln!("WebKitWebDriver log tail:\n{}", driver.log().lines().rev().take(30).collect::<Vec<_>>().join("\n"));
    panic!("{name}: {e:#}");
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
    wait_connected(page, WAIT)?;
    ensure!(text("s-address")?.starts_with("10.8.0."), "no tunnel address shown");
    relay.client("webkit-phone").context("the device is listed")?;
    page.screenshot(&out.join("webkit-connected.png"))?;

    // The Open tool shows the LAN host's page, fetched through the tunnel, and the status panel
    // counts that traffic; Ping gets replies from the LAN host; Lookup resolves its name through
    // the pushed DNS.
    let frame = tools::open_lan_page(page, &format!("http://{}/", addr::HOST10))?;
    ensure!(frame.contains("Hello from h10"), "the Open tool's frame shows {frame}");
    page.screenshot(&out.join("webkit-lan.png"))?;
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

#[test]
fn a_home_web_app_opens_in_the_launchers_frame_in_safaris_engine() {
    let _one = one_at_a_time();
    let lab = Lab::start().expect("lab");
    let (root, relay) = trusted_relay(&lab).expect("ACME relay");
    retry(Duration::from_secs(60), || trusted_handshake(&lab, addr::DOMAIN, &root)).expect("the relay's certificate");
    let lan = std::net::SocketAddrV4::new(addr::HOST10, 80);
    let name = app_name(lan.into());
    // The relay gets the app name's certificate as a launcher asks for it when it opens an app.
    let outcome = demand_app_certs(&lab, &relay, "webkit-apps-cert", None, &[AppTarget::http(lan)]).expect("demand");
    assert!(outcome[0].is_some_and(|o| o.opens()), "the relay refused {name}: {outcome:?}");
    retry(Duration::from_secs(60), || trusted_handshake(&lab, &name, &root)).expect("the app name's certificate");
    let hosts = [(addr::DOMAIN, addr::ROUTER_WAN), (name.as_str(), addr::ROUTER_WAN)];
    let driver = WebKitDriver::start(&lab, Node::Wan, &root, &hosts).expect("WebKit");
    let page = driver.session(1200, 900).expect("MiniBrowser");
    if let Err(e) = use_an_app(&page, &relay, &name) {
        fail(&page, &driver, "webkit-app", e);
    }
}

fn use_an_app(page: &Session, relay: &Relay, name: &str) -> anyhow::Result<()> {
    let link = relay.invite("webkit-apps", "1h", None)?.to_link();
    page.goto(&link)?;
    wait_connected(page, WAIT)?;
    // A tab of its own would find no launcher in WebKit (docs/web-apps.md, "Known limits"), so
    // the launcher offers none.
    let tab_button = page.execute("return document.getElementById('apps-open-tab').hidden", &[])?;
    ensure!(tab_button == true, "the launcher offers \"Open in new tab\" in WebKit");
    // The Apps card's "Open here": the app opens in the launcher's own frame, which reaches the
    // tunnel through its parent.
    page.execute(
        "document.getElementById('apps-address').value = arguments[0]",
        &[json!(format!("http://{}/", addr::HOST10))],
    )?;
    page.click("#apps-open-here")?;
    wait(
        page,
        "the app's frame",
        Duration::from_secs(20),
        "return document.querySelector('#apps-viewer iframe') !== null",
    )?;
    page.switch_to_frame(Some("#apps-viewer iframe"))?;
    let at = wait(
        page,
        "the LAN host's page in the app's frame",
        Duration::from_secs(60),
        "return document.body && document.body.innerText.includes('Hello from h10') ? location.origin : null",
    )?;
    ensure!(at == format!("https://{name}").as_str(), "the app's frame shows {at}");
    page.switch_to_frame(None)?;
    let viewer_tab = page.execute("return document.getElementById('apps-viewer-tab').hidden", &[])?;
    ensure!(viewer_tab == true, "the viewer offers \"Open in new tab\" in WebKit");
    page.switch_to_frame(Some("#apps-viewer iframe"))?;
    let got = page.execute_async(FETCH_BLOB, &[])?;
    let mut blob = vec![0u8; 100_000];
    hometun_tests::content::blob_bytes(100_000, 0, &mut blob);
    let sha = hometun_tests::apps::sha256_hex(&blob);
    ensure!(got == json!({"status": 200, "length": 100_000, "sha": sha}), "the app's fetch of /blob/100000: {got}");
    page.switch_to_frame(None)?;
    page.execute("document.getElementById('apps-viewer').scrollIntoView()", &[])?;
    page.screenshot(&browser::output_dir()?.join("webkit-app.png"))?;
    // The app's address typed into a tab (here, this one): WebKit gives it no way to the hometun
    // page, and the boot page says where apps open in this browser.
    page.goto(&format!("https://{name}/"))?;
    let said = wait(
        page,
        "the boot page's word on where apps open",
        WAIT,
        "return document.body && document.body.dataset.boot === 'no-launcher' ? document.body.innerText : null",
    )?;
    ensure!(said.as_str().is_some_and(|t| t.contains("Open here")), "the boot page says {said}");
    Ok(())
}

#[test]
fn a_shell_by_password_in_safaris_engine() {
    let _one = one_at_a_time();
    let lab = Lab::start().expect("lab");
    let sshd = Sshd::start(&lab, Node::Host10, addr::HOST10).expect("sshd on the LAN host");
    let (root, relay) = trusted_relay(&lab).expect("ACME relay");
    retry(Duration::from_secs(60), || trusted_handshake(&lab, addr::DOMAIN, &root)).expect("the relay's certificate");
    let driver = WebKitDriver::start(&lab, Node::Wan, &root, &[(addr::DOMAIN, addr::ROUTER_WAN)]).expect("WebKit");
    let page = driver.session(1200, 900).expect("MiniBrowser");
    if let Err(e) = use_a_shell(&page, &relay, &sshd) {
        fail(&page, &driver, "webkit-ssh", e.context(format!("sshd log:\n{}", sshd.log())));
    }
}

fn use_a_shell(page: &Session, relay: &Relay, sshd: &Sshd) -> anyhow::Result<()> {
    page.goto(&relay.invite("webkit-shell", "1h", None)?.to_link())?;
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
fn a_desktop_shows_in_safaris_engine() {
    let _one = one_at_a_time();
    let lab = Lab::start().expect("lab");
    let _desktop = VncServer::start(&lab, Node::Host10, (addr::HOST10, 5900).into(), "lab-desktop", None, GREEN)
        .expect("VNC server");
    let (root, relay) = trusted_relay(&lab).expect("ACME relay");
    retry(Duration::from_secs(60), || trusted_handshake(&lab, addr::DOMAIN, &root)).expect("the relay's certificate");
    let driver = WebKitDriver::start(&lab, Node::Wan, &root, &[(addr::DOMAIN, addr::ROUTER_WAN)]).expect("WebKit");
    let page = driver.session(1100, 900).expect("MiniBrowser");
    if let Err(e) = see_the_desktop(&page, &relay) {
        fail(&page, &driver, "webkit-vnc", e);
    }
}

fn see_the_desktop(page: &Session, relay: &Relay) -> anyhow::Result<()> {
    page.goto(&relay.invite("webkit-desk", "1h", None)?.to_link())?;
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
    page.screenshot(&browser::output_dir()?.join("webkit-vnc.png"))?;
    Ok(())
}
