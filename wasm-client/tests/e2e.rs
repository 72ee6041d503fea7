//! The browser client against a live relay, in headless Chromium.
//!
//! The test harness builds this with the lab's facts in compile-time environment variables:
//!
//! - `HOMETUN_TEST_INVITE` (required): an unused invite link for the lab relay, whose URL the
//!   browser can reach. Without it every scenario here prints why and returns.
//! - `HOMETUN_TEST_LAN_HOST`: the LAN host with HTTP on :80 (serving `/blob/<size>`) and TCP
//!   echo on :7 (default `192.168.0.10`).
//! - `HOMETUN_TEST_LAN_NAME`: a name the pushed DNS resolves to the LAN host (optional).
//! - `HOMETUN_TEST_DROP_URL`: a URL whose `POST` makes the relay drop every WebSocket
//!   (optional; enables the reconnect scenario).
//! - `HOMETUN_TEST_REVOKE_URL`: a URL whose `POST` with `{"key": <public key, base64url>,
//!   "fingerprint": <as the relay lists it>}` as body revokes that device (optional; enables
//!   the revocation scenario).
//!
//! The hooks are called with `fetch` from the test page's origin: they must answer with
//! `Access-Control-Allow-Origin: *`, and a 2xx status once done.
//!
//! All steps share one page (one tunnel and one stored device), so they run as one scenario in
//! order. Without the variables the scenario and its optional steps show as `ignored` with the
//! reason (see build.rs).
#![cfg(target_arch = "wasm32")]

mod apps;

use hometun_wasm::api;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const INVITE: Option<&str> = option_env!("HOMETUN_TEST_INVITE");
const LAN_HOST: Option<&str> = option_env!("HOMETUN_TEST_LAN_HOST");
const LAN_NAME: Option<&str> = option_env!("HOMETUN_TEST_LAN_NAME");
const DROP_URL: Option<&str> = option_env!("HOMETUN_TEST_DROP_URL");
const REVOKE_URL: Option<&str> = option_env!("HOMETUN_TEST_REVOKE_URL");
/// Size of the file fetched byte-exact.
const BLOB_SIZE: u64 = 4 << 20;
/// One-byte echo round trips after the greeting (tests/tests/browser_client.rs counts the
/// packets they cost at the LAN host).
const ECHO_ROUND_TRIPS: u32 = 20;

fn skip(why: &str) {
    console_log!("SKIPPED: {why}");
    web_sys::console::warn_1(&format!("hometun e2e SKIPPED: {why}").into());
}

fn get(value: &JsValue, key: &str) -> JsValue {
    js_sys::Reflect::get(value, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

fn code_of(error: &JsValue) -> String {
    get(error, "code").as_string().unwrap_or_else(|| format!("{error:?}"))
}

/// The lab's blob content (same generator as the LAN host's, see tests/src/content.rs).
fn blob_byte(size: u64, pos: u64) -> u8 {
    let mut z = size ^ (pos / 8).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)).to_le_bytes()[(pos % 8) as usize]
}

async fn post(url: &str, body: &str) -> Result<u16, JsValue> {
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&body.into());
    let window = web_sys::window().ok_or("no window")?;
    let response: web_sys::Response = JsFuture::from(window.fetch_with_str_and_init(url, &init)).await?.dyn_into()?;
    Ok(response.status())
}

async fn wait_for_state(state: &str, seconds: u32) -> JsValue {
    for _ in 0..seconds * 10 {
        let status = api::status();
        if get(&status, "state").as_string().as_deref() == Some(state) {
            return status;
        }
        hometun_wasm::web::timer::sleep(std::time::Duration::from_millis(100)).await;
    }
    api::status()
}

