//! A real browser in the lab: headless Chromium runs inside a lab namespace (normally `wan`), so
//! it reaches the relay only through the lab's own network and the router's port forward.
//!
//! - [`apps_page`]: a trusted relay and Chromium for the home web app scenarios, app tabs
//!   opened from the launcher.
//! - [`webdriver`]: chromedriver in a namespace and a small WebDriver client (plain HTTP).
//! - [`webkit`]: WebKit (Safari's engine) in a namespace, trusting the lab CA, for the same
//!   client.
//! - [`firefox`]: Firefox (Gecko) in a namespace, trusting the lab CA, driven through
//!   [`bidi`], its native WebDriver BiDi endpoint, behind the same client.
//! - [`remote`]: the page's SSH sessions and Remote desktop viewer, as the scenarios drive them.
//! - [`tools`]: the launcher's Open, Ping and Lookup tools and status counters, as a person
//!   uses them.
//! - [`hooks`]: HTTP hooks the browser scenario calls to make the relay drop its WebSockets or
//!   revoke a device.
//! - [`wasm`]: building the browser client's wasm e2e test with the lab's facts and running it
//!   with `wasm-bindgen-test-runner`.
//! - here: Chromium's flags, the pin of the relay's certificate, installing the built page, and
//!   sockets opened inside a namespace.

pub mod apps_page;
pub mod bidi;
pub mod engines;
pub mod firefox;
pub mod hooks;
pub mod remote;
pub mod tools;
pub mod transfers;
pub mod wasm;
pub mod webdriver;
pub mod webkit;

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{ensure, Context};
use base64::Engine;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

/// Starts `script` (run by `sh`, its arguments `args` as `$1`, `$2`, …) inside `node`, in a
/// mount namespace of its own with private propagation, so that the files it binds over the
/// system's (a hosts file, a browser's defaults) are seen only there, and with `uts` a UTS
/// namespace of its own too (a host name of its own). Returns the process id (see
/// [`Lab::spawn`], which logs to `log_name`).
pub fn spawn_unshared(
    lab: &crate::lab::Lab,
    node: crate::lab::Node,
    log_name: &str,
    uts: bool,
    script: &str,
    args: &[&std::ffi::OsStr],
) -> anyhow::Result<u32> {
    use std::ffi::OsStr;
    let mut argv = vec![OsStr::new("--mount")];
    if uts {
        argv.push(OsStr::new("--uts"));
    }
    argv.extend(["--propagation", "private", "sh", "-c", script, "sh"].map(OsStr::new));
    argv.extend(args);
    lab.spawn(node, log_name, "unshare", argv)
}

/// The Chromium binary (Debian's `chromium` package).
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// chromedriver: `CHROMEDRIVER`, else Debian's `/usr/bin/chromedriver`.
pub fn chromedriver_path() -> PathBuf {
    std::env::var_os("CHROMEDRIVER").map_or_else(|| PathBuf::from("/usr/bin/chromedriver"), PathBuf::from)
}

/// Flags for Chromium run as root in a lab namespace. It trusts the relay's self-signed
/// certificate by its key only (`spki` from [`relay_spki`]), never every certificate, and makes
/// no calls of its own to the outside.
pub fn chromium_args(spki: &str) -> Vec<String> {
    let mut args = vec![format!("--ignore-certificate-errors-spki-list={spki}")];
    args.extend(
        [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ]
        .map(str::to_owned),
    );
    args
}

/// SHA-256 of the SubjectPublicKeyInfo of the relay's certificate (`<relay_dir>/tls-cert.pem`),
/// base64: what `--ignore-certificate-errors-spki-list` takes.
pub fn relay_spki(relay_dir: &Path) -> anyhow::Result<String> {
    let path = relay_dir.join("tls-cert.pem");
    let cert = CertificateDer::from_pem_file(&path).with_context(|| format!("reading {}", path.display()))?;
    spki_sha256(&cert).with_context(|| format!("{}: no SubjectPublicKeyInfo found", path.display()))
}

fn spki_sha256(cert_der: &[u8]) -> Option<String> {
    let spki = der::subject_public_key_info(cert_der)?;
    // SHA-256 from the crypto provider the crate already uses (no hashing of our own).
    let suite = rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256.tls13()?;
    let hash = suite.common.hash_provider;
    (hash.algorithm() == rustls::crypto::hash::HashAlgorithm::SHA256)
        .then(|| base64::engine::general_purpose::STANDARD.encode(hash.hash(spki).as_ref()))
}

