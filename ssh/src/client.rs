//! One SSH login with a terminal, over any byte stream: the handshake with the host key
//! checked against its pin ([`crate::known_hosts`]), the login (public key, password,
//! keyboard-interactive), then a PTY and a shell on one session channel.
//!
//! Runs on whatever drives the futures (the browser's event loop in the page); the stream is
//! the tunnel's TCP connection bridged to tokio's I/O traits ([`crate::bridge`] in the page).

use std::sync::Arc;

use russh::client::{self, Handle, KeyboardInteractiveAuthResponse, Msg};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{ChannelReadHalf, ChannelWriteHalf, MethodKind, MethodSet, Pty};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use zeroize::Zeroizing;

use crate::error::SshError;
use crate::known_hosts::{self, PinStore, Verdict};

/// At most this many keyboard-interactive rounds (a server that keeps asking is refused).
const MAX_PROMPT_ROUNDS: usize = 8;

/// A question for the user: trust this first-seen host key?
#[derive(Debug)]
pub struct HostKeyQuestion {
    /// `host:port`.
    pub target: String,
    /// The key's SHA-256 fingerprint.
    pub fingerprint: String,
    /// The answer: `true` trusts (and pins) the key.
    pub answer: oneshot::Sender<bool>,
}

/// A keyboard-interactive prompt the password does not answer (e.g. a one-time code).
#[derive(Debug)]
pub struct PromptQuestion {
    /// The server's prompt text.
    pub prompt: String,
    /// Whether the answer may be shown while typed.
    pub echo: bool,
    /// The answer; `None` gives up.
    pub answer: oneshot::Sender<Option<Zeroizing<String>>>,
}

/// How host keys are checked for one connection.
pub struct HostKeyPolicy {
    /// `host:port`, the pin's name.
    pub target: String,
    /// The pins.
    pub store: Box<dyn PinStore>,
    /// Trust (and pin) a first-seen key without asking.
    pub trust_new: bool,
    /// Whom to ask about a first-seen key otherwise (nobody: it is refused).
    pub ask: Option<mpsc::Sender<HostKeyQuestion>>,
}

/// Who logs in and with what.
pub struct Login {
    /// The user name.
    pub user: String,
    /// A password (also the answer to password-like keyboard-interactive prompts).
    pub password: Option<Zeroizing<String>>,
    /// The device key, tried first when given.
    pub key: Option<Arc<PrivateKey>>,
    /// Whom to ask about other keyboard-interactive prompts.
    pub prompts: Option<mpsc::Sender<PromptQuestion>>,
}

/// The terminal asked for.
#[derive(Debug, Clone)]
pub struct Terminal {
    /// `TERM`, e.g. `xterm-256color`.
    pub term: String,
    /// Columns.
    pub cols: u32,
    /// Rows.
    pub rows: u32,
}

/// A logged-in session with a shell on a PTY.
pub struct Shell {
    /// The connection (disconnect through it).
    pub handle: Handle<Client>,
    /// What the shell prints.
    pub reader: ChannelReadHalf,
    /// What goes to the shell: keys, window size.
    pub writer: ChannelWriteHalf<Msg>,
    /// The server's host key fingerprint.
    pub host_key: String,
}

/// The russh handler: checks the host key, nothing else.
pub struct Client {
    policy: HostKeyPolicy,
    host_key: Arc<std::sync::Mutex<String>>,
}

/// What the handler fails with: russh's errors, or a refused host key.
#[derive(Debug)]
pub enum HandlerError {
    /// From russh.
    Ssh(russh::Error),
    /// The host key was refused (changed, or not trusted).
    HostKey(SshError),
}

impl From<russh::Error> for HandlerError {
    fn from(e: russh::Error) -> Self {
        Self::Ssh(e)
    }
}

impl From<HandlerError> for SshError {
    fn from(e: HandlerError) -> Self {
        match e {
            HandlerError::Ssh(e) => e.into(),
            HandlerError::HostKey(e) => e,
        }
    }
}

