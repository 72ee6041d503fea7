//! `hometun-bench probe`: the workload over the kernel's TCP (direct, OpenVPN, boringtun), run
//! on the remote device. Prints one [`Outcome`] as JSON.

use std::io::{Read, Write};
use std::net::{SocketAddrV4, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};

use crate::pattern;
use crate::workload::{self, Outcome};

const IO_TIMEOUT: Duration = Duration::from_secs(60);

fn connect(addr: SocketAddrV4) -> anyhow::Result<TcpStream> {
    let stream =
        TcpStream::connect_timeout(&addr.into(), Duration::from_secs(10)).with_context(|| format!("connect {addr}"))?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(stream)
}

/// GET `size` bytes from the LAN host, checking every byte.
pub(crate) fn get(addr: SocketAddrV4, size: u64) -> anyhow::Result<Outcome> {
    let start = Instant::now();
    let mut stream = connect(addr)?;
    stream.write_all(workload::get_request(size).as_bytes())?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut filled = 0;
    let head = loop {
        let n = stream.read(&mut buf[filled..])?;
        ensure!(n > 0, "connection closed inside the response head");
        filled += n;
        if let Some(head) = workload::parse_response_head(&buf[..filled])? {
            break head;
        }
    };
    ensure!(head.status == 200, "GET answered {}", head.status);
    ensure!(head.content_length == Some(size), "GET announced {:?} bytes, want {size}", head.content_length);
    let mut received = (filled - head.head_len) as u64;
    check(0, &buf[head.head_len..filled])?;
    while received < size {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            bail!("body ended after {received} of {size} bytes");
        }
        check(received, &buf[..n])?;
        received += n as u64;
    }
    ensure!(received == size, "got {received} bytes, want {size}");
    Ok(Outcome::Transfer { bytes: size, secs: start.elapsed().as_secs_f64(), cpu_secs: None })
}

/// POST `size` bytes to the LAN host's sink; done when the sink confirms it checked them all.
pub(crate) fn put(addr: SocketAddrV4, size: u64) -> anyhow::Result<Outcome> {
    let start = Instant::now();
    let mut stream = connect(addr)?;
    stream.write_all(workload::post_request(size).as_bytes())?;
    let mut sent = 0u64;
    while sent < size {
        let part = pattern::slice_at(sent, (size - sent).min(pattern::BLOCK as u64) as usize);
        stream.write_all(part)?;
        sent += part.len() as u64;
    }
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply)?;
    let head = workload::parse_response_head(&reply)?.context("no response to the upload")?;
    ensure!(head.status == 200, "POST answered {}: {}", head.status, String::from_utf8_lossy(&reply));
    Ok(Outcome::Transfer { bytes: size, secs: start.elapsed().as_secs_f64(), cpu_secs: None })
}

/// `count` round trips of one byte over one TCP_NODELAY connection.
pub(crate) fn echo(addr: SocketAddrV4, count: u32) -> anyhow::Result<Outcome> {
    let mut stream = connect(addr)?;
    stream.set_nodelay(true)?;
    let mut rtts_ms = Vec::with_capacity(count as usize);
    let mut byte = [0u8; 1];
    for i in 0..count {
        let start = Instant::now();
        stream.write_all(&[i as u8])?;
        stream.read_exact(&mut byte)?;
        rtts_ms.push(start.elapsed().as_secs_f64() * 1e3);
        ensure!(byte[0] == i as u8, "echo returned a different byte");
    }
    Ok(Outcome::Echo { rtts_ms })
}

/// Echoes on one connection while a GET of `size` bytes runs on another (see
/// [`crate::Work::Loaded`]).
pub(crate) fn loaded(addr: SocketAddrV4, size: u64, count: u32) -> anyhow::Result<Outcome> {
    let done = Arc::new(AtomicBool::new(false));
    let mut stream = connect(workload::echo_addr())?;
    stream.set_nodelay(true)?;
    let download = {
        let done = done.clone();
        std::thread::spawn(move || {
            let got = get(addr, size);
            done.store(true, Ordering::SeqCst);
            got
        })
    };
    std::thread::sleep(workload::LOADED_ECHO_AFTER);
    let mut rtts_ms = Vec::new();
    let mut byte = [0u8; 1];
    let echoed = (0..count).take_while(|_| !done.load(Ordering::SeqCst)).try_for_each(|i| {
        let start = Instant::now();
        stream.write_all(&[i as u8])?;
        stream.read_exact(&mut byte)?;
        ensure!(byte[0] == i as u8, "echo returned a different byte");
        if !done.load(Ordering::SeqCst) {
            rtts_ms.push(start.elapsed().as_secs_f64() * 1e3);
        }
        std::thread::sleep(workload::LOADED_ECHO_EVERY.saturating_sub(start.elapsed()));
        Ok(())
    });
    // The download's own failure (it may be what stopped the echoes) comes first.
    download.join().map_err(|_| anyhow::anyhow!("the download panicked"))??;
    echoed?;
    Ok(Outcome::Echo { rtts_ms })
}

fn check(offset: u64, got: &[u8]) -> anyhow::Result<()> {
    pattern::check(offset, got).map_err(|at| anyhow::anyhow!("download differs from the pattern at byte {at}"))
}
