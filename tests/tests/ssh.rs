//! SSH in the page: the real page (with its lazily loaded SSH module and xterm.js) in headless
//! Chromium on the internet side, a real OpenSSH server on LAN host 192.168.0.10 (port 2222,
//! `src/apps/sshd.rs`), everything through the tunnel.
//!
//! One browser walks through what a person does: log in with a password and read a command's output
//! (UTF-8 both ways); the session goes on when the page's clock steps back an hour; the server sees
//! a resized terminal (`stty size`); log in with the key the page made, once its public line is in
//! `authorized_keys`; open the Terminal card and type into xterm.js with real key events, and from
//! a phone with the row of keys its keyboard lacks (Esc, Tab, arrows, Ctrl, Alt); a server
//! that dies mid-session (its session processes killed) is reported as a dropped connection, to the
//! API's `onClose` and in the card, within seconds; a reinstalled server (new host key) is refused
//! with both fingerprints named, and accepted after the old key is forgotten; a device whose allow
//! list lacks the SSH port gets a clear error at once. A pin names the port given (22222, not 22);
//! a port, `cols` or `rows` that is not a whole number in range is refused; bad input in the card
//! leaves its open session alone; `connectTcp` refuses what is not a port; a server that hangs
//! while the page closes its session has the connection reset after a short grace. The card's
//! Disconnect cancels a connection still being made, and a new connection replaces one still being
//! made; a server that greets and then says nothing is given up on after the login's time limit.
//!
//! Needs the page built (`bash scripts/build-page.sh`).

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use hometun_tests::apps::sshd::{self, Sshd};
use hometun_tests::browser::apps_page::{describe, screenshot, wait};
use hometun_tests::browser::{self, remote, webdriver::Chromedriver, webdriver::Session};
use hometun_tests::lab::{addr, wait_until, Lab, Node};
use hometun_tests::relay::{Relay, RelayOptions};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);
/// How soon a dead connection must be reported.
const DROP_WAIT: Duration = Duration::from_secs(5);
/// How soon a connection the page gave up must be gone at the LAN host (the page's grace for a
/// server's own close is 2 s).
const RESET_WAIT: Duration = Duration::from_secs(5);
/// The lab hosts' port 22: a stand-in that sends an SSH banner, then reads and says nothing.
const SILENT_PORT: u16 = 22;
/// `ss`'s filter for connections to the silent port.
const SILENT: &str = "sport = :22";
/// Steps the page's wall clock (`new Date()`, `Date.now()`) back by an hour until
/// `globalThis.Date = window.__realDate`.
const CLOCK_AN_HOUR_BACK: &str = "const Real = window.__realDate = Date;
    globalThis.Date = class extends Real {
      constructor(...args) { if (args.length) super(...args); else super(Real.now() - 3600000); }
      static now() { return Real.now() - 3600000; }
    };";

#[test]
fn ssh_in_the_page_logs_in_by_password_and_key_pins_the_host_key_and_respects_the_acl() {
    let started = Instant::now();
    let dist = browser::page_dist();
    assert!(
        dist.join("ssh/hometun_ssh_bg.wasm").exists(),
        "the page is not built with SSH: run `bash scripts/build-page.sh`"
    );
    let lab = Lab::start().expect("lab");
    let mut sshd = Sshd::start(&lab, Node::Host10, addr::HOST10).expect("sshd on the LAN host");
    let relay = Relay::start(&lab, RelayOptions { www: Some(dist), ..RelayOptions::default() }).expect("relay");
    let link = relay.invite("ssh-test", "1h", None).expect("invite").to_link();
    let narrow = relay.invite("ssh-narrow", "1h", Some("192.168.0.10/32:80")).expect("narrow invite").to_link();
    let spki = browser::relay_spki(relay.dir()).expect("relay certificate pin");
    let driver = Chromedriver::start(&lab, Node::Wan).expect("chromedriver");
    eprintln!("lab, sshd, relay and chromedriver up after {:.1?}", started.elapsed());

    let page = driver.session(&browser::chromium_args(&spki), 1200, 900).expect("Chromium");
    if let Err(e) = scenario(&page, &lab, &mut sshd, &link, &narrow) {
        let shot = screenshot(&page, "ssh-failed");
        panic!("{e:#}\nscreenshot: {shot:?}\n{}\nsshd log:\n{}", describe(&page), sshd.log());
    }
    eprintln!("ssh test passed in {:.1?}", started.elapsed());
}

