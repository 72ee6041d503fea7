//! What the page goes through in each browser engine beside Chromium (WebKit, Firefox), written
//! once: a relay with a certificate from the lab ACME CA, the page on its trusted name (enrolment,
//! the LAN tools, a later visit), a shell and a desktop. Each engine's test file starts its
//! browser and runs these steps; `engine` names it in messages and screenshots ("WebKit").

use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use hometun_shared::app_name::AppTarget;
use serde_json::json;

use super::apps_page::wait_connected;
use super::webdriver::Session;
use super::{remote, tools};
use crate::apps::sshd::{self, Sshd};
use crate::lab::{addr, Lab, Node};
use crate::relay::{AcmeOptions, Relay, RelayOptions};

/// These engines on a busy 2-core machine (CI's debug builds, another test beside them) can take
/// many seconds over the first page of a session: the waits allow for it.
pub const WAIT: Duration = Duration::from_secs(60);

/// The colour the lab's desktop paints its whole screen.
pub const GREEN: [u8; 3] = [0x12, 0xa3, 0x5b];

/// The bytes of the lab host's `/blob/100000`, fetched by an app page, as SHA-256 hex.
pub const FETCH_BLOB: &str = r#"
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

static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// One browser of an engine at a time: two beside each other on a busy machine starved each other
/// for longer than any wait here.
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The lab CA's root and a relay that gets its certificate from it.
pub fn trusted_relay(lab: &Lab) -> anyhow::Result<(String, Relay)> {
    let ca = lab.start_acme()?;
    let root = ca.issuing_root()?;
    let options =
        RelayOptions { acme: Some(AcmeOptions::from(&ca)), www: Some(super::page_dist()), ..Default::default() };
    Ok((root, Relay::start(lab, options)?))
}

/// Fails the scenario with `e`, a screenshot `tests/output/NAME-failed.png`, the page's console
/// and the last lines of the browser's or driver's log.
pub fn fail(page: &Session, name: &str, log: &str, e: anyhow::Error) -> ! {
    if let Ok(dir) = super::output_dir() {
        let _ = page.screenshot(&dir.join(format!("{name}-failed.png")));
    }
    eprintln!("console:\n{}", page.console());
    eprintln!("log tail:\n{}", log.lines().rev().take(30).collect::<Vec<_>>().join("\n"));
    panic!("{name}: {e:#}");
}

