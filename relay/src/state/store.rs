//! The state directory: relay key, clients, invites and leases, loaded together and each saved
//! atomically on change.

use super::invites::InviteBook;
use super::pool::{AddressPool, LeaseFile};
use super::registry::Registry;
use anyhow::Context;
use hometun_shared::ipv4::Network;
use hometun_shared::keys::SecretKey;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// File names inside the state directory.
pub mod files {
    /// The relay's static secret key (text form, mode 0600).
    pub const RELAY_KEY: &str = "relay.key";
    /// Enrolled clients.
    pub const CLIENTS: &str = "clients.json";
    /// Issued invites (holds secrets; mode 0600).
    pub const INVITES: &str = "invites.json";
    /// Address leases.
    pub const LEASES: &str = "leases.json";
}

/// All persistent state except the configuration.
pub struct Store {
    dir: PathBuf,
    /// Enrolled clients.
    pub registry: Registry,
    /// Issued invites.
    pub invites: InviteBook,
    /// Address leases.
    pub pool: AddressPool,
    /// Times [`Store::save`] wrote something.
    saves: u64,
    /// Session counters (bytes, last seen) changed in memory that no write has taken yet.
    pub unsaved_counters: bool,
    /// When counters alone were last written.
    pub counters_written: Option<std::time::Instant>,
    /// A write of the counters waiting is scheduled.
    pub counters_flush_due: bool,
}

/// Which state files a change touched (see [`Store::save`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dirty {
    /// `invites.json`.
    pub invites: bool,
    /// `leases.json`.
    pub leases: bool,
    /// `clients.json`.
    pub clients: bool,
}

impl Dirty {
    /// Whether anything needs writing.
    pub fn any(self) -> bool {
        self.invites || self.leases || self.clients
    }
}

/// The in-memory state as it was, to put back when a write fails.
pub struct Snapshot {
    registry: Registry,
    invites: InviteBook,
    pool: AddressPool,
}

impl Store {
    /// Loads the state files in `dir` (missing files mean empty state).
    /// A directory that group or others may write to is refused (see [`super::atomic`]).
    pub fn load(dir: &Path, pool: Network) -> anyhow::Result<Self> {
        match super::atomic::check_private_dir(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        let registry: Registry = read_json(&dir.join(files::CLIENTS))?.unwrap_or_default();
        let invites: InviteBook = read_json(&dir.join(files::INVITES))?.unwrap_or_default();
        let leases: LeaseFile = read_json(&dir.join(files::LEASES))?.unwrap_or_default();
        let (mut pool, dropped) = AddressPool::restore(pool, leases);
        if dropped > 0 {
            tracing::warn!(dropped, "address leases outside the pool or duplicated were dropped");
        }
        let revoked: Vec<_> = registry.clients.iter().filter(|c| c.revoked).map(|c| c.key).collect();
        pool.retire_only(&revoked);
        Ok(Self {
            dir: dir.to_owned(),
            registry,
            invites,
            pool,
            saves: 0,
            unsaved_counters: false,
            counters_written: None,
            counters_flush_due: false,
        })
    }

    /// Saves the files `dirty` names (invites, then leases, then clients: a device is only
    /// registered once its invite is marked used), each atomically and fsynced; done when this
    /// returns `Ok`.
    pub fn save(&mut self, dirty: Dirty) -> anyhow::Result<()> {
        if !dirty.any() {
            return Ok(());
        }
        self.saves += 1;
        if dirty.invites {
            self.save_invites()?;
        }
        if dirty.leases {
            self.save_leases()?;
        }
        if dirty.clients {
            self.save_clients()?;
            self.unsaved_counters = false;
        }
        Ok(())
    }

    /// How many times [`Store::save`] wrote since loading.
    pub fn saves(&self) -> u64 {
        self.saves
    }

    /// The in-memory state, for [`Store::restore`].
    pub fn snapshot(&self) -> Snapshot {
        Snapshot { registry: self.registry.clone(), invites: self.invites.clone(), pool: self.pool.clone() }
    }

    /// Puts the in-memory state back as it was at `snapshot`.
    pub fn restore(&mut self, snapshot: Snapshot) {
        self.registry = snapshot.registry;
        self.invites = snapshot.invites;
        self.pool = snapshot.pool;
    }

    /// Saves `clients.json`.
    pub fn save_clients(&self) -> anyhow::Result<()> {
        write_json(&self.dir.join(files::CLIENTS), &self.registry, 0o600)
    }

    /// Saves `invites.json`.
    pub fn save_invites(&self) -> anyhow::Result<()> {
        write_json(&self.dir.join(files::INVITES), &self.invites, 0o600)
    }

    /// Saves `leases.json`.
    pub fn save_leases(&self) -> anyhow::Result<()> {
        write_json(&self.dir.join(files::LEASES), &self.pool.to_file(), 0o600)
    }
}

fn read_json<T: DeserializeOwned>(path: &Path) -> anyhow::Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).with_context(|| format!("{} is damaged", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T, mode: u32) -> anyhow::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    super::atomic::write(path, &bytes, mode).with_context(|| format!("writing {}", path.display()))
}

/// Reads the relay's secret key, creating it (mode 0600) when missing. Returns the key and
/// whether it was created.
pub fn relay_key(dir: &Path, create: bool) -> anyhow::Result<(SecretKey, bool)> {
    let path = dir.join(files::RELAY_KEY);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let text = zeroize::Zeroizing::new(text);
            let key = SecretKey::from_text(text.trim()).with_context(|| format!("{} is damaged", path.display()))?;
            Ok((key, false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            let key = SecretKey::generate(&mut rand_core::OsRng);
            let text = zeroize::Zeroizing::new(format!("{}\n", key.to_text()));
            super::atomic::write(&path, text.as_bytes(), 0o600)
                .with_context(|| format!("writing {}", path.display()))?;
            Ok((key, true))
        }
        Err(e) => Err(e).with_context(|| format!("reading {} (run `hometun-relay init` first)", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_key_is_created_once_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        assert!(relay_key(dir.path(), false).is_err());
        let (first, created) = relay_key(dir.path(), true).unwrap();
        assert!(created);
        let (again, created) = relay_key(dir.path(), true).unwrap();
        assert!(!created);
        assert_eq!(first.public_key(), again.public_key());
        let mode = std::fs::metadata(dir.path().join(files::RELAY_KEY)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn state_survives_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let net: Network = "10.8.0.0/24".parse().unwrap();
        let mut store = Store::load(dir.path(), net).unwrap();
        let key = hometun_shared::keys::PublicKey::from_bytes([1; 32]);
        let addr = store.pool.lease(&key).unwrap();
        store.save_leases().unwrap();
        let again = Store::load(dir.path(), net).unwrap();
        assert_eq!(again.pool.leased(&key), Some(addr));
    }

    #[test]
    fn a_state_directory_others_may_write_is_refused_at_load() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = Store::load(dir.path(), "10.8.0.0/24".parse().unwrap()).err().expect("refused");
        assert!(format!("{err:#}").contains("chmod go-w"), "{err:#}");
    }
}
