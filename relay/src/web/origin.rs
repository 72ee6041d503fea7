//! Which web origins may open `/tunnel`: the relay's own (the scheme and host[:port] of
//! `public_url`, and `https://<domain>` when certificates come by ACME). A request without an
//! `Origin` header comes from a native client and is allowed; any other site (app names
//! included: they carry LAN apps' pages) is refused, so it cannot make its visitors open tunnel
//! connections, unless the operator lists it in `extra_origins`.

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
        for extra in &config.extra_origins {
            if let Some(origin) = normalize(extra) {
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

/// Whether `text` is an origin: `scheme://host[:port]` with an http(s) scheme and nothing after.
pub fn is_origin(text: &str) -> bool {
    text.parse::<Uri>().is_ok_and(|uri| uri.path_and_query().is_none_or(|p| p.as_str() == "/"))
        && normalize(text).is_some()
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

    #[test]
    fn extra_origins_must_be_bare_http_origins() {
        for ok in ["http://127.0.0.1:8000", "https://dev.example", "https://dev.example/"] {
            assert!(is_origin(ok), "{ok}");
        }
        for bad in ["https://dev.example/page", "ftp://dev.example", "dev.example", "https://u@dev.example", ""] {
            assert!(!is_origin(bad), "{bad}");
        }
    }
}
