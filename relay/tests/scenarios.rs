//! The relay in one process, one scenario per test: real TLS, real WebSockets, the real
//! protocol core on both ends (see `support`). No tun device: packets towards a client are put
//! straight into its session's queue, as the tun reader does.

mod support;

use futures_util::{SinkExt, StreamExt};
use hometun_relay::admin::proto::{Request, Response};
use hometun_relay::config::Limits;
use hometun_relay::daemon::admission::Admission;
use hometun_relay::daemon::session_table::LiveSession;
use hometun_relay::state::store::Store;
use hometun_shared::invite::Invite;
use hometun_shared::keys::SecretKey;
use hometun_shared::session::{CloseReason, End, Event, Refusal};
use hometun_testkit::packet;
use hometun_testkit::tungstenite::Message;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{closes_within, next_binary, refusal, Client, Lab, PATIENCE};

const FIRST_CLIENT: Ipv4Addr = Ipv4Addr::new(10, 8, 0, 2);

fn new_key() -> SecretKey {
    SecretKey::generate(&mut rand_core::OsRng)
}

/// A lab with one device enrolled and connected (its config read).
async fn enrolled(name: &str) -> (Lab, Invite, SecretKey, Client) {
    let lab = Lab::start(Limits::default()).await;
    let invite = lab.invite(name, 3600);
    let key = new_key();
    let mut client = lab.connect(&key, &invite.relay_key, Some(&invite)).await.unwrap();
    client.config().await;
    (lab, invite, key, client)
}

