//! Home web apps through the page: real apps from Debian on the lab's LAN hosts (Jupyter
//! Notebook, the Syncthing GUI, nginx with a 64 MiB file and a hostile page), used from a real
//! headless Chromium on the internet side that trusts only the lab ACME CA's root, through the
//! launcher page, the service worker and the shim on each app's own origin
//! (`https://h-A-B-C-D-pPORT.home.test`, docs/web-apps.md).
//!
//! Needs root and the page built (`bash scripts/build-page.sh`).

use hometun_tests::apps::{http, jupyter, jupyter::Jupyter, nginx::Nginx, syncthing, syncthing::Syncthing};
use hometun_tests::lab::{addr, Lab, Node};

/// The apps, started in the lab, answer from inside the LAN (the home server asks them directly,
/// no tunnel): what the browser scenarios rely on holds before any hometun part is involved.
#[test]
fn the_lab_apps_answer_directly_inside_the_lan() {
    let lab = Lab::start().expect("lab");

    let jupyter = Jupyter::start(&lab).expect("Jupyter");
    let tree = http::get(&lab, Node::Home, jupyter::ADDR, "/tree", &[]).expect("GET /tree");
    assert_eq!(tree.status, 302, "the notebook does not ask for a login");
    assert!(
        tree.header("location").unwrap_or_default().starts_with("/login"),
        "redirect to {:?}",
        tree.header("location")
    );
    let login = http::get(&lab, Node::Home, jupyter::ADDR, "/login", &[]).expect("GET /login");
    let xsrf = login
        .headers
        .iter()
        .find_map(|(n, v)| (n == "set-cookie").then(|| v.strip_prefix("_xsrf=")).flatten())
        .and_then(|v| v.split(';').next())
        .unwrap_or_else(|| panic!("no _xsrf cookie: {:?}", login.headers))
        .to_owned();
    assert!(login.text().contains("name=\"_xsrf\""), "no _xsrf field in the login form");
    let form = format!("_xsrf={xsrf}&password={}", jupyter::PASSWORD);
    let cookie = format!("_xsrf={xsrf}");
    let headers = [("Content-Type", "application/x-www-form-urlencoded"), ("Cookie", cookie.as_str())];
    let posted =
        http::request(&lab, Node::Home, jupyter::ADDR, "POST", "/login?next=%2Ftree", &headers, form.as_bytes())
            .expect("POST /login");
    assert_eq!((posted.status, posted.header("location")), (302, Some("/tree")), "{}", posted.text());
    drop(jupyter);
    assert!(!lab.log("jupyter").contains("Traceback"), "jupyter failed:\n{}", lab.log("jupyter"));

    let syncthing = Syncthing::start(&lab).expect("Syncthing");
    let status =
        http::get(&lab, Node::Home, syncthing::ADDR, "/rest/system/status", &[("X-API-Key", syncthing::API_KEY)])
            .expect("GET /rest/system/status");
    assert_eq!(status.status, 200, "{}", status.text());
    let status: serde_json::Value = serde_json::from_slice(&status.body).expect("status JSON");
    assert_eq!(status["myID"], syncthing.device_id.as_str());
    let gui = http::get(&lab, Node::Home, syncthing::ADDR, "/", &[]).expect("GET /");
    let csrf = format!("CSRF-Token-{}=", syncthing.short_id());
    assert!(
        gui.headers.iter().any(|(n, v)| n == "set-cookie" && v.starts_with(&csrf)),
        "no {csrf} cookie: {:?}",
        gui.headers
    );
    let config =
        http::get(&lab, Node::Home, syncthing::ADDR, "/rest/config/options", &[("X-API-Key", syncthing::API_KEY)])
            .expect("GET options");
    let options: serde_json::Value = serde_json::from_slice(&config.body).expect("options JSON");
    for (key, off) in [
        ("globalAnnounceEnabled", serde_json::json!(false)),
        ("localAnnounceEnabled", serde_json::json!(false)),
        ("relaysEnabled", serde_json::json!(false)),
        ("natEnabled", serde_json::json!(false)),
        ("urAccepted", serde_json::json!(-1)),
        ("autoUpgradeIntervalH", serde_json::json!(0)),
        ("crashReportingEnabled", serde_json::json!(false)),
    ] {
        assert_eq!(options[key], off, "Syncthing option {key}");
    }
    drop(syncthing);

    let nginx = Nginx::start(&lab, Node::Host10, (addr::HOST10, 8080).into(), "files", &[]).expect("nginx");
    let sha = nginx.add_random_file("big.bin", 64 << 20).expect("64 MiB file");
    let whole = http::get(&lab, Node::Home, nginx.addr, "/big.bin", &[]).expect("GET /big.bin");
    assert_eq!((whole.status, whole.body.len()), (200, 64 << 20));
    assert_eq!(hometun_tests::apps::sha256_hex(&whole.body), sha);
    let part =
        http::get(&lab, Node::Home, nginx.addr, "/big.bin", &[("Range", "bytes=1000000-1999999")]).expect("Range");
    assert_eq!(part.status, 206);
    assert_eq!(part.header("content-range"), Some("bytes 1000000-1999999/67108864"));
    assert!(part.body == whole.body[1_000_000..2_000_000], "the range is not the file's bytes");
    assert!(nginx.requests().iter().any(|l| l.starts_with("192.168.0.2 \"GET /big.bin")), "{:?}", nginx.requests());
    let dir = nginx.dir().to_owned();
    drop(nginx);
    assert!(!dir.exists(), "nginx's directory was not removed");
}
