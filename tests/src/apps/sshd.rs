//! A real OpenSSH server (Debian's `openssh-server`) on a LAN host: `/usr/sbin/sshd -D -e` in
//! the host's namespace with its own config and host key under the lab's scratch directory,
//! no PAM, password and public-key login for one lab user. Nothing listens on the machine
//! itself. The lab hosts' `:22` is the banner stand-in ([`crate::lab`]), so sshd uses
//! [`PORT`].
//!
//! It logs in the lab user ([`super::lab_user`]); each start unlocks the user and empties its
//! `authorized_keys`; dropping the server stops it and empties `authorized_keys` again, and the
//! user is locked once no server of the process uses it.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{ensure, Context};

use crate::lab::{Lab, Node};

/// sshd's port on the LAN host.
pub const PORT: u16 = 2222;
use super::lab_user::{run, HOME};
pub use super::lab_user::{PASSWORD, USER};

/// A running sshd; stopped (and the user locked) on drop.
pub struct Sshd {
    lab: Lab,
    node: Node,
    dir: PathBuf,
    pid: Option<u32>,
    runs: u32,
    _user: super::lab_user::Unlocked,
    /// Where it listens.
    pub addr: SocketAddr,
}

fn authorized_keys() -> PathBuf {
    Path::new(HOME).join(".ssh/authorized_keys")
}

fn write_authorized_keys(lines: &str) -> anyhow::Result<()> {
    let file = authorized_keys();
    std::fs::create_dir_all(file.parent().context("no parent")?)?;
    std::fs::write(&file, lines)?;
    run("chown", &["-R", &format!("{USER}:{USER}"), &format!("{HOME}/.ssh")], None)?;
    run("chmod", &["700", &format!("{HOME}/.ssh")], None)?;
    run("chmod", &["600", &file.display().to_string()], None).map(|_| ())
}

impl Sshd {
    /// Starts sshd on `address:PORT` in `node` (a LAN host) with a fresh Ed25519 host key;
    /// returns once it listens.
    pub fn start(lab: &Lab, node: Node, address: Ipv4Addr) -> anyhow::Result<Self> {
        ensure!(
            Path::new("/usr/sbin/sshd").exists(),
            "/usr/sbin/sshd missing: install openssh-server (scripts/install.sh)"
        );
        let user = super::lab_user::unlock()?;
        write_authorized_keys("")?;
        // sshd insists on its privilege separation directory.
        std::fs::create_dir_all("/run/sshd")?;
        let dir = lab.dir().join("sshd");
        std::fs::create_dir_all(&dir)?;
        let mut sshd = Self {
            lab: lab.clone(),
            node,
            dir,
            pid: None,
            runs: 0,
            _user: user,
            addr: SocketAddr::from((address, PORT)),
        };
        sshd.new_host_key()?;
        Ok(sshd)
    }

    /// Makes a new host key and (re)starts sshd with it, as a reinstalled server would.
    pub fn new_host_key(&mut self) -> anyhow::Result<()> {
        self.stop();
        let key = self.host_key_path();
        let _ = std::fs::remove_file(&key);
        let _ = std::fs::remove_file(key.with_extension("pub"));
        run(
            "ssh-keygen",
            &["-q", "-t", "ed25519", "-N", "", "-C", "hometun-lab-host", "-f", &key.display().to_string()],
            None,
        )?;
        let config = self.dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {PORT}\nListenAddress {ip}\nHostKey {key}\nPidFile none\nUsePAM no\n\
                 PasswordAuthentication yes\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
                 PermitRootLogin no\nAllowUsers {USER}\nStrictModes no\nPrintMotd no\nLogLevel VERBOSE\n",
                ip = self.addr.ip(),
                key = key.display()
            ),
        )?;
        self.runs += 1;
        let log = self.log_name();
        let pid = self.lab.spawn(
            self.node,
            &log,
            "/usr/sbin/sshd",
            ["-D".as_ref(), "-e".as_ref(), "-f".as_ref(), config.as_os_str()],
        )?;
        self.pid = Some(pid);
        self.lab.wait_for_log(
            &log,
            &format!("Server listening on {} port {PORT}", self.addr.ip()),
            Duration::from_secs(10),
        )
    }

    fn host_key_path(&self) -> PathBuf {
        self.dir.join("ssh_host_ed25519_key")
    }

    fn log_name(&self) -> String {
        format!("sshd-{}", self.runs)
    }

    /// The host key's SHA-256 fingerprint as `ssh-keygen -l` prints it (`SHA256:…`).
    pub fn host_key_fingerprint(&self) -> anyhow::Result<String> {
        let out = run(
            "ssh-keygen",
            &["-l", "-E", "sha256", "-f", &self.host_key_path().with_extension("pub").display().to_string()],
            None,
        )?;
        out.split_whitespace().nth(1).map(str::to_owned).context("ssh-keygen -l printed no fingerprint")
    }

    /// Puts `line` (an OpenSSH public key) into the lab user's `authorized_keys`.
    pub fn authorize(&self, line: &str) -> anyhow::Result<()> {
        write_authorized_keys(&format!("{}\n", line.trim()))
    }

    /// What every run of sshd logged.
    pub fn log(&self) -> String {
        (1..=self.runs).map(|n| self.lab.log(&format!("sshd-{n}"))).collect::<Vec<_>>().join("\n")
    }

    /// Kills (SIGKILL) every per-connection process of the running sshd (its descendants),
    /// as a crash or an out-of-memory kill would: the clients' TCP connections die without an
    /// SSH goodbye while the server keeps listening. Returns how many processes were killed.
    pub fn kill_sessions(&self) -> anyhow::Result<usize> {
        let master = self.pid.context("sshd is not running")?;
        let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")?
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter_map(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                // "pid (comm) state ppid ...": comm may hold spaces, so split after its ')'.
                let ppid = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
                Some((pid, ppid))
            })
            .collect();
        let mut doomed = vec![master];
        let mut i = 0;
        while i < doomed.len() && doomed.len() < 10_000 {
            let parent = doomed[i];
            doomed.extend(parents.iter().filter(|(_, ppid)| *ppid == parent).map(|(pid, _)| *pid));
            i += 1;
        }
        let sessions = &doomed[1..];
        for pid in sessions {
            if let Some(pid) = i32::try_from(*pid).ok().and_then(rustix::process::Pid::from_raw) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
        Ok(sessions.len())
    }

    fn stop(&mut self) {
        if let Some(pid) = self.pid.take() {
            let _ = self.lab.stop(pid, Duration::from_secs(5));
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
        let _ = write_authorized_keys("");
    }
}
