//! Home at a glance: the relay discovers the LAN's hosts (neighbour table, a real mDNS
//! responder, reverse names from a real DNS server), each device learns only the hosts its ACL
//! lets it reach, and a device with the `wake` flag wakes a sleeping host with a magic packet
//! that a capture on the LAN sees — rate limited, refused without the flag, and none of the
//! discovery traffic leaves the LAN.

use std::net::SocketAddrV4;
use std::time::Duration;

use hometun_shared::control::{HostList, WakeOutcome};
use hometun_shared::invite::Invite;
use hometun_tests::apps::mdns::{self, Announcer, ReverseDns};
use hometun_tests::browser::{self, webdriver::Chromedriver, webdriver::Session};
use hometun_tests::capture::Capture;
use hometun_tests::client::Device;
use hometun_tests::lab::{addr, Lab, Node, HOME_LAN_IF};
use hometun_tests::relay::{self, Relay, RelayOptions};

const T: Duration = Duration::from_secs(25);
const PRINTER: &str = "printer.home.arpa";

/// An invite made with extra flags (`--wake`, `--allow …`).
fn invite(relay: &Relay, name: &str, flags: &[&str]) -> Invite {
    let mut args = vec!["invite", "--no-qr", "--name", name];
    args.extend_from_slice(flags);
    let out = relay.admin(&args).expect("invite");
    let link = out.lines().find(|l| l.contains("#invite=")).expect("a link");
    Invite::parse(link).expect("a valid link")
}

/// The hosts of a list as `(last octet, names, services as type:port, wakeable)`.
fn summary(list: &HostList) -> Vec<(u8, Vec<String>, Vec<String>, bool)> {
    list.hosts
        .iter()
        .map(|h| {
            let services = h.services.iter().map(|s| format!("{}:{}", s.kind, s.port)).collect();
            (h.address.octets()[3], h.names.clone(), services, h.wakeable)
        })
        .collect()
}

fn has(list: &HostList, last: u8) -> bool {
    list.hosts.iter().any(|h| h.address.octets()[3] == last)
}

/// A tcpdump in `node` whose packets come back as hex (`tcpdump -x`), for payload checks.
struct HexCapture {
    lab: Lab,
    pid: u32,
    file: std::path::PathBuf,
}

impl HexCapture {
    fn start(lab: &Lab, node: Node, interface: &str, filter: &str) -> Self {
        let file = lab.dir().join(format!("hex-{interface}.pcap"));
        let log = format!("hex-{interface}");
        let args =
            ["-i", interface, "-n", "-U", "--immediate-mode", "-Z", "root", "-w", file.to_str().unwrap(), filter];
        let pid = lab.spawn(node, &log, "tcpdump", args).expect("tcpdump");
        lab.wait_for_log(&log, "listening on", Duration::from_secs(10)).expect("tcpdump listens");
        Self { lab: lab.clone(), pid, file }
    }

    /// The payload-bearing packets, each as one lowercase hex string of the whole IP packet.
    fn stop(self) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(200));
        self.lab.stop(self.pid, Duration::from_secs(5)).unwrap();
        let out = std::process::Command::new("tcpdump").args(["-n", "-x", "-r"]).arg(&self.file).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let mut packets: Vec<String> = Vec::new();
        for line in text.lines() {
            match line.trim_start().split_once(":  ") {
                Some((offset, hex)) if offset.starts_with("0x") => {
                    if let Some(last) = packets.last_mut() {
                        last.extend(hex.chars().filter(|c| !c.is_whitespace()));
                    }
                }
                _ => packets.push(String::new()),
            }
        }
        packets
    }
}

/// A lab whose LAN has a NAS announcing web pages (http and https) and SSH over mDNS (h10, `nas.local`, "Lab
/// NAS"), a printer known only by its reverse name (h20), and a relay reading reverse names from
/// the lab's DNS server, with both hosts in its neighbour table. Also returns the captures that
/// must stay empty: UDP on the router's internet side, mDNS/DNS into the tunnel.
struct DiscoveryLab {
    lab: Lab,
    relay: Relay,
    nas: Announcer,
    _dns: ReverseDns,
    wan_udp: Capture,
    tun_discovery: Capture,
}

