//! Which web origins may open `/tunnel`: the relay's own (the scheme and host[:port] of
//! `public_url`, and `https://<domain>` when certificates come by ACME). A request without an
//! `Origin` header comes from a native client and is allowed; any other site is refused, so it
//! cannot make its visitors open tunnel connections.

use crate::config::Config;
use axum::http::Uri;

/// The relay's own origins, lower-case, without default ports.
#[derive(Debug, Clone, Default)]
pub struct Origins(Vec<String>);

impl Origins {
    /// The origins of `config`.
    pub fn of(config: &Config) -> Self {
        let mut list = Vec::new();
        if let Some(origin) = normalize(&config.public_url) {
            list.push(origin);
        }
        if let Some(domain) = config.acme.effective_domain(&config.public_url) {
            if let Some(origin) = normalize(&format!("https://{domain}")) {
                if !list.contains(&origin) {
                    list.push(origin);
                }
            }
        }
        Self(list)
    }

    /// Whether a request with this `Origin` header value (none: a native client) may open a tunnel.
    pub fn allows(&self, origin: Option<&[u8]>) -> bool {
        let Some(origin) = origin else { return true };
        let Some(origin) = std::str::from_utf8(origin).ok().and_then(normalize) else { return false };
        self.0.contains(&origin)
    }
}

/// `scheme://host[:port]` of `url`, lower-case, the scheme's default port left out; `None` for
/// anything that is not an http(s) URL with a host.
fn normalize(url: &str) -> Option<String> {
    let uri: Uri = url.trim().parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    let authority = uri.authority()?;
    if authority.as_str().contains('@') {
        return None;
    }
    let host = authority.host().to_ascii_lowercase();
    Some(match authority.port_u16() {
        Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins(list: &[&str]) -> Origins {
        Origins(list.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn own_origins_match_case_insensitively_and_with_the_default_port() {
        let own = origins(&["https://home.example.net", "https://localhost:8443"]);
        for ok in ["https://home.example.net", "HTTPS://Home.Example.NET", "https://home.example.net:443"] {
            assert!(own.allows(Some(ok.as_bytes())), "{ok}");
        }
        assert!(own.allows(Some(b"https://localhost:8443")));
        assert!(own.allows(None));
        for bad in [
            "https://evil.example",
            "http://home.example.net",
            "https://home.example.net:8443",
            "https://localhost",
            "null",
            "",
            "https://home.example.net.evil.example",
        ] {
            assert!(!own.allows(Some(bad.as_bytes())), "{bad}");
        }
        assert!(!own.allows(Some(b"https://home.example.net\xff")));
    }
}
