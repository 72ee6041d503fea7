// The terminal: `hometun.ssh(...)` and friends (the SSH module and xterm.js load only when
// first used, so the first page load does not grow) and the "Terminal" card, where a person
// opens an SSH session to a home host in the page. See docs/ssh.md.
//
// The terminal element (#terminal-screen) carries data-ssh-state (connecting / open / closed /
// dropped / error) and a terminalText() method returning the terminal's buffer, for tests.
import { fitAboveKeyboard, keyRow, terminalCharacter, terminalSequence } from './keys.js';
import { $, describeError } from './ui.js';

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const SSH_MODULE = '../ssh/ssh.js';
const FONT = '"DejaVu Sans Mono", Menlo, Consolas, monospace';

let allowRules = [];

const sshModule = () => import(SSH_MODULE);

function ipNumber(text) {
  const m = IPV4.exec(text);
  return m ? m.slice(1).reduce((n, part) => n * 256 + Number(part), 0) : null;
}

/** Whether the pushed allow list lets this device reach TCP `address:port` (empty list: everything routed). */
function allowed(rules, address, port) {
  if (!Array.isArray(rules) || !rules.length) return true;
  const ip = ipNumber(address);
  if (ip == null) return true;
  return rules.some((rule) => {
    if (!rule || rule.protocol === 'udp') return false;
    const [net, prefix = '32'] = String(rule.network || '').split('/');
    const base = ipNumber(net);
    const bits = Number(prefix);
    if (base == null || !(bits >= 0 && bits <= 32)) return false;
    const size = 2 ** (32 - bits);
    const inNet = Math.floor(ip / size) === Math.floor(base / size);
    const ports = Array.isArray(rule.ports) ? rule.ports : null;
    return inNet && (!ports || (port >= ports[0] && port <= ports[1]));
  });
}

function describeRules(rules) {
  return rules
    .filter((r) => r && r.protocol !== 'udp')
    .map((r) => (r.ports ? `${r.network} port${r.ports[0] === r.ports[1] ? ` ${r.ports[0]}` : `s ${r.ports[0]}–${r.ports[1]}`}` : r.network))
    .join(', ') || 'no TCP at all';
}

/** An Error as the tunnel's are: `name` HometunError and a `code`. */
function hometunError(code, message) {
  const error = new Error(message);
  error.name = 'HometunError';
  error.code = code;
  return error;
}

function notAllowed(host, port) {
  return hometunError('not-allowed', `This device may not reach ${host}:${port}: the relay allows it only ${describeRules(allowRules)}. `
    + `Ask whoever runs the relay to allow TCP port ${port} on ${host} for this device.`);
}

/**
 * Checks the options of `hometun.ssh` before anything is opened or closed (host, user, port,
 * cols, rows, the allow list): resolves to `{host, port}`, or rejects with code
 * `invalid-argument` or `not-allowed`.
 */
async function checkTarget(api, options) {
  const host = String(options.host || '').trim();
  const port = Number(options.port ?? 22);
  if (!host || !options.user) throw hometunError('invalid-argument', 'host and user are needed');
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw hometunError('invalid-argument', `port ${options.port} is not a port`);
  for (const name of ['cols', 'rows']) {
    const size = options[name];
    // The bound of the SSH module's options.rs (MAX_TERMINAL_SIZE), beyond any screen.
    if (size != null && !(Number.isInteger(size) && size >= 1 && size <= 10000)) {
      throw hometunError('invalid-argument', `${name} ${size} is not a terminal size: a whole number from 1 to 10000`);
    }
  }
  let address = host;
  if (ipNumber(host) == null && allowRules.length) {
    const found = await api.resolve(host);
    address = (found && found[0]) || host;
  }
  if (!allowed(allowRules, address, port)) throw notAllowed(host, port);
  return { host, port };
}

/**
 * `hometun.ssh({host, port = 22, user, password?, key?: true, trustNewHostKey?: false, ...})`:
 * resolves to a session (see ssh/ssh.js). A destination the device's allow list excludes fails
 * at once with code `not-allowed`.
 */
export async function openSsh(api, options = {}) {
  const target = await checkTarget(api, options);
  return (await sshModule()).open(api, { ...options, ...target });
}

/** `hometun.sshPublicKey()`: the device's SSH public key as one OpenSSH line (made on first use). */
export async function sshPublicKey() {
  return (await sshModule()).publicKey();
}

/**
 * `hometun.sshForgetHostKey("host:port")`: forgets a pinned host key; resolves whether one was
 * pinned, rejects with code `pins-not-saved` (the pin stays) when the storage cannot keep that.
 */
