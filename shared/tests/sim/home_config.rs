// The one configuration fixture: what a home relay pushes to a phone. Included by the unit
// tests of `control.rs` and by `sim/mod.rs`, so the two cannot drift; the includer brings
// `ClientConfig`, `Ipv4Addr` and `Duration` into scope. The keepalive differs from
// `Params::default()` on purpose, so tests can tell the pushed interval from the default.

/// The configuration a home relay pushes: 10.8.0.6/24, LAN 192.168.0.0/24, DNS on the
/// router, MTU 1420, keepalive 25 s.
pub(crate) fn home_config() -> ClientConfig {
    ClientConfig {
        address: "10.8.0.6/24".parse().unwrap(),
        relay_address: Ipv4Addr::new(10, 8, 0, 1),
        routes: vec!["192.168.0.0/24".parse().unwrap()],
        dns: vec![Ipv4Addr::new(192, 168, 0, 1)],
        mtu: 1420,
            max_packet: 1420,
        keepalive: Duration::from_secs(25),
        allow: Vec::new(),
        features: Default::default(),
    }
}
