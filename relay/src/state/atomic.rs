//! Crash-safe file writes: write a temporary file, fsync it, rename it over the target, fsync
//! the directory. A reader sees the old file or the new one, never a torn one.
//!
//! The temporary file gets an unpredictable name and is always created new (`O_CREAT|O_EXCL`,
//! which also refuses a symlink in its place), so nothing planted in the directory is followed
//! or reused. A directory that group or others may write to is refused: whoever can write
//! there could swap the relay's keys and client list.

use rand_core::{OsRng, RngCore};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// How many random temporary names are tried before giving up.
const TEMP_ATTEMPTS: usize = 8;

/// Replaces `path` with `bytes` atomically; the file gets permission bits `mode`.
pub fn write(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    check_private_dir(dir)?;
    let (tmp, mut file) = create_temp(dir, &name.to_string_lossy(), mode)?;
    let result = (|| {
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Refuses a directory that group or others may write to, naming it and the fix.
pub fn check_private_dir(dir: &Path) -> io::Result<()> {
    let mode = fs::metadata(dir)?.permissions().mode();
    if mode & 0o022 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "state directory {} is writable by group or others (mode {:o}); \
                 the relay keeps its key and clients there: run `chmod go-w {}`",
                dir.display(),
                mode & 0o7777,
                dir.display()
            ),
        ));
    }
    Ok(())
}

/// Creates a new temporary file beside the target, under a random name.
fn create_temp(dir: &Path, name: &str, mode: u32) -> io::Result<(PathBuf, File)> {
    let mut last = None;
    for _ in 0..TEMP_ATTEMPTS {
        let tmp = dir.join(format!(".{name}.{:016x}.tmp", OsRng.next_u64()));
        match OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp) {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_sets_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write(&path, b"one", 0o600).unwrap();
        write(&path, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
    }

    #[test]
    fn a_symlink_planted_as_a_temporary_file_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        fs::write(&victim, b"keep me").unwrap();
        // Leftover names an attacker could predict: the old per-process name and plain ones.
        for planted in [format!(".state.json.tmp{}", std::process::id()), ".state.json.tmp".into()] {
            std::os::unix::fs::symlink(&victim, dir.path().join(planted)).unwrap();
        }
        let path = dir.path().join("state.json");
        write(&path, b"new state", 0o600).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"keep me", "the write went through the symlink");
        assert_eq!(fs::read(&path).unwrap(), b"new state");
        assert!(!fs::symlink_metadata(&path).unwrap().file_type().is_symlink());
    }

    #[test]
    fn a_directory_writable_by_others_is_refused_with_the_fix() {
        for mode in [0o777, 0o770, 0o702] {
            let dir = tempfile::tempdir().unwrap();
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(mode)).unwrap();
            let path = dir.path().join("state.json");
            let err = write(&path, b"x", 0o600).expect_err("a shared directory must be refused");
            let text = err.to_string();
            assert!(text.contains(&dir.path().display().to_string()), "{text}");
            assert!(text.contains("chmod go-w"), "{text}");
            assert!(!path.exists(), "nothing written");
        }
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        write(&dir.path().join("state.json"), b"x", 0o600).unwrap();
    }
}
