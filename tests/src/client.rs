//! A native hometun client for tests and benchmarks: the shared [`Connection`] (handshake,
//! session and netstack) driven over tokio-tungstenite and rustls, like the browser client
//! but in a normal process.
//!
//! The relay's self-signed certificate is trusted by pinning: the client accepts exactly the
//! certificate found in the relay's state directory and nothing else.
//!
//! ```text
//! Tunnel ─ reader task:  WebSocket → Connection::handle_message
//!        └ writer task:  Connection::handle_timeout, Connection::poll_transmit → WebSocket
//! ```
//! Users (`ping`, `tcp_connect`, `http_get`, ...) work on the connection's netstack under a
//! lock and wake the writer; every wait is bounded by a timeout.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hometun_shared::client::Connection;
use hometun_shared::control::ClientConfig;
use hometun_shared::invite::Invite;
use hometun_shared::keys::{PublicKey, SecretKey};
use hometun_shared::netstack::{self, NetStack, PingReply, TcpHandle, TcpState};
use hometun_shared::session::{self, CloseReason, ConnectionLost, Params, Session};
use hometun_shared::time::Instant;
use rand_core::OsRng;
use rustls_pki_types::CertificateDer;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::{self, Message};

pub use hometun_shared::session::End;

/// The WebSocket to the relay, after TLS.
pub type Ws = hometun_testkit::Ws;

/// What went wrong for the test client.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// TCP, TLS or the WebSocket upgrade failed, or the WebSocket broke.
    #[error("transport: {0}")]
    Transport(String),
    /// The Noise handshake failed or the relay refused (see [`session::Error::Refused`]).
    #[error("handshake: {0}")]
    Handshake(session::Error),
    /// The relay closed the WebSocket before answering the hello.
    #[error("the relay closed the connection during the handshake")]
    ClosedDuringHandshake,
    /// The tunnel ended (relay closed it, session error, transport loss).
    #[error("tunnel ended: {0}")]
    Ended(End),
    /// A netstack call failed (refused, reset, timed out, ...).
    #[error("netstack: {0}")]
    Net(netstack::Error),
    /// Waiting for something took longer than allowed.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// An HTTP response could not be parsed.
    #[error("http: {0}")]
    Http(String),
}

impl ClientError {
    /// The error for a connection that ended: a failed handshake as [`ClientError::Handshake`].
    fn ended(end: &End) -> Self {
        match end {
            End::Failed(error) if is_handshake_error(error) => Self::Handshake(error.clone()),
            other => Self::Ended(other.clone()),
        }
    }
}

fn is_handshake_error(error: &session::Error) -> bool {
    use session::Error as E;
    matches!(error, E::Refused(_) | E::HandshakeFailed | E::HandshakeTimeout | E::Malformed(_))
}

/// How the WebSocket under a tunnel was lost, in the core's terms.
fn lost(error: &tungstenite::Error) -> ConnectionLost {
    match error {
        tungstenite::Error::Io(e) => ConnectionLost::Io(e.kind()),
        _ => ConnectionLost::Dropped,
    }
}

type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Where the relay is and which certificate it must present.
#[derive(Clone, Debug)]
pub struct RelayTarget {
    /// TCP address to connect to (the router's forwarded port in the lab).
    pub addr: SocketAddr,
    /// The only certificate accepted.
    pub cert: CertificateDer<'static>,
    /// Local address to connect from (`None`: the kernel chooses).
    pub bind: Option<IpAddr>,
}

impl RelayTarget {
    /// Target at `addr` pinning the certificate in `cert_pem` (the relay's `tls-cert.pem`).
    pub fn from_cert_file(addr: SocketAddr, cert_pem: &Path) -> anyhow::Result<Self> {
        let cert = hometun_testkit::cert_from_file(cert_pem)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", cert_pem.display()))?;
        Ok(Self { addr, cert, bind: None })
    }

    /// The same target, connecting from `bind`.
    pub fn from_address(&self, bind: IpAddr) -> Self {
        Self { bind: Some(bind), ..self.clone() }
    }
}

/// A device: its static key and the relay key it trusts.
#[derive(Clone)]
pub struct Device {
    /// The device's static secret.
    pub key: Arc<SecretKey>,
    /// The relay's static public key (from the invite).
    pub relay_key: PublicKey,
}

