// hometun's service worker on an app origin (https://h-A-B-C-D-pPORT.DOMAIN): every same-origin
// request outside /__ht/ goes over a MessagePort to the launcher's tunnel (docs/web-apps.md,
// "Port protocol"), which talks HTTP to the LAN app. The worker keeps nothing it cannot get
// back: after a restart it asks its pages for a new port ("need-port"). It keeps the app's
// answers that HTTP lets a browser keep, in Cache Storage ("Cache"). The app's own worker
// scripts get the shim's source in front (`withShim`).
'use strict';

const PREFIX = '/__ht/';
/** Where the shim loads a download of this app in a hidden frame (`downloaded`). */
const DOWNLOAD = `${PREFIX}download`;
/** How long a request waits for a port when the worker has none. */
const PORT_WAIT_MS = 10000;
/** A port silent for longer is pinged before use, so a closed launcher is noticed. */
const IDLE_MS = 5000;
/** How long a ping may take. */
const PING_MS = 3000;
/** How often pages are asked again while the worker waits for a port. */
const ASK_EVERY_MS = 3000;
/** While requests are open on a port, it is checked this often (long polls, SSE). */
const WATCH_EVERY_MS = 5000;
/**
 * Size of a streamed request body's `body` chunks (the last may be shorter): the browser's reads
 * of the body are gathered to it, since each chunk costs the launcher's thread a message.
 */
const BODY_CHUNK = 256 * 1024;
/** Request body chunks that may be sent ahead of wasm's `body-more` (1 MiB). */
const BODY_WINDOW = 4;
/**
 * A request body that ends within this many bytes is sent whole, so the LAN app gets it with a
 * `Content-Length`: embedded servers refuse chunked bodies (ESP-IDF's httpd, which takes the
 * firmware updates of ESPHome and WLED devices, 1-2 MB). A longer one is streamed, chunked.
 */
const WHOLE_UP_TO = 16 << 20;
/**
 * The same for a form the page posts itself (a navigation: a router's firmware image, 30-60 MB,
 * to a server that reads only a `Content-Length`), up to the most wasm takes whole (64 MiB).
 */
const FORM_WHOLE_UP_TO = 64 << 20;
/**
 * Headers of a kept copy that a 304 does not replace: they describe the body it does not carry,
 * and some devices send `Content-Type: text/html` on every answer (as Chromium's HTTP cache does,
 * `kNonUpdatedHeaders`).
 */
const KEEPS_ON_304 = new RegExp('^(content-(length|encoding|range|type|location|md5)|transfer-encoding|etag'
  + '|x-frame-options|x-xss-protection|x-content-.*|x-webkit-.*)$');
/** The shim names a request its page may abort by this header (`callOff`); never sent on. */
const ABORT_HEADER = 'x-hometun-abort';
/** Statuses whose responses never have a body. */
const NULL_BODY = new Set([101, 204, 205, 304]);
/**
 * Longest a fetch event is held open for its exchange: Chromium stops a worker whose event has
 * run for five minutes, breaking the body it streams. Exchanges that last longer keep the worker
 * running through `awake`.
 */
const EVENT_HOLD_MS = 4 * 60 * 1000;
/**
 * While exchanges run, the worker's pages are asked this often for a message (`stay`), each held
 * open twice as long, so the worker always has a recent event: browsers stop a worker some time
 * after its last event (Firefox a minute after, even while an older one is held open, and then
 * ends the body it was streaming as if it were complete).
 */
const STAY_EVERY_MS = 10000;
/** The HTTP cache of this app origin in Cache Storage (`cacheable`, `storable`, `fresh`). */
const CACHE = 'hometun-http';
/** Largest body kept there (its `Content-Length`, or counted as it is stored: `counted`). */
const CACHE_MAX = 8 << 20;
/** On a kept copy only: when it was stored or last confirmed (ms since the epoch). */
const STORED = 'x-hometun-stored';
/** At most this many copies are kept; the oldest go first (apps that bust caches with queries). */
const CACHE_ENTRIES = 500;
/** The cache is trimmed to CACHE_ENTRIES after this many writes. */
const TRIM_EVERY = 32;
/**
 * When this origin's Cache Storage holds more (the browser's estimate; its whole storage where
 * the browser tells no parts), the older half of the copies go at the next trim: a phone's space
 * is its user's.
 */
const CACHE_BYTES = 256 << 20;

/** One port to the tunnel and the requests running on it. */
class Channel {
  constructor(port) {
    this.port = port;
    this.handlers = new Map();
    this.nextId = 1;
    this.heard = Date.now();
    this.dead = false;
    this.retired = false;
    this.pinging = null;
    this.watch = null;
    port.onmessage = (event) => this.receive(event.data);
    port.onmessageerror = () => {};
    // Browsers that know it say at once when the launcher's end went away (closed, reloaded).
    port.addEventListener('close', () => this.kill('the hometun page was closed or reloaded'));
  }

