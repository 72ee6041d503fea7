//! The lab itself: it comes up, behaves like a home behind a router, and always goes away.

use std::net::SocketAddr;
use std::time::Duration;

use hometun_tests::capture::Capture;
use hometun_tests::lab::{self, addr, Lab, Node};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

async fn http_get(to: SocketAddr, path: &str) -> anyhow::Result<Vec<u8>> {
    let mut s = timeout(Duration::from_secs(3), TcpStream::connect(to)).await??;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await?;
    let mut resp = Vec::new();
    timeout(Duration::from_secs(10), s.read_to_end(&mut resp)).await??;
    let head_end = resp.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| anyhow::anyhow!("no head"))?;
    anyhow::ensure!(resp.starts_with(b"HTTP/1.1 200"), "status: {:?}", String::from_utf8_lossy(&resp[..head_end]));
    Ok(resp.split_off(head_end + 4))
}

#[test]
fn lan_hosts_serve_and_the_internet_reaches_home_only_through_the_port_forward() {
    let lab = Lab::start().expect("lab");
    // The home server stands in for the relay with an echo on 443.
    let labhost = lab::labhost_binary().unwrap();
    lab.spawn(Node::Home, "home443", &labhost, ["--echo", "0.0.0.0:443"]).unwrap();
    lab.wait_for_log("home443", "ready", Duration::from_secs(5)).unwrap();

    // On the LAN: HTTP with known bytes, echo, the :22 banner, DNS.
    lab.run_in(Node::Router, || async {
        let body = http_get((addr::HOST10, 80).into(), "/blob/3000000").await.unwrap();
        assert_eq!(hometun_tests::content::whole_blob(3_000_000, &body), Ok(()));
        let page = http_get((addr::HOST20, 80).into(), "/").await.unwrap();
        assert!(String::from_utf8_lossy(&page).contains("Hello from h20"));

        let mut echo = TcpStream::connect((addr::HOST10, 7)).await.unwrap();
        echo.write_all(b"ping").await.unwrap();
        let mut back = [0u8; 4];
        echo.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"ping");

        let mut ssh = TcpStream::connect((addr::HOST20, 22)).await.unwrap();
        let mut banner = vec![0u8; hometun_tests::labhost::BANNER.len()];
        ssh.read_exact(&mut banner).await.unwrap();
        assert_eq!(banner, hometun_tests::labhost::BANNER);

        let dns = UdpSocket::bind("0.0.0.0:0").await.unwrap();
        let q = b"\x00\x07\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03nas\x04home\x04arpa\x00\x00\x01\x00\x01";
        dns.send_to(q, (addr::ROUTER_LAN, 53)).await.unwrap();
        let mut buf = [0u8; 512];
        let n = timeout(Duration::from_secs(2), dns.recv(&mut buf)).await.unwrap().unwrap();
        assert_eq!(&buf[n - 4..n], &[192, 168, 0, 10]);
    });
    assert_eq!(lab.service_peers(Node::Host10, "http").len(), 1);

    // From the internet: the port forward reaches home, nothing reaches the LAN hosts directly.
    let capture = Capture::start(&lab, Node::Host10, "eth0", "src net 203.0.113.0/24").unwrap();
    lab.run_in(Node::Wan, || async {
        let mut s = TcpStream::connect((addr::ROUTER_WAN, addr::RELAY_PORT)).await.expect("port forward");
        s.write_all(b"hello home").await.unwrap();
        let mut back = [0u8; 10];
        s.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"hello home");

        for target in [(addr::HOST10, 80), (addr::HOST10, 7), (addr::HOME, 443)] {
            let r = timeout(Duration::from_millis(700), TcpStream::connect(target)).await;
            assert!(!matches!(r, Ok(Ok(_))), "wan reached {target:?} without the tunnel");
        }
    });
    let seen = capture.stop().unwrap();
    assert!(seen.is_empty(), "packets from the internet reached 192.168.0.10: {seen:#?}");
    assert!(lab.service_peers(Node::Host10, "http").len() == 1, "no new HTTP peer");
}

#[test]
fn dropping_the_lab_removes_its_namespaces_even_after_a_panic() {
    let before = lab::own_namespaces();
    let lab_id = std::sync::Mutex::new(String::new());
    let result = std::panic::catch_unwind(|| {
        let lab = Lab::start().expect("lab");
        *lab_id.lock().unwrap() = lab.id().to_owned();
        let pid = lab.spawn(Node::Host20, "sleeper", "sleep", ["600"]).unwrap();
        assert!(lab.is_running(pid));
        assert_eq!(lab::own_namespaces().iter().filter(|n| n.starts_with(lab.id())).count(), 5);
        panic!("test failure inside a lab");
    });
    assert!(result.is_err());
    let id = lab_id.into_inner().unwrap();
    assert!(!id.is_empty());
    let after: Vec<_> = lab::own_namespaces().into_iter().filter(|n| n.starts_with(&format!("{id}-"))).collect();
    assert!(after.is_empty(), "left behind: {after:?} (before: {before:?})");
}

fn ip(args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new("ip");
    cmd.args(args);
    lab::run_bounded(cmd, Duration::from_secs(5)).unwrap()
}

#[test]
fn stale_namespaces_of_dead_test_runs_are_swept() {
    // Named like a lab of a process that cannot exist (above the kernel's pid_max).
    let name = format!("{}4194399-0-wan", lab::PREFIX);
    assert!(ip(&["netns", "add", &name]).status.success());
    assert!(lab::stale_namespaces().contains(&name));
    lab::sweep_stale();
    let listed = String::from_utf8_lossy(&ip(&["netns", "list"]).stdout).contains(&name);
    if listed {
        ip(&["netns", "del", &name]);
        panic!("stale namespace {name} was not swept");
    }
}
