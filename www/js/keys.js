// The keys a phone's keyboard lacks (Esc, Tab, Ctrl, Alt, arrows, Home, End, PgUp, PgDn), as a
// row of buttons under a terminal or a desktop. Shown where the main pointer is a finger (style:
// `.keys`). A tap keeps the focus where it was, so the phone's keyboard stays up. Ctrl and Alt
// latch: they apply to the next key, from the row or from the keyboard, and then let go; a
// second tap lets go without a key.

/** [key name, text, spoken name where the text is a symbol]. */
const KEYS = [
  ['Escape', 'Esc', 'Escape'], ['Tab', 'Tab'], ['Control', 'Ctrl', 'Control'], ['Alt', 'Alt'],
  ['ArrowLeft', '←', 'Left arrow'], ['ArrowUp', '↑', 'Up arrow'], ['ArrowDown', '↓', 'Down arrow'],
  ['ArrowRight', '→', 'Right arrow'], ['Home', 'Home'], ['End', 'End'], ['PageUp', 'PgUp', 'Page up'],
  ['PageDown', 'PgDn', 'Page down'],
];
const MODIFIERS = { Control: 'ctrl', Alt: 'alt' };

/**
 * A row of keys. `onKey(name, {ctrl, alt})` gets each tapped key (a `KeyboardEvent.key` name)
 * with the modifiers latched for it; `refocus()` is called after each tap. `take()` hands the
 * latched modifiers to a key that came from the keyboard and lets them go.
 */
export function keyRow({ onKey, refocus = () => {}, label = 'Keys your keyboard may lack' }) {
  const latched = { ctrl: false, alt: false };
  const element = document.createElement('div');
  element.className = 'keys';
  element.setAttribute('role', 'toolbar');
  element.setAttribute('aria-label', label);
  const buttons = {};
  const show = () => {
    for (const [key, name] of Object.entries(MODIFIERS)) buttons[key].setAttribute('aria-pressed', String(latched[name]));
  };
  const take = () => {
    const modifiers = { ...latched };
    latched.ctrl = false;
    latched.alt = false;
    show();
    return modifiers;
  };
  for (const [key, text, spoken] of KEYS) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'secondary';
    button.textContent = text;
    button.dataset.key = key;
    if (spoken) button.setAttribute('aria-label', spoken);
    // No focus moves on a tap or a click: the keyboard stays up and the keys go where they went.
    button.addEventListener('pointerdown', (event) => event.preventDefault());
    button.addEventListener('mousedown', (event) => event.preventDefault());
    button.addEventListener('click', () => {
      const modifier = MODIFIERS[key];
      if (modifier) {
        latched[modifier] = !latched[modifier];
        show();
      } else {
        onKey(key, take());
      }
      refocus();
    });
    buttons[key] = button;
    element.append(button);
  }
  show();
  return { element, take, get latched() { return latched.ctrl || latched.alt; } };
}

/** The control character Ctrl gives `char` in a terminal (Ctrl-C is 0x03), or null for none. */
export function controlCharacter(char) {
  if (/^[a-z]$/i.test(char)) return String.fromCharCode(char.toUpperCase().charCodeAt(0) - 64);
  const special = { '@': 0, ' ': 0, '2': 0, '[': 27, '3': 27, '\\': 28, '4': 28, ']': 29, '5': 29,
    '^': 30, '6': 30, '_': 31, '7': 31, '-': 31, '/': 31, '?': 127, '8': 127, '\x7f': 8 };
  return char in special ? String.fromCharCode(special[char]) : null;
}

/**
 * What a terminal gets for the named key with `modifiers`, as xterm.js sends it from a keyboard
 * (not on a Mac): arrows, Home and End in the cursor-key mode the program asked for
 * (`applicationCursor`), with modifiers as `CSI 1;m X` (m = 1 + 2 for Alt + 4 for Ctrl; an arrow
 * with Alt alone as with Ctrl, word by word in bash); PgUp and PgDn with Ctrl as `CSI 5;m~` (Alt
 * alone changes nothing); Escape with Alt as two Escapes; Tab as a tab.
 */
