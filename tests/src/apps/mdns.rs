//! Name services of the lab LAN for discovery tests: a real mDNS/DNS-SD responder
//! (python-zeroconf from Debian's `python3-zeroconf`) announcing a LAN host's services, and a
//! real DNS server (`dnsmasq` from `dnsmasq-base`) that knows only reverse names. Both run in
//! lab namespaces, bound to lab addresses, and stop with the value (the lab kills them on drop
//! too).

use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::Context;

use crate::lab::{Lab, Node};

/// The responder: registers the services on the given address only (IPv4), prints
/// `announced`, sends goodbyes on SIGTERM.
const ANNOUNCER: &str = r#"
import signal, socket, sys, time
from zeroconf import IPVersion, ServiceInfo, Zeroconf
ip, host, label = sys.argv[1], sys.argv[2], sys.argv[3]
zc = Zeroconf(interfaces=[ip], ip_version=IPVersion.V4Only)
infos = []
for spec in sys.argv[4:]:
    kind, port = spec.split(":")
    info = ServiceInfo(kind + ".local.", label + "." + kind + ".local.", addresses=[socket.inet_aton(ip)],
                       port=int(port), properties={"path": "/"}, server=host + ".")
    zc.register_service(info, ttl=120)
    infos.append(info)
print("announced", flush=True)
def stop(*_):
    for info in infos:
        zc.unregister_service(info)
    zc.close()
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
deadline = time.time() + 600
while time.time() < deadline:
    time.sleep(0.5)
stop()
"#;

/// An mDNS responder announcing one LAN host's services.
pub struct Announcer {
    lab: Lab,
    pid: u32,
}

impl Announcer {
    /// Announces `services` (`("_http._tcp", 80)`, …) of the host `node` at `address`, as host
    /// name `host` (e.g. `nas.local`) with instance name `label`. Returns once registered.
    pub fn start(
        lab: &Lab,
        node: Node,
        address: Ipv4Addr,
        host: &str,
        label: &str,
        services: &[(&str, u16)],
    ) -> anyhow::Result<Self> {
        let log = format!("mdns-{host}");
        let mut args = vec!["-c".to_owned(), ANNOUNCER.to_owned(), address.to_string(), host.into(), label.into()];
        args.extend(services.iter().map(|(kind, port)| format!("{kind}:{port}")));
        let pid = lab.spawn(node, &log, "/usr/bin/python3", &args)?;
        lab.wait_for_log(&log, "announced", Duration::from_secs(20))?;
        Ok(Self { lab: lab.clone(), pid })
    }

    /// Says goodbye (the services leave) and stops.
    pub fn stop(self) -> anyhow::Result<()> {
        self.lab.stop(self.pid, Duration::from_secs(5)).map(|_| ())
    }
}

/// A DNS server that answers only the given reverse names.
pub struct ReverseDns {
    lab: Lab,
    pid: u32,
}

impl ReverseDns {
    /// Serves on `listen:port` in `node`, answering PTR queries for each `(address, name)`.
    pub fn start(
        lab: &Lab,
        node: Node,
        listen: Ipv4Addr,
        port: u16,
        names: &[(Ipv4Addr, &str)],
    ) -> anyhow::Result<Self> {
        let mut args = vec![
            "--no-daemon".to_owned(),
            "--conf-file=/dev/null".into(),
            "--no-resolv".into(),
            "--no-hosts".into(),
            "--bind-interfaces".into(),
            format!("--listen-address={listen}"),
            format!("--port={port}"),
            "--user=root".into(),
            "--pid-file=".into(),
            "--log-queries".into(),
        ];
        for (address, name) in names {
            let [a, b, c, d] = address.octets();
            args.push(format!("--ptr-record={d}.{c}.{b}.{a}.in-addr.arpa,{name}"));
        }
        let log = format!("dnsmasq-{port}");
        let pid = lab.spawn(node, &log, "dnsmasq", &args).context("dnsmasq (apt dnsmasq-base)")?;
        lab.wait_for_log(&log, "started", Duration::from_secs(10))?;
        Ok(Self { lab: lab.clone(), pid })
    }

    /// Stops the server.
    pub fn stop(self) -> anyhow::Result<()> {
        self.lab.stop(self.pid, Duration::from_secs(5)).map(|_| ())
    }
}

/// A hostile LAN host's flood of mDNS responses: what no browser asked for. Even packets carry
/// `per_packet` addresses of names nobody announced, odd ones as many instances of `_http._tcp`
/// that no service record ever resolves; every record claims the longest lifetime (TTL
/// 2^31 − 1). Sent from port 5353 to the group, like a responder, for at most 20 s.
const FLOOD: &str = r#"
import socket, struct, sys, time
src, packets, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def name(text):
    out = b""
    for label in text.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"
def record(owner, kind, rdata, flush):
    return name(owner) + struct.pack(">HHIH", kind, 0x8001 if flush else 1, 0x7FFFFFFF, len(rdata)) + rdata
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((src, 5353))
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(src))
deadline, sent = time.time() + 20, 0
for i in range(packets):
    if time.time() > deadline:
        break
    if i % 2 == 0:
        records = [record(f"flood{i}-{j}.local", 1, socket.inet_aton(src), True) for j in range(per)]
    else:
        records = [record("_http._tcp.local", 12, name(f"flood{i}-{j}._http._tcp.local"), False) for j in range(per)]
    s.sendto(struct.pack(">HHHHHH", 0, 0x8400, 0, len(records), 0, 0) + b"".join(records), ("224.0.0.251", 5353))
    sent += 1
    if sent % 100 == 0:
        time.sleep(0.002)
print("sent", sent, "records", sent * per, flush=True)
"#;

/// Floods the LAN from `node` at `address` with `packets` mDNS responses of `per_packet`
/// records each (see [`FLOOD`]); returns what the flooder printed once it is done.
pub fn flood(lab: &Lab, node: Node, address: Ipv4Addr, packets: u32, per_packet: u32) -> anyhow::Result<String> {
    let args = ["-c".to_owned(), FLOOD.to_owned(), address.to_string(), packets.to_string(), per_packet.to_string()];
    let out = lab.exec(node, "/usr/bin/python3", &args)?;
    anyhow::ensure!(out.status.success(), "the flood failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
