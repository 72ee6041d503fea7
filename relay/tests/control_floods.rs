//! What an enrolled device can make the relay do with control frames: one record (up to
//! 128 KiB) holds tens of thousands of them, and the relay has one worker thread for every
//! tunnel.

// Shared with the other scenario binaries; this one uses only some of it.
#[allow(dead_code)]
mod support;

use futures_util::SinkExt;
use hometun_relay::config::Limits;
use hometun_relay::daemon::datapath::{APP_CERTS_PER_MESSAGE, HOSTS_EVERY, WAKES_PER_MESSAGE};
use hometun_relay::discovery::inventory::{Announcement, Mac};
use hometun_shared::app_name::AppTarget;
use hometun_shared::control::{encode_app_cert, encode_subscribe, encode_wake, AppCertOutcome, ControlMessage};
use hometun_shared::keys::SecretKey;
use hometun_shared::session::Event;
use hometun_shared::wire::frame::FRAME_HEADER_LEN;
use hometun_testkit::tungstenite::Message;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::{Client, Lab};

/// Control frames with `body_len` bytes each that fit one record.
fn frames_per_record(body_len: usize) -> usize {
    (128 * 1024 - 64) / (FRAME_HEADER_LEN + body_len)
}

/// A relay whose LAN is busy (every host it remembers, each with services and names), and a
/// device enrolled on it.
async fn busy_lan_and_a_device() -> (Lab, Client) {
    let lab = Lab::start(Limits::default()).await;
    lab.relay.discovery.update(|inventory, now| {
        let hosts = 2..=250u8;
        let neighbours: Vec<_> =
            hosts.clone().map(|i| (Ipv4Addr::new(192, 168, 0, i), Mac([2, 0, 0, 0, 1, i]))).collect();
        inventory.observe_neighbours(now, &neighbours);
        for i in hosts {
            for port in 8000..8004u16 {
                inventory.observe_announcement(
                    now,
                    &Announcement {
                        instance: format!("Device number {i} service {port}._http._tcp.local."),
                        kind: "_http._tcp".into(),
                        host_name: format!("device-{i}.local."),
                        addresses: vec![Ipv4Addr::new(192, 168, 0, i)],
                        port,
                        ttl: Duration::from_secs(3600),
                    },
                );
            }
        }
    });
    let invite = lab.invite("mallory", 3600);
    let key = SecretKey::generate(&mut rand_core::OsRng);
    let mut client = lab.connect(&key, &invite.relay_key, Some(&invite)).await.unwrap();
    client.config().await;
    (lab, client)
}

async fn send_all(client: &mut Client) {
    while let Some(m) = client.session.poll_transmit(client.clock.now()) {
        client.ws.send(Message::Binary(m.into())).await.unwrap();
    }
}

