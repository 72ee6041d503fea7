//! Home web apps through the page: real apps from Debian on the lab's LAN hosts (Jupyter
//! Notebook, also serving HTTPS itself with a self-signed certificate, the Syncthing GUI,
//! qBittorrent's Web UI, lighttpd behind Basic and Digest authentication, nginx with a 64 MiB
//! file and a hostile page), used from a real
//! headless Chromium on the internet side that trusts only the lab ACME CA's root, through the
//! launcher page, the service worker and the shim on each app's own origin
//! (`https://h-A-B-C-D-pPORT.home.test`, docs/web-apps.md).
//!
//! Needs root and the page built (`bash scripts/build-page.sh`).

use std::time::Duration;

use anyhow::{ensure, Context};
use hometun_tests::acme::trusted_handshake;
use hometun_tests::apps::lighttpd::Lighttpd;
use hometun_tests::apps::nginx::{self, Nginx};
use hometun_tests::apps::qbittorrent::{self, Qbittorrent};
use hometun_tests::apps::{http, jupyter, jupyter::Jupyter, selfsigned, syncthing, syncthing::Syncthing};
use hometun_tests::browser::apps_page::{self, close_tab, open_app, open_typed, wait, TrustedLab};
use hometun_tests::browser::engines;
use hometun_tests::browser::webdriver::Session;
use hometun_tests::content;
use hometun_tests::lab::{addr, Lab, Node};
use serde_json::json;

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

/// A user opens Jupyter from the launcher, whose app name has no certificate yet: the launcher
/// asks the relay for it through the tunnel as it opens the app, and the tab's first handshake
/// waits for it. The login page, types the password and submits the
/// form (POST with `_xsrf`), lands on the tree by a redirect, which lists the notebook directory
/// (XHR to `/api/contents` with the token from `document.cookie`); opens a notebook and runs
/// `print(6*7)`: `42` appears (the kernel WebSocket both ways). A 50 MiB file uploaded through
/// the contents API (one `PUT` of 67 MiB of JSON, past the 64 MiB a buffered body may have: the
/// service worker streams it) lands byte-exact in the notebook directory. After every service
/// worker is stopped, a reload keeps the login and the same steps work again.
#[test]
fn jupyter_login_tree_and_a_kernel_work_through_the_tunnel_and_after_the_service_worker_stops() {
    let lab = Lab::start().expect("lab");
    let jupyter = Jupyter::start(&lab).expect("Jupyter");
    let trusted = TrustedLab::start(&lab).expect("trusted relay");
    let origin = apps_page::app_origin(jupyter::ADDR);
    let name = apps_page::app_name(jupyter::ADDR);
    assert!(trusted_handshake(&lab, &name, &trusted.root).is_err(), "{name} has a certificate before anyone asked");
    let page = trusted.browser().expect("Chromium");
    let launcher = step(&page, "jupyter launcher", || trusted.connect(&page, "jupyter-phone"));

    step(&page, "jupyter login", || {
        let (_tab, url) = open_app(&page, &launcher, &jupyter::lan_url())?;
        ensure!(url.starts_with(&origin), "appUrl gave {url}, not on {origin}");
        log_in_to_jupyter(&page, &origin)
    });
    step(&page, "jupyter tree", || see_the_tree(&page));
    step(&page, "jupyter files with Range", || {
        let got = page.execute_async(
            "const [path, done] = arguments; \
             fetch(path, {headers: {Range: 'bytes=6-9'}}).then(async r => done([r.status, await r.text()]), \
               e => done(String(e)))",
            &[json!(format!("/files/{}", jupyter::FILES[0]))],
        )?;
        ensure!(got == json!([206, &jupyter::HELLO[6..=9]]), "/files/ with Range gave {got}");
        Ok(())
    });
    step(&page, "jupyter upload", || upload_through_the_contents_api(&page, &jupyter));
    step(&page, "jupyter kernel", || {
        page.execute("location.href = '/notebooks/' + arguments[0]; return true", &[json!(jupyter::FILES[1])])?;
        run_print_6_times_7(&page)
    });

    step(&page, "stop service workers", || apps_page::stop_service_workers(&page));
    step(&page, "jupyter kernel after the worker stopped", || {
        page.execute(
            "if (window.Jupyter && Jupyter.notebook) { Jupyter.notebook.set_dirty(false); } \
             window.onbeforeunload = null; location.reload(); return true",
            &[],
        )?;
        run_print_6_times_7(&page)
    });
    step(&page, "jupyter tree after the worker stopped", || {
        page.execute("window.onbeforeunload = null; location.href = '/tree'; return true", &[])?;
        see_the_tree(&page)
    });
}

/// A home device that serves its web UI over HTTPS itself with a self-signed certificate (here
/// Jupyter with `--certfile`, as a NAS or Proxmox does): before anyone trusted its certificate, a
/// bookmarked app tab gets a refusal naming the certificate's fingerprint. In the launcher, the
/// typed `https://` address shows that fingerprint (the one `openssl` prints for the device's
/// certificate) and asks; once trusted, the app works as over plain HTTP: the password login,
/// the tree, and a kernel run over its WebSocket inside TLS inside the tunnel. Then the device
/// gets another certificate: the open tab is refused, naming both fingerprints, and the launcher
/// warns that it changed; only after the user trusts the new one does the app open again.
#[test]
fn an_https_app_is_trusted_on_first_use_works_and_a_changed_certificate_is_refused_until_trusted_again() {
    let lab = Lab::start().expect("lab");
    let certs = lab.dir().join("device-certs");
    let first = selfsigned::make(&certs, "first", addr::HOST10).expect("the device's certificate");
    let mut jupyter = Jupyter::start_https(&lab, &first).expect("Jupyter over HTTPS");
    let trusted = TrustedLab::start(&lab).expect("trusted relay");
    let origin = trusted.trust_https_app(jupyter::TLS_ADDR).expect("the app name's certificate");
    let page = trusted.browser().expect("Chromium");
    let launcher = step(&page, "https launcher", || trusted.connect(&page, "https-phone"));

    step(&page, "https refused before it is trusted", || {
        let tab = open_typed(&page, &format!("{origin}/login"))?;
        let text = wait(&page, "the refusal", APP_LOAD, REFUSAL)?;
        let text = text.as_str().unwrap_or_default();
        ensure!(text.contains("has not trusted yet") && text.contains(&first.fingerprint), "the tab says {text:?}");
        close_tab(&page, &tab, &launcher)
    });
    step(&page, "https first visit asks", || {
        let asked = ask_in_launcher(&page, &launcher, &jupyter::tls_lan_url())?;
        ensure!(asked == json!(["new", first.fingerprint, ""]), "the launcher asked {asked}");
        Ok(())
    });
    let tab = step(&page, "https trusted and opened", || {
        let tab = trust_and_open(&page)?;
        log_in_to_jupyter(&page, &origin)?;
        see_the_tree(&page)?;
        Ok(tab)
    });
    step(&page, "https kernel", || {
        page.execute("location.href = '/notebooks/' + arguments[0]; return true", &[json!(jupyter::FILES[1])])?;
        run_print_6_times_7(&page)
    });
    step(&page, "https 16 MiB intact", || {
        let mut bytes = vec![0u8; 16 << 20];
        content::blob_bytes(bytes.len() as u64, 7, &mut bytes);
        std::fs::write(jupyter.notebooks().join("big.bin"), &bytes)?;
        let got = page.execute_async(FETCH_AND_HASH, &[json!("/files/big.bin")])?;
        ensure!(got["status"] == 200 && got["length"] == bytes.len(), "/files/big.bin: {got}");
        let sha = hometun_tests::apps::sha256_hex(&bytes);
        ensure!(got["sha"] == sha.as_str(), "the 16 MiB differ (SHA-256 {} instead of {sha})", got["sha"]);
        let ms = got["ms"].as_f64().unwrap_or(f64::NAN);
        eprintln!("web apps: 16 MiB over TLS in the tunnel in {ms:.0} ms ({:.1} MB/s)", bytes.len() as f64 / 1e3 / ms);
        Ok(())
    });

    let second = selfsigned::make(&certs, "second", addr::HOST10).expect("the device's new certificate");
    drop(jupyter);
    jupyter = Jupyter::start_https(&lab, &second).expect("Jupyter with the new certificate");
    step(&page, "https changed certificate refused", || {
        page.execute("window.onbeforeunload = null; location.href = '/tree'; return true", &[])?;
        let text = wait(&page, "the refusal", APP_LOAD, REFUSAL)?;
        let text = text.as_str().unwrap_or_default();
        ensure!(
            text.contains("changed") && text.contains(&first.fingerprint) && text.contains(&second.fingerprint),
            "the tab says {text:?}"
        );
        Ok(())
    });
    step(&page, "https launcher warns of the change", || {
        let asked = ask_in_launcher(&page, &launcher, &jupyter::tls_lan_url())?;
        ensure!(asked == json!(["changed", second.fingerprint, first.fingerprint]), "the launcher asked {asked}");
        page.execute("document.getElementById('apps-trust-cancel').click(); return true", &[])?;
        let status = page.execute_async(
            "const [lan, done] = arguments; \
             hometun.appCertificate(lan).then(c => done(c.status), e => done(String(e)))",
            &[json!(jupyter::tls_lan_url())],
        )?;
        ensure!(status == "changed", "after Cancel the certificate is {status}");
        Ok(())
    });
    step(&page, "https trusted again", || {
        page.switch_to(&tab)?;
        page.execute("location.reload(); return true", &[])?;
        wait(&page, "the refusal again", APP_LOAD, REFUSAL)?;
        ask_in_launcher(&page, &launcher, &jupyter::tls_lan_url())?;
        trust_and_open(&page)?;
        log_in_to_jupyter(&page, &origin)?;
        see_the_tree(&page)
    });
    drop(jupyter);
}

