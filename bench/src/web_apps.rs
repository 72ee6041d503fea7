//! `hometun-bench web-apps`: home web apps through the page beside the same apps loaded
//! directly, in the same Chromium build. Figures printed, nothing written.
//!
//! - Through the tunnel: Chromium on the remote device (trusting only the lab ACME CA's root),
//!   the launcher connected, Jupyter's login page opened as an app tab from it (`appUrl`,
//!   `window.open`). Cold = from `window.open` to the login form on a fresh app origin (boot
//!   page, service worker install, port, reload, the page and its scripts through the tunnel);
//!   warm = `loadEventEnd` of a reload (service worker running, browser cache warm). Return
//!   visit = Chromium started again on the same profile, the launcher reconnected (untimed),
//!   the app opened again from it: from there to the login form, and the bytes the tunnel took
//!   in meanwhile (what the app origin's cache saved shows there).
//! - Direct: Chromium on the home server (inside the LAN) loading the same page by its LAN URL,
//!   cold (fresh profile), warm (reload) and return visit (restarted, then the same URL).
//! - 64 MiB: `fetch` of a 64 MiB file from nginx on a LAN host, through the service worker
//!   (app tab), through the launcher's own `hometun.fetch` (the tunnel without the service
//!   worker: what the worker path costs on top), and directly; timed in the page, SHA-256
//!   checked, the median of `--fetches` each.
//! - 64 MiB up: `PUT` of 64 MiB made in the page to the same nginx (WebDAV, as a NAS takes a
//!   file), the same three ways (from the app tab the shim sends so large a body over a port of
//!   the page's own, not through the service worker); timed in the page until the answer, the
//!   stored file's SHA-256 checked against the page's.
//! - Home Assistant, a heavy single-page app (a few MB of scripts on one WebSocket), both
//!   ways: cold = from opening it to its sign-in page; sign-in = from pressing "Log in" to the
//!   dashboard showing the switch; warm = a reload to the dashboard (signed in, median of
//!   `--reloads`); return visit = after the browser restart, from opening it to the dashboard
//!   (the tokens it keeps on its origin), and the bytes the tunnel took in meanwhile. Direct
//!   also counts what the dashboard loaded (resource timing: files and bytes).
//!
//! Needs root and the page built (`bash scripts/build-page.sh`).

use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use hometun_tests::apps::home_assistant::{self, HomeAssistant};
use hometun_tests::apps::nginx::{Nginx, DAV};
use hometun_tests::apps::{jupyter, jupyter::Jupyter, sha256_hex};
use hometun_tests::browser::apps_page::{self, open_app, wait, TrustedLab};
use hometun_tests::browser::webdriver::{Chromedriver, Session};
use hometun_tests::lab::{addr, Lab, Node};
use serde_json::{json, Value};

use crate::cases::browser_profile;

use crate::stats::{summarize, Summary};

/// Options of `web-apps`.
#[derive(clap::Args, Debug)]
pub(crate) struct Options {
    /// Warm reloads measured per side (median printed).
    #[arg(long, default_value_t = 5)]
    reloads: u32,
    /// 64 MiB fetches per path (median printed).
    #[arg(long, default_value_t = 3)]
    fetches: u32,
    /// After the measured fetches, profile the launcher page (Chromium's sampling profiler)
    /// during one more fetch and one more upload each way, and print where its time went.
    #[arg(long)]
    profile: bool,
    /// Limit the remote device's internet link to this many Mbit/s each way, as a phone's
    /// mobile data might (the direct browser, inside the LAN, is not limited).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    link_mbit: Option<u32>,
}

const BIG: u64 = 64 << 20;
const FILES: (std::net::Ipv4Addr, u16) = (addr::HOST10, 8080);

