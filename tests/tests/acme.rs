//! Trusted HTTPS by ACME in the lab: the relay gets its certificate from a real ACME server
//! (Debian's pebble, on the internet side) by TLS-ALPN-01 through the home router's port
//! forward, keeps and renews it, and gets certificates for app names of LAN hosts only, when an
//! enrolled device asks (a handshake naming one orders nothing).
//! Every claim is checked as a browser would check it (trust root + name, no pinning), and
//! every "no order" claim by pebble's own log.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use hometun_shared::app_name::AppTarget;
use hometun_shared::control::AppCertOutcome;
use hometun_tests::acme::{demand_app_certs, leaf_of, retry, trusted_handshake};
use hometun_tests::client::{Device, RelayTarget};
use hometun_tests::content;
use hometun_tests::lab::{addr, Lab, Node};
use hometun_tests::relay::{AcmeOptions, Relay, RelayOptions};

const T: Duration = Duration::from_secs(60);

fn app_name(ip: &str, port: u16) -> String {
    format!("h-{}-p{port}.{}", ip.replace('.', "-"), addr::DOMAIN)
}

fn certificate_kind(relay: &Relay) -> String {
    relay.status().map(|s| s["certificate"]["kind"].as_str().unwrap_or_default().to_owned()).unwrap_or_default()
}

#[test]
fn the_relay_gets_a_trusted_certificate_app_names_only_when_a_device_asks_and_keeps_them_across_a_restart() {
    let lab = Lab::start().expect("lab");
    let ca = lab.start_acme().expect("ACME CA");
    let root = ca.issuing_root().expect("pebble's root");
    let started = Instant::now();
    let mut relay = Relay::start(&lab, RelayOptions { acme: Some(AcmeOptions::from(&ca)), ..RelayOptions::default() })
        .expect("relay");

    // From an empty state directory to a certificate a browser trusts for the domain.
    let main = retry(T, || trusted_handshake(&lab, addr::DOMAIN, &root)).expect("trusted certificate for the domain");
    eprintln!("empty DIR to a trusted certificate: {:.1?}", started.elapsed());
    assert_eq!(certificate_kind(&relay), "acme");
    assert_eq!(ca.orders(), 1, "one order for the domain");
    let status = relay.admin(&["status"]).expect("status");
    assert!(status.contains("trusted, for home.test"), "status says:\n{status}");

    // A handshake naming an app orders nothing: anyone on the internet can send one.
    let nas = app_name("192.168.0.10", 8123);
    assert!(trusted_handshake(&lab, &nas, &root).is_err(), "{nas} was served a certificate valid for it");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(ca.orders(), 1, "a stranger's handshake caused an ACME order; pebble log:\n{}", ca.log());

    // An enrolled device about to open the app asks through its tunnel: one order, for a LAN
    // host its allow list reaches; nothing for the relay itself, the LAN's broadcast address or
    // what its allow list does not reach.
    let app_at = |ip: Ipv4Addr, port| AppTarget::http(SocketAddrV4::new(ip, port));
    let nas_app = app_at(addr::HOST10, 8123);
    let asked = [
        nas_app,
        app_at(addr::HOME, 443),
        app_at(Ipv4Addr::new(192, 168, 0, 255), 80),
        app_at(addr::HOST10, 9000),
        app_at(Ipv4Addr::new(10, 0, 0, 1), 80),
        nas_app,
    ];
    let answers = demand_app_certs(&lab, &relay, "laptop", Some("192.168.0.0/24:80-8123/tcp"), &asked)
        .expect("the device's demands");
    use AppCertOutcome::{NotAllowed, NotLan, Ordering};
    assert_eq!(
        answers,
        [Some(Ordering), Some(NotLan), Some(NotLan), Some(NotAllowed), Some(NotAllowed), Some(Ordering)]
    );
    let app = retry(T, || trusted_handshake(&lab, &nas, &root)).expect("trusted certificate for the app name");
    assert_ne!(app, main, "the app name has a certificate of its own");
    assert_eq!(
        demand_app_certs(&lab, &relay, "phone", None, &[nas_app]).expect("a later demand"),
        [Some(AppCertOutcome::Ready)]
    );
    assert_eq!(ca.orders(), 2, "one more order, for the app name");
    assert!(relay.log().contains("a device opens a new app"), "the relay log names the demand");

    // Names outside the LAN, the relay's own addresses and garbage get the domain's
    // certificate (not valid for them) and cause no order.
    let refused = [
        app_name("10.0.0.1", 80),
        app_name("8.8.8.8", 443),
        app_name("127.0.0.1", 80),
        app_name("192.168.0.2", 443),
        app_name("10.8.0.1", 80),
        app_name("192.168.0.0", 80),
        app_name("192.168.0.255", 80),
        format!("h-192-168-0-010-p80.{}", addr::DOMAIN),
        format!("h-192-168-0-10-p0.{}", addr::DOMAIN),
        format!("h-192-168-0-10-p99999.{}", addr::DOMAIN),
        format!("garbage.{}", addr::DOMAIN),
        format!("a.{nas}"),
        "home.example.net".to_owned(),
    ];
    for name in &refused {
        let result = trusted_handshake(&lab, name, &root);
        assert!(result.is_err(), "{name} was served a certificate valid for it");
    }
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(ca.orders(), 2, "refused names caused ACME orders; pebble log:\n{}", ca.log());
    assert_eq!(trusted_handshake(&lab, &nas, &root).expect("app name again"), app, "the app certificate is cached");

    // A restart reuses the stored account and certificates: no new order.
    let stored = relay.dir().join(format!("acme/certs/{}.pem", addr::DOMAIN));
    assert_eq!(
        std::fs::metadata(&stored).map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777).unwrap(),
        0o600
    );
    relay.restart().expect("restart");
    assert_eq!(trusted_handshake(&lab, addr::DOMAIN, &root).expect("domain after restart"), main);
    assert_eq!(trusted_handshake(&lab, &nas, &root).expect("app name after restart"), app);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(ca.orders(), 2, "the restart made a new order");
    assert_eq!(ca.log().matches("There are now 1 accounts").count(), 1, "one ACME account, reused");
}