fn discovery_lab(options: RelayOptions, extra_settings: &str) -> DiscoveryLab {
    let lab = Lab::start().expect("lab");
    let mut relay = Relay::start(&lab, options).expect("relay");
    let dns = ReverseDns::start(&lab, Node::Router, addr::ROUTER_LAN, 5300, &[(addr::HOST20, PRINTER)]).expect("dns");
    let nas = Announcer::start(
        &lab,
        Node::Host10,
        addr::HOST10,
        "nas.local",
        "Lab NAS",
        &[("_http._tcp", 80), ("_https._tcp", 443), ("_ssh._tcp", 22)],
    )
    .expect("mDNS responder");
    let wan_udp = Capture::start(&lab, Node::Router, "wan0", "udp").unwrap();

    // The lab's reverse names come from its own DNS server on port 5300.
    let config = relay.dir().join("relay.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!("\n[discovery]\nreverse_dns = \"192.168.0.1:5300\"\npoll_secs = 1\n{extra_settings}"));
    std::fs::write(&config, text).unwrap();
    relay.restart().expect("relay with discovery settings");
    let tun_discovery = Capture::start(&lab, Node::Home, "hometun0", "udp port 5353 or udp port 5300").unwrap();

    // The printer announces nothing: the relay learns of it from its neighbour table.
    // (Any exchange fills it: here the home server opens the hosts' web pages.)
    lab.run_in(Node::Home, || async {
        for host in [addr::HOST10, addr::HOST20] {
            let connect = tokio::net::TcpStream::connect(SocketAddrV4::new(host, 80));
            tokio::time::timeout(T, connect).await.expect("in time").expect("the host answers");
        }
    });
    DiscoveryLab { lab, relay, nas, _dns: dns, wan_udp, tun_discovery }
}

