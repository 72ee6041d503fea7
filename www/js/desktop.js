// Remote desktops (VNC): `hometun.vnc(element, options)` and the "Remote desktop" card (host,
// port, password; recent desktops without their passwords). The viewer (noVNC, bundled into
// ../vnc/viewer.js by scripts/build-page.sh) loads only when a desktop is opened, so the first
// page load does not grow. The tunnel carries VNC as plain TCP: no websockify anywhere.
import { $, describeError } from './ui.js';

const VIEWER = '../vnc/viewer.js';
const DEFAULT_PORT = 5900;
const RECENT_KEY = 'hometun.desktops.recent';
const MAX_RECENT = 6;
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** The allow list of the configuration the relay pushed last (empty = everything routed). */
let allowRules = [];

function vncError(code, message) {
  const error = new Error(message);
  error.name = 'VncError';
  error.code = code;
  return error;
}

function ipv4Number(text) {
  const m = IPV4.exec(text);
  if (!m) return null;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return null;
  return parts.reduce((n, p) => n * 256 + p, 0);
}

/** Whether rule `{network, ports, protocol}` lets TCP to `host:port` through. */
function ruleAllows(rule, address, port) {
  if (!rule || rule.protocol === 'udp') return false;
  const [net, prefixText = '32'] = String(rule.network || '').split('/');
  const base = ipv4Number(net);
  const prefix = Number(prefixText);
  if (base === null || !Number.isInteger(prefix) || prefix < 0 || prefix > 32) return false;
  const size = 2 ** (32 - prefix);
  if (Math.floor(address / size) !== Math.floor(base / size)) return false;
  const ports = Array.isArray(rule.ports) ? rule.ports : null;
  return !ports || (port >= ports[0] && port <= ports[1]);
}

function describeRule(rule) {
  const ports = Array.isArray(rule.ports)
    ? (rule.ports[0] === rule.ports[1] ? `:${rule.ports[0]}` : `:${rule.ports[0]}-${rule.ports[1]}`)
    : '';
  return `${rule.network}${ports}${rule.protocol ? `/${rule.protocol}` : ''}`;
}

/**
 * Why this device may not reach `host:port` by the pushed allow list, or null when it may. A
 * name is looked up through the tunnel first (when there is a list to check it against).
 */
async function deniedByAllowList(api, host, port) {
  if (!allowRules.length) return null;
  let shown = `${host}:${port}`;
  let address = ipv4Number(host);
  if (address === null) {
    let addresses;
    try {
      addresses = await api.resolve(host);
    } catch (error) {
      throw vncError(error && error.code ? error.code : 'vnc-failed', `Cannot look up ${host}: ${describeError(error)}`);
    }
    address = addresses && addresses.length ? ipv4Number(String(addresses[0])) : null;
    if (address === null) return null; // connectTcp says what is wrong with the name
    shown = `${host}:${port} (${addresses[0]})`;
  }
  if (allowRules.some((rule) => ruleAllows(rule, address, port))) return null;
  return `This device may not reach ${shown}: the relay's access list for it allows only `
    + `${allowRules.map(describeRule).join(', ')}. Ask the relay's owner to allow TCP port ${port} on ${host}.`;
}

/** A connectTcp failure in the words of someone opening a desktop. */
function connectFailure(error, host, port) {
  const target = `${host}:${port}`;
  switch (error && error.code) {
    case 'connection-refused':
      return vncError('vnc-refused', `${target} refused the connection: no VNC server listens on port ${port} there.`);
    case 'timeout':
      return vncError('vnc-timeout', `No answer from ${target}: the host may be off, nothing may listen on port ${port}, `
        + 'or the relay does not let this device reach it.');
    default:
      return vncError(error && error.code ? error.code : 'vnc-failed', `Cannot open ${target}: ${describeError(error)}`);
  }
}

function showFailure(element, error) {
  element.dataset.vncState = 'error';
  const message = document.createElement('p');
  message.className = 'error vnc-error';
  message.setAttribute('role', 'alert');
  message.textContent = describeError(error);
  element.replaceChildren(message);
}

/**
 * `hometun.vnc(element, {host, port = 5900, password?, username?, viewOnly?, scale = true, shared = true})`:
 * opens the desktop at host:port through the tunnel inside `element`. Resolves with the session
 * (`sendKey`, `sendCtrlAltDel`, `paste`, `setViewOnly`, `focus`, `disconnect`, `canvas`,
 * `state`, `closed`, `rfb`) once the desktop shows; rejects with a clear error (`code`:
 * `vnc-not-allowed`, `vnc-refused`, `vnc-timeout`, `vnc-auth-failed`, `vnc-failed`,
 * `vnc-replaced` when a later call on the same element took over before this one showed, ...).
 * `element` carries `data-vnc-state`: connecting, connected, disconnected or error.
 */
