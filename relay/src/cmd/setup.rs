//! `init`, and the first step of `serve`: create or update the configuration, the relay key
//! and the certificate, and say what was chosen.

use crate::cli::{SetupArgs, DEFAULT_DIR};
use crate::config::{Config, ConfigError, Limits, Mode, FILE_NAME};
use crate::net::detect;
use crate::state::lock::{DirLock, LockError};
use crate::state::store::relay_key;
use crate::web::tls;
use anyhow::{anyhow, Context};
use hometun_shared::ipv4::Network;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// `init`: makes sure DIR holds a complete, valid setup and applies the given flags. Takes no
/// lock: `init` is how a setting of a running relay is changed (it reads relay.toml only when it
/// starts). Returns the config.
pub fn prepare(args: &SetupArgs) -> anyhow::Result<Config> {
    let plan = plan(args)?;
    make_dir(&args.dir)?;
    write(args, plan)
}

/// `serve`'s first step: as [`prepare`], but holding the state directory's lock before anything
/// is written, so that a relay already running on DIR refuses the start with nothing changed.
/// The lock is the running relay's for its whole life.
pub fn prepare_to_serve(args: &SetupArgs) -> anyhow::Result<(DirLock, Config)> {
    let dir = &args.dir;
    // A directory that does not exist yet holds no running relay.
    let early = if dir.is_dir() { Some(take_lock(dir)?) } else { None };
    let plan = plan(args)?;
    if plan.changed {
        // A port the relay cannot have fails `serve` after the file is written: try it first.
        let unchanged = if plan.existed { "nothing was changed" } else { "nothing was written" };
        std::net::TcpListener::bind(plan.config.listen)
            .map_err(|e| anyhow!("{} ({unchanged})", super::serve::listen_error(plan.config.listen, &e)))?;
    }
    make_dir(dir)?;
    let lock = match early {
        Some(lock) => lock,
        None => take_lock(dir)?,
    };
    Ok((lock, write(args, plan)?))
}

/// The configuration DIR will hold, worked out and checked without writing anything.
struct Plan {
    config: Config,
    /// The LAN relay.toml named before the flags changed it.
    old_lan: Option<Network>,
    /// DIR held a relay.toml (an empty directory, as systemd creates, is a first run).
    existed: bool,
    /// The flags changed the configuration (always so for a new one).
    changed: bool,
}

fn plan(args: &SetupArgs) -> anyhow::Result<Plan> {
    let dir = &args.dir;
    let path = dir.join(FILE_NAME);
    let existed = path
        .try_exists()
        .map_err(|e| anyhow!("cannot look for {}: {e}{}", path.display(), crate::state::root::hint(&e)))?;
    let (config, changed, old_lan) = if existed {
        let mut config = Config::load(dir)?;
        let before = config.clone();
        apply(&mut config, args);
        let changed = config != before;
        (config, changed, Some(before.lan))
    } else {
        (fresh(args)?, true, None)
    };
    if changed {
        // Checked through the same parser a later start uses.
        let text = toml::to_string_pretty(&config)?;
        Config::parse(&text, &path).map_err(|e| from_flags(e, &config, existed))?;
    }
    if existed && config.client_to_client {
        let store = crate::state::store::Store::load(dir, config.pool)?;
        crate::state::actions::check_devices_fit(&store, config.client_to_client)
            .map_err(|e| anyhow!("{}: {e:#} (nothing was changed)", path.display()))?;
    }
    // A certificate that cannot be served fails the start after the file is saved: try it first.
    tls::check_certificate(dir, &config).map_err(|e| {
        let fix = if config.self_signed {
            "remove both files, and a new self-signed certificate is made"
        } else {
            "pass --tls-cert and --tls-key naming a PEM certificate chain and its key"
        };
        let unchanged = if existed { "nothing was changed" } else { "nothing was written" };
        anyhow!("{e:#}; {fix} ({unchanged})")
    })?;
    Ok(Plan { config, old_lan, existed, changed })
}

