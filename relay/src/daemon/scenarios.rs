//! The relay in one process, without a tun device: real TLS, real WebSockets, the real protocol
//! core on both ends. Scenarios: enrol, reconnect to the same address, reused invite, revoke
//! while connected, garbage, packets towards the client.

use super::{limits::IpLimits, sessions::Sessions, Clock, Drops, LogLimiter, Relay};
use crate::config::{Config, Limits, Mode};
use crate::control::proto::{Request, Response};
use crate::state::store::{relay_key, Store};
use crate::web::listener::{Remote, TlsListener};
use futures_util::{SinkExt, StreamExt};
use hometun_shared::control::ClientConfig;
use hometun_shared::handshake::Initiator;
use hometun_shared::invite::Invite;
use hometun_shared::keys::SecretKey;
use hometun_shared::session::{CloseReason, ConnectionLost, End as SessionEnd, Error as SessionError, Event, Params, Refusal, Session};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>;

struct Lab {
    relay: Arc<Relay>,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
    _shutdown: tokio::sync::watch::Sender<bool>,
}

async fn start_relay(limits: Limits) -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        public_url: "https://localhost".into(),
        mode: Mode::Routed,
        lan: "192.168.0.0/24".parse().unwrap(),
        lan_interface: None,
        pool: "10.8.0.0/24".parse().unwrap(),
        tun_name: "hometun-test".into(),
        mtu: 1420,
        www: dir.path().join("www"),
        tls_cert: "tls-cert.pem".into(),
        tls_key: "tls-key.pem".into(),
        self_signed: true,
        client_to_client: false,
        dns: vec![],
        control_socket: None,
        limits,
    };
    let (secret, _) = relay_key(dir.path(), true).unwrap();
    crate::web::tls::ensure_certificate(dir.path(), &config).unwrap();
    let tls = crate::web::tls::server_config(dir.path(), &config).unwrap();
    let (shutdown_tx, shutdown) = tokio::sync::watch::channel(false);
    let limits = IpLimits::new(config.limits.clone());
    let relay = Arc::new(Relay {
        public: secret.public_key(),
        secret,
        store: Mutex::new(Store::load(dir.path(), config.pool).unwrap()),
        sessions: Sessions::default(),
        limits: limits.clone(),
        tun: None,
        clock: Clock::start(),
        drops: Drops::default(),
        deny_log: LogLimiter::new(10),
        shutdown,
        started: 0,
        config: config.clone(),
    });
    let tcp = tokio::net::TcpListener::bind(config.listen).await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let listener =
        TlsListener::start(tcp, tokio_rustls::TlsAcceptor::from(tls), limits, Duration::from_secs(2), Duration::from_secs(30)).unwrap();
    let app = crate::web::router(relay.clone(), config.www.clone());
    tokio::spawn(async move { axum::serve(listener, app.into_make_service_with_connect_info::<Remote>()).await });
    Lab { relay, addr, _dir: dir, _shutdown: shutdown_tx }
}

impl Lab {
    fn invite(&self, name: &str, ttl: u64) -> Invite {
        let mut store = self.relay.store();
        let info = crate::ops::create_invite(&mut store, &self.relay.config, self.relay.public, name, ttl, None).unwrap();
        Invite::parse(&info.link).unwrap()
    }

    fn control(&self, request: Request) -> Response {
        crate::control::answer(&self.relay, request)
    }
}

#[derive(Debug)]
struct AcceptAnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

async fn open_ws(addr: SocketAddr) -> Ws {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async("wss://localhost/tunnel", tls).await.unwrap();
    ws
}

struct Client {
    ws: Ws,
    session: Session,
    clock: Clock,
}

