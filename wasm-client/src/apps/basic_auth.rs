//! HTTP Basic authentication (RFC 7617), which many router and printer admin pages ask for, and
//! the sign-in page for it and for Digest ([`super::digest_auth`]).
//!
//! A browser shows its own sign-in prompt only for a `401` that comes from the network, never for
//! one a service worker hands it, so an app origin would show the device's bare `401` page. So
//! a `401` with a `Basic` or `Digest` challenge to a page navigation is answered with hometun's
//! own sign-in page ([`sign_in_page`]) on the app's origin; its script retries the page with the
//! typed user name and password, and once the device accepts them, the bridge answers the
//! device's challenges with them on every later request to the app, as a browser does
//! (`bridge::sign_in`). They stay in the tunnel page's memory (gone when it closes, like a
//! browser session's), never in storage and never at the relay.
//!
//! Pure: finding the Basic challenge and building the page.

use super::inject::escape_attribute;

/// A realm longer than this is cut (it is only shown).
const MAX_REALM: usize = 200;

/// The realm of a `Basic` challenge in the `WWW-Authenticate` fields of `headers` (empty when
/// it names none), or `None` when no field offers `Basic`.
pub fn basic_realm(headers: &[(String, String)]) -> Option<String> {
    headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("www-authenticate"))
        .find_map(|(_, value)| basic_challenge(value))
}

/// The realm of the `Basic` challenge in one `WWW-Authenticate` value: a scheme is a token at
/// the start or after a comma, followed by a space, a comma or the end.
fn basic_challenge(value: &str) -> Option<String> {
    let lower = value.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].find("basic") {
        let at = from + found;
        let before = lower[..at].trim_end();
        let after = &value[at + 5..];
        if (before.is_empty() || before.ends_with(',')) && (after.is_empty() || after.starts_with([' ', ','])) {
            return Some(realm(after));
        }
        from = at + 5;
    }
    None
}

/// The `realm` parameter in a challenge's parameters (quoted or a token), or empty.
fn realm(params: &str) -> String {
    let lower = params.to_ascii_lowercase();
    let Some(at) = lower.find("realm=") else { return String::new() };
    let rest = &params[at + 6..];
    let mut out = String::new();
    if let Some(quoted) = rest.strip_prefix('"') {
        let mut chars = quoted.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => out.extend(chars.next()),
                c => out.push(c),
            }
        }
    } else {
        out = rest.split([',', ' ']).next().unwrap_or_default().to_owned();
    }
    out.chars().filter(|c| !c.is_control()).take(MAX_REALM).collect()
}

/// hometun's sign-in page for the app at `lan_origin` (`http://192.168.0.1`) asking for `realm`.
/// Its script sends `Authorization: Basic …` (UTF-8 user and password; the bridge turns it into
/// a Digest answer when the device asked for Digest) with a fetch of the same URL; a `401`
/// answer says the device refused them, anything else reloads the page, which the bridge then
/// fetches with the accepted credentials.
pub fn sign_in_page(lan_origin: &str, realm: &str) -> String {
    let origin = escape_attribute(lan_origin);
    let asks = if realm.is_empty() { String::new() } else { format!(" (“{}”)", escape_attribute(realm)) };
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in to {origin}</title>
<style>
body{{font:16px/1.45 system-ui,sans-serif;margin:0;display:flex;justify-content:center;padding:3rem 1rem;color-scheme:light dark}}
form{{max-width:24rem;width:100%;display:flex;flex-direction:column;gap:.7rem}}
h1{{font-size:1.2rem;margin:0}} input,button{{font:inherit;padding:.45rem .6rem}} .note{{font-size:.85rem;opacity:.75}}
#ht-sign-in-error{{color:#b3261e}}
</style></head>
<body data-hometun-sign-in="basic">
<form id="ht-sign-in">
<h1>Sign in to {origin}</h1>
<p>The device asks for a user name and password{asks}.</p>
<label>User name<br><input id="ht-user" autocomplete="username" autocapitalize="none" required></label>
<label>Password<br><input id="ht-password" type="password" autocomplete="current-password"></label>
<button id="ht-sign-in-submit">Sign in</button>
<p id="ht-sign-in-error" role="alert" hidden></p>
<p class="note">hometun sends them to the device through your tunnel (HTTP authentication) and keeps them only while your hometun page is open.</p>
</form>
<script>
document.getElementById('ht-sign-in').addEventListener('submit', async (event) => {{
  event.preventDefault();
  const error = document.getElementById('ht-sign-in-error');
  const pair = new TextEncoder().encode(document.getElementById('ht-user').value + ':' + document.getElementById('ht-password').value);
  let binary = '';
  for (const byte of pair) binary += String.fromCharCode(byte);
  try {{
    const answer = await fetch(location.href, {{ headers: {{ Authorization: 'Basic ' + btoa(binary) }}, cache: 'no-store' }});
    if (answer.status === 401) {{
      error.textContent = 'The device refused this user name and password.';
      error.hidden = false;
    }} else {{
      location.reload();
    }}
  }} catch (e) {{
    error.textContent = 'Could not reach the device: ' + e.message;
    error.hidden = false;
  }}
}});
</script>
</body></html>
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn challenge(value: &str) -> Option<String> {
        basic_realm(&[("Content-Type".into(), "text/html".into()), ("WWW-Authenticate".into(), value.into())])
    }

    #[test]
    fn the_basic_challenge_and_its_realm_are_found_among_others() {
        assert_eq!(challenge(r#"Basic realm="Router admin""#).as_deref(), Some("Router admin"));
        assert_eq!(
            challenge(r#"basic realm="a \"quoted\" realm", charset="UTF-8""#).as_deref(),
            Some(r#"a "quoted" realm"#)
        );
        assert_eq!(challenge("Basic realm=printer").as_deref(), Some("printer"));
        assert_eq!(challenge("Basic").as_deref(), Some(""));
        assert_eq!(
            challenge(r#"Digest realm="x", nonce="basic", Basic realm="fallback""#).as_deref(),
            Some("fallback")
        );
        assert_eq!(challenge(r#"Digest realm="basic area", nonce="abc""#), None, "only the Digest scheme");
        assert_eq!(challenge("Bearer realm=basic"), None);
        assert_eq!(challenge("Basicx realm=y"), None);
        assert_eq!(basic_realm(&[("Content-Type".into(), "Basic".into())]), None, "other fields do not count");
        let long = format!("Basic realm=\"{}\u{7}\"", "r".repeat(500));
        assert_eq!(challenge(&long).map(|r| r.len()), Some(MAX_REALM), "cut, control characters gone");
    }

    #[test]
    fn the_sign_in_page_names_the_device_and_escapes_the_realm() {
        let page = sign_in_page("http://192.168.0.1", r#"<script>alert("x")</script>"#);
        assert!(page.contains("Sign in to http://192.168.0.1"));
        assert!(page.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"));
        assert!(!page.contains(r#"<script>alert("x")"#));
        assert!(page.contains(r#"data-hometun-sign-in="basic""#));
    }
}
