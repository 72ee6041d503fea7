//! A remote device enrols with an invite, connects through the home router's port forward and
//! uses the LAN: several MiB byte-exact over HTTP each way, ping, TCP echo, DNS — in masquerade
//! mode and in routed mode (where the LAN host sees the device's own tunnel address). And a
//! download over a LAN wire that breaks packets still arrives byte-exact.

use std::net::SocketAddrV4;
use std::time::Duration;

use hometun_tests::capture::Capture;
use hometun_tests::client::{Device, Tunnel};
use hometun_tests::lab::{addr, Lab, Node};
use hometun_tests::relay::{Mode, Relay, RelayOptions};
use hometun_tests::{apps, content};

const BIG: u64 = 6 << 20;
const T: Duration = Duration::from_secs(60);

fn host10(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(addr::HOST10, port)
}

/// The whole scenario for one mode; returns the address the LAN host saw the device as.
fn enrol_connect_and_use_the_lan(mode: Mode) -> (std::net::Ipv4Addr, String) {
    let lab = Lab::start().expect("lab");
    if mode == Mode::Routed {
        lab.add_return_route().expect("return route on the home router");
    }
    let relay = Relay::start(&lab, RelayOptions { mode, ..RelayOptions::default() }).expect("relay");
    let tun = relay.status().expect("status")["tun"].as_str().expect("tun name").to_owned();
    // The kernel queues up to 4,096 packets for the relay (500 by default), so a burst toward
    // many clients waits instead of being dropped.
    let queue = lab.exec(Node::Home, "cat", [format!("/sys/class/net/{tun}/tx_queue_len")]).expect("cat");
    assert_eq!(String::from_utf8_lossy(&queue.stdout).trim(), "4096", "the tun's queue length");
    let invite = relay.invite("laptop", "24h", None).expect("invite");
    let target = relay.target().expect("target");

    let (address, whoami) = lab.run_in(Node::Wan, || async {
        let device = Device::new(&invite);
        let tunnel = device.enrol(&target, &invite).await.expect("enrol");
        let config = tunnel.config();
        assert_eq!(config.address.prefix_len(), 24);
        assert!(config.address.addr().octets()[..3] == [10, 8, 0], "address from the pool: {config:?}");
        assert!(config.routes.iter().any(|r| r.contains(addr::HOST10)), "LAN route pushed: {config:?}");
        assert_eq!(config.dns, vec![addr::ROUTER_LAN]);

        // Download: the LAN host's TCP data reaches the relay as super-packets (one read for
        // many segments), not cut to the tun's 1420-byte MTU first: the offload is on.
        let before = tun_counters(&lab, &tun, "tx");
        let response = tunnel.http_get(host10(80), &content::blob_path(BIG), T).await.expect("GET blob");
        let (packets, bytes) = delta(before, tun_counters(&lab, &tun, "tx"));
        println!(
            "tun → relay during the download: {packets} reads, {bytes} bytes, {} bytes per read",
            bytes / packets.max(1)
        );
        assert!(bytes >= BIG && bytes / packets.max(1) > 4 * 1420, "{packets} reads for {bytes} bytes");
        assert_eq!(response.status, 200);
        assert_eq!(content::whole_blob(BIG, &response.body), Ok(()));

        for seq in 0..3 {
            let reply = tunnel.ping(addr::HOST10, seq, Duration::from_secs(3)).await.expect("ping 192.168.0.10");
            assert_eq!(reply.from, addr::HOST10);
        }

        let mut echo = tunnel.tcp_connect(host10(7), T).await.expect("echo connect");
        echo.write_all(b"round trip", T).await.unwrap();
        assert_eq!(echo.read_exact(10, T).await.unwrap(), b"round trip");
        drop(echo);

        assert_eq!(tunnel.resolve(addr::NAS_NAME, Duration::from_secs(5)).await.expect("resolve"), vec![addr::HOST10]);

        // Upload: the device sends its data in segments of up to 64 KiB (the relay raised the
        // LAN host's MSS), one tun write each, and each leaves the home server whole for the
        // LAN device to cut (a network card's TSO; here the LAN host takes it as it is). One at
        // the kernel's 64 KiB GSO limit would be cut in software on the relay's CPU first.
        let before = tun_counters(&lab, &tun, "rx");
        let lan = Capture::start(&lab, Node::Host10, "eth0", "tcp dst port 80").expect("LAN host capture");
        let receipt = upload(&tunnel, BIG).await;
        let arrived = lan.stop().expect("capture");
        let (packets, bytes) = delta(before, tun_counters(&lab, &tun, "rx"));
        assert_eq!(receipt, format!("{BIG} {} length\n", blob_sha256(BIG)), "the LAN host got every byte");
        println!(
            "relay → tun during the upload: {packets} writes, {bytes} bytes, {} bytes per write",
            bytes / packets.max(1)
        );
        assert!(bytes >= BIG && bytes / packets.max(1) > 4 * 1420, "{packets} writes for {bytes} bytes");
        let payload =
            |line: &str| line.split_once(", length ")?.1.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok();
        let largest: u64 = arrived.iter().filter_map(|l| payload(l)).max().unwrap_or(0);
        println!("the LAN host received {} frames, the largest carrying {largest} bytes", arrived.len());
        assert!(
            arrived.len() as u64 <= packets && largest > 4 * 1420,
            "each tun write reaches the LAN as one frame: {} frames for {packets} writes, largest {largest} bytes",
            arrived.len()
        );

        let whoami = tunnel.http_get(host10(80), "/whoami", T).await.expect("whoami");
        let address = tunnel.address();
        tunnel.disconnect().await;

        // The enrolled device connects again with its key alone and keeps its address.
        let again = device.connect(&target).await.expect("reconnect");
        assert_eq!(again.address(), address, "sticky address");
        let small = again.http_get(host10(80), &content::blob_path(1000), T).await.expect("GET after reconnect");
        assert_eq!(content::whole_blob(1000, &small.body), Ok(()));
        again.disconnect().await;
        (address, String::from_utf8_lossy(&whoami.body).into_owned())
    });
    let listed = relay.client("laptop").expect("client listed");
    assert_eq!(listed["address"], address.to_string());
    (address, whoami)
}

