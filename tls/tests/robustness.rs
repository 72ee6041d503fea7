//! What the client does with bytes that are not a well-behaved TLS server's: a clean
//! [`TlsError`], never a panic, and the same error on every later call.

mod pair;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use hometun_tls::{Client, TlsError, MAX_UNREAD_PLAINTEXT};
use pair::{pattern, server, Identity, Pair, NAS};
use rustls::version::{TLS12, TLS13};

fn established() -> Pair {
    let nas = Identity::self_signed(&rcgen::PKCS_ECDSA_P256_SHA256);
    let mut pair = Pair::new(server(&[&TLS13], &nas, &nas));
    pair.run().expect("the handshake completes");
    pair
}

#[test]
fn a_plain_http_answer_is_not_tls() {
    let mut client = Client::new(NAS).unwrap();
    let _hello = client.take_outgoing();
    let error = client.receive(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n").unwrap_err();
    assert!(matches!(error, TlsError::NotTls(_)), "{error:?}");
    assert!(error.to_string().contains("https"), "the message says what to check: {error}");
    assert_eq!(client.receive(b"\x16\x03\x03"), Err(error.clone()), "the error is sticky");
    assert_eq!(client.send(b"x"), Err(error));
    assert!(!client.take_outgoing().is_empty(), "an alert tells the host why");
}

#[test]
fn random_garbage_is_refused_whatever_its_split() {
    for seed in 0..64 {
        let garbage = pattern(300, seed * 7919);
        let mut client = Client::new(NAS).unwrap();
        let mut result = Ok(());
        for chunk in garbage.chunks(1 + seed as usize % 13) {
            result = client.receive(chunk);
            if result.is_err() {
                break;
            }
        }
        // A plausible record header may leave the client waiting; it never panics or succeeds.
        assert!(client.is_handshaking(), "seed {seed}: {result:?}");
        let _ = client.take_outgoing();
    }
}

#[test]
fn a_record_cut_short_in_the_servers_flight_fails_the_handshake() {
    let nas = Identity::self_signed(&rcgen::PKCS_ECDSA_P256_SHA256);
    for versions in [&[&TLS13][..], &[&TLS12][..]] {
        let mut pair = Pair::new(server(versions, &nas, &nas));
        let mut first = true;
        let result = pair.run_altered(|flight| {
            if std::mem::take(&mut first) {
                // The first record (ServerHello) loses its last 20 bytes and another record
                // follows (TLS 1.2 may send the whole flight as that one record): the client
                // takes the next record's first bytes for the cut record's end.
                let len = usize::from(u16::from_be_bytes([flight[3], flight[4]]));
                flight.drain(5 + len - 20..5 + len);
                flight.extend_from_slice(&[0x17, 0x03, 0x03, 0x00, 100]);
                flight.extend_from_slice(&[0; 100]);
            }
        });
        let error = result.expect_err("a cut record is noticed");
        assert!(pair.client.is_handshaking(), "{error:?}");
        assert_eq!(pair.client.receive(&[0x17]), Err(error), "the error is sticky");
    }
}

#[test]
fn a_record_cut_short_at_the_end_of_the_input_waits_for_the_rest() {
    let mut pair = established();
    pair.server_send(b"HTTP/1.1 200 OK\r\n\r\nhello");
    let record = pair.server_outgoing();
    let (start, end) = record.split_at(record.len() - 3);
    assert_eq!(pair.client_receive(start), Ok(()), "no error: the record may yet complete");
    assert!(pair.client_got.is_empty());
    assert!(!pair.client.peer_closed());
    pair.client_receive(end).unwrap();
    assert_eq!(pair.client_got, b"HTTP/1.1 200 OK\r\n\r\nhello");
}

#[test]
fn a_record_altered_on_the_way_is_detected() {
    let mut pair = established();
    pair.server_send(b"HTTP/1.1 200 OK\r\n\r\nhello");
    let mut record = pair.server_outgoing();
    let last = record.len() - 1;
    record[last] ^= 0x01;
    assert_eq!(pair.client_receive(&record), Err(TlsError::Corrupted));
    assert!(pair.client_got.is_empty(), "nothing of the altered record is delivered");
}

#[test]
fn a_protocol_version_alert_says_the_host_speaks_nothing_supported() {
    // A fatal protocol_version (70) and handshake_failure (40) alert, as an old device sends
    // to a ClientHello it cannot serve.
    for alert in [70, 40] {
        let mut client = Client::new(NAS).unwrap();
        let _hello = client.take_outgoing();
        let error = client.receive(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, alert]).unwrap_err();
        assert!(matches!(error, TlsError::Unsupported(_)), "{error:?}");
        assert!(error.to_string().contains("TLS 1.2 or 1.3 with ECDHE"), "{error}");
    }
}

#[test]
fn plaintext_left_unread_beyond_the_bound_is_refused() {
    let mut pair = established();
    pair.server_send(&pattern(MAX_UNREAD_PLAINTEXT + 100_000, 3));
    let records = pair.server_outgoing();
    // All at once and never drained: more than the bound would wait.
    let (first, second) = records.split_at(records.len() / 2);
    pair.client.receive(first).expect("half is within the bound");
    let error = pair.client.receive(second).unwrap_err();
    assert_eq!(error, TlsError::TooMuchUnread { limit: MAX_UNREAD_PLAINTEXT });
    assert!(pair.client.take_plaintext().len() <= MAX_UNREAD_PLAINTEXT);
}

#[test]
fn a_caller_that_drains_after_each_receive_never_meets_the_bound() {
    let mut pair = established();
    let sent = pattern(3 * MAX_UNREAD_PLAINTEXT, 4);
    pair.server_send(&sent);
    let records = pair.server_outgoing();
    for chunk in records.chunks(MAX_UNREAD_PLAINTEXT) {
        pair.client.receive(chunk).expect("a drained client has room");
        pair.client_got.extend(pair.client.take_plaintext());
    }
    assert!(pair.client_got == sent);
}
