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

use anyhow::ensure;
use hometun_tests::apps::sshd::Sshd;
use hometun_tests::apps::vnc::VncServer;
use hometun_tests::browser::apps_page::{wait, wait_connected};
use hometun_tests::browser::engines::{self, one_at_a_time, trusted_relay, GREEN, WAIT};
use hometun_tests::browser::{webdriver::Session, webkit::WebKitDriver};
use hometun_tests::lab::{addr, Lab, Node};
use hometun_tests::relay::Relay;

const ENGINE: &str = "WebKit";

/// Starts WebKit in the lab's `wan`, trusting `root` and resolving the relay's name (and `more`).
fn webkit(lab: &Lab, root: &str, more: &[(&str, std::net::Ipv4Addr)]) -> WebKitDriver {
    let mut hosts = vec![(addr::DOMAIN, addr::ROUTER_WAN)];
    hosts.extend_from_slice(more);
    WebKitDriver::start(lab, Node::Wan, root, &hosts).expect("WebKit")
}

#[test]
fn safaris_engine_trusts_the_relay_by_name_enrols_and_reaches_the_lan() {
    let _one = one_at_a_time();
    let lab = Lab::start().expect("lab");
    let (root, relay) = trusted_relay(&lab).expect("ACME relay");
    let driver = webkit(&lab, &root, &[]);
    let page = driver.session(420, 900).expect("MiniBrowser");
    let used = engines::open_trusted(&page, ENGINE)
        .and_then(|()| engines::use_the_page(&page, &relay, ENGINE, "webkit-phone"));
    if let Err(e) = used {
        engines::fail(&page, "webkit", &driver.log(), e);
    }
}

#[test]
fn a_home_web_app_opens_in_the_launchers_frame_in_safaris_engine() {
    let _one = one_at_a_time();
    let lab = Lab::start().expect("lab");
    let (root, relay) = trusted_relay(&lab).expect("ACME relay");
    let name = engines::trusted_app_name(&lab, &relay, &root, ENGINE).expect("the app name's certificate");
    let driver = webkit(&lab, &root, &[(name.as_str(), addr::ROUTER_WAN)]);
    let page = driver.session(1200, 900).expect("MiniBrowser");
    if let Err(e) = use_an_app(&page, &relay, &name) {
        engines::fail(&page, "webkit-app", &driver.log(), e);
    }
}

fn use_an_app(page: &Session, relay: &Relay, name: &str) -> anyhow::Result<()> {
    page.goto(&relay.invite("webkit-apps", "1h", None)?.to_link())?;
    wait_connected(page, WAIT)?;
    // A tab of its own would find no launcher in WebKit (docs/web-apps.md, "Known limits"), so
    // the launcher offers none, neither in the Apps card nor in the viewer.
    let tab_button = page.execute("return document.getElementById('apps-open-tab').hidden", &[])?;
    ensure!(tab_button == true, "the launcher offers \"Open in new tab\" in WebKit");
    engines::open_here(page, name)?;
    let viewer_tab = page.execute("return document.getElementById('apps-viewer-tab').hidden", &[])?;
    ensure!(viewer_tab == true, "the viewer offers \"Open in new tab\" in WebKit");
    page.screenshot(&hometun_tests::browser::output_dir()?.join("webkit-app.png"))?;
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
    let driver = webkit(&lab, &root, &[]);
    let page = driver.session(1200, 900).expect("MiniBrowser");
    let used =
        engines::open_trusted(&page, ENGINE).and_then(|()| engines::use_a_shell(&page, &relay, &sshd, "webkit-shell"));
    if let Err(e) = used {
        engines::fail(&page, "webkit-ssh", &driver.log(), e.context(format!("sshd log:\n{}", sshd.log())));
    }
}

#[test]
fn a_desktop_shows_in_safaris_engine() {
    let _one = one_at_a_time();
    let lab = Lab::start().expect("lab");
    let _desktop = VncServer::start(&lab, Node::Host10, (addr::HOST10, 5900).into(), "lab-desktop", None, GREEN)
        .expect("VNC server");
    let (root, relay) = trusted_relay(&lab).expect("ACME relay");
    let driver = webkit(&lab, &root, &[]);
    let page = driver.session(1100, 900).expect("MiniBrowser");
    let used = engines::open_trusted(&page, ENGINE)
        .and_then(|()| engines::see_the_desktop(&page, &relay, ENGINE, "webkit-desk"));
    if let Err(e) = used {
        engines::fail(&page, "webkit-vnc", &driver.log(), e);
    }
}
