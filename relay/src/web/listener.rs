//! The TLS listener: accepts TCP, applies per-source-IP limits, runs TLS handshakes in their
//! own tasks under a deadline (a stalled handshake delays no one; a connection takes a
//! handshake slot only once its ClientHello has arrived, within a short deadline of its own),
//! and hands finished connections to the HTTP server. A connection that has not become a tunnel
//! (WebSocket upgrade) by an absolute deadline from accept is cut, however slowly it keeps
//! sending or reading, and so is one on which no byte moved either way for the idle timeout.

use crate::daemon::limits::{ConnectionSlot, IpLimits};
use crate::daemon::LogLimiter;
use axum::serve::Listener;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;

/// A TLS connection that holds its per-IP connection slot until dropped. Reads and writes that
/// wait fail after `idle` without any byte moved either way (slow or silent HTTP clients; tunnel
/// clients send keepalives well within it). Until [`Upgraded::mark`] is called for it, they also
/// fail at an absolute deadline from accept (a peer trickling a byte now and then is cut too).
/// Both are checked on the write side as well: a peer that stops reading an answer while more
/// requests wait behind it gets no further read from the HTTP server, and would otherwise hold
/// its place for as long as its TCP stack answers. From [`Upgraded::mark`] until
/// [`Upgraded::authenticate`], reads fail past [`PRE_SESSION_BYTES`].
pub struct TlsConnection {
    stream: TlsStream<TcpStream>,
    _slot: ConnectionSlot,
    idle: Duration,
    /// Fires at the idle limit counted from some earlier moment; when it does, it is moved on to
    /// `last_moved + idle` unless that has passed too (no timer update per byte moved).
    idle_timer: Pin<Box<tokio::time::Sleep>>,
    last_moved: tokio::time::Instant,
    deadline: Pin<Box<tokio::time::Sleep>>,
    upgraded: Upgraded,
    /// Bytes read since the connection asked for the tunnel, while not yet authenticated.
    pre_session: usize,
}

impl TlsConnection {
    /// This connection's upgrade flag.
    pub fn upgraded(&self) -> Upgraded {
        self.upgraded.clone()
    }
}

/// Most bytes a tunnel connection may send between its upgrade request and the relay's
/// acceptance of its hello: the hello ([`MAX_HANDSHAKE_LEN`]) in one WebSocket frame, with
/// room for a ping or a close. The WebSocket's message limit is for sessions; without this a
/// stranger could make the relay hold a message that large per connection before saying who
/// it is.
///
/// [`MAX_HANDSHAKE_LEN`]: hometun_shared::handshake::MAX_HANDSHAKE_LEN
pub const PRE_SESSION_BYTES: usize = 4096;

/// How far a connection has come (shared by the connection and its request handlers): a page
/// connection, a tunnel before its hello was accepted, or an authenticated tunnel.
#[derive(Clone, Debug, Default)]
pub struct Upgraded(Arc<AtomicU8>);

const TUNNEL: u8 = 1;
const AUTHENTICATED: u8 = 2;

impl Upgraded {
    /// The connection is becoming a tunnel: the deadline from accept no longer applies, and
    /// [`PRE_SESSION_BYTES`] does until [`Upgraded::authenticate`].
    pub fn mark(&self) {
        self.0.fetch_max(TUNNEL, Ordering::Relaxed);
    }

    /// The tunnel's hello was accepted: the WebSocket's own limits apply from now.
    pub fn authenticate(&self) {
        self.0.store(AUTHENTICATED, Ordering::Relaxed);
    }

    fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed) >= TUNNEL
    }

    fn before_session(&self) -> bool {
        self.0.load(Ordering::Relaxed) == TUNNEL
    }
}

