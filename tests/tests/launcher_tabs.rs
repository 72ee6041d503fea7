//! Launcher tabs: the device has one tunnel, and one tab of the browser runs it. A person with a
//! home app open in a tab of its own opens hometun again in another tab (a bookmark, the home
//! screen icon): that tab says hometun runs in another tab and leaves the tunnel alone, so the
//! app goes on. Closing the first tab, the second takes over by itself and the app tab carries on
//! without a reload. Pressing Connect in a third tab moves the tunnel there at once; the tab it
//! left does not take it back, and the app follows it. A cookie the app sets meanwhile is still
//! there when the tunnel goes back to a tab that ran it before. A cookie written while no
//! launcher runs is kept, and does not hold the app's requests up once one runs again; the app's
//! scripts see the cookies the app sets after that (`document.cookie` follows the jar again).
//!
//! Needs root and the page built (`bash scripts/build-page.sh`).

use std::time::Duration;

use anyhow::{ensure, Context};
use hometun_tests::apps::nginx::Nginx;
use hometun_tests::browser::apps_page::{
    self, close_tab, launcher_status, open_app, open_typed, wait, wait_connected, wait_value, TrustedLab,
};
use hometun_tests::browser::webdriver::Session;
use hometun_tests::lab::{addr, Lab, Node};
use serde_json::Value;

const SCENARIO: &str = "launcher tabs";
const NOTE: &[u8] = b"<!doctype html><title>note</title><h1>FRIDGE-NOTE buy milk</h1>\n";
/// How long a tab may take to take over, or an app to find the tab that runs the tunnel now.
const TAKE_OVER: Duration = Duration::from_secs(30);

fn step<T>(page: &Session<'_>, name: &str, f: impl FnOnce() -> anyhow::Result<T>) -> T {
    apps_page::step(page, SCENARIO, name, f)
}

/// What a script of the app tab `app` fetches from its own origin (through the app's service
/// worker and the tunnel), or the error it got; at most 15 s.
fn fetch_in_app(page: &Session<'_>, app: &str) -> anyhow::Result<String> {
    page.switch_to(app)?;
    let got = page.execute_async(
        "const done = arguments[0]; \
         const late = new Promise((r) => setTimeout(() => r('error: no answer in 15 s'), 15000)); \
         Promise.race([fetch('/note.html?at=' + Date.now(), { cache: 'no-store' }) \
           .then((r) => r.text().then((t) => r.status + ' ' + t)), late]) \
           .then(done, (e) => done('error: ' + e));",
        &[],
    )?;
    Ok(got.as_str().unwrap_or_default().to_owned())
}

/// Waits until the app tab's fetch brings the note again.
fn app_works(page: &Session<'_>, app: &str, when: &str) -> anyhow::Result<()> {
    let mut last = String::new();
    wait_value(TAKE_OVER, || {
        last = fetch_in_app(page, app)?;
        Ok(last.starts_with("200 ").then_some(()).filter(|()| last.contains("FRIDGE-NOTE")))
    })
    .with_context(|| format!("{when}: the app tab's fetch gave {last:?}"))
}

/// The launcher in tab `tab`: its page state (`connected`, `elsewhere`, …) and badge.
fn launcher(page: &Session<'_>, tab: &str) -> anyhow::Result<(String, String)> {
    page.switch_to(tab)?;
    let seen =
        page.execute("return [document.body.dataset.state, document.getElementById('badge').textContent]", &[])?;
    Ok((seen[0].as_str().unwrap_or_default().to_owned(), seen[1].as_str().unwrap_or_default().to_owned()))
}

/// Waits until the launcher in `tab` says hometun runs in another tab.
fn waits_elsewhere(page: &Session<'_>, tab: &str) -> anyhow::Result<()> {
    page.switch_to(tab)?;
    wait(
        page,
        "the launcher to say hometun runs in another tab",
        Duration::from_secs(20),
        "return document.body.dataset.state === 'elsewhere' && \
           !document.getElementById('s-elsewhere').hidden || null",
    )?;
    Ok(())
}

