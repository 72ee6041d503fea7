//! A real VNC server on a LAN host: TigerVNC's `Xvnc` (Debian's `tigervnc-standalone-server`),
//! an X server and a VNC server in one process, with no password or with VNC password auth
//! (the password file made by `vncpasswd -f`, from `tigervnc-tools`). Its root window is painted
//! one known colour with `xsetroot` (`x11-xserver-utils`), `xev -root` (`x11-utils`) records
//! every key and mouse button press that reaches the desktop and `xclip` reads and sets its clipboard, so a test can
//! check both ends: what the viewer shows and what the desktop got. Everything runs in the host's namespace and is stopped on drop.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};

use crate::lab::{wait_until, Lab, Node};

/// TigerVNC's X server with a built-in VNC server.
pub const XVNC: &str = "/usr/bin/Xvnc";
/// Writes an obfuscated VNC password file (`-f`: password on stdin, file on stdout).
pub const VNCPASSWD: &str = "/usr/bin/vncpasswd";
/// The desktop's size in pixels.
pub const SIZE: (u32, u32) = (640, 400);

/// A running VNC desktop; stopped and its files removed on drop.
pub struct VncServer {
    lab: Lab,
    node: Node,
    name: String,
    dir: PathBuf,
    display: u32,
    xvnc: Option<u32>,
    xev: Option<u32>,
    /// Where it listens (a LAN address).
    pub addr: SocketAddr,
}

