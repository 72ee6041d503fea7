//! Firefox (Gecko: Debian's `firefox-esr`) in a lab namespace, driven through its native
//! WebDriver BiDi endpoint ([`super::bidi`]): [`FirefoxDriver`] translates the classic WebDriver
//! commands a [`Session`] sends into BiDi, so every scenario step written for Chromium and WebKit
//! runs in Firefox unchanged. Debian has no geckodriver; BiDi needs none.
//!
//! Firefox keeps its trust anchors in its profile's NSS database: the profile (under the lab's
//! directory) trusts the lab CA's root and nothing else is added, so the browser trusts the lab's
//! certificates the way a computer trusts a public CA, with no certificate exception. It resolves
//! names through `/etc/hosts` (DNS over HTTPS off): it runs in a mount namespace of its own in
//! which the lab's hosts file is bound over the system's. The profile's `user.js` turns off every
//! connection Firefox would make by itself, so it talks only to what a scenario opens.

use std::ffi::OsStr;
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use serde_json::{json, Value};

use super::bidi::{self, Connection, ELEMENT_KEY};
use super::webdriver::{Driver, Session};
use crate::lab::{Lab, Node};

/// Firefox's BiDi port inside the lab namespace.
const PORT: u16 = 9517;
/// How long a page load or a script may take (the classic session's timeouts).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long any other command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// The host name Firefox sees (in a UTS namespace of its own), listed in the lab's hosts file:
/// Firefox looks its own host name up when it locks the profile, which would otherwise ask the
/// host's DNS server for the machine's name.
const HOSTNAME: &str = "lab-firefox";

/// Binds the lab's hosts file over the system's and the lab's default preferences over
/// Firefox's [`DEFAULT_PREFS`] (in the private mount namespace `unshare` made: the system's
/// files are untouched) and names the UTS namespace, then runs Firefox headless on the profile with BiDi on the
/// loopback port. Firefox's release builds ignore the Remote Settings server preference unless
/// `MOZ_REMOTE_SETTINGS_DEVTOOLS` is set.
const START: &str = r#"set -e
mount --bind "$1" /etc/hosts
mount --bind "$6" "$7"
echo "$5" > /proc/sys/kernel/hostname
export HOME="$2" XDG_CACHE_HOME="$2/cache" XDG_DATA_HOME="$2/data" XDG_CONFIG_HOME="$2/config"
export MOZ_CRASHREPORTER_DISABLE=1 MOZ_REMOTE_SETTINGS_DEVTOOLS=1
exec firefox-esr --headless --no-remote --profile "$3" --remote-debugging-port "$4"
"#;

