//! Home Assistant (2025.4 from PyPI, in the venv `scripts/install.sh` makes) on
//! `192.168.0.20:8123`: its frontend is a single-page app of web components that signs in through
//! Home Assistant's own OAuth-like flow (`/auth/authorize`, `/auth/login_flow`, a code exchanged
//! at `/auth/token`, the tokens kept in the origin's `localStorage`) and then lives on one
//! WebSocket (`/api/websocket`) that pushes every state change. A switch (`input_boolean`
//! "Porch light") stands for a home's lights. Configured with only the frontend, the HTTP API and
//! that switch (no `default_config`: no update checks, no cloud, no discovery beyond the LAN;
//! analytics stays off, as onboarding leaves it); `--skip-pip`, so it installs nothing at run
//! time. Onboarded through its own onboarding API from inside the LAN, as its owner did at home.
//! State under the lab's scratch directory.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{ensure, Context};
use serde_json::{json, Value};

use super::http;
use crate::browser::webdriver::Session;
use crate::lab::{addr, Lab, Node};

/// The version `scripts/install.sh` installs.
pub const VERSION: &str = "2025.4.4";
/// Where it listens.
pub const ADDR: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(addr::HOST20), 8123);
/// The venv `scripts/install.sh` installs it into.
pub const VENV: &str = "/opt/hometun-lab/home-assistant";
/// The owner's name (made at onboarding, shown by the dashboard).
pub const OWNER: &str = "Lab Owner";
/// The owner's user name.
pub const USER: &str = "owner";
/// The owner's password.
pub const PASSWORD: &str = "lab-home-assistant-password";
/// The switch a user flips.
pub const SWITCH: &str = "input_boolean.porch_light";
/// Its name on the dashboard.
pub const SWITCH_NAME: &str = "Porch light";
/// Its log name in the lab.
pub const LOG: &str = "home-assistant";

/// A running, onboarded Home Assistant; stopped and its directory removed on drop.
pub struct HomeAssistant {
    lab: Lab,
    pid: Option<u32>,
    dir: PathBuf,
    /// The owner's access token (for checks from inside the LAN).
    token: String,
}

impl HomeAssistant {
    /// Writes its configuration, starts it on host 20, waits (at most 120 s) until it answers and
    /// onboards it (owner, location, analytics off, this client).
    pub fn start(lab: &Lab) -> anyhow::Result<Self> {
        let hass = format!("{VENV}/bin/hass");
        ensure!(
            std::path::Path::new(&hass).exists(),
            "{hass} is missing: run scripts/install.sh (Home Assistant is installed into {VENV})"
        );
        let dir = lab.dir().join(LOG);
        let config = dir.join("config");
        std::fs::create_dir_all(&config)?;
        std::fs::write(config.join("configuration.yaml"), CONFIGURATION)?;
        let pid = lab.spawn(
            Node::Host20,
            LOG,
            "env",
            [
                format!("HOME={}", dir.display()).as_str(),
                &hass,
                "--config",
                &config.display().to_string(),
                "--skip-pip",
                "--log-no-color",
            ],
        )?;
        let mut ha = Self { lab: lab.clone(), pid: Some(pid), dir, token: String::new() };
        super::wait_ready(lab, Node::Router, ADDR, "/api/onboarding", 200, LOG, Duration::from_secs(120))?;
        ha.token = ha.onboard()?;
        Ok(ha)
    }

    /// Goes through onboarding by its API (what its onboarding page does), returning the owner's
    /// access token.
    fn onboard(&self) -> anyhow::Result<String> {
        let client = format!("http://{ADDR}/");
        let user =
            json!({"client_id": client, "name": OWNER, "username": USER, "password": PASSWORD, "language": "en"});
        let made = self.call("POST", "/api/onboarding/users", None, &user)?;
        let code = made["auth_code"].as_str().with_context(|| format!("onboarding the owner gave {made}"))?;
        let form = format!("grant_type=authorization_code&code={code}&client_id={}", percent(&client));
        let answer = http::request(
            &self.lab,
            Node::Router,
            ADDR,
            "POST",
            "/auth/token",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            form.as_bytes(),
        )?;
        ensure!(answer.status == 200, "/auth/token answered {}: {}", answer.status, answer.text());
        let tokens: Value = serde_json::from_slice(&answer.body).context("/auth/token's answer")?;
        let token = tokens["access_token"].as_str().context("no access token")?.to_owned();
        self.call("POST", "/api/onboarding/core_config", Some(&token), &json!({}))?;
        self.call("POST", "/api/onboarding/analytics", Some(&token), &json!({}))?;
        let integration = json!({"client_id": client, "redirect_uri": format!("{client}?auth_callback=1")});
        self.call("POST", "/api/onboarding/integration", Some(&token), &integration)?;
        let left = self.call("GET", "/api/onboarding", None, &Value::Null)?;
        ensure!(
            left.as_array().is_some_and(|steps| steps.iter().all(|s| s["done"] == true)),
            "onboarding left steps: {left}"
        );
        Ok(token)
    }

