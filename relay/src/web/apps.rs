//! App names on the one TLS port (`h-A-B-C-D-pPORT.DOMAIN`, see docs/web-apps.md): the relay
//! never proxies HTTP into the LAN, so on an app name it serves only hometun's own static files,
//! the same bytes for every name:
//!
//! - `/__ht/sw.js` (with `Service-Worker-Allowed: /`), `/__ht/shim.js`, `/__ht/boot.js`,
//!   `/__ht/boot.html`, from the page's `app/` directory (built in, or the `www` override);
//! - every other `GET`/`HEAD` path: `boot.html` (`Cache-Control: no-store`), which installs the
//!   service worker that carries the app's own requests through the launcher's tunnel;
//! - any other method: `503` (nothing answers it without the service worker);
//! - `/tunnel` and other `/__ht/` paths: `404`.
//!
//! On the relay's own name, the same prefix holds the files app pages reach the tunnel through
//! (a hidden broker frame, docs/web-apps.md "Getting a port"): `/__ht/broker.html` (framable
//! only by app origins), `/__ht/broker.js` and `/__ht/hub.js` (the SharedWorker both the
//! launcher and broker frames connect to); every other `/__ht/` path there is `404`.
//!
//! A name under the relay's domain that is not an accepted app name (outside the LAN, the
//! relay's own address, malformed) gets `404` on every path: the launcher and `/tunnel` live
//! only on the relay's own name. Hosts outside the domain (an IP address, `localhost`) get the
//! ordinary routes.

use crate::acme::names::AppNames;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use hometun_shared::app_name::AppTarget;
use std::path::PathBuf;
use std::sync::Arc;

/// The prefix app origins reserve for hometun's files.
const PREFIX: &str = "/__ht/";

/// What the `503` for a method other than `GET`/`HEAD` says.
const NOT_CONNECTED: &str = "not connected: open this app from your hometun page\n";

/// The app-name side of the web server: the policy and where the page's files are.
#[derive(Debug, Clone)]
pub struct AppSite {
    names: Option<Arc<AppNames>>,
    www: Arc<PathBuf>,
}

/// What the Host of a request is, as far as app names go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Site {
    /// Not under the relay's domain (or no domain): the ordinary routes.
    Ordinary,
    /// The relay's own name.
    Relay,
    /// An accepted app name and the LAN target it stands for.
    App(AppTarget),
    /// Under the domain but not an accepted app name.
    Refused,
}

impl AppSite {
    /// App names by `names` (none: the relay has no domain and serves no app names), files from
    /// the page in `www` (see [`super::page::read`]).
    pub fn new(names: Option<AppNames>, www: PathBuf) -> Self {
        Self { names: names.map(Arc::new), www: Arc::new(www) }
    }

    /// The domain app names live under, if the relay serves them.
    pub fn domain(&self) -> Option<&str> {
        self.names.as_deref().map(|names| names.domain.as_str())
    }

    /// The CSP source of every app origin (`https://*.DOMAIN[:port]`) for a page requested with
    /// `headers`: only when that page is on the relay's own name, with the port it was asked on.
    pub fn frame_source(&self, headers: &HeaderMap) -> Option<String> {
        let (host, port) = host_of(headers)?;
        (self.site(&host) == Site::Relay).then(|| format!("https://*.{host}{}", port_suffix(port)))
    }

    fn site(&self, host: &str) -> Site {
        let Some(names) = self.names.as_deref() else { return Site::Ordinary };
        if host == names.domain {
            return Site::Relay;
        }
        if !host.ends_with(&format!(".{}", names.domain)) {
            return Site::Ordinary;
        }
        match names.check(host) {
            Ok(target) => Site::App(target),
            Err(why) => {
                tracing::debug!(host, "not an app name: {why}");
                Site::Refused
            }
        }
    }
}