#[test]
fn the_launcher_list_is_per_device_and_a_sleeping_host_is_woken() {
    let DiscoveryLab { lab, relay, nas, _dns, wan_udp, tun_discovery } = discovery_lab(RelayOptions::default(), "");
    let mac10 = String::from_utf8(lab.exec(Node::Host10, "cat", ["/sys/class/net/eth0/address"]).unwrap().stdout)
        .unwrap()
        .trim()
        .to_owned();

    let everything = invite(&relay, "phone", &["--wake"]);
    let only20 = invite(&relay, "tv", &["--allow", "192.168.0.20/32"]);
    let only10 = invite(&relay, "tablet", &["--allow", "192.168.0.10/32:80/tcp"]);
    let target = relay.target().unwrap();

    lab.run_in(Node::Wan, || async {
        let phone = Device::new(&everything).enrol(&target, &everything).await.expect("phone");
        let list = phone
            .hosts(T, |l| {
                l.hosts.iter().any(|h| h.names.iter().any(|n| n == PRINTER))
                    && l.hosts.iter().any(|h| h.services.len() == 3 && h.names == ["nas.local"])
            })
            .await
            .unwrap_or_else(|e| panic!("the phone's list names both hosts: {e}\n{}", relay.log()));
        assert!(list.may_wake);
        let seen = summary(&list);
        let nas_entry = seen.iter().find(|h| h.0 == 10).expect(".10 listed");
        assert_eq!(nas_entry.1, ["nas.local"]);
        assert_eq!(nas_entry.2, ["_http._tcp:80", "_https._tcp:443", "_ssh._tcp:22"]);
        assert!(nas_entry.3, "its MAC is known, so it can be woken");
        assert_eq!(list.hosts.iter().find(|h| h.address == addr::HOST10).unwrap().label.as_deref(), Some("Lab NAS"));
        let printer = seen.iter().find(|h| h.0 == 20).expect(".20 listed");
        assert_eq!((printer.1.as_slice(), printer.2.len()), ([PRINTER.to_owned()].as_slice(), 0));

        // Each restricted device sees its one host and nothing of the other.
        let tv = Device::new(&only20).enrol(&target, &only20).await.expect("tv");
        let tv_list = tv.hosts(T, |l| has(l, 20)).await.expect("the tv's list");
        assert_eq!(summary(&tv_list), [(20, vec![PRINTER.to_owned()], vec![], false)]);
        assert!(!tv_list.may_wake);
        let tablet = Device::new(&only10).enrol(&target, &only10).await.expect("tablet");
        let tablet_list = tablet.hosts(T, |l| has(l, 10)).await.expect("the tablet's list");
        assert_eq!(summary(&tablet_list), [(10, vec!["nas.local".to_owned()], vec!["_http._tcp:80".into()], false)]);

        // Asleep: the NAS leaves the LAN. Without the flag the relay refuses; with it the magic
        // packet goes out once, and a second request within 10 s is refused.
        lab.command_in(Node::Host10, &["ip", "link", "set", "eth0", "down"]).unwrap();
        assert!(
            phone.ping(addr::HOST10, 100, Duration::from_secs(1)).await.is_err(),
            "the sleeping host answers no ping"
        );
        let magic = HexCapture::start(&lab, Node::Home, HOME_LAN_IF, "udp port 9");
        assert_eq!(tv.wake(addr::HOST20, T).await.unwrap(), Some(WakeOutcome::NotAllowed), "no wake flag");
        assert_eq!(tv.wake(addr::HOST10, T).await.unwrap(), Some(WakeOutcome::NotAllowed), "not its host either");
        assert_eq!(phone.wake(addr::HOST10, T).await.unwrap(), Some(WakeOutcome::Sent));
        assert_eq!(phone.wake(addr::HOST10, T).await.unwrap(), Some(WakeOutcome::RateLimited));
        let packets = magic.stop();
        let mac_hex: String = mac10.replace(':', "");
        let payload = format!("ffffffffffff{}", mac_hex.repeat(16));
        let magic_packets: Vec<&String> = packets.iter().filter(|p| p.contains(&payload)).collect();
        assert_eq!(magic_packets.len(), 1, "one magic packet for {mac10} on the LAN: {packets:?}");
        assert!(magic_packets[0].contains("c0a800ff"), "sent to the LAN broadcast 192.168.0.255");

        // It wakes (the link comes back) and answers ping through the tunnel, as the page waits.
        lab.command_in(Node::Host10, &["ip", "link", "set", "eth0", "up"]).unwrap();
        let mut answered = false;
        for seq in 1..=20u16 {
            if phone.ping(addr::HOST10, seq, Duration::from_millis(500)).await.is_ok() {
                answered = true;
                break;
            }
        }
        assert!(answered, "the woken host answers ping");
        let page = phone.http_get(SocketAddrV4::new(addr::HOST10, 80), "/", T).await.expect("its web app answers");
        assert!(String::from_utf8_lossy(&page.body).contains("h10"));
    });

    // The operator's view: names, addresses, MACs, services.
    let hosts = relay.admin(&["hosts"]).expect("hosts");
    for needle in ["192.168.0.10", &mac10, "nas.local", "\"Lab NAS\"", "_http._tcp:80", "_ssh._tcp:22", PRINTER] {
        assert!(hosts.contains(needle), "`hosts` shows {needle}:\n{hosts}");
    }
    let json: serde_json::Value = serde_json::from_str(&relay.admin(&["hosts", "--json"]).unwrap()).unwrap();
    assert!(json.as_array().unwrap().iter().any(|h| h["address"] == "192.168.0.20" && h["names"][0] == PRINTER));
    let log = relay.log();
    assert!(log.contains("wake request") && log.contains("rate-limited") && log.contains("not-allowed"), "{log}");

    // Goodbye: the NAS's services leave every list.
    nas.stop().unwrap();
    hometun_tests::lab::wait_until(T, || {
        let json: serde_json::Value = serde_json::from_str(&relay.admin(&["hosts", "--json"]).ok()?).ok()?;
        let nas = json.as_array()?.iter().find(|h| h["address"] == "192.168.0.10")?.clone();
        nas["services"].as_array()?.is_empty().then_some(())
    })
    .expect("the NAS's services are gone after its goodbye");

    let wan = wan_udp.stop().unwrap();
    assert!(wan.is_empty(), "no discovery traffic on the internet side:\n{}", wan.join("\n"));
    let tun = tun_discovery.stop().unwrap();
    assert!(tun.is_empty(), "no mDNS or DNS into the tunnel:\n{}", tun.join("\n"));
}

