//! Transfers through a home web app that last six minutes.
//!
//! A download should arrive whole, in Chromium (an app tab of its own, its worker without
//! DevTools so Chromium keeps its time limits), Firefox and WebKit (the launcher's frame): longer
//! than the five minutes Chromium gives a service worker's event, and far longer than the minute
//! Firefox lets a worker run after its last event. Every byte is checked, and that it took the
//! six minutes (docs/web-apps.md, "Long downloads and uploads"). Before the worker kept itself
//! running, beside the other end-to-end tests Chromium's body broke off with a network error at
//! about five minutes and Firefox's ended cleanly after 60 s with a sixth of the bytes.
//!
//! An upload (to a lab host that takes nothing for its first 150 s, its window closed, then
//! reads slowly, so the app's answer comes after six minutes) should arrive whole too, by `XMLHttpRequest` in Chromium (as upload pages send files) and by
//! `fetch` in Firefox: in Chromium only because the shim sends bodies of 1 MiB or more over a
//! port of its own, since Chromium ends a worker's fetch event whose answer has not come within
//! five minutes.
//!
//! An app read for six minutes with nothing asked of it should find the tunnel's connection still
//! up behind it, the launcher hidden and throttled as for a user.
//!
//! A page frozen as phones freeze background tabs should lose its app WebSocket at home after a
//! minute and more, and open a new one when it runs again.
//!
//! Ignored by `cargo test` (minutes); `scripts/test.sh` runs them all at once beside the
//! other end-to-end tests. Alone: `HOMETUN_LABS=7 cargo test -p hometun-tests --test
//! long_transfers -- --ignored --test-threads=7` (or one name: `download`, `upload`, `reading`,
//! `frozen`).
//!
//! Needs root and the page built (`bash scripts/build-page.sh`).

use anyhow::{ensure, Context};
use hometun_tests::browser::apps_page::{
    attached_service_workers, launcher_status, open_app, wait, workers_as_for_a_user, TrustedLab,
};
use hometun_tests::browser::engines::{in_the_launchers_frame, FrameEngine, LAN_PAGE, WAIT};
use hometun_tests::browser::transfers::{a_download_of, an_upload_of, an_xhr_upload_of};
use hometun_tests::browser::webdriver::Session;
use hometun_tests::lab::{addr, wait_until, Lab};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Longer than the five minutes of a worker's event, by a minute.
const SECS: u64 = 360;
/// About 17 KB/s: a slow link, and little work for a machine running other tests beside.
const SIZE: u64 = 6_000_000;

#[test]
#[ignore = "six minutes: scripts/test.sh runs it beside the other tests"]
fn a_six_minute_download_arrives_whole_in_an_app_tab_in_chromium() {
    in_a_chromium_app_tab("download", |_| Ok(()), |page, _, (), _| a_download_of(page, SECS, SIZE, "Chromium"));
}

#[test]
#[ignore = "six minutes: scripts/test.sh runs it beside the other tests"]
fn a_six_minute_xhr_upload_arrives_whole_from_an_app_tab_in_chromium() {
    in_a_chromium_app_tab("upload", |_| Ok(()), |page, _, (), _| an_xhr_upload_of(page, SECS, SIZE, "Chromium"));
}

#[test]
#[ignore = "six minutes: scripts/test.sh runs it beside the other tests"]
fn a_six_minute_download_arrives_whole_in_the_launchers_frame_in_firefox() {
    in_the_frame(FrameEngine::Firefox, a_download_of, "download");
}

#[test]
#[ignore = "six minutes: scripts/test.sh runs it beside the other tests"]
fn a_six_minute_upload_arrives_whole_from_the_launchers_frame_in_firefox() {
    in_the_frame(FrameEngine::Firefox, an_upload_of, "upload");
}

#[test]
#[ignore = "six minutes: scripts/test.sh runs it beside the other tests"]
fn a_six_minute_download_arrives_whole_in_the_launchers_frame_in_webkit() {
    in_the_frame(FrameEngine::WebKit, a_download_of, "download");
}

