//! Home Assistant through the page: the real Home Assistant (from PyPI) on a lab LAN host, used
//! from a real headless Chromium on the internet side that trusts only the lab ACME CA's root,
//! through the launcher, the service worker and the shim on the app's own origin; and from
//! Safari's engine (WebKitGTK) in the launcher's frame.
//!
//! Needs root, the page built (`bash scripts/build-page.sh`) and Home Assistant installed
//! (`scripts/install.sh`).

use std::time::Duration;

use anyhow::ensure;
use hometun_tests::apps::home_assistant::{self, HomeAssistant};
use hometun_tests::browser::apps_page::{self, open_app, wait, wait_connected, TrustedLab};
use hometun_tests::browser::engines::{self, trusted_relay};
use hometun_tests::browser::{webdriver::Session, webkit::WebKitDriver};
use hometun_tests::lab::{addr, wait_until, Lab, Node};
use serde_json::json;

/// How long Home Assistant's frontend (a few MB of scripts, all through the tunnel) may take to
/// show a page.
const APP_LOAD: Duration = Duration::from_secs(60);
/// How long a switch's change may take to reach the other side.
const CHANGE: Duration = Duration::from_secs(10);

/// A user opens their Home Assistant from the launcher: its sign-in page (Home Assistant's own
/// flow on the app's origin) takes the owner's name and password, typed as keys; the dashboard
/// shows the porch light's switch, signed in as the owner. Flipping the switch in the page turns
/// the light on at home (Home Assistant's own API, asked inside the LAN, says `on`), and turning it
/// off at home shows in the page within seconds (pushed over Home Assistant's WebSocket). After
/// every service worker is stopped, a reload is still signed in (the tokens the app keeps on its
/// origin) and the switch works again.
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
        sign_in(&page, &origin, "not-the-password")?;
        wait(
            &page,
            "the sign-in page to refuse the password",
            APP_LOAD,
            &format!(
                "{DEEP} return location.pathname === '/auth/authorize' && \
                      deep('ha-alert').some(a => /invalid username or password/i.test(a.textContent)) ? true : null"
            ),
        )
    });
    step(&page, "sign in", || sign_in(&page, &origin, home_assistant::PASSWORD));
    step(&page, "dashboard", || see_the_switch(&page, "off"));
    step(&page, "switch on from the page", || {
        flip_the_switch(&page)?;
        light_at_home(&ha, "on")?;
        see_the_switch(&page, "on")
    });
    step(&page, "switch off at home", || {
        ha.set_switch(false)?;
        see_the_switch(&page, "off")
    });

    step(&page, "stop service workers", || apps_page::stop_service_workers(&page));
    step(&page, "reload, still signed in", || {
        reload(&page)?;
        see_the_switch(&page, "off")
    });
    step(&page, "switch on after the worker stopped", || {
        flip_the_switch(&page)?;
        light_at_home(&ha, "on")
    });
}

/// The same person on an iPhone (Safari's engine, WebKitGTK here): apps open in the launcher's
/// frame there (docs/web-apps.md, "Known limits"). Home Assistant opened with "Open here" signs
/// in, shows the switch, and the switch works both ways, as in Chromium.
#[test]
fn home_assistant_in_the_launchers_frame_in_safaris_engine() {
    let lab = Lab::start().expect("lab");
    let ha = HomeAssistant::start(&lab).expect("Home Assistant");
    let (root, relay) = trusted_relay(&lab).expect("ACME relay");
    let lan = std::net::SocketAddrV4::new(addr::HOST20, home_assistant::ADDR.port());
    let name = engines::trusted_app_name_of(&lab, &relay, &root, "WebKit", lan).expect("the app name's certificate");
    let hosts = [(addr::DOMAIN, addr::ROUTER_WAN), (name.as_str(), addr::ROUTER_WAN)];
    let driver = WebKitDriver::start(&lab, Node::Wan, &root, &hosts).expect("WebKit");
    let page = driver.session(1200, 900).expect("MiniBrowser");
    let used = (|| -> anyhow::Result<()> {
        page.goto(&relay.invite("webkit-home-assistant", "1h", None)?.to_link())?;
        wait_connected(&page, engines::WAIT)?;
        engines::open_in_frame(&page, &home_assistant::lan_url())?;
        sign_in(&page, &format!("https://{name}"), home_assistant::PASSWORD)?;
        see_the_switch(&page, "off")?;
        flip_the_switch(&page)?;
        light_at_home(&ha, "on")?;
        see_the_switch(&page, "on")?;
        ha.set_switch(false)?;
        see_the_switch(&page, "off")
    })();
    if let Err(e) = used {
        engines::fail(&page, "webkit-home-assistant", &driver.log(), e);
    }
}

/// One part of the scenario ([`apps_page::step`]).
fn step<T>(page: &Session<'_>, name: &str, f: impl FnOnce() -> anyhow::Result<T>) -> T {
    apps_page::step(page, "home-assistant", name, f)
}

