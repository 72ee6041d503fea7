//! Broken and hostile connections: random bytes, truncated and oversized messages, a text frame,
//! a forged record, stalled handshakes. Each loses its own connection and nothing else: a good
//! client keeps fetching from the LAN the whole time.

use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hometun_shared::handshake::Initiator;
use hometun_shared::session::Params;
use hometun_tests::client::{self, Device, Tunnel, Ws};
use hometun_tests::content;
use hometun_tests::lab::{addr, Lab, Node};
use hometun_tests::relay::{Relay, RelayOptions};
use rand_core::{OsRng, RngCore};
use tokio::io::AsyncReadExt;
use tokio_tungstenite::tungstenite::Message;

const T: Duration = Duration::from_secs(20);
const HANDSHAKE_TIMEOUT_SECS: u64 = 2;
const MAX_MESSAGE: usize = 256 * 1024;

fn random(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    OsRng.fill_bytes(&mut v);
    v
}

/// Waits until the relay ends this WebSocket (close frame, EOF or reset); panics after `within`.
async fn assert_closed(what: &str, ws: &mut Ws, within: Duration) -> Duration {
    let start = Instant::now();
    let closed = tokio::time::timeout(within, async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => continue, // e.g. a refusal message before the close
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "{what}: the relay kept the connection open for {within:?}");
    start.elapsed()
}

/// The bystander still gets byte-exact data through the relay.
async fn still_serving(good: &Tunnel, round: u64) {
    let size = 200_000 + round;
    let r = good.http_get(SocketAddrV4::new(addr::HOST10, 80), &content::blob_path(size), T).await;
    let r = r.unwrap_or_else(|e| panic!("good client broken after round {round}: {e}"));
    assert_eq!(content::whole_blob(size, &r.body), Ok(()));
    assert!(good.end().is_none());
}

#[test]
fn each_bad_connection_is_closed_and_the_relay_keeps_serving_others() {
    let lab = Lab::start().expect("lab");
    let options = RelayOptions {
        handshake_timeout_secs: HANDSHAKE_TIMEOUT_SECS,
        max_message_bytes: MAX_MESSAGE,
        ..Default::default()
    };
    let relay = Relay::start(&lab, options).expect("relay");
    let good_invite = relay.invite("good", "24h", None).unwrap();
    let bad_invite = relay.invite("bad", "24h", None).unwrap();
    let target = relay.target().unwrap();
    let patience = Duration::from_secs(HANDSHAKE_TIMEOUT_SECS + 3);

    lab.run_in(Node::Wan, || async {
        let good = Device::new(&good_invite).enrol(&target, &good_invite).await.expect("good client");
        let bad = Device::new(&bad_invite);
        still_serving(&good, 0).await;

        // 1. Random bytes instead of a hello.
        let mut ws = client::connect_ws(&target, 1 << 20).await.unwrap();
        ws.send(Message::Binary(random(1000).into())).await.unwrap();
        assert_closed("random bytes", &mut ws, patience).await;
        still_serving(&good, 1).await;

        // 2. A hello cut in half.
        let mut ws = client::connect_ws(&target, 1 << 20).await.unwrap();
        let (_, hello) = Initiator::start(
            &bad.key,
            &bad.relay_key,
            Some(&bad_invite),
            &Params::default(),
            client::now(),
            &mut OsRng,
        )
        .unwrap();
        ws.send(Message::Binary(hello[..hello.len() / 2].to_vec().into())).await.unwrap();
        assert_closed("truncated hello", &mut ws, patience).await;
        still_serving(&good, 2).await;

        // 3. A message larger than the relay's limit.
        let mut ws = client::connect_ws(&target, 1 << 20).await.unwrap();
        let _ = ws.send(Message::Binary(random(MAX_MESSAGE + 1).into())).await;
        assert_closed("oversized message", &mut ws, patience).await;
        still_serving(&good, 3).await;

        // 4. A text frame.
        let mut ws = client::connect_ws(&target, 1 << 20).await.unwrap();
        let _ = ws.send(Message::Text("hello?".into())).await;
        assert_closed("text frame", &mut ws, patience).await;
        still_serving(&good, 4).await;

        // 5. After a real handshake: a truncated record, then (new session) a forged record,
        //    then (new session) an oversized one.
        let (mut ws, mut session) = client::handshake(&target, &bad, Some(&bad_invite)).await.expect("bad enrols");
        // Confirm the keys (the relay registers the device on this first record) and take the config.
        while let Some(m) = session.poll_transmit(client::now()) {
            ws.send(Message::Binary(m.into())).await.unwrap();
        }
        let config = tokio::time::timeout(T, ws.next()).await.expect("config in time");
        assert!(matches!(config, Some(Ok(Message::Binary(_)))), "expected the pushed config, got {config:?}");
        session.send_packet(&random(100)).unwrap();
        let mut record = Vec::new();
        while let Some(m) = session.poll_transmit(client::now()) {
            record = m;
        }
        ws.send(Message::Binary(record[..record.len() - 5].to_vec().into())).await.unwrap();
        assert_closed("truncated record", &mut ws, patience).await;
        still_serving(&good, 5).await;

        let (mut ws, mut session) = client::handshake(&target, &bad, None).await.expect("bad connects");
        while let Some(m) = session.poll_transmit(client::now()) {
            ws.send(Message::Binary(m.into())).await.unwrap();
        }
        let mut forged = random(200);
        forged[0] = 4; // a transport record header with garbage after it
        ws.send(Message::Binary(forged.into())).await.unwrap();
        assert_closed("forged record", &mut ws, patience).await;
        still_serving(&good, 6).await;

        let (mut ws, _session) = client::handshake(&target, &bad, None).await.expect("bad connects again");
        let mut huge = random(MAX_MESSAGE + 1000);
        huge[0] = 4;
        let _ = ws.send(Message::Binary(huge.into())).await;
        assert_closed("oversized record", &mut ws, patience).await;
        still_serving(&good, 7).await;

        // 6. Stalled handshakes: WebSocket open but silent; TCP open but no TLS at all.
        let mut ws = client::connect_ws(&target, 1 << 20).await.unwrap();
        let took = assert_closed("silent WebSocket", &mut ws, patience).await;
        assert!(
            took >= Duration::from_secs(HANDSHAKE_TIMEOUT_SECS) - Duration::from_millis(500),
            "closed early: {took:?}"
        );
        let mut tcp = tokio::net::TcpStream::connect(target.addr).await.unwrap();
        let mut buf = [0u8; 64];
        let stalled = tokio::time::timeout(patience, tcp.read(&mut buf)).await;
        assert!(matches!(stalled, Ok(Ok(0)) | Ok(Err(_))), "silent TCP connection not closed: {stalled:?}");
        still_serving(&good, 8).await;

        // Many of them at once are each closed, and the good client does not notice.
        let mut stalls = Vec::new();
        for _ in 0..20 {
            stalls.push(client::connect_ws(&target, 1 << 20).await.unwrap());
        }
        still_serving(&good, 9).await;
        for (i, ws) in stalls.iter_mut().enumerate() {
            assert_closed(&format!("silent WebSocket #{i}"), ws, patience).await;
        }
        still_serving(&good, 10).await;

        // The misbehaving device itself is not banned: a correct session works.
        let fine = bad.connect(&target).await.expect("bad device behaving now");
        fine.ping(addr::HOST10, 1, T).await.expect("ping");
    });
    assert!(relay.is_running(), "relay survived");
}
