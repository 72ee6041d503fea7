//! The SSH client's errors: one enum, each variant saying what happened and what to do.
//! JavaScript sees them as `Error`s with `name = "HometunError"` (like the tunnel's) and a stable `code`.

/// Everything that can go wrong in an SSH session from the page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SshError {
    /// The server offered another host key than the one pinned for it: refused.
    #[error(
        "the host key of {target} has changed: it was {old}, now the server shows {new}. \
         Someone may be intercepting the connection, or the server was reinstalled. If you know \
         its key changed, forget the old key (\"Forget the old host key\" in the Terminal card, or \
         hometun.sshForgetHostKey('{target}')) and connect again"
    )]
    HostKeyChanged {
        /// `host:port`.
        target: String,
        /// The pinned key's SHA-256 fingerprint.
        old: String,
        /// The offered key's fingerprint.
        new: String,
    },
    /// A first-seen host key was not accepted (the user said no, or `trustNewHostKey` was not
    /// given and nobody could be asked).
    #[error("the host key {fingerprint} of {target} was not trusted; compare it with the server's (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) and accept it to connect")]
    HostKeyNotTrusted {
        /// `host:port`.
        target: String,
        /// The offered key's fingerprint.
        fingerprint: String,
    },
    /// The host key pins could not be stored (the browser's storage is full or disabled):
    /// a first-seen key is refused, as it could not be checked next time.
    #[error("the host keys pinned in this browser could not be saved ({reason}), so nothing changed for {target}; free or enable this site's storage and try again")]
    PinsNotSaved {
        /// `host:port`.
        target: String,
        /// What the storage said.
        reason: String,
    },
    /// Every login method tried was refused.
    #[error("{target} refused the login of {user} (the server accepts: {methods}); check the user name and password, or add this device's public key to ~{user}/.ssh/authorized_keys")]
    AuthFailed {
        /// The user name.
        user: String,
        /// `host:port`.
        target: String,
        /// The methods the server still offers, comma-separated.
        methods: String,
    },
    /// The server refused the terminal or the shell.
    #[error("the server refused {0}")]
    Refused(String),
    /// The device's SSH key could not be made, stored or read.
    #[error("device SSH key: {0}")]
    Key(String),
    /// The SSH protocol failed (no common algorithm, a broken packet, the connection ended
    /// during the handshake).
    #[error("SSH failed: {0}")]
    Protocol(String),
    /// An argument from JavaScript was not usable.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The server did not finish the login in time: it said nothing more, or is no SSH server.
    #[error("{target} did not finish the SSH login within {seconds} s; check that an SSH server answers on that port")]
    Timeout {
        /// `host:port`.
        target: String,
        /// The time limit (not counting questions waiting for the person's answer).
        seconds: u32,
    },
    /// The server took nothing in while as many writes or bytes as may wait for it waited
    /// (`writes::MAX_PENDING_WRITES`, `writes::MAX_PENDING_BYTES`): this write was refused and
    /// is not sent.
    #[error("the server takes nothing in: what was typed is not sent")]
    NotReading,
}

impl SshError {
    /// A stable kebab-case code for scripts.
    pub fn code(&self) -> &'static str {
        match self {
            Self::HostKeyChanged { .. } => "host-key-changed",
            Self::HostKeyNotTrusted { .. } => "host-key-not-trusted",
            Self::PinsNotSaved { .. } => "pins-not-saved",
            Self::AuthFailed { .. } => "auth-failed",
            Self::Refused(_) => "refused",
            Self::Key(_) => "key",
            Self::Protocol(_) => "ssh-failed",
            Self::InvalidArgument(_) => "invalid-argument",
            Self::Timeout { .. } => "timeout",
            Self::NotReading => "not-reading",
        }
    }
}

impl From<russh::Error> for SshError {
    fn from(e: russh::Error) -> Self {
        Self::Protocol(e.to_string())
    }
}
