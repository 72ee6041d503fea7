//! App names on the relay's one TLS port, as a browser meets them before the service worker
//! runs: every path gives the boot page, hometun's own files come from `/__ht/`, nothing else
//! of the relay (its launcher page, `/tunnel`) exists there, and names the relay would never
//! get a certificate for give nothing at all. The page comes from a `www` directory written by
//! each test, so the bytes served can be compared.

// Shared with the other scenario binaries; this one uses only the relay and raw requests.
#[allow(dead_code)]
mod support;

use hometun_relay::config::Limits;
use std::collections::HashMap;
use support::{Lab, PATIENCE};

const DOMAIN: &str = "home.test";
const APP: &str = "h-192-168-0-10-p8080.home.test";
const BOOT: &str = "<!doctype html><title>boot</title><script src=\"/__ht/boot.js\"></script>";
const SW: &str = "/* the service worker */";
const SHIM: &str = "/* the shim */";
const BOOT_JS: &str = "/* boot */";
const LAUNCHER: &str = "<!doctype html><title>launcher</title>";
const BROKER: &str = "<!doctype html><title>broker</title><script src=\"/__ht/broker.js\"></script>";
const BROKER_JS: &str = "/* broker */";
const HUB: &str = "/* hub */";

/// A relay with the domain `home.test` (LAN 192.168.0.0/24) and a page written to its `www`.
async fn relay_with_apps() -> Lab {
    let lab = Lab::start_with(Limits::default(), |config| config.acme.domain = Some(DOMAIN.into())).await;
    write_page(&lab);
    lab
}

fn write_page(lab: &Lab) {
    let www = lab.dir.path().join("www");
    std::fs::create_dir_all(www.join("app")).unwrap();
    std::fs::write(www.join("index.html"), LAUNCHER).unwrap();
    for (name, text) in [
        ("boot.html", BOOT),
        ("sw.js", SW),
        ("shim.js", SHIM),
        ("boot.js", BOOT_JS),
        ("broker.html", BROKER),
        ("broker.js", BROKER_JS),
        ("hub.js", HUB),
    ] {
        std::fs::write(www.join("app").join(name), text).unwrap();
    }
}

/// One answer: status, headers (lower-case names) and body.
struct Answer {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or_default()
    }
}

/// Sends `method path` with `Host: host` and `extra` header lines, and reads the whole answer.
async fn request(lab: &Lab, method: &str, host: &str, path: &str, extra: &str) -> Answer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut tls = lab.tls().await;
        let head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{extra}\r\n");
        tls.write_all(head.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        let _ = tls.read_to_end(&mut raw).await;
        raw
    };
    let raw = tokio::time::timeout(PATIENCE, exchange).await.expect("an answer in time");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no complete head: {text:?}"));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|c| c.parse().ok()).expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Answer { status, headers, body: body.to_owned() }
}