/// A person reads an app in its tab for six minutes and touches nothing: the launcher behind it
/// is hidden all that time, with Chromium's background throttling on as a user's has it (five
/// minutes hidden is when Chromium may start waking a tab's timers only once a minute). Its
/// keepalives still keep the tunnel's connection (the relay drops one silent for a minute): the
/// same connection is up afterwards, and the app answers at once.
#[test]
#[ignore = "six minutes: scripts/test.sh runs it beside the other tests"]
fn reading_an_app_for_six_minutes_finds_its_tunnel_still_connected_behind_it_in_chromium() {
    in_a_chromium_app_tab("reading", note_the_connection_and_when_hidden, |page, launcher, since, _| {
        std::thread::sleep(Duration::from_secs(SECS));
        let read_until = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis();
        let answer = page.execute_async(
            "const done = arguments[arguments.length - 1]; const t0 = performance.now(); \
             fetch('/index.html', {cache: 'no-store'}).then(r => r.text()) \
               .then(t => done([t.includes('Hello from h10'), performance.now() - t0]), e => done(String(e)))",
            &[],
        )?;
        eprintln!("Chromium: the app answered after six minutes of reading: {answer}");
        ensure!(answer[0] == true, "the app's answer after six minutes: {answer}");
        ensure!(answer[1].as_f64().is_some_and(|ms| ms < 2000.0), "the app took {} ms to answer", answer[1]);

        page.switch_to(launcher)?;
        let log = page.execute("return window.visibilityLog", &[])?;
        eprintln!("Chromium: the launcher's visibility (ms since 1970, state): {log}; reading ended at {read_until}");
        let entries = log.as_array().cloned().unwrap_or_default();
        ensure!(entries.first().map(|e| e[1].clone()) == Some("hidden".into()), "the launcher was never hidden: {log}");
        let shown_early =
            entries.iter().any(|e| e[1] == "visible" && e[0].as_f64().is_some_and(|at| (at as u128) < read_until));
        ensure!(!shown_early, "the launcher was shown while the app was read, which proves nothing: {log}");
        let after = launcher_status(page, launcher, "connectedSince")?;
        ensure!(
            after == since,
            "the tunnel's connection did not live through six minutes behind the app: {since} then {after}"
        );
        Ok(())
    });
}

/// A phone freezes a page it no longer shows (Chromium's page lifecycle, as Android does with
/// background tabs): the page runs nothing and answers nothing. Its app WebSocket would hold a
/// connection to the home server for as long as the launcher runs, so the launcher closes it
/// once the page has answered nothing for a minute after being asked (and not sooner: a page
/// busy with a long script, or showing `alert()`, keeps its sockets), and the home server's
/// connection ends with it. Running again, the page finds its WebSocket closed, as a real
/// socket's server would have timed it out, and a new one works.
#[test]
#[ignore = "two minutes: scripts/test.sh runs it beside the other tests"]
fn a_frozen_pages_websocket_is_closed_at_home_and_a_new_one_works_when_it_runs_again_in_chromium() {
    in_a_chromium_app_tab(
        "frozen",
        |_| Ok(()),
        |page, _, (), lab| {
            let open = page.execute_async(
            "const done = arguments[arguments.length - 1]; \
             const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/ws/echo'); window.frozenSocket = ws; \
             ws.onopen = () => ws.send('before'); ws.onmessage = (e) => done(e.data); ws.onerror = () => done('error');",
            &[],
        )?;
            ensure!(open == "before", "the app's WebSocket before the freeze: {open}");
            let sockets =
                |what: &str| lab.log("h10").lines().filter(|l| l.starts_with("ws-echo ") && l.ends_with(what)).count();
            ensure!(sockets(" open") == 1 && sockets(" closed") == 0, "the home server's sockets: {}", lab.log("h10"));

            let frozen = Instant::now();
            page.cdp("Page.setWebLifecycleState", json!({"state": "frozen"}))?;
            let closed = wait_until(Duration::from_secs(150), || (sockets(" closed") == 1).then(|| frozen.elapsed()));
            page.cdp("Page.setWebLifecycleState", json!({"state": "active"}))?;
            let closed = closed.context("the frozen page's WebSocket still open at home after 150 s")?;
            eprintln!("Chromium: the frozen page's WebSocket was closed at home after {closed:.1?}");
            ensure!(closed >= Duration::from_secs(60), "closed at home {closed:?} after the freeze: before a minute");

            let again = page.execute_async(
                "const done = arguments[arguments.length - 1]; const old = window.frozenSocket; \
             const reopen = () => { \
               if (old.readyState !== WebSocket.CLOSED) return setTimeout(reopen, 100); \
               const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/ws/echo'); \
               ws.onopen = () => ws.send('after'); ws.onmessage = (e) => done([old.readyState, e.data]); \
               ws.onerror = () => done('error'); }; \
             reopen();",
                &[],
            )?;
            ensure!(again == json!([3, "after"]), "the page running again: {again}");
            ensure!(sockets(" open") == 2, "the home server's sockets: {}", lab.log("h10"));
            Ok(())
        },
    );
}