impl Client {
    async fn decide(&mut self, key: &PublicKey) -> Result<bool, HandlerError> {
        let target = self.policy.target.clone();
        *self.host_key.lock().unwrap_or_else(|e| e.into_inner()) = known_hosts::fingerprint(key);
        match known_hosts::check(self.policy.store.as_ref(), &target, key) {
            Verdict::Known => Ok(true),
            Verdict::Changed { old, new } => Err(HandlerError::HostKey(SshError::HostKeyChanged { target, old, new })),
            Verdict::New { fingerprint } => {
                let trusted = self.policy.trust_new || self.ask(&fingerprint).await;
                if !trusted {
                    return Err(HandlerError::HostKey(SshError::HostKeyNotTrusted { target, fingerprint }));
                }
                // A key that cannot be pinned could not be checked next time: refused.
                known_hosts::pin(self.policy.store.as_ref(), &target, key).map_err(HandlerError::HostKey)?;
                Ok(true)
            }
        }
    }

    async fn ask(&self, fingerprint: &str) -> bool {
        let Some(ask) = &self.policy.ask else { return false };
        let (answer, reply) = oneshot::channel();
        let question =
            HostKeyQuestion { target: self.policy.target.clone(), fingerprint: fingerprint.to_owned(), answer };
        ask.send(question).await.is_ok() && reply.await.unwrap_or(false)
    }
}

impl client::Handler for Client {
    type Error = HandlerError;

    async fn check_server_key(&mut self, offered: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        let key = match offered {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            PublicKeyOrCertificate::Certificate(cert) => PublicKey::new(cert.public_key().clone(), ""),
        };
        self.decide(&key).await
    }

    // A channel the server opens toward the page (a session, X11, agent, forwarded or direct
    // TCP or socket) is refused: the page asked for none of them, and russh would otherwise
    // accept each and keep it for the whole session, as many as a hostile server sends.
    // Dropping the reply refuses.

