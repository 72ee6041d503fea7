//! One device cannot fill the home server's connection table: a device that opens thousands of
//! flows at once (UDP from ever new ports, as a port scan or a broken app does) gets no more
//! than its share through the relay's kernel, and another device's new flows still reach the
//! LAN.
//!
//! Needs root.

use std::net::Ipv4Addr;
use std::time::Duration;

use hometun_tests::capture::Capture;
use hometun_tests::client::Device;
use hometun_tests::lab::{addr, Lab, Node, ROUTER_HOME_PORT};
use hometun_tests::packet::{udp_datagram, Ipv4, UDP};
use hometun_tests::relay::{Relay, RelayOptions};

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
    let tracked = |device: Ipv4Addr| {
        let table = lab.exec(Node::Home, "cat", ["/proc/net/nf_conntrack"]).expect("conntrack table").stdout;
        let (src, dport) = (format!(" src={device} "), format!(" dport={DISCARD} "));
        String::from_utf8_lossy(&table).lines().filter(|l| l.contains(&src) && l.contains(&dport)).count()
    };
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
