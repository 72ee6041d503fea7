//! The operator's own certificate files (`tls_cert`, `tls_key`: certbot's, say), read again
//! when they change: a certificate renewed on disk is served without a restart, where it used
//! to be read once and served until it expired. A pair that does not load (caught half
//! written, or a key that does not match) is not served; the one before stays, and the next
//! change is tried again.

use std::path::{Path, PathBuf};

use anyhow::Context;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::certs::{Certs, Served};

/// How often the files are looked at.
pub const EVERY: Duration = Duration::from_secs(60);

/// The two files and what they were when last read.
pub struct FileCert {
    cert: PathBuf,
    key: PathBuf,
    seen: Option<(SystemTime, SystemTime, u64, u64)>,
}

impl FileCert {
    /// Watches `cert` and `key`, as they are now.
    pub fn new(cert: PathBuf, key: PathBuf) -> Self {
        let mut files = Self { cert, key, seen: None };
        files.seen = files.stamp();
        files
    }

    fn stamp(&self) -> Option<(SystemTime, SystemTime, u64, u64)> {
        let (cert, key) = (std::fs::metadata(&self.cert).ok()?, std::fs::metadata(&self.key).ok()?);
        Some((cert.modified().ok()?, key.modified().ok()?, cert.len(), key.len()))
    }

    /// `None` while the files are as last read; else the pair they hold now, or why it does
    /// not load.
    pub fn changed(&mut self) -> Option<Result<Served, String>> {
        let now = self.stamp();
        if now == self.seen {
            return None;
        }
        self.seen = now;
        Some(load(&self.cert, &self.key).map_err(|e| format!("{e:#}")))
    }
}

/// The certificate chain at `cert` and its key at `key`, ready to serve.
pub fn load(cert: &Path, key: &Path) -> anyhow::Result<Served> {
    let read = |p: &Path| std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()));
    Served::from_pem(&read(cert)?, &read(key)?)
        .with_context(|| format!("TLS certificate {} and key {}", cert.display(), key.display()))
}

/// Looks every [`EVERY`] for the life of the relay, and serves a renewed pair.
pub async fn watch(mut files: FileCert, certs: Arc<Certs>) {
    let mut ticks = tokio::time::interval(EVERY);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        match files.changed() {
            None => {}
            Some(Ok(served)) => {
                tracing::info!(
                    cert = %files.cert.display(),
                    "the certificate files changed: serving the new certificate (valid until {})",
                    crate::qr::utc(served.leaf.not_after)
                );
                certs.replace_fallback(served);
            }
            Some(Err(e)) => {
                tracing::warn!("the certificate files changed but do not load ({e}); still serving the one before");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acme::Kind;

    fn pem(name: &str) -> (String, String) {
        let made = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        (made.cert.pem(), made.signing_key.serialize_pem())
    }

    #[test]
    fn renewed_files_are_served_and_a_broken_pair_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("fullchain.pem"), dir.path().join("privkey.pem"));
        let (first_cert, first_key) = pem("home.example.net");
        std::fs::write(&cert, &first_cert).unwrap();
        std::fs::write(&key, &first_key).unwrap();
        let certs = Certs::new(None, Served::from_pem(&first_cert, &first_key).unwrap(), Kind::File);
        let mut files = FileCert::new(cert.clone(), key.clone());
        assert!(files.changed().is_none(), "nothing changed yet");

        // certbot renews: both files change.
        let (renewed_cert, renewed_key) = pem("renewed.example.net");
        std::fs::write(&cert, &renewed_cert).unwrap();
        std::fs::write(&key, &renewed_key).unwrap();
        certs.replace_fallback(files.changed().expect("a change").expect("the renewed pair loads"));
        assert_eq!(certs.pick(None).0.leaf.names, ["renewed.example.net"]);
        assert!(files.changed().is_none(), "read once");

        // Caught half written: the new certificate with the old key.
        let (half_cert, _) = pem("half.example.net");
        std::fs::write(&cert, &half_cert).unwrap();
        assert!(files.changed().expect("a change").is_err(), "a certificate without its key");
        assert_eq!(certs.pick(None).0.leaf.names, ["renewed.example.net"], "the one before stays");
    }
}