  receive(message) {
    this.heard = Date.now();
    if (!message || typeof message !== 'object') return;
    // The launcher asks whether this end is still there (it closes a busy port that never answers).
    if (message.op === 'ping' && message.id === undefined) {
      this.send({ op: 'pong' });
      return;
    }
    const handler = this.handlers.get(message.id);
    if (handler) handler(message);
  }

  /** Starts an exchange: `handler` gets every message for its id until `finish(id)`. */
  open(handler) {
    const id = this.nextId;
    this.nextId += 1;
    this.handlers.set(id, handler);
    this.startWatch();
    return id;
  }

  finish(id) {
    this.handlers.delete(id);
    if (this.handlers.size === 0) this.stopWatch();
    if ((this.dead || this.retired) && this.handlers.size === 0) this.port.close();
  }

  /** A newer port took this one's place: it closes once its exchanges end. */
  retire() {
    this.retired = true;
    if (this.handlers.size === 0) this.port.close();
  }

  send(message, transfer = []) {
    this.port.postMessage(message, transfer);
  }

  /** Whether the far end still answers (asked only when it was silent a while). */
  alive() {
    if (this.dead) return Promise.resolve(false);
    if (Date.now() - this.heard <= IDLE_MS) return Promise.resolve(true);
    if (!this.pinging) {
      this.pinging = new Promise((resolve) => {
        const timer = setTimeout(() => { this.finish(id); resolve(false); }, PING_MS);
        const id = this.open((message) => {
          if (message.op !== 'pong') return;
          clearTimeout(timer);
          this.finish(id);
          resolve(true);
        });
        this.send({ op: 'ping', id });
      }).then((alive) => {
        this.pinging = null;
        if (!alive) this.kill('the hometun page does not answer (closed or reloaded?)');
        return alive;
      });
    }
    return this.pinging;
  }

  /** The far end is gone: every open exchange fails with `reason`. */
  kill(reason) {
    this.dead = true;
    if (current === this) current = null;
    for (const [id, handler] of [...this.handlers]) {
      handler({ op: 'error', id, message: reason, portGone: true });
    }
    this.stopWatch();
    if (this.handlers.size === 0) this.port.close();
  }

  startWatch() {
    if (this.watch) return;
    this.watch = setInterval(() => { this.alive(); }, WATCH_EVERY_MS);
  }

  stopWatch() {
    if (!this.watch) return;
    clearInterval(this.watch);
    this.watch = null;
  }
}

/**
 * Counts the exchanges running; while there are any, the worker asks its window clients every
 * STAY_EVERY_MS to send it `staying` (the shim answers), and holds each such event until the
 * last exchange ends or twice that time has passed.
 */
class Awake {
  constructor() {
    this.running = 0;
    this.asking = null;
    this.over = Promise.resolve();
    this.release = () => {};
  }

  begin() {
    this.running += 1;
    if (this.asking) return;
    this.over = new Promise((resolve) => { this.release = resolve; });
    this.asking = setInterval(async () => {
      const pages = await self.clients.matchAll({ type: 'window' }).catch(() => []);
      for (const page of pages) page.postMessage({ hometun: 'stay' });
    }, STAY_EVERY_MS);
  }

  end() {
    this.running = Math.max(0, this.running - 1);
    if (this.running > 0) return;
    clearInterval(this.asking);
    this.asking = null;
    this.release();
  }

  /** What a `staying` event waits for. */
  held() {
    return this.running > 0 ? within(this.over, 2 * STAY_EVERY_MS) : Promise.resolve();
  }
}
const awake = new Awake();

/** The newest port's channel, or null. */
let current = null;
/** Requests waiting for a port: functions called with the new channel. */
let waiting = [];
let asking = null;

function adopt(port) {
  const channel = new Channel(port);
  // Each page asked answers with a port: the one replaced closes once its exchanges end.
  if (current) current.retire();
  current = channel;
  const ready = waiting;
  waiting = [];
  for (const resolve of ready) resolve(channel);
}

self.addEventListener('install', (event) => {
  event.waitUntil(self.skipWaiting());
});

self.addEventListener('activate', (event) => {
  event.waitUntil(self.clients.claim());
});

/**
 * Form posts that pages of this app announced (`{hometun: 'form-post', url}`, from the shim's
 * `submit` and `navigate` listeners and its `form.submit()`, as the browser makes the request):
 * URL → when the announcement lapses. A navigation with a body that nobody announced came from
 * another site.
 */
const announcedPosts = new Map();
/** How long an announcement stands, and how long a post waits for one that is on its way. */
const ANNOUNCED_MS = 10000;
const ANNOUNCE_WAIT_MS = 300;
let announced = null; // resolves the waits when an announcement arrives