/// A router's admin pages behind HTTP Basic authentication (nginx `auth_basic` with a password
/// file made by `openssl passwd`, as many routers and printers ask): see [`signing_in`].
/// nginx saw the refused attempt and the accepted requests.
#[test]
fn a_router_page_behind_basic_authentication_gets_a_sign_in_page_then_works() {
    let lab = Lab::start().expect("lab");
    let htpasswd = lab.dir().join("router.htpasswd");
    let mut cmd = std::process::Command::new("openssl");
    cmd.args(["passwd", "-apr1", ROUTER_PASSWORD]);
    let out = hometun_tests::lab::run_bounded(cmd, Duration::from_secs(30)).expect("openssl passwd");
    let hash = String::from_utf8(out.stdout).expect("hash");
    std::fs::write(&htpasswd, format!("admin:{}\n", hash.trim())).expect("password file");
    let locations =
        format!(r#"location /admin/ {{ auth_basic "Router admin"; auth_basic_user_file {}; }}"#, htpasswd.display());
    let nginx = Nginx::start_with(&lab, Node::Host20, (addr::HOST20, 8081).into(), "router", ADMIN_FILES, &locations)
        .expect("nginx with Basic authentication");
    signing_in(&lab, nginx.addr, "Router admin");
    refused_then_accepted(&nginx.requests());
}

/// An IP camera's pages behind HTTP Digest authentication (lighttpd `mod_auth` with an
/// `htdigest` file): see [`signing_in`]; the user name and password typed on the sign-in page
/// are answered to the camera's Digest challenges. lighttpd saw the refused attempt and the
/// accepted requests.
#[test]
fn a_camera_page_behind_digest_authentication_gets_a_sign_in_page_then_works() {
    let lab = Lab::start().expect("lab");
    let camera = Lighttpd::start_digest(
        &lab,
        Node::Host20,
        (addr::HOST20, 8082).into(),
        ADMIN_FILES,
        ("Camera", "admin", ROUTER_PASSWORD),
    )
    .expect("lighttpd with Digest authentication");
    signing_in(&lab, camera.addr, "Camera");
    refused_then_accepted(&camera.stop());
}

/// A user opens the device's `/admin/` from the launcher: a browser shows no sign-in prompt of
/// its own for a service worker's answer, so the app origin shows hometun's sign-in page naming
/// the device and `realm`. A wrong password is refused there; the right one shows the admin
/// page, whose own script then reads a protected JSON file (the bridge answers the device's
/// challenge); after the service workers are stopped, a reload still shows the page.
fn signing_in(lab: &Lab, device: std::net::SocketAddr, realm: &str) {
    let trusted = TrustedLab::start(lab).expect("trusted relay");
    let origin = trusted.trust_app(device).expect("the app name's certificate");
    let page = trusted.browser().expect("Chromium");
    let launcher = step(&page, "sign-in launcher", || trusted.connect(&page, "admin-phone"));
    step(&page, "sign-in page", || {
        open_app(&page, &launcher, &format!("http://{device}/admin/"))?;
        let asked = wait(
            &page,
            "hometun's sign-in page",
            APP_LOAD,
            "return document.body && document.body.dataset.hometunSignIn === 'basic' \
               ? [location.origin, document.body.innerText] : null",
        )?;
        ensure!(asked[0] == origin.as_str(), "the sign-in page is on {}", asked[0]);
        let text = asked[1].as_str().unwrap_or_default();
        ensure!(text.contains(&format!("http://{device}")) && text.contains(realm), "it says {text:?}");
        Ok(())
    });
    step(&page, "sign-in wrong password", || {
        sign_in(&page, "admin", "not-the-password")?;
        let said = wait(
            &page,
            "the refusal on the sign-in page",
            Duration::from_secs(20),
            "const e = document.getElementById('ht-sign-in-error'); return e && !e.hidden ? e.textContent : null",
        )?;
        ensure!(said.as_str().is_some_and(|t| t.contains("refused")), "it says {said}");
        Ok(())
    });
    step(&page, "signed in", || {
        sign_in(&page, "admin", ROUTER_PASSWORD)?;
        see_the_router_status(&page)
    });
    step(&page, "stop service workers", || apps_page::stop_service_workers(&page));
    step(&page, "signed in after the worker stopped", || {
        apps_page::reload(&page, Duration::from_secs(30))?;
        see_the_router_status(&page)
    });
}

/// The admin pages both devices serve.
const ADMIN_FILES: &[(&str, &[u8])] =
    &[("admin/index.html", ROUTER_ADMIN.as_bytes()), ("admin/status.json", br#"{"wan":"up","uptime":4242}"#)];

const ROUTER_PASSWORD: &str = "lab-router-password";

/// The router's admin page: its script fetches `status.json` (protected too) and shows it.
const ROUTER_ADMIN: &str = r#"<!doctype html><title>Router settings</title><h1>Router settings</h1>
<p id="status">loading</p>
<script>
fetch('/admin/status.json').then(r => r.ok ? r.json() : Promise.reject(r.status))
  .then(s => { document.getElementById('status').textContent = 'WAN ' + s.wan + ', up ' + s.uptime + ' s'; })
  .catch(e => { document.getElementById('status').textContent = 'failed: ' + e; });
</script>
"#;

/// On hometun's sign-in page: types `user` and `password` and submits.
fn sign_in(page: &Session<'_>, user: &str, password: &str) -> anyhow::Result<()> {
    page.execute(
        "document.getElementById('ht-user').value = arguments[0]; \
         document.getElementById('ht-password').value = arguments[1]; \
         document.getElementById('ht-sign-in-submit').click(); return true",
        &[json!(user), json!(password)],
    )?;
    Ok(())
}

/// Waits until the router's admin page shows the status its script fetched.
fn see_the_router_status(page: &Session<'_>) -> anyhow::Result<()> {
    let status = wait(
        page,
        "the router's admin page with its status",
        APP_LOAD,
        "const s = document.getElementById('status'); \
         return document.title === 'Router settings' && s && s.textContent !== 'loading' ? s.textContent : null",
    )?;
    ensure!(status == "WAN up, up 4242 s", "the admin page shows {status}");
    Ok(())
}

/// Panics unless the device's access `log` (`ADDRESS "REQUEST" STATUS …`) shows a refused
/// `/admin/` request and the accepted status file, both from the relay (the tunnel's traffic).
fn refused_then_accepted(log: &[String]) {
    let seen = |request: &str, status: &str| {
        let start = format!("{} \"GET {request}", addr::HOME);
        log.iter()
            .any(|l| l.starts_with(&start) && l.split('"').nth(2).is_some_and(|s| s.trim_start().starts_with(status)))
    };
    assert!(seen("/admin/", "401"), "the device never refused a request: {log:#?}");
    assert!(seen("/admin/status.json", "200"), "the device never served the status file: {log:#?}");
}

/// Fetches `arguments[0]` in the page (cache mode `arguments[1]` when given, else `no-store`)
/// and answers `{status, length, ms, sha}` (SHA-256, hex).
const FETCH_AND_HASH: &str = r#"const path = arguments[0], done = arguments[arguments.length - 1];
    const cache = arguments.length > 2 ? arguments[1] : 'no-store';
    (async () => {
      const t0 = performance.now();
      const r = await fetch(path, {cache});
      const b = await r.arrayBuffer();
      const ms = performance.now() - t0;
      const d = new Uint8Array(await crypto.subtle.digest('SHA-256', b));
      return {status: r.status, length: b.byteLength, ms,
              sha: [...d].map(x => x.toString(16).padStart(2, '0')).join('')};
    })().then(done, e => done({error: String(e)}));"#;

/// A hometun refusal page (the service worker's `502` text).
const REFUSAL: &str = "const t = document.body && document.body.innerText; \
                       return t && t.startsWith('hometun:') ? t : null";

/// In the launcher window `launcher`: types `lan_url` into the Apps card and clicks "Open in new tab"; waits for
/// the certificate question and returns `[status, fingerprint shown, fingerprint trusted before]`.
fn ask_in_launcher(page: &Session<'_>, launcher: &str, lan_url: &str) -> anyhow::Result<serde_json::Value> {
    page.switch_to(launcher)?;
    page.execute("document.getElementById('apps-address').value = arguments[0]", &[json!(lan_url)])?;
    page.click("#apps-open-tab")?;
    wait(
        page,
        "the certificate question",
        Duration::from_secs(30),
        "const q = document.getElementById('apps-trust'); \
         return q && !q.hidden && q.dataset.status ? [q.dataset.status, \
           document.getElementById('apps-trust-fingerprint').textContent, \
           document.getElementById('apps-trust-pinned').textContent] : null",
    )
}

/// In the launcher, with the certificate question shown: "Trust and open"; switches to the app's
/// new tab and returns its handle.
fn trust_and_open(page: &Session<'_>) -> anyhow::Result<String> {
    let before = page.windows()?;
    page.click("#apps-trust-open")?;
    let tab = hometun_tests::lab::wait_until(Duration::from_secs(10), || {
        page.windows().ok()?.into_iter().find(|h| !before.contains(h))
    })?;
    page.switch_to(&tab)?;
    Ok(tab)
}

/// On Jupyter's login page at `origin`: types the password and submits.
fn log_in_to_jupyter(page: &Session<'_>, origin: &str) -> anyhow::Result<()> {
    let at = wait(
        page,
        "Jupyter's login page",
        APP_LOAD,
        "return location.pathname === '/login' && document.querySelector('input[name=password]') \
         ? location.origin : null",
    )?;
    ensure!(at == origin, "the login page is on {at}");
    page.execute(
        "document.querySelector('input[name=password]').value = arguments[0]; \
         document.querySelector('#login_submit, button[type=submit], input[type=submit]').click(); return true",
        &[json!(jupyter::PASSWORD)],
    )?;
    Ok(())
}

const APP_LOAD: Duration = Duration::from_secs(60);
/// The file uploaded to Jupyter: its base64 JSON (4/3 of it) is more than 64 MiB.
const UPLOAD: u64 = 50 << 20;

/// From a Jupyter page: makes a file of random bytes, uploads it as Jupyter's upload button
/// does (`PUT /api/contents/<name>`, base64 JSON, `X-XSRFToken` from `document.cookie`), and
/// checks the file on disk has the same SHA-256.
fn upload_through_the_contents_api(page: &Session<'_>, jupyter: &Jupyter) -> anyhow::Result<()> {
    let name = "upload-from-the-phone.bin";
    let got = page.execute_async(
        r#"const [name, size, done] = arguments;
        (async () => {
          const bytes = new Uint8Array(size);
          for (let i = 0; i < size; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
          const d = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
          const sha = [...d].map(x => x.toString(16).padStart(2, '0')).join('');
          const parts = [];
          for (let i = 0; i < size; i += 3 * 16384) {
            parts.push(btoa(String.fromCharCode.apply(null, bytes.subarray(i, i + 3 * 16384))));
          }
          const body = JSON.stringify({type: 'file', format: 'base64', content: parts.join('')});
          const xsrf = document.cookie.split('; ').find(c => c.startsWith('_xsrf='));
          if (!xsrf) return {error: 'no _xsrf in document.cookie: ' + document.cookie};
          const t0 = performance.now();
          const r = await fetch('/api/contents/' + name, {method: 'PUT', body,
            headers: {'Content-Type': 'application/json', 'X-XSRFToken': xsrf.slice(6)}});
          const text = await r.text();
          let stored = null;
          try { stored = JSON.parse(text).size; } catch (_) { /* not the contents model */ }
          return {status: r.status, ms: performance.now() - t0, sent: body.length, sha, size: stored,
                  answer: stored === null ? text.slice(0, 300) : ''};
        })().then(done, e => done({error: String(e)}));"#,
        &[json!(name), json!(UPLOAD)],
    )?;
    ensure!(got["status"] == 201 && got["size"] == UPLOAD, "PUT /api/contents/{name}: {got}");
    ensure!(got["sent"].as_u64().is_some_and(|n| n > 64 << 20), "the request body was not over 64 MiB: {got}");
    let on_disk = std::fs::read(jupyter.notebooks().join(name))?;
    ensure!(on_disk.len() as u64 == UPLOAD, "{} bytes on disk", on_disk.len());
    let sha = hometun_tests::apps::sha256_hex(&on_disk);
    ensure!(got["sha"] == sha.as_str(), "the file on disk differs (SHA-256 {sha}, the page's {})", got["sha"]);
    let ms = got["ms"].as_f64().unwrap_or(f64::NAN);
    eprintln!("web apps: {} bytes of JSON uploaded through the service worker in {ms:.0} ms", got["sent"]);
    Ok(())
}

fn see_the_tree(page: &Session<'_>) -> anyhow::Result<()> {
    let listed = wait(
        page,
        "the tree listing the notebook directory",
        APP_LOAD,
        "const l = location.pathname === '/tree' && document.querySelector('#notebook_list'); \
         return l && l.innerText.includes('hello-from-the-lab.txt') \
           && l.innerText.includes('analysis.ipynb') ? l.innerText : null",
    )?;
    ensure!(listed.as_str().is_some_and(|t| jupyter::FILES.iter().all(|f| t.contains(f))), "tree shows {listed}");
    Ok(())
}

/// On a notebook page: waits for the kernel, adds a cell with `print(6*7)`, runs it and waits
/// until one more output says `42`.
fn run_print_6_times_7(page: &Session<'_>) -> anyhow::Result<()> {
    wait(
        page,
        "the notebook's kernel to connect",
        APP_LOAD,
        "return location.pathname.startsWith('/notebooks/') && window.Jupyter && Jupyter.notebook \
           && Jupyter.notebook.kernel && Jupyter.notebook.kernel.is_connected() ? true : null",
    )?;
    let before = page.execute(OUTPUTS_42, &[])?.as_u64().unwrap_or(0);
    page.execute(
        "const cell = Jupyter.notebook.insert_cell_at_bottom('code'); cell.set_text('print(6*7)'); \
         cell.execute(); return true",
        &[],
    )?;
    let script = format!("const n = (() => {{ {OUTPUTS_42} }})(); return n > {before} ? n : null");
    wait(page, "42 under the cell", Duration::from_secs(30), &script)?;
    Ok(())
}

const OUTPUTS_42: &str =
    "return [...document.querySelectorAll('.output_subarea')].filter(e => e.innerText.trim() === '42').length";

/// A user opens the Syncthing GUI from the launcher: it shows this device's name and ID (REST
/// calls carrying the CSRF header that its script reads from `document.cookie`; without the header
/// the API refuses); a change made through the REST API from the app's page reaches a pending
/// long poll of `/rest/events` and the GUI's own long poll (it shows the new name). After every
/// service worker is stopped, opening the app again in the same tab shows the device again and
/// another change arrives.
#[test]
fn syncthing_gui_rest_with_csrf_and_long_poll_events_work_through_the_tunnel_and_after_the_service_worker_stops() {
    let lab = Lab::start().expect("lab");
    let syncthing = Syncthing::start(&lab).expect("Syncthing");
    let trusted = TrustedLab::start(&lab).expect("trusted relay");
    let origin = trusted.trust_app(syncthing::ADDR).expect("the app name's certificate");
    let page = trusted.browser().expect("Chromium");
    let launcher = step(&page, "syncthing launcher", || trusted.connect(&page, "syncthing-phone"));

    let app_url = step(&page, "syncthing gui", || {
        let (_tab, url) = open_app(&page, &launcher, &syncthing::lan_url())?;
        ensure!(url.starts_with(&origin), "appUrl gave {url}, not on {origin}");
        see_the_device(&page, &syncthing, syncthing::DEVICE_NAME)?;
        Ok(url)
    });
    step(&page, "syncthing csrf", || {
        let refused = page.execute_async(
            "const done = arguments[arguments.length - 1]; \
             fetch('/rest/system/status').then(r => done(r.status), e => done(String(e)))",
            &[],
        )?;
        ensure!(refused == 403, "the API answered {refused} without the CSRF header");
        Ok(())
    });
    step(&page, "syncthing events", || rename_and_see_the_event(&page, &syncthing, "lab-nas-renamed"));

    // The GUI always has a long poll in flight, which keeps its worker busy: the tab leaves the
    // app while the workers are stopped, and comes back to it in the same tab.
    step(&page, "stop service workers", || {
        page.goto("about:blank")?;
        apps_page::stop_service_workers(&page)
    });
    step(&page, "syncthing after the worker stopped", || {
        page.goto(&app_url)?;
        see_the_device(&page, &syncthing, "lab-nas-renamed")?;
        rename_and_see_the_event(&page, &syncthing, syncthing::DEVICE_NAME)
    });
}

/// A magnet link a phone adds to the NAS's download manager: no trackers, and the lab's
/// qBittorrent asks no peers, so it waits for metadata under this name.
const MAGNET_HASH: &str = "0123456789abcdef0123456789abcdef01234567";
const MAGNET_NAME: &str = "holiday-photos";

/// qBittorrent's Web UI, a NAS's download manager, from a phone: its login page refuses a wrong
/// password with its own message and signs in with the right one (a session cookie the page
/// cannot read); its "Add Torrent Link" dialog (a form in a same-origin frame, posted as
/// multipart into a hidden frame) adds a magnet link, which its transfer list shows and the
/// daemon keeps. qBittorrent refuses any request whose `Origin` or `Referer` is not the address
/// it serves (checked directly inside the LAN first): these pass only because hometun sends the
/// LAN origin in place of the app origin's name.
#[test]
fn qbittorrent_login_and_a_magnet_link_added_in_its_dialog_work_through_the_tunnel() {
    let lab = Lab::start().expect("lab");
    let qbittorrent = Qbittorrent::start(&lab).expect("qBittorrent");
    let trusted = TrustedLab::start(&lab).expect("trusted relay");
    let origin = trusted.trust_app(qbittorrent::ADDR).expect("the app name's certificate");
    let login = format!("username={}&password={}", qbittorrent::USER, qbittorrent::PASSWORD);
    let lan_origin = format!("http://{}", qbittorrent::ADDR);
    let from = |from_origin: &str| {
        let form = ("Content-Type", "application/x-www-form-urlencoded");
        let headers = [form, ("Origin", from_origin)];
        http::request(&lab, Node::Router, qbittorrent::ADDR, "POST", "/api/v2/auth/login", &headers, login.as_bytes())
            .expect("a login inside the LAN")
    };
    let (refused, accepted) = (from(&origin), from(&lan_origin));
    assert_eq!(
        refused.status, 401,
        "qBittorrent took a login from the app origin's name: its CSRF check proves nothing"
    );
    assert_eq!(
        (accepted.status, accepted.text()),
        (200, "Ok.".to_owned()),
        "qBittorrent refused a login from its own origin"
    );
    // And it keeps to the LAN, as configured.
    let session = accepted.header("set-cookie").and_then(|c| c.split(';').next()).unwrap_or_default().to_owned();
    let preferences =
        http::get(&lab, Node::Router, qbittorrent::ADDR, "/api/v2/app/preferences", &[("Cookie", &session)])
            .expect("qBittorrent's preferences");
    let preferences: serde_json::Value = serde_json::from_slice(&preferences.body).expect("preferences in JSON");
    for off in ["dht", "pex", "lsd", "upnp", "web_ui_upnp", "resolve_peer_countries"] {
        assert_eq!(preferences[off], false, "qBittorrent's {off} is not off: {preferences}");
    }
    let page = trusted.browser().expect("Chromium");
    let launcher = step(&page, "qbittorrent launcher", || trusted.connect(&page, "qbittorrent-phone"));

    step(&page, "qbittorrent login", || {
        let (_tab, url) = open_app(&page, &launcher, &qbittorrent::lan_url())?;
        ensure!(url.starts_with(&origin), "appUrl gave {url}, not on {origin}");
        wait(&page, "the login page", APP_LOAD, "return document.getElementById('loginform') ? true : null")?;
        let log_in = |password: &str| {
            page.execute(
                "document.getElementById('username').value = arguments[0]; \
                 document.getElementById('password').value = arguments[1]; \
                 document.getElementById('error_msg').textContent = '';",
                &[json!(qbittorrent::USER), json!(password)],
            )?;
            page.click("#login")
        };
        log_in("not-the-password")?;
        let said = wait(
            &page,
            "the wrong password's message",
            APP_LOAD,
            "const e = document.getElementById('error_msg'); return e && e.textContent.trim()",
        )?;
        ensure!(said == "Invalid Username or Password.", "a wrong password got {said}");
        log_in(qbittorrent::PASSWORD)?;
        wait(&page, "the transfer list", APP_LOAD,
            "return document.getElementById('downloadButton') && document.getElementById('torrentsTableDiv') ? true : null")?;
        let cookie = page.execute("return document.cookie", &[])?;
        ensure!(
            !cookie.as_str().unwrap_or_default().contains("SID="),
            "the page can read the session cookie: {cookie}"
        );
        Ok(())
    });
    step(&page, "qbittorrent adds a magnet link", || {
        let magnet = format!("magnet:?xt=urn:btih:{MAGNET_HASH}&dn={MAGNET_NAME}");
        page.execute("document.getElementById('downloadButton').click()", &[])?;
        wait(&page, "the Add Torrent Link dialog", APP_LOAD,
            "const f = document.getElementById('downloadPage_iframe'); \
             const d = f && f.contentDocument; return d && d.getElementById('urls') && d.getElementById('submitButton') ? true : null")?;
        page.execute(
            "const d = document.getElementById('downloadPage_iframe').contentDocument; \
             d.getElementById('urls').value = arguments[0]; d.getElementById('submitButton').click();",
            &[json!(magnet)],
        )?;
        wait(&page, "the magnet link in the transfer list", APP_LOAD, &format!(
            "const t = document.getElementById('torrentsTableDiv'); return t && t.innerText.includes({MAGNET_NAME:?}) ? true : null"))?;
        // Its resume data is written a moment after the torrent is added.
        hometun_tests::lab::wait_until(Duration::from_secs(10), || qbittorrent.has_torrent(MAGNET_HASH).then_some(()))
            .context("the transfer list shows it but qBittorrent does not keep it")?;
        apps_page::screenshot(&page, "web-apps-qbittorrent");
        Ok(())
    });
}

fn see_the_device(page: &Session<'_>, syncthing: &Syncthing, name: &str) -> anyhow::Result<()> {
    let script = format!(
        "if (!document.body || !document.body.innerText.includes({name:?}) || !window.angular) return null; \
         const s = angular.element(document.querySelector('[ng-controller]') || document.body).scope(); \
         return s && s.myID ? s.myID : null"
    );
    let id = wait(page, &format!("the GUI to show the device {name}"), APP_LOAD, &script)?;
    ensure!(id == syncthing.device_id.as_str(), "the GUI shows device ID {id}, not {}", syncthing.device_id);
    Ok(())
}

/// From the app's page: reads the CSRF token from `document.cookie`, starts a long poll of
/// `/rest/events`, renames this device through the REST API, and waits for the long poll to
/// deliver `ConfigSaved`; then the GUI (its own long poll) shows the new name.
fn rename_and_see_the_event(page: &Session<'_>, syncthing: &Syncthing, new_name: &str) -> anyhow::Result<()> {
    let result = page.execute_async(
        r#"const [short, id, name, done] = arguments;
        (async () => {
          const cookie = document.cookie.split('; ').find(c => c.startsWith('CSRF-Token-' + short + '='));
          if (!cookie) return {error: 'no CSRF cookie in document.cookie: ' + document.cookie};
          const h = {['X-CSRF-Token-' + short]: cookie.slice(cookie.indexOf('=') + 1)};
          const last = await (await fetch('/rest/events?limit=1', {headers: h})).json();
          const since = last.length ? last[last.length - 1].id : 0;
          const poll = fetch('/rest/events?since=' + since + '&timeout=40', {headers: h}).then(r => r.json());
          await new Promise(r => setTimeout(r, 1000));
          const dev = await (await fetch('/rest/config/devices/' + id, {headers: h})).json();
          dev.name = name;
          const put = await fetch('/rest/config/devices/' + id, {method: 'PUT',
            headers: {...h, 'Content-Type': 'application/json'}, body: JSON.stringify(dev)});
          const events = await poll;
          return {put: put.status, types: events.map(e => e.type)};
        })().then(done, e => done({error: String(e)}));"#,
        &[json!(syncthing.short_id()), json!(syncthing.device_id), json!(new_name)],
    )?;
    ensure!(result["put"] == 200, "renaming through the REST API: {result}");
    ensure!(
        result["types"].as_array().is_some_and(|t| t.iter().any(|t| t == "ConfigSaved")),
        "the long poll did not deliver ConfigSaved: {result}"
    );
    see_the_device(page, syncthing, new_name)
}

/// A user opens a file server from the launcher: `Range` requests from the app's origin get `206`
/// and exactly the file's bytes (SHA-256 of each slice), and the whole 64 MiB file arrives intact
/// through the service worker; the same app opened in the launcher's own frame (its Apps card:
/// typed address, "Open here") answers a range too; after every service worker is stopped, a
/// range still works; a redirect to another app of the LAN lands there.
#[test]
fn nginx_ranges_are_byte_exact_and_64_mib_arrive_intact_through_the_service_worker() {
    let lab = Lab::start().expect("lab");
    let locations = format!(
        "location /fresh/ {{ expires 1h; }} location /vary/ {{ expires 1h; add_header Vary Cookie; }}{RELABELLED}{}{SMALL_UPLOADS}{COMPRESSED}{STRICT_SCRIPTS}{SIGNED_FORMS}{CAMERA}{MOVED}{REDIRECTED_UPLOADS}",
        nginx::DAV
    );
    let nginx = Nginx::start_with(&lab, Node::Host10, FILES_ADDR.into(), "files", &[], &locations).expect("nginx");
    let sha = nginx.add_random_file("big.bin", BIG as usize).expect("64 MiB file");
    let bytes = std::fs::read(nginx.root().join("big.bin")).expect("the file");
    let trusted = TrustedLab::start(&lab).expect("trusted relay");
    let origin = trusted.trust_app(nginx.addr).expect("the app name's certificate");
    let page = trusted.browser().expect("Chromium");
    let launcher = step(&page, "files launcher", || trusted.connect(&page, "files-phone"));

    let tab = step(&page, "files index", || {
        let (tab, url) = open_app(&page, &launcher, &format!("http://{}/", nginx.addr))?;
        ensure!(url.starts_with(&origin), "appUrl gave {url}, not on {origin}");
        wait(
            &page,
            "the file server's index",
            APP_LOAD,
            "return document.querySelector('h1') ? document.title : null",
        )?;
        Ok(tab)
    });
    let ranges = [(0, 65_535), (1_000_000, 1_999_999), (BIG - 100_000, BIG - 1), (12_345_678, 12_345_678)];
    step(&page, "files ranges", || check_ranges(&page, &bytes, &ranges));
    step(&page, "files kept by the app's cache", || fetch_twice_then_changed(&page, &nginx));
    step(&page, "files uploaded", || uploads_arrive_as_sent(&page, &nginx));
    step(&page, "files too large for the device", || too_large_is_answered(&page, &nginx));
    step(&page, "files compressed anyway", || compressed_anyway_arrives_plain(&page, &nginx));
    step(&page, "files: text crosses the tunnel compressed", || {
        text_crosses_the_tunnel_compressed(&page, &launcher, &nginx)
    });
    step(&page, "files under a strict script policy", || a_strict_script_policy_still_runs_the_shim(&page, &nginx));
    step(&page, "files form posts", || another_sites_form_post_gets_no_cookies(&page, &nginx, &origin));
    step(&page, "files: a cookie a script writes goes with its next request", || {
        a_cookie_a_script_writes_goes_with_its_next_request(&page)
    });
    step(&page, "files: a cookie a script writes goes with the page it goes to", || {
        a_cookie_a_script_writes_goes_with_the_page_it_goes_to(&page, &nginx)
    });
    step(&page, "files: a camera's live view", || a_cameras_live_view_moves(&page, &nginx));
    step(&page, "files whole", || {
        let got = page.execute_async(FETCH_AND_HASH, &[json!("/big.bin")])?;
        ensure!(got["status"] == 200 && got["length"] == BIG, "whole file: {got}");
        ensure!(got["sha"] == sha.as_str(), "the 64 MiB differ (SHA-256 {} instead of {sha})", got["sha"]);
        let ms = got["ms"].as_f64().unwrap_or(f64::NAN);
        eprintln!("web apps: 64 MiB through the service worker in {ms:.0} ms ({:.1} MB/s)", BIG as f64 / 1e3 / ms);
        let through_tunnel = |l: &String| l.starts_with(&format!("{} \"GET /big.bin", addr::HOME));
        let seen: Vec<String> = nginx.requests().into_iter().filter(through_tunnel).collect();
        ensure!(
            seen.len() == ranges.len() + 1 && seen.iter().filter(|l| l.contains(" 206 ")).count() == ranges.len(),
            "nginx did not see the ranges and the whole file come from the relay: {seen:?}"
        );
        Ok(())
    });
    step(&page, "files in the launcher's frame", || {
        // The launcher's Apps card: type the address, "Open here".
        page.switch_to(&launcher)?;
        page.execute(
            "document.getElementById('apps-address').value = arguments[0]; \
             document.getElementById('apps-open-here').click(); return true",
            &[json!(nginx.addr.to_string())],
        )?;
        wait(
            &page,
            "the app frame in the launcher",
            APP_LOAD,
            "return document.getElementById('apps-frame') ? 1 : null",
        )?;
        page.switch_to_frame(Some("#apps-frame"))?;
        let framed = wait(
            &page,
            "the file server's index in the frame",
            APP_LOAD,
            "return document.querySelector('h1') && window.parent !== window ? location.origin : null",
        )?;
        ensure!(framed == origin.as_str(), "the frame shows {framed}");
        check_ranges(&page, &bytes, &ranges[2..3])?;
        page.switch_to_frame(None)?;
        // "Open in new tab" above the frame moves the app to a tab of its own.
        let before = page.windows()?;
        page.click("#apps-viewer-tab")?;
        let moved = hometun_tests::lab::wait_until(Duration::from_secs(10), || {
            page.windows().ok()?.into_iter().find(|h| !before.contains(h))
        })?;
        let error = page.execute("return document.getElementById('apps-error').textContent", &[])?;
        ensure!(error == "", "the launcher shows an error: {error}");
        wait(&page, "the frame closed", APP_LOAD, "return document.getElementById('apps-frame') ? null : 1")?;
        page.switch_to(&moved)?;
        let shown = wait(
            &page,
            "the file server's index in the moved tab",
            APP_LOAD,
            "return document.querySelector('h1') && window.opener === null ? location.origin : null",
        )?;
        ensure!(shown == origin.as_str(), "the moved tab shows {shown}");
        close_tab(&page, &moved, &tab)
    });
    step(&page, "stop service workers", || apps_page::stop_service_workers(&page));
    step(&page, "files after the worker stopped", || {
        page.execute("location.reload(); return true", &[])?;
        std::thread::sleep(Duration::from_millis(500));
        wait(
            &page,
            "the file server's index",
            APP_LOAD,
            "return document.querySelector('h1') ? document.title : null",
        )?;
        check_ranges(&page, &bytes, &ranges[1..2])
    });
    step(&page, "files redirect and link to other apps", || {
        going_to_other_apps_lands_there(&lab, &trusted, &page, &origin)
    });
}

const FILES_ADDR: (std::net::Ipv4Addr, u16) = (addr::HOST10, 8080);

/// Where the device sends the browser to other apps of its own (as a router's `http://` page
/// sends it to its `https://` port): a LAN URL in `Location`, and a page with a hard-coded link.
const MOVED: &str = r#"
        location = /moved { return 302 http://192.168.0.10:8089/; }
        location = /links { default_type text/html; return 200 "<!doctype html><title>links</title><a id=third href=http://192.168.0.10:8090/>the third app</a>"; }
"#;

/// The app redirects to another app of the LAN whose name has no certificate yet: the page asks
/// the relay for it as the answer passes through, and the browser lands on the other app, on a
/// certificate it trusts. Then a hard-coded link to a third app, clicked: the shim maps it and
/// has the launcher ask for that name as the browser goes.
fn going_to_other_apps_lands_there(
    lab: &Lab,
    trusted: &TrustedLab,
    page: &Session<'_>,
    origin: &str,
) -> anyhow::Result<()> {
    let start = |port: u16, name: &str| {
        let index = format!("<title>{name} app</title>");
        Nginx::start(lab, Node::Host10, (addr::HOST10, port).into(), name, &[("index.html", index.as_bytes())])
    };
    let (other, third) = (start(8089, "other")?, start(8090, "third")?);
    for app in [&other, &third] {
        let name = apps_page::app_name(app.addr);
        ensure!(trusted_handshake(lab, &name, &trusted.root).is_err(), "{name} has a certificate before anyone asked");
    }
    let landed_on = |title: &str| {
        let script = format!("return document.title === '{title}' ? location.origin : null");
        wait(page, title, APP_LOAD, &script)
    };
    page.execute("location.href = '/moved'; return true", &[])?;
    let landed = landed_on("other app")?;
    ensure!(landed == apps_page::app_origin(other.addr).as_str(), "the redirect landed on {landed}");

    page.goto(&format!("{origin}/links"))?;
    wait(page, "the page of links", APP_LOAD, "return document.getElementById('third') ? 1 : null")?;
    page.click("#third")?;
    let landed = landed_on("third app")?;
    ensure!(landed == apps_page::app_origin(third.addr).as_str(), "the link landed on {landed}");
    Ok(())
}

/// Where the device takes uploads of at most 1 MiB and, past that, answers `413` and closes at
/// once (no lingering to read the rest), as small embedded servers do: the rest of the body then
/// meets a reset.
/// Uploads answered with a redirect, as PHP, Django and Flask answer a form (POST, then a 303 to
/// the page to see) and as a moved upload path does (308: the same PUT there).
const REDIRECTED_UPLOADS: &str = r#"
        location = /post-then-see { client_max_body_size 0; return 303 /dav/fetch-small.bin; }
        location = /moved-put.bin { client_max_body_size 0; return 308 /dav/moved-put.bin; }
"#;

const SMALL_UPLOADS: &str = r#"
        location /small/ { dav_methods PUT; create_full_put_path on; client_max_body_size 1m; lingering_close off; }
"#;

/// Where the device signs a browser in with a cookie, and shows which cookie a form post brought.
const SIGNED_FORMS: &str = r#"
        location = /signin { add_header Set-Cookie "session=lab42; Path=/"; return 200 "signed in"; }
        location = /act { default_type text/html; return 200 "<!doctype html><title>act</title><pre id=c>cookie=[$http_cookie]</pre>"; }
        location = /act-moved { return 307 /act; }
        location = /act-moved-here { absolute_redirect off; return 307 /act; }
        location = /cookies { default_type text/plain; return 200 "[$http_cookie]"; }
        location = /went { default_type text/html; return 200 "<!doctype html><title>went</title><pre id=c>$request_method ?$args cookie=[$http_cookie]</pre>"; }
"#;

/// The app's own form post (made with `form.submit()`) reaches the device with the app's
/// session cookie, also when the device moves it with a `307` (the browser posts again to the new
/// address) and when it goes into a frame of the app's page; the same post from another site (a page elsewhere that submits a form to the
/// app's address) reaches it without the cookie and with `Origin: null`, as a browser withholds
/// its default `SameSite=Lax` cookies from another site's post.
fn another_sites_form_post_gets_no_cookies(page: &Session<'_>, nginx: &Nginx, origin: &str) -> anyhow::Result<()> {
    let signed = page.execute_async(
        "const done = arguments[0]; fetch('/signin').then(r => r.text()).then(done, e => done(String(e)))",
        &[],
    )?;
    ensure!(signed == "signed in", "/signin: {signed}");
    let shown = "const c = document.getElementById('c'); return document.title === 'act' && c ? c.textContent : null";
    page.execute(
        "const f = document.createElement('form'); f.method = 'post'; f.action = '/act'; \
         const i = document.createElement('input'); i.name = 'a'; i.value = '1'; f.append(i); \
         document.body.append(f); f.submit(); return true",
        &[],
    )?;
    let own = wait(page, "the app's own post", APP_LOAD, shown)?;
    ensure!(own == "cookie=[session=lab42]", "the app's own form post brought {own}");
    // Moved to a LAN URL (mapped to the app origin) and to a path of its own.
    for moved_from in ["/act-moved", "/act-moved-here"] {
        page.goto(&format!("{origin}/"))?;
        wait(page, "the file server's index again", APP_LOAD, "return document.querySelector('h1') ? 1 : null")?;
        page.execute(
            "const f = document.createElement('form'); f.method = 'post'; f.action = arguments[0]; \
             const i = document.createElement('input'); i.name = 'a'; i.value = '4'; f.append(i); \
             document.body.append(f); f.submit(); return true",
            &[json!(moved_from)],
        )?;
        let moved = wait(page, "the app's own post, moved by a 307", APP_LOAD, shown)?;
        ensure!(
            moved == "cookie=[session=lab42]",
            "the app's own form post to {moved_from}, moved by a 307, brought {moved}"
        );
    }
    // Into a frame of its own (as router and printer pages send uploads): the browser's
    // `navigate` event fires in that frame, where no shim runs; the post is still the app's. Its
    // form has a field named "action", as PHP and router pages' forms do (it hides the form's
    // own `action` property).
    page.execute(
        "const frame = document.createElement('iframe'); frame.name = 'sink'; document.body.append(frame); \
         const f = document.createElement('form'); f.method = 'post'; f.action = '/act'; f.target = 'sink'; \
         for (const [name, value] of [['a', '3'], ['action', 'save']]) { \
           const i = document.createElement('input'); i.type = 'hidden'; i.name = name; i.value = value; f.append(i); } \
         document.body.append(f); f.submit(); return true",
        &[],
    )?;
    let framed = wait(
        page,
        "the app's own post into its frame",
        APP_LOAD,
        "const d = document.querySelector('iframe[name=sink]').contentDocument; \
         const c = d && d.getElementById('c'); return d && d.title === 'act' && c ? c.textContent : null",
    )?;
    ensure!(framed == "cookie=[session=lab42]", "the app's own form post into a frame brought {framed}");
    let elsewhere = format!(
        "data:text/html,<form method=post action='{origin}/act'><input name=a value=2></form>\
         <script>document.forms[0].submit()</script>"
    );
    page.goto(&elsewhere)?;
    let foreign = wait(page, "another site's post", APP_LOAD, shown)?;
    ensure!(foreign == "cookie=[]", "another site's form post brought {foreign}");
    let posts: Vec<String> = nginx.requests().into_iter().filter(|l| l.contains("\"POST /act ")).collect();
    ensure!(
        posts.len() == 5 && posts[4].contains("\"null\"") && posts[..4].iter().all(|p| !p.contains("\"null\"")),
        "the device saw {posts:?} (the fifth, and only it, with Origin: null)"
    );
    page.goto(&format!("{origin}/"))?;
    wait(page, "the file server's index again", APP_LOAD, "return document.querySelector('h1') ? 1 : null")?;
    Ok(())
}

/// Just after the page loads (its cookie port not yet open), a script writes a cookie and at once
/// asks the app for something, by `fetch` and by `XMLHttpRequest`: each request carries the
/// cookie (the device echoes its `Cookie` header), ten loads in a row. Before, one in five went
/// without it.
fn a_cookie_a_script_writes_goes_with_its_next_request(page: &Session<'_>) -> anyhow::Result<()> {
    for i in 0..10 {
        page.execute("location.reload(); return 1", &[])?;
        std::thread::sleep(Duration::from_millis(300));
        wait(page, "the file server's index", APP_LOAD, "return document.querySelector('h1') ? 1 : null")?;
        let got = page.execute_async(
            r#"const [i, done] = arguments;
            document.cookie = `f${i}=1`;
            const byFetch = fetch('/cookies', {cache: 'no-store'}).then(r => r.text());
            document.cookie = `x${i}=1`;
            const byXhr = new Promise((resolve) => {
              const r = new XMLHttpRequest();
              r.open('GET', '/cookies');
              r.onloadend = () => resolve(r.responseText);
              r.send();
            });
            Promise.all([byFetch, byXhr]).then(done, e => done(String(e)));"#,
            &[json!(i)],
        )?;
        let (fetched, xhr) = (got[0].as_str().unwrap_or_default(), got[1].as_str().unwrap_or_default());
        ensure!(
            fetched.contains(&format!("f{i}=1")),
            "load {i}: the fetch went without the cookie just written: {got}"
        );
        ensure!(xhr.contains(&format!("x{i}=1")), "load {i}: the XHR went without the cookie just written: {got}");
    }
    Ok(())
}

/// Where the device streams its camera's view as IP cameras do: `multipart/x-mixed-replace`, one
/// JPEG after another, a few a second (nginx paces the file it sends, 2 KB a second).
const CAMERA: &str = r#"
        location = /cam.mjpg { types { } default_type "multipart/x-mixed-replace; boundary=frame"; limit_rate 2k; }
"#;

/// An IP camera's live view in the page (`<img src="/cam.mjpg">`, as camera pages show it): the
/// picture changes as frames arrive, red, then green, then red again, through the worker (a
/// stream the worker held back until its end would show only its last frame).
fn a_cameras_live_view_moves(page: &Session<'_>, nginx: &Nginx) -> anyhow::Result<()> {
    use base64::Engine as _;
    // Two frames, each made by the browser's own JPEG encoder.
    let frames = page.execute(
        "return ['#ff0000', '#00ff00'].map((colour) => { const c = document.createElement('canvas'); \
           c.width = 64; c.height = 48; const g = c.getContext('2d'); g.fillStyle = colour; \
           g.fillRect(0, 0, 64, 48); return c.toDataURL('image/jpeg', 0.9).split(',')[1]; })",
        &[],
    )?;
    let frames: Vec<Vec<u8>> = frames
        .as_array()
        .context("the frames")?
        .iter()
        .map(|f| base64::engine::general_purpose::STANDARD.decode(f.as_str().unwrap_or_default()))
        .collect::<Result<_, _>>()?;
    let mut stream = Vec::new();
    // Red, green, red: a dozen frames each, a few seconds of the stream, so that a second's
    // stall of a busy machine (the frames then come at once, and only the last shows) still
    // leaves each colour on the screen for a while.
    const FRAMES: usize = 36;
    for n in 0..FRAMES {
        let jpeg = &frames[(n / (FRAMES / 3)) % 2];
        stream.extend_from_slice(
            format!("--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n", jpeg.len()).as_bytes(),
        );
        stream.extend_from_slice(jpeg);
        stream.extend_from_slice(b"\r\n");
    }
    std::fs::write(nginx.root().join("cam.mjpg"), &stream)?;
    eprintln!("web apps: the camera streams {FRAMES} frames, {} bytes", stream.len());
    let seen = page.execute_async(
        r#"const done = arguments[0];
        const img = document.createElement('img');
        img.src = '/cam.mjpg';
        document.body.append(img);
        const canvas = document.createElement('canvas');
        canvas.width = 64; canvas.height = 48;
        const g = canvas.getContext('2d');
        const seen = [];
        const start = performance.now();
        const look = () => {
          if (img.naturalWidth > 0) {
            g.drawImage(img, 0, 0);
            const [r, gr] = g.getImageData(32, 24, 1, 1).data;
            const colour = r > 200 && gr < 60 ? 'red' : gr > 200 && r < 60 ? 'green' : 'other';
            if (seen[seen.length - 1] !== colour) seen.push(colour);
          }
          if (seen.join() === 'red,green,red' || performance.now() - start > 30000) { img.remove(); done(seen); }
          else setTimeout(look, 100);
        };
        look();"#,
        &[],
    )?;
    ensure!(seen == json!(["red", "green", "red"]), "the camera's view showed {seen}, not red, then green, then red");
    Ok(())
}

/// Where the device's pages allow scripts only by nonce and `'strict-dynamic'`, as Nextcloud's do.
const STRICT_SCRIPTS: &str = r#"
        location /strict/ { add_header Content-Security-Policy "default-src 'none'; script-src 'nonce-lab123' 'strict-dynamic'"; }
"#;

/// A page under a policy that allows only scripts with its nonce still gets the shim, which
/// runs before the page's own script; the page's script runs too.
fn a_strict_script_policy_still_runs_the_shim(page: &Session<'_>, nginx: &Nginx) -> anyhow::Result<()> {
    let dir = nginx.root().join("strict");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("index.html"),
        "<!doctype html><html><head><title>strict</title></head><body><h1>Files</h1>\
         <script nonce=\"lab123\">document.title = 'strict ' + \
         (self[Symbol.for('hometun.shim')] ? 'with shim' : 'bare');</script></body></html>",
    )?;
    page.execute("location.href = '/strict/'; return true", &[])?;
    let title =
        wait(page, "the strict page", APP_LOAD, "return document.title.startsWith('strict ') ? document.title : null")?;
    ensure!(title == "strict with shim", "the page with a nonce policy says {title:?}");
    page.execute("history.back(); return true", &[])?;
    wait(page, "the file server's index again", APP_LOAD, "return document.title.startsWith('strict') ? null : 1")?;
    Ok(())
}

/// While a page of the app loads, its script writes a cookie and at once leaves for another
/// page, in each of the ways of [`content::GO_PAGE`]: each page came with the cookie.
fn a_cookie_a_script_writes_goes_with_the_page_it_goes_to(page: &Session<'_>, nginx: &Nginx) -> anyhow::Result<()> {
    std::fs::write(nginx.root().join("go.html"), content::GO_PAGE)?;
    let ways = ["link", "href", "replace", "submit", "button", "post-button"];
    let rounds = 3;
    apps_page::cookie_then_leave(page, &ways, rounds, APP_LOAD)?;
    // Each page was asked for once: a held navigation is made again once, not twice.
    let log = nginx.requests();
    for i in 0..rounds * ways.len() {
        let (method, query) = content::went_request(ways[i % ways.len()], i);
        let request = format!("\"{method} /went?{query} ");
        let asked = log.iter().filter(|l| l.contains(&request)).count();
        ensure!(asked == 1, "the device saw {request} {asked} times");
    }
    page.execute("location.href = '/'; return 1", &[])?;
    wait(page, "the file server's index again", APP_LOAD, "return document.querySelector('h1') ? 1 : null")?;
    Ok(())
}

/// Where the device serves its files gzipped whatever the browser asks (nginx `gzip_static
/// always`, as embedded devices serve pages from flash): `NAME.gz` goes out for `NAME`.
const COMPRESSED: &str = r#"
        location /esp/ { gzip_static always; }
        location /text/ { gzip on; gzip_min_length 1; gzip_types application/javascript; expires 1h; }
"#;

/// A web app's script (2 MiB of JavaScript from a server that compresses, as Home Assistant's and
/// most do) reaches the page whole and as the file says, while the tunnel carries it compressed:
/// the launcher's tunnel took in less than a third of its size, and the server logged sending
/// that few bytes. The worker keeps the plain script (fetched again, it comes whole without
/// asking the server), but not a 9 MiB one (over what it keeps, however small compressed). A
/// range of the script still comes as those exact bytes of the file.
fn text_crosses_the_tunnel_compressed(page: &Session<'_>, launcher: &str, nginx: &Nginx) -> anyhow::Result<()> {
    let dir = nginx.root().join("text");
    std::fs::create_dir_all(&dir)?;
    let script: String =
        (0..64_000).map(|i| format!("export const reading{i} = {};\n", (i * 7919) % 100_003)).collect();
    ensure!(script.len() > 2 << 20, "the script is {} bytes", script.len());
    std::fs::write(dir.join("app.js"), &script)?;
    let bytes_in = || apps_page::tunnel_bytes_in(page, launcher);
    let before = bytes_in()?;
    let got = page.execute_async(FETCH_AND_HASH, &[json!("/text/app.js")])?;
    let through_tunnel = bytes_in()? - before;
    ensure!(got["status"] == 200 && got["length"] == script.len(), "the script: {got}");
    ensure!(got["sha"] == hometun_tests::apps::sha256_hex(script.as_bytes()).as_str(), "the script differs: {got}");
    eprintln!("web apps: a {} byte script took {through_tunnel:.0} bytes through the tunnel", script.len());
    ensure!(
        through_tunnel < script.len() as f64 / 3.0,
        "the tunnel took in {through_tunnel:.0} bytes for a {} byte script: it came uncompressed",
        script.len()
    );
    let sent = nginx.requests().into_iter().find(|l| l.contains("\"GET /text/app.js ")).unwrap_or_default();
    let body_bytes: usize = sent.split(' ').nth(5).and_then(|n| n.parse().ok()).unwrap_or(usize::MAX);
    ensure!(body_bytes < script.len() / 3, "nginx sent the script as {body_bytes} bytes: {sent}");
    let big: String = script.repeat(5).lines().take(300_000).map(|l| format!("{l}\n")).collect();
    ensure!(big.len() > 9 << 20, "the big script is {} bytes", big.len());
    std::fs::write(dir.join("big.js"), &big)?;
    let fetch = |path: &str, text: &str| -> anyhow::Result<()> {
        let got = page.execute_async(FETCH_AND_HASH, &[json!(path), json!("default")])?;
        let sha = hometun_tests::apps::sha256_hex(text.as_bytes());
        ensure!(got["status"] == 200 && got["sha"] == sha.as_str(), "{path}: {got}");
        Ok(())
    };
    fetch("/text/app.js", &script)?;
    // The copy is written while the page reads the body: wait for it.
    let kept = "return caches.open('hometun-http').then(c => c.match('/text/app.js')).then(r => r ? 1 : null)";
    wait(page, "the worker's copy of the script", Duration::from_secs(5), kept)?;
    fetch("/text/app.js", &script)?;
    fetch("/text/big.js", &big)?;
    // Its copy fails once counted past 8 MiB: give it the time it would take to be written.
    std::thread::sleep(Duration::from_secs(2));
    let big_kept = "return caches.open('hometun-http').then(c => c.match('/text/big.js')).then(r => !!r)";
    ensure!(page.execute(big_kept, &[])? == false, "the worker kept the 9 MiB script");
    fetch("/text/big.js", &big)?;
    let asked = |path: &str| nginx.requests().iter().filter(|l| l.contains(&format!("\"GET {path} "))).count();
    ensure!(asked("/text/app.js") == 2, "the kept script was asked for again: {:?}", nginx.requests());
    ensure!(asked("/text/big.js") == 2, "the 9 MiB script was kept: {:?}", nginx.requests());
    let part = page.execute_async(
        r#"const done = arguments[0];
        fetch('/text/app.js', {headers: {Range: 'bytes=1000-1999'}})
          .then(async r => done({status: r.status, text: await r.text()}), e => done({error: String(e)}));"#,
        &[],
    )?;
    ensure!(part["status"] == 206 && part["text"] == script[1000..2000], "a range of the script: {part}");
    Ok(())
}

/// A device page that sets its title to whether the shim ran before it.
const ESP_PAGE: &str = "<!doctype html><html><head><title>esp</title></head><body><h1>Sensor 21.5 C</h1>\
    <script>document.title = 'esp ' + (self[Symbol.for('hometun.shim')] ? 'with shim' : 'bare');</script></body></html>";

/// A device that sends its page and script gzipped although the page asked for no compression:
/// the tab shows the page (not gzip bytes) with the shim in it, a script's text is the script's,
/// and a corrupt gzip body fails the fetch rather than passing as text.
fn compressed_anyway_arrives_plain(page: &Session<'_>, nginx: &Nginx) -> anyhow::Result<()> {
    let dir = nginx.root().join("esp");
    std::fs::create_dir_all(&dir)?;
    let script = format!("// {}\nexport const reading = 21.5;\n", "sensor ".repeat(4000));
    for (name, text) in [("index.html", ESP_PAGE), ("app.js", script.as_str())] {
        std::fs::write(dir.join(name), text)?;
        let status = std::process::Command::new("gzip").args(["-9", "-k", "-f"]).arg(dir.join(name)).status()?;
        ensure!(status.success(), "gzip {name}: {status}");
        // The plain files differ: only the gzipped ones may reach the page.
        std::fs::write(dir.join(name), "PLAIN")?;
    }
    std::fs::write(dir.join("bad.js"), "PLAIN")?;
    std::fs::write(dir.join("bad.js.gz"), b"\x1f\x8b\x08\x00garbage, not deflate at all")?;
    let got = page.execute_async(
        r#"const done = arguments[0];
        (async () => {
          const text = async (path) => {
            try {
              const r = await fetch(path);
              return {status: r.status, encoding: r.headers.get('content-encoding'), text: await r.text()};
            } catch (e) {
              return {failed: String(e)};
            }
          };
          done({script: await text('/esp/app.js'), bad: await text('/esp/bad.js')});
        })();"#,
        &[],
    )?;
    ensure!(
        got["script"]["status"] == 200
            && got["script"]["text"] == script.as_str()
            && got["script"]["encoding"].is_null(),
        "the gzipped script: {}",
        got["script"].to_string().chars().take(300).collect::<String>()
    );
    ensure!(got["bad"]["failed"].is_string(), "a corrupt gzip body passed: {}", got["bad"]);
    // The device was asked as by the browser itself, with its User-Agent.
    let asked = nginx.requests().into_iter().find(|l| l.contains("\"GET /esp/app.js ")).unwrap_or_default();
    ensure!(asked.contains("Chrome/"), "the device saw no browser User-Agent: {asked}");
    page.execute("location.href = '/esp/index.html'; return true", &[])?;
    let title = wait(
        page,
        "the device's gzipped page",
        APP_LOAD,
        "return document.title.startsWith('esp') ? document.title : null",
    )?;
    ensure!(title == "esp with shim", "the device's page says {title:?}");
    let text = page.execute("return document.body.innerText", &[])?;
    ensure!(text.as_str().is_some_and(|t| t.contains("Sensor 21.5 C")), "the page shows {text}");
    page.execute("history.back(); return true", &[])?;
    wait(
        page,
        "the file server's index again",
        APP_LOAD,
        "return document.querySelector('h1') && !document.title.startsWith('esp') ? 1 : null",
    )?;
    Ok(())
}

/// An upload of 8 MiB where the device takes at most 1 MiB: the page gets the device's `413`
/// (not a `502` for the reset that follows it), and the device stored nothing.
fn too_large_is_answered(page: &Session<'_>, nginx: &Nginx) -> anyhow::Result<()> {
    let got = page.execute_async(
        r#"const done = arguments[0];
        fetch('/small/big.bin', {method: 'PUT', body: new Uint8Array(8 << 20)})
          .then(async r => done({status: r.status, text: (await r.text()).slice(0, 200)}), e => done({error: String(e)}));"#,
        &[],
    )?;
    ensure!(got["status"] == 413, "an 8 MiB PUT where the device takes 1 MiB: {got}");
    ensure!(!nginx.root().join("small/big.bin").exists(), "the device stored the refused file");
    // A firmware page's own form with the file (the shim sends it over a port): the device
    // refuses at once; the frame shows the device's refusal.
    let shown = page.execute_async(
        r#"const done = arguments[0];
        const frame = document.createElement('iframe');
        frame.name = 'firmware-result';
        document.body.append(frame);
        const form = document.createElement('form');
        form.method = 'POST';
        form.enctype = 'multipart/form-data';
        form.action = '/small/firmware.bin';
        form.target = 'firmware-result';
        const input = document.createElement('input');
        input.type = 'file';
        input.name = 'firmware';
        const files = new DataTransfer();
        files.items.add(new File([new Uint8Array(8 << 20)], 'firmware.bin'));
        input.files = files.files;
        form.append(input);
        document.body.append(form);
        const late = setTimeout(() => done('no answer in 60 s'), 60000);
        frame.onload = () => { clearTimeout(late); done(frame.contentDocument.body.innerText.slice(0, 300)); };
        form.submit();"#,
        &[],
    )?;
    ensure!(
        shown.as_str().is_some_and(|t| t.contains("413")),
        "an 8 MiB firmware form where the device takes 1 MiB showed {shown}"
    );
    Ok(())
}

/// The app tab uploads as apps do, with `fetch` and with `XMLHttpRequest`: bytes (a whole
/// buffer and a view into the middle of one) and text (with and without a `Content-Type` of its
/// own, also one from a `Request` given with the body apart; with a lone surrogate, which
/// becomes U+FFFD), large ones (which the shim hands on as Blobs) and a small one. Each file the
/// device stores has the SHA-256 of the bytes the page meant, and the device saw the
/// `Content-Type` the browser gives such a body (none for bytes, `text/plain;charset=UTF-8` for
/// text without one), with a `Content-Length`, not chunked.
fn uploads_arrive_as_sent(page: &Session<'_>, nginx: &Nginx) -> anyhow::Result<()> {
    let got = page.execute_async(
        r#"const done = arguments[0];
        (async () => {
          const random = (n) => {
            const b = new Uint8Array(n);
            for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, i + 65536));
            return b;
          };
          const hex = async (bytes) => [...new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))]
            .map(x => x.toString(16).padStart(2, '0')).join('');
          const text = 'ü€😀\uD800'.repeat(200000) + 'end';
          const utf8 = new TextEncoder().encode(text);
          const big = random(6 << 20);
          const xhr = (path, body) => new Promise((resolve, reject) => {
            const r = new XMLHttpRequest();
            r.open('PUT', path);
            r.onload = () => resolve(r.status);
            r.onerror = () => reject(new Error('XHR ' + path + ' failed'));
            r.send(body);
          });
          const put = (path, body, headers) => fetch(path, {method: 'PUT', body, headers}).then(r => r.status);
          const cases = [
            ['fetch-bytes.bin', () => put('/dav/fetch-bytes.bin', big.buffer), big],
            ['fetch-view.bin', () => put('/dav/fetch-view.bin', big.subarray(12345, 12345 + (3 << 20))), big.subarray(12345, 12345 + (3 << 20))],
            ['fetch-small.bin', () => put('/dav/fetch-small.bin', big.subarray(0, 1000)), big.subarray(0, 1000)],
            ['fetch-text.txt', () => put('/dav/fetch-text.txt', text), utf8],
            ['fetch-json.txt', () => put('/dav/fetch-json.txt', text, {'Content-Type': 'application/json'}), utf8],
            ['request-bytes.bin', () => fetch(new Request('/dav/request-bytes.bin', {method: 'PUT', headers: {'Content-Type': 'application/x-thing'}}), {body: big}).then(r => r.status), big],
            ['request-text.txt', () => fetch(new Request('/dav/request-text.txt', {method: 'PUT', headers: {'Content-Type': 'application/json'}}), {body: text}).then(r => r.status), utf8],
            ['xhr-bytes.bin', () => xhr('/dav/xhr-bytes.bin', big.subarray(1 << 20)), big.subarray(1 << 20)],
            ['xhr-text.txt', () => xhr('/dav/xhr-text.txt', text), utf8],
          ];
          const out = {};
          for (const [name, send, meant] of cases) out[name] = {status: await send(), sha: await hex(meant), length: meant.byteLength};
          // Large uploads go over a port of their own: their redirects are followed as the
          // browser's own fetch and XHR follow them.
          const seen = await fetch('/post-then-see', {method: 'POST', body: big.subarray(0, 2 << 20)});
          out.postThenSee = {status: seen.status, redirected: seen.redirected, url: seen.url, length: (await seen.arrayBuffer()).byteLength};
          const moved = await fetch('/moved-put.bin', {method: 'PUT', body: big.subarray(0, 2 << 20)});
          out.movedPut = {status: moved.status, redirected: moved.redirected, sha: await hex(big.subarray(0, 2 << 20))};
          out.xhrThenSee = await new Promise((resolve) => {
            const r = new XMLHttpRequest();
            r.open('POST', '/post-then-see');
            r.responseType = 'arraybuffer';
            r.onload = () => resolve({status: r.status, url: r.responseURL, length: r.response.byteLength});
            r.onerror = () => resolve({error: 'XHR failed'});
            r.send(big.subarray(0, 1 << 20));
          });
          return out;
        })().then(done, e => done({error: String(e)}));"#,
        &[],
    )?;
    let no_type = "-";
    let text = "text/plain;charset=UTF-8";
    for (name, content_type) in [
        ("fetch-bytes.bin", no_type),
        ("fetch-view.bin", no_type),
        ("fetch-small.bin", no_type),
        ("fetch-text.txt", text),
        ("fetch-json.txt", "application/json"),
        ("request-bytes.bin", "application/x-thing"),
        ("request-text.txt", "application/json"),
        ("xhr-bytes.bin", no_type),
        ("xhr-text.txt", text),
    ] {
        let sent = &got[name];
        ensure!(matches!(sent["status"].as_u64(), Some(201 | 204)), "PUT /dav/{name}: {got}");
        let stored = std::fs::read(nginx.root().join("dav").join(name))?;
        ensure!(
            stored.len() as u64 == sent["length"] && sent["sha"] == hometun_tests::apps::sha256_hex(&stored).as_str(),
            "/dav/{name}: {} bytes stored, not the {} the page meant (or other bytes)",
            stored.len(),
            sent["length"]
        );
        let request = format!("{} \"PUT /dav/{name} ", addr::HOME);
        let logged = nginx.requests().into_iter().find(|l| l.starts_with(&request));
        let seen = logged.as_deref().and_then(|l| l.rsplit('"').nth(5));
        ensure!(
            seen == Some(content_type),
            "/dav/{name} came with Content-Type {seen:?}, not {content_type}: {logged:?}"
        );
        // Whole, with a Content-Length: small devices refuse chunked uploads (firmware updates).
        let framing = logged.as_deref().and_then(|l| l.rsplit('"').nth(1));
        ensure!(framing == Some("-"), "/dav/{name} came with Transfer-Encoding {framing:?}: {logged:?}");
    }
    let see = &got["postThenSee"];
    ensure!(
        see["status"] == 200 && see["redirected"] == true && see["length"] == 1000,
        "a large POST answered 303 was not followed to the page to see: {see}"
    );
    ensure!(see["url"].as_str().is_some_and(|u| u.ends_with("/dav/fetch-small.bin")), "its url: {see}");
    let xhr = &got["xhrThenSee"];
    ensure!(
        xhr["status"] == 200
            && xhr["length"] == 1000
            && xhr["url"].as_str().is_some_and(|u| u.ends_with("/dav/fetch-small.bin")),
        "a large XHR POST answered 303 was not followed: {xhr}"
    );
    let moved = &got["movedPut"];
    let stored = std::fs::read(nginx.root().join("dav/moved-put.bin")).context("the PUT moved by a 308")?;
    ensure!(
        matches!(moved["status"].as_u64(), Some(201 | 204))
            && moved["redirected"] == true
            && moved["sha"] == hometun_tests::apps::sha256_hex(&stored).as_str(),
        "a large PUT answered 308 did not arrive whole at the new place: {moved}, {} bytes stored",
        stored.len()
    );
    Ok(())
}