/// Longest wait for a connection's whole ClientHello, from accept (within the handshake
/// timeout): sockets that connect and send nothing (or trickle) are cut this soon. A browser
/// sends its ClientHello with the connection's first packet. Such a socket holds a handshake
/// place from accept (so a source's silent sockets stay within its 64 places and the relay's
/// descriptors stay bounded), and when every place is taken a newcomer from a source holding
/// fewer takes the busiest source's oldest: silent sockets cannot lock real devices out.
pub const CLIENT_HELLO_DEADLINE: Duration = Duration::from_secs(3);

/// Connections the kernel completes and holds for the accept loop (it caps this at
/// `net.core.somaxconn`). tokio's `TcpListener::bind` asks for 128: when devices connect by
/// the hundred while the relay is busy with TLS handshakes, the queue overflowed, the kernel
/// dropped the handshakes' last packets, and those devices waited a second for the
/// retransmission.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Listens on `addr` for devices, with [`LISTEN_BACKLOG`].
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Listener of finished TLS connections.
pub struct TlsListener {
    incoming: mpsc::Receiver<(TlsConnection, SocketAddr)>,
    local: SocketAddr,
}

/// The remote address of a connection and its upgrade flag (axum `ConnectInfo`).
#[derive(Clone, Debug)]
pub struct Remote(pub SocketAddr, pub Upgraded);

