//! Churn: while 200 devices connect and disconnect again and again for two minutes (from 8
//! source addresses), the devices that stay connected keep their flows byte-exact — one long
//! download each and a stream of small fetches — and the relay's memory and descriptors stay flat.
//!
//! The bench runs the same scenario bigger: `scripts/churn-bench.sh` (1,000 devices, 10 minutes)
//! sets `HOMETUN_CHURN_CLIENTS` and `HOMETUN_CHURN_SECS`; every 200 devices add 8 source
//! addresses and stretch each device's hold and pause, so the connection rate per address stays
//! within the relay's limits while five times as many devices are in play.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hometun_tests::client::{Device, RelayTarget, Tunnel};
use hometun_tests::content;
use hometun_tests::lab::{addr, Lab, Node};
use hometun_tests::relay::{footprint, Relay, RelayOptions};

/// Devices that stay connected and carry the flows that must not lose a byte.
const STABLE: usize = 4;
/// Source addresses the churning devices come from (each stays well under the per-address
/// limits), per 200 devices.
const SOURCES: u8 = 8;
/// Devices per unit of pacing: with more devices, each holds and pauses proportionally longer,
/// so the relay sees the same rate of new connections per source address and in total (the
/// per-address rate limit would otherwise refuse them, by design) with more devices at once.
const DEVICES_PER_PACE: usize = 200;
/// Enrolments in flight at once (see the scale test: the handshake deadline counts from accept).
const ENROLMENTS_AT_ONCE: usize = 25;
/// Size of each stable device's long download, paced to last the whole churn.
const LONG_DOWNLOAD: u64 = 16 << 20;
/// Size of the small fetches the stable devices repeat.
const SMALL_FETCH: u64 = 64 << 10;
const T: Duration = Duration::from_secs(30);

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Counts of what happened while the devices churned.
#[derive(Default)]
struct Tally {
    cycles: AtomicU64,
    pings: AtomicU64,
    long_bytes: AtomicU64,
    small_fetches: AtomicU64,
}

/// One churning device: connect, ping a LAN host, stay a moment, disconnect, pause; until `end`.
async fn churn(
    index: usize,
    pace: u32,
    device: Device,
    target: RelayTarget,
    end: Instant,
    tally: Arc<Tally>,
) -> anyhow::Result<()> {
    // Different holding times per device so connects and disconnects interleave.
    let hold = Duration::from_millis(200 + (index as u64 * 37) % 1000) * pace;
    let pause = Duration::from_millis(100 + (index as u64 * 53) % 500) * pace;
    // Devices join over the first seconds (10 ms apart), as they would, not all in one instant.
    tokio::time::sleep(Duration::from_millis(10) * index as u32).await;
    let mut seq = 0u16;
    while Instant::now() < end {
        let tunnel = device.connect(&target).await.map_err(|e| anyhow::anyhow!("connect: {e}"))?;
        seq = seq.wrapping_add(1);
        tunnel.ping(addr::HOST10, seq, T).await.map_err(|e| anyhow::anyhow!("ping: {e}"))?;
        tally.pings.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(hold).await;
        anyhow::ensure!(tunnel.end().is_none(), "tunnel ended while held: {:?}", tunnel.end());
        tunnel.disconnect().await;
        tally.cycles.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(pause).await;
    }
    Ok(())
}

/// One long download from a LAN host, read at a pace that spreads it over `[start, end)`, every
/// byte checked against the known content.
async fn long_download(tunnel: &Tunnel, size: u64, start: Instant, end: Instant, tally: &Tally) -> anyhow::Result<()> {
    let host = SocketAddrV4::new(addr::HOST10, 80);
    let mut conn = tunnel.tcp_connect(host, T).await?;
    let request =
        format!("GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", content::blob_path(size), host.ip());
    conn.write_all(request.as_bytes(), T).await?;
    let mut buf = Vec::new();
    let head_end = loop {
        anyhow::ensure!(conn.read_some(&mut buf, T).await? > 0, "closed inside the head");
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        anyhow::ensure!(buf.len() < 16 * 1024, "head too long");
    };
    anyhow::ensure!(buf.starts_with(b"HTTP/1.1 200"), "status: {:?}", String::from_utf8_lossy(&buf[..head_end]));
    let mut body: Vec<u8> = buf.split_off(head_end);
    let mut offset = 0u64;
    let span = end.saturating_duration_since(start).as_secs_f64();
    loop {
        if let Some(at) = content::first_mismatch(size, offset, &body) {
            anyhow::bail!("byte {at} of the long download differs");
        }
        offset += body.len() as u64;
        tally.long_bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
        body.clear();
        if offset >= size {
            break;
        }
        // Pace: do not run ahead of the share of the churn that has passed.
        let due = start + Duration::from_secs_f64(span * offset as f64 / size as f64);
        tokio::time::sleep_until(due.into()).await;
        anyhow::ensure!(conn.read_some(&mut body, T).await? > 0, "download ended at byte {offset} of {size}");
    }
    anyhow::ensure!(offset == size, "got {offset} bytes, want {size}");
    Ok(())
}