/// Opens the relay's page on its name, trying again for up to 60 s while the relay gets its
/// certificate from the lab CA; fails unless the page itself loaded (an untrusted certificate
/// ends in an error page).
pub fn open_trusted(page: &Session, engine: &str) -> anyhow::Result<()> {
    let url = format!("https://{}/", addr::DOMAIN);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        page.goto(&url)?;
        let at = page.execute("return [location.href, document.title]", &[])?;
        if at[0].as_str().is_some_and(|h| h.starts_with(&url)) && at[1] == "hometun" {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "{engine} never loaded the trusted page: it shows {at}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The page in a secure context on its name: enrolment from an invite link as `device` (opened
/// in the tab of a first page left while it reads its storage), the Open tool on the LAN page,
/// the status counters, Ping, Lookup, and a later visit that reconnects the stored device by
/// itself. Screenshots `tests/output/<prefix>-*.png`.
pub fn use_the_page(page: &Session, relay: &Relay, engine: &str, device: &str) -> anyhow::Result<()> {
    let out = super::output_dir()?;
    let prefix = engine.to_lowercase();
    let secure = page.execute("return [location.protocol, window.isSecureContext, location.host]", &[])?;
    ensure!(secure == json!(["https:", true, addr::DOMAIN]), "not a secure context on the name: {secure}");
    eprintln!("{engine}: {}", page.execute("return navigator.userAgent", &[])?);

    // Opening the invite link enrols this browser and connects. The first page is left while it
    // reads its storage (fifty reads of the stored device under way): WebKit keeps a page it
    // left in its back-forward cache with what it had under way in IndexedDB, and a write from
    // the next page waited for it for good, so the enrolment was never saved and the later visit
    // below found no device. The page gives its storage up when it is left, and makes again
    // what it gave up if it comes back: first it is left and comes back (Back), and every read
    // it had under way answers.
    let link = relay.invite(device, "1h", None)?.to_link();
    page.wait_for("the first page to start", WAIT, "return document.body.dataset.state !== 'loading'")?;
    let reads =
        "window.__reads = Promise.allSettled(Array.from({length: 50}, () => window.hometun.isEnrolled())); return true";
    page.execute(reads, &[])?;
    page.goto("about:blank")?;
    page.execute("history.back(); return true", &[])?;
    let back = page.wait_for(
        "the first page back",
        WAIT,
        "return location.protocol === 'https:' && document.body && document.body.dataset.state \
           && document.body.dataset.state !== 'loading' ? (window.__reads ? 'from its cache' : 'loaded again') : null",
    )?;
    if back == "from its cache" {
        let answers = page.execute_async(
            "const done = arguments[0]; window.__reads.then((r) => done(r.map((x) => x.status === 'fulfilled' ? x.value : String(x.reason))))",
            &[],
        )?;
        let all_answered = answers.as_array().is_some_and(|a| a.len() == 50 && a.iter().all(|x| x == false));
        ensure!(all_answered, "the reads under way when the page was left, once it came back: {answers}");
    }
    let state = page.execute("return document.body.dataset.state", &[])?;
    ensure!(state == "welcome", "the first page back ({back}) shows {state}");
    eprintln!("{engine}: the first page came back {back}, its storage answering");
    page.execute(reads, &[])?;
    page.goto(&link)?;
    wait_connected(page, WAIT)?;
    let address = page.execute("return document.getElementById('s-address').textContent", &[])?;
    ensure!(address.as_str().is_some_and(|a| a.starts_with("10.8.0.")), "no tunnel address shown: {address}");
    relay.client(device).context("the device is listed")?;
    page.screenshot(&out.join(format!("{prefix}-connected.png")))?;

    // The Open tool shows the LAN host's page, fetched through the tunnel, and the status panel
    // counts that traffic; Ping gets replies from the LAN host; Lookup resolves its name through
    // the pushed DNS.
    let frame = tools::open_lan_page(page, &format!("http://{}/", addr::HOST10))?;
    ensure!(frame.contains("Hello from h10"), "the Open tool's frame shows {frame}");
    page.screenshot(&out.join(format!("{prefix}-lan.png")))?;
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

/// A password login as `device` on the LAN's OpenSSH server: a command answers, and UTF-8 text
/// round-trips (the server counts its bytes).
pub fn use_a_shell(page: &Session, relay: &Relay, sshd: &Sshd, device: &str) -> anyhow::Result<()> {
    page.goto(&relay.invite(device, "1h", None)?.to_link())?;
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

/// The Remote desktop card as `device` on the LAN's VNC server (painted [`GREEN`], named
/// `lab-desktop`): its colour on the canvas and its name in the title. Screenshot
/// `tests/output/<engine>-vnc.png`.
pub fn see_the_desktop(page: &Session, relay: &Relay, engine: &str, device: &str) -> anyhow::Result<()> {
    page.goto(&relay.invite(device, "1h", None)?.to_link())?;
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
    page.screenshot(&super::output_dir()?.join(format!("{}-vnc.png", engine.to_lowercase())))?;
    Ok(())
}

/// The lab host's page, once it shows: the origin it shows on.
pub const LAN_PAGE: &str =
    "return document.body && document.body.innerText.includes('Hello from h10') ? location.origin : null";

/// The app name of the LAN host's web page (`http://192.168.0.10/`), once the relay holds its
/// certificate from the lab CA (asked for as a launcher asks when it opens the app).
pub fn trusted_app_name(lab: &Lab, relay: &Relay, root: &str, engine: &str) -> anyhow::Result<String> {
    trusted_app_name_of(lab, relay, root, engine, std::net::SocketAddrV4::new(addr::HOST10, 80))
}

/// [`trusted_app_name`] for the app at `lan`.
pub fn trusted_app_name_of(
    lab: &Lab,
    relay: &Relay,
    root: &str,
    engine: &str,
    lan: std::net::SocketAddrV4,
) -> anyhow::Result<String> {
    crate::acme::retry(Duration::from_secs(60), || crate::acme::trusted_handshake(lab, addr::DOMAIN, root))?;
    let name = super::apps_page::app_name(lan.into());
    let device = format!("{}-apps-cert", engine.to_lowercase());
    let outcome = crate::acme::demand_app_certs(lab, relay, &device, None, &[AppTarget::http(lan)])?;
    ensure!(outcome[0].is_some_and(|o| o.opens()), "the relay refused {name}: {outcome:?}");
    crate::acme::retry(Duration::from_secs(60), || crate::acme::trusted_handshake(lab, &name, root))?;
    Ok(name)
}

/// What [`FETCH_BLOB`] gives when the file arrived intact.
pub fn intact_blob() -> serde_json::Value {
    let mut blob = vec![0u8; 100_000];
    crate::content::blob_bytes(100_000, 0, &mut blob);
    json!({"status": 200, "length": 100_000, "sha": crate::apps::sha256_hex(&blob)})
}

/// The Apps card's "Open here" on the LAN host's page: the app opens in the launcher's own
/// frame on its app name `name`, which reaches the tunnel through its parent, and fetches a LAN
/// file intact. Leaves the session on the launcher.
pub fn open_here(page: &Session, name: &str) -> anyhow::Result<()> {
    open_in_frame(page, &format!("http://{}/", addr::HOST10))?;
    let at = super::apps_page::wait(page, "the LAN host's page in the app's frame", WAIT, LAN_PAGE)?;
    ensure!(at == format!("https://{name}").as_str(), "the app's frame shows {at}");
    let got = page.execute_async(FETCH_BLOB, &[])?;
    ensure!(got == intact_blob(), "the framed app's fetch of /blob/100000: {got}");
    page.switch_to_frame(None)?;
    page.execute("document.getElementById('apps-viewer').scrollIntoView()", &[]).map(|_| ())
}

/// In the launcher: types `lan_url` into the Apps card, presses "Open here" and, once the app's
/// frame is there, sends further commands into it.
pub fn open_in_frame(page: &Session, lan_url: &str) -> anyhow::Result<()> {
    page.execute("document.getElementById('apps-address').value = arguments[0]", &[json!(lan_url)])?;
    page.click("#apps-open-here")?;
    super::apps_page::wait(
        page,
        "the app's frame",
        Duration::from_secs(20),
        "return document.querySelector('#apps-viewer iframe') !== null",
    )?;
    page.switch_to_frame(Some("#apps-viewer iframe"))
}

/// A browser that opens home web apps in the launcher's frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameEngine {
    /// Firefox ([`FirefoxDriver`](super::firefox::FirefoxDriver)).
    Firefox,
    /// WebKit ([`WebKitDriver`](super::webkit::WebKitDriver)).
    WebKit,
}

impl FrameEngine {
    /// The engine's name in messages ("WebKit").
    pub fn name(self) -> &'static str {
        match self {
            Self::Firefox => "Firefox",
            Self::WebKit => "WebKit",
        }
    }
}

/// A new device in `engine`, in a lab of its own with a relay that has a trusted certificate,
/// opens the LAN host's page in the launcher's frame ([`open_here`]) and takes `step` in that
/// frame; a failure panics through [`fail`] (`what` names the device and the screenshot).
pub fn in_the_launchers_frame(engine: FrameEngine, what: &str, step: impl FnOnce(&Session) -> anyhow::Result<()>) {
    let lab = Lab::start().expect("lab");
    let (root, relay) = trusted_relay(&lab).expect("ACME relay");
    let name = trusted_app_name(&lab, &relay, &root, engine.name()).expect("the app name's certificate");
    let hosts = [(addr::DOMAIN, addr::ROUTER_WAN), (name.as_str(), addr::ROUTER_WAN)];
    let label = format!("{}-{what}", engine.name().to_lowercase());
    let run = |page: &Session| -> anyhow::Result<()> {
        page.goto(&relay.invite(&label, "1h", None)?.to_link())?;
        wait_connected(page, WAIT)?;
        open_here(page, &name)?;
        page.switch_to_frame(Some("#apps-viewer iframe"))?;
        step(page)
    };
    in_engine(engine, &lab, &root, &hosts, &label, run);
}

/// A new device in `engine`, one engine at a time, in a lab of its own where `start` starts a home
/// app on `lan` and a relay has a trusted certificate: the launcher opens the app in its frame
/// (`lan_url`) and takes `step` there with the app; a failure panics through [`fail`] (`what`
/// names the device and the screenshot).
pub fn in_an_apps_frame<A>(
    engine: FrameEngine,
    what: &str,
    lan: std::net::SocketAddrV4,
    lan_url: &str,
    start: impl FnOnce(&Lab) -> anyhow::Result<A>,
    step: impl FnOnce(&Session, &A) -> anyhow::Result<()>,
) {
    let _one = one_at_a_time();
    let lab = Lab::start().expect("lab");
    let app = start(&lab).unwrap_or_else(|e| panic!("{what}: the app did not start: {e:#}"));
    let (root, relay) = trusted_relay(&lab).expect("ACME relay");
    let name = trusted_app_name_of(&lab, &relay, &root, engine.name(), lan).expect("the app name");
    let hosts = [(addr::DOMAIN, addr::ROUTER_WAN), (name.as_str(), addr::ROUTER_WAN)];
    let label = format!("{}-{what}", engine.name().to_lowercase());
    let run = |page: &Session| -> anyhow::Result<()> {
        page.goto(&relay.invite(&label, "1h", None)?.to_link())?;
        wait_connected(page, WAIT)?;
        open_in_frame(page, lan_url)?;
        step(page, &app)
    };
    in_engine(engine, &lab, &root, &hosts, &label, run);
}

/// Starts `engine` on the remote device (trusting `root`, resolving `hosts`) and runs `run` in a
/// window of it; a failure panics through [`fail`] (`label` names the screenshot).
pub fn in_engine(
    engine: FrameEngine,
    lab: &Lab,
    root: &str,
    hosts: &[(&str, std::net::Ipv4Addr)],
    label: &str,
    run: impl FnOnce(&Session) -> anyhow::Result<()>,
) {
    match engine {
        FrameEngine::Firefox => {
            let driver = super::firefox::FirefoxDriver::start(lab, Node::Wan, root, hosts).expect("Firefox");
            let page = driver.session(1200, 900).expect("a Firefox session");
            if let Err(e) = run(&page) {
                fail(&page, label, &driver.log(), e);
            }
        }
        FrameEngine::WebKit => {
            let driver = super::webkit::WebKitDriver::start(lab, Node::Wan, root, hosts).expect("WebKit");
            let page = driver.session(1200, 900).expect("MiniBrowser");
            if let Err(e) = run(&page) {
                fail(&page, label, &driver.log(), e);
            }
        }
    }
}
