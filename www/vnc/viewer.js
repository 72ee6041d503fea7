// The remote desktop viewer: noVNC's RFB (unmodified, from npm) drawing into a canvas, its
// WebSocket replaced by a tunnel TCP stream (channel.js), with a small toolbar: status, view
// only, a phone's keyboard and 1:1 view, Ctrl-Alt-Del, clipboard, full screen, disconnect; a
// password prompt when the server asks.
//
// scripts/build-page.sh bundles this file with noVNC into dist/vnc/viewer.js; the page loads it
// only when a desktop is opened (js/desktop.js). docs/vnc.md describes the API.
import RFB from '@novnc/novnc';
// noVNC's own inflater (the package exports only RFB; the same module RFB imports).
import Inflator from '../node_modules/@novnc/novnc/core/inflator.js';
import { fitAboveKeyboard, keyRow } from '../js/keys.js';
import { TunnelChannel } from './channel.js';
import { softKeyboard } from './touch.js';

// The server names the size its compressed data unpacks to (a clipboard text, a rectangle):
// past what a screen could need, the connection fails rather than the launcher setting aside
// gigabytes for it.
const MAX_UNPACKED = 64 << 20;
/** The last size refused, for the viewer whose connection it ended (noVNC says only "dropped"). */
let refusedUnpack = 0;
const inflate = Inflator.prototype.inflate;
Inflator.prototype.inflate = function inflateBounded(expected) {
  if (!(expected <= MAX_UNPACKED)) {
    refusedUnpack = expected;
    throw new Error(`the VNC server sent data that unpacks to ${expected} bytes`);
  }
  return inflate.call(this, expected);
};

const STYLE = `
.vnc { display: flex; flex-direction: column; gap: .4rem; }
.vnc [hidden] { display: none !important; }
.vnc-bar { display: flex; flex-wrap: wrap; align-items: center; gap: .4rem; }
.vnc-bar .vnc-title { font-weight: 600; flex: 1; min-width: 10rem; overflow-wrap: anywhere; }
.vnc-status { margin: 0; color: #666; }
.vnc-screen { position: relative; height: min(75vh, 900px); min-height: 240px; background: #202020; }
.vnc-screen .vnc-ended { position: absolute; inset: 0; margin: 0; display: flex; align-items: center;
  justify-content: center; padding: 1rem; text-align: center; color: #eee; }
.vnc:fullscreen .vnc-screen { height: 100%; flex: 1; }
.vnc-clipboard textarea { width: 100%; box-sizing: border-box; }
.vnc .vnc-keyboard, .vnc .vnc-zoom { display: none; }
@media (pointer: coarse) { .vnc .vnc-keyboard, .vnc .vnc-zoom { display: inline-block; } }
.vnc .vnc-zoom[aria-pressed="true"] { background: var(--accent, #2f6f5e); color: var(--accent-fg, #fff); }
/* Fixed at the top of the screen: typing into it never scrolls the page (a browser brings the
   caret into view), and it is above a phone's keyboard. */
.vnc-keyboard-input { position: fixed; left: 0; top: 0; width: 1px; height: 1px; padding: 0; border: 0;
  opacity: 0; resize: none; font-size: 16px; pointer-events: none; }
.vnc[data-vnc-state="error"] .vnc-status, .vnc[data-vnc-state="disconnected"] .vnc-status { color: #b00020; }
`;

function addStyle() {
  if (document.getElementById('vnc-style')) return;
  const style = document.createElement('style');
  style.id = 'vnc-style';
  style.textContent = STYLE;
  document.head.append(style);
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  node.append(...children);
  return node;
}