fn scenario(page: &Session<'_>, lab: &Lab, sshd: &mut Sshd, link: &str, narrow: &str) -> anyhow::Result<()> {
    connect(page, link)?;
    let host = addr::HOST10.to_string();
    let first_key = sshd.host_key_fingerprint()?;
    connect_tcp_refuses_what_is_not_a_port(page, &host)?;

    // Password login through the API; a command's output comes back through onData.
    let opened = remote::ssh_open(
        page,
        json!({"host": host, "port": sshd::PORT, "user": sshd::USER,
        "password": sshd::PASSWORD, "trustNewHostKey": true, "cols": 100, "rows": 30}),
    )?;
    ensure!(opened == format!("ok {first_key}"), "password login: {opened} (server key {first_key})");
    remote::ssh_type_and_wait(page, "echo hometun-$((6*7))\n", "hometun-42")?;
    // UTF-8 both ways: the typed text comes back intact, and the server got its 11 bytes.
    remote::ssh_type_and_wait(page, "w='grüße ✓'; echo \"$w $(printf %s \"$w\" | wc -c)\"\n", "grüße ✓ 11")?;
    eprintln!("ssh: password login ran a command");

    // The device's clock steps back an hour (an NTP correction, waking from sleep): the shell
    // keeps answering.
    page.execute(CLOCK_AN_HOUR_BACK, &[])?;
    let answered = remote::ssh_type_and_wait(page, "echo back-$((60*60))\n", "back-3600");
    page.execute("globalThis.Date = window.__realDate", &[])?;
    answered.context("the session after the page's clock stepped back an hour")?;
    eprintln!("ssh: the session went on after the clock stepped back an hour");

    // A resized terminal is what the server's PTY reports.
    page.execute_async(
        "const done = arguments[0]; window.__ssh.resize(123, 45).then(() => done(true), e => done(String(e)))",
        &[],
    )?;
    remote::ssh_type_and_wait(page, "stty size\n", "45 123")?;
    let closed = close(page)?;
    ensure!(closed == "you closed the session", "closing said {closed:?}");
    eprintln!("ssh: resize seen by stty size; close: {closed}");
    a_pin_names_the_port_given(page, lab, &host)?;
    options_that_cannot_be_used_are_refused(page, &host)?;

    // Key login: the page's own key, once authorised, logs in without a password.
    let public = page.execute_async(
        "const done = arguments[0]; window.hometun.sshPublicKey().then(done, e => done('error: ' + e.message))",
        &[],
    )?;
    let public = public.as_str().unwrap_or_default().to_owned();
    ensure!(public.starts_with("ssh-ed25519 AAAA"), "sshPublicKey() gave {public:?}");
    let again = page.execute_async("const done = arguments[0]; window.hometun.sshPublicKey().then(done)", &[])?;
    ensure!(again == public.as_str(), "the device key changed between calls");
    let stored = page.execute("return localStorage.getItem('hometun.ssh.key') || ''", &[])?;
    ensure!(stored.as_str().is_some_and(|k| k.starts_with("-----BEGIN OPENSSH PRIVATE KEY")), "no device key stored");
    let refused = remote::ssh_open(page, json!({"host": host, "port": sshd::PORT, "user": sshd::USER, "key": true}))?;
    ensure!(refused.starts_with("error: auth-failed"), "an unauthorised key logged in: {refused}");
    sshd.authorize(&public)?;
    let opened = remote::ssh_open(page, json!({"host": host, "port": sshd::PORT, "user": sshd::USER, "key": true}))?;
    ensure!(opened.starts_with("ok "), "key login: {opened}");
    remote::ssh_type_and_wait(page, "echo key-$((40+2))\n", "key-42")?;
    ensure!(sshd.log().contains(&format!("Accepted publickey for {}", sshd::USER)), "sshd logged no public key login");
    close(page)?;
    eprintln!("ssh: key login");

    // The Terminal card: xterm.js, typed into with real key events.
    submit_card(page, &host, sshd::PORT)?;
    let state = wait(page, "the terminal to open", WAIT,
        "const s = document.getElementById('terminal-screen').dataset.sshState; return s === 'open' || s === 'error' ? s : null")?;
    ensure!(state == "open", "terminal state {state}: {}", text(page, "terminal-status")?);
    wait(
        page,
        "the shell prompt",
        WAIT,
        "return document.getElementById('terminal-screen').terminalText().includes('$ ')",
    )?;
    page.execute("document.querySelector('#terminal-screen .xterm-helper-textarea').focus()", &[])?;
    remote::keyboard_text(page, "echo typed-$((7*6))")?;
    remote::key(page, "Enter", 13, "\r")?;
    wait(
        page,
        "typed output in the terminal",
        WAIT,
        "return document.getElementById('terminal-screen').terminalText().includes('\\ntyped-42')",
    )?;
    screenshot(page, "ssh-terminal");
    a_phone_has_the_keys_its_keyboard_lacks(page)?;
    the_terminal_fits_above_a_phones_keyboard(page)?;
    remote::keyboard_text(page, "exit")?;
    remote::key(page, "Enter", 13, "\r")?;
    wait(page, "the terminal to say the session ended", WAIT,
        "const s = document.getElementById('terminal-screen'); return s.dataset.sshState === 'closed' && document.getElementById('terminal-status').textContent.includes('exit status 0')")?;
    eprintln!("ssh: the Terminal card: {}", text(page, "terminal-status")?);
    wait_until(RESET_WAIT, || {
        sockets(lab, "established", &format!("sport = :{}", sshd::PORT)).is_empty().then_some(())
    })
    .context("the connection of a shell that exited is still open at the server")?;
    disconnect_cancels_a_connection_being_made(page, lab, &host)?;
    a_new_connection_replaces_one_being_made(page, lab, &host)?;
    bad_input_leaves_the_card_session_open(page, &host)?;
    a_silent_server_is_given_up_on(page, lab, &host)?;
    a_hung_server_is_reset_after_close(page, lab, sshd, &host)?;

    // The server dies under a running session (its session processes killed, no SSH goodbye):
    // the session's onClose callback says the connection dropped, and the Terminal card shows
    // it, within seconds.
    let opened = remote::ssh_open(
        page,
        json!({"host": host, "port": sshd::PORT, "user": sshd::USER, "password": sshd::PASSWORD}),
    )?;
    ensure!(opened.starts_with("ok "), "login before the drop: {opened}");
    remote::ssh_type_and_wait(page, "echo before-drop\n", "before-drop")?;
    page.execute("window.__closed = null; window.__ssh.onClose((c) => { window.__closed = c; })", &[])?;
    let killed = sshd.kill_sessions()?;
    ensure!(killed > 0, "no sshd session process to kill");
    let dropped_at = Instant::now();
    let closed = wait(page, "onClose after the server died", DROP_WAIT, "return window.__closed")?;
    ensure!(closed["dropped"] == true, "onClose did not report a drop: {closed}");
    let reason = closed["reason"].as_str().unwrap_or_default();
    ensure!(reason.contains("connection dropped"), "the drop's reason is unclear: {reason:?}");
    eprintln!("ssh: API session drop seen in {:.1?}: {reason}", dropped_at.elapsed());

    page.execute(
        "document.getElementById('terminal-password').value = arguments[0];
         document.querySelector('#terminal-form button[type=submit]').click();",
        &[json!(sshd::PASSWORD)],
    )?;
    wait(page, "the terminal to open again", WAIT,
        "return document.getElementById('terminal-screen').dataset.sshState === 'open' && document.getElementById('terminal-screen').terminalText().includes('$ ')")?;
    sshd.kill_sessions()?;
    let dropped_at = Instant::now();
    wait(page, "the Terminal card to show the drop", DROP_WAIT,
        "const s = document.getElementById('terminal-screen'); return s.dataset.sshState === 'dropped' && s.terminalText().includes('connection dropped')")?;
    let status = text(page, "terminal-status")?;
    ensure!(
        status.contains("connection dropped") && status.contains("again"),
        "the card's status after a drop: {status:?}"
    );
    screenshot(page, "ssh-dropped");
    eprintln!("ssh: Terminal card drop shown in {:.1?}: {status}", dropped_at.elapsed());

    // A reinstalled server: its new key is refused, naming both fingerprints, even with
    // trustNewHostKey; after forgetting the old key it is accepted.
    sshd.new_host_key()?;
    let second_key = sshd.host_key_fingerprint()?;
    ensure!(second_key != first_key, "the new host key has the old fingerprint");
    let login = json!({"host": host, "port": sshd::PORT, "user": sshd::USER, "password": sshd::PASSWORD, "trustNewHostKey": true});
    let changed = remote::ssh_open(page, login.clone())?;
    ensure!(changed.starts_with("error: host-key-changed"), "a changed host key was not refused: {changed}");
    ensure!(
        changed.contains(&first_key) && changed.contains(&second_key),
        "the refusal does not name both keys: {changed}"
    );
    ensure!(changed.contains("forget"), "the refusal does not say how to go on: {changed}");
    eprintln!("ssh: changed host key refused: {changed}");
    let forgot = page.execute_async(
        "const [target, done] = arguments; window.hometun.sshForgetHostKey(target).then(done, e => done(String(e)))",
        &[json!(format!("{host}:{}", sshd::PORT))],
    )?;
    ensure!(forgot == true, "forgetting the old host key: {forgot}");
    let opened = remote::ssh_open(page, login)?;
    ensure!(opened == format!("ok {second_key}"), "after forgetting: {opened}");
    close(page)?;

    // A device whose allow list lacks the SSH port: a clear error, at once.
    page.goto(narrow)?;
    wait(page, "the question before replacing this device", WAIT, "return !document.getElementById('replace').hidden")?;
    page.execute("document.getElementById('replace-use').click()", &[])?;
    wait(
        page,
        "the narrow device to connect",
        WAIT,
        "return document.body.dataset.state === 'connected' && window.hometun",
    )?;
    let asked = Instant::now();
    let denied = remote::ssh_open(
        page,
        json!({"host": host, "port": sshd::PORT, "user": sshd::USER, "password": sshd::PASSWORD, "trustNewHostKey": true}),
    )?;
    ensure!(denied.starts_with("error: not-allowed"), "a device without the SSH port got {denied}");
    ensure!(
        denied.contains(&format!("{host}:{}", sshd::PORT)) && denied.contains("192.168.0.10/32 port 80"),
        "the error does not say what is allowed: {denied}"
    );
    ensure!(asked.elapsed() < Duration::from_secs(5), "the ACL error took {:?}", asked.elapsed());
    eprintln!("ssh: ACL without the SSH port: {denied}");
    Ok(())
}