    /// One JSON request from inside the LAN (the router's namespace), with the owner's token when
    /// given; the answer's JSON (or `null` for an empty body). Fails unless it is `200`.
    fn call(&self, method: &str, path: &str, token: Option<&str>, body: &Value) -> anyhow::Result<Value> {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(bearer) = &bearer {
            headers.push(("Authorization", bearer));
        }
        let body = if body.is_null() { Vec::new() } else { serde_json::to_vec(body)? };
        let answer = http::request(&self.lab, Node::Router, ADDR, method, path, &headers, &body)?;
        ensure!(answer.status == 200, "{method} {path} answered {}: {}", answer.status, answer.text());
        if answer.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&answer.body).with_context(|| format!("{method} {path}: {}", answer.text()))
    }

    /// The switch's state (`on` / `off`) as Home Assistant itself has it.
    pub fn switch_state(&self) -> anyhow::Result<String> {
        let state = self.call("GET", &format!("/api/states/{SWITCH}"), Some(&self.token), &Value::Null)?;
        Ok(state["state"].as_str().with_context(|| format!("no state in {state}"))?.to_owned())
    }

    /// Turns the switch `on` or `off` from inside the LAN (as a wall switch or an automation).
    pub fn set_switch(&self, on: bool) -> anyhow::Result<()> {
        let service = if on { "turn_on" } else { "turn_off" };
        self.call(
            "POST",
            &format!("/api/services/input_boolean/{service}"),
            Some(&self.token),
            &json!({"entity_id": SWITCH}),
        )?;
        Ok(())
    }

    /// Waits (at most [`CHANGE`]) until Home Assistant itself, asked inside the LAN, has the
    /// porch light in `state`.
    pub fn wait_for_light(&self, state: &str) -> anyhow::Result<()> {
        let mut last = String::new();
        crate::lab::wait_until(CHANGE, || match self.switch_state() {
            Ok(now) if now == state => Some(()),
            Ok(now) => {
                last = now;
                None
            }
            Err(e) => {
                last = format!("{e:#}");
                None
            }
        })
        .map_err(|_| anyhow::anyhow!("Home Assistant has the light {last:?}, not {state:?}, after {CHANGE:?}"))
    }
}