/// The tun device's packet and byte counters in `direction`: `"tx"` is what the kernel handed
/// the relay (reads), `"rx"` what the relay handed the kernel (writes).
fn tun_counters(lab: &Lab, tun: &str, direction: &str) -> (u64, u64) {
    let read = |counter: &str| -> u64 {
        let path = format!("/sys/class/net/{tun}/statistics/{direction}_{counter}");
        let out = lab.exec(Node::Home, "cat", [path]).expect("cat");
        String::from_utf8_lossy(&out.stdout).trim().parse().expect("a counter")
    };
    (read("packets"), read("bytes"))
}

fn delta(before: (u64, u64), after: (u64, u64)) -> (u64, u64) {
    (after.0 - before.0, after.1 - before.1)
}

/// POSTs `size` known bytes to the LAN host's `/upload` and returns its receipt
/// (`<length> <sha256> <framing>`).
async fn upload(tunnel: &Tunnel, size: u64) -> String {
    let mut conn = tunnel.tcp_connect(host10(80), T).await.expect("connect for the upload");
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: {}\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n",
        addr::HOST10
    );
    conn.write_all(head.as_bytes(), T).await.expect("request head");
    let mut chunk = vec![0u8; 256 * 1024];
    let mut offset = 0;
    while offset < size {
        let n = chunk.len().min((size - offset) as usize);
        content::blob_bytes(size, offset, &mut chunk[..n]);
        conn.write_all(&chunk[..n], T).await.expect("request body");
        offset += n as u64;
    }
    let mut response = Vec::new();
    while conn.read_some(&mut response, T).await.expect("response") > 0 {}
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    text.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default()
}