/** The toolbar, the password form, the clipboard box and the screen, inside `element`. */
function buildUi(element, title) {
  addStyle();
  const ui = {
    title: el('span', { className: 'vnc-title', textContent: title }),
    status: el('p', { className: 'vnc-status', role: 'status' }),
    viewOnly: el('input', { type: 'checkbox', className: 'vnc-view-only' }),
    keyboard: el('button', { type: 'button', className: 'vnc-keyboard secondary', textContent: 'Keyboard' }),
    zoom: el('button', { type: 'button', className: 'vnc-zoom secondary', textContent: '1:1' }),
    cad: el('button', { type: 'button', className: 'vnc-cad secondary', textContent: 'Ctrl-Alt-Del' }),
    clipboardButton: el('button', { type: 'button', className: 'vnc-clipboard-button secondary', textContent: 'Clipboard' }),
    fullscreen: el('button', { type: 'button', className: 'vnc-fullscreen secondary', textContent: 'Full screen' }),
    close: el('button', { type: 'button', className: 'vnc-disconnect secondary', textContent: 'Disconnect' }),
    user: el('input', { type: 'text', className: 'vnc-username', autocomplete: 'username', placeholder: 'user', hidden: true }),
    password: el('input', { type: 'password', className: 'vnc-password', autocomplete: 'current-password', placeholder: 'VNC password' }),
    clipboardText: el('textarea', { rows: 3, className: 'vnc-clipboard-text' }),
    clipboardSend: el('button', { type: 'button', className: 'vnc-clipboard-send secondary', textContent: 'Send to the desktop' }),
    screen: el('div', { className: 'vnc-screen' }),
  };
  ui.user.setAttribute('aria-label', 'VNC user name');
  ui.password.setAttribute('aria-label', 'VNC password');
  ui.clipboardText.setAttribute('aria-label', 'Clipboard text');
  ui.form = el('form', { className: 'vnc-login row', hidden: true }, ui.user, ui.password,
    el('button', { type: 'submit', textContent: 'Log in' }));
  ui.clipboard = el('div', { className: 'vnc-clipboard', hidden: true }, ui.clipboardText, ui.clipboardSend);
  const viewOnlyLabel = el('label', {}, ui.viewOnly, ' View only');
  ui.zoom.setAttribute('aria-label', 'Actual size');
  ui.zoom.setAttribute('aria-pressed', 'false');
  const bar = el('div', { className: 'vnc-bar' }, ui.title, viewOnlyLabel, ui.keyboard, ui.zoom, ui.cad,
    ui.clipboardButton, ui.fullscreen, ui.close);
  ui.keys = el('div', { className: 'vnc-keys' });
  element.classList.add('vnc');
  element.replaceChildren(bar, ui.status, ui.form, ui.clipboard, ui.screen, ui.keys);
  return ui;
}

/**
 * Opens a viewer in `element` on the open tunnel TCP connection `connection` to `target`
 * ("host:port"). Resolves with the session once the desktop shows, rejects when the session
 * ends before that (wrong password, not a VNC server).
 */