/// A phone in the Terminal card: the row under the terminal (shown only to a finger) gives
/// what its keyboard lacks. `cat -vT` shows what the shell got: Esc, Tab and ← from the row, Ctrl
/// and Alt latched for the next letter the keyboard types (`^X`, `^[b`); a latched Ctrl with
/// `d` then ends `cat`, and the shell answers again. The page, with the terminal open, fits the
/// phone's width.
fn a_phone_has_the_keys_its_keyboard_lacks(page: &Session<'_>) -> anyhow::Result<()> {
    let row = "return getComputedStyle(document.querySelector('#terminal-keys .keys')).display !== 'none'";
    ensure!(page.execute(row, &[])? == false, "a mouse's page shows the phone's keys");
    remote::phone(page, true)?;
    ensure!(page.execute(row, &[])? == true, "a phone's page hides the row of keys");
    let tap = |key: &str| remote::tap(page, &format!("#terminal-keys [data-key={key}]"));
    remote::keyboard_text(page, "cat -vT")?;
    remote::key(page, "Enter", 13, "\r")?;
    for key in ["Escape", "Tab", "ArrowLeft", "Control"] {
        tap(key)?;
    }
    remote::keyboard_text(page, "x")?;
    tap("Alt")?;
    remote::keyboard_text(page, "b")?;
    remote::key(page, "Enter", 13, "\r")?;
    terminal_shows(page, "cat -vT to show the keys", "text.split('\\n').includes('^[^I^[[D^X^[b')")?;
    tap("Control")?;
    remote::keyboard_text(page, "d")?;
    remote::keyboard_text(page, "echo after-cat-$((2*21))")?;
    remote::key(page, "Enter", 13, "\r")?;
    terminal_shows(page, "the shell after cat", "text.includes('\\nafter-cat-42')")?;
    let wide = remote::wider_than_a_phone(page)?;
    ensure!(wide["page"] == wide["screen"] && wide["wide"] == json!([]), "wider than a phone: {wide}");
    remote::phone(page, false)?;
    eprintln!("ssh: a phone's row of keys reached the shell");
    Ok(())
}