/** Exchanges whose page may give up on them (the shim's `abort` messages): key → call off. */
const callOff = new Map();
/**
 * Aborts that came before their exchange began (it waited for a port): key → when, for a minute,
 * at most 256.
 */
const abortedEarly = new Map();
const ABORTED_EARLY_MS = 60000;

self.addEventListener('message', (event) => {
  const data = event.data;
  if (data && data.hometun === 'abort' && typeof data.key === 'string') {
    const off = callOff.get(data.key);
    if (off) {
      off();
      return;
    }
    const now = Date.now();
    for (const [key, at] of abortedEarly) {
      if (abortedEarly.size < 256 && now - at < ABORTED_EARLY_MS) break;
      abortedEarly.delete(key);
    }
    abortedEarly.set(data.key, now);
    return;
  }
  if (data && data.hometun === 'form-post' && typeof data.url === 'string') {
    announcedPosts.set(data.url, Date.now() + ANNOUNCED_MS);
    if (announced) announced();
    return;
  }
  if (data && data.hometun === 'app-origin' && typeof data.origin === 'string') {
    // Kept running until the message is on its way: the page that sent it may be gone.
    event.waitUntil(prepare(data.origin));
    return;
  }
  if (data && data.hometun === 'staying') {
    event.waitUntil(awake.held());
    return;
  }
  if (data && data.hometun === 'no-launcher') {
    // A page learnt from the hub that no hometun page is open: nobody waits for a port.
    const gaveUp = waiting;
    waiting = [];
    for (const resolve of gaveUp) resolve(null);
    return;
  }
  if (!data || data.hometun !== 'port' || !event.ports || !event.ports[0]) return;
  adopt(event.ports[0]);
  if (event.source) event.source.postMessage({ hometun: 'port-taken' });
});

/**
 * A page of this app is about to go to the app origin `origin` (a mapped link, `window.open`, a
 * navigation): the launcher asks the relay for that name's certificate (`prepare`), unanswered
 * here. This worker outlives the page that goes, so the message is sent even as it unloads.
 */
async function prepare(origin) {
  const tunnel = await channel();
  if (!tunnel) return;
  const id = tunnel.open(() => tunnel.finish(id));
  tunnel.send({ op: 'prepare', id, origin });
}

/** Asks every window of this origin for a port until one comes or time runs out. */
function askPages() {
  if (asking) return;
  const until = Date.now() + PORT_WAIT_MS;
  const ask = async () => {
    if (!waiting.length || Date.now() >= until) {
      asking = null;
      return;
    }
    const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    for (const client of windows) client.postMessage({ hometun: 'need-port' });
    asking = setTimeout(ask, ASK_EVERY_MS);
  };
  asking = setTimeout(ask, 0);
}

/** A live channel, or null after PORT_WAIT_MS (or at once when no page could give one). */
async function channel() {
  while (current) {
    const candidate = current;
    // A port replaced while it was pinged has closed, or will once its exchanges end.
    if (await candidate.alive() && candidate === current) return candidate;
  }
  const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  if (!windows.length) return null;
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      waiting = waiting.filter((w) => w !== done);
      resolve(null);
    }, PORT_WAIT_MS);
    const done = (found) => { clearTimeout(timer); resolve(found); };
    waiting.push(done);
    askPages();
  });
}

function textResponse(status, text) {
  return new Response(`${text}\n`, {
    status,
    headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' },
  });
}

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  const download = url.pathname === DOWNLOAD && event.request.mode === 'navigate';
  if (url.origin !== self.location.origin || (url.pathname.startsWith(PREFIX) && !download)) return;
  let settle;
  const done = new Promise((resolve) => { settle = resolve; });
  // The worker must live until the body has been streamed, not only until the head: the event
  // covers the first minutes, `awake` all of it.
  event.waitUntil(within(done, EVENT_HOLD_MS));
  // Writes to the cache finish even when the page has its answer (a worker may stop at once).
  const keep = (promise) => {
    try {
      event.waitUntil(promise.catch(() => {}));
    } catch (_) {
      // The event is over: the write goes on while the worker lives.
    }
  };
  const answer = download ? downloaded(event.request, url, settle, keep) : forward(event.request, url, settle, keep);
  event.respondWith(answer.catch((error) => {
    settle();
    return textResponse(502, `hometun: ${error && error.message ? error.message : error}`);
  }));
});

/**
 * A download of this app that the shim loads in a hidden frame (`DOWNLOAD?url=PATH&name=NAME`,
 * for an `<a download>` to the app: Chromium fetches those past the worker, and the relay would
 * answer with its boot page). The file is asked of the app as the page's own GET, and a success
 * is answered as an attachment, named as the app names it or else as the link does, so the
 * browser saves it as it streams in.
 */
