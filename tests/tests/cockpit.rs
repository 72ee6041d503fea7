//! A home server's web console through the page: Cockpit (Debian's packages) on a lab LAN host,
//! used from a real headless Chromium on the internet side that trusts only the lab ACME CA's
//! root, through the launcher, the service worker and the shim on the app's own origin; and from
//! Safari's engine (WebKitGTK) and Firefox in the launcher's frame.
//!
//! Needs root, the page built (`bash scripts/build-page.sh`) and Cockpit installed
//! (`scripts/install.sh`).

use std::time::Duration;

use anyhow::{ensure, Context};
use hometun_tests::apps::cockpit::{self, Cockpit};
use hometun_tests::apps::lab_user;
use hometun_tests::browser::apps_page::{self, open_app, wait, TrustedLab};
use hometun_tests::browser::engines::{self, FrameEngine};
use hometun_tests::browser::webdriver::Session;
use hometun_tests::lab::{addr, Lab};
use serde_json::json;

/// How long a page of the console may take to show.
const LOAD: Duration = Duration::from_secs(60);

/// A user opens their home server's console from the launcher: its login page (the server's own
/// title) refuses a wrong password with its message and takes the right one, typed as keys; the
/// console's overview (a frame of the app) shows the server's machine ID; in its terminal a
/// command typed as keys runs as that user on the server and its output shows.
#[test]
fn a_home_servers_console_logs_in_shows_the_server_and_its_terminal_runs_a_command() {
    let lab = Lab::start().expect("lab");
    let _cockpit = Cockpit::start(&lab).expect("Cockpit");
    let trusted = TrustedLab::start(&lab).expect("trusted relay");
    let origin = trusted.trust_app(cockpit::ADDR).expect("the app name's certificate");
    let page = trusted.browser().expect("Chromium");
    let launcher = step(&page, "launcher", || trusted.connect(&page, "console-laptop"));

    step(&page, "wrong password", || {
        let (_tab, url) = open_app(&page, &launcher, &cockpit::lan_url())?;
        ensure!(url.starts_with(&origin), "appUrl gave {url}, not on {origin}");
        log_in(&page, "not-the-password")?;
        let said = wait(
            &page,
            "the login page to refuse the password",
            LOAD,
            "const m = document.getElementById('login-error-message'); \
             return m && m.offsetParent !== null && m.textContent.trim() ? m.textContent.trim() : null",
        )?;
        ensure!(said.as_str().is_some_and(|t| t.to_lowercase().contains("wrong")), "the login page said {said}");
        Ok(())
    });
    step(&page, "log in", || log_in(&page, lab_user::PASSWORD));
    step(&page, "overview", || see_the_overview(&page));
    step(&page, "terminal", || run_in_the_terminal(&page));
}

/// The same console on a phone (Safari's engine, WebKitGTK here) and in Firefox, where apps open
/// in the launcher's frame: the login, the overview and a command in the terminal.
#[test]
fn the_console_in_the_launchers_frame_in_safaris_engine_and_firefox() {
    for engine in [FrameEngine::WebKit, FrameEngine::Firefox] {
        let lan = std::net::SocketAddrV4::new(addr::HOST10, cockpit::ADDR.port());
        let use_it = |page: &Session, _: &Cockpit| -> anyhow::Result<()> {
            log_in(page, lab_user::PASSWORD)?;
            see_the_overview(page)?;
            run_in_the_terminal(page)
        };
        engines::in_an_apps_frame(engine, "console", lan, &cockpit::lan_url(), Cockpit::start, use_it);
        eprintln!("cockpit: the console in {}'s launcher frame: ok", engine.name());
    }
}

/// Waits until the console's overview (a frame of the app) shows the server's machine ID.
fn see_the_overview(page: &Session<'_>) -> anyhow::Result<()> {
    let machine = std::fs::read_to_string("/etc/machine-id")?.trim().to_owned();
    let script = format!(
        "const f = document.querySelector('iframe[name=\"cockpit1:localhost/system\"]'); \
         const d = f && f.contentDocument; \
         return d && d.body && d.body.innerText.includes({}) ? true : null",
        json!(machine)
    );
    wait(page, "the overview to show the server's machine ID", LOAD, &script).map(drop)
}

/// One part of the scenario ([`apps_page::step`]).
fn step<T>(page: &Session<'_>, name: &str, f: impl FnOnce() -> anyhow::Result<T>) -> T {
    apps_page::step(page, "cockpit", name, f)
}

/// On the login page: types the lab user and `password` as keys and taps "Log in".
fn log_in(page: &Session<'_>, password: &str) -> anyhow::Result<()> {
    let script = format!(
        "const u = document.getElementById('login-user-input'); \
         return u && u.offsetParent !== null && document.title.includes({}) ? true : null",
        json!(cockpit::TITLE)
    );
    wait(page, "the login page", LOAD, &script)?;
    for (id, text) in [("login-user-input", lab_user::USER), ("login-password-input", password)] {
        let field = page.execute("return document.getElementById(arguments[0])", &[json!(id)])?;
        page.type_into(&field, text)?;
    }
    let button = page.execute("return document.getElementById('login-button')", &[])?;
    page.tap(&button)
}

/// Goes to the console's terminal, types a command there as keys (Enter included) and waits for
/// its output on the terminal's screen (the command line itself does not contain it).
fn run_in_the_terminal(page: &Session<'_>) -> anyhow::Result<()> {
    page.execute("location.href = '/system/terminal'; return true", &[])?;
    let frame = "iframe[name=\"cockpit1:localhost/system/terminal\"]";
    wait(
        page,
        "the terminal",
        LOAD,
        &format!(
            "const f = document.querySelector('{frame}'); const d = f && f.contentDocument; \
             return d && d.querySelector('.xterm-helper-textarea') && d.body.innerText.includes('$') ? true : null"
        ),
    )?;
    page.switch_to_frame(Some(frame))?;
    let typed = (|| {
        let input = page.execute("return document.querySelector('.xterm-helper-textarea')", &[])?;
        page.tap(&input)?;
        page.keys("echo \"$(whoami) says $((6*7))\"\u{E007}")?;
        wait(
            page,
            "the command's output in the terminal",
            LOAD,
            "return document.body.innerText.replace(/\\u00a0/g, ' ').includes('hometun-lab says 42') ? true : null",
        )
        .context("the terminal")
    })();
    page.switch_to_frame(None)?;
    typed.map(drop)
}
