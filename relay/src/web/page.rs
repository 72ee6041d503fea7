//! The page: built into the binary at compile time (`www/dist`, made by
//! `scripts/build-page.sh`, embedded with rust-embed), or served from a directory that overrides
//! it (`--www DIR` / `www` in relay.toml, used only while it holds an `index.html`), with
//! security headers. A relay built without the page still runs and says so on `/`. Either way a
//! file goes compressed (brotli, else gzip) when the browser takes it and tagged for
//! revalidation ([`super::encoding`]).

use super::encoding::{self, Coding};
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Response, StatusCode, Uri};
use std::borrow::Cow;
use std::path::{Component, Path, PathBuf};

/// The page's built files, embedded at compile time. A build without `www/dist` embeds nothing
/// (`allow_missing`); `build.rs` makes cargo rebuild the relay when the page changes.
#[derive(rust_embed::Embed)]
#[folder = "../www/dist"]
#[allow_missing = true]
struct Built;

/// What `/` shows when this binary was built without its page.
const NOT_BUILT: &str = "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>hometun</title></head>\n<body><h1>hometun relay</h1><p>The relay is running, but this relay was built without its page.\nOn the machine that builds it, run <code>bash scripts/build-page.sh</code>, then rebuild the relay\n(<code>cargo build --release -p hometun-relay</code>), or run <code>sudo bash scripts/relay.sh serve</code>, which does both.</p></body></html>\n";

/// Whether this binary carries the page.
pub fn is_built_in() -> bool {
    Built::get("index.html").is_some()
}

/// Where the page comes from with `www` as the override directory, in words for the start-up
/// messages. Logs a warning when there is no page at all.
pub fn describe(www: &Path) -> String {
    if www.join("index.html").is_file() {
        format!("from {} (overrides the page built into the relay)", www.display())
    } else if is_built_in() {
        format!("built into the relay ({} files)", Built::iter().count())
    } else {
        tracing::warn!("this relay was built without its page: run scripts/build-page.sh, then rebuild the relay");
        "MISSING: this relay was built without its page (run scripts/build-page.sh, then rebuild)".to_owned()
    }
}

/// Serves `uri` (asked with the headers `request`): from `www` when it holds an `index.html`,
/// else from the built-in page. `frames` is a CSP source the page may frame besides itself (the
/// app origins, `https://*.DOMAIN[:port]`), if any.
pub async fn serve(www: &Path, uri: &Uri, request: &HeaderMap, frames: Option<&str>) -> Response<Body> {
    let Some(relative) = safe_relative(uri.path()) else {
        return plain(StatusCode::BAD_REQUEST, "bad path");
    };
    let mut response = if overridden(www).await {
        serve_dir(www, &relative, request).await
    } else {
        serve_built_in(&relative, request)
    };
    if let Some(frames) = frames {
        allow_frames(&mut response, frames);
    }
    response
}

/// The bytes of the page's file `name` (a relative path such as `app/sw.js`), from the same
/// place [`serve`] takes them; `None` when there is no such file.
pub async fn read(www: &Path, name: &str) -> Option<Cow<'static, [u8]>> {
    let relative = safe_relative(name)?;
    if overridden(www).await {
        tokio::fs::read(www.join(relative)).await.ok().map(Cow::Owned)
    } else {
        Built::get(&relative.iter().filter_map(|p| p.to_str()).collect::<Vec<_>>().join("/")).map(|file| file.data)
    }
}

/// Whether `www` overrides the built-in page (it holds an `index.html`).
async fn overridden(www: &Path) -> bool {
    tokio::fs::metadata(www.join("index.html")).await.is_ok_and(|m| m.is_file())
}

/// Adds `frame-src 'self' <frames>` to an HTML page's policy.
fn allow_frames(response: &mut Response<Body>, frames: &str) {
    let headers = response.headers_mut();
    let Some(csp) = headers.get(header::CONTENT_SECURITY_POLICY).and_then(|v| v.to_str().ok()) else { return };
    if !csp.contains("frame-ancestors") || csp.contains("frame-src") {
        return;
    }
    if let Ok(value) = HeaderValue::from_str(&format!("{csp}; frame-src 'self' {frames}")) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
}

