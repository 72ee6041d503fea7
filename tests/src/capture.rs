//! Packet capture inside the lab (tcpdump), to prove that some packets never arrived.
//!
//! Start a [`Capture`] before the traffic, stop it after, and look at the packets it saw. A capture
//! is ready only once tcpdump says it is listening, so nothing sent after [`Capture::start`]
//! returns is missed.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::Context;

use crate::lab::{Lab, Node};

/// A tcpdump running in one lab namespace, writing to a file in the lab directory.
pub struct Capture {
    lab: Lab,
    name: String,
    pid: u32,
}

impl Capture {
    /// Starts capturing on `interface` in `node`, keeping packets that match the BPF `filter`.
    pub fn start(lab: &Lab, node: Node, interface: &str, filter: &str) -> anyhow::Result<Self> {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let name = format!("capture-{node:?}-{interface}-{}", COUNT.fetch_add(1, Ordering::Relaxed));
        let file = lab.dir().join(format!("{name}.pcap"));
        let file = file.to_str().context("pcap path")?.to_owned();
        // --immediate-mode: hand each packet over at once (otherwise packets still in the
        // kernel ring when tcpdump stops are counted but never written). -Z root: keep the
        // right to write into the lab's root-owned directory.
        let pid = lab.spawn(
            node,
            &name,
            "tcpdump",
            ["-i", interface, "-n", "-U", "--immediate-mode", "-Z", "root", "-w", &file, filter],
        )?;
        lab.wait_for_log(&name, "listening on", Duration::from_secs(10))?;
        Ok(Self { lab: lab.clone(), name, pid })
    }

    /// Stops the capture and returns one line per packet seen (`tcpdump -n -r` format).
    pub fn stop(self) -> anyhow::Result<Vec<String>> {
        self.stop_with(&[])
    }

    /// [`Capture::stop`] with the IP header spelled out (`tcpdump -v`: identification, flags,
    /// fragment offset, options), still one line per packet.
    pub fn stop_verbose(self) -> anyhow::Result<Vec<String>> {
        let lines = self.stop_with(&["-v"])?;
        let mut packets: Vec<String> = Vec::new();
        for line in lines {
            match packets.last_mut() {
                Some(last) if line.starts_with(char::is_whitespace) => {
                    last.push(' ');
                    last.push_str(line.trim());
                }
                _ => packets.push(line),
            }
        }
        Ok(packets)
    }

    fn stop_with(self, flags: &[&str]) -> anyhow::Result<Vec<String>> {
        // Let packets already on the wire reach the capture before stopping it.
        std::thread::sleep(Duration::from_millis(200));
        self.lab.stop(self.pid, Duration::from_secs(5))?;
        let file = self.lab.dir().join(format!("{}.pcap", self.name));
        let mut cmd = std::process::Command::new("tcpdump");
        cmd.arg("-n").args(flags).arg("-r").arg(&file);
        let out = crate::lab::run_bounded(cmd, Duration::from_secs(20))?;
        anyhow::ensure!(out.status.success(), "tcpdump -r: {}", String::from_utf8_lossy(&out.stderr));
        Ok(String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect())
    }
}
