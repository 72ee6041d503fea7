//! The relay in this process, without a tun device: real TLS on a loopback port, real
//! WebSockets, the real protocol core on both ends. Clients reach it through
//! [`hometun_testkit`], as the end-to-end tests do.

use futures_util::{SinkExt, StreamExt};
use hometun_relay::admin::proto::{Request, Response};
use hometun_relay::config::{Config, Limits, Mode};
use hometun_relay::daemon::{limits::IpLimits, Clock, Relay};
use hometun_relay::state::store::{relay_key, Store};
use hometun_relay::web::listener::TlsListener;
use hometun_shared::control::ClientConfig;
use hometun_shared::invite::Invite;
use hometun_shared::keys::{PublicKey, SecretKey};
use hometun_shared::session::{Error as SessionError, Event, Params, Refusal, Session};
use hometun_testkit::pki_types::CertificateDer;
use hometun_testkit::tungstenite::Message;
use hometun_testkit::Ws;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How long any one wait for the relay may take.
pub(crate) const PATIENCE: Duration = Duration::from_secs(5);

/// A relay serving on a loopback port, its state in a temporary directory.
pub(crate) struct Lab {
    pub relay: Arc<Relay>,
    pub addr: SocketAddr,
    pub cert: CertificateDer<'static>,
    pub dir: tempfile::TempDir,
    pub shutdown: tokio::sync::watch::Sender<bool>,
}

impl Lab {
    /// Starts a relay with `limits` (LAN 192.168.0.0/24, pool 10.8.0.0/24, MTU 1420).
    pub(crate) async fn start(limits: Limits) -> Self {
        Self::start_with(limits, |_| {}).await
    }

    /// Starts a relay like [`Lab::start`], its configuration changed by `tweak` first. The page
    /// comes from `dir/www` once that holds an `index.html`, else from the built-in page.
    pub(crate) async fn start_with(limits: Limits, tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
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
            tun_offload: true,
            threads: 1,
            client_to_client: false,
            dns: vec![],
            extra_origins: vec![],
            control_socket: None,
            acme: Default::default(),
            discovery: Default::default(),
            limits,
        };
        tweak(&mut config);
        let (secret, _) = relay_key(dir.path(), true).unwrap();
        hometun_relay::web::tls::ensure_certificate(dir.path(), &config).unwrap();
        let tls = hometun_relay::web::tls::server_config(dir.path(), &config).unwrap();
        let cert = hometun_testkit::cert_from_file(&Config::resolve(dir.path(), &config.tls_cert)).unwrap();
        let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
        let limits = IpLimits::new(config.limits.clone());
        let store = Store::load(dir.path(), config.pool).unwrap();
        let relay = Arc::new(Relay::new(config.clone(), secret, store, limits.clone(), None, shutdown_rx));
        let tcp = tokio::net::TcpListener::bind(config.listen).await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let tls = tokio_rustls::TlsAcceptor::from(tls);
        let deadline = Duration::from_secs(config.limits.upgrade_deadline_secs);
        let listener =
            TlsListener::start(tcp, tls, limits, Duration::from_secs(2), Duration::from_secs(30), deadline).unwrap();
        let app = hometun_relay::web::router(relay.clone(), config.www.clone());
        tokio::spawn(hometun_relay::web::server::serve(listener, app, shutdown.subscribe()));
        Self { relay, addr, cert, dir, shutdown }
    }

    /// A new invite for a device called `name`, valid `ttl` seconds, for the whole LAN.
    pub(crate) fn invite(&self, name: &str, ttl: u64) -> Invite {
        let mut store = self.relay.store();
        let info = hometun_relay::state::actions::create_invite(
            &mut store,
            &self.relay.config,
            self.relay.public,
            name,
            ttl,
            None,
            false,
        )
        .unwrap();
        Invite::parse(&info.link).unwrap()
    }

    /// Asks what the admin socket would be asked.
    pub(crate) fn admin(&self, request: Request) -> Response {
        hometun_relay::admin::answer(&self.relay, request)
    }

    /// A raw WebSocket to `/tunnel`, TLS pinned to the relay's certificate.
    pub(crate) async fn open_ws(&self) -> Ws {
        hometun_testkit::connect(self.addr, &self.cert, None, 1 << 20).await.unwrap()
    }

    /// A TLS connection to the relay, pinned to its certificate.
    pub(crate) async fn tls(&self) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
        self.tls_over(tokio::net::TcpStream::connect(self.addr).await.unwrap()).await
    }

    /// TLS pinned to the relay's certificate over `tcp` (a connection to the relay).
    pub(crate) async fn tls_over(
        &self,
        tcp: tokio::net::TcpStream,
    ) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
        let name = hometun_testkit::pki_types::ServerName::IpAddress(self.addr.ip().into());
        tokio_rustls::TlsConnector::from(hometun_testkit::tls_config(&self.cert).unwrap())
            .connect(name, tcp)
            .await
            .unwrap()
    }

    /// Sends `request` (raw HTTP/1.1 bytes) over TLS pinned to the relay's certificate and
    /// returns the status code of the answer (the connection is then dropped).
    pub(crate) async fn raw_status(&self, request: &[u8]) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let exchange = async {
            let mut tls = self.tls().await;
            tls.write_all(request).await.unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n") && tls.read(&mut byte).await.unwrap() == 1 {
                head.push(byte[0]);
            }
            let line = String::from_utf8_lossy(&head).into_owned();
            line.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or_else(|| panic!("status line: {line:?}"))
        };
        tokio::time::timeout(PATIENCE, exchange).await.expect("an answer in time")
    }

    /// A WebSocket upgrade request for `/tunnel`, with `extra` header lines (each ending in CRLF).
    pub(crate) fn upgrade_request(extra: &str) -> Vec<u8> {
        format!(
            "GET /tunnel HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
        )
        .into_bytes()
    }

    /// Runs a client handshake with `key` (enrolling with `invite`, if given) against a relay
    /// whose key the client believes is `relay_key`; `Err` carries the refusal or failure.
    pub(crate) async fn connect(
        &self,
        key: &SecretKey,
        relay_key: &PublicKey,
        invite: Option<&Invite>,
    ) -> Result<Client, hometun_testkit::Error> {
        let clock = Clock::start();
        let mut ws = self.open_ws().await;
        let params = Params::default();
        let handshake = hometun_testkit::handshake(&mut ws, key, relay_key, invite, &params, || clock.now());
        let mut session = tokio::time::timeout(PATIENCE, handshake).await.expect("handshake in time")?;
        while let Some(m) = session.poll_transmit(clock.now()) {
            ws.send(Message::Binary(m.into())).await?;
        }
        Ok(Client { ws, session, clock })
    }
}

