//! Bulk TCP through the client netstack: 16 MiB each way byte-exact, and 64 streams at once.

mod netstack_world;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use hometun_shared::netstack::{Error, TcpHandle, TcpState};
use hometun_shared::time::Duration;
use netstack_world::*;

const SIXTEEN_MIB: u64 = 16 * 1024 * 1024;

fn connect(world: &mut World, port: u16) -> TcpHandle {
    let handle = world.client.tcp_connect(lan(port)).expect("connect starts");
    let connected =
        world.run_until(Duration::from_secs(5), |w| w.client.tcp_state(handle) == Ok(TcpState::Established));
    assert!(connected, "connection to port {port} established, state {:?}", world.client.tcp_state(handle));
    handle
}

fn throughput(bytes: u64, ms: f64) -> String {
    format!("{:.0} MiB/s", bytes as f64 / (1024.0 * 1024.0) / (ms / 1000.0))
}

#[test]
fn a_16_mib_download_arrives_byte_exact() {
    let mut world = World::new();
    let stream = connect(&mut world, SOURCE_PORT);
    assert_eq!(world.client.tcp_send(stream, &SIXTEEN_MIB.to_be_bytes()), Ok(8));

    let started = wall_ms();
    world.client_ms = 0.0;
    let virtual_start = world.now;
    let mut received = 0u64;
    let mut mismatch = None;
    let mut buf = vec![0u8; 64 * 1024];
    let finished = world.run_until(Duration::from_secs(60), |w| loop {
        match w.client.tcp_recv(stream, &mut buf) {
            Ok(0) => return false,
            Ok(n) => {
                if mismatch.is_none() {
                    mismatch = first_mismatch(DOWNLOAD_STREAM, received, &buf[..n]);
                }
                received += n as u64;
            }
            Err(Error::EndOfStream) => return true,
            Err(e) => panic!("download failed: {e}"),
        }
    });
    let elapsed = wall_ms() - started;

    assert!(finished, "the download ended within a minute of virtual time ({received} bytes so far)");
    assert_eq!(received, SIXTEEN_MIB, "every byte arrived, none twice");
    assert_eq!(mismatch, None, "the bytes arrived intact and in order");
    assert_eq!(world.client.tcp_state(stream), Ok(TcpState::PeerClosed));
    report(&format!(
        "16 MiB download: {elapsed:.0} ms wall ({}), of which {:.0} ms in the client stack's packet path ({}), {} ms virtual",
        throughput(SIXTEEN_MIB, elapsed),
        world.client_ms,
        throughput(SIXTEEN_MIB, world.client_ms),
        world.now.saturating_duration_since(virtual_start).as_millis()
    ));
}

#[test]
fn reads_appended_to_a_buffer_take_the_stream_whole_across_the_ring_s_wrap() {
    const SIZE: u64 = 3 * 1024 * 1024;
    // Not a divisor of the receive buffer, so reads keep ending and starting mid-ring.
    const MAX: usize = 100_003;
    let mut world = World::new();
    let stream = connect(&mut world, SOURCE_PORT);
    assert_eq!(world.client.tcp_send(stream, &SIZE.to_be_bytes()), Ok(8));

    let mut all = b"kept".to_vec();
    // Let the receive buffer fill, then take most of it: what waits now sits at the ring's end
    // and what comes next wraps to its start.
    assert!(world.run_until(Duration::from_secs(5), |w| w.client.tcp_recv_queue(stream).unwrap() > 900_000));
    assert_eq!(world.client.tcp_recv_append(stream, &mut all, 700_000), Ok(700_000));
    let left = world.client.tcp_recv_queue(stream).unwrap();
    assert!(world.run_until(Duration::from_secs(5), |w| w.client.tcp_recv_queue(stream).unwrap() > left + MAX));
    let finished = world.run_until(Duration::from_secs(60), |w| loop {
        let before = all.len();
        let waiting = w.client.tcp_recv_queue(stream).unwrap();
        match w.client.tcp_recv_append(stream, &mut all, MAX) {
            Ok(0) => return false,
            Ok(n) => {
                assert_eq!(all.len() - before, n, "the answer counts what was appended");
                assert_eq!(n, waiting.min(MAX), "a read takes all it may, both pieces when the ring wraps");
            }
            Err(Error::EndOfStream) => return true,
            Err(e) => panic!("download failed: {e}"),
        }
    });

    assert!(finished, "the download ended ({} bytes so far)", all.len() - 4);
    assert_eq!(&all[..4], b"kept", "what the buffer held stays in front");
    assert_eq!(all.len() as u64 - 4, SIZE, "every byte arrived, none twice");
    assert_eq!(first_mismatch(DOWNLOAD_STREAM, 0, &all[4..]), None, "intact and in order");
}