impl VncServer {
    /// Starts a desktop named `name` in `node` listening on `addr`, its root window painted
    /// `colour` (RGB), asking for `password` (VNC auth) when one is given. Returns once it
    /// accepts connections and `xev` watches its keyboard.
    pub fn start(
        lab: &Lab,
        node: Node,
        addr: SocketAddr,
        name: &str,
        password: Option<&str>,
        colour: [u8; 3],
    ) -> anyhow::Result<Self> {
        let dir = lab.dir().join(format!("vnc-{name}"));
        std::fs::create_dir_all(&dir)?;
        let (width, height) = SIZE;
        let display = free_display()?;
        let mut args: Vec<String> = [
            &format!(":{display}"),
            "-rfbport",
            &addr.port().to_string(),
            "-interface",
            &addr.ip().to_string(),
            "-geometry",
            &format!("{width}x{height}"),
            "-depth",
            "24",
            "-desktop",
            name,
            "-AlwaysShared",
            "-noreset",
            "-nolisten",
            "tcp",
        ]
        .map(str::to_owned)
        .to_vec();
        match password {
            None => args.extend(["-SecurityTypes".into(), "None".into()]),
            Some(password) => {
                let file = dir.join("passwd");
                std::fs::write(&file, obfuscated_password(password)?)?;
                args.extend([
                    "-SecurityTypes".into(),
                    "VncAuth".into(),
                    "-PasswordFile".into(),
                    file.display().to_string(),
                ]);
            }
        }
        let log_name = format!("vnc-{name}");
        let xvnc = lab.spawn(node, &log_name, XVNC, &args)?;
        let mut server =
            Self { lab: lab.clone(), node, name: name.to_owned(), dir, display, xvnc: Some(xvnc), xev: None, addr };
        server.wait_listening()?;
        // xev first: a client stays connected, and key and button presses on the root window are
        // recorded.
        let xev_log = format!("xev-{name}");
        let xev = ["xev", "-root", "-event", "keyboard", "-event", "button"];
        server.xev = Some(lab.spawn(node, &xev_log, "env", server.x_args(xev))?);
        let solid = format!("#{:02x}{:02x}{:02x}", colour[0], colour[1], colour[2]);
        let out = lab.exec(node, "env", server.x_args(["xsetroot", "-solid", solid.as_str()]))?;
        if !out.status.success() {
            bail!("xsetroot failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(server)
    }

    /// `env DISPLAY=:N program args…` for an X client of this desktop.
    fn x_args<'a>(&self, program: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let mut args = vec![format!("DISPLAY=:{}", self.display)];
        args.extend(program.into_iter().map(str::to_owned));
        args
    }

    fn wait_listening(&self) -> anyhow::Result<()> {
        let port = format!(":{}", self.addr.port());
        wait_until(Duration::from_secs(15), || {
            let out = self.lab.exec(self.node, "ss", ["-Hltn"]).ok()?;
            String::from_utf8_lossy(&out.stdout).split_whitespace().any(|w| w.ends_with(&port)).then_some(())
        })
        .with_context(|| format!("Xvnc does not listen on {}; log:\n{}", self.addr, self.log()))
    }

    /// The keys the desktop got, in order: the keysym name of each key press xev saw (`a`,
    /// `Return`, `Control_L`, …).
    pub fn key_presses(&self) -> Vec<String> {
        let log = self.lab.log(&format!("xev-{}", self.name));
        let mut keys = Vec::new();
        let mut in_press = false;
        for line in log.lines() {
            if line.starts_with("KeyPress event") {
                in_press = true;
            } else if line.starts_with("KeyRelease event") {
                in_press = false;
            } else if in_press {
                // "    state 0x0, keycode 38 (keysym 0x61, a), same_screen YES,"
                if let Some(name) = line.split("(keysym ").nth(1).and_then(|r| r.split(')').next()) {
                    if let Some((_, name)) = name.split_once(", ") {
                        keys.push(name.to_owned());
                    }
                    in_press = false;
                }
            }
        }
        keys
    }

    /// The mouse buttons the desktop saw pressed, in order: the button (`1` is the left one) and
    /// where on the desktop.
    pub fn clicks(&self) -> Vec<(u32, i32, i32)> {
        let log = self.lab.log(&format!("xev-{}", self.name));
        let mut clicks = Vec::new();
        let mut at = None;
        for line in log.lines() {
            if line.starts_with("ButtonPress event") {
                at = Some(None);
            } else if let Some(position) = at {
                // "    root 0x25d, subw 0x0, time 1234, (120,45), root:(120,45),"
                if let Some(xy) = line.split("root:(").nth(1).and_then(|r| r.split(')').next()) {
                    let mut parts = xy.split(',').map(|n| n.trim().parse::<i32>().ok());
                    if let (Some(Some(x)), Some(Some(y))) = (parts.next(), parts.next()) {
                        at = Some(Some((x, y)));
                    }
                } else if let Some(n) = line.split(", button ").nth(1).and_then(|r| r.split(',').next()) {
                    // "    state 0x0, button 1, same_screen YES"
                    if let (Ok(button), Some((x, y))) = (n.trim().parse::<u32>(), position) {
                        clicks.push((button, x, y));
                    }
                    at = None;
                }
            }
        }
        clicks
    }

    /// The text on the desktop's clipboard (`xclip -o`).
    pub fn clipboard(&self) -> anyhow::Result<String> {
        let out = self.lab.exec(self.node, "env", self.x_args(["xclip", "-o", "-selection", "clipboard"]))?;
        if !out.status.success() {
            bail!("xclip -o: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Puts `text` on the desktop's clipboard, as copying it in an application there does
    /// (`xclip` keeps serving it in the background until the X server goes).
    pub fn copy(&self, text: &str) -> anyhow::Result<()> {
        let script = "printf %s \"$1\" | xclip -selection clipboard >/dev/null 2>&1";
        let out = self.lab.exec(self.node, "env", self.x_args(["sh", "-c", script, "sh", text]))?;
        if !out.status.success() {
            bail!("xclip: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(())
    }

    /// Xvnc's log so far.
    pub fn log(&self) -> String {
        self.lab.log(&format!("vnc-{}", self.name))
    }

    /// Stops the VNC server (as when the computer at home shuts down).
    pub fn stop(&mut self) {
        for pid in [self.xev.take(), self.xvnc.take()].into_iter().flatten() {
            let _ = self.lab.stop(pid, Duration::from_secs(5));
        }
        // Xvnc removes them when it exits; not when it was killed.
        let _ = std::fs::remove_file(format!("/tmp/.X{}-lock", self.display));
        let _ = std::fs::remove_file(format!("/tmp/.X11-unix/X{}", self.display));
    }
}

impl Drop for VncServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An X display number no X server on this machine uses (its lock file is absent).
fn free_display() -> anyhow::Result<u32> {
    (40..400)
        .find(|n| {
            !std::path::Path::new(&format!("/tmp/.X{n}-lock")).exists()
                && !std::path::Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
        })
        .context("no free X display number")
}

/// The VNC password file for `password` as `vncpasswd -f` writes it.
fn obfuscated_password(password: &str) -> anyhow::Result<Vec<u8>> {
    let mut child = Command::new(VNCPASSWD)
        .arg("-f")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {VNCPASSWD} (package tigervnc-tools)"))?;
    child.stdin.take().context("vncpasswd stdin")?.write_all(format!("{password}\n").as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() || out.stdout.len() != 8 {
        bail!("vncpasswd -f failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(out.stdout)
}

/// A hostile RFB server (Python, in the lab): a 64×64 desktop named `bomb` whose first update
/// is one zlib rectangle of 5000×5000 pixels, 100 MB once unpacked from about 100 KB sent,
/// more than any screen a viewer should set memory aside for. It then reads what the viewer
/// sends until it leaves. Prints `listening` once bound.
const RFB_BOMB: &str = r#"
import socket, struct, sys, zlib
address, port = sys.argv[1], int(sys.argv[2])
packer = zlib.compressobj(9)
chunk = bytes(1_000_000)
data = b"".join(packer.compress(chunk) for _ in range(100)) + packer.flush()
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((address, port))
server.listen(4)
print("listening", flush=True)
def need(conn, n):
    got = b""
    while len(got) < n:
        more = conn.recv(n - len(got))
        if not more:
            raise EOFError
        got += more
    return got
while True:
    conn, _ = server.accept()
    try:
        conn.sendall(b"RFB 003.008\n")
        need(conn, 12)
        conn.sendall(bytes([1, 1]))
        need(conn, 1)
        conn.sendall(struct.pack(">I", 0))
        need(conn, 1)
        name = b"bomb"
        pixel = struct.pack(">BBBBHHHBBB3x", 32, 24, 0, 1, 255, 255, 255, 16, 8, 0)
        conn.sendall(struct.pack(">HH", 64, 64) + pixel + struct.pack(">I", len(name)) + name)
        conn.sendall(struct.pack(">BxH", 0, 1) + struct.pack(">HHHHi", 0, 0, 5000, 5000, 6) + struct.pack(">I", len(data)) + data)
        print("sent", len(data), flush=True)
        while conn.recv(65536):
            pass
    except (EOFError, OSError):
        pass
    conn.close()
"#;

/// The hostile RFB server of [`RFB_BOMB`] on `addr`; stopped on drop.
pub struct RfbBomb {
    lab: Lab,
    pid: u32,
}

impl RfbBomb {
    /// Starts it in `node` on `addr`; returns once it listens.
    pub fn start(lab: &Lab, node: Node, addr: SocketAddr) -> anyhow::Result<Self> {
        let args = ["-c".to_owned(), RFB_BOMB.to_owned(), addr.ip().to_string(), addr.port().to_string()];
        let pid = lab.spawn(node, "rfb-bomb", "/usr/bin/python3", &args)?;
        lab.wait_for_log("rfb-bomb", "listening", Duration::from_secs(20))?;
        Ok(Self { lab: lab.clone(), pid })
    }

    /// What it printed (`sent N` once the update went out).
    pub fn log(&self) -> String {
        self.lab.log("rfb-bomb")
    }
}

impl Drop for RfbBomb {
    fn drop(&mut self) {
        let _ = self.lab.stop(self.pid, Duration::from_secs(2));
    }
}