/// A device that labels its `304`s `text/html`, as some embedded servers label every answer.
const RELABELLED: &str = r#" location /relabel/ { types { text/css css; } if ($http_if_none_match) { add_header Content-Type "text/html" always; } }"#;

/// The app tab fetches files as a page does (the default cache mode), twice each: a file with
/// validators (nginx's `ETag`, `Last-Modified`) is asked again and answered `304` from the
/// device, and the same bytes reach the page; once it changes on the device, the page gets
/// the new bytes; once it is gone, the page gets the `404` and the copy is dropped. A file with
/// `max-age` (nginx `expires`) is not asked for again at all.
fn fetch_twice_then_changed(page: &Session<'_>, nginx: &Nginx) -> anyhow::Result<()> {
    // A script answering once the worker's cache holds a copy of `path` (or, `false`, none).
    let kept = |path: &str, held: bool| {
        format!("return caches.open('hometun-http').then(c => c.match('{path}')).then(r => !!r === {held} ? 1 : null)")
    };
    // Each fetch returns once the worker has also written its copy (the page reads the body
    // while the copy is written, so the next fetch could come first), or after 5 s without one:
    // the device's log then tells.
    let fetch = |path: &str, sha: &str| -> anyhow::Result<()> {
        let got = page.execute_async(FETCH_AND_HASH, &[json!(path), json!("default")])?;
        ensure!(got["status"] == 200 && got["sha"] == sha, "{path} (SHA-256 {sha} expected): {got}");
        let _ = wait(page, "the worker's copy", Duration::from_secs(5), &kept(path, true));
        Ok(())
    };
    // The device's answers to the relay, in order (log lines `ADDR "GET PATH HTTP/1.1" STATUS ...`).
    let statuses = |path: &str| -> Vec<String> {
        let request = format!("{} \"GET {path} ", addr::HOME);
        let status = |l: &str| Some(l.split_once("\" ")?.1.split_whitespace().next()?.to_owned());
        nginx.requests().iter().filter(|l| l.starts_with(&request)).filter_map(|l| status(l)).collect()
    };
    let sha = nginx.add_random_file("kept.bin", 1 << 20)?;
    fetch("/kept.bin", &sha)?;
    fetch("/kept.bin", &sha)?;
    ensure!(statuses("/kept.bin") == ["200", "304"], "the device saw {:?}", statuses("/kept.bin"));
    let changed = nginx.add_random_file("kept.bin", 1 << 19)?;
    fetch("/kept.bin", &changed)?;
    ensure!(
        statuses("/kept.bin") == ["200", "304", "200"],
        "after the change the device saw {:?}",
        statuses("/kept.bin")
    );
    // Gone from the device: the page gets the 404, and the worker drops its copy.
    std::fs::remove_file(nginx.root().join("kept.bin"))?;
    let got = page.execute_async(FETCH_AND_HASH, &[json!("/kept.bin"), json!("default")])?;
    ensure!(got["status"] == 404, "/kept.bin after it was removed: {got}");
    wait(page, "the worker to drop its copy", Duration::from_secs(5), &kept("/kept.bin", false))?;
    std::fs::create_dir_all(nginx.root().join("fresh"))?;
    let sha = nginx.add_random_file("fresh/app.bin", 1 << 20)?;
    fetch("/fresh/app.bin", &sha)?;
    fetch("/fresh/app.bin", &sha)?;
    ensure!(statuses("/fresh/app.bin") == ["200"], "the device saw {:?}", statuses("/fresh/app.bin"));
    // The page's own `Cache-Control: no-cache` has the device asked again, fresh copy or not.
    let got = page.execute_async(
        "const done = arguments[0]; \
         fetch('/fresh/app.bin', {headers: {'cache-control': 'no-cache'}}) \
           .then(r => r.arrayBuffer()).then(b => done(b.byteLength), e => done(String(e)))",
        &[],
    )?;
    ensure!(got == 1 << 20, "/fresh/app.bin with no-cache: {got}");
    ensure!(statuses("/fresh/app.bin") == ["200", "304"], "the device saw {:?}", statuses("/fresh/app.bin"));
    // An answer that varies by Cookie is never kept: the jar's cookies are added after the worker.
    std::fs::create_dir_all(nginx.root().join("vary"))?;
    let sha = nginx.add_random_file("vary/mine.bin", 1 << 16)?;
    for _ in 0..2 {
        let got = page.execute_async(FETCH_AND_HASH, &[json!("/vary/mine.bin"), json!("default")])?;
        ensure!(got["status"] == 200 && got["sha"] == sha.as_str(), "/vary/mine.bin: {got}");
        // Time enough for a copy to be written, were one kept.
        std::thread::sleep(Duration::from_millis(1500));
        ensure!(!page.execute(&kept("/vary/mine.bin", false), &[])?.is_null(), "an answer varying by Cookie was kept");
    }
    ensure!(statuses("/vary/mine.bin") == ["200", "200"], "the device saw {:?}", statuses("/vary/mine.bin"));
    // The kept stylesheet stays a stylesheet when the device's 304 says `text/html`.
    std::fs::create_dir_all(nginx.root().join("relabel"))?;
    std::fs::write(nginx.root().join("relabel/style.css"), "body { color: green }\n")?;
    let css = "const done = arguments[0]; fetch('/relabel/style.css') \
                 .then(r => r.text().then(t => done([r.status, r.headers.get('content-type'), t])), e => done(String(e)))";
    for _ in 0..2 {
        let got = page.execute_async(css, &[])?;
        ensure!(got == json!([200, "text/css", "body { color: green }\n"]), "/relabel/style.css: {got}");
        let _ = wait(page, "the worker's copy", Duration::from_secs(5), &kept("/relabel/style.css", true));
    }
    ensure!(statuses("/relabel/style.css") == ["200", "304"], "the device saw {:?}", statuses("/relabel/style.css"));
    // A phone's space is its user's: once the origin holds more than 256 MiB (the app's own data
    // here), the worker's next trim drops the older half of its copies.
    std::fs::create_dir_all(nginx.root().join("many"))?;
    for n in 0..40 {
        nginx.add_random_file(&format!("many/f{n}.bin"), 1024)?;
    }
    let filled = page.execute_async(
        "const done = arguments[0]; (async () => { \
           const filler = await caches.open('app-own-data'); \
           for (let i = 0; i < 18; i += 1) await filler.put(`/own/${i}`, new Response(new Uint8Array(16 << 20))); \
           for (let n = 0; n < 40; n += 1) await (await fetch(`/many/f${n}.bin`)).arrayBuffer(); \
           return (await navigator.storage.estimate()).usage; })().then(done, (e) => done(String(e)))",
        &[],
    )?;
    ensure!(filled.as_f64().is_some_and(|u| u > 256.0 * 1048576.0), "the origin's storage holds {filled} bytes");
    let trimmed = wait(page, "the older copies to go", Duration::from_secs(10), &kept("/many/f0.bin", false));
    page.execute_async("const done = arguments[0]; caches.delete('app-own-data').then(done, done)", &[])?;
    trimmed?;
    Ok(())
}

