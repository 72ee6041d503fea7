//! A hostile SSH server on the LAN, played by russh's server in the test over an in-memory
//! stream.
//! - Once the shell is up it opens channels toward the page (a session, X11, agent and
//!   forwarded-TCP ones, as many as it likes). The page asked for none of them, so each is
//!   refused, and none is kept for the rest of the session.
//! - It takes nothing in (its window stays shut): what the page writes waits, up to a bound,
//!   and past it a write is refused and nothing more is held.
#![cfg(not(target_arch = "wasm32"))]

use std::sync::Arc;

use hometun_ssh::client::{open, HostKeyPolicy, Login, Shell, Terminal};
use hometun_ssh::known_hosts::PinStore;
use hometun_ssh::writes::{ShellWriter, MAX_PENDING_BYTES, MAX_PENDING_WRITES};
use hometun_ssh::SshError;
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

/// The server: takes any password and gives the shell; with `outcomes`, it then opens channels
/// toward the client and reports what became of each. Its window toward the page is whatever
/// [`shell_from`] gives it.
struct Hostile {
    outcomes: Option<mpsc::UnboundedSender<(&'static str, bool)>>,
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
        let Some(outcomes) = self.outcomes.clone() else { return Ok(()) };
        let handle = session.handle();
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

/// Logs in to `handler` (russh's server with `config`'s window) and opens the shell; the server
/// runs until `running` is aborted.
async fn shell_from<H: server::Handler + Send + 'static>(
    window_size: u32,
    handler: H,
) -> (Shell, tokio::task::JoinHandle<Result<(), H::Error>>)
where
    H::Error: From<russh::Error> + Send,
{
    let (client_end, server_end) = tokio::io::duplex(1 << 16);
    let host_key = PrivateKey::random(&mut russh::keys::key::safe_rng(), Algorithm::Ed25519).unwrap();
    let config = Arc::new(server::Config { keys: vec![host_key], window_size, ..server::Config::default() });
    let running = tokio::spawn(async move {
        let session = server::run_stream(config, server_end, handler).await?;
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
    (shell, running)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_a_hostile_server_opens_toward_the_page_are_refused() {
    let (outcomes, mut reported) = mpsc::unbounded_channel();
    let (shell, running) =
        shell_from(server::Config::default().window_size, Hostile { outcomes: Some(outcomes) }).await;

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

/// A server that gives the shell and nothing more.
const DEAF: Hostile = Hostile { outcomes: None };

/// Starts `write` and leaves it waiting for the server.
fn waiting(writer: &Arc<ShellWriter>, bytes: Vec<u8>) -> tokio::task::JoinHandle<Result<(), SshError>> {
    tokio::spawn(writer.write(bytes).expect("the write is taken"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_to_a_server_that_takes_nothing_in_are_bounded() {
    let (shell, running) = shell_from(0, DEAF).await;
    let writer = ShellWriter::new(shell.writer);

    // Keys typed into the hung terminal: each waits, none is sent.
    let keys: Vec<_> = (0..MAX_PENDING_WRITES).map(|_| waiting(&writer, b"x".to_vec())).collect();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(keys.iter().all(|key| !key.is_finished()), "a write went through a shut window");
    assert_eq!(writer.pending(), (MAX_PENDING_WRITES, MAX_PENDING_WRITES));

    // One more is refused, and nothing more is held.
    let refused = writer.write(b"y".to_vec()).err().expect("the write past the bound is refused");
    assert_eq!(refused, SshError::NotReading);
    assert_eq!(refused.code(), "not-reading");
    assert_eq!(writer.pending(), (MAX_PENDING_WRITES, MAX_PENDING_WRITES));

    // The waiting writes given up (the page closed the terminal) give their share back.
    for key in keys {
        key.abort();
        assert!(key.await.unwrap_err().is_cancelled());
    }
    assert_eq!(writer.pending(), (0, 0));

    // A large paste takes the byte bound: the next key is refused, also a byte-sized one.
    let paste = waiting(&writer, vec![b'p'; MAX_PENDING_BYTES - 10]);
    let fits = waiting(&writer, vec![b'q'; 10]);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(writer.pending(), (2, MAX_PENDING_BYTES));
    assert!(matches!(writer.write(b"z".to_vec()), Err(SshError::NotReading)));
    paste.abort();
    fits.abort();
    let _ = (paste.await, fits.await);
    assert_eq!(writer.pending(), (0, 0));

    running.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_a_server_takes_in_leave_nothing_held() {
    let (shell, running) = shell_from(server::Config::default().window_size, DEAF).await;
    let writer = ShellWriter::new(shell.writer);
    for _ in 0..MAX_PENDING_WRITES + 10 {
        writer.write(b"ls -l\n".to_vec()).expect("taken").await.expect("sent");
    }
    assert_eq!(writer.pending(), (0, 0));
    running.abort();
}