/// Runs the web app bench and prints its figures.
pub(crate) fn run(options: &Options) -> anyhow::Result<()> {
    let lab = Lab::start()?;
    let _jupyter = Jupyter::start(&lab)?;
    let _ha = HomeAssistant::start(&lab)?;
    let nginx = Nginx::start_with(&lab, Node::Host10, FILES.into(), "files", &[], DAV)?;
    let sha = nginx.add_random_file("big.bin", BIG as usize)?;
    if let Some(mbit) = options.link_mbit {
        lab.limit_remote_link(mbit)?;
    }
    let trusted = TrustedLab::start(&lab)?;
    trusted.trust_app(jupyter::ADDR)?;
    trusted.trust_app(nginx.addr)?;
    let ha_origin = trusted.trust_app(home_assistant::ADDR)?;

    // Profiles kept on disk, so each side can come back after a browser restart.
    let profile = |name: &str, args: Vec<String>| {
        let mut args = args;
        args.push(format!("--user-data-dir={}", lab.dir().join(name).display()));
        args
    };
    let tunnel_args = profile("bench-profile-tunnel", apps_page::trusting_args());
    let page = trusted.driver.session(&tunnel_args, 1200, 900)?;
    let launcher = trusted.connect(&page, "bench-phone")?;
    let tunnel_cold = to_login_form(&page, || open_app(&page, &launcher, &jupyter::lan_url()).map(drop))?;
    let tunnel_warm = warm_reloads(&page, options.reloads)?;
    let tunnel_bytes = || apps_page::tunnel_bytes_in(&page, &launcher);
    let tunnel_ha = ha_first_visit(&page, &ha_origin, options.reloads, Some(&tunnel_bytes), || {
        open_app(&page, &launcher, &home_assistant::lan_url()).map(drop)
    })?;
    page.switch_to(&launcher)?;
    open_app(&page, &launcher, &format!("http://{}/", nginx.addr))?;
    wait(&page, "the file server's index", Duration::from_secs(60), "return document.querySelector('h1') ? 1 : null")?;
    let tunnel_big = runs(options.fetches, || fetch_big(&page, "fetch", "/big.bin", &sha))?;
    let tunnel_up = runs(options.fetches, || put_big(&page, "fetch", "", &nginx))?;
    let app = page.window()?;
    page.switch_to(&launcher)?;
    let lan_big = format!("http://{}/big.bin", nginx.addr);
    let launcher_big = runs(options.fetches, || fetch_big(&page, "window.hometun.fetch", &lan_big, &sha))?;
    let lan_origin = format!("http://{}", nginx.addr);
    let launcher_up = runs(options.fetches, || put_big(&page, "window.hometun.fetch", &lan_origin, &nginx))?;
    let mut profiles = Vec::new();
    if options.profile {
        profiles.push(profiled(&page, &launcher, "64 MiB through the service worker (the app tab's fetch)", || {
            page.switch_to(&app)?;
            fetch_big(&page, "fetch", "/big.bin", &sha)?;
            page.switch_to(&launcher)
        })?);
        profiles.push(profiled(&page, &launcher, "64 MiB by the launcher's hometun.fetch", || {
            fetch_big(&page, "window.hometun.fetch", &lan_big, &sha).map(drop)
        })?);
        profiles.push(profiled(
            &page,
            &launcher,
            "64 MiB PUT from the app tab (its fetch, over the page's own port)",
            || {
                page.switch_to(&app)?;
                put_big(&page, "fetch", "", &nginx)?;
                page.switch_to(&launcher)
            },
        )?);
        profiles.push(profiled(&page, &launcher, "64 MiB PUT by the launcher's hometun.fetch", || {
            put_big(&page, "window.hometun.fetch", &lan_origin, &nginx).map(drop)
        })?);
    }
    drop(page);
    // A return visit: Chromium again on the same profile (its memory cache gone, what it keeps
    // on disk kept); the launcher reconnects by itself (not timed), then the app opens again.
    let again = trusted.driver.session(&tunnel_args, 1200, 900)?;
    again.goto(&format!("{}/", apps_page::tunnel_origin()))?;
    apps_page::wait_connected(&again, Duration::from_secs(60))?;
    let launcher = again.window()?;
    let bytes_before = apps_page::tunnel_bytes_in(&again, &launcher)?;
    let tunnel_return = to_login_form(&again, || open_app(&again, &launcher, &jupyter::lan_url()).map(drop))?;
    again.switch_to(&launcher)?;
    let return_kb = (apps_page::tunnel_bytes_in(&again, &launcher)? - bytes_before) / 1e3;
    let bytes_before = apps_page::tunnel_bytes_in(&again, &launcher)?;
    let tunnel_ha_return = to_dashboard(|| open_app(&again, &launcher, &home_assistant::lan_url()).map(drop), &again)?;
    again.switch_to(&launcher)?;
    let ha_return_kb = (apps_page::tunnel_bytes_in(&again, &launcher)? - bytes_before) / 1e3;
    drop(again);

    // Chromium inside the LAN (on the home server), same binary and flags, no tunnel.
    let direct_driver = Chromedriver::start(&lab, Node::Home)?;
    // The direct pages are plain http: let the digest API run there (it needs a secure context).
    let mut direct_args = apps_page::trusting_args();
    direct_args.push(format!("--unsafely-treat-insecure-origin-as-secure=http://{}", nginx.addr));
    // No name lookups (the page is on an IP address): with a profile on disk, Chromium otherwise
    // held the first page load for about 16 s in the lab (no DNS server answers there).
    direct_args.retain(|a| !a.starts_with("--host-resolver-rules"));
    direct_args.push(format!(
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE {}, EXCLUDE {}",
        addr::HOST10,
        addr::HOST20
    ));
    let direct_args = profile("bench-profile-direct", direct_args);
    let direct = direct_driver.session(&direct_args, 1200, 900)?;
    let login = format!("{}login", jupyter::lan_url());
    let direct_cold = to_login_form(&direct, || direct.goto(&login))?;
    let direct_warm = warm_reloads(&direct, options.reloads)?;
    let ha_lan = home_assistant::lan_url();
    let ha_lan_origin = ha_lan.trim_end_matches('/').to_owned();
    let direct_ha = ha_first_visit(&direct, &ha_lan_origin, options.reloads, None, || direct.goto(&ha_lan))?;
    let ha_loads = direct.execute(
        "const r = performance.getEntriesByType('resource'); \
         return [r.length, r.reduce((n, e) => n + (e.encodedBodySize || 0), 0)]",
        &[],
    )?;
    direct.goto(&format!("http://{}/", nginx.addr))?;
    let direct_big = runs(options.fetches, || fetch_big(&direct, "fetch", &lan_big, &sha))?;
    let direct_up = runs(options.fetches, || put_big(&direct, "fetch", "", &nginx))?;
    drop(direct);
    let again = direct_driver.session(&direct_args, 1200, 900)?;
    let direct_return = to_login_form(&again, || again.goto(&login))?;
    let direct_ha_return = to_dashboard(|| again.goto(&ha_lan), &again)?;
    drop(again);

    println!("home web apps: Jupyter login page and 64 MiB, Chromium {}", chromium_version());
    println!(
        "| | through the tunnel (app origin, service worker) | the launcher's hometun.fetch (tunnel, no worker) | direct (browser inside the LAN) |"
    );
    println!("|---|---|---|---|");
    println!("| page load, cold | {tunnel_cold:.0} ms | – | {direct_cold:.0} ms |");
    println!("| page load, warm (median of {}) | {tunnel_warm:.0} ms | – | {direct_warm:.0} ms |", options.reloads);
    println!(
        "| page load, return visit (browser restarted) | {tunnel_return:.0} ms, {return_kb:.0} KB through the tunnel | – | {direct_return:.0} ms |"
    );
    let mb_s = |ms: f64| BIG as f64 / 1e3 / ms;
    let rate = |t: Summary| format!("{:.1} MB/s ({:.1}–{:.1})", mb_s(t.median), mb_s(t.max), mb_s(t.min));
    println!(
        "| 64 MiB fetch (median of {}) | {} | {} | {} |",
        options.fetches,
        rate(tunnel_big),
        rate(launcher_big),
        rate(direct_big)
    );
    println!(
        "| 64 MiB upload, PUT (median of {}; the app tab's over its own port) | {} | {} | {} |",
        options.fetches,
        rate(tunnel_up),
        rate(launcher_up),
        rate(direct_up)
    );
    println!(
        "\nhome web apps: Home Assistant {} (its dashboard loaded {} files, {:.0} KB, directly)",
        home_assistant::VERSION,
        ha_loads[0],
        ha_loads[1].as_f64().unwrap_or(0.0) / 1e3
    );
    println!("| | through the tunnel (app origin, service worker) | direct (browser inside the LAN) |");
    println!("|---|---|---|");
    if let Some(mbit) = options.link_mbit {
        println!("(the remote device's link limited to {mbit} Mbit/s each way; the direct browser is not)");
    }
    println!(
        "| sign-in page, cold | {:.0} ms, {:.0} KB through the tunnel | {:.0} ms |",
        tunnel_ha.cold, tunnel_ha.cold_kb, direct_ha.cold
    );
    println!(
        "| \"Log in\" pressed → dashboard | {:.0} ms, {:.0} KB through the tunnel | {:.0} ms |",
        tunnel_ha.signed_in, tunnel_ha.signed_in_kb, direct_ha.signed_in
    );
    println!(
        "| dashboard, reload (median of {}) | {:.0} ms | {:.0} ms |",
        options.reloads, tunnel_ha.warm, direct_ha.warm
    );
    println!(
        "| dashboard, return visit (browser restarted) | {tunnel_ha_return:.0} ms, {ha_return_kb:.0} KB through the tunnel | {direct_ha_return:.0} ms |"
    );
    for profile in profiles {
        println!("\n{profile}");
    }
    Ok(())
}