/// Preferences of the lab's Firefox profile.
///
/// The browser must reach only the lab: it runs on the lab's internet side, and whatever it
/// asked of the real internet by itself (updates, telemetry, experiments, safe-browsing lists,
/// captive-portal probes, new-tab feeds, codec downloads, prefetches) would leave the test's
/// namespaces or, where there is no way out, wait on connections that never answer. So every such
/// service is off, and Remote Settings (the source of experiments, blocklists and CRLite) points
/// at a local port where nothing listens. Names resolve through the system (the lab's hosts
/// file), never over HTTPS, and no proxy from the environment applies.
const USER_JS: &str = r#"// The lab's Firefox: nothing but what a scenario opens (tests/src/browser/firefox.rs).
// Names: the system resolver (the lab's /etc/hosts), no DNS over HTTPS, no proxy.
user_pref("network.trr.mode", 5);
user_pref("network.trr.uri", "");
user_pref("network.trr.default_provider_uri", "");
user_pref("doh-rollout.disable-heuristics", true);
user_pref("network.proxy.type", 0);
// Updates of the browser, its add-ons, search engines and system add-ons.
user_pref("app.update.disabledForTesting", true);
user_pref("app.update.auto", false);
user_pref("app.update.url", "");
user_pref("extensions.update.enabled", false);
user_pref("extensions.update.autoUpdateDefault", false);
user_pref("extensions.systemAddon.update.enabled", false);
user_pref("extensions.systemAddon.update.url", "");
user_pref("extensions.getAddons.cache.enabled", false);
user_pref("extensions.getAddons.discovery.api_url", "data:,");
user_pref("extensions.blocklist.enabled", false);
user_pref("extensions.abuseReport.enabled", false);
user_pref("browser.search.update", false);
user_pref("browser.region.network.url", "");
user_pref("browser.region.update.enabled", false);
// Telemetry and data reporting.
user_pref("toolkit.telemetry.enabled", false);
user_pref("toolkit.telemetry.unified", false);
user_pref("toolkit.telemetry.archive.enabled", false);
user_pref("toolkit.telemetry.server", "data:,");
user_pref("toolkit.telemetry.newProfilePing.enabled", false);
user_pref("toolkit.telemetry.shutdownPingSender.enabled", false);
user_pref("toolkit.telemetry.firstShutdownPing.enabled", false);
user_pref("toolkit.telemetry.updatePing.enabled", false);
user_pref("toolkit.telemetry.bhrPing.enabled", false);
user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);
user_pref("datareporting.healthreport.uploadEnabled", false);
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("datareporting.usage.uploadEnabled", false);
user_pref("browser.ping-centre.telemetry", false);
user_pref("browser.newtabpage.activity-stream.telemetry", false);
user_pref("browser.newtabpage.activity-stream.feeds.telemetry", false);
// Studies and experiments (Normandy, Nimbus) and Remote Settings, which feeds them.
user_pref("app.normandy.enabled", false);
user_pref("app.normandy.api_url", "");
user_pref("app.shield.optoutstudies.enabled", false);
user_pref("messaging-system.rsexperimentloader.enabled", false);
user_pref("services.settings.server", "http://127.0.0.1:9/remote-settings-off/v1");
user_pref("security.remote_settings.crlite_filters.enabled", false);
user_pref("security.remote_settings.intermediates.enabled", false);
// Certificate revocation checks would ask a CA's responder on the internet.
user_pref("security.OCSP.enabled", 0);
user_pref("security.certerrors.mitm.priming.enabled", false);
// Captive-portal and connectivity probes.
user_pref("network.captive-portal-service.enabled", false);
user_pref("network.connectivity-service.enabled", false);
user_pref("captivedetect.canonicalURL", "");
// Safe Browsing lists.
user_pref("browser.safebrowsing.malware.enabled", false);
user_pref("browser.safebrowsing.phishing.enabled", false);
user_pref("browser.safebrowsing.blockedURIs.enabled", false);
user_pref("browser.safebrowsing.downloads.enabled", false);
user_pref("browser.safebrowsing.downloads.remote.enabled", false);
user_pref("browser.safebrowsing.provider.google4.updateURL", "");
user_pref("browser.safebrowsing.provider.google.updateURL", "");
user_pref("browser.safebrowsing.provider.mozilla.updateURL", "");
// Web Push's server connection.
user_pref("dom.push.enabled", false);
user_pref("dom.push.connection.enabled", false);
user_pref("dom.push.serverURL", "");
// Pocket, the new-tab page's feeds and sponsored tiles, suggestions, translations, ML models.
user_pref("extensions.pocket.enabled", false);
user_pref("browser.newtabpage.enabled", false);
user_pref("browser.newtab.preload", false);
user_pref("browser.newtabpage.activity-stream.feeds.topsites", false);
user_pref("browser.newtabpage.activity-stream.feeds.section.topstories", false);
user_pref("browser.newtabpage.activity-stream.feeds.system.topstories", false);
user_pref("browser.newtabpage.activity-stream.feeds.snippets", false);
user_pref("browser.newtabpage.activity-stream.discoverystream.enabled", false);
user_pref("browser.newtabpage.activity-stream.showSponsoredTopSites", false);
user_pref("browser.newtabpage.activity-stream.default.sites", "");
user_pref("browser.topsites.contile.enabled", false);
user_pref("browser.topsites.useRemoteSetting", false);
user_pref("browser.urlbar.suggest.searches", false);
user_pref("browser.urlbar.quicksuggest.enabled", false);
user_pref("browser.urlbar.merino.endpointURL", "");
user_pref("browser.translations.enable", false);
user_pref("browser.ml.enable", false);
user_pref("browser.uitour.enabled", false);
user_pref("identity.fxaccounts.enabled", false);
// Media plugin downloads (OpenH264, Widevine).
user_pref("media.gmp-manager.updateEnabled", false);
user_pref("media.gmp-manager.url", "data:,");
user_pref("media.gmp-gmpopenh264.enabled", false);
user_pref("media.gmp-gmpopenh264.autoupdate", false);
user_pref("media.gmp-widevinecdm.enabled", false);
user_pref("media.eme.enabled", false);
// Prefetching and speculative connections.
user_pref("network.dns.disablePrefetch", true);
user_pref("network.prefetch-next", false);
user_pref("network.predictor.enabled", false);
user_pref("network.predictor.enable-prefetch", false);
user_pref("network.http.speculative-parallel-limit", 0);
user_pref("browser.urlbar.speculativeConnect.enabled", false);
user_pref("browser.places.speculativeConnect.enabled", false);
// Geolocation.
user_pref("geo.enabled", false);
user_pref("geo.provider.network.url", "");
// The crash reporter.
user_pref("breakpad.reportURL", "");
user_pref("browser.tabs.crashReporting.sendReport", false);
user_pref("browser.crashReports.unsubmittedCheck.enabled", false);
// The default-browser check and first-run pages.
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("browser.startup.page", 0);
user_pref("browser.startup.homepage", "about:blank");
user_pref("browser.startup.homepage_override.mstone", "ignore");
user_pref("startup.homepage_welcome_url", "");
user_pref("startup.homepage_welcome_url.additional", "");
user_pref("browser.aboutwelcome.enabled", false);
user_pref("trailhead.firstrun.didSeeAboutWelcome", true);
user_pref("datareporting.policy.firstRunURL", "");
user_pref("termsofuse.bypassNotification", true);
// The popup blocker stays on, as in every user's Firefox (see POPUP_DEFAULTS).
user_pref("dom.disable_open_during_load", true);
"#;