/// Small fetches, one after another, each byte-exact, until `end`.
async fn small_fetches(tunnel: &Tunnel, end: Instant, tally: &Tally) -> anyhow::Result<()> {
    let mut round = 0;
    while Instant::now() < end {
        round += 1;
        let size = SMALL_FETCH + round;
        let r = tunnel.http_get(SocketAddrV4::new(addr::HOST10, 80), &content::blob_path(size), T).await?;
        anyhow::ensure!(r.status == 200, "status {}", r.status);
        anyhow::ensure!(r.body.len() as u64 == size, "got {} of {size} bytes", r.body.len());
        content::whole_blob(size, &r.body).map_err(|e| anyhow::anyhow!("fetch {round}: {e}"))?;
        tally.small_fetches.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}

/// Enrols every device (a bounded number at once) and returns the open tunnels of the first
/// `keep`; the others disconnect as soon as they are enrolled, so enrolment never holds more
/// connections than the relay's per-address limit; they come from `sources` in turn, so the
/// per-address rate of new connections is not exceeded either.
async fn enrol_all(
    devices: &[(Device, hometun_shared::invite::Invite)],
    target: &RelayTarget,
    sources: &[IpAddr],
    keep: usize,
) -> Vec<Tunnel> {
    let gate = Arc::new(tokio::sync::Semaphore::new(ENROLMENTS_AT_ONCE));
    let tasks: Vec<_> = devices
        .iter()
        .enumerate()
        .map(|(i, (device, invite))| {
            let target = target.from_address(sources[i % sources.len()]);
            let (gate, device, invite) = (gate.clone(), device.clone(), invite.clone());
            tokio::spawn(async move {
                let _permit = gate.acquire_owned().await.expect("semaphore");
                let tunnel = device.enrol(&target, &invite).await?;
                if i < keep {
                    return Ok(Some(tunnel));
                }
                tunnel.disconnect().await;
                Ok::<_, hometun_tests::client::ClientError>(None)
            })
        })
        .collect();
    let mut tunnels = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await.expect("enrol task") {
            Ok(tunnel) => tunnels.extend(tunnel),
            Err(e) => panic!("device {i} could not enrol: {e}"),
        }
    }
    tunnels
}