/// Middleware in front of every route: answers requests to app names (and refused names under
/// the domain) itself, passes everything else on.
pub async fn route(State(site): State<AppSite>, request: Request, next: Next) -> Response {
    let Some((host, port)) = host_of(request.headers()) else { return next.run(request).await };
    match site.site(&host) {
        Site::Relay if request.uri().path().starts_with(PREFIX) => {
            let apps = format!("https://*.{host}{}", port_suffix(port));
            serve_tunnel_file(&site, request.method(), request.uri().path(), &apps).await
        }
        Site::Ordinary | Site::Relay => next.run(request).await,
        Site::Refused => super::page::plain(StatusCode::NOT_FOUND, "not found"),
        Site::App(_) => {
            let relay = format!("https://{}{}", site.domain().unwrap_or_default(), port_suffix(port));
            serve(&site, request.method(), request.uri().path(), &relay, is_navigation(request.headers())).await
        }
    }
}

/// Whether a request is a page or frame being loaded, as the browser says (`Sec-Fetch-Mode`,
/// `Sec-Fetch-Dest`); one that says nothing counts as one. A download the browser makes itself
/// is a navigation to no document (`empty`).
fn is_navigation(headers: &HeaderMap) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match (header("sec-fetch-mode"), header("sec-fetch-dest")) {
        (None, _) => true,
        (Some(mode), dest) => mode == "navigate" && dest.is_none_or(|d| matches!(d, "document" | "iframe" | "frame")),
    }
}

/// Answers one request on an app name; `relay` is the launcher's origin (the only page that
/// may frame an app). An app's path gives the boot page to a `navigation` only (a browser that
/// does not say sends none else): anything else that reaches the relay there came past the
/// app's worker (a fetch or an image from another app's page, a link the browser downloads
/// itself), and a page of HTML in its place would be taken for the app's answer.
async fn serve(site: &AppSite, method: &Method, path: &str, relay: &str, navigation: bool) -> Response {
    if path == "/tunnel" {
        return super::page::plain(StatusCode::NOT_FOUND, "not found");
    }
    if method != Method::GET && method != Method::HEAD {
        return super::page::plain(StatusCode::SERVICE_UNAVAILABLE, NOT_CONNECTED);
    }
    let file = match path.strip_prefix(PREFIX) {
        Some(name @ ("sw.js" | "shim.js" | "boot.js" | "boot.html")) => name,
        Some(_) => return super::page::plain(StatusCode::NOT_FOUND, "not found"),
        None if !navigation => return super::page::plain(StatusCode::SERVICE_UNAVAILABLE, NOT_CONNECTED),
        None => "boot.html",
    };
    let Some(bytes) = super::page::read(&site.www, &format!("app/{file}")).await else {
        return super::page::plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "this relay was built without its page: run scripts/build-page.sh, then rebuild the relay\n",
        );
    };
    let mut response = Response::new(Body::from(bytes));
    let headers = response.headers_mut();
    super::page::security_headers(headers);
    headers.remove(header::X_FRAME_OPTIONS);
    let (content_type, csp) = if file == "boot.html" {
        ("text/html; charset=utf-8", boot_policy(relay))
    } else if file == "sw.js" {
        // A worker's own policy comes with its script: it fetches boot.html from here.
        ("text/javascript; charset=utf-8", "default-src 'self'".to_owned())
    } else {
        ("text/javascript; charset=utf-8", "default-src 'none'".to_owned())
    };
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    match file {
        "sw.js" => {
            headers.insert("service-worker-allowed", HeaderValue::from_static("/"));
        }
        "boot.html" if path.strip_prefix(PREFIX).is_none() => {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        _ => {}
    }
    response
}

/// Answers one request for `/__ht/…` on the relay's own name: the broker frame, its script
/// and the hub worker. `apps` is the CSP source of every app origin (`https://*.DOMAIN[:port]`),
/// the only pages that may frame the broker.
async fn serve_tunnel_file(site: &AppSite, method: &Method, path: &str, apps: &str) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return super::page::plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    let Some(file @ ("broker.html" | "broker.js" | "hub.js")) = path.strip_prefix(PREFIX) else {
        return super::page::plain(StatusCode::NOT_FOUND, "not found");
    };
    let Some(bytes) = super::page::read(&site.www, &format!("app/{file}")).await else {
        return super::page::plain(StatusCode::NOT_FOUND, "not found");
    };
    let mut response = Response::new(Body::from(bytes));
    let headers = response.headers_mut();
    super::page::security_headers(headers);
    let (content_type, csp) = if file == "broker.html" {
        headers.remove(header::X_FRAME_OPTIONS);
        ("text/html; charset=utf-8", broker_policy(apps))
    } else {
        ("text/javascript; charset=utf-8", "default-src 'none'".to_owned())
    };
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// The boot page's policy: its own scripts only, framed only by the launcher, framing only the
/// broker on the launcher's origin.
fn boot_policy(relay: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-src {relay}; frame-ancestors {relay}; base-uri 'none'; form-action 'none'"
    )
}