/// Any host on the LAN can send mDNS responses nobody asked for. One that floods the relay with
/// 400,000 records (addresses of names no service points to, and instances that never resolve,
/// each claiming a lifetime of 68 years) grows the relay's memory by a few MiB at most; the NAS
/// found before stays listed, and a desktop another host announces after the flood is found.
#[test]
fn a_lan_host_flooding_mdns_neither_grows_the_relay_nor_hides_the_others() {
    let DiscoveryLab { lab, relay, nas: _nas, _dns, wan_udp: _w, tun_discovery: _t } =
        discovery_lab(RelayOptions::default(), "");
    let phone_invite = invite(&relay, "phone", &[]);
    let target = relay.target().unwrap();
    let pid = relay.pid().expect("the relay runs");
    lab.run_in(Node::Wan, || async {
        let phone = Device::new(&phone_invite).enrol(&target, &phone_invite).await.expect("phone");
        let nas_listed = |l: &HostList| l.hosts.iter().any(|h| h.names == ["nas.local"] && h.services.len() == 3);
        phone.hosts(T, nas_listed).await.unwrap_or_else(|e| panic!("the NAS is listed: {e}\n{}", relay.log()));
        let before = relay::footprint(pid).rss_kib;

        // The flooding host is 192.168.0.30 (an address of h20's own); the desktop, announced
        // after the flood, is another host (192.168.0.20).
        lab.exec(Node::Host20, "ip", ["addr", "add", "192.168.0.30/24", "dev", "eth0"]).unwrap();
        let sent = mdns::flood(&lab, Node::Host20, HOST30, 10_000, 40).expect("flood");
        std::thread::sleep(Duration::from_secs(2));
        let grown = relay::footprint(pid).rss_kib.saturating_sub(before);
        eprintln!("mDNS flood: {sent}; the relay grew by {grown} KiB");
        assert!(sent.starts_with("sent 10000 "), "the whole flood went out: {sent}");
        assert!(grown < 8 * 1024, "the relay grew by {grown} KiB under the flood");

        let hosts = relay.admin(&["hosts"]).expect("hosts");
        assert!(hosts.contains("nas.local") && !hosts.contains("flood"), "after the flood:\n{hosts}");
        let desk = Announcer::start(&lab, Node::Host20, addr::HOST20, "desk.local", "Lab Desk", &[("_rfb._tcp", 5900)])
            .expect("mDNS responder on h20");
        let list = phone
            .hosts(T, |l| nas_listed(l) && l.hosts.iter().any(|h| h.names.first().is_some_and(|n| n == "desk.local")))
            .await
            .unwrap_or_else(|e| panic!("the desktop announced after the flood is listed: {e}\n{}", relay.log()));
        let desk_entry = summary(&list).into_iter().find(|h| h.0 == 20).expect(".20 listed");
        assert_eq!(desk_entry.2, ["_rfb._tcp:5900"]);
        desk.stop().unwrap();
    });
}

/// A LAN address the lab adds to h20 for a while: a host that joins and later leaves.
const HOST30: std::net::Ipv4Addr = std::net::Ipv4Addr::new(192, 168, 0, 30);

fn host30(list: &HostList) -> Option<&hometun_shared::control::Host> {
    list.hosts.iter().find(|h| h.address == HOST30)
}

