//! What a client may reach is decided by the relay, and nothing else gets onto the LAN:
//! a client allowed only 192.168.0.10:80 cannot touch .10:22 or .20 at all, and packets with a
//! forged source address never leave the relay. Captures on the relay's LAN port prove it.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use hometun_tests::capture::Capture;
use hometun_tests::client::Device;
use hometun_tests::lab::{addr, Lab, Node, ROUTER_HOME_PORT};
use hometun_tests::relay::{Relay, RelayOptions};
use hometun_tests::{content, labhost, packet};

const T: Duration = Duration::from_secs(20);
const DENIED_WAIT: Duration = Duration::from_secs(2);

#[test]
fn a_client_allowed_one_port_reaches_nothing_else() {
    let lab = Lab::start().expect("lab");
    let relay = Relay::start(&lab, RelayOptions::default()).expect("relay");
    let narrow = relay.invite("narrow", "24h", Some("192.168.0.10/32:80")).expect("narrow invite");
    let wide = relay.invite("wide", "24h", None).expect("default invite");
    let target = relay.target().unwrap();

    let filter = "ip and (dst host 192.168.0.20 or (dst host 192.168.0.10 and not tcp port 80))";
    let capture = Capture::start(&lab, Node::Router, ROUTER_HOME_PORT, filter).unwrap();
    lab.run_in(Node::Wan, || async {
        let tunnel = Device::new(&narrow).enrol(&target, &narrow).await.expect("enrol narrow");
        let ok = tunnel.http_get(SocketAddrV4::new(addr::HOST10, 80), &content::blob_path(100_000), T).await;
        let ok = ok.expect("192.168.0.10:80 is allowed");
        assert_eq!(content::whole_blob(100_000, &ok.body), Ok(()));

        for denied in [
            SocketAddrV4::new(addr::HOST10, 22),
            SocketAddrV4::new(addr::HOST20, 80),
            SocketAddrV4::new(addr::HOST20, 22),
        ] {
            let r = tunnel.tcp_connect(denied, DENIED_WAIT).await;
            assert!(r.is_err(), "{denied} must be unreachable for this client");
        }
        assert!(tunnel.ping(addr::HOST20, 1, DENIED_WAIT).await.is_err(), "ping .20 must go unanswered");
    });
    let leaked = capture.stop().unwrap();
    assert!(leaked.is_empty(), "denied packets reached the LAN:\n{}", leaked.join("\n"));
    let denied = relay.status().unwrap()["dropped"]["denied"].as_u64().unwrap_or(0);
    assert!(denied >= 4, "the relay counts what it denied: {denied}");
    assert!(lab.service_peers(Node::Host20, "http").is_empty());
    assert!(lab.service_peers(Node::Host10, "banner").is_empty());

    // Control: with the default ACL the same destinations answer, so the denial above is the ACL,
    // and the same capture sees them on the LAN.
    let control = Capture::start(&lab, Node::Router, ROUTER_HOME_PORT, filter).unwrap();
    lab.run_in(Node::Wan, || async {
        let tunnel = Device::new(&wide).enrol(&target, &wide).await.expect("enrol wide");
        let page =
            tunnel.http_get(SocketAddrV4::new(addr::HOST20, 80), "/", T).await.expect(".20:80 with the default ACL");
        assert!(String::from_utf8_lossy(&page.body).contains("h20"));
        let mut ssh =
            tunnel.tcp_connect(SocketAddrV4::new(addr::HOST10, 22), T).await.expect(".10:22 with the default ACL");
        assert_eq!(ssh.read_exact(labhost::BANNER.len(), T).await.unwrap(), labhost::BANNER);
        tunnel.ping(addr::HOST20, 1, T).await.expect("ping .20 with the default ACL");
    });
    let seen = control.stop().unwrap();
    for what in ["192.168.0.20.80:", "192.168.0.10.22:", "ICMP echo request"] {
        assert!(
            seen.iter().any(|l| l.contains(what)),
            "the capture saw no {what} of the control:\n{}",
            seen.join("\n")
        );
    }
    assert!(!lab.service_peers(Node::Host20, "http").is_empty(), "the control reached .20's web server");
    assert!(!lab.service_peers(Node::Host10, "banner").is_empty(), "the control reached .10:22");
}