export function terminalSequence(key, { ctrl = false, alt = false } = {}, applicationCursor = false) {
  const m = 1 + (alt ? 2 : 0) + (ctrl ? 4 : 0);
  const arrow = { ArrowUp: 'A', ArrowDown: 'B', ArrowRight: 'C', ArrowLeft: 'D' }[key];
  const edge = { Home: 'H', End: 'F' }[key];
  const letter = arrow || edge;
  if (letter) {
    if (m > 1) return `\x1b[1;${arrow && m === 3 ? 5 : m}${letter}`;
    return `\x1b${applicationCursor ? 'O' : '['}${letter}`;
  }
  const tilde = { PageUp: 5, PageDown: 6 }[key];
  if (tilde) return ctrl ? `\x1b[${tilde};${m}~` : `\x1b[${tilde}~`;
  if (key === 'Escape') return alt ? '\x1b\x1b' : '\x1b';
  if (key === 'Tab') return '\t';
  return '';
}

/**
 * One typed character with latched modifiers, as a terminal gets it: Ctrl makes it a control
 * character (where there is one), Alt puts an Escape in front.
 */
export function terminalCharacter(char, { ctrl = false, alt = false } = {}) {
  const base = (ctrl && controlCharacter(char)) || char;
  return alt ? `\x1b${base}` : base;
}

/**
 * Keeps `screen` (a terminal, a desktop) and the row of keys `row` under it on what a phone
 * shows, its keyboard up or not. Where the main pointer is a finger, the screen's height is cut
 * to what the visible part of the page (the visual viewport, which the phone's keyboard shrinks)
 * leaves under the page's sticky bar with the row below it: never above the style sheet's
 * height, never below `min` pixels. When the visible part changes by a keyboard's height (the
 * keyboard comes or goes) while the focus is in `scope`, the page scrolls the screen's top to
 * just under the bar, so the row sits on the keyboard. Full screen and a mouse keep the style
 * sheet's height; a page zoomed in with two fingers (which shrinks the visual viewport too)
 * keeps what it had. `refit()` after the screen or the row is shown or hidden; `stop()` when
 * they go.
 */
export function fitAboveKeyboard({ screen, row, scope = screen, min = 120 }) {
  const viewport = window.visualViewport || window;
  const finger = window.matchMedia('(pointer: coarse)');
  const visible = () => viewport.height || window.innerHeight;
  const zoomed = () => Math.abs((viewport.scale || 1) - 1) > 0.01;
  const style = (height = '', minHeight = '', margin = '') => {
    Object.assign(screen.style, { height, minHeight, scrollMarginTop: margin });
  };
  const refit = () => {
    if (zoomed()) return;
    style();
    const bar = document.querySelector('body > .bar');
    if (!finger.matches || screen.hidden || document.fullscreenElement || !row.offsetHeight || !bar) return;
    const top = bar.getBoundingClientRect().height;
    const full = screen.getBoundingClientRect();
    const between = Math.max(0, row.getBoundingClientRect().top - full.bottom);
    const room = Math.floor(visible() - top - between - row.offsetHeight - 8);
    if (room < full.height) style(`${Math.max(min, room)}px`, '0', `${Math.ceil(top) + 4}px`);
    else style('', '', `${Math.ceil(top) + 4}px`);
  };
  let last = visible();
  const resized = () => {
    if (zoomed()) return;
    // A keyboard, not the address bar folding away as the page scrolls.
    const changed = Math.abs(visible() - last) >= 100;
    last = visible();
    refit();
    // In the next frame: after the browser's own scrolling for the resize (a focused field
    // brought into view), which would otherwise undo it.
    if (changed && screen.style.scrollMarginTop && scope.contains(document.activeElement)) {
      requestAnimationFrame(() => screen.scrollIntoView({ block: 'start' }));
    }
  };
  viewport.addEventListener('resize', resized);
  finger.addEventListener('change', refit);
  document.addEventListener('fullscreenchange', refit);
  return {
    refit,
    stop() {
      viewport.removeEventListener('resize', resized);
      finger.removeEventListener('change', refit);
      document.removeEventListener('fullscreenchange', refit);
      style();
    },
  };
}
