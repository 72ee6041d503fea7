//! Handshakes with an in-process rustls server showing a self-signed certificate: what a LAN
//! device does, and what an interceptor would try.

mod pair;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use hometun_tls::{Client, TlsError};
use pair::{pattern, server, Identity, Pair, NAS};
use rustls::version::{TLS12, TLS13};

const MIB: usize = 1 << 20;

#[test]
fn a_tls13_handshake_completes_and_a_mebibyte_crosses_each_way_intact() {
    let nas = Identity::self_signed(&rcgen::PKCS_ECDSA_P256_SHA256);
    let mut pair = Pair::new(server(&[&TLS13, &TLS12], &nas, &nas));
    assert!(pair.client.is_handshaking());
    assert_eq!(pair.client.protocol(), None, "no protocol while handshaking");
    assert_eq!(pair.client.peer_certificate(), None, "no certificate before the server's flight");
    assert_eq!(pair.client.peer_certificate_sha256(), None);

    pair.run().expect("the handshake completes");
    assert!(!pair.client.is_handshaking());
    assert!(!pair.server.is_handshaking());
    assert_eq!(pair.client.protocol().as_deref(), Some("TLSv1.3"));
    assert_eq!(pair.client.peer_certificate().as_deref(), Some(nas.cert.as_ref()), "the certificate to pin");
    let sha256 = ring::digest::digest(&ring::digest::SHA256, &nas.cert);
    let hex: Vec<String> = sha256.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    assert_eq!(pair.client.peer_certificate_sha256(), Some(hex.join(":")), "the fingerprint to pin");

    let up = pattern(MIB, 1);
    let down = pattern(MIB, 2);
    pair.client.send(&up).expect("send after the handshake");
    pair.server_send(&down);
    pair.run().expect("the transfer completes");
    assert!(pair.server_got == up, "the server got {} bytes, not the 1 MiB sent", pair.server_got.len());
    assert!(pair.client_got == down, "the client got {} bytes, not the 1 MiB sent", pair.client_got.len());
}

#[test]
fn a_tls12_only_server_works_too() {
    let nas = Identity::self_signed(&rcgen::PKCS_ECDSA_P384_SHA384);
    let mut pair = Pair::new(server(&[&TLS12], &nas, &nas));
    pair.run().expect("the handshake completes");
    assert!(!pair.client.is_handshaking());
    assert_eq!(pair.client.protocol().as_deref(), Some("TLSv1.2"));
    assert_eq!(pair.client.peer_certificate().as_deref(), Some(nas.cert.as_ref()));

    pair.client.send(b"GET / HTTP/1.1\r\nHost: 192.168.1.10\r\n\r\n").unwrap();
    pair.server_send(b"HTTP/1.1 204 No Content\r\n\r\n");
    pair.run().unwrap();
    assert_eq!(pair.server_got, b"GET / HTTP/1.1\r\nHost: 192.168.1.10\r\n\r\n");
    assert_eq!(pair.client_got, b"HTTP/1.1 204 No Content\r\n\r\n");
}

#[test]
fn an_ed25519_certificate_is_accepted() {
    let nas = Identity::self_signed(&rcgen::PKCS_ED25519);
    let mut pair = Pair::new(server(&[&TLS13], &nas, &nas));
    pair.run().expect("the handshake completes");
    assert_eq!(pair.client.peer_certificate().as_deref(), Some(nas.cert.as_ref()));
}

#[test]
fn a_tls13_server_showing_a_certificate_whose_key_it_lacks_is_refused() {
    let shown = Identity::self_signed(&rcgen::PKCS_ECDSA_P256_SHA256);
    let interceptor = Identity::self_signed(&rcgen::PKCS_ECDSA_P256_SHA256);
    let mut pair = Pair::new(server(&[&TLS13], &shown, &interceptor));
    assert_eq!(pair.run(), Err(TlsError::BadSignature));
    assert!(pair.client.is_handshaking(), "the handshake never finished");
    assert_eq!(pair.client.send(b"secret"), Err(TlsError::BadSignature), "the error is sticky");
    let alert = pair.client.take_outgoing();
    pair.server_receive(&alert);
    assert!(
        matches!(pair.server_error, Some(rustls::Error::AlertReceived(rustls::AlertDescription::DecryptError))),
        "the server is told: {:?}",
        pair.server_error
    );
}

