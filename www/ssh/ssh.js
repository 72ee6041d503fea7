// The SSH client of the page, loaded only when a terminal is opened (never at first load):
// the hometun-ssh WebAssembly module (russh) over a tunnel TCP connection. See docs/ssh.md.
//
// open(api, options) resolves to a session: write(text|bytes), onData(cb) (text, UTF-8
// decoded across chunks), onBytes(cb) (Uint8Array), resize(cols, rows), close(), closed (a
// promise of {exitStatus, reason, dropped}), onClose(cb) (called once with that object, also
// when registered after the end), hostKey (SHA256:… fingerprint).
import init, * as wasm from './hometun_ssh.js';

/** What the session printed before anyone listened is kept (up to this many bytes) for the first listener. */
const EARLY_BYTES = 1 << 20;

let loading = null;

/** Loads and starts the SSH module once. */
export function load() {
  loading ??= init({ module_or_path: new URL('./hometun_ssh_bg.wasm', import.meta.url) });
  return loading;
}

/** The device's SSH public key (one OpenSSH line); made and stored on first use. */
export async function publicKey() {
  await load();
  return wasm.publicKey();
}

/**
 * Forgets the pinned host key of `target` ("host:port"); resolves whether one was pinned, rejects
 * (code pins-not-saved) when the storage cannot keep the change.
 */
export async function forgetHostKey(target) {
  await load();
  return wasm.forgetHostKey(String(target));
}

/** Why an attempt given up by its AbortSignal failed. */
function cancelled() {
  const error = new Error('the connection attempt was cancelled');
  error.name = 'HometunError';
  error.code = 'aborted';
  return error;
}

/**
 * Connects to options.host:options.port through `api.connectTcp`, logs in and starts a shell.
 * Rejects with an Error carrying a `code` (host-key-changed, host-key-not-trusted, auth-failed,
 * ssh-failed, timeout, …, or the tunnel's codes such as connection-refused). `options.signal`
 * (an AbortSignal) gives the attempt up: it rejects with code `aborted` and the connection is
 * reset.
 */
export async function open(api, options) {
  const { signal } = options;
  await load();
  if (signal && signal.aborted) throw cancelled();
  const port = Number(options.port ?? 22);
  const connection = await api.connectTcp(String(options.host), port);
  let stop;
  const stopped = new Promise((_, reject) => { stop = () => reject(cancelled()); });
  if (signal) {
    if (signal.aborted) stop();
    else signal.addEventListener('abort', stop, { once: true });
  }
  const connecting = wasm.connect(connection, { ...options, port });
  let session;
  try {
    session = await Promise.race([connecting, stopped]);
  } catch (error) {
    connection.abort();
    // A session that comes after all (given up meanwhile) is closed.
    connecting.then((late) => late.close(), () => {});
    throw error;
  } finally {
    if (signal) signal.removeEventListener('abort', stop);
  }
  return wrap(session);
}

function wrap(session) {
  const byteListeners = [];
  const textListeners = [];
  let early = [];
  let earlySize = 0;
  const decoder = new TextDecoder('utf-8');
  const deliver = (bytes) => {
    if (!byteListeners.length && !textListeners.length) {
      if (earlySize + bytes.length <= EARLY_BYTES) {
        early.push(bytes);
        earlySize += bytes.length;
      }
      return;
    }
    for (const listener of byteListeners) listener(bytes);
    if (textListeners.length) {
      const text = decoder.decode(bytes, { stream: true });
      if (text) for (const listener of textListeners) listener(text);
    }
  };
  const replay = () => {
    const kept = early;
    early = [];
    earlySize = 0;
    for (const bytes of kept) deliver(bytes);
  };
  const closed = session.run(deliver);
  return Object.freeze({
    hostKey: session.hostKey,
    closed,
    write: (data) => session.write(typeof data === 'string' ? data : new Uint8Array(data)),
    resize: (cols, rows) => session.resize(Math.max(1, cols | 0), Math.max(1, rows | 0)),
    close: () => session.close(),
    onClose(callback) {
      closed.then(callback, (error) => callback({ exitStatus: null, reason: String(error && error.message || error), dropped: true }));
    },
    onData(callback) {
      textListeners.push(callback);
      replay();
    },
    onBytes(callback) {
      byteListeners.push(callback);
      replay();
    },
  });
}