#[test]
fn forged_source_addresses_never_reach_the_lan() {
    let lab = Lab::start().expect("lab");
    let relay = Relay::start(&lab, RelayOptions::default()).expect("relay");
    let invite = relay.invite("forger", "24h", None).unwrap();
    let other = relay.invite("victim", "24h", None).unwrap();
    let target = relay.target().unwrap();

    let capture = Capture::start(&lab, Node::Router, ROUTER_HOME_PORT, "udp and dst host 192.168.0.10").unwrap();
    let own = lab.run_in(Node::Wan, || async {
        let victim = Device::new(&other).enrol(&target, &other).await.expect("victim");
        let tunnel = Device::new(&invite).enrol(&target, &invite).await.expect("enrol");
        let own = tunnel.address();
        let forged: [(Ipv4Addr, u16); 4] = [
            (victim.address(), 9001),               // another client's address
            (Ipv4Addr::new(10, 8, 0, 250), 9002),   // an unassigned pool address
            (Ipv4Addr::new(192, 168, 0, 50), 9003), // a LAN address
            (addr::WAN_CLIENT, 9004),               // an internet address
        ];
        for round in 0..5u8 {
            for (src, port) in forged {
                tunnel.inject_packet(&packet::udp(src, addr::HOST10, 5000, port, &[round; 16])).unwrap();
            }
            // The device's own address: must arrive (proves the capture sees tunnel traffic).
            tunnel.inject_packet(&packet::udp(own, addr::HOST10, 5000, 9000, &[round; 16])).unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(tunnel.end().is_none(), "the relay may drop forged packets but keeps the session: {:?}", tunnel.end());
        own
    });
    let seen = capture.stop().unwrap();
    let to_port = |p: u16| seen.iter().filter(|l| l.contains(&format!("192.168.0.10.{p}:"))).count();
    assert_eq!(to_port(9000), 5, "own-address packets arrive (from {own}):\n{}", seen.join("\n"));
    for port in [9001, 9002, 9003, 9004] {
        assert_eq!(to_port(port), 0, "forged packets to port {port} reached the LAN:\n{}", seen.join("\n"));
    }
    let spoofed = relay.status().unwrap()["dropped"]["spoofed"].as_u64().unwrap_or(0);
    assert_eq!(spoofed, 20, "the relay counts every forged packet it dropped");
}

/// Devices reach each other only when the relay's owner turned `client_to_client` on (and
/// their allow rules include the pool, as any destination must be): then a ping from the phone
/// to the laptop's tunnel address is answered by the laptop (through the relay's tun and its
/// firewall, both ways); otherwise the relay counts it denied and the laptop never sees it.
#[test]
fn devices_reach_each_other_only_with_client_to_client() {
    for on in [false, true] {
        let lab = Lab::start().expect("lab");
        let relay =
            Relay::start(&lab, RelayOptions { client_to_client: on, ..RelayOptions::default() }).expect("relay");
        let lan_and_devices = Some("192.168.0.0/24,10.8.0.0/24");
        let laptop = relay.invite("laptop", "24h", lan_and_devices).unwrap();
        let phone = relay.invite("phone", "24h", lan_and_devices).unwrap();
        let target = relay.target().unwrap();
        let (answered, laptop_got) = lab.run_in(Node::Wan, || async {
            let laptop = Device::new(&laptop).enrol(&target, &laptop).await.expect("the laptop");
            let phone = Device::new(&phone).enrol(&target, &phone).await.expect("the phone");
            let before = laptop.stats().packets_in;
            let answered = phone.ping(laptop.address(), 1, if on { T } else { DENIED_WAIT }).await;
            (answered.is_ok(), laptop.stats().packets_in - before)
        });
        let denied = relay.status().unwrap()["dropped"]["denied"].as_u64().unwrap_or(0);
        eprintln!("client_to_client = {on}: answered {answered}, packets the laptop got {laptop_got}, denied {denied}");
        assert_eq!(answered, on, "with client_to_client = {on}, the phone's ping was answered: {answered}");
        if on {
            assert_eq!(denied, 0, "nothing denied with client_to_client on");
        } else {
            assert_eq!(laptop_got, 0, "the laptop got the phone's ping though devices may not reach each other");
            assert!(denied >= 1, "the relay counts the ping it denied: {denied}");
        }
    }
}
