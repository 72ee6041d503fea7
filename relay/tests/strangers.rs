//! What strangers (anyone who can reach the port, no invite, no key) can make the relay hold,
//! and what real devices still get while they do.

// Shared with the other scenario binaries; this one uses only some of it.
#[allow(dead_code)]
mod support;

use hometun_relay::config::Limits;
use hometun_relay::web::listener::CLIENT_HELLO_DEADLINE;
use hometun_shared::keys::SecretKey;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use support::Lab;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};

/// A TCP connection to `to` from the loopback address `127.0.0.<source>`.
async fn connect_from(source: u8, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, source)), 0)).unwrap();
    socket.connect(to).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_that_connect_and_say_nothing_neither_lock_a_device_out_nor_stay_long() {
    let limits = Limits::default();
    let lab = Lab::start(limits.clone()).await;
    // A few sources, each opening as many silent connections as it may have handshakes: over
    // all of them, every handshake slot the relay has.
    let sources = 2..18u8;
    let mut silent = Vec::new();
    for source in sources.clone() {
        for _ in 0..limits.max_unauthenticated_per_ip {
            silent.push(connect_from(source, lab.addr).await);
        }
    }
    assert_eq!(silent.len(), hometun_relay::daemon::limits::GLOBAL_MAX_UNAUTHENTICATED);
    let opened = Instant::now();
    // The relay holds every one of them (a slot each) before the device comes: else the device
    // would find room that the scenario means to be taken.
    let all = hometun_relay::daemon::limits::GLOBAL_MAX_UNAUTHENTICATED as u64;
    let deadline = Instant::now() + Duration::from_secs(5);
    while lab.relay.limits.handshakes() < all && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(lab.relay.limits.handshakes(), all, "every silent connection holds a handshake slot");

    // A device from elsewhere enrolls and gets its tunnel while they sit there.
    let invite = lab.invite("phone", 3600);
    let key = SecretKey::generate(&mut rand_core::OsRng);
    let started = Instant::now();
    let mut phone = lab.connect(&key, &invite.relay_key, Some(&invite)).await.expect("a session");
    phone.config().await;
    assert!(started.elapsed() < Duration::from_secs(2), "the device waited {:?}", started.elapsed());

    // The silent ones are cut once the ClientHello deadline has passed.
    let mut byte = [0u8; 1];
    for socket in &mut silent {
        let by = (opened + CLIENT_HELLO_DEADLINE + Duration::from_secs(2)).saturating_duration_since(Instant::now());
        let read = tokio::time::timeout(by, socket.read(&mut byte)).await;
        assert!(matches!(read, Ok(Ok(0) | Err(_))), "a silent connection still open: {read:?}");
    }
}