/// Just enough DER to find a certificate's SubjectPublicKeyInfo.
mod der {
    /// One element: its tag, and its bytes with and without the tag and length.
    struct Element<'a> {
        tag: u8,
        whole: &'a [u8],
        contents: &'a [u8],
    }

    /// Splits the element at the start of `input` off; returns it and what follows.
    fn element(input: &[u8]) -> Option<(Element<'_>, &[u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            (rest[..n].iter().fold(0usize, |acc, b| acc << 8 | usize::from(*b)), &rest[n..])
        };
        let contents = rest.get(..len)?;
        let header = input.len() - rest.len();
        Some((Element { tag, whole: &input[..header + len], contents }, &rest[len..]))
    }

    const SEQUENCE: u8 = 0x30;
    const VERSION: u8 = 0xa0;

    /// Certificate = SEQUENCE { tbsCertificate = SEQUENCE { [0] version OPTIONAL, serial,
    /// signature, issuer, validity, subject, subjectPublicKeyInfo, ... }, ... }.
    pub(super) fn subject_public_key_info(cert: &[u8]) -> Option<&[u8]> {
        let (cert @ Element { tag: SEQUENCE, .. }, _) = element(cert)? else { return None };
        let (tbs @ Element { tag: SEQUENCE, .. }, _) = element(cert.contents)? else { return None };
        let mut fields = Vec::new();
        let mut rest = tbs.contents;
        while let (Some((field, next)), true) = (element(rest), fields.len() < 8) {
            fields.push(field);
            rest = next;
        }
        let at = if fields.first()?.tag == VERSION { 6 } else { 5 };
        fields.get(at).filter(|f| f.tag == SEQUENCE).map(|f| f.whole)
    }
}

/// The page build (`www/dist`), which `scripts/build-page.sh` makes.
pub fn page_dist() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../www/dist")
}

/// Copies a directory tree (the built page into a relay's www folder).
pub fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target).with_context(|| format!("copying to {}", target.display()))?;
        }
    }
    Ok(())
}

/// Where screenshots and other files for a person to look at go: `tests/output/` (gitignored).
pub fn output_dir() -> anyhow::Result<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("output");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Runs `f` on a thread that has entered the network namespace `netns` (a lab namespace name):
/// every socket `f` opens belongs to that namespace, wherever it is used later.
pub fn in_netns<T: Send>(netns: &str, f: impl FnOnce() -> anyhow::Result<T> + Send) -> anyhow::Result<T> {
    let ns = open_netns(netns)?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                enter_netns(&ns)?;
                f()
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Opens a TCP connection from inside `netns`.
pub fn connect_in(netns: &str, addr: SocketAddr, timeout: Duration) -> anyhow::Result<TcpStream> {
    in_netns(netns, || {
        TcpStream::connect_timeout(&addr, timeout).with_context(|| format!("connecting to {addr} in {netns}"))
    })
}

/// Binds a TCP listener inside `netns`.
pub fn listen_in(netns: &str, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    in_netns(netns, || TcpListener::bind(addr).with_context(|| format!("binding {addr} in {netns}")))
}

fn open_netns(netns: &str) -> anyhow::Result<File> {
    let path = Path::new("/run/netns").join(netns);
    File::open(&path).with_context(|| format!("opening {}", path.display()))
}

fn enter_netns(ns: &File) -> anyhow::Result<()> {
    use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};
    move_into_link_name_space(ns.as_fd(), Some(LinkNameSpaceType::Network)).context("setns into the lab namespace")?;
    // Never let a browser-side socket open in the host's namespace by mistake.
    let want = rustix::fs::fstat(ns)?;
    let have = rustix::fs::stat("/proc/thread-self/ns/net")?;
    ensure!((want.st_dev, want.st_ino) == (have.st_dev, have.st_ino), "thread is not in the lab namespace");
    Ok(())
}

/// Writes a hosts file at `path` for a browser in a mount namespace of its own: loopback as
/// `localhost` and `also_local`, and each of `hosts` at its address.
pub(crate) fn write_hosts_file(
    path: &Path,
    also_local: &str,
    hosts: &[(&str, std::net::Ipv4Addr)],
) -> std::io::Result<()> {
    let mut text = format!("127.0.0.1 localhost {also_local}\n");
    for (name, addr) in hosts {
        text.push_str(&format!("{addr} {name}\n"));
    }
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed P-256 certificate and its SPKI pin as `openssl x509 -pubkey | openssl pkey
    /// -pubin -outform der | openssl dgst -sha256 -binary | base64` prints it.
    const CERT: &str = include_str!("testdata/cert.pem");
    const CERT_SPKI: &str = include_str!("testdata/cert.spki");

    #[test]
    fn the_pin_is_the_hash_of_the_certificates_public_key_info() {
        let cert = CertificateDer::from_pem_slice(CERT.as_bytes()).unwrap();
        assert_eq!(spki_sha256(&cert).as_deref(), Some(CERT_SPKI.trim()));
    }

    #[test]
    fn truncated_certificates_have_no_pin() {
        let cert = CertificateDer::from_pem_slice(CERT.as_bytes()).unwrap();
        for len in [0, 1, 2, 10, 100, cert.len() / 2] {
            assert_eq!(spki_sha256(&cert[..len]), None, "{len} bytes");
        }
    }
}
