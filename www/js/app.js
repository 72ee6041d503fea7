// Boots the page: loads the wasm client, exposes it as window.hometun, enrols from an invite
// link or reconnects a stored device, and keeps the status panel current.
import init, * as wasm from '../hometun-wasm.js';
import { $, withProgress, formatBytes, describeError } from './ui.js';
import { setupTools } from './tools.js';
import { setupBrowser } from './browse.js';
import { showCertificate } from './certificate.js';
import { setupApps, listenForPortRequests } from './apps.js';
import { setupDesktop, openVnc } from './desktop.js';
import { setupTerminal, openSsh, sshPublicKey, sshForgetHostKey } from './terminal.js';
import { setupHome } from './home.js';
import { claimTunnel } from './owner.js';

const STATUS_EVERY_MS = 1000;
/** Errors after which trying again later may work (the relay or the network was down). */
const TRANSIENT = new Set(['relay-unreachable', 'offline', 'certificate-not-trusted', 'timeout', 'tunnel-failed']);
/** The wait between tries grows to this: a device that was offline for an hour still comes back
 * by itself, within a minute of the network (at once when the browser says it is online). */
const RETRY_FIRST_MS = 2000;
const RETRY_MAX_MS = 60000;

function exposeApi() {
  const api = {
    enroll: (invite) => wasm.enroll(String(invite)),
    connect: () => wasm.connect(),
    status: () => wasm.status(),
    disconnect: () => wasm.disconnect(),
    forget: () => wasm.forget(),
    isEnrolled: () => wasm.isEnrolled(),
    hasPreviousDevice: () => wasm.hasPreviousDevice(),
    restorePreviousDevice: () => wasm.restorePreviousDevice(),
    exportDevice: () => wasm.exportDevice(),
    importDevice: (text) => wasm.importDevice(String(text)),
    ping: (host, options = {}) => wasm.ping(String(host), options),
    resolve: (name) => wasm.resolve(String(name)),
    fetch: (url, init = {}) => wasm.httpFetch(String(url), init),
    connectTcp: (host, port) => wasm.connectTcp(String(host), Number(port)),
    vnc: (element, options = {}) => openVnc(api, element, options),
  };
  if (typeof wasm.hosts === 'function' && typeof wasm.wake === 'function') {
    api.hosts = () => wasm.hosts();
    api.wake = (host) => wasm.wake(String(host));
  }
  if (typeof wasm.appUrl === 'function' && typeof wasm.appPort === 'function') {
    api.appUrl = (lanUrl) => wasm.appUrl(String(lanUrl));
    api.prepareApp = (lanUrl) => wasm.prepareApp(String(lanUrl));
    api.appPort = (origin) => wasm.appPort(String(origin));
    api.appCertificate = (lanUrl) => wasm.appCertificate(String(lanUrl));
    api.trustAppCertificate = (lanUrl, fingerprint) => wasm.trustAppCertificate(String(lanUrl), String(fingerprint));
    api.forgetAppCertificate = (lanUrl) => wasm.forgetAppCertificate(String(lanUrl));
  }
  api.ssh = (options) => openSsh(api, options);
  api.sshPublicKey = () => sshPublicKey();
  api.sshForgetHostKey = (target) => sshForgetHostKey(String(target));
  window.hometun = Object.freeze(api);
  return api;
}

/** Takes `#invite=...` out of the address bar at once, so the secret does not linger. */
function takeInviteFromUrl() {
  const fragment = window.location.hash;
  if (!fragment.includes('invite=')) return null;
  window.history.replaceState(null, '', window.location.pathname + window.location.search);
  return fragment;
}

function showError(error) {
  const box = $('s-error');
  box.hidden = !error;
  box.textContent = error ? describeError(error) : '';
}

/** Which tab runs the tunnel (owner.js), and this tab's hub presence (apps.js). */
let tunnel = { isOwner: () => true, take: () => Promise.resolve() };
let hub = { join: () => {}, leave: () => {} };

/** Makes this tab the one that runs the tunnel (taking it from another tab that has it). */
async function own() {
  if (tunnel.isOwner()) return;
  await tunnel.take();
  hub.join();
}

/** An enrolment whose device this browser did not keep: said until the page closes or another
 * enrolment replaces it, since the tunnel is up and looks fine meanwhile. */
let unsavedDevice = null;