/// Warnings for files the shipped systemd unit cannot see (`ProtectHome=yes`: /home, /root and
/// /run/user are empty to the service), which `init`, run outside it, reads fine.
fn hidden_from_the_service(dir: &Path, config: &Config) -> Vec<String> {
    let paths = [("--tls-cert", &config.tls_cert), ("--tls-key", &config.tls_key), ("--www", &config.www)];
    paths
        .into_iter()
        .map(|(flag, path)| (flag, Config::resolve(dir, path)))
        .filter(|(_, path)| ["/home", "/root", "/run/user"].iter().any(|hidden| path.starts_with(hidden)))
        .map(|(flag, path)| {
            format!(
                "Warning: {flag} {} is under a directory the hometun-relay service cannot see (ProtectHome=yes): \
                 it works with `hometun-relay serve` by hand, not as the service; put it under /etc/hometun or /srv.",
                path.display()
            )
        })
        .collect()
}

/// Warnings for devices and open invites whose allow rules reached the old LAN and reach
/// nothing of the new one (`--lan` changed: the LAN moved): their rules were written for the
/// old one and are not rewritten. Rules for other networks (a routed subnet, the pool) are
/// left alone.
fn devices_off_the_lan(dir: &Path, config: &Config, old_lan: Network) -> Vec<String> {
    let Ok(store) = crate::state::store::Store::load(dir, config.pool) else { return Vec::new() };
    let off = |networks: Vec<Network>| {
        networks.iter().any(|n| n.overlaps(&old_lan)) && !networks.iter().any(|n| n.overlaps(&config.lan))
    };
    let devices: Vec<&str> = store
        .registry
        .clients
        .iter()
        .filter(|c| !c.revoked && off(c.allow.networks()))
        .map(|c| c.name.as_str())
        .collect();
    let invites = store.invites.open(crate::state::unix_now()).filter(|i| off(i.allow.networks())).count();
    let mut lines = Vec::new();
    if !devices.is_empty() {
        lines.push(format!(
            "Warning: the allow rules of {} reach nothing of the LAN {} (they were written for another LAN); \
             such a device sees no home host: give it a new invite (`hometun-relay invite --name NAME`) and revoke \
             the old one.",
            devices.join(", "),
            config.lan
        ));
    }
    if invites > 0 {
        lines
            .push(format!("Warning: {invites} open invite(s) reach nothing of the LAN {}: make new ones.", config.lan));
    }
    lines
}

/// An invalid setting that came from the command line or the defaults, said in terms of the
/// flag that sets it: the line of a file that was never written would point nowhere.
fn from_flags(error: ConfigError, config: &Config, existed: bool) -> anyhow::Error {
    let ConfigError::Invalid { path, field, message, .. } = error else {
        return error.into();
    };
    let what = if existed {
        format!("{} with the given flags", path.display())
    } else {
        format!("the new {}", path.display())
    };
    let fix = match (field.as_str(), flag_of(&field)) {
        ("pool", _) => {
            format!("; pass --pool with a range that is free on your networks, e.g. --pool {}", free_pool(config.lan))
        }
        (_, Some(flag)) => format!("; pass {flag} with another value"),
        (_, None) => String::new(),
    };
    let unchanged = if existed { "nothing was changed" } else { "nothing was written" };
    anyhow!("{what}: `{field}`: {message}{fix} ({unchanged})")
}

/// The command-line flag that sets a field of relay.toml.
fn flag_of(field: &str) -> Option<&'static str> {
    Some(match field {
        "listen" => "--listen",
        "public_url" => "--public-url",
        "lan" => "--lan",
        "lan_interface" => "--lan-interface",
        "pool" => "--pool",
        "tun_name" => "--tun-name",
        "mtu" => "--mtu",
        "dns" => "--dns",
        "domain" => "--domain",
        "email" => "--acme-email",
        "directory" => "--acme-directory",
        _ => return None,
    })
}

/// A /24 for clients that does not overlap `lan`.
fn free_pool(lan: Network) -> Network {
    ["10.8.0.0/24", "10.99.0.0/24", "172.31.99.0/24", "192.168.199.0/24"]
        .into_iter()
        .map(|net| net.parse::<Network>().expect("constant"))
        .find(|pool| !pool.overlaps(&lan))
        .unwrap_or_else(|| "100.64.99.0/24".parse().expect("constant"))
}

/// Creates DIR (mode 0700) when it is missing.
fn make_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow!("cannot create {}: {e}{}", dir.display(), crate::state::root::hint(&e)))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("making {} private (0700)", dir.display()))
}