async function downloaded(request, url, settle, keep) {
  const target = new URL(url.searchParams.get('url') || '/', self.location.origin);
  if (target.origin !== self.location.origin || target.pathname.startsWith(PREFIX)) {
    settle();
    return textResponse(400, 'hometun: not a file of this app');
  }
  const get = new Request(target.href, { cache: 'no-store', referrer: request.referrer || 'about:client' });
  const response = await forward(get, target, settle, keep);
  const location = response.headers.get('location');
  if (response.status >= 300 && response.status < 400 && location) {
    // A download link that leads on (`/download?id=7` → the file): the next step is a download
    // of this app too, or the browser's, elsewhere.
    const next = new URL(location, target);
    if (next.origin !== self.location.origin) return Response.redirect(next.href, 302);
    const params = new URLSearchParams({ url: next.pathname + next.search, name: url.searchParams.get('name') || '' });
    return Response.redirect(`${DOWNLOAD}?${params}`, 302);
  }
  let name = url.searchParams.get('name');
  if (!name) {
    name = target.pathname.split('/').pop();
    try {
      name = decodeURIComponent(name);
    } catch (_) {
      // Not escaped as a URL would be: kept as it is.
    }
  }
  const named = `attachment; filename*=UTF-8''${rfc8187(name || 'download')}`;
  const { status, statusText } = response;
  if (!response.ok) {
    // An error answer (the NAS's session expired, the file is gone, no tunnel): still a download
    // of that name, whose body fails at once, so that the browser's list of downloads shows it
    // failed, where the hidden frame showed nothing (an error status would show there instead).
    if (response.body) response.body.cancel().catch(() => {});
    const failing = new ReadableStream({ start(c) { c.error(new Error(`${status} ${statusText}`)); } });
    return new Response(failing, { headers: { 'content-disposition': named, 'cache-control': 'no-store' } });
  }
  const headers = new Headers(response.headers);
  const given = headers.get('content-disposition') || '';
  headers.set('content-disposition', /filename/i.test(given) ? given.replace(/^\s*[^;]*/, 'attachment') : named);
  return new Response(response.body, { status, statusText, headers });
}

/** `text` as an RFC 8187 value (`encodeURIComponent` leaves `'()*`, which it does not allow). */
function rfc8187(text) {
  return encodeURIComponent(text).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * A form post of the app's own that the app moves with a 307 or 308: the browser posts again, to
 * the new address of this app (a relative one is the post's), and that post is the app's too.
 */
function announceMoved(request, response) {
  const location = response.headers.get('location');
  if ((response.status !== 307 && response.status !== 308) || !location) return;
  try {
    const moved = new URL(location, request.url);
    moved.hash = '';
    if (moved.origin === self.location.origin) announcedPosts.set(moved.href, Date.now() + ANNOUNCED_MS);
  } catch (_) {
    // No usable Location: the browser does not post again.
  }
}

/**
 * Whether a navigation with a body to `url` was announced by a page of this app (waiting a
 * moment for an announcement still on its way); each announcement answers once.
 */
async function ownPost(url) {
  const deadline = Date.now() + ANNOUNCE_WAIT_MS;
  for (;;) {
    const now = Date.now();
    for (const [announcedUrl, lapses] of announcedPosts) if (lapses < now) announcedPosts.delete(announcedUrl);
    if (announcedPosts.delete(url)) return true;
    if (now >= deadline) return false;
    await new Promise((resolve) => {
      announced = resolve;
      setTimeout(resolve, deadline - now);
    });
  }
}

/**
 * The request as the port protocol's `fetch` message, and the body to send after it in `body`
 * chunks (`streamBody: true`) when the browser gives it as a stream (Chromium's `request.body`)
 * and it is longer than WHOLE_UP_TO (FORM_WHOLE_UP_TO for a form): `{reader, read}` (the chunks
 * read so far, then the rest). Shorter bodies, and other engines' bodies, go whole in `body`.
 */
async function describe(request, url) {
  const hasBody = request.method !== 'GET' && request.method !== 'HEAD';
  let body = null;
  let upload = null;
  if (hasBody && request.body instanceof ReadableStream) {
    const reader = request.body.getReader();
    const read = [];
    let size = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        body = joined(read, size);
        break;
      }
      const bytes = value instanceof Uint8Array ? value : new Uint8Array(value);
      read.push(bytes);
      size += bytes.byteLength;
      if (size > (request.mode === 'navigate' ? FORM_WHOLE_UP_TO : WHOLE_UP_TO)) {
        upload = { reader, read };
        break;
      }
    }
  } else if (hasBody) {
    body = await request.arrayBuffer();
  }
  let headers = [...request.headers].filter(([name]) => name !== ABORT_HEADER);
  // A form another site posted here (no page of the app announced it): wasm sends it without
  // the app's cookies or sign-in, as a browser withholds SameSite=Lax cookies, and says where
  // it came from as a browser does for an opaque origin.
  const crossSite = hasBody && request.mode === 'navigate' && !(await ownPost(request.url));
  if (crossSite) headers = headers.filter(([name]) => !/^(origin|referer)$/i.test(name)).concat([['origin', 'null']]);
  const names = new Set(headers.map(([name]) => name.toLowerCase()));
  // The browser adds these after the worker; the LAN app may check them (wasm maps the first
  // two) or choose its answer by them.
  if (!names.has('referer') && !crossSite && /^https?:/.test(request.referrer)) headers.push(['referer', request.referrer]);
  if (!names.has('origin') && hasBody) headers.push(['origin', self.location.origin]);
  if (!names.has('user-agent')) headers.push(['user-agent', navigator.userAgent]);
  if (!names.has('accept-language') && navigator.languages && navigator.languages.length) {
    headers.push(['accept-language', navigator.languages.join(',')]);
  }
  const message = {
    op: 'fetch',
    method: request.method,
    path: url.pathname + url.search,
    headers,
    body,
    destination: request.destination,
  };
  if (crossSite) message.crossSite = true;
  if (upload) message.streamBody = true;
  return { message, upload };
}