function render(status) {
  const elsewhere = status.enrolled && !tunnel.isOwner();
  const state = elsewhere ? 'elsewhere' : status.state;
  document.body.dataset.state = status.enrolled ? state : 'welcome';
  $('badge').textContent = status.enrolled ? (elsewhere ? 'in another tab' : state) : 'not enrolled';
  $('s-elsewhere').hidden = !elsewhere;
  $('welcome').hidden = status.enrolled;
  $('status').hidden = !status.enrolled;
  $('tools').hidden = !status.enrolled;
  $('apps').hidden = !status.enrolled;
  $('terminal').hidden = !status.enrolled;
  $('home').hidden = !status.enrolled;
  $('s-state').textContent = status.state + (status.reconnectAttempts ? ` (attempt ${status.reconnectAttempts})` : '');
  $('s-address').textContent = status.address || '–';
  $('s-routes').textContent = status.routes.length ? status.routes.join(', ') : '–';
  $('s-dns').textContent = status.dns.length ? status.dns.join(', ') : '–';
  $('s-rtt').textContent = status.rttMs == null ? '–' : `${status.rttMs.toFixed(1)} ms`;
  $('s-bytes').textContent = `${formatBytes(status.bytesIn)} / ${formatBytes(status.bytesOut)}`;
  $('s-since').textContent = status.connectedSince ? new Date(status.connectedSince).toLocaleTimeString() : '–';
  $('connect-button').disabled = !elsewhere && (status.state === 'connected' || status.state === 'connecting');
  $('disconnect-button').disabled = status.state === 'idle' || status.state === 'failed';
  $('footer-relay').textContent = status.relay ? `relay: ${status.relay}` : '';
  if (status.error) {
    $('s-error').hidden = false;
    $('s-error').textContent = `${status.error.message} [${status.error.code}]`;
  } else if (status.state === 'connected') {
    showError(unsavedDevice);
  }
}

/** Called with the configuration each successful enrol or connect pushed. */
let onConfig = () => {};

/** Runs `action` (enrol or connect) with progress shown; resolves with the error, if any. */
async function bringUp(action) {
  showError(null);
  document.body.dataset.state = 'connecting';
  let failure = null;
  try {
    onConfig(await withProgress(action()));
  } catch (error) {
    failure = error;
    if (error.code === 'device-not-saved') unsavedDevice = error;
    showError(error);
  }
  render(wasm.status());
  return failure;
}

/** Ends the wait between tries at once (the network came back, the page is shown again). */
let retryNow = () => {};
window.addEventListener('online', () => retryNow());
document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') retryNow(); });

/**
 * Connects the stored device; while the relay cannot be reached, tries again, waiting longer
 * each time (up to a minute), for as long as the page is open, and at once when the browser
 * says the network is back or the page is shown again. A later call (Connect, a takeover)
 * replaces a loop that is waiting: that one wakes and ends.
 */
let reconnects = 0;
async function reconnect(api) {
  reconnects += 1;
  const mine = reconnects;
  retryNow();
  for (let wait = RETRY_FIRST_MS; ; wait = Math.min(wait * 2, RETRY_MAX_MS)) {
    const error = await bringUp(() => api.connect());
    if (mine !== reconnects || !error || !TRANSIENT.has(error.code)) return;
    await new Promise((resolve) => {
      const timer = window.setTimeout(resolve, wait);
      retryNow = () => { window.clearTimeout(timer); resolve(); };
    });
    retryNow = () => {};
    // Stop when a later call took over, the user disconnected meanwhile, something else
    // brought the tunnel up, or another tab took it.
    if (mine !== reconnects || api.status().state !== 'failed' || !tunnel.isOwner()) return;
  }
}

/** Ends a waiting reconnect loop (this tab gave the tunnel to another). */
function stopReconnecting() {
  reconnects += 1;
  retryNow();
}

/** Enrols with the invite from the link; an invite opened again falls back to the stored device. */
async function enrollFromLink(api, invite) {
  const error = await bringUp(() => api.enroll(invite));
  if (!error) {
    unsavedDevice = null;
    return;
  }
  // Enrolled and connected, but not kept: the error says so and how to keep the device.
  if (error.code === 'device-not-saved') return;
  if (await api.isEnrolled()) {
    await reconnect(api);
    $('s-note').hidden = false;
    $('s-note').textContent = `The invite could not be used (${describeError(error)}); this browser's existing device was used instead.`;
  } else {
    $('welcome-error').hidden = false;
    $('welcome-error').textContent = describeError(error);
  }
}

function setupDevice(api) {
  $('invite-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const text = $('invite-input').value.trim();
    $('invite-input').value = '';
    if (text) own().then(() => enrollFromLink(api, text));
  });
  $('import-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const text = $('import-input').value.trim();
    $('import-input').value = '';
    if (!text) return;
    await own();
    const error = await bringUp(async () => { await api.importDevice(text); return api.connect(); });
    if (!error) unsavedDevice = null;
  });
  $('connect-button').addEventListener('click', () => own().then(() => reconnect(api)));
  $('disconnect-button').addEventListener('click', () => { api.disconnect(); render(api.status()); });
  $('export-button').addEventListener('click', async () => {
    const out = $('export-output');
    out.value = await api.exportDevice();
    out.hidden = false;
    out.select();
  });
  $('forget-button').addEventListener('click', async () => {
    if (!window.confirm('Forget this device? You will need a new invite to connect again.')) return;
    await api.forget();
    unsavedDevice = null;
    $('export-output').value = '';
    $('export-output').hidden = true;
    render(api.status());
  });
}