#[test]
fn renewal_replaces_the_certificate_while_a_tunnel_keeps_moving_data() {
    let lab = Lab::start().expect("lab");
    let ca = lab.start_acme().expect("ACME CA");
    let root = ca.issuing_root().expect("pebble's root");
    let acme = AcmeOptions { renew_after_secs: Some(6), ..AcmeOptions::from(&ca) };
    let relay = Relay::start(&lab, RelayOptions { acme: Some(acme), ..RelayOptions::default() }).expect("relay");
    let first = retry(T, || trusted_handshake(&lab, addr::DOMAIN, &root)).expect("first certificate");
    let stored = relay.dir().join(format!("acme/certs/{}.pem", addr::DOMAIN));
    let target =
        RelayTarget { cert: leaf_of(&stored).expect("stored certificate").into(), ..relay.target().expect("target") };
    assert_eq!(target.cert.as_ref(), &first.der[..], "the stored certificate is the one served");
    let invite = relay.invite("laptop", "1h", None).expect("invite");

    let transfers = lab.run_in(Node::Wan, || async {
        let device = Device::new(&invite);
        let tunnel = device.enrol(&target, &invite).await.expect("enrol");
        let host = SocketAddrV4::new(addr::HOST10, 80);
        let size = 2 << 20;
        let deadline = Instant::now() + Duration::from_secs(16);
        let mut transfers = 0;
        while Instant::now() < deadline {
            let response = tunnel.http_get(host, &content::blob_path(size), T).await.expect("GET through the tunnel");
            assert_eq!(content::whole_blob(size, &response.body), Ok(()));
            assert!(tunnel.end().is_none(), "the tunnel ended");
            transfers += 1;
        }
        tunnel.disconnect().await;
        transfers
    });
    let renewed = trusted_handshake(&lab, addr::DOMAIN, &root).expect("renewed certificate");
    assert_ne!(renewed, first, "the certificate was renewed");
    assert!(ca.orders() >= 3, "at least two renewals in 16 s, pebble saw {} orders", ca.orders());
    assert!(transfers >= 3, "only {transfers} transfers");
    assert!(relay.log().contains("certificate obtained"), "relay log lacks the renewal");
}

#[test]
fn with_the_acme_server_down_at_start_the_relay_serves_retries_and_later_gets_its_certificate() {
    let lab = Lab::start().expect("lab");
    let ca = lab.prepare_acme().expect("ACME CA namespace (server down)");
    let relay = Relay::start(&lab, RelayOptions { acme: Some(AcmeOptions::from(&ca)), ..RelayOptions::default() })
        .expect("relay");

    // It serves (the self-signed fallback), says so, and keeps trying.
    let invite = relay.invite("phone", "1h", None).expect("invite");
    let target = relay.target().expect("target (self-signed fallback)");
    lab.run_in(Node::Wan, || async {
        let tunnel = Device::new(&invite).enrol(&target, &invite).await.expect("enrol on the fallback certificate");
        tunnel.disconnect().await;
    });
    assert_eq!(certificate_kind(&relay), "self-signed");
    retry(Duration::from_secs(20), || {
        let retries = relay.log().matches("obtaining the certificate failed, retrying").count();
        anyhow::ensure!(retries >= 2, "{retries} retries logged so far");
        Ok(())
    })
    .expect("the relay retries");
    let status = relay.admin(&["status"]).expect("status");
    assert!(status.contains("retrying in"), "status says:\n{status}");
    assert!(relay.is_running());

    // The server comes up; the next retry gets the certificate.
    ca.start_server().expect("pebble");
    let root = ca.issuing_root().expect("pebble's root");
    retry(Duration::from_secs(90), || trusted_handshake(&lab, addr::DOMAIN, &root))
        .expect("certificate after the server came up");
    assert_eq!(certificate_kind(&relay), "acme");
    assert_eq!(ca.orders(), 1);
}