/// The relay follows the kernel's neighbour events (the full re-read is an hour away here):
/// a host that joins the LAN shows up in a subscribed device's pushed list within seconds, and
/// is pushed as offline once the kernel gives up on it after it left. Then the per-device wake
/// limit (2 a minute here): a device's first two magic packets go out and are captured on the
/// LAN, the third request is refused, while another device may still wake.
#[test]
fn hosts_coming_and_going_are_pushed_and_the_per_device_wake_limit_refuses_the_rest() {
    let DiscoveryLab { lab, relay, nas: _nas, _dns, wan_udp: _w, tun_discovery: _t } =
        discovery_lab(RelayOptions::default(), "resync_secs = 3600\nwake_per_minute = 2\n");
    let mac = |node| {
        let out = lab.exec(node, "cat", ["/sys/class/net/eth0/address"]).unwrap().stdout;
        String::from_utf8(out).unwrap().trim().replace(':', "")
    };
    let (mac10, mac20) = (mac(Node::Host10), mac(Node::Host20));
    let phone_invite = invite(&relay, "phone", &["--wake"]);
    let laptop_invite = invite(&relay, "laptop", &["--wake"]);
    let target = relay.target().unwrap();
    // The home server resolves neighbours quickly, so a host that left is given up within
    // seconds rather than the kernel's default half a minute or more.
    for (key, value) in
        [("base_reachable_time_ms", "1000"), ("delay_first_probe_time", "1"), ("retrans_time_ms", "300")]
    {
        lab.sysctl(Node::Home, &format!("net.ipv4.neigh.{HOME_LAN_IF}.{key}={value}")).unwrap();
    }

    lab.run_in(Node::Wan, || async {
        let phone = Device::new(&phone_invite).enrol(&target, &phone_invite).await.expect("phone");
        let before = phone.hosts(T, |l| has(l, 10) && has(l, 20)).await.expect("the phone's first list");
        assert!(host30(&before).is_none(), "192.168.0.30 is not on the LAN yet: {:?}", summary(&before));

        // It joins: the new address opens a connection to the home server once.
        lab.exec(Node::Host20, "ip", ["addr", "add", "192.168.0.30/24", "dev", "eth0"]).unwrap();
        let joined = std::time::Instant::now();
        let hello = "import socket; socket.create_connection(('192.168.0.2', 443), 2, ('192.168.0.30', 0)).close()";
        let hello = lab.exec(Node::Host20, "python3", ["-c", hello]).unwrap();
        assert!(hello.status.success(), "the new host reaches the home server: {hello:?}");
        let list = phone
            .hosts(Duration::from_secs(5), |l| host30(l).is_some_and(|h| h.online))
            .await
            .unwrap_or_else(|e| panic!("192.168.0.30 pushed as online within 5 s: {e}\n{}", relay.log()));
        eprintln!("192.168.0.30 pushed after {:.1?}", joined.elapsed());
        assert!(host30(&list).unwrap().wakeable, "its MAC is known");

        // It leaves; the phone tries to reach it, the kernel gives up, the list follows.
        lab.exec(Node::Host20, "ip", ["addr", "del", "192.168.0.30/24", "dev", "eth0"]).unwrap();
        let left = std::time::Instant::now();
        let knock = async {
            for seq in 1..=40u16 {
                let _ = phone.ping(HOST30, seq, Duration::from_millis(500)).await;
            }
        };
        let offline = phone.hosts(Duration::from_secs(20), |l| host30(l).is_some_and(|h| !h.online));
        let list = tokio::select! {
            list = offline => list.unwrap_or_else(|e| panic!("192.168.0.30 pushed as offline within 20 s: {e}")),
            () = knock => panic!("192.168.0.30 still online after 40 pings"),
        };
        eprintln!("192.168.0.30 pushed offline after {:.1?}", left.elapsed());
        assert!(host30(&list).unwrap().wakeable, "offline, but its MAC is remembered for waking");

        // Two magic packets a minute for the laptop: the third request is refused, even for a
        // host nobody woke (so only the per-device limit can have refused it).
        let laptop = Device::new(&laptop_invite).enrol(&target, &laptop_invite).await.expect("laptop");
        laptop.hosts(T, |l| has(l, 10) && has(l, 20)).await.expect("the laptop's list");
        let magic = HexCapture::start(&lab, Node::Home, HOME_LAN_IF, "udp port 9");
        assert_eq!(laptop.wake(addr::HOST10, T).await.unwrap(), Some(WakeOutcome::Sent));
        assert_eq!(laptop.wake(addr::HOST20, T).await.unwrap(), Some(WakeOutcome::Sent));
        assert_eq!(laptop.wake(HOST30, T).await.unwrap(), Some(WakeOutcome::RateLimited), "the third within a minute");
        let packets = magic.stop();
        let magic_for = |mac: &str| {
            let payload = format!("ffffffffffff{}", mac.repeat(16));
            packets.iter().filter(|p| p.contains(&payload)).count()
        };
        assert_eq!((magic_for(&mac10), magic_for(&mac20)), (1, 1), "one packet each for .10 and .20: {packets:?}");
        assert_eq!(phone.wake(HOST30, T).await.unwrap(), Some(WakeOutcome::Sent), "the phone is not held back");
    });
    let log = relay.log();
    assert!(log.contains("per-device limit per minute") && log.contains("laptop"), "the log says which limit:\n{log}");
}

