//! The launcher's tools as a person uses them, for the page scenarios in any browser: the Open
//! tool's snapshot of a LAN page, the status panel's counters, Ping and Lookup. Each returns what
//! the page shows, for the scenario to check.

use std::time::Duration;

use super::webdriver::Session;

const WAIT: Duration = Duration::from_secs(30);

/// Opens `lan_url` in the Open tool; returns the text of the page its frame shows once it says
/// "Hello from" (a lab host's page).
pub fn open_lan_page(page: &Session<'_>, lan_url: &str) -> anyhow::Result<String> {
    open(page, lan_url)?;
    let text = page.wait_for(
        "the LAN page in the frame",
        WAIT,
        "const d = document.getElementById('browse-frame').contentDocument;
         const t = d && d.body ? d.body.innerText : '';
         return t.includes('Hello from') ? t : null",
    )?;
    Ok(text.as_str().unwrap_or_default().to_owned())
}

/// Opens `lan_url` in the Open tool and returns its outcome line once it has one (no longer
/// "Opening …").
pub fn open_outcome(page: &Session<'_>, lan_url: &str) -> anyhow::Result<String> {
    open(page, lan_url)?;
    let info = page.wait_for(
        "the Open tool's outcome",
        WAIT,
        "const t = document.getElementById('browse-info').textContent;
         return t && !t.startsWith('Opening') ? t : null",
    )?;
    Ok(info.as_str().unwrap_or_default().to_owned())
}

/// Types `lan_url` into the Open tool and presses its button.
fn open(page: &Session<'_>, lan_url: &str) -> anyhow::Result<()> {
    page.execute(
        "document.querySelector('[data-tab=browse]').click();
         document.getElementById('browse-url').value = arguments[0];
         document.querySelector('#browse-form button[type=submit]').click();",
        &[lan_url.into()],
    )
    .map(|_| ())
}

/// Waits (at most 5 s: the panel renders once a second) until the status panel shows bytes
/// moved both ways; returns what it shows with the counters behind it.
pub fn traffic_counted(page: &Session<'_>) -> anyhow::Result<String> {
    let shown = page.wait_for(
        "non-zero bytes in and out in the status panel",
        Duration::from_secs(5),
        "const s = window.hometun.status(); const shown = document.getElementById('s-bytes').textContent;
         return s.bytesIn > 0 && s.bytesOut > 0 && !shown.startsWith('0 B') && !shown.endsWith('/ 0 B')
           ? shown + ' (' + s.bytesIn + ' / ' + s.bytesOut + ')' : null",
    )?;
    Ok(shown.as_str().unwrap_or_default().to_owned())
}

/// Pings `host` three times with the Ping tool; returns its output once it has the summary.
pub fn ping(page: &Session<'_>, host: &str) -> anyhow::Result<String> {
    page.execute(
        "document.querySelector('[data-tab=ping]').click();
         document.getElementById('ping-host').value = arguments[0];
         document.getElementById('ping-count').value = 3;
         document.querySelector('#ping-form button[type=submit]').click();",
        &[host.into()],
    )?;
    let output = page.wait_for(
        "the ping summary",
        WAIT,
        "const t = document.getElementById('ping-output').textContent; return t.includes('% loss') ? t : null",
    )?;
    Ok(output.as_str().unwrap_or_default().to_owned())
}

/// Looks `name` up with the Lookup tool; returns its answer.
pub fn lookup(page: &Session<'_>, name: &str) -> anyhow::Result<String> {
    page.execute(
        "document.querySelector('[data-tab=dns]').click();
         document.getElementById('dns-name').value = arguments[0];
         document.querySelector('#dns-form button[type=submit]').click();",
        &[name.into()],
    )?;
    let answer = page.wait_for(
        "the lookup answer",
        WAIT,
        "const t = document.getElementById('dns-output').textContent; return t.length ? t : null",
    )?;
    Ok(answer.as_str().unwrap_or_default().to_owned())
}