export async function sshForgetHostKey(target) {
  return (await sshModule()).forgetHostKey(target);
}

// ---- the terminal card -----------------------------------------------------------------------

let xtermLoading = null;

/** Loads xterm.js, its fit addon and its style sheet (bundled by the page build under ssh/). */
function loadXterm() {
  xtermLoading ??= (async () => {
    for (const sheet of ['xterm.css', 'terminal.css']) {
      const css = document.createElement('link');
      css.rel = 'stylesheet';
      css.href = new URL(`../ssh/${sheet}`, import.meta.url).href;
      document.head.append(css);
    }
    await import('../ssh/xterm.js');
    await import('../ssh/addon-fit.js');
    return { Terminal: globalThis.Terminal, FitAddon: globalThis.FitAddon.FitAddon };
  })();
  return xtermLoading;
}

/** The session open in the card: `{session, term}`. */
let current = null;
/** The connection the card is making: `{controller, term}` (an AbortController gives it up). */
let attempt = null;
/** Submissions of the card so far: the latest one decides what the card shows. */
let submissions = 0;
/** Keeps the terminal and its row of keys above a phone's keyboard (set up with the card). */
let fitting = null;

/** Shows or hides the phone's row of keys under the terminal, and fits the terminal to what is left. */
function showKeys(on) {
  $('terminal-keys').hidden = !on;
  if (fitting) fitting.refit();
}

function setState(state, message = '') {
  $('terminal-screen').dataset.sshState = state;
  $('terminal-status').textContent = message;
  $('terminal-status').className = state === 'error' || state === 'dropped' ? 'error' : 'hint';
  $('terminal-close').disabled = state !== 'open' && state !== 'connecting';
}

/** Input the card cannot connect with: said in the status line; what the card shows goes on. */
function refuse(error) {
  if (!current && !attempt) {
    setState('error', describeError(error));
    return;
  }
  $('terminal-status').textContent = describeError(error);
  $('terminal-status').className = 'error';
}

/**
 * Ends what the card shows: the connection being made is given up (its TCP connection reset),
 * the open session closed. Each disposes of its own terminal when it sees it was ended.
 */
function endTerminal() {
  if (attempt) attempt.controller.abort();
  if (current) current.session.close();
  attempt = null;
  current = null;
}

