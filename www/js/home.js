// Home at a glance: the "Home" card lists the home's devices this device may reach, as the relay
// discovered them (names, kind, online state), with one-click entries for their apps (web pages
// through the Apps card, http and https alike, SSH and VNC where this page has them) and "Wake"
// for sleeping ones.
// The list comes over the tunnel (hometun.hosts() and the `hometun-hosts` event); docs/discovery.md.
import { $, describeError } from './ui.js';

/** How long "waking…" waits for the host to answer ping, and how often it asks. */
const WAKE_WAIT_MS = 120000;
const WAKE_PING_EVERY_MS = 2000;

/** Service type → what it says about the device, most telling first. */
const KINDS = [
  ['_ipp._tcp', 'printer'], ['_printer._tcp', 'printer'],
  ['_smb._tcp', 'file server'], ['_afpovertcp._tcp', 'file server'],
  ['_home-assistant._tcp', 'home automation'],
  ['_rfb._tcp', 'desktop'], ['_workstation._tcp', 'computer'], ['_ssh._tcp', 'computer'],
  ['_http._tcp', 'web device'], ['_https._tcp', 'web device'], ['_device-info._tcp', 'device'],
];

/** Hosts being woken: address → 'waking' | 'woke' | 'timeout'. */
const waking = new Map();
let latest = null;

function kindOf(host) {
  const types = new Set(host.services.map((s) => s.type));
  const hit = KINDS.find(([type]) => types.has(type));
  return hit ? hit[1] : 'device';
}

function nameOf(host) {
  return host.label || host.names[0] || host.address;
}

/**
 * The host part of URLs for `host`: its discovered name when no other listed host carries it
 * (it resolves in the page to the first one listed), else its address, so an entry opens the
 * host it is on.
 */
function hostPart(host) {
  const name = host.names[0];
  const same = (n) => n.toLowerCase() === name.toLowerCase();
  const shared = name && (latest || []).some((h) => h.address !== host.address && h.names.some(same));
  return name && !shared ? name : host.address;
}

function stateOf(host) {
  const wake = waking.get(host.address);
  if (wake === 'waking') return 'waking…';
  if (wake === 'timeout') return 'still asleep';
  return host.online || wake === 'woke' ? 'online' : 'offline';
}

function idOf(address) {
  return `home-host-${address.replaceAll('.', '-')}`;
}

function button(text, action, data, secondary) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = text;
  b.dataset.action = action;
  Object.assign(b.dataset, data);
  if (secondary) b.className = 'secondary';
  return b;
}

/** The one-click entries of a host: its web apps, SSH and VNC when this page can, and Wake. */
function entries(host) {
  const out = [];
  const at = hostPart(host);
  for (const s of host.services) {
    if (s.type === '_http._tcp') {
      const url = s.port === 80 ? `http://${at}/` : `http://${at}:${s.port}/`;
      out.push(button(s.port === 80 ? 'Web' : `Web :${s.port}`, 'web', { url }));
    } else if (s.type === '_https._tcp') {
      // The Apps card opens it too: the page speaks TLS to the device and asks before it
      // trusts the device's own certificate (docs/web-apps.md, "HTTPS apps on the LAN").
      const url = s.port === 443 ? `https://${at}/` : `https://${at}:${s.port}/`;
      out.push(button(s.port === 443 ? 'Web (https)' : `Web (https) :${s.port}`, 'web', { url }));
    } else if (s.type === '_ssh._tcp' && typeof window.hometunOpenTerminal === 'function') {
      out.push(button('SSH', 'ssh', { host: at, port: String(s.port) }, true));
    } else if (s.type === '_rfb._tcp' && typeof window.hometunOpenDesktop === 'function') {
      out.push(button('VNC', 'vnc', { host: at, port: String(s.port) }, true));
    }
  }
  // Offered even while the host looks online: the relay's view lags a host that just slept.
  if (host.wakeable && stateOf(host) !== 'waking…') out.push(button('Wake', 'wake', { address: host.address }, true));
  return out;
}

function hostItem(host) {
  const li = document.createElement('li');
  li.id = idOf(host.address);
  li.dataset.address = host.address;
  li.dataset.state = stateOf(host);
  const name = document.createElement('span');
  name.className = 'app-name';
  name.textContent = nameOf(host);
  const about = document.createElement('span');
  about.className = 'hint';
  const names = host.names.filter((n) => n !== nameOf(host));
  about.textContent = `${kindOf(host)} · ${stateOf(host)} · ${[...names, host.address].join(', ')}`;
  li.append(name, about, ...entries(host));
  return li;
}

function render() {
  const hosts = latest || [];
  $('home-list').replaceChildren(...hosts.map(hostItem));
  $('home-empty').hidden = hosts.length > 0;
  $('home-empty').textContent = latest === null
    ? 'This relay does not list the devices of your home (or has not yet).'
    : 'No devices of your home that this device may reach have been seen yet.';
}

function showError(error) {
  $('home-error').hidden = !error;
  $('home-error').textContent = error ? describeError(error) : '';
}

const OUTCOMES = {
  'not-allowed': 'This device may not wake that host: ask the relay\'s owner for an invite with --wake.',
  'unknown-host': 'The relay has not seen that host\'s network address yet, so it cannot wake it.',
  'rate-limited': 'Waking was asked for too often (each host once per 10 s, and a few times a minute per device): wait a minute and try again.',
  failed: 'The relay could not send the wake-up packet.',
};

/** Wakes `address`, then shows "waking…" until it answers ping (or the wait runs out). */
async function wake(api, address) {
  showError(null);
  const outcome = await api.wake(address);
  if (outcome !== 'sent') throw new Error(OUTCOMES[outcome] || `wake: ${outcome}`);
  waking.set(address, 'waking');
  render();
  const until = Date.now() + WAKE_WAIT_MS;
  while (Date.now() < until) {
    try {
      const run = await api.ping(address, { count: 1 });
      if (run.received > 0) {
        waking.set(address, 'woke');
        render();
        return;
      }
    } catch (_) {
      // Not answering yet.
    }
    await new Promise((resolve) => { window.setTimeout(resolve, WAKE_PING_EVERY_MS); });
  }
  waking.set(address, 'timeout');
  render();
}

function openWeb(url) {
  // The Apps card opens it: as an app of its own origin, or a snapshot where apps cannot run.
  $('apps-address').value = url;
  $('apps-form').requestSubmit();
}

/** Sets up the Home card (a page without `hosts()` in its API leaves it hidden). */
export function setupHome(api) {
  if (typeof api.hosts !== 'function') return;
  latest = api.hosts();
  render();
  window.addEventListener('hometun-hosts', () => {
    latest = api.hosts();
    for (const host of latest || []) {
      if (host.online && waking.get(host.address) !== 'waking') waking.delete(host.address);
    }
    render();
  });
  $('home-list').addEventListener('click', (event) => {
    const b = event.target.closest('button[data-action]');
    if (!b) return;
    const { action } = b.dataset;
    if (action === 'web') openWeb(b.dataset.url);
    else if (action === 'ssh') window.hometunOpenTerminal?.({ host: b.dataset.host, port: Number(b.dataset.port) });
    else if (action === 'vnc') window.hometunOpenDesktop?.({ host: b.dataset.host, port: Number(b.dataset.port) });
    else if (action === 'wake') wake(api, b.dataset.address).catch(showError);
  });
}
