// Typing on a desktop from a phone. A canvas cannot bring up a phone's keyboard, so the viewer's
// Keyboard button focuses a hidden text field, and what the keyboard does to the field's text
// goes to the desktop as keys: each new character as its keysym, each deleted one as BackSpace,
// Enter, Tab and the like from their key events. The field keeps some filler text so that
// Backspace on an empty line still has something to delete (Android keyboards send no key
// event for it, only the deletion). While the field has the focus, a tap on the desktop clicks
// there (noVNC's touch gestures) without taking the focus, so the keyboard stays up.
import keysymdef from '../node_modules/@novnc/novnc/core/input/keysymdef.js';

/** X keysyms of the named keys (`KeyboardEvent.key`) that the field or the key row sends. */
const NAMED = {
  Enter: 0xff0d, Backspace: 0xff08, Tab: 0xff09, Escape: 0xff1b, Delete: 0xffff,
  ArrowLeft: 0xff51, ArrowUp: 0xff52, ArrowRight: 0xff53, ArrowDown: 0xff54,
  Home: 0xff50, End: 0xff57, PageUp: 0xff55, PageDown: 0xff56,
};
const CONTROL = [0xffe3, 'ControlLeft'];
const ALT = [0xffe9, 'AltLeft'];
const FILLER = '_'.repeat(40);

/**
 * The hidden field for `rfb`, inside `screen`: `show()` focuses it (call it from a tap, so a
 * phone shows its keyboard); `press(key, modifiers)` sends a named key or one character;
 * `useModifiers(take)` gives it the latched modifiers of a key row for the next key typed.
 */
export function softKeyboard(rfb, screen) {
  const field = document.createElement('textarea');
  field.className = 'vnc-keyboard-input';
  field.setAttribute('aria-label', 'Keyboard for the desktop');
  for (const [name, value] of [['autocapitalize', 'off'], ['autocomplete', 'off'], ['autocorrect', 'off'], ['spellcheck', 'false']]) {
    field.setAttribute(name, value);
  }
  field.tabIndex = -1;
  screen.append(field);
  let take = () => ({ ctrl: false, alt: false });
  let last = '';
  const reset = () => {
    field.value = FILLER;
    last = FILLER;
    field.setSelectionRange(FILLER.length, FILLER.length);
  };

  const press = (key, modifiers = take()) => {
    const keysym = NAMED[key] ?? (key.length ? keysymdef.lookup(key.codePointAt(0)) : 0);
    if (!keysym) return;
    const held = [modifiers.ctrl && CONTROL, modifiers.alt && ALT].filter(Boolean);
    for (const [sym, code] of held) rfb.sendKey(sym, code, true);
    rfb.sendKey(keysym, null);
    for (const [sym, code] of held.reverse()) rfb.sendKey(sym, code, false);
  };

  // What the keyboard changed since the last look: deleted characters, then typed ones.
  const typed = () => {
    const now = field.value;
    let same = 0;
    while (same < now.length && same < last.length && now[same] === last[same]) same += 1;
    // Not inside a character of two UTF-16 units.
    if (same > 0 && /[\ud800-\udbff]/.test(now[same - 1] || '')) same -= 1;
    for (let i = [...last.slice(same)].length; i > 0; i -= 1) press('Backspace');
    for (const char of now.slice(same)) press(char === '\n' ? 'Enter' : char);
    if (now.length < FILLER.length / 2 || now.length > FILLER.length * 4) reset();
    else last = now;
  };

  field.addEventListener('keydown', (event) => {
    if (event.isComposing || !(event.key in NAMED)) return;
    event.preventDefault();
    press(event.key);
  });
  field.addEventListener('input', (event) => { if (!event.isComposing) typed(); });
  field.addEventListener('compositionend', typed);
  field.addEventListener('focus', () => {
    reset();
    rfb.focusOnClick = false;
  });
  field.addEventListener('blur', () => { rfb.focusOnClick = true; });

  return {
    field,
    show() {
      field.focus({ preventScroll: true });
    },
    press,
    useModifiers(latches) { take = latches; },
  };
}
