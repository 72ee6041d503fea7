//! The home server's connection table. One device cannot fill it: a device that opens thousands
//! of flows at once (UDP from ever new ports, as a port scan or a broken app does) gets no more
//! than its share through the relay's kernel, and another device's new flows still reach the
//! LAN. And a tunnel address changes hands clean: a revoked device's flows are forgotten, so the
//! LAN's replies on them never reach the next device given its address.
//!
//! Needs root.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use hometun_tests::capture::Capture;
use hometun_tests::client::Device;
use hometun_tests::lab::{addr, Lab, Node, ROUTER_HOME_PORT};
use hometun_tests::packet::{udp_datagram, Ipv4, UDP};
use hometun_tests::relay::{Mode, Relay, RelayOptions};

const T: Duration = Duration::from_secs(20);
/// The relay's bound on one device's open flows (`forwarding::nat::FLOWS_PER_DEVICE`).
const FLOWS_PER_DEVICE: u32 = 4096;
/// The discard port of the LAN host: nothing answers, so every datagram is a flow of its own.
const DISCARD: u16 = 9;
/// Flows the greedy device opens: its share and a few hundred more.
const FLOWS: u16 = FLOWS_PER_DEVICE as u16 + 300;
/// The first source port of the greedy device's flows.
const FIRST_PORT: u16 = 20_000;

fn datagram(src: Ipv4Addr, port: u16) -> Vec<u8> {
    let payload = udp_datagram(src, addr::HOST10, port, DISCARD, b"one more flow");
    Ipv4::new(src, addr::HOST10, UDP, payload).build()
}

/// Entries of the home server's connection table whose original direction starts or ends at
/// `address` (the first `src=` and `dst=` of a line are the original direction's).
fn tracked_of(lab: &Lab, address: Ipv4Addr) -> Vec<String> {
    let table = lab.exec(Node::Home, "cat", ["/proc/net/nf_conntrack"]).expect("conntrack table").stdout;
    let first = |line: &str, key: &str| line.split_whitespace().find_map(|w| w.strip_prefix(key)).map(str::to_owned);
    let address = address.to_string();
    String::from_utf8_lossy(&table)
        .lines()
        .filter(|l| first(l, "src=").as_ref() == Some(&address) || first(l, "dst=").as_ref() == Some(&address))
        .map(str::to_owned)
        .collect()
}