/// Elements matching `sel` anywhere in the page, inside shadow roots too (Home Assistant's
/// frontend is web components); prefixed to the scripts below.
const DEEP: &str = "const deep = (sel) => { const out = []; \
     const walk = (root) => { out.push(...root.querySelectorAll(sel)); \
       for (const el of root.querySelectorAll('*')) if (el.shadowRoot) walk(el.shadowRoot); }; \
     walk(document); return out; };";

/// On Home Assistant's sign-in page at `origin`: types the owner's user name and `password` into
/// its fields as keys (over what they held) and presses its button.
fn sign_in(page: &Session<'_>, origin: &str, password: &str) -> anyhow::Result<()> {
    let at = wait(
        page,
        "Home Assistant's sign-in page",
        APP_LOAD,
        &format!(
            "{DEEP} return location.pathname === '/auth/authorize' && \
             deep('input[name=username], input[name=password]').filter(i => !i.disabled && \
             i.getBoundingClientRect().width > 0).length === 2 ? location.origin : null"
        ),
    )?;
    ensure!(at == origin, "the sign-in page is on {at}");
    for (field, text) in [("username", home_assistant::USER), ("password", password)] {
        let input = page.execute(&format!("{DEEP} return deep('input[name={field}]')[0]"), &[])?;
        page.type_into(&input, text)?;
    }
    let button = page.execute(
        &format!("{DEEP} return deep('ha-button, mwc-button, button').find(b => /^log in$/i.test(b.textContent.trim())) || null"),
        &[],
    )?;
    ensure!(!button.is_null(), "no \"Log in\" button on the sign-in page");
    page.tap(&button)?;
    Ok(())
}

/// Waits until the dashboard shows the porch light's switch in `state`, signed in as the owner:
/// its row names it, its toggle is `state` and Home Assistant's connection in the page is up.
fn see_the_switch(page: &Session<'_>, state: &str) -> anyhow::Result<()> {
    let script = format!(
        "{DEEP} const ha = document.querySelector('home-assistant'); const hass = ha && ha.hass; \
         if (!hass || !hass.connected || !hass.user) return {{connected: !!(hass && hass.connected)}}; \
         const toggle = deep('ha-entity-toggle').find(t => t.stateObj && t.stateObj.entity_id === arguments[0]); \
         const row = toggle && toggle.getRootNode().host; \
         const sw = toggle && toggle.shadowRoot && toggle.shadowRoot.querySelector('ha-switch'); \
         if (!sw || !row.shadowRoot) return {{row: !!row, toggle: !!toggle, tags: [...new Set(deep('*').map(e => e.localName).filter(n => /row|toggle|switch/.test(n)))]}}; \
         return {{user: hass.user.name, state: hass.states[arguments[0]].state, checked: sw.checked, \
                 named: row.shadowRoot.textContent.includes(arguments[1]) || \
                        [...row.shadowRoot.querySelectorAll('*')].some(e => e.shadowRoot && e.shadowRoot.textContent.includes(arguments[1]))}}"
    );
    let want = json!({"user": home_assistant::OWNER, "state": state, "checked": state == "on", "named": true});
    let what = format!("the dashboard to show the {} {state}", home_assistant::SWITCH_NAME);
    let deadline = std::time::Instant::now() + APP_LOAD;
    loop {
        let seen = page.execute(&script, &[json!(home_assistant::SWITCH), json!(home_assistant::SWITCH_NAME)])?;
        if seen == want {
            return Ok(());
        }
        ensure!(std::time::Instant::now() < deadline, "waited {APP_LOAD:?} for {what}; last seen {seen}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Reloads the page and waits until the new document has loaded.
fn reload(page: &Session<'_>) -> anyhow::Result<()> {
    let before = page.execute("const t = performance.timeOrigin; location.reload(); return t", &[])?;
    let script =
        format!("return performance.timeOrigin !== {before} && document.readyState === 'complete' ? true : null");
    wait(page, "the page to load again", APP_LOAD, &script).map(drop)
}

/// Taps the porch light's toggle on the dashboard.
fn flip_the_switch(page: &Session<'_>) -> anyhow::Result<()> {
    let switch = page.execute(
        &format!(
            "{DEEP} const t = deep('ha-entity-toggle').find(t => t.stateObj && t.stateObj.entity_id === arguments[0]); \
             return (t && t.shadowRoot && t.shadowRoot.querySelector('ha-switch')) || null"
        ),
        &[json!(home_assistant::SWITCH)],
    )?;
    ensure!(!switch.is_null(), "no toggle for {} on the dashboard", home_assistant::SWITCH);
    page.tap(&switch)
}

/// Waits until Home Assistant itself, asked inside the LAN, has the porch light in `state`.
fn light_at_home(ha: &HomeAssistant, state: &str) -> anyhow::Result<()> {
    let mut last = String::new();
    wait_until(CHANGE, || match ha.switch_state() {
        Ok(now) if now == state => Some(()),
        Ok(now) => {
            last = now;
            None
        }
        Err(e) => {
            last = format!("{e:#}");
            None
        }
    })
    .map_err(|_| anyhow::anyhow!("Home Assistant has the light {last:?}, not {state:?}, after {CHANGE:?}"))
}
