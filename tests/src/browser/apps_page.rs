//! The browser side of the home web app scenarios (`tests/web_apps.rs`): a lab with an ACME CA
//! and a relay that has certificates for its name and for app names, a headless Chromium that
//! trusts only that CA's root (NSS database under its `HOME`, no ignore flags), the launcher
//! connected from an invite, and app tabs opened from its Apps card, or typed (docs/web-apps.md).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use super::webdriver::{Chromedriver, Session};
use crate::acme::{demand_app_certs, nss_trusting, retry, trusted_handshake};
use crate::lab::{addr, Acme, Lab, Node};
use crate::relay::{AcmeOptions, Relay, RelayOptions};
use hometun_shared::app_name::AppTarget;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The tunnel origin: the launcher page.
pub fn tunnel_origin() -> String {
    format!("https://{}", addr::DOMAIN)
}

/// The app origin of a LAN `host:port` (docs/names.md).
pub fn app_origin(lan: SocketAddr) -> String {
    format!("https://{}", app_name(lan))
}

/// The app name of a LAN `host:port`.
pub fn app_name(lan: SocketAddr) -> String {
    format!("h-{}-p{}.{}", lan.ip().to_string().replace('.', "-"), lan.port(), addr::DOMAIN)
}

/// The app origin of an app the LAN host serves over HTTPS itself (`-sPORT`).
pub fn https_app_origin(lan: SocketAddr) -> String {
    format!("https://{}", https_app_name(lan))
}

/// The app name of an app the LAN host serves over HTTPS itself.
pub fn https_app_name(lan: SocketAddr) -> String {
    format!("h-{}-s{}.{}", lan.ip().to_string().replace('.', "-"), lan.port(), addr::DOMAIN)
}

fn v4(lan: SocketAddr) -> anyhow::Result<std::net::SocketAddrV4> {
    match lan {
        SocketAddr::V4(v4) => Ok(v4),
        SocketAddr::V6(_) => bail!("{lan}: app names are for IPv4 LAN hosts"),
    }
}

/// Chromium's lab flags without any certificate exception, mapping the relay's name and every
/// app name to the router's public address.
pub fn trusting_args() -> Vec<String> {
    let mut args = super::chromium_args("");
    args.retain(|a| !a.starts_with("--ignore-certificate-errors"));
    args.push(format!("--host-resolver-rules=MAP {d} {a}, MAP *.{d} {a}", d = addr::DOMAIN, a = addr::ROUTER_WAN));
    assert!(!args.iter().any(|a| a.contains("ignore-certificate") || a.contains("spki")), "{args:?}");
    args
}

/// A lab whose relay has trusted certificates, and chromedriver for browsers that trust them.
pub struct TrustedLab {
    /// The lab.
    pub lab: Lab,
    /// Its ACME CA.
    pub ca: Acme,
    /// The CA's issuing root (PEM).
    pub root: String,
    /// The relay, serving the built page (`www/dist`).
    pub relay: Relay,
    /// chromedriver in `wan`, with the NSS database that trusts `root`.
    pub driver: Chromedriver,
}

impl TrustedLab {
    /// Starts the CA and the relay (with the built page), waits until the relay's name has a
    /// trusted certificate, and starts chromedriver.
    pub fn start(lab: &Lab) -> anyhow::Result<Self> {
        let dist = super::page_dist();
        anyhow::ensure!(
            dist.join("index.html").exists(),
            "no page build in {}: run scripts/build-page.sh",
            dist.display()
        );
        let ca = lab.start_acme()?;
        let root = ca.issuing_root()?;
        let relay = Relay::start(
            lab,
            RelayOptions { acme: Some(AcmeOptions::from(&ca)), www: Some(dist), ..RelayOptions::default() },
        )?;
        retry(Duration::from_secs(60), || trusted_handshake(lab, addr::DOMAIN, &root))
            .context("the relay never got a trusted certificate")?;
        let home = lab.dir().join("browser-home");
        nss_trusting(lab, &home, &root)?;
        let driver = Chromedriver::start_with_home(lab, Node::Wan, Some(&home))?;
        Ok(Self { lab: lab.clone(), ca, root, relay, driver })
    }