#[test]
fn a_16_mib_upload_arrives_byte_exact() {
    let mut world = World::new();
    let stream = connect(&mut world, SINK_PORT);

    let started = wall_ms();
    world.client_ms = 0.0;
    let virtual_start = world.now;
    let mut sent = 0u64;
    let finished = world.run_until(Duration::from_secs(60), |w| w.upload_to_the_sink(stream, &mut sent, SIXTEEN_MIB));
    let elapsed = wall_ms() - started;

    assert!(finished, "the upload finished within a minute of virtual time ({sent} bytes queued)");
    assert_eq!(world.lan.sink_reports, vec![SinkReport { bytes: SIXTEEN_MIB, first_mismatch: None }]);
    let closed = world.run_until(Duration::from_secs(5), |w| w.client.tcp_state(stream) == Ok(TcpState::Closed));
    assert!(closed, "both sides closed cleanly, state {:?}", world.client.tcp_state(stream));
    report(&format!(
        "16 MiB upload: {elapsed:.0} ms wall ({}), of which {:.0} ms in the client stack's packet path ({}), {} ms virtual",
        throughput(SIXTEEN_MIB, elapsed),
        world.client_ms,
        throughput(SIXTEEN_MIB, world.client_ms),
        world.now.saturating_duration_since(virtual_start).as_millis()
    ));
}

#[test]
fn sixty_four_concurrent_streams_each_get_their_own_bytes_back() {
    const STREAMS: u32 = 64;
    const PER_STREAM: u64 = 64 * 1024;
    let mut world = World::new();
    let handles: Vec<TcpHandle> =
        (0..STREAMS).map(|_| world.client.tcp_connect(lan(ECHO_PORT)).expect("connect starts")).collect();
    let mut ports: Vec<u16> = handles.iter().map(|&h| world.client.tcp_local(h).expect("open handle").port()).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), STREAMS as usize, "every stream got its own local port");

    let started = wall_ms();
    let mut sent = vec![0u64; STREAMS as usize];
    let mut received = vec![0u64; STREAMS as usize];
    let mut mismatches = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let finished = world.run_until(Duration::from_secs(60), |w| {
        for (i, &h) in handles.iter().enumerate() {
            let stream = 100 + i as u32;
            if sent[i] < PER_STREAM {
                let n = (PER_STREAM - sent[i]).min(buf.len() as u64) as usize;
                fill_pattern(stream, sent[i], &mut buf[..n]);
                sent[i] += w.client.tcp_send(h, &buf[..n]).expect("send") as u64;
                if sent[i] == PER_STREAM {
                    w.client.tcp_close(h).expect("close");
                }
            }
            loop {
                match w.client.tcp_recv(h, &mut buf) {
                    Ok(0) | Err(Error::EndOfStream) => break,
                    Ok(n) => {
                        if let Some(at) = first_mismatch(stream, received[i], &buf[..n]) {
                            mismatches.push((i, at));
                        }
                        received[i] += n as u64;
                    }
                    Err(e) => panic!("stream {i} failed: {e}"),
                }
            }
        }
        handles.iter().all(|&h| w.client.tcp_state(h) == Ok(TcpState::Closed))
    });
    let elapsed = wall_ms() - started;

    assert!(finished, "all streams finished; received {received:?}");
    assert_eq!(mismatches, vec![], "no stream saw another's bytes or a corrupted byte");
    assert!(received.iter().all(|&r| r == PER_STREAM), "each stream got all its bytes back: {received:?}");
    assert_eq!(world.lan.echo_connections, STREAMS as usize);
    for h in handles {
        world.client.tcp_release(h).expect("release a finished stream");
    }
    world.run_for(Duration::from_millis(10));
    assert_eq!(world.client.tcp_connection_count(), 0, "released connections free their resources");
    report(&format!("64 streams x 64 KiB echo: {elapsed:.0} ms wall"));
}

#[test]
fn a_tiny_packet_queue_slows_nothing_but_the_batch_size() {
    const ONE_MIB: u64 = 1024 * 1024;
    let mut world = World::with_config(|c| c.queue_packets = 4);
    let stream = connect(&mut world, SINK_PORT);
    let mut sent = 0u64;
    let finished = world.run_until(Duration::from_secs(60), |w| w.upload_to_the_sink(stream, &mut sent, ONE_MIB));
    assert!(finished, "the transfer completes with at most 4 packets queued per poll");
    assert_eq!(world.lan.sink_reports, vec![SinkReport { bytes: ONE_MIB, first_mismatch: None }]);
    assert_eq!(world.client.stats().dropped_queue_full, 0, "the ACKs never overflowed the queue");
}