/**
 * An invite opened in a browser that is already a device: asks before replacing it (a guest's
 * invite must not silently take the owner's device away). Resolves `true` to use the invite.
 */
function askToReplace() {
  document.body.dataset.state = 'asking';
  $('replace').hidden = false;
  return new Promise((resolve) => {
    const answer = (useInvite) => () => { $('replace').hidden = true; resolve(useInvite); };
    $('replace-use').addEventListener('click', answer(true), { once: true });
    $('replace-keep').addEventListener('click', answer(false), { once: true });
  });
}

/** Uses an invite from a link: at once in a new browser, after asking in an enrolled one. */
async function openInvite(api, invite) {
  if ((await api.isEnrolled()) && !(await askToReplace())) {
    render(api.status());
    await reconnect(api);
  } else {
    await enrollFromLink(api, invite);
  }
}

/** Shows "Switch to the previous device" while an enrolment replaced one. */
async function showRestore(api) {
  $('restore-button').hidden = !(await api.hasPreviousDevice());
}

async function main() {
  // An invite link opened in this tab changes only the fragment. One opened while the page is
  // still starting is kept for when it can enrol, the latest one winning.
  let invite = takeInviteFromUrl();
  let enrolLater = null;
  window.addEventListener('hashchange', () => {
    const later = takeInviteFromUrl();
    if (!later) return;
    if (enrolLater) enrolLater(later);
    else invite = later;
  });
  let apiReady;
  hub = listenForPortRequests(new Promise((resolve) => { apiReady = resolve; }));
  // One tab runs the tunnel (owner.js). This one connects now if it has it; otherwise it says
  // so and takes over when the tab that has it closes.
  let started = null;
  tunnel = claimTunnel({
    owned: () => {
      hub.join();
      if (started) started.then(async (api) => { if (await api.isEnrolled()) await reconnect(api); });
    },
    lost: () => {
      hub.leave();
      stopReconnecting();
      if (!started) return;
      started.then((api) => {
        api.disconnect();
        // App pages holding ports of this tab ask the hub again: the tab that runs the tunnel
        // now answers.
        if (typeof wasm.closeAppPorts === 'function') wasm.closeAppPorts();
        render(api.status());
      });
    },
  });
  if (await tunnel.first) hub.join();
  const relayInfo = showCertificate();
  // Where a page still "loading" is stuck (the tests print it when a page never starts).
  document.body.dataset.step = 'wasm';
  await init({ module_or_path: new URL('../hometun-wasm_bg.wasm', import.meta.url) });
  const api = exposeApi();
  apiReady(api);
  let apiStarted;
  started = new Promise((resolve) => { apiStarted = resolve; });
  setupDevice(api);
  setupTools(api);
  setupBrowser(api);
  const appsConfig = setupApps(api, relayInfo);
  const desktopConfig = setupDesktop(api);
  const terminalConfig = setupTerminal(api);
  onConfig = (config) => { appsConfig(config); desktopConfig(config); terminalConfig(config); };
  setupHome(api);
  // The Home card's SSH and VNC entries fill in the Terminal or Remote desktop card and bring it
  // into view; the user name and password stay for the person to type.
  const openCard = (prefix, focus) => ({ host, port }) => {
    $(`${prefix}-host`).value = host;
    $(`${prefix}-port`).value = String(port);
    $(prefix === 'terminal' ? 'terminal' : 'desktop-form').scrollIntoView({ behavior: 'smooth', block: 'start' });
    $(focus).focus();
  };
  window.hometunOpenTerminal = openCard('terminal', 'terminal-user');
  window.hometunOpenDesktop = openCard('desktop', 'desktop-password');
  // The stored device is read before the first render, so a returning device never shows the
  // welcome card for a moment (reading it can take a while in a busy browser).
  document.body.dataset.step = 'device';
  const enrolled = await api.isEnrolled();
  delete document.body.dataset.step;
  window.setInterval(() => render(api.status()), STATUS_EVERY_MS);
  window.dispatchEvent(new CustomEvent('hometun-ready'));
  $('restore-button').addEventListener('click', async () => {
    await own();
    await api.restorePreviousDevice();
    unsavedDevice = null;
    await reconnect(api);
    await showRestore(api);
  });
  // An invite opened here is the person's word to use this tab.
  enrolLater = (later) => own().then(() => openInvite(api, later)).then(() => showRestore(api));
  apiStarted(api);
  if (invite) {
    await own();
    await openInvite(api, invite);
  } else if (enrolled && tunnel.isOwner()) {
    render(api.status());
    await reconnect(api);
  } else {
    render(api.status());
  }
  await showRestore(api);
}

main().catch((error) => {
  document.body.dataset.state = 'failed';
  $('badge').textContent = 'failed to load';
  document.querySelector('main').textContent = `The page could not start: ${describeError(error)}`;
});
