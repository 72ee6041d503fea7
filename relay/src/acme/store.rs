//! What ACME leaves on disk, under `DIR/acme/` (0700): the account (`account.json`, 0600, with
//! the directory URL it belongs to) and one `certs/<name>.pem` (0600: chain, then key) per name.
//! Every write is atomic, so a crash leaves the old file or the new one; a restart reuses both.

use instant_acme::AccountCredentials;
use serde::{Deserialize, Serialize};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// Why a stored file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The account file is not what this relay wrote.
    #[error("{path} is damaged ({source}); move it away to start a new ACME account")]
    Account {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
}

/// A stored certificate: the PEM chain and the PEM private key.
#[derive(Clone)]
pub struct Stored {
    /// Certificate chain, leaf first (PEM).
    pub chain_pem: String,
    /// The private key (PEM).
    pub key_pem: zeroize::Zeroizing<String>,
}

#[derive(Serialize, Deserialize)]
struct AccountFile {
    directory: String,
    credentials: AccountCredentials,
}

/// The `DIR/acme` folder.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// The store under the state directory `dir` (created on first write).
    pub fn new(dir: &Path) -> Self {
        Self { root: dir.join("acme") }
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
        move |source| StoreError::Io { path: path.to_owned(), source }
    }

    fn ensure_dirs(&self) -> Result<(), StoreError> {
        let certs = self.root.join("certs");
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&certs).map_err(Self::io(&certs))
    }

    /// The stored account for `directory`, if any (an account of another server is ignored).
    pub fn account(&self, directory: &str) -> Result<Option<AccountCredentials>, StoreError> {
        let path = self.root.join("account.json");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StoreError::Io { path, source }),
        };
        let file: AccountFile = serde_json::from_str(&text).map_err(|source| StoreError::Account { path, source })?;
        Ok((file.directory == directory).then_some(file.credentials))
    }

    /// Saves the account for `directory`.
    pub fn save_account(&self, directory: &str, credentials: AccountCredentials) -> Result<(), StoreError> {
        self.ensure_dirs()?;
        let path = self.root.join("account.json");
        let file = AccountFile { directory: directory.to_owned(), credentials };
        let text = zeroize::Zeroizing::new(
            serde_json::to_vec(&file).map_err(|e| StoreError::Io { path: path.clone(), source: e.into() })?,
        );
        crate::state::atomic::write(&path, &text, 0o600).map_err(Self::io(&path))
    }

    fn cert_path(&self, name: &str) -> PathBuf {
        self.root.join("certs").join(format!("{name}.pem"))
    }

    /// The stored certificate for `name`, if any.
    pub fn certificate(&self, name: &str) -> Result<Option<Stored>, StoreError> {
        let path = self.cert_path(name);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => zeroize::Zeroizing::new(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StoreError::Io { path, source }),
        };
        let Some(at) = text.find("-----BEGIN PRIVATE KEY-----").or_else(|| text.find("-----BEGIN EC PRIVATE KEY-----"))
        else {
            return Ok(None);
        };
        Ok(Some(Stored { chain_pem: text[..at].to_owned(), key_pem: zeroize::Zeroizing::new(text[at..].to_owned()) }))
    }

    /// Saves the certificate for `name`.
    pub fn save_certificate(&self, name: &str, stored: &Stored) -> Result<(), StoreError> {
        self.ensure_dirs()?;
        let path = self.cert_path(name);
        let mut text = zeroize::Zeroizing::new(stored.chain_pem.trim_end().to_owned());
        text.push('\n');
        text.push_str(&stored.key_pem);
        crate::state::atomic::write(&path, text.as_bytes(), 0o600).map_err(Self::io(&path))
    }

    /// Deletes the stored certificate for `name` (none stored is no error).
    pub fn remove_certificate(&self, name: &str) -> Result<(), StoreError> {
        let path = self.cert_path(name);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StoreError::Io { path, source: e }),
            _ => Ok(()),
        }
    }

    /// Names with a stored certificate.
    pub fn names(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.root.join("certs")) else { return Vec::new() };
        entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok()?.strip_suffix(".pem").map(str::to_owned))
            .filter(|name| super::settings::valid_domain(name))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn certificates_round_trip_privately() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        assert!(store.certificate("home.example.net").unwrap().is_none());
        let stored = Stored {
            chain_pem: "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n".into(),
            key_pem: "-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n".to_owned().into(),
        };
        store.save_certificate("home.example.net", &stored).unwrap();
        let back = store.certificate("home.example.net").unwrap().unwrap();
        assert_eq!(back.chain_pem.trim(), stored.chain_pem.trim());
        assert_eq!(back.key_pem.trim(), stored.key_pem.trim());
        let mode = std::fs::metadata(dir.path().join("acme/certs/home.example.net.pem")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(store.names(), vec!["home.example.net".to_owned()]);
        store.remove_certificate("home.example.net").unwrap();
        assert!(store.certificate("home.example.net").unwrap().is_none() && store.names().is_empty());
        store.remove_certificate("home.example.net").unwrap();
    }
}
