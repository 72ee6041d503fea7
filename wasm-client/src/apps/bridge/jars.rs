//! One cookie jar per target, shared by every port bound to it: loaded from the tunnel
//! origin's `localStorage` on first use, saved there on every change, and broadcast to every
//! port of the app (`cookies`) whenever it changes. A LAN `Set-Cookie` never becomes a real
//! browser cookie.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddrV4;

use super::jar::Jar;
use super::port::{servers_of, PortServer};

thread_local! {
    static JARS: RefCell<HashMap<SocketAddrV4, Jar>> = RefCell::new(HashMap::new());
}

/// The `localStorage` key of `target`'s jar.
pub fn storage_key(target: SocketAddrV4) -> String {
    format!("hometun.jar.{target}")
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

fn with_jar<T>(target: SocketAddrV4, f: impl FnOnce(&mut Jar) -> T) -> T {
    JARS.with(|jars| {
        let mut jars = jars.borrow_mut();
        let jar = jars.entry(target).or_insert_with(|| {
            let saved = storage().and_then(|s| s.get_item(&storage_key(target)).ok().flatten());
            saved.as_deref().map(Jar::from_text).unwrap_or_default()
        });
        f(jar)
    })
}

/// The `Cookie` header for a request to `path`, if any cookie applies.
pub fn cookie_header(target: SocketAddrV4, path: &str) -> Option<String> {
    with_jar(target, |jar| jar.header(path))
}

/// The cookies a script at `path` sees, as `[name, value, path]`.
pub fn script_cookies(target: SocketAddrV4, path: &str) -> Vec<(String, String, String)> {
    with_jar(target, |jar| jar.script_visible(path))
}

/// Takes a response's `Set-Cookie` values into the jar.
pub fn store(target: SocketAddrV4, path: &str, set_cookies: &[String]) {
    if set_cookies.is_empty() {
        return;
    }
    let changed = with_jar(target, |jar| set_cookies.iter().fold(false, |c, v| jar.set(v, path, false) | c));
    if changed {
        changed_jar(target);
    }
}

/// A `document.cookie = ...` from the app's page (HttpOnly cookies cannot be set or replaced).
pub fn set_from_script(server: &PortServer, cookie: &str) {
    let target = server.app.target;
    if with_jar(target, |jar| jar.set(cookie, "/", true)) {
        changed_jar(target);
    }
}

fn changed_jar(target: SocketAddrV4) {
    let text = with_jar(target, |jar| jar.to_text());
    if let Some(storage) = storage() {
        let _ = storage.set_item(&storage_key(target), &text);
    }
    let cookies = with_jar(target, |jar| jar.script_visible("/"));
    for server in servers_of(target) {
        server.post_cookies(&cookies);
    }
}