/// The refusal a connection attempt ended with (panics on success or any other failure).
pub(crate) fn refusal<T>(attempt: Result<T, hometun_testkit::Error>) -> Refusal {
    match attempt {
        Err(hometun_testkit::Error::Handshake(SessionError::Refused(refusal))) => refusal,
        Err(other) => panic!("expected a refusal, got {other}"),
        Ok(_) => panic!("expected a refusal, got a session"),
    }
}

/// Why a client stopped reading (shown by `unwrap` when a test fails).
#[derive(Debug)]
#[allow(dead_code)]
pub(crate) enum ReadEnd {
    /// The WebSocket ended (or nothing came within [`PATIENCE`]).
    Closed,
    /// The session failed.
    Session(SessionError),
}

/// Whether the WebSocket ends (closed, or broken) within `within`, whatever comes before; a
/// connection left open past it is not closed, however long its handshake deadline.
pub(crate) async fn closes_within(ws: &mut Ws, within: Duration) -> bool {
    let closed = async {
        while let Some(Ok(message)) = ws.next().await {
            if let Message::Close(_) = message {
                return;
            }
        }
    };
    tokio::time::timeout(within, closed).await.is_ok()
}

/// A client's end of one session.
pub(crate) struct Client {
    pub ws: Ws,
    pub session: Session,
    pub clock: Clock,
}

/// The next binary message, or `None` when the WebSocket ends or nothing comes in time.
pub(crate) async fn next_binary(ws: &mut Ws) -> Option<Vec<u8>> {
    loop {
        match tokio::time::timeout(PATIENCE, ws.next()).await.ok()?? {
            Ok(Message::Binary(b)) => return Some(b.to_vec()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

impl Client {
    /// Reads records until `want` says stop; returns the events and packets seen.
    pub(crate) async fn read_until(
        &mut self,
        mut want: impl FnMut(&Event) -> bool,
    ) -> Result<(Vec<Event>, Vec<Vec<u8>>), ReadEnd> {
        let mut events = Vec::new();
        let mut packets = Vec::new();
        loop {
            let Some(mut message) = next_binary(&mut self.ws).await else {
                return Err(ReadEnd::Closed);
            };
            let got = match self.session.handle_message(self.clock.now(), &mut message) {
                Ok(p) => p.map(<[u8]>::to_vec).collect::<Vec<_>>(),
                Err(e) => {
                    while let Some(ev) = self.session.poll_event() {
                        events.push(ev);
                    }
                    if events.iter().any(&mut want) {
                        return Ok((events, packets));
                    }
                    return Err(ReadEnd::Session(e));
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

    /// Waits for the pushed configuration.
    pub(crate) async fn config(&mut self) -> ClientConfig {
        let (events, _) = self.read_until(|e| matches!(e, Event::Config(_))).await.unwrap();
        events.into_iter().find_map(|e| if let Event::Config(c) = e { Some(c) } else { None }).unwrap()
    }
}
