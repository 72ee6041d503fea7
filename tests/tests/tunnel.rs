//! A remote device enrols with an invite, connects through the home router's port forward and
//! uses the LAN: several MiB byte-exact over HTTP, ping, TCP echo, DNS — in masquerade mode and
//! in routed mode (where the LAN host sees the device's own tunnel address).

use std::net::SocketAddrV4;
use std::time::Duration;

use hometun_tests::client::Device;
use hometun_tests::content;
use hometun_tests::lab::{addr, Lab, Node};
use hometun_tests::relay::{Mode, Relay, RelayOptions};

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

        let response = tunnel.http_get(host10(80), &content::blob_path(BIG), T).await.expect("GET blob");
        assert_eq!(response.status, 200);
        assert_eq!(response.body.len() as u64, BIG);
        assert_eq!(content::first_mismatch(BIG, 0, &response.body), None, "bytes differ");

        for seq in 0..3 {
            let reply = tunnel.ping(addr::HOST10, seq, Duration::from_secs(3)).await.expect("ping 192.168.0.10");
            assert_eq!(reply.from, addr::HOST10);
        }

        let mut echo = tunnel.tcp_connect(host10(7), T).await.expect("echo connect");
        echo.write_all(b"round trip", T).await.unwrap();
        assert_eq!(echo.read_exact(10, T).await.unwrap(), b"round trip");
        drop(echo);

        assert_eq!(tunnel.resolve(addr::NAS_NAME, Duration::from_secs(5)).await.expect("resolve"), vec![addr::HOST10]);

        let whoami = tunnel.http_get(host10(80), "/whoami", T).await.expect("whoami");
        let address = tunnel.address();
        tunnel.disconnect().await;

        // The enrolled device connects again with its key alone and keeps its address.
        let again = device.connect(&target).await.expect("reconnect");
        assert_eq!(again.address(), address, "sticky address");
        let small = again.http_get(host10(80), &content::blob_path(1000), T).await.expect("GET after reconnect");
        assert_eq!(content::first_mismatch(1000, 0, &small.body), None);
        again.disconnect().await;
        (address, String::from_utf8_lossy(&whoami.body).into_owned())
    });
    let listed = relay.client("laptop").expect("client listed");
    assert_eq!(listed["address"], address.to_string());

    // The LAN host's TCP data reached the relay as super-packets (one read for many segments),
    // not cut to the tun's 1420-byte MTU first: the offload is on.
    let (packets, bytes) = tun_packets_to_relay(&lab, &tun);
    println!("tun → relay: {packets} reads, {bytes} bytes, {} bytes per read", bytes / packets.max(1));
    assert!(bytes >= BIG && bytes / packets.max(1) > 4 * 1420, "{packets} reads for {bytes} bytes");
    (address, whoami)
}

/// How many packets (reads) and bytes the kernel handed the relay through its tun device.
fn tun_packets_to_relay(lab: &Lab, tun: &str) -> (u64, u64) {
    let read = |counter: &str| -> u64 {
        let out = lab.exec(Node::Home, "cat", [format!("/sys/class/net/{tun}/statistics/{counter}")]).expect("cat");
        String::from_utf8_lossy(&out.stdout).trim().parse().expect("a counter")
    };
    (read("tx_packets"), read("tx_bytes"))
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
