//! A [`Client`] and an in-process rustls server with a self-signed certificate (made by
//! rcgen), joined by an in-memory byte pipe that can split, cut and alter what the server sends.

#![allow(dead_code)] // each test binary uses part of the harness

use std::io::{ErrorKind, Read, Write};
use std::net::Ipv4Addr;
use std::sync::Arc;

use hometun_tls::{Client, TlsError};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, ServerConnection, SupportedProtocolVersion};

/// The LAN address the client thinks it talks to.
pub(crate) const NAS: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);

/// A self-signed certificate and its PKCS#8 key.
pub(crate) struct Identity {
    pub(crate) cert: CertificateDer<'static>,
    pub(crate) key: Vec<u8>,
}

impl Identity {
    /// A fresh self-signed certificate as a NAS would make for itself.
    pub(crate) fn self_signed(algorithm: &'static rcgen::SignatureAlgorithm) -> Self {
        let key = rcgen::KeyPair::generate_for(algorithm).expect("key generation");
        let mut params = rcgen::CertificateParams::new(vec!["nas.home".to_string()]).expect("params");
        params.subject_alt_names.push(rcgen::SanType::IpAddress(NAS.into()));
        let cert = params.self_signed(&key).expect("self-signing");
        Self { cert: cert.der().clone(), key: key.serialize_der() }
    }
}

/// Serves `shown`'s certificate but signs the handshake with `signer`'s key (the same key when
/// both are one identity).
#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server speaking `versions` that shows `shown`'s certificate and signs with `signer`'s key.
pub(crate) fn server(
    versions: &[&'static SupportedProtocolVersion],
    shown: &Identity,
    signer: &Identity,
) -> ServerConnection {
    let provider = provider();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(signer.key.clone()));
    let signing_key = provider.key_provider.load_private_key(key).expect("the key loads");
    let certified = CertifiedKey::new(vec![shown.cert.clone()], signing_key);
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("versions")
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Fixed(Arc::new(certified))));
    let mut server = ServerConnection::new(Arc::new(config)).expect("server connection");
    server.set_buffer_limit(None);
    server
}

/// A client and a server joined in memory; `split` gives the sizes of the chunks the client
/// receives (cycled), to show that records may arrive in any split.
pub(crate) struct Pair {
    pub(crate) client: Client,
    pub(crate) server: ServerConnection,
    /// Plaintext the client took so far.
    pub(crate) client_got: Vec<u8>,
    /// Plaintext the server read so far.
    pub(crate) server_got: Vec<u8>,
    /// The server's error, if it failed (for example on the client's alert).
    pub(crate) server_error: Option<rustls::Error>,
    split: Vec<usize>,
    next_split: usize,
}

impl Pair {
    pub(crate) fn new(server: ServerConnection) -> Self {
        Self::with_split(server, &[17, 1, 4096, 333, 5, 16_389, 70_000])
    }

    pub(crate) fn with_split(server: ServerConnection, split: &[usize]) -> Self {
        Self {
            client: Client::new(NAS).expect("client"),
            server,
            client_got: Vec::new(),
            server_got: Vec::new(),
            server_error: None,
            split: split.to_vec(),
            next_split: 0,
        }
    }

    /// Moves bytes both ways until neither side has anything to send; stops at the client's
    /// first error.
    pub(crate) fn run(&mut self) -> Result<(), TlsError> {
        self.run_altered(|_| {})
    }

    /// As [`run`](Self::run), passing every flight from the server through `alter` first.
    pub(crate) fn run_altered(&mut self, mut alter: impl FnMut(&mut Vec<u8>)) -> Result<(), TlsError> {
        loop {
            let to_server = self.client.take_outgoing();
            self.server_receive(&to_server);
            let mut to_client = self.server_outgoing();
            if to_server.is_empty() && to_client.is_empty() {
                return Ok(());
            }
            alter(&mut to_client);
            self.client_receive(&to_client)?;
        }
    }

    /// Hands `bytes` to the client in the pair's chunk sizes, taking the plaintext after each.
    pub(crate) fn client_receive(&mut self, mut bytes: &[u8]) -> Result<(), TlsError> {
        while !bytes.is_empty() {
            let size = self.split[self.next_split % self.split.len()].min(bytes.len());
            self.next_split += 1;
            let (chunk, rest) = bytes.split_at(size);
            bytes = rest;
            self.client.receive(chunk)?;
            self.client_got.extend(self.client.take_plaintext());
        }
        Ok(())
    }

    /// Everything the server has to send now.
    pub(crate) fn server_outgoing(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while self.server.wants_write() {
            self.server.write_tls(&mut out).expect("writing to a Vec");
        }
        out
    }

    /// Hands `bytes` to the server and reads what it decrypted.
    pub(crate) fn server_receive(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() && self.server_error.is_none() {
            match self.server.read_tls(&mut bytes) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) => panic!("server read_tls: {e}"),
            }
            if let Err(e) = self.server.process_new_packets() {
                self.server_error = Some(e);
                return;
            }
            let mut buf = [0; 16_384];
            loop {
                match self.server.reader().read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => self.server_got.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("server read: {e}"),
                }
            }
        }
    }

    /// Queues `bytes` on the server's side.
    pub(crate) fn server_send(&mut self, bytes: &[u8]) {
        self.server.writer().write_all(bytes).expect("server write");
    }
}

/// `len` bytes without a short period, so a lost, doubled or reordered chunk shows.
pub(crate) fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32).map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 24) as u8).collect()
}
