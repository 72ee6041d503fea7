//! The admin socket: a Unix socket (mode 0600, root peers only) through which the commands
//! talk to the running relay. One JSON request line, one JSON response line.

pub mod proto;

use crate::daemon::Relay;
use crate::state::actions;
use anyhow::Context;
use hometun_shared::keys::PublicKey;
use proto::{Request, Response, SessionInfo, StatusInfo};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

/// Longest request line accepted.
const MAX_REQUEST: usize = 64 * 1024;

/// Binds the admin socket (replacing a stale one) with mode 0600. Anything at the path that
/// is not a socket (a file, a directory, a symlink) is refused and left as it is: the path
/// comes from relay.toml, and a mistyped one must not delete the relay key or a client list.
pub fn bind(path: &Path) -> anyhow::Result<UnixListener> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(found) if found.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                anyhow::bail!("another relay is already running (admin socket {} answers)", path.display());
            }
            std::fs::remove_file(path).with_context(|| format!("removing stale {}", path.display()))?;
        }
        Ok(_) => anyhow::bail!(
            "{} is not a socket, so the admin socket cannot go there (it was left as it is); \
             set control_socket in relay.toml to a path of its own",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("looking at control_socket {}", path.display())),
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let listener = UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Serves control requests until shutdown.
pub async fn serve(listener: UnixListener, relay: Arc<Relay>) {
    let mut shutdown = relay.shutdown.clone();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!("admin socket accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let root = stream.peer_cred().map(|c| c.uid() == 0).unwrap_or(false);
        let relay = relay.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(10), handle(stream, relay, root)).await;
        });
    }
}

async fn handle(stream: UnixStream, relay: Arc<Relay>, root: bool) -> anyhow::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read).take(MAX_REQUEST as u64);
    reader.read_line(&mut line).await?;
    let response = if !root {
        Response::Error { message: "only root may use the admin socket".into() }
    } else {
        match serde_json::from_str::<Request>(&line) {
            Ok(request) => {
                let relay = relay.clone();
                tokio::task::spawn_blocking(move || answer(&relay, request))
                    .await
                    .unwrap_or_else(|e| Response::Error { message: format!("internal error: {e}") })
            }
            Err(e) => Response::Error { message: format!("bad request: {e}") },
        }
    };
    let mut out = serde_json::to_vec(&response)?;
    out.push(b'\n');
    write.write_all(&out).await?;
    Ok(())
}

/// Answers one request (blocking: it may write state files).
pub fn answer(relay: &Relay, request: Request) -> Response {
    match request {
        Request::Status => Response::Status(status(relay)),
        Request::Clients => {
            let store = relay.store();
            let online = |key: &PublicKey| relay.sessions.by_key(key).map(|s| s.remote.to_string());
            let mut clients = actions::client_infos(&store, Some(&online));
            for (client, info) in store.registry.clients.iter().zip(&mut clients) {
                if let Some(session) = relay.sessions.by_key(&client.key) {
                    info.bytes_in += session.bytes_in.load(Ordering::Relaxed);
                    info.bytes_out += session.bytes_out.load(Ordering::Relaxed);
                }
            }
            Response::Clients { clients }
        }
        Request::Revoke { name } => match relay.revoke(&name) {
            Ok(closed_session) => {
                tracing::info!(client = %name, "revoked");
                Response::Revoked { name, closed_session }
            }
            Err(e) => Response::Error { message: format!("{e:#}") },
        },
        Request::Hosts => Response::Hosts { hosts: crate::discovery::host_infos(&relay.discovery.hosts()) },
        Request::Invite { name, ttl_secs, allow, wake } => {
            let mut store = relay.store();
            match actions::create_invite(
                &mut store,
                &relay.config,
                relay.public,
                &name,
                ttl_secs,
                allow.as_deref(),
                wake,
            ) {
                Ok(info) => {
                    tracing::info!(name = %info.name, expires = info.expires, "invite created");
                    Response::Invite(info)
                }
                Err(e) => Response::Error { message: format!("{e:#}") },
            }
        }
    }
}

fn status(relay: &Relay) -> StatusInfo {
    let c = &relay.config;
    let relay_address = relay.store().pool.relay_address();
    let mut sessions: Vec<SessionInfo> = relay
        .sessions
        .all()
        .iter()
        .map(|h| SessionInfo {
            name: h.name.clone(),
            address: h.address,
            remote: h.remote.to_string(),
            since: h.since,
            bytes_in: h.bytes_in.load(Ordering::Relaxed),
            bytes_out: h.bytes_out.load(Ordering::Relaxed),
        })
        .collect();
    sessions.sort_by_key(|s| s.address);
    StatusInfo {
        listen: c.listen.to_string(),
        public_url: c.public_url.clone(),
        mode: c.mode.to_string(),
        tun: c.tun_name.clone(),
        relay_address,
        pool: c.pool.to_string(),
        lan: c.lan.to_string(),
        lan_interface: c.lan_interface.clone(),
        relay_fingerprint: relay.public.fingerprint(),
        started: relay.started,
        sessions,
        handshakes: relay.limits.handshakes(),
        dropped: relay.drops.snapshot(),
        certificate: crate::acme::info(),
    }
}

/// Refuses to talk to a process on the admin socket that runs neither as root nor as this
/// user: a socket someone else put at the path must not receive commands or feed answers.
fn trust_peer(stream: &UnixStream, path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let peer = stream.peer_cred().with_context(|| format!("reading the credentials of {}", path.display()))?.uid();
    let me = std::fs::metadata("/proc/self").map(|m| m.uid()).context("reading this process's user")?;
    anyhow::ensure!(
        peer == 0 || peer == me,
        "the process answering on {} runs as user {peer}, neither root nor this user: not talking to it",
        path.display()
    );
    Ok(())
}

/// Sends one request to the running relay. `Ok(None)` when no relay answers on `path`.
pub async fn request(path: &Path, request: &Request) -> anyhow::Result<Option<Response>> {
    let stream = match UnixStream::connect(path).await {
        Ok(stream) => stream,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            anyhow::bail!("the running relay's control socket {} is root's: run this with sudo", path.display())
        }
        Err(_) => return Ok(None),
    };
    trust_peer(&stream, path)?;
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    write.write_all(&line).await?;
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), BufReader::new(read).read_line(&mut answer))
        .await
        .context("the relay did not answer in time")??;
    let response = serde_json::from_str(&answer).context("the relay's answer is not understood")?;
    Ok(Some(response))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_control_socket_path_naming_an_ordinary_file_is_refused_and_the_file_kept() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("relay.key");
        std::fs::write(&key, "the relay's key\n").unwrap();

        let refused = bind(&key).expect_err("an ordinary file is no stale socket");

        let text = format!("{refused:#}");
        assert!(text.contains(&key.display().to_string()), "names the path: {text}");
        assert!(text.contains("not a socket"), "{text}");
        assert_eq!(std::fs::read_to_string(&key).unwrap(), "the relay's key\n", "the file is kept");
    }

    #[tokio::test]
    async fn a_stale_socket_is_replaced_and_a_live_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists(), "a socket nobody listens on");

        let listener = bind(&path).expect("a stale socket is replaced");

        let again = bind(&path).expect_err("the socket answers now");
        assert!(format!("{again:#}").contains("already running"), "{again:#}");
        drop(listener);
    }
}
