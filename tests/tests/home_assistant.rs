//! Home Assistant through the page: the real Home Assistant (from PyPI) on a lab LAN host, used
//! from a real headless Chromium on the internet side that trusts only the lab ACME CA's root,
//! through the launcher, the service worker and the shim on the app's own origin; and from
//! Safari's engine (WebKitGTK) and Firefox in the launcher's frame.
//!
//! Needs root, the page built (`bash scripts/build-page.sh`) and Home Assistant installed
//! (`scripts/install.sh`).

use std::time::{Duration, Instant};

use anyhow::ensure;
use hometun_tests::apps::home_assistant::{self, HomeAssistant};
use hometun_tests::browser::apps_page::{self, open_app, TrustedLab};
use hometun_tests::browser::engines::{self, FrameEngine};
use hometun_tests::browser::webdriver::Session;
use hometun_tests::lab::{addr, Lab};

/// How soon after the phone's network returns the dashboard shows what changed meanwhile: the
/// tunnel's first attempt (within 1.25 s of the page seeing the network) and a connection,
/// with room for a loaded machine.
const NETWORK_BACK: Duration = Duration::from_secs(10);

/// A user opens their Home Assistant from the launcher: its sign-in page (Home Assistant's own
/// flow on the app's origin) takes the owner's name and password, typed as keys; the dashboard
/// shows the porch light's switch, signed in as the owner. Flipping the switch in the page turns
/// the light on at home (Home Assistant's own API, asked inside the LAN, says `on`), and turning it
/// off at home shows in the page within seconds (pushed over Home Assistant's WebSocket). After
/// the phone's network drops (its link down, its connections closed) and the light goes on at
/// home meanwhile: once the network returns, the same page (not loaded again, still signed in)
/// shows the light on within seconds, and goes on following it. After every service worker is
/// stopped, a reload is still signed in (the tokens the app keeps on its origin), so is a forced
/// reload (which skips the worker), and the switch works again.
#[test]
fn home_assistant_signs_in_shows_the_dashboard_and_a_switch_works_both_ways() {
    let lab = Lab::start().expect("lab");
    let ha = HomeAssistant::start(&lab).expect("Home Assistant");
    let trusted = TrustedLab::start(&lab).expect("trusted relay");
    let origin = trusted.trust_app(home_assistant::ADDR).expect("the app name's certificate");
    let page = trusted.browser().expect("Chromium");
    let launcher = step(&page, "launcher", || trusted.connect(&page, "home-assistant-phone"));

    step(&page, "wrong password", || {
        let (_tab, url) = open_app(&page, &launcher, &home_assistant::lan_url())?;
        ensure!(url.starts_with(&origin), "appUrl gave {url}, not on {origin}");
        home_assistant::sign_in(&page, &origin, "not-the-password")?;
        home_assistant::see_the_password_refused(&page)
    });
    step(&page, "sign in", || home_assistant::sign_in(&page, &origin, home_assistant::PASSWORD));
    step(&page, "dashboard", || home_assistant::see_the_switch(&page, "off"));
    step(&page, "switch on from the page", || {
        home_assistant::flip_the_switch(&page)?;
        ha.wait_for_light("on")?;
        home_assistant::see_the_switch(&page, "on")
    });
    step(&page, "switch off at home", || {
        ha.set_switch(false)?;
        home_assistant::see_the_switch(&page, "off")
    });

    step(&page, "the phone's network drops and returns", || {
        let tunnel_since = || apps_page::launcher_status(&page, &launcher, "connectedSince");
        let tunnel_before = tunnel_since()?;
        let page_before = apps_page::document_id(&page)?;
        lab.remote_device_offline()?;
        // At home the light goes on while the phone has no network.
        ha.set_switch(true)?;
        std::thread::sleep(Duration::from_secs(1));
        let back = Instant::now();
        lab.remote_device_online()?;
        home_assistant::see_the_switch(&page, "on")?;
        let took = back.elapsed();
        eprintln!("home-assistant: the dashboard showed the change {took:.1?} after the network returned");
        ensure!(took < NETWORK_BACK, "the dashboard showed the change only {took:.1?} after the network returned");
        let page_after = apps_page::document_id(&page)?;
        ensure!(page_after == page_before, "the dashboard was loaded again");
        let tunnel_after = tunnel_since()?;
        ensure!(tunnel_after != tunnel_before, "the tunnel's connection lived through the outage ({tunnel_after})");
        ha.set_switch(false)?;
        home_assistant::see_the_switch(&page, "off")
    });
    step(&page, "stop service workers", || apps_page::stop_service_workers(&page));
    step(&page, "reload, still signed in", || {
        apps_page::reload(&page, home_assistant::LOAD)?;
        home_assistant::see_the_switch(&page, "off")
    });
    step(&page, "forced reload", || {
        // Shift+Reload, as a user does when a page looks stale.
        // It skips the service worker: the relay's boot page comes, and must bring the app back.
        let before = apps_page::document_id(&page)?;
        page.cdp("Page.reload", serde_json::json!({ "ignoreCache": true }))?;
        apps_page::new_document(&page, &before, home_assistant::LOAD)?;
        home_assistant::see_the_switch(&page, "off")
    });
    step(&page, "switch on after the worker stopped", || {
        home_assistant::flip_the_switch(&page)?;
        ha.wait_for_light("on")
    });
}

/// The same person on an iPhone (Safari's engine, WebKitGTK here), where apps open in the
/// launcher's frame (docs/web-apps.md, "Known limits"): Home Assistant opened with "Open here"
/// signs in, shows the switch, and the switch works both ways, as in Chromium.
#[test]
fn home_assistant_in_the_launchers_frame_in_safaris_engine() {
    in_the_launchers_frame(FrameEngine::WebKit);
}

/// The same in Firefox, in the launcher's frame.
#[test]
fn home_assistant_in_the_launchers_frame_in_firefox() {
    in_the_launchers_frame(FrameEngine::Firefox);
}

/// A new device in `engine` opens Home Assistant in the launcher's frame, signs in, sees the
/// switch and flips it both ways.
fn in_the_launchers_frame(engine: FrameEngine) {
    let lan = std::net::SocketAddrV4::new(addr::HOST20, home_assistant::ADDR.port());
    let origin = format!("https://{}", apps_page::app_name(lan.into()));
    let use_it = |page: &Session, ha: &HomeAssistant| -> anyhow::Result<()> {
        home_assistant::sign_in(page, &origin, home_assistant::PASSWORD)?;
        home_assistant::see_the_switch(page, "off")?;
        home_assistant::flip_the_switch(page)?;
        ha.wait_for_light("on")?;
        home_assistant::see_the_switch(page, "on")?;
        ha.set_switch(false)?;
        home_assistant::see_the_switch(page, "off")
    };
    engines::in_an_apps_frame(engine, "home-assistant", lan, &home_assistant::lan_url(), HomeAssistant::start, use_it);
}

/// One part of the scenario ([`apps_page::step`]).
fn step<T>(page: &Session<'_>, name: &str, f: impl FnOnce() -> anyhow::Result<T>) -> T {
    apps_page::step(page, "home-assistant", name, f)
}