#[wasm_bindgen_test]
#[cfg_attr(not(hometun_lab), ignore = "HOMETUN_TEST_INVITE not set at build time: no lab relay, scenario not run")]
async fn a_browser_enrols_and_reaches_the_home_network() {
    let Some(invite) = INVITE else {
        return skip("HOMETUN_TEST_INVITE is not set at build time; the harness sets it when a lab relay runs");
    };
    let lan = LAN_HOST.unwrap_or("192.168.0.10");

    // Enrol: the relay accepts the invite and pushes an address and routes.
    let config = api::enroll(invite.to_owned()).await.unwrap_or_else(|e| panic!("enrol failed: {e:?}"));
    let address = get(&config, "address").as_string().expect("address");
    console_log!("enrolled, tunnel address {address}, routes {:?}", get(&config, "routes"));
    assert!(api::is_enrolled().await.unwrap());
    // The key is in IndexedDB: a second client instance in this page finds it.
    assert!(hometun_wasm::driver::Tunnel::default().load_profile().await.expect("storage"));
    let exported = api::export_device().await.expect("export");
    assert!(exported.starts_with("hometun-device-1."));
    let status = api::status();
    assert_eq!(get(&status, "state").as_string().as_deref(), Some("connected"));

    // A used invite is refused with its own error.
    api::disconnect();
    let reused = api::enroll(invite.to_owned()).await.expect_err("an invite works once");
    assert_eq!(code_of(&reused), "invite-used");
    // The failed enrolment kept the device: connecting again gives the same address.
    let again = api::connect().await.unwrap_or_else(|e| panic!("reconnect failed: {e:?}"));
    assert_eq!(get(&again, "address").as_string(), Some(address.clone()));

    // Ping the LAN host.
    let options = js_sys::Object::new();
    js_sys::Reflect::set(&options, &"count".into(), &3.into()).unwrap();
    let ping = api::ping(lan.to_owned(), options.into()).await.unwrap_or_else(|e| panic!("ping failed: {e:?}"));
    console_log!("ping {lan}: {:?}", get(&ping, "rtts"));
    assert!(get(&ping, "received").as_f64().unwrap_or(0.0) >= 1.0, "no echo reply from {lan}");

    // Names through the pushed DNS.
    if let Some(name) = LAN_NAME {
        let addresses = api::resolve(name.to_owned()).await.unwrap_or_else(|e| panic!("lookup failed: {e:?}"));
        assert!(addresses.includes(&lan.into(), 0), "{name} resolved to {addresses:?}");
    }

    // fetch a multi-MiB file through the streaming body, byte-exact.
    let url = format!("http://{lan}/blob/{BLOB_SIZE}");
    let started = js_sys::Date::now();
    let response =
        api::http_fetch(url.clone(), JsValue::UNDEFINED).await.unwrap_or_else(|e| panic!("fetch failed: {e:?}"));
    assert_eq!(response.status(), 200);
    let body = JsFuture::from(response.array_buffer().unwrap()).await.expect("body");
    let bytes = js_sys::Uint8Array::new(&body).to_vec();
    let seconds = (js_sys::Date::now() - started) / 1000.0;
    console_log!(
        "fetched {} bytes in {seconds:.2} s ({:.1} Mbit/s)",
        bytes.len(),
        bytes.len() as f64 * 8.0 / seconds / 1e6
    );
    assert_eq!(bytes.len() as u64, BLOB_SIZE);
    let mismatch = bytes.iter().enumerate().position(|(i, b)| *b != blob_byte(BLOB_SIZE, i as u64));
    assert_eq!(mismatch, None, "first wrong byte");

    // A closed port is refused, not timed out.
    let refused = api::connect_tcp(lan.to_owned(), 81).await.map(|_| ()).expect_err("nothing listens on :81");
    assert_eq!(code_of(&refused), "connection-refused");

    // connectTcp to the echo service.
    let echo = api::connect_tcp(lan.to_owned(), 7).await.unwrap_or_else(|e| panic!("echo connect failed: {e:?}"));
    JsFuture::from(echo.send("hello through the tunnel\n".into())).await.expect("send");
    let mut echoed = Vec::new();
    while echoed.len() < 25 {
        let chunk = JsFuture::from(echo.receive()).await.expect("receive");
        if chunk.is_null() {
            break;
        }
        echoed.extend(js_sys::Uint8Array::new(&chunk).to_vec());
    }
    assert_eq!(echoed, b"hello through the tunnel\n");
    // One-byte round trips: each answer leaves with the acknowledgement of the byte it answers
    // (the harness counts the bare acknowledgements that reach the LAN host).
    for i in 0..ECHO_ROUND_TRIPS {
        let byte = [b'a' + (i % 26) as u8];
        JsFuture::from(echo.send(js_sys::Uint8Array::from(&byte[..]).into())).await.expect("send");
        let chunk = JsFuture::from(echo.receive()).await.expect("receive");
        assert_eq!(js_sys::Uint8Array::new(&chunk).to_vec(), byte, "echo round trip {i}");
    }
    console_log!("echo: {ECHO_ROUND_TRIPS} one-byte round trips");
    echo.close();

    // Home web apps through a port bound to the LAN host (no service worker: the test is one).
    apps::app_ports(lan, blob_byte).await;

    // The relay drops the WebSocket: the client comes back by itself, same address.
    match DROP_URL {
        None => skip("HOMETUN_TEST_DROP_URL is not set; reconnect scenario not run"),
        Some(drop_url) => {
            let before = get(&api::status(), "connectedSince").as_f64();
            let status = post(drop_url, "").await.expect("drop hook");
            assert!((200..300).contains(&status), "drop hook answered {status}");
            hometun_wasm::web::timer::sleep(std::time::Duration::from_millis(300)).await;
            let status = wait_for_state("connected", 20).await;
            assert_eq!(get(&status, "state").as_string().as_deref(), Some("connected"), "{status:?}");
            assert_eq!(get(&status, "address").as_string(), Some(address.clone()));
            // A new session, not the old one that never noticed the drop.
            let since = get(&status, "connectedSince").as_f64();
            assert!(before.is_some() && since != before, "connected since {before:?}, then {since:?}");
            let ping = api::ping(lan.to_owned(), JsValue::UNDEFINED).await.expect("ping after reconnect");
            assert!(get(&ping, "received").as_f64().unwrap_or(0.0) >= 1.0);
        }
    }

    // The device is revoked: the relay ends the session and refuses the next hello.
    match REVOKE_URL {
        None => skip("HOMETUN_TEST_REVOKE_URL is not set; revocation scenario not run"),
        Some(revoke_url) => {
            let status = api::status();
            let key = get(&status, "device").as_string().expect("device key in status");
            let fingerprint = get(&status, "fingerprint").as_string().expect("fingerprint in status");
            let body = format!(r#"{{"key":"{key}","fingerprint":"{fingerprint}"}}"#);
            let status = post(revoke_url, &body).await.expect("revoke hook");
            assert!((200..300).contains(&status), "revoke hook answered {status}");
            // The relay ends the running session within a second; the link stops for good.
            let status = wait_for_state("failed", 10).await;
            assert_eq!(code_of(&get(&status, "error")), "device-revoked", "{status:?}");
            // And a new hello is refused.
            let error = api::connect().await.expect_err("a revoked device cannot connect");
            assert_eq!(code_of(&error), "device-revoked");
        }
    }
}

#[wasm_bindgen_test]
async fn an_unreachable_relay_is_reported_as_such() {
    // A loopback port nothing listens on (the discard port); the error must say so quickly.
    let invite = hometun_shared::invite::Invite {
        relay_key: hometun_shared::keys::PublicKey::from_bytes([3; 32]),
        id: hometun_shared::invite::InviteId([1; 16]),
        secret: hometun_shared::invite::InviteSecret([2; 32]),
        url: "http://127.0.0.1:9".into(),
    };
    let tunnel = hometun_wasm::driver::Tunnel::default();
    let error = tunnel.enroll(&invite.to_link()).await.expect_err("nothing listens there");
    assert_eq!(error.code(), "relay-unreachable", "{error}");
}
