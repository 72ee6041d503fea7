// Home web apps: the "Apps" card (what this device may reach, a typed address, recent apps;
// each opens in a frame here or in a tab of its own, without an opener) and the answer to every
// app page's "port-request", by message or through the hub worker (docs/web-apps.md, "Getting a
// port"). An app runs on an origin of its own
// (https://h-A-B-C-D-pPORT.DOMAIN, -sPORT for an app the LAN host serves over https itself);
// its service worker and shim reach the LAN through ports this page hands out, bound by the wasm
// to the app's own host:port. An https:// app's certificate is trusted on first use: the card
// shows its fingerprint and asks before the first visit, and warns when it changed.
//
// Without a domain and a trusted certificate there are no app origins: the card says so and
// opens entries in the "Open" tab's snapshot view instead.
import { $, describeError } from './ui.js';

/** How long a port request waits for the tunnel to come up (the asker waits 10 s). */
const TUNNEL_WAIT_MS = 9000;
const RECENT_KEY = 'hometun.apps.recent';
const MAX_RECENT = 8;
/** A port range longer than this in the allow list is not listed port by port. */
const MAX_PORTS_LISTED = 16;
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const SANDBOX = 'allow-scripts allow-same-origin allow-forms allow-popups allow-downloads allow-modals';
/**
 * What the launcher lets an app in its frame use, as the app has in a tab of its own: a video
 * player's full screen, copy buttons, playing with sound, picture-in-picture (a frame of another
 * origin gets none of these unless allowed).
 */
const ALLOW = 'fullscreen; clipboard-write; autoplay; picture-in-picture';

let mode = { full: false, reason: 'Checking whether this relay can run home web apps…' };
let allowRules = [];

// ---- port requests from app pages ------------------------------------------------------------

function sleep(ms) {
  return new Promise((resolve) => { window.setTimeout(resolve, ms); });
}

/** Link errors after which the launcher does not connect by itself: the app page hears why. */
const GAVE_UP = new Set(['device-revoked', 'refused', 'invite-used', 'invite-expired', 'not-enrolled']);

async function tunnelUp(api) {
  const until = Date.now() + TUNNEL_WAIT_MS;
  for (;;) {
    const status = api.status();
    if (status.state === 'connected') return;
    // The stored device is read once the page has started: ask, rather than take "none yet".
    if (!status.enrolled && !(await api.isEnrolled())) {
      throw new Error('this browser has no hometun device yet: open your hometun page and use an invite');
    }
    if (status.state === 'failed' && status.error && GAVE_UP.has(status.error.code)) {
      throw new Error(`your hometun page cannot connect: ${status.error.message}`);
    }
    if (Date.now() >= until) throw new Error('the tunnel is not connected: connect on your hometun page');
    await sleep(200);
  }
}

/** Whether `origin` looks like an app origin under this page's host (wasm checks strictly). */
function underThisHost(origin) {
  return typeof origin === 'string' && origin.startsWith('https://h-') && origin.endsWith(`.${window.location.host}`);
}

/** The answer to a port request from `origin`: `{reply, transfer}` to post back. */
async function portAnswer(ready, origin, id) {
  try {
    if (!underThisHost(origin)) throw new Error(`${origin} is not a home web app of this relay`);
    const api = await Promise.race([ready, sleep(TUNNEL_WAIT_MS).then(() => { throw new Error('this page is still loading'); })]);
    if (typeof api.appPort !== 'function') throw new Error('this page cannot open home web apps');
    await tunnelUp(api);
    return { reply: { hometun: 'port', id }, transfer: [api.appPort(origin)] };
  } catch (error) {
    return { reply: { hometun: 'port-error', id, message: describeError(error) }, transfer: [] };
  }
}

async function answerPortRequest(ready, source, origin, id) {
  const { reply, transfer } = await portAnswer(ready, origin, id);
  try {
    source.postMessage(reply, origin, transfer);
  } catch (_) {
    // The asking window went away (or its origin is opaque): nothing to answer.
  }
}

/**
 * Offers this page's tunnel to app pages that reach it through the hub worker (their broker
 * frames, docs/web-apps.md): the hub passes each request with the app origin the broker took
 * from the asking page's `event.origin`, and a reply port. Returns `join()` (this tab runs the
 * tunnel: answer from now on) and `leave()` (another tab runs it).
 */