    async fn server_channel_open_session(
        &mut self,
        _channel: russh::Channel<Msg>,
        _reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    async fn server_channel_open_x11(
        &mut self,
        _channel: russh::Channel<Msg>,
        _originator_address: &str,
        _originator_port: u32,
        _reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    async fn server_channel_open_agent_forward(
        &mut self,
        _channel: russh::Channel<Msg>,
        _reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        _channel: russh::Channel<Msg>,
        _connected_address: &str,
        _connected_port: u32,
        _originator_address: &str,
        _originator_port: u32,
        _reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    async fn server_channel_open_forwarded_streamlocal(
        &mut self,
        _channel: russh::Channel<Msg>,
        _socket_path: &str,
        _reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    async fn server_channel_open_direct_tcpip(
        &mut self,
        _channel: russh::Channel<Msg>,
        _host_to_connect: &str,
        _port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        _reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    async fn server_channel_open_direct_streamlocal(
        &mut self,
        _channel: russh::Channel<Msg>,
        _socket_path: &str,
        _reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Connects over `stream`, checks the host key, logs in and starts a shell on a PTY.
pub async fn open<S>(stream: S, policy: HostKeyPolicy, login: Login, terminal: &Terminal) -> Result<Shell, SshError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let target = policy.target.clone();
    let host_key = Arc::new(std::sync::Mutex::new(String::new()));
    let config = client::Config { nodelay: true, ..client::Config::default() };
    let handler = Client { policy, host_key: host_key.clone() };
    let mut handle = client::connect_stream(Arc::new(config), stream, handler).await?;
    authenticate(&mut handle, &target, login).await?;
    let channel = handle.channel_open_session().await?;
    channel
        .request_pty(false, &terminal.term, terminal.cols, terminal.rows, 0, 0, &[(Pty::IUTF8, 1)])
        .await
        .map_err(|e| SshError::Refused(format!("a terminal: {e}")))?;
    channel.request_shell(false).await.map_err(|e| SshError::Refused(format!("a shell: {e}")))?;
    let (reader, writer) = channel.split();
    let host_key = host_key.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok(Shell { handle, reader, writer, host_key })
}

/// Tries the device key, then the password, then keyboard-interactive, as the server allows.
async fn authenticate(handle: &mut Handle<Client>, target: &str, login: Login) -> Result<(), SshError> {
    let user = login.user.clone();
    let mut remaining: Option<MethodSet> = None;
    let allows = |remaining: &Option<MethodSet>, kind: MethodKind| remaining.as_ref().is_none_or(|m| m.contains(&kind));

    if let Some(key) = login.key.clone() {
        let result = handle.authenticate_publickey(user.clone(), PrivateKeyWithHashAlg::new(key, None)).await?;
        match result {
            client::AuthResult::Success => return Ok(()),
            client::AuthResult::Failure { remaining_methods, .. } => remaining = Some(remaining_methods),
        }
    }
    if let Some(password) = &login.password {
        if allows(&remaining, MethodKind::Password) {
            match handle.authenticate_password(user.clone(), password.as_str()).await? {
                client::AuthResult::Success => return Ok(()),
                client::AuthResult::Failure { remaining_methods, .. } => remaining = Some(remaining_methods),
            }
        }
    }
    if (login.password.is_some() || login.prompts.is_some()) && allows(&remaining, MethodKind::KeyboardInteractive) {
        if let Some(methods) = keyboard_interactive(handle, &login).await? {
            remaining = Some(methods);
        } else {
            return Ok(());
        }
    }
    if remaining.is_none() {
        match handle.authenticate_none(user.clone()).await? {
            client::AuthResult::Success => return Ok(()),
            client::AuthResult::Failure { remaining_methods, .. } => remaining = Some(remaining_methods),
        }
    }
    let methods = remaining.map(|m| m.iter().map(<&str>::from).collect::<Vec<_>>().join(", ")).unwrap_or_default();
    Err(SshError::AuthFailed { user, target: target.to_owned(), methods })
}

/// Keyboard-interactive: password-like prompts (no echo) get the password, others are asked.
/// `Ok(None)` = logged in; `Ok(Some(methods))` = refused, the server's remaining methods.
async fn keyboard_interactive(handle: &mut Handle<Client>, login: &Login) -> Result<Option<MethodSet>, SshError> {
    let mut reply = handle.authenticate_keyboard_interactive_start(login.user.clone(), None).await?;
    for _ in 0..MAX_PROMPT_ROUNDS {
        let prompts = match reply {
            KeyboardInteractiveAuthResponse::Success => return Ok(None),
            KeyboardInteractiveAuthResponse::Failure { remaining_methods, .. } => return Ok(Some(remaining_methods)),
            KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } => prompts,
        };
        let mut answers = Vec::with_capacity(prompts.len());
        for prompt in prompts {
            let answer = match (&login.password, prompt.echo) {
                (Some(password), false) => Some(password.clone()),
                _ => ask_prompt(login, prompt.prompt, prompt.echo).await,
            };
            let Some(answer) = answer else { return Ok(Some(MethodSet::empty())) };
            answers.push(answer.to_string());
        }
        reply = handle.authenticate_keyboard_interactive_respond(answers).await?;
    }
    Ok(Some(MethodSet::empty()))
}

async fn ask_prompt(login: &Login, prompt: String, echo: bool) -> Option<Zeroizing<String>> {
    let ask = login.prompts.as_ref()?;
    let (answer, reply) = oneshot::channel();
    ask.send(PromptQuestion { prompt, echo, answer }).await.ok()?;
    reply.await.ok().flatten()
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::sync::Mutex;
    use std::task::{Context, Poll, Waker};

    use russh::keys::{Algorithm, PrivateKey};

    use super::*;

    /// A pin store whose writes fail (storage full or disabled).
    struct Full;

    impl PinStore for Full {
        fn load(&self) -> Option<String> {
            None
        }
        fn save(&self, _pins: &str) -> Result<(), String> {
            Err("storage full".into())
        }
    }

    fn client(store: Box<dyn PinStore>) -> Client {
        let policy = HostKeyPolicy { target: "192.168.0.10:22".into(), store, trust_new: true, ask: None };
        Client { policy, host_key: Arc::new(Mutex::new(String::new())) }
    }

    /// Polls `decide` once: with `trust_new` and no one to ask, it never waits.
    fn decide(client: &mut Client, key: &PublicKey) -> Result<bool, HandlerError> {
        match pin!(client.decide(key)).as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(verdict) => verdict,
            Poll::Pending => panic!("decide waited with no one to ask"),
        }
    }

    #[test]
    fn a_first_seen_key_whose_pin_cannot_be_saved_is_refused() {
        let key =
            PrivateKey::random(&mut russh::keys::key::safe_rng(), Algorithm::Ed25519).unwrap().public_key().clone();
        let verdict = decide(&mut client(Box::new(Full)), &key);
        assert!(
            matches!(&verdict, Err(HandlerError::HostKey(SshError::PinsNotSaved { target, .. })) if target == "192.168.0.10:22"),
            "a key that could not be pinned was trusted: {verdict:?}"
        );
    }
}