/// On an app page: a WebSocket to the LAN echo sends 3 MiB and reports `bufferedAmount` right
/// after and once the echoes are back; one to a LAN app that reads nothing is sent 6 × 16 MiB and
/// reports how it closed; one to a LAN app that reads nothing and sends without pause is sent
/// 2 × 16 MiB and reports how it closed and what it got; then a fetch of the app's index reports its
/// status.
const WEBSOCKET_BUFFERS: &str = r#"
const done = arguments[0];
const open = (path) => new Promise((resolve, reject) => {
  const ws = new WebSocket(path);
  ws.binaryType = 'arraybuffer';
  ws.onopen = () => resolve(ws);
  ws.onerror = () => reject(new Error(`${path} did not open`));
});
(async () => {
  const echo = await open('/ws/echo');
  let got = 0;
  const back = new Promise((resolve) => {
    echo.onmessage = (e) => { got += e.data.byteLength; if (got >= 3 << 20) resolve(); };
  });
  for (let i = 0; i < 3; i += 1) echo.send(new Uint8Array(1 << 20));
  const rightAfter = echo.bufferedAmount;
  await back;
  const after = echo.bufferedAmount;
  echo.close();
  const stuck = await open('/ws/stuck');
  const closed = new Promise((resolve) => { stuck.onclose = (e) => resolve({ code: e.code, reason: e.reason }); });
  const big = new Uint8Array(16 << 20);
  for (let i = 0; i < 6; i += 1) stuck.send(big);
  const flooded = await Promise.race([closed, new Promise((r) => setTimeout(() => r('still open after 20 s'), 20000))]);
  const flood = await open('/ws/flood');
  const floodClosed = new Promise((resolve) => { flood.onclose = (e) => resolve({ code: e.code, reason: e.reason }); });
  let floodGot = 0;
  flood.onmessage = (e) => { floodGot += e.data.byteLength; };
  for (let i = 0; i < 2; i += 1) flood.send(new Uint8Array(16 << 20));
  const floodEnd = await Promise.race([floodClosed, new Promise((r) => setTimeout(() => r('still open after 30 s'), 30000))]);
  const status = (await fetch('/index.html', { cache: 'no-store' })).status;
  done({ rightAfter, after, flooded, floodEnd, floodGot, status });
})().catch((e) => done({ error: String(e) }));
"#;