impl Drop for HomeAssistant {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            // `env` execs hass, so this pid is Home Assistant; it saves its state on SIGTERM.
            let _ = self.lab.stop(pid, Duration::from_secs(10));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Percent-encodes a URL for a form field.
fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Its configuration: the core settings onboarding would ask for, the frontend and its
/// dependencies, and the switch.
const CONFIGURATION: &str = "\
homeassistant:
  name: Lab home
  time_zone: UTC
  unit_system: metric
  country: JP
  currency: JPY
  language: en
  latitude: 35.68
  longitude: 139.69
  elevation: 40
frontend:
http:
  server_port: 8123
input_boolean:
  porch_light:
    name: Porch light
    icon: mdi:lightbulb
";

/// Its own address as a LAN URL (what a user would type at home).
pub fn lan_url() -> String {
    format!("http://{ADDR}/")
}

// ---- in the browser: its pages as a user sees them -------------------------------------------

/// How long its frontend (a few MB of scripts, all through the tunnel) may take to show a page.
pub const LOAD: Duration = Duration::from_secs(60);
/// How long a switch's change may take to reach the other side.
pub const CHANGE: Duration = Duration::from_secs(10);

/// Elements matching `sel` anywhere in the page, inside shadow roots too (its frontend is web
/// components); prefixed to the scripts below.
const DEEP: &str = "const deep = (sel) => { const out = []; \
     const walk = (root) => { out.push(...root.querySelectorAll(sel)); \
       for (const el of root.querySelectorAll('*')) if (el.shadowRoot) walk(el.shadowRoot); }; \
     walk(document); return out; };";

/// Waits until the sign-in page shows its two fields; the origin it is on.
pub fn see_the_sign_in_page(page: &Session<'_>) -> anyhow::Result<String> {
    let script = format!(
        "{DEEP} return location.pathname === '/auth/authorize' && \
         deep('input[name=username], input[name=password]').filter(i => !i.disabled && \
         i.getBoundingClientRect().width > 0).length === 2 ? location.origin : null"
    );
    let at = poll(page, "Home Assistant's sign-in page", &script, &[], |seen| seen.is_string())?;
    Ok(at.as_str().unwrap_or_default().to_owned())
}

/// On Home Assistant's sign-in page at `origin`: types the owner's user name and `password` into
/// its fields as keys (over what they held) and presses its button.
pub fn sign_in(page: &Session<'_>, origin: &str, password: &str) -> anyhow::Result<()> {
    let at = see_the_sign_in_page(page)?;
    ensure!(at == origin, "the sign-in page is on {at}");
    for (field, text) in [("username", USER), ("password", password)] {
        let input = page.execute(&format!("{DEEP} return deep('input[name={field}]')[0]"), &[])?;
        page.type_into(&input, text)?;
    }
    let button = page.execute(
        &format!("{DEEP} return deep('ha-button, mwc-button, button').find(b => /^log in$/i.test(b.textContent.trim())) || null"),
        &[],
    )?;
    ensure!(!button.is_null(), "no \"Log in\" button on the sign-in page");
    page.tap(&button)?;
    Ok(())
}

/// Waits until the sign-in page says that the user name or password was wrong.
pub fn see_the_password_refused(page: &Session<'_>) -> anyhow::Result<()> {
    let script = format!(
        "{DEEP} return location.pathname === '/auth/authorize' && \
         deep('ha-alert').some(a => /invalid username or password/i.test(a.textContent)) ? true : null"
    );
    poll(page, "the sign-in page to refuse the password", &script, &[], |seen| *seen == true).map(drop)
}

/// Waits (at most [`LOAD`]) until the dashboard shows the porch light's switch in `state`,
/// signed in as the owner: its row names it, its toggle is `state` and Home Assistant's
/// connection in the page is up.
pub fn see_the_switch(page: &Session<'_>, state: &str) -> anyhow::Result<()> {
    let script = format!(
        "{DEEP} const ha = document.querySelector('home-assistant'); const hass = ha && ha.hass; \
         if (!hass || !hass.connected || !hass.user) return {{connected: !!(hass && hass.connected)}}; \
         const toggle = deep('ha-entity-toggle').find(t => t.stateObj && t.stateObj.entity_id === arguments[0]); \
         const row = toggle && toggle.getRootNode().host; \
         const sw = toggle && toggle.shadowRoot && toggle.shadowRoot.querySelector('ha-switch'); \
         if (!sw || !row.shadowRoot) return {{row: !!row, toggle: !!toggle}}; \
         return {{user: hass.user.name, state: hass.states[arguments[0]].state, checked: sw.checked, \
                 named: row.shadowRoot.textContent.includes(arguments[1]) || \
                        [...row.shadowRoot.querySelectorAll('*')].some(e => e.shadowRoot && e.shadowRoot.textContent.includes(arguments[1]))}}"
    );
    let want = json!({"user": OWNER, "state": state, "checked": state == "on", "named": true});
    let what = format!("the dashboard to show the {SWITCH_NAME} {state}");
    poll(page, &what, &script, &[json!(SWITCH), json!(SWITCH_NAME)], |seen| *seen == want).map(drop)
}

/// Runs `script` with `args` on `page` every 20 ms (often, so that the bench's times of a page
/// load are precise to a few tens of ms) until `done` accepts what it returns; that value. An
/// error is a page navigating mid-call (a reload, the sign-in's redirect): not yet. Fails after
/// [`LOAD`] with the last value seen.
fn poll(
    page: &Session<'_>,
    what: &str,
    script: &str,
    args: &[Value],
    done: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let deadline = std::time::Instant::now() + LOAD;
    loop {
        let seen = page.execute(script, args).unwrap_or_else(|e| json!({ "script error": format!("{e:#}") }));
        if done(&seen) {
            return Ok(seen);
        }
        ensure!(std::time::Instant::now() < deadline, "waited {LOAD:?} for {what}; last seen {seen}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Taps the porch light's toggle on the dashboard.
pub fn flip_the_switch(page: &Session<'_>) -> anyhow::Result<()> {
    let switch = page.execute(
        &format!(
            "{DEEP} const t = deep('ha-entity-toggle').find(t => t.stateObj && t.stateObj.entity_id === arguments[0]); \
             return (t && t.shadowRoot && t.shadowRoot.querySelector('ha-switch')) || null"
        ),
        &[json!(SWITCH)],
    )?;
    ensure!(!switch.is_null(), "no toggle for {} on the dashboard", SWITCH);
    page.tap(&switch)
}
