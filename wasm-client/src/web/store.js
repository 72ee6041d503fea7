// IndexedDB access for the device profile: one object store, string keys and values.
const DB = 'hometun';
const STORE = 'device';

// An open that neither succeeds nor fails within OPEN_LIMIT_MS is given up and tried again, at
// most OPEN_TRIES times in all: a browser can leave an open waiting for good (WebKit, after a
// page was closed while it was creating the database), and a page must not then say "loading"
// for ever. The last try's failure reaches the page as a storage error.
const OPEN_LIMIT_MS = 5000;
const OPEN_TRIES = 3;

// What this page has under way in the database (each as the function that ends it), ended when
// the page is hidden to be left (`pagehide`): WebKit keeps a page it put in its back-forward
// cache suspended with its transaction unfinished, and a write from any other page of the
// origin then waits for that transaction; the enrolment of a page opened next in the same tab
// was never saved (the lab saw it: the page left with a read under way, the next one enrolled,
// and the one after found no device). What was given up is made again if the page comes back
// from that cache (`pageshow`), and nothing new starts while it is away.
const underWay = new Set();
const LEFT = 'the page was left';
/** While the page is away: resolved (by `back`) when it is shown again. */
let away = null;
let back = () => {};
if (typeof addEventListener === 'function') {
  addEventListener('pagehide', () => {
    away = away || new Promise((resolve) => { back = resolve; });
    for (const end of [...underWay]) end();
  });
  addEventListener('pageshow', () => {
    back();
    away = null;
  });
}

function openOnce() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB, 1);
    let settled = false;
    let left = false;
    const end = () => {
      left = true;
      // A database being created: its creation is given up (it is made again).
      try { if (request.transaction) request.transaction.abort(); } catch (_) { /* finished meanwhile */ }
    };
    underWay.add(end);
    const timer = setTimeout(() => {
      settled = true;
      underWay.delete(end);
      reject(`the browser's storage did not answer within ${OPEN_LIMIT_MS / 1000} s`);
    }, OPEN_LIMIT_MS);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => {
      clearTimeout(timer);
      underWay.delete(end);
      const db = request.result;
      // Another page that needs a newer database is not kept waiting by this one.
      db.onversionchange = () => db.close();
      // An answer after the limit, or after the page was left: the database is not used, so
      // it is closed at once.
      if (settled || left) {
        db.close();
        if (!settled) reject(LEFT);
      } else {
        resolve(db);
      }
      settled = true;
    };
    request.onerror = () => {
      clearTimeout(timer);
      underWay.delete(end);
      if (!settled) reject(left ? LEFT : request.error);
      settled = true;
    };
  });
}

async function open() {
  for (let tried = 1; ; tried += 1) {
    try {
      return await openOnce();
    } catch (error) {
      if (typeof error !== 'string' || error === LEFT) throw error;
      if (tried >= OPEN_TRIES) throw `${error}, ${OPEN_TRIES} times; closing other hometun tabs may help`;
    }
  }
}

// A read or write that does not finish within the same limit fails too (the caller tries a
// write again): WebKit can leave a transaction waiting for good as it can an open.
function runOnce(mode, action) {
  return open().then((db) => new Promise((resolve, reject) => {
    let settled = false;
    const settle = (finish, value) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      underWay.delete(left);
      db.close();
      finish(value);
    };
    // The page is being left: the transaction is given up (so it did nothing, and is made again
    // if the page comes back) and the connection closed. One already committing cannot be
    // given up: its own end decides.
    const left = () => {
      try { tx.abort(); } catch (_) { return; }
      settle(reject, LEFT);
    };
    const timer = setTimeout(() => {
      // Given up, so not done later either: a write the caller takes as failed must not land.
      try { tx.abort(); } catch (_) { /* finished meanwhile */ }
      settle(reject, `the browser's storage did not finish within ${OPEN_LIMIT_MS / 1000} s`);
    }, OPEN_LIMIT_MS);
    const tx = db.transaction(STORE, mode);
    underWay.add(left);
    const request = action(tx.objectStore(STORE));
    tx.oncomplete = () => settle(resolve, request.result);
    tx.onerror = () => settle(reject, tx.error);
    tx.onabort = () => settle(reject, tx.error);
  }));
}

// A read or write, made again when the page was left while it was under way and comes back;
// none starts while the page is away.
async function run(mode, action) {
  for (;;) {
    if (away) await away;
    try {
      return await runOnce(mode, action);
    } catch (error) {
      if (error !== LEFT) throw error;
    }
  }
}

export function storeGet(key) {
  return run('readonly', (s) => s.get(key)).then((v) => (typeof v === 'string' ? v : null));
}

export function storePut(key, value) {
  return run('readwrite', (s) => s.put(value, key)).then(() => undefined);
}

export function storeDelete(key) {
  return run('readwrite', (s) => s.delete(key)).then(() => undefined);
}