/// On an app page: makes a frame of the app's own index and, once it loaded, opens a WebSocket
/// to the LAN echo from inside it (the frame's first port), sends a line and answers the echo
/// and the milliseconds from `new WebSocket` to its `open`.
const FRAME_WEBSOCKET: &str = r#"
const done = arguments[0];
const frame = document.createElement('iframe');
frame.src = '/?in-a-frame';
frame.onload = () => {
  const w = frame.contentWindow;
  const t0 = w.performance.now();
  const ws = new w.WebSocket('/ws/echo');
  let ms = null;
  ws.onopen = () => { ms = w.performance.now() - t0; ws.send('hello from a frame'); };
  ws.onmessage = (e) => { ws.close(); frame.remove(); done({ echo: e.data, ms }); };
  ws.onerror = () => done({ error: 'the WebSocket failed', ms });
};
document.body.appendChild(frame);
"#;

/// A user opens an app from the launcher in a new tab (clicked under the popup blocker a user
/// has): the tab has no `opener` and the app works
/// (its port comes through the broker frame). A worker page there (with a CSP that allows no
/// frames, which wasm opens for the broker frame) starts a dedicated, a shared
/// and a module worker whose script fetches a hard-coded LAN URL and talks to a hard-coded
/// `ws://` echo: each gets the bytes and the echo through the tunnel, and never sees hometun's
/// own message. The same app typed into a new tab works while the launcher is open. With the
/// launcher closed, a typed app tab shows the boot page's "not open" message with a link; the
/// link opens the launcher, which connects by itself, and the waiting tab goes on to the app.
#[test]
fn app_tabs_have_no_opener_typed_ones_work_too_workers_get_the_shim_and_without_a_launcher_the_boot_page_says_so() {
    let lab = Lab::start().expect("lab");
    let nginx = Nginx::start_with(
        &lab,
        Node::Host10,
        FILES_ADDR.into(),
        "workers",
        &[
            ("workers.html", hometun_tests::apps::WORKERS_PAGE.as_bytes()),
            ("worker.js", hometun_tests::apps::WORKER_SCRIPT.as_bytes()),
        ],
        nginx::LAN_SERVICES,
    )
    .expect("nginx with the worker page");
    let trusted = TrustedLab::start(&lab).expect("trusted relay");
    let origin = trusted.trust_app(nginx.addr).expect("the app name's certificate");
    let page = trusted.browser().expect("Chromium");
    let launcher = step(&page, "tabs launcher", || trusted.connect(&page, "tabs-phone"));
    let index = "return document.querySelector('h1') && document.title === 'workers' ? location.origin : null";

    let tab = step(&page, "tab without opener", || {
        // The popup blocker is on, as in a user's Chromium: a tab no click asked for is blocked,
        // and "Open in new tab" below is clicked as a user clicks.
        let blocked = page.execute("return window.open('about:blank') === null", &[])?;
        ensure!(blocked == true, "a tab no click asked for was opened: the popup blocker is off");
        let (tab, _) = open_app(&page, &launcher, &format!("http://{}/", nginx.addr))?;
        let at = wait(&page, "the app's index in its tab", APP_LOAD, index)?;
        ensure!(at == origin.as_str(), "the tab shows {at}");
        let opener = page.execute("return window.opener === null", &[])?;
        ensure!(opener == true, "the app tab has an opener");
        Ok(tab)
    });
    step(&page, "a frame of the app in its tab", || {
        let got = page.execute_async(FRAME_WEBSOCKET, &[])?;
        eprintln!("web apps: a frame of the app in its tab: {got}");
        ensure!(got["echo"] == "hello from a frame", "the frame's WebSocket: {got}");
        let ms = got["ms"].as_f64().unwrap_or(f64::MAX);
        ensure!(
            ms < 1000.0,
            "the frame's first WebSocket opened after {ms:.0} ms: it waited for a launcher up its chain"
        );
        Ok(())
    });
    step(&page, "a script navigates to a hard-coded LAN URL", || {
        // Without the shim the tab would leave for 192.168.0.x, which the browser cannot reach.
        let lan = format!("http://{}/workers.html?from=script", nginx.addr);
        page.execute("location.href = arguments[0]; return true", &[json!(lan)])?;
        let at = wait(
            &page,
            "the LAN URL on its app origin",
            APP_LOAD,
            "return location.pathname === '/workers.html' && location.search === '?from=script' \
             ? location.origin : null",
        )?;
        ensure!(at == origin.as_str(), "the script's navigation went to {at}");
        Ok(())
    });
    step(&page, "workers", || {
        page.goto(&format!("{origin}/workers.html"))?;
        let text = wait(
            &page,
            "the workers' reports",
            Duration::from_secs(100),
            "return document.body && document.body.dataset.done ? document.getElementById('results').textContent : null",
        )?;
        let reports: serde_json::Value = serde_json::from_str(text.as_str().unwrap_or_default())?;
        eprintln!("web apps: worker reports: {reports}");
        let mut blob = vec![0u8; 100_000];
        content::blob_bytes(100_000, 0, &mut blob);
        let sha = hometun_tests::apps::sha256_hex(&blob);
        for kind in ["dedicated", "shared", "module"] {
            let r = &reports[kind];
            ensure!(
                r["fetch"] == json!({"status": 200, "length": 100_000, "sha": sha}),
                "{kind} worker's fetch of a LAN URL: {r}"
            );
            ensure!(r["echo"] == "hello from a worker", "{kind} worker's WebSocket: {r}");
            ensure!(r["strict"] == true, "{kind} worker no longer runs in strict mode: {r}");
            ensure!(r["seen"] == json!([]), "{kind} worker's own code saw messages: {r}");
        }
        let through_tunnel = |path: &str| {
            nginx.requests().iter().filter(|l| l.starts_with(&format!("{} \"GET {path}", addr::HOME))).count()
        };
        ensure!(through_tunnel("/blob/100000") >= 3, "nginx log: {:?}", nginx.requests());
        ensure!(through_tunnel("/ws/echo") >= 3, "nginx log: {:?}", nginx.requests());
        let csp = page.execute_async(
            "const done = arguments[0]; fetch('/workers.html').then(r => done(r.headers.get('content-security-policy')))",
            &[],
        )?;
        ensure!(csp == "frame-src https://home.test", "the page's policy as the browser got it: {csp}");
        Ok(())
    });
    step(&page, "a shared worker whose newest page closed", || {
        // Another tab of the app connects to the same shared worker: its page is now the
        // worker's newest provider of ports. It closes, which nothing tells the worker; asked by
        // the first tab to run its checks again, the worker gets its fetch's and WebSocket's
        // ports from the first tab, without waiting out the closed one.
        let here = page.window()?;
        let other = open_typed(&page, &format!("{origin}/workers.html"))?;
        wait(
            &page,
            "the workers' reports in the other tab",
            Duration::from_secs(100),
            "return document.body && document.body.dataset.done === '1'",
        )?;
        close_tab(&page, &other, &here)?;
        let started = std::time::Instant::now();
        let report = page.execute_async(
            "const done = arguments[0]; const port = window.sharedLab.port; \
             port.onmessage = (e) => done(e.data); port.postMessage('again');",
            &[],
        )?;
        let took = started.elapsed();
        eprintln!("web apps: a shared worker's checks again after its newest page closed, in {took:.1?}: {report}");
        let mut blob = vec![0u8; 100_000];
        content::blob_bytes(100_000, 0, &mut blob);
        let sha = hometun_tests::apps::sha256_hex(&blob);
        ensure!(
            report["fetch"] == json!({"status": 200, "length": 100_000, "sha": sha}),
            "the worker's fetch: {report}"
        );
        ensure!(report["echo"] == "hello from a worker", "the worker's WebSocket: {report}");
        ensure!(took < Duration::from_secs(8), "the checks took {took:?}: the worker waited on the closed tab");
        Ok(())
    });
    step(&page, "a WebSocket's buffered amount, one the app stops reading, one it floods", || {
        let got = page.execute_async(WEBSOCKET_BUFFERS, &[])?;
        eprintln!("web apps: WebSocket buffers: {got}");
        ensure!(got["rightAfter"] == 3 << 20, "bufferedAmount right after 3 MiB were sent: {got}");
        ensure!(got["after"] == 0, "bufferedAmount once the echoes came back: {got}");
        ensure!(got["flooded"]["code"] == 1006, "96 MiB sent to an app that reads nothing: {got}");
        // While the page's 32 MiB wait for an app that reads nothing, what the app sends meanwhile
        // is held back by TCP: the launcher reads at most 1 MiB ahead, the rest waits in the
        // stacks' buffers (nginx's and the kernels' on the way), and the app stops at its window.
        ensure!(got["floodEnd"]["code"] == 1006, "the flooding app dropped the connection: {got}");
        let sent = lab
            .log("h10")
            .lines()
            .find_map(|l| l.strip_prefix("ws-flood sent ").and_then(|n| n.parse::<u64>().ok()))
            .context("the flooding app logged nothing")?;
        eprintln!("web apps: the flooding app sent {sent} bytes before it gave up");
        ensure!(sent < 40 << 20, "the launcher took in {sent} bytes from an app while it could not write to it");
        ensure!(got["status"] == 200, "the app after the flood: {got}");
        Ok(())
    });
    step(&page, "typed tab", || {
        open_typed(&page, &format!("{origin}/"))?;
        wait(&page, "the app's index in a typed tab", APP_LOAD, index)?;
        let fetched = page.execute_async(
            "const done = arguments[0]; fetch('/workers.html').then(r => done(r.status), e => done(String(e)))",
            &[],
        )?;
        ensure!(fetched == 200, "a fetch from the typed tab gave {fetched}");
        Ok(())
    });
    let waiting = step(&page, "no launcher", || {
        close_tab(&page, &launcher, &tab)?;
        let waiting = open_typed(&page, &format!("{origin}/index.html"))?;
        let text = wait(
            &page,
            "the boot page to say the hometun page is not open",
            Duration::from_secs(40),
            "return document.body && document.body.dataset.boot === 'no-launcher' \
               && !document.getElementById('boot-home').hidden ? document.body.innerText : null",
        )?;
        ensure!(text.as_str().is_some_and(|t| t.contains("not open")), "the boot page says {text}");
        Ok(waiting)
    });
    step(&page, "launcher from the boot page", || {
        let before = page.windows()?;
        page.click("#boot-link")?;
        std::thread::sleep(Duration::from_millis(500));
        ensure!(page.windows()?.len() == before.len() + 1, "the link opened no tab");
        page.switch_to(&waiting)?;
        let at = wait(&page, "the waiting tab to go on to the app", APP_LOAD, index)?;
        ensure!(at == origin.as_str(), "the waiting tab shows {at}");
        Ok(())
    });
}
const BIG: u64 = 64 << 20;