async function forward(request, url, settle, keep) {
  const cache = cacheable(request) ? await caches.open(CACHE).catch(() => null) : null;
  const stored = cache && request.cache !== 'reload' ? await cache.match(request).catch(() => null) : null;
  if (stored && !revalidates(request) && fresh(stored)) {
    settle();
    return rebuilt(stored, stored.headers);
  }
  const { message, upload } = await describe(request, url);
  if (stored) {
    for (const [have, ask] of [['etag', 'if-none-match'], ['last-modified', 'if-modified-since']]) {
      if (stored.headers.has(have)) message.headers.push([ask, stored.headers.get(have)]);
    }
  }
  // A request without a body that lost its port before any answer is sent once more on a new
  // one; a streamed body cannot be read twice.
  for (let attempt = 0; ; attempt += 1) {
    const tunnel = await channel();
    if (!tunnel) {
      settle();
      if (upload) upload.reader.cancel().catch(() => {});
      if (request.mode === 'navigate') return fetch(`${PREFIX}boot.html`, { cache: 'no-store' });
      return textResponse(503, 'hometun: not connected: open this app from your hometun page');
    }
    const again = attempt === 0 && message.body === null && !upload;
    const response = await exchange(tunnel, message, upload, request, settle, again);
    if (response === RETRY) continue;
    if (response.type === 'error') return response; // given up: a kept copy stays
    const ownForm = request.mode === 'navigate' && (message.body !== null || upload) && !message.crossSite;
    if (ownForm) announceMoved(request, response);
    if (stored && response.status === 304) {
      // Still the same: the kept copy, confirmed now, with the headers the 304 brings (RFC 9111
      // 4.3.4) but those that describe the body it does not carry (`KEEPS_ON_304`).
      const headers = new Headers(stored.headers);
      headers.delete('age');
      for (const [name, value] of response.headers) {
        if (!KEEPS_ON_304.test(name)) headers.set(name, value);
      }
      const stillStorable = storable({ status: 200, headers });
      keep(stillStorable ? cache.put(request, rebuilt(stored.clone(), headers, Date.now())) : cache.delete(request));
      return rebuilt(stored, headers);
    }
    if (cache && storable(response)) {
      // A copy that fails to store (too large once counted, a body cut short) leaves no older
      // one behind: the app has answered anew.
      const put = cache.put(request, rebuilt(counted(response.clone()), response.headers, Date.now()));
      keep(put.then(() => trim(cache), () => cache.delete(request)));
    }
    else if (stored) keep(cache.delete(request)); // the app answered otherwise: the copy is out of date
    if (request.destination === 'worker' || request.destination === 'sharedworker') {
      return withShim(response);
    }
    return response;
  }
}

/**
 * Whether the page's request may be answered from this origin's cache and fill it: a plain GET
 * (no range, no credentials or validators of the page's own), not a page or a worker script (the
 * shim and the jar's cookies go into those as they are served), and not `cache: 'no-store'`.
 */
function cacheable(request) {
  const own = ['range', 'authorization', 'if-none-match', 'if-modified-since'];
  return request.method === 'GET' && request.cache !== 'no-store'
    && !['document', 'iframe', 'frame', 'worker', 'sharedworker'].includes(request.destination)
    && !own.some((name) => request.headers.has(name));
}

/** Whether the page asks for its request to be confirmed by the app even when a copy is fresh. */
function revalidates(request) {
  const cc = directives(request.headers);
  return request.cache === 'no-cache' || cc.has('no-cache') || cc.get('max-age') === '0'
    || /no-cache/i.test(request.headers.get('pragma') || '');
}

