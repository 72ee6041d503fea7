//! A home network in network namespaces, shaped like the reference OpenVPN home design.
//!
//! ```text
//!   wan (remote device)        router (home router)                   home (home server: relay)
//!   eth0 203.0.113.2/24 ─── wan0 203.0.113.1/24                       eth0 192.168.0.2/24
//!   default via .1            DNAT tcp 443 → 192.168.0.2:443   ┌──── (tun made by the relay)
//!                             br0 192.168.0.1/24 ── switch ────┤
//!                                                              ├──── h10: eth0 192.168.0.10/24
//!                                                              │     HTTP :80, echo :7, banner :22
//!                                                              └──── h20: eth0 192.168.0.20/24
//!                                                                    HTTP :80, echo :7, banner :22
//!   The router also answers DNS on 192.168.0.1:53 (nas.home.arpa → 192.168.0.10).
//!
//!   ca (an ACME CA on the internet, only after [`Lab::start_acme`])
//!   eth0 198.51.100.2/24 ─── wan1 198.51.100.1/24 on the router (a second uplink)
//!   pebble :14000 (directory), :15000 (management); pebble-challtestsrv DNS :8053 answers
//!   every name with 203.0.113.1, so validation reaches the relay through the port forward.
//! ```
//!
//! The internet side reaches the home only through the port forward, exactly as behind a real
//! home router: nothing from `wan` is forwarded into the LAN except DNAT'd TCP 443 to the relay.
//! LAN hosts route through the router; [`Lab::add_return_route`] adds the one static route routed
//! mode needs (`10.8.0.0/24 via 192.168.0.2`) on the router.
//!
//! Names are unique per process and lab (`htl<pid>-<n>-<node>`), so tests run in parallel.
//! Dropping a [`Lab`] (also while unwinding from a panic) kills what it started and deletes its
//! namespaces; [`Lab::start`] first removes namespaces left behind by dead test processes.

use std::ffi::OsStr;
use std::fs::File;
use std::future::Future;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};

/// Prefix of every namespace a lab creates.
pub const PREFIX: &str = "htl";

/// Addresses of the lab (all inside namespaces the lab creates).
pub mod addr {
    use std::net::Ipv4Addr;
    /// The remote device on the internet side.
    pub const WAN_CLIENT: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);
    /// The home router's public address; TCP 443 there is forwarded to the relay.
    pub const ROUTER_WAN: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
    /// The home router's LAN address: LAN default gateway and DNS server.
    pub const ROUTER_LAN: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 1);
    /// The home server that runs the relay.
    pub const HOME: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 2);
    /// LAN host with HTTP, echo and the :22 banner.
    pub const HOST10: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 10);
    /// A second LAN host with the same services.
    pub const HOST20: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 20);
    /// The LAN subnet.
    pub const LAN: &str = "192.168.0.0/24";
    /// The relay's client pool (its default).
    pub const POOL: &str = "10.8.0.0/24";
    /// The relay's TLS port, on `HOME` and forwarded from `ROUTER_WAN`.
    pub const RELAY_PORT: u16 = 443;
    /// The host on the side network (a container behind the home server's `docker0`).
    pub const SIDE_HOST: Ipv4Addr = Ipv4Addr::new(172, 17, 0, 2);
    /// The name the router's DNS answers with `HOST10`.
    pub const NAS_NAME: &str = "nas.home.arpa";
    /// The ACME CA on the internet side ([`super::Lab::start_acme`]).
    pub const CA: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
    /// The router's address on the CA's link.
    pub const ROUTER_CA_SIDE: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
    /// The relay's DNS name in ACME tests (the lab's DNS resolves it, and every sub-name, to
    /// `ROUTER_WAN`).
    pub const DOMAIN: &str = "home.test";
}

/// The relay's LAN interface name inside the `home` namespace.
pub const HOME_LAN_IF: &str = "eth0";
/// The router's bridge port towards the home server: every packet the relay puts on the LAN
/// crosses it, so captures there prove what the relay let through.
pub const ROUTER_HOME_PORT: &str = "p-home";

/// The home server's interface to the side network of [`Lab::add_side_network`].
pub const SIDE_IF: &str = "docker0";

/// One namespace of the lab.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Node {
    /// The remote device on the internet.
    Wan,
    /// The home router: NAT, port forward, LAN bridge, DNS.
    Router,
    /// The home server where the relay runs.
    Home,
    /// LAN host 192.168.0.10.
    Host10,
    /// LAN host 192.168.0.20.
    Host20,
    /// The ACME CA on the internet side (only after [`Lab::start_acme`]).
    Ca,
    /// A network only the home server reaches, standing for a Docker bridge (only after
    /// [`Lab::add_side_network`]): 172.17.0.2 behind the home server's `docker0`.
    Side,
}