/// The state directory's lock; held by a relay already running there, the refusal says how to
/// change that relay's settings instead.
fn take_lock(dir: &Path) -> anyhow::Result<DirLock> {
    DirLock::try_acquire(dir).map_err(|e| match e {
        LockError::Held(..) => {
            let dir_flag =
                if dir == Path::new(DEFAULT_DIR) { String::new() } else { format!(" --dir {}", dir.display()) };
            anyhow!(
                "{e}; nothing was changed. To change a setting of the running service: \
                 `sudo hometun-relay init{dir_flag} FLAGS`, then `sudo systemctl restart hometun-relay`; \
                 or stop it first (`sudo systemctl stop hometun-relay`, or Ctrl-C where it runs)"
            )
        }
        e => e.into(),
    })
}

/// Saves the planned configuration when it changed, makes the relay key and the self-signed
/// certificate when missing, and says what it did.
fn write(args: &SetupArgs, plan: Plan) -> anyhow::Result<Config> {
    let dir = &args.dir;
    let Plan { config, old_lan, existed, changed } = plan;
    if changed {
        config.save(dir)?;
    }
    let (key, key_created) = relay_key(dir, true)?;
    let cert_created = tls::ensure_certificate(dir, &config)?;
    if !existed {
        eprintln!("Created {} with:", dir.join(FILE_NAME).display());
        eprintln!("  listen      {}", config.listen);
        eprintln!("  public URL  {}", config.public_url);
        eprintln!("  LAN         {} (interface {})", config.lan, config.lan_interface.as_deref().unwrap_or("any"));
        eprintln!(
            "  pool        {} (relay {})",
            config.pool,
            config.pool.nth(1).map(|a| a.to_string()).unwrap_or_default()
        );
        eprintln!("  mode        {}", config.mode);
        eprintln!("  page        {}", crate::web::page::describe(&config.www));
    } else if changed {
        eprintln!("Updated {} from the command line.", dir.join(FILE_NAME).display());
    }
    for line in hidden_from_the_service(dir, &config) {
        eprintln!("{line}");
    }
    if let Some(old_lan) = old_lan.filter(|old| *old != config.lan) {
        for line in devices_off_the_lan(dir, &config, old_lan) {
            eprintln!("{line}");
        }
    }
    if let Some(ifname) = config.lan_interface.as_deref().filter(|i| !crate::forwarding::device::interface_exists(i)) {
        eprintln!(
            "Warning: this host has no network interface named {ifname} now (`ip -br link` lists them); the relay \
             will not start until it has, or until --lan-interface names another."
        );
    }
    if key_created {
        eprintln!("Created the relay key (fingerprint {}).", key.public_key().fingerprint());
    }
    if cert_created {
        for line in self_signed_report(dir, &config) {
            eprintln!("{line}");
        }
    }
    Ok(config)
}

/// What `init` says about the self-signed certificate it just made: the same SHA-256
/// fingerprint `serve`, `status` and a browser's certificate viewer show, and what the
/// certificate costs.
fn self_signed_report(dir: &Path, config: &Config) -> Vec<String> {
    let mut lines = vec![format!(
        "Created a self-signed TLS certificate for {}.",
        tls::url_host(&config.public_url).unwrap_or("localhost")
    )];
    if let Some(fingerprint) = tls::certificate_fingerprint(dir, config) {
        lines.push(format!("  SHA-256 fingerprint: {fingerprint}"));
    }
    match config.acme.effective_domain(&config.public_url) {
        Some(domain) => {
            lines.push(format!("  It is served only until the trusted certificate for {domain} arrives (ACME)."));
        }
        None => {
            lines.push("  Every device will show a certificate warning, and home web apps cannot work.".into());
            lines.push("  Accept it only where the browser's certificate viewer shows the fingerprint above.".into());
            lines.push("  For a trusted certificate give the relay a DNS name: --domain home.example.net.".into());
        }
    }
    if let Some(spki) = tls::spki_sha256(dir, config) {
        lines.push(format!("  its SPKI SHA-256: {spki} (only for Chromium's --ignore-certificate-errors-spki-list)"));
    }
    lines
}

