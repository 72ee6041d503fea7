//! The lab's one login user on the machine ([`USER`], home `/home/hometun-lab`), for the LAN
//! hosts' servers that log people in by the system's accounts (OpenSSH, Cockpit). Created once
//! if missing; unlocked with [`PASSWORD`] while a server runs, locked when the last one stops.

use std::process::Command;
use std::time::Duration;

use anyhow::ensure;

use crate::lab::run_bounded;

/// The lab user.
pub const USER: &str = "hometun-lab";
/// The lab user's password while a server runs.
pub const PASSWORD: &str = "lab-Ssh-pw-7281";
/// Its home directory.
pub(crate) const HOME: &str = "/home/hometun-lab";

/// Runs `program` with `args` (and `stdin` as one line of input), bounded in time; its output,
/// or an error with what it said.
pub(crate) fn run(program: &str, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
    let out = if let Some(input) = stdin {
        let script = format!("printf '%s\\n' \"$1\" | {program} {}", args.join(" "));
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &script, "sh", input]);
        run_bounded(cmd, Duration::from_secs(20))?
    } else {
        let mut cmd = Command::new(program);
        cmd.args(args);
        run_bounded(cmd, Duration::from_secs(20))?
    };
    ensure!(out.status.success(), "{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// How many servers of this process use the user now.
static USERS: std::sync::Mutex<usize> = std::sync::Mutex::new(0);

/// The user unlocked for one server; the last one dropped in this process locks it again (tests
/// of one binary run side by side: one test's server must not lock another's user).
pub struct Unlocked(());

/// Creates the user if missing, sets its password to [`PASSWORD`] and unlocks it while the
/// returned guard lives.
pub fn unlock() -> anyhow::Result<Unlocked> {
    let mut users = USERS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if run("id", &[USER], None).is_err() {
        run("useradd", &["--create-home", "--home-dir", HOME, "--shell", "/bin/bash", USER], None)?;
    }
    run("chpasswd", &[], Some(&format!("{USER}:{PASSWORD}")))?;
    run("usermod", &["--unlock", USER], None)?;
    *users += 1;
    Ok(Unlocked(()))
}

impl Drop for Unlocked {
    fn drop(&mut self) {
        let mut users = USERS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *users -= 1;
        if *users == 0 {
            let _ = run("usermod", &["--lock", USER], None);
        }
    }
}