let writes = 0;
/** Every TRIM_EVERY writes, drops the oldest copies beyond CACHE_ENTRIES. */
async function trim(cache) {
  writes += 1;
  if (writes % TRIM_EVERY !== 0) return;
  const keys = await cache.keys();
  const stamped = await Promise.all(keys.map(async (key) => {
    const kept = await cache.match(key);
    return [Number(kept && kept.headers.get(STORED)) || 0, key];
  }));
  stamped.sort((a, b) => a[0] - b[0]);
  let drop = Math.max(0, stamped.length - CACHE_ENTRIES);
  const storage = navigator.storage && navigator.storage.estimate ? navigator.storage : null;
  const estimate = storage ? await storage.estimate().catch(() => null) : null;
  // Cache Storage's part where the browser says (what the app keeps elsewhere is not ours).
  const details = estimate && estimate.usageDetails;
  const used = details && 'caches' in details ? details.caches : estimate && estimate.usage;
  if (used > CACHE_BYTES) drop = Math.max(drop, Math.ceil(stamped.length / 2));
  await Promise.all(stamped.slice(0, drop).map(([, key]) => cache.delete(key)));
}

/** The `Cache-Control` directives of `headers`: name → value ('' when it has none). */
function directives(headers) {
  const out = new Map();
  for (const part of (headers.get('cache-control') || '').toLowerCase().split(',')) {
    const [name, value = ''] = part.trim().split('=');
    if (name) out.set(name, value.replace(/"/g, ''));
  }
  return out;
}

/**
 * Whether a response may be kept: 200, not `no-store`, not varying by everything or by what wasm
 * adds, not HTML, not longer than CACHE_MAX by its `Content-Length` (a body without one, such as
 * one wasm decoded, is `counted` as it is stored) and something to reuse it by (a validator or
 * `max-age`).
 */
function storable(response) {
  const headers = response.headers;
  const cc = directives(headers);
  // Vary on what wasm adds (the jar's Cookie, a sign-in's Authorization) cannot be matched here.
  return response.status === 200 && !cc.has('no-store')
    && !/\*|cookie|authorization/i.test(headers.get('vary') || '')
    && !/html/i.test(headers.get('content-type') || '')
    && !(Number(headers.get('content-length')) > CACHE_MAX)
    && (headers.has('etag') || headers.has('last-modified') || cc.has('max-age'));
}

/**
 * `response` with its body counted on the way into the cache: past CACHE_MAX bytes the body
 * fails, so `cache.put` fails and nothing is kept (the page's own copy of the body goes on).
 */
function counted(response) {
  let bytes = 0;
  const limit = new TransformStream({
    transform(chunk, controller) {
      bytes += chunk.byteLength;
      if (bytes > CACHE_MAX) controller.error(new Error('too large to keep'));
      else controller.enqueue(chunk);
    },
  });
  return new Response(response.body && response.body.pipeThrough(limit), response);
}

/** Whether a kept response may be used without asking the app: within its `max-age`. */
function fresh(stored) {
  const cc = directives(stored.headers);
  const age = (Date.now() - Number(stored.headers.get(STORED))) / 1000 + (Number(stored.headers.get('age')) || 0);
  return !cc.has('no-cache') && age < Number(cc.get('max-age'));
}

/**
 * `response`'s status and body with `headers`: stamped with `stored` (the time) as a copy to
 * keep, or without the stamp as the page gets it.
 */
function rebuilt(response, headers, stored) {
  const out = new Headers(headers);
  if (stored) out.set(STORED, String(stored));
  else out.delete(STORED);
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers: out });
}

/** The shim's source (`/__ht/shim.js` from the relay), fetched once per worker start. */
let shimSource = null;
function shimBytes() {
  if (!shimSource) {
    shimSource = fetch(`${PREFIX}shim.js`).then((r) => {
      if (!r.ok) throw new Error(`the shim: ${r.status}`);
      return r.arrayBuffer();
    }).then((buffer) => new Uint8Array(buffer));
    shimSource.catch(() => { shimSource = null; });
  }
  return shimSource;
}

/**
 * A worker script's response with the shim's source put in front of it (after a leading "use
 * strict" directive, so it stays one), so it runs before the worker's own code in classic and
 * module workers alike (`importScripts` does not exist in module workers, and a service worker
 * cannot tell the two apart: both are fetched alike). Other answers (errors, not JavaScript)
 * pass unchanged; so does the script when the shim cannot be had.
 */