impl Node {
    /// Every node, in creation order.
    pub const ALL: [Self; 5] = [Self::Wan, Self::Router, Self::Home, Self::Host10, Self::Host20];

    fn suffix(self) -> &'static str {
        match self {
            Self::Wan => "wan",
            Self::Router => "rtr",
            Self::Home => "home",
            Self::Host10 => "h10",
            Self::Host20 => "h20",
            Self::Ca => "ca",
            Self::Side => "side",
        }
    }
}

/// A running lab. Cheap to clone; the namespaces go when the last clone is dropped.
#[derive(Clone)]
pub struct Lab(Arc<Inner>);

struct Inner {
    _permit: Permit,
    id: String,
    dir: tempfile::TempDir,
    namespaces: Mutex<Vec<String>>,
    children: Mutex<Vec<Child>>,
}

static LAB_COUNTER: AtomicU32 = AtomicU32::new(0);
static SWEEP: Once = Once::new();

impl Lab {
    /// Builds the whole lab and starts the LAN services; returns once they answer.
    /// Fails loudly when not root or when `ip`/`nft` are missing.
    pub fn start() -> anyhow::Result<Self> {
        ensure!(rustix::process::geteuid().is_root(), "the hometun lab needs root (network namespaces)");
        SWEEP.call_once(sweep_stale);
        let permit = Permit::acquire();
        let id = format!("{PREFIX}{}-{}", std::process::id(), LAB_COUNTER.fetch_add(1, Ordering::Relaxed));
        let dir = tempfile::Builder::new().prefix(&format!("{id}-")).tempdir()?;
        let lab = Self(Arc::new(Inner {
            _permit: permit,
            id,
            dir,
            namespaces: Mutex::new(Vec::new()),
            children: Mutex::new(Vec::new()),
        }));
        lab.build_topology().with_context(|| format!("building lab {}", lab.id()))?;
        lab.start_lan_services()?;
        Ok(lab)
    }

    /// This lab's unique id (prefix of its namespace names).
    pub fn id(&self) -> &str {
        &self.0.id
    }

    /// The namespace name of `node`.
    pub fn netns(&self, node: Node) -> String {
        format!("{}-{}", self.0.id, node.suffix())
    }

    /// A scratch directory removed with the lab (logs live here too).
    pub fn dir(&self) -> &Path {
        self.0.dir.path()
    }

