//! The bytes the LAN hosts serve, known in advance so a client can check every byte it got.
//!
//! `GET /blob/<size>` on a lab host answers with `size` bytes of [`blob_bytes`]: a splitmix64
//! stream seeded by the size, so two sizes never share a prefix by accident and any byte range
//! can be recomputed without the rest. `GET /drip/<seconds>/blob/<size>` answers with the same
//! bytes, spread evenly over that many seconds (a download that outlasts a browser's limits).
//! `GET /` answers with [`index_page`]; `GET /go.html` with [`GO_PAGE`], and `/went` with
//! [`went_page`].

/// Largest blob a lab host serves (64 MiB): bounds what one request can make it send.
pub const MAX_BLOB: u64 = 64 << 20;

/// The path that serves `size` bytes of known content.
pub fn blob_path(size: u64) -> String {
    format!("/blob/{size}")
}

/// Parses a [`blob_path`]; `None` for any other path or a size above [`MAX_BLOB`].
pub fn parse_blob_path(path: &str) -> Option<u64> {
    let size: u64 = path.strip_prefix("/blob/")?.parse().ok()?;
    (size <= MAX_BLOB).then_some(size)
}

/// Longest a lab host spreads a [`drip_path`] answer over (a quarter of an hour).
pub const MAX_DRIP_SECS: u64 = 900;

/// The path that serves the blob of `size` bytes spread over `secs` seconds.
pub fn drip_path(secs: u64, size: u64) -> String {
    format!("/drip/{secs}{}", blob_path(size))
}

/// Parses a [`drip_path`] into (seconds, size); `None` for any other path or out of bounds.
pub fn parse_drip_path(path: &str) -> Option<(u64, u64)> {
    let (secs, blob) = path.strip_prefix("/drip/")?.split_once('/')?;
    let secs: u64 = secs.parse().ok()?;
    let size = parse_blob_path(&format!("/{blob}"))?;
    (1..=MAX_DRIP_SECS).contains(&secs).then_some((secs, size))
}

