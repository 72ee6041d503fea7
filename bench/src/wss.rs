//! `wss-serve` and `wss-probe`: WebSocket over TLS alone, with no tunnel inside. The transport
//! the relay and its clients use (rustls + tungstenite on the server, the same TLS and WebSocket
//! client as the native hometun client, or Chromium's WebSocket), carrying the workload's bytes
//! as plain binary messages: no Noise records, no netstack, no tun, no LAN host. What these
//! cases move is the ceiling for any tunnel over this transport on this machine.
//!
//! The protocol, one connection per transfer:
//! - the client sends the text `get N`: the server answers N bytes in binary messages of
//!   [`CHUNK`] bytes (the size of a full tunnel record of 64 KiB super-packets), then the text
//!   `done`;
//! - the client sends the text `put N`, then N bytes in binary messages: once the server has
//!   counted N bytes it answers the text `done`;
//! - any other binary message is sent back as it came (the echo round trips).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use futures_util::{SinkExt, StreamExt};
use hometun_tests::client::{connect_ws, RelayTarget, Ws};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Bytes, Message};

use crate::proc;
use crate::workload::Outcome;

/// Bytes per binary message of a transfer.
pub(crate) const CHUNK: usize = 64 * 1024;
/// Largest message either side accepts.
const MAX_MESSAGE: usize = 1 << 20;
/// A transfer or an echo that stalls this long fails.
const STALL: Duration = Duration::from_secs(60);

/// Where `wss-serve` listens and the certificate it presents.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct ServeArgs {
    /// Listen address.
    #[arg(long)]
    pub listen: SocketAddr,
    /// Certificate chain (PEM).
    #[arg(long)]
    pub cert: PathBuf,
    /// Private key (PEM).
    #[arg(long)]
    pub key: PathBuf,
}

/// Where `wss-probe` connects and the certificate it pins.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct ProbeArgs {
    /// Server address.
    #[arg(long)]
    pub server: SocketAddr,
    /// The server's certificate (PEM), pinned.
    #[arg(long)]
    pub cert: PathBuf,
}

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default().max_message_size(Some(MAX_MESSAGE)).max_frame_size(Some(MAX_MESSAGE))
}

/// Serves the protocol above until killed, on one thread (as the relay runs by default).
pub(crate) fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let certs = CertificateDer::pem_file_iter(&args.cert)
        .with_context(|| format!("reading {}", args.cert.display()))?
        .collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(&args.key).with_context(|| format!("reading {}", args.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = TcpListener::bind(args.listen).await?;
        eprintln!("wss-serve ready on {}", args.listen);
        loop {
            let (tcp, peer) = listener.accept().await?;
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Err(e) = connection(acceptor, tcp).await {
                    eprintln!("wss-serve: {peer}: {e:#}");
                }
            });
        }
    })
}

async fn connection(acceptor: tokio_rustls::TlsAcceptor, tcp: tokio::net::TcpStream) -> anyhow::Result<()> {
    tcp.set_nodelay(true)?;
    let tls = acceptor.accept(tcp).await?;
    let mut ws = tokio_tungstenite::accept_async_with_config(tls, Some(ws_config())).await?;
    let chunk = Bytes::from(vec![0x5a; CHUNK]);
    let mut put_left = 0u64;
    while let Some(message) = ws.next().await {
        match message? {
            Message::Text(text) => match parse_command(&text)? {
                (Verb::Get, size) => {
                    let mut left = size;
                    while left > 0 {
                        let n = left.min(CHUNK as u64) as usize;
                        ws.feed(Message::Binary(chunk.slice(..n))).await?;
                        left -= n as u64;
                    }
                    ws.send(Message::text("done")).await?;
                }
                (_, 0) => ws.send(Message::text("done")).await?,
                (_, size) => put_left = size,
            },
            Message::Binary(data) if put_left > 0 => {
                put_left = put_left.saturating_sub(data.len() as u64);
                if put_left == 0 {
                    ws.send(Message::text("done")).await?;
                }
            }
            Message::Binary(data) => ws.send(Message::Binary(data)).await?,
            Message::Close(_) => break,
            _ => {}
        }
    }
    Ok(())
}

