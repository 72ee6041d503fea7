//! How the built-in page's files travel: gzip-compressed to a browser that takes it, and
//! revalidated by entity tag, so a visit that finds the page unchanged moves no body at all
//! (`304 Not Modified`).
//!
//! The page's files are `Cache-Control: no-cache` (a new relay's page must never be stale), and
//! the main wasm alone is ~800 KB raw against ~325 KB gzip: without this, a phone downloaded
//! the whole page uncompressed on every visit.
//!
//! Each file is compressed once, on its first request, in a blocking task, and kept: the set of
//! files is fixed when the relay is built, so the cache is bounded by the page's own size, and
//! a stranger repeating requests costs the relay nothing more than copying bytes.

use axum::http::{header, HeaderMap, HeaderValue};
use bytes::Bytes;
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::OnceCell;

/// Files smaller than this go as they are: gzip's framing eats most of what it would save.
const MIN_SIZE: usize = 1024;

/// One file's gzip form, made by whoever asks first while the others wait for it.
type Gzipped = Arc<OnceCell<Option<Bytes>>>;

/// Whether a request's `Accept-Encoding` takes gzip: `gzip` or `*` listed without `q=0`.
pub fn accepts_gzip(request: &HeaderMap) -> bool {
    request.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .or_else(|| p.strip_prefix("Q="))
                    .is_some_and(|q| q.parse::<f32>().ok() == Some(0.0))
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        },
    )
}

/// Whether files of this MIME type shrink under gzip (text, scripts, wasm, JSON, SVG).
pub fn compressible(mime: &str) -> bool {
    mime.starts_with("text/")
        || matches!(mime, "application/wasm" | "application/javascript" | "application/json" | "image/svg+xml")
}

/// The gzip form of the built-in file `name` (`data` its bytes), made on the first call and kept;
/// `None` when the file is small or does not shrink by at least an eighth.
pub async fn gzipped(name: &str, data: Cow<'static, [u8]>) -> Option<Bytes> {
    if data.len() < MIN_SIZE {
        return None;
    }
    static CACHE: OnceLock<Mutex<HashMap<String, Gzipped>>> = OnceLock::new();
    let cell = {
        let mut cache = CACHE.get_or_init(Mutex::default).lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.entry(name.to_owned()).or_default().clone()
    };
    cell.get_or_init(|| async move { tokio::task::spawn_blocking(move || gzip(&data)).await.ok().flatten() })
        .await
        .clone()
}

/// `data` gzipped at the best ratio, if that saves at least an eighth.
fn gzip(data: &[u8]) -> Option<Bytes> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 2), flate2::Compression::best());
    encoder.write_all(data).ok()?;
    let out = encoder.finish().ok()?;
    (out.len() <= data.len() - data.len() / 8).then(|| Bytes::from(out))
}

/// The entity tag of a file with SHA-256 `hash`, as sent plain or gzipped (two representations,
/// two tags).
pub fn etag(hash: &[u8; 32], gzipped: bool) -> HeaderValue {
    let hex: String = hash[..12].iter().map(|b| format!("{b:02x}")).collect();
    let tag = if gzipped { format!("\"{hex}-gz\"") } else { format!("\"{hex}\"") };
    HeaderValue::from_str(&tag).unwrap_or_else(|_| HeaderValue::from_static("\"\""))
}

/// Whether a request's `If-None-Match` names `etag` (weak comparison, as for that header) or `*`.
pub fn not_modified(request: &HeaderMap, etag: &HeaderValue) -> bool {
    let Ok(ours) = etag.to_str() else { return false };
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == ours)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    fn request(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn gzip_is_taken_when_listed_and_not_refused() {
        for (value, takes) in [
            ("gzip, deflate, br, zstd", true),
            ("br;q=1.0, GZIP;q=0.5", true),
            ("*", true),
            ("gzip;q=0", false),
            ("br, gzip; q=0", false),
            ("identity", false),
            ("gzipped", false),
            ("", false),
        ] {
            assert_eq!(accepts_gzip(&request(header::ACCEPT_ENCODING, value)), takes, "{value:?}");
        }
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn a_matching_tag_in_any_form_means_not_modified() {
        let tag = etag(&[7; 32], false);
        assert_eq!(tag, "\"070707070707070707070707\"");
        assert_eq!(etag(&[7; 32], true), "\"070707070707070707070707-gz\"");
        for (value, matches) in [
            ("\"070707070707070707070707\"", true),
            ("W/\"070707070707070707070707\"", true),
            ("\"other\", \"070707070707070707070707\"", true),
            ("*", true),
            ("\"070707070707070707070707-gz\"", false),
            ("070707070707070707070707", false),
            ("", false),
        ] {
            assert_eq!(not_modified(&request(header::IF_NONE_MATCH, value), &tag), matches, "{value:?}");
        }
        assert!(!not_modified(&HeaderMap::new(), &tag));
    }

    #[test]
    fn text_scripts_and_wasm_are_compressed_pictures_are_not() {
        for mime in ["text/html", "text/css", "text/javascript", "application/wasm", "image/svg+xml"] {
            assert!(compressible(mime), "{mime}");
        }
        for mime in ["image/png", "font/woff2", "application/octet-stream"] {
            assert!(!compressible(mime), "{mime}");
        }
    }

    #[tokio::test]
    async fn a_file_is_gzipped_once_and_small_or_random_ones_go_as_they_are() {
        let text: &'static [u8] = b"hometun page ".repeat(1000).leak();
        let first = gzipped("test/text.js", Cow::Borrowed(text)).await.expect("text shrinks");
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&first[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, text);
        let again = gzipped("test/text.js", Cow::Borrowed(text)).await.expect("kept");
        assert_eq!(again.as_ptr(), first.as_ptr(), "the kept copy, not a new one");

        assert_eq!(gzipped("test/small.js", Cow::Borrowed(b"tiny")).await, None);
        let mut x = 1u64;
        let noise: Vec<u8> = (0..8192)
            .map(|_| {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                (x >> 56) as u8
            })
            .collect();
        assert_eq!(gzipped("test/noise.wasm", Cow::Owned(noise)).await, None);
    }
}
