//! The connection an app's requests ride: plain TCP for `http://` apps, TLS over TCP for
//! `https://` ones, whose certificate must be the one pinned for the host (see
//! [`crate::apps::pins`]); the pins live in the tunnel origin's `localStorage`.

use std::net::SocketAddrV4;

use hometun_shared::app_name::AppTarget;

use crate::api::tunnel;
use crate::apps::pins::{Pins, Verdict};
use crate::error::ClientError;
use crate::lan::tcp::TcpStream;
use crate::lan::tls::{Handshake, TlsStream};
use crate::web::local_storage;

/// The `localStorage` key of the pins.
const PINS_KEY: &str = "hometun.tls.pins";

/// An open connection to an app's LAN host.
pub enum LanStream {
    /// `http://`.
    Plain(TcpStream),
    /// `https://`, with the pinned certificate.
    Tls(TlsStream),
}

impl LanStream {
    /// Connects to `target`; for HTTPS, refuses a certificate that is not the pinned one
    /// (before any request byte is sent).
    pub async fn connect(target: AppTarget) -> Result<Self, ClientError> {
        let addr = target.addr;
        if !target.tls {
            return Ok(Self::Plain(TcpStream::connect(&tunnel(), &addr.ip().to_string(), addr.port()).await?));
        }
        let (stream, handshake) = TlsStream::connect(&tunnel(), addr).await?;
        let origin = target.lan_origin();
        match pins().check(addr, &handshake.fingerprint) {
            Verdict::Trusted => Ok(Self::Tls(stream)),
            Verdict::New => {
                stream.abort();
                Err(ClientError::AppCertificateNew { origin, fingerprint: handshake.fingerprint })
            }
            Verdict::Changed(pinned) => {
                stream.abort();
                Err(ClientError::AppCertificateChanged { origin, pinned, shown: handshake.fingerprint })
            }
        }
    }

    /// Sends all of `data`.
    pub async fn write_all(&self, data: &[u8]) -> Result<(), ClientError> {
        match self {
            Self::Plain(s) => s.write_all(data).await,
            Self::Tls(s) => s.write_all(data).await,
        }
    }

    /// The next received bytes; `Ok(None)` at the end.
    pub async fn read(&self) -> Result<Option<Vec<u8>>, ClientError> {
        match self {
            Self::Plain(s) => s.read().await,
            Self::Tls(s) => s.read().await,
        }
    }

    /// Finishes sending.
    pub fn close(&self) {
        match self {
            Self::Plain(s) => s.close(),
            Self::Tls(s) => s.close(),
        }
    }

    /// Drops the connection at once.
    pub fn abort(&self) {
        match self {
            Self::Plain(s) => s.abort(),
            Self::Tls(s) => s.abort(),
        }
    }
}

/// What the HTTPS host at `addr` shows, and how that compares with its pin: connects, runs the
/// handshake and closes (nothing is sent inside TLS).
pub async fn inspect(addr: SocketAddrV4) -> Result<(Handshake, Verdict), ClientError> {
    let (stream, handshake) = TlsStream::connect(&tunnel(), addr).await?;
    stream.close();
    let verdict = pins().check(addr, &handshake.fingerprint);
    Ok((handshake, verdict))
}

/// Pins `fingerprint` for `addr`.
pub fn trust(addr: SocketAddrV4, fingerprint: &str) -> Result<(), ClientError> {
    let mut pins = pins();
    pins.trust(addr, fingerprint).map_err(|e| ClientError::InvalidArgument(e.into()))?;
    save(&pins)
}

/// Forgets `addr`'s pin; whether there was one.
pub fn forget(addr: SocketAddrV4) -> Result<bool, ClientError> {
    let mut pins = pins();
    let had = pins.forget(addr);
    save(&pins)?;
    Ok(had)
}

/// The saved pins (read each time: another launcher tab may have trusted one meanwhile).
fn pins() -> Pins {
    local_storage()
        .and_then(|s| s.get_item(PINS_KEY).ok().flatten())
        .map(|json| Pins::from_json(&json))
        .unwrap_or_default()
}

fn save(pins: &Pins) -> Result<(), ClientError> {
    let storage = local_storage().ok_or_else(|| ClientError::Storage("localStorage is not available".into()))?;
    storage
        .set_item(PINS_KEY, &pins.to_json())
        .map_err(|_| ClientError::Storage("localStorage refused the pins".into()))
}