    fn build_topology(&self) -> anyhow::Result<()> {
        for node in Node::ALL {
            let ns = self.netns(node);
            ip(["netns", "add", &ns])?;
            self.0.namespaces.lock().unwrap_or_else(|e| e.into_inner()).push(ns.clone());
            ip(["-n", &ns, "link", "set", "lo", "up"])?;
            // IPv4 only on the links (like the relay for now): no IPv6 chatter in captures.
            // Loopback keeps ::1, which local tools (chromedriver) expect to bind.
            self.sysctl(node, "net.ipv6.conf.all.disable_ipv6=1")?;
            self.sysctl(node, "net.ipv6.conf.default.disable_ipv6=1")?;
            self.sysctl(node, "net.ipv6.conf.lo.disable_ipv6=0")?;
        }
        let (wan, rtr) = (self.netns(Node::Wan), self.netns(Node::Router));

        // internet link: wan eth0 <-> router wan0
        ip(["-n", &rtr, "link", "add", "wan0", "type", "veth", "peer", "name", "eth0", "netns", &wan])?;
        ip(["-n", &rtr, "addr", "add", "203.0.113.1/24", "dev", "wan0"])?;
        ip(["-n", &wan, "addr", "add", "203.0.113.2/24", "dev", "eth0"])?;
        ip(["-n", &rtr, "link", "set", "wan0", "up"])?;
        ip(["-n", &wan, "link", "set", "eth0", "up"])?;
        ip(["-n", &wan, "route", "add", "default", "via", "203.0.113.1"])?;

        // LAN bridge on the router, one port per LAN machine
        ip(["-n", &rtr, "link", "add", "br0", "type", "bridge"])?;
        ip(["-n", &rtr, "addr", "add", "192.168.0.1/24", "dev", "br0"])?;
        ip(["-n", &rtr, "link", "set", "br0", "up"])?;
        for (node, port, address) in [
            (Node::Home, ROUTER_HOME_PORT, "192.168.0.2/24"),
            (Node::Host10, "p-h10", "192.168.0.10/24"),
            (Node::Host20, "p-h20", "192.168.0.20/24"),
        ] {
            let ns = self.netns(node);
            ip(["-n", &rtr, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", &ns])?;
            ip(["-n", &rtr, "link", "set", port, "master", "br0"])?;
            ip(["-n", &rtr, "link", "set", port, "up"])?;
            ip(["-n", &ns, "addr", "add", address, "dev", "eth0"])?;
            ip(["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(["-n", &ns, "route", "add", "default", "via", "192.168.0.1"])?;
        }

        self.sysctl(Node::Router, "net.ipv4.ip_forward=1")?;
        // The LAN bridge is a plain switch, as a home router's LAN ports are: when the host has
        // `br_netfilter` loaded (container runtimes load it), a new namespace's bridge would pass
        // every LAN frame through the router's firewall and connection tracking, a cost no home
        // switch has (and the tunnel's tun write, which delivers the packet to the LAN host,
        // would carry it). Without the module there is no such setting (in any namespace) and
        // nothing to do.
        if Path::new("/proc/sys/net/bridge/bridge-nf-call-iptables").exists() {
            for family in ["iptables", "ip6tables", "arptables"] {
                self.sysctl(Node::Router, &format!("net.bridge.bridge-nf-call-{family}=0"))?;
            }
        }
        // The home server is no router until the relay switches forwarding on for its tun and
        // LAN interfaces (as on a fresh Debian install).
        let rules = self.dir().join("router.nft");
        std::fs::write(&rules, ROUTER_RULES)?;
        let out = self.exec(Node::Router, "nft", [OsStr::new("-f"), rules.as_os_str()])?;
        ensure!(out.status.success(), "nft on the router: {}", String::from_utf8_lossy(&out.stderr));
        // Wait for the links (IPv4 needs no DAD, but veths need a moment to come up).
        wait_until(Duration::from_secs(5), || {
            let out = self.exec(Node::Home, "ip", ["-o", "link", "show", "eth0"]).ok()?;
            String::from_utf8_lossy(&out.stdout).contains("LOWER_UP").then_some(())
        })
        .context("home eth0 never came up")?;
        Ok(())
    }

    fn start_lan_services(&self) -> anyhow::Result<()> {
        let labhost = labhost_binary()?;
        for (node, name) in [(Node::Host10, "h10"), (Node::Host20, "h20")] {
            self.spawn(
                node,
                name,
                &labhost,
                ["--name", name, "--http", "0.0.0.0:80", "--echo", "0.0.0.0:7", "--banner", "0.0.0.0:22"],
            )?;
        }
        let record = format!("{}=192.168.0.10", addr::NAS_NAME);
        self.spawn(
            Node::Router,
            "dns",
            &labhost,
            ["--name", "router", "--dns", "192.168.0.1:53", "--record", &record],
        )?;
        for name in ["h10", "h20", "dns"] {
            self.wait_for_log(name, "ready", Duration::from_secs(10))?;
        }
        Ok(())
    }

    /// Starts an ACME CA on the internet side: the `ca` namespace behind the router's second
    /// uplink, running Debian's `pebble` (TLS-ALPN-01 validation on port 443, no random
    /// validation delay, no rejected nonces) and `pebble-challtestsrv` as its DNS, which answers
    /// every name with the router's public address. Returns once both answer.
    pub fn start_acme(&self) -> anyhow::Result<Acme> {
        let acme = self.prepare_acme()?;
        acme.start_server()?;
        Ok(acme)
    }

    /// [`Lab::start_acme`] without starting pebble itself (an ACME server that is down until
    /// [`Acme::start_server`]).
    pub fn prepare_acme(&self) -> anyhow::Result<Acme> {
        let (rtr, ca) = (self.netns(Node::Router), self.netns(Node::Ca));
        ip(["netns", "add", &ca])?;
        self.0.namespaces.lock().unwrap_or_else(|e| e.into_inner()).push(ca.clone());
        ip(["-n", &ca, "link", "set", "lo", "up"])?;
        self.sysctl(Node::Ca, "net.ipv6.conf.all.disable_ipv6=1")?;
        ip(["-n", &rtr, "link", "add", "wan1", "type", "veth", "peer", "name", "eth0", "netns", &ca])?;
        ip(["-n", &rtr, "addr", "add", "198.51.100.1/24", "dev", "wan1"])?;
        ip(["-n", &ca, "addr", "add", "198.51.100.2/24", "dev", "eth0"])?;
        ip(["-n", &rtr, "link", "set", "wan1", "up"])?;
        ip(["-n", &ca, "link", "set", "eth0", "up"])?;
        ip(["-n", &ca, "route", "add", "default", "via", "198.51.100.1"])?;

        let dir = self.dir().join("acme-ca");
        std::fs::create_dir_all(&dir)?;
        // pebble's API certificate, signed by a throwaway root that the relay is told to trust.
        let (cert, key, root) = (dir.join("api-cert.pem"), dir.join("api-key.pem"), dir.join("api-root.pem"));
        std::fs::write(
            dir.join("api-ext.cnf"),
            format!(
                "subjectAltName=IP:{}\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n",
                addr::CA
            ),
        )?;
        let script = "set -e
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj '/CN=lab ACME API root' -keyout api-root-key.pem -out api-root.pem
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj '/CN=lab ACME API' -keyout api-key.pem -out api.csr
            openssl x509 -req -in api.csr -CA api-root.pem -CAkey api-root-key.pem -CAcreateserial -days 2 -extfile api-ext.cnf -out api-cert.pem";
        let mut openssl = Command::new("sh");
        openssl.args(["-c", script]).current_dir(&dir);
        let out = run_bounded(openssl, Duration::from_secs(20))?;
        ensure!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
        let config = dir.join("pebble.json");
        let pebble = serde_json::json!({ "pebble": {
            "listenAddress": format!("{}:14000", addr::CA),
            "managementListenAddress": format!("{}:15000", addr::CA),
            "certificate": cert, "privateKey": key,
            "httpPort": 5002, "tlsPort": 443,
            "ocspResponderURL": "", "externalAccountBindingRequired": false,
        }});
        std::fs::write(&config, serde_json::to_vec_pretty(&pebble)?)?;
        let acme = Acme { lab: self.clone(), api_root: root, dir };
        acme.start_dns()?;
        Ok(acme)
    }

    /// Adds the home router's static route to the client pool via the home server, the one
    /// change routed mode needs (reference design: the router's route to the VPN subnet).
    pub fn add_return_route(&self) -> anyhow::Result<()> {
        ip(["-n", &self.netns(Node::Router), "route", "add", addr::POOL, "via", "192.168.0.2"])
    }

    /// Adds a second network to the home server, as Docker does: `docker0` 172.17.0.1/16 on the
    /// home server, a host 172.17.0.2 behind it running the lab's HTTP (:80) and echo (:7)
    /// services. Nothing but the home server routes to it. Returns once the host answers.
    pub fn add_side_network(&self) -> anyhow::Result<()> {
        let (home, side) = (self.netns(Node::Home), self.netns(Node::Side));
        ip(["netns", "add", &side])?;
        self.0.namespaces.lock().unwrap_or_else(|e| e.into_inner()).push(side.clone());
        ip(["-n", &side, "link", "set", "lo", "up"])?;
        self.sysctl(Node::Side, "net.ipv6.conf.all.disable_ipv6=1")?;
        self.sysctl(Node::Side, "net.ipv6.conf.default.disable_ipv6=1")?;
        ip(["-n", &home, "link", "add", SIDE_IF, "type", "veth", "peer", "name", "eth0", "netns", &side])?;
        ip(["-n", &home, "addr", "add", "172.17.0.1/16", "dev", SIDE_IF])?;
        ip(["-n", &side, "addr", "add", "172.17.0.2/16", "dev", "eth0"])?;
        ip(["-n", &home, "link", "set", SIDE_IF, "up"])?;
        ip(["-n", &side, "link", "set", "eth0", "up"])?;
        ip(["-n", &side, "route", "add", "default", "via", "172.17.0.1"])?;
        let labhost = labhost_binary()?;
        self.spawn(Node::Side, "side", &labhost, ["--name", "side", "--http", "0.0.0.0:80", "--echo", "0.0.0.0:7"])?;
        self.wait_for_log("side", "ready", Duration::from_secs(10))
    }

    /// Adds `count` more addresses to the remote device (203.0.113.100 on), for clients that
    /// must come from different source addresses. Returns them.
    pub fn add_wan_addresses(&self, count: u8) -> anyhow::Result<Vec<std::net::Ipv4Addr>> {
        ensure!(count <= 100, "at most 100 extra wan addresses");
        let wan = self.netns(Node::Wan);
        (0..count)
            .map(|i| {
                let a = std::net::Ipv4Addr::new(203, 0, 113, 100 + i);
                ip(["-n", &wan, "addr", "add", &format!("{a}/24"), "dev", "eth0"]).map(|()| a)
            })
            .collect()
    }

    /// Sets one sysctl (`key=value`) inside `node`.
    pub fn sysctl(&self, node: Node, setting: &str) -> anyhow::Result<()> {
        let out = self.exec(node, "sysctl", ["-qw", setting])?;
        ensure!(out.status.success(), "sysctl {setting}: {}", String::from_utf8_lossy(&out.stderr));
        Ok(())
    }

    /// The remote device leaves its network, as a phone does in a tunnel or a lift: its link
    /// and its address on it go, and its system closes the connections of the network it lost
    /// (Android does so).
    pub fn remote_device_offline(&self) -> anyhow::Result<()> {
        self.command_in(Node::Wan, &["ip", "link", "set", "eth0", "down"])?;
        self.command_in(Node::Wan, &["ip", "addr", "flush", "dev", "eth0"])?;
        self.command_in(Node::Wan, &["ss", "-K", "dst", &addr::ROUTER_WAN.to_string()])
    }

    /// The remote device's network returns ([`Self::remote_device_offline`] undone).
    pub fn remote_device_online(&self) -> anyhow::Result<()> {
        self.command_in(Node::Wan, &["ip", "addr", "add", &format!("{}/24", addr::WAN_CLIENT), "dev", "eth0"])?;
        self.command_in(Node::Wan, &["ip", "link", "set", "eth0", "up"])?;
        self.command_in(Node::Wan, &["ip", "route", "replace", "default", "via", &addr::ROUTER_WAN.to_string()])
    }

    /// The remote device's internet link carries at most `mbit` Mbit/s each way, as a phone's
    /// mobile data might (a token bucket on both ends of the link; the lab's kernel has no
    /// delay emulation).
    pub fn limit_remote_link(&self, mbit: u32) -> anyhow::Result<()> {
        let rate = format!("{mbit}mbit");
        let tbf = ["root", "tbf", "rate", rate.as_str(), "burst", "128kb", "latency", "100ms"];
        for (node, dev) in [(Node::Wan, "eth0"), (Node::Router, "wan0")] {
            let args: Vec<&str> = ["tc", "qdisc", "replace", "dev", dev].into_iter().chain(tbf).collect();
            self.command_in(node, &args)?;
        }
        Ok(())
    }

    /// Runs `args` inside `node`; an error with what it said unless it succeeds.
    pub fn command_in(&self, node: Node, args: &[&str]) -> anyhow::Result<()> {
        let out = self.exec(node, args[0], &args[1..])?;
        ensure!(out.status.success(), "{args:?} in {node:?}: {}", String::from_utf8_lossy(&out.stderr));
        Ok(())
    }

    /// The TCP sockets of `node` in `state` (as `ss` names states: `established`, `fin-wait-2`,
    /// ...) that `filter` (in `ss`'s words, e.g. `sport = :22`) matches, one line each. An `ss`
    /// that fails is an error, not an empty list.
    pub fn tcp_sockets(&self, node: Node, state: &str, filter: &str) -> anyhow::Result<Vec<String>> {
        let out = self.exec(node, "ss", ["-Htn", "state", state, &format!("( {filter} )")])?;
        ensure!(
            out.status.success(),
            "ss state {state} ( {filter} ) in {node:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect())
    }

    /// Runs `program` inside `node` to completion (at most 60 s) and returns its output.
    pub fn exec<I, S>(&self, node: Node, program: impl AsRef<OsStr>, args: I) -> anyhow::Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec"]).arg(self.netns(node)).arg(program.as_ref()).args(args);
        run_bounded(cmd, Duration::from_secs(60))
    }

    /// Starts `program` inside `node` in the background; its stdout and stderr go to
    /// `<dir>/<log_name>.log`. The lab kills it on drop. Returns its pid.
    pub fn spawn<I, S>(&self, node: Node, log_name: &str, program: impl AsRef<OsStr>, args: I) -> anyhow::Result<u32>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let log = File::create(self.log_path(log_name))?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec"]).arg(self.netns(node)).arg(program.as_ref()).args(args);
        cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
        let child = cmd.spawn().with_context(|| format!("spawning {:?} in {node:?}", program.as_ref()))?;
        let pid = child.id();
        self.0.children.lock().unwrap_or_else(|e| e.into_inner()).push(child);
        Ok(pid)
    }

    /// Sends SIGTERM to a process started with [`Lab::spawn`], waits up to `grace` for it to
    /// exit, then kills it. Returns how it ended.
    pub fn stop(&self, pid: u32, grace: Duration) -> anyhow::Result<ExitStatus> {
        let mut child = {
            let mut children = self.0.children.lock().unwrap_or_else(|e| e.into_inner());
            let i = children.iter().position(|c| c.id() == pid).context("no such lab process")?;
            children.remove(i)
        };
        signal(pid, rustix::process::Signal::TERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        Ok(child.wait()?)
    }

    /// Whether a process started with [`Lab::spawn`] is still running.
    pub fn is_running(&self, pid: u32) -> bool {
        let mut children = self.0.children.lock().unwrap_or_else(|e| e.into_inner());
        children.iter_mut().any(|c| c.id() == pid && matches!(c.try_wait(), Ok(None)))
    }

    /// The log file of a process started with [`Lab::spawn`].
    pub fn log_path(&self, log_name: &str) -> PathBuf {
        self.dir().join(format!("{log_name}.log"))
    }

    /// The log of a process started with [`Lab::spawn`] so far.
    pub fn log(&self, log_name: &str) -> String {
        std::fs::read_to_string(self.log_path(log_name)).unwrap_or_default()
    }

    /// Waits until the log of `log_name` contains `needle`.
    pub fn wait_for_log(&self, log_name: &str, needle: &str, timeout: Duration) -> anyhow::Result<()> {
        wait_until(timeout, || self.log(log_name).contains(needle).then_some(()))
            .with_context(|| format!("{log_name} did not print {needle:?}; log:\n{}", self.log(log_name)))
    }

    /// Peers the LAN host's service logged as connecting (`service` = http, echo, banner, dns).
    pub fn service_peers(&self, node: Node, service: &str) -> Vec<String> {
        let log_name = match node {
            Node::Host10 => "h10",
            Node::Host20 => "h20",
            Node::Router => "dns",
            Node::Side => "side",
            Node::Wan | Node::Home | Node::Ca => return Vec::new(),
        };
        let prefix = format!("conn {service} ");
        self.log(log_name).lines().filter_map(|l| l.strip_prefix(&prefix).map(str::to_owned)).collect()
    }

    /// Runs `task` to completion on a tokio runtime whose threads all live in `node`'s network
    /// namespace: every socket it opens belongs to that namespace. Panics in `task` propagate.
    pub fn run_in<F, Fut, T>(&self, node: Node, task: F) -> T
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = T>,
        T: Send,
    {
        let ns_path = PathBuf::from("/run/netns").join(self.netns(node));
        let ns = Arc::new(File::open(&ns_path).unwrap_or_else(|e| panic!("open {}: {e}", ns_path.display())));
        std::thread::scope(|scope| {
            let handle = scope.spawn(move || {
                enter_netns(&ns);
                let ns_for_workers = ns.clone();
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .on_thread_start(move || enter_netns(&ns_for_workers))
                    .build()
                    .expect("tokio runtime");
                let out = runtime.block_on(task());
                runtime.shutdown_timeout(Duration::from_secs(2));
                out
            });
            match handle.join() {
                Ok(out) => out,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let children = std::mem::take(self.children.get_mut().unwrap_or_else(|e| e.into_inner()));
        for mut child in children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in self.namespaces.get_mut().unwrap_or_else(|e| e.into_inner()).iter().rev() {
            remove_netns(ns);
        }
    }
}

/// Labs alive at once in this process: `HOMETUN_LABS`, default 2. Each lab runs a relay, clients
/// and transfers; on a 2-core machine more at once only makes every test slower and flakier.
struct Permit;

static LABS_ALIVE: Mutex<usize> = Mutex::new(0);
static LAB_FREED: std::sync::Condvar = std::sync::Condvar::new();

impl Permit {
    fn acquire() -> Self {
        let max = std::env::var("HOMETUN_LABS").ok().and_then(|v| v.parse().ok()).unwrap_or(2usize).max(1);
        let mut alive = LABS_ALIVE.lock().unwrap_or_else(|e| e.into_inner());
        while *alive >= max {
            alive = LAB_FREED.wait(alive).unwrap_or_else(|e| e.into_inner());
        }
        *alive += 1;
        Self
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        *LABS_ALIVE.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        LAB_FREED.notify_one();
    }
}

/// The router: forward TCP 443 to the home server, NAT the LAN out, and let nothing else from
/// the internet into the LAN.
const ROUTER_RULES: &str = r#"
table ip hometun_lab {
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        iifname { "wan0", "wan1" } tcp dport 443 dnat to 192.168.0.2:443
    }
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        oifname { "wan0", "wan1" } masquerade
    }
    chain forward {
        type filter hook forward priority filter; policy accept;
        iifname { "wan0", "wan1" } ct state established,related accept
        iifname { "wan0", "wan1" } ct status dnat accept
        iifname { "wan0", "wan1" } drop
    }
}
"#;

fn enter_netns(ns: &File) {
    use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};
    move_into_link_name_space(ns.as_fd(), Some(LinkNameSpaceType::Network)).expect("setns into the lab namespace");
    // Never let a lab task run in the host's namespace by mistake.
    let want = rustix::fs::fstat(ns).expect("fstat netns");
    let have = rustix::fs::stat("/proc/thread-self/ns/net").expect("stat own netns");
    assert_eq!((want.st_dev, want.st_ino), (have.st_dev, have.st_ino), "thread is not in the lab namespace");
}

/// Runs `ip` with `args`, failing with its stderr.
fn ip<const N: usize>(args: [&str; N]) -> anyhow::Result<()> {
    let mut cmd = Command::new("ip");
    cmd.args(args);
    let out = run_bounded(cmd, Duration::from_secs(20))?;
    if !out.status.success() {
        bail!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Runs `cmd` with captured output, killing it after `timeout`.
pub fn run_bounded(mut cmd: Command, timeout: Duration) -> anyhow::Result<Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawning {cmd:?}"))?;
    // Drain pipes on threads so a chatty child cannot block on a full pipe.
    let mut stdout = child.stdout.take().context("stdout")?;
    let mut stderr = child.stderr.take().context("stderr")?;
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stderr, &mut v);
        v
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{cmd:?} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    Ok(Output { status, stdout, stderr })
}

/// Polls `f` every 20 ms until it returns `Some`, for at most `timeout`.
pub fn wait_until<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> anyhow::Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(pid: u32, sig: rustix::process::Signal) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) {
        let _ = rustix::process::kill_process(pid, sig);
    }
}

/// Kills whatever still runs in `ns`, then deletes it.
fn remove_netns(ns: &str) {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "pids", ns]);
    if let Ok(out) = run_bounded(cmd, Duration::from_secs(10)) {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace().filter_map(|p| p.parse().ok()) {
            signal(pid, rustix::process::Signal::KILL);
        }
    }
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "del", ns]);
    if let Err(e) = run_bounded(cmd, Duration::from_secs(10)) {
        eprintln!("lab cleanup: deleting {ns}: {e:#}");
    }
}