/// A phone's keyboard comes up over the Terminal card: the terminal shrinks so that it and its
/// row of keys sit above the keyboard, under the page's bar, and the server is told the fewer
/// rows (`stty size`); the row's ↑ there brings the last command back. With the keyboard down
/// the terminal has its rows back.
fn the_terminal_fits_above_a_phones_keyboard(page: &Session<'_>) -> anyhow::Result<()> {
    remote::phone(page, true)?;
    let fitted = (|| -> anyhow::Result<(u64, u64, u64)> {
        remote::phone_screen(page, false)?;
        page.execute("document.querySelector('#terminal-screen .xterm-helper-textarea').focus()", &[])?;
        let full = shell_rows(page, "full")?;
        remote::phone_screen(page, true)?;
        remote::fits_on_screen(page, "#terminal-screen", "#terminal-keys")?;
        // The server hears of a new size a moment after the terminal fits it: asked again
        // until it has (or ten times).
        let rows_until = |tag: &str, done: &dyn Fn(u64) -> bool| -> anyhow::Result<(u64, String)> {
            let mut last = (0, String::new());
            for round in 0..10 {
                let tag = format!("{tag}{round}");
                last = (shell_rows(page, &tag)?, tag);
                if done(last.0) {
                    break;
                }
            }
            Ok(last)
        };
        let (up, tag) = rows_until("up", &|rows| rows < full)?;
        screenshot(page, "ssh-above-a-phones-keyboard");
        remote::tap(page, "#terminal-keys [data-key=ArrowUp]")?;
        remote::key(page, "Enter", 13, "\r")?;
        let again = format!("text.split('\\n').filter((l) => l.startsWith('size-{tag} ')).length === 2");
        terminal_shows(page, "the last command again, from the row's ↑", &again)?;
        remote::phone_screen(page, false)?;
        let (down, _) = rows_until("down", &|rows| rows == full)?;
        Ok((full, up, down))
    })();
    page.cdp("Emulation.clearDeviceMetricsOverride", json!({}))?;
    remote::phone(page, false)?;
    let (full, up, down) = fitted?;
    ensure!(up < full && up >= 5, "with the phone's keyboard up the server sees {up} rows, with it down {full}");
    ensure!(down == full, "with the keyboard down again the server sees {down} rows, not {full}");
    eprintln!("ssh: above a phone's keyboard the terminal has {up} rows, {full} without it");
    Ok(())
}

