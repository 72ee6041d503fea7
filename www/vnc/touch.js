// Typing on a desktop from a phone. A canvas cannot bring up a phone's keyboard, so the viewer's
// Keyboard button focuses a hidden text field, and what the keyboard does to the field's text
// goes to the desktop as keys: each new character as its keysym, each deleted one as BackSpace,
// a new line as Return, also while the keyboard is still composing a word (a word it then
// corrects is deleted and typed again). Keys that change no text (Tab, Esc, the arrows, keys with
// Ctrl or Alt from a tablet's keyboard) go from their key events. The field keeps some filler
// text so that Backspace on an empty line still has something to delete (Android keyboards send
// no key event for it, only the deletion); the filler is short words, so deleting a word at a
// time deletes few. The cursor moved back in the field (a swipe on the space bar) moves the
// desktop's cursor as many characters left. While the field has the focus, a tap on the desktop
// clicks there (noVNC's touch gestures) without taking the focus, so the keyboard stays up.
import keysymdef from '../node_modules/@novnc/novnc/core/input/keysymdef.js';

/** X keysyms of the named keys (`KeyboardEvent.key`) that the field or the key row sends. */
const NAMED = {
  Enter: 0xff0d, Backspace: 0xff08, Tab: 0xff09, Escape: 0xff1b, Delete: 0xffff,
  ArrowLeft: 0xff51, ArrowUp: 0xff52, ArrowRight: 0xff53, ArrowDown: 0xff54,
  Home: 0xff50, End: 0xff57, PageUp: 0xff55, PageDown: 0xff56,
};
/** Keys the field takes from their key events: they change no text in it. */
const WITHOUT_TEXT = new Set(['Tab', 'Escape', 'Delete', 'ArrowLeft', 'ArrowUp', 'ArrowRight', 'ArrowDown',
  'Home', 'End', 'PageUp', 'PageDown']);
const CONTROL = [0xffe3, 'ControlLeft'];
const ALT = [0xffe9, 'AltLeft'];
const FILLER = '_ '.repeat(20);

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
  let composing = false;
  const reset = () => {
    field.value = FILLER;
    last = FILLER;
    field.setSelectionRange(FILLER.length, FILLER.length);
  };

  const press = (key, modifiers = take()) => {
    if (key === '\r') return;
    const name = { '\n': 'Enter', '\t': 'Tab' }[key] || key;
    const keysym = NAMED[name] ?? (name.length ? keysymdef.lookup(name.codePointAt(0)) : 0);
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
    for (const char of now.slice(same)) press(char);
    last = now;
    if (!composing && (now.length < FILLER.length / 2 || now.length > FILLER.length * 4)) reset();
  };

  field.addEventListener('keydown', (event) => {
    if (event.isComposing || event.key === 'Unidentified' || event.key === 'Process') return;
    // AltGr reports Alt (and Ctrl on Windows) too: its characters come as text.
    const altGraph = event.getModifierState && event.getModifierState('AltGraph');
    const combination = (event.ctrlKey || event.altKey) && !altGraph && [...event.key].length === 1;
    if (!WITHOUT_TEXT.has(event.key) && !combination) return;
    event.preventDefault();
    const latched = take();
    press(event.key, { ctrl: latched.ctrl || event.ctrlKey, alt: latched.alt || event.altKey });
  });
  field.addEventListener('input', typed);
  field.addEventListener('compositionstart', () => { composing = true; });
  field.addEventListener('compositionend', () => {
    composing = false;
    typed();
  });
  // The cursor moved back (a swipe on the space bar): the desktop's cursor moves as far, and
  // the field's goes back to the end.
  const moved = () => {
    if (document.activeElement !== field || composing) return;
    const end = field.value.length;
    const { selectionStart: start, selectionEnd: stop } = field;
    if (start === end && stop === end) return;
    if (start === stop) {
      for (let i = [...field.value.slice(start, end)].length; i > 0; i -= 1) press('ArrowLeft', {});
    }
    field.setSelectionRange(end, end);
  };
  document.addEventListener('selectionchange', moved);
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
    /** Stops listening to the document (the viewer's session ended). */
    stop() { document.removeEventListener('selectionchange', moved); },
  };
}