async fn next_binary(ws: &mut Ws) -> Option<Vec<u8>> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await.ok()?? {
            Ok(Message::Binary(b)) => return Some(b.to_vec()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// Runs a client handshake; `Err` carries the refusal or failure.
async fn connect(addr: SocketAddr, key: &SecretKey, relay: &hometun_shared::keys::PublicKey, invite: Option<&Invite>) -> Result<Client, SessionError> {
    let clock = Clock::start();
    let mut ws = open_ws(addr).await;
    let params = Params::default();
    let (initiator, hello) = Initiator::start(key, relay, invite, &params, clock.now(), &mut rand_core::OsRng)?;
    ws.send(Message::Binary(hello.into())).await.unwrap();
    let reply = next_binary(&mut ws).await.ok_or(SessionError::Ended(Box::new(SessionEnd::ConnectionLost(ConnectionLost::Dropped))))?;
    let mut session = initiator.handle_reply(clock.now(), &reply)?;
    while let Some(m) = session.poll_transmit(clock.now()) {
        ws.send(Message::Binary(m.into())).await.unwrap();
    }
    Ok(Client { ws, session, clock })
}

impl Client {
    /// Reads records until `want` says stop; returns the events and packets seen.
    async fn read_until(&mut self, mut want: impl FnMut(&Event) -> bool) -> Result<(Vec<Event>, Vec<Vec<u8>>), SessionError> {
        let mut events = Vec::new();
        let mut packets = Vec::new();
        loop {
            let Some(mut message) = next_binary(&mut self.ws).await else {
                return Err(SessionError::Ended(Box::new(SessionEnd::ConnectionLost(ConnectionLost::Dropped))));
            };
            let got = self.session.handle_message(self.clock.now(), &mut message);
            let got = match got {
                Ok(p) => p.map(<[u8]>::to_vec).collect::<Vec<_>>(),
                Err(e) => {
                    while let Some(ev) = self.session.poll_event() {
                        events.push(ev);
                    }
                    if events.iter().any(&mut want) {
                        return Ok((events, packets));
                    }
                    return Err(e);
                }
            };
            packets.extend(got);
            let mut done = false;
            while let Some(ev) = self.session.poll_event() {
                done |= want(&ev);
                events.push(ev);
            }
            if done {
                return Ok((events, packets));
            }
        }
    }

    async fn config(&mut self) -> ClientConfig {
        let (events, _) = self.read_until(|e| matches!(e, Event::Config(_))).await.unwrap();
        events.into_iter().find_map(|e| if let Event::Config(c) = e { Some(c) } else { None }).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrol_reconnect_reuse_and_revoke() {
    let lab = start_relay(Limits::default()).await;
    let invite = lab.invite("phone", 3600);
    let key = SecretKey::generate(&mut rand_core::OsRng);

    // Enrol: the pushed config carries the first client address and the LAN route.
    let mut phone = connect(lab.addr, &key, &invite.relay_key, Some(&invite)).await.unwrap();
    let config = phone.config().await;
    assert_eq!(config.address.addr().to_string(), "10.8.0.2");
    assert_eq!(config.relay_address.to_string(), "10.8.0.1");
    assert_eq!(config.mtu, 1420);

    // A packet the tun side routes to 10.8.0.2 reaches the client.
    let handle = lab.relay.sessions.by_address("10.8.0.2".parse().unwrap()).expect("session registered");
    let packet = crate::net::packet::build::with_ports([192, 168, 0, 10], [10, 8, 0, 2], 6, 80, 40000);
    handle.packets.send(packet.clone()).await.unwrap();
    let mut got = Vec::new();
    while got.is_empty() {
        phone.session.handle_timeout(phone.clock.now());
        let Some(mut message) = next_binary(&mut phone.ws).await else { panic!("closed") };
        got = phone.session.handle_message(phone.clock.now(), &mut message).unwrap().map(<[u8]>::to_vec).collect();
    }
    assert_eq!(got, vec![packet]);

    // The same invite again, from another device: refused before anything is allocated.
    let other = SecretKey::generate(&mut rand_core::OsRng);
    let refused = connect(lab.addr, &other, &invite.relay_key, Some(&invite)).await.err();
    assert_eq!(refused, Some(SessionError::Refused(Refusal::InviteUsed)));
    // An unknown device without an invite: refused.
    let refused = connect(lab.addr, &other, &invite.relay_key, None).await.err();
    assert_eq!(refused, Some(SessionError::Refused(Refusal::UnknownDevice)));

    // Reconnect with the registered key: same address; the older session is replaced.
    let mut again = connect(lab.addr, &key, &invite.relay_key, None).await.unwrap();
    assert_eq!(again.config().await.address.addr().to_string(), "10.8.0.2");
    let (events, _) = phone.read_until(|e| matches!(e, Event::Closed(_))).await.unwrap();
    assert!(events.contains(&Event::Closed(SessionEnd::PeerClosed(CloseReason::Replaced))), "{events:?}");

    // Revoke while connected: the session ends within a second, with the reason.
    let started = std::time::Instant::now();
    match lab.control(Request::Revoke { name: "phone".into() }) {
        Response::Revoked { closed_session, .. } => assert!(closed_session),
        other => panic!("{other:?}"),
    }
    let (events, _) = again.read_until(|e| matches!(e, Event::Closed(_))).await.unwrap();
    assert!(events.contains(&Event::Closed(SessionEnd::PeerClosed(CloseReason::Revoked))), "{events:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
    let refused = connect(lab.addr, &key, &invite.relay_key, None).await.err();
    assert_eq!(refused, Some(SessionError::Refused(Refusal::UnknownDevice)));
    match lab.control(Request::Clients) {
        Response::Clients { clients } => {
            assert_eq!(clients.len(), 1);
            assert!(clients[0].revoked);
            assert_eq!(clients[0].online, Some(false));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_invite_and_wrong_relay_key_are_refused() {
    let lab = start_relay(Limits::default()).await;
    let mut invite = lab.invite("laptop", 3600);
    {
        let mut store = lab.relay.store();
        store.invites.invites[0].expires = 1;
    }
    let key = SecretKey::generate(&mut rand_core::OsRng);
    let refused = connect(lab.addr, &key, &invite.relay_key, Some(&invite)).await.err();
    assert_eq!(refused, Some(SessionError::Refused(Refusal::InviteExpired)));
    // A client holding the wrong relay key cannot complete the handshake.
    invite.relay_key = SecretKey::generate(&mut rand_core::OsRng).public_key();
    assert!(connect(lab.addr, &key, &invite.relay_key, Some(&invite)).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_stalls_end_only_their_own_connection() {
    let lab = start_relay(Limits { handshake_timeout_secs: 1, ..Limits::default() }).await;
    let invite = lab.invite("tablet", 3600);

    // Random bytes as the hello.
    let mut ws = open_ws(lab.addr).await;
    ws.send(Message::Binary(vec![1u8; 100].into())).await.unwrap();
    assert!(next_binary(&mut ws).await.is_none(), "closed");
    // A text message.
    let mut ws = open_ws(lab.addr).await;
    ws.send(Message::Text("hello".into())).await.unwrap();
    assert!(next_binary(&mut ws).await.is_none(), "closed");
    // An oversized message.
    let mut ws = open_ws(lab.addr).await;
    let _ = ws.send(Message::Binary(vec![4u8; 512 * 1024].into())).await;
    assert!(next_binary(&mut ws).await.is_none(), "closed");
    // A stalled handshake is cut at the deadline.
    let mut stalled = open_ws(lab.addr).await;
    let started = std::time::Instant::now();
    assert!(next_binary(&mut stalled).await.is_none());
    assert!(started.elapsed() < Duration::from_secs(3));

    // A garbage record after a good handshake ends that session with a reason.
    let key = SecretKey::generate(&mut rand_core::OsRng);
    let mut client = connect(lab.addr, &key, &invite.relay_key, Some(&invite)).await.unwrap();
    client.config().await;
    client.ws.send(Message::Binary(vec![4u8; 64].into())).await.unwrap();
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(5), client.ws.next()).await.unwrap() {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    let close = close.expect("close frame with a reason");
    assert_eq!(u16::from(close.code), 1002);
    assert!(close.reason.contains("protocol error"), "{}", close.reason);

    // And the relay still serves: the same device reconnects.
    let mut back = connect(lab.addr, &key, &invite.relay_key, None).await.unwrap();
    assert_eq!(back.config().await.address.addr().to_string(), "10.8.0.2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_sessions_with_a_reason() {
    let lab = start_relay(Limits::default()).await;
    let invite = lab.invite("phone", 3600);
    let key = SecretKey::generate(&mut rand_core::OsRng);
    let mut phone = connect(lab.addr, &key, &invite.relay_key, Some(&invite)).await.unwrap();
    phone.config().await;
    lab._shutdown.send(true).unwrap();
    let (events, _) = phone.read_until(|e| matches!(e, Event::Closed(_))).await.unwrap();
    assert!(events.contains(&Event::Closed(SessionEnd::PeerClosed(CloseReason::Shutdown))), "{events:?}");
    for _ in 0..100 {
        if lab.relay.sessions.len() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(lab.relay.sessions.len(), 0);
    // State is kept: the client is still registered with its address.
    assert_eq!(lab.relay.store().registry.clients[0].address.to_string(), "10.8.0.2");
}

/// Many devices enrol at once from one source address; every one gets its own address, and
/// after a restart of the relay's state each gets the same one back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_devices_enrol_at_once_and_keep_their_addresses() {
    const DEVICES: usize = 60;
    let lab = start_relay(Limits::default()).await;
    let invites: Vec<Invite> = (0..DEVICES).map(|i| lab.invite(&format!("d{i}"), 3600)).collect();
    let keys: Vec<SecretKey> = (0..DEVICES).map(|_| SecretKey::generate(&mut rand_core::OsRng)).collect();
    let started = std::time::Instant::now();
    let tasks: Vec<_> = invites
        .into_iter()
        .zip(keys.iter().cloned())
        .map(|(invite, key)| {
            let addr = lab.addr;
            tokio::spawn(async move {
                let mut client = connect(addr, &key, &invite.relay_key, Some(&invite)).await.unwrap();
                let address = client.config().await.address.addr();
                (key.public_key().to_text(), address, client)
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
    // The saved leases give every key its address back.
    let dir = lab._dir.path();
    let reloaded = Store::load(dir, lab.relay.config.pool).unwrap();
    for (address, key) in &seen {
        assert_eq!(reloaded.pool.leased(key), Some(*address));
    }
}

/// Rough throughput of the relay's session driver towards one client (no tun): run with
/// `cargo test --release -p hometun-relay throughput -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn throughput_towards_one_client() {
    let lab = start_relay(Limits::default()).await;
    let invite = lab.invite("bench", 3600);
    let key = SecretKey::generate(&mut rand_core::OsRng);
    let mut client = connect(lab.addr, &key, &invite.relay_key, Some(&invite)).await.unwrap();
    client.config().await;
    let handle = lab.relay.sessions.by_address("10.8.0.2".parse().unwrap()).unwrap();
    let packet = crate::net::packet::build::ipv4([192, 168, 0, 10], [10, 8, 0, 2], 17, 0, &[7u8; 1380]);
    const PACKETS: usize = 100_000;
    let sender = tokio::spawn(async move {
        for _ in 0..PACKETS {
            if handle.packets.send(packet.clone()).await.is_err() {
                break;
            }
        }
    });
    let started = std::time::Instant::now();
    let mut received = 0usize;
    while received < PACKETS {
        let Some(mut message) = next_binary(&mut client.ws).await else { break };
        received += client.session.handle_message(client.clock.now(), &mut message).unwrap().count();
    }
    let secs = started.elapsed().as_secs_f64();
    sender.await.unwrap();
    println!("{received} packets, {:.0} Mbit/s", (received * 1400 * 8) as f64 / secs / 1e6);
}