export async function openVnc(api, element, options = {}) {
  if (!(element instanceof Element)) throw vncError('invalid-argument', 'hometun.vnc needs an element to show the desktop in');
  const host = String(options.host || '').trim();
  const port = options.port == null || options.port === '' ? DEFAULT_PORT : Number(options.port);
  // The latest call whose host and port are usable owns the element (hometunVncCall) until it
  // settles: an earlier one still connecting gives up at its next step, its connection reset.
  const call = {};
  let marked = false;
  const replaced = () => marked && element.hometunVncCall !== call;
  const giveUp = (connection) => {
    if (connection) connection.abort();
    return vncError('vnc-replaced', `A later hometun.vnc call on this element replaced the one to ${host}:${port}.`);
  };
  // A failure is shown in the element when it is this call's to show (no other call owns the
  // element) and no desktop still shows there (or asks for its password): that one stays.
  const fail = (failure) => {
    const shown = element.hometunVncSession;
    const ours = marked ? !replaced() : element.hometunVncCall === undefined;
    if (ours && !(shown && ['connecting', 'connected'].includes(shown.state))) showFailure(element, failure);
    if (marked && !replaced()) delete element.hometunVncCall;
    return failure;
  };
  let denied;
  try {
    if (!host) throw vncError('invalid-argument', 'Type the address of the computer whose desktop to open');
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw vncError('invalid-argument', `${options.port} is not a port`);
    element.hometunVncCall = call;
    marked = true;
    denied = await deniedByAllowList(api, host, port);
  } catch (error) {
    throw replaced() ? giveUp() : fail(error.name === 'VncError' ? error : connectFailure(error, host, port));
  }
  if (replaced()) throw giveUp();
  if (denied) throw fail(vncError('vnc-not-allowed', denied));
  // One session per element: the desktop shown here before ends.
  const shown = element.hometunVncSession;
  if (shown) {
    shown.disconnect();
    delete element.hometunVncSession;
  }
  element.dataset.vncState = 'connecting';
  element.replaceChildren(Object.assign(document.createElement('p'), { className: 'hint', textContent: `Connecting to ${host}:${port}…` }));
  const viewer = import(VIEWER);
  let connection;
  try {
    connection = await api.connectTcp(host, port);
  } catch (error) {
    throw replaced() ? giveUp() : fail(connectFailure(error, host, port));
  }
  if (replaced()) throw giveUp(connection);
  let openViewer;
  try {
    ({ openViewer } = await viewer);
  } catch (error) {
    connection.abort();
    throw replaced() ? giveUp() : fail(vncError('vnc-failed', `The desktop viewer could not be loaded: ${describeError(error)}`));
  }
  if (replaced()) throw giveUp(connection);
  delete element.hometunVncCall;
  return openViewer(element, connection, `${host}:${port}`, options, describeError);
}

// ---- the card --------------------------------------------------------------------------------

function recentDesktops() {
  try {
    const list = JSON.parse(window.localStorage.getItem(RECENT_KEY) || '[]');
    return Array.isArray(list) ? list.filter((d) => d && typeof d.host === 'string' && Number.isInteger(d.port)) : [];
  } catch (_) {
    return [];
  }
}

function remember(host, port) {
  const list = [{ host, port }, ...recentDesktops().filter((d) => d.host !== host || d.port !== port)].slice(0, MAX_RECENT);
  try {
    window.localStorage.setItem(RECENT_KEY, JSON.stringify(list));
  } catch (_) {
    // Storage full or disabled: the desktop still opens.
  }
}

function buildCard() {
  const card = document.createElement('section');
  card.id = 'desktop';
  card.className = 'card';
  card.hidden = true;
  card.innerHTML = `
    <h2>Remote desktop</h2>
    <form id="desktop-form" class="row">
      <input id="desktop-host" type="text" autocomplete="off" spellcheck="false" list="desktop-recent"
             placeholder="192.168.0.10" aria-label="Computer (address or name)">
      <input id="desktop-port" type="number" min="1" max="65535" value="${DEFAULT_PORT}" aria-label="VNC port">
      <input id="desktop-password" type="password" autocomplete="off" placeholder="password (if any)" aria-label="VNC password">
      <label><input id="desktop-view-only" type="checkbox"> View only</label>
      <button id="desktop-open" type="submit">Open desktop</button>
    </form>
    <datalist id="desktop-recent"></datalist>
    <p id="desktop-refused" class="error" role="alert" hidden></p>
    <p class="hint">A VNC server on a computer at home (port 5900 unless it says otherwise), shown here through the tunnel.</p>
    <div id="desktop-viewer" hidden></div>`;
  return card;
}

function renderRecent() {
  $('desktop-recent').replaceChildren(...recentDesktops().map((d) => {
    const option = document.createElement('option');
    option.value = d.port === DEFAULT_PORT ? d.host : `${d.host}:${d.port}`;
    return option;
  }));
}

/** "host" or "host:port" typed in the host field; the port field otherwise. */
function typedTarget() {
  let host = $('desktop-host').value.trim();
  let port = $('desktop-port').value;
  const m = /^([^:\s]+):(\d+)$/.exec(host);
  if (m) {
    [, host, port] = m;
    $('desktop-host').value = host;
    $('desktop-port').value = port;
  }
  return { host, port: Number(port) };
}

/**
 * Adds the "Remote desktop" card (shown with the tools once the device is enrolled). Returns a
 * function to call with each configuration the relay pushes (its allow list is checked before
 * connecting, so a port the device may not reach gets a clear message at once).
 */
export function setupDesktop(api) {
  const card = buildCard();
  const tools = $('tools');
  tools.before(card);
  const follow = () => { card.hidden = tools.hidden; };
  new MutationObserver(follow).observe(tools, { attributes: true, attributeFilter: ['hidden'] });
  follow();
  renderRecent();

  $('desktop-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const { host, port } = typedTarget();
    const password = $('desktop-password').value;
    $('desktop-password').value = '';
    const viewer = $('desktop-viewer');
    const refused = $('desktop-refused');
    refused.hidden = true;
    viewer.hidden = false;
    try {
      const session = await openVnc(api, viewer, {
        host,
        port,
        password: password || undefined,
        viewOnly: $('desktop-view-only').checked,
      });
      remember(host, port);
      renderRecent();
      session.focus();
    } catch (error) {
      // The viewer shows what went wrong, unless it still shows a desktop (or a later
      // submission took over).
      if (viewer.dataset.vncState !== 'error' && error.code !== 'vnc-replaced') {
        refused.textContent = describeError(error);
        refused.hidden = false;
      }
    }
  });

  return (config) => {
    allowRules = (config && Array.isArray(config.allow)) ? config.allow : [];
  };
}