/// The launcher in a real Chromium (with the opt-in web-port probe): the Home card shows both
/// hosts by name and kind, the printer with the web page the probe found, a click on
/// the NAS's web entry opens its page, its https page has an entry of its own, `hometun.fetch`
/// reaches it by its mDNS name, and Wake shows "waking…" until the host answers ping.
#[test]
fn the_home_card_shows_the_devices_opens_their_apps_and_wakes_one() {
    let started = std::time::Instant::now();
    let dist = browser::page_dist();
    assert!(dist.join("index.html").exists(), "the page is not built: run `bash scripts/build-page.sh` first");
    let DiscoveryLab { lab, relay, nas: _nas, _dns, wan_udp: _w, tun_discovery: _t } =
        discovery_lab(RelayOptions { www: Some(dist), ..RelayOptions::default() }, "probe_web_ports = true\n");
    eprintln!("lab up after {:.1?}", started.elapsed());
    let link = invite(&relay, "browser", &["--wake"]).to_link();
    let spki = browser::relay_spki(relay.dir()).expect("relay certificate pin");
    let driver = Chromedriver::start(&lab, Node::Wan).expect("chromedriver");
    let page = driver.session(&browser::chromium_args(&spki), 900, 1000).expect("chromium");
    eprintln!("chromium up after {:.1?}", started.elapsed());
    let result = use_the_home_card(&lab, &page, &link);
    eprintln!("done after {:.1?}", started.elapsed());
    if let Err(e) = result {
        let shot = browser::output_dir().ok().map(|d| d.join("discovery-failed.png"));
        if let Some(shot) = &shot {
            let _ = page.screenshot(shot);
        }
        let hosts = page.execute("return JSON.stringify(window.hometun.hosts())", &[]).unwrap_or_default();
        panic!("home card: {e:#}\nhosts: {hosts}\nconsole:\n{}\nrelay:\n{}", page.console(), relay.last_log());
    }
}

