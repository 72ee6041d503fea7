//! The home-web-app pieces that read what a LAN app sends: the WebSocket upgrade answer and
//! frames, Set-Cookie values and saved jars, response headers, and HTML through the shim
//! injector. The first byte picks the reader. None may panic; the injector must add exactly
//! its tag and keep every other byte.
#![no_main]

use hometun_shared::app_name::AppTarget;
use hometun_wasm::apps::headers::{map_response, Answering};
use hometun_wasm::apps::inject::{shim_tag, Injector};
use hometun_wasm::apps::jar::Jar;
use hometun_wasm::apps::origin::AppOrigins;
use hometun_wasm::apps::websocket::{ClientHandshake, UpgradeRequest, WsCodec};
use libfuzzer_sys::fuzz_target;
use std::net::{Ipv4Addr, SocketAddrV4};

const TARGET: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 168, 0, 10), 8080);
/// The nonce the shim's tag carries.
const NONCE: &str = "bm9uY2Vub25jZW5vbmNlMQ==";
const NOW: i64 = 1_800_000_000;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    match selector % 5 {
        0 => {
            let mut codec = WsCodec::new();
            for piece in rest.chunks(usize::from(selector / 5).max(1)) {
                if codec.feed(piece).is_err() {
                    break;
                }
                let _ = codec.poll_transmit();
            }
            let _ = codec.connection_lost();
        }
        1 => {
            let request = UpgradeRequest {
                target: AppTarget::http(TARGET),
                path: "/ws".into(),
                origin: None,
                cookie: None,
                authorization: None,
                protocols: vec!["chat".into()],
            };
            let Ok(mut handshake) = ClientHandshake::new(&request, [7; 16]) else { return };
            if let Ok(Some(mut upgraded)) = handshake.feed(rest) {
                let _ = upgraded.codec.feed(&[]);
            }
        }
        2 => {
            let mut jar = Jar::new(AppTarget::http(TARGET));
            for line in text.lines() {
                if let Some(script) = line.strip_prefix("js:") {
                    let _ = jar.set_from_script(script, "/a/b", NOW);
                } else {
                    jar.store_set_cookie(line, "/a/b", NOW);
                }
            }
            let _ = jar.cookie_header("/a/b/c", NOW);
            let _ = jar.script_cookies("/", NOW);
            let saved = jar.to_json(NOW);
            let loaded = Jar::from_json(AppTarget::http(TARGET), &saved).expect("a saved jar loads again");
            assert_eq!(loaded.to_json(NOW), saved, "a jar changed through save and load");
            let _ = Jar::from_json(AppTarget::http(TARGET), &text);
        }
        3 => {
            let Ok(origins) = AppOrigins::new("https://home.test") else { return };
            let mut jar = Jar::new(AppTarget::http(TARGET));
            let headers: Vec<(String, String)> = text
                .lines()
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
                .collect();
            let answering = Answering { path: "/x", destination: "document", whole_body: true, nonce: NONCE };
            let _ = map_response(&origins, &mut jar, &answering, &headers, NOW);
        }
        _ => {
            let cookies = vec![("a".to_owned(), "\"><script>".to_owned(), "/".to_owned())];
            let mut injector = Injector::new(&cookies, NONCE);
            let mut out = Vec::new();
            for piece in rest.chunks(usize::from(selector / 5).max(1)) {
                out.extend(injector.push(piece));
            }
            out.extend(injector.finish());
            let tag = shim_tag(&cookies, NONCE);
            assert_eq!(out.len(), rest.len() + tag.len(), "the injector added or lost bytes");
            let at = out.windows(tag.len()).position(|w| w == tag.as_bytes()).expect("the tag is in the output");
            let mut without = out[..at].to_vec();
            without.extend_from_slice(&out[at + tag.len()..]);
            assert_eq!(without, rest, "the injector changed the document");
        }
    }
});