/// Waits until the client learns that its session was closed, and returns the reason.
async fn closed_reason(client: &mut Client) -> CloseReason {
    let (events, _) = client.read_until(|e| matches!(e, Event::Closed(_))).await.unwrap();
    events
        .into_iter()
        .find_map(|e| if let Event::Closed(End::PeerClosed(reason)) = e { Some(reason) } else { None })
        .expect("a Closed event with the relay's reason")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrolling_device_is_pushed_the_first_address_the_relays_and_the_lan_route() {
    let lab = Lab::start(Limits::default()).await;
    let invite = lab.invite("phone", 3600);
    let mut phone = lab.connect(&new_key(), &invite.relay_key, Some(&invite)).await.unwrap();
    let config = phone.config().await;
    assert_eq!(config.address.addr(), FIRST_CLIENT);
    assert_eq!(config.address.prefix_len(), lab.relay.config.pool.prefix_len());
    assert_eq!(config.relay_address, Ipv4Addr::new(10, 8, 0, 1));
    assert_eq!(config.routes, vec![lab.relay.config.lan], "the whole LAN by default");
    assert_eq!(config.mtu, 1420);
    assert_eq!(config.keepalive, Duration::from_secs(lab.relay.config.limits.keepalive_secs));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pushed_config_carries_the_invites_allow_list() {
    let lab = Lab::start(Limits::default()).await;
    let info = {
        let mut store = lab.relay.store();
        let allow = Some("192.168.0.10:80,192.168.0.20:8000-8100/tcp");
        hometun_relay::state::actions::create_invite(
            &mut store,
            &lab.relay.config,
            lab.relay.public,
            "tv",
            3600,
            allow,
            false,
        )
        .unwrap()
    };
    let invite = Invite::parse(&info.link).unwrap();
    let mut tv = lab.connect(&new_key(), &invite.relay_key, Some(&invite)).await.unwrap();
    let config = tv.config().await;
    let allowed: Vec<String> =
        config.allow.iter().map(|rule| format!("{} {:?} {:?}", rule.network, rule.ports, rule.protocol)).collect();
    assert_eq!(allowed, ["192.168.0.10/32 Some((80, 80)) None", "192.168.0.20/32 Some((8000, 8100)) Some(Tcp)"]);
    let whole = lab.invite("phone", 3600);
    let mut phone = lab.connect(&new_key(), &whole.relay_key, Some(&whole)).await.unwrap();
    let config = phone.config().await;
    assert_eq!(config.allow.len(), 1, "the whole LAN by default");
    assert_eq!((config.allow[0].network, config.allow[0].ports), (lab.relay.config.lan, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_packet_routed_to_a_client_address_reaches_that_client() {
    let (lab, _, _, mut phone) = enrolled("phone").await;
    let live = lab.relay.sessions.by_address(FIRST_CLIENT).expect("session registered");
    let packet = packet::udp(Ipv4Addr::new(192, 168, 0, 10), FIRST_CLIENT, 53, 40000, b"answer");
    live.packets.send(packet.clone()).await.unwrap();
    let mut got = Vec::new();
    while got.is_empty() {
        let Some(mut message) = next_binary(&mut phone.ws).await else { panic!("closed") };
        got = phone.session.handle_message(phone.clock.now(), &mut message).unwrap().map(<[u8]>::to_vec).collect();
    }
    assert_eq!(got, vec![packet]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_used_invite_is_refused_to_another_device() {
    let (lab, invite, _, _phone) = enrolled("phone").await;
    let attempt = lab.connect(&new_key(), &invite.relay_key, Some(&invite)).await;
    assert_eq!(refusal(attempt), Refusal::InviteUsed);
    assert_eq!(lab.relay.store().registry.clients.len(), 1, "nothing allocated for the refused device");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_device_without_an_invite_is_refused() {
    let (lab, invite, _, _phone) = enrolled("phone").await;
    let attempt = lab.connect(&new_key(), &invite.relay_key, None).await;
    assert_eq!(refusal(attempt), Refusal::UnknownDevice);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnecting_device_keeps_its_address_and_replaces_its_older_session() {
    let (lab, invite, key, mut phone) = enrolled("phone").await;
    let mut again = lab.connect(&key, &invite.relay_key, None).await.unwrap();
    assert_eq!(again.config().await.address.addr(), FIRST_CLIENT);
    assert_eq!(closed_reason(&mut phone).await, CloseReason::Replaced);
    assert_eq!(lab.relay.sessions.len(), 1);
}

/// A device whose first record after the handshake also closes the session (it connected and
/// was told to stop at once) leaves nothing behind: no session in the table that packets for
/// its address would go to, and the admin sees it offline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_closes_in_its_first_record_leaves_no_session_behind() {
    let (lab, invite, key, mut phone) = enrolled("phone").await;
    let clock = hometun_relay::daemon::Clock::start();
    let mut ws = lab.open_ws().await;
    let params = hometun_shared::session::Params::default();
    let mut session =
        hometun_testkit::handshake(&mut ws, &key, &invite.relay_key, None, &params, || clock.now()).await.unwrap();
    session.close(CloseReason::Normal);
    while let Some(record) = session.poll_transmit(clock.now()) {
        ws.send(Message::Binary(record.into())).await.unwrap();
    }
    assert_eq!(closed_reason(&mut phone).await, CloseReason::Replaced, "the older session made way");
    while next_binary(&mut ws).await.is_some() {}

    let settled = Instant::now();
    while !lab.relay.sessions.is_empty() && settled.elapsed() < PATIENCE {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(lab.relay.sessions.by_address(FIRST_CLIENT).is_none(), "a closed session still takes the device's packets");
    match lab.admin(Request::Clients) {
        Response::Clients { clients } => assert_eq!(clients[0].online, Some(false), "{clients:?}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_connected_device_ends_its_session_within_a_second_and_keeps_it_out() {
    let (lab, invite, key, mut phone) = enrolled("phone").await;
    let started = Instant::now();
    match lab.admin(Request::Revoke { name: "phone".into() }) {
        Response::Revoked { closed_session, .. } => assert!(closed_session),
        other => panic!("{other:?}"),
    }
    assert_eq!(closed_reason(&mut phone).await, CloseReason::Revoked);
    assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
    let attempt = lab.connect(&key, &invite.relay_key, None).await;
    assert_eq!(refusal(attempt), Refusal::UnknownDevice);
    match lab.admin(Request::Clients) {
        Response::Clients { clients } => {
            assert_eq!(clients.len(), 1);
            assert!(clients[0].revoked);
            assert_eq!(clients[0].online, Some(false));
        }
        other => panic!("{other:?}"),
    }
}

/// A revoke that lands while a device is being admitted (its keys confirmed, its session not
/// yet in the table) must still end that session: admission and joining the session table
/// are one step as far as a revoke can see.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_during_admission_ends_the_session_being_admitted() {
    let (lab, _invite, key, _phone) = enrolled("phone").await;
    let relay = lab.relay.clone();
    let public = key.public_key();
    let (kick_tx, mut kicked) = tokio::sync::mpsc::channel(4);
    let revoke = Arc::new(std::sync::Mutex::new(None));
    let (revoke_slot, inner) = (revoke.clone(), relay.clone());
    let live: hometun_relay::daemon::admission::MakeLive = Box::new(move |admitted| {
        // Between admission and the session table: the admin revokes the device now.
        let (started_tx, started) = std::sync::mpsc::channel();
        let revoking = inner.clone();
        *revoke_slot.lock().unwrap() = Some(std::thread::spawn(move || {
            started_tx.send(()).unwrap();
            hometun_relay::admin::answer(&revoking, Request::Revoke { name: "phone".into() })
        }));
        started.recv().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let (packets, _) = tokio::sync::mpsc::channel(1);
        LiveSession {
            id: inner.sessions.next_id(),
            name: admitted.name.clone(),
            key: admitted.key,
            address: admitted.address,
            remote: "127.0.0.1:1".parse().unwrap(),
            since: 0,
            packets,
            kick: kick_tx,
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            queued_bytes: AtomicUsize::new(0),
        }
    });
    let admitted = relay.admit_and_join(Admission::Connect, public, live).await.is_ok();
    let revoking = revoke.lock().unwrap().take().expect("the revoke started");
    let revoked = tokio::task::spawn_blocking(move || revoking.join().unwrap()).await.unwrap();
    assert!(admitted, "the device was not yet revoked when its admission began");
    match revoked {
        Response::Revoked { closed_session, .. } => assert!(closed_session, "the revoke found no session"),
        other => panic!("{other:?}"),
    }
    assert_eq!(kicked.try_recv().ok(), Some(CloseReason::Revoked), "the admitted session was not told to close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_invite_is_refused() {
    let lab = Lab::start(Limits::default()).await;
    let invite = lab.invite("laptop", 3600);
    lab.relay.store().invites.invites[0].expires = 1;
    let attempt = lab.connect(&new_key(), &invite.relay_key, Some(&invite)).await;
    assert_eq!(refusal(attempt), Refusal::InviteExpired);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_holding_the_wrong_relay_key_cannot_finish_the_handshake() {
    let lab = Lab::start(Limits::default()).await;
    let invite = lab.invite("laptop", 3600);
    let wrong = new_key().public_key();
    assert!(lab.connect(&new_key(), &wrong, Some(&invite)).await.is_err());
    // Nothing was used up: the right key still enrols with the same invite.
    assert!(lab.connect(&new_key(), &invite.relay_key, Some(&invite)).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_instead_of_a_hello_closes_only_that_connection() {
    let lab = Lab::start(Limits::default()).await;
    let bad: [(&str, Message); 3] = [
        ("random bytes", Message::Binary(vec![1u8; 100].into())),
        ("a text message", Message::Text("hello".into())),
        ("an oversized message", Message::Binary(vec![4u8; 512 * 1024].into())),
    ];
    for (what, message) in bad {
        let mut ws = lab.open_ws().await;
        let _ = ws.send(message).await;
        // Well before the handshake's deadline (10 s): the garbage itself ends it.
        assert!(closes_within(&mut ws, Duration::from_secs(2)).await, "{what}: the connection was closed");
    }
    let invite = lab.invite("tablet", 3600);
    assert!(lab.connect(&new_key(), &invite.relay_key, Some(&invite)).await.is_ok(), "the relay still serves");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_handshake_is_cut_at_the_deadline() {
    let lab = Lab::start(Limits { handshake_timeout_secs: 1, ..Limits::default() }).await;
    let mut stalled = lab.open_ws().await;
    assert!(closes_within(&mut stalled, Duration::from_secs(3)).await, "the stalled handshake was cut");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_record_ends_that_session_with_a_reason_and_the_device_may_come_back() {
    let (lab, invite, key, mut client) = enrolled("tablet").await;
    client.ws.send(Message::Binary(vec![4u8; 64].into())).await.unwrap();
    let close = loop {
        match tokio::time::timeout(PATIENCE, client.ws.next()).await.unwrap() {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    let close = close.expect("close frame with a reason");
    assert_eq!(u16::from(close.code), 1002);
    assert!(close.reason.contains("protocol error"), "{}", close.reason);

    let mut back = lab.connect(&key, &invite.relay_key, None).await.unwrap();
    assert_eq!(back.config().await.address.addr(), FIRST_CLIENT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_sessions_with_a_reason_and_keeps_the_state() {
    let (lab, _, _, mut phone) = enrolled("phone").await;
    lab.shutdown.send(true).unwrap();
    assert_eq!(closed_reason(&mut phone).await, CloseReason::Shutdown);
    for _ in 0..100 {
        if lab.relay.sessions.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(lab.relay.sessions.is_empty());
    assert_eq!(lab.relay.store().registry.clients[0].address, FIRST_CLIENT, "the client keeps its address");
}

/// Many devices enrol at once from one source address; every one gets its own address, and
/// the saved leases give each the same one back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_devices_enrolling_at_once_get_distinct_addresses_that_are_saved() {
    const DEVICES: usize = 60;
    let lab = Arc::new(Lab::start(Limits::default()).await);
    let started = Instant::now();
    let tasks: Vec<_> = (0..DEVICES)
        .map(|i| {
            let (lab, invite, key) = (lab.clone(), lab.invite(&format!("d{i}"), 3600), new_key());
            tokio::spawn(async move {
                let mut client = lab.connect(&key, &invite.relay_key, Some(&invite)).await.unwrap();
                let address = client.config().await.address.addr();
                (key.public_key(), address, client)
            })
        })
        .collect();
    let mut seen = std::collections::HashMap::new();
    let mut clients = Vec::new();
    for task in tasks {
        let (key, address, client) = task.await.unwrap();
        assert!(seen.insert(address, key).is_none(), "{address} handed out twice");
        clients.push(client);
    }
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    assert_eq!(lab.relay.sessions.len(), DEVICES);
    let reloaded = Store::load(lab.dir.path(), lab.relay.config.pool).unwrap();
    for (address, key) in &seen {
        assert_eq!(reloaded.pool.leased(key), Some(*address));
    }
}

/// Rough throughput of the relay's data path towards one client (no tun): run with
/// `cargo test --release -p hometun-relay --test scenarios throughput -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn throughput_towards_one_client() {
    let (lab, _, _, mut client) = enrolled("bench").await;
    let live = lab.relay.sessions.by_address(FIRST_CLIENT).unwrap();
    let packet = packet::udp(Ipv4Addr::new(192, 168, 0, 10), FIRST_CLIENT, 9, 9, &[7u8; 1372]);
    const PACKETS: usize = 100_000;
    let sender = tokio::spawn(async move {
        for _ in 0..PACKETS {
            if live.packets.send(packet.clone()).await.is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let mut received = 0usize;
    while received < PACKETS {
        let Some(mut message) = next_binary(&mut client.ws).await else { break };
        received += client.session.handle_message(client.clock.now(), &mut message).unwrap().count();
    }
    let secs = started.elapsed().as_secs_f64();
    sender.await.unwrap();
    println!("{received} packets, {:.0} Mbit/s", (received * 1400 * 8) as f64 / secs / 1e6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tunnel_upgrade_from_another_website_is_refused_and_the_relays_own_page_or_a_native_client_is_not() {
    let lab = Lab::start(Limits::default()).await;
    let foreign = Lab::upgrade_request("Origin: https://evil.example\r\n");
    assert_eq!(lab.raw_status(&foreign).await, 403, "another website's page");
    assert!(lab.relay.sessions.is_empty());
    let own = Lab::upgrade_request("Origin: https://LOCALHOST\r\n");
    assert_eq!(lab.raw_status(&own).await, 101, "the relay's own page");
    assert_eq!(lab.raw_status(&Lab::upgrade_request("")).await, 101, "a native client (no Origin)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_is_not_used_up_when_the_address_pool_is_full() {
    let lab = Lab::start(Limits::default()).await;
    let invite = lab.invite("phone", 3600);
    let squatters: Vec<SecretKey> = std::iter::repeat_with(new_key).take(253).collect();
    for squatter in &squatters {
        lab.relay.store().pool.lease(&squatter.public_key()).unwrap();
    }
    let key = new_key();
    let mut full = lab.connect(&key, &invite.relay_key, Some(&invite)).await.unwrap();
    assert_eq!(closed_reason(&mut full).await, CloseReason::Refused, "no address is free");
    assert!(lab.relay.sessions.is_empty());

    let freed = lab.relay.store().pool.release(&squatters[0].public_key()).unwrap();
    let mut client = lab.connect(&key, &invite.relay_key, Some(&invite)).await.expect("the invite still works");
    let config = client.config().await;
    assert_eq!(config.address.addr(), freed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_cannot_write_its_state_tells_the_device_to_try_again_later() {
    // The home server's disk cannot take the state now (here: a directory where the clients
    // file goes, which even root cannot write over). The device is told "unavailable", which
    // clients try again after, not "refused", which they give up on; once the disk takes it,
    // the same invite works.
    let lab = Lab::start(Limits::default()).await;
    let invite = lab.invite("phone", 3600);
    let clients = lab.dir.path().join("clients.json");
    let _ = std::fs::remove_file(&clients);
    std::fs::create_dir(&clients).unwrap();
    let key = new_key();
    let mut refused = lab.connect(&key, &invite.relay_key, Some(&invite)).await.unwrap();
    assert_eq!(closed_reason(&mut refused).await, CloseReason::Unavailable);
    assert!(lab.relay.sessions.is_empty());

    std::fs::remove_dir(&clients).unwrap();
    let mut client = lab.connect(&key, &invite.relay_key, Some(&invite)).await.expect("the invite still works");
    assert_eq!(client.config().await.address.addr(), FIRST_CLIENT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_path_with_control_characters_is_answered_400_and_a_clean_one_is_served() {
    let lab = Lab::start(Limits::default()).await;
    let get =
        |target: &str| format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").into_bytes();
    for dirty in ["/healthz%0a", "/%00", "/relay.json?x=%1b[31m", "/a%7Fb", "/healthz?%0D%0Aevil:1", "/a\x01b"] {
        assert_eq!(lab.raw_status(&get(dirty)).await, 400, "{dirty}");
    }
    assert_eq!(lab.raw_status(&get("/healthz")).await, 200);
    assert_eq!(lab.raw_status(&get("/healthz?a=%20b")).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trickling_a_request_header_is_cut_at_the_deadline_while_a_tunnel_stays_up() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let lab = Lab::start(Limits { upgrade_deadline_secs: 1, ..Limits::default() }).await;
    let invite = lab.invite("phone", 3600);
    let mut phone = lab.connect(&new_key(), &invite.relay_key, Some(&invite)).await.unwrap();
    phone.config().await;

    let mut slow = lab.tls().await;
    let started = Instant::now();
    let header = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut cut = None;
    for byte in header.iter().cycle().take(40) {
        // The idle timer (30 s here) never fires: a byte comes every 200 ms.
        if slow.write_all(&[*byte]).await.is_err() || slow.flush().await.is_err() {
            cut = Some(started.elapsed());
            break;
        }
        let mut answer = [0u8; 256];
        match tokio::time::timeout(Duration::from_millis(200), slow.read(&mut answer)).await {
            Err(_) => {}
            Ok(Ok(n)) if n > 0 => panic!("an answer to a request never finished: {:?}", &answer[..n]),
            Ok(_) => {
                cut = Some(started.elapsed());
                break;
            }
        }
    }
    let cut = cut.expect("the trickling connection was cut within 8 s");
    assert!(cut >= Duration::from_millis(900) && cut < Duration::from_secs(4), "cut after {cut:?}");

    // The tunnel, older than the deadline, still carries packets.
    let live = lab.relay.sessions.by_address(FIRST_CLIENT).expect("session registered");
    let packet = packet::udp(Ipv4Addr::new(192, 168, 0, 10), FIRST_CLIENT, 53, 40000, b"still here");
    live.packets.send(packet.clone()).await.unwrap();
    let mut got = Vec::new();
    while got.is_empty() {
        let Some(mut message) = next_binary(&mut phone.ws).await else { panic!("the tunnel was closed") };
        got = phone.session.handle_message(phone.clock.now(), &mut message).unwrap().map(<[u8]>::to_vec).collect();
    }
    assert_eq!(got, vec![packet]);
    assert_eq!(lab.raw_status(&Lab::upgrade_request("")).await, 101, "a new client still gets in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_not_finished_within_the_header_timeout_is_cut_long_before_the_upgrade_deadline() {
    use hometun_relay::web::server::HEADER_READ_TIMEOUT;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let lab = Lab::start(Limits { upgrade_deadline_secs: 60, ..Limits::default() }).await;
    let mut slow = lab.tls().await;
    let started = Instant::now();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n").await.unwrap();
    let mut cut = None;
    // One header byte every 500 ms keeps the idle timer from firing, for at most 30 s.
    for _ in 0..60 {
        if slow.write_all(b"X").await.is_err() || slow.flush().await.is_err() {
            cut = Some(started.elapsed());
            break;
        }
        let mut answer = [0u8; 256];
        match tokio::time::timeout(Duration::from_millis(500), slow.read(&mut answer)).await {
            Err(_) => {}
            Ok(Ok(n)) if n > 0 && !answer[..n].starts_with(b"HTTP/1.1 408") => {
                panic!("an answer to a request never finished: {:?}", String::from_utf8_lossy(&answer[..n]))
            }
            Ok(_) => {
                cut = Some(started.elapsed());
                break;
            }
        }
    }
    let cut = cut.expect("the trickling connection was never cut");
    assert!(cut >= HEADER_READ_TIMEOUT && cut < HEADER_READ_TIMEOUT + Duration::from_secs(3), "cut after {cut:?}");
    assert_eq!(lab.raw_status(&Lab::upgrade_request("")).await, 101, "a new client still gets in");
}