fn check_ranges(page: &Session<'_>, bytes: &[u8], ranges: &[(u64, u64)]) -> anyhow::Result<()> {
    for &(first, last) in ranges {
        let got = page.execute_async(
            r#"const [range, done] = arguments;
            (async () => {
              const r = await fetch('/big.bin', {headers: {Range: range}});
              const b = await r.arrayBuffer();
              const d = new Uint8Array(await crypto.subtle.digest('SHA-256', b));
              return {status: r.status, range: r.headers.get('Content-Range'), length: b.byteLength,
                      sha: [...d].map(x => x.toString(16).padStart(2, '0')).join('')};
            })().then(done, e => done({error: String(e)}));"#,
            &[json!(format!("bytes={first}-{last}"))],
        )?;
        let slice = &bytes[usize::try_from(first)?..=usize::try_from(last)?];
        ensure!(got["status"] == 206, "bytes={first}-{last}: {got}");
        ensure!(got["range"] == format!("bytes {first}-{last}/{BIG}").as_str(), "bytes={first}-{last}: {got}");
        ensure!(
            got["sha"] == hometun_tests::apps::sha256_hex(slice).as_str(),
            "bytes={first}-{last}: other bytes: {got}"
        );
    }
    Ok(())
}

/// A hostile page on a LAN host, opened as an app, tries to reach another host and port through
/// the shim, through forged messages on its port, through a port for another origin asked of the
/// broker frame (also from an opaque-origin frame), and to read the tunnel origin's storage (the
/// broker frame's too): all fail (while its own host works), and the other host's
/// servers saw no request at all.
#[test]
fn a_hostile_lan_page_reaches_only_its_own_host_and_port_and_cannot_read_the_tunnel_origin() {
    let lab = Lab::start().expect("lab");
    let hostile = Nginx::start(
        &lab,
        Node::Host10,
        FILES_ADDR.into(),
        "hostile",
        &[("hostile.html", hometun_tests::apps::HOSTILE_PAGE.as_bytes())],
    )
    .expect("nginx with the hostile page");
    let victim =
        Nginx::start(&lab, Node::Host20, (addr::HOST20, 8080).into(), "victim", &[("victim.txt", b"VICTIM-SECRET\n")])
            .expect("nginx on the other host");
    let trusted = TrustedLab::start(&lab).expect("trusted relay");
    trusted.trust_app(hostile.addr).expect("the app name's certificate");
    let page = trusted.browser().expect("Chromium");
    let launcher = step(&page, "hostile launcher", || trusted.connect(&page, "hostile-phone"));

    let results = step(&page, "hostile page", || {
        open_app(&page, &launcher, &format!("http://{}/hostile.html", hostile.addr))?;
        let text = wait(
            &page,
            "the hostile page to finish",
            Duration::from_secs(120),
            "return document.body && document.body.dataset.done ? document.getElementById('results').textContent : null",
        )?;
        Ok(serde_json::from_str::<serde_json::Value>(text.as_str().unwrap_or_default())?)
    });
    eprintln!("hostile page results: {results:#}");
    let results = results.as_object().expect("results object");
    assert!(results.len() >= 10, "too few attempts ran: {results:?}");
    for read in ["broker frame localStorage", "framed launcher localStorage", "framed launcher hometun"] {
        assert!(results.contains_key(read), "the page did not try {read}: {results:?}");
    }
    for (name, outcome) in results {
        let outcome = outcome.as_str().unwrap_or_default();
        if name.starts_with("control") {
            assert!(outcome.starts_with("ok"), "{name} should work: {outcome}");
        } else {
            assert!(outcome.starts_with("blocked"), "{name} was not blocked: {outcome}");
        }
    }
    assert!(
        victim.requests().iter().any(|l| l.starts_with(&format!("{} ", addr::ROUTER_LAN))),
        "the other host's access log does not even show the readiness check: {:?}",
        victim.requests()
    );
    let tunnel_requests: Vec<String> =
        victim.requests().into_iter().filter(|l| !l.starts_with(&format!("{} ", addr::ROUTER_LAN))).collect();
    assert!(tunnel_requests.is_empty(), "the other host's nginx was reached: {tunnel_requests:?}");
    let peers = lab.service_peers(Node::Host20, "http");
    assert!(peers.is_empty(), "the other host's :80 was reached by {peers:?}");
    assert!(
        hostile.requests().iter().any(|l| l.starts_with(&format!("{} \"GET /hostile.html", addr::HOME))),
        "the hostile page never came through the tunnel: {:?}",
        hostile.requests()
    );
}