#[test]
fn a_tls12_server_showing_a_certificate_whose_key_it_lacks_is_refused() {
    let shown = Identity::self_signed(&rcgen::PKCS_ECDSA_P256_SHA256);
    let interceptor = Identity::self_signed(&rcgen::PKCS_ECDSA_P256_SHA256);
    let mut pair = Pair::new(server(&[&TLS12], &shown, &interceptor));
    assert_eq!(pair.run(), Err(TlsError::BadSignature));
    assert!(pair.client.is_handshaking());
    assert_eq!(pair.client.protocol(), None);
}

#[test]
fn a_signature_by_a_key_of_another_type_is_refused() {
    let shown = Identity::self_signed(&rcgen::PKCS_ECDSA_P256_SHA256);
    let interceptor = Identity::self_signed(&rcgen::PKCS_ED25519);
    let mut pair = Pair::new(server(&[&TLS13], &shown, &interceptor));
    assert_eq!(pair.run(), Err(TlsError::BadSignature));
}

#[test]
fn send_is_refused_until_the_handshake_is_done() {
    let nas = Identity::self_signed(&rcgen::PKCS_ECDSA_P256_SHA256);
    let mut pair = Pair::new(server(&[&TLS13], &nas, &nas));
    assert_eq!(pair.client.send(b"early"), Err(TlsError::NotReady));

    // Halfway: the server's flight has arrived but the client's Finished is not sent yet.
    let hello = pair.client.take_outgoing();
    assert!(!hello.is_empty(), "the ClientHello is ready at once");
    pair.server.read_tls(&mut &hello[..]).unwrap();
    pair.server.process_new_packets().unwrap();
    let flight = pair.server_outgoing();
    let (first, rest) = flight.split_at(flight.len() / 2);
    pair.client_receive(first).expect("half a flight waits for the rest");
    assert!(pair.client.is_handshaking());
    assert_eq!(pair.client.send(b"early"), Err(TlsError::NotReady));
    pair.client_receive(rest).expect("the rest completes the flight");
    assert!(!pair.client.is_handshaking());

    assert_eq!(pair.client.send(b"late"), Ok(()), "refusals are not sticky");
    pair.run().unwrap();
    assert_eq!(pair.server_got, b"late", "nothing of the refused sends went out");
}

#[test]
fn close_sends_close_notify_and_the_peers_close_notify_is_seen() {
    let nas = Identity::self_signed(&rcgen::PKCS_ECDSA_P256_SHA256);
    let mut pair = Pair::new(server(&[&TLS13], &nas, &nas));
    pair.run().unwrap();
    assert!(!pair.client.peer_closed());

    pair.server_send(b"bye");
    pair.server.send_close_notify();
    pair.run().unwrap();
    assert_eq!(pair.client_got, b"bye", "data before close_notify arrives");
    assert!(pair.client.peer_closed());

    pair.client.close();
    assert_eq!(pair.client.send(b"more"), Err(TlsError::Closed));
    let close_notify = pair.client.take_outgoing();
    assert!(!close_notify.is_empty());
    pair.server.read_tls(&mut &close_notify[..]).unwrap();
    assert!(pair.server.process_new_packets().unwrap().peer_has_closed());
}

#[test]
fn a_client_is_made_for_any_ipv4_address_without_sni() {
    for ip in [NAS, std::net::Ipv4Addr::new(10, 0, 0, 1), std::net::Ipv4Addr::LOCALHOST] {
        let mut client = Client::new(ip).unwrap();
        let hello = client.take_outgoing();
        assert_eq!(hello[0], 0x16, "a handshake record");
        assert!(!hello.windows(b"nas.home".len()).any(|w| w == b"nas.home"));
    }
    let nas = Identity::self_signed(&rcgen::PKCS_ECDSA_P256_SHA256);
    let mut pair = Pair::new(server(&[&TLS13], &nas, &nas));
    pair.run().unwrap();
    assert_eq!(pair.server.server_name(), None, "no SNI for an IP address");
}
