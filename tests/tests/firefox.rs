//! Firefox (Gecko: Debian's `firefox-esr`) on the internet side (`wan`), driven through its
//! native WebDriver BiDi endpoint and trusting the lab ACME CA's root through its profile's NSS
//! database, with no certificate exception (see `hometun_tests::browser::firefox`). It loads the
//! relay's page by its name, enrols from an invite link, connects, opens the LAN page
//! `http://192.168.0.10/` in the Open tool, pings the LAN host and looks up its name, and a later
//! visit reconnects by itself. A home web app opens in the launcher's frame, in a tab of its own
//! from "Open in new tab" (no opener; clicked under the popup blocker a user has, which the lab
//! keeps on), and in a typed tab, on its trusted app name, served through
//! Firefox's service worker, and fetches a LAN file intact; in the typed tab, a page whose
//! script writes a cookie as it loads and at once goes to another page of the app (a link,
//! `location`, a form) takes the cookie along. A shell on a real OpenSSH server of
//! the LAN answers a command, in UTF-8 both ways, and a desktop of a real VNC server (TigerVNC's
//! Xvnc) shows its colour on the page's canvas. Screenshots go to `tests/output/`.
//!
//! Needs the page built (`bash scripts/build-page.sh`).

use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use hometun_tests::apps::sshd::Sshd;
use hometun_tests::apps::vnc::VncServer;
use hometun_tests::browser::apps_page::{self, wait, wait_connected};
use hometun_tests::browser::engines::{
    self, intact_blob, one_at_a_time, trusted_relay, FETCH_BLOB, GREEN, LAN_PAGE, WAIT,
};
use hometun_tests::browser::{firefox::FirefoxDriver, webdriver::Session};
use hometun_tests::capture::Capture;
use hometun_tests::lab::{addr, Lab, Node};
use hometun_tests::relay::Relay;
use serde_json::json;

const ENGINE: &str = "Firefox";

/// Starts Firefox in the lab's `wan`, trusting `root` and resolving the relay's name (and `more`).
fn firefox(lab: &Lab, root: &str, more: &[(&str, std::net::Ipv4Addr)]) -> FirefoxDriver {
    let mut hosts = vec![(addr::DOMAIN, addr::ROUTER_WAN)];
    hosts.extend_from_slice(more);
    FirefoxDriver::start(lab, Node::Wan, root, &hosts).expect("Firefox")
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
    let driver = firefox(&lab, &root, &[]);
    let page = driver.session(420, 900).expect("a Firefox session");
    let used = engines::open_trusted(&page, ENGINE)
        .and_then(|()| engines::use_the_page(&page, &relay, ENGINE, "firefox-laptop"));
    if let Err(e) = used {
        engines::fail(&page, "firefox", &driver.log(), e);
    }
    drop(page);
    drop(driver);
    let calls = capture.stop().expect("capture");
    assert!(calls.is_empty(), "Firefox sent or got packets other than the page's own:\n{}", calls.join("\n"));
}

#[test]
fn a_home_web_app_opens_in_the_launchers_frame_and_in_tabs_of_its_own_in_firefox() {
    let _one = one_at_a_time();
    let lab = Lab::start().expect("lab");
    let (root, relay) = trusted_relay(&lab).expect("ACME relay");
    let name = engines::trusted_app_name(&lab, &relay, &root, ENGINE).expect("the app name's certificate");
    let driver = firefox(&lab, &root, &[(name.as_str(), addr::ROUTER_WAN)]);
    let page = driver.session(1200, 900).expect("a Firefox session");
    if let Err(e) = use_an_app(&page, &driver, &relay, &name) {
        engines::fail(&page, "firefox-app", &driver.log(), e);
    }
}

fn use_an_app(page: &Session, driver: &FirefoxDriver, relay: &Relay, name: &str) -> anyhow::Result<()> {
    page.goto(&relay.invite("firefox-apps", "1h", None)?.to_link())?;
    wait_connected(page, WAIT)?;
    let launcher = page.window()?;
    // The popup blocker is on, as in a user's Firefox: a tab that no click asked for is blocked.
    let blocked = page.execute("return window.open('about:blank') === null", &[])?;
    ensure!(blocked == true, "a tab no click asked for was opened: the popup blocker is off");
    let origin = format!("https://{name}");
    engines::open_here(page, name)?;
    page.screenshot(&hometun_tests::browser::output_dir()?.join("firefox-app.png"))?;

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
        ensure!(got == intact_blob(), "{what} app tab's fetch of /blob/100000: {got}");
    }

    // The app's address typed into a new tab (no opener, nothing in common with the others)
    // reaches the launcher too.
    driver.open_typed(&format!("{origin}/"))?;
    let at = wait(page, "the LAN host's page in a typed tab", WAIT, LAN_PAGE)?;
    ensure!(at == origin.as_str(), "the typed tab shows {at}");
    let got = page.execute_async(FETCH_BLOB, &[])?;
    ensure!(got == intact_blob(), "the typed tab's fetch of /blob/100000: {got}");
    // A cookie its script writes as a page loads goes with the page it then goes to.
    apps_page::cookie_then_leave(page, &["link", "href", "replace", "submit", "button", "post-button"], 2, WAIT)?;
    page.switch_to(&launcher)?;
    Ok(())
}

#[test]
fn a_shell_by_password_in_firefox() {
    let _one = one_at_a_time();
    let lab = Lab::start().expect("lab");
    let sshd = Sshd::start(&lab, Node::Host10, addr::HOST10).expect("sshd on the LAN host");
    let (root, relay) = trusted_relay(&lab).expect("ACME relay");
    let driver = firefox(&lab, &root, &[]);
    let page = driver.session(1200, 900).expect("a Firefox session");
    let used =
        engines::open_trusted(&page, ENGINE).and_then(|()| engines::use_a_shell(&page, &relay, &sshd, "firefox-shell"));
    if let Err(e) = used {
        engines::fail(&page, "firefox-ssh", &driver.log(), e.context(format!("sshd log:\n{}", sshd.log())));
    }
}

#[test]
fn a_desktop_shows_in_firefox() {
    let _one = one_at_a_time();
    let lab = Lab::start().expect("lab");
    let _desktop = VncServer::start(&lab, Node::Host10, (addr::HOST10, 5900).into(), "lab-desktop", None, GREEN)
        .expect("VNC server");
    let (root, relay) = trusted_relay(&lab).expect("ACME relay");
    let driver = firefox(&lab, &root, &[]);
    let page = driver.session(1100, 900).expect("a Firefox session");
    let used = engines::open_trusted(&page, ENGINE)
        .and_then(|()| engines::see_the_desktop(&page, &relay, ENGINE, "firefox-desk"));
    if let Err(e) = used {
        engines::fail(&page, "firefox-vnc", &driver.log(), e);
    }
}
