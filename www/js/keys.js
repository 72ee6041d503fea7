// The keys a phone's keyboard lacks (Esc, Tab, Ctrl, Alt, arrows, Home, End, PgUp, PgDn), as a
// row of buttons under a terminal or a desktop. Shown where the main pointer is a finger (style:
// `.keys`). A tap keeps the focus where it was, so the phone's keyboard stays up. Ctrl and Alt
// latch: they apply to the next key, from the row or from the keyboard, and then let go; a
// second tap lets go without a key.

const KEYS = [
  ['Escape', 'Esc'], ['Tab', 'Tab'], ['Control', 'Ctrl'], ['Alt', 'Alt'],
  ['ArrowLeft', '←'], ['ArrowUp', '↑'], ['ArrowDown', '↓'], ['ArrowRight', '→'],
  ['Home', 'Home'], ['End', 'End'], ['PageUp', 'PgUp'], ['PageDown', 'PgDn'],
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
  for (const [key, text] of KEYS) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'secondary';
    button.textContent = text;
    button.dataset.key = key;
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
    '^': 30, '6': 30, '_': 31, '7': 31, '-': 31, '/': 31, '?': 127, '8': 127 };
  return char in special ? String.fromCharCode(special[char]) : null;
}

/**
 * What a terminal gets for the named key with `modifiers`, as xterm sends it: arrows, Home and
 * End in the cursor-key mode the program asked for (`applicationCursor`), a modifier as
 * `CSI 1;m X`, Alt as an Escape in front of Escape and Tab.
 */
export function terminalSequence(key, { ctrl = false, alt = false } = {}, applicationCursor = false) {
  const modifier = 1 + (alt ? 2 : 0) + (ctrl ? 4 : 0);
  const letter = { ArrowUp: 'A', ArrowDown: 'B', ArrowRight: 'C', ArrowLeft: 'D', Home: 'H', End: 'F' }[key];
  if (letter) {
    if (modifier > 1) return `\x1b[1;${modifier}${letter}`;
    return `\x1b${applicationCursor ? 'O' : '['}${letter}`;
  }
  const tilde = { PageUp: 5, PageDown: 6 }[key];
  if (tilde) return modifier > 1 ? `\x1b[${tilde};${modifier}~` : `\x1b[${tilde}~`;
  const plain = { Escape: '\x1b', Tab: '\t' }[key];
  if (plain === undefined) return '';
  return alt ? `\x1b${plain}` : plain;
}

/**
 * One typed character with latched modifiers, as a terminal gets it: Ctrl makes it a control
 * character (where there is one), Alt puts an Escape in front.
 */
export function terminalCharacter(char, { ctrl = false, alt = false } = {}) {
  const base = (ctrl && controlCharacter(char)) || char;
  return alt ? `\x1b${base}` : base;
}