/// Fills `out` with the bytes of the blob of `size` bytes starting at `offset`.
pub fn blob_bytes(size: u64, offset: u64, out: &mut [u8]) {
    for (i, byte) in out.iter_mut().enumerate() {
        let pos = offset + i as u64;
        let word = splitmix64(size ^ (pos / 8).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        *byte = word.to_le_bytes()[(pos % 8) as usize];
    }
}

/// The first offset where `got` (the blob bytes from `offset` on) differs from the expected content.
pub fn first_mismatch(size: u64, offset: u64, got: &[u8]) -> Option<u64> {
    let mut expected = vec![0u8; got.len()];
    blob_bytes(size, offset, &mut expected);
    got.iter().zip(&expected).position(|(a, b)| a != b).map(|i| offset + i as u64)
}

/// Whether `got` is the whole blob of `size` bytes: its length, then every byte; else what differs.
pub fn whole_blob(size: u64, got: &[u8]) -> Result<(), String> {
    if got.len() as u64 != size {
        return Err(format!("{} bytes of the {size}", got.len()));
    }
    first_mismatch(size, 0, got).map_or(Ok(()), |at| Err(format!("byte {at} of {size} differs")))
}

/// The HTML page a lab host serves at `/`, naming the host so a screenshot shows which one answered.
pub fn index_page(host_name: &str) -> String {
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{host_name}</title></head>\n\
         <body><h1>Hello from {host_name}</h1><p>hometun lab LAN host.</p></body></html>\n"
    )
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A page that, as it loads, writes the cookie `n<n>` and at once goes to `/went` the way its
/// query's `by` says (`?by=WAY&n=N`), asking for what [`went_request`] says: `link` (a link it
/// clicks), `href` (`location.href`), `replace` (`location.replace`), `submit` (a form it posts
/// with `form.submit()`), `button` (a form whose `submit` handler writes the cookie as its button
/// `go=yes` sends it, by GET; just after, the page clears the field `keep` and relabels the
/// button, as pages that disable a form once it is sent do) or `post-button` (the same posted).
pub const GO_PAGE: &str = r#"<!doctype html><html><head><title>go</title></head><body><script>
const q = new URLSearchParams(location.search);
const i = q.get('n');
const write = () => { document.cookie = `n${i}=1; path=/`; };
const form = (method, fields, action = '/went') => {
  const f = document.createElement('form');
  f.method = method;
  f.action = action;
  for (const [name, value] of fields) {
    const field = document.createElement('input');
    field.type = 'hidden';
    field.name = name;
    field.value = value;
    f.append(field);
  }
  document.body.append(f);
  return f;
};
const ways = {
  link() { write(); const a = document.createElement('a'); a.href = `/went?by=link&n=${i}`; document.body.append(a); a.click(); },
  href() { write(); location.href = `/went?by=href&n=${i}`; },
  replace() { write(); location.replace(`/went?by=replace&n=${i}`); },
  submit() { write(); form('post', [['a', '1']], `/went?by=submit&n=${i}`).submit(); },
  button() { byButton(form('get', [['by', 'button'], ['n', i], ['keep', '1']])); },
  'post-button'() { byButton(form('post', [['a', '1']], `/went?by=post-button&n=${i}`)); },
};
function byButton(f) {
  const b = document.createElement('button');
  b.name = 'go';
  b.value = 'yes';
  f.append(b);
  f.addEventListener('submit', () => {
    write();
    setTimeout(() => {
      for (const field of f.querySelectorAll('[name=keep]')) field.value = '';
      b.value = 'sending';
    }, 0);
  });
  f.requestSubmit(b);
}
ways[q.get('by')]();
</script></body></html>
"#;

/// The method and query of the request [`GO_PAGE`] makes for `?by=WAY&n=N`.
pub fn went_request(by: &str, n: usize) -> (&'static str, String) {
    match by {
        "submit" | "post-button" => ("POST", format!("by={by}&n={n}")),
        "button" => ("GET", format!("by={by}&n={n}&keep=1&go=yes")),
        _ => ("GET", format!("by={by}&n={n}")),
    }
}

/// What `/went` shows: the request's method, query and `Cookie` header, as
/// `<pre id=c>METHOD ?QUERY cookie=[COOKIE]</pre>` under the title `went`.
pub fn went_page(method: &str, query: &str, cookie: &str) -> String {
    let text = format!("{method} ?{query} cookie=[{cookie}]").replace('&', "&amp;").replace('<', "&lt;");
    format!("<!doctype html><title>went</title><pre id=c>{text}</pre>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_range_matches_the_whole() {
        let mut whole = vec![0u8; 1000];
        blob_bytes(1000, 0, &mut whole);
        let mut part = vec![0u8; 77];
        blob_bytes(1000, 333, &mut part);
        assert_eq!(&whole[333..410], &part[..]);
        assert_eq!(first_mismatch(1000, 333, &part), None);
        part[5] ^= 1;
        assert_eq!(first_mismatch(1000, 333, &part), Some(338));
    }

    #[test]
    fn sizes_give_different_streams() {
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        blob_bytes(1 << 20, 0, &mut a);
        blob_bytes(2 << 20, 0, &mut b);
        assert_ne!(a, b);
    }

    #[test]
    fn blob_paths_round_trip_and_are_bounded() {
        assert_eq!(parse_blob_path(&blob_path(4096)), Some(4096));
        assert_eq!(parse_blob_path("/blob/x"), None);
        assert_eq!(parse_blob_path(&blob_path(MAX_BLOB + 1)), None);
        assert_eq!(parse_blob_path("/etc/passwd"), None);
    }

    #[test]
    fn drip_paths_round_trip_and_are_bounded() {
        assert_eq!(parse_drip_path(&drip_path(360, 4096)), Some((360, 4096)));
        assert_eq!(parse_drip_path(&blob_path(4096)), None);
        assert_eq!(parse_drip_path(&drip_path(0, 4096)), None);
        assert_eq!(parse_drip_path(&drip_path(MAX_DRIP_SECS + 1, 4096)), None);
        assert_eq!(parse_drip_path(&drip_path(10, MAX_BLOB + 1)), None);
        assert_eq!(parse_drip_path("/drip/10/etc/passwd"), None);
    }
}