export function openViewer(element, connection, target, options, describeError) {
  const ui = buildUi(element, target);
  const setState = (state, text) => {
    element.dataset.vncState = state;
    ui.status.textContent = text;
  };
  setState('connecting', 'Connecting…');

  const channel = new TunnelChannel(connection, describeError);
  const rfb = new RFB(ui.screen, channel, { shared: options.shared !== false });
  rfb.scaleViewport = options.scale !== false;
  rfb.resizeSession = false;
  rfb.viewOnly = Boolean(options.viewOnly);
  rfb.focusOnClick = true;
  ui.viewOnly.checked = rfb.viewOnly;

  // A phone: its keyboard types into a hidden field whose text goes to the desktop as keys, and
  // the row gives the keys it lacks (see touch.js).
  const typing = softKeyboard(rfb, ui.screen);
  const keys = keyRow({ onKey: (key, modifiers) => typing.press(key, modifiers) });
  typing.useModifiers(keys.take);
  ui.keys.append(keys.element);
  ui.keyboard.addEventListener('click', () => typing.show());
  // The desktop and the row stay above the phone's keyboard while it is up.
  const fitting = fitAboveKeyboard({ screen: ui.screen, row: ui.keys, scope: element, min: 160 });
  // Only while keys would reach the desktop: connected, and not view only.
  const offerTyping = (on) => {
    ui.keyboard.hidden = !on;
    keys.element.hidden = !on;
    fitting.refit();
  };
  offerTyping(false);
  // A phone's screen shows a large desktop too small to read: 1:1 shows its pixels as they are,
  // and a finger's drag moves the view over it (taps still click).
  const actualSize = (on) => {
    rfb.scaleViewport = !on && options.scale !== false;
    rfb.clipViewport = on;
    rfb.dragViewport = on;
    ui.zoom.setAttribute('aria-pressed', String(on));
  };
  ui.zoom.hidden = true;
  ui.zoom.addEventListener('click', () => actualSize(ui.zoom.getAttribute('aria-pressed') !== 'true'));

  // The given credentials answer the server's first request only: a second one means they
  // were not enough, and the person is asked.
  let givenCredentials = options.password != null;
  let securityFailure = null;
  let userClosed = false;
  let connected = false;
  let desktopName = '';
  let settle;
  const ready = new Promise((resolve, reject) => { settle = { resolve, reject }; });
  let ended;
  const closed = new Promise((resolve) => { ended = resolve; });

  const session = {
    rfb,
    element,
    get state() { return element.dataset.vncState; },
    get canvas() { return ui.screen.querySelector('canvas'); },
    get desktopName() { return desktopName; },
    /** Presses and releases a key (X keysym, KeyboardEvent.code); `down` true/false sends one half. */
    sendKey(keysym, code = null, down = undefined) { rfb.sendKey(keysym, code, down); },
    sendCtrlAltDel() { rfb.sendCtrlAltDel(); },
    /** Puts `text` on the desktop's clipboard. */
    paste(text) { rfb.clipboardPasteFrom(String(text)); },
    setViewOnly(on) {
      rfb.viewOnly = Boolean(on);
      ui.viewOnly.checked = rfb.viewOnly;
      offerTyping(connected && !rfb.viewOnly);
    },
    focus() { rfb.focus(); },
    disconnect() {
      if (!userClosed && (element.dataset.vncState === 'connecting' || element.dataset.vncState === 'connected')) {
        userClosed = true;
        rfb.disconnect();
      }
      return closed;
    },
    /** Resolves with the message shown once the session has ended. */
    closed,
  };

  // A later hometun.vnc on the same element ends this session first (see js/desktop.js).
  element.hometunVncSession = session;

  rfb.addEventListener('credentialsrequired', (event) => {
    const types = (event.detail && event.detail.types) || ['password'];
    const wantsUser = types.includes('username');
    if (givenCredentials && (!wantsUser || options.username != null)) {
      givenCredentials = false;
      const credentials = { password: String(options.password) };
      if (wantsUser) credentials.username = String(options.username);
      rfb.sendCredentials(credentials);
      return;
    }
    givenCredentials = false;
    ui.user.hidden = !wantsUser;
    ui.user.required = wantsUser;
    ui.form.hidden = false;
    setState('connecting', wantsUser ? 'The desktop asks for a user name and password.' : 'The desktop asks for its password.');
    (wantsUser ? ui.user : ui.password).focus();
  });
  ui.form.addEventListener('submit', (event) => {
    event.preventDefault();
    const credentials = { password: ui.password.value };
    if (!ui.user.hidden) credentials.username = ui.user.value;
    ui.password.value = '';
    ui.form.hidden = true;
    setState('connecting', 'Logging in…');
    rfb.sendCredentials(credentials);
  });
  rfb.addEventListener('securityfailure', (event) => {
    const reason = event.detail && event.detail.reason;
    securityFailure = `The desktop refused the login: ${reason || 'wrong password'}.`;
  });
  rfb.addEventListener('desktopname', (event) => {
    desktopName = (event.detail && event.detail.name) || '';
    ui.title.textContent = desktopName ? `${desktopName} (${target})` : target;
  });
  rfb.addEventListener('clipboard', (event) => {
    ui.clipboardText.value = (event.detail && event.detail.text) || '';
  });
  rfb.addEventListener('connect', () => {
    connected = true;
    offerTyping(!rfb.viewOnly);
    ui.zoom.hidden = false;
    ui.form.hidden = true;
    setState('connected', rfb.viewOnly ? 'Connected (view only)' : 'Connected');
    settle.resolve(session);
  });
  rfb.addEventListener('disconnect', () => {
    const closeReason = channel.closeReason;
    let message;
    let state = 'disconnected';
    if (userClosed) {
      message = 'Disconnected.';
    } else if (refusedUnpack) {
      message = `${target} sent a picture that unpacks to ${refusedUnpack} bytes, more than a screen needs: the connection was closed.`;
      refusedUnpack = 0;
      state = 'error';
    } else if (securityFailure) {
      message = securityFailure;
      state = 'error';
    } else if (connected) {
      message = `The connection to ${target} dropped${closeReason ? `: ${closeReason}` : ''}.`;
    } else {
      message = `${target} ended the connection before the desktop showed${closeReason ? ` (${closeReason})` : ''}: is it a VNC server?`;
      state = 'error';
    }
    ui.form.hidden = true;
    setState(state, message);
    ui.screen.replaceChildren(el('p', { className: 'vnc-ended', textContent: message }));
    for (const b of [ui.cad, ui.clipboardSend, ui.close]) b.disabled = true;
    offerTyping(false);
    ui.zoom.hidden = true;
    typing.stop();
    fitting.stop();
    ui.viewOnly.disabled = true;
    ended(message);
    if (!connected) {
      const error = new Error(message);
      error.name = 'VncError';
      error.code = securityFailure ? 'vnc-auth-failed' : 'vnc-failed';
      settle.reject(error);
    }
  });

  ui.viewOnly.addEventListener('change', () => {
    session.setViewOnly(ui.viewOnly.checked);
    if (connected) setState('connected', rfb.viewOnly ? 'Connected (view only)' : 'Connected');
  });
  ui.cad.addEventListener('click', () => rfb.sendCtrlAltDel());
  ui.clipboardButton.addEventListener('click', () => { ui.clipboard.hidden = !ui.clipboard.hidden; });
  ui.clipboardSend.addEventListener('click', () => rfb.clipboardPasteFrom(ui.clipboardText.value));
  ui.fullscreen.addEventListener('click', () => {
    if (document.fullscreenElement) document.exitFullscreen();
    else if (element.requestFullscreen) element.requestFullscreen().catch(() => {});
  });
  ui.close.addEventListener('click', () => session.disconnect());

  return ready;
}
