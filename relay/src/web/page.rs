//! The page: static files from the `www` directory with security headers, or a small built-in
//! placeholder when the page is not installed.

use axum::body::Body;
use axum::http::{header, HeaderValue, Response, StatusCode, Uri};
use std::path::{Component, Path, PathBuf};

const PLACEHOLDER: &str = "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>hometun</title></head>\n<body><h1>hometun relay</h1><p>The relay is running, but its web page is not installed.\nInstall the page files into the relay's www directory (see the README).</p></body></html>\n";

/// Serves `uri` from `root`.
pub async fn serve(root: &Path, uri: &Uri) -> Response<Body> {
    let Some(relative) = safe_relative(uri.path()) else {
        return plain(StatusCode::BAD_REQUEST, "bad path");
    };
    let mut path = root.join(&relative);
    if tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_dir()) {
        path = path.join("index.html");
    }
    match tokio::fs::read(&path).await {
        Ok(bytes) => file_response(&path, bytes),
        Err(_) if relative.as_os_str().is_empty() || relative == Path::new("index.html") => {
            file_response(Path::new("index.html"), PLACEHOLDER.as_bytes().to_vec())
        }
        Err(_) => plain(StatusCode::NOT_FOUND, "not found"),
    }
}

/// The request path as a relative path of normal components only (no `..`, no root).
fn safe_relative(path: &str) -> Option<PathBuf> {
    let decoded = percent_decode(path)?;
    let mut out = PathBuf::new();
    for component in Path::new(decoded.trim_start_matches('/')).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let text = String::from_utf8(out).ok()?;
    (!text.contains('\0') && !text.contains('\\')).then_some(text)
}

fn file_response(path: &Path, bytes: Vec<u8>) -> Response<Body> {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let is_html = mime.essence_str() == "text/html";
    let csp = if is_html { content_security_policy(&bytes) } else { "default-src 'none'".to_owned() };
    let mut response = Response::new(Body::from(bytes));
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(mime.as_ref()) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    security_headers(headers);
    response
}

/// Headers every response carries.
pub fn security_headers(headers: &mut axum::http::HeaderMap) {
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
}

/// The page's CSP: its own origin only, WebAssembly allowed, and the page's inline scripts
/// (the wasm loader) allowed by hash.
fn content_security_policy(html: &[u8]) -> String {
    use base64::Engine;
    let text = String::from_utf8_lossy(html);
    let hashes: Vec<String> = inline_scripts(&text)
        .into_iter()
        .map(|script| {
            let digest = ring::digest::digest(&ring::digest::SHA256, script.as_bytes());
            format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest.as_ref()))
        })
        .collect();
    let mut script_src = "'self' 'wasm-unsafe-eval'".to_owned();
    for hash in &hashes {
        script_src.push(' ');
        script_src.push_str(hash);
    }
    format!(
        "default-src 'self'; script-src {script_src}; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )
}

/// Bodies of `<script>` elements without a `src` attribute.
fn inline_scripts(html: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<script") {
        let after = &rest[start..];
        let Some(tag_end) = after.find('>') else { break };
        let tag = &after[..tag_end];
        let body_start = tag_end + 1;
        let Some(body_len) = after[body_start..].find("</script") else { break };
        if !tag.contains(" src=") && !tag.contains(" src =") {
            found.push(&after[body_start..body_start + body_len]);
        }
        rest = &after[body_start + body_len..];
    }
    found
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    security_headers(response.headers_mut());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_never_leave_the_root() {
        let cases: &[(&str, Option<&str>)] = &[
            ("/", Some("")),
            ("/index.html", Some("index.html")),
            ("/pkg/app.wasm", Some("pkg/app.wasm")),
            ("/../etc/passwd", None),
            ("/a/%2e%2e/%2e%2e/etc/passwd", None),
            ("/%00", None),
            ("/a%5c..%5cb", None),
            ("/%zz", None),
        ];
        for (path, want) in cases {
            assert_eq!(safe_relative(path).map(|p| p.to_string_lossy().into_owned()), want.map(String::from), "{path}");
        }
    }

    #[test]
    fn inline_scripts_are_hashed_into_the_policy() {
        let html = r#"<html><script src="/a.js"></script><script type="module">import init from '/x.js';init();</script></html>"#;
        assert_eq!(inline_scripts(html), vec!["import init from '/x.js';init();"]);
        let csp = content_security_policy(html.as_bytes());
        assert!(csp.contains("'sha256-"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"));
    }

    #[tokio::test]
    async fn missing_page_gets_the_placeholder() {
        let dir = tempfile::tempdir().unwrap();
        let response = serve(dir.path(), &"/".parse().unwrap()).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::REFERRER_POLICY], "no-referrer");
        assert!(response.headers().contains_key(header::CONTENT_SECURITY_POLICY));
        let missing = serve(dir.path(), &"/nothing.js".parse().unwrap()).await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    }
}
