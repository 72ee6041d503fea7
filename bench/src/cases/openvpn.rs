//! `openvpn-udp` and `openvpn-tcp`: OpenVPN 2.6 from Debian as in the reference home design, an
//! L3 tun (`server 10.8.0.0 255.255.255.0`, `push "route 192.168.0.0 255.255.255.0"`). The
//! server runs on the home server behind the router's port forward (1194), the client on the
//! remote device; certificates come from a throwaway EC P-256 PKI made with `openssl`. The
//! kernel has no OpenVPN DCO, so both ends run in userspace. TCP mode sets `tcp-nodelay` (its
//! defaults give ~4.6 ms small-message round trips).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context};
use hometun_tests::lab::{run_bounded, wait_until, Node};

use super::{measure, BenchLab, Case, CaseId, Plan, RunResult};
use crate::install;

/// Transport of the OpenVPN tunnel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    /// UDP.
    Udp,
    /// TCP with `tcp-nodelay`.
    Tcp,
}

/// An OpenVPN case.
pub(crate) struct OpenVpn {
    transport: Transport,
    runs: u32,
}

impl OpenVpn {
    /// The case over `transport`.
    pub(crate) fn new(transport: Transport) -> Self {
        Self { transport, runs: 0 }
    }

    fn name(&self) -> &'static str {
        match self.transport {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

impl Case for OpenVpn {
    fn id(&self) -> CaseId {
        match self.transport {
            Transport::Udp => CaseId::OpenvpnUdp,
            Transport::Tcp => CaseId::OpenvpnTcp,
        }
    }

    fn describe(&self) -> String {
        let extra = if self.transport == Transport::Tcp { ", tcp-nodelay" } else { "" };
        format!("OpenVPN L3 tun over {}{extra}; data cipher negotiated (AES-256-GCM), DCO off, masquerade on the home server", self.name().to_uppercase())
    }

    fn install(&mut self, _bins: &crate::binaries::Binaries) -> anyhow::Result<()> {
        install::openvpn()
    }

    fn run(&mut self, lab: &BenchLab, plan: &Plan) -> anyhow::Result<RunResult> {
        self.runs += 1;
        let dir = lab.lab.dir().join(format!("openvpn-{}", self.name()));
        if !dir.join("ca.crt").exists() {
            std::fs::create_dir_all(&dir)?;
            make_pki(&dir)?;
        }
        let server_conf = dir.join("server.conf");
        let client_conf = dir.join("client.conf");
        std::fs::write(&server_conf, server_config(self.transport, &dir))?;
        std::fs::write(&client_conf, client_config(self.transport, &dir))?;

        lab.home_nat(true)?;
        let server_log = format!("openvpn-{}-server-{}", self.name(), self.runs);
        let client_log = format!("openvpn-{}-client-{}", self.name(), self.runs);
        let server = lab.lab.spawn(Node::Home, &server_log, "openvpn", ["--config", s(&server_conf)])?;
        let result = (|| {
            lab.lab.wait_for_log(&server_log, "Initialization Sequence Completed", Duration::from_secs(30))?;
            let client = lab.lab.spawn(Node::Wan, &client_log, "openvpn", ["--config", s(&client_conf)])?;
            let result = (|| {
                lab.lab.wait_for_log(&client_log, "Initialization Sequence Completed", Duration::from_secs(30))?;
                wait_until(Duration::from_secs(10), || {
                    let route = lab.exec_ok(Node::Wan, "ip", ["route", "get", "192.168.0.10"]).ok()?;
                    route.contains("dev tun").then_some(())
                })
                .context("the pushed LAN route never appeared on the remote device")?;
                let pids = [server, client];
                lab.wait_for_lan()?;
                measure(plan, &|| pids.to_vec(), &mut |work| lab.kernel_probe(work, plan.timeout()))
            })();
            let _ = lab.lab.stop(client, Duration::from_secs(5));
            result
        })();
        let _ = lab.lab.stop(server, Duration::from_secs(5));
        lab.home_nat(false)?;
        if result.is_err() {
            eprintln!("openvpn server log:\n{}\nclient log:\n{}", lab.lab.log(&server_log), lab.lab.log(&client_log));
        }
        result
    }
}

fn pem(dir: &Path, name: &str) -> String {
    dir.join(name).to_string_lossy().into_owned()
}

fn server_config(transport: Transport, dir: &Path) -> String {
    let (proto, extra) = match transport {
        Transport::Udp => ("udp4", ""),
        Transport::Tcp => ("tcp4-server", "tcp-nodelay\n"),
    };
    format!(
        "dev tun\ntopology subnet\nproto {proto}\nport 1194\n\
         server 10.8.0.0 255.255.255.0\npush \"route 192.168.0.0 255.255.255.0\"\n\
         ca {}\ncert {}\nkey {}\ndh none\nkeepalive 10 60\ndisable-dco\nverb 3\n{extra}",
        pem(dir, "ca.crt"),
        pem(dir, "server.crt"),
        pem(dir, "server.key"),
    )
}

fn client_config(transport: Transport, dir: &Path) -> String {
    let proto = match transport {
        Transport::Udp => "udp4",
        Transport::Tcp => "tcp4-client",
    };
    format!(
        "client\ndev tun\nproto {proto}\nremote 203.0.113.1 1194\nnobind\n\
         ca {}\ncert {}\nkey {}\nremote-cert-tls server\ndisable-dco\nconnect-retry 1\nverb 3\n",
        pem(dir, "ca.crt"),
        pem(dir, "client.crt"),
        pem(dir, "client.key"),
    )
}

/// A CA, a server and a client certificate (EC P-256), valid for two days.
fn make_pki(dir: &Path) -> anyhow::Result<()> {
    let f = |name: &str| -> PathBuf { dir.join(name) };
    openssl(&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", s(&f("ca.key"))])?;
    openssl(&[
        "req",
        "-x509",
        "-new",
        "-key",
        s(&f("ca.key")),
        "-subj",
        "/CN=hometun-bench CA",
        "-days",
        "2",
        "-out",
        s(&f("ca.crt")),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ])?;
    for (name, usage) in [("server", "serverAuth"), ("client", "clientAuth")] {
        let key = f(&format!("{name}.key"));
        let csr = f(&format!("{name}.csr"));
        let crt = f(&format!("{name}.crt"));
        let ext = f(&format!("{name}.ext"));
        std::fs::write(&ext, format!("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyAgreement\nextendedKeyUsage={usage}\n"))?;
        openssl(&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", s(&key)])?;
        openssl(&["req", "-new", "-key", s(&key), "-subj", &format!("/CN=bench-{name}"), "-out", s(&csr)])?;
        openssl(&[
            "x509",
            "-req",
            "-in",
            s(&csr),
            "-CA",
            s(&f("ca.crt")),
            "-CAkey",
            s(&f("ca.key")),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            s(&ext),
            "-out",
            s(&crt),
        ])?;
    }
    Ok(())
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

fn openssl(args: &[&str]) -> anyhow::Result<()> {
    let mut cmd = Command::new("openssl");
    cmd.args(args);
    let out = run_bounded(cmd, Duration::from_secs(30))?;
    ensure!(out.status.success(), "openssl {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    Ok(())
}
