// hometun's shim, the first script of every HTML page of a home web app (wasm puts
// <script src="/__ht/shim.js" data-hometun-cookies="…"> at the top of the document) and of every
// worker script (the service worker puts this file's source in front of it). It makes what a page
// does by itself (not through its service worker) work through the tunnel too:
//
// - ports: asks the launcher (parent frame or opener, origin T) and the hidden broker frame from
//   T for MessagePorts, and hands one to the service worker when it asks ("need-port", after a
//   restart); a worker asks the page that started it, over a port that page's shim gave it
//   (`{hometun: "provider"}`, the first message, which the worker's own code never sees);
// - WebSocket: a replacement class that speaks ws-* over a port of its own;
// - fetch with a large body (1 MiB or more: a file, bytes, a form with files), and
//   XMLHttpRequest with one of 64 KiB or more: over a port of its own too, so an upload longer
//   than five minutes is not cut off with the worker's fetch event (Chromium's limit), and XHR
//   reports its upload's progress;
// - document.cookie: backed by the app's cookie jar in the launcher (no real cookies exist on
//   an app origin), kept current by the jar's "cookies" broadcasts;
// - navigator.serviceWorker: hidden, so the app cannot install a worker of its own;
// - hard-coded http://A.B.C.D[:P] and ws:// URLs: mapped to their app origins in fetch,
//   XMLHttpRequest, EventSource, WebSocket, window.open, links, forms and scripted navigations
//   (`location.href = …`, through the Navigation API where the browser has it).
//
// In a worker there is no document: no cookies, links, forms or windows, the rest is the same.
// Nothing is added to window; the page's own globals are replaced in place.
(() => {
  'use strict';

  const LOADED = Symbol.for('hometun.shim');
  if (self[LOADED]) return; // every module of a module worker carries it
  Object.defineProperty(self, LOADED, { value: true });
  const IN_WORKER = typeof window === 'undefined';

  /** How long the launcher may take to answer a port request. */
  const PORT_WAIT_MS = 10000;
  /** How often an unanswered port request is sent again. */
  const ASK_AGAIN_MS = 3000;
  /** A port (an open WebSocket's, an upload's) silent this long is pinged (`watchPort`). */
  const WS_IDLE_MS = 15000;
  /** How long a ping may take before the port counts as gone. */
  const PING_MS = 5000;
  /** How long a closing handshake may take. */
  const CLOSE_WAIT_MS = 10000;
  /** How long a set-cookie may wait for its ok before the cookie port is replaced. */
  const COOKIE_WAIT_MS = 5000;
  /** How long a cookie port must have lived for one gone to be replaced at once. */
  const COOKIE_PORT_LIFE_MS = 30000;
  /** How many cookies a page keeps written while no launcher runs (the jar keeps 180 in all). */
  const UNSENT_COOKIES = 180;
  /**
   * How long a download's hidden frame stays: the browser takes the download over once the
   * app's answer begins, which a device making a backup may take minutes to send.
   */
  const DOWNLOAD_FRAME_MS = 10 * 60 * 1000;

  const script = IN_WORKER ? null : document.currentScript;
  const appHost = location.host; // h-A-B-C-D-pP.DOMAIN[:port] (-sP for HTTPS)
  const relayHost = appHost.slice(appHost.indexOf('.') + 1); // DOMAIN[:port]
  const RELAY = `${location.protocol}//${relayHost}`;
  const nativeOpen = IN_WORKER ? null : window.open;
  const NativeWebSocket = self.WebSocket;
  /** What relative URLs are resolved against. */
  const base = () => (IN_WORKER ? location.href : document.baseURI);

  // ---- navigator.serviceWorker, kept private ------------------------------------------------
  const container = (!IN_WORKER && navigator.serviceWorker) || null;
  try {
    if (IN_WORKER) {
      if (self.WorkerNavigator && 'serviceWorker' in WorkerNavigator.prototype) delete WorkerNavigator.prototype.serviceWorker;
    } else {
      delete Navigator.prototype.serviceWorker;
    }
    if (self.ServiceWorkerContainer) {
      ServiceWorkerContainer.prototype.register = function register() {
        return Promise.reject(new DOMException('service workers are managed by hometun on this origin', 'SecurityError'));
      };
    }
  } catch (_) {
    // A browser that does not let the property go: the app merely sees it.
  }

  // ---- URL mapping ---------------------------------------------------------------------------
  const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
  /** LAN scheme → [app URL scheme, name marker (p plain, s TLS), default port]. */
  const SECURE = {
    'http:': ['https:', 'p', '80'],
    'ws:': ['wss:', 'p', '80'],
    'https:': ['https:', 's', '443'],
    'wss:': ['wss:', 's', '443'],
  };

  /** `http://A.B.C.D[:P]/…`, `https://…`, `ws://…`, `wss://…` as the app origin's URL; null when it is not one. */
  function mapUrl(input) {
    let url;
    try {
      url = new URL(String(input), base());
    } catch (_) {
      return null;
    }
    const [scheme, marker, defaultPort] = SECURE[url.protocol] || [];
    const ip = IPV4.exec(url.hostname);
    if (!scheme || !ip || ip.slice(1).some((octet) => Number(octet) > 255)) return null;
    const label = `h-${ip[1]}-${ip[2]}-${ip[3]}-${ip[4]}-${marker}${url.port || defaultPort}`;
    return `${scheme}//${label}.${relayHost}${url.pathname}${url.search}${url.hash}`;
  }

  /** Whether `href` is on an app origin of this relay (this app's or another's). */
  function isAppUrl(href) {
    try {
      const url = new URL(href, base());
      return url.protocol === 'https:' && url.host.endsWith(`.${relayHost}`) && url.host.startsWith('h-');
    } catch (_) {
      return false;
    }
  }

  // ---- ports from the launcher ---------------------------------------------------------------
  /**
   * Windows that may be the launcher: the parent chain, then the opener's, and so on. A window
   * of this page's own origin (an app page around this frame of it) cannot be: it is passed
   * through, not asked, so a frame of an app tab asks the broker at once.
   */
  function launchers() {
    const found = [];
    if (IN_WORKER) return found;
    const seen = [];
    let w = window;
    for (let hops = 0; hops < 16; hops += 1) {
      let next = null;
      try {
        next = w.parent !== w ? w.parent : w.opener;
      } catch (_) {
        next = null;
      }
      if (!next || seen.includes(next)) break;
      seen.push(next);
      if (!ofThisOrigin(next)) found.push(next);
      w = next;
    }
    return found;
  }

  /** Whether the window `w` shows a page of this page's origin (readable only then). */
  function ofThisOrigin(w) {
    try {
      return w.location.origin === location.origin;
    } catch (_) {
      return false;
    }
  }

  /** Requests waiting for their answer, by id: `{resolve(port), refused(data, fromBroker)}`. */
  const portWaiters = new Map();
  let lastId = 0;

  function refusal(data) {
    const error = new Error(String(data.message || 'the hometun page refused'));
    error.code = data.code;
    return error;
  }

  /** An answer (`port` or `port-error`) to the request `data.id`; a port nobody asked for is closed. */
  function answered(data, port, fromBroker) {
    const waiter = portWaiters.get(data.id);
    if (!waiter) {
      if (port) port.close();
      return;
    }
    if (data.hometun === 'port' && port) waiter.resolve(port);
    else if (data.hometun === 'port-error') waiter.refused(data, fromBroker);
  }

  /** The hidden broker frame from T (docs/web-apps.md, "Getting a port"), made when first needed. */
  let broker = null;
  function brokerWindow() {
    if (!broker || !broker.frame.isConnected || !broker.frame.contentWindow) {
      const frame = document.createElement('iframe');
      frame.hidden = true;
      frame.style.display = 'none';
      frame.title = 'hometun';
      frame.setAttribute('aria-hidden', 'true');
      frame.tabIndex = -1;
      frame.src = `${RELAY}/__ht/broker.html`;
      const loaded = new Promise((resolve) => { frame.addEventListener('load', resolve, { once: true }); });
      (document.body || document.documentElement).appendChild(frame);
      broker = { frame, loaded };
    }
    const { frame, loaded } = broker;
    return loaded.then(() => frame.contentWindow);
  }

  if (!IN_WORKER) {
    window.addEventListener('message', (event) => {
      const data = event.data;
      if (event.origin !== RELAY || !data || typeof data !== 'object') return;
      if (data.hometun !== 'port' && data.hometun !== 'port-error') return;
      const fromBroker = Boolean(broker) && event.source === broker.frame.contentWindow;
      answered(data, event.ports && event.ports[0], fromBroker);
    });
  }

  /**
   * Sends the request `id`: in a page to the launcher windows up the chain (again every few
   * seconds) and, when none answered within a second (or there is none), to the broker frame;
   * in a worker to the page that started it. Returns a function that stops the repeats.
   */
  function ask(id, windows) {
    if (IN_WORKER) return askProviders(id);
    const toLaunchers = () => {
      for (const w of windows) {
        try {
          w.postMessage({ hometun: 'port-request', id }, RELAY);
        } catch (_) {
          // Not the launcher (a closed window, say).
        }
      }
    };
    const toBroker = () => {
      if (!portWaiters.has(id)) return;
      brokerWindow().then((w) => { if (w && portWaiters.has(id)) w.postMessage({ hometun: 'port-request', id }, RELAY); });
    };
    toLaunchers();
    // Asked again now and then: a launcher that was just reloading did not hear the first.
    const again = setInterval(toLaunchers, ASK_AGAIN_MS);
    const viaBroker = setTimeout(toBroker, windows.length ? 1000 : 0);
    return () => { clearInterval(again); clearTimeout(viaBroker); };
  }

  /** Called whenever a port came: a launcher runs (the cookie port, if it had none, opens). */
  let portCame = () => {};

  /**
   * A fresh port, bound by the launcher to this app's host:port. The first port wins; a
   * launcher's refusal ends the request, the broker's only when there is no launcher window
   * to wait for (its `code`, such as `no-launcher`, is on the error).
   */
  function requestPort() {
    return new Promise((resolve, reject) => {
      const windows = launchers();
      lastId += 1;
      const id = lastId;
      let brokerError = null;
      let stop = () => {};
      const end = () => {
        clearTimeout(timer);
        stop();
        portWaiters.delete(id);
      };
      const timer = setTimeout(() => {
        end();
        reject(brokerError ? refusal(brokerError) : new Error('no answer from your hometun page (closed, or not connected?)'));
      }, PORT_WAIT_MS);
      portWaiters.set(id, {
        resolve(port) {
          end();
          resolve(port);
          portCame();
        },
        refused(data, fromBroker) {
          if (fromBroker && windows.length) {
            brokerError = data; // a launcher up the chain may still answer
            return;
          }
          end();
          reject(refusal(data));
        },
      });
      stop = ask(id, windows);
    });
  }

  // ---- in a worker: ports from the pages that started it or connect to it ---------------------
  /**
   * Ports to pages that give this worker ports (`{hometun: "provider"}`), the one to ask first
   * last: the newest, or the last that answered. A page that closed tells its port nothing
   * (browsers fire no `close` for it), so a shared worker may hold providers that never answer.
   */
  const providers = [];
  const providerWaiters = [];

  function adoptProvider(port) {
    port.onmessage = (event) => {
      const data = event.data;
      if (!data || typeof data !== 'object') return;
      // It answers: asked first from now on.
      const at = providers.indexOf(port);
      if (at >= 0 && at !== providers.length - 1) providers.push(...providers.splice(at, 1));
      answered(data, event.ports && event.ports[0], false);
    };
    providers.push(port);
    for (const resolve of providerWaiters.splice(0)) resolve();
  }

  /**
   * Asks the provider first in line for the port `id` (once there is one) and, when it has not
   * answered within a second, every other provider too; the first port wins. Returns a function
   * that stops the asking.
   */
  function askProviders(id) {
    const asked = new Set();
    const askAll = (list) => {
      for (const port of list) {
        if (asked.has(port) || !portWaiters.has(id)) continue;
        asked.add(port);
        port.postMessage({ hometun: 'port-request', id });
      }
    };
    const first = () => askAll(providers.slice(-1));
    if (providers.length) first();
    else providerWaiters.push(first);
    const others = setTimeout(() => askAll(providers), 1000);
    return () => clearTimeout(others);
  }

  /** Whether a message event is a page's provider for this worker (kept from the worker's code). */
  function takeProvider(event) {
    const data = event.data;
    if (!data || typeof data !== 'object' || data.hometun !== 'provider' || !event.ports || !event.ports[0]) return false;
    event.stopImmediatePropagation();
    adoptProvider(event.ports[0]);
    return true;
  }

  if (IN_WORKER) {
    if (typeof self.onconnect !== 'undefined') {
      // A shared worker: each page that connects gives a provider on its connection.
      self.addEventListener('connect', (event) => {
        const port = event.ports && event.ports[0];
        if (!port) return;
        port.addEventListener('message', takeProvider);
        port.start();
      });
    } else {
      self.addEventListener('message', takeProvider);
    }
  }

  // The service worker lost its port (it was stopped and started again): give it one. It asks
  // for a message now and then while it runs exchanges, to stay running.
  if (container) {
    let giving = false;
    container.addEventListener('message', async (event) => {
      // The worker runs exchanges and must not be stopped: a message from a page is an event.
      if (event.data && event.data.hometun === 'stay') {
        const worker = container.controller || event.source;
        if (worker) worker.postMessage({ hometun: 'staying' });
        return;
      }
      if (!event.data || event.data.hometun !== 'need-port' || giving) return;
      giving = true;
      try {
        const port = await requestPort();
        const worker = container.controller || event.source;
        if (worker) worker.postMessage({ hometun: 'port' }, [port]);
        else port.close();
      } catch (error) {
        // No launcher: the worker answers its navigations with the boot page, at once when
        // the hub said no hometun page is open at all.
        const worker = container.controller || event.source;
        if (worker && error.code === 'no-launcher') worker.postMessage({ hometun: 'no-launcher' });
      } finally {
        giving = false;
      }
    });
    if (container.startMessages) container.startMessages();
  }

  // ---- document.cookie (pages only) ----------------------------------------------------------
  /**
   * While cookies a script wrote are not yet in the jar: a promise of when they are (or of
   * COOKIE_WAIT_MS); else null. The page's next fetch or XHR waits for it: its request reaches
   * the launcher over the worker, the cookie over the page's own port, and a page just loaded
   * must open that port first, so the request came without the cookie one time in five.
   */
  let cookiesPending = () => null;
  if (!IN_WORKER) setUpCookies();

  /** `document.cookie` backed by the jar, and the port its broadcasts come on. */
  function setUpCookies() {
    function validJar(list) {
      return Array.isArray(list) ? list.filter((c) => Array.isArray(c) && c.length >= 3 && c.every((x) => typeof x === 'string')) : [];
    }

    let jar = [];
    try {
      jar = validJar(JSON.parse((script && script.getAttribute('data-hometun-cookies')) || '[]'));
    } catch (_) {
      jar = [];
    }

    /** RFC 6265 path-match of a document path against a cookie path. */
    function pathMatches(path, cookiePath) {
      if (path === cookiePath) return true;
      if (!path.startsWith(cookiePath)) return false;
      return cookiePath.endsWith('/') || path[cookiePath.length] === '/';
    }

    /** RFC 6265 default-path of the document. */
    function defaultPath() {
      const path = location.pathname;
      const last = path.lastIndexOf('/');
      return last <= 0 ? '/' : path.slice(0, last);
    }

    /** A `document.cookie = …` string's name, value and path, and whether it removes the cookie; null for an HttpOnly one. */
    function parse(text) {
      const [first, ...attributes] = text.split(';');
      const eq = first.indexOf('=');
      const name = eq < 0 ? '' : first.slice(0, eq).trim();
      const value = eq < 0 ? first.trim() : first.slice(eq + 1).trim();
      let path = defaultPath();
      let remove = false;
      for (const attribute of attributes) {
        const at = attribute.indexOf('=');
        const key = (at < 0 ? attribute : attribute.slice(0, at)).trim().toLowerCase();
        const val = at < 0 ? '' : attribute.slice(at + 1).trim();
        if (key === 'httponly') return null; // scripts cannot set those
        if (key === 'path' && val.startsWith('/')) path = val;
        if (key === 'max-age' && /^-?\d+$/.test(val) && Number(val) <= 0) remove = true;
        if (key === 'expires' && Date.parse(val) <= Date.now()) remove = true;
      }
      return { name, value, path, remove };
    }

    /** A `document.cookie = …` string applied to the local copy (the jar has the last word). */
    function applyLocally(text) {
      const cookie = parse(text);
      if (!cookie) return;
      jar = jar.filter(([n, , p]) => !(n === cookie.name && p === cookie.path));
      if (!cookie.remove) jar.push([cookie.name, cookie.value, cookie.path]);
    }

    let cookiePort = null;
    let cookieId = 0;
    const unconfirmed = new Map(); // id -> cookie string, until its ok
    const unsent = []; // set-cookie messages written while no launcher ran
    let settled = []; // resolves cookiesPending's promises once nothing is unconfirmed
    const confirmed = (id) => {
      unconfirmed.delete(id);
      if (unconfirmed.size > 0) return;
      settled.forEach((resolve) => resolve());
      settled = [];
    };
    cookiesPending = () => (unconfirmed.size === 0 ? null : new Promise((resolve) => {
      const done = () => {
        settled = settled.filter((r) => r !== done);
        resolve();
      };
      settled.push(done);
      setTimeout(done, COOKIE_WAIT_MS);
    }));

    /**
     * The port the jar's changes come on (and cookies written go over). It asks for the jar
     * when it opens (it may have changed since the page was served). A launcher gone (closed or
     * reloaded: its `close` event, or no answer to a ping where browsers fire none) has a new
     * port asked for at once when the old one lived COOKIE_PORT_LIFE_MS (else, and when no
     * launcher runs, once a port comes for anything else: the launcher's cap on ports closes
     * idle ones first, and reopening at once could go round), so `document.cookie` follows the
     * jar again.
     */
    function openCookiePort() {
      if (cookiePort) return cookiePort;
      cookiePort = requestPort().then((port) => {
        const mine = cookiePort;
        const opened = Date.now();
        let watch = null;
        const gone = () => {
          if (watch) watch.stop();
          if (cookiePort !== mine) return;
          cookiePort = null;
          port.close();
          if (Date.now() - opened >= COOKIE_PORT_LIFE_MS) openCookiePort().catch(() => {});
        };
        port.addEventListener('close', gone);
        port.onmessage = (event) => {
          if (watch) watch.heard();
          const message = event.data;
          if (!message || typeof message !== 'object') return;
          if (message.op === 'cookies') {
            jar = validJar(message.cookies);
            // What this page wrote that the jar has not taken yet stays in its view.
            for (const text of unconfirmed.values()) applyLocally(text);
          } else if (message.op === 'ok' || message.op === 'error') confirmed(message.id);
        };
        watch = watchPort(port, 0, gone);
        port.postMessage({ op: 'get-cookies', id: 0 });
        // Sent once, without the retry a fresh write has: a retry closes the port, and a whole
        // batch of them would close one port after another.
        for (const message of unsent.splice(0)) send(port, message, false);
        return port;
      });
      cookiePort.catch(() => { cookiePort = null; });
      return cookiePort;
    }

    function sendCookie(text) {
      cookieId += 1;
      unconfirmed.set(cookieId, text);
      deliver({ op: 'set-cookie', id: cookieId, cookie: text, path: location.pathname }, true);
    }

    function deliver(message, retry) {
      openCookiePort().then((port) => send(port, message, retry), () => {
        // No launcher to tell: requests are not held for it, and the write goes on the next
        // cookie port that opens (once a launcher runs again), as a browser keeps a cookie. A
        // later write of the same cookie replaces it.
        confirmed(message.id);
        const cookie = parse(message.cookie);
        const same = (m) => { const c = parse(m.cookie); return c && cookie && c.name === cookie.name && c.path === cookie.path; };
        const at = unsent.findIndex(same);
        if (at >= 0) unsent.splice(at, 1);
        unsent.push(message);
        if (unsent.length > UNSENT_COOKIES) unsent.shift();
      });
    }

    function send(port, message, retry) {
      unconfirmed.set(message.id, message.cookie);
      port.postMessage(message);
      setTimeout(() => {
        if (!unconfirmed.has(message.id)) return;
        confirmed(message.id);
        if (!retry) return;
        // No answer: the launcher was reloaded or closed. Try once more on a fresh port.
        if (cookiePort) cookiePort.then((p) => p.close(), () => {});
        cookiePort = null;
        deliver(message, false);
      }, COOKIE_WAIT_MS);
    }

    // A launcher back after none ran (the page's service worker asked for a port, a WebSocket
    // opened): the jar's changes come again.
    portCame = () => { if (!cookiePort) openCookiePort().catch(() => {}); };

    Object.defineProperty(Document.prototype, 'cookie', {
      configurable: true,
      enumerable: true,
      get() {
        const path = location.pathname;
        return jar
          .map((cookie, order) => ({ cookie, order }))
          .filter(({ cookie }) => pathMatches(path, cookie[2]))
          .sort((a, b) => b.cookie[2].length - a.cookie[2].length || a.order - b.order)
          .map(({ cookie: [name, value] }) => (name ? `${name}=${value}` : value))
          .join('; ');
      },
      set(value) {
        const text = String(value);
        applyLocally(text);
        sendCookie(text);
      },
    });
    openCookiePort(); // for the jar's broadcasts
  }

  // ---- WebSocket over the tunnel -------------------------------------------------------------
  const CONNECTING = 0;
  const OPEN = 1;
  const CLOSING = 2;
  const CLOSED = 3;
  const SOCKET_ID = 1;

  /**
   * Watches a port for a launcher gone without a `close` event (not every browser sends one):
   * once the port was silent WS_IDLE_MS it is pinged (as `id`), and `gone()` runs when nothing
   * came back within PING_MS. Call `heard()` on every message and `stop()` at the end.
   */
  function watchPort(port, id, gone) {
    let last = Date.now();
    let stopped = false;
    const timer = setInterval(() => {
      if (Date.now() - last < WS_IDLE_MS) return;
      const before = last;
      port.postMessage({ op: 'ping', id });
      setTimeout(() => { if (!stopped && last === before) gone(); }, PING_MS);
    }, PING_MS);
    return {
      heard() { last = Date.now(); },
      stop() { stopped = true; clearInterval(timer); },
    };
  }

  /**
   * Answers the launcher's `ping` (no id: it asks whether this end of a busy port is still
   * there, and closes the port when nothing answers); says whether `message` was that.
   */
  function answeredPing(port, message) {
    if (!message || message.op !== 'ping' || message.id !== undefined) return false;
    port.postMessage({ op: 'pong' });
    return true;
  }

  /** Bytes of `text` in UTF-8 (a surrogate pair counts four). */
  function utf8Length(text) {
    let n = text.length;
    for (let i = 0; i < text.length; i += 1) {
      const c = text.charCodeAt(i);
      if (c >= 0x80) n += c >= 0x800 && (c < 0xd800 || c > 0xdfff) ? 2 : 1;
    }
    return n;
  }

  class WebSocket extends EventTarget {
    #url;
    #state = CONNECTING;
    #protocol = '';
    #binaryType = 'blob';
    #port = null;
    #handlers = {};
    #chain = Promise.resolve();
    #buffered = 0;
    #sizes = [];
    #watch = null; // watchPort's, once open
    #closeTimer = null;

    constructor(url, protocols) {
      super();
      if (arguments.length === 0) throw new TypeError("Failed to construct 'WebSocket': 1 argument required, but only 0 present.");
      let target;
      try {
        target = new URL(String(url), base());
      } catch (_) {
        throw new DOMException(`Failed to construct 'WebSocket': The URL '${url}' is invalid.`, 'SyntaxError');
      }
      if (target.protocol === 'http:') target.protocol = 'ws:';
      if (target.protocol === 'https:') target.protocol = 'wss:';
      const mapped = mapUrl(target.href);
      if (mapped) target = new URL(mapped);
      if (target.protocol !== 'ws:' && target.protocol !== 'wss:') {
        throw new DOMException(`Failed to construct 'WebSocket': The URL's scheme must be either 'http', 'https', 'ws', or 'wss'. '${target.protocol}' is not allowed.`, 'SyntaxError');
      }
      target.hash = '';
      if (target.protocol !== 'wss:' || target.host !== location.host) {
        // Not this app: the browser's own WebSocket (another app's origin cannot be reached from here).
        return protocols === undefined ? new NativeWebSocket(target.href) : new NativeWebSocket(target.href, protocols);
      }
      const list = protocols === undefined ? [] : (Array.isArray(protocols) ? protocols : [protocols]).map(String);
      if (new Set(list).size !== list.length) {
        throw new DOMException("Failed to construct 'WebSocket': The subprotocol is duplicated.", 'SyntaxError');
      }
      this.#url = target.href;
      this.#start(target.pathname + target.search, list);
    }

    get url() { return this.#url; }
    get readyState() { return this.#state; }
    get bufferedAmount() { return this.#buffered; }
    get extensions() { return ''; }
    get protocol() { return this.#protocol; }
    get binaryType() { return this.#binaryType; }
    set binaryType(type) {
      if (type === 'blob' || type === 'arraybuffer') this.#binaryType = type;
    }

    async #start(path, protocols) {
      let port;
      try {
        port = await requestPort();
      } catch (_) {
        this.#finish(1006, '', false);
        return;
      }
      if (this.#state !== CONNECTING) {
        port.close();
        this.#finish(1006, '', false);
        return;
      }
      this.#port = port;
      port.onmessage = (event) => this.#receive(event.data);
      port.addEventListener('close', () => this.#finish(1006, '', false));
      port.postMessage({ op: 'ws-open', id: SOCKET_ID, path, protocols });
      // From now on: a launcher gone while the app is still answering the upgrade ends it too.
      this.#watch = watchPort(port, SOCKET_ID + 1, () => this.#finish(1006, '', false));
    }

    #receive(message) {
      if (this.#watch) this.#watch.heard();
      if (!message || typeof message !== 'object') return;
      if (answeredPing(this.#port, message)) return;
      switch (message.op) {
        case 'ws-opened':
          if (this.#state !== CONNECTING) return;
          this.#state = OPEN;
          this.#protocol = typeof message.protocol === 'string' ? message.protocol : '';
          this.#fire(new Event('open'));
          return;
        case 'ws-message': {
          if (this.#state !== OPEN) return;
          let data = message.data;
          if (data instanceof ArrayBuffer && this.#binaryType === 'blob') data = new Blob([data]);
          this.#fire(new MessageEvent('message', { data, origin: new URL(this.#url).origin }));
          return;
        }
        case 'ws-sent':
          this.#buffered -= this.#sizes.shift() || 0;
          return;
        case 'ws-closed':
          this.#finish(Number(message.code) || 1005, String(message.reason || ''), Boolean(message.wasClean));
          return;
        case 'error':
          if (message.id === SOCKET_ID) this.#finish(1006, '', false);
          return;
        default:
      }
    }

    send(data) {
      if (this.#state === CONNECTING) {
        throw new DOMException("Failed to execute 'send' on 'WebSocket': Still in CONNECTING state.", 'InvalidStateError');
      }
      if (this.#state !== OPEN) return;
      let payload;
      if (typeof data === 'string') payload = data;
      else if (data instanceof ArrayBuffer) payload = data.slice(0);
      else if (ArrayBuffer.isView(data)) payload = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice().buffer;
      else if (data instanceof Blob) payload = data.arrayBuffer();
      else payload = String(data);
      // Counted until wasm says the message went to the app, as a browser counts what it has not
      // sent yet: an app that waits for it to fall before sending more is held back.
      const size = typeof payload === 'string' ? utf8Length(payload) : data instanceof Blob ? data.size : payload.byteLength;
      this.#buffered += size;
      this.#sizes.push(size);
      this.#chain = this.#chain.then(() => payload).then((ready) => {
        if (this.#state !== OPEN && this.#state !== CLOSING) return;
        this.#port.postMessage({ op: 'ws-send', id: SOCKET_ID, data: ready }, ready instanceof ArrayBuffer ? [ready] : []);
      }).catch(() => {});
    }

    close(code, reason) {
      if (code !== undefined && code !== 1000 && !(code >= 3000 && code <= 4999)) {
        throw new DOMException(`Failed to execute 'close' on 'WebSocket': The close code must be either 1000, or between 3000 and 4999. ${code} is neither.`, 'InvalidAccessError');
      }
      const text = reason === undefined ? '' : String(reason);
      if (new TextEncoder().encode(text).length > 123) {
        throw new DOMException("Failed to execute 'close' on 'WebSocket': The close reason must not be greater than 123 UTF-8 bytes.", 'SyntaxError');
      }
      if (this.#state === CLOSING || this.#state === CLOSED) return;
      const wasConnecting = this.#state === CONNECTING;
      this.#state = CLOSING;
      if (!this.#port) return; // #start ends the socket when its port comes
      const message = { op: 'ws-close', id: SOCKET_ID, reason: text };
      if (code !== undefined) message.code = code;
      this.#chain = this.#chain.then(() => this.#port.postMessage(message));
      if (wasConnecting) {
        setTimeout(() => this.#finish(1006, '', false), 0);
        return;
      }
      this.#closeTimer = setTimeout(() => this.#finish(1006, '', false), CLOSE_WAIT_MS);
    }

    #finish(code, reason, wasClean) {
      if (this.#state === CLOSED) return;
      this.#state = CLOSED;
      if (this.#watch) this.#watch.stop();
      clearTimeout(this.#closeTimer);
      if (this.#port) this.#port.close();
      if (!wasClean) this.#fire(new Event('error'));
      this.#fire(new CloseEvent('close', { code, reason, wasClean }));
    }

    #fire(event) {
      this.dispatchEvent(event);
    }

    #handler(type) {
      return this.#handlers[type] || null;
    }

    #setHandler(type, handler) {
      if (!(type in this.#handlers)) {
        // Registered once, at the first assignment, like an event handler attribute.
        this.addEventListener(type, (event) => {
          const current = this.#handlers[type];
          if (typeof current === 'function') current.call(this, event);
        });
      }
      this.#handlers[type] = typeof handler === 'function' ? handler : null;
    }

    get onopen() { return this.#handler('open'); }
    set onopen(handler) { this.#setHandler('open', handler); }
    get onmessage() { return this.#handler('message'); }
    set onmessage(handler) { this.#setHandler('message', handler); }
    get onerror() { return this.#handler('error'); }
    set onerror(handler) { this.#setHandler('error', handler); }
    get onclose() { return this.#handler('close'); }
    set onclose(handler) { this.#setHandler('close', handler); }
  }
  for (const [name, value] of Object.entries({ CONNECTING, OPEN, CLOSING, CLOSED })) {
    Object.defineProperty(WebSocket, name, { value, enumerable: true });
    Object.defineProperty(WebSocket.prototype, name, { value, enumerable: true });
  }
  self.WebSocket = WebSocket;

  // ---- large bodies as Blobs -----------------------------------------------------------------
  // Chromium gives a service worker a request whose body is bytes or text only after copying
  // it whole (about 6 ms a MiB for bytes, 10 for text, before the worker sees the request); a
  // Blob's comes at once, as a stream (docs/web-apps.md, "Large bodies"). So fetch and XHR
  // get large ones as Blobs of the same bytes and the same Content-Type.
  const BLOB_FROM = 256 * 1024;
  /** `body` (bytes, or text when `text`) as a Blob when it has `from` bytes (characters) or more, else null. */
  const asBlob = (body, text, from = BLOB_FROM) => ((typeof body === 'string' ? text && body.length
    : (ArrayBuffer.isView(body) ? body.buffer : body) instanceof ArrayBuffer && body.byteLength) >= from
    ? new Blob([body]) : null);
  /**
   * A plain `init` with a large body: the same with the body as a Blob. For text, the headers
   * fetch would use (`init`'s, else those of `input` when it is a Request) get the type it would
   * give such a body when they have none; a Blob of no type gives none.
   */
  const blobInit = (input, init) => {
    // (A keepalive request with a body this large fails either way.)
    if (!init || init.constructor !== Object) return init;
    try {
      const body = asBlob(init.body, true);
      if (!body) return init;
      if (typeof init.body !== 'string') return { ...init, body };
      // (A URL string has no `headers`.)
      const headers = new Headers(init.headers ?? input.headers);
      if (!headers.has('content-type')) headers.set('content-type', 'text/plain;charset=UTF-8');
      return { ...init, body, headers };
    } catch (_) {
      return init; // fetch itself says what is wrong with it
    }
  };

  // ---- large uploads over a port of their own ------------------------------------------------
  // Chromium ends a service worker's fetch event whose answer has not come within five minutes,
  // and an upload's answer comes after its body. So `fetch` with a large body (a Blob, or bytes
  // or text the shim made one) goes over a port of its own, as WebSockets do, and the worker
  // never sees the request (docs/web-apps.md, "Long downloads and uploads"). The body streams
  // with a `Content-Length`, so no size cap and no chunked body for small devices.
  /** Smallest `fetch` body that goes this way. */
  const PORT_UPLOAD_FROM = 1 << 20;
  /**
   * Smallest XMLHttpRequest body that goes this way: Chromium's own XHR reports no upload
   * progress for a request its service worker takes, so from a size whose progress a user may
   * watch on a slow uplink, XHR takes the port.
   */
  const XHR_PORT_FROM = 64 * 1024;
  /** Size of the `body` pieces, and how many may be ahead of wasm's `body-more` (1 MiB). */
  const UPLOAD_CHUNK = 256 * 1024;
  const UPLOAD_WINDOW = 4;

  /**
   * Whether a request to `url` with `method` (and a large body) goes over a port: one to the
   * app's own origin (not a blob: or data: URL, not hometun's own files) that carries a body.
   */
  const byPort = (url, method) => {
    const target = new URL(url);
    return target.origin === location.origin && /^https?:$/.test(target.protocol)
      && !target.pathname.startsWith('/__ht/') && !['GET', 'HEAD'].includes(method);
  };

  /**
   * `request` (its body `blob`) over a port of its own: resolves with the app's answer.
   * `sent(bytes)`, when given, hears how much of the body wasm has taken so far.
   */
  async function portFetch(request, blob, sent = null) {
    const port = await requestPort();
    const url = new URL(request.url);
    const headers = [...request.headers];
    const names = new Set(headers.map(([name]) => name.toLowerCase()));
    if (!names.has('referer') && /^https?:/.test(location.href)) headers.push(['referer', location.href]);
    if (!names.has('origin')) headers.push(['origin', location.origin]);
    if (!names.has('user-agent')) headers.push(['user-agent', navigator.userAgent]);
    if (!names.has('accept')) headers.push(['accept', '*/*']);
    if (!names.has('accept-language') && navigator.languages && navigator.languages.length) {
      headers.push(['accept-language', navigator.languages.join(',')]);
    }
    headers.push(['content-length', String(blob.size)]);
    const id = 1;
    return new Promise((resolve, reject) => {
      let credit = UPLOAD_WINDOW;
      const pieces = []; // sizes of the pieces wasm has not taken yet
      let taken = 0;
      let wakePump = null;
      let body = null; // the answer's stream controller once the head is there
      let owed = 0; // `more` held back while the page has not read what came
      let done = false;
      const watch = watchPort(port, id + 1, () => fail('the hometun page does not answer (closed or reloaded?)'));
      const finish = () => { done = true; watch.stop(); if (wakePump) wakePump(); port.close(); };
      const fail = (message) => {
        const error = new TypeError(`hometun: ${message}`);
        if (body) body.error(error); else reject(error);
        finish();
      };
      if (request.signal) {
        request.signal.addEventListener('abort', () => {
          if (done) return;
          port.postMessage({ op: 'cancel', id });
          fail('the request was aborted');
        });
      }
      port.onmessage = ({ data }) => {
        watch.heard();
        if (answeredPing(port, data) || !data || data.id !== id) return;
        switch (data.op) {
          case 'body-more':
            credit += 1;
            taken += pieces.shift() || 0;
            if (sent) sent(taken);
            if (wakePump) wakePump();
            return;
          case 'head': {
            const stream = new ReadableStream({
              start(controller) { body = controller; },
              pull() {
                for (; owed > 0 && !done; owed -= 1) port.postMessage({ op: 'more', id });
              },
              cancel() { if (!done) port.postMessage({ op: 'cancel', id }); finish(); },
            });
            const out = new Headers();
            for (const [name, value] of data.headers || []) {
              try { out.append(name, value); } catch (_) { /* a header a browser cannot carry */ }
            }
            resolve(new Response([101, 204, 205, 304].includes(data.status) ? null : stream,
              { status: data.status, statusText: data.statusText || '', headers: out }));
            return;
          }
          case 'chunk':
            // The next piece is asked for once the page has read this one, as the worker does.
            if (body) body.enqueue(new Uint8Array(data.data));
            if (body && body.desiredSize <= 0) owed += 1;
            else port.postMessage({ op: 'more', id });
            return;
          case 'end':
            if (body) body.close();
            finish();
            return;
          case 'error':
            fail(data.message || 'the connection to the app broke');
            return;
          default:
        }
      };
      // Browsers that know it say at once when the launcher's end went away (closed, reloaded).
      port.addEventListener('close', () => { if (!done) fail('the hometun page was closed or reloaded'); });
      port.postMessage({ op: 'fetch', id, method: request.method, path: url.pathname + url.search, headers,
        body: null, streamBody: true, destination: '' });
      (async () => {
        const reader = blob.stream().getReader();
        let piece = new Uint8Array(UPLOAD_CHUNK);
        let filled = 0;
        const send = async (bytes) => {
          while (!done && credit <= 0) await new Promise((wake) => { wakePump = wake; });
          wakePump = null;
          if (done) return;
          credit -= 1;
          pieces.push(bytes.byteLength);
          port.postMessage({ op: 'body', id, data: bytes.buffer }, [bytes.buffer]);
        };
        for (;;) {
          const { done: ended, value } = await reader.read();
          if (done) { reader.cancel().catch(() => {}); return; }
          if (ended) break;
          for (let at = 0; at < value.byteLength && !done;) {
            const n = Math.min(UPLOAD_CHUNK - filled, value.byteLength - at);
            piece.set(value.subarray(at, at + n), filled);
            filled += n;
            at += n;
            if (filled === UPLOAD_CHUNK) {
              await send(piece);
              piece = new Uint8Array(UPLOAD_CHUNK);
              filled = 0;
            }
          }
        }
        if (filled) await send(piece.slice(0, filled));
        if (!done) port.postMessage({ op: 'body-end', id });
      })().catch((error) => { if (!done) { port.postMessage({ op: 'cancel', id }); fail(`the request body failed: ${error.message}`); } });
    });
  }

  /** The most redirects a request follows, as in browsers. */
  const MAX_REDIRECTS = 20;

  /**
   * `portFetch` that follows redirects as a browser's `fetch` and XHR do (`request.redirect`
   * 'follow', the default): 303, and 301/302 after a POST, go on as a GET without the body,
   * through the browser's own fetch (a GET is no upload); 307 and 308 send the body again.
   * 'error' fails on a redirect, 'manual' gets it as it is. The answer's `url` and `redirected`
   * say where it ended, as a browser's do.
   */
  async function portFetchFollowing(request, blob, sent = null) {
    let current = request;
    for (let hops = 0; ; hops += 1) {
      const answer = await portFetch(current, blob, hops === 0 ? sent : null);
      const to = answer.headers.get('location');
      if (![301, 302, 303, 307, 308].includes(answer.status) || to === null || request.redirect === 'manual') {
        Object.defineProperty(answer, 'url', { value: current.url });
        Object.defineProperty(answer, 'redirected', { value: hops > 0 });
        return answer;
      }
      if (answer.body) answer.body.cancel().catch(() => {});
      if (request.redirect === 'error') throw new TypeError('hometun: the app answered with a redirect');
      if (hops >= MAX_REDIRECTS) throw new TypeError('hometun: too many redirects');
      const next = new URL(to, current.url);
      const asGet = answer.status === 303 ? current.method !== 'HEAD' : answer.status <= 302 && current.method === 'POST';
      if (asGet || next.origin !== location.origin) {
        const headers = new Headers(current.headers);
        if (asGet) for (const name of ['content-type', 'content-length', 'content-encoding', 'content-language', 'content-location']) headers.delete(name);
        // As browsers do on a redirect to another origin: the credentials stay behind.
        if (next.origin !== location.origin) headers.delete('authorization');
        return nativeFetch(next.href, {
          method: asGet ? 'GET' : current.method,
          headers,
          body: asGet ? undefined : blob,
          credentials: request.credentials,
          signal: request.signal,
          redirect: request.redirect,
        }).then((answer) => Object.defineProperty(answer, 'redirected', { value: true }));
      }
      current = new Request(next.href, { method: current.method, headers: current.headers, signal: request.signal });
    }
  }

  /** Escapes a form entry's name or file name as the HTML standard's multipart encoding does. */
  const escapeFormName = (name) => name.replace(/\n/g, '%0A').replace(/\r/g, '%0D').replace(/"/g, '%22');
  /** Text with every line break made CRLF, as the multipart encoding sends names and values. */
  const crlf = (text) => text.replace(/\r\n|\r|\n/g, '\r\n');

  /**
   * `form` as the multipart/form-data body a browser would send (the HTML standard's encoding)
   * and that body's Content-Type: one Blob whose files are parts by reference, so nothing is read
   * or copied here.
   */
  function formBlob(form) {
    const random = crypto.getRandomValues(new Uint8Array(12));
    const boundary = `----hometunFormBoundary${[...random].map((b) => b.toString(16).padStart(2, '0')).join('')}`;
    const parts = [];
    for (const [name, value] of form) {
      let head = `--${boundary}\r\nContent-Disposition: form-data; name="${escapeFormName(crlf(name))}"`;
      if (typeof value === 'string') {
        parts.push(`${head}\r\n\r\n`, crlf(value), '\r\n');
      } else {
        head += `; filename="${escapeFormName(value.name)}"\r\nContent-Type: ${value.type || 'application/octet-stream'}`;
        parts.push(`${head}\r\n\r\n`, value, '\r\n');
      }
    }
    parts.push(`--${boundary}--\r\n`);
    return { blob: new Blob(parts), type: `multipart/form-data; boundary=${boundary}` };
  }

  /**
   * A body that goes over a port when the request does: a Blob of `from` bytes or more (bytes
   * made one by `asBlob`, a form made one by `formBlob`) and the Content-Type it gives when the
   * request has none (null: none); null when the body is another kind or smaller.
   */
  function portBody(body, from) {
    let found = null;
    if (body instanceof Blob) found = { blob: body, type: body.type || null };
    else if (typeof FormData !== 'undefined' && body instanceof FormData) found = formBlob(body);
    else {
      const blob = asBlob(body, false, from);
      if (blob) found = { blob, type: null };
    }
    return found && found.blob.size >= from ? found : null;
  }

  /** `fetch(input, init)` over a port when its body and request go that way, else null. */
  function portFetchOf(input, init) {
    if (!init || init.constructor !== Object) return null;
    try {
      const body = portBody(init.body, PORT_UPLOAD_FROM);
      if (!body) return null;
      const request = new Request(input instanceof Request ? input : (mapUrl(input) || input), { ...init, body: body.blob });
      if (!byPort(request.url, request.method)) return null;
      if (body.type && !request.headers.has('content-type')) request.headers.set('content-type', body.type);
      return portFetchFollowing(request, body.blob);
    } catch (_) {
      return null; // fetch itself says what is wrong with it
    }
  }

  // ---- XMLHttpRequest with a large body over a port -------------------------------------------
  // Upload pages use XMLHttpRequest for its progress events, so an XHR with a large body (what
  // portBody takes) to the app's own origin goes over a port too. The browser's object stays the
  // app's: its getters, methods and events answer from the exchange here instead (events through
  // dispatchEvent, in the XHR standard's order), and everything else goes to the browser.
  const UNSENT = 0;
  const HEADERS_RECEIVED = 2;
  const LOADING = 3;
  const DONE = 4;
  /** How often progress events may fire (the XHR standard's 50 ms). */
  const PROGRESS_MS = 50;

  /** One XHR's exchange over a port, from its `send` on. */
  class PortXhr {
    constructor(xhr, opened, body) {
      this.xhr = xhr;
      this.opened = opened; // { method, url, headers, mime }
      this.body = body; // { blob, type }
      this.readyState = 1;
      this.answer = null; // the Response once its head is there
      this.chunks = [];
      this.received = 0;
      this.length = 0; // the answer's Content-Length, 0 when it has none
      this.text = '';
      this.decoder = null;
      this.results = new Map(); // response type → its value once done
      this.uploading = true;
      this.ended = false; // done, failed, aborted or replaced: nothing more fires
      this.abortion = new AbortController();
      this.timer = null;
      this.lastUpload = 0;
      this.lastDownload = 0;
    }

    start() {
      const { xhr, opened, body } = this;
      const headers = new Headers();
      for (const [name, value] of opened.headers) {
        try { headers.append(name, value); } catch (_) { /* checked by the browser's setRequestHeader */ }
      }
      if (body.type && !headers.has('content-type')) headers.set('content-type', body.type);
      const total = body.blob.size;
      this.fire(xhr, 'loadstart', 0, 0, false);
      this.fire(xhr.upload, 'loadstart', 0, total, true);
      if (xhr.timeout > 0) this.timer = setTimeout(() => this.fail('timeout'), xhr.timeout);
      Promise.resolve()
        .then(() => new Request(opened.url, { method: opened.method, headers, signal: this.abortion.signal }))
        .then((request) => portFetchFollowing(request, body.blob, (taken) => this.uploaded(taken)))
        .then((answer) => this.head(answer))
        .catch(() => this.fail('error'));
    }

    uploaded(taken) {
      if (this.ended || !this.uploading) return;
      const total = this.body.blob.size;
      const now = performance.now();
      if (taken < total && now - this.lastUpload < PROGRESS_MS) return;
      this.lastUpload = now;
      this.fire(this.xhr.upload, 'progress', taken, total, true);
      if (taken >= total) this.uploadEnded('load');
    }

    uploadEnded(type) {
      if (!this.uploading) return;
      this.uploading = false;
      const whole = type === 'load'; // else the standard's (0, 0)
      const loaded = whole ? this.body.blob.size : 0;
      this.fire(this.xhr.upload, type, loaded, loaded, whole);
      this.fire(this.xhr.upload, 'loadend', loaded, loaded, whole);
    }

    async head(answer) {
      if (this.ended) return;
      if (this.uploading) this.uploaded(this.body.blob.size);
      this.answer = answer;
      this.length = Number(answer.headers.get('content-length')) || 0;
      this.decoder = this.textDecoder();
      this.state(HEADERS_RECEIVED);
      if (this.ended || !answer.body) return this.done();
      const reader = answer.body.getReader();
      for (;;) {
        let step;
        try {
          step = await reader.read();
        } catch (_) {
          return this.fail('error');
        }
        if (this.ended) { reader.cancel().catch(() => {}); return undefined; }
        if (step.done) return this.done();
        this.chunks.push(step.value);
        this.received += step.value.byteLength;
        this.text += this.decoder.decode(step.value, { stream: true });
        const now = performance.now();
        if (now - this.lastDownload >= PROGRESS_MS) {
          this.lastDownload = now;
          this.state(LOADING);
          if (!this.ended) this.fire(this.xhr, 'progress', this.received, this.length, this.length > 0);
        }
      }
    }

    done() {
      if (this.ended) return;
      this.fire(this.xhr, 'progress', this.received, this.length, this.length > 0);
      this.finish();
      this.state(DONE);
      this.fire(this.xhr, 'load', this.received, this.length, this.length > 0);
      this.fire(this.xhr, 'loadend', this.received, this.length, this.length > 0);
    }

    /** Ends with `type` (error, timeout, abort): the XHR standard's request error steps. */
    fail(type) {
      if (this.ended) return;
      this.finish();
      this.abortion.abort();
      this.answer = null;
      this.chunks = [];
      this.text = '';
      this.readyState = DONE;
      this.fire(this.xhr, 'readystatechange');
      this.uploadEnded(type);
      this.fire(this.xhr, type, 0, 0, false);
      this.fire(this.xhr, 'loadend', 0, 0, false);
    }

    /** xhr.abort(): the request error steps if it is still running, then UNSENT. */
    abort() {
      if (!this.ended) this.fail('abort');
      this.readyState = UNSENT;
    }

    /** Another open() on the same object: stops quietly. */
    drop() {
      this.finish();
      this.abortion.abort();
    }

    finish() {
      this.ended = true;
      clearTimeout(this.timer);
    }

    state(readyState) {
      if (readyState === LOADING && this.readyState !== HEADERS_RECEIVED && this.readyState !== LOADING) return;
      this.readyState = readyState;
      this.fire(this.xhr, 'readystatechange');
    }

    fire(target, type, loaded, total, lengthComputable) {
      const event = loaded === undefined ? new Event(type) : new ProgressEvent(type, { loaded, total, lengthComputable });
      target.dispatchEvent(event);
    }

    mime() {
      return this.opened.mime || (this.answer && this.answer.headers.get('content-type')) || '';
    }

    textDecoder() {
      const charset = /;\s*charset=\"?([^\";]+)/i.exec(this.mime());
      try {
        return new TextDecoder(charset ? charset[1].trim() : 'utf-8');
      } catch (_) {
        return new TextDecoder('utf-8');
      }
    }

    get status() { return this.answer && this.readyState >= HEADERS_RECEIVED ? this.answer.status : 0; }

    get statusText() { return this.answer && this.readyState >= HEADERS_RECEIVED ? this.answer.statusText : ''; }

    get responseURL() { return this.answer ? this.answer.url || this.opened.url : ''; }

    responseText() {
      if (this.readyState < LOADING || !this.answer) return '';
      return this.readyState === DONE ? this.finalText() : this.text;
    }

    finalText() {
      if (!this.results.has('text')) this.results.set('text', this.text + this.decoder.decode());
      return this.results.get('text');
    }

    response(type) {
      if (type === '' || type === 'text') return this.responseText();
      if (this.readyState !== DONE || !this.answer) return null;
      if (!this.results.has(type)) {
        const bytes = () => {
          const out = new Uint8Array(this.received);
          let at = 0;
          for (const chunk of this.chunks) { out.set(chunk, at); at += chunk.byteLength; }
          return out.buffer;
        };
        let value = null;
        if (type === 'blob') value = new Blob(this.chunks, { type: this.mime() });
        else if (type === 'arraybuffer') value = bytes();
        else if (type === 'json') {
          try { value = JSON.parse(new TextDecoder().decode(bytes())); } catch (_) { value = null; }
        } else if (type === 'document' && self.DOMParser) {
          const kind = this.mime().split(';')[0].trim().toLowerCase();
          if (kind === 'text/html' || kind.endsWith('xml')) {
            try { value = new DOMParser().parseFromString(this.finalText(), kind === 'text/html' ? 'text/html' : 'application/xml'); } catch (_) { value = null; }
          }
        }
        this.results.set(type, value);
      }
      return this.results.get(type);
    }

    headers() {
      return this.answer && this.readyState >= HEADERS_RECEIVED ? this.answer.headers : null;
    }
  }

  /** Puts the large-body path into XMLHttpRequest (and hard-coded LAN URLs into its open). */
  function shimXhr() {
    const proto = XMLHttpRequest.prototype;
    const native = {
      open: proto.open, send: proto.send, setRequestHeader: proto.setRequestHeader, abort: proto.abort,
      getResponseHeader: proto.getResponseHeader, getAllResponseHeaders: proto.getAllResponseHeaders,
      overrideMimeType: proto.overrideMimeType,
    };
    const opened = new WeakMap(); // xhr → { method, url, async, headers, mime, sent } since its open()
    const byPortNow = new WeakMap(); // xhr → its PortXhr since a send() that went over a port
    const abortKeys = new WeakMap(); // xhr → the abort key of its last send() through the worker
    // An XHR sent through the worker and not answered yet that the page aborts or opens again.
    const tellIfWaiting = (xhr) => {
      const key = abortKeys.get(xhr);
      const o = opened.get(xhr);
      if (key && o && o.sent && !byPortNow.has(xhr) && native.readyState.call(xhr) === 1) tellAborted(key);
    };
    const invalid = (what) => new DOMException(`${what}: the object's state must be OPENED`, 'InvalidStateError');

    proto.open = function open(method, url, async = true, ...rest) {
      const mapped = mapUrl(url) || url;
      // The browser's open() checks its arguments first, and fires readystatechange (1), which
      // must see its state, not the exchange it replaces.
      const running = byPortNow.get(this);
      tellIfWaiting(this);
      byPortNow.delete(this);
      try {
        native.open.call(this, method, mapped, async, ...rest);
      } catch (error) {
        if (running) byPortNow.set(this, running);
        throw error;
      }
      if (running) running.drop();
      opened.set(this, { method: String(method).toUpperCase(), url: new URL(mapped, base()).href, async: !!async, headers: [], mime: null, sent: false });
    };
    proto.setRequestHeader = function setRequestHeader(name, value) {
      if (byPortNow.has(this)) throw invalid('setRequestHeader');
      native.setRequestHeader.call(this, name, value);
      const o = opened.get(this);
      if (o) o.headers.push([String(name), String(value)]);
    };
    proto.overrideMimeType = function overrideMimeType(mime) {
      const running = byPortNow.get(this);
      if (running && running.readyState >= LOADING) throw new DOMException('overrideMimeType: the response is loading', 'InvalidStateError');
      native.overrideMimeType.call(this, mime);
      const o = opened.get(this);
      if (o) o.mime = String(mime);
    };
    proto.send = function send(body) {
      if (byPortNow.has(this)) throw invalid('send');
      const o = opened.get(this);
      const large = o && o.async && !o.sent && native.readyState.call(this) === 1
        && byPort(o.url, o.method) && portBody(body, XHR_PORT_FROM);
      if (large) {
        const running = new PortXhr(this, o, large);
        byPortNow.set(this, running);
        running.start();
        return undefined;
      }
      if (o) o.sent = true;
      const key = o && o.async ? abortKey(o.url) : null;
      if (key) {
        native.setRequestHeader.call(this, ABORT_HEADER, key);
        if (!abortKeys.has(this)) this.addEventListener('timeout', () => tellAborted(abortKeys.get(this)));
        abortKeys.set(this, key);
      }
      // Text stays: XHR rewrites the charset of a text body's Content-Type, not a Blob's.
      const sent = asBlob(body, false) || body;
      const pending = o && o.async ? cookiesPending() : null;
      if (!pending) return native.send.call(this, sent);
      // After the cookies a script just wrote (see cookiesPending), unless it was opened again
      // or aborted meanwhile.
      pending.then(() => {
        if (opened.get(this) === o && native.readyState.call(this) === 1) native.send.call(this, sent);
      });
      return undefined;
    };
    proto.abort = function abort() {
      const running = byPortNow.get(this);
      tellIfWaiting(this);
      if (!running) return native.abort.call(this);
      running.abort();
      return undefined;
    };
    proto.getResponseHeader = function getResponseHeader(name) {
      const running = byPortNow.get(this);
      if (!running) return native.getResponseHeader.call(this, name);
      const headers = running.headers();
      return headers ? headers.get(name) : null;
    };
    proto.getAllResponseHeaders = function getAllResponseHeaders() {
      const running = byPortNow.get(this);
      if (!running) return native.getAllResponseHeaders.call(this);
      const headers = running.headers();
      return headers ? [...headers].map(([name, value]) => `${name}: ${value}\r\n`).join('') : '';
    };

    /** Replaces getter `name` by `get(running)` for objects whose send went over a port. */
    const answerFromPort = (name, get) => {
      const descriptor = Object.getOwnPropertyDescriptor(proto, name);
      if (!descriptor) return undefined; // responseXML: not in workers
      Object.defineProperty(proto, name, {
        ...descriptor,
        get() {
          const running = byPortNow.get(this);
          return running ? get(running, this) : descriptor.get.call(this);
        },
      });
      return descriptor.get;
    };
    native.readyState = answerFromPort('readyState', (r) => r.readyState);
    answerFromPort('status', (r) => r.status);
    answerFromPort('statusText', (r) => r.statusText);
    answerFromPort('responseURL', (r) => r.responseURL);
    answerFromPort('responseText', (r, xhr) => {
      if (!['', 'text'].includes(xhr.responseType)) {
        throw new DOMException('responseText: the response type must be "" or "text"', 'InvalidStateError');
      }
      return r.responseText();
    });
    answerFromPort('response', (r, xhr) => r.response(xhr.responseType));
    answerFromPort('responseXML', (r, xhr) => (['', 'document'].includes(xhr.responseType) ? r.response('document') : null));
    const responseType = Object.getOwnPropertyDescriptor(proto, 'responseType');
    Object.defineProperty(proto, 'responseType', {
      ...responseType,
      set(type) {
        const running = byPortNow.get(this);
        if (running && running.readyState >= LOADING) throw new DOMException('responseType: the response is loading', 'InvalidStateError');
        responseType.set.call(this, type);
      },
    });
  }

  // ---- requests the page gives up on ---------------------------------------------------------
  // Browsers do not tell a service worker that the page aborted a request it is answering (its
  // AbortController, an XHR's abort() or timeout): the shim does, naming the request by a header
  // the worker removes, so wasm drops it and its connection to the app, as a browser closes its
  // own. Six unanswered requests the page gave up on would otherwise stall every other request to
  // the app until the app answered them.
  const ABORT_HEADER = 'x-hometun-abort';
  const pageKey = Math.random().toString(36).slice(2);
  let lastAbortKey = 0;
  /** A fresh key when a request to `url` goes through this app's worker, else null. */
  const abortKey = (url) => {
    if (IN_WORKER || !container || !container.controller) return null;
    try {
      if (new URL(url, base()).origin !== location.origin) return null;
    } catch (_) {
      return null;
    }
    lastAbortKey += 1;
    return `${pageKey}.${lastAbortKey}`;
  };
  const tellAborted = (key) => {
    const worker = container.controller;
    if (worker) worker.postMessage({ hometun: 'abort', key });
  };
  /**
   * `fetch` of `input` and `init` as the page made it, with the key of a request that has a
   * signal: the worker is told when it aborts before the answer's head (after it, the browser
   * cancels the body, which the worker sees).
   */
  function abortableFetch(input, init) {
    const signal = (init && init.signal) || (input instanceof Request ? input.signal : null);
    const key = signal && !signal.aborted ? abortKey(input instanceof Request ? input.url : String(input)) : null;
    if (!key) return nativeFetch(input, init);
    const request = new Request(input, init); // read as fetch reads them
    const headers = new Headers(request.headers);
    headers.set(ABORT_HEADER, key);
    const told = () => tellAborted(key);
    signal.addEventListener('abort', told, { once: true });
    // The signal given again: WebKit's copy of a Request did not follow the page's abort.
    const sent = nativeFetch(new Request(request, { headers, signal }));
    return sent.finally(() => signal.removeEventListener('abort', told));
  }

  // ---- hard-coded LAN URLs -------------------------------------------------------------------
  const nativeFetch = self.fetch;
  self.fetch = function fetch(input, init) {
    const pending = cookiesPending();
    return pending ? pending.then(() => shimmedFetch(input, init)) : shimmedFetch(input, init);
  };
  function shimmedFetch(input, init) {
    init = blobInit(input, init);
    const byItsPort = portFetchOf(input, init);
    if (byItsPort) return byItsPort;
    if (input instanceof Request) {
      const mapped = mapUrl(input.url);
      return abortableFetch(mapped ? new Request(mapped, input) : input, init);
    }
    return abortableFetch(mapUrl(input) || input, init);
  }

  if (self.XMLHttpRequest) shimXhr();

  if (self.EventSource) {
    const NativeEventSource = self.EventSource;
    self.EventSource = class EventSource extends NativeEventSource {
      constructor(url, init) {
        super(mapUrl(url) || url, init);
      }
    };
  }

  if (IN_WORKER) return;

  // ---- workers: each gets a provider of ports --------------------------------------------------
  /** Gives a worker a port it asks this page for ports over (`post` is its postMessage). */
  function giveProvider(post) {
    const channel = new MessageChannel();
    channel.port1.onmessage = (event) => {
      const data = event.data;
      if (!data || data.hometun !== 'port-request') return;
      requestPort().then(
        (port) => channel.port1.postMessage({ hometun: 'port', id: data.id }, [port]),
        (error) => channel.port1.postMessage({ hometun: 'port-error', id: data.id, code: error.code, message: error.message }),
      );
    };
    post({ hometun: 'provider' }, [channel.port2]);
  }

  /** Whether a worker script URL comes through the service worker (and so has the shim). */
  function shimmed(url) {
    try {
      const resolved = new URL(String(url), base());
      return resolved.protocol === 'https:' && resolved.origin === location.origin && !resolved.pathname.startsWith('/__ht/');
    } catch (_) {
      return false;
    }
  }

  if (window.Worker) {
    const NativeWorker = window.Worker;
    const post = NativeWorker.prototype.postMessage;
    window.Worker = class Worker extends NativeWorker {
      constructor(url, ...rest) {
        const mapped = url === undefined ? null : mapUrl(url);
        super(mapped || url, ...rest);
        if (shimmed(mapped || url)) giveProvider((message, transfer) => post.call(this, message, transfer));
      }
    };
  }
  if (window.SharedWorker) {
    const NativeSharedWorker = window.SharedWorker;
    const post = MessagePort.prototype.postMessage;
    window.SharedWorker = class SharedWorker extends NativeSharedWorker {
      constructor(url, ...rest) {
        const mapped = url === undefined ? null : mapUrl(url);
        super(mapped || url, ...rest);
        if (shimmed(mapped || url)) giveProvider((message, transfer) => post.call(this.port, message, transfer));
      }
    };
  }

  /**
   * The page is about to go to `url`: when that is another app origin, the service worker has
   * the launcher ask the relay for its name's certificate (docs/web-apps.md, "Going to another
   * app"); the worker outlives this page, so the message goes even as it unloads.
   */
  function goingTo(url) {
    try {
      const origin = new URL(String(url), base()).origin;
      const controller = container && container.controller;
      if (origin !== location.origin && isAppUrl(origin) && controller) {
        controller.postMessage({ hometun: 'app-origin', origin });
      }
    } catch (_) {
      // Not a URL: nothing to prepare.
    }
  }

  window.open = function open(url, ...rest) {
    const mapped = url === undefined ? null : mapUrl(url);
    if (mapped) goingTo(mapped);
    return nativeOpen.call(window, mapped || url, ...rest);
  };

  /** The Navigation API, where the browser has it (Chromium 102+, Firefox 147+, Safari 26.2+). */
  const navigation = self.navigation && typeof self.navigation.addEventListener === 'function' ? self.navigation : null;

  /** The link element a click is for, if any. */
  function linkOf(event) {
    const target = event.target;
    const link = target instanceof Element ? target.closest('a[href], area[href]') : null;
    return link && typeof link.href === 'string' ? link : null;
  }

  // Before anyone else sees the click: a hard-coded LAN link now points at its app origin.
  const rewriteLink = (event) => {
    const link = linkOf(event);
    const mapped = link && mapUrl(link.href);
    if (mapped) link.href = mapped;
    if (link) goingTo(link.href);
  };
  window.addEventListener('click', rewriteLink, true);
  window.addEventListener('auxclick', rewriteLink, true);

  // After everyone else: a new tab for an app keeps this page as its opener (so it finds the
  // launcher); the browser would open it without one.
  window.addEventListener('click', (event) => {
    const link = linkOf(event);
    if (!link || event.defaultPrevented || event.button !== 0 || link.hasAttribute('download')) return;
    const rel = (link.getAttribute('rel') || '').toLowerCase().split(/\s+/);
    if (link.target !== '_blank' || rel.includes('noopener') || rel.includes('noreferrer')) return;
    if (!isAppUrl(link.href)) return;
    event.preventDefault();
    nativeOpen.call(window, link.href, '_blank');
  });

  // A download link to this app (`<a download>`, clicked, or `click()`ed by a script): Chromium
  // fetches it past the app's worker, so the relay's boot page was saved instead of the file.
  // Its `navigate` event (below) loads it in a hidden frame through the worker instead, which
  // answers it as an attachment (sw.js, `downloaded`); the browser saves it as it streams in.
  // Without the Navigation API (WebKit), a click on such a link in the page does the same: the
  // lab's WebKit fetched nothing for it by itself.
  function downloadThroughTheWorker(href, name) {
    const url = new URL(href, location.href);
    const app = url.protocol === location.protocol && url.origin === location.origin; // not a blob: the page made
    if (!app || url.pathname.startsWith('/__ht/') || !container || !container.controller) return false;
    const frame = document.createElement('iframe');
    frame.hidden = true;
    frame.src = `/__ht/download?${new URLSearchParams({ url: url.pathname + url.search, name: name || '' })}`;
    (document.body || document.documentElement).append(frame);
    setTimeout(() => frame.remove(), DOWNLOAD_FRAME_MS);
    return true;
  }
  window.addEventListener('click', (event) => {
    const link = linkOf(event);
    if (!link || event.defaultPrevented || !link.hasAttribute('download') || navigation) return;
    if (downloadThroughTheWorker(link.href, link.getAttribute('download'))) event.preventDefault();
  });

  // A script that sends the page to a hard-coded LAN URL (`location.href = …`, `assign`,
  // `replace`) cannot be caught where it starts: `location` cannot be redefined. The Navigation
  // API's `navigate` event sees such a navigation before it happens (Chromium 102+; Firefox and
  // Safari have it in their newest versions): it is cancelled and made again to the app origin.
  // A POST (a `form.submit()`, which fires no `submit` event) is left alone: its body cannot be
  // made again here.
  if (navigation) {
    navigation.addEventListener('navigate', (event) => {
      const mapped = mapUrl(event.destination.url);
      goingTo(mapped || event.destination.url);
      if (event.cancelable && event.downloadRequest !== null
        && downloadThroughTheWorker(mapped || event.destination.url, event.downloadRequest)) {
        event.preventDefault();
        return;
      }
      if (!event.cancelable || event.formData || event.downloadRequest !== null || !mapped) return;
      event.preventDefault();
      if (event.navigationType === 'replace') location.replace(mapped);
      else location.assign(mapped);
    });
  }

  // A form this page posts is announced to the worker just before the browser makes the request
  // (the `navigate` event sees `form.submit()` too): a post to the app that nobody announced
  // came from another site and goes without the app's cookies (sw.js, `ownPost`).
  if (container && navigation) {
    navigation.addEventListener('navigate', (event) => {
      if (!event.formData) return;
      const url = new URL(event.destination.url);
      url.hash = ''; // the request's URL has none
      const worker = container.controller;
      if (url.origin === location.origin && worker) worker.postMessage({ hometun: 'form-post', url: url.href });
    });
  }

  // A form posted into another window (a named frame, `target="_blank"`) makes its `navigate`
  // event there, where no shim may run (a fresh about:blank frame), and a browser without the
  // Navigation API makes none: so the post is announced here too, as it leaves the form (a
  // `submit` no handler took over, or `form.submit()`).
  // The form's own `action` and `method`: a field named "action" or "method" (common in PHP and
  // router pages) hides the properties.
  const formAction = Object.getOwnPropertyDescriptor(HTMLFormElement.prototype, 'action').get;
  const formMethod = Object.getOwnPropertyDescriptor(HTMLFormElement.prototype, 'method').get;
  const announcePost = (form, submitter) => {
    try {
      const worker = container && container.controller;
      const byButton = submitter && submitter.hasAttribute('formmethod');
      if (!worker || (byButton ? submitter.formMethod : formMethod.call(form)) !== 'post') return;
      const byButtonTo = submitter && submitter.hasAttribute('formaction');
      const url = new URL(byButtonTo ? submitter.formAction : formAction.call(form), location.href);
      url.hash = '';
      if (url.origin === location.origin) worker.postMessage({ hometun: 'form-post', url: url.href });
    } catch (_) {
      // The post goes on; unannounced, it goes without the app's cookies.
    }
  };
  // Decided once every handler of the event ran, wherever one stopped it: a post an app handler
  // took over (`preventDefault`) is not made, and not announced. A script's own `submit` event
  // posts nothing either. The worker waits a moment for an announcement on its way.
  window.addEventListener('submit', (event) => {
    const form = event.target;
    if (!event.isTrusted || !(form instanceof HTMLFormElement)) return;
    const submitter = event.submitter;
    setTimeout(() => {
      if (!event.defaultPrevented) announcePost(form, submitter);
    }, 0);
  }, true);
  const formSubmit = HTMLFormElement.prototype.submit;
  HTMLFormElement.prototype.submit = function submit() {
    const pending = connected(this) ? heldFor(this, null) : null;
    if (!pending) {
      announcePost(this, null);
      return formSubmit.call(this);
    }
    const submission = holdSubmission(this, null);
    pending.then(() => submitNow(submission));
    return undefined;
  };

  // ---- navigations just after a cookie write -------------------------------------------------
  // A cookie a script writes goes to the jar over this page's own port, and the request of the
  // page it goes to next over the worker's. A script that did both as its page loaded (the port
  // not yet open) sent the next page without the cookie, every time in the lab, and router
  // pages sign in that way: the cookie, then `location.href`. So a navigation of this window
  // within the app, while a write is on its way, is held until the jar has it (COOKIE_WAIT_MS
  // at most) and then made again:
  // - the Navigation API's `navigate` event: links, `location`, reloads (Chromium, Firefox 147+,
  //   Safari 26.2+); made again with `location`, whose `navigate` event fires at once and is let
  //   through;
  // - a form's submission into this window: its `submit` event once the handlers on the form
  //   and the document (and those on the window before the shim's) let it go (the handler that
  //   writes the cookie is often one of them), and `form.submit()` (above). Its fields' values
  //   are sent as they were when it was submitted (a field taken out since, a `<select>` whose
  //   options changed and a file input go as they are then).

  const connected = (node) => Object.getOwnPropertyDescriptor(Node.prototype, 'isConnected').get.call(node);

  // A submission whose button says where or how it goes (`formaction`, `formmethod`, …) or that
  // sends coordinates (an image) is not held: `form.submit()` cannot make it again. Nor is one
  // into another window (the popup blocker would stop it after the wait) or a dialog's.
  const OWN_WAY = ['formaction', 'formmethod', 'formenctype', 'formtarget', 'formnovalidate'];

  /** When a submission of `form` by `submitter` is held, the promise of its cookies; else null. */
  function heldFor(form, submitter) {
    if (submitter && (submitter.type === 'image' || OWN_WAY.some((a) => submitter.hasAttribute(a)))) return null;
    const base = document.querySelector('base[target]');
    const target = Element.prototype.getAttribute.call(form, 'target') || (base && base.getAttribute('target')) || '';
    if ((target && target.toLowerCase() !== '_self') || formMethod.call(form) === 'dialog') return null;
    return cookiesPending();
  }

  /** A navigation the shim makes again itself: its `navigate` event is not held again. */
  let makingAgain = false;
  function again(navigate) {
    makingAgain = true;
    try {
      navigate();
    } finally {
      makingAgain = false;
    }
  }

  /**
   * What a held submission sends: the form, its button, and each field's state as it is now
   * (a page may disable or clear fields once it submitted, as rails-ujs does).
   */
  function holdSubmission(form, submitter) {
    const elements = Object.getOwnPropertyDescriptor(HTMLFormElement.prototype, 'elements').get.call(form);
    const fields = [];
    for (const field of elements) {
      const kind = [HTMLInputElement, HTMLSelectElement, HTMLTextAreaElement, HTMLButtonElement].some((k) => field instanceof k);
      if (kind && !(field instanceof HTMLInputElement && field.type === 'file')) fields.push({ field, ...stateOf(field) });
    }
    const button = submitter && submitter.name ? [submitter.name, submitter.value] : null;
    return { form, submitter, button, fields };
  }

  function stateOf(field) {
    return {
      value: field.value,
      disabled: field.disabled,
      checked: field instanceof HTMLInputElement ? field.checked : null,
      options: field instanceof HTMLSelectElement ? Array.from(field.options, (o) => o.selected) : null,
    };
  }

  /**
   * Puts each held field's state in place, keeping the page's own to put back the same way. All
   * are read before any is set: checking one radio button unchecks the others of its group.
   */
  function swapFields(fields) {
    const now = fields.map((held) => stateOf(held.field));
    fields.forEach((held, at) => {
      // Only what differs is set: a value set again would add a `value` attribute to a button
      // or check box that had none, and move a text field's cursor.
      const { field } = held;
      if (held.options) {
        held.options.forEach((on, i) => { if (field.options[i] && field.options[i].selected !== on) field.options[i].selected = on; });
      } else if (field.value !== held.value) field.value = held.value;
      if (held.checked !== null && field.checked !== held.checked) field.checked = held.checked;
      if (field.disabled !== held.disabled) field.disabled = held.disabled;
      Object.assign(held, now[at]);
    });
  }

  /** Makes a held submission: natively, with the fields as they were and the button's own. */
  function submitNow({ form, submitter, button, fields }) {
    let extra = null;
    if (button) {
      extra = document.createElement('input');
      extra.type = 'hidden';
      [extra.name, extra.value] = button;
      Node.prototype.appendChild.call(form, extra);
    }
    // A script's form that it took out again at once (`append`, `submit()`, `remove()`) would
    // have gone before it was taken out: it is put back, hidden, for the moment it takes.
    const detached = !connected(form); // it was when it was held
    const hidden = Element.prototype.hasAttribute.call(form, 'hidden');
    if (detached) {
      Element.prototype.setAttribute.call(form, 'hidden', '');
      document.documentElement.appendChild(form);
    }
    swapFields(fields);
    try {
      announcePost(form, submitter);
      again(() => formSubmit.call(form)); // the form's data are read here, at once
    } finally {
      swapFields(fields);
      if (extra) Element.prototype.remove.call(extra);
      if (detached) {
        Element.prototype.remove.call(form);
        if (!hidden) Element.prototype.removeAttribute.call(form, 'hidden');
      }
    }
  }

  /** Whether `url` is on this app's origin. */
  const withinTheApp = (url) => new URL(url, location.href).origin === location.origin;

  if (navigation) {
    navigation.addEventListener('navigate', (event) => {
      if (makingAgain || event.defaultPrevented || !event.cancelable || event.formData) return;
      if (event.downloadRequest !== null || event.destination.sameDocument || event.navigationType === 'traverse') return;
      const url = event.destination.url;
      if (!withinTheApp(url)) return;
      const pending = cookiesPending();
      if (!pending) return;
      event.preventDefault();
      pending.then(() => again(() => {
        if (event.navigationType === 'reload') location.reload();
        else if (event.navigationType === 'replace') location.replace(url);
        else location.assign(url);
      }));
    });
  }

  window.addEventListener('submit', (event) => {
    const form = event.target;
    if (!event.isTrusted || event.defaultPrevented || !(form instanceof HTMLFormElement)) return;
    const submitter = event.submitter;
    const pending = heldFor(form, submitter);
    if (!pending) return;
    event.preventDefault();
    const held = holdSubmission(form, submitter);
    pending.then(() => submitNow(held));
  });

  window.addEventListener('submit', (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    const mapped = mapUrl(formAction.call(form));
    if (mapped) form.setAttribute('action', mapped);
    const submitter = event.submitter;
    if (submitter && submitter.hasAttribute('formaction')) {
      const mappedSubmitter = mapUrl(submitter.formAction);
      if (mappedSubmitter) submitter.setAttribute('formaction', mappedSubmitter);
    }
  }, true);
})();