/// The rows the server's terminal has (`stty size`), read by typing a command tagged `tag`.
fn shell_rows(page: &Session<'_>, tag: &str) -> anyhow::Result<u64> {
    remote::keyboard_text(page, &format!("echo size-{tag} $(stty size)"))?;
    remote::key(page, "Enter", 13, "\r")?;
    let line = format!("size-{tag} ");
    let check = format!("text.split('\\n').some((l) => /^{line}\\d+ \\d+$/.test(l))");
    terminal_shows(page, &format!("the terminal's size ({tag})"), &check)?;
    let text = terminal_text(page);
    let size = text.lines().rev().find(|l| l.starts_with(&line)).unwrap_or_default();
    size[line.len()..].split(' ').next().unwrap_or_default().parse().with_context(|| format!("stty size said {size:?}"))
}

/// Waits until the Terminal card's `text` passes `check` (JavaScript), saying what it shows if not.
fn terminal_shows(page: &Session<'_>, what: &str, check: &str) -> anyhow::Result<()> {
    let script = format!("const text = document.getElementById('terminal-screen').terminalText(); return {check}");
    wait(page, what, WAIT, &script).with_context(|| format!("the terminal shows:\n{}", terminal_text(page)))?;
    Ok(())
}

fn terminal_text(page: &Session<'_>) -> String {
    page.execute("return document.getElementById('terminal-screen').terminalText()", &[])
        .map(|t| t.as_str().unwrap_or_default().to_owned())
        .unwrap_or_else(|e| format!("{e:#}"))
}

/// `hometun.connectTcp` takes the port given or none: what is not a whole number 1..=65535 is
/// refused, never wrapped onto another port (65558 onto 22, 22.9 onto 22).
fn connect_tcp_refuses_what_is_not_a_port(page: &Session<'_>, host: &str) -> anyhow::Result<()> {
    let answers = page.execute_async(
        "const [host, done] = arguments;
         Promise.all([65558, 22.9, 0, 65536, -1].map((port) => window.hometun.connectTcp(host, port).then(
           (c) => { c.abort(); return `${port}: connected to port ${c.port}`; },
           (e) => `${port}: ${e.name} ${e.code}`))).then(done);",
        &[json!(host)],
    )?;
    let answers = answers.as_array().context("connectTcp answers")?;
    for answer in answers {
        let answer = answer.as_str().unwrap_or_default();
        ensure!(
            answer.ends_with(": HometunError invalid-argument"),
            "connectTcp with a port that is not one: {answer}"
        );
    }
    eprintln!("ssh: connectTcp refuses ports that are not ports ({} cases)", answers.len());
    Ok(())
}

