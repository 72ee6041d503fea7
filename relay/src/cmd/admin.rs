//! `invite`, `clients`, `clients revoke`, `status`, `hosts` (running relay only): through the admin socket when a relay
//! runs, directly on the state files when none does.

use crate::admin;
use crate::admin::proto::{ClientInfo, Request, Response};
use crate::config::Config;
use crate::state::actions;
use crate::state::lock::DirLock;
use crate::state::store::{relay_key, Store};
use anyhow::{anyhow, bail};
use std::path::Path;

/// The state directory locked for an edit without a running relay; refused while one runs
/// (its admin socket did not answer, so editing behind it would be lost).
fn offline(dir: &Path, config: &Config) -> anyhow::Result<DirLock> {
    DirLock::try_acquire(dir).map_err(|e| {
        anyhow!(
            "{e}, but its admin socket {} does not answer; not editing its state behind it",
            config.control_socket_path(dir).display()
        )
    })
}

fn fail(response: Response) -> anyhow::Error {
    match response {
        Response::Error { message } => anyhow!(message),
        other => anyhow!("unexpected answer from the relay: {other:?}"),
    }
}

/// `invite`: prints the link on the first line of stdout, then the QR code.
pub async fn invite(
    dir: &Path,
    name: &str,
    ttl_secs: u64,
    allow: Option<&str>,
    wake: bool,
    qr: bool,
) -> anyhow::Result<()> {
    let config = Config::load(dir)?;
    let request = Request::Invite { name: name.to_owned(), ttl_secs, allow: allow.map(str::to_owned), wake };
    let info = match admin::request(&config.control_socket_path(dir), &request).await? {
        Some(Response::Invite(info)) => info,
        Some(other) => return Err(fail(other)),
        None => {
            let _lock = offline(dir, &config)?;
            let (secret, _) = relay_key(dir, false)?;
            let mut store = Store::load(dir, config.pool)?;
            actions::create_invite(&mut store, &config, secret.public_key(), name, ttl_secs, allow, wake)?
        }
    };
    println!("{}", info.link);
    if qr {
        println!("{}", crate::qr::render(&info.link)?);
    }
    println!(
        "Single use, for `{}`, valid until {}, may reach {}.",
        info.name,
        crate::qr::utc(info.expires),
        info.allow
    );
    if info.wake {
        println!("It may wake sleeping LAN hosts (Wake-on-LAN).");
    }
    println!("Open the link on the device (or scan the code). Keep it private: it grants access.");
    Ok(())
}

/// `clients`.
pub async fn clients(dir: &Path, json: bool) -> anyhow::Result<()> {
    let config = Config::load(dir)?;
    let clients = match admin::request(&config.control_socket_path(dir), &Request::Clients).await? {
        Some(Response::Clients { clients }) => clients,
        Some(other) => return Err(fail(other)),
        None => actions::client_infos(&Store::load(dir, config.pool)?, None),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&clients)?);
    } else {
        print_clients(&clients);
    }
    Ok(())
}

fn print_clients(clients: &[ClientInfo]) {
    if clients.is_empty() {
        println!("No clients yet. Create an invite with `hometun-relay invite`.");
        return;
    }
    println!(
        "{:<20} {:<16} {:<13} {:<22} {:>12} {:>12}",
        "NAME", "FINGERPRINT", "ADDRESS", "STATE", "BYTES IN", "BYTES OUT"
    );
    for c in clients {
        let state = if c.revoked {
            "revoked".to_owned()
        } else {
            match (c.online, &c.remote) {
                (Some(true), Some(remote)) => format!("online {remote}"),
                _ => match c.last_seen {
                    Some(t) => format!("seen {}", crate::qr::utc(t)),
                    None => "never seen".into(),
                },
            }
        };
        println!(
            "{:<20} {:<16} {:<13} {:<22} {:>12} {:>12}",
            c.name, c.fingerprint, c.address, state, c.bytes_in, c.bytes_out
        );
    }
}

/// `clients revoke NAME`.
pub async fn revoke(dir: &Path, name: &str) -> anyhow::Result<()> {
    let config = Config::load(dir)?;
    match admin::request(&config.control_socket_path(dir), &Request::Revoke { name: name.to_owned() }).await? {
        Some(Response::Revoked { name, closed_session }) => {
            let note = if closed_session { "; its session was closed" } else { "" };
            println!("Revoked `{name}`{note}.");
        }
        Some(other) => return Err(fail(other)),
        None => {
            let _lock = offline(dir, &config)?;
            let mut store = Store::load(dir, config.pool)?;
            actions::revoke(&mut store, name)?;
            println!("Revoked `{name}` (the relay is not running).");
        }
    }
    Ok(())
}

/// `hosts`: what the running relay sees on the LAN.
pub async fn hosts(dir: &Path, json: bool) -> anyhow::Result<()> {
    let config = Config::load(dir)?;
    let path = config.control_socket_path(dir);
    let hosts = match admin::request(&path, &Request::Hosts).await? {
        Some(Response::Hosts { hosts }) => hosts,
        Some(other) => return Err(fail(other)),
        None => bail!("the relay is not running (no answer on {}); hosts are discovered while it runs", path.display()),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&hosts)?);
        return Ok(());
    }
    if hosts.is_empty() {
        println!("No hosts seen yet on {}.", config.lan);
        return Ok(());
    }
    println!("{:<16} {:<18} {:<8} {:<32} SERVICES", "ADDRESS", "MAC", "STATE", "NAMES");
    for h in &hosts {
        let mut names = h.names.join(", ");
        if let Some(label) = &h.label {
            names = if names.is_empty() { format!("\"{label}\"") } else { format!("{names} \"{label}\"") };
        }
        println!(
            "{:<16} {:<18} {:<8} {:<32} {}",
            h.address,
            h.mac.as_deref().unwrap_or("-"),
            if h.online { "online" } else { "offline" },
            if names.is_empty() { "-".to_owned() } else { names },
            h.services.join(" ")
        );
    }
    Ok(())
}

/// `status`.
pub async fn status(dir: &Path, json: bool) -> anyhow::Result<()> {
    let config = Config::load(dir)?;
    let path = config.control_socket_path(dir);
    let status = match admin::request(&path, &Request::Status).await? {
        Some(Response::Status(status)) => status,
        Some(other) => return Err(fail(other)),
        None => bail!("the relay is not running (no answer on {})", path.display()),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(());
    }
    println!("relay       running since {}", crate::qr::utc(status.started));
    println!("listen      {}  ({})", status.listen, status.public_url);
    println!("mode        {}", status.mode);
    println!("tun         {} {}  pool {}", status.tun, status.relay_address, status.pool);
    println!("LAN         {} via {}", status.lan, status.lan_interface.as_deref().unwrap_or("any interface"));
    println!("relay key   {}", status.relay_fingerprint);
    for (i, line) in status.certificate.as_ref().map(crate::acme::describe).unwrap_or_default().iter().enumerate() {
        println!("{:<12}{line}", if i == 0 { "certificate" } else { "" });
    }
    println!("handshakes  {}", status.handshakes);
    let d = &status.dropped;
    println!(
        "dropped     spoofed {}  denied {}  malformed {}  no route/queue full {}",
        d.spoofed, d.denied, d.malformed, d.no_route_or_full
    );
    println!("sessions    {}", status.sessions.len());
    for s in &status.sessions {
        println!(
            "  {:<20} {:<13} {:<22} since {}  in {}  out {}",
            s.name,
            s.address,
            s.remote,
            crate::qr::utc(s.since),
            s.bytes_in,
            s.bytes_out
        );
    }
    Ok(())
}
