//! Checking the relay's certificates the way a browser does: a TLS handshake from the internet
//! side, through the router's port forward, with SNI, verified against one trust root (the lab
//! ACME CA's) and the name — no pinning.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use crate::lab::{addr, Lab, Node};

/// The leaf certificate a verified handshake saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// Its DER bytes.
    pub der: Vec<u8>,
}

/// Connects from `wan` to the router's port 443 with SNI `name`, verifying the chain against
/// `root_pem` and the name. `Err` when the relay's certificate is not trusted for `name`.
pub fn trusted_handshake(lab: &Lab, name: &str, root_pem: &str) -> anyhow::Result<Seen> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(root_pem.as_bytes()) {
        roots.add(cert.context("root PEM")?).context("adding the root")?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let server_name = ServerName::try_from(name.to_owned()).context("server name")?;
    let target = SocketAddr::from((addr::ROUTER_WAN, addr::RELAY_PORT));
    let mut tcp = crate::browser::connect_in(&lab.netns(Node::Wan), target, Duration::from_secs(5))?;
    tcp.set_read_timeout(Some(Duration::from_secs(15)))?;
    tcp.set_write_timeout(Some(Duration::from_secs(15)))?;
    let mut tls = rustls::ClientConnection::new(Arc::new(config), server_name)?;
    let mut stream = rustls::Stream::new(&mut tls, &mut tcp);
    stream.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n").as_bytes())?;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    anyhow::ensure!(
        answer.starts_with(b"HTTP/1.1 200"),
        "no answer over the verified connection: {:?}",
        String::from_utf8_lossy(&answer[..answer.len().min(200)])
    );
    let der = tls.peer_certificates().and_then(|c| c.first()).context("no peer certificate")?.to_vec();
    Ok(Seen { der })
}

/// The DER of the first certificate in a PEM file (a relay's stored certificate).
pub fn leaf_of(pem_path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    Ok(CertificateDer::from_pem_file(pem_path).with_context(|| format!("reading {}", pem_path.display()))?.to_vec())
}

/// Polls `f` every 250 ms for at most `timeout`; returns its first success or its last error.
pub fn retry<T>(timeout: Duration, mut f: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<T> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if std::time::Instant::now() >= deadline => {
                return Err(e.context(format!("still failing after {timeout:?}")))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

/// Makes an NSS database under `home/.pki/nssdb` (where Chromium launched with that `HOME`
/// reads its trust store) that trusts `root_pem` to identify websites.
pub fn nss_trusting(lab: &Lab, home: &std::path::Path, root_pem: &str) -> anyhow::Result<()> {
    let db = home.join(".pki/nssdb");
    std::fs::create_dir_all(&db)?;
    let root = home.join("lab-acme-root.pem");
    std::fs::write(&root, root_pem)?;
    let db_arg = format!("sql:{}", db.display());
    for args in [
        vec!["-d", &db_arg, "-N", "--empty-password"],
        vec!["-d", &db_arg, "-A", "-t", "C,,", "-n", "lab ACME root", "-i", root.to_str().context("path")?],
    ] {
        let out = lab.exec(Node::Wan, "certutil", &args)?;
        anyhow::ensure!(out.status.success(), "certutil {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// Asks the relay for the certificates of `apps`' names as a launcher does when it opens an app:
/// through the tunnel of a device enrolled for the purpose as `device` (allowed `allow`, the
/// whole LAN when `None`). Returns the relay's answer to each, in order (`None`: not offered).
/// The relay must already serve its trusted certificate for the domain.
pub fn demand_app_certs(
    lab: &Lab,
    relay: &crate::relay::Relay,
    device: &str,
    allow: Option<&str>,
    apps: &[hometun_shared::app_name::AppTarget],
) -> anyhow::Result<Vec<Option<hometun_shared::control::AppCertOutcome>>> {
    let invite = relay.invite(device, "1h", allow)?;
    let stored = relay.dir().join(format!("acme/certs/{}.pem", addr::DOMAIN));
    let target = crate::client::RelayTarget { cert: leaf_of(&stored)?.into(), ..relay.target()? };
    lab.run_in(Node::Wan, || async {
        let tunnel = crate::client::Device::new(&invite).enrol(&target, &invite).await?;
        let mut outcomes = Vec::new();
        for app in apps {
            outcomes.push(tunnel.app_cert(*app, Duration::from_secs(10)).await?);
        }
        tunnel.disconnect().await;
        Ok(outcomes)
    })
}