fn use_the_home_card(lab: &Lab, page: &Session<'_>, link: &str) -> anyhow::Result<()> {
    page.goto(link)?;
    let state = page.wait_for(
        "the page to connect",
        T,
        "const s = document.body.dataset.state; return s === 'connected' || s === 'failed' ? s : null",
    )?;
    anyhow::ensure!(state == "connected", "page state {state}");
    eprintln!("connected");

    // Both hosts, by name and kind, with their entries.
    let item = |address: &str| format!("document.getElementById('home-host-{}')", address.replace('.', "-"));
    let nas = page.wait_for(
        "the NAS in the Home card",
        T,
        &format!(
            "const e = {}; const t = e ? e.innerText : ''; \
             return ['Lab NAS', 'computer', 'nas.local', 'Web', 'Wake'].every(n => t.includes(n)) ? t : null",
            item("192.168.0.10")
        ),
    )?;
    let nas = nas.as_str().unwrap_or_default().to_owned();
    for needle in ["Lab NAS", "computer", "nas.local", "Web", "Wake"] {
        anyhow::ensure!(nas.contains(needle), "the NAS entry shows {needle}: {nas:?}");
    }
    let printer = page.wait_for(
        "the printer in the Home card",
        T,
        &format!(
            "const e = {}; return e && e.textContent.includes('{PRINTER}') ? e.innerText : null",
            item("192.168.0.20")
        ),
    )?;
    anyhow::ensure!(printer.as_str().unwrap_or_default().starts_with(PRINTER), "named by its reverse name: {printer}");
    // The NAS's https page has an entry of its own, which opens through the Apps card too.
    let https = page.execute(
        &format!(
            "const b = [...{}.querySelectorAll('button[data-action=web]')].find(b => b.dataset.url.startsWith('https:')); \
             return b ? [b.textContent, b.disabled, b.dataset.url] : null",
            item("192.168.0.10")
        ),
        &[],
    )?;
    anyhow::ensure!(
        https[0] == "Web (https)" && https[1] == false && https[2] == "https://nas.local/",
        "the NAS's https entry: {https}"
    );
    // It announces nothing, but the opt-in probe found its web page.
    page.wait_for(
        "the printer's probed web page",
        T,
        &format!(
            "const e = {}; return e && e.querySelector('button[data-action=web]') ? true : null",
            item("192.168.0.20")
        ),
    )?;

    // Names resolve inside the page.
    let body = page.execute_async(
        "const done = arguments[0]; window.hometun.fetch('http://nas.local/') \
           .then(r => r.text ? r.text() : r.body).then(t => done(String(t)), e => done('error: ' + e));",
        &[],
    )?;
    anyhow::ensure!(body.as_str().unwrap_or_default().contains("Hello from h10"), "fetch by mDNS name: {body}");

    // A click on the web entry opens the NAS's page (a snapshot: this relay has no domain).
    page.execute(&format!("{}.querySelector('button[data-action=web]').click()", item("192.168.0.10")), &[])?;
    page.wait_for(
        "the NAS's page opened from the Home card",
        T,
        "const f = document.getElementById('browse-frame'); const d = f && f.contentDocument; \
         return d && d.body && d.body.innerText.includes('Hello from h10') ? true : null",
    )?;

    // Asleep, then woken: "waking…" until it answers ping.
    lab.exec(Node::Host10, "ip", ["link", "set", "eth0", "down"])?;
    page.execute(&format!("{}.querySelector('button[data-action=wake]').click()", item("192.168.0.10")), &[])?;
    page.wait_for(
        "waking…",
        T,
        &format!("const e = {}; return e && e.dataset.state === 'waking…' ? true : null", item("192.168.0.10")),
    )?;
    // Still "waking…" after more than one unanswered ping (one every 2 s), whatever the list
    // says: only the ping's answer ends it.
    std::thread::sleep(Duration::from_secs(5));
    let still = page.execute(&format!("const e = {}; return e ? e.dataset.state : null", item("192.168.0.10")), &[])?;
    anyhow::ensure!(still == "waking…", "the NAS asleep for 5 s shows {still}, not waking…");
    let hint = page.execute(&format!("return {}.innerText", item("192.168.0.10")), &[])?;
    anyhow::ensure!(hint.as_str().unwrap_or_default().contains("waking…"), "the entry reads waking…: {hint}");
    lab.exec(Node::Host10, "ip", ["link", "set", "eth0", "up"])?;
    page.wait_for(
        "the woken NAS online again",
        T,
        &format!("const e = {}; return e && e.dataset.state === 'online' ? true : null", item("192.168.0.10")),
    )?;
    Ok(())
}
