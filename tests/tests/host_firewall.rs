//! The home server's own firewall and signals, as its owner handles them:
//! - a firewall reload that flushes the whole ruleset (`systemctl restart nftables` on Debian)
//!   takes the relay's table, and with it the NAT into the LAN: the relay puts it back within
//!   seconds and the device's connections work again;
//! - forwarding switched on for the whole host after the relay started (Docker at boot) takes
//!   the relay's drop of other LAN traffic out, and a stop then leaves the LAN interface
//!   forwarding;
//! - SIGHUP (the terminal of `sudo hometun-relay serve` closed) stops the relay as cleanly as
//!   SIGTERM: no table left, forwarding as it was.

use std::net::SocketAddrV4;
use std::time::Duration;

use hometun_tests::client::Device;
use hometun_tests::lab::{self, addr, Lab, Node, HOME_LAN_IF};
use hometun_tests::relay::{Relay, RelayOptions};

const T: Duration = Duration::from_secs(20);
/// How soon the relay must have repaired its table (it looks every 10 s).
const REPAIRED_WITHIN: Duration = Duration::from_secs(25);

fn run(lab: &Lab, program: &str, args: &[&str]) -> (bool, String) {
    let out = lab.exec(Node::Home, program, args).unwrap_or_else(|e| panic!("{program} {args:?}: {e}"));
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `serve` on `relay`'s state directory, expects it to refuse to start, and to have made
/// nothing (no table, no tun); returns what it said.
fn serve_is_refused(lab: &Lab, relay: &Relay, why: &str) -> String {
    let bin = hometun_tests::relay::relay_binary().expect("the relay binary");
    let dir = relay.dir().to_str().expect("a path");
    let serve = lab.exec(Node::Home, &bin, ["serve", "--dir", dir]).expect("serve");
    let said = String::from_utf8_lossy(&serve.stderr).into_owned();
    assert!(!serve.status.success(), "serve ran {why}: {said}");
    assert!(!run(lab, "nft", &["list", "tables"]).1.contains("hometun"), "a table was made");
    assert!(!run(lab, "ip", &["link", "show", "hometun0"]).0, "a tun was made");
    said
}

fn forward_chain(lab: &Lab) -> String {
    run(lab, "nft", &["list", "chain", "ip", "hometun", "forward"]).1
}

#[test]
fn a_firewall_reload_loses_the_lan_for_seconds_and_a_forwarding_host_keeps_its_forwarding() {
    let lab = Lab::start().expect("lab");
    let forwarding = format!("/proc/sys/net/ipv4/conf/{HOME_LAN_IF}/forwarding");
    let (_, before) = run(&lab, "cat", &[&forwarding]);
    assert_eq!(before.trim(), "0", "the lab's home server does not route before the relay");
    let relay = Relay::start(&lab, RelayOptions::default()).expect("relay");
    let invite = relay.invite("laptop", "1h", None).expect("invite");
    let target = relay.target().expect("target");
    let echo = SocketAddrV4::new(addr::HOST10, 7);
    assert!(forward_chain(&lab).contains(&format!("iifname \"{HOME_LAN_IF}\" drop")), "the \"not a router\" drop");

    lab.run_in(Node::Wan, || async {
        let tunnel = Device::new(&invite).enrol(&target, &invite).await.expect("enrol");
        let mut first = tunnel.tcp_connect(echo, T).await.expect("echo before");
        first.write_all(b"before", T).await.unwrap();
        assert_eq!(first.read_exact(6, T).await.unwrap(), b"before");
        drop(first);

        // The owner reloads the host's firewall: everything is flushed, the relay's table too.
        let (flushed, _) = run(&lab, "nft", &["flush", "ruleset"]);
        assert!(flushed);
        assert!(!run(&lab, "nft", &["list", "table", "ip", "hometun"]).0, "the flush left the table");
        lab::wait_until(REPAIRED_WITHIN, || run(&lab, "nft", &["list", "table", "ip", "hometun"]).0.then_some(()))
            .expect("the relay put its table back");
        let mut after = tunnel.tcp_connect(echo, T).await.expect("echo after the reload");
        after.write_all(b"after", T).await.unwrap();
        assert_eq!(after.read_exact(5, T).await.unwrap(), b"after");
        drop(after);
        tunnel.disconnect().await;
    });
    assert!(relay.log().contains("nftables table was removed"), "the relay said nothing:\n{}", relay.log());

    // Docker starts after the relay and switches forwarding on for the whole host.
    run(&lab, "sysctl", &["-qw", "net.ipv4.ip_forward=1"]);
    let drop_rule = format!("iifname \"{HOME_LAN_IF}\" drop");
    lab::wait_until(REPAIRED_WITHIN, || (!forward_chain(&lab).contains(&drop_rule)).then_some(()))
        .unwrap_or_else(|_| panic!("the drop of other LAN traffic stayed:\n{}", forward_chain(&lab)));
    drop(relay);
    let (_, now) = run(&lab, "cat", &[&forwarding]);
    assert_eq!(now.trim(), "1", "the stop turned the LAN interface's forwarding off under Docker");
}

#[test]
fn sighup_stops_the_relay_as_cleanly_as_sigterm() {
    let lab = Lab::start().expect("lab");
    let forwarding = format!("/proc/sys/net/ipv4/conf/{HOME_LAN_IF}/forwarding");
    let (_, before) = run(&lab, "cat", &[&forwarding]);
    let relay = Relay::start(&lab, RelayOptions::default()).expect("relay");
    let pid = relay.pid().expect("the relay runs");
    let (_, during) = run(&lab, "cat", &[&forwarding]);
    assert_eq!(during.trim(), "1");
    let pid = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw).expect("a pid");
    rustix::process::kill_process(pid, rustix::process::Signal::HUP).expect("SIGHUP");
    lab::wait_until(Duration::from_secs(10), || (!relay.is_running()).then_some(())).expect("the relay stopped");
    assert!(relay.log().contains("stopped; state kept"), "not a clean stop:\n{}", relay.log());
    assert!(!run(&lab, "nft", &["list", "tables"]).1.contains("hometun"), "its table stayed");
    let (_, after) = run(&lab, "cat", &[&forwarding]);
    assert_eq!(after, before, "forwarding was left changed");
}

