//! The state directory's lock: a running relay holds an exclusive lock on `DIR/relay.lock` for
//! its whole life, so a command that cannot reach it through the admin socket never edits the
//! state files behind it (the relay would overwrite them later: a revoke silently lost).

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// The lock file's name inside the state directory.
pub const LOCK_FILE: &str = "relay.lock";

/// Why the state directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process (a running relay) holds the lock.
    #[error("a relay is running on {0} (it holds {1})")]
    Held(PathBuf, PathBuf),
    /// The lock file could not be opened or locked.
    #[error("cannot lock {0}: {1}{hint}", hint = super::root::hint(.1))]
    Io(PathBuf, std::io::Error),
}

/// An exclusive lock on a state directory, released when dropped (or when the process ends).
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock on `dir` without waiting.
    pub fn try_acquire(dir: &Path) -> Result<Self, LockError> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| LockError::Io(path.clone(), e))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(TryLockError::WouldBlock) => Err(LockError::Held(dir.to_path_buf(), path)),
            Err(TryLockError::Error(e)) => Err(LockError::Io(path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = DirLock::try_acquire(dir.path()).expect("first lock");
        let refused = DirLock::try_acquire(dir.path()).expect_err("two holders of one directory");
        assert!(matches!(refused, LockError::Held(..)), "{refused}");
        drop(first);
        DirLock::try_acquire(dir.path()).expect("the lock is free again");
    }
}