async fn serve_dir(root: &Path, relative: &Path, request: &HeaderMap) -> Response<Body> {
    let mut path = root.join(relative);
    if tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_dir()) {
        path = path.join("index.html");
    }
    let Ok(bytes) = tokio::fs::read(&path).await else {
        return plain(StatusCode::NOT_FOUND, "not found");
    };
    let mut compressed = None;
    for coding in encoding::accepted(request) {
        if let Some(form) = fresh_form_beside(&path, coding).await {
            compressed = Some((coding, Cow::Owned(form)));
            break;
        }
    }
    let hash = ring::digest::digest(&ring::digest::SHA256, &bytes);
    let hash: [u8; 32] = hash.as_ref().try_into().unwrap_or([0; 32]);
    negotiated(&path, Cow::Owned(bytes), &hash, compressed, request)
}

/// The bytes of `path`'s form in `coding` (`PATH.br`, `PATH.gz`) when it exists and is not older
/// than `path` itself (a file edited after its compressed form was made goes plain rather than
/// stale).
async fn fresh_form_beside(path: &Path, coding: Coding) -> Option<Vec<u8>> {
    let form = PathBuf::from(coding.file_name(path.to_str()?));
    let modified = |p: std::fs::Metadata| p.modified().ok();
    let plain = tokio::fs::metadata(path).await.ok().and_then(modified)?;
    let compressed = tokio::fs::metadata(&form).await.ok().and_then(modified)?;
    if compressed < plain {
        return None;
    }
    tokio::fs::read(&form).await.ok()
}

fn serve_built_in(relative: &Path, request: &HeaderMap) -> Response<Body> {
    let parts: Vec<&str> = relative.iter().filter_map(|p| p.to_str()).collect();
    let key = parts.join("/");
    let index = if key.is_empty() { "index.html".to_owned() } else { format!("{key}/index.html") };
    for name in [key.as_str(), index.as_str()] {
        if let Some(file) = Built::get(name).filter(|_| !name.is_empty()) {
            let compressed = encoding::accepted(request)
                .find_map(|coding| Built::get(&coding.file_name(name)).map(|form| (coding, form.data)));
            return negotiated(Path::new(name), file.data, &file.metadata.sha256_hash(), compressed, request);
        }
    }
    if index == "index.html" && !is_built_in() {
        let mut response = file_response(Path::new("index.html"), Cow::Borrowed(NOT_BUILT.as_bytes()));
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        return response;
    }
    plain(StatusCode::NOT_FOUND, "not found")
}

/// The file at `path` (content `raw`, SHA-256 `hash`), or its `compressed` form chosen for this
/// request, with its entity tag; `304 Not Modified` with no body when the browser already holds
/// that representation.
fn negotiated(
    path: &Path,
    raw: Cow<'static, [u8]>,
    hash: &[u8; 32],
    compressed: Option<(Coding, Cow<'static, [u8]>)>,
    request: &HeaderMap,
) -> Response<Body> {
    let etag = encoding::etag(hash, compressed.as_ref().map(|(coding, _)| *coding));
    let not_modified = encoding::not_modified(request, &etag);
    let mut response = file_response(path, raw);
    let headers = response.headers_mut();
    headers.insert(header::ETAG, etag);
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if not_modified {
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        *response.body_mut() = Body::empty();
    } else if let Some((coding, form)) = compressed {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding.name()));
        *response.body_mut() = Body::from(form);
    }
    response
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