/// The broker frame's policy: its own script and worker only, framed only by app origins.
fn broker_policy(apps: &str) -> String {
    format!("default-src 'none'; script-src 'self'; worker-src 'self'; frame-ancestors {apps}; base-uri 'none'; form-action 'none'")
}

/// The request's host (lower case, no trailing dot) and port, from `Host`; `None` when it is
/// missing or not a plain DNS name with an optional port.
fn host_of(headers: &HeaderMap) -> Option<(String, Option<u16>)> {
    let value = headers.get(header::HOST)?.to_str().ok()?;
    let (host, port) = match value.rsplit_once(':') {
        Some((host, port)) => (host, Some(port.parse::<u16>().ok()?)),
        None => (value, None),
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let plain = !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    plain.then_some((host, port))
}

fn port_suffix(port: Option<u16>) -> String {
    match port {
        Some(port) if port != 443 => format!(":{port}"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn site() -> AppSite {
        let names = AppNames {
            domain: "home.example.net".into(),
            lan: "192.168.0.0/24".parse().unwrap(),
            own: vec![Ipv4Addr::new(192, 168, 0, 2)],
        };
        AppSite::new(Some(names), PathBuf::from("/nonexistent"))
    }

    fn headers(host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        headers
    }

    #[test]
    fn hosts_are_sorted_into_the_relay_its_app_names_refused_names_and_the_rest() {
        let site = site();
        let cases: &[(&str, Site)] = &[
            ("home.example.net", Site::Relay),
            ("HOME.example.net.", Site::Relay),
            ("h-192-168-0-10-p8080.home.example.net", Site::App(AppTarget::http("192.168.0.10:8080".parse().unwrap()))),
            ("h-192-168-0-10-p8080.HOME.EXAMPLE.NET", Site::App(AppTarget::http("192.168.0.10:8080".parse().unwrap()))),
            (
                "h-192-168-0-10-s8006.home.example.net",
                Site::App(AppTarget::https("192.168.0.10:8006".parse().unwrap())),
            ),
            ("h-10-0-0-1-p80.home.example.net", Site::Refused),
            ("h-192-168-0-2-p80.home.example.net", Site::Refused),
            ("h-192-168-0-010-p80.home.example.net", Site::Refused),
            ("www.home.example.net", Site::Refused),
            ("a.h-192-168-0-10-p80.home.example.net", Site::Refused),
            ("localhost", Site::Ordinary),
            ("127.0.0.1", Site::Ordinary),
            ("evilhome.example.net", Site::Ordinary),
        ];
        for (host, want) in cases {
            let (host, _) = host_of(&headers(host)).unwrap();
            assert_eq!(site.site(&host), *want, "{host}");
        }
        assert_eq!(AppSite::new(None, PathBuf::new()).site("h-192-168-0-10-p80.home.example.net"), Site::Ordinary);
    }

    #[test]
    fn hosts_with_anything_but_a_name_and_a_port_are_not_parsed() {
        for bad in ["", "a b", "[::1]:443", "host:port", "host:70000", "a/b"] {
            assert_eq!(host_of(&headers(bad)), None, "{bad}");
        }
        assert_eq!(host_of(&headers("Home.Test:8443")), Some(("home.test".into(), Some(8443))));
    }

    #[test]
    fn the_launcher_may_frame_app_origins_on_its_own_port() {
        let site = site();
        assert_eq!(
            site.frame_source(&headers("home.example.net:8443")).as_deref(),
            Some("https://*.home.example.net:8443")
        );
        assert_eq!(site.frame_source(&headers("home.example.net:443")).as_deref(), Some("https://*.home.example.net"));
        assert_eq!(site.frame_source(&headers("h-192-168-0-10-p80.home.example.net")), None);
        assert_eq!(site.frame_source(&headers("10.0.0.1:8443")), None);
    }
}