/// Runs `work` with Chromium's sampling profiler on the launcher page (the tunnel's thread);
/// the summary of where that page's time went, headed by `title`.
fn profiled(
    page: &Session<'_>,
    launcher: &str,
    title: &str,
    work: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<String> {
    page.switch_to(launcher)?;
    page.cdp("Profiler.enable", json!({}))?;
    page.cdp("Profiler.setSamplingInterval", json!({ "interval": browser_profile::INTERVAL_US }))?;
    page.cdp("Profiler.start", json!({}))?;
    work()?;
    let stopped = page.cdp("Profiler.stop", json!({}))?;
    page.cdp("Profiler.disable", json!({}))?;
    browser_profile::summarise(&stopped["profile"], title)
}

/// The time `open` takes to bring Jupyter's login form up on `page`, in ms.
fn to_login_form(page: &Session<'_>, open: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let started = Instant::now();
    open()?;
    wait(page, "Jupyter's login page", Duration::from_secs(60), LOGIN_FORM)?;
    Ok(started.elapsed().as_secs_f64() * 1e3)
}

/// Home Assistant's first visit on one side, in ms.
struct HaVisit {
    /// From opening it to its sign-in page.
    cold: f64,
    /// From pressing "Log in" to the dashboard.
    signed_in: f64,
    /// A reload to the dashboard (median).
    warm: f64,
    /// KB the tunnel took in for the sign-in page and for the dashboard (0 without a tunnel).
    cold_kb: f64,
    signed_in_kb: f64,
}

/// Opens Home Assistant on `page` with `open` (it is on `origin`), signs in, and reloads it
/// `reloads` times; the times of each, and what the tunnel took in meanwhile (`tunnel_bytes`,
/// the launcher's count, when there is a tunnel).
fn ha_first_visit(
    page: &Session<'_>,
    origin: &str,
    reloads: u32,
    tunnel_bytes: Option<&dyn Fn() -> anyhow::Result<f64>>,
    open: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<HaVisit> {
    let bytes = || tunnel_bytes.map_or(Ok(0.0), |count| count());
    let before = bytes()?;
    let started = Instant::now();
    open()?;
    let at = home_assistant::see_the_sign_in_page(page)?;
    let cold = started.elapsed().as_secs_f64() * 1e3;
    let signing_in = bytes()?;
    ensure!(at == origin, "Home Assistant's sign-in page is on {at}, not {origin}");
    home_assistant::sign_in(page, origin, home_assistant::PASSWORD)?;
    let pressed = Instant::now();
    home_assistant::see_the_switch(page, "off")?;
    let signed_in = pressed.elapsed().as_secs_f64() * 1e3;
    let (cold_kb, signed_in_kb) = ((signing_in - before) / 1e3, (bytes()? - signing_in) / 1e3);
    let warm = runs(reloads, || to_dashboard(|| page.execute("location.reload(); return 1", &[]).map(drop), page))?;
    Ok(HaVisit { cold, signed_in, warm: warm.median, cold_kb, signed_in_kb })
}

/// The time `open` takes to bring Home Assistant's dashboard up on `page` (signed in), in ms.
fn to_dashboard(open: impl FnOnce() -> anyhow::Result<()>, page: &Session<'_>) -> anyhow::Result<f64> {
    let before = apps_page::document_id(page)?;
    let started = Instant::now();
    open()?;
    // The old document may still show the dashboard for a moment: wait for the new one first.
    apps_page::new_document(page, &before, home_assistant::LOAD)?;
    home_assistant::see_the_switch(page, "off")?;
    Ok(started.elapsed().as_secs_f64() * 1e3)
}

const LOGIN_FORM: &str =
    "return location.pathname === '/login' && document.querySelector('input[name=password]') ? 1 : null";

/// Reloads the current page `n` times; the median of `loadEventEnd` (ms from navigation start).
fn warm_reloads(page: &Session<'_>, n: u32) -> anyhow::Result<f64> {
    let reload = || {
        page.execute("location.reload(); return 1", &[])?;
        std::thread::sleep(Duration::from_millis(200));
        let ms = wait(
            page,
            "a reload to finish",
            Duration::from_secs(60),
            "const n = performance.getEntriesByType('navigation')[0]; \
             return n && n.loadEventEnd > 0 && document.querySelector('input[name=password]') ? n.loadEventEnd : null",
        )?;
        ms.as_f64().context("loadEventEnd")
    };
    Ok(runs(n, reload)?.median)
}

/// The times of `n` (at least one) runs of `run`, in ms.
fn runs(n: u32, mut run: impl FnMut() -> anyhow::Result<f64>) -> anyhow::Result<Summary> {
    let times = (0..n.max(1)).map(|_| run()).collect::<anyhow::Result<Vec<f64>>>()?;
    summarize(&times).context("nothing measured")
}

/// Fetches `url` in the page with the function `fetch` names (`fetch`, `window.hometun.fetch`),
/// reads the whole body and checks its SHA-256; the time in ms.
fn fetch_big(page: &Session<'_>, fetch: &str, url: &str, sha: &str) -> anyhow::Result<f64> {
    let got: Value = page.execute_async(
        &format!(
            r#"const [url, done] = arguments;
        (async () => {{
          const t0 = performance.now();
          const r = await {fetch}(url);
          const b = await r.arrayBuffer();
          const ms = performance.now() - t0;
          const d = new Uint8Array(await crypto.subtle.digest('SHA-256', b));
          return {{status: r.status, ms, sha: [...d].map(x => x.toString(16).padStart(2, '0')).join('')}};
        }})().then(done, e => done({{error: String(e)}}));"#
        ),
        &[Value::from(url)],
    )?;
    ensure!(got["status"] == 200 && got["sha"] == sha, "64 MiB from {url}: {got}");
    got["ms"].as_f64().context("time")
}

/// PUTs 64 MiB made in the page (once per page, random) to `/dav/up.bin` under `origin` (empty:
/// the page's own) with the function `fetch` names, and checks that the file nginx stored has
/// the page's SHA-256; the time in ms from the call to the answer.
fn put_big(page: &Session<'_>, fetch: &str, origin: &str, nginx: &Nginx) -> anyhow::Result<f64> {
    let stored = nginx.root().join("dav/up.bin");
    let _ = std::fs::remove_file(&stored);
    let got: Value = page.execute_async(
        &format!(
            r#"const [url, size, done] = arguments;
        (async () => {{
          if (!window.__benchUpload) {{
            const body = new Uint8Array(size);
            for (let at = 0; at < size; at += 65536) crypto.getRandomValues(body.subarray(at, at + 65536));
            const d = new Uint8Array(await crypto.subtle.digest('SHA-256', body));
            window.__benchUpload = {{body, sha: [...d].map(x => x.toString(16).padStart(2, '0')).join('')}};
          }}
          const {{body, sha}} = window.__benchUpload;
          const t0 = performance.now();
          const r = await {fetch}(url, {{method: 'PUT', body}});
          await r.arrayBuffer();
          return {{status: r.status, ms: performance.now() - t0, sha}};
        }})().then(done, e => done({{error: String(e)}}));"#
        ),
        &[Value::from(format!("{origin}/dav/up.bin")), Value::from(BIG)],
    )?;
    let on_disk = std::fs::read(&stored).map(|b| sha256_hex(&b)).unwrap_or_default();
    ensure!(
        matches!(got["status"].as_u64(), Some(201 | 204)) && got["sha"] == on_disk.as_str(),
        "64 MiB PUT to {origin}/dav/up.bin: {got}, stored SHA-256 {on_disk:?}"
    );
    got["ms"].as_f64().context("time")
}

fn chromium_version() -> String {
    std::process::Command::new(hometun_tests::browser::CHROMIUM)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}