    /// A Chromium window trusting the CA.
    pub fn browser(&self) -> anyhow::Result<Session<'_>> {
        self.driver.session(&trusting_args(), 1200, 900)
    }

    /// Has the relay get the certificate of `lan`'s app name (asked through a tunnel, as the
    /// launcher asks when it opens an app) and waits until the browser trusts it; returns the
    /// app origin.
    pub fn trust_app(&self, lan: SocketAddr) -> anyhow::Result<String> {
        self.trust_name(AppTarget::http(v4(lan)?), &app_name(lan))
    }

    /// [`Self::trust_app`] for an app the LAN host serves over HTTPS itself.
    pub fn trust_https_app(&self, lan: SocketAddr) -> anyhow::Result<String> {
        self.trust_name(AppTarget::https(v4(lan)?), &https_app_name(lan))
    }

    fn trust_name(&self, app: AppTarget, name: &str) -> anyhow::Result<String> {
        static DEVICES: AtomicUsize = AtomicUsize::new(0);
        let device = format!("lab-apps-{}", DEVICES.fetch_add(1, Ordering::Relaxed));
        let outcome = demand_app_certs(&self.lab, &self.relay, &device, None, &[app])?;
        anyhow::ensure!(
            outcome[0].is_some_and(|o| o.opens()),
            "the relay refused the certificate for {name}: {outcome:?}"
        );
        retry(Duration::from_secs(60), || trusted_handshake(&self.lab, name, &self.root))
            .with_context(|| format!("{name} never got a trusted certificate"))?;
        Ok(format!("https://{name}"))
    }

    /// Enrols the browser from a fresh invite for `device` and waits until the launcher says
    /// connected; returns the launcher's window handle.
    pub fn connect(&self, page: &Session<'_>, device: &str) -> anyhow::Result<String> {
        let link = self.relay.invite(device, "1h", None)?.to_link();
        page.goto("about:blank")?;
        page.goto(&link)?;
        wait_connected(page, Duration::from_secs(30))?;
        page.window()
    }
}

/// Waits up to `timeout` until the launcher on `page` says connected (after an invite link, or
/// by itself when an enrolled launcher loads); an error with the page's text when it fails.
pub fn wait_connected(page: &Session<'_>, timeout: Duration) -> anyhow::Result<()> {
    let state = wait(
        page,
        "the launcher to connect or fail",
        timeout,
        "const s = document.body && document.body.dataset.state; \
         return s === 'connected' || s === 'failed' ? s : null",
    )
    .map_err(|e| {
        // A page that never started says which step of its start it is in.
        let step = page.execute("const b = document.body; return b ? [b.dataset.state, b.dataset.step] : null", &[]);
        e.context(format!("page state and start step: {}", step.map_or_else(|e| e.to_string(), |v| v.to_string())))
    })?;
    if state != "connected" {
        let error = page.execute("return document.body.innerText", &[])?;
        bail!("the launcher did not connect ({state}): {error}");
    }
    Ok(())
}

/// One field of the launcher's `hometun.status()` (`bytesIn`, `connectedSince`, …), read in the
/// launcher window `launcher`; the session then goes back to the window it was on.
pub fn launcher_status(page: &Session<'_>, launcher: &str, field: &str) -> anyhow::Result<Value> {
    let here = page.window()?;
    page.switch_to(launcher)?;
    let value = page.execute("return window.hometun.status()[arguments[0]]", &[field.into()]);
    page.switch_to(&here)?;
    value
}

/// The bytes the tunnel has taken in so far (`hometun.status().bytesIn`).
pub fn tunnel_bytes_in(page: &Session<'_>, launcher: &str) -> anyhow::Result<f64> {
    launcher_status(page, launcher, "bytesIn")?.as_f64().context("bytesIn")
}

/// Opens `lan_url` as an app from the launcher window `launcher` as a user does: the Apps card's
/// address field and "Open in new tab" (a tab without an opener: the app reaches the tunnel
/// through its broker frame); switches to the new tab and returns its handle and the app URL
/// (`hometun.appUrl(lan_url)`). The tab first shows the boot page; wait for the app's own content
/// after this.
pub fn open_app(page: &Session<'_>, launcher: &str, lan_url: &str) -> anyhow::Result<(String, String)> {
    page.switch_to(launcher)?;
    let before = page.windows()?;
    let url = page.execute_async(
        "const [lan, done] = arguments; \
         Promise.resolve().then(() => window.hometun.appUrl(lan)).then(url => { \
           const button = document.getElementById('apps-open-tab'); \
           if (button.hidden) { done('error: the launcher shows no \"Open in new tab\"'); return; } \
           document.getElementById('apps-address').value = lan; \
           done(String(url)); }, e => done('error: ' + e));",
        &[json!(lan_url)],
    )?;
    let url = url.as_str().unwrap_or_default().to_owned();
    if !url.starts_with("https://") {
        bail!("hometun.appUrl({lan_url}) gave {url}");
    }
    page.click("#apps-open-tab")?;
    let handle = wait_value(Duration::from_secs(10), || Ok(page.windows()?.into_iter().find(|h| !before.contains(h))))
        .context("\"Open in new tab\" in the launcher opened no tab")?;
    page.switch_to(&handle)?;
    Ok((handle, url))
}