/// A host key is pinned under the port given: sshd answers on 22222 too (an nftables redirect
/// on the LAN host), and its pin is `host:22222`, not the default's `host:22`.
fn a_pin_names_the_port_given(page: &Session<'_>, lab: &Lab, host: &str) -> anyhow::Result<()> {
    for command in [
        "add table ip hometun_ssh_test",
        "add chain ip hometun_ssh_test pre { type nat hook prerouting priority -100; }",
        "add rule ip hometun_ssh_test pre tcp dport 22222 redirect to :2222",
    ] {
        let out = lab.exec(Node::Host10, "nft", [command])?;
        ensure!(out.status.success(), "nft {command}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let opened = remote::ssh_open(
        page,
        json!({"host": host, "port": 22222, "user": sshd::USER, "password": sshd::PASSWORD, "trustNewHostKey": true}),
    )?;
    ensure!(opened.starts_with("ok "), "login on port 22222: {opened}");
    close(page)?;
    let pins =
        page.execute("return Object.keys(JSON.parse(localStorage.getItem('hometun.ssh.hostKeys') || '{}'))", &[])?;
    let pins: Vec<&str> = pins.as_array().context("pins")?.iter().filter_map(Value::as_str).collect();
    ensure!(
        pins.contains(&format!("{host}:22222").as_str()) && !pins.contains(&format!("{host}:22").as_str()),
        "the pins after a login on port 22222: {pins:?}"
    );
    eprintln!("ssh: pins {pins:?}");
    Ok(())
}

/// `hometun.ssh` options that cannot be used (a port, `cols` or `rows` that is not a whole number
/// in range) are refused before anything is opened, as every other failure is (`HometunError`,
/// `invalid-argument`), never replaced by a default.
fn options_that_cannot_be_used_are_refused(page: &Session<'_>, host: &str) -> anyhow::Result<()> {
    let answers = page.execute_async(
        "const [login, done] = arguments;
         const bad = [{port: 70000}, {cols: 0}, {cols: 100.5}, {cols: 1e9}, {rows: -24}, {rows: '24'}];
         Promise.all(bad.map((b) => window.hometun.ssh({...login, ...b}).then(
           (s) => { s.close(); return `${JSON.stringify(b)} opened`; },
           (e) => `${JSON.stringify(b)} ${e.name} ${e.code}`))).then(done);",
        &[json!({"host": host, "port": sshd::PORT, "user": sshd::USER, "password": sshd::PASSWORD})],
    )?;
    let answers = answers.as_array().context("hometun.ssh answers")?;
    for answer in answers {
        let answer = answer.as_str().unwrap_or_default();
        ensure!(answer.ends_with("} HometunError invalid-argument"), "options that cannot be used: {answer}");
    }
    eprintln!("ssh: options that cannot be used are refused ({} cases)", answers.len());
    Ok(())
}

/// The card's state (`data-ssh-state` of the terminal).
const CARD_STATE: &str = "return document.getElementById('terminal-screen').dataset.sshState";

/// The Terminal card's Disconnect cancels a connection still being made (to the silent port):
/// the card says so and the TCP connection is reset.
fn disconnect_cancels_a_connection_being_made(page: &Session<'_>, lab: &Lab, host: &str) -> anyhow::Result<()> {
    submit_card(page, host, SILENT_PORT)?;
    wait_until(WAIT, || (!sockets(lab, "established", SILENT).is_empty()).then_some(()))
        .context("the card's connection to the silent port")?;
    page.execute("document.getElementById('terminal-close').click()", &[])?;
    wait(page, "Disconnect to cancel the connection being made", RESET_WAIT, &format!("{CARD_STATE} === 'closed'"))?;
    wait_until(RESET_WAIT, || sockets(lab, "established", SILENT).is_empty().then_some(()))
        .context("the cancelled connection is still open at the server")?;
    eprintln!("ssh: the card's Disconnect cancelled a connection: {}", text(page, "terminal-status")?);
    Ok(())
}

/// A connection made from the card while another is still being made replaces it: the new
/// session opens and the first one's TCP connection is reset.
fn a_new_connection_replaces_one_being_made(page: &Session<'_>, lab: &Lab, host: &str) -> anyhow::Result<()> {
    submit_card(page, host, SILENT_PORT)?;
    wait_until(WAIT, || (!sockets(lab, "established", SILENT).is_empty()).then_some(()))
        .context("the card's connection to the silent port")?;
    submit_card(page, host, sshd::PORT)?;
    wait(page, "the replacing session to open", WAIT,
        "const s = document.getElementById('terminal-screen'); return s.dataset.sshState === 'open' && s.terminalText().includes('$ ')")?;
    wait_until(RESET_WAIT, || sockets(lab, "established", SILENT).is_empty().then_some(()))
        .context("the replaced connection is still open at the server")?;
    eprintln!("ssh: a new connection replaced one still being made");
    Ok(())
}

/// Input that cannot be a connection (port 70000, the form's own check bypassed as a script
/// could) is refused in the card's status line while its open session goes on; then Disconnect
/// closes that session.
fn bad_input_leaves_the_card_session_open(page: &Session<'_>, host: &str) -> anyhow::Result<()> {
    if page.execute(CARD_STATE, &[])? != "open" {
        submit_card(page, host, sshd::PORT)?;
    }
    wait(page, "the card's session", WAIT,
        "const s = document.getElementById('terminal-screen'); return s.dataset.sshState === 'open' && s.terminalText().includes('$ ')")?;
    page.execute(
        "document.getElementById('terminal-port').value = '70000';
         document.getElementById('terminal-form').dispatchEvent(new Event('submit', { cancelable: true }));",
        &[],
    )?;
    wait(
        page,
        "the refusal in the status line",
        WAIT,
        "return document.getElementById('terminal-status').textContent.includes('70000')",
    )?;
    page.execute("document.getElementById('terminal-port').value = arguments[0]", &[json!(sshd::PORT)])?;
    let state = page.execute(CARD_STATE, &[])?;
    ensure!(state == "open", "bad input ended the session ({state}): {}", text(page, "terminal-status")?);
    page.execute("document.querySelector('#terminal-screen .xterm-helper-textarea').focus()", &[])?;
    remote::keyboard_text(page, "echo still-$((40+2))")?;
    remote::key(page, "Enter", 13, "\r")?;
    wait(
        page,
        "the session to go on after bad input",
        WAIT,
        "return document.getElementById('terminal-screen').terminalText().includes('\\nstill-42')",
    )?;
    page.execute("document.getElementById('terminal-close').click()", &[])?;
    wait(page, "the card's session to close", WAIT, &format!("{CARD_STATE} === 'closed'"))?;
    eprintln!("ssh: bad input in the card left the session open");
    Ok(())
}

/// A server that greets and then says nothing (the silent port) is given up on once the login's
/// time limit (20 s) passes, with code `timeout`, and the connection is reset.
fn a_silent_server_is_given_up_on(page: &Session<'_>, lab: &Lab, host: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    let answer = page.execute_async(
        "const [options, done] = arguments;
         const hung = setTimeout(() => done('still waiting after 40 s'), 40000);
         window.hometun.ssh(options).then(
           (s) => { clearTimeout(hung); s.close(); done('opened'); },
           (e) => { clearTimeout(hung); done(`${e.code}: ${e.message}`); });",
        &[json!({"host": host, "port": SILENT_PORT, "user": sshd::USER, "password": sshd::PASSWORD, "trustNewHostKey": true})],
    )?;
    let took = started.elapsed();
    let answer = answer.as_str().unwrap_or_default();
    ensure!(answer.starts_with("timeout: "), "a silent server gave {answer:?} after {took:.1?}");
    ensure!(took >= Duration::from_secs(18) && took < Duration::from_secs(35), "the time limit took {took:.1?}");
    wait_until(RESET_WAIT, || sockets(lab, "established", SILENT).is_empty().then_some(()))
        .context("the connection given up on is still open at the server")?;
    eprintln!("ssh: a silent server given up on after {took:.1?}: {answer}");
    Ok(())
}

