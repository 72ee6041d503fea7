//! A hostile SSH server on the LAN, played by russh's server in the test over an in-memory
//! stream: once the shell is up it opens channels toward the page (a session, X11, agent and
//! forwarded-TCP ones, as many as it likes). The page asked for none of them, so each is
//! refused, and none is kept for the rest of the session.
#![cfg(not(target_arch = "wasm32"))]

use std::sync::Arc;

use hometun_ssh::client::{open, HostKeyPolicy, Login, Terminal};
use hometun_ssh::known_hosts::PinStore;
use russh::keys::{Algorithm, PrivateKey};
use russh::server::{self, Auth, Msg, Session};
use russh::{Channel, ChannelId};
use tokio::sync::mpsc;
use zeroize::Zeroizing;

/// Pins kept in memory.
struct Memory(std::sync::Mutex<Option<String>>);

impl PinStore for Memory {
    fn load(&self) -> Option<String> {
        self.0.lock().unwrap().clone()
    }
    fn save(&self, pins: &str) -> Result<(), String> {
        *self.0.lock().unwrap() = Some(pins.to_owned());
        Ok(())
    }
}

/// The server: takes any password, gives the shell, then opens channels toward the client and
/// reports what became of each.
struct Hostile {
    outcomes: mpsc::UnboundedSender<(&'static str, bool)>,
}

impl server::Handler for Hostile {
    type Error = russh::Error;

    async fn auth_password(&mut self, _user: &str, _password: &str) -> Result<Auth, Self::Error> {
        Ok(Auth::Accept)
    }

    async fn channel_open_session(
        &mut self,
        _channel: Channel<Msg>,
        reply: server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        Ok(())
    }

    async fn shell_request(&mut self, _channel: ChannelId, session: &mut Session) -> Result<(), Self::Error> {
        let handle = session.handle();
        let outcomes = self.outcomes.clone();
        tokio::spawn(async move {
            for _ in 0..20 {
                let opened = handle.channel_open_session().await.is_ok();
                let _ = outcomes.send(("session", opened));
                let opened = handle.channel_open_x11("192.168.0.22", 6000).await.is_ok();
                let _ = outcomes.send(("x11", opened));
                let opened = handle.channel_open_agent().await.is_ok();
                let _ = outcomes.send(("agent", opened));
                let opened =
                    handle.channel_open_forwarded_tcpip("127.0.0.1", 8080, "192.168.0.22", 40000).await.is_ok();
                let _ = outcomes.send(("forwarded-tcpip", opened));
            }
        });
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_a_hostile_server_opens_toward_the_page_are_refused() {
    let (client_end, server_end) = tokio::io::duplex(1 << 16);
    let host_key = PrivateKey::random(&mut russh::keys::key::safe_rng(), Algorithm::Ed25519).unwrap();
    let config = Arc::new(server::Config { keys: vec![host_key], ..server::Config::default() });
    let (outcomes, mut reported) = mpsc::unbounded_channel();
    let running = tokio::spawn(async move {
        let session = server::run_stream(config, server_end, Hostile { outcomes }).await?;
        session.await
    });

    let policy = HostKeyPolicy {
        target: "192.168.0.22:22".into(),
        store: Box::new(Memory(std::sync::Mutex::new(None))),
        trust_new: true,
        ask: None,
    };
    let login = Login { user: "me".into(), password: Some(Zeroizing::new("pw".into())), key: None, prompts: None };
    let terminal = Terminal { term: "xterm-256color".into(), cols: 80, rows: 24 };
    let shell = open(client_end, policy, login, &terminal).await.expect("the shell");

    let mut seen = 0;
    while seen < 80 {
        let (kind, opened) = tokio::time::timeout(std::time::Duration::from_secs(10), reported.recv())
            .await
            .expect("the server's channels were answered in time")
            .expect("the server reported");
        assert!(!opened, "the page accepted a {kind} channel the server opened");
        seen += 1;
    }
    drop(shell);
    running.abort();
}