function joinHub(ready) {
  let hub;
  try {
    hub = window.SharedWorker ? new SharedWorker('/__ht/hub.js', { name: 'hometun' }) : null;
  } catch (_) {
    hub = null;
  }
  if (!hub) return { join: () => {}, leave: () => {} };
  let joined = false;
  hub.port.onmessage = (event) => {
    const data = event.data;
    const reply = event.ports[0];
    if (!data || data.op !== 'port-request' || typeof data.origin !== 'string' || !reply) return;
    reply.postMessage({ op: 'taken' });
    portAnswer(ready, data.origin, undefined).then(({ reply: answer, transfer }) => {
      reply.postMessage(answer, transfer);
    });
  };
  hub.onerror = () => {};
  const join = () => {
    joined = true;
    hub.port.postMessage({ op: 'tunnel' });
  };
  // Leaving (or going into the back/forward cache): requests go to another launcher, if any.
  window.addEventListener('pagehide', () => hub.port.postMessage({ op: 'bye' }));
  window.addEventListener('pageshow', (event) => {
    if (event.persisted && joined) join();
  });
  // The hub forgets a launcher that did not answer in time (a phone froze the tab in the
  // background): said again when the page runs again.
  document.addEventListener('resume', () => { if (joined) join(); });
  document.addEventListener('visibilitychange', () => {
    if (joined && document.visibilityState === 'visible') join();
  });
  return {
    join,
    leave: () => {
      joined = false;
      hub.port.postMessage({ op: 'bye' });
    },
  };
}

/**
 * Answers app pages' port requests from now on (call it first thing, so a request sent while
 * this page loads is not lost): from app frames here (their `parent`) and older app tabs
 * (their `opener`) by messages, and from every other app page through the hub worker once
 * `join()` says this tab runs the tunnel. `ready` resolves with `window.hometun` once the wasm
 * runs.
 */
export function listenForPortRequests(ready) {
  window.addEventListener('message', (event) => {
    const data = event.data;
    if (!data || typeof data !== 'object' || data.hometun !== 'port-request' || !event.source) return;
    answerPortRequest(ready, event.source, event.origin, typeof data.id === 'number' ? data.id : undefined);
  });
  return joinHub(ready);
}

// ---- addresses -------------------------------------------------------------------------------

/** A typed address as a LAN URL (`192.168.0.10:8080` → `http://192.168.0.10:8080/`). */
function parseAddress(text) {
  let typed = text.trim();
  if (!typed) throw new Error('Type an address, such as 192.168.0.10:8080 or http://nas.local:5000/');
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(typed)) typed = `http://${typed}`;
  let url;
  try {
    url = new URL(typed);
  } catch (_) {
    throw new Error(`${text.trim()} is not an address`);
  }
  if (url.protocol === 'https:' && !mode.full) {
    throw new Error('https:// home apps open only on a relay with a domain and a trusted certificate; try http://');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`${url.protocol} addresses cannot be opened; use http:// or https://`);
  return url;
}

/** `url` with its host name looked up through the tunnel's DNS (an IPv4 address stays). */
async function resolveUrl(api, url) {
  if (IPV4.test(url.hostname)) return url;
  const addresses = await api.resolve(url.hostname);
  if (!addresses || !addresses.length) throw new Error(`${url.hostname}: no address found`);
  const resolved = new URL(url.href);
  resolved.hostname = addresses[0];
  return resolved;
}

/** `A.B.C.D:PORT` for http://, `https:A.B.C.D:PORT` for https:// (the same port may serve both). */
function targetOf(url) {
  if (url.protocol === 'https:') return `https:${url.hostname}:${url.port || '443'}`;
  return `${url.hostname}:${url.port || '80'}`;
}

function entryId(target) {
  return `app-${target.replace(/[.:]/g, '-')}`;
}

// ---- the allow list --------------------------------------------------------------------------

/** `[first, last]` of a rule's ports in whichever form they come, or null for every port. */
function portRange(ports) {
  if (ports == null) return null;
  if (typeof ports === 'number') return [ports, ports];
  if (typeof ports === 'string') {
    const [first, last = first] = ports.split('-').map((p) => Number(p.trim()));
    return Number.isInteger(first) && Number.isInteger(last) ? [first, last] : null;
  }
  if (Array.isArray(ports) && ports.length === 2 && ports.every(Number.isInteger)) return [ports[0], ports[1]];
  if (typeof ports === 'object' && Number.isInteger(ports.first)) return [ports.first, ports.last ?? ports.first];
  return null;
}