fn connected_since(page: &Session<'_>, tab: &str) -> anyhow::Result<Value> {
    launcher_status(page, tab, "connectedSince")
}

/// A few seconds on, the tab `waiting` still waits and the tunnel of `holder` is the one that
/// came up at `since`: neither took it from the other.
fn no_tug_of_war(page: &Session<'_>, holder: &str, since: &Value, waiting: &str) -> anyhow::Result<()> {
    std::thread::sleep(Duration::from_secs(4));
    let (state, badge) = launcher(page, waiting)?;
    ensure!(state == "elsewhere" && badge == "in another tab", "the waiting launcher shows {state} / {badge}");
    let (state, _) = launcher(page, holder)?;
    ensure!(state == "connected", "the launcher that runs the tunnel is {state}");
    let now = connected_since(page, holder)?;
    ensure!(now == *since, "the tunnel was replaced ({since} → {now})");
    Ok(())
}

#[test]
fn a_second_launcher_tab_leaves_the_tunnel_alone_and_takes_over_when_the_first_closes() {
    let lab = Lab::start().expect("lab");
    let lan = (addr::HOST10, 8080).into();
    let cookie = r#"location = /cookie { return 200 "cookie=[$http_cookie]"; }
        location = /token { add_header Set-Cookie "token=$arg_n; Path=/"; return 200 "ok"; }"#;
    let _nginx = Nginx::start_with(&lab, Node::Host10, lan, "fridge", &[("note.html", NOTE)], cookie).expect("nginx");
    let trusted = TrustedLab::start(&lab).expect("trusted relay");
    trusted.trust_app(lan).expect("the app name's certificate");
    let page = trusted.browser().expect("Chromium");
    let first = step(&page, "first launcher", || trusted.connect(&page, "tabs-phone"));
    let launcher_url = format!("{}/", apps_page::tunnel_origin());

    let (app, _) = step(&page, "the app in its tab", || {
        let opened = open_app(&page, &first, &format!("http://{lan}/note.html"))?;
        wait(
            &page,
            "the note in the app tab",
            Duration::from_secs(60),
            "return document.body && document.body.innerText.includes('FRIDGE-NOTE') || null",
        )?;
        Ok(opened)
    });

    let second = step(&page, "a second launcher leaves the tunnel alone", || {
        let since = connected_since(&page, &first)?;
        let second = open_typed(&page, &launcher_url)?;
        waits_elsewhere(&page, &second)?;
        no_tug_of_war(&page, &first, &since, &second)?;
        app_works(&page, &app, "with two launchers open")?;
        Ok(second)
    });

    step(&page, "the second takes over when the first closes", || {
        page.switch_to(&app)?;
        let app_document = apps_page::document_id(&page)?;
        close_tab(&page, &first, &second)?;
        wait_connected(&page, TAKE_OVER).context("the second launcher took over")?;
        app_works(&page, &app, "after the first launcher closed")?;
        let now = apps_page::document_id(&page)?;
        ensure!(now == app_document, "the app tab was reloaded ({app_document} → {now})");
        Ok(())
    });

    let third = step(&page, "Connect in a third launcher moves the tunnel there", || {
        let third = open_typed(&page, &launcher_url)?;
        waits_elsewhere(&page, &third)?;
        page.click("#connect-button")?;
        wait_connected(&page, TAKE_OVER).context("the third launcher, after Connect")?;
        let since = connected_since(&page, &third)?;
        waits_elsewhere(&page, &second)?;
        // The tab it left does not take it back.
        no_tug_of_war(&page, &third, &since, &second)?;
        // The app's ports from the second tab were closed: it asks again and finds the third.
        app_works(&page, &app, "after the tunnel moved to the third launcher")?;
        Ok(third)
    });

    step(&page, "back to a tab that ran it before, with the app's new cookie", || {
        page.switch_to(&app)?;
        page.execute("document.cookie = 'theme=dark; path=/'", &[])?;
        let sent = || -> anyhow::Result<String> {
            page.switch_to(&app)?;
            let got = page.execute_async(
                "const done = arguments[0]; fetch('/cookie?at=' + Date.now(), { cache: 'no-store' }) \
                   .then((r) => r.text()).then(done, (e) => done('error: ' + e));",
                &[],
            )?;
            Ok(got.as_str().unwrap_or_default().to_owned())
        };
        let mut last = String::new();
        wait_value(TAKE_OVER, || {
            last = sent()?;
            Ok(last.contains("theme=dark").then_some(()))
        })
        .with_context(|| format!("the app's cookie while the third runs the tunnel: {last:?}"))?;
        close_tab(&page, &third, &second)?;
        wait_connected(&page, TAKE_OVER).context("the second launcher took over again")?;
        wait_value(TAKE_OVER, || {
            last = sent()?;
            Ok(last.starts_with("cookie=").then_some(()))
        })
        .with_context(|| format!("the app after the second took over again: {last:?}"))?;
        ensure!(last.contains("theme=dark"), "the tab that ran the tunnel before sent its old cookies: {last}");
        Ok(())
    });

    step(&page, "a cookie written while no launcher runs is kept, and holds nothing up once one is back", || {
        // A phone's browser closed the last launcher tab; a script of the app tab writes a cookie.
        close_tab(&page, &second, &app)?;
        page.execute("document.cookie = 'seen=1; path=/'", &[])?;
        // The shim finds its cookie port dead (no answer in 5 s), asks for another and gets none;
        // the next cookie waits for a port no launcher gives (10 s).
        std::thread::sleep(Duration::from_secs(7));
        page.execute("document.cookie = 'seen=2; path=/'", &[])?;
        std::thread::sleep(Duration::from_secs(12));
        open_typed(&page, &launcher_url)?;
        wait_connected(&page, TAKE_OVER).context("a launcher opened again")?;
        app_works(&page, &app, "with a launcher open again")?;
        let took = page.execute_async(
            "const done = arguments[0]; const start = performance.now(); \
             fetch('/note.html?at=' + Date.now(), { cache: 'no-store' }).then((r) => r.text()) \
               .then(() => done(performance.now() - start), (e) => done('error: ' + e));",
            &[],
        )?;
        let took = took.as_f64().with_context(|| format!("the app's fetch: {took}"))?;
        ensure!(took < 2500.0, "the app's fetch waited {took:.0} ms for a cookie no launcher could take");
        // The cookie was kept, as a browser keeps one: once the page's cookie port is open again
        // (the requests above opened it), the app's requests carry its last value.
        let mut sent = String::new();
        wait_value(Duration::from_secs(10), || {
            let got = page.execute_async(
                "const done = arguments[0]; fetch('/cookie?at=' + Date.now(), { cache: 'no-store' }) \
                   .then((r) => r.text()).then(done, (e) => done('error: ' + e));",
                &[],
            )?;
            sent = got.as_str().unwrap_or_default().to_owned();
            Ok(sent.contains("seen=2").then_some(()))
        })
        .with_context(|| format!("the cookie written while no launcher ran did not reach the app: {sent}"))?;
        Ok(())
    });

    step(&page, "the app's scripts see the cookies the app sets once a launcher is back", || {
        // The server renews a token cookie (as apps that send a cookie's value back in a header
        // do); the app tab's scripts read the new value, as the jar's changes reach it again.
        let got = page.execute_async(
            "const done = arguments[0]; fetch('/token?n=renewed', { cache: 'no-store' }).then((r) => r.text()) \
               .then(done, (e) => done('error: ' + e));",
            &[],
        )?;
        ensure!(got == "ok", "the app's /token: {got}");
        let seen = wait(
            &page,
            "the renewed cookie in document.cookie",
            Duration::from_secs(10),
            "return document.cookie.includes('token=renewed') ? document.cookie : null",
        )
        .with_context(|| format!("document.cookie is {:?}", page.execute("return document.cookie", &[]).ok()))?;
        eprintln!("launcher tabs: document.cookie after the launcher came back: {seen}");
        Ok(())
    });
}
