//! `init`, and the first step of `serve`: create or update the configuration, the relay key
//! and the certificate, and say what was chosen.

use crate::cli::SetupArgs;
use crate::config::{Config, Limits, Mode, FILE_NAME};
use crate::net::detect;
use crate::state::store::relay_key;
use crate::web::tls;
use anyhow::Context;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Makes sure DIR holds a complete, valid setup; applies the given flags. Returns the config.
pub fn prepare(args: &SetupArgs) -> anyhow::Result<Config> {
    let dir = &args.dir;
    if !dir.exists() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let existed = dir.join(FILE_NAME).exists();
    let (config, changed) = if existed {
        let mut config = Config::load(dir)?;
        let before = config.clone();
        apply(&mut config, args);
        let changed = config != before;
        (config, changed)
    } else {
        (fresh(args)?, true)
    };
    if changed {
        // Re-check through the same parser a later start uses.
        let text = toml::to_string_pretty(&config)?;
        Config::parse(&text, &dir.join(FILE_NAME))?;
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