impl Device {
    /// A new device with a fresh key that trusts the relay named in `invite`.
    pub fn new(invite: &Invite) -> Self {
        Self { key: Arc::new(SecretKey::generate(&mut OsRng)), relay_key: invite.relay_key }
    }

    /// Enrols with `invite` and returns the running tunnel (with its pushed config).
    pub async fn enrol(&self, target: &RelayTarget, invite: &Invite) -> Result<Tunnel> {
        Tunnel::open(target, self, Some(invite)).await
    }

    /// Connects an enrolled device.
    pub async fn connect(&self, target: &RelayTarget) -> Result<Tunnel> {
        Tunnel::open(target, self, None).await
    }

    /// Writes the device (its secret key, then the relay key, one per line) to `path`, readable
    /// only by its owner.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        use anyhow::Context as _;
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let text = zeroize::Zeroizing::new(format!("{}\n{}\n", self.key.to_text(), self.relay_key.to_text()));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("writing {}", path.display()))?;
        file.write_all(text.as_bytes()).with_context(|| format!("writing {}", path.display()))
    }

    /// Reads a device [`Device::save`] wrote.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let text = zeroize::Zeroizing::new(
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        );
        let mut lines = text.lines();
        let key = SecretKey::from_text(lines.next().unwrap_or_default())
            .map_err(|e| anyhow::anyhow!("device key in {}: {e}", path.display()))?;
        let relay_key = PublicKey::from_text(lines.next().unwrap_or_default())
            .map_err(|e| anyhow::anyhow!("relay key in {}: {e}", path.display()))?;
        Ok(Self { key: Arc::new(key), relay_key })
    }
}

/// Time for the core: microseconds since the first call in this process.
pub fn now() -> Instant {
    static ORIGIN: OnceLock<std::time::Instant> = OnceLock::new();
    let origin = *ORIGIN.get_or_init(std::time::Instant::now);
    Instant::from_micros(u64::try_from(origin.elapsed().as_micros()).unwrap_or(u64::MAX))
}

/// Opens TCP, TLS (pinned) and the WebSocket upgrade to `/tunnel` (see [`hometun_testkit`]).
/// Public so tests can talk raw (garbage, stalls) to the relay.
pub async fn connect_ws(target: &RelayTarget, max_message: usize) -> Result<Ws> {
    hometun_testkit::connect(target.addr, &target.cert, target.bind, max_message).await.map_err(kit_error)
}

/// What the relay's web server answered to [`https_get`].
#[derive(Debug)]
pub struct PageResponse {
    /// Status code.
    pub status: u16,
    /// Headers as (lower-case name, value).
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Vec<u8>,
}

impl PageResponse {
    /// The value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// `GET path` from the relay's web server over TLS, pinned to its certificate like the tunnel
/// (what a browser fetches for the page), bounded by `timeout`.
pub async fn https_get(target: &RelayTarget, path: &str, timeout: Duration) -> anyhow::Result<PageResponse> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fetch = async {
        let tcp = tokio::net::TcpStream::connect(target.addr).await?;
        let mut tls = tokio_rustls::TlsConnector::from(hometun_testkit::tls_config(&target.cert)?)
            .connect(rustls_pki_types::ServerName::IpAddress(target.addr.ip().into()), tcp)
            .await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", target.addr);
        tls.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        tls.read_to_end(&mut raw).await?;
        anyhow::Ok(raw)
    };
    let raw = tokio::time::timeout(timeout, fetch)
        .await
        .map_err(|_| anyhow::anyhow!("GET {path}: no answer in {timeout:?}"))??;
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(head_len) = response.parse(&raw)? else {
        anyhow::bail!("GET {path}: incomplete answer ({} bytes)", raw.len());
    };
    Ok(PageResponse {
        status: response.code.unwrap_or_default(),
        headers: response
            .headers
            .iter()
            .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).into_owned()))
            .collect(),
        body: raw[head_len..].to_vec(),
    })
}

/// Connects and runs the Noise handshake, returning the WebSocket and the fresh session
/// without starting a tunnel (tests that misbehave after the handshake start here).
pub async fn handshake(target: &RelayTarget, device: &Device, enrol: Option<&Invite>) -> Result<(Ws, Session)> {
    let attempt = async {
        let mut ws = connect_ws(target, MAX_MESSAGE).await?;
        let session =
            hometun_testkit::handshake(&mut ws, &device.key, &device.relay_key, enrol, &Params::default(), now)
                .await
                .map_err(kit_error)?;
        Ok((ws, session))
    };
    tokio::time::timeout(open_timeout(), attempt).await.map_err(|_| ClientError::Timeout("handshake"))?
}

