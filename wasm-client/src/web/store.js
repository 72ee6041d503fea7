// IndexedDB access for the device profile: one object store, string keys and values.
const DB = 'hometun';
const STORE = 'device';

function open() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function run(mode, action) {
  return open().then((db) => new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, mode);
    const request = action(tx.objectStore(STORE));
    tx.oncomplete = () => { db.close(); resolve(request.result); };
    tx.onerror = () => { db.close(); reject(tx.error); };
    tx.onabort = () => { db.close(); reject(tx.error); };
  }));
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