/// Namespaces with our prefix whose creating process is gone (a test run that was killed).
pub fn stale_namespaces() -> Vec<String> {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "list"]);
    let Ok(out) = run_bounded(cmd, Duration::from_secs(10)) else { return Vec::new() };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| {
            let Some(rest) = name.strip_prefix(PREFIX) else { return false };
            let Some((pid, _)) = rest.split_once('-') else { return false };
            match pid.parse::<u32>() {
                Ok(pid) => !Path::new(&format!("/proc/{pid}")).exists(),
                Err(_) => false,
            }
        })
        .map(str::to_owned)
        .collect()
}

/// Namespaces with our prefix that belong to this process.
pub fn own_namespaces() -> Vec<String> {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "list"]);
    let Ok(out) = run_bounded(cmd, Duration::from_secs(10)) else { return Vec::new() };
    let own = format!("{PREFIX}{}-", std::process::id());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| name.starts_with(&own))
        .map(str::to_owned)
        .collect()
}

/// Removes every [`stale_namespaces`] entry (killing what still runs in it). [`Lab::start`]
/// does this once per process.
pub fn sweep_stale() {
    for ns in stale_namespaces() {
        eprintln!("lab: removing stale namespace {ns}");
        remove_netns(&ns);
    }
}

/// The `hometun-labhost` binary: `HOMETUN_LABHOST_BIN`, else next to the running test binary.
pub fn labhost_binary() -> anyhow::Result<PathBuf> {
    sibling_binary("HOMETUN_LABHOST_BIN", "hometun-labhost")
}