/// A router's settings page says who may frame it (`X-Frame-Options: SAMEORIGIN`, as router and
/// NAS UIs do against clickjacking). The user has the router open in a tab (its worker holds the
/// session), then opens a hostile LAN page as an app, which frames the router's settings on its
/// app origin to overlay a trick click: the frame stays empty, as it would at home, while a
/// router page that says nothing about framing shows in the same hostile page (so a frame that
/// shows is seen), and the launcher's own frame ("Open here") still shows the settings.
#[test]
fn another_apps_page_cannot_frame_an_app_that_says_no_but_the_launcher_can() {
    let lab = Lab::start().expect("lab");
    let locations = "location = /settings.html { add_header X-Frame-Options SAMEORIGIN; }";
    let router = Nginx::start_with(
        &lab,
        Node::Host20,
        (addr::HOST20, 8080).into(),
        "framed-router",
        &[
            ("settings.html", b"<!doctype html><title>settings</title><h1>ROUTER-SETTINGS factory reset</h1>\n"),
            ("status.html", b"<!doctype html><title>status</title><h1>ROUTER-STATUS all fine</h1>\n"),
        ],
        locations,
    )
    .expect("the router's nginx");
    let framer = Nginx::start(&lab, Node::Host10, FILES_ADDR.into(), "framer", &[("framer.html", FRAMER.as_bytes())])
        .expect("nginx with the framing page");
    let trusted = TrustedLab::start(&lab).expect("trusted relay");
    trusted.trust_app(router.addr).expect("the router's app name certificate");
    trusted.trust_app(framer.addr).expect("the framing page's app name certificate");
    let page = trusted.browser().expect("Chromium");
    let launcher = step(&page, "framing launcher", || trusted.connect(&page, "framing-phone"));

    step(&page, "the router in its tab", || {
        open_app(&page, &launcher, &format!("http://{}/status.html", router.addr))?;
        wait(
            &page,
            "the router's status page",
            APP_LOAD,
            "return document.body && document.body.innerText.includes('ROUTER-STATUS') || null",
        )
    });
    step(&page, "the hostile page frames the router", || {
        open_app(&page, &launcher, &format!("http://{}/framer.html", framer.addr))?;
        wait(
            &page,
            "the framing page's two frames",
            APP_LOAD,
            "return document.body && document.body.dataset.loaded === '2' || null",
        )?;
        let shown = |frame: &str| -> anyhow::Result<String> {
            page.switch_to_frame(Some(frame))?;
            let text = page.execute("return document.body ? document.body.innerText : ''", &[]);
            page.switch_to_frame(None)?;
            Ok(text
                .map(|t| t.as_str().unwrap_or_default().to_owned())
                .unwrap_or_else(|e| format!("(not readable: {e})")))
        };
        // The control: a page that says nothing about framing shows; this is what a frame that
        // shows looks like here.
        let status = apps_page::wait_value(Duration::from_secs(20), || {
            Ok(shown("#status")?.contains("ROUTER-STATUS").then_some(()))
        });
        ensure!(
            status.is_ok(),
            "the router's status page did not show in the hostile page's frame: {:?}",
            shown("#status")
        );
        let settings = shown("#settings")?;
        eprintln!("framing: the settings frame shows {settings:?}");
        ensure!(!settings.contains("ROUTER-SETTINGS"), "the hostile page framed the router's settings: {settings:?}");
        Ok(())
    });
    step(&page, "the launcher's frame shows the settings", || {
        page.switch_to(&launcher)?;
        engines::open_in_frame(&page, &format!("http://{}/settings.html", router.addr))?;
        wait(
            &page,
            "the settings in the launcher's frame",
            APP_LOAD,
            "return document.body && document.body.innerText.includes('ROUTER-SETTINGS') || null",
        )?;
        page.switch_to_frame(None)
    });
}

/// A hostile LAN page that frames two pages of the router's app (192.168.0.20:8080) on its app
/// origin: the settings (which say `SAMEORIGIN`) and the status (which say nothing).
const FRAMER: &str = r#"<!doctype html><html><head><meta charset="utf-8"><title>framer</title></head><body>
<h1>win a prize: click the button</h1>
<script>
  const router = location.origin.replace(/\/\/[^.]+\./, '//h-192-168-0-20-p8080.');
  let loaded = 0;
  for (const [id, path] of [['settings', '/settings.html'], ['status', '/status.html']]) {
    const frame = document.createElement('iframe');
    frame.id = id;
    frame.src = router + path;
    frame.onload = () => { document.body.dataset.loaded = String(++loaded); };
    document.body.appendChild(frame);
  }
</script>
</body></html>
"#;

/// One part of the scenario ([`apps_page::step`]).
fn step<T>(page: &Session<'_>, name: &str, f: impl FnOnce() -> anyhow::Result<T>) -> T {
    apps_page::step(page, "web apps", name, f)
}
