//! TLS over a tunnel TCP connection, for home web apps that the LAN host serves over `https://`
//! itself (a NAS, Proxmox, a UniFi controller, usually with a self-signed certificate).
//!
//! The TLS session runs in the TLS module (`web::tls`); this file moves its bytes over the
//! [`TcpStream`]. Records are written in the order the session made them: every write takes
//! the write turn first, so a reader answering the host (an alert, a key update) and a writer
//! never interleave their bytes. Trust is not decided here: [`TlsStream::connect`] returns the
//! certificate's fingerprint and the caller checks it before sending anything.

use std::cell::Cell;
use std::net::SocketAddrV4;
use std::rc::Rc;
use std::time::Duration;

use super::tcp::TcpStream;
use crate::driver::Tunnel;
use crate::error::ClientError;
use crate::signal::Signal;
use crate::web::timer::Timer;
use crate::web::tls::{self, TlsClient};

/// How long the TLS handshake may take once TCP is connected.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(12);

/// A TLS connection to a LAN host, handshake done.
pub struct TlsStream {
    tcp: Rc<TcpStream>,
    session: TlsClient,
    origin: String,
    writing: Cell<bool>,
    turn: Signal,
}

/// What the host showed in the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// SHA-256 of the host's certificate (DER), as colon-separated upper-case hex.
    pub fingerprint: String,
    /// `TLSv1.3` or `TLSv1.2`.
    pub protocol: String,
}

impl TlsStream {
    /// Connects to `addr` and runs the TLS handshake (at most [`HANDSHAKE_TIMEOUT`]).
    pub async fn connect(tunnel: &Tunnel, addr: SocketAddrV4) -> Result<(Self, Handshake), ClientError> {
        let tcp = Rc::new(TcpStream::connect(tunnel, &addr.ip().to_string(), addr.port()).await?);
        let origin = format!("https://{addr}");
        let fail = |message: String| ClientError::Tls { origin: origin.clone(), message };
        let session =
            tls::client(&addr.ip().to_string()).await.map_err(|e| fail(format!("the TLS module did not load: {e}")))?;
        let stream = Self { tcp, session, origin: origin.clone(), writing: Cell::new(false), turn: Signal::default() };
        let timed_out = Rc::new(Cell::new(false));
        let _deadline = {
            let (tcp, timed_out) = (stream.tcp.clone(), timed_out.clone());
            Timer::once(HANDSHAKE_TIMEOUT, move || {
                timed_out.set(true);
                tcp.abort();
            })
        };
        match stream.handshake().await {
            Ok(handshake) => Ok((stream, handshake)),
            Err(_) if timed_out.get() => Err(ClientError::Timeout {
                what: format!("the TLS handshake with {origin}"),
                after_ms: HANDSHAKE_TIMEOUT.as_millis() as u64,
            }),
            Err(e) => Err(e),
        }
    }

    async fn handshake(&self) -> Result<Handshake, ClientError> {
        while self.session.is_handshaking() {
            self.flush().await?;
            if !self.session.is_handshaking() {
                break;
            }
            match self.tcp.read().await? {
                Some(bytes) => self.session.receive(&bytes).map_err(|e| self.error(&e))?,
                None => return Err(self.failed("the host closed the connection during the TLS handshake")),
            }
        }
        self.flush().await?;
        let fingerprint =
            self.session.peer_certificate_sha256().ok_or_else(|| self.failed("the host showed no certificate"))?;
        Ok(Handshake { fingerprint, protocol: self.session.protocol().unwrap_or_default() })
    }

    fn error(&self, e: &wasm_bindgen::JsValue) -> ClientError {
        self.failed(&tls::message(e))
    }

    fn failed(&self, message: &str) -> ClientError {
        ClientError::Tls { origin: self.origin.clone(), message: message.to_owned() }
    }

    /// Writes what the session has made, in order (one writer at a time).
    async fn flush(&self) -> Result<(), ClientError> {
        self.turn.until(|| (!self.writing.replace(true)).then_some(())).await;
        // Gives the turn back also when this future is dropped half-way (a cancelled request).
        let _turn = Turn(self);
        let bytes = self.session.take_outgoing();
        if bytes.is_empty() {
            Ok(())
        } else {
            self.tcp.write_all(&bytes).await
        }
    }

    /// Sends all of `data` (encrypted), waiting for room as [`TcpStream::write_all`] does.
    pub async fn write_all(&self, data: &[u8]) -> Result<(), ClientError> {
        for piece in data.chunks(super::tcp::READ_CHUNK) {
            self.session.send(piece).map_err(|e| self.error(&e))?;
            self.flush().await?;
        }
        Ok(())
    }

    /// The next decrypted bytes; `Ok(None)` once the host closed TLS (or TCP) and all was read.
    pub async fn read(&self) -> Result<Option<Vec<u8>>, ClientError> {
        loop {
            let plaintext = self.session.take_plaintext();
            if !plaintext.is_empty() {
                return Ok(Some(plaintext));
            }
            if self.session.peer_closed() {
                return Ok(None);
            }
            match self.tcp.read().await? {
                Some(bytes) => {
                    self.session.receive(&bytes).map_err(|e| self.error(&e))?;
                    // The session may have answered (an alert, a key update).
                    self.flush().await?;
                }
                None => return Ok(None),
            }
        }
    }

    /// Finishes sending: close_notify, then FIN.
    pub fn close(&self) {
        self.session.close();
        let bytes = self.session.take_outgoing();
        let tcp = self.tcp.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let _ = tcp.write_all(&bytes).await;
            tcp.close();
        });
    }

    /// Drops the connection at once (RST).
    pub fn abort(&self) {
        self.tcp.abort();
    }
}

/// The write turn of a [`TlsStream`], held while its records are written.
struct Turn<'a>(&'a TlsStream);

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.writing.set(false);
        self.0.turn.notify();
    }
}

impl Drop for TlsStream {
    fn drop(&mut self) {
        self.session.free();
    }
}
