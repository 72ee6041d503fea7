//! A home user's first command: `hometun-relay serve` on an empty state directory, with no page
//! directory and no invite command. It prints the page URL, the certificate (self-signed, with
//! the SHA-256 fingerprint a browser's certificate viewer shows) and a ready invite with its QR
//! code; a device on the internet enrols with exactly that printed invite, through the home
//! router's port forward, and reaches the LAN; the page is served from inside the binary. A
//! restart prints no second invite. A relay stopped while it starts leaves nothing behind.

use std::net::SocketAddrV4;
use std::time::Duration;

use hometun_tests::client::{https_get, Device};
use hometun_tests::lab::{addr, Lab, Node, HOME_LAN_IF};
use hometun_tests::relay::{Relay, RelayOptions};

const T: Duration = Duration::from_secs(30);

#[test]
fn the_first_serve_prints_an_invite_that_connects_a_device() {
    let lab = Lab::start().expect("lab");
    let mut relay = Relay::first_serve(&lab, None).expect("relay");
    lab.wait_for_log("relay-1", "Keep it private", T).expect("the first-run banner");
    let banner = relay.last_log();

    assert!(banner.contains(&format!("open {}/", relay.public_url())), "page URL missing:\n{banner}");
    let fingerprint = openssl_sha256(&relay.dir().join("tls-cert.pem"));
    assert!(
        banner.contains("self-signed") && banner.contains(&fingerprint),
        "certificate state missing ({fingerprint}):\n{banner}"
    );
    let qr_rows = banner.lines().filter(|l| l.chars().count() > 30 && l.chars().all(|c| "█▀▄ ".contains(c))).count();
    assert!(qr_rows >= 15, "no QR code drawn ({qr_rows} rows):\n{banner}");
    let invite = relay.printed_invite().expect("printed invite");

    let target = relay.target().expect("target");
    let page = lab.run_in(Node::Wan, || async {
        let page = https_get(&target, "/", T).await.expect("GET / over TLS");
        let device = Device::new(&invite);
        let tunnel = device.enrol(&target, &invite).await.expect("enrol with the printed invite");
        let lan =
            tunnel.http_get(SocketAddrV4::new(addr::HOST10, 80), "/", T).await.expect("LAN page through the tunnel");
        assert!(String::from_utf8_lossy(&lan.body).contains("Hello from h10"));
        tunnel.disconnect().await;
        page
    });
    assert_eq!(page.status, 200, "{page:?}");
    assert_eq!(page.header("content-type"), Some("text/html"));
    assert!(page.header("content-security-policy").is_some_and(|p| p.contains("frame-ancestors 'none'")));
    assert!(!String::from_utf8_lossy(&page.body).contains("built without its page"), "the relay lacks its page");
    relay.client("first-device").expect("the device is listed under the invite's name");

    relay.restart().expect("restart");
    lab.wait_for_log("relay-2", "Create an invite with", T).expect("the banner of a later start");
    let second = relay.last_log();
    assert!(
        second.contains("hometun relay running") && !second.contains("#invite="),
        "a restart printed an invite:\n{second}"
    );
}

/// A relay told to stop while it starts (a service stopped right after it started, a reboot)
/// still takes down whatever it had set up by then: its firewall table, its tun and the LAN
/// interface's forwarding go back to how they were. The stop lands at a different point of
/// the start-up each time.
#[test]
fn a_relay_stopped_while_it_starts_leaves_the_home_server_as_it_found_it() {
    let lab = Lab::start().expect("lab");
    let forwarding = format!("/proc/sys/net/ipv4/conf/{HOME_LAN_IF}/forwarding");
    let read = |what: &str, program: &str, args: &[&str]| {
        let out = lab.exec(Node::Home, program, args).unwrap_or_else(|e| panic!("{what}: {e}"));
        (out.status.success(), String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let (_, before) = read("forwarding before", "cat", &[&forwarding]);
    let mut relay = Relay::start(&lab, RelayOptions::default()).expect("relay");
    relay.stop().expect("stop");
    let mut clean_shutdowns = 0;
    for after_ms in (0..=240).step_by(8) {
        relay.serve_and_stop_after(Duration::from_millis(after_ms)).expect("serve and stop");
        let log = relay.last_log();
        clean_shutdowns += usize::from(log.contains("stopped; state kept"));
        let (_, tables) = read("nft tables", "nft", &["list", "tables"]);
        assert!(!tables.contains("hometun"), "stopped after {after_ms} ms: its firewall table stayed:\n{log}");
        let (tun_left, _) = read("tun", "ip", &["link", "show", "hometun0"]);
        assert!(!tun_left, "stopped after {after_ms} ms: its tun stayed:\n{log}");
        let (_, now) = read("forwarding after", "cat", &[&forwarding]);
        assert_eq!(now, before, "stopped after {after_ms} ms: forwarding changed:\n{log}");
    }
    // Most stops land once the relay has set up (a stop that lands earlier ends it before it
    // changes anything); those must be the clean shutdown, not a killed process.
    assert!(clean_shutdowns > 0, "no stop reached a running relay: the sweep is too short");
}

/// `openssl x509 -fingerprint -sha256`: the certificate's SHA-256 as `AB:CD:...`.
fn openssl_sha256(pem: &std::path::Path) -> String {
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(pem)
        .output()
        .expect("openssl (apt install openssl)");
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().rsplit_once('=').map(|(_, f)| f.to_owned()).unwrap_or_else(|| panic!("openssl printed {text:?}"))
}