/** Entries (`{target, label, url}`) and hints (networks to type an address in) of the allow list. */
function fromAllowList(rules) {
  const entries = [];
  const hints = [];
  for (const rule of Array.isArray(rules) ? rules : []) {
    if (!rule || rule.protocol === 'udp') continue; // web apps are TCP
    const [address, prefix = '32'] = String(rule.network || '').split('/');
    if (!IPV4.test(address)) continue;
    const range = portRange(rule.ports);
    if (prefix !== '32') {
      hints.push(range ? `${rule.network} (ports ${range[0]}–${range[1]})` : rule.network);
    } else if (!range) {
      entries.push({ target: `${address}:80`, label: `${address} (every port; port 80 shown)`, url: `http://${address}/` });
    } else if (range[1] - range[0] < MAX_PORTS_LISTED) {
      for (let port = range[0]; port <= range[1]; port += 1) {
        const url = port === 80 ? `http://${address}/` : `http://${address}:${port}/`;
        entries.push({ target: `${address}:${port}`, label: `${address}:${port}`, url });
      }
    } else {
      hints.push(`${address} ports ${range[0]}–${range[1]}`);
    }
  }
  return { entries, hints };
}

// ---- recent apps -----------------------------------------------------------------------------

function recentApps() {
  try {
    const list = JSON.parse(window.localStorage.getItem(RECENT_KEY) || '[]');
    return Array.isArray(list) ? list.filter((e) => e && typeof e.url === 'string' && typeof e.target === 'string') : [];
  } catch (_) {
    return [];
  }
}

function remember(entry) {
  const list = [entry, ...recentApps().filter((e) => e.target !== entry.target)].slice(0, MAX_RECENT);
  try {
    window.localStorage.setItem(RECENT_KEY, JSON.stringify(list));
  } catch (_) {
    // Storage full or disabled: the app still opens.
  }
}

function forget(target) {
  try {
    window.localStorage.setItem(RECENT_KEY, JSON.stringify(recentApps().filter((e) => e.target !== target)));
  } catch (_) {
    // Nothing stored.
  }
}

// ---- opening ---------------------------------------------------------------------------------

function showError(error) {
  $('apps-error').hidden = !error;
  $('apps-error').textContent = error ? describeError(error) : '';
}

function closeFrame() {
  const frame = $('apps-frame');
  if (frame) frame.remove();
  $('apps-viewer').hidden = true;
  $('apps-home').hidden = false;
  $('apps').classList.remove('viewing');
  delete $('apps').dataset.open;
}

function openHere(appUrl, label) {
  closeFrame();
  const frame = document.createElement('iframe');
  frame.id = 'apps-frame';
  frame.title = label;
  frame.setAttribute('sandbox', SANDBOX);
  frame.allow = ALLOW;
  frame.allowFullscreen = true;
  frame.src = appUrl;
  $('apps-viewer-title').textContent = label;
  $('apps-viewer-tab').dataset.url = appUrl;
  $('apps-viewer').append(frame);
  $('apps-home').hidden = true;
  $('apps-viewer').hidden = false;
  $('apps').classList.add('viewing');
  $('apps').dataset.open = appUrl;
}

/**
 * Whether an app in a tab of its own can reach this page. WebKit (Safari, and every browser on
 * an iPhone) does not share the hub with `T` framed under an app's origin (docs/web-apps.md,
 * "Known limits"): such a tab would only show "not open", so there apps open here only. WebKit
 * tells itself apart by no feature a page can test, only by its vendor.
 */
const TABS_REACH_LAUNCHER = !/^Apple/.test(navigator.vendor || '');

/** A blank new tab for an app, opened while the click still counts as the user's. */
function openBlank() {
  const opened = window.open('about:blank', '_blank');
  if (!opened) throw new Error('The browser blocked the new tab: allow pop-ups for this page');
  return opened;
}

/**
 * Sends the blank tab `opened` to `appUrl`, cut loose first: without an opener (the app
 * reaches the tunnel through its broker frame, so a LAN page cannot navigate this tab).
 */
function openTab(appUrl, opened) {
  opened.opener = null;
  opened.location.href = appUrl;
}

/** Shows `lanUrl` in the "Open" tab's snapshot view (no app origins on this relay). */
function openSnapshot(lanUrl) {
  const tab = document.querySelector('.tabs [data-tab="browse"]');
  if (tab) tab.click();
  $('browse-url').value = lanUrl;
  $('browse-form').requestSubmit();
}

/**
 * Opens the resolved LAN URL `url` `how`; `tab` is a blank tab opened for it already (else one
 * is opened now, before anything is awaited). A full app opens once the relay has, or is
 * getting, the certificate of the app's name (`prepareApp`); a refusal closes the tab and
 * rejects with the relay's reason.
 */