fn kit_error(e: hometun_testkit::Error) -> ClientError {
    match e {
        hometun_testkit::Error::Handshake(e) => ClientError::Handshake(e),
        hometun_testkit::Error::ClosedDuringHandshake => ClientError::ClosedDuringHandshake,
        other => ClientError::Transport(other.to_string()),
    }
}

/// Largest WebSocket message the client accepts: the largest record the protocol makes.
const MAX_MESSAGE: usize = hometun_shared::wire::MAX_MESSAGE_LEN;
/// How long the handshake and the first pushed config may take: the core's handshake deadline.
fn open_timeout() -> Duration {
    Params::default().handshake_timeout
}

struct Shared {
    connection: Mutex<Connection>,
    /// Wakes the writer: something may be ready to send.
    kick: Notify,
    /// Bumped after every change, so waiters re-check.
    changed: watch::Sender<u64>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.connection.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The WebSocket is gone: the connection ends (unless it already had).
    fn lose(&self, lost: ConnectionLost) {
        self.lock().connection_lost(lost);
        self.bump();
        self.kick.notify_one();
    }
}

/// A running tunnel. Dropping it stops its tasks (without a close frame).
pub struct Tunnel {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Tunnel {
    async fn open(target: &RelayTarget, device: &Device, enrol: Option<&Invite>) -> Result<Self> {
        let attempt = async {
            let mut ws = connect_ws(target, MAX_MESSAGE).await?;
            let mut connection =
                Connection::connect(&device.key, &device.relay_key, enrol, &Params::default(), now(), &mut OsRng)
                    .map_err(ClientError::Handshake)?;
            let hello = connection.poll_transmit(now()).expect("a new connection starts with its hello");
            ws.send(Message::Binary(hello.into())).await.map_err(|e| ClientError::Transport(e.to_string()))?;
            while connection.handshake_rtt().is_none() {
                let mut reply: Vec<u8> = match ws.next().await {
                    Some(Ok(Message::Binary(reply))) => reply.into(),
                    Some(Ok(Message::Close(_))) | None => return Err(ClientError::ClosedDuringHandshake),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(ClientError::Transport(e.to_string())),
                };
                if let Err(error) = connection.handle_message(now(), &mut reply) {
                    return Err(ClientError::Handshake(error));
                }
            }
            Ok((ws, connection))
        };
        let (ws, connection) =
            tokio::time::timeout(open_timeout(), attempt).await.map_err(|_| ClientError::Timeout("handshake"))??;
        let tunnel = Self::start(ws, connection);
        tunnel.wait(open_timeout(), "pushed config", |c| c.config().cloned().map(Ok)).await?;
        Ok(tunnel)
    }

    fn start(ws: Ws, connection: Connection) -> Self {
        let (changed, _) = watch::channel(0u64);
        let shared = Arc::new(Shared { connection: Mutex::new(connection), kick: Notify::new(), changed });
        let (sink, stream) = ws.split();
        let reader = tokio::spawn(read_loop(shared.clone(), stream));
        let writer = tokio::spawn(write_loop(shared.clone(), sink));
        shared.kick.notify_one();
        Self { shared, tasks: vec![reader, writer] }
    }

    /// The configuration the relay pushed.
    pub fn config(&self) -> ClientConfig {
        self.shared.lock().config().cloned().expect("a tunnel exists only once configured")
    }

    /// The tunnel address the relay gave this device.
    pub fn address(&self) -> Ipv4Addr {
        self.config().address.addr()
    }

    /// How the tunnel ended, if it did.
    pub fn end(&self) -> Option<End> {
        self.shared.lock().end().cloned()
    }

    /// Session counters.
    pub fn stats(&self) -> session::Stats {
        self.shared.lock().stats()
    }

    /// Waits until the tunnel ends; `None` if it still runs after `timeout`.
    pub async fn wait_end(&self, timeout: Duration) -> Option<End> {
        let mut rx = self.shared.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            rx.borrow_and_update();
            if let Some(end) = self.end() {
                return Some(end);
            }
            if tokio::time::timeout_at(deadline, rx.changed()).await.is_err() {
                return None;
            }
        }
    }

    /// Closes the session with a close frame and waits (briefly) for it to leave.
    pub async fn disconnect(&self) {
        self.shared.lock().close(CloseReason::Normal);
        self.shared.kick.notify_one();
        let _ = self.wait_end(Duration::from_secs(2)).await;
    }