impl TlsListener {
    /// Starts accepting on `tcp`. Connections not upgraded to a tunnel `upgrade_deadline` after
    /// accept are cut.
    pub fn start(
        tcp: TcpListener,
        acceptor: impl Into<crate::acme::accept::Acceptor>,
        limits: IpLimits,
        handshake_timeout: Duration,
        idle_timeout: Duration,
        upgrade_deadline: Duration,
    ) -> io::Result<Self> {
        let acceptor = acceptor.into();
        let local = tcp.local_addr()?;
        let (tx, incoming) = mpsc::channel(64);
        let log_limit = Arc::new(LogLimiter::new(5));
        tokio::spawn(async move {
            loop {
                let (stream, remote) = match tcp.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let now = std::time::Instant::now();
                let deadline = tokio::time::Instant::now() + upgrade_deadline;
                let slot = match limits.connect(remote.ip(), now) {
                    Ok(slot) => slot,
                    Err(why) => {
                        if log_limit.allow(crate::state::unix_now()).is_some() {
                            tracing::info!(%remote, "connection refused: connection limit ({why:?})");
                        }
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let (acceptor, limits, log_limit, tx) =
                    (acceptor.clone(), limits.clone(), log_limit.clone(), tx.clone());
                tokio::spawn(async move {
                    let handshake_end = tokio::time::Instant::now() + handshake_timeout;
                    let hello_by = (tokio::time::Instant::now() + CLIENT_HELLO_DEADLINE).min(handshake_end);
                    let mut handshake = match limits.handshake(remote.ip()) {
                        Ok(handshake) => handshake,
                        Err(why) => {
                            if log_limit.allow(crate::state::unix_now()).is_some() {
                                tracing::info!(%remote, "connection refused: too many handshakes ({why:?})");
                            }
                            return;
                        }
                    };
                    let start = tokio::select! {
                        read = tokio::time::timeout_at(hello_by, acceptor.read_hello(stream)) => match read {
                            Ok(Ok(start)) => start,
                            Ok(Err(e)) => return tracing::debug!(%remote, "TLS handshake failed: {e}"),
                            Err(_) => return tracing::debug!(%remote, "no ClientHello in time"),
                        },
                        () = handshake.evicted() => {
                            return tracing::debug!(%remote, "TLS handshake ended: its slot went to another source");
                        }
                    };
                    let finished = tokio::select! {
                        finished = tokio::time::timeout_at(handshake_end, acceptor.finish(start)) => finished,
                        () = handshake.evicted() => {
                            return tracing::debug!(%remote, "TLS handshake ended: its slot went to another source");
                        }
                    };
                    match finished {
                        Ok(Ok(None)) => {}
                        Ok(Ok(Some(tls))) => {
                            drop(handshake);
                            let connection = TlsConnection {
                                stream: tls,
                                _slot: slot,
                                idle: idle_timeout,
                                idle_timer: Box::pin(tokio::time::sleep(idle_timeout)),
                                last_moved: tokio::time::Instant::now(),
                                deadline: Box::pin(tokio::time::sleep_until(deadline)),
                                upgraded: Upgraded::default(),
                                pre_session: 0,
                            };
                            let _ = tx.send((connection, remote)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%remote, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self { incoming, local })
    }
}

impl Listener for TlsListener {
    type Io = TlsConnection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.incoming.recv().await {
            Some(connection) => connection,
            // The accept task never ends while the listener lives.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

impl TlsConnection {
    /// Why a connection whose read or write waits is cut now, if it is (see the type's docs);
    /// otherwise both timers will wake `cx`.
    fn expired(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        if !self.upgraded.is_set() && self.deadline.as_mut().poll(cx).is_ready() {
            return Some(io::Error::new(io::ErrorKind::TimedOut, "no tunnel by the deadline"));
        }
        while self.idle_timer.as_mut().poll(cx).is_ready() {
            let next = self.last_moved + self.idle;
            if next <= tokio::time::Instant::now() {
                return Some(io::Error::new(io::ErrorKind::TimedOut, "peer idle too long"));
            }
            self.idle_timer.as_mut().reset(next);
        }
        None
    }

    /// A write's outcome, cut when it waits past a limit.
    fn wrote<T>(&mut self, cx: &mut Context<'_>, result: Poll<io::Result<T>>, moved: bool) -> Poll<io::Result<T>> {
        match result {
            Poll::Pending => match self.expired(cx) {
                Some(e) => Poll::Ready(Err(e)),
                None => Poll::Pending,
            },
            Poll::Ready(Ok(value)) => {
                if moved {
                    self.last_moved = tokio::time::Instant::now();
                }
                Poll::Ready(Ok(value))
            }
            ready => ready,
        }
    }
}

impl AsyncRead for TlsConnection {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if !self.upgraded.is_set() && self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "no tunnel by the deadline")));
        }
        let before = buf.filled().len();
        match Pin::new(&mut self.stream).poll_read(cx, buf) {
            Poll::Ready(result) => {
                let read = buf.filled().len() - before;
                if read > 0 {
                    self.last_moved = tokio::time::Instant::now();
                }
                if self.upgraded.before_session() {
                    self.pre_session += read;
                    if self.pre_session > PRE_SESSION_BYTES {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "too much before the hello",
                        )));
                    }
                }
                Poll::Ready(result)
            }
            Poll::Pending => match self.expired(cx) {
                Some(e) => Poll::Ready(Err(e)),
                None => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write(cx, buf);
        let moved = !buf.is_empty();
        self.wrote(cx, result, moved)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        let moved = bufs.iter().any(|b| !b.is_empty());
        self.wrote(cx, result, moved)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.stream).poll_flush(cx);
        self.wrote(cx, result, true)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_of_devices_connecting_at_once_waits_in_the_queue_not_for_a_retransmission() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        // Nothing accepts while they connect, as when the relay is busy with handshakes. (The
        // kernel holds no more than `net.core.somaxconn`, 4096 unless lowered.)
        let somaxconn =
            std::fs::read_to_string("/proc/sys/net/core/somaxconn").ok().and_then(|s| s.trim().parse().ok());
        let burst = somaxconn.unwrap_or(4096).min(300);
        let connects: Vec<_> = (0..burst)
            .map(|_| tokio::spawn(tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(addr))))
            .collect();
        let mut connected = Vec::new();
        for connect in connects {
            if let Ok(Ok(Ok(stream))) = connect.await {
                connected.push(stream);
            }
        }
        assert_eq!(connected.len(), burst, "connections the kernel did not take within 500 ms");
        for _ in 0..burst {
            let accepted = tokio::time::timeout(Duration::from_millis(500), listener.accept()).await;
            assert!(matches!(accepted, Ok(Ok(_))), "a connection the kernel took was not there to accept");
        }
    }
}