/// Opens `url` in a new tab as a typed address or a bookmark would (DevTools
/// `Target.createTarget`: no opener, nothing in common with the other tabs); switches to it and
/// returns its handle.
pub fn open_typed(page: &Session<'_>, url: &str) -> anyhow::Result<String> {
    let before = page.windows()?;
    page.cdp("Target.createTarget", json!({ "url": url }))?;
    let handle = wait_value(Duration::from_secs(10), || Ok(page.windows()?.into_iter().find(|h| !before.contains(h))))
        .with_context(|| format!("no new tab for {url}"))?;
    page.switch_to(&handle)?;
    Ok(handle)
}

/// Closes the tab `handle` as a user does (DevTools `Target.closeTarget`, so its `pagehide`
/// runs) and switches to `next`.
pub fn close_tab(page: &Session<'_>, handle: &str, next: &str) -> anyhow::Result<()> {
    page.switch_to(handle)?;
    let info = page.cdp("Target.getTargetInfo", json!({}))?;
    let id = info["targetInfo"]["targetId"].as_str().context("Target.getTargetInfo")?.to_owned();
    page.switch_to(next)?;
    page.cdp("Target.closeTarget", json!({ "targetId": id }))?;
    wait_value(Duration::from_secs(10), || Ok((!page.windows()?.iter().any(|h| h == handle)).then_some(())))
        .context("the tab did not close")
}

/// Stops every service worker of the browser (DevTools: `ServiceWorker.enable`, then
/// `ServiceWorker.stopAllWorkers`), as the browser does to an idle worker. Fails unless at least
/// one worker ran before and, within 10 s, a moment comes when none that ran is running
/// (DevTools `Target.getTargets`).
///
/// A stopped worker keeps its DevTools target id when it starts again, and an event already on
/// its way starts it at once: a page's fetch, or the shim's `staying` answer to a worker that
/// was running an exchange. So the stop is repeated until a check finds it done, as a browser
/// stops an idle worker again.
pub fn stop_service_workers(page: &Session<'_>) -> anyhow::Result<()> {
    let running = running_service_workers(page)?;
    anyhow::ensure!(!running.is_empty(), "no service worker runs before stopping them");
    page.cdp("ServiceWorker.enable", json!({}))?;
    let mut stops = 0;
    wait_value(Duration::from_secs(10), || {
        page.cdp("ServiceWorker.stopAllWorkers", json!({}))?;
        stops += 1;
        std::thread::sleep(Duration::from_millis(100));
        let now = running_service_workers(page)?;
        Ok(now.iter().all(|w| !running.contains(w)).then_some(()))
    })
    .with_context(|| format!("service workers still run after stopping them {stops} times: {running:?}"))?;
    eprintln!("web apps: stopped service workers (DevTools target, script; stops): {running:?}; {stops}");
    Ok(())
}

/// The service workers that run now: DevTools target id and script URL of each.
pub fn running_service_workers(page: &Session<'_>) -> anyhow::Result<Vec<(String, String)>> {
    let text = |t: &Value, key: &str| t[key].as_str().unwrap_or_default().to_owned();
    Ok(service_worker_targets(page)?.iter().map(|t| (text(t, "targetId"), text(t, "url"))).collect())
}

/// DevTools' target infos of the service workers that run now.
fn service_worker_targets(page: &Session<'_>) -> anyhow::Result<Vec<Value>> {
    let targets = page.cdp("Target.getTargets", json!({}))?;
    Ok(targets["targetInfos"]
        .as_array()
        .context("Target.getTargets")?
        .iter()
        .filter(|t| t["type"] == "service_worker")
        .cloned()
        .collect())
}

/// Chromium lifts a service worker's time limits (five minutes an event, 30 s idle) while
/// DevTools is attached to it, and chromedriver's session attaches to every worker its tabs
/// start. Stops that for the current tab's session and detaches the workers it holds, so they
/// run under the limits a user's browser sets; fails when a worker stays attached.
pub fn workers_as_for_a_user(page: &Session<'_>) -> anyhow::Result<()> {
    page.cdp("Target.setAutoAttach", json!({ "autoAttach": false, "waitForDebuggerOnStart": false, "flatten": true }))?;
    let attached = attached_service_workers(page)?;
    anyhow::ensure!(attached.is_empty(), "DevTools stays attached to the service workers {attached:?}");
    Ok(())
}

/// The URLs of the service workers DevTools is attached to.
pub fn attached_service_workers(page: &Session<'_>) -> anyhow::Result<Vec<String>> {
    Ok(service_worker_targets(page)?
        .iter()
        .filter(|t| t["attached"] == true)
        .map(|t| t["url"].as_str().unwrap_or_default().to_owned())
        .collect())
}