/// Finds a workspace binary: the env override, else in the target dir of the running test
/// (`target/<profile>/deps/test-xxxx` → `target/<profile>/<name>`).
pub fn sibling_binary(env: &str, name: &str) -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    let mut dir = exe.parent().context("exe dir")?;
    if dir.ends_with("deps") {
        dir = dir.parent().context("profile dir")?;
    }
    let path = dir.join(name);
    ensure!(path.exists(), "{} not found (build it, or set {env})", path.display());
    Ok(path)
}

/// The lab's ACME CA ([`Lab::start_acme`]).
pub struct Acme {
    lab: Lab,
    api_root: PathBuf,
    dir: PathBuf,
}

impl Acme {
    /// The ACME directory URL.
    pub fn directory(&self) -> String {
        format!("https://{}:14000/dir", addr::CA)
    }

    /// The certificate of pebble's own HTTPS API (what `--acme-ca-root` takes).
    pub fn api_root(&self) -> &Path {
        &self.api_root
    }

    fn start_dns(&self) -> anyhow::Result<()> {
        let dns = format!("{}:8053", addr::CA);
        let management = format!("{}:8055", addr::CA);
        let answer = addr::ROUTER_WAN.to_string();
        self.lab.spawn(
            Node::Ca,
            "challtestsrv",
            "pebble-challtestsrv",
            [
                "-http01",
                "",
                "-tlsalpn01",
                "",
                "-https01",
                "",
                "-dns01",
                &dns,
                "-management",
                &management,
                "-defaultIPv4",
                &answer,
                "-defaultIPv6",
                "",
            ],
        )?;
        self.lab.wait_for_log("challtestsrv", "Starting management server", Duration::from_secs(10))
    }