/// Waits (at most 5 s) until the entries of `address` ([`tracked_of`]) are what `wanted` says:
/// `Ok` with them, or `Err` with the last seen.
async fn until(lab: &Lab, address: Ipv4Addr, wanted: impl Fn(&[String]) -> bool) -> Result<Vec<String>, Vec<String>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let lines = tracked_of(lab, address);
        if wanted(&lines) {
            return Ok(lines);
        }
        if tokio::time::Instant::now() > deadline {
            return Err(lines);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn a_device_opening_thousands_of_flows_gets_its_share_and_another_device_still_gets_through() {
    let lab = Lab::start().expect("lab");
    let relay = Relay::start(&lab, RelayOptions::default()).expect("relay");
    let greedy = relay.invite("greedy", "24h", None).expect("invite");
    let other = relay.invite("other", "24h", None).expect("invite");
    let target = relay.target().expect("target");
    let filter = format!("udp and dst host {} and dst port {DISCARD}", addr::HOST10);
    let lan = Capture::start(&lab, Node::Router, ROUTER_HOME_PORT, &filter).expect("LAN capture");

    let (greedy_address, other_address) = lab.run_in(Node::Wan, || async {
        let other_tunnel = Device::new(&other).enrol(&target, &other).await.expect("other device");
        let tunnel = Device::new(&greedy).enrol(&target, &greedy).await.expect("greedy device");
        let me = tunnel.address();
        // In port order, in bursts the tunnel's queues take whole.
        for burst in 0..FLOWS.div_ceil(100) {
            for port in
                (FIRST_PORT + burst * 100..FIRST_PORT + (burst + 1) * 100).take_while(|p| *p < FIRST_PORT + FLOWS)
            {
                tunnel.inject_packet(&datagram(me, port)).expect("inject");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let them = other_tunnel.address();
        for port in 0..10 {
            other_tunnel.inject_packet(&datagram(them, 30_000 + port)).expect("inject");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(tunnel.end().is_none(), "the greedy device keeps its tunnel: {:?}", tunnel.end());
        tunnel.ping(Ipv4Addr::new(10, 8, 0, 1), 1, T).await.expect("the greedy device's tunnel works");
        (me, them)
    });
    // The home server's kernel tracks each flow that went through (a dropped one leaves no
    // entry): exactly the greedy device's share, and all of the other's.
    let dport = format!(" dport={DISCARD} ");
    let tracked = |device: Ipv4Addr| tracked_of(&lab, device).iter().filter(|l| l.contains(&dport)).count();
    let (greedy_tracked, other_tracked) = (tracked(greedy_address), tracked(other_address));
    let lines = lan.stop().expect("capture");
    // Masqueraded, every flow leaves from the relay's LAN address; each keeps its source port
    // (none is taken), which tells the flows apart. The greedy device's go out in port order:
    // none after its share may reach the LAN (a capture on a loaded machine misses some of a
    // burst, so it cannot count them).
    let port_of = |line: &String| -> Option<u16> {
        let from = line.split(" > ").next()?;
        from.rsplit('.').next()?.parse().ok()
    };
    let ports: Vec<u16> = lines.iter().filter_map(port_of).collect();
    let last = ports.iter().copied().filter(|p| (FIRST_PORT..FIRST_PORT + FLOWS).contains(p)).max();
    let through = last.map_or(0, |p| usize::from(p - FIRST_PORT) + 1);
    let other_flows = ports.iter().filter(|p| (30_000..30_010u16).contains(p)).count();
    println!(
        "{greedy_address} sent {FLOWS} flows, {greedy_tracked} went through, the last one seen on the LAN was \
         number {through} (bound {FLOWS_PER_DEVICE}); {other_address} sent 10, {other_tracked} went through, \
         {other_flows} seen on the LAN"
    );
    assert_eq!(greedy_tracked, FLOWS_PER_DEVICE as usize, "the greedy device's flows that went through");
    assert!(
        through <= FLOWS_PER_DEVICE as usize,
        "the greedy device's flow {through} reached the LAN, beyond its {FLOWS_PER_DEVICE}"
    );
    assert_eq!(other_tracked, 10, "the other device's new flows go through");
    assert!(other_flows > 0, "the other device's flows reach the LAN");
}

#[test]
fn a_revoked_devices_flows_are_forgotten_and_its_address_goes_clean_to_the_next_device() {
    let lab = Lab::start().expect("lab");
    // Routed, as in the reference design: LAN hosts reach tunnel addresses, so the LAN can open
    // flows towards an address that no device holds.
    lab.add_return_route().expect("return route on the home router");
    // Room for five devices (the smallest pool): once five are enrolled, the next one gets the
    // address of the device revoked longest ago.
    let options = RelayOptions { mode: Mode::Routed, pool: Some("10.8.0.0/29".into()), ..RelayOptions::default() };
    let relay = Relay::start(&lab, options).expect("relay");
    let old = relay.invite("old-phone", "24h", None).expect("invite");
    let others: Vec<_> = (1..=4).map(|n| relay.invite(&format!("tablet-{n}"), "24h", None).expect("invite")).collect();
    let new = relay.invite("new-phone", "24h", None).expect("invite");
    let target = relay.target().expect("target");

    lab.run_in(Node::Wan, || async {
        let tunnel = Device::new(&old).enrol(&target, &old).await.expect("old device");
        let me = tunnel.address();
        for invite in &others {
            Device::new(invite).enrol(&target, invite).await.expect("another device").disconnect().await;
        }
        // An answered TCP connection (kept five days by the kernel) and a few UDP flows.
        let mut echo = tunnel.tcp_connect(SocketAddrV4::new(addr::HOST10, 7), T).await.expect("connect");
        echo.write_all(b"still here?", T).await.expect("write");
        assert_eq!(echo.read_exact(11, T).await.expect("echo"), b"still here?");
        for port in 0..5 {
            tunnel.inject_packet(&datagram(me, FIRST_PORT + port)).expect("inject");
        }
        let tracked =
            until(&lab, me, |lines| lines.len() >= 6 && lines.iter().any(|l| l.contains("ESTABLISHED"))).await;
        assert!(tracked.is_ok(), "the old device's flows are tracked: {tracked:#?}");

        relay.revoke("old-phone").expect("revoke");
        assert!(tunnel.wait_end(T).await.is_some(), "the revoked device's tunnel ends");
        let left = until(&lab, me, |lines| lines.is_empty()).await;
        assert!(left.is_ok(), "the revoked device's flows are forgotten: {left:#?}");

        // The LAN goes on sending to the address, which no device holds now.
        let stale = format!("echo for-the-old-phone > /dev/udp/{me}/5000");
        lab.exec(Node::Host10, "bash", ["-c", stale.as_str()]).expect("send from the LAN");
        let from_the_lan = format!("src={} dst={me} ", addr::HOST10);
        let towards = until(&lab, me, |lines| lines.iter().any(|l| l.contains(&from_the_lan))).await;
        assert!(towards.is_ok(), "the LAN's flow towards the free address is tracked: {towards:#?}");

        let next = Device::new(&new).enrol(&target, &new).await.expect("new device");
        assert_eq!(next.address(), me, "the new device gets the revoked device's address");
        let inherited = tracked_of(&lab, me);
        assert!(inherited.is_empty(), "the new device inherits no flow: {inherited:#?}");
        next.ping(addr::HOST10, 1, T).await.expect("the new device reaches the LAN");
    });
}
