//! A minimal cookie jar (name, value, path, HttpOnly; `Max-Age=0` or a past `Expires`-less
//! delete by `Max-Age`), kept as text for `localStorage`.

/// One stored cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cookie {
    name: String,
    value: String,
    path: String,
    http_only: bool,
}

/// Cookies of one app.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Jar {
    cookies: Vec<Cookie>,
}

/// Most cookies one jar keeps.
const MAX_COOKIES: usize = 180;

fn default_path(request_path: &str) -> String {
    let path = request_path.split('?').next().unwrap_or("/");
    match path.rfind('/') {
        Some(0) | None => "/".into(),
        Some(at) => path[..at].into(),
    }
}

fn path_matches(cookie_path: &str, request_path: &str) -> bool {
    let path = request_path.split('?').next().unwrap_or("/");
    path == cookie_path
        || (path.starts_with(cookie_path) && (cookie_path.ends_with('/') || path[cookie_path.len()..].starts_with('/')))
}

impl Jar {
    /// Takes one `Set-Cookie` (or `document.cookie`) string; `from_script` refuses to touch
    /// HttpOnly cookies. Returns whether the jar changed.
    pub fn set(&mut self, text: &str, request_path: &str, from_script: bool) -> bool {
        let mut parts = text.split(';');
        let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else { return false };
        let (name, value) = (name.trim().to_owned(), value.trim().to_owned());
        if name.is_empty() {
            return false;
        }
        let mut cookie = Cookie { name, value, path: default_path(request_path), http_only: false };
        let mut delete = false;
        for attribute in parts {
            let (key, val) = attribute.split_once('=').unwrap_or((attribute, ""));
            match key.trim().to_ascii_lowercase().as_str() {
                "path" if val.trim().starts_with('/') => cookie.path = val.trim().to_owned(),
                "httponly" => cookie.http_only = true,
                "max-age" => delete |= val.trim().parse::<i64>().is_ok_and(|s| s <= 0),
                _ => {}
            }
        }
        if from_script && cookie.http_only {
            return false;
        }
        let existing = self.cookies.iter().position(|c| c.name == cookie.name && c.path == cookie.path);
        if let Some(at) = existing {
            if from_script && self.cookies[at].http_only {
                return false;
            }
            if delete {
                self.cookies.remove(at);
                return true;
            }
            if self.cookies[at] == cookie {
                return false;
            }
            self.cookies[at] = cookie;
            return true;
        }
        if delete {
            return false;
        }
        if self.cookies.len() >= MAX_COOKIES {
            self.cookies.remove(0);
        }
        self.cookies.push(cookie);
        true
    }

    /// The `Cookie` header for `path`.
    pub fn header(&self, path: &str) -> Option<String> {
        let pairs: Vec<String> = self
            .cookies
            .iter()
            .filter(|c| path_matches(&c.path, path))
            .map(|c| format!("{}={}", c.name, c.value))
            .collect();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }

    /// Cookies a script may see at `path` (`/` for all), as `[name, value, path]`.
    pub fn script_visible(&self, path: &str) -> Vec<(String, String, String)> {
        self.cookies
            .iter()
            .filter(|c| !c.http_only && (path == "/" || path_matches(&c.path, path)))
            .map(|c| (c.name.clone(), c.value.clone(), c.path.clone()))
            .collect()
    }

    /// One line per cookie: `name\tvalue\tpath\tH` (H: HttpOnly).
    pub fn to_text(&self) -> String {
        self.cookies
            .iter()
            .map(|c| format!("{}\t{}\t{}\t{}\n", c.name, c.value, c.path, if c.http_only { "H" } else { "" }))
            .collect()
    }

    /// Reads [`Self::to_text`]'s output; lines that do not parse are skipped.
    pub fn from_text(text: &str) -> Self {
        let cookies = text
            .lines()
            .filter_map(|line| {
                let mut f = line.split('\t');
                Some(Cookie {
                    name: f.next()?.to_owned(),
                    value: f.next()?.to_owned(),
                    path: f.next()?.to_owned(),
                    http_only: f.next() == Some("H"),
                })
            })
            .take(MAX_COOKIES)
            .collect();
        Self { cookies }
    }
}
