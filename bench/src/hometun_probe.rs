//! `hometun-bench hometun-probe`: the workload through the native hometun client (the shared
//! session and netstack over WebSocket/TLS, from `hometun-tests`), run on the remote device.
//! The client is itself the tunnel's near end, so its CPU time during the transfer is reported.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::ensure;
use hometun_shared::invite::Invite;
use hometun_tests::client::{Device, RelayTarget, Tunnel};

use crate::pattern;
use crate::proc;
use crate::workload::{self, Outcome};

const TIMEOUT: Duration = Duration::from_secs(60);

/// Where the relay is and which device to be.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct Connect {
    /// Relay address.
    #[arg(long)]
    pub relay: SocketAddr,
    /// The relay's certificate (PEM), pinned.
    #[arg(long)]
    pub cert: PathBuf,
    /// Device file (written after enrolling with `--invite`, read otherwise).
    #[arg(long)]
    pub device: PathBuf,
    /// Enrol with this invite link first.
    #[arg(long)]
    pub invite: Option<String>,
}

/// Opens the tunnel (enrolling first when an invite is given).
pub(crate) async fn open(args: &Connect) -> anyhow::Result<Tunnel> {
    let target = RelayTarget::from_cert_file(args.relay, &args.cert)?;
    Ok(match &args.invite {
        Some(link) => {
            let invite = Invite::parse(link).map_err(|e| anyhow::anyhow!("invite: {e}"))?;
            let device = Device::new(&invite);
            let tunnel = device.enrol(&target, &invite).await?;
            device.save(&args.device)?;
            tunnel
        }
        None => Device::load(&args.device)?.connect(&target).await?,
    })
}

/// GET `size` bytes from the LAN host through the tunnel, checking every byte.
pub(crate) async fn get(tunnel: &Tunnel, size: u64) -> anyhow::Result<Outcome> {
    let cpu0 = proc::own_cpu_secs();
    let start = Instant::now();
    let mut conn = tunnel.tcp_connect(workload::http_addr(), TIMEOUT).await?;
    conn.write_all(workload::get_request(size).as_bytes(), TIMEOUT).await?;
    let mut buf = Vec::with_capacity(256 * 1024);
    let head = loop {
        let n = conn.read_some(&mut buf, TIMEOUT).await?;
        ensure!(n > 0, "connection closed inside the response head");
        if let Some(head) = workload::parse_response_head(&buf)? {
            break head;
        }
    };
    ensure!(head.status == 200 && head.content_length == Some(size), "GET answered {head:?}");
    let mut received = (buf.len() - head.head_len) as u64;
    check(0, &buf[head.head_len..])?;
    while received < size {
        buf.clear();
        let n = conn.read_some(&mut buf, TIMEOUT).await?;
        ensure!(n > 0, "body ended after {received} of {size} bytes");
        check(received, &buf)?;
        received += n as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(Outcome::Transfer { bytes: size, secs, cpu_secs: Some(proc::own_cpu_secs() - cpu0) })
}

/// POST `size` bytes to the LAN host's sink through the tunnel.
pub(crate) async fn put(tunnel: &Tunnel, size: u64) -> anyhow::Result<Outcome> {
    let cpu0 = proc::own_cpu_secs();
    let start = Instant::now();
    let mut conn = tunnel.tcp_connect(workload::http_addr(), TIMEOUT).await?;
    conn.write_all(workload::post_request(size).as_bytes(), TIMEOUT).await?;
    let mut sent = 0u64;
    while sent < size {
        let part = pattern::slice_at(sent, (size - sent).min(pattern::BLOCK as u64) as usize);
        conn.write_all(part, TIMEOUT).await?;
        sent += part.len() as u64;
    }
    let mut reply = Vec::new();
    let head = loop {
        let n = conn.read_some(&mut reply, TIMEOUT).await?;
        if let Some(head) = workload::parse_response_head(&reply)? {
            break head;
        }
        ensure!(n > 0, "no response to the upload");
    };
    ensure!(head.status == 200, "POST answered {}", head.status);
    let secs = start.elapsed().as_secs_f64();
    Ok(Outcome::Transfer { bytes: size, secs, cpu_secs: Some(proc::own_cpu_secs() - cpu0) })
}

/// `count` round trips of one byte over one connection through the tunnel.
pub(crate) async fn echo(tunnel: &Tunnel, count: u32) -> anyhow::Result<Outcome> {
    let mut conn = tunnel.tcp_connect(workload::echo_addr(), TIMEOUT).await?;
    let mut rtts_ms = Vec::with_capacity(count as usize);
    for i in 0..count {
        let start = Instant::now();
        conn.write_all(&[i as u8], TIMEOUT).await?;
        let got = conn.read_exact(1, TIMEOUT).await?;
        rtts_ms.push(start.elapsed().as_secs_f64() * 1e3);
        ensure!(got == [i as u8], "echo returned a different byte");
    }
    Ok(Outcome::Echo { rtts_ms })
}

/// Echoes on one connection while a GET of `size` bytes runs on another through the same
/// tunnel (see [`crate::Work::Loaded`]).
pub(crate) async fn loaded(tunnel: &Tunnel, size: u64, count: u32) -> anyhow::Result<Outcome> {
    let mut conn = tunnel.tcp_connect(workload::echo_addr(), TIMEOUT).await?;
    let download = get(tunnel, size);
    tokio::pin!(download);
    let mut rtts_ms = Vec::new();
    let echoes = async {
        tokio::time::sleep(workload::LOADED_ECHO_AFTER).await;
        for i in 0..count {
            let start = Instant::now();
            conn.write_all(&[i as u8], TIMEOUT).await?;
            let got = conn.read_exact(1, TIMEOUT).await?;
            ensure!(got == [i as u8], "echo returned a different byte");
            rtts_ms.push(start.elapsed().as_secs_f64() * 1e3);
            tokio::time::sleep(workload::LOADED_ECHO_EVERY.saturating_sub(start.elapsed())).await;
        }
        // Done echoing: the download alone decides when this ends.
        std::future::pending::<()>().await;
        anyhow::Ok(())
    };
    tokio::select! {
        got = &mut download => { got?; }
        failed = echoes => { failed?; }
    }
    Ok(Outcome::Echo { rtts_ms })
}

fn check(offset: u64, got: &[u8]) -> anyhow::Result<()> {
    pattern::check(offset, got).map_err(|at| anyhow::anyhow!("download differs from the pattern at byte {at}"))
}
