//! `hometun-relay`: the home end of a browser-reachable VPN. It serves the page and the tunnel
//! WebSocket on one TLS port and routes clients' packets through a tun device into the LAN.
//!
//! The binary (`main.rs`) only parses the command line and calls [`cmd`]. The parts:
//!
//! - [`daemon`]: the running relay — admission, the per-client data path, live sessions, limits.
//! - [`forwarding`]: what may leave for the LAN — ACLs, the per-client filter, the tun device, NAT.
//! - [`web`]: the one TLS port (page, `/tunnel` WebSocket, `/healthz`, `/relay.json`).
//! - [`acme`]: the certificate — ACME (TLS-ALPN-01) for the domain and app names, or self-signed.
//! - [`discovery`]: the home's devices (neighbours, mDNS, reverse names), per-device lists, Wake-on-LAN.
//! - [`admin`]: the admin socket through which commands talk to the running relay.
//! - [`state`]: persistent clients, invites and leases, and the actions on them.
//! - [`net`]: IPv4 header views and LAN detection; [`config`], [`cli`], [`cmd`], [`qr`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod acme;
pub mod admin;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod daemon;
pub mod discovery;
pub mod forwarding;
pub mod net;
pub mod qr;
pub mod state;
pub mod web;
