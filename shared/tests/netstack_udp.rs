//! UDP through the client netstack.

mod netstack_world;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use hometun_shared::netstack::Error;
use hometun_shared::time::Duration;
use netstack_world::*;

#[test]
fn datagrams_to_the_echo_service_come_back_to_the_sender() {
    let mut world = World::new();
    let socket = world.client.udp_bind(0).unwrap();
    let port = world.client.udp_local_port(socket).unwrap();
    assert!(port >= 49152, "an ephemeral port: {port}");
    for i in 0..10u8 {
        world.client.udp_send_to(socket, &[i; 100], lan(ECHO_PORT)).unwrap();
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    world.run_until(Duration::from_secs(1), |w| {
        while let Some((n, from)) = w.client.udp_recv_from(socket, &mut buf).unwrap() {
            assert_eq!(from, lan(ECHO_PORT));
            got.push(buf[..n].to_vec());
        }
        got.len() == 10
    });
    assert_eq!(got, (0..10u8).map(|i| vec![i; 100]).collect::<Vec<_>>());
}

#[test]
fn a_datagram_larger_than_one_packet_is_refused() {
    let mut world = World::new();
    let socket = world.client.udp_bind(0).unwrap();
    let max = world.client.udp_max_payload();
    assert_eq!(max, MTU - 28);
    assert_eq!(
        world.client.udp_send_to(socket, &vec![0; max + 1], lan(ECHO_PORT)),
        Err(Error::PayloadTooLarge { len: max + 1, max })
    );
    world.client.udp_send_to(socket, &vec![7; max], lan(ECHO_PORT)).unwrap();
    let mut small = [0u8; 16];
    let mut buf = vec![0u8; max];
    let mut received = None;
    world.run_until(Duration::from_secs(1), |w| match w.client.udp_recv_from(socket, &mut small) {
        Err(Error::BufferTooSmall { needed }) => {
            assert_eq!(needed, max);
            received = w.client.udp_recv_from(socket, &mut buf).unwrap();
            true
        }
        Ok(None) => false,
        other => panic!("unexpected {other:?}"),
    });
    assert_eq!(received.map(|(n, _)| n), Some(max), "the datagram stayed queued for a bigger buffer");
}

#[test]
fn a_bound_port_cannot_be_bound_twice_until_released() {
    let mut world = World::new();
    let first = world.client.udp_bind(5353).unwrap();
    assert_eq!(world.client.udp_bind(5353), Err(Error::PortInUse(5353)));
    world.client.udp_release(first).unwrap();
    assert_eq!(world.client.udp_local_port(first), Err(Error::UnknownHandle("UDP")));
    world.client.udp_bind(5353).expect("free again");
}