async function show(api, url, how, label, tab) {
  const entry = { target: targetOf(url), url: url.href, label: label || targetOf(url) };
  if (how === 'snapshot' || !mode.full) {
    openSnapshot(url.href);
  } else {
    const opened = how === 'tab' ? tab || openBlank() : null;
    try {
      // On a first visit the relay gets the app name's certificate first: a few seconds.
      opened.document.title = entry.label;
      opened.document.body.textContent = `Opening ${entry.label}…`;
    } catch (_) {
      // Not a tab, or not one this page may write to.
    }
    let appUrl;
    try {
      appUrl = await api.prepareApp(url.href);
    } catch (error) {
      if (opened) opened.close();
      throw error;
    }
    if (opened) openTab(appUrl, opened);
    else openHere(appUrl, entry.label);
  }
  remember(entry);
  render();
}

// ---- certificates of https:// apps -----------------------------------------------------------

function hideTrust() {
  $('apps-trust').hidden = true;
  delete $('apps-trust').dataset.status;
}

/**
 * Asks the user about the certificate `cert` (from `appCertificate`) of the https:// app at
 * `url`: a first visit shows its fingerprint, a changed one both fingerprints and a warning.
 * "Trust and open" pins it and opens the app `how`.
 */
function askTrust(api, cert, url, how, label) {
  const changed = cert.status === 'changed';
  $('apps-trust').dataset.status = cert.status;
  $('apps-trust-title').textContent = changed
    ? `The certificate of ${cert.origin} has changed`
    : `First visit to ${cert.origin}`;
  $('apps-trust-text').textContent = changed
    ? 'It is not the certificate you trusted before. If you did not replace it or reset the device, do not go on: another machine may be posing as it.'
    : 'Like most home devices, it shows a certificate no authority vouches for. If you can, check that this fingerprint is the one the device itself shows (its settings or display); hometun remembers it and warns if it ever changes.';
  $('apps-trust-fingerprint').textContent = cert.fingerprint;
  $('apps-trust-protocol').textContent = cert.protocol;
  $('apps-trust-pinned-row').hidden = !changed;
  $('apps-trust-pinned').textContent = changed ? cert.pinned : '';
  $('apps-trust-open').textContent = changed ? 'Trust the new certificate and open' : 'Trust and open';
  $('apps-trust-open').onclick = () => {
    try {
      api.trustAppCertificate(url.href, cert.fingerprint);
      hideTrust();
      show(api, url, how, label, null).catch(showError);
    } catch (error) {
      showError(error);
    }
  };
  $('apps-trust-cancel').onclick = hideTrust;
  $('apps-trust').hidden = false;
}

/** Whether the https:// app at `url` shows its pinned certificate; asks the user when not. */
async function certificateTrusted(api, url, how, label) {
  const cert = await api.appCertificate(url.href);
  if (cert.status === 'trusted') return true;
  askTrust(api, cert, url, how, label);
  return false;
}

/**
 * Opens a LAN URL `how` = "here" | "tab" | "snapshot". A name is looked up first, and an
 * https:// app's certificate checked; a tab is opened at once (while the click still counts as
 * the user's) and pointed at the app once it can be.
 */
function open(api, lanUrl, how, label) {
  showError(null);
  hideTrust();
  let url;
  try {
    url = parseAddress(lanUrl);
    if (IPV4.test(url.hostname) && url.protocol === 'http:') {
      show(api, url, how, label, null).catch(showError);
      return;
    }
  } catch (error) {
    showError(error);
    return;
  }
  const name = label || lanUrl.trim();
  const tab = how === 'tab' && mode.full ? window.open('about:blank') : null;
  resolveUrl(api, url)
    .then(async (resolved) => {
      if (resolved.protocol === 'https:' && !(await certificateTrusted(api, resolved, how, name))) {
        if (tab) tab.close();
        return;
      }
      return show(api, resolved, how, name, tab);
    })
    .catch((error) => {
      if (tab) tab.close();
      showError(error);
    });
}

// ---- the card --------------------------------------------------------------------------------

function button(id, text, action, secondary) {
  const b = document.createElement('button');
  b.type = 'button';
  b.id = id;
  b.textContent = text;
  b.dataset.action = action;
  if (secondary) b.className = 'secondary';
  return b;
}