fn file_response(path: &Path, bytes: Cow<'static, [u8]>) -> Response<Body> {
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

/// Headers every response carries (app names drop `X-Frame-Options`: the launcher frames them).
pub fn security_headers(headers: &mut HeaderMap) {
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

/// A plain-text answer with the security headers.
pub fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
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

    fn header_of(response: &Response<Body>, name: header::HeaderName) -> &str {
        response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    async fn body_of(response: Response<Body>) -> Vec<u8> {
        axum::body::to_bytes(response.into_body(), 16 << 20).await.unwrap().to_vec()
    }

    #[tokio::test]
    async fn a_directory_with_an_index_overrides_the_built_in_page() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "<!doctype html><title>override</title>").unwrap();
        std::fs::create_dir(dir.path().join("js")).unwrap();
        std::fs::write(dir.path().join("js/app.js"), "export {};").unwrap();
        let page = serve(dir.path(), &"/".parse().unwrap(), &HeaderMap::new(), None).await;
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(header_of(&page, header::CONTENT_TYPE), "text/html");
        assert!(header_of(&page, header::CONTENT_SECURITY_POLICY).contains("frame-ancestors 'none'"));
        assert_eq!(header_of(&page, header::REFERRER_POLICY), "no-referrer");
        assert_eq!(body_of(page).await, b"<!doctype html><title>override</title>");
        let script = serve(dir.path(), &"/js/app.js".parse().unwrap(), &HeaderMap::new(), None).await;
        assert_eq!(header_of(&script, header::CONTENT_TYPE), "text/javascript");
        assert_eq!(header_of(&script, header::CONTENT_SECURITY_POLICY), "default-src 'none'");
        let missing = serve(dir.path(), &"/nothing.js".parse().unwrap(), &HeaderMap::new(), None).await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        assert!(describe(dir.path()).contains("overrides"));
    }

    #[tokio::test]
    async fn the_launcher_may_frame_app_origins_and_their_files_are_read_from_the_same_place() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "<!doctype html><title>launcher</title>").unwrap();
        std::fs::create_dir(dir.path().join("app")).unwrap();
        std::fs::write(dir.path().join("app/sw.js"), "// worker").unwrap();
        let page = serve(dir.path(), &"/".parse().unwrap(), &HeaderMap::new(), Some("https://*.home.test:8443")).await;
        let csp = header_of(&page, header::CONTENT_SECURITY_POLICY);
        assert!(csp.ends_with("; frame-src 'self' https://*.home.test:8443"), "{csp}");
        let script =
            serve(dir.path(), &"/app/sw.js".parse().unwrap(), &HeaderMap::new(), Some("https://*.home.test")).await;
        assert_eq!(header_of(&script, header::CONTENT_SECURITY_POLICY), "default-src 'none'");
        assert_eq!(read(dir.path(), "app/sw.js").await.as_deref(), Some(&b"// worker"[..]));
        assert_eq!(read(dir.path(), "app/../../etc/passwd").await, None);
        assert_eq!(read(dir.path(), "app/none.js").await, None);
    }

    #[tokio::test]
    async fn without_an_override_the_built_in_page_is_served_or_its_absence_explained() {
        let empty = tempfile::tempdir().unwrap();
        let page = serve(empty.path(), &"/".parse().unwrap(), &HeaderMap::new(), None).await;
        assert!(page.headers().contains_key(header::CONTENT_SECURITY_POLICY));
        assert_eq!(header_of(&page, header::X_FRAME_OPTIONS), "DENY");
        let missing = serve(empty.path(), &"/nothing.js".parse().unwrap(), &HeaderMap::new(), None).await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        match Built::get("index.html") {
            Some(index) => {
                assert_eq!(page.status(), StatusCode::OK);
                assert_eq!(header_of(&page, header::CONTENT_TYPE), "text/html");
                assert_eq!(body_of(page).await, index.data.as_ref());
                assert!(describe(empty.path()).starts_with("built into the relay"));
                for name in Built::iter() {
                    let response =
                        serve(empty.path(), &format!("/{name}").parse().unwrap(), &HeaderMap::new(), None).await;
                    assert_eq!(response.status(), StatusCode::OK, "{name}");
                    let want = mime_guess::from_path(name.as_ref()).first_or_octet_stream();
                    assert_eq!(header_of(&response, header::CONTENT_TYPE), want.as_ref(), "{name}");
                    assert!(response.headers().get(header::CONTENT_ENCODING).is_none(), "{name}: gzip unasked");
                }
            }
            None => {
                assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
                let text = String::from_utf8(body_of(page).await).unwrap();
                assert!(text.contains("built without its page") && text.contains("scripts/build-page.sh"), "{text}");
                assert!(describe(empty.path()).starts_with("MISSING"));
            }
        }
    }

    fn browser(if_none_match: Option<&HeaderValue>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip, deflate, br, zstd"));
        if let Some(tag) = if_none_match {
            headers.insert(header::IF_NONE_MATCH, tag.clone());
        }
        headers
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Read as _;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
        out
    }

    fn unbrotli(bytes: &[u8]) -> Vec<u8> {
        use std::io::Read as _;
        let mut out = Vec::new();
        brotli_decompressor::Decompressor::new(bytes, 4096).read_to_end(&mut out).unwrap();
        out
    }

    fn taking(coding: &'static str, if_none_match: Option<&HeaderValue>) -> HeaderMap {
        let mut headers = browser(if_none_match);
        headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(coding));
        headers
    }

    #[tokio::test]
    async fn the_built_in_wasm_goes_compressed_to_a_browser_and_not_again_when_unchanged() {
        let Some(name) = Built::iter().find(|n| n.ends_with(".wasm")) else {
            eprintln!("the relay was built without its page: nothing to check");
            return;
        };
        let empty = tempfile::tempdir().unwrap();
        let uri: Uri = format!("/{name}").parse().unwrap();
        let original = Built::get(&name).unwrap().data;

        // A browser takes brotli: the smallest form.
        let first = serve(empty.path(), &uri, &browser(None), None).await;
        assert_eq!(first.status(), StatusCode::OK);
        assert_eq!(header_of(&first, header::CONTENT_ENCODING), "br");
        assert_eq!(header_of(&first, header::CONTENT_TYPE), "application/wasm");
        assert_eq!(header_of(&first, header::VARY), "accept-encoding");
        let etag = first.headers().get(header::ETAG).cloned().expect("an entity tag");
        assert!(etag.to_str().unwrap().starts_with("W/\""), "{etag:?}");
        let sent = body_of(first).await;
        assert_eq!(unbrotli(&sent), original.as_ref(), "the same bytes, decompressed");
        assert!(sent.len() < original.len() / 2, "{} bytes sent for {}", sent.len(), original.len());

        // A reload: the browser asks with the tag it holds and gets no body.
        let again = serve(empty.path(), &uri, &browser(Some(&etag)), None).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(header_of(&again, header::ETAG), etag.to_str().unwrap());
        assert!(body_of(again).await.is_empty());

        // A client that takes only gzip holds another representation: the gzip form, another
        // tag, a fifth larger or so.
        let zipped = serve(empty.path(), &uri, &taking("gzip", Some(&etag)), None).await;
        assert_eq!(zipped.status(), StatusCode::OK);
        assert_eq!(header_of(&zipped, header::CONTENT_ENCODING), "gzip");
        assert_ne!(zipped.headers().get(header::ETAG), Some(&etag));
        let gz = body_of(zipped).await;
        assert_eq!(gunzip(&gz), original.as_ref());
        assert!(sent.len() < gz.len(), "brotli {} bytes, gzip {}", sent.len(), gz.len());

        // A client without either: the plain bytes, another tag again.
        let mut plain_client = HeaderMap::new();
        plain_client.insert(header::IF_NONE_MATCH, etag);
        let plain = serve(empty.path(), &uri, &plain_client, None).await;
        assert_eq!(plain.status(), StatusCode::OK);
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(body_of(plain).await, original.as_ref());
    }

    #[tokio::test]
    async fn an_override_directory_s_compressed_forms_go_out_only_while_fresh() {
        use std::io::Write as _;
        let dir = tempfile::tempdir().unwrap();
        let script = "export const greeting = 'hello from the override';\n".repeat(64);
        std::fs::write(dir.path().join("index.html"), "<!doctype html><title>override</title>").unwrap();
        std::fs::write(dir.path().join("app.js"), &script).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(script.as_bytes()).unwrap();
        std::fs::write(dir.path().join("app.js.gz"), gz.finish().unwrap()).unwrap();
        let uri: Uri = "/app.js".parse().unwrap();

        // Only a gzip form beside it: a browser that also takes brotli gets that.
        let zipped = serve(dir.path(), &uri, &browser(None), None).await;
        assert_eq!(header_of(&zipped, header::CONTENT_ENCODING), "gzip");
        let etag = zipped.headers().get(header::ETAG).cloned().expect("an entity tag");
        assert_eq!(gunzip(&body_of(zipped).await), script.as_bytes());
        let unchanged = serve(dir.path(), &uri, &browser(Some(&etag)), None).await;
        assert_eq!(unchanged.status(), StatusCode::NOT_MODIFIED);
        // A brotli form made too: it goes first to a browser that takes it, and only there.
        std::fs::write(dir.path().join("app.js.br"), b"the brotli form").unwrap();
        let smaller = serve(dir.path(), &uri, &browser(Some(&etag)), None).await;
        assert_eq!((smaller.status(), header_of(&smaller, header::CONTENT_ENCODING)), (StatusCode::OK, "br"));
        assert_eq!(body_of(smaller).await, b"the brotli form");
        let gzip_only = serve(dir.path(), &uri, &taking("gzip", Some(&etag)), None).await;
        assert_eq!(gzip_only.status(), StatusCode::NOT_MODIFIED);

        // The file is edited after its compressed forms were made: the new text goes plain, and
        // the browser's old tag no longer matches.
        let edited = "export const greeting = 'edited';\n";
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(dir.path().join("app.js"), edited).unwrap();
        let fresh = serve(dir.path(), &uri, &browser(Some(&etag)), None).await;
        assert_eq!(fresh.status(), StatusCode::OK);
        assert!(fresh.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(body_of(fresh).await, edited.as_bytes());
    }
}
