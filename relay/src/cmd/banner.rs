//! What `serve` prints once it is up: the page's URL, where the page comes from, the certificate
//! in use and what it means for a visitor — and, on the first run only, a ready invite (link and
//! terminal QR code), so one command and one scan take a home user from nothing to a connected
//! phone.
//!
//! The first run is a relay that has never issued an invite nor enrolled a device (the state
//! files in DIR are empty); every later start finds the invite it made then. The invite is a
//! secret: it goes to the terminal, never into the log. Under systemd (whose output is the
//! journal) no invite is made; the banner says how to make one instead.

use crate::config::Config;
use crate::daemon::Relay;
use std::fmt;
use std::path::{Path, PathBuf};

/// Name of the device the first-run invite is for.
pub const FIRST_DEVICE: &str = "first-device";
/// How long the first-run invite stays valid, seconds (as `invite`'s default).
const FIRST_INVITE_TTL: u64 = 24 * 3600;

/// Prints the start-up banner (stderr) and, on the first run, makes and prints the first invite.
/// Nothing here stops the relay: a failure to make the invite is reported with the command that
/// makes one by hand.
pub fn print(relay: &Relay, dir: &Path) {
    let config = &relay.config;
    eprintln!("hometun relay running: open {}/ on a device.", config.public_url);
    eprintln!("  page         {}", crate::web::page::describe(&config.www));
    eprintln!("  certificate  {}", CertificateState::of(dir, config));
    let invite_command = format!("hometun-relay invite --dir {} --name phone", dir.display());
    if !is_first_run(relay) {
        eprintln!("Create an invite with: {invite_command}");
        return;
    }
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        eprintln!("No device yet. Create the first invite with: {invite_command}");
        return;
    }
    let made = {
        let mut store = relay.store();
        crate::ops::create_invite(&mut store, config, relay.public, FIRST_DEVICE, FIRST_INVITE_TTL, None)
    };
    let info = match made {
        Ok(info) => info,
        Err(e) => {
            tracing::warn!("could not make the first invite: {e:#}");
            eprintln!("Create an invite with: {invite_command}");
            return;
        }
    };
    eprintln!();
    eprintln!("First run: here is an invite for your first device. Scan the code with the phone's");
    eprintln!("camera (or open the link on the device); the page enrols it and connects.");
    eprintln!();
    eprintln!("{}", info.link);
    match crate::qr::render(&info.link) {
        Ok(code) => eprintln!("{code}"),
        Err(e) => tracing::warn!("could not draw the QR code: {e}"),
    }
    eprintln!("Single use, for `{}`, valid until {}, may reach {}.", info.name, crate::qr::utc(info.expires), info.allow);
    eprintln!("Keep it private: it grants access. More devices: {invite_command}");
}

/// A relay that has never issued an invite nor enrolled a device.
fn is_first_run(relay: &Relay) -> bool {
    let store = relay.store();
    store.registry.clients.is_empty() && store.invites.invites.is_empty()
}

/// The certificate the relay presents, as a visitor's browser will judge it. The one place that
/// says so on the command line: other kinds of certificates get their own variant here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertificateState {
    /// Made by the relay itself: every device warns until the user accepts it.
    SelfSigned {
        /// SHA-256 of the certificate (what a browser's certificate viewer shows).
        fingerprint: String,
    },
    /// Files given with `--tls-cert/--tls-key`.
    Given {
        /// The certificate chain file.
        path: PathBuf,
        /// SHA-256 of the first certificate in it.
        fingerprint: String,
    },
    /// The certificate file cannot be read (the relay would not have started; kept for `status`).
    Unreadable {
        /// The certificate chain file.
        path: PathBuf,
    },
}

impl CertificateState {
    /// Reads the configured certificate.
    pub fn of(dir: &Path, config: &Config) -> CertificateState {
        let path = Config::resolve(dir, &config.tls_cert);
        let Some(fingerprint) = fingerprint(&path) else {
            return CertificateState::Unreadable { path };
        };
        if config.self_signed {
            CertificateState::SelfSigned { fingerprint }
        } else {
            CertificateState::Given { path, fingerprint }
        }
    }
}

impl fmt::Display for CertificateState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertificateState::SelfSigned { fingerprint } => write!(
                f,
                "self-signed: each device shows a warning once; accept it only when the browser's\n               \
                 certificate viewer shows SHA-256 {fingerprint}"
            ),
            CertificateState::Given { path, fingerprint } => write!(f, "from {} (SHA-256 {fingerprint})", path.display()),
            CertificateState::Unreadable { path } => write!(f, "cannot read {}", path.display()),
        }
    }
}

/// SHA-256 of the first certificate in a PEM file, as `AB:CD:...`.
fn fingerprint(path: &Path) -> Option<String> {
    use tokio_rustls::rustls::pki_types::{pem::PemObject, CertificateDer};
    let cert = CertificateDer::pem_file_iter(path).ok()?.next()?.ok()?;
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
    Some(digest.as_ref().iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_certificate_state_names_the_fingerprint_a_browser_shows() {
        let dir = tempfile::tempdir().unwrap();
        let args = crate::cli::SetupArgs {
            dir: dir.path().join("state"),
            listen: Some("127.0.0.1:8443".parse().unwrap()),
            lan: Some("192.168.77.0/24".parse().unwrap()),
            ..Default::default()
        };
        let config = crate::cmd::setup::prepare(&args).unwrap();
        let state = CertificateState::of(&args.dir, &config);
        let CertificateState::SelfSigned { fingerprint } = &state else { panic!("{state:?}") };
        assert_eq!(fingerprint.len(), 32 * 3 - 1, "{fingerprint}");
        assert!(fingerprint.bytes().all(|b| b == b':' || b.is_ascii_hexdigit()), "{fingerprint}");
        assert!(state.to_string().contains(fingerprint.as_str()));
        std::fs::write(args.dir.join("tls-cert.pem"), "not a certificate").unwrap();
        assert!(matches!(CertificateState::of(&args.dir, &config), CertificateState::Unreadable { .. }));
    }
}