    /// Queues one raw IP packet into the tunnel, bypassing the netstack (spoofing tests).
    pub fn inject_packet(&self, packet: &[u8]) -> Result<()> {
        let result = self.shared.lock().send_packet(packet);
        self.shared.kick.notify_one();
        result.map_err(|e| match e {
            session::Error::Ended(end) => ClientError::Ended(*end),
            other => ClientError::Ended(End::Failed(other)),
        })
    }

    /// Runs `f` on the connection until it returns `Some`, re-checking after every change.
    /// Fails when the tunnel ends first or `timeout` passes.
    async fn wait<T>(
        &self,
        timeout: Duration,
        what: &'static str,
        mut f: impl FnMut(&mut Connection) -> Option<Result<T>>,
    ) -> Result<T> {
        let mut rx = self.shared.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            rx.borrow_and_update();
            {
                let mut connection = self.shared.lock();
                let result = f(&mut connection);
                let end = connection.end().cloned();
                drop(connection);
                if let Some(result) = result {
                    // `f` took or queued something (data read frees window, data sent): let
                    // the writer poll. Kicking on every unchanged check would spin with it.
                    self.shared.kick.notify_one();
                    return result;
                }
                if let Some(end) = end {
                    return Err(ClientError::ended(&end));
                }
            }
            if tokio::time::timeout_at(deadline, rx.changed()).await.is_err() {
                return Err(ClientError::Timeout(what));
            }
        }
    }

    fn with_net<T>(&self, f: impl FnOnce(&mut NetStack) -> netstack::Result<T>) -> Result<T> {
        let mut connection = self.shared.lock();
        let net = connection.net_mut().expect("netstack exists once configured");
        let result = f(net).map_err(ClientError::Net);
        drop(connection);
        self.shared.kick.notify_one();
        result
    }

    /// Waits until the relay's host list (see `docs/discovery.md`) satisfies `ready`, and
    /// returns it.
    pub async fn hosts(
        &self,
        timeout: Duration,
        mut ready: impl FnMut(&hometun_shared::control::HostList) -> bool,
    ) -> Result<hometun_shared::control::HostList> {
        self.wait(timeout, "host list", |c| c.hosts().filter(|list| ready(list)).cloned().map(Ok)).await
    }

    /// Asks the relay to wake `host` and waits for its answer (`None`: the relay did not offer
    /// waking to this device, so nothing was sent).
    pub async fn wake(
        &self,
        host: Ipv4Addr,
        timeout: Duration,
    ) -> Result<Option<hometun_shared::control::WakeOutcome>> {
        let (before, sent) = {
            let mut connection = self.shared.lock();
            let before = connection.wake_replies().0;
            (before, connection.wake(host))
        };
        if !sent {
            return Ok(None);
        }
        self.shared.kick.notify_one();
        self.wait(timeout, "wake reply", |c| match c.wake_replies() {
            (count, Some((address, outcome))) if count > before && address == host => Some(Ok(Some(outcome))),
            _ => None,
        })
        .await
    }

    /// Tells the relay this device is about to open `app` on its app name and waits for the
    /// answer (`None`: the relay does not offer app-name certificates, so nothing was sent).
    pub async fn app_cert(
        &self,
        app: hometun_shared::app_name::AppTarget,
        timeout: Duration,
    ) -> Result<Option<hometun_shared::control::AppCertOutcome>> {
        let (before, sent) = {
            let mut connection = self.shared.lock();
            let before = connection.app_cert_replies().count();
            (before, connection.app_cert(app))
        };
        if !sent {
            return Ok(None);
        }
        self.shared.kick.notify_one();
        self.wait(timeout, "app certificate reply", |c| c.app_cert_replies().since(app, before).map(|o| Ok(Some(o))))
            .await
    }

    /// Sends one ICMP echo to `dst` and waits for its reply.
    pub async fn ping(&self, dst: Ipv4Addr, seq: u16, timeout: Duration) -> Result<PingReply> {
        let t = now();
        self.with_net(|net| net.ping(dst, seq, 56, t))?;
        self.wait(timeout, "echo reply", |c| {
            let net = c.net_mut()?;
            let mut found = None;
            while let Some(reply) = net.poll_ping_reply() {
                if reply.seq == seq && reply.from == dst {
                    found = Some(reply);
                }
            }
            found.map(Ok)
        })
        .await
    }

    /// Resolves `name` through the DNS servers the relay pushed.
    pub async fn resolve(&self, name: &str, timeout: Duration) -> Result<Vec<Ipv4Addr>> {
        let query = self.with_net(|net| net.resolve(name))?;
        self.wait(timeout, "DNS answer", |c| c.net_mut()?.dns_result(query).map_err(ClientError::Net).transpose()).await
    }

    /// Opens a TCP connection through the tunnel.
    pub async fn tcp_connect(&self, remote: SocketAddrV4, timeout: Duration) -> Result<TcpConn<'_>> {
        let handle = self.with_net(|net| net.tcp_connect(remote))?;
        let conn = TcpConn { tunnel: self, handle };
        self.wait(timeout, "TCP connect", |c| match c.net()?.tcp_state(handle) {
            Ok(TcpState::Connecting) => None,
            Ok(state) if state.is_final() => {
                let error = c.net_mut()?.tcp_recv(handle, &mut []).err();
                Some(Err(ClientError::Net(error.unwrap_or(netstack::Error::TimedOut(remote)))))
            }
            Ok(_) => Some(Ok(())),
            Err(e) => Some(Err(ClientError::Net(e))),
        })
        .await?;
        Ok(conn)
    }

    /// `GET path` from `host:port` over one fresh connection; returns status and body.
    pub async fn http_get(&self, remote: SocketAddrV4, path: &str, timeout: Duration) -> Result<HttpResponse> {
        let deadline = tokio::time::Instant::now() + timeout;
        let left = || deadline.saturating_duration_since(tokio::time::Instant::now());
        let mut conn = self.tcp_connect(remote, left()).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", remote.ip());
        conn.write_all(request.as_bytes(), left()).await?;
        let mut buf = Vec::with_capacity(64 * 1024);
        let (status, content_length, head_len) = loop {
            let n = conn.read_some(&mut buf, left()).await?;
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(&buf).map_err(|e| ClientError::Http(e.to_string()))? {
                httparse::Status::Complete(len) => {
                    let content_length = response
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                        .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse::<usize>().ok());
                    break (response.code.unwrap_or(0), content_length, len);
                }
                httparse::Status::Partial if n == 0 => {
                    return Err(ClientError::Http("connection closed inside the head".into()))
                }
                httparse::Status::Partial => continue,
            }
        };
        let mut body = buf.split_off(head_len);
        match content_length {
            Some(len) => {
                body.reserve(len.saturating_sub(body.len()));
                while body.len() < len {
                    if conn.read_some(&mut body, left()).await? == 0 {
                        return Err(ClientError::Http(format!("body ended after {} of {len} bytes", body.len())));
                    }
                }
                body.truncate(len);
            }
            None => while conn.read_some(&mut body, left()).await? > 0 {},
        }
        Ok(HttpResponse { status, body })
    }
}