/// A server that stops (SIGSTOP: it neither answers nor closes) while the page closes its
/// session: the page sends its end (FIN), then resets the connection after a short grace, so the
/// tunnel does not hold it for ever.
fn a_hung_server_is_reset_after_close(page: &Session<'_>, lab: &Lab, sshd: &Sshd, host: &str) -> anyhow::Result<()> {
    let to_sshd = format!("sport = :{}", sshd::PORT);
    let before = peers(&sockets(lab, "established", &to_sshd));
    let opened = remote::ssh_open(
        page,
        json!({"host": host, "port": sshd::PORT, "user": sshd::USER, "password": sshd::PASSWORD}),
    )?;
    ensure!(opened.starts_with("ok "), "login before the hang: {opened}");
    remote::ssh_type_and_wait(page, "echo before-hang\n", "before-hang")?;
    let new: Vec<String> =
        peers(&sockets(lab, "established", &to_sshd)).into_iter().filter(|p| !before.contains(p)).collect();
    let [peer] = new.as_slice() else { bail!("the session's connection among {new:?}") };
    let port = peer.rsplit(':').next().unwrap_or_default();
    let this = format!("{to_sshd} and dport = :{port}");
    let out = lab.exec(Node::Host10, "ss", ["-Htnp", "state", "established", &format!("( {this} )")])?;
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    let pids: Vec<i32> = listing
        .split("pid=")
        .skip(1)
        .filter_map(|s| s.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .collect();
    ensure!(!pids.is_empty(), "no process holds the session's connection: {listing}");
    for pid in &pids {
        if let Some(pid) = rustix::process::Pid::from_raw(*pid) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::STOP);
        }
    }
    let closed = close(page);
    // Not yet closed (established) or closed by the page only (close-wait): still held.
    let held = || [sockets(lab, "established", &this), sockets(lab, "close-wait", &this)].concat();
    let reset = wait_until(RESET_WAIT, || held().is_empty().then_some(()));
    let stuck = held();
    sshd.kill_sessions()?;
    ensure!(closed? == "you closed the session", "closing during the hang");
    reset.with_context(|| format!("the page did not reset the connection of a hung server: {stuck:?}"))?;
    eprintln!("ssh: a hung server's connection was reset after the page closed the session");
    Ok(())
}