async function startTerminal(api, options) {
  const submission = ++submissions;
  let checked;
  try {
    checked = await checkTarget(api, options);
  } catch (error) {
    if (submission === submissions) refuse(error);
    return;
  }
  if (submission !== submissions) return;
  endTerminal();
  showKeys(false);
  const mine = { controller: new AbortController(), term: null };
  attempt = mine;
  const target = `${checked.host}:${checked.port}`;
  const screen = $('terminal-screen');
  screen.hidden = false;
  $('terminal-forget').hidden = true;
  setState('connecting', `Connecting to ${options.user}@${target}…`);
  const { Terminal, FitAddon } = await loadXterm();
  if (attempt !== mine) return;
  screen.replaceChildren();
  const term = new Terminal({ fontFamily: FONT, fontSize: 14, cursorBlink: true, scrollback: 5000, convertEol: false });
  mine.term = term;
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(screen);
  fit.fit();
  screen.terminalText = () => {
    const buffer = term.buffer.active;
    const lines = [];
    for (let i = 0; i < buffer.length; i += 1) lines.push(buffer.getLine(i).translateToString(true));
    return lines.join('\n').replace(/\n+$/, '');
  };
  let session;
  try {
    session = await (await sshModule()).open(api, {
      ...options,
      ...checked,
      signal: mine.controller.signal,
      cols: term.cols,
      rows: term.rows,
      askHostKey: ({ target: name, fingerprint }) => window.confirm(
        `First connection to ${name}. Its host key fingerprint is\n\n${fingerprint}\n\n`
        + 'Trust it? Compare it with the server\'s (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub).'),
      askPrompt: (prompt, echo) => window.prompt(echo ? prompt : `${prompt} (typed text is shown here)`) ?? null,
    });
  } catch (error) {
    term.dispose();
    // Given up (Disconnect, or a newer connection): whoever ended it has said so.
    if (attempt !== mine) return;
    attempt = null;
    screen.hidden = true;
    showKeys(false);
    setState('error', describeError(error));
    if (error && error.code === 'host-key-changed') {
      const button = $('terminal-forget');
      button.hidden = false;
      button.onclick = async () => {
        try {
          await sshForgetHostKey(target);
        } catch (failure) {
          setState('error', describeError(failure));
          return;
        }
        button.hidden = true;
        setState('closed', `The old key of ${target} is forgotten; connect again to see and accept the new one.`);
      };
    }
    return;
  }
  if (attempt !== mine) {
    session.close();
    term.dispose();
    return;
  }
  attempt = null;
  current = { session, term };
  setState('open', `${options.user}@${target} — host key ${session.hostKey}`);
  session.onBytes((bytes) => term.write(bytes));
  // A write the session refuses (a server that takes nothing in) is dropped, as a key typed into a hung
  // connection would be.
  const send = (data) => { session.write(data).catch(() => {}); };
  // A phone's missing keys, typed as the keyboard's are (to the bottom of the scrollback, the
  // selection cleared). A latched Ctrl or Alt goes to the next character typed; what the
  // terminal itself answers (its replies start with an Escape) passes by it.
  const keys = keyRow({
    onKey: (key, modifiers) => term.input(terminalSequence(key, modifiers, term.modes.applicationCursorKeysMode), true),
    refocus: () => term.focus(),
  });
  $('terminal-keys').replaceChildren(keys.element);
  showKeys(true);
  term.onData((data) => {
    const one = [...data].length === 1 && data !== '\x1b';
    send(keys.latched && one ? terminalCharacter(data, keys.take()) : data);
  });
  term.onResize(({ cols, rows }) => { session.resize(cols, rows); });
  term.attachCustomKeyEventHandler((event) => {
    const shortcut = event.type === 'keydown' && event.shiftKey && (event.ctrlKey || event.metaKey);
    if (shortcut && event.code === 'KeyC') {
      if (term.hasSelection()) navigator.clipboard.writeText(term.getSelection()).catch(() => {});
      return false;
    }
    if (shortcut && event.code === 'KeyV') {
      navigator.clipboard.readText().then((text) => term.paste(text)).catch(() => {});
      return false;
    }
    return true;
  });
  const observer = new ResizeObserver(() => { try { fit.fit(); } catch (_) { /* hidden */ } });
  observer.observe(screen);
  term.focus();
  session.onClose(({ reason, dropped }) => {
    observer.disconnect();
    if (!current || current.session !== session) {
      // Replaced by a newer connection, which the card shows now.
      term.dispose();
      return;
    }
    current = null;
    showKeys(false);
    // A dropped connection in red, a normal end in yellow.
    term.write(`\r\n\x1b[1;${dropped ? 31 : 33}m[${reason}]\x1b[0m\r\n`);
    if (dropped) setState('dropped', `Disconnected: ${reason}. Open the terminal again to reconnect.`);
    else setState('closed', `Disconnected: ${reason}.`);
  });
}

/**
 * Sets up the Terminal card; returns the function to call with each pushed configuration
 * (its allow list decides what `hometun.ssh` may try).
 */
export function setupTerminal(api) {
  fitting = fitAboveKeyboard({ screen: $('terminal-screen'), row: $('terminal-keys') });
  $('terminal-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const useKey = $('terminal-auth').value === 'key';
    const options = {
      host: $('terminal-host').value.trim(),
      port: Number($('terminal-port').value || 22),
      user: $('terminal-user').value.trim(),
      key: useKey,
      password: useKey ? undefined : $('terminal-password').value,
    };
    $('terminal-password').value = '';
    startTerminal(api, options).catch((error) => setState('error', describeError(error)));
  });
  $('terminal-auth').addEventListener('change', () => {
    $('terminal-password').hidden = $('terminal-auth').value === 'key';
  });
  $('terminal-close').addEventListener('click', () => {
    if (attempt) {
      endTerminal();
      $('terminal-screen').hidden = true;
      showKeys(false);
      setState('closed', 'Connecting given up.');
    } else if (current) current.session.close();
  });
  $('terminal-copy-key').addEventListener('click', async () => {
    const out = $('terminal-pubkey');
    try {
      out.value = await sshPublicKey();
      out.hidden = false;
      out.select();
      await navigator.clipboard.writeText(out.value);
      $('terminal-key-note').textContent = 'Copied. Add it as one line to ~/.ssh/authorized_keys on the server.';
    } catch (error) {
      $('terminal-key-note').textContent = out.value ? 'Select and copy the line above into ~/.ssh/authorized_keys on the server.' : describeError(error);
    }
  });
  return (config) => { allowRules = (config && config.allow) || []; };
}