/// An HTTP response read by [`Tunnel::http_get`].
#[derive(Debug)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// The whole body.
    pub body: Vec<u8>,
}

/// A TCP connection through a [`Tunnel`]; released when dropped.
pub struct TcpConn<'t> {
    tunnel: &'t Tunnel,
    handle: TcpHandle,
}

impl Drop for TcpConn<'_> {
    fn drop(&mut self) {
        if let Some(net) = self.tunnel.shared.lock().net_mut() {
            let _ = net.tcp_release(self.handle);
        }
        self.tunnel.shared.kick.notify_one();
    }
}

impl TcpConn<'_> {
    /// Sends all of `data`.
    pub async fn write_all(&mut self, mut data: &[u8], timeout: Duration) -> Result<()> {
        let handle = self.handle;
        while !data.is_empty() {
            let n = self
                .tunnel
                .wait(timeout, "TCP send buffer", |c| match c.net_mut()?.tcp_send(handle, data) {
                    Ok(0) => None,
                    Ok(n) => Some(Ok(n)),
                    Err(e) => Some(Err(ClientError::Net(e))),
                })
                .await?;
            data = &data[n..];
        }
        Ok(())
    }

    /// Appends what has arrived (waiting for at least one byte) to `buf`; 0 at end of stream.
    pub async fn read_some(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize> {
        let handle = self.handle;
        let mut chunk = vec![0u8; 64 * 1024];
        let n = self
            .tunnel
            .wait(timeout, "TCP data", |c| match c.net_mut()?.tcp_recv(handle, &mut chunk) {
                Ok(0) => None,
                Ok(n) => Some(Ok(n)),
                Err(netstack::Error::EndOfStream) => Some(Ok(0)),
                Err(e) => Some(Err(ClientError::Net(e))),
            })
            .await?;
        buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Reads exactly `len` bytes.
    pub async fn read_exact(&mut self, len: usize, timeout: Duration) -> Result<Vec<u8>> {
        let mut buf = Vec::with_capacity(len);
        while buf.len() < len {
            if self.read_some(&mut buf, timeout).await? == 0 {
                return Err(ClientError::Net(netstack::Error::EndOfStream));
            }
        }
        Ok(buf)
    }

    /// Finishes sending (FIN).
    pub fn close(&mut self) -> Result<()> {
        self.tunnel.with_net(|net| net.tcp_close(self.handle))
    }
}

async fn read_loop(shared: Arc<Shared>, mut stream: futures_util::stream::SplitStream<Ws>) {
    let lost = loop {
        let mut message: Vec<u8> = match stream.next().await {
            Some(Ok(Message::Binary(data))) => data.into(),
            Some(Ok(Message::Close(frame))) => {
                let (code, reason) = frame.map_or((1005, String::new()), |f| (u16::from(f.code), f.reason.to_string()));
                break ConnectionLost::WebSocketClosed { code, reason };
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => break lost(&e),
            None => break ConnectionLost::Dropped,
        };
        // An unusable record ends the connection; the end says why.
        let ended = {
            let mut connection = shared.lock();
            let t = now();
            // The netstack takes the packets in now, so a reader waiting for them is woken
            // once, by this task, not after the writer's next turn.
            let _ = connection.handle_message(t, &mut message);
            connection.end().is_some()
        };
        // Waiters first: on a single-threaded runtime an application that answers does so
        // before the writer's turn, and its data carries the acknowledgement.
        shared.bump();
        shared.kick.notify_one();
        if ended {
            return;
        }
    };
    shared.lose(lost);
}

async fn write_loop(shared: Arc<Shared>, mut sink: futures_util::stream::SplitSink<Ws, Message>) {
    // One timer for every turn. Arming a timer that is due before the runtime's next wake-up
    // wakes the runtime once more (a write to its waker and one more poll for events), so the
    // timer is moved only when it must fire sooner; firing early costs a turn that finds
    // nothing due.
    let timer = tokio::time::sleep(Duration::from_secs(1));
    tokio::pin!(timer);
    loop {
        let (messages, wake_at, end, changed) = {
            let mut connection = shared.lock();
            let t = now();
            // A timer that fired may change what waiters see (a retransmission gave up, the
            // session ended); sending alone changes nothing they wait for.
            let mut changed = connection.poll_timeout().is_some_and(|at| at <= t);
            connection.handle_timeout(t);
            let messages: Vec<Vec<u8>> = std::iter::from_fn(|| connection.poll_transmit(t)).collect();
            // The state is read directly (config, end); the events only repeat it.
            while connection.poll_event().is_some() {
                changed = true;
            }
            (messages, connection.poll_timeout(), connection.end().cloned(), changed)
        };
        // Every message of this turn goes into one write (`send_all` flushes once, at the end).
        let mut batch = futures_util::stream::iter(messages.into_iter().map(|m| Ok(Message::Binary(m.into()))));
        if let Err(e) = sink.send_all(&mut batch).await {
            shared.lose(lost(&e));
            return;
        }
        if changed || end.is_some() {
            shared.bump();
        }
        if let Some(end) = end {
            if matches!(end, End::Closed(_)) {
                let _ = sink.close().await;
            }
            return;
        }
        let sleep = wake_at
            .map(|at| Duration::from_micros(at.as_micros().saturating_sub(now().as_micros())))
            .unwrap_or(Duration::from_secs(1))
            .clamp(Duration::from_micros(200), Duration::from_secs(1));
        let due = tokio::time::Instant::now() + sleep;
        if timer.is_elapsed() || due < timer.deadline() {
            timer.as_mut().reset(due);
        }
        tokio::select! {
            _ = shared.kick.notified() => {}
            _ = &mut timer => {}
        }
        // The turn goes behind the tasks woken with it (the WebSocket wakes its reader and
        // this writer together; the reader then wakes the application): data the
        // application answers with at once carries the acknowledgement, in one record.
        tokio::task::yield_now().await;
    }
}