/// In the launcher, before the app opens: when its tunnel connection came up, and a log of when
/// it is hidden and shown.
fn note_the_connection_and_when_hidden(page: &Session) -> anyhow::Result<Value> {
    let since = page.execute("return window.hometun.status().connectedSince", &[])?;
    ensure!(since.is_number(), "the launcher says no connection is up: connectedSince {since}");
    page.execute(
        "window.visibilityLog = []; \
         document.addEventListener('visibilitychange', () => window.visibilityLog.push([Date.now(), document.visibilityState]))",
        &[],
    )?;
    Ok(since)
}

/// A new device in Chromium: `in_the_launcher` runs in the launcher, then the device opens the
/// LAN host's page in an app tab, whose worker runs without DevTools as a user's does, and takes
/// `in_the_app` (a `what`) there, with the launcher's handle, what `in_the_launcher` returned and
/// the lab.
fn in_a_chromium_app_tab<T>(
    what: &str,
    in_the_launcher: fn(&Session) -> anyhow::Result<T>,
    in_the_app: impl FnOnce(&Session, &str, T, &Lab) -> anyhow::Result<()>,
) {
    let lab = Lab::start().expect("lab");
    let trusted = TrustedLab::start(&lab).expect("trusted relay");
    let lan = std::net::SocketAddr::from((addr::HOST10, 80));
    trusted.trust_app(lan).expect("the app name's certificate");
    let page = trusted.browser().expect("Chromium");
    let launcher = trusted.connect(&page, &format!("long-{what}-laptop")).expect("the launcher");
    let noted = in_the_launcher(&page).expect("the launcher, before the app");
    open_app(&page, &launcher, &format!("http://{lan}/")).expect("an app tab");
    wait(&page, "the LAN host's page in its tab", WAIT, LAN_PAGE).expect("the app");
    workers_as_for_a_user(&page).expect("the app's worker without DevTools");
    in_the_app(&page, &launcher, noted, &lab).unwrap();
    let attached = attached_service_workers(&page).expect("the workers");
    assert!(attached.is_empty(), "DevTools was attached to {attached:?} during the {what}: it proves nothing");
}

/// A new device in `engine` opens the LAN host's page in the launcher's frame and takes `step`
/// (a `what`) there.
fn in_the_frame(engine: FrameEngine, step: Step, what: &str) {
    in_the_launchers_frame(engine, &format!("long-{what}"), |page| step(page, SECS, SIZE, engine.name()));
}

/// A transfer the page makes: [`a_download_of`], [`an_upload_of`] or [`an_xhr_upload_of`].
type Step = fn(&Session, u64, u64, &str) -> anyhow::Result<()>;
