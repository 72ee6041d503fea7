//! One cookie jar per target ([`crate::apps::jar::Jar`]), shared by every port bound to it:
//! loaded from the tunnel origin's `localStorage` on first use, saved there on every change,
//! and broadcast to every port of the app (`cookies`) whenever it changes. A LAN `Set-Cookie`
//! never becomes a real browser cookie.

use hometun_shared::app_name::AppTarget;
use std::cell::RefCell;
use std::collections::HashMap;

use super::port::servers_of;
use crate::apps::jar::Jar;
use crate::apps::AppError;
use crate::web::local_storage;

thread_local! {
    static JARS: RefCell<HashMap<AppTarget, Jar>> = RefCell::new(HashMap::new());
}

/// The `localStorage` key of `target`'s jar: `hometun.jar.192.168.0.10:8080`, with `https.`
/// before the address for an HTTPS app.
pub fn storage_key(target: AppTarget) -> String {
    let scheme = if target.tls { "https." } else { "" };
    format!("hometun.jar.{scheme}{}", target.addr)
}

/// Unix seconds, the jar's clock.
fn now() -> i64 {
    (js_sys::Date::now() / 1000.0) as i64
}

/// Runs `f` on `target`'s jar (loaded on first use; an unreadable saved jar starts empty) with
/// the current time.
pub fn with_jar<T>(target: AppTarget, f: impl FnOnce(&mut Jar, i64) -> T) -> T {
    JARS.with(|jars| {
        let mut jars = jars.borrow_mut();
        let jar = jars.entry(target).or_insert_with(|| {
            let saved = local_storage().and_then(|s| s.get_item(&storage_key(target)).ok().flatten());
            saved.and_then(|json| Jar::from_json(target, &json).ok()).unwrap_or_else(|| Jar::new(target))
        });
        f(jar, now())
    })
}

/// Forgets the jars held in memory: the next use reads each from storage again (this page gave
/// the tunnel to another tab, which changes the jars meanwhile).
pub fn forget_all() {
    JARS.with(|jars| jars.borrow_mut().clear());
}

/// Takes `Set-Cookie` values (of a WebSocket upgrade) into the jar.
pub fn store(target: AppTarget, path: &str, set_cookies: &[String]) {
    let changed = with_jar(target, |jar, now| {
        set_cookies.iter().fold(false, |changed, value| jar.store_set_cookie(value, path, now) | changed)
    });
    if changed {
        changed_jar(target);
    }
}

/// A `document.cookie = ...` from one of the app's pages at `document_path` (a cookie without
/// a Path gets that page's directory). Fails when the jar refuses it (an HttpOnly cookie, a
/// string that does not parse).
pub fn set_from_script(target: AppTarget, cookie: &str, document_path: &str) -> Result<(), AppError> {
    if with_jar(target, |jar, now| jar.set_from_script(cookie, document_path, now))? {
        changed_jar(target);
    }
    Ok(())
}

/// The jar's script-visible cookies of every path, as `cookies` messages carry them.
pub fn script_cookies(target: AppTarget) -> Vec<(String, String, String)> {
    with_jar(target, |jar, now| jar.script_cookies_on_every_path(now))
}

/// The jar changed: save it and tell every port of the app (the cookies of every path: each
/// page picks those of its own).
pub fn changed_jar(target: AppTarget) {
    let (json, cookies) = with_jar(target, |jar, now| (jar.to_json(now), jar.script_cookies_on_every_path(now)));
    if let Some(storage) = local_storage() {
        let _ = storage.set_item(&storage_key(target), &json);
    }
    for server in servers_of(target) {
        server.post_cookies(&cookies);
    }
}