    /// Starts pebble (again, after [`Acme::stop_server`]); its log is `pebble.log`, then
    /// `pebble-2.log`, ... Returns once it serves.
    pub fn start_server(&self) -> anyhow::Result<()> {
        let runs = (1..).find(|n| !self.lab.log_path(&Self::log_name(*n)).exists()).unwrap_or(1);
        let log = Self::log_name(runs);
        let dns = format!("{}:8053", addr::CA);
        let config = self.dir.join("pebble.json");
        let pid = self.lab.spawn(
            Node::Ca,
            &log,
            "env",
            [
                OsStr::new("PEBBLE_VA_NOSLEEP=1"),
                OsStr::new("PEBBLE_WFE_NONCEREJECT=0"),
                OsStr::new("pebble"),
                OsStr::new("-config"),
                config.as_os_str(),
                OsStr::new("-dnsserver"),
                OsStr::new(&dns),
            ],
        )?;
        std::fs::write(self.dir.join("pebble.pid"), pid.to_string())?;
        self.lab.wait_for_log(&log, "ACME directory available", Duration::from_secs(15))
    }

    /// Stops pebble (its state, accounts and orders, is lost with it).
    pub fn stop_server(&self) -> anyhow::Result<()> {
        let pid: u32 = std::fs::read_to_string(self.dir.join("pebble.pid"))?.trim().parse()?;
        self.lab.stop(pid, Duration::from_secs(5)).map(|_| ())
    }