/// Firefox's file of default preferences that the lab's copy replaces, in its mount namespace.
const DEFAULT_PREFS: &str = "/usr/lib/firefox-esr/defaults/pref/channel-prefs.js";

/// Added to that copy. Firefox's remote agent turns the popup blocker off for automation
/// unless the profile set `dom.disable_open_during_load` itself, and a profile value equal to
/// the default does not count as set. So in the lab the default is "off" and the profile's
/// `user.js` turns the blocker on: scenarios open tabs under the blocker a user has, and a tab
/// opened without the user's click is blocked (`a_home_web_app_opens_…` checks that it is).
const POPUP_DEFAULTS: &str = "\n// The lab (tests/src/browser/firefox.rs): user.js sets this to true.\npref(\"dom.disable_open_during_load\", false);\n";

/// A Firefox process in a lab namespace and the BiDi connection to it; the browser stops when
/// this is dropped.
pub struct FirefoxDriver {
    lab: Lab,
    pid: Option<u32>,
    state: Mutex<State>,
}

/// What the classic commands refer to that BiDi names explicitly.
struct State {
    bidi: Connection,
    session: Option<String>,
    /// The top-level browsing context (tab) commands go to.
    top: String,
    /// The browsing context scripts and clicks go to: `top`, or a frame inside it.
    frame: String,
}

impl FirefoxDriver {
    /// Starts Firefox inside `node`, trusting only `root_pem` (besides its built-in roots) and
    /// resolving `hosts`, and connects to it (at most 30 s).
    pub fn start(lab: &Lab, node: Node, root_pem: &str, hosts: &[(&str, Ipv4Addr)]) -> anyhow::Result<Self> {
        let dir = lab.dir().join("firefox");
        let profile = dir.join("profile");
        let home = dir.join("home");
        std::fs::create_dir_all(&profile)?;
        std::fs::create_dir_all(&home)?;
        std::fs::write(profile.join("user.js"), USER_JS)?;
        trust_root(lab, node, &profile, &dir, root_pem)?;
        let hosts_file = dir.join("hosts");
        super::write_hosts_file(&hosts_file, HOSTNAME, hosts)?;
        let defaults = std::fs::read_to_string(DEFAULT_PREFS)
            .with_context(|| format!("reading Firefox's default preferences {DEFAULT_PREFS}"))?;
        let defaults_file = dir.join("channel-prefs.js");
        std::fs::write(&defaults_file, defaults + POPUP_DEFAULTS)?;
        let port = PORT.to_string();
        let args = [
            hosts_file.as_os_str(),
            home.as_os_str(),
            profile.as_os_str(),
            OsStr::new(&port),
            OsStr::new(HOSTNAME),
            defaults_file.as_os_str(),
            OsStr::new(DEFAULT_PREFS),
        ];
        let pid = super::spawn_unshared(lab, node, "firefox", true, START, &args)?;
        let connected = lab
            .wait_for_log("firefox", "WebDriver BiDi listening on", Duration::from_secs(30))
            .and_then(|()| Connection::open(&lab.netns(node), PORT).context("connecting to Firefox's BiDi endpoint"));
        match connected {
            Ok(bidi) => {
                let state = State { bidi, session: None, top: String::new(), frame: String::new() };
                Ok(Self { lab: lab.clone(), pid: Some(pid), state: Mutex::new(state) })
            }
            Err(e) => {
                let _ = lab.stop(pid, Duration::from_secs(5));
                Err(e)
            }
        }
    }

