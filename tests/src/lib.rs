//! hometun's end-to-end test kit.
//!
//! - [`apps`]: real home web apps (Jupyter, Syncthing, nginx) on the LAN hosts, stopped on drop.
//! - [`acme`]: checking the relay's certificates as a browser does (trust root and name).
//! - [`lab`]: a home network in network namespaces (internet side, home router with a port
//!   forward, the home server that runs the relay, two LAN hosts), torn down on drop.
//! - [`labhost`]: the services the LAN hosts run (HTTP with known content, TCP echo, a plain
//!   listener on :22, a DNS responder).
//! - [`content`]: the deterministic bytes the HTTP server serves and the client checks.
//! - [`capture`]: packet capture inside the lab, to prove what never arrived.
//! - [`relay`]: the real `hometun-relay` on the lab's home server, driven by its command line.
//! - [`client`]: a native client (shared session + netstack over tokio-tungstenite + rustls).
//! - [`packet`]: hand-built IP packets for spoofing tests.
//! - [`browser`]: headless Chromium in the lab (WebDriver, test hooks, the wasm e2e runner).
pub mod acme;
pub mod apps;
pub mod browser;
pub mod capture;
pub mod client;
pub mod content;
pub mod lab;
pub mod labhost;
pub use hometun_testkit::packet;
pub mod relay;