    fn log_name(run: u32) -> String {
        if run == 1 {
            "pebble".to_owned()
        } else {
            format!("pebble-{run}")
        }
    }

    /// Everything pebble logged, all runs.
    pub fn log(&self) -> String {
        (1..=20).map(Self::log_name).map(|n| self.lab.log(&n)).collect::<Vec<_>>().join("\n")
    }

    /// Orders pebble accepted so far (all runs), from its log (`Added order ... to the db`).
    pub fn orders(&self) -> usize {
        self.log().matches("Added order").count()
    }

    /// The root that signs pebble's certificates (`GET /roots/0` on its management port,
    /// fetched from inside the CA namespace with `openssl s_client`).
    pub fn issuing_root(&self) -> anyhow::Result<String> {
        let url = format!("{}:15000", addr::CA);
        let request = "GET /roots/0 HTTP/1.0\r\nHost: ca\r\n\r\n";
        let out = {
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "exec"]).arg(self.lab.netns(Node::Ca));
            cmd.args([
                "sh",
                "-c",
                &format!(
                    "printf '{}' | openssl s_client -quiet -connect {url} 2>/dev/null",
                    request.replace('\r', "\\r").replace('\n', "\\n")
                ),
            ]);
            run_bounded(cmd, Duration::from_secs(20))?
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let start = text.find("-----BEGIN CERTIFICATE-----").context("pebble's /roots/0 returned no certificate")?;
        Ok(text[start..].to_owned())
    }
}