/// The SHA-256 of the known bytes of a blob of `size`, as hex.
fn blob_sha256(size: u64) -> String {
    let mut hash = apps::sha256();
    let mut chunk = vec![0u8; 256 * 1024];
    let mut offset = 0;
    while offset < size {
        let n = chunk.len().min((size - offset) as usize);
        content::blob_bytes(size, offset, &mut chunk[..n]);
        hash.update(&chunk[..n]);
        offset += n as u64;
    }
    apps::hex(hash.finish().as_ref())
}

#[test]
fn masquerade_mode_reaches_the_lan_without_any_change_on_it() {
    let (_, seen_as) = enrol_connect_and_use_the_lan(Mode::Masquerade);
    assert_eq!(seen_as, addr::HOME.to_string(), "LAN host sees the home server's address");
}

#[test]
fn routed_mode_shows_the_device_address_to_the_lan() {
    let (address, seen_as) = enrol_connect_and_use_the_lan(Mode::Routed);
    assert_eq!(seen_as, address.to_string(), "LAN host sees the device's tunnel address");
}

/// Runs `nft` in `node` with `words` (one command), failing the test on an error.
fn nft(lab: &Lab, node: Node, words: &[&str]) -> String {
    let out = lab.exec(node, "nft", words).expect("nft");
    assert!(out.status.success(), "nft {words:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_packet_broken_on_a_lan_wire_never_reaches_the_device() {
    let lab = Lab::start().expect("lab");
    let relay = Relay::start(&lab, RelayOptions::default()).expect("relay");
    // The LAN host sums its own packets, as a network card sums them for the wire. Then one
    // in sixteen of its larger HTTP packets gets a byte overwritten on the home server's way
    // from the LAN to the relay, after the checks of the connection tracking, before the tun:
    // the relay is the first to see it, and its devices do not check TCP checksums.
    let off = lab.exec(Node::Host10, "ethtool", ["-K", "eth0", "tx", "off"]).expect("ethtool");
    assert!(off.status.success(), "ethtool: {}", String::from_utf8_lossy(&off.stderr));
    nft(&lab, Node::Home, &["add", "table", "ip", "breaker"]);
    nft(&lab, Node::Home, &["add chain ip breaker forward { type filter hook forward priority 0; policy accept; }"]);
    let rule = "add rule ip breaker forward ip saddr 192.168.0.10 tcp sport 80 meta length > 1000 \
                numgen random mod 16 == 0 counter @th,4000,8 set 0x5a";
    nft(&lab, Node::Home, &[rule]);
    let invite = relay.invite("laptop", "24h", None).expect("invite");
    let target = relay.target().expect("target");
    let size: u64 = 2 << 20;

    let body = lab.run_in(Node::Wan, || async {
        let tunnel = Device::new(&invite).enrol(&target, &invite).await.expect("enrol");
        let response = tunnel.http_get(host10(80), &content::blob_path(size), T).await.expect("GET blob");
        assert_eq!(response.status, 200);
        tunnel.disconnect().await;
        response.body
    });
    let broken: u64 = nft(&lab, Node::Home, &["list", "chain", "ip", "breaker", "forward"])
        .split_once("counter packets ")
        .and_then(|(_, rest)| rest.split(' ').next()?.parse().ok())
        .expect("the rule's counter");
    let dropped = relay.status().expect("status")["dropped"]["malformed"].as_u64().unwrap_or(0);
    println!("{broken} packets broken on the way, {dropped} dropped by the relay");
    assert!(broken > 0, "the wire broke nothing: the scenario did not happen");
    assert_eq!(content::whole_blob(size, &body), Ok(()), "a broken byte reached the device");
    assert!(dropped > 0, "the relay dropped none of the {broken} broken packets");
}