fn fresh(args: &SetupArgs) -> anyhow::Result<Config> {
    let listen = args.listen.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 443)));
    let (lan, detected) = match args.lan {
        Some(lan) => (lan, detect::interface_in(&lan)),
        None => {
            let found = detect::default_lan().context("detecting the LAN (pass --lan CIDR)")?;
            (found.net, Some(found))
        }
    };
    let lan_interface = args.lan_interface.clone().or_else(|| detected.as_ref().map(|d| d.ifname.clone()));
    let public_url = match &args.public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => default_url(listen, detected.as_ref().map(|d| d.address)),
    };
    let mut config = Config {
        listen,
        public_url,
        mode: Mode::Masquerade,
        lan,
        lan_interface,
        pool: "10.8.0.0/24".parse().expect("constant"),
        tun_name: "hometun0".into(),
        mtu: 1420,
        www: default_www(&args.dir),
        tls_cert: PathBuf::from("tls-cert.pem"),
        tls_key: PathBuf::from("tls-key.pem"),
        self_signed: true,
        tun_offload: true,
        threads: 1,
        client_to_client: false,
        dns: Vec::new(),
        extra_origins: Vec::new(),
        control_socket: None,
        limits: Limits::default(),
        acme: Default::default(),
        discovery: Default::default(),
    };
    apply(&mut config, args);
    Ok(config)
}