#[test]
fn established_flows_lose_nothing_while_hundreds_of_devices_come_and_go() {
    let clients = setting("HOMETUN_CHURN_CLIENTS", 200) as usize;
    let secs = setting("HOMETUN_CHURN_SECS", 120);
    let pace = clients.div_ceil(DEVICES_PER_PACE).max(1) as u32;
    let lab = Lab::start().expect("lab");
    // The default /24 pool holds 253 devices; the bench size needs a wider one.
    let pool = (clients + STABLE > 250).then(|| "10.8.0.0/20".to_owned());
    let relay = Relay::start(&lab, RelayOptions { pool, ..RelayOptions::default() }).expect("relay");
    let pid = relay.pid().expect("relay pid");
    let sources: Vec<IpAddr> =
        lab.add_wan_addresses(SOURCES * pace as u8).expect("wan addresses").into_iter().map(IpAddr::V4).collect();
    let target = relay.target().expect("target");

    let started = Instant::now();
    let names: Vec<String> =
        (0..STABLE).map(|i| format!("stable{i}")).chain((0..clients).map(|i| format!("churn{i:04}"))).collect();
    let invites: HashMap<String, _> =
        names.iter().map(|n| (n.clone(), relay.invite(n, "1h", None).expect("invite"))).collect();
    let devices: Vec<_> = names.iter().map(|n| (Device::new(&invites[n]), invites[n].clone())).collect();
    eprintln!("{} invites in {:?}", names.len(), started.elapsed());

    let tally = Arc::new(Tally::default());
    let (before, samples, after) = lab.run_in(Node::Wan, || {
        let (devices, target, sources, tally) = (&devices, &target, &sources, tally.clone());
        async move {
            let started = Instant::now();
            let stable = enrol_all(devices, target, sources, STABLE).await;
            eprintln!("{} devices enrolled in {:?}", devices.len(), started.elapsed());
            tokio::time::sleep(Duration::from_secs(2)).await;
            let before = footprint(pid);

            let start = Instant::now();
            let end = start + Duration::from_secs(secs);
            let churning: Vec<_> = devices[STABLE..]
                .iter()
                .enumerate()
                .map(|(i, (device, _))| {
                    let target = target.from_address(sources[i % sources.len()]);
                    tokio::spawn(churn(i, pace, device.clone(), target, end, tally.clone()))
                })
                .collect();
            // The relay's footprint at every eighth of the churn.
            let sampler = tokio::spawn(async move {
                let mut samples = Vec::new();
                for eighth in 1..=8 {
                    tokio::time::sleep_until((start + Duration::from_secs(secs) * eighth / 8).into()).await;
                    samples.push(footprint(pid));
                }
                samples
            });
            let flows = stable.iter().enumerate().map(|(i, tunnel)| {
                let tally = tally.clone();
                async move {
                    let size = LONG_DOWNLOAD - i as u64;
                    let (long, small) = tokio::join!(
                        long_download(tunnel, size, start, end, &tally),
                        small_fetches(tunnel, end, &tally)
                    );
                    long.map_err(|e| anyhow::anyhow!("stable{i} long download: {e:#}"))?;
                    small.map_err(|e| anyhow::anyhow!("stable{i} small fetches: {e:#}"))?;
                    anyhow::ensure!(tunnel.end().is_none(), "stable{i} tunnel ended: {:?}", tunnel.end());
                    Ok(())
                }
            });
            let flows = futures_util::future::join_all(flows).await;
            let mut failures: Vec<String> =
                flows.into_iter().filter_map(|r| r.err().map(|e| format!("{e:#}"))).collect();
            for (i, task) in churning.into_iter().enumerate() {
                match task.await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => failures.push(format!("churn{i:04}: {e:#}")),
                    Err(e) => failures.push(format!("churn{i:04}: task {e}")),
                }
            }
            let samples = sampler.await.expect("sampler");
            assert!(
                failures.is_empty(),
                "{} failures, first: {:#?}",
                failures.len(),
                &failures[..failures.len().min(5)]
            );
            // The stable devices leave too; the relay must let go of everything.
            for tunnel in &stable {
                tunnel.disconnect().await;
            }
            tokio::time::sleep(Duration::from_secs(3)).await;
            (before, samples, footprint(pid))
        }
    });

    let cycles = tally.cycles.load(Ordering::Relaxed);
    eprintln!(
        "churn: {clients} devices, {secs} s: {cycles} connect/disconnect cycles ({:.1}/s), {} pings answered, \
         {} small fetches and {} MiB of long downloads byte-exact on {STABLE} stable devices",
        cycles as f64 / secs as f64,
        tally.pings.load(Ordering::Relaxed),
        tally.small_fetches.load(Ordering::Relaxed),
        tally.long_bytes.load(Ordering::Relaxed) >> 20,
    );
    let rss: Vec<u64> = samples.iter().map(|f| f.rss_kib >> 10).collect();
    let fds: Vec<usize> = samples.iter().map(|f| f.fds).collect();
    eprintln!(
        "relay RSS MiB: {} before, {rss:?} at each eighth, {} after all left; descriptors: {} before, {fds:?}, {} after",
        before.rss_kib >> 10,
        after.rss_kib >> 10,
        before.fds,
        after.fds
    );
    assert!(cycles >= clients as u64, "every device came and went at least once ({cycles} cycles)");
    assert_eq!(tally.long_bytes.load(Ordering::Relaxed), (0..STABLE as u64).map(|i| LONG_DOWNLOAD - i).sum::<u64>());
    // Flat memory: the churn's second half peaks at most a quarter (plus 8 MiB of allocator
    // slack) above its first half; a leak grows with every cycle and fails this.
    let first_half = samples[..4].iter().map(|f| f.rss_kib).max().unwrap_or(0);
    let second_half = samples[4..].iter().chain([&after]).map(|f| f.rss_kib).max().unwrap_or(0);
    assert!(
        second_half <= first_half + first_half / 4 + 8 * 1024,
        "relay RSS grew from {first_half} KiB in the churn's first half to {second_half} KiB in its second"
    );
    assert!(after.fds <= before.fds, "relay descriptors: {} before, {} after everyone left", before.fds, after.fds);
}