/// Like [`Session::wait_for`], but a script error (a page navigating away mid-call) counts as
/// "not yet"; on timeout the error names `what` and shows the page's URL, text and console.
pub fn wait(page: &Session<'_>, what: &str, timeout: Duration, script: &str) -> anyhow::Result<Value> {
    let deadline = Instant::now() + timeout;
    let mut last_error = String::new();
    loop {
        match page.execute(script, &[]) {
            Ok(value) if !matches!(&value, Value::Null | Value::Bool(false)) && value != "" => return Ok(value),
            Ok(_) => {}
            Err(e) => last_error = format!("{e:#}"),
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}{}\n{}", last_error_line(&last_error), describe(page));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn last_error_line(e: &str) -> String {
    if e.is_empty() {
        String::new()
    } else {
        format!(" (last script error: {e})")
    }
}

/// From a page of an app whose device serves [`crate::content::GO_PAGE`] and echoes `/went` (as
/// [`crate::content::went_page`]): `rounds` times each of `ways`, goes to the page that writes a
/// cookie as it loads and at once leaves by that way, and checks that the page it went to came
/// with that cookie (and, for `button`, with the fields as they were sent and the button's own).
pub fn cookie_then_leave(page: &Session<'_>, ways: &[&str], rounds: usize, timeout: Duration) -> anyhow::Result<()> {
    let shown = "const c = document.getElementById('c'); return document.title === 'went' && c ? c.textContent : null";
    for round in 0..rounds {
        for (way, by) in ways.iter().enumerate() {
            let i = round * ways.len() + way;
            page.execute(
                "document.title = 'leaving'; location.href = `/go.html?by=${arguments[0]}&n=${arguments[1]}`; return 1",
                &[json!(by), json!(i)],
            )?;
            let got = wait(page, "the page the script went to", timeout, shown)?;
            let got = got.as_str().unwrap_or_default();
            let (method, query) = crate::content::went_request(by, i);
            let expected = format!("{method} ?{query} ");
            anyhow::ensure!(got.starts_with(&expected), "by {by} ({i}), the device saw {got:?}, not {expected:?}");
            let cookie = format!("n{i}=1");
            anyhow::ensure!(
                got.contains(&cookie),
                "by {by} ({i}), the page went without the cookie just written: {got:?}"
            );
        }
    }
    Ok(())
}

/// What tells the page's current document from the next one (`performance.timeOrigin`).
pub fn document_id(page: &Session<'_>) -> anyhow::Result<Value> {
    page.execute("return performance.timeOrigin", &[])
}

/// Waits (at most `timeout`) until a document other than `before` ([`document_id`]) has loaded.
pub fn new_document(page: &Session<'_>, before: &Value, timeout: Duration) -> anyhow::Result<()> {
    let script =
        format!("return performance.timeOrigin !== {before} && document.readyState === 'complete' ? true : null");
    wait(page, "the next page to load", timeout, &script).map(drop)
}

/// Reloads the page as a user does and waits (at most `timeout`) until the new document has
/// loaded ([`new_document`]).
pub fn reload(page: &Session<'_>, timeout: Duration) -> anyhow::Result<()> {
    let before = document_id(page)?;
    page.execute("location.reload(); return true", &[])?;
    new_document(page, &before, timeout)
}

/// Runs one part of the scenario `scenario`; on failure panics with the page's text, console and
/// a screenshot, so a red run says what the user would have seen.
pub fn step<T>(page: &Session<'_>, scenario: &str, name: &str, f: impl FnOnce() -> anyhow::Result<T>) -> T {
    let started = Instant::now();
    match f() {
        Ok(v) => {
            eprintln!("{scenario}: {name}: ok in {:.1?}", started.elapsed());
            v
        }
        Err(e) => {
            let shot = screenshot(page, &format!("{scenario}-{name}").replace(' ', "-"));
            panic!("{name}: {e:#}\n{}\nscreenshot: {shot:?}", describe(page));
        }
    }
}

/// The page's URL, the start of its text and the console so far (for failure messages).
pub fn describe(page: &Session<'_>) -> String {
    let at = page
        .execute("return [location.href, document.body ? document.body.innerText.slice(0, 1500) : '']", &[])
        .unwrap_or(Value::Null);
    format!(
        "page: {}\ntext: {}\nconsole:\n{}",
        at[0],
        at[1].as_str().unwrap_or_default().replace('\n', " | "),
        page.console()
    )
}

/// Saves a screenshot named `name` under `tests/output/` (for a person to look at after a
/// failure); returns its path.
pub fn screenshot(page: &Session<'_>, name: &str) -> Option<PathBuf> {
    let path = super::output_dir().ok()?.join(format!("{name}.png"));
    page.screenshot(&path).ok().map(|()| path)
}

/// Calls `f` every 100 ms until it gives something (returned), fails, or `timeout` passes.
pub fn wait_value<T>(timeout: Duration, mut f: impl FnMut() -> anyhow::Result<Option<T>>) -> anyhow::Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f()? {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
