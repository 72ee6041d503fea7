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