/// What a client asks for in its text message.
#[derive(Debug, PartialEq, Eq)]
enum Verb {
    /// `get N`: send N bytes.
    Get,
    /// `put N`: count N bytes.
    Put,
}

/// `get N` or `put N`.
fn parse_command(text: &str) -> anyhow::Result<(Verb, u64)> {
    let (verb, size) = text.split_once(' ').with_context(|| format!("not a command: {text:?}"))?;
    let verb = match verb {
        "get" => Verb::Get,
        "put" => Verb::Put,
        other => bail!("unknown command {other:?}"),
    };
    Ok((verb, size.parse().with_context(|| format!("bad size in {text:?}"))?))
}

async fn open(args: &ProbeArgs) -> anyhow::Result<Ws> {
    let target = RelayTarget::from_cert_file(args.server, &args.cert)?;
    Ok(connect_ws(&target, MAX_MESSAGE).await?)
}

async fn next(ws: &mut Ws) -> anyhow::Result<Message> {
    match tokio::time::timeout(STALL, ws.next()).await {
        Err(_) => bail!("nothing from the server for {} s", STALL.as_secs()),
        Ok(None) => bail!("the server closed the connection"),
        Ok(Some(message)) => Ok(message?),
    }
}

/// Downloads `size` bytes.
pub(crate) async fn get(args: &ProbeArgs, size: u64) -> anyhow::Result<Outcome> {
    let mut ws = open(args).await?;
    let cpu0 = proc::own_cpu_secs();
    let start = Instant::now();
    ws.send(Message::text(format!("get {size}"))).await?;
    let mut received = 0u64;
    loop {
        match next(&mut ws).await? {
            Message::Binary(data) => received += data.len() as u64,
            Message::Text(text) if text.as_str() == "done" => break,
            other => bail!("unexpected {other:?}"),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    ensure!(received == size, "received {received} of {size} bytes");
    let cpu_secs = Some(proc::own_cpu_secs() - cpu0);
    let _ = ws.close(None).await;
    Ok(Outcome::Transfer { bytes: size, secs, cpu_secs })
}

/// Uploads `size` bytes.
pub(crate) async fn put(args: &ProbeArgs, size: u64) -> anyhow::Result<Outcome> {
    let mut ws = open(args).await?;
    let chunk = Bytes::from(vec![0xa5; CHUNK]);
    let cpu0 = proc::own_cpu_secs();
    let start = Instant::now();
    ws.send(Message::text(format!("put {size}"))).await?;
    let mut left = size;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        ws.feed(Message::Binary(chunk.slice(..n))).await?;
        left -= n as u64;
    }
    ws.flush().await?;
    match next(&mut ws).await? {
        Message::Text(text) if text.as_str() == "done" => {}
        other => bail!("unexpected {other:?}"),
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu_secs = Some(proc::own_cpu_secs() - cpu0);
    let _ = ws.close(None).await;
    Ok(Outcome::Transfer { bytes: size, secs, cpu_secs })
}

/// `count` round trips of a one-byte message.
pub(crate) async fn echo(args: &ProbeArgs, count: u32) -> anyhow::Result<Outcome> {
    let mut ws = open(args).await?;
    let mut rtts_ms = Vec::with_capacity(count as usize);
    for i in 0..count {
        let start = Instant::now();
        ws.send(Message::Binary(Bytes::from(vec![i as u8]))).await?;
        match next(&mut ws).await? {
            Message::Binary(data) if data[..] == [i as u8] => {}
            other => bail!("echo {i} answered {other:?}"),
        }
        rtts_ms.push(start.elapsed().as_secs_f64() * 1e3);
    }
    let _ = ws.close(None).await;
    Ok(Outcome::Echo { rtts_ms })
}

#[cfg(test)]
mod tests {
    use super::{parse_command, Verb};

    #[test]
    fn commands_name_a_direction_and_a_size() {
        assert_eq!(parse_command("get 1048576").unwrap(), (Verb::Get, 1 << 20));
        assert_eq!(parse_command("put 0").unwrap(), (Verb::Put, 0));
        assert!(parse_command("get").is_err());
        assert!(parse_command("del 5").is_err());
        assert!(parse_command("put lots").is_err());
    }
}