#[test]
fn a_lan_interface_the_host_lacks_is_named_with_the_way_out_and_serve_changes_nothing() {
    // An interface renamed by an upgrade (eth0 → end0), or a typo in `init`.
    let lab = Lab::start().expect("lab");
    let forwarding = format!("/proc/sys/net/ipv4/conf/{HOME_LAN_IF}/forwarding");
    let mut relay = Relay::start(&lab, RelayOptions::default()).expect("relay");
    relay.stop().expect("stop");
    let (_, before) = run(&lab, "cat", &[&forwarding]);
    let bin = hometun_tests::relay::relay_binary().expect("the relay binary");
    let dir = relay.dir().to_str().expect("a path").to_owned();
    let init = lab.exec(Node::Home, &bin, ["init", "--dir", &dir, "--lan-interface", "eht0"]).expect("init");
    let said = String::from_utf8_lossy(&init.stderr);
    assert!(init.status.success(), "{said}");
    assert!(said.contains("no network interface named eht0"), "init did not warn: {said}");

    let said = serve_is_refused(&lab, &relay, "without its LAN interface");
    assert!(said.contains("lan_interface = \"eht0\""), "{said}");
    assert!(said.contains("--lan-interface NAME"), "no way out named: {said}");
    assert_eq!(run(&lab, "cat", &[&forwarding]).1, before, "forwarding changed");
}

#[test]
fn a_pool_another_vpn_on_the_host_uses_is_named_and_serve_changes_nothing() {
    // A home server moving from OpenVPN, whose default server network is 10.8.0.0/24 too.
    let lab = Lab::start().expect("lab");
    let mut relay = Relay::start(&lab, RelayOptions::default()).expect("relay");
    relay.stop().expect("stop");
    assert!(run(&lab, "ip", &["link", "add", "tun-openvpn", "type", "veth", "peer", "name", "tun-openvpn1"]).0);
    assert!(run(&lab, "ip", &["addr", "add", "10.8.0.1/24", "dev", "tun-openvpn"]).0);
    let said = serve_is_refused(&lab, &relay, "on a pool another VPN routes");
    assert!(said.contains("pool = 10.8.0.0/24 overlaps 10.8.0.0/24 on tun-openvpn"), "{said}");
    assert!(said.contains("--pool RANGE"), "no way out named: {said}");
}
