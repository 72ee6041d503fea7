//! A TCP connection through the tunnel, as an async stream of byte chunks.

use std::net::SocketAddrV4;
use std::time::Duration;

use hometun_shared::netstack::{Error as NetError, TcpHandle, TcpState};

use super::{host, with_net};
use crate::driver::{errors, wait, Tunnel};
use crate::error::ClientError;

/// How long connecting may take (the netstack gives up on its own a little earlier).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(12);
/// Largest chunk one read returns.
pub const READ_CHUNK: usize = 256 * 1024;

/// An open connection. Dropping it releases the handle (the netstack closes it gracefully).
pub struct TcpStream {
    tunnel: Tunnel,
    handle: TcpHandle,
    host: String,
    port: u16,
}

impl TcpStream {
    /// Connects to `host:port` (a name is looked up first). Fails with
    /// [`ClientError::ConnectionRefused`], [`ClientError::HostUnreachable`] or
    /// [`ClientError::Timeout`].
    pub async fn connect(tunnel: &Tunnel, host: &str, port: u16) -> Result<Self, ClientError> {
        if port == 0 {
            return Err(ClientError::InvalidArgument("port 0".into()));
        }
        let address = host::address_of(tunnel, host).await?;
        let handle = {
            let mut link = tunnel.link().borrow_mut();
            with_net(&mut link, |net| net.tcp_connect(SocketAddrV4::new(address, port)))?
                .map_err(|e| errors::net_error(e, host))?
        };
        let stream = Self { tunnel: tunnel.clone(), handle, host: host.to_owned(), port };
        tunnel.kick();
        let outcome = wait::until(tunnel.link(), Some(CONNECT_TIMEOUT), |link| {
            match with_net(link, |net| net.tcp_state(handle)) {
                Err(e) => Some(Err(e)),
                Ok(Ok(TcpState::Connecting)) => None,
                Ok(Ok(TcpState::Established | TcpState::PeerClosed)) => Some(Ok(())),
                Ok(Ok(state)) => Some(Err(stream.state_error(state))),
                Ok(Err(e)) => Some(Err(errors::net_error(e, host))),
            }
        })
        .await;
        match outcome {
            Some(Ok(())) => Ok(stream),
            Some(Err(e)) => Err(e),
            None => Err(ClientError::Timeout {
                what: format!("connecting to {host}:{port}"),
                after_ms: CONNECT_TIMEOUT.as_millis() as u64,
            }),
        }
    }

    fn state_error(&self, state: TcpState) -> ClientError {
        match state {
            TcpState::Refused => ClientError::ConnectionRefused { host: self.host.clone(), port: self.port },
            TcpState::TimedOut => ClientError::Timeout {
                what: format!("the connection to {}:{}", self.host, self.port),
                after_ms: CONNECT_TIMEOUT.as_millis() as u64,
            },
            _ => ClientError::ConnectionReset { host: self.host.clone(), port: self.port },
        }
    }

    fn error(&self, e: NetError) -> ClientError {
        errors::net_error(e, &self.host)
    }

    /// `host:port` as given.
    pub fn peer(&self) -> (String, u16) {
        (self.host.clone(), self.port)
    }

    /// Sends all of `data`, waiting for room in the send buffer as needed.
    pub async fn write_all(&self, data: &[u8]) -> Result<(), ClientError> {
        let mut sent = 0;
        while sent < data.len() {
            let n = {
                let mut link = self.tunnel.link().borrow_mut();
                with_net(&mut link, |net| net.tcp_send(self.handle, &data[sent..]))?.map_err(|e| self.error(e))?
            };
            sent += n;
            self.tunnel.kick();
            if sent < data.len() {
                wait::until(self.tunnel.link(), None, |link| {
                    match with_net(link, |net| net.tcp_send_capacity(self.handle)) {
                        Ok(Ok(0)) => None,
                        _ => Some(()),
                    }
                })
                .await;
            }
        }
        Ok(())
    }

    /// The next received bytes; `Ok(None)` once the peer closed and everything was read.
    pub async fn read(&self) -> Result<Option<Vec<u8>>, ClientError> {
        let outcome = wait::until(self.tunnel.link(), None, |link| {
            // Nothing is allocated while nothing waits (an upload's watch for its answer looks
            // on every turn of the tunnel).
            let mut buf = Vec::new();
            let result = with_net(link, |net| {
                buf.reserve_exact(net.tcp_recv_queue(self.handle)?.min(READ_CHUNK));
                net.tcp_recv_append(self.handle, &mut buf, READ_CHUNK)
            });
            match result {
                Err(e) => Some(Err(e)),
                Ok(Ok(0)) => None,
                Ok(Ok(_)) => Some(Ok(Some(buf))),
                Ok(Err(NetError::EndOfStream)) => Some(Ok(None)),
                Ok(Err(e)) => Some(Err(self.error(e))),
            }
        })
        .await;
        // Reading opened the receive window: let the pump tell the peer.
        self.tunnel.kick();
        outcome.unwrap_or(Ok(None))
    }

    /// Finishes sending (FIN); reading goes on until the peer closes.
    pub fn close(&self) {
        let _ = with_net(&mut self.tunnel.link().borrow_mut(), |net| net.tcp_close(self.handle));
        self.tunnel.kick();
    }

    /// Drops the connection at once (RST).
    pub fn abort(&self) {
        let _ = with_net(&mut self.tunnel.link().borrow_mut(), |net| net.tcp_abort(self.handle));
        self.tunnel.kick();
    }
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        if let Ok(mut link) = self.tunnel.link().try_borrow_mut() {
            let _ = with_net(&mut link, |net| net.tcp_release(self.handle));
        }
        self.tunnel.kick();
    }
}