/// Applies the flags that were given.
fn apply(config: &mut Config, args: &SetupArgs) {
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(lan) = args.lan {
        config.lan = lan;
    }
    if let Some(ifname) = &args.lan_interface {
        config.lan_interface = Some(ifname.clone());
    }
    if let Some(pool) = args.pool {
        config.pool = pool;
    }
    if let Some(mode) = args.mode {
        config.mode = mode;
    }
    if let Some(url) = &args.public_url {
        config.public_url = url.trim_end_matches('/').to_owned();
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        config.tls_cert = absolute(cert);
        config.tls_key = absolute(key);
        config.self_signed = false;
    }
    if let Some(www) = &args.www {
        config.www = absolute(www);
    }
    if let Some(name) = &args.tun_name {
        config.tun_name = name.clone();
    }
    if let Some(mtu) = args.mtu {
        config.mtu = mtu;
    }
    if let Some(c2c) = args.client_to_client {
        config.client_to_client = c2c;
    }
    if let Some(dns) = &args.dns {
        config.dns = dns.clone();
    }
    args.acme.apply(&mut config.acme);
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

fn default_www(dir: &Path) -> PathBuf {
    let local = dir.join("www");
    if local.exists() {
        absolute(&local)
    } else {
        PathBuf::from("/usr/share/hometun/www")
    }
}

/// `https://HOST[:PORT]` from the listen address; an unspecified address is replaced by the
/// relay's LAN address.
fn default_url(listen: SocketAddr, lan_address: Option<std::net::Ipv4Addr>) -> String {
    let ip = match listen.ip() {
        ip if ip.is_unspecified() => lan_address.map(IpAddr::V4),
        ip => Some(ip),
    };
    let host = match ip {
        Some(IpAddr::V6(v6)) => format!("[{v6}]"),
        Some(ip) => ip.to_string(),
        None => "localhost".into(),
    };
    if listen.port() == 443 {
        format!("https://{host}")
    } else {
        format!("https://{host}:{}", listen.port())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn default_urls() {
        let lan = Some(Ipv4Addr::new(192, 168, 0, 2));
        assert_eq!(default_url("0.0.0.0:443".parse().unwrap(), lan), "https://192.168.0.2");
        assert_eq!(default_url("10.0.0.1:8443".parse().unwrap(), lan), "https://10.0.0.1:8443");
        assert_eq!(default_url("[::1]:443".parse().unwrap(), None), "https://[::1]");
        assert_eq!(default_url("0.0.0.0:443".parse().unwrap(), None), "https://localhost");
    }

    #[test]
    fn init_then_flags_update_the_saved_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut args = SetupArgs {
            dir: dir.path().join("state"),
            listen: Some("127.0.0.1:8443".parse().unwrap()),
            lan: Some("192.168.77.0/24".parse().unwrap()),
            lan_interface: Some("veth-lan".into()),
            ..SetupArgs::default()
        };
        let config = prepare(&args).unwrap();
        assert_eq!(config.public_url, "https://127.0.0.1:8443");
        assert!(args.dir.join("relay.key").exists());
        assert!(args.dir.join("tls-cert.pem").exists());
        args.mode = Some(Mode::Routed);
        prepare(&args).unwrap();
        assert_eq!(Config::load(&args.dir).unwrap().mode, Mode::Routed);
        let tls = tls::server_config(&args.dir, &config);
        assert!(tls.is_ok(), "{tls:?}");
    }

    fn args_in(dir: &Path) -> SetupArgs {
        SetupArgs {
            dir: dir.join("state"),
            listen: Some("127.0.0.1:8443".parse().unwrap()),
            lan: Some("192.168.77.0/24".parse().unwrap()),
            lan_interface: Some("veth-lan".into()),
            ..SetupArgs::default()
        }
    }

    #[test]
    fn serve_with_a_changed_flag_beside_a_running_relay_changes_nothing_and_says_how_to_apply_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut args = args_in(dir.path());
        prepare(&args).unwrap();
        let before = std::fs::read(args.dir.join(FILE_NAME)).unwrap();
        let _running = DirLock::try_acquire(&args.dir).unwrap();

        args.mode = Some(Mode::Routed);
        let refused = prepare_to_serve(&args).expect_err("a second relay on one directory").to_string();

        assert_eq!(std::fs::read(args.dir.join(FILE_NAME)).unwrap(), before, "relay.toml untouched");
        assert!(refused.contains("a relay is running on"), "{refused}");
        assert!(refused.contains("nothing was changed"), "{refused}");
        let init = format!("`sudo hometun-relay init --dir {} FLAGS`", args.dir.display());
        assert!(refused.contains(&init), "{refused}");
        assert!(refused.contains("`sudo systemctl restart hometun-relay`"), "{refused}");
        assert!(refused.contains("`sudo systemctl stop hometun-relay`"), "{refused}");
    }

    #[test]
    fn serve_on_a_port_another_program_holds_changes_nothing_and_names_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let mut args = args_in(dir.path());
        prepare(&args).unwrap();
        let before = std::fs::read(args.dir.join(FILE_NAME)).unwrap();
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();

        args.listen = Some(taken.local_addr().unwrap());
        let refused = prepare_to_serve(&args).expect_err("a port in use").to_string();

        assert_eq!(std::fs::read(args.dir.join(FILE_NAME)).unwrap(), before, "relay.toml untouched");
        assert!(refused.contains("another program listens on port"), "{refused}");
        assert!(refused.contains("--listen"), "{refused}");
        assert!(refused.contains("nothing was changed"), "{refused}");
    }

    #[test]
    fn init_beside_a_running_relay_saves_the_change_for_its_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut args = args_in(dir.path());
        prepare(&args).unwrap();
        let _running = DirLock::try_acquire(&args.dir).unwrap();
        args.mode = Some(Mode::Routed);
        prepare(&args).unwrap();
        assert_eq!(Config::load(&args.dir).unwrap().mode, Mode::Routed);
    }

    #[test]
    fn a_first_run_on_a_lan_inside_the_default_pool_names_the_flag_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let args = SetupArgs { lan: Some("10.8.0.0/16".parse().unwrap()), ..args_in(dir.path()) };

        let refused = prepare_to_serve(&args).expect_err("the pool overlaps the LAN").to_string();

        assert!(refused.contains("`pool`: 10.8.0.0/24 overlaps the LAN 10.8.0.0/16"), "{refused}");
        assert!(
            refused.contains("pass --pool with a range that is free on your networks, e.g. --pool 10.99.0.0/24"),
            "{refused}"
        );
        assert!(!refused.contains("line"), "no line of a file that does not exist: {refused}");
        assert!(refused.contains("nothing was written"), "{refused}");
        assert!(!args.dir.exists(), "no state directory made");
        let fixed = SetupArgs { pool: Some("10.99.0.0/24".parse().unwrap()), ..args };
        prepare(&fixed).unwrap();
    }

    /// A state directory set up by `init` with [`args_in`], and its configuration.
    fn prepared(dir: &Path) -> (SetupArgs, Config) {
        let args = args_in(dir);
        prepare(&args).unwrap();
        let config = Config::load(&args.dir).unwrap();
        (args, config)
    }

    #[test]
    fn files_the_service_cannot_see_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let (args, config) = prepared(dir.path());
        assert!(hidden_from_the_service(&args.dir, &config).is_empty(), "{:?}", config.tls_cert);
        let home = Config { tls_cert: "/home/pi/cert.pem".into(), www: "/root/www".into(), ..config };
        let lines = hidden_from_the_service(&args.dir, &home);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with("Warning: --tls-cert /home/pi/cert.pem is under"), "{lines:?}");
        assert!(lines[1].starts_with("Warning: --www /root/www is under"), "{lines:?}");
    }

    #[test]
    fn devices_whose_rules_miss_a_moved_lan_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let (args, config) = prepared(dir.path());
        let mut store = crate::state::store::Store::load(&args.dir, config.pool).unwrap();
        let (key, _) = relay_key(&args.dir, false).unwrap();
        crate::state::actions::create_invite(&mut store, &config, key.public_key(), "phone", 3600, None, false)
            .unwrap();
        let old_lan = config.lan;
        assert!(devices_off_the_lan(&args.dir, &config, old_lan).is_empty(), "the invite reaches the LAN");
        let routed = Config { lan: "10.0.5.0/24".parse().unwrap(), ..config.clone() };
        assert!(
            devices_off_the_lan(&args.dir, &config, routed.lan).is_empty(),
            "rules that never reached the old LAN are not flagged"
        );
        let moved = Config { lan: "192.168.1.0/24".parse().unwrap(), ..config };
        let lines = devices_off_the_lan(&args.dir, &moved, old_lan);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("1 open invite(s) reach nothing of the LAN 192.168.1.0/24"), "{lines:?}");
    }

    #[test]
    fn a_flag_that_breaks_an_existing_setup_is_named_and_the_file_stays() {
        let dir = tempfile::tempdir().unwrap();
        let args = args_in(dir.path());
        prepare(&args).unwrap();
        let before = std::fs::read(args.dir.join(FILE_NAME)).unwrap();
        let refused = prepare(&SetupArgs { mtu: Some(100), ..args.clone() }).expect_err("mtu 100").to_string();
        assert!(refused.contains("with the given flags: `mtu`: 100 is outside 576..=9000; pass --mtu"), "{refused}");
        assert!(refused.contains("nothing was changed"), "{refused}");
        assert_eq!(std::fs::read(args.dir.join(FILE_NAME)).unwrap(), before);
    }

    #[test]
    fn client_to_client_is_refused_while_a_device_has_rules_to_as_many_networks_as_it_can_be_sent() {
        use crate::state::registry::Client;
        use crate::state::store::Store;
        use hometun_shared::keys::PublicKey;
        let dir = tempfile::tempdir().unwrap();
        let args = args_in(dir.path());
        let config = prepare(&args).unwrap();
        let mut store = Store::load(&args.dir, config.pool).unwrap();
        let networks = (0..64).map(|n| format!("10.{n}.0.0/16")).collect::<Vec<_>>().join(",");
        for (n, name) in [(1, "laptop"), (2, "old-tablet"), (3, "phone")] {
            let key = PublicKey::from_bytes([n; 32]);
            let mut client = Client::for_test(name, key, store.pool.lease(&key).unwrap());
            if name != "phone" {
                client.allow = crate::forwarding::acl::Acl::parse_list(&networks).unwrap();
            }
            store.registry.enrol(client).unwrap();
        }
        store.registry.revoke("old-tablet").unwrap();
        store.save_leases().unwrap();
        store.save_clients().unwrap();
        let before = std::fs::read(args.dir.join(FILE_NAME)).unwrap();
        let on = SetupArgs { client_to_client: Some(true), ..args.clone() };

        for refused in [prepare(&on), prepare_to_serve(&on).map(|(_, config)| config)] {
            let refused = format!("{:#}", refused.expect_err("laptop would be sent 65 routes"));
            assert_eq!(std::fs::read(args.dir.join(FILE_NAME)).unwrap(), before, "relay.toml byte for byte");
            assert!(refused.contains("`laptop` (64 networks)"), "{refused}");
            assert!(!refused.contains("old-tablet"), "a revoked device is sent nothing: {refused}");
            assert!(!refused.contains("`phone`"), "{refused}");
            assert!(refused.contains("client_to_client = false"), "{refused}");
            assert!(refused.contains("clients revoke laptop"), "{refused}");
            assert!(refused.contains("at most 63"), "{refused}");
            assert!(refused.contains("nothing was changed"), "{refused}");
        }
        let mut edited = Config::load(&args.dir).unwrap();
        edited.client_to_client = true;
        edited.save(&args.dir).unwrap();
        let refused = format!("{:#}", prepare_to_serve(&args).expect_err("relay.toml edited by hand"));
        assert!(refused.contains("`laptop` (64 networks)"), "{refused}");

        crate::state::actions::revoke(&mut Store::load(&args.dir, config.pool).unwrap(), "laptop").unwrap();
        assert!(prepare(&on).unwrap().client_to_client, "fits once laptop is revoked");
    }

    #[test]
    fn a_certificate_flag_naming_missing_files_is_refused_and_relay_toml_stays_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let args = args_in(dir.path());
        prepare(&args).unwrap();
        let before = std::fs::read(args.dir.join(FILE_NAME)).unwrap();
        let missing = SetupArgs {
            tls_cert: Some(dir.path().join("no-cert.pem")),
            tls_key: Some(dir.path().join("no-key.pem")),
            ..args.clone()
        };

        for refused in [prepare(&missing), prepare_to_serve(&missing).map(|(_, config)| config)] {
            let refused = format!("{:#}", refused.expect_err("no certificate there"));
            assert_eq!(std::fs::read(args.dir.join(FILE_NAME)).unwrap(), before, "relay.toml byte for byte");
            assert!(refused.contains("no-cert.pem"), "names the file: {refused}");
            assert!(refused.contains("--tls-cert"), "{refused}");
            assert!(refused.contains("nothing was changed"), "{refused}");
        }
    }

    #[test]
    fn a_first_run_with_missing_certificate_files_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let args = SetupArgs {
            tls_cert: Some(dir.path().join("no-cert.pem")),
            tls_key: Some(dir.path().join("no-key.pem")),
            ..args_in(dir.path())
        };

        for refused in [prepare(&args), prepare_to_serve(&args).map(|(_, config)| config)] {
            let refused = format!("{:#}", refused.expect_err("no certificate there"));
            assert!(!args.dir.exists(), "no state directory, relay.toml or key made: {refused}");
            assert!(refused.contains("nothing was written"), "{refused}");
        }
    }

    #[test]
    fn a_certificate_and_a_key_that_do_not_belong_together_are_refused_before_anything_is_saved() {
        let dir = tempfile::tempdir().unwrap();
        let args = args_in(dir.path());
        prepare(&args).unwrap();
        let before = std::fs::read(args.dir.join(FILE_NAME)).unwrap();
        let other = args_in(&dir.path().join("other"));
        prepare(&other).unwrap();
        let mismatched = SetupArgs {
            tls_cert: Some(args.dir.join("tls-cert.pem")),
            tls_key: Some(other.dir.join("tls-key.pem")),
            ..args.clone()
        };

        let refused = format!("{:#}", prepare(&mismatched).expect_err("another certificate's key"));

        assert!(refused.contains("tls-cert.pem"), "{refused}");
        assert!(refused.contains("nothing was changed"), "{refused}");
        assert_eq!(std::fs::read(args.dir.join(FILE_NAME)).unwrap(), before, "relay.toml byte for byte");
    }

    #[test]
    fn an_empty_state_directory_made_by_systemd_is_a_first_run() {
        let dir = tempfile::tempdir().unwrap();
        let args = args_in(dir.path());
        std::fs::create_dir(&args.dir).unwrap();
        std::fs::set_permissions(&args.dir, std::fs::Permissions::from_mode(0o700)).unwrap();

        let (_lock, config) = prepare_to_serve(&args).unwrap();

        assert_eq!(Config::load(&args.dir).unwrap(), config, "relay.toml written");
        assert!(args.dir.join("relay.key").exists());
        assert!(args.dir.join("tls-cert.pem").exists());
    }

    #[test]
    fn init_shows_the_certificate_fingerprint_that_serve_and_status_show() {
        let dir = tempfile::tempdir().unwrap();
        let args = SetupArgs {
            dir: dir.path().join("state"),
            listen: Some("127.0.0.1:8443".parse().unwrap()),
            lan: Some("192.168.77.0/24".parse().unwrap()),
            ..SetupArgs::default()
        };
        let config = prepare(&args).unwrap();
        let pem = std::fs::read_to_string(args.dir.join("tls-cert.pem")).unwrap();
        let key = std::fs::read_to_string(args.dir.join("tls-key.pem")).unwrap();
        let served = crate::acme::certs::Served::from_pem(&pem, &key).unwrap();
        let report = self_signed_report(&args.dir, &config);
        let shown = format!("  SHA-256 fingerprint: {}", served.leaf.fingerprint);
        assert!(report.contains(&shown), "{report:#?}");
        let spki = report.iter().find(|l| l.contains("SPKI")).expect("the SPKI line");
        assert!(spki.contains("--ignore-certificate-errors-spki-list"), "labelled for what it is: {spki}");
    }
}
