//! Who gets in: revoked devices are cut within a second and stay out, invites work once and
//! only while valid, and a client refuses a relay that does not hold the key its invite names.

use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use hometun_shared::invite::Invite;
use hometun_shared::keys::SecretKey;
use hometun_shared::session::{CloseReason, Error as SessionError, Refusal};
use hometun_tests::client::{ClientError, Device, End};
use hometun_tests::content;
use hometun_tests::lab::{addr, Lab, Node};
use hometun_tests::relay::{Relay, RelayOptions};

const T: Duration = Duration::from_secs(20);

fn refused(result: Result<impl Sized, ClientError>) -> Refusal {
    match result {
        Err(ClientError::Handshake(SessionError::Refused(reason))) => reason,
        Err(other) => panic!("expected a refusal, got {other}"),
        Ok(_) => panic!("expected a refusal, got a tunnel"),
    }
}

#[test]
fn a_revoked_device_is_cut_within_a_second_and_cannot_come_back() {
    let lab = Lab::start().expect("lab");
    let relay = Relay::start(&lab, RelayOptions::default()).expect("relay");
    let invite = relay.invite("lost-phone", "24h", None).unwrap();
    let bystander_invite = relay.invite("laptop", "24h", None).unwrap();
    let target = relay.target().unwrap();

    lab.run_in(Node::Wan, || async {
        let device = Device::new(&invite);
        let tunnel = device.enrol(&target, &invite).await.expect("enrol");
        let bystander = Device::new(&bystander_invite).enrol(&target, &bystander_invite).await.expect("bystander");
        tunnel.ping(addr::HOST10, 0, T).await.expect("works before the revoke");

        let revoked_at = tokio::task::block_in_place(|| {
            relay.revoke("lost-phone").expect("revoke");
            Instant::now()
        });
        let end = tunnel.wait_end(Duration::from_secs(1)).await;
        let took = revoked_at.elapsed();
        assert_eq!(end, Some(End::PeerClosed(CloseReason::Revoked)), "session cut with the Revoked reason within 1 s");
        assert!(took <= Duration::from_secs(1), "cut after {took:?}");
        eprintln!("revoked session cut {} ms after the revoke command returned", took.as_millis());
        assert!(tunnel.ping(addr::HOST10, 1, Duration::from_millis(500)).await.is_err());

        assert_eq!(refused(device.connect(&target).await), Refusal::UnknownDevice, "reconnect refused");
        assert_eq!(
            refused(device.enrol(&target, &invite).await),
            Refusal::InviteUsed,
            "re-enrolling with the old invite refused"
        );

        // Others are unaffected.
        bystander.ping(addr::HOST10, 2, T).await.expect("bystander still connected");
    });
    let listed = relay.client("lost-phone").unwrap();
    assert_eq!(listed["revoked"], true, "{listed}");

    // A second revoke changes nothing and says so; a script asking for JSON gets JSON.
    let again = relay.revoke("lost-phone").expect_err("a second revoke");
    assert!(format!("{again:#}").contains("`lost-phone` is already revoked"), "{again:#}");
    let said = relay.admin(&["clients", "revoke", "laptop", "--json"]).expect("revoke --json");
    let said: serde_json::Value = serde_json::from_str(&said).expect("JSON");
    assert!(said["name"] == "laptop" && said["relay_running"] == true && said["closed_session"].is_boolean(), "{said}");
    // A new invite under the lost phone's name says the name the new phone will be listed under.
    let printed = relay.admin(&["invite", "--name", "lost-phone", "--no-qr"]).expect("invite");
    assert!(printed.contains("for `lost-phone-2`"), "{printed}");
    let second = relay.admin(&["invite", "--name", "lost-phone", "--no-qr"]).expect("invite");
    assert!(second.contains("for `lost-phone-3`"), "the open invite holds -2: {second}");
}