/// Fills in the Terminal card (`host:port`, the lab user, password login) and submits it.
fn submit_card(page: &Session<'_>, host: &str, port: u16) -> anyhow::Result<()> {
    page.execute(
        "document.getElementById('terminal-host').value = arguments[0];
         document.getElementById('terminal-port').value = arguments[1];
         document.getElementById('terminal-user').value = arguments[2];
         document.getElementById('terminal-auth').value = 'password';
         document.getElementById('terminal-password').value = arguments[3];
         document.querySelector('#terminal-form button[type=submit]').click();",
        &[json!(host), json!(port), json!(sshd::USER), json!(sshd::PASSWORD)],
    )?;
    Ok(())
}

/// The TCP connections of LAN host 192.168.0.10 in `state` (as `ss` names states:
/// `established`, `close-wait`, ...) that `filter` (in `ss`'s words, e.g. `sport = :22`)
/// matches, one line each.
fn sockets(lab: &Lab, state: &str, filter: &str) -> Vec<String> {
    lab.tcp_sockets(Node::Host10, state, filter).expect("ss")
}

/// The peers (`address:port`) of `ss` lines.
fn peers(lines: &[String]) -> Vec<String> {
    lines.iter().filter_map(|l| l.split_whitespace().nth(3).map(str::to_owned)).collect()
}

/// Enrols from `link` and waits for "connected".
fn connect(page: &Session<'_>, link: &str) -> anyhow::Result<()> {
    page.goto(link)?;
    let state = wait(
        page,
        "the page to connect or fail",
        WAIT,
        "const s = document.body.dataset.state; return s === 'connected' || s === 'failed' ? s : null",
    )?;
    if state != "connected" {
        bail!("page state {state}: {}", text(page, "s-error")?);
    }
    Ok(())
}

/// Closes `window.__ssh`; returns the reason `closed` resolved with.
fn close(page: &Session<'_>) -> anyhow::Result<String> {
    let reason = page.execute_async(
        "const done = arguments[0]; window.__ssh.close(); window.__ssh.closed.then((c) => done(c.reason), (e) => done('error: ' + e))",
        &[],
    )?;
    Ok(reason.as_str().unwrap_or_default().to_owned())
}

fn text(page: &Session<'_>, id: &str) -> anyhow::Result<String> {
    let v =
        page.execute("const e = document.getElementById(arguments[0]); return e ? e.textContent : ''", &[json!(id)])?;
    Ok(v.as_str().unwrap_or_default().to_owned())
}
