//! The browser client (wasm) in headless Chromium against the real relay in the lab.
//!
//! The harness starts the lab and the relay, makes an invite, serves the drop/revoke hooks,
//! builds `wasm-client/tests/e2e.rs` with those facts, and runs it with
//! `wasm-bindgen-test-runner` on the internet side (`wan`), so Chromium reaches the relay only
//! through the home router's port forward. The scenario: enrol, connect, ping 192.168.0.10,
//! resolve a LAN name through the pushed DNS, fetch 4 MiB byte-exact, a refused port, TCP echo
//! (20 one-byte round trips whose answers carry their acknowledgements, counted at the LAN host),
//! home web app ports without a service worker (the test speaks the port protocol: a page with
//! the shim, a reused connection, a retry after the server closed an idle one, a Range answered
//! 206, the credit window, request bodies streamed in chunks (chunked and with a checked
//! Content-Length, their own credit window), hostile messages and origins refused, a WebSocket echo, a cookie set
//! by a script), reconnect with the same address after the relay drops the WebSocket, and the
//! revoked error after the device is revoked.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hometun_tests::browser::{self, hooks::Hooks, wasm};
use hometun_tests::capture::Capture;
use hometun_tests::lab::{addr, Lab, Node};
use hometun_tests::relay::{Relay, RelayOptions};

/// Bounds the runner (build time not included); the scenario itself takes about 10 s.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);
const DEVICE: &str = "browser-e2e";
const SCENARIO: &str = "a_browser_enrols_and_reaches_the_home_network";

#[test]
fn a_browser_enrols_reaches_the_lan_survives_a_drop_and_learns_it_was_revoked() {
    let started = Instant::now();
    let lab = Lab::start().expect("lab");
    // The wasm test runs on the runner's page, not the relay's: its origin must be allowed.
    let options = RelayOptions { extra_origins: vec![wasm::RUNNER_ORIGIN.into()], ..RelayOptions::default() };
    let relay = Arc::new(Mutex::new(Relay::start(&lab, options).expect("relay")));
    let (invite, relay_dir) = {
        let relay = relay.lock().unwrap();
        (relay.invite(DEVICE, "1h", None).expect("invite").to_link(), relay.dir().to_path_buf())
    };
    let spki = browser::relay_spki(&relay_dir).expect("relay certificate pin");
    eprintln!("lab and relay up after {:.1?}", started.elapsed());
    let wan = lab.netns(Node::Wan);
    let hooks = Hooks::start(&wan, relay.clone()).expect("hooks");

    let facts = wasm::LabFacts {
        invite,
        lan_host: addr::HOST10.to_string(),
        lan_name: Some(addr::NAS_NAME.to_owned()),
        drop_url: Some(hooks.drop_url()),
        revoke_url: Some(hooks.revoke_url()),
    };
    let build_started = Instant::now();
    let wasm = wasm::build_e2e(&facts).expect("building the wasm e2e test");
    eprintln!("built {} in {:.0?}", wasm.display(), build_started.elapsed());

    // Everything the device sends to the echo service, as the LAN host receives it.
    let echo_capture = Capture::start(&lab, Node::Host10, "eth0", "tcp dst port 7").expect("LAN host capture");
    let run_started = Instant::now();
    let out =
        wasm::run(&lab, Node::Wan, &wasm, &browser::chromium_args(&spki), RUN_TIMEOUT).expect("running the wasm test");
    let to_echo = echo_capture.stop().expect("capture");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("---- wasm-bindgen-test-runner ({:.1?}) ----\n{stdout}\n{stderr}", run_started.elapsed());

    assert!(out.status.success(), "the browser scenario failed ({})", out.status);
    assert!(stdout.contains(&format!("test {SCENARIO} ... ok")), "the scenario did not pass");
    assert!(stdout.contains("0 failed; 0 ignored"), "some scenario step was ignored or failed");
    assert!(!stdout.contains("SKIPPED"), "the scenario skipped a step");
    assert!(stdout.contains("fetched 4194304 bytes"), "no multi-MiB fetch reported");
    for step in [
        "second request on the same connection",
        "a request on a connection the server had closed was retried",
        "range of 530865 bytes",
        "streamed upload of 8388608 bytes chunked",
        "streamed upload of 8388608 bytes with its Content-Length",
        "window held at 4 chunks",
        "a body that does not match its Content-Length was refused",
        "WebSocket echoed",
        "cookie set by a script",
    ] {
        assert!(stdout.contains(&format!("app port: {step}")), "app port step {step:?} not reported");
    }

    // 20 one-byte round trips after a greeting: each answer carried the acknowledgement of
    // the byte before it (a page that acknowledged first sent 20 more bare ones). Only a few
    // may go alone: of the handshake, of the greeting's echo, of the peer's close.
    assert!(stdout.contains("echo: 20 one-byte round trips"), "the echo round trips did not run");
    let one_byte = to_echo.iter().filter(|line| line.ends_with("length 1")).count();
    let bare = to_echo.iter().filter(|line| line.contains("Flags [.],") && line.ends_with("length 0")).count();
    assert!(
        one_byte >= 20 && bare <= 6,
        "{one_byte} one-byte packets and {bare} bare acknowledgements reached the echo service:\n{}",
        to_echo.join("\n")
    );

    // The browser really used the hooks, and the relay agrees the device is revoked.
    let calls = hooks.calls();
    assert!(calls.iter().any(|c| c.starts_with("POST /drop -> 200")), "drop hook not called: {calls:?}");
    assert!(calls.iter().any(|c| c.starts_with("POST /revoke -> 200")), "revoke hook not called: {calls:?}");
    let client = relay.lock().unwrap().client(DEVICE).expect("client entry");
    assert!(client["revoked"] == true, "relay still lists {DEVICE} as allowed: {client}");
    eprintln!("browser e2e passed in {:.1?} (lab, build and run)", started.elapsed());
}