/// The bytes of a ClientHello for the relay, as a device would send it first.
fn client_hello(lab: &Lab) -> Vec<u8> {
    use tokio_rustls::rustls::ClientConnection;
    let name = hometun_testkit::pki_types::ServerName::IpAddress(lab.addr.ip().into());
    let mut tls = ClientConnection::new(hometun_testkit::tls_config(&lab.cert).unwrap(), name).unwrap();
    let mut hello = Vec::new();
    tls.write_tls(&mut hello).unwrap();
    hello
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_few_sources_stalling_after_their_client_hellos_do_not_lock_a_device_out() {
    use tokio::io::AsyncWriteExt;
    let limits = Limits::default();
    let lab = Lab::start(limits.clone()).await;
    let hello = client_hello(&lab);
    // Each source starts as many TLS handshakes as it may and stops after the ClientHello:
    // over all of them, every handshake slot the relay has.
    let mut stalled = Vec::new();
    for source in 2..18u8 {
        for _ in 0..limits.max_unauthenticated_per_ip {
            let mut tcp = connect_from(source, lab.addr).await;
            tcp.write_all(&hello).await.unwrap();
            stalled.push(tcp);
        }
    }
    // Every slot is taken once the relay has read each ClientHello: a moment on a quiet machine,
    // longer on a loaded one (a fixed 300 ms once fell short while other builds ran).
    let all = hometun_relay::daemon::limits::GLOBAL_MAX_UNAUTHENTICATED as u64;
    let deadline = Instant::now() + Duration::from_secs(5);
    while lab.relay.limits.handshakes() < all && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(lab.relay.limits.handshakes(), all);

    let invite = lab.invite("phone", 3600);
    let key = SecretKey::generate(&mut rand_core::OsRng);
    let started = Instant::now();
    let mut phone = lab.connect(&key, &invite.relay_key, Some(&invite)).await.expect("a session");
    phone.config().await;
    assert!(started.elapsed() < Duration::from_secs(1), "the device waited {:?}", started.elapsed());
}

/// The relay process's resident memory, KiB.
fn resident_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tunnels_that_start_a_huge_message_instead_of_a_hello_are_cut_and_cost_little() {
    use tokio::io::AsyncWriteExt;
    let limits = Limits {
        handshake_timeout_secs: 30,
        max_unauthenticated_per_ip: 1000,
        max_connections_per_ip: 1000,
        new_connections_per_ip_burst: 1000,
        ..Limits::default()
    };
    let lab = Lab::start(limits.clone()).await;
    let n = 300;
    let mut tunnels = Vec::new();
    for _ in 0..n {
        let mut tls = lab.tls().await;
        tls.write_all(&Lab::upgrade_request("")).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(tls.read_u8().await.unwrap());
        }
        assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
        tunnels.push(tls);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = resident_kib();

    // Each starts a binary message just under the relay's limit (masked with zeros) and stops
    // one byte short of its end.
    let len = limits.max_message_bytes as u64 - 1024;
    let mut frame = vec![0x82u8, 0x80 | 127];
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&[0; 4]);
    frame.resize(frame.len() + len as usize - 1, 1);
    for tls in &mut tunnels {
        let _ = tokio::time::timeout(Duration::from_secs(1), tls.write_all(&frame)).await;
    }
    let held = resident_kib().saturating_sub(before);

    // Holding them would take n times the message; cut early, each costs (with this test's
    // own TLS buffers) a quarter of it at most.
    let bound = n * (len as usize / 1024) / 4;
    assert!(held < bound, "{held} KiB more for {n} tunnels (bound {bound} KiB)");
    for tls in &mut tunnels {
        // A close frame at most, then the end.
        let mut rest = Vec::new();
        let read = tokio::time::timeout(support::PATIENCE, tls.read_to_end(&mut rest)).await;
        assert!(read.is_ok(), "a tunnel still open");
    }
}

/// A stranger asks for a large file several times at once (pipelined) and never reads the
/// answers: the relay's writes wait, so the HTTP server reads nothing more from it. The upgrade
/// deadline still cuts the connection, and its place goes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_that_never_reads_its_answers_is_cut_at_the_upgrade_deadline() {
    use tokio::io::AsyncWriteExt;
    let limits = Limits { max_connections_per_ip: 1, upgrade_deadline_secs: 1, ..Limits::default() };
    let lab = Lab::start(limits).await;
    let www = lab.dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "<!doctype html><title>home</title>").unwrap();
    std::fs::write(www.join("big.bin"), vec![7u8; 8 << 20]).unwrap();
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = lab.tls_over(socket.connect(lab.addr).await.unwrap()).await;
    let get = b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n";
    stalled.write_all(&get.repeat(4)).await.unwrap();
    stalled.flush().await.unwrap();

    tokio::time::sleep(Duration::from_secs(4)).await;
    let probe = lab.relay.limits.connect(lab.addr.ip(), Instant::now());
    assert!(probe.is_ok(), "the stalled connection still holds its place: {:?}", probe.err());
    drop(probe);
    // It was answered (the first answer's head is what the small receive window let through),
    // and it is cut.
    let mut head = [0u8; 15];
    stalled.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200 OK");
    let mut rest = vec![0u8; 1 << 20];
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match stalled.read(&mut rest).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the connection was not closed");
}