    /// Opens a BiDi session on the browser's tab with a viewport of `width`×`height` CSS pixels.
    pub fn session(&self, width: u32, height: u32) -> anyhow::Result<Session<'_>> {
        let value = self.call("POST", "/session", Some(&json!({}))).context("starting a Firefox session")?;
        let session = Session::new(self, &value)?;
        session.set_window_size(width, height)?;
        Ok(session)
    }

    /// Opens `url` in a new tab as a typed address or a bookmark would (no opener, nothing in
    /// common with the other tabs) and sends further commands there; returns its handle.
    pub fn open_typed(&self, url: &str) -> anyhow::Result<String> {
        let mut state = self.state();
        let created = state.bidi.command("browsingContext.create", json!({ "type": "tab" }), COMMAND_TIMEOUT)?;
        let tab = created["context"].as_str().context("browsingContext.create gave no context")?.to_owned();
        state.top = tab.clone();
        state.frame = tab.clone();
        state.bidi.command(
            "browsingContext.navigate",
            json!({ "context": tab, "url": url, "wait": "complete" }),
            SCRIPT_TIMEOUT,
        )?;
        Ok(tab)
    }

    /// What Firefox printed so far.
    pub fn log(&self) -> String {
        self.lab.log("firefox")
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Creates the profile's NSS database and adds the lab CA's root to it as a trusted CA.
fn trust_root(lab: &Lab, node: Node, profile: &Path, dir: &Path, root_pem: &str) -> anyhow::Result<()> {
    let root = dir.join("lab-ca-root.pem");
    std::fs::write(&root, root_pem)?;
    let db = format!("sql:{}", profile.display());
    let root = root.to_str().context("a lab path that is not UTF-8")?;
    for args in [
        vec!["-d", &db, "-N", "--empty-password"],
        vec!["-d", &db, "-A", "-n", "hometun lab CA", "-t", "C,,", "-i", root],
    ] {
        let out = lab.exec(node, "certutil", &args)?;
        ensure!(out.status.success(), "certutil {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

impl Driver for FirefoxDriver {
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let mut state = self.state();
        let body = body.cloned().unwrap_or(Value::Null);
        if (method, path) == ("GET", "/status") {
            return Ok(json!({ "ready": state.bidi.is_open(), "message": "Firefox over WebDriver BiDi" }));
        }
        if (method, path) == ("POST", "/session") {
            return state.new_session();
        }
        let rest = path.strip_prefix("/session/").context("not a session command")?;
        let (id, what) = rest.split_once('/').unwrap_or((rest, ""));
        ensure!(state.session.as_deref() == Some(id), "no such session {id}");
        state.command(method, what, &body).with_context(|| format!("{method} {what} in Firefox"))
    }
}

impl State {
    fn new_session(&mut self) -> anyhow::Result<Value> {
        ensure!(self.session.is_none(), "Firefox has a session already");
        let caps = json!({ "capabilities": { "alwaysMatch": { "acceptInsecureCerts": false } } });
        let value = self.bidi.command("session.new", caps, COMMAND_TIMEOUT)?;
        let id = value["sessionId"].as_str().context("session.new gave no sessionId")?.to_owned();
        self.bidi.command("session.subscribe", json!({ "events": ["log.entryAdded"] }), COMMAND_TIMEOUT)?;
        let tabs = self.tabs()?;
        self.top = tabs.first().context("Firefox has no tab")?.clone();
        self.frame = self.top.clone();
        self.session = Some(id.clone());
        Ok(json!({ "sessionId": id, "capabilities": value["capabilities"] }))
    }

    /// One classic command `what` (the path after `/session/{id}/`, empty for the session
    /// itself) in BiDi.
    fn command(&mut self, method: &str, what: &str, body: &Value) -> anyhow::Result<Value> {
        match (method, what) {
            ("DELETE", "") => {
                self.session = None;
                self.bidi.command("session.end", json!({}), COMMAND_TIMEOUT)?;
                Ok(Value::Null)
            }
            ("POST", "url") => {
                let url = body["url"].as_str().context("no url")?;
                self.frame = self.top.clone();
                self.bidi.command(
                    "browsingContext.navigate",
                    json!({ "context": self.top, "url": url, "wait": "complete" }),
                    SCRIPT_TIMEOUT,
                )?;
                Ok(Value::Null)
            }
            ("POST", "execute/sync") => self.call_function(&sync_function(script(body)?), args(body)),
            ("POST", "execute/async") => self.call_function(&async_function(script(body)?), args(body)),
            ("POST", "element") => {
                ensure!(body["using"] == "css selector", "only CSS selectors: {body}");
                let css = body["value"].clone();
                let found = self.call_function("function (css) { return document.querySelector(css); }", &[css])?;
                ensure!(found.get(ELEMENT_KEY).is_some(), "no such element: {}", body["value"]);
                Ok(found)
            }
            ("POST", "frame") => {
                if body["id"].is_null() {
                    self.frame = self.top.clone();
                    return Ok(Value::Null);
                }
                let window = self.call_function("function (e) { return e.contentWindow; }", &[body["id"].clone()])?;
                let context = window[bidi::WINDOW_KEY].as_str().context("no such frame: the element has no window")?;
                self.frame = context.to_owned();
                Ok(Value::Null)
            }
            ("POST", "window/rect") => {
                let viewport = json!({ "width": body["width"], "height": body["height"] });
                self.bidi.command(
                    "browsingContext.setViewport",
                    json!({ "context": self.top, "viewport": viewport }),
                    COMMAND_TIMEOUT,
                )?;
                Ok(Value::Null)
            }
            ("POST", "actions") => {
                // WebDriver classic's actions are BiDi's but for an element origin's form.
                let mut actions = body["actions"].clone();
                for source in actions.as_array_mut().into_iter().flatten() {
                    for action in source["actions"].as_array_mut().into_iter().flatten() {
                        if let Some(element) = action["origin"].get(ELEMENT_KEY).and_then(Value::as_str) {
                            action["origin"] = json!({ "type": "element", "element": { "sharedId": element } });
                        }
                    }
                }
                self.bidi.command(
                    "input.performActions",
                    json!({ "context": self.frame, "actions": actions }),
                    COMMAND_TIMEOUT,
                )?;
                Ok(Value::Null)
            }
            ("DELETE", "actions") => {
                self.bidi.command("input.releaseActions", json!({ "context": self.frame }), COMMAND_TIMEOUT)?;
                Ok(Value::Null)
            }
            ("GET", "window/handles") => Ok(json!(self.tabs()?)),
            ("GET", "window") => Ok(json!(self.top)),
            ("POST", "window") => {
                let handle = body["handle"].as_str().context("no handle")?.to_owned();
                ensure!(self.tabs()?.contains(&handle), "no such window {handle}");
                self.bidi.command("browsingContext.activate", json!({ "context": handle }), COMMAND_TIMEOUT)?;
                self.top = handle.clone();
                self.frame = handle;
                Ok(Value::Null)
            }
            ("GET", "screenshot") => {
                let shot = self.bidi.command(
                    "browsingContext.captureScreenshot",
                    json!({ "context": self.top }),
                    COMMAND_TIMEOUT,
                )?;
                Ok(shot["data"].clone())
            }
            ("POST", "se/log") => Ok(Value::Array(
                self.bidi
                    .events("log.entryAdded")
                    .iter()
                    .map(|e| json!({ "level": e["level"].as_str().unwrap_or("info").to_uppercase(), "message": e["text"] }))
                    .collect(),
            )),
            _ => {
                if let Some(element) = what.strip_prefix("element/").and_then(|w| w.strip_suffix("/click")) {
                    return self.click(element);
                }
                bail!("{method} {what}: not translated to WebDriver BiDi")
            }
        }
    }

    /// The top-level browsing contexts (tabs), in Firefox's order.
    fn tabs(&mut self) -> anyhow::Result<Vec<String>> {
        let tree = self.bidi.command("browsingContext.getTree", json!({ "maxDepth": 0 }), COMMAND_TIMEOUT)?;
        let contexts = tree["contexts"].as_array().context("getTree gave no contexts")?;
        Ok(contexts.iter().filter_map(|c| c["context"].as_str().map(str::to_owned)).collect())
    }

    /// Runs `function` with `args` in the current frame, awaiting a promise it returns (at most
    /// the script timeout); returns its result as JSON, or fails with the exception it threw.
    fn call_function(&mut self, function: &str, args: &[Value]) -> anyhow::Result<Value> {
        let params = json!({
            "functionDeclaration": function,
            "arguments": args.iter().map(bidi::local_value).collect::<Vec<_>>(),
            "target": { "context": self.frame },
            "awaitPromise": true,
            "resultOwnership": "none",
        });
        // The script's own bound ends it first; this one covers a browser that never answers.
        let answer = self.bidi.command("script.callFunction", params, SCRIPT_TIMEOUT + Duration::from_secs(5))?;
        match answer["type"].as_str() {
            Some("success") => bidi::from_remote(&answer["result"]),
            Some("exception") => {
                bail!("javascript error: {}", answer["exceptionDetails"]["text"].as_str().unwrap_or("(no text)"))
            }
            _ => bail!("script.callFunction answered {answer}"),
        }
    }

    /// A user's click on `element` of the current frame: scrolled into view, then a real
    /// pointer press and release at its centre (a user gesture: a popup it opens is allowed).
    /// A press and release that made no `click` on the element (twice in 21 runs of one test: the
    /// button took the focus, its handler never ran, most likely the page moved under the
    /// pointer between the two) is done again, as a user clicks again when nothing happens.
    fn click(&mut self, element: &str) -> anyhow::Result<Value> {
        let reference = json!({ ELEMENT_KEY: element });
        self.press_and_release(element, &reference)?;
        // An element gone or a frame navigated away counts as clicked.
        let clicked = self
            .call_function("function (e) { return e.__hometunClicked !== false; }", std::slice::from_ref(&reference));
        if matches!(clicked, Ok(Value::Bool(false))) {
            eprintln!("firefox: a click on an element made no click event; clicking again");
            self.press_and_release(element, &reference)?;
        }
        Ok(Value::Null)
    }

    /// [`Self::click`]'s one press and release; marks on the element whether a `click` reached it.
    fn press_and_release(&mut self, element: &str, reference: &Value) -> anyhow::Result<()> {
        self.call_function(
            "function (e) {
               e.__hometunClicked = false;
               e.addEventListener('click', () => { e.__hometunClicked = true; }, { capture: true, once: true });
               e.scrollIntoView({ block: 'center', inline: 'center' });
             }",
            std::slice::from_ref(reference),
        )?;
        let origin = json!({ "type": "element", "element": { "sharedId": element } });
        let actions = json!([{
            "type": "pointer",
            "id": "mouse",
            "parameters": { "pointerType": "mouse" },
            "actions": [
                { "type": "pointerMove", "x": 0, "y": 0, "origin": origin },
                { "type": "pointerDown", "button": 0 },
                { "type": "pointerUp", "button": 0 },
            ],
        }]);
        self.bidi.command(
            "input.performActions",
            json!({ "context": self.frame, "actions": actions }),
            COMMAND_TIMEOUT,
        )?;
        Ok(())
    }
}

fn script(body: &Value) -> anyhow::Result<&str> {
    body["script"].as_str().context("no script")
}

fn args(body: &Value) -> &[Value] {
    body["args"].as_array().map_or(&[], Vec::as_slice)
}

/// A classic script (a function body reading `arguments`) as a function declaration.
fn sync_function(body: &str) -> String {
    format!("function () {{\n{body}\n}}")
}

/// A classic async script (a function body that ends by calling its last argument with the
/// result) as a function declaration returning a promise of that result, rejected after the
/// script timeout.
fn async_function(body: &str) -> String {
    let ms = SCRIPT_TIMEOUT.as_millis();
    format!(
        "function () {{
  const args = Array.from(arguments);
  const self = this;
  return new Promise((resolve, reject) => {{
    const timer = setTimeout(() => reject(new Error('script timeout: no result after {ms} ms')), {ms});
    args.push((value) => {{ clearTimeout(timer); resolve(value); }});
    (function () {{\n{body}\n}}).apply(self, args);
  }});
}}"
    )
}

impl Drop for FirefoxDriver {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            // The lab also ends whatever is left in its namespaces when it goes.
            let _ = self.lab.stop(pid, Duration::from_secs(5));
        }
    }
}