/// Asks to wake `marker` in a message of its own and reads until its answer; returns the
/// control messages that came before it.
async fn events_until_wake_reply(client: &mut Client, marker: Ipv4Addr) -> Vec<ControlMessage> {
    client.session.send_encoded_control(&encode_wake(marker)).unwrap();
    send_all(client).await;
    let (events, _) = client
        .read_until(|e| matches!(e, Event::Control(ControlMessage::WakeReply { address, .. }) if *address == marker))
        .await
        .unwrap();
    let mut control: Vec<_> =
        events.into_iter().filter_map(|e| if let Event::Control(c) = e { Some(c) } else { None }).collect();
    control.pop();
    control
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_full_of_subscribes_is_handled_at_once_and_gets_one_host_list() {
    let (_lab, mut client) = busy_lan_and_a_device().await;
    let n = frames_per_record(encode_subscribe().len());
    for _ in 0..n {
        client.session.send_encoded_control(&encode_subscribe()).unwrap();
    }
    let sent = Instant::now();
    send_all(&mut client).await;
    let before = events_until_wake_reply(&mut client, Ipv4Addr::new(192, 168, 0, 77)).await;
    let took = sent.elapsed();
    let lists = before.iter().filter(|c| matches!(c, ControlMessage::Hosts(_))).count();
    assert_eq!(lists, 1, "{n} Subscribe frames in one record");
    assert!(took < Duration::from_millis(300), "the relay took {took:?} over {n} Subscribe frames");
}

/// Lines written by the relay's log, over all tests of this binary.
static LOG_LINES: AtomicUsize = AtomicUsize::new(0);

struct LineCounter;

impl Write for LineCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG_LINES.fetch_add(buf.iter().filter(|b| **b == b'\n').count(), Ordering::Relaxed);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_full_of_wake_requests_wakes_a_few_and_logs_a_few_lines() {
    let _ = tracing_subscriber::fmt().with_writer(|| LineCounter).with_max_level(tracing::Level::INFO).try_init();
    let (lab, mut client) = busy_lan_and_a_device().await;
    let flooded = Ipv4Addr::new(192, 168, 0, 9);
    let n = frames_per_record(encode_wake(flooded).len());
    for _ in 0..n {
        client.session.send_encoded_control(&encode_wake(flooded)).unwrap();
    }
    let lines_before = LOG_LINES.load(Ordering::Relaxed);
    send_all(&mut client).await;
    let before = events_until_wake_reply(&mut client, Ipv4Addr::new(192, 168, 0, 77)).await;
    let lines = LOG_LINES.load(Ordering::Relaxed) - lines_before;
    let answered =
        before.iter().filter(|c| matches!(c, ControlMessage::WakeReply { address, .. } if *address == flooded));
    assert_eq!(answered.count(), WAKES_PER_MESSAGE, "{n} Wake frames in one record");
    assert_eq!(lab.relay.discovery.wakes_dropped(), (n - WAKES_PER_MESSAGE) as u64);
    assert!(lines < 20, "{lines} log lines for {n} Wake frames");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_full_of_app_certificate_demands_gets_a_few_answers() {
    let (_lab, mut client) = busy_lan_and_a_device().await;
    let app = AppTarget::http(SocketAddrV4::new(Ipv4Addr::new(192, 168, 0, 10), 8080));
    let n = frames_per_record(encode_app_cert(app).len());
    for _ in 0..n {
        client.session.send_encoded_control(&encode_app_cert(app)).unwrap();
    }
    send_all(&mut client).await;
    let before = events_until_wake_reply(&mut client, Ipv4Addr::new(192, 168, 0, 77)).await;
    let answers: Vec<_> = before
        .iter()
        .filter_map(|c| match c {
            ControlMessage::AppCertReply { app: answered, outcome } if *answered == app => Some(*outcome),
            _ => None,
        })
        .collect();
    // This relay has no domain: it gets no app-name certificates, and says so.
    assert_eq!(answers, [AppCertOutcome::Unavailable; APP_CERTS_PER_MESSAGE], "{n} AppCert frames in one record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lan_host_that_keeps_changing_its_announcement_gets_a_device_one_list_a_second() {
    let (lab, mut client) = busy_lan_and_a_device().await;
    client.session.send_encoded_control(&encode_subscribe()).unwrap();
    send_all(&mut client).await;
    let first = events_until_wake_reply(&mut client, Ipv4Addr::new(192, 168, 0, 77)).await;
    assert_eq!(first.iter().filter(|c| matches!(c, ControlMessage::Hosts(_))).count(), 1, "the subscription's list");
    // A host on the LAN announces its service again and again, each time on another port.
    let changes = 100u16;
    for i in 0..changes {
        lab.relay.discovery.update(|inventory, now| {
            inventory.observe_announcement(
                now,
                &Announcement {
                    instance: "Restless._http._tcp.local.".into(),
                    kind: "_http._tcp".into(),
                    host_name: "restless.local.".into(),
                    addresses: vec![Ipv4Addr::new(192, 168, 0, 10)],
                    port: 9000 + i,
                    ttl: Duration::from_secs(3600),
                },
            );
        });
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    // Past the spacing, the last change has reached the device too.
    tokio::time::sleep(HOSTS_EVERY + Duration::from_millis(500)).await;
    let after = events_until_wake_reply(&mut client, Ipv4Addr::new(192, 168, 0, 78)).await;
    let lists: Vec<_> =
        after.iter().filter_map(|c| if let ControlMessage::Hosts(l) = c { Some(l) } else { None }).collect();
    assert!(!lists.is_empty() && lists.len() <= 3, "{} lists for {changes} changes in about 0.3 s", lists.len());
    let last = lists.last().unwrap().hosts.iter().find(|h| h.address == Ipv4Addr::new(192, 168, 0, 10)).unwrap();
    assert!(
        last.services.iter().any(|s| s.port == 9000 + changes - 1),
        "the last list lacks the last change: {:?}",
        last.services
    );
}