#[test]
fn invites_work_once_and_only_while_valid() {
    let lab = Lab::start().expect("lab");
    let relay = Relay::start(&lab, RelayOptions::default()).expect("relay");
    let short = relay.invite("short", "1s", None).unwrap();
    let once = relay.invite("once", "24h", None).unwrap();
    let target = relay.target().unwrap();
    std::thread::sleep(Duration::from_millis(2100));

    lab.run_in(Node::Wan, || async {
        assert_eq!(refused(Device::new(&short).enrol(&target, &short).await), Refusal::InviteExpired);

        let first = Device::new(&once).enrol(&target, &once).await.expect("first use");
        assert_eq!(refused(Device::new(&once).enrol(&target, &once).await), Refusal::InviteUsed, "second device");
        first
            .http_get(SocketAddrV4::new(addr::HOST10, 80), &content::blob_path(1000), T)
            .await
            .expect("first still works");

        // An invite the relay never made (right relay key, random id and secret).
        let forged = Invite::generate(once.relay_key, &once.url, &mut rand_core::OsRng).unwrap();
        assert_eq!(refused(Device::new(&forged).enrol(&target, &forged).await), Refusal::InviteUnknown);

        // The right id with a wrong secret: the handshake cannot complete, nothing is registered.
        let mut wrong_secret = once.clone();
        wrong_secret.secret.0[0] ^= 1;
        let r = Device::new(&wrong_secret).enrol(&target, &wrong_secret).await;
        assert!(r.is_err(), "a wrong invite secret must not enrol");
    });
    let names: Vec<String> =
        relay.clients().unwrap().iter().map(|c| c["name"].as_str().unwrap_or("").to_owned()).collect();
    assert_eq!(names, vec!["once".to_owned()], "only the one good enrolment registered");
}

#[test]
fn a_client_refuses_a_relay_without_the_key_its_invite_names() {
    let lab = Lab::start().expect("lab");
    let relay = Relay::start(&lab, RelayOptions::default()).expect("relay");
    let invite = relay.invite("phone", "24h", None).unwrap();
    let target = relay.target().unwrap();
    let mut impostor_view = invite.clone();
    impostor_view.relay_key = SecretKey::generate(&mut rand_core::OsRng).public_key();

    lab.run_in(Node::Wan, || async {
        // The relay answering at this address does not hold the key the client expects.
        let r = Device::new(&impostor_view).enrol(&target, &impostor_view).await;
        match r {
            Ok(_) => panic!("client accepted a relay with another key"),
            Err(ClientError::Handshake(_) | ClientError::ClosedDuringHandshake | ClientError::Transport(_)) => {}
            Err(other) => panic!("unexpected failure: {other}"),
        }
        // The real invite still works afterwards: nothing was consumed by the failed attempt.
        Device::new(&invite).enrol(&target, &invite).await.expect("enrol with the right key");
    });

    // A relay presenting another TLS certificate is refused before any byte of the protocol.
    let mut wrong_cert = relay.target().unwrap();
    let other = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(other.path(), other_cert_pem()).unwrap();
    wrong_cert.cert = hometun_tests::client::RelayTarget::from_cert_file(wrong_cert.addr, other.path()).unwrap().cert;
    lab.run_in(Node::Wan, || async {
        match Device::new(&invite).connect(&wrong_cert).await {
            Err(ClientError::Transport(msg)) => assert!(msg.to_lowercase().contains("certificate"), "{msg}"),
            Err(other) => panic!("expected a TLS certificate error, got {other}"),
            Ok(_) => panic!("client accepted an unpinned certificate"),
        }
    });
}

/// A PEM "certificate" that is not the relay's (pinning compares bytes, so any bytes will do).
fn other_cert_pem() -> String {
    use base64::Engine;
    let mut der = vec![0u8; 400];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut der);
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN CERTIFICATE-----\n{b64}\n-----END CERTIFICATE-----\n")
}

/// A revoke must never be silently lost: when the running relay's admin socket does not answer
/// (here it was moved away), the command refuses to edit the state files behind the relay, which
/// would overwrite them later; once the socket answers again the revoke goes through.
#[test]
fn a_revoke_the_running_relay_cannot_hear_is_refused_not_lost() {
    let lab = Lab::start().expect("lab");
    let relay = Relay::start(&lab, RelayOptions::default()).expect("relay");
    let invite = relay.invite("tablet", "24h", None).unwrap();
    let target = relay.target().unwrap();
    lab.run_in(Node::Wan, || async {
        Device::new(&invite).enrol(&target, &invite).await.expect("enrol");
    });
    let socket = relay.dir().join("control.sock");
    let moved = relay.dir().join("control.sock.moved");
    std::fs::rename(&socket, &moved).expect("moving the admin socket away");

    let refused = relay.revoke("tablet").expect_err("a revoke behind the running relay's back");
    let message = format!("{refused:#}");
    assert!(message.contains("a relay is running") && message.contains("does not answer"), "refused with: {message}");

    std::fs::rename(&moved, &socket).expect("putting the admin socket back");
    assert_eq!(relay.client("tablet").unwrap()["revoked"], false, "nothing was written behind the relay");
    relay.revoke("tablet").expect("the relay answers again");
    assert_eq!(relay.client("tablet").unwrap()["revoked"], true, "revoked through the running relay");
}
