//! Slow and half-open connections cannot take the relay down: 10,000 connections from 8
//! addresses — half never send a byte, half trickle a TLS ClientHello one byte a second — over
//! 20 seconds, while a legitimate device enrols and fetches 1 MiB files byte-exact the whole time.
//! The relay's open descriptors and memory stay under stated caps and return to where they were.

use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hometun_tests::client::Device;
use hometun_tests::content;
use hometun_tests::lab::{addr, Lab, Node};
use hometun_tests::relay::{self, Relay, RelayOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SOURCES: u8 = 8;
const CONNECTIONS: u64 = 10_000;
const ATTACK: Duration = Duration::from_secs(20);
/// How long one attacking connection may live before the attacker gives up on it itself.
const HOLD_AT_MOST: Duration = Duration::from_secs(30);
const FETCH: u64 = 1 << 20;
const T: Duration = Duration::from_secs(30);
/// Caps stated for the relay under this load: descriptors (8 sources x 64 connections in
/// handshakes, plus the device, listeners and files) and resident memory.
const MAX_FDS: usize = 8 * 64 + 64;
const MAX_RSS_MIB: u64 = 128;

#[derive(Default)]
struct Tally {
    connected: AtomicU64,
    refused: AtomicU64,
    closed_by_relay: AtomicU64,
    held_to_the_end: AtomicU64,
    longest_ms: AtomicU64,
}

/// The relay's RSS in MiB and its open descriptors.
fn footprint(pid: u32) -> (u64, usize) {
    let f = relay::footprint(pid);
    (f.rss_kib >> 10, f.fds)
}

/// One attacking connection: silent, or a TLS record header and ClientHello a byte a second.
async fn attack_one(from: IpAddr, relay: SocketAddr, trickle: bool, tally: Arc<Tally>) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::new(from, 0)).expect("bind");
    let Ok(Ok(mut stream)) = tokio::time::timeout(Duration::from_secs(5), socket.connect(relay)).await else {
        tally.refused.fetch_add(1, Ordering::Relaxed);
        return;
    };
    tally.connected.fetch_add(1, Ordering::Relaxed);
    let start = Instant::now();
    let hello = [0x16u8, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03];
    let mut buf = [0u8; 512];
    let mut sent = 0;
    let closed = loop {
        if start.elapsed() >= HOLD_AT_MOST {
            break false;
        }
        match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(_)) => {} // an alert before closing
            Err(_) if trickle => {
                if stream.write_all(&hello[sent % hello.len()..][..1]).await.is_err() {
                    break true;
                }
                sent += 1;
            }
            Err(_) => {}
        }
    };
    let counter = if closed { &tally.closed_by_relay } else { &tally.held_to_the_end };
    counter.fetch_add(1, Ordering::Relaxed);
    tally.longest_ms.fetch_max(start.elapsed().as_millis() as u64, Ordering::Relaxed);
}

#[test]
fn ten_thousand_slow_connections_do_not_stop_a_device_from_working() {
    let lab = Lab::start().expect("lab");
    let relay = Relay::start(&lab, RelayOptions::default()).expect("relay");
    let pid = relay.pid().expect("relay pid");
    let sources: Vec<IpAddr> = lab.add_wan_addresses(SOURCES).expect("addresses").into_iter().map(IpAddr::V4).collect();
    let invite = relay.invite("phone", "1h", None).expect("invite");
    let target = relay.target().expect("target");
    let relay_addr = target.addr;
    let tally = Arc::new(Tally::default());
    let before = footprint(pid);

    let (fetches, peak) = lab.run_in(Node::Wan, || {
        let (tally, sources, target, invite) = (tally.clone(), &sources, &target, &invite);
        async move {
            let start = Instant::now();
            let attackers: Vec<_> = sources
                .iter()
                .enumerate()
                .map(|(s, &from)| {
                    let tally = tally.clone();
                    tokio::spawn(async move {
                        let per_source = CONNECTIONS / u64::from(SOURCES);
                        let mut conns = Vec::new();
                        for i in 0..per_source {
                            let due = start + ATTACK.mul_f64(i as f64 / per_source as f64);
                            tokio::time::sleep_until(due.into()).await;
                            let trickle = (i + s as u64).is_multiple_of(2);
                            conns.push(tokio::spawn(attack_one(from, relay_addr, trickle, tally.clone())));
                        }
                        for c in conns {
                            let _ = c.await;
                        }
                    })
                })
                .collect();
            let sampler = tokio::spawn(async move {
                let mut peak = (0u64, 0usize);
                while start.elapsed() < ATTACK + Duration::from_secs(5) {
                    let (rss, fds) = footprint(pid);
                    peak = (peak.0.max(rss), peak.1.max(fds));
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                peak
            });

            // The device enrols while the attack is on, then fetches until it is over.
            tokio::time::sleep(Duration::from_secs(2)).await;
            let tunnel = Device::new(invite).enrol(target, invite).await.expect("the device enrols during the attack");
            let mut fetches = 0u64;
            while start.elapsed() < ATTACK + Duration::from_secs(2) {
                let size = FETCH + fetches;
                let r = tunnel
                    .http_get(SocketAddrV4::new(addr::HOST10, 80), &content::blob_path(size), T)
                    .await
                    .unwrap_or_else(|e| panic!("fetch {fetches} during the attack: {e}"));
                assert_eq!(r.status, 200);
                assert_eq!(content::whole_blob(size, &r.body), Ok(()), "fetch {fetches}");
                fetches += 1;
            }
            tunnel.disconnect().await;
            for a in attackers {
                a.await.expect("attacker");
            }
            (fetches, sampler.await.expect("sampler"))
        }
    });

    // Back to where it was once the attack is over.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut after = footprint(pid);
    while after.1 > before.1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
        after = footprint(pid);
    }
    let t = |c: &AtomicU64| c.load(Ordering::Relaxed);
    eprintln!(
        "{CONNECTIONS} attacking connections from {SOURCES} addresses over {ATTACK:?}: {} connected, {} refused, \
         {} closed by the relay (longest lived {} ms), {} still open when the attacker gave up",
        t(&tally.connected),
        t(&tally.refused),
        t(&tally.closed_by_relay),
        t(&tally.longest_ms),
        t(&tally.held_to_the_end)
    );
    eprintln!(
        "relay: before {} MiB / {} fds, peak {} MiB / {} fds, after {} MiB / {} fds; the device made {fetches} 1 MiB fetches",
        before.0, before.1, peak.0, peak.1, after.0, after.1
    );
    assert!(relay.is_running(), "the relay survived");
    assert_eq!(t(&tally.connected) + t(&tally.refused), CONNECTIONS, "every attempt was made");
    // Most reached the relay (it refuses a source's connections beyond its share only while they
    // are held): each of those the relay closed itself, or the attacker found it still open.
    let connected = t(&tally.connected);
    assert!(connected >= CONNECTIONS / 2, "only {connected} of the attack's connections reached the relay");
    assert_eq!(t(&tally.held_to_the_end), 0, "the relay closed every slow connection itself");
    assert!(fetches >= 5, "the device kept working ({fetches} fetches)");
    assert!(peak.1 <= MAX_FDS, "relay descriptors peaked at {} (cap {MAX_FDS})", peak.1);
    assert!(peak.0 <= MAX_RSS_MIB, "relay RSS peaked at {} MiB (cap {MAX_RSS_MIB})", peak.0);
    assert!(after.1 <= before.1, "descriptors back to {} (were {})", after.1, before.1);
}