async fn get(lab: &Lab, host: &str, path: &str) -> Answer {
    request(lab, "GET", host, path, "").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_path_on_an_app_name_gives_the_boot_page_framable_only_by_the_launcher() {
    let lab = relay_with_apps().await;
    for path in ["/", "/index.html", "/js/app.js", "/relay.json", "/healthz", "/api/contents?type=notebook&x=%20y"] {
        let answer = get(&lab, APP, path).await;
        assert_eq!(answer.status, 200, "{path}");
        assert_eq!(answer.body, BOOT, "{path}: the boot page, never the launcher's files");
        assert_eq!(answer.header("content-type"), "text/html; charset=utf-8", "{path}");
        assert_eq!(answer.header("cache-control"), "no-store", "{path}");
        assert_eq!(answer.header("x-frame-options"), "", "{path}: the launcher frames apps");
        let csp = answer.header("content-security-policy");
        assert!(csp.contains("frame-ancestors https://home.test;"), "{path}: {csp}");
        assert!(csp.contains("script-src 'self';"), "{path}: {csp}");
        assert!(csp.contains("frame-src https://home.test;"), "{path}: the boot page frames the broker: {csp}");
    }
    let on_a_port = get(&lab, "h-192-168-0-10-p8080.home.test:8443", "/").await;
    assert!(on_a_port.header("content-security-policy").contains("frame-ancestors https://home.test:8443;"));
    let head = request(&lab, "HEAD", APP, "/some/page", "").await;
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    assert_eq!(head.header("content-type"), "text/html; charset=utf-8");
}

/// What reaches the relay on an app's path without being a page or frame loading came past the
/// app's worker (another app's page fetching from this one, a link the browser downloads itself,
/// a navigation to no document): it gets a
/// plain refusal, not the boot page's HTML in the place of the app's answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_navigation_gets_the_boot_page_on_an_apps_path() {
    let lab = relay_with_apps().await;
    for (mode, dest) in [("cors", "empty"), ("no-cors", "image"), ("no-cors", "script"), ("navigate", "empty")] {
        let extra = format!("Sec-Fetch-Mode: {mode}\r\nSec-Fetch-Dest: {dest}\r\n");
        let answer = request(&lab, "GET", APP, "/api/states", &extra).await;
        assert_eq!(answer.status, 503, "{mode} {dest}");
        assert!(answer.body.contains("open this app from your hometun page"), "{mode} {dest}: {}", answer.body);
    }
    for dest in ["document", "iframe"] {
        let extra = format!("Sec-Fetch-Mode: navigate\r\nSec-Fetch-Dest: {dest}\r\n");
        let answer = request(&lab, "GET", APP, "/api/states", &extra).await;
        assert_eq!((answer.status, answer.body.as_str()), (200, BOOT), "{dest}");
    }
    let script =
        request(&lab, "GET", APP, "/__ht/shim.js", "Sec-Fetch-Mode: no-cors\r\nSec-Fetch-Dest: script\r\n").await;
    assert_eq!((script.status, script.body.as_str()), (200, SHIM), "hometun's own files are for every request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hometuns_own_files_come_from_the_reserved_prefix_and_the_worker_may_control_the_whole_origin() {
    let lab = relay_with_apps().await;
    let worker = get(&lab, APP, "/__ht/sw.js").await;
    assert_eq!((worker.status, worker.body.as_str()), (200, SW));
    assert_eq!(worker.header("service-worker-allowed"), "/");
    assert_eq!(worker.header("cache-control"), "no-cache");
    assert_eq!(worker.header("content-type"), "text/javascript; charset=utf-8");
    assert_eq!(worker.header("content-security-policy"), "default-src 'self'", "the worker fetches boot.html");
    for (path, want) in [("/__ht/shim.js", SHIM), ("/__ht/boot.js", BOOT_JS)] {
        let script = get(&lab, APP, path).await;
        assert_eq!((script.status, script.body.as_str()), (200, want), "{path}");
        assert_eq!(script.header("content-type"), "text/javascript; charset=utf-8", "{path}");
        assert_eq!(script.header("service-worker-allowed"), "", "{path}");
    }
    let boot = get(&lab, APP, "/__ht/boot.html").await;
    assert_eq!((boot.status, boot.body.as_str()), (200, BOOT));
    assert_eq!(boot.header("cache-control"), "no-cache");
    for path in ["/__ht/", "/__ht/index.html", "/__ht/app/sw.js", "/__ht/../index.html"] {
        assert_eq!(get(&lab, APP, path).await.status, 404, "{path}");
    }
    assert_eq!(get(&lab, DOMAIN, "/__ht/sw.js").await.status, 404, "the launcher's name has no app files");
    for path in ["/__ht/broker.html", "/__ht/hub.js"] {
        assert_eq!(get(&lab, APP, path).await.status, 404, "{path}: the broker lives on the launcher's name only");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_frame_on_the_relays_name_may_be_framed_by_app_origins_only() {
    let lab = relay_with_apps().await;
    let broker = get(&lab, "home.test:8443", "/__ht/broker.html").await;
    assert_eq!((broker.status, broker.body.as_str()), (200, BROKER));
    assert_eq!(broker.header("content-type"), "text/html; charset=utf-8");
    assert_eq!(broker.header("x-frame-options"), "", "app pages frame the broker");
    let csp = broker.header("content-security-policy");
    assert!(csp.contains("frame-ancestors https://*.home.test:8443;"), "{csp}");
    assert!(csp.contains("script-src 'self';") && csp.contains("default-src 'none';"), "{csp}");
    for (path, want) in [("/__ht/broker.js", BROKER_JS), ("/__ht/hub.js", HUB)] {
        let script = get(&lab, DOMAIN, path).await;
        assert_eq!((script.status, script.body.as_str()), (200, want), "{path}");
        assert_eq!(script.header("content-type"), "text/javascript; charset=utf-8", "{path}");
        assert_eq!(script.header("x-frame-options"), "DENY", "{path}");
    }
    for path in ["/__ht/", "/__ht/boot.html", "/__ht/shim.js", "/__ht/../index.html", "/__ht/app/hub.js"] {
        assert_eq!(get(&lab, DOMAIN, path).await.status, 404, "{path}");
    }
    let posted = request(&lab, "POST", DOMAIN, "/__ht/broker.html", "Content-Length: 0\r\n").await;
    assert_eq!(posted.status, 405);
    let by_address = get(&lab, "127.0.0.1:8443", "/__ht/broker.html").await;
    assert_eq!(by_address.status, 404, "no broker without the relay's name");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_post_before_the_service_worker_runs_is_answered_503_with_what_to_do() {
    let lab = relay_with_apps().await;
    for (method, path) in [("POST", "/login"), ("PUT", "/__ht/sw.js"), ("DELETE", "/"), ("OPTIONS", "/api")] {
        let answer = request(&lab, method, APP, path, "Content-Length: 0\r\n").await;
        assert_eq!(answer.status, 503, "{method} {path}");
        assert_eq!(answer.body, "not connected: open this app from your hometun page\n");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_tunnel_opens_on_an_app_name_nor_from_an_app_page() {
    let lab = relay_with_apps().await;
    let upgrade = |host: &str, origin: &str| {
        format!(
            "GET /tunnel HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{origin}\r\n"
        )
        .into_bytes()
    };
    assert_eq!(lab.raw_status(&upgrade(APP, "")).await, 404, "/tunnel on an app name");
    assert_eq!(lab.raw_status(&upgrade(APP, "Origin: https://h-192-168-0-10-p8080.home.test\r\n")).await, 404);
    let from_an_app = upgrade(DOMAIN, "Origin: https://h-192-168-0-10-p8080.home.test\r\n");
    assert_eq!(lab.raw_status(&from_an_app).await, 403, "an app page opening the relay's /tunnel");
    assert_eq!(lab.raw_status(&upgrade(DOMAIN, "Origin: https://home.test\r\n")).await, 101, "the launcher");
    assert!(lab.relay.sessions.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_the_relay_would_never_certify_gets_nothing_and_other_hosts_the_ordinary_page() {
    let lab = relay_with_apps().await;
    for host in [
        "h-10-0-0-1-p80.home.test",      // outside the LAN
        "h-192-168-0-255-p80.home.test", // the LAN's broadcast address
        "h-10-8-0-1-p80.home.test",      // the relay's tunnel address
        "h-192-168-0-010-p80.home.test", // not canonical
        "h-192-168-0-10-p0.home.test",   // port 0
        "www.home.test",
        "a.h-192-168-0-10-p80.home.test",
    ] {
        for path in ["/", "/__ht/sw.js", "/tunnel"] {
            let answer = get(&lab, host, path).await;
            assert_eq!(answer.status, 404, "{host}{path}");
            assert!(!answer.body.contains("launcher"), "{host}{path}");
        }
    }
    for host in [DOMAIN, "localhost", "127.0.0.1:8443"] {
        let page = get(&lab, host, "/").await;
        assert_eq!((page.status, page.body.as_str()), (200, LAUNCHER), "{host}");
        assert_eq!(page.header("x-frame-options"), "DENY", "{host}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_launcher_on_the_relays_name_may_frame_app_origins_and_learns_their_domain() {
    let lab = relay_with_apps().await;
    let page = get(&lab, "home.test:8443", "/").await;
    let csp = page.header("content-security-policy");
    assert!(csp.contains("frame-src 'self' https://*.home.test:8443"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let by_address = get(&lab, "127.0.0.1:8443", "/").await;
    assert!(!by_address.header("content-security-policy").contains("frame-src"), "no app origins by address");
    let info: serde_json::Value = serde_json::from_str(&get(&lab, DOMAIN, "/relay.json").await.body).unwrap();
    assert_eq!(info["apps"], DOMAIN);

    let plain = Lab::start(Limits::default()).await;
    write_page(&plain);
    let info: serde_json::Value = serde_json::from_str(&get(&plain, "localhost", "/relay.json").await.body).unwrap();
    assert_eq!(info["apps"], serde_json::Value::Null, "no domain, no app names");
    let app = get(&plain, APP, "/").await;
    assert_eq!((app.status, app.body.as_str()), (200, LAUNCHER), "without a domain an app name is just another host");
}
