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
    print!("{}", clients_table(clients));
}

/// The `clients` table: a line per client, after a header.
fn clients_table(clients: &[ClientInfo]) -> String {
    if clients.is_empty() {
        return "No clients yet. Create an invite with `hometun-relay invite`.\n".to_owned();
    }
    let mut table = format!(
        "{:<20} {:<16} {:<13} {:<22} {:>12} {:>12}\n",
        "NAME", "FINGERPRINT", "ADDRESS", "STATE", "BYTES IN", "BYTES OUT"
    );
    for c in clients {
        let state = if c.revoked {
            match (&c.address, &c.address_reused_by) {
                (None, Some(holder)) => format!("revoked (address reused by {holder})"),
                (None, None) => "revoked (no address)".to_owned(),
                (Some(_), _) => "revoked".to_owned(),
            }
        } else {
            match (c.online, &c.remote) {
                (Some(true), Some(remote)) => format!("online {remote}"),
                _ => match c.last_seen {
                    Some(t) => format!("seen {}", crate::qr::utc(t)),
                    None => "never seen".into(),
                },
            }
        };
        let address = c.address.map_or_else(|| "-".to_owned(), |a| a.to_string());
        table += &format!(
            "{:<20} {:<16} {:<13} {:<22} {:>12} {:>12}\n",
            c.name, c.fingerprint, address, state, c.bytes_in, c.bytes_out
        );
    }
    table
}

/// `clients revoke NAME`.
/// With `json`, one object: `{"name", "closed_session", "relay_running"}`.
pub async fn revoke(dir: &Path, name: &str, json: bool) -> anyhow::Result<()> {
    let config = Config::load(dir)?;
    let (name, closed_session, relay_running) =
        match admin::request(&config.control_socket_path(dir), &Request::Revoke { name: name.to_owned() }).await? {
            Some(Response::Revoked { name, closed_session }) => (name, closed_session, true),
            Some(other) => return Err(fail(other)),
            None => {
                let _lock = offline(dir, &config)?;
                let mut store = Store::load(dir, config.pool)?;
                actions::revoke(&mut store, name)?;
                (name.to_owned(), false, false)
            }
        };
    if json {
        let out = serde_json::json!({ "name": name, "closed_session": closed_session, "relay_running": relay_running });
        println!("{out}");
    } else {
        let note = match (relay_running, closed_session) {
            (false, _) => " (the relay is not running)",
            (true, true) => "; its session was closed",
            (true, false) => "",
        };
        println!("Revoked `{name}`{note}.");
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

#[cfg(test)]
mod tests {
    use super::*;

    fn client(name: &str, address: Option<&str>, revoked: bool, reused_by: Option<&str>) -> ClientInfo {
        ClientInfo {
            name: name.to_owned(),
            fingerprint: "089f831e4dfc7bc8".to_owned(),
            address: address.map(|a| a.parse().unwrap()),
            address_reused_by: reused_by.map(str::to_owned),
            allow: "192.168.0.0/24".to_owned(),
            wake: false,
            revoked,
            online: None,
            remote: None,
            last_seen: None,
            bytes_in: 0,
            bytes_out: 0,
        }
    }

    #[test]
    fn a_revoked_client_whose_address_was_reused_is_listed_with_a_dash_and_the_new_holder() {
        let table = clients_table(&[
            client("old-phone", None, true, Some("tablet")),
            client("old-laptop", Some("10.8.0.2"), true, None),
            client("tablet", Some("10.8.0.4"), false, None),
        ]);

        let row =
            |name: &str| table.lines().find(|l| l.starts_with(name)).unwrap().split_whitespace().collect::<Vec<_>>();
        assert_eq!(row("old-phone")[2..7], ["-", "revoked", "(address", "reused", "by"], "{table}");
        assert_eq!(row("old-phone")[7], "tablet)", "{table}");
        assert_eq!(row("old-laptop")[2..4], ["10.8.0.2", "revoked"], "{table}");
        assert_eq!(row("tablet")[2], "10.8.0.4", "{table}");
        assert_eq!(table.matches("10.8.0.4").count(), 1, "one device per address: {table}");
    }
}