function entryItem(entry, recent) {
  const id = entryId(entry.target);
  const li = document.createElement('li');
  li.id = id;
  li.dataset.target = entry.target;
  li.dataset.url = entry.url;
  const name = document.createElement('span');
  name.className = 'app-name';
  name.textContent = entry.label;
  li.append(name);
  if (mode.full) {
    li.append(button(`${id}-here`, 'Open here', 'here'));
    if (TABS_REACH_LAUNCHER) li.append(button(`${id}-tab`, 'Open in new tab', 'tab', true));
  } else {
    li.append(button(`${id}-snapshot`, 'Open snapshot', 'snapshot'));
  }
  if (recent) li.append(button(`${id}-forget`, 'Forget', 'forget', true));
  return li;
}

function render() {
  const { entries, hints } = fromAllowList(allowRules);
  const listed = new Set(entries.map((e) => e.target));
  const recent = recentApps().filter((e) => !listed.has(e.target));
  const list = $('apps-list');
  list.replaceChildren(...entries.map((e) => entryItem(e, false)), ...recent.map((e) => entryItem(e, true)));
  $('apps-empty').hidden = entries.length + recent.length > 0;
  $('apps-hints').hidden = hints.length === 0;
  $('apps-hints').textContent = hints.length ? `This device may also reach ${hints.join(', ')}: type an address below.` : '';
  $('apps-notice').hidden = mode.full;
  $('apps-notice').textContent = mode.full ? '' : mode.reason;
  $('apps-open-tab').hidden = !mode.full || !TABS_REACH_LAUNCHER;
  $('apps-viewer-tab').hidden = !TABS_REACH_LAUNCHER;
  $('apps-open-here').textContent = mode.full ? 'Open here' : 'Open snapshot';
  document.body.dataset.apps = mode.full ? 'full' : 'snapshot';
  $('browse-note').textContent = mode.full
    ? 'A snapshot without scripts. To use a home web app fully, open it from the Apps card.'
    : `A snapshot without scripts. ${mode.reason}`;
}

/** Whether full apps can run here, and why not, from /relay.json and the page's own state. */
function decideMode(api, relay) {
  const domain = relay && relay.apps;
  const certificate = relay && relay.certificate;
  const needs = 'Full home web apps (logins, live pages, uploads) need the relay to have a DNS name and a trusted certificate: each app gets a name of its own under it.';
  if (!relay) return { full: false, reason: `${needs} This relay did not say whether it has one.` };
  if (!domain) return { full: false, reason: `${needs} This relay has no domain (see --domain in the relay's deploy guide), so apps open as snapshots.` };
  if (window.location.hostname !== domain) {
    return { full: false, reason: `Home web apps run under the relay's name: open this page at https://${domain}/ to use them.` };
  }
  if (!certificate || certificate.kind === 'self-signed') {
    return { full: false, reason: `${needs} The relay is still waiting for its trusted certificate for ${domain}; reload this page once it has it.` };
  }
  if (!window.isSecureContext || typeof api.appUrl !== 'function' || typeof api.appPort !== 'function') {
    return { full: false, reason: 'This browser page cannot open home web apps (not a secure context).' };
  }
  return { full: true, reason: '' };
}

function setupCard(api) {
  $('apps-form').addEventListener('submit', (event) => {
    event.preventDefault();
    open(api, $('apps-address').value, 'here', $('apps-address').value.trim());
  });
  $('apps-open-tab').addEventListener('click', () => {
    open(api, $('apps-address').value, 'tab', $('apps-address').value.trim());
  });
  $('apps-list').addEventListener('click', (event) => {
    const b = event.target.closest('button[data-action]');
    const li = b && b.closest('li[data-url]');
    if (!li) return;
    if (b.dataset.action === 'forget') {
      forget(li.dataset.target);
      render();
      return;
    }
    open(api, li.dataset.url, b.dataset.action, li.querySelector('.app-name').textContent);
  });
  $('apps-close').addEventListener('click', closeFrame);
  $('apps-viewer-tab').addEventListener('click', () => {
    try {
      openTab($('apps-viewer-tab').dataset.url, openBlank());
      closeFrame();
    } catch (error) {
      showError(error);
    }
  });
}

/**
 * Sets up the Apps card. `relayInfo` resolves with /relay.json (or null). Returns a function to
 * call with each pushed configuration (its `allow` list fills the card).
 */
export function setupApps(api, relayInfo) {
  setupCard(api);
  render();
  relayInfo.then((relay) => {
    mode = decideMode(api, relay);
    render();
  });
  return (config) => {
    allowRules = (config && config.allow) || [];
    render();
  };
}