async function withShim(response) {
  const type = (response.headers.get('content-type') || '').toLowerCase();
  if (!response.ok || !response.body || (type && !/(java|ecma)script/.test(type))) return response;
  let shim;
  try {
    shim = await shimBytes();
  } catch (_) {
    return response;
  }
  const reader = response.body.getReader();
  let first = true;
  const body = new ReadableStream({
    async pull(controller) {
      const { done, value } = await reader.read();
      if (first) {
        first = false;
        controller.enqueue(shimLead(done ? new Uint8Array(0) : value, shim));
      } else if (!done) {
        controller.enqueue(value);
      }
      if (done) controller.close();
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
  const headers = new Headers(response.headers);
  headers.delete('content-length');
  return new Response(body, { status: response.status, statusText: response.statusText, headers });
}

/** The first bytes of a worker script with the shim's source put in front. */
function shimLead(bytes, shim) {
  let rest = bytes;
  if (rest[0] === 0xef && rest[1] === 0xbb && rest[2] === 0xbf) rest = rest.subarray(3); // a UTF-8 BOM
  const start = String.fromCharCode(...rest.subarray(0, 256));
  const directive = /^\s*(['"])use strict\1[ \t]*;?/.exec(start);
  const keep = directive ? directive[0].length : 0;
  const newline = new Uint8Array([10]);
  const parts = [rest.subarray(0, keep), newline, shim, newline, rest.subarray(keep)];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

/** `promise`, or at most `ms` of waiting for it. */
function within(promise, ms) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    const done = () => { clearTimeout(timer); resolve(); };
    promise.then(done, done);
  });
}

/** `parts` (Uint8Arrays of `size` bytes in all) as one ArrayBuffer. */
function joined(parts, size) {
  const whole = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    whole.set(part, at);
    at += part.byteLength;
  }
  return whole.buffer;
}

/**
 * Sends the request body of `upload` (the chunks already read, then the rest of its reader) in
 * `body` chunks of BODY_CHUNK bytes (the last one shorter), at most BODY_WINDOW ahead of wasm's
 * `body-more` (`credit` waits for room), then `body-end`. Stops quietly once `isStopped()`; a
 * body the page aborted makes `fail` cancel the request.
 */
async function pumpBody(tunnel, id, upload, credit, isStopped, fail) {
  const { reader, read } = upload;
  let piece = new Uint8Array(BODY_CHUNK);
  let filled = 0;
  const send = async (bytes) => {
    await credit();
    if (!isStopped()) tunnel.send({ op: 'body', id, data: bytes.buffer }, [bytes.buffer]);
  };
  // Gathers `bytes` into `piece`, sending each one that fills up.
  const gather = async (bytes) => {
    for (let at = 0; at < bytes.byteLength && !isStopped();) {
      const n = Math.min(BODY_CHUNK - filled, bytes.byteLength - at);
      piece.set(bytes.subarray(at, at + n), filled);
      filled += n;
      at += n;
      if (filled === BODY_CHUNK) {
        await send(piece);
        piece = new Uint8Array(BODY_CHUNK);
        filled = 0;
      }
    }
  };
  try {
    for (const bytes of read) await gather(bytes);
    read.length = 0;
    while (!isStopped()) {
      const { done, value } = await reader.read();
      if (isStopped()) break;
      if (done) {
        if (filled) await send(piece.slice(0, filled));
        if (!isStopped()) tunnel.send({ op: 'body-end', id });
        return;
      }
      await gather(value instanceof Uint8Array ? value : new Uint8Array(value));
    }
    reader.cancel().catch(() => {});
  } catch (error) {
    if (!isStopped()) fail(error);
  }
}

/**
 * The answer to a request its page gave up on: a network error, ten seconds late, so that the
 * page's own abort comes first (WebKit handed the page an answer that came before it, where the
 * page expects its AbortError; on a loaded machine even one a second late).
 */
function givenUp() {
  return new Promise((resolve) => { setTimeout(() => resolve(Response.error()), 10000); });
}

/** What `exchange` resolves with when its port went away before the head and it may be retried. */
const RETRY = Symbol('retry');

/**
 * Sends one `fetch` of the page's `request` and resolves with the response once its head arrives
 * (or with RETRY when `retryable` and the port went away before that).
 */
function exchange(tunnel, message, upload, request, settle, retryable) {
  const isHead = request.method === 'HEAD';
  const abortKey = request.headers.get(ABORT_HEADER);
  if ((abortKey && abortedEarly.delete(abortKey)) || (request.signal && request.signal.aborted)) {
    settle();
    if (upload) upload.reader.cancel().catch(() => {});
    return givenUp();
  }
  return new Promise((resolve) => {
    let body = null; // null before the head; false: a response without a body
    const chunks = [];
    let ended = false;
    let failed = null;
    let waiter = null; // a reader waiting for the next chunk: { controller, resolve }
    let stopped = false;
    let id = 0;
    let bodyInFlight = 0; // request body chunks sent and not yet credited by `body-more`
    let bodyRoom = null; // resolves the pump's wait for credit

    awake.begin();
    const stop = () => {
      if (stopped) return;
      stopped = true;
      if (abortKey) callOff.delete(abortKey);
      awake.end();
      tunnel.finish(id);
      settle();
      if (bodyRoom) bodyRoom();
    };
    // Hands the oldest chunk (or the end, or the failure) to a waiting reader.
    const serve = (controller) => {
      if (chunks.length) {
        controller.enqueue(new Uint8Array(chunks.shift()));
        if (!ended) tunnel.send({ op: 'more', id });
        if (!ended || chunks.length) return true;
      }
      if (failed) {
        controller.error(failed);
        stop();
        return true;
      }
      if (ended) {
        controller.close();
        stop();
        return true;
      }
      return false;
    };
    const wake = () => {
      if (waiter && serve(waiter.controller)) {
        waiter.resolve();
        waiter = null;
      }
    };
    const stream = () => new ReadableStream({
      pull(controller) {
        if (serve(controller)) return undefined;
        return new Promise((resolvePull) => { waiter = { controller, resolve: resolvePull }; });
      },
      cancel() {
        if (!ended && !failed) tunnel.send({ op: 'cancel', id });
        stop();
      },
    }, { highWaterMark: 0 });

    const onReply = (reply) => {
      switch (reply.op) {
        case 'body-more':
          bodyInFlight = Math.max(0, bodyInFlight - 1);
          if (bodyRoom) bodyRoom();
          return;
        case 'head':
          if (body !== null) return;
          body = isHead || NULL_BODY.has(reply.status) ? false : stream();
          try {
            resolve(new Response(body || null, {
              status: reply.status,
              statusText: reply.statusText || '',
              headers: toHeaders(reply.headers),
            }));
          } catch (error) {
            if (body) tunnel.send({ op: 'cancel', id });
            stop();
            resolve(textResponse(502, `hometun: the app's answer cannot be used: ${error.message}`));
          }
          return;
        case 'chunk':
          if (body) {
            chunks.push(reply.data);
            wake();
          } else {
            tunnel.send({ op: 'more', id });
          }
          return;
        case 'end':
          ended = true;
          if (body) wake();
          else stop();
          return;
        case 'error':
          if (body === null) {
            if (retryable && reply.portGone) {
              stopped = true; // not settled: the next attempt carries on
              if (abortKey) callOff.delete(abortKey);
              awake.end();
              tunnel.finish(id);
              resolve(RETRY);
              return;
            }
            resolve(textResponse(502, `hometun: ${reply.message || 'the app could not be reached'}`));
            stop();
          } else if (body) {
            failed = new Error(reply.message || 'the connection to the app broke');
            chunks.length = 0;
            wake();
            stop();
          } else {
            stop();
          }
          return;
        default:
      }
    };
    id = tunnel.open(onReply);
    try {
      tunnel.send({ ...message, id }, message.body ? [message.body] : []);
    } catch (error) {
      stop();
      resolve(textResponse(502, `hometun: ${error.message}`));
      return;
    }
    // The page gave up before the answer began (its AbortController, its XHR's abort() or
    // timeout, as the shim or the browser says): wasm drops the request, and its connection to
    // the app with it, which a request the app never answers would otherwise hold (six of them
    // stall every other request to the app). After the head, the body's `cancel` does the same.
    const gaveUp = () => {
      if (stopped || body !== null) return;
      tunnel.send({ op: 'cancel', id });
      stop();
      resolve(givenUp());
    };
    if (abortKey) callOff.set(abortKey, gaveUp);
    if (request.signal) request.signal.addEventListener('abort', gaveUp, { once: true });
    if (!upload) return;
    const credit = () => new Promise((resolveRoom) => {
      const check = () => {
        if (stopped || bodyInFlight < BODY_WINDOW) {
          bodyRoom = null;
          if (!stopped) bodyInFlight += 1;
          resolveRoom();
        } else {
          bodyRoom = check;
        }
      };
      check();
    });
    // The page gave up on the upload (aborted, or its stream failed): wasm drops the request.
    const abort = (error) => {
      if (stopped) return;
      tunnel.send({ op: 'cancel', id });
      onReply({ op: 'error', id, message: `the request body failed: ${error && error.message ? error.message : error}` });
    };
    pumpBody(tunnel, id, upload, credit, () => stopped, abort);
  });
}

/** `[[name, value], …]` as Headers, leaving out what the Headers class refuses. */
function toHeaders(list) {
  const headers = new Headers();
  for (const pair of Array.isArray(list) ? list : []) {
    try {
      headers.append(String(pair[0]), String(pair[1]));
    } catch (_) {
      // A header a browser cannot carry (bad name or value): the page does without it.
    }
  }
  return headers;
}
